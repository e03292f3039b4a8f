//! A bounded cache of compiled modules, keyed by code hash, for backends.
//!
//! Holds only what this node compiled itself (a backend inserts after compiling); never
//! filled from disk or the network, so a tampered artefact can never be run. Evicts the least
//! recently used entry when full.

use std::collections::HashMap;

use parking_lot::Mutex;

use crate::types::Hash;

pub struct ModuleCache<T: Clone> {
    capacity: usize,
    inner: Mutex<Inner<T>>,
}

struct Inner<T> {
    entries: HashMap<Hash, (T, u64)>,
    clock: u64,
}

impl<T: Clone> ModuleCache<T> {
    /// Modules kept at most (at least one).
    pub fn new(capacity: usize) -> Self {
        ModuleCache { capacity: capacity.max(1), inner: Mutex::new(Inner { entries: HashMap::new(), clock: 0 }) }
    }

    pub fn get(&self, hash: &Hash) -> Option<T> {
        let mut inner = self.inner.lock();
        inner.clock += 1;
        let now = inner.clock;
        inner.entries.get_mut(hash).map(|(module, used)| {
            *used = now;
            module.clone()
        })
    }

    pub fn contains(&self, hash: &Hash) -> bool {
        self.inner.lock().entries.contains_key(hash)
    }

    pub fn insert(&self, hash: Hash, module: T) {
        let mut inner = self.inner.lock();
        inner.clock += 1;
        let now = inner.clock;
        if !inner.entries.contains_key(&hash) && inner.entries.len() >= self.capacity {
            if let Some(oldest) = inner.entries.iter().min_by_key(|(_, (_, used))| *used).map(|(h, _)| *h) {
                inner.entries.remove(&oldest);
            }
        }
        inner.entries.insert(hash, (module, now));
    }

    pub fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used() {
        let cache = ModuleCache::new(2);
        let (a, b, c) = (Hash([1; 32]), Hash([2; 32]), Hash([3; 32]));
        cache.insert(a, 1);
        cache.insert(b, 2);
        assert_eq!(cache.get(&a), Some(1)); // a is now newer than b
        cache.insert(c, 3);
        assert!(cache.contains(&a) && cache.contains(&c) && !cache.contains(&b));
        assert_eq!(cache.len(), 2);
    }
}
