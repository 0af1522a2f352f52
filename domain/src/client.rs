//! The client: sends each submission when it arrives, with its idempotency
//! key, and retries on timeout, and after an "in progress" answer, with the
//! same key (capped exponential backoff with full jitter) until it has a
//! final answer. It never gives up: in the heal phase every submission gets
//! through.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::RequestKey;
use crate::message::{Msg, Request, Response};
use crate::ports::ClientPort;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// A call unanswered this long has timed out.
    pub timeout_us: u64,
    pub backoff_base_us: u64,
    pub backoff_cap_us: u64,
}

/// A submission: when the client sends it, under which key, asking what.
/// Several submissions may share a key: a double click sends the same request
/// twice, a buggy client reuses a key for another request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Arrival {
    pub at_us: u64,
    pub key: RequestKey,
    pub req: Request,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timer {
    Arrival(u32),
    Timeout { id: u32, attempt: u32 },
    Resend { id: u32, attempt: u32 },
}

impl Timer {
    fn tag(self) -> u64 {
        let (kind, attempt, id) = match self {
            Timer::Arrival(i) => (0u64, 0u32, i),
            Timer::Timeout { id, attempt } => (1, attempt, id),
            Timer::Resend { id, attempt } => (2, attempt, id),
        };
        kind << 62 | (attempt as u64 & 0x3fff_ffff) << 32 | id as u64
    }

    fn from_tag(tag: u64) -> Timer {
        let (id, attempt) = (tag as u32, ((tag >> 32) & 0x3fff_ffff) as u32);
        match tag >> 62 {
            0 => Timer::Arrival(id),
            1 => Timer::Timeout { id, attempt },
            2 => Timer::Resend { id, attempt },
            k => panic!("unknown client timer kind {k}"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Client {
    policy: RetryPolicy,
    arrivals: Vec<Arrival>,
    /// Submissions sent and not yet finally answered, with their attempt.
    waiting: BTreeMap<u32, u32>,
    /// The final answer to each submission.
    pub answers: Vec<Option<Response>>,
    submitted: usize,
    pub retries: u64,
}

impl Client {
    pub fn new(policy: RetryPolicy, arrivals: Vec<Arrival>) -> Client {
        let answers = vec![None; arrivals.len()];
        Client { policy, arrivals, waiting: BTreeMap::new(), answers, submitted: 0, retries: 0 }
    }

    pub fn arrivals(&self) -> &[Arrival] {
        &self.arrivals
    }

    /// Schedule every arrival.
    pub fn start(&mut self, port: &mut impl ClientPort) {
        let now = port.now_us();
        for (i, a) in self.arrivals.iter().enumerate() {
            port.set_timer(a.at_us.saturating_sub(now), Timer::Arrival(i as u32).tag());
        }
    }

    /// Every submission sent and finally answered.
    pub fn is_idle(&self) -> bool {
        self.submitted == self.arrivals.len() && self.waiting.is_empty()
    }

    fn send(&mut self, id: u32, attempt: u32, port: &mut impl ClientPort) {
        let a = self.arrivals[id as usize];
        self.waiting.insert(id, attempt);
        port.send(Msg::Submit { id, key: a.key, req: a.req });
        port.set_timer(self.policy.timeout_us, Timer::Timeout { id, attempt }.tag());
    }

    fn back_off(&mut self, id: u32, attempt: u32, port: &mut impl ClientPort) {
        let exp = self.policy.backoff_base_us.saturating_mul(1 << attempt.min(20));
        let wait = port.jitter_us(exp.min(self.policy.backoff_cap_us));
        port.set_timer(wait, Timer::Resend { id, attempt: attempt + 1 }.tag());
    }

    pub fn on_timer(&mut self, tag: u64, port: &mut impl ClientPort) {
        match Timer::from_tag(tag) {
            Timer::Arrival(id) => {
                self.submitted += 1;
                self.send(id, 0, port);
            }
            Timer::Timeout { id, attempt } => {
                if self.waiting.get(&id) == Some(&attempt) {
                    self.back_off(id, attempt, port);
                }
            }
            Timer::Resend { id, attempt } => {
                if self.waiting.get(&id) == Some(&(attempt - 1)) {
                    self.retries += 1;
                    self.send(id, attempt, port);
                }
            }
        }
    }

    /// The gateway answered submission `id`.
    pub fn on_answer(&mut self, id: u32, response: Response, port: &mut impl ClientPort) {
        let Some(&attempt) = self.waiting.get(&id) else { return };
        if response.is_final() {
            self.waiting.remove(&id);
            self.answers[id as usize] = Some(response);
        } else {
            // "In progress": ask again later. Bumping the attempt retires the
            // pending timeout.
            self.waiting.insert(id, attempt + 1);
            self.back_off(id, attempt + 1, port);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_tags_round_trip() {
        for t in [
            Timer::Arrival(7),
            Timer::Timeout { id: 3, attempt: 9 },
            Timer::Resend { id: u32::MAX, attempt: 1 },
        ] {
            assert_eq!(Timer::from_tag(t.tag()), t);
        }
    }
}
