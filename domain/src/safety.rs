//! The safety mechanisms as explicit switches, and the planted bugs that turn
//! one off. A bug reaches the services only as this plain configuration.

use serde::{Deserialize, Serialize};

/// Which safety mechanisms are on. All are on in a clean run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Safety {
    /// Events are committed to an outbox with the state change; otherwise they
    /// are published directly after the commit (a dual write).
    pub outbox: bool,
    /// Consumers skip events their inbox has seen.
    pub inbox: bool,
    /// A compensation checks that the step it undoes is still in effect.
    pub idempotent_compensation: bool,
}

impl Safety {
    pub const ALL_ON: Safety = Safety { outbox: true, inbox: true, idempotent_compensation: true };

    /// The switches with one bug planted.
    pub fn with(bug: Option<Bug>) -> Safety {
        let mut s = Safety::ALL_ON;
        match bug {
            None => {}
            Some(Bug::NoOutbox) => s.outbox = false,
            Some(Bug::NoInbox) => s.inbox = false,
        }
        s
    }
}

/// A planted bug, named after the real-world bug it reproduces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Bug {
    NoOutbox,
    NoInbox,
}

impl Bug {
    pub const ALL: [Bug; 2] = [Bug::NoOutbox, Bug::NoInbox];

    pub fn name(self) -> &'static str {
        match self {
            Bug::NoOutbox => "no-outbox",
            Bug::NoInbox => "no-inbox",
        }
    }

    pub fn parse(name: &str) -> Option<Bug> {
        Bug::ALL.into_iter().find(|b| b.name() == name)
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
        }
    }
}
