//! Coordination strategies (§2.4–2.5 of the design report).

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Strategy {
    /// §2.4.1 and §2.4.3: events over the broker with outbox and inbox; the
    /// failure path publishes rollback events compensated in reverse order.
    Choreography,
    /// §2.4.2 and §2.5 "SAGA compensating transactions": an orchestrator
    /// behind the gateway runs each step over RPC, keeps a durable saga log,
    /// and compensates in reverse order until every compensation succeeds.
    Orchestration,
    /// §2, the current `OrderFacade`: one ACID transaction in one database,
    /// and a second one once the card charge settles. The baseline.
    Monolith,
    /// §2.3 (3): XA-style prepare/commit across the service databases, row
    /// locks held from prepare to decision.
    TwoPhaseCommit,
    /// §2.5 "synchronous cancel API": the orchestrator's steps, but on a
    /// failure it calls each cancel once and returns; no durable retry.
    SyncCancel,
    /// §2.5 "compensation coupon": the orchestration, and a failure the
    /// system caused (a stock-out, a step that never answered) earns the
    /// user a discount coupon.
    CompensationCoupon,
    /// §2.5 "UX retry": the orchestration, and a declined payment is
    /// offered to the user again ("pay again") up to N times before the
    /// order is compensated.
    UxRetry,
}

impl Strategy {
    pub const ALL: [Strategy; 7] = [
        Strategy::Monolith,
        Strategy::Choreography,
        Strategy::Orchestration,
        Strategy::TwoPhaseCommit,
        Strategy::SyncCancel,
        Strategy::CompensationCoupon,
        Strategy::UxRetry,
    ];

    /// The client's answer waits until the order is decided, so "accepted"
    /// means confirmed; the choreography answers once the order is taken.
    pub fn answers_when_decided(self) -> bool {
        self != Strategy::Choreography
    }

    /// A coordinator node drives the order (and is where orders enter).
    pub fn coordinated(self) -> bool {
        matches!(
            self,
            Strategy::Orchestration
                | Strategy::TwoPhaseCommit
                | Strategy::SyncCancel
                | Strategy::CompensationCoupon
                | Strategy::UxRetry
        )
    }

    /// Whether the strategy claims to stay consistent under faults. One that
    /// does not says so here, and the tests check that faults do break it.
    pub fn survives_faults(self) -> bool {
        self != Strategy::SyncCancel
    }

    pub fn name(self) -> &'static str {
        match self {
            Strategy::Choreography => "choreography",
            Strategy::Orchestration => "orchestration",
            Strategy::Monolith => "monolith",
            Strategy::TwoPhaseCommit => "two-phase-commit",
            Strategy::SyncCancel => "sync-cancel",
            Strategy::CompensationCoupon => "compensation-coupon",
            Strategy::UxRetry => "ux-retry",
        }
    }

    pub fn parse(name: &str) -> Option<Strategy> {
        Strategy::ALL.into_iter().find(|s| s.name() == name)
    }

    pub fn describe(self) -> &'static str {
        match self {
            Strategy::Choreography => {
                "§2.4.1/§2.4.3: events over the broker with outbox and inbox; a short balance \
                 publishes rollback events that payment, order and product undo in reverse"
            }
            Strategy::Orchestration => {
                "§2.4.2/§2.5: an orchestrator behind the gateway calls each step over RPC with a \
                 durable saga log, and compensates in reverse until every compensation succeeds"
            }
            Strategy::CompensationCoupon => {
                "§2.5 compensation coupon: the orchestration, and a failure the system caused \
                 (stock-out, a step that never answered) issues the user a discount coupon"
            }
            Strategy::UxRetry => {
                "§2.5 UX retry: the orchestration, and a declined card is offered to the user \
                 again (\"pay again\", a new charge attempt) up to N times before compensating"
            }
            Strategy::SyncCancel => {
                "§2.5 synchronous cancel API: orchestrated steps, but a failure's cancel calls are \
                 made once, without durable retry; faults leave inconsistencies (by design)"
            }
            Strategy::TwoPhaseCommit => {
                "§2.3 (3): a coordinator prepares stock, order and points with row locks held \
                 across the card charge, logs its decision, then commits or aborts everywhere"
            }
            Strategy::Monolith => {
                "§2 baseline: every table in one database, the order taken in one ACID \
                 transaction and confirmed or undone in another once the card charge settles"
            }
        }
    }
}
