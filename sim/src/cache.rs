//! A Redis-like cache: keys with values and a time to live, on the virtual
//! clock. Volatile: a restart loses every entry, which is what makes an
//! idempotency layer built only on a cache forget keys.

use std::collections::HashMap; // deterministic: fixed hasher only

use rustc_hash::FxBuildHasher;

/// Keys are random 64-bit idempotency keys, looked up and never read in
/// order: a hash table under a hasher with no random seed, not a B-tree
/// (which allocated a node for about every other key set).
#[derive(Clone, Debug)]
pub struct Cache<V> {
    entries: HashMap<u64, (V, u64), FxBuildHasher>, // deterministic: fixed hasher
    restarts: u32,
}

impl<V> Default for Cache<V> {
    fn default() -> Self {
        Cache { entries: HashMap::with_hasher(FxBuildHasher), restarts: 0 } // deterministic: fixed hasher
    }
}

impl<V: Clone> Cache<V> {
    /// The live value of `key` at `now_us`.
    pub fn get(&self, key: u64, now_us: u64) -> Option<&V> {
        self.entries.get(&key).filter(|(_, exp)| *exp > now_us).map(|(v, _)| v)
    }

    /// Set `key` only if it has no live value (SET NX PX); true if set.
    pub fn set_nx(&mut self, key: u64, value: V, ttl_us: u64, now_us: u64) -> bool {
        if self.get(key, now_us).is_some() {
            return false;
        }
        self.entries.insert(key, (value, now_us + ttl_us));
        true
    }

    /// Set `key` whatever it held (SET PX).
    pub fn set(&mut self, key: u64, value: V, ttl_us: u64, now_us: u64) {
        self.entries.insert(key, (value, now_us + ttl_us));
    }

    pub fn delete(&mut self, key: u64) {
        self.entries.remove(&key);
    }

    /// The cache restarted: everything is gone.
    pub fn restart(&mut self) {
        self.entries.clear();
        self.restarts += 1;
    }

    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// Drop expired entries (memory only: `get` already ignores them).
    pub fn expire(&mut self, now_us: u64) {
        self.entries.retain(|_, (_, exp)| *exp > now_us);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_vanish_on_restart() {
        let mut c = Cache::default();
        assert!(c.set_nx(1, "a", 100, 0));
        assert!(!c.set_nx(1, "b", 100, 50), "a live key is not overwritten");
        assert_eq!(c.get(1, 99), Some(&"a"));
        assert_eq!(c.get(1, 100), None, "expired at its deadline");
        assert!(c.set_nx(1, "c", 100, 100), "an expired key can be taken again");
        c.restart();
        assert_eq!(c.get(1, 101), None);
    }
}
