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

use std::collections::VecDeque;

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
    /// The calls out, by when they time out: (deadline, id), sorted. A
    /// call answered stays until it reaches the front and is dropped there
    /// (its `waiting` deadline no longer matches). Why not a B-tree: every
    /// call's deadline is its send time plus the one timeout, so nearly
    /// every insert goes at the back and every removal is at the front,
    /// and a B-tree allocated a node for about every other call.
    deadlines: VecDeque<(u64, u32)>,
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
        let waiting = IdMap::with_capacity(arrivals.len());
        Client {
            policy,
            arrivals,
            waiting,
            deadlines: VecDeque::new(),
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
        self.drop_answered();
        if let Some(&(at, _)) = self.deadlines.front() {
            self.timeout_timer = Some(at);
            port.set_timer(at.saturating_sub(port.now_us()), Timer::Timeout.tag());
        }
    }

    /// Submission `id`'s call is no longer out (answered, or timed out);
    /// its entry in `deadlines` is now stale.
    fn call_over(&mut self, id: u32) {
        if let Some((_, deadline)) = self.waiting.get_mut(&id) {
            *deadline = None;
        }
    }

    /// Whether `deadlines` entry (at, id) is a call still out.
    fn is_out(&self, (at, id): (u64, u32)) -> bool {
        self.waiting.get(&id).is_some_and(|&(_, deadline)| deadline == Some(at))
    }

    /// Drop the stale entries at the front of `deadlines`.
    fn drop_answered(&mut self) {
        while let Some(&first) = self.deadlines.front() {
            if self.is_out(first) {
                return;
            }
            self.deadlines.pop_front();
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
        // In (deadline, id) order; at the back but for ties on the deadline.
        let i = self.deadlines.partition_point(|&e| e <= (at, id));
        self.deadlines.insert(i, (at, id));
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
                while let Some(&(at, id)) = self.deadlines.front().filter(|(at, _)| *at <= now) {
                    self.deadlines.pop_front();
                    // An answered call's entry is stale: its deadline moved on.
                    let Some((attempt, deadline)) =
                        self.waiting.get_mut(&id).filter(|(_, d)| *d == Some(at))
                    else {
                        continue;
                    };
                    *deadline = None;
                    let attempt = *attempt;
                    self.back_off(id, attempt, port);
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

    proptest::proptest! {
        /// Under any mix of arrivals, answers (final or "in progress") and
        /// timer firings, every call still out at its deadline times out
        /// exactly then, no answered call ever does, and whenever a call is
        /// out the one timeout timer is pending no later than the earliest
        /// deadline (re-armed to exactly it each time it fires).
        #[test]
        fn calls_time_out_at_their_deadlines_and_only_then(
            gaps in proptest::collection::vec(0u64..40, 1..12),
            ops in proptest::collection::vec((0u8..3, 0u64..60, 0usize..12), 0..120),
        ) {
            let req =
                Request { user: UserId(0), product: ProductId(0), qty: 1, coupon: None, points: 0 };
            let mut at = 0;
            let arrivals: Vec<Arrival> = gaps.iter().enumerate().map(|(i, g)| {
                at += g;
                Arrival { at_us: at, key: RequestKey(i as u64), req }
            }).collect();
            let n = arrivals.len();
            let policy = RetryPolicy { timeout_us: 100, backoff_base_us: 7, backoff_cap_us: 30 };
            let (mut c, mut h) = (Client::new(policy, arrivals), Host::default());
            c.start(&mut h);
            for (op, wait, pick) in ops {
                // The deadline of each call out, from the client's own record.
                let out = |c: &Client| -> Vec<(u64, u32)> {
                    (0..n as u32).filter_map(|id| c.waiting.get(&id).and_then(|w| w.1).map(|d| (d, id))).collect()
                };
                if let Some(&earliest) = out(&c).iter().map(|(d, _)| d).min() {
                    proptest::prop_assert!(c.timeout_timer.is_some_and(|t| t <= earliest));
                }
                match op {
                    // Fire the earliest timer set (time moves to it).
                    0 | 1 if !h.timers.is_empty() => {
                        let i = (0..h.timers.len()).min_by_key(|&i| h.timers[i]).unwrap();
                        let (t, tag) = h.timers.remove(i);
                        h.now = h.now.max(t);
                        let before = out(&c);
                        let due: Vec<u32> =
                            before.iter().filter(|&&(d, _)| d <= h.now).map(|&(_, id)| id).collect();
                        let fires_timeout = tag == Timer::Timeout.tag();
                        c.on_timer(tag, &mut h);
                        if fires_timeout {
                            // Each due call timed out now: a resend is set.
                            for id in due {
                                proptest::prop_assert_eq!(c.waiting.get(&id).and_then(|w| w.1), None);
                                let attempt = c.waiting.get(&id).unwrap().0 + 1;
                                let resend = Timer::Resend { id, attempt }.tag();
                                proptest::prop_assert!(h.timers.iter().any(|t| t.1 == resend));
                            }
                            // No call times out before its deadline.
                            let after = out(&c);
                            for call in before.iter().filter(|&&(d, _)| d > h.now) {
                                proptest::prop_assert!(after.contains(call));
                            }
                            let earliest = after.iter().map(|(d, _)| *d).min();
                            proptest::prop_assert_eq!(c.timeout_timer, earliest);
                        }
                    }
                    // Answer a call out, before its deadline (time moves on).
                    _ => {
                        let calls = out(&c);
                        if calls.is_empty() {
                            continue;
                        }
                        let (deadline, id) = calls[pick % calls.len()];
                        h.now = (h.now + wait).min(deadline - 1).max(h.now);
                        let response = if wait % 3 == 0 {
                            Response::InProgress
                        } else {
                            Response::Accepted { order: OrderId(id) }
                        };
                        let resends_before = h.timers.len();
                        c.on_answer(id, response, &mut h);
                        proptest::prop_assert_eq!(c.waiting.get(&id).and_then(|w| w.1), None);
                        proptest::prop_assert!(h.timers.len() <= resends_before + 1);
                    }
                }
            }
        }
    }

    #[test]
    fn timer_tags_round_trip() {
        for t in [Timer::Arrival(7), Timer::Timeout, Timer::Resend { id: u32::MAX, attempt: 1 }] {
            assert_eq!(Timer::from_tag(t.tag()), t);
        }
    }
}
