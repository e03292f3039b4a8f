//! jmt's storage interface over a [`KvRead`], with uncommitted versions layered on top.

use std::collections::HashMap;
use std::sync::Arc;

use jmt::storage::{LeafNode, Node, NodeKey, TreeReader};
use jmt::{KeyHash, OwnedValue};

use super::{StateDelta, Tree, Version};
use crate::codec;
use crate::storage::{columns, KvRead, StorageError};
use crate::types::Hash;

/// `key_hash ++ !version`: newer versions sort first, so a seek finds the latest `<= v`.
pub(crate) fn value_key(kh: &KeyHash, version: Version) -> Vec<u8> {
    let mut k = Vec::with_capacity(40);
    k.extend_from_slice(&kh.0);
    k.extend_from_slice(&(!version).to_be_bytes());
    k
}

fn decode_err(what: &str, e: impl std::fmt::Display) -> StorageError {
    StorageError::Backend { backend: "state", reason: format!("stored {what} is corrupt: {e}") }
}

/// The newest stored entry of `kh` at or below `max_version`: its version and value record.
fn latest_value(store: &dyn KvRead, kh: &KeyHash, max_version: Version) -> Result<Option<(Version, Option<OwnedValue>)>, StorageError> {
    let mut iter = store.scan_prefix_from(columns::STATE_VALUES, &kh.0, &value_key(kh, max_version))?;
    match iter.next() {
        None => Ok(None),
        Some(item) => {
            let (k, v) = item?;
            let inverted: [u8; 8] = k[32..].try_into().map_err(|_| decode_err("state value key", format!("{} bytes", k.len())))?;
            let value: Option<OwnedValue> = codec::decode("state value", &v, usize::MAX).map_err(|e| decode_err("state value", e))?;
            Ok(Some((!u64::from_be_bytes(inverted), value)))
        }
    }
}

pub(crate) fn latest_value_version(store: &dyn KvRead, kh: &KeyHash, max_version: Version) -> Result<Option<Version>, StorageError> {
    Ok(latest_value(store, kh, max_version)?.map(|(v, _)| v))
}

/// Reads committed tree data from `store`, and uncommitted versions from `pending`.
pub(crate) struct TreeStore<'a> {
    store: &'a dyn KvRead,
    /// Oldest first.
    pending: &'a [Arc<StateDelta>],
    /// When restoring version `v` into an empty store, version `v - 1` reads as an empty tree.
    restoring: Option<Version>,
}

impl<'a> TreeStore<'a> {
    pub(crate) fn new(store: &'a dyn KvRead, pending: &'a [Arc<StateDelta>]) -> Self {
        TreeStore { store, pending, restoring: None }
    }
    pub(crate) fn restoring(store: &'a dyn KvRead, version: Version) -> Self {
        TreeStore { store, pending: &[], restoring: Some(version) }
    }
}

impl TreeReader for TreeStore<'_> {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        if let Some(v) = self.restoring {
            if v > 0 && node_key.version() == v - 1 && node_key.nibble_path().num_nibbles() == 0 {
                return Ok(Some(Node::Null));
            }
        }
        for delta in self.pending.iter().rev() {
            if let Some(node) = delta.batch.node_batch.get_node(node_key) {
                return Ok(Some(node.clone()));
            }
        }
        match self.store.get(columns::STATE_NODES, &codec::encode(node_key))? {
            None => Ok(None),
            Some(bytes) => Ok(Some(codec::decode("state node", &bytes, usize::MAX).map_err(|e| decode_err("state node", e))?)),
        }
    }

    fn get_value_option(&self, max_version: Version, key_hash: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        for delta in self.pending.iter().rev() {
            if delta.version <= max_version {
                if let Some(value) = delta.batch.node_batch.values().get(&(delta.version, key_hash)) {
                    return Ok(value.clone());
                }
            }
        }
        Ok(latest_value(self.store, &key_hash, max_version)?.and_then(|(_, value)| value))
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        // Only jmt's chunked state-sync restore asks for this; Aether restores a snapshot in
        // one pass (`restore_at`) and never calls it.
        anyhow::bail!("get_rightmost_leaf is not supported by Aether's state store")
    }
}

/// The root of the tree holding `entries` (any order), holding the entries but never the whole
/// tree: entries are sorted by key hash and inserted in batches as consecutive versions. Each batch's keys follow every key
/// already in, so inserting it reads only the path to the rightmost leaf, which the previous
/// batch rewrote: every node older than the newest version can be dropped. The root is the
/// one-pass root (a JMT's shape and hashes depend only on its entries, not on versions).
pub(crate) fn streamed_root(entries: impl IntoIterator<Item = (KeyHash, OwnedValue)>) -> Hash {
    const BATCH: usize = 4_096;
    // Sorted by key hash, one value per key (the last given, as `compute_delta` keeps).
    let sorted: Vec<(KeyHash, OwnedValue)> = entries.into_iter().collect::<std::collections::BTreeMap<_, _>>().into_iter().collect();
    if sorted.is_empty() {
        return MemoryTree::default().put(0, std::iter::empty());
    }
    let mut tree = MemoryTree::default();
    let mut root = Hash::default();
    for (version, batch) in sorted.chunks(BATCH).enumerate() {
        let version = version as Version;
        let set: std::collections::BTreeMap<_, _> = batch.iter().map(|(k, v)| (*k, Some(v.clone()))).collect();
        #[allow(clippy::expect_used)] // reads of an in-memory tree cannot fail
        let (r, update) = super::put_set(&tree, set, version).expect("an in-memory tree cannot fail to read");
        // Only this version's nodes are read by the next batch, and they are all in `update`.
        tree.nodes.clear();
        tree.nodes.extend(update.node_batch.nodes().iter().map(|(k, n)| (k.clone(), n.clone())));
        root = Hash(r.0);
    }
    root
}

/// A tree held entirely in memory: for roots and proofs of a given set of entries.
#[derive(Default)]
pub(crate) struct MemoryTree {
    nodes: HashMap<NodeKey, Node>,
    values: HashMap<KeyHash, OwnedValue>,
}

impl TreeReader for MemoryTree {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        Ok(self.nodes.get(node_key).cloned())
    }
    fn get_value_option(&self, _max_version: Version, key_hash: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        Ok(self.values.get(&key_hash).cloned())
    }
    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        anyhow::bail!("get_rightmost_leaf is not supported by the in-memory tree")
    }
}

impl MemoryTree {
    /// Applies one version (only version 0 is used: a single pass over a whole entry set).
    pub(crate) fn put(&mut self, version: Version, entries: impl IntoIterator<Item = (KeyHash, Option<OwnedValue>)>) -> Hash {
        let set: std::collections::BTreeMap<_, _> = entries.into_iter().collect();
        #[allow(clippy::expect_used)] // reads of an in-memory tree cannot fail
        let (root, batch) = super::put_set(&*self, set, version).expect("an in-memory tree cannot fail to read");
        self.nodes.extend(batch.node_batch.nodes().iter().map(|(k, n)| (k.clone(), n.clone())));
        for ((_, kh), v) in batch.node_batch.values() {
            match v {
                Some(v) => self.values.insert(*kh, v.clone()),
                None => self.values.remove(kh),
            };
        }
        Hash(root.0)
    }

    pub(crate) fn tree(&self) -> Tree<'_, Self> {
        Tree::new(self)
    }
}
