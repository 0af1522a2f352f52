-- The data platform: orders known, and how many times each was taken in as
-- confirmed.
CREATE TABLE platform_orders (
    order_id integer PRIMARY KEY,
    received integer NOT NULL
);
