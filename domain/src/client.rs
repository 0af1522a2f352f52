//! The client: sends each submission when it arrives, with its idempotency
//! key, and retries on timeout, and after an "in progress" answer, with the
//! same key (capped exponential backoff with full jitter) until it has a
//! final answer. It never gives up: in the heal phase every submission gets
//! through.
//!
//! It keeps one timer for arrivals (the next one's) and one for timeouts
//! (the earliest outstanding call's, re-armed when it fires), not one per
//! submission: a timeout that finds its call answered costs nothing, and
//! the host's queue holds two client timers, not hundreds.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::ids::{IdMap, RequestKey};
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
    /// The earliest call deadline is due (see `Client::deadlines`).
    Timeout,
    Resend {
        id: u32,
        attempt: u32,
    },
}

impl Timer {
    fn tag(self) -> u64 {
        let (kind, attempt, id) = match self {
            Timer::Arrival(i) => (0u64, 0u32, i),
            Timer::Timeout => (1, 0, 0),
            Timer::Resend { id, attempt } => (2, attempt, id),
        };
        kind << 62 | (attempt as u64 & 0x3fff_ffff) << 32 | id as u64
    }

    fn from_tag(tag: u64) -> Timer {
        let (id, attempt) = (tag as u32, ((tag >> 32) & 0x3fff_ffff) as u32);
        match tag >> 62 {
            0 => Timer::Arrival(id),
            1 => Timer::Timeout,
            2 => Timer::Resend { id, attempt },
            k => panic!("unknown client timer kind {k}"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Client {
    policy: RetryPolicy,
    arrivals: Vec<Arrival>,
    /// Submissions sent and not yet finally answered, with their attempt
    /// and, while a call is out, when it times out.
    waiting: IdMap<u32, (u32, Option<u64>)>,
    /// The calls out, by when they time out: (deadline, id).
    deadlines: BTreeSet<(u64, u32)>,
    /// When the one timeout timer pending fires, if one is.
    timeout_timer: Option<u64>,
    /// The final answer to each submission.
    pub answers: Vec<Option<Response>>,
    submitted: usize,
    pub retries: u64,
}

impl Client {
    pub fn new(policy: RetryPolicy, arrivals: Vec<Arrival>) -> Client {
        let answers = vec![None; arrivals.len()];
        Client {
            policy,
            arrivals,
            waiting: IdMap::new(),
            deadlines: BTreeSet::new(),
            timeout_timer: None,
            answers,
            submitted: 0,
            retries: 0,
        }
    }

    pub fn arrivals(&self) -> &[Arrival] {
        &self.arrivals
    }

    /// Schedule the first arrival; each arrival schedules the next.
    pub fn start(&mut self, port: &mut impl ClientPort) {
        self.schedule_arrival(0, port);
    }

    fn schedule_arrival(&mut self, i: usize, port: &mut impl ClientPort) {
        if let Some(a) = self.arrivals.get(i) {
            let wait = a.at_us.saturating_sub(port.now_us());
            port.set_timer(wait, Timer::Arrival(i as u32).tag());
        }
    }

    /// Set the timeout timer for the earliest deadline, unless one is
    /// pending: a pending timer that fires before its call's deadline (that
    /// call was answered) sets the next one then.
    fn arm_timeout(&mut self, port: &mut impl ClientPort) {
        if self.timeout_timer.is_some() {
            return;
        }
        if let Some(&(at, _)) = self.deadlines.first() {
            self.timeout_timer = Some(at);
            port.set_timer(at.saturating_sub(port.now_us()), Timer::Timeout.tag());
        }
    }

    /// Submission `id`'s call is no longer out (answered, or timed out).
    fn call_over(&mut self, id: u32) {
        if let Some((_, deadline)) = self.waiting.get_mut(&id) {
            if let Some(at) = deadline.take() {
                self.deadlines.remove(&(at, id));
            }
        }
    }

    /// Every submission sent and finally answered.
    pub fn is_idle(&self) -> bool {
        self.submitted == self.arrivals.len() && self.waiting.is_empty()
    }

    fn send(&mut self, id: u32, attempt: u32, port: &mut impl ClientPort) {
        let a = self.arrivals[id as usize];
        self.call_over(id);
        let at = port.now_us() + self.policy.timeout_us;
        self.waiting.insert(id, (attempt, Some(at)));
        self.deadlines.insert((at, id));
        port.send(Msg::Submit { id, key: a.key, req: a.req });
        self.arm_timeout(port);
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
                self.schedule_arrival(id as usize + 1, port);
            }
            Timer::Timeout => {
                self.timeout_timer = None;
                let now = port.now_us();
                while let Some(&(at, id)) = self.deadlines.first().filter(|(at, _)| *at <= now) {
                    self.deadlines.remove(&(at, id));
                    if let Some((attempt, deadline)) = self.waiting.get_mut(&id) {
                        *deadline = None;
                        let attempt = *attempt;
                        self.back_off(id, attempt, port);
                    }
                }
                self.arm_timeout(port);
            }
            Timer::Resend { id, attempt } => {
                if self.waiting.get(&id).map(|w| w.0) == Some(attempt - 1) {
                    self.retries += 1;
                    self.send(id, attempt, port);
                }
            }
        }
    }

    /// The gateway answered submission `id`.
    pub fn on_answer(&mut self, id: u32, response: Response, port: &mut impl ClientPort) {
        let Some(&(attempt, _)) = self.waiting.get(&id) else { return };
        self.call_over(id);
        if response.is_final() {
            self.waiting.remove(&id);
            self.answers[id as usize] = Some(response);
        } else {
            // "In progress": ask again later. Bumping the attempt retires
            // any resend already pending.
            self.waiting.insert(id, (attempt + 1, None));
            self.back_off(id, attempt + 1, port);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{OrderId, ProductId, UserId};

    /// A host whose clock the test sets, and that keeps the timers set.
    #[derive(Default)]
    struct Host {
        now: u64,
        timers: Vec<(u64, u64)>,
        sent: u32,
    }

    impl ClientPort for Host {
        fn now_us(&self) -> u64 {
            self.now
        }
        fn send(&mut self, _: Msg) {
            self.sent += 1;
        }
        fn set_timer(&mut self, delay_us: u64, tag: u64) {
            self.timers.push((self.now + delay_us, tag));
        }
        fn jitter_us(&mut self, max_us: u64) -> u64 {
            max_us
        }
    }

    /// One timeout timer serves every call: it fires at the earliest
    /// deadline, skips a call answered meanwhile, re-arms for the next,
    /// and a call unanswered at its deadline times out then, not before.
    #[test]
    fn one_timeout_timer_serves_every_call_and_each_times_out_at_its_deadline() {
        let req =
            Request { user: UserId(0), product: ProductId(0), qty: 1, coupon: None, points: 0 };
        let arrivals = (0..2).map(|i| Arrival { at_us: i * 10, key: RequestKey(i), req }).collect();
        let policy = RetryPolicy { timeout_us: 100, backoff_base_us: 5, backoff_cap_us: 5 };
        let (mut c, mut h) = (Client::new(policy, arrivals), Host::default());
        c.start(&mut h);
        assert_eq!(h.timers, vec![(0, Timer::Arrival(0).tag())], "only the next arrival");
        c.on_timer(Timer::Arrival(0).tag(), &mut h);
        h.now = 10;
        c.on_timer(Timer::Arrival(1).tag(), &mut h);
        let timeouts = |h: &Host| h.timers.iter().filter(|t| t.1 == Timer::Timeout.tag()).count();
        assert_eq!(timeouts(&h), 1, "one timeout timer for two calls");
        h.now = 50;
        c.on_answer(0, Response::Accepted { order: OrderId(0) }, &mut h);
        h.now = 100;
        c.on_timer(Timer::Timeout.tag(), &mut h);
        assert_eq!(h.timers.last(), Some(&(110, Timer::Timeout.tag())), "re-armed for call 1");
        assert_eq!(c.retries, 0);
        h.now = 110;
        c.on_timer(Timer::Timeout.tag(), &mut h);
        let resend = Timer::Resend { id: 1, attempt: 1 }.tag();
        assert_eq!(h.timers.last(), Some(&(115, resend)), "call 1 timed out at its deadline");
        h.now = 115;
        c.on_timer(resend, &mut h);
        assert_eq!((c.retries, h.sent), (1, 3));
    }

    #[test]
    fn timer_tags_round_trip() {
        for t in [Timer::Arrival(7), Timer::Timeout, Timer::Resend { id: u32::MAX, attempt: 1 }] {
            assert_eq!(Timer::from_tag(t.tag()), t);
        }
    }
}
