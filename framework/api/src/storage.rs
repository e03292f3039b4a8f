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
//! use aether_api::storage::{columns, Durability, KvStore, WriteBatch};
//! # fn demo(store: &dyn KvStore) -> Result<(), aether_api::storage::StorageError> {
//! let mut batch = WriteBatch::default();
//! batch.put(columns::META, b"greeting".to_vec(), b"hello".to_vec());
//! store.write(batch, Durability::Synced)?;
//! assert_eq!(store.get(columns::META, b"greeting")?, Some(b"hello".to_vec()));
//! # Ok(()) }
//! ```

use std::path::PathBuf;

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
    /// Tx hash -> receipt; block hash -> the block's hook events (`Vec<Event>`, written for
    /// every committed block, empty or not). The hashes are domain-separated.
    pub const RECEIPTS: &str = "receipts";
    /// Address -> account: the committed head state, read by execution (one point read per
    /// account). The authenticated copy of the same data lives in the `state_*` columns.
    pub const ACCOUNTS: &str = "accounts";
    /// Authenticated state (jmt): node key -> tree node.
    pub const STATE_NODES: &str = "state_nodes";
    /// Authenticated state: key hash ++ inverted version (8 bytes BE) -> value record, so the
    /// first entry at or after `key_hash ++ !v` is the value as of version `v`.
    pub const STATE_VALUES: &str = "state_values";
    /// Authenticated state: version at which an entry became unreachable ++ entry -> empty;
    /// what pruning deletes once that version falls out of the retained window.
    pub const STATE_STALE: &str = "state_stale";
    /// Authenticated state: key hash -> state key (so state can be exported by key).
    pub const STATE_PREIMAGES: &str = "state_preimages";
    /// Engine name -> the engine's persisted safety state (opaque bytes).
    pub const CONSENSUS: &str = "consensus";
    /// Evidence hash -> height of the block that recorded it (each is recorded once).
    pub const EVIDENCE: &str = "evidence";
    /// Contract address (20 bytes) ++ storage key -> value: the committed contract storage
    /// (the authenticated copy lives in the `state_*` columns, like accounts).
    pub const CONTRACT_STORAGE: &str = "contract_storage";
    /// Code hash -> contract code as deployed (validated; instrumented again when compiled).
    pub const CODE: &str = "code";

    pub const SCHEMA: Schema = Schema {
        columns: &[
            ColumnSpec { name: META, ordered: false },
            ColumnSpec { name: BLOCKS, ordered: false },
            ColumnSpec { name: BLOCK_INDEX, ordered: true },
            ColumnSpec { name: CERTIFICATES, ordered: false },
            ColumnSpec { name: TX_INDEX, ordered: false },
            ColumnSpec { name: RECEIPTS, ordered: false },
            ColumnSpec { name: ACCOUNTS, ordered: false },
            ColumnSpec { name: CONSENSUS, ordered: false },
            ColumnSpec { name: STATE_NODES, ordered: false },
            ColumnSpec { name: STATE_VALUES, ordered: true },
            ColumnSpec { name: STATE_STALE, ordered: true },
            ColumnSpec { name: STATE_PREIMAGES, ordered: false },
            ColumnSpec { name: EVIDENCE, ordered: false },
            ColumnSpec { name: CONTRACT_STORAGE, ordered: true },
            ColumnSpec { name: CODE, ordered: false },
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
///
/// With either, a batch is atomic (after any crash it is there whole or not at all) and visible
/// to every reader once `write` returns. They differ in when the batch survives a crash:
///
/// - A `Synced` batch survives a process crash, and a power loss, as soon as `write` returns.
/// - A `Buffered` batch survives a process crash once a `Synced` write that began after it
///   returned has itself returned (from any thread), or once the store has been dropped.
///   Until then a crash may lose it — but never alone: what survives of each thread's writes
///   is a prefix of them (no batch is lost while a later one of the same thread survives).
///
/// So `Buffered` is "ordered, and made durable by the next sync", which any backend can give:
/// one with a log writes the batch to it without fsync; one without a log may keep it in
/// memory, provided the next `Synced` write (or closing the store) persists it first.
/// `aether_testkit::storage_crash_conformance` checks each of these rules. What the bundled
/// backends give beyond it: RocksDB writes a buffered batch to its write-ahead log (no fsync)
/// before returning, so it already survives a process crash, not a power loss; ParityDB
/// fsyncs every write, so `Buffered` costs the same as `Synced`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Atomic and visible at once; survives a process crash once a later `Synced` write has
    /// returned or the store has been dropped, and is never lost while a later write of the
    /// same thread survives. For data that can be rebuilt or that a later synced write
    /// commits to (see the enum's docs).
    Buffered,
    /// Flushed to stable storage (fsync) before returning, together with every `Buffered`
    /// write acknowledged before it began. Used for committed blocks and the consensus safety
    /// state.
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
/// Where a storage backend keeps its files.
#[derive(Debug, Clone)]
pub struct StorageContext {
    pub path: PathBuf,
    pub schema: Schema,
}

pub type KvIter<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, Vec<u8>), StorageError>> + 'a>;

/// Read access shared by a live store and its snapshots.
pub trait KvRead {
    /// The value under `key`, or `None`. Errors only on backend failure or an unknown column.
    fn get(&self, col: Column, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;

    /// All entries whose key starts with `prefix`, ascending by key bytes. An empty prefix
    /// scans the whole column. Only promised for columns declared `ordered` in the schema.
    fn scan_prefix(&self, col: Column, prefix: &[u8]) -> Result<KvIter<'_>, StorageError>;
    /// Like [`scan_prefix`](KvRead::scan_prefix) but starting at the first key `>= start`
    /// (`start` should itself begin with `prefix`). Backends with a native seek override this;
    /// the default skips entries one by one.
    fn scan_prefix_from(&self, col: Column, prefix: &[u8], start: &[u8]) -> Result<KvIter<'_>, StorageError> {
        let start = start.to_vec();
        Ok(Box::new(self.scan_prefix(col, prefix)?.skip_while(move |r| matches!(r, Ok((k, _)) if *k < start))))
    }
}

/// A key-value store: the storage slot.
///
/// Implementations must guarantee:
/// - **Atomicity**: after [`write`](KvStore::write) returns `Ok`, all of the batch is visible;
///   after a crash at any point, either all or none of a batch is present on reopen.
/// - **Durability**: per [`Durability`] (synced writes survive at once; buffered ones once a
///   later synced write returns or the store is dropped; never a gap in one thread's writes).
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

/// The file that names which backend owns a data directory.
pub const BACKEND_MARKER_FILE: &str = "AETHER-STORE";

/// Makes sure the directory at `path` belongs to `backend` at a layout version it can read,
/// and claims it if it is new. Persistent backends call this before opening their database,
/// so pointing a node at another backend's data is an error, never a second empty database.
///
/// - A missing or empty directory is created and marked for `backend` (format `format`).
/// - A marked directory must name `backend` with a format `<= format`.
/// - An unmarked, non-empty directory is accepted (and marked) only if `recognise` says it
///   holds this backend's own files (data written before markers existed); otherwise it is
///   refused as foreign.
pub fn claim_directory(
    path: &std::path::Path,
    backend: &'static str,
    format: u32,
    recognise: impl Fn(&std::path::Path) -> bool,
) -> Result<(), StorageError> {
    let open_err = |reason: String| StorageError::Open { backend, path: path.display().to_string(), reason };
    let marker = path.join(BACKEND_MARKER_FILE);
    if marker.is_file() {
        let text = std::fs::read_to_string(&marker).map_err(|e| open_err(format!("cannot read {BACKEND_MARKER_FILE}: {e}")))?;
        let (found_backend, found_format) = parse_marker(&text).ok_or_else(|| {
            open_err(format!("{BACKEND_MARKER_FILE} is malformed (expected `backend = \"name\"` and `format = N`): {text:?}"))
        })?;
        if found_backend != backend {
            return Err(open_err(format!(
                "the directory holds a {found_backend} database, but this node is configured for {backend} \
                 (set [storage] backend = \"{found_backend}\", or use another data directory)"
            )));
        }
        if found_format > format {
            return Err(open_err(format!(
                "the database was written in {backend} store format {found_format}; this build reads up to {format} (upgrade Aether)"
            )));
        }
        return Ok(());
    }
    let non_empty = match std::fs::read_dir(path) {
        Ok(mut entries) => entries.next().is_some(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(open_err(e.to_string())),
    };
    if non_empty && !recognise(path) {
        return Err(open_err(format!(
            "the directory is not empty and holds no {backend} database (another backend's or program's files?)"
        )));
    }
    std::fs::create_dir_all(path).map_err(|e| open_err(format!("cannot create the directory: {e}")))?;
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let tmp = path.join(format!("{BACKEND_MARKER_FILE}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        writeln!(f, "backend = \"{backend}\"\nformat = {format}")?;
        f.sync_all()?;
        std::fs::rename(&tmp, &marker)?;
        std::fs::File::open(path)?.sync_all()
    };
    write().map_err(|e| open_err(format!("cannot write {BACKEND_MARKER_FILE}: {e}")))
}

fn parse_marker(text: &str) -> Option<(String, u32)> {
    #[derive(serde::Deserialize)]
    struct Marker {
        backend: String,
        format: u32,
    }
    let m: Marker = toml::from_str(text).ok()?;
    Some((m.backend, m.format))
}

#[cfg(test)]
mod marker_tests {
    use super::*;

    #[test]
    fn a_directory_belongs_to_one_backend() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        claim_directory(&path, "rocksdb", 1, |_| false).unwrap();
        claim_directory(&path, "rocksdb", 1, |_| false).expect("the owner reopens its directory");
        let e = claim_directory(&path, "paritydb", 1, |_| false).unwrap_err().to_string();
        assert!(e.contains("holds a rocksdb database") && e.contains("backend = \"rocksdb\""), "{e}");
        let e = claim_directory(&path, "rocksdb", 0, |_| false).unwrap_err().to_string();
        assert!(e.contains("store format 1") && e.contains("reads up to 0"), "{e}");
    }

    #[test]
    fn foreign_files_are_refused_unless_recognised() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
        let e = claim_directory(dir.path(), "paritydb", 1, |_| false).unwrap_err().to_string();
        assert!(e.contains("not empty and holds no paritydb database"), "{e}");
        claim_directory(dir.path(), "paritydb", 1, |p| p.join("notes.txt").exists()).expect("recognised legacy data is adopted");
        assert!(dir.path().join(BACKEND_MARKER_FILE).is_file());
        std::fs::write(dir.path().join(BACKEND_MARKER_FILE), "garbage").unwrap();
        let e = claim_directory(dir.path(), "paritydb", 1, |_| true).unwrap_err().to_string();
        assert!(e.contains("malformed"), "{e}");
    }
}
