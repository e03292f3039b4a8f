//! Memory of signatures and certificates already verified, so a QC or TC that arrives again
//! (in a proposal, a timeout, a fetch answer) costs a hash lookup instead of a pairing check,
//! and a proposal's VRF proof and signature are checked once.
//!
//! Entries map a key to the verified statement's output (a VRF output; empty for
//! signatures and certificates).
//!
//! Entries are keyed by the certificate's exact bytes **and** the committee it was checked
//! against, so a cache shared between engines of different validator sets can never vouch for
//! a certificate under the wrong set. Sharing is sound for the same reason a single engine's
//! memory is: verification is a pure function of (bytes, committee). The node gives each
//! engine its own cache; the simulator may hand one cache to all the validators it runs, which
//! then verify each certificate once instead of once each (the run's cost is then closer to
//! one validator's, which is what lets hundreds of runs fit in CI). Only certificates an engine
//! verified go in: a QC it aggregated itself stays in its own memory (`formed_here`), so the
//! others check it rather than trust its collector.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aether_primitives::types::Hash;

/// Entries kept before the cache forgets everything and starts again (bounded memory).
const MAX_ENTRIES: usize = 4_096;

/// Verified statements by key; clones share the same memory.
#[derive(Clone, Debug, Default)]
pub struct VerifiedCache(Arc<Mutex<HashMap<Hash, Vec<u8>>>>);

impl VerifiedCache {
    pub fn new() -> VerifiedCache {
        VerifiedCache::default()
    }

    /// The key of certificate `bytes` (tagged by `kind`) checked against `committee`.
    pub fn key(kind: &[u8], committee: &Hash, bytes: &[u8]) -> Hash {
        Hash::digest_parts(b"aether/hotstuff-verified/v1", &[kind, &committee.0, bytes])
    }

    pub fn contains(&self, key: &Hash) -> bool {
        self.0.lock().map(|map| map.contains_key(key)).unwrap_or(false)
    }

    /// The output remembered for `key`, if it was verified.
    pub fn output(&self, key: &Hash) -> Option<Vec<u8>> {
        self.0.lock().ok().and_then(|map| map.get(key).cloned())
    }

    pub fn insert(&self, key: Hash) {
        self.insert_output(key, Vec::new());
    }

    pub fn insert_output(&self, key: Hash, output: Vec<u8>) {
        if let Ok(mut map) = self.0.lock() {
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
            map.insert(key, output);
        }
    }

    pub fn len(&self) -> usize {
        self.0.lock().map(|set| set.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
