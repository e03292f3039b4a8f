//! Removing state versions older than the retained window.
//!
//! Every tree node and value entry that stops being part of the newest version is indexed
//! under the version where that happened (`stale_since`). Versions `>= oldest` never need an
//! entry stale since `<= oldest`, so once `oldest` moves up those entries can go.

use jmt::storage::NodeKey;
use jmt::KeyHash;

use super::tree_store::value_key;
use super::{oldest_version, StateError, Version, META_STATE_OLDEST};
use crate::codec;
use crate::storage::{columns, Durability, KvStore, WriteBatch};

const NODE: u8 = 0;
const VALUE: u8 = 1;

pub(crate) fn stale_node_key(since: Version, node_key: &NodeKey) -> Vec<u8> {
    let mut k = since.to_be_bytes().to_vec();
    k.push(NODE);
    k.extend_from_slice(&codec::encode(node_key));
    k
}

pub(crate) fn stale_value_key(since: Version, kh: &KeyHash, previous: Version) -> Vec<u8> {
    let mut k = since.to_be_bytes().to_vec();
    k.push(VALUE);
    k.extend_from_slice(&kh.0);
    k.extend_from_slice(&previous.to_be_bytes());
    k
}

/// What one pruning step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneReport {
    /// The oldest version retained after this step.
    pub oldest: Version,
    /// Entries deleted (tree nodes and value records).
    pub removed: usize,
    /// Whether everything stale at or below `oldest` is gone.
    pub done: bool,
}

/// Moves the retained window's start up to `new_oldest` (never down) and deletes up to
/// `max_deletes` entries that only older versions used. Repeat until `done`.
///
/// Pre: `new_oldest <=` the newest committed version. Safe to run beside the block writer:
/// it only deletes entries that no version `>= new_oldest` reaches.
pub fn prune_state_step(store: &dyn KvStore, new_oldest: Version, max_deletes: usize) -> Result<PruneReport, StateError> {
    let oldest = oldest_version(store)?.max(new_oldest);
    // Readers check the window before they read, so it moves before anything is deleted.
    let mut batch = WriteBatch::default();
    batch.put(columns::META, META_STATE_OLDEST, codec::encode(&oldest));
    store.write(batch, Durability::Buffered)?;

    let mut batch = WriteBatch::default();
    let mut removed = 0;
    let mut done = true;
    for item in store.scan_prefix(columns::STATE_STALE, &[])? {
        let (k, _) = item?;
        let corrupt = || StateError::Corrupt(format!("stale index key {} is malformed", hex::encode(&k)));
        if k.len() < 9 {
            return Err(corrupt());
        }
        let since = u64::from_be_bytes(k[..8].try_into().map_err(|_| corrupt())?);
        if since > oldest {
            break;
        }
        if removed == max_deletes {
            done = false;
            break;
        }
        match k[8] {
            NODE => batch.delete(columns::STATE_NODES, k[9..].to_vec()),
            VALUE if k.len() == 9 + 32 + 8 => {
                let kh = KeyHash(k[9..41].try_into().map_err(|_| corrupt())?);
                let previous = u64::from_be_bytes(k[41..].try_into().map_err(|_| corrupt())?);
                batch.delete(columns::STATE_VALUES, value_key(&kh, previous));
            }
            _ => return Err(corrupt()),
        }
        batch.delete(columns::STATE_STALE, k);
        removed += 1;
    }
    if !batch.is_empty() {
        // Losing this batch in a crash only delays pruning: the index entries come back too.
        store.write(batch, Durability::Buffered)?;
    }
    Ok(PruneReport { oldest, removed, done })
}
