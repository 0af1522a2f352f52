-- User: points balances, and what was decided for each order.
CREATE TABLE balances (
    user_id integer PRIMARY KEY,
    points bigint NOT NULL CHECK (points >= 0)
);
-- Points deducted for an order, or NULL: the balance was short (or refunded).
CREATE TABLE decisions (
    order_id integer PRIMARY KEY,
    points bigint
);
