//! Caches of compiled modules, keyed by code hash, for backends.
//!
//! [`ModuleCache`]: in memory, bounded, least recently used evicted. [`ArtifactDir`]: the
//! artifacts this node compiled itself, in its own data directory, so an evicted module or a
//! restart costs a file read instead of a compile (which a caller does not pay for in gas).
//! Neither is ever filled from the network: only code this node compiled is cached.

use std::collections::HashMap;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

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

/// The settings every backend reads from its `[vm.<name>]` section.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSettings {
    /// Compiled modules kept in memory (least recently used evicted).
    pub cache_modules: usize,
    /// Keep compiled artifacts in the node's data directory (`vm-artifacts/`), so an evicted
    /// module or a restart reloads instead of recompiling.
    pub artifacts: bool,
}

/// Modules a backend keeps compiled in memory by default.
pub const DEFAULT_CACHE_MODULES: usize = 256;

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings { cache_modules: DEFAULT_CACHE_MODULES, artifacts: true }
    }
}

impl CacheSettings {
    /// The artifact directory to use, if artifacts are on and the node gave one.
    pub fn artifact_dir(&self, ctx: &crate::VmContext) -> Option<PathBuf> {
        ctx.artifact_dir.clone().filter(|_| self.artifacts)
    }
}

/// Compiled artifacts on local disk. Each file holds the sha256 of the artifact, then the
/// artifact; a file that does not match (torn write, disk corruption) is deleted and treated
/// as missing, so it is compiled again rather than loaded. Writes are atomic (temp + rename).
/// Failures to read or write are logged and otherwise ignored: the disk cache only saves work.
#[derive(Debug, Clone)]
pub struct ArtifactDir {
    dir: PathBuf,
    /// Names the engine, its version and the instrumentation version: an artifact of another
    /// build is never even opened.
    tag: String,
}

impl ArtifactDir {
    pub fn new(dir: PathBuf, tag: &str) -> Self {
        ArtifactDir { dir, tag: format!("{tag}-i{}", super::instrument::INSTRUMENTATION_VERSION) }
    }

    fn path(&self, hash: &Hash) -> PathBuf {
        self.dir.join(format!("{}-{}.bin", self.tag, hex::encode(hash.0)))
    }

    /// The artifact stored for `hash`, if there is an intact one.
    pub fn load(&self, hash: &Hash) -> Option<Vec<u8>> {
        let path = self.path(hash);
        let bytes = std::fs::read(&path).ok()?;
        if bytes.len() >= 32 && Sha256::digest(&bytes[32..]).as_slice() == &bytes[..32] {
            return Some(bytes[32..].to_vec());
        }
        tracing::warn!(file = %path.display(), "compiled artifact does not match its checksum; deleting it and compiling again");
        let _ = std::fs::remove_file(&path);
        None
    }

    pub fn store(&self, hash: &Hash, artifact: &[u8]) {
        let path = self.path(hash);
        let tmp = path.with_extension("tmp");
        let mut bytes = Sha256::digest(artifact).to_vec();
        bytes.extend_from_slice(artifact);
        let written =
            std::fs::create_dir_all(&self.dir).and_then(|_| std::fs::write(&tmp, &bytes)).and_then(|_| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            tracing::warn!(file = %path.display(), error = %e, "could not keep a compiled artifact (it will be compiled again when needed)");
        }
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

    #[test]
    fn artifacts_round_trip_and_corrupt_ones_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let artifacts = ArtifactDir::new(dir.path().join("a"), "test");
        let hash = Hash([7; 32]);
        assert_eq!(artifacts.load(&hash), None);
        artifacts.store(&hash, b"compiled");
        assert_eq!(artifacts.load(&hash).as_deref(), Some(&b"compiled"[..]));
        let file = artifacts.path(&hash);
        let mut bytes = std::fs::read(&file).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        std::fs::write(&file, bytes).unwrap();
        assert_eq!(artifacts.load(&hash), None, "a flipped bit is caught");
        assert!(!file.exists(), "and the file removed");
        assert_eq!(ArtifactDir::new(dir.path().join("a"), "other").load(&hash), None, "another engine's tag is not read");
    }
}
