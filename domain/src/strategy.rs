//! Coordination strategies (§2.4–2.5 of the design report).

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Strategy {
    /// §2.4.1 and §2.4.3: events over the broker with outbox and inbox; the
    /// failure path publishes rollback events compensated in reverse order.
    Choreography,
}

impl Strategy {
    pub const ALL: [Strategy; 1] = [Strategy::Choreography];

    pub fn name(self) -> &'static str {
        match self {
            Strategy::Choreography => "choreography",
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
        }
    }
}
