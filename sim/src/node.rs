//! Nodes: the simulated machines. A node is up or down; every crash starts a
//! new incarnation, and anything addressed to an older incarnation (a timer, a
//! local step) is discarded, which is how a crash loses volatile state.

use serde::{Deserialize, Serialize};

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct NodeId(pub u16);

impl NodeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// What a node is, which decides what the kernel does for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A service with a database, an outbox relay and broker consumers.
    Service,
    /// A client outside the system: never crashes, has no database.
    Client,
    /// The broker.
    Broker,
    /// A cache server (Redis-like): volatile key/value with TTL.
    Cache,
}

#[derive(Clone, Debug)]
pub struct Node {
    pub name: String,
    pub role: Role,
    pub up: bool,
    /// Bumped at every crash. Invariant: a node's timers carry the
    /// incarnation that set them and fire only if it is still current.
    pub incarnation: u32,
    /// When each ended incarnation ended: `ended_at[i]` is the time of the
    /// crash that ended incarnation `i`. A message that leaves some time
    /// after it was scheduled (an offset commit) is checked against it when
    /// it arrives: it left only if its incarnation still ran at departure.
    pub ended_at: Vec<u64>,
    pub crashes: u32,
    /// Frozen until this time: what reaches it waits until then.
    pub paused_until: u64,
    /// Its database is unreachable until this time: every commit fails.
    pub db_down_until: u64,
    /// Busy with a handler until this time: what reaches it waits its turn.
    pub busy_until: u64,
}

impl Node {
    pub fn new(name: &str, role: Role) -> Node {
        Node {
            name: name.to_string(),
            role,
            up: true,
            incarnation: 0,
            ended_at: Vec::new(),
            crashes: 0,
            paused_until: 0,
            db_down_until: 0,
            busy_until: 0,
        }
    }

    /// Whether incarnation `incarnation` was still running at `t_us`. A
    /// crash at that very microsecond counts as before it.
    pub fn ran_at(&self, incarnation: u32, t_us: u64) -> bool {
        match self.ended_at.get(incarnation as usize) {
            Some(&end) => end > t_us,
            None => self.incarnation == incarnation,
        }
    }
}
