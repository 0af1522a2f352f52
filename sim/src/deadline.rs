//! A deadline re-armed in place: a fetch session's or a producer's timeout
//! keeps at most one timer event pending, however often it is moved.
//!
//! A timeout set per delivery (or per batch sent) puts one event on the
//! queue each time, and nearly all of them find their batch long confirmed.
//! Here moving the deadline later only records the new time: the pending
//! timer, when it fires early, puts itself back at the new time. Moving it
//! earlier (or forgetting it at a reset) bumps a generation number that the
//! pending timer carries, so that timer is known stale the moment it pops,
//! with nothing looked up. Either way a timeout fires at exactly the time
//! the latest arming asked for, and never while it is disarmed.

/// What a timer event carries: the generation its deadline had when it was
/// pushed.
pub type Generation = u32;

/// A timer event to push: when, and the generation it carries.
pub type Timer = (u64, Generation);

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deadline {
    /// When the guarded thing times out, if it is armed.
    due: Option<u64>,
    /// The time of the one timer event pending for this deadline.
    pending: Option<u64>,
    generation: Generation,
}

/// What a timer event finds when it pops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fired {
    /// Nothing is due now: the event is dropped.
    Stale,
    /// The deadline moved later: push the timer again at this time, with
    /// this generation.
    Rearm(u64, Generation),
    /// The deadline is due now (and is disarmed).
    Due,
}

impl Deadline {
    /// Arm the deadline for `at`. Returns the timer event to push, if one
    /// must be: none when a timer already pending fires no later than `at`.
    #[must_use]
    pub fn arm(&mut self, at: u64) -> Option<Timer> {
        self.due = Some(at);
        match self.pending {
            Some(p) if p <= at => None,
            Some(_) => {
                // Earlier than the pending timer: that one goes stale.
                self.generation = self.generation.wrapping_add(1);
                self.pending = Some(at);
                Some((at, self.generation))
            }
            None => {
                self.pending = Some(at);
                Some((at, self.generation))
            }
        }
    }

    /// Nothing is guarded any more; a pending timer will find nothing due.
    pub fn disarm(&mut self) {
        self.due = None;
    }

    /// The generation a timer pushed now would carry.
    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// When it is due, if armed.
    pub fn due(&self) -> Option<u64> {
        self.due
    }

    /// A timer event of `generation` runs at `now` (its time, or later
    /// under a scheduler that delays events).
    #[must_use]
    pub fn fire(&mut self, now: u64, generation: Generation) -> Fired {
        if generation != self.generation || self.pending.is_none() {
            return Fired::Stale;
        }
        self.pending = None;
        match self.due {
            Some(at) if at > now => {
                self.pending = Some(at);
                Fired::Rearm(at, self.generation)
            }
            Some(_) => {
                self.due = None;
                Fired::Due
            }
            None => Fired::Stale,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BinaryHeap;

    #[derive(Clone, Debug)]
    enum Op {
        /// Time passes by this much (timers due meanwhile fire).
        Wait(u64),
        /// A delivery or a heartbeat: due this long from now.
        Arm(u64),
        /// The batch was acknowledged.
        Ack,
        /// The owner crashed: its deadline is forgotten, as a node's
        /// volatile state is (a new one starts from its default).
        Crash,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u64..300).prop_map(Op::Wait),
            4 => (0u64..200).prop_map(Op::Arm),
            2 => Just(Op::Ack),
            1 => Just(Op::Crash),
        ]
    }

    proptest! {
        /// Against a model that keeps only "due at", over random arming,
        /// acknowledgements and crashes: a timeout fires exactly when the
        /// latest arming said and the model has it due, never while
        /// disarmed, never before a deadline moved later, and at most one
        /// timer event of the current generation is ever pending (a
        /// deadline moved earlier leaves its old timer stale).
        #[test]
        fn a_rearmed_deadline_fires_exactly_when_the_latest_arming_said(
            ops in proptest::collection::vec(op(), 1..120)
        ) {
            // Timer events: (Reverse(time), incarnation, generation).
            let mut heap: BinaryHeap<std::cmp::Reverse<(u64, u32, Generation)>> = BinaryHeap::new();
            let (mut d, mut incarnation, mut now) = (Deadline::default(), 0u32, 0u64);
            let mut model: Option<u64> = None;
            let mut fired = Vec::new();
            let mut expected = Vec::new();
            let run_until = |until: u64,
                                 heap: &mut BinaryHeap<std::cmp::Reverse<(u64, u32, Generation)>>,
                                 d: &mut Deadline,
                                 model: &mut Option<u64>,
                                 incarnation: u32,
                                 fired: &mut Vec<u64>,
                                 expected: &mut Vec<u64>| {
                while let Some(&std::cmp::Reverse((t, inc, g))) = heap.peek() {
                    if t > until {
                        break;
                    }
                    heap.pop();
                    if let Some(m) = *model {
                        if m < t {
                            expected.push(m);
                            *model = None;
                        }
                    }
                    if inc != incarnation {
                        continue; // a crashed incarnation's timer
                    }
                    match d.fire(t, g) {
                        Fired::Stale => {}
                        Fired::Rearm(at, g) => {
                            prop_assert!(at > t);
                            heap.push(std::cmp::Reverse((at, inc, g)));
                        }
                        Fired::Due => fired.push(t),
                    }
                    if *model == Some(t) {
                        expected.push(t);
                        *model = None;
                    }
                    let current = |e: &&std::cmp::Reverse<(u64, u32, Generation)>| {
                        e.0 .1 == incarnation && e.0 .2 == d.generation()
                    };
                    prop_assert!(heap.iter().filter(current).count() <= 1, "one live timer at most");
                }
                if let Some(m) = *model {
                    if m <= until {
                        expected.push(m);
                        *model = None;
                    }
                }
                Ok(())
            };
            for o in ops {
                match o {
                    Op::Wait(dt) => {
                        run_until(now + dt, &mut heap, &mut d, &mut model, incarnation, &mut fired, &mut expected)?;
                        now += dt;
                    }
                    Op::Arm(dt) => {
                        if let Some((at, g)) = d.arm(now + dt) {
                            heap.push(std::cmp::Reverse((at, incarnation, g)));
                        }
                        model = Some(now + dt);
                    }
                    Op::Ack => {
                        d.disarm();
                        model = None;
                    }
                    Op::Crash => {
                        d = Deadline::default();
                        incarnation += 1;
                        model = None;
                    }
                }
                prop_assert_eq!(d.due(), model);
            }
            run_until(u64::MAX, &mut heap, &mut d, &mut model, incarnation, &mut fired, &mut expected)?;
            prop_assert_eq!(fired, expected);
        }
    }

    #[test]
    fn a_deadline_moved_earlier_makes_the_pending_timer_stale() {
        let mut d = Deadline::default();
        assert_eq!(d.arm(100), Some((100, 0)));
        assert_eq!(d.arm(150), None, "later: the pending timer re-arms itself");
        assert_eq!(d.fire(100, 0), Fired::Rearm(150, 0));
        assert_eq!(d.arm(120), Some((120, 1)), "earlier: a new timer, a new generation");
        assert_eq!(d.fire(150, 0), Fired::Stale);
        assert_eq!(d.fire(120, 1), Fired::Due);
        assert_eq!(d.due(), None);
    }
}
