//! The event queue: what happens next, ordered by simulated time, then by a
//! seeded tie-break, then by insertion.
//!
//! Real systems give no order to two things that happen "at once"; taking the
//! insertion order would hide every interleaving but one. The tie-break is
//! drawn from the schedule stream when an event is pushed, so equal-time
//! events are explored in seed-dependent orders, and the final sequence number
//! only makes the order total (two equal 32-bit tie-breaks at one time are rare,
//! and then the earlier push goes first).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A queued event with its full ordering key, so that it can move from one
/// queue to another (into the PCT scheduler's per-node lanes) unchanged.
pub struct Entry<E> {
    pub time_us: u64,
    order: u64,
    pub event: E,
}

/// What the heap orders: 24 bytes whatever the event's size, so a pop
/// moves small keys down the heap and the event stays in its slot.
#[derive(Clone, Copy)]
struct Key {
    time_us: u64,
    /// The tie-break's high 32 bits above the push sequence's low 32: one
    /// comparison orders equal times by tie-break, then by insertion.
    order: u64,
    slot: u32,
}

impl Key {
    /// Time, then tie-break and sequence, as one number: one comparison.
    #[inline]
    fn rank(&self) -> u128 {
        (self.time_us as u128) << 64 | self.order as u128
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.rank() == other.rank()
    }
}
impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    // Reversed: BinaryHeap is a max-heap and we want the earliest first.
    // (A 4-ary heap of these keys was tried: it took 15 % more
    // instructions per pop than std's binary heap, which sifts to the
    // bottom and back up.)
    fn cmp(&self, other: &Self) -> Ordering {
        other.rank().cmp(&self.rank())
    }
}

/// The queue: small keys in a binary heap, events in slots beside it whose
/// free ones are reused, so a run in its steady state allocates nothing here.
pub struct EventQueue<E> {
    heap: BinaryHeap<Key>,
    slots: Vec<Option<E>>,
    free: Vec<u32>,
    seq: u32,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue { heap: BinaryHeap::new(), slots: Vec::new(), free: Vec::new(), seq: 0 }
    }
}

impl<E> EventQueue<E> {
    pub fn push(&mut self, time_us: u64, tiebreak: u64, event: E) {
        self.seq = self.seq.wrapping_add(1);
        let order = (tiebreak >> 32) << 32 | self.seq as u64;
        self.insert(time_us, order, event);
    }

    fn insert(&mut self, time_us: u64, order: u64, event: E) {
        let slot = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(event);
                i
            }
            None => {
                self.slots.push(Some(event));
                (self.slots.len() - 1) as u32
            }
        };
        self.heap.push(Key { time_us, order, slot });
    }

    /// The earliest event, with its time.
    pub fn pop(&mut self) -> Option<(u64, E)> {
        self.pop_entry().map(|e| (e.time_us, e.event))
    }

    /// The earliest event with its ordering key, to be put back unchanged
    /// with [`EventQueue::restore`] if it is not run now.
    pub fn pop_entry(&mut self) -> Option<Entry<E>> {
        let k = self.heap.pop()?;
        let event = self.slots[k.slot as usize].take().expect("a queued key has its event");
        self.free.push(k.slot);
        Some(Entry { time_us: k.time_us, order: k.order, event })
    }

    pub fn restore(&mut self, entry: Entry<E>) {
        self.insert(entry.time_us, entry.order, entry.event);
    }

    pub fn peek_time(&self) -> Option<u64> {
        self.heap.peek().map(|k| k.time_us)
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
            let mut last: Option<(u64, u64, usize)> = None;
            let mut n = 0;
            while let Some((t, i)) = q.pop() {
                // Among equal tie-breaks (their high 32 bits), insertion order.
                let key = (t, items[i].1 >> 32, i);
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
