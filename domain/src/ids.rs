//! Identifiers. Orders, users and products are numbered densely from zero by
//! the workload, so tables and ledgers can index by them.

use std::collections::{HashMap, HashSet}; // deterministic: fixed hasher only

use rustc_hash::FxBuildHasher;

use serde::{Deserialize, Serialize};

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        pub struct $name(pub u32);

        impl $name {
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

id!(
    /// An order, as the client numbered it.
    OrderId
);
id!(
    /// A user (the holder of a points balance).
    UserId
);
id!(
    /// A product (price and stock).
    ProductId
);

id!(
    /// A coupon, issued to one user.
    CouponId
);

/// A client's `Idempotency-Key`: every retry of one request carries the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RequestKey(pub u64);

/// The idempotency key Payment sends to the payment gateway for one attempt
/// at an order's charge; the refund of that charge names the same key. A
/// "pay again" after a decline is a new attempt, under a new key, since the
/// PG answers a known key with its first answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PgKey(pub u64);

impl PgKey {
    pub fn of(order: OrderId) -> PgKey {
        PgKey::attempt(order, 0)
    }

    pub fn attempt(order: OrderId, attempt: u32) -> PgKey {
        PgKey((attempt as u64) << 32 | order.0 as u64)
    }
}

/// An event's identity: the id its producer gave the outbox row (or the
/// in-memory record) it was published from. Every copy of that row has it,
/// so a consumer's inbox recognises a repeat; a handler that ran twice and
/// staged two rows would give two ids, as a real outbox does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EventId(pub u64);

/// Hash tables for lookups on the hot path where no one needs the keys in
/// order, under rustc's Fx hasher: fixed, with no random seed, so a table
/// behaves the same in every run (and it is never read in hash order).
pub type FixedHashMap<K, V> = HashMap<K, V, FxBuildHasher>; // deterministic: fixed hasher
pub type FixedHashSet<K> = HashSet<K, FxBuildHasher>; // deterministic: fixed hasher

/// An empty fixed-hasher map with room for `n` entries.
#[rustfmt::skip] // keeps the determinism note at the end of the signature's line
pub fn fixed_map<K, V>(n: usize) -> FixedHashMap<K, V> { // deterministic: fixed hasher
    FixedHashMap::with_capacity_and_hasher(n, FxBuildHasher) // deterministic: fixed hasher
}

/// An id numbered densely from zero, usable as an index.
pub trait DenseId: Copy + Ord + std::fmt::Debug {
    fn index(self) -> usize;
}

macro_rules! dense {
    ($($name:ident),*) => {$(
        impl DenseId for $name {
            fn index(self) -> usize {
                self.0 as usize
            }
        }
    )*};
}
dense!(OrderId, UserId, ProductId, CouponId);

/// A client's call number.
impl DenseId for u32 {
    fn index(self) -> usize {
        self as usize
    }
}

/// A table keyed by a dense id: a slot per id, so a lookup is an index and
/// an insert allocates only when the table grows, where an ordered map
/// walks a tree and allocates nodes. It reads like the ordered map it
/// replaces: iteration is in id order, and two maps are equal when they
/// hold the same entries.
#[derive(Clone)]
pub struct IdMap<K, V> {
    slots: Vec<Option<(K, V)>>,
    len: usize,
}

impl<K, V> Default for IdMap<K, V> {
    fn default() -> Self {
        IdMap { slots: Vec::new(), len: 0 }
    }
}

impl<K: DenseId, V> IdMap<K, V> {
    pub fn new() -> Self {
        IdMap::default()
    }

    /// Room for ids below `n` up front: a table that will grow to `n`
    /// entries is not copied into a larger one as it fills (at 20,000
    /// orders a seed, each copy lands on cold memory).
    pub fn with_capacity(n: usize) -> Self {
        IdMap { slots: Vec::with_capacity(n), len: 0 }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, k: &K) -> Option<&V> {
        self.slots.get(k.index()).and_then(|s| s.as_ref()).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        self.slots.get_mut(k.index()).and_then(|s| s.as_mut()).map(|(_, v)| v)
    }

    pub fn contains_key(&self, k: &K) -> bool {
        self.get(k).is_some()
    }

    pub fn insert(&mut self, k: K, v: V) -> Option<V> {
        let i = k.index();
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, || None);
        }
        let old = self.slots[i].replace((k, v)).map(|(_, v)| v);
        self.len += usize::from(old.is_none());
        old
    }

    pub fn remove(&mut self, k: &K) -> Option<V> {
        let old = self.slots.get_mut(k.index()).and_then(Option::take).map(|(_, v)| v);
        self.len -= usize::from(old.is_some());
        old
    }

    /// The value under `k`, inserted by `f` if there is none.
    pub fn get_or_insert_with(&mut self, k: K, f: impl FnOnce() -> V) -> &mut V {
        if !self.contains_key(&k) {
            self.insert(k, f());
        }
        self.get_mut(&k).expect("just inserted")
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> {
        self.slots.iter().filter_map(|s| s.as_ref().map(|(k, v)| (k, v)))
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &K> {
        self.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> {
        self.iter().map(|(_, v)| v)
    }
}

impl<K: DenseId, V> std::ops::Index<&K> for IdMap<K, V> {
    type Output = V;
    fn index(&self, k: &K) -> &V {
        self.get(k).unwrap_or_else(|| panic!("no entry for {k:?}"))
    }
}

impl<K: DenseId, V: PartialEq> PartialEq for IdMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<K: DenseId, V: Eq> Eq for IdMap<K, V> {}

impl<K: DenseId, V: std::fmt::Debug> std::fmt::Debug for IdMap<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: DenseId, V> FromIterator<(K, V)> for IdMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut m = IdMap::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    proptest! {
        /// An id map holds what an ordered map holds, in the same order.
        #[test]
        fn an_id_map_reads_like_an_ordered_map(
            ops in proptest::collection::vec((0u8..3, 0u32..30, any::<u8>()), 0..100)
        ) {
            let mut m: IdMap<OrderId, u8> = IdMap::new();
            let mut model: BTreeMap<OrderId, u8> = BTreeMap::new();
            for (op, id, v) in ops {
                let k = OrderId(id);
                match op {
                    0 => prop_assert_eq!(m.insert(k, v), model.insert(k, v)),
                    1 => prop_assert_eq!(m.remove(&k), model.remove(&k)),
                    _ => {
                        let got = m.get_or_insert_with(k, || v);
                        *got = got.wrapping_add(1);
                        let want = model.entry(k).or_insert(v);
                        *want = want.wrapping_add(1);
                    }
                }
                prop_assert_eq!(m.len(), model.len());
                prop_assert_eq!(m.get(&k), model.get(&k));
                let a: Vec<_> = m.iter().collect();
                let b: Vec<_> = model.iter().collect();
                prop_assert_eq!(a, b);
            }
            let rebuilt: IdMap<OrderId, u8> = model.into_iter().collect();
            prop_assert_eq!(rebuilt, m);
        }
    }
}
