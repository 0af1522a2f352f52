//! The data platform (§3.1 "send the order to the data platform"): an
//! external sink fed from the broker. It must take each confirmed order in
//! exactly once, which its inbox makes true under at-least-once delivery.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::OrderId;
use crate::message::Event;
use crate::ports::Tx;
use crate::tables::Write;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlatformTables {
    /// How many times each order was taken in.
    pub received: BTreeMap<OrderId, u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PlatformWrite {
    Receive { order: OrderId, amount: u64 },
}

impl PlatformTables {
    pub fn apply(&mut self, w: &PlatformWrite) {
        match *w {
            PlatformWrite::Receive { order, .. } => *self.received.entry(order).or_default() += 1,
        }
    }
}

pub fn on_event(ev: &Event, tx: &mut impl Tx) {
    if let Event::OrderConfirmed { order, amount, .. } = *ev {
        tx.write(Write::Platform(PlatformWrite::Receive { order, amount }));
    }
}
