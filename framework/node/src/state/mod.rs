//! Authenticated state: every state entry (today: accounts) is a leaf of a Jellyfish Merkle
//! tree ([`jmt`]), versioned by block height, stored through the [`KvStore`] like everything
//! else. The root of version `h` is the `state_root` of the header at height `h`.
//!
//! What this gives: roots that depend only on the entries (never on the backend), proofs of
//! presence and absence for any retained height, export and import of the state at a height
//! (snapshots), and pruning of versions older than a window.
//!
//! What it is not: the execution cache. The ledger reads the head state from the flat
//! `accounts` column (one point read per account) and writes both copies in the block's batch.
//!
//! # Verifying a proof without a node
//! ```
//! use aether_node::state::{self, StateProof};
//! use aether_primitives::types::{Account, Address};
//! let alice = Address([1; 20]);
//! let account = Account { balance: 5, ..Account::default() };
//! // A tree holding only alice; a node would return (root, proof) from aether_getAccountProof.
//! let (root, proof) = state::prove_in_memory(&[(state::account_key(&alice), borsh::to_vec(&account).unwrap())], &state::account_key(&alice)).unwrap();
//! state::verify_account_proof(&root, &alice, Some(&account), &proof).unwrap();
//! let forged = Account { balance: 6, ..account.clone() };
//! assert!(state::verify_account_proof(&root, &alice, Some(&forged), &proof).is_err(), "a proof fixes the value");
//! assert!(state::verify_account_proof(&root, &alice, None, &proof).is_err(), "and that the key is present");
//! ```
//!
//! # Storage layout
//! - `state_nodes`: borsh(node key) -> borsh(node).
//! - `state_values`: key hash ++ `!version` (big-endian) -> borsh(`Option<value>`) (`None` is a
//!   deletion), so a forward seek from `key_hash ++ !v` lands on the value as of version `v`.
//! - `state_stale`: `stale_since` (BE) ++ tag ++ entry -> empty. Tag 0: a tree node no longer
//!   reachable from versions `>= stale_since`; tag 1: a value entry superseded at `stale_since`.
//! - `state_preimages`: key hash -> key.
//! - `meta/state_oldest`: the oldest version still retained (pruning moves it up).

pub mod chunks;
mod proof;
mod prune;
mod tree_store;

use std::collections::BTreeMap;
use std::sync::Arc;

use jmt::storage::TreeUpdateBatch;
use jmt::{JellyfishMerkleTree, KeyHash};
use sha2::Sha256;

use crate::codec;
use crate::storage::{columns, KvRead, StorageError, WriteBatch};
use crate::types::{Address, Hash};

pub use proof::{prove_in_memory, verify_account_proof, verify_proof, ProofError, StateProof};
pub use prune::{prune_state_step, PruneReport};
#[cfg(test)]
use tree_store::MemoryTree;
use tree_store::{value_key, TreeStore};

/// A state version: the height of the block that produced it (genesis is 0).
pub type Version = u64;

type Tree<'a, R> = JellyfishMerkleTree<'a, R, Sha256>;

pub(crate) const META_STATE_OLDEST: &[u8] = b"state_oldest";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("state at height {requested} was pruned; the oldest height available is {oldest}")]
    Pruned { requested: Version, oldest: Version },
    #[error("state at height {requested} does not exist yet; the newest is {newest}")]
    Future { requested: Version, newest: Version },
    #[error("authenticated state is corrupt: {0}")]
    Corrupt(String),
}

fn tree_error(e: anyhow::Error) -> StateError {
    // jmt reports storage failures through anyhow; ours are wrapped, so recover them.
    match e.downcast::<StorageError>() {
        Ok(s) => StateError::Storage(s),
        Err(e) => StateError::Corrupt(format!("{e:#}")),
    }
}

/// The state key of an account: a one-byte kind tag, then the address. Later kinds (contract
/// storage) use other tags, so keys of different kinds never collide.
pub fn account_key(address: &Address) -> Vec<u8> {
    let mut k = Vec::with_capacity(21);
    k.push(b'a');
    k.extend_from_slice(&address.0);
    k
}

/// The state key of one entry of a contract's storage.
pub fn storage_key(contract: &Address, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(21 + key.len());
    k.push(b's');
    k.extend_from_slice(&contract.0);
    k.extend_from_slice(key);
    k
}

/// The state key of deployed code (the value is the code).
pub fn code_key(hash: &Hash) -> Vec<u8> {
    let mut k = Vec::with_capacity(33);
    k.push(b'c');
    k.extend_from_slice(&hash.0);
    k
}

/// Where the flat (unauthenticated, fast-read) copy of a state entry lives: its column and key.
pub fn flat_location(key: &[u8]) -> Option<(crate::storage::Column, Vec<u8>)> {
    match key {
        [b'a', rest @ ..] if rest.len() == 20 => Some((crate::storage::columns::ACCOUNTS, rest.to_vec())),
        [b's', rest @ ..] if rest.len() >= 20 => Some((crate::storage::columns::CONTRACT_STORAGE, rest.to_vec())),
        [b'c', rest @ ..] if rest.len() == 32 => Some((crate::storage::columns::CODE, rest.to_vec())),
        _ => None,
    }
}

/// The address of an account key, `None` for keys of other kinds.
pub fn account_address(key: &[u8]) -> Option<Address> {
    match key {
        [b'a', rest @ ..] => rest.try_into().ok().map(Address),
        _ => None,
    }
}

/// The tree position of a state key.
pub fn key_hash(key: &[u8]) -> KeyHash {
    KeyHash::with::<Sha256>(key)
}

/// The changes one block makes to the tree, computed but not yet written.
#[derive(Debug)]
pub struct StateDelta {
    pub version: Version,
    pub root: Hash,
    pub(crate) batch: TreeUpdateBatch,
    pub(crate) preimages: Vec<(KeyHash, Vec<u8>)>,
}

/// Computes version `version` of the tree by applying `updates` (key, new value or `None` to
/// delete) to version `version - 1`, which is either committed in `store` or the last of
/// `pending` (uncommitted ancestors, oldest first, consecutive versions).
///
/// Pre: `version - 1` exists (committed and retained, or pending); `version` is not committed.
pub fn compute_delta(
    store: &dyn KvRead,
    pending: &[Arc<StateDelta>],
    version: Version,
    updates: impl IntoIterator<Item = (Vec<u8>, Option<Vec<u8>>)>,
) -> Result<StateDelta, StateError> {
    let reader = TreeStore::new(store, pending);
    let mut preimages = Vec::new();
    // Sorted and deduplicated by key hash (jmt requires one update per key per version).
    let mut set = BTreeMap::new();
    for (key, value) in updates {
        let kh = key_hash(&key);
        preimages.push((kh, key));
        set.insert(kh, value);
    }
    let (root, batch) = put_set(&reader, set, version)?;
    Ok(StateDelta { version, root: Hash(root.0), batch, preimages })
}

/// Applies `set` (sorted, one update per key) as version `version` of the tree `reader` holds.
pub(crate) fn put_set<R: jmt::storage::TreeReader>(
    reader: &R,
    set: BTreeMap<KeyHash, Option<Vec<u8>>>,
    version: Version,
) -> Result<(jmt::RootHash, TreeUpdateBatch), StateError> {
    let tree = Tree::new(reader);
    if !set.is_empty() && set.values().all(Option::is_some) {
        // Inserts and updates only: jmt's batch insertion visits each tree node once for the
        // whole set instead of once per key (the gain is measured in docs/storage.md). The tree,
        // and so the root, is the same either way: a JMT's shape depends only on its entries.
        let values = set.into_iter().filter_map(|(kh, v)| v.map(|v| (kh, v))).collect();
        let (mut roots, batch) = tree.batch_put_value_sets(vec![values], None, version).map_err(tree_error)?;
        let root = roots.pop().ok_or_else(|| StateError::Corrupt("the tree returned no root for a value set".into()))?;
        Ok((root, batch))
    } else {
        // jmt's batch insertion cannot delete, and an empty set must still make a version.
        tree.put_value_set(set, version).map_err(tree_error)
    }
}

/// Adds `delta` to `batch`: tree nodes, values, preimages, and the stale index pruning uses.
///
/// Pre: `delta.version - 1` is committed in `store` (deltas are written in version order).
pub fn write_delta(store: &dyn KvRead, delta: &StateDelta, batch: &mut WriteBatch) -> Result<(), StateError> {
    for (version, kh) in delta.batch.node_batch.values().keys() {
        // The entry this one supersedes becomes stale at this version.
        if *version > 0 {
            if let Some(previous) = tree_store::latest_value_version(store, kh, version - 1)? {
                batch.put(columns::STATE_STALE, prune::stale_value_key(*version, kh, previous), Vec::new());
            }
        }
    }
    for stale in &delta.batch.stale_node_index_batch {
        batch.put(columns::STATE_STALE, prune::stale_node_key(stale.stale_since_version, &stale.node_key), Vec::new());
    }
    put_tree_entries(delta, batch);
    Ok(())
}

/// The delta's nodes, values and key preimages (everything but the stale index).
fn put_tree_entries(delta: &StateDelta, batch: &mut WriteBatch) {
    put_node_batch(&delta.batch.node_batch, batch);
    for (kh, key) in &delta.preimages {
        batch.put(columns::STATE_PREIMAGES, kh.0.to_vec(), key.clone());
    }
}

/// A jmt node batch's tree nodes and values, in their columns.
fn put_node_batch(nodes: &jmt::storage::NodeBatch, batch: &mut WriteBatch) {
    for (key, node) in nodes.nodes() {
        batch.put(columns::STATE_NODES, codec::encode(key), codec::encode(node));
    }
    for ((version, kh), value) in nodes.values() {
        batch.put(columns::STATE_VALUES, value_key(kh, *version), codec::encode(value));
    }
}

/// The oldest retained version (0 unless pruned or restored from a snapshot).
pub fn oldest_version(store: &dyn KvRead) -> Result<Version, StateError> {
    match store.get(columns::META, META_STATE_OLDEST)? {
        Some(b) => codec::decode("state oldest version", &b, 8).map_err(|e| StateError::Corrupt(e.to_string())),
        None => Ok(0),
    }
}

/// Checks that `version` is retained, given the newest committed version.
pub fn check_retained(store: &dyn KvRead, version: Version, newest: Version) -> Result<(), StateError> {
    if version > newest {
        return Err(StateError::Future { requested: version, newest });
    }
    let oldest = oldest_version(store)?;
    if version < oldest {
        return Err(StateError::Pruned { requested: version, oldest });
    }
    Ok(())
}

/// The root of committed version `version`.
pub fn root_at(store: &dyn KvRead, version: Version) -> Result<Hash, StateError> {
    let reader = TreeStore::new(store, &[]);
    let root = Tree::new(&reader).get_root_hash(version).map_err(tree_error)?;
    Ok(Hash(root.0))
}

/// The value of `key` at committed version `version` with a proof against that version's root.
/// Pre: `version` is retained ([`check_retained`]).
pub fn get_with_proof(store: &dyn KvRead, key: &[u8], version: Version) -> Result<(Option<Vec<u8>>, StateProof), StateError> {
    let reader = TreeStore::new(store, &[]);
    let (value, proof) = Tree::new(&reader).get_with_proof(key_hash(key), version).map_err(tree_error)?;
    Ok((value, StateProof(proof)))
}

/// A state entry: `(key, value)`.
pub type Entry = (Vec<u8>, Vec<u8>);

/// Every `(key, value)` of committed version `version`, in key-hash order.
/// Pre: `version` is retained.
pub fn entries_at<'a>(store: &'a dyn KvRead, version: Version) -> Result<impl Iterator<Item = Result<Entry, StateError>> + 'a, StateError> {
    // jmt's iterator takes its reader by `Arc`; this one never leaves the calling thread.
    #[allow(clippy::arc_with_non_send_sync)]
    let reader = Arc::new(TreeStore::new(store, &[]));
    let iter = jmt::JellyfishMerkleIterator::new(reader, version, KeyHash([0; 32])).map_err(tree_error)?;
    Ok(iter.map(move |item| {
        let (kh, value) = item.map_err(tree_error)?;
        let key = store
            .get(columns::STATE_PREIMAGES, &kh.0)?
            .ok_or_else(|| StateError::Corrupt(format!("no preimage stored for key hash {}", hex::encode(kh.0))))?;
        Ok((key, value))
    }))
}

/// The root of a tree holding exactly `entries`, computed in memory (genesis, snapshot
/// checks, recomputation from scratch).
/// Memory: the entries' key hashes and values, plus one batch of tree nodes (never the tree).
/// A key given twice takes its last value.
pub fn root_of<'a>(entries: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Hash {
    tree_store::streamed_root(entries.into_iter().map(|(k, v)| (key_hash(k), v.to_vec())))
}

/// Writes `entries` as version `version` of an empty tree, for a store restored from a
/// snapshot: versions before `version` never existed there. Returns the root.
pub fn restore_at(
    store: &dyn KvRead,
    version: Version,
    entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    batch: &mut WriteBatch,
) -> Result<Hash, StateError> {
    let reader = TreeStore::restoring(store, version);
    let mut set = BTreeMap::new();
    let mut preimages = Vec::new();
    for (k, v) in entries {
        let kh = key_hash(&k);
        set.insert(kh, Some(v));
        preimages.push((kh, k));
    }
    let (root, tree_batch) = put_set(&reader, set, version)?;
    let delta = StateDelta { version, root: Hash(root.0), batch: tree_batch, preimages };
    // Nothing older exists in a restored store, so nothing is stale yet.
    put_tree_entries(&delta, batch);
    batch.put(columns::META, META_STATE_OLDEST, codec::encode(&version));
    Ok(delta.root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The streamed root (sorted batches, old versions dropped) is the one-pass root.
    #[test]
    fn the_streamed_root_is_the_one_pass_root() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for n in [0usize, 1, 2, 4_095, 4_096, 4_097, 20_000] {
            let entries: Vec<(Vec<u8>, Vec<u8>)> =
                (0..n).map(|_| (rng.gen::<[u8; 12]>().to_vec(), rng.gen::<[u8; 9]>().to_vec())).collect();
            let mut tree = MemoryTree::default();
            let one_pass = tree.put(0, entries.iter().map(|(k, v)| (key_hash(k), Some(v.clone()))));
            assert_eq!(root_of(entries.iter().map(|(k, v)| (k.as_slice(), v.as_slice()))), one_pass, "{n} entries");
        }
    }

    /// The batch insertion `put_set` uses for update-only blocks must give exactly the tree the
    /// one-key-at-a-time insertion gives: the same root at every version.
    #[test]
    fn batch_insertion_gives_the_same_roots_as_per_key_insertion() {
        let mut tree = MemoryTree::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for version in 0..30u64 {
            let keys = if version == 0 { 500 } else { rng.gen_range(1..80) };
            let mut set = BTreeMap::new();
            for _ in 0..keys {
                let k: u16 = rng.gen_range(0..700);
                // Every seventh version deletes some keys (the per-key path); others only write.
                let value = if version % 7 == 6 && k % 3 == 0 { None } else { Some(rng.gen::<[u8; 8]>().to_vec()) };
                set.insert(key_hash(&k.to_be_bytes()), value);
            }
            let (per_key_root, _) = Tree::new(&tree).put_value_set(set.clone(), version).unwrap();
            let root = tree.put(version, set);
            assert_eq!(root, Hash(per_key_root.0), "version {version}");
        }
    }
}
