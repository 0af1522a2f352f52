//! The client: submits each order when it arrives, and retries on timeout
//! with the same order id (capped exponential backoff with full jitter) until
//! the system answers. It never gives up: in the heal phase every order gets
//! through.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::OrderId;
use crate::message::{Msg, PlaceOrder};
use crate::ports::ClientPort;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// A call unanswered this long has timed out.
    pub timeout_us: u64,
    pub backoff_base_us: u64,
    pub backoff_cap_us: u64,
}

/// An order and when the client submits it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Arrival {
    pub at_us: u64,
    pub order: PlaceOrder,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timer {
    Arrival(u32),
    Timeout { order: u32, attempt: u32 },
    Resend { order: u32, attempt: u32 },
}

impl Timer {
    fn tag(self) -> u64 {
        let (kind, attempt, order) = match self {
            Timer::Arrival(i) => (0u64, 0u32, i),
            Timer::Timeout { order, attempt } => (1, attempt, order),
            Timer::Resend { order, attempt } => (2, attempt, order),
        };
        kind << 62 | (attempt as u64) << 32 | order as u64
    }

    fn from_tag(tag: u64) -> Timer {
        let (order, attempt) = (tag as u32, ((tag >> 32) & 0x3fff_ffff) as u32);
        match tag >> 62 {
            0 => Timer::Arrival(order),
            1 => Timer::Timeout { order, attempt },
            2 => Timer::Resend { order, attempt },
            k => panic!("unknown client timer kind {k}"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Client {
    policy: RetryPolicy,
    arrivals: Vec<Arrival>,
    /// Orders sent and not yet answered, with their attempt number.
    waiting: BTreeMap<OrderId, u32>,
    submitted: usize,
    pub retries: u64,
}

impl Client {
    pub fn new(policy: RetryPolicy, arrivals: Vec<Arrival>) -> Client {
        Client { policy, arrivals, waiting: BTreeMap::new(), submitted: 0, retries: 0 }
    }

    /// Schedule every arrival.
    pub fn start(&mut self, port: &mut impl ClientPort) {
        let now = port.now_us();
        for (i, a) in self.arrivals.iter().enumerate() {
            port.set_timer(a.at_us.saturating_sub(now), Timer::Arrival(i as u32).tag());
        }
    }

    /// Every order submitted and answered.
    pub fn is_idle(&self) -> bool {
        self.submitted == self.arrivals.len() && self.waiting.is_empty()
    }

    fn send(&mut self, i: u32, attempt: u32, port: &mut impl ClientPort) {
        let order = self.arrivals[i as usize].order;
        self.waiting.insert(order.order, attempt);
        port.send(Msg::Place(order));
        port.set_timer(self.policy.timeout_us, Timer::Timeout { order: i, attempt }.tag());
    }

    pub fn on_timer(&mut self, tag: u64, port: &mut impl ClientPort) {
        match Timer::from_tag(tag) {
            Timer::Arrival(i) => {
                self.submitted += 1;
                self.send(i, 0, port);
            }
            Timer::Timeout { order, attempt } => {
                let id = self.arrivals[order as usize].order.order;
                if self.waiting.get(&id) == Some(&attempt) {
                    let exp = self.policy.backoff_base_us.saturating_mul(1 << attempt.min(20));
                    let wait = port.jitter_us(exp.min(self.policy.backoff_cap_us));
                    port.set_timer(wait, Timer::Resend { order, attempt: attempt + 1 }.tag());
                }
            }
            Timer::Resend { order, attempt } => {
                let id = self.arrivals[order as usize].order.order;
                if self.waiting.get(&id) == Some(&(attempt - 1)) {
                    self.retries += 1;
                    self.send(order, attempt, port);
                }
            }
        }
    }

    /// The system answered (whether it took the order or refused it).
    pub fn on_reply(&mut self, order: OrderId) {
        self.waiting.remove(&order);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_tags_round_trip() {
        for t in [
            Timer::Arrival(7),
            Timer::Timeout { order: 3, attempt: 9 },
            Timer::Resend { order: u32::MAX, attempt: 1 },
        ] {
            assert_eq!(Timer::from_tag(t.tag()), t);
        }
    }
}
