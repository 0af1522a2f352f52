-- Product: prices, stock, sales records, and what was done for each order.
CREATE TABLE products (
    id integer PRIMARY KEY,
    price bigint NOT NULL CHECK (price >= 0),
    stock bigint NOT NULL CHECK (stock >= 0),
    sales bigint NOT NULL DEFAULT 0
);
CREATE TABLE reservations (
    order_id integer PRIMARY KEY,
    product integer NOT NULL REFERENCES products (id),
    qty integer NOT NULL CHECK (qty > 0),
    state text NOT NULL CHECK (state IN ('held', 'rejected', 'restored', 'void')),
    sold boolean NOT NULL DEFAULT false
);
