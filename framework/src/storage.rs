//! The key-value storage slot: named columns, atomic write batches, ordered prefix iteration
//! and consistent snapshots.
//!
//! Blocks, receipts, the state and the consensus safety state all go through [`KvStore`]. The
//! set of columns is fixed by a [`Schema`] when the store is opened, because RocksDB column
//! families and ParityDB columns must be declared up front (and ParityDB must know which
//! columns need ordered iteration).
//!
//! # Example
//! ```
//! use aether_framework::storage::{columns, Durability, KvStore, WriteBatch};
//! # fn demo(store: &dyn KvStore) -> Result<(), aether_framework::storage::StorageError> {
//! let mut batch = WriteBatch::default();
//! batch.put(columns::META, b"greeting".to_vec(), b"hello".to_vec());
//! store.write(batch, Durability::Synced)?;
//! assert_eq!(store.get(columns::META, b"greeting")?, Some(b"hello".to_vec()));
//! # Ok(()) }
//! ```

/// A column name from the store's [`Schema`].
pub type Column = &'static str;

/// One column of a schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnSpec {
    pub name: Column,
    /// Whether [`KvStore::scan_prefix`] is used on this column (ordered iteration). Backends
    /// with hash-indexed columns (ParityDB) index these differently.
    pub ordered: bool,
}

/// The columns a store is opened with.
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    pub columns: &'static [ColumnSpec],
}

impl Schema {
    pub fn contains(&self, col: Column) -> bool {
        self.columns.iter().any(|c| c.name == col)
    }
}

/// The columns the framework uses. Keys and values are borsh encodings unless noted.
pub mod columns {
    use super::{ColumnSpec, Schema};
    /// Chain metadata: genesis hash, head pointer, format version.
    pub const META: &str = "meta";
    /// Block hash -> block.
    pub const BLOCKS: &str = "blocks";
    /// Height (8 bytes big-endian, so byte order is numeric order) -> block hash.
    pub const BLOCK_INDEX: &str = "block_index";
    /// Block hash -> certificate that decided it.
    pub const CERTIFICATES: &str = "certificates";
    /// Tx hash -> location (block, height, index).
    pub const TX_INDEX: &str = "tx_index";
    /// Tx hash -> receipt.
    pub const RECEIPTS: &str = "receipts";
    /// Address -> account.
    pub const ACCOUNTS: &str = "accounts";
    /// Engine name -> the engine's persisted safety state (opaque bytes).
    pub const CONSENSUS: &str = "consensus";

    pub const SCHEMA: Schema = Schema {
        columns: &[
            ColumnSpec { name: META, ordered: false },
            ColumnSpec { name: BLOCKS, ordered: false },
            ColumnSpec { name: BLOCK_INDEX, ordered: true },
            ColumnSpec { name: CERTIFICATES, ordered: false },
            ColumnSpec { name: TX_INDEX, ordered: false },
            ColumnSpec { name: RECEIPTS, ordered: false },
            ColumnSpec { name: ACCOUNTS, ordered: true },
            ColumnSpec { name: CONSENSUS, ordered: false },
        ],
    };
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    Put { col: Column, key: Vec<u8>, value: Vec<u8> },
    Delete { col: Column, key: Vec<u8> },
}

/// A set of writes applied all-or-nothing by [`KvStore::write`], in order (a later op on the
/// same key wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    pub ops: Vec<WriteOp>,
}

impl WriteBatch {
    pub fn put(&mut self, col: Column, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(WriteOp::Put { col, key: key.into(), value: value.into() });
    }
    pub fn delete(&mut self, col: Column, key: impl Into<Vec<u8>>) {
        self.ops.push(WriteOp::Delete { col, key: key.into() });
    }
    pub fn len(&self) -> usize {
        self.ops.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// How durable a write must be when [`KvStore::write`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Survives a process crash (written to the backend's log), not necessarily a power loss.
    Buffered,
    /// Flushed to stable storage (fsync) before returning. Used for committed blocks and the
    /// consensus safety state.
    Synced,
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("column {0:?} is not in the store's schema")]
    UnknownColumn(String),
    #[error("cannot open {backend} database at {path}: {reason}")]
    Open { backend: &'static str, path: String, reason: String },
    #[error("{backend} error: {reason}")]
    Backend { backend: &'static str, reason: String },
}

/// Items of an ordered scan: `(key, value)` in ascending key order.
pub type KvIter<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, Vec<u8>), StorageError>> + 'a>;

/// Read access shared by a live store and its snapshots.
pub trait KvRead {
    /// The value under `key`, or `None`. Errors only on backend failure or an unknown column.
    fn get(&self, col: Column, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;

    /// All entries whose key starts with `prefix`, ascending by key bytes. An empty prefix
    /// scans the whole column. Only promised for columns declared `ordered` in the schema.
    fn scan_prefix(&self, col: Column, prefix: &[u8]) -> Result<KvIter<'_>, StorageError>;
}

/// A key-value store: the storage slot.
///
/// Implementations must guarantee:
/// - **Atomicity**: after [`write`](KvStore::write) returns `Ok`, all of the batch is visible;
///   after a crash at any point, either all or none of a batch is present on reopen.
/// - **Durability**: per [`Durability`].
/// - **Read-your-writes**: a `get` after `write` returns sees it, on any thread.
/// - **Snapshots** ([`snapshot`](KvStore::snapshot)) see the state as of their creation and
///   none of the writes after it.
/// - Any number of concurrent readers alongside one writer; `write` calls may come from
///   several threads and are serialised by the backend.
/// - Empty keys and empty values are valid.
pub trait KvStore: KvRead + Send + Sync + 'static {
    /// Applies `batch` atomically. Fails (and applies nothing) if it names an unknown column.
    fn write(&self, batch: WriteBatch, durability: Durability) -> Result<(), StorageError>;

    /// A consistent read-only view of the store as it is now.
    fn snapshot(&self) -> Result<Box<dyn KvRead + '_>, StorageError>;

    /// The backend's name as registered (`"memory"`, `"rocksdb"`, ...).
    fn backend_name(&self) -> &'static str;
}

/// Checks that every op of `batch` names a column of `schema`; backends call this first so a
/// bad batch is rejected whole.
pub fn check_batch(schema: &Schema, batch: &WriteBatch) -> Result<(), StorageError> {
    for op in &batch.ops {
        let col = match op {
            WriteOp::Put { col, .. } | WriteOp::Delete { col, .. } => col,
        };
        if !schema.contains(col) {
            return Err(StorageError::UnknownColumn(col.to_string()));
        }
    }
    Ok(())
}
