-- The orchestrator's durable saga log: one row per order, its phase for
-- people and the whole saga for the orchestrator.
CREATE TABLE sagas (
    order_id integer PRIMARY KEY,
    phase text NOT NULL,
    saga jsonb NOT NULL
);
