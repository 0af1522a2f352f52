-- Payment: one payment per order, charged through the payment gateway.
CREATE TABLE payments (
    order_id integer PRIMARY KEY,
    user_id integer NOT NULL,
    card bigint NOT NULL,
    points bigint NOT NULL,
    state text NOT NULL CHECK (state IN
        ('charging', 'charged', 'completed', 'declined', 'refunding', 'refunded')),
    cancel boolean NOT NULL,
    attempt integer NOT NULL
);
