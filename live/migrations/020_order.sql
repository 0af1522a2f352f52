-- Order: orders, and the coupons applied to them (see ARCHITECTURE.md).
CREATE TABLE orders (
    id integer PRIMARY KEY,
    user_id integer NOT NULL,
    product integer NOT NULL,
    qty integer NOT NULL,
    coupon integer,
    amount bigint NOT NULL,
    points bigint NOT NULL,
    card bigint NOT NULL,
    state text NOT NULL CHECK (state IN ('pending', 'confirmed', 'cancelled', 'rejected'))
);
CREATE TABLE coupons (
    id integer PRIMARY KEY,
    user_id integer NOT NULL,
    discount bigint NOT NULL,
    state text NOT NULL CHECK (state IN ('issued', 'used')),
    order_id integer,
    CHECK ((state = 'used') = (order_id IS NOT NULL))
);
-- The apology coupon issued for each order that earned one.
CREATE TABLE apologies (
    order_id integer PRIMARY KEY,
    coupon integer NOT NULL REFERENCES coupons (id)
);
