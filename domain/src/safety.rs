//! The safety mechanisms as explicit switches, and the planted bugs that turn
//! one off or open a known race. A bug reaches the services only as this
//! plain configuration.

use serde::{Deserialize, Serialize};

use crate::strategy::Strategy;

/// Which safety mechanisms are on. All are on in a clean run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Safety {
    /// Events are committed to an outbox with the state change; otherwise they
    /// are published directly after the commit (a dual write).
    pub outbox: bool,
    /// Consumers skip events their inbox has seen.
    pub inbox: bool,
    /// The gateway passes the client's idempotency key on, and the entry
    /// service records it durably with the order.
    pub idempotency_keys: bool,
    /// A reused key with another payload is refused.
    pub key_payload_check: bool,
    /// Payment retries a timed-out charge with the same gateway key.
    pub pg_retry_with_key: bool,
    /// Payment finds out what became of a timed-out charge instead of taking
    /// it for a decline.
    pub pg_resolve_timeouts: bool,
    /// A coupon is validated and used in one transaction.
    pub coupon_atomic: bool,
    /// A consumer commits its offset only after handling the records.
    pub commit_after_process: bool,
    /// A record that keeps failing goes to a dead-letter topic.
    pub dead_letter: bool,
    /// An event that arrives before its saga exists is retried until it
    /// can be handled, not dropped.
    pub park_early_events: bool,
    /// A compensation checks that the step it undoes is still in effect, so
    /// a repeated one undoes nothing more.
    pub idempotent_compensation: bool,
    /// A compensation that arrives before its step leaves a mark that makes
    /// the late step a no-op.
    pub void_early_release: bool,
    /// A payment being charged cannot be cancelled outright: the cancel
    /// waits for the charge to settle, then refunds it.
    pub semantic_lock: bool,
    /// Coordinators and Payment look for stuck sagas and payment calls
    /// periodically, not only when they boot.
    pub periodic_recovery: bool,
    /// Payment's PG key is the payment's, the same for every call of one
    /// charge, not one derived from the call's attempt.
    pub pg_key_per_payment: bool,
    /// User's consumer checks its inbox too (every other consumer does
    /// whatever this says; the partial bug skips the check in User only).
    pub user_inbox_check: bool,
    /// The inbox's event id is a unique key checked at commit, not only a
    /// row the handler looks for when it reads.
    pub unique_inbox: bool,
    /// Product deducts stock with a guarded decrement checked at commit,
    /// not by writing back the stock it read minus the quantity.
    pub guarded_stock: bool,
    /// Relays publish every pending outbox row, not only those above the
    /// highest id published so far (a high-water cursor skips a row whose
    /// transaction committed after a higher id was published).
    pub relay_scans_pending: bool,
    /// The inbox is keyed on the event's id, not on where the broker
    /// delivered it from.
    pub inbox_on_event_id: bool,
    /// Payment trusts a PG key to deduplicate a charge it sends again only
    /// while the gateway keeps keys; past that it asks what became of the
    /// charge before charging again.
    pub pg_key_retention: bool,
}

impl Safety {
    pub const ALL_ON: Safety = Safety {
        outbox: true,
        inbox: true,
        idempotency_keys: true,
        key_payload_check: true,
        pg_retry_with_key: true,
        pg_resolve_timeouts: true,
        coupon_atomic: true,
        commit_after_process: true,
        dead_letter: true,
        park_early_events: true,
        idempotent_compensation: true,
        void_early_release: true,
        semantic_lock: true,
        periodic_recovery: true,
        pg_key_per_payment: true,
        user_inbox_check: true,
        unique_inbox: true,
        guarded_stock: true,
        relay_scans_pending: true,
        inbox_on_event_id: true,
        pg_key_retention: true,
    };

    /// The switches with one bug planted.
    pub fn with(bug: Option<Bug>) -> Safety {
        let mut s = Safety::ALL_ON;
        match bug {
            None => {}
            Some(Bug::NoOutbox) => s.outbox = false,
            Some(Bug::NoInbox) => s.inbox = false,
            Some(Bug::NoIdempotencyKey) => s.idempotency_keys = false,
            Some(Bug::KeyPayloadUnchecked) => s.key_payload_check = false,
            Some(Bug::PgRetryWithoutKey) => s.pg_retry_with_key = false,
            Some(Bug::PgTimeoutAsFailure) => s.pg_resolve_timeouts = false,
            Some(Bug::CouponCheckThenAct) => s.coupon_atomic = false,
            Some(Bug::CommitOffsetBeforeProcess) => s.commit_after_process = false,
            Some(Bug::NoDlq) => s.dead_letter = false,
            Some(Bug::EarlyEventDropped) => s.park_early_events = false,
            Some(Bug::NonIdempotentCompensation) => s.idempotent_compensation = false,
            Some(Bug::CompensationBeforeAction) => s.void_early_release = false,
            Some(Bug::NoSemanticLock) => s.semantic_lock = false,
            Some(Bug::RecoveryAtBootOnly) => s.periodic_recovery = false,
            Some(Bug::PgKeyPerAttempt) => s.pg_key_per_payment = false,
            Some(Bug::UserInboxUnchecked) => s.user_inbox_check = false,
            Some(Bug::InboxWithoutUniqueKey) => s.unique_inbox = false,
            Some(Bug::StaleReadStock) => s.guarded_stock = false,
            Some(Bug::RelayHighWaterCursor) => s.relay_scans_pending = false,
            Some(Bug::InboxOnRecordPosition) => s.inbox_on_event_id = false,
            Some(Bug::PgKeyPastRetention) => s.pg_key_retention = false,
        }
        s
    }
}

/// A planted bug, named after the real-world bug it reproduces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Bug {
    NoOutbox,
    NoInbox,
    NoIdempotencyKey,
    PgRetryWithoutKey,
    CouponCheckThenAct,
    CommitOffsetBeforeProcess,
    NoDlq,
    PgTimeoutAsFailure,
    KeyPayloadUnchecked,
    EarlyEventDropped,
    NonIdempotentCompensation,
    CompensationBeforeAction,
    NoSemanticLock,
    RecoveryAtBootOnly,
    PgKeyPerAttempt,
    UserInboxUnchecked,
    InboxWithoutUniqueKey,
    StaleReadStock,
    RelayHighWaterCursor,
    InboxOnRecordPosition,
    PgKeyPastRetention,
}

impl Bug {
    pub const ALL: [Bug; 21] = [
        Bug::NoOutbox,
        Bug::NoInbox,
        Bug::NoIdempotencyKey,
        Bug::PgRetryWithoutKey,
        Bug::CouponCheckThenAct,
        Bug::CommitOffsetBeforeProcess,
        Bug::NoDlq,
        Bug::PgTimeoutAsFailure,
        Bug::KeyPayloadUnchecked,
        Bug::EarlyEventDropped,
        Bug::NonIdempotentCompensation,
        Bug::CompensationBeforeAction,
        Bug::NoSemanticLock,
        Bug::RecoveryAtBootOnly,
        Bug::PgKeyPerAttempt,
        Bug::UserInboxUnchecked,
        Bug::InboxWithoutUniqueKey,
        Bug::StaleReadStock,
        Bug::RelayHighWaterCursor,
        Bug::InboxOnRecordPosition,
        Bug::PgKeyPastRetention,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Bug::NoOutbox => "no-outbox",
            Bug::NoInbox => "no-inbox",
            Bug::NoIdempotencyKey => "no-idempotency-key",
            Bug::PgRetryWithoutKey => "pg-retry-without-key",
            Bug::CouponCheckThenAct => "coupon-check-then-act",
            Bug::CommitOffsetBeforeProcess => "commit-offset-before-process",
            Bug::NoDlq => "no-dlq",
            Bug::PgTimeoutAsFailure => "pg-timeout-as-failure",
            Bug::KeyPayloadUnchecked => "key-payload-unchecked",
            Bug::EarlyEventDropped => "early-event-dropped",
            Bug::NonIdempotentCompensation => "non-idempotent-compensation",
            Bug::CompensationBeforeAction => "compensation-before-action",
            Bug::NoSemanticLock => "no-semantic-lock",
            Bug::RecoveryAtBootOnly => "recovery-at-boot-only",
            Bug::PgKeyPerAttempt => "pg-key-per-attempt",
            Bug::UserInboxUnchecked => "user-inbox-unchecked",
            Bug::InboxWithoutUniqueKey => "inbox-without-unique-key",
            Bug::StaleReadStock => "stale-read-stock",
            Bug::RelayHighWaterCursor => "relay-high-water-cursor",
            Bug::InboxOnRecordPosition => "inbox-on-record-position",
            Bug::PgKeyPastRetention => "pg-key-past-retention",
        }
    }

    pub fn parse(name: &str) -> Option<Bug> {
        Bug::ALL.into_iter().find(|b| b.name() == name)
    }

    /// The strategies the bug can be planted in.
    pub fn strategies(self) -> &'static [Strategy] {
        match self {
            Bug::NonIdempotentCompensation
            | Bug::CompensationBeforeAction
            | Bug::NoSemanticLock => &[Strategy::Orchestration],
            Bug::NoIdempotencyKey | Bug::KeyPayloadUnchecked | Bug::PgRetryWithoutKey => &[
                Strategy::Monolith,
                Strategy::Choreography,
                Strategy::Orchestration,
                Strategy::TwoPhaseCommit,
            ],
            Bug::PgTimeoutAsFailure => {
                &[Strategy::Choreography, Strategy::Orchestration, Strategy::TwoPhaseCommit]
            }
            Bug::PgKeyPerAttempt | Bug::PgKeyPastRetention => &[
                Strategy::Monolith,
                Strategy::Choreography,
                Strategy::Orchestration,
                Strategy::TwoPhaseCommit,
            ],
            // Under the choreography, orders enter at Product, whose order
            // sequence already serializes concurrent places.
            Bug::StaleReadStock => &[Strategy::Orchestration],
            Bug::RecoveryAtBootOnly => &[
                Strategy::Choreography,
                Strategy::Orchestration,
                Strategy::TwoPhaseCommit,
                Strategy::Monolith,
            ],
            _ => &[Strategy::Choreography],
        }
    }

    /// Whether the live mode can plant it. Two bugs switch off what the
    /// live adapters own rather than the domain: the inbox's unique key is
    /// PostgreSQL's primary key, and the live relay publishes every pending
    /// row and keeps no cursor.
    pub fn runs_live(self) -> bool {
        !matches!(self, Bug::InboxWithoutUniqueKey | Bug::RelayHighWaterCursor)
    }

    /// One line: what it does and what must catch it.
    pub fn describe(self) -> &'static str {
        match self {
            Bug::NoOutbox => {
                "publish directly after the commit (dual write): a crash in between loses the \
                 event; eventual-consistency catches the stuck saga"
            }
            Bug::NoInbox => {
                "consumers do not dedupe: a redelivered event deducts a balance twice; \
                 no-double-charge catches it"
            }
            Bug::NoIdempotencyKey => {
                "the gateway ignores the Idempotency-Key: a client retry becomes a second \
                 order; idempotent-responses catches it"
            }
            Bug::PgRetryWithoutKey => {
                "Payment retries a timed-out charge without its key: the card is charged \
                 twice; no-double-charge catches it"
            }
            Bug::CouponCheckThenAct => {
                "the coupon is validated in one transaction and used in another: two orders \
                 use one coupon; coupon-single-use catches it"
            }
            Bug::CommitOffsetBeforeProcess => {
                "consumers commit the offset before handling: a crash loses the message; \
                 eventual-consistency catches the stuck saga"
            }
            Bug::NoDlq => {
                "a poison message is retried forever: its partition is stuck; no-stuck-saga \
                 catches the lag"
            }
            Bug::PgTimeoutAsFailure => {
                "a timed-out charge is taken for a decline without asking the gateway: the \
                 order is cancelled while its card was charged; eventual-consistency catches it"
            }
            Bug::KeyPayloadUnchecked => {
                "a reused key with another payload gets the old response instead of a refusal; \
                 idempotent-responses catches it"
            }
            Bug::NonIdempotentCompensation => {
                "a repeated stock release gives the stock back again: stock-conservation \
                 catches the inflated stock"
            }
            Bug::CompensationBeforeAction => {
                "a release that overtakes its reservation is ignored, so the late reservation \
                 sticks: eventual-consistency catches the leaked stock"
            }
            Bug::NoSemanticLock => {
                "a refund that races an in-flight charge marks the payment refunded at once; the \
                 charge then goes through: eventual-consistency catches the cancelled, charged order"
            }
            Bug::RecoveryAtBootOnly => {
                "stuck sagas and payment calls are taken up only when their service restarts: \
                 a commit that applied while reporting a failure leaves a saga at its first \
                 step or a payment charging; eventual-consistency or no-stuck-saga catches it"
            }
            Bug::PgKeyPerAttempt => {
                "a partial break: Payment sends a key on every call, but builds it from the \
                 call's attempt, so the retry after a timeout is a new charge to the gateway; \
                 no-double-charge catches it"
            }
            Bug::InboxWithoutUniqueKey => {
                "found only with several instances: the inbox is a row each handler looks for \
                 when it reads, with no unique key at commit; an instance paused mid-handler \
                 wakes after its partition moved and the other instance handled the event, and \
                 commits it again: the data platform takes a confirmation twice, and \
                 exactly-once-effects catches it"
            }
            Bug::StaleReadStock => {
                "found only with several instances: Product writes the stock it read minus the \
                 quantity instead of a guarded decrement, so two instances reserving stock of \
                 one product at once lose a deduction; stock-conservation catches it"
            }
            Bug::RelayHighWaterCursor => {
                "found only with several instances: the relay publishes the outbox rows above \
                 the highest id it has published, but ids are taken when a transaction stages \
                 its rows, and a transaction that staged earlier can commit later (a slower \
                 commit, an instance's own relay batch still in flight): its row is never \
                 published, and eventual-consistency catches the stuck saga"
            }
            Bug::InboxOnRecordPosition => {
                "deduplication on the wrong field: every consumer's inbox is keyed on the \
                 record's broker position (topic, partition, offset) instead of the event's id, \
                 so a redelivery after a crash is caught but a copy the relay publishes again \
                 (a lost acknowledgement, a failed sent-mark) is handled twice; \
                 no-double-charge or exactly-once-side-effects catches it"
            }
            Bug::PgKeyPastRetention => {
                "a key trusted for longer than the gateway keeps it: Payment sends a timed-out \
                 charge again under its key however long ago the first went out, but the \
                 gateway forgets keys after its retention, so a charge that went through \
                 long ago is made a second time; no-double-charge catches it"
            }
            Bug::UserInboxUnchecked => {
                "a bug in one service's consumer: User records each event in its inbox but never \
                 checks it, while every other consumer does; a redelivered event deducts points \
                 twice, and no-double-charge catches it"
            }
            Bug::EarlyEventDropped => {
                "a confirmation that reaches the data platform before the order's creation is \
                 dropped; exactly-once-side-effects catches the missing record"
            }
        }
    }
}
