//! The event queue: what happens next, ordered by simulated time, then by a
//! seeded tie-break, then by insertion.
//!
//! Real systems give no order to two things that happen "at once"; taking the
//! insertion order would hide every interleaving but one. The tie-break is
//! drawn from the schedule stream when an event is pushed, so equal-time
//! events are explored in seed-dependent orders, and the final sequence number
//! only makes the order total (two equal tie-breaks are astronomically rare).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A queued event with its full ordering key, so that it can move from one
/// queue to another (into the PCT scheduler's per-node lanes) unchanged.
pub struct Entry<E> {
    pub time_us: u64,
    tiebreak: u64,
    seq: u64,
    pub event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl<E> Eq for Entry<E> {}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Entry<E> {
    // Reversed: BinaryHeap is a max-heap and we want the earliest first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.key().cmp(&self.key())
    }
}
impl<E> Entry<E> {
    fn key(&self) -> (u64, u64, u64) {
        (self.time_us, self.tiebreak, self.seq)
    }
}

pub struct EventQueue<E> {
    heap: BinaryHeap<Entry<E>>,
    seq: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue { heap: BinaryHeap::new(), seq: 0 }
    }
}

impl<E> EventQueue<E> {
    pub fn push(&mut self, time_us: u64, tiebreak: u64, event: E) {
        self.seq += 1;
        self.heap.push(Entry { time_us, tiebreak, seq: self.seq, event });
    }

    /// The earliest event, with its time.
    pub fn pop(&mut self) -> Option<(u64, E)> {
        self.heap.pop().map(|e| (e.time_us, e.event))
    }

    /// The earliest event with its ordering key, to be put back unchanged
    /// with [`EventQueue::restore`] if it is not run now.
    pub fn pop_entry(&mut self) -> Option<Entry<E>> {
        self.heap.pop()
    }

    pub fn restore(&mut self, entry: Entry<E>) {
        self.heap.push(entry);
    }

    pub fn peek_time(&self) -> Option<u64> {
        self.heap.peek().map(|e| e.time_us)
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Events come out in time order whatever the push order, and among
        /// equal times in tie-break order.
        #[test]
        fn pops_in_time_then_tiebreak_order(
            items in proptest::collection::vec((0u64..50, any::<u64>()), 0..200)
        ) {
            let mut q = EventQueue::default();
            for (i, (t, tb)) in items.iter().enumerate() {
                q.push(*t, *tb, i);
            }
            let mut last: Option<(u64, u64)> = None;
            let mut n = 0;
            while let Some((t, i)) = q.pop() {
                let key = (t, items[i].1);
                if let Some(prev) = last {
                    prop_assert!(prev <= key);
                }
                last = Some(key);
                n += 1;
            }
            prop_assert_eq!(n, items.len());
        }
    }
}
