//! How much history a node keeps, and the pruning that enforces it.

use serde::{Deserialize, Serialize};

use super::{corrupt, decode_stored, Ledger, LedgerError};
use crate::codec;
use crate::state;
use crate::storage::{columns, Durability, WriteBatch};
use crate::types::{Block, Height};

pub(super) const META_BLOCKS_OLDEST: &[u8] = b"blocks_oldest";

/// `[storage] keep_recent` and `keep_blocks`: how many recent heights of state (for proofs
/// and snapshots) and of blocks (with their receipts, hook events and transaction index) a node keeps.
/// `0` keeps everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    pub keep_recent: u64,
    pub keep_blocks: u64,
}

impl Default for Retention {
    fn default() -> Self {
        // A day of one-second blocks of provable state; every block kept.
        Retention { keep_recent: 100_000, keep_blocks: 0 }
    }
}

/// Where pruning stands after one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneProgress {
    pub state_oldest: Height,
    pub blocks_oldest: Height,
    /// Entries deleted by this step.
    pub removed: usize,
    /// Nothing is left to delete for the current head.
    pub done: bool,
}

/// First height kept when the newest `keep` of the heights up to `head` are kept.
fn window_start(head: Height, keep: u64) -> Height {
    head.saturating_sub(keep.saturating_sub(1))
}

impl Ledger {
    /// The lowest height whose block is still stored.
    pub fn oldest_block(&self) -> Result<Height, LedgerError> {
        match self.store.get(columns::META, META_BLOCKS_OLDEST)? {
            Some(b) => decode_stored("oldest block height", &b),
            None => Ok(0),
        }
    }

    /// Deletes up to `max_deletes` entries of history older than `retention` allows. Safe to
    /// call from a background thread while blocks commit; repeat until `done`.
    pub fn prune(&self, retention: &Retention, max_deletes: usize) -> Result<PruneProgress, LedgerError> {
        let head = self.head().block.height;
        let mut progress = PruneProgress {
            state_oldest: state::oldest_version(self.store.as_ref())?,
            blocks_oldest: self.oldest_block()?,
            removed: 0,
            done: true,
        };
        if retention.keep_recent > 0 {
            let step = state::prune_state_step(self.store.as_ref(), window_start(head, retention.keep_recent), max_deletes)?;
            progress.state_oldest = step.oldest;
            progress.removed += step.removed;
            progress.done &= step.done;
        }
        if retention.keep_blocks > 0 {
            let target = window_start(head, retention.keep_blocks);
            let mut oldest = progress.blocks_oldest;
            let mut batch = WriteBatch::default();
            while oldest < target && batch.len() < max_deletes {
                if let Some(hash) = self.block_hash_at(oldest)? {
                    let block: Block = decode_stored(
                        "block",
                        &self
                            .store
                            .get(columns::BLOCKS, &hash.0)?
                            .ok_or_else(|| corrupt("block", &format!("missing at height {oldest}")))?,
                    )?;
                    for tx in &block.transactions {
                        let h = tx.hash();
                        batch.delete(columns::TX_INDEX, h.0.to_vec());
                        batch.delete(columns::RECEIPTS, h.0.to_vec());
                    }
                    super::events::delete(&mut batch, &hash);
                    batch.delete(columns::BLOCKS, hash.0.to_vec());
                    batch.delete(columns::CERTIFICATES, hash.0.to_vec());
                    batch.delete(columns::BLOCK_INDEX, oldest.to_be_bytes().to_vec());
                }
                oldest += 1;
            }
            if oldest != progress.blocks_oldest {
                // The new bound and the deletions land together, so no reader sees a gap
                // below a bound that claims it is still there.
                batch.put(columns::META, META_BLOCKS_OLDEST, codec::encode(&oldest));
                progress.removed += batch.len();
                self.store.write(batch, Durability::Buffered)?;
                progress.blocks_oldest = oldest;
            }
            progress.done &= oldest >= target;
        }
        Ok(progress)
    }
}

#[cfg(test)]
mod tests {
    use super::window_start;

    #[test]
    fn the_window_keeps_exactly_keep_heights() {
        assert_eq!(window_start(100, 10), 91, "heights 91..=100 are ten heights");
        assert_eq!(window_start(5, 10), 0, "short chains keep everything");
        assert_eq!(window_start(100, 1), 100, "keep 1 keeps the head");
    }
}
