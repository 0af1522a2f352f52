-- Every service's schema: the fence that stops a zombie, the outbox (§2.4.3
-- of the design report), the inbox, the journal of committed writes, the
-- dead letters parked for people, and the entry record of idempotency keys
-- (used where orders enter).

-- The incarnation allowed to write: a new one takes the next epoch, and a
-- commit by an older one finds its epoch gone and fails.
CREATE TABLE fence (
    service text PRIMARY KEY,
    epoch bigint NOT NULL
);

-- Hold the fence for the rest of the transaction, or refuse it (SQLSTATE
-- SGFEN) if another incarnation has taken it: a transaction that fails
-- here applies nothing, so every write can be sent at once behind it.
CREATE FUNCTION hold_fence(who text, mine bigint) RETURNS void AS $$
BEGIN
    PERFORM 1 FROM fence WHERE service = who AND epoch = mine FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'fenced: % epoch % is no longer current', who, mine
            USING ERRCODE = 'SGFEN';
    END IF;
END $$ LANGUAGE plpgsql;

-- Events committed with the state change, published by the relay.
CREATE TABLE outbox (
    id bigserial PRIMARY KEY,
    aggregate_id bigint NOT NULL,
    event_type text NOT NULL,
    payload jsonb NOT NULL,
    status text NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'SENT')),
    created_at timestamptz NOT NULL DEFAULT now(),
    -- When the relay marked it sent (after the broker acknowledged it).
    sent_at timestamptz,
    traceparent text
);
CREATE INDEX outbox_pending ON outbox (id) WHERE status = 'PENDING';

-- Events handled, so that a redelivered one is recognised.
CREATE TABLE inbox (
    event_id bigint PRIMARY KEY,
    handled_at timestamptz NOT NULL DEFAULT now()
);

-- Every committed transaction's domain writes, in the same transaction: what
-- the invariant checker learns the run's history from.
CREATE TABLE journal (
    id bigserial PRIMARY KEY,
    tx bigint NOT NULL UNIQUE,
    writes jsonb NOT NULL,
    at timestamptz NOT NULL
);

-- Dead letters the recovery pass could not handle either (an alarm).
CREATE TABLE parked (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now()
);

-- The durable record of idempotency keys (§2.4.4), where orders enter.
CREATE TABLE entry_keys (
    key bigint PRIMARY KEY,
    hash bigint NOT NULL,
    order_id integer NOT NULL,
    answer jsonb
);
CREATE TABLE entry_counter (
    id integer PRIMARY KEY CHECK (id = 1),
    next_order integer NOT NULL CHECK (next_order >= 0)
);
INSERT INTO entry_counter VALUES (1, 0);

-- Number the next order `n`, or refuse (SQLSTATE SGSEQ): orders are
-- numbered in sequence.
CREATE FUNCTION take_order_number(n integer) RETURNS void AS $$
BEGIN
    UPDATE entry_counter SET next_order = next_order + 1 WHERE id = 1 AND next_order = n;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'order % is out of sequence', n USING ERRCODE = 'SGSEQ';
    END IF;
END $$ LANGUAGE plpgsql;
