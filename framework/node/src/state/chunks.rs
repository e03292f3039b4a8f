//! The state at one version in chunks: served in key-hash order, each chunk with a range proof
//! against the version's root, and rebuilt from such chunks with bounded memory (state sync).
//!
//! A chunk is checked on arrival: its keys must follow the previous chunk's in key-hash order,
//! and together with everything received before, its range proof must give the expected root.
//! Only then are its entries written. Memory is one chunk plus one partial tree node per level
//! (jmt's [`JellyfishMerkleRestore`] freezes and hands over every finished subtree), never the
//! whole state.
//!
//! ```
//! use aether_node::state::{self, chunks};
//! use aether_storage_memory::MemoryStore;
//! use aether_api::storage::{Durability, KvStore, WriteBatch};
//! // A served version: 100 entries written as version 0 of a store.
//! let served = MemoryStore::new();
//! let entries: Vec<_> = (0u32..100).map(|i| (i.to_be_bytes().to_vec(), vec![1; 8])).collect();
//! let mut batch = WriteBatch::default();
//! let root = state::restore_at(&served, 0, entries.clone(), &mut batch).unwrap();
//! served.write(batch, Durability::Synced).unwrap();
//! // A new store rebuilt from chunks of 30 entries.
//! let fresh = MemoryStore::new();
//! let mut restore = chunks::ChunkedRestore::new(0, root);
//! let mut after = None;
//! loop {
//!     let chunk = chunks::read_chunk(&served, 0, after, 30, 1 << 20).unwrap();
//!     let mut batch = WriteBatch::default();
//!     after = restore.add_chunk(chunk.entries, &chunk.proof, &mut batch).unwrap();
//!     fresh.write(batch, Durability::Buffered).unwrap();
//!     if chunk.last { break; }
//! }
//! let mut batch = WriteBatch::default();
//! restore.finish(&mut batch).unwrap();
//! fresh.write(batch, Durability::Synced).unwrap();
//! assert_eq!(state::root_at(&fresh, 0).unwrap(), root);
//! ```

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use jmt::proof::SparseMerkleRangeProof;
use jmt::restore::{JellyfishMerkleRestore, StateSnapshotReceiver};
use jmt::storage::{NodeBatch, TreeWriter};
use jmt::{KeyHash, RootHash};
use parking_lot::Mutex;
use sha2::Sha256;

use super::tree_store::TreeStore;
use super::{flat_location, key_hash, tree_error, Entry, StateError, Tree, Version, META_STATE_OLDEST};
use crate::codec;
use crate::storage::{columns, KvRead, WriteBatch};
use crate::types::Hash;

/// Most entries in one chunk.
pub const MAX_CHUNK_ENTRIES: usize = 4_096;
/// Most bytes of keys and values in one chunk (a single larger entry is still sent alone).
pub const MAX_CHUNK_BYTES: usize = 1024 * 1024;
/// Upper bound on an encoded range proof: at most 256 right siblings of at most 65 bytes.
pub const MAX_RANGE_PROOF_BYTES: usize = 256 * 65 + 16;

/// One chunk as served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChunk {
    /// Entries in key-hash order.
    pub entries: Vec<Entry>,
    /// The range proof of the last entry (borsh), empty when `entries` is.
    pub proof: Vec<u8>,
    /// No entry follows this chunk's last (the server's word; the rebuilt root is what proves it).
    pub last: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    #[error("the chunk is empty but the state has entries after key hash {after}")]
    Empty { after: String },
    #[error("the chunk's keys are not in increasing key-hash order after the previous chunk")]
    OutOfOrder,
    #[error("the chunk holds {entries} entries, more than the {MAX_CHUNK_ENTRIES} allowed")]
    TooMany { entries: usize },
    #[error("the chunk's range proof is malformed: {0}")]
    MalformedProof(String),
    #[error("the chunk does not prove against the state root: {0}")]
    Mismatch(String),
    #[error("the rebuilt state has root {computed}, the header says {expected} (the state ended early or was altered)")]
    RootMismatch { computed: Hash, expected: Hash },
    #[error(transparent)]
    State(#[from] StateError),
}

/// The key hash just after `kh`, `None` after the last possible one.
fn successor(kh: [u8; 32]) -> Option<[u8; 32]> {
    let mut next = kh;
    for byte in next.iter_mut().rev() {
        if *byte == u8::MAX {
            *byte = 0;
        } else {
            *byte += 1;
            return Some(next);
        }
    }
    None
}

/// Reads the chunk of committed version `version` that follows key hash `after` (from the
/// first entry when `None`): at most `max_entries` entries and `max_bytes` bytes of them (at
/// least one), with the range proof of its last entry.
///
/// Pre: `version` is retained ([`super::check_retained`]).
pub fn read_chunk(
    store: &dyn KvRead,
    version: Version,
    after: Option<[u8; 32]>,
    max_entries: usize,
    max_bytes: usize,
) -> Result<StateChunk, StateError> {
    let start = match after {
        None => [0; 32],
        Some(kh) => match successor(kh) {
            Some(next) => next,
            None => return Ok(StateChunk { entries: vec![], proof: vec![], last: true }),
        },
    };
    // jmt's iterator takes its reader by `Arc`; this one never leaves the calling thread.
    #[allow(clippy::arc_with_non_send_sync)]
    let reader = Arc::new(TreeStore::new(store, &[]));
    let mut iter = jmt::JellyfishMerkleIterator::new(reader.clone(), version, KeyHash(start)).map_err(tree_error)?.peekable();
    let mut entries = Vec::new();
    let mut bytes = 0;
    let mut last_kh = None;
    while entries.len() < max_entries.max(1) {
        let Some(item) = iter.peek() else { break };
        let size = match item {
            Ok((_, value)) => value.len() + 64,
            Err(_) => 0,
        };
        if !entries.is_empty() && bytes + size > max_bytes {
            break;
        }
        let (kh, value) =
            iter.next().ok_or_else(|| StateError::Corrupt("the state iterator ended after a peek".into()))?.map_err(tree_error)?;
        let key = store
            .get(columns::STATE_PREIMAGES, &kh.0)?
            .ok_or_else(|| StateError::Corrupt(format!("no preimage stored for key hash {}", hex::encode(kh.0))))?;
        bytes += size;
        last_kh = Some(kh);
        entries.push((key, value));
    }
    let last = iter.peek().is_none();
    let proof = match last_kh {
        Some(kh) => codec::encode(&Tree::new(reader.as_ref()).get_range_proof(kh, version).map_err(tree_error)?),
        None => Vec::new(),
    };
    Ok(StateChunk { entries, proof, last })
}

/// Collects the tree nodes jmt's restore hands over, for the caller's next batch.
#[derive(Default)]
struct NodeSink(Mutex<Vec<NodeBatch>>);

impl TreeWriter for NodeSink {
    fn write_node_batch(&self, node_batch: &NodeBatch) -> anyhow::Result<()> {
        self.0.lock().push(node_batch.clone());
        Ok(())
    }
}

impl NodeSink {
    fn drain_into(&self, batch: &mut WriteBatch) {
        for nodes in self.0.lock().drain(..) {
            super::put_node_batch(&nodes, batch);
        }
    }
}

/// Rebuilds version `version` of the state, whose root is `root`, from chunks in order, into
/// a store that holds no state yet.
pub struct ChunkedRestore {
    restore: Option<JellyfishMerkleRestore<Sha256>>,
    sink: Arc<NodeSink>,
    version: Version,
    /// The key hash of the last entry added: the next chunk starts after it.
    last_key: Option<[u8; 32]>,
    entries: u64,
}

impl ChunkedRestore {
    pub fn new(version: Version, root: Hash) -> ChunkedRestore {
        let sink = Arc::new(NodeSink::default());
        let restore = JellyfishMerkleRestore::new_overwrite(sink.clone(), version, RootHash(root.0)).ok();
        ChunkedRestore { restore, sink, version, last_key: None, entries: 0 }
    }

    /// Entries added so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Checks `entries` (the next chunk) and its range `proof` against the root, then adds
    /// their writes to `batch`: tree nodes finished so far, values, key preimages and the flat
    /// copies. Returns the key hash the next chunk starts after.
    ///
    /// On an error nothing is added to `batch`, but this restore is spent: start again.
    pub fn add_chunk(&mut self, entries: Vec<Entry>, proof: &[u8], batch: &mut WriteBatch) -> Result<Option<[u8; 32]>, ChunkError> {
        if entries.is_empty() {
            return Err(ChunkError::Empty { after: self.last_key.map(hex::encode).unwrap_or_else(|| "(start)".into()) });
        }
        if entries.len() > MAX_CHUNK_ENTRIES {
            return Err(ChunkError::TooMany { entries: entries.len() });
        }
        if proof.len() > MAX_RANGE_PROOF_BYTES {
            return Err(ChunkError::MalformedProof(format!("{} bytes, more than any range proof needs", proof.len())));
        }
        let proof: SparseMerkleRangeProof<Sha256> = borsh::from_slice(proof).map_err(|e| ChunkError::MalformedProof(e.to_string()))?;
        let hashes: Vec<KeyHash> = entries.iter().map(|(key, _)| key_hash(key)).collect();
        let in_order = hashes.first().is_some_and(|first| self.last_key.is_none_or(|last| first.0 > last))
            && hashes.windows(2).all(|pair| pair[0] < pair[1]);
        if !in_order {
            self.restore = None;
            return Err(ChunkError::OutOfOrder);
        }
        let hashed: Vec<(KeyHash, Vec<u8>)> = hashes.iter().zip(&entries).map(|(kh, (_, value))| (*kh, value.clone())).collect();
        let Some(restore) = self.restore.as_mut() else {
            return Err(ChunkError::Mismatch("an earlier chunk failed; this restore must start again".into()));
        };
        // jmt asserts its own invariants while adding; a panic on peer data is a bad chunk.
        let added = std::panic::catch_unwind(AssertUnwindSafe(|| restore.add_chunk(hashed, proof)));
        match added {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                self.restore = None;
                return Err(ChunkError::Mismatch(format!("{e:#}")));
            }
            Err(_) => {
                self.restore = None;
                return Err(ChunkError::Mismatch("the chunk broke the tree's invariants".into()));
            }
        }
        self.sink.drain_into(batch);
        self.last_key = hashes.last().map(|kh| kh.0);
        for (kh, (key, value)) in hashes.into_iter().zip(entries) {
            if let Some((column, flat_key)) = flat_location(&key) {
                batch.put(column, flat_key, value);
            }
            batch.put(columns::STATE_PREIMAGES, kh.0.to_vec(), key);
            self.entries += 1;
        }
        Ok(self.last_key)
    }

    /// Writes the last tree nodes (up to the root) into `batch`, with the state's oldest
    /// version. The caller writes the batch, then checks [`super::root_at`] against the root
    /// ([`ChunkedRestore::check_root`]): a state that ended early gives another root.
    pub fn finish(mut self, batch: &mut WriteBatch) -> Result<(), ChunkError> {
        let restore =
            self.restore.take().ok_or_else(|| ChunkError::Mismatch("an earlier chunk failed; this restore must start again".into()))?;
        restore.finish().map_err(|e| ChunkError::Mismatch(format!("{e:#}")))?;
        self.sink.drain_into(batch);
        batch.put(columns::META, META_STATE_OLDEST, codec::encode(&self.version));
        Ok(())
    }

    /// After [`ChunkedRestore::finish`]'s batch is written: the rebuilt root is the expected one.
    pub fn check_root(store: &dyn KvRead, version: Version, expected: Hash) -> Result<(), ChunkError> {
        let computed = super::root_at(store, version)?;
        if computed != expected {
            return Err(ChunkError::RootMismatch { computed, expected });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Durability, KvStore};
    use aether_storage_memory::MemoryStore;

    fn served(n: u32) -> (MemoryStore, Hash) {
        let store = MemoryStore::new();
        let entries: Vec<_> =
            (0..n).map(|i| (crate::state::account_key(&crate::types::Address([i as u8; 20])), i.to_le_bytes().to_vec())).collect();
        let entries: Vec<_> = if n > 256 { (0..n).map(|i| (i.to_be_bytes().to_vec(), vec![i as u8; 40])).collect() } else { entries };
        let mut batch = WriteBatch::default();
        let root = crate::state::restore_at(&store, 7, entries, &mut batch).unwrap();
        store.write(batch, Durability::Synced).unwrap();
        (store, root)
    }

    /// Rebuilds version 7 of `from` into a new store in chunks of `size`, passing each chunk
    /// through `tamper` first.
    fn rebuild(
        from: &MemoryStore,
        root: Hash,
        size: usize,
        mut tamper: impl FnMut(usize, &mut StateChunk),
    ) -> Result<MemoryStore, ChunkError> {
        let fresh = MemoryStore::new();
        let mut restore = ChunkedRestore::new(7, root);
        let mut after = None;
        for i in 0.. {
            let mut chunk = read_chunk(from, 7, after, size, MAX_CHUNK_BYTES).unwrap();
            tamper(i, &mut chunk);
            let mut batch = WriteBatch::default();
            after = restore.add_chunk(chunk.entries, &chunk.proof, &mut batch)?;
            fresh.write(batch, Durability::Buffered).unwrap();
            if chunk.last {
                break;
            }
        }
        let mut batch = WriteBatch::default();
        restore.finish(&mut batch)?;
        fresh.write(batch, Durability::Synced).unwrap();
        ChunkedRestore::check_root(&fresh, 7, root)?;
        Ok(fresh)
    }

    #[test]
    fn chunks_rebuild_the_same_state_and_tree() {
        for (n, size) in [(1, 10), (2, 1), (100, 7), (3_000, 500)] {
            let (store, root) = served(n);
            let fresh = rebuild(&store, root, size, |_, _| {}).unwrap();
            let theirs: Vec<Entry> = crate::state::entries_at(&store, 7).unwrap().map(Result::unwrap).collect();
            let ours: Vec<Entry> = crate::state::entries_at(&fresh, 7).unwrap().map(Result::unwrap).collect();
            assert_eq!(ours, theirs, "{n} entries in chunks of {size}");
            // The rebuilt tree takes the next version like the original.
            let update = vec![(theirs[0].0.clone(), Some(vec![9; 3]))];
            let a = crate::state::compute_delta(&store, &[], 8, update.clone()).unwrap();
            let b = crate::state::compute_delta(&fresh, &[], 8, update).unwrap();
            assert_eq!(a.root, b.root);
        }
    }

    #[test]
    fn an_altered_value_is_refused() {
        let (store, root) = served(100);
        let e = rebuild(&store, root, 30, |i, c| {
            if i == 1 {
                c.entries[3].1[0] ^= 1
            }
        })
        .err()
        .unwrap();
        assert!(matches!(e, ChunkError::Mismatch(_)), "{e}");
    }

    #[test]
    fn a_dropped_entry_is_refused() {
        let (store, root) = served(100);
        let e = rebuild(&store, root, 30, |i, c| {
            if i == 2 {
                c.entries.remove(5);
            }
        })
        .err()
        .unwrap();
        assert!(matches!(e, ChunkError::Mismatch(_)), "{e}");
    }

    #[test]
    fn a_state_that_ends_early_gives_another_root() {
        let (store, root) = served(100);
        let e = rebuild(&store, root, 30, |i, c| c.last |= i == 1).err().unwrap();
        assert!(matches!(e, ChunkError::RootMismatch { .. }), "{e}");
    }

    #[test]
    fn reordered_entries_and_junk_proofs_are_refused() {
        let (store, root) = served(100);
        let e = rebuild(&store, root, 30, |i, c| {
            if i == 1 {
                c.entries.swap(0, 1)
            }
        })
        .err()
        .unwrap();
        assert!(matches!(e, ChunkError::OutOfOrder), "{e}");
        let e = rebuild(&store, root, 30, |_, c| c.proof = vec![0xff; 40]).err().unwrap();
        assert!(matches!(e, ChunkError::MalformedProof(_)), "{e}");
    }
}
