//! The events of a block's module hooks (`begin_block`, `end_block`, `end_epoch`,
//! `init_genesis`, migrations) and of the ledger itself (`hook_failed`, `module_upgraded`,
//! `parent_certificate_undecodable`), stored when the block commits so an operator can see
//! after the fact that a hook failed, a validator was slashed or a module was upgraded.
//!
//! # Storage
//! They are the block's own receipt, so they live where receipts live: in the `receipts`
//! column, keyed by the block hash (transaction receipts are keyed by transaction hash; the two
//! hashes are domain-separated, so they cannot collide), as the borsh encoding of the event
//! list. Every committed block gets an entry, empty or not, in the same batch as the block: a
//! missing entry therefore means "not known here", never "no events". Pruning deletes it with
//! the block's receipts. Like receipts, they are not part of snapshots or state sync: a node
//! started from one has no entry for the block it started at (and reading it says so).
//!
//! No schema or store-format change: the column exists, and a store written before this
//! (format 5 too) only lacks entries for the blocks it committed then, which read as "not
//! stored here" rather than as an empty list.

use super::{decode_stored, Ledger, LedgerError};
use crate::codec;
use crate::consensus::BlockRef;
use crate::storage::{columns, WriteBatch};
use crate::types::{Address, Event, Hash, Height};

/// The hook events of one committed block, in the order they were emitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockEvents {
    pub block: BlockRef,
    pub events: Vec<Event>,
}

/// Adds the hook events of the block `block_hash` to the batch that commits it.
pub(super) fn put(batch: &mut WriteBatch, block_hash: &Hash, events: &[Event]) {
    batch.put(columns::RECEIPTS, block_hash.0.to_vec(), codec::encode(&events.to_vec()));
}

/// Removes the hook events of the block `block_hash` (pruning).
pub(super) fn delete(batch: &mut WriteBatch, block_hash: &Hash) {
    batch.delete(columns::RECEIPTS, block_hash.0.to_vec());
}

impl Ledger {
    /// The hook events of the committed block at `height`. `None` if no block is committed
    /// there yet; [`LedgerError::BlockPruned`] below the oldest block kept, and
    /// [`LedgerError::HookEventsNotStored`] for a block whose events this node never stored
    /// (the block it started at from a snapshot or state sync).
    pub fn block_events(&self, height: Height) -> Result<Option<BlockEvents>, LedgerError> {
        let oldest = self.oldest_block()?;
        if height < oldest {
            return Err(LedgerError::BlockPruned { requested: height, oldest });
        }
        let Some(hash) = self.block_hash_at(height)? else { return Ok(None) };
        match self.store.get(columns::RECEIPTS, &hash.0)? {
            Some(bytes) => Ok(Some(BlockEvents { block: BlockRef { hash, height }, events: decode_stored("hook events", &bytes)? })),
            None => Err(LedgerError::HookEventsNotStored { height }),
        }
    }

    /// The name of the module whose account is `emitter`, among the modules this chain runs;
    /// `None` for any other address (the ledger's own events come from
    /// [`super::system_address`]).
    pub fn module_named_by(&self, emitter: &Address) -> Option<&str> {
        self.runtime.modules.iter().map(|m| m.name()).find(|name| crate::module::module_address(name) == *emitter)
    }
}
