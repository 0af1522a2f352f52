-- The external payment gateway: card charges, and the charge made under each
-- idempotency key (NULL: declined), with when the gateway took the request
-- (microseconds since the Unix epoch): a key older than the retention no
-- longer deduplicates a charge.
CREATE TABLE charges (
    id integer PRIMARY KEY,
    order_id integer NOT NULL,
    amount bigint NOT NULL,
    refunded boolean NOT NULL
);
CREATE TABLE pg_keys (
    key bigint PRIMARY KEY,
    charge integer REFERENCES charges (id),
    at_us bigint NOT NULL
);
