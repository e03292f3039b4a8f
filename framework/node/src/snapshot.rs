//! State snapshots: the whole state at one height, its block and certificate, in one file, so a
//! new node can start there instead of replaying the chain.
//!
//! # File layout (format 4; 3 had headers without `next_validators`, 2 no contract state, 1 blocks without evidence)
//! `AETHER-SNAPSHOT\0` (16 bytes), format (u32 LE), then the borsh encoding of
//! [`SnapshotContents`], then the SHA-256 of everything before it (32 bytes).
//!
//! Reading checks, before anything is written anywhere: the checksum (truncation, bit rot),
//! the format, that the entries rebuild exactly the header's state root, and (when restoring)
//! that the snapshot belongs to the node's chain. What it does not check: that the header is
//! final — the certificate is carried, and engines with real certificates verify it on import
//! in the HotStuff work; with `solo` the snapshot is trusted as far as its source is.
//!
//! ```no_run
//! # fn demo(ledger: &aether_node::ledger::Ledger, genesis: &aether_primitives::types::Genesis,
//! #         fresh: std::sync::Arc<dyn aether_api::storage::KvStore>) -> Result<(), aether_node::snapshot::SnapshotError> {
//! use aether_node::snapshot::Snapshot;
//! let height = ledger.head().block.height;
//! Snapshot::export(ledger, height, "state.snap".as_ref())?;
//! let snapshot = Snapshot::read("state.snap".as_ref())?; // checksum and state root checked
//! snapshot.check_chain(genesis)?;
//! snapshot.restore_into(fresh.as_ref())?; // then Ledger::open starts at `height`
//! # Ok(()) }
//! ```

use std::io::Write;
use std::path::Path;

use borsh::{BorshDeserialize, BorshSerialize};
use sha2::{Digest, Sha256};

use crate::codec;
use crate::consensus::BlockRef;
use crate::ledger::{Ledger, LedgerError};
use crate::state;
use crate::storage::{columns, Durability, KvStore, StorageError, WriteBatch};
use crate::types::{Block, Certificate, Genesis, Hash, Height};

const MAGIC: &[u8; 16] = b"AETHER-SNAPSHOT\0";
/// The snapshot format this build writes and reads.
/// 3: the state may hold contract storage and code (restored into their flat columns).
/// 4: the block's header carries `next_validators` (epochs).
/// 5: evidence carries its epoch (the block's evidence encodes it).
pub const SNAPSHOT_FORMAT: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot {action} {path}: {reason}")]
    Io { action: &'static str, path: String, reason: String },
    #[error("{path} is not an Aether snapshot (bad magic bytes)")]
    NotASnapshot { path: String },
    #[error("{path} is snapshot format {found}; this build reads only format {supported}")]
    FormatTooNew { path: String, found: u32, supported: u32 },
    #[error("{path} is snapshot format {found}, written by an older Aether; this build reads only format {supported} (export it again with this build's node)")]
    FormatTooOld { path: String, found: u32, supported: u32 },
    #[error("{path} is damaged: its checksum does not match its contents (truncated or altered)")]
    Checksum { path: String },
    #[error("{path} is malformed: {reason}")]
    Malformed { path: String, reason: String },
    #[error(
        "the snapshot's state does not match its header: the entries hash to {computed}, the header at height {height} says {expected}"
    )]
    RootMismatch { height: Height, computed: Hash, expected: Hash },
    #[error("the snapshot is of chain {found:?} (genesis {found_genesis}), but this node runs {expected:?} (genesis {expected_genesis})")]
    WrongChain { found: String, found_genesis: Hash, expected: String, expected_genesis: Hash },
    #[error("the data directory already holds a chain (at height {height}); import into an empty data directory")]
    NotEmpty { height: Height },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What a snapshot holds.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SnapshotContents {
    pub chain_id: String,
    pub genesis_hash: Hash,
    pub block: Block,
    pub certificate: Certificate,
    /// Every state entry at the block's height, `(key, value)`, in key-hash order.
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A snapshot read from a file and verified against itself.
#[derive(Debug)]
pub struct Snapshot {
    pub contents: SnapshotContents,
    /// Size of the file it was read from.
    pub bytes: u64,
}

impl Snapshot {
    pub fn height(&self) -> Height {
        self.contents.block.header.height
    }

    /// Writes the state at `height` (which must be retained) with its block to `path`,
    /// atomically (a temporary file renamed into place). Returns the snapshot's size.
    pub fn export(ledger: &Ledger, height: Height, path: &Path) -> Result<u64, SnapshotError> {
        let io = |action, e: std::io::Error| SnapshotError::Io { action, path: path.display().to_string(), reason: e.to_string() };
        let (block, certificate) = ledger
            .block_by_height(height)?
            .ok_or(LedgerError::State(state::StateError::Future { requested: height, newest: ledger.head().block.height }))?;
        let store = ledger.store().snapshot()?;
        state::check_retained(store.as_ref(), height, ledger.head().block.height).map_err(LedgerError::from)?;
        let entries = state::entries_at(store.as_ref(), height)
            .map_err(LedgerError::from)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(LedgerError::from)?;
        let contents =
            SnapshotContents { chain_id: ledger.chain_id().to_string(), genesis_hash: ledger.genesis_hash(), block, certificate, entries };
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&SNAPSHOT_FORMAT.to_le_bytes());
        bytes.extend_from_slice(&codec::encode(&contents));
        let checksum = Sha256::digest(&bytes);
        bytes.extend_from_slice(&checksum);
        let tmp = path.with_extension("partial");
        let mut f = std::fs::File::create(&tmp).map_err(|e| io("create", e))?;
        f.write_all(&bytes).map_err(|e| io("write", e))?;
        f.sync_all().map_err(|e| io("sync", e))?;
        std::fs::rename(&tmp, path).map_err(|e| io("rename into", e))?;
        Ok(bytes.len() as u64)
    }

    /// Reads and verifies `path`: checksum, format, and that the entries give the header's
    /// state root. Nothing is written.
    pub fn read(path: &Path) -> Result<Snapshot, SnapshotError> {
        let p = || path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| SnapshotError::Io { action: "read", path: p(), reason: e.to_string() })?;
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(SnapshotError::NotASnapshot { path: p() });
        }
        if bytes.len() < MAGIC.len() + 4 + 32 {
            return Err(SnapshotError::Checksum { path: p() });
        }
        let format = u32::from_le_bytes(bytes[16..20].try_into().map_err(|_| SnapshotError::Checksum { path: p() })?);
        if format > SNAPSHOT_FORMAT {
            return Err(SnapshotError::FormatTooNew { path: p(), found: format, supported: SNAPSHOT_FORMAT });
        }
        if format < SNAPSHOT_FORMAT {
            return Err(SnapshotError::FormatTooOld { path: p(), found: format, supported: SNAPSHOT_FORMAT });
        }
        let (body, checksum) = bytes.split_at(bytes.len() - 32);
        if Sha256::digest(body).as_slice() != checksum {
            return Err(SnapshotError::Checksum { path: p() });
        }
        let contents: SnapshotContents =
            borsh::from_slice(&body[20..]).map_err(|e| SnapshotError::Malformed { path: p(), reason: e.to_string() })?;
        let computed = state::root_of(contents.entries.iter().map(|(k, v)| (k.as_slice(), v.as_slice())));
        let header = &contents.block.header;
        if computed != header.state_root {
            return Err(SnapshotError::RootMismatch { height: header.height, computed, expected: header.state_root });
        }
        Ok(Snapshot { contents, bytes: bytes.len() as u64 })
    }

    /// Checks that the snapshot is of the chain `genesis` starts.
    pub fn check_chain(&self, genesis: &Genesis) -> Result<(), SnapshotError> {
        let expected_genesis = Ledger::genesis_block(genesis).hash();
        let c = &self.contents;
        if c.chain_id != genesis.chain_id || c.genesis_hash != expected_genesis || c.block.header.chain_id != genesis.chain_id {
            return Err(SnapshotError::WrongChain {
                found: c.chain_id.clone(),
                found_genesis: c.genesis_hash,
                expected: genesis.chain_id.clone(),
                expected_genesis,
            });
        }
        Ok(())
    }

    /// Writes the snapshot into an empty store in one synced batch: the state tree at the
    /// snapshot's height, the account table, the block as the head, and history bounds that
    /// say nothing older exists here.
    pub fn restore_into(&self, store: &dyn KvStore) -> Result<(), SnapshotError> {
        if let Some(head) = store.get(columns::META, crate::ledger::META_HEAD)? {
            let head: BlockRef = codec::decode("head", &head, 1024).map_err(LedgerError::from)?;
            return Err(SnapshotError::NotEmpty { height: head.height });
        }
        let c = &self.contents;
        let height = self.height();
        let mut batch = WriteBatch::default();
        for (key, value) in &c.entries {
            if let Some((column, flat_key)) = state::flat_location(key) {
                batch.put(column, flat_key, value.clone());
            }
        }
        let root = state::restore_at(store, height, c.entries.iter().cloned(), &mut batch).map_err(LedgerError::from)?;
        debug_assert_eq!(root, c.block.header.state_root);
        crate::ledger::write_restored_head(&mut batch, c.genesis_hash, &c.block, &c.certificate);
        store.write(batch, Durability::Synced)?;
        Ok(())
    }
}
