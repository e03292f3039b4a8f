//! # aether-storage-paritydb
//!
//! The ParityDB [`KvStore`] backend: one ParityDB column per schema column, hash-indexed where
//! only point reads are needed and B-tree-indexed where the schema asks for ordered scans.
//!
//! ```no_run
//! use aether_api::storage::{columns, Durability, KvRead, KvStore, WriteBatch};
//! use aether_storage_paritydb::{ParityStore, ParitySettings};
//! let store = ParityStore::open("/tmp/aether-paritydb".as_ref(), columns::SCHEMA, &ParitySettings::default()).unwrap();
//! let mut batch = WriteBatch::default();
//! batch.put(columns::META, b"k".to_vec(), b"v".to_vec());
//! store.write(batch, Durability::Synced).unwrap();
//! assert_eq!(store.get(columns::META, b"k").unwrap(), Some(b"v".to_vec()));
//! ```
//!
//! # How it meets the [`KvStore`] contract where ParityDB alone does not
//! - **Durability.** ParityDB queues a commit and writes its log from background threads,
//!   flushing only once the log is large; a commit can be lost after `commit` returned. This
//!   backend drives the pipeline itself (ParityDB's `instrumentation` API): `write` queues the
//!   commit, moves it into the log and fsyncs the log before it returns. Two threads of ours
//!   then apply logs to the tables and clean them, as ParityDB's own workers would. So every
//!   write is durable when `write` returns; [`Durability::Buffered`] costs the same as `Synced`.
//!   ParityDB would show a queued commit to readers before it is in the log, so reads wait
//!   while a write is between queueing and fsync: nothing read can be lost in a crash (the
//!   node-level SIGKILL test caught exactly that). The price: a read may wait one fsync.
//! - **Snapshots.** ParityDB has none. While a snapshot is alive, each write first records the
//!   values it overwrites (an undo log, in memory); a snapshot read takes the value as of its
//!   sequence number from there, or from the database if the key was not written since.
//!   Reads and commits serialise on one lock while snapshots exist, so a snapshot never sees
//!   half a batch. Snapshot scans are materialised in memory (snapshots are for short checks).
//!
//! What it is not: a database for many concurrent writers (writes are serialised), or one
//! whose snapshots are cheap to keep open during heavy writing (the undo log grows until the
//! last snapshot is dropped).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use aether_api::registry::{PluginError, Registry};
use aether_api::storage::{
    check_batch, claim_directory, Column, Durability, KvIter, KvRead, KvStore, Schema, StorageError, WriteBatch, WriteOp,
};
use parking_lot::{Condvar, Mutex, RwLock};
use serde::{Deserialize, Serialize};

const NAME: &str = "paritydb";
/// Layout version of this backend's files, recorded in the directory's marker.
const STORE_FORMAT: u32 = 1;

/// `[storage.paritydb]` settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ParitySettings {
    /// Compress values of hash-indexed columns with LZ4 (B-tree columns stay uncompressed).
    pub compression: bool,
}

impl aether_api::registry::PluginConfig for ParitySettings {
    const SLOT: aether_api::registry::SlotKind = aether_api::registry::SlotKind::Storage;
    const NAME: &'static str = NAME;
}

fn err(reason: impl ToString) -> StorageError {
    StorageError::Backend { backend: NAME, reason: reason.to_string() }
}

/// A key's value before the write with this sequence number (`None`: it had none).
type PriorValue = (u64, Option<Vec<u8>>);

/// Values overwritten while snapshots are alive, so each snapshot can read its own past.
#[derive(Default)]
struct UndoLog {
    /// Number of writes applied so far; a snapshot sees exactly the first `seq` writes.
    seq: u64,
    /// Live snapshots by the `seq` they were taken at, with a count.
    live: BTreeMap<u64, usize>,
    /// For each written key, in write order: (the write's seq, the value before it).
    before: HashMap<(u8, Vec<u8>), Vec<PriorValue>>,
}

impl UndoLog {
    /// The value a snapshot taken at `at` sees for a key that was rewritten after it, if any.
    fn as_of(&self, col: u8, key: &[u8], at: u64) -> Option<&Option<Vec<u8>>> {
        self.before.get(&(col, key.to_vec()))?.iter().find(|(seq, _)| *seq > at).map(|(_, v)| v)
    }
}

/// The background workers that apply the log to the tables and remove applied logs.
struct Workers {
    stop: AtomicBool,
    wake: Condvar,
    pending: Mutex<bool>,
}

impl Workers {
    fn signal(&self) {
        *self.pending.lock() = true;
        self.wake.notify_all();
    }
    fn wait(&self, timeout: Duration) {
        let mut pending = self.pending.lock();
        if !*pending && !self.stop.load(Ordering::Acquire) {
            self.wake.wait_for(&mut pending, timeout);
        }
        *pending = false;
    }
}

pub struct ParityStore {
    db: Arc<parity_db::Db>,
    schema: Schema,
    /// Schema column name -> ParityDB column id, and whether the column is B-tree indexed.
    columns: HashMap<&'static str, (u8, bool)>,
    /// Serialises writers: ParityDB's log must receive commits one at a time, in order.
    write_lock: Mutex<()>,
    /// ParityDB shows a commit to readers as soon as it is queued, before it is in the log.
    /// Writers hold this exclusively until the commit is fsynced and every read takes it
    /// shared, so nothing is ever read that a crash could take back.
    visible: RwLock<()>,
    undo: Mutex<UndoLog>,
    workers: Arc<Workers>,
    threads: Vec<JoinHandle<()>>,
}

impl ParityStore {
    pub fn open(path: &Path, schema: Schema, settings: &ParitySettings) -> Result<ParityStore, StorageError> {
        let open_err = |reason: String| StorageError::Open { backend: NAME, path: path.display().to_string(), reason };
        // Data directories from before the marker file hold ParityDB's metadata file.
        claim_directory(path, NAME, STORE_FORMAT, |p| p.join("metadata").is_file())?;
        let count = u8::try_from(schema.columns.len()).map_err(|_| open_err("ParityDB supports at most 255 columns".into()))?;
        let mut options = parity_db::Options::with_columns(path, count);
        options.with_background_thread = false;
        options.stats = false;
        let mut columns = HashMap::new();
        for (i, spec) in schema.columns.iter().enumerate() {
            let c = &mut options.columns[i];
            c.btree_index = spec.ordered;
            c.uniform = false;
            c.compression = if settings.compression && !spec.ordered {
                parity_db::CompressionType::Lz4
            } else {
                parity_db::CompressionType::NoCompression
            };
            columns.insert(spec.name, (i as u8, spec.ordered));
        }
        let db = parity_db::Db::open_or_create(&options).map_err(|e| open_err(e.to_string()))?;
        let db = Arc::new(db);
        let workers = Arc::new(Workers { stop: AtomicBool::new(false), wake: Condvar::new(), pending: Mutex::new(false) });
        let thread_err = |e: std::io::Error| open_err(format!("cannot start a worker thread: {e}"));
        let enact = spawn_worker("aether-paritydb-enact", db.clone(), workers.clone(), |db| db.enact_logs()).map_err(thread_err)?;
        let clean = match spawn_worker("aether-paritydb-clean", db.clone(), workers.clone(), |db| db.clean_logs()) {
            Ok(t) => t,
            Err(e) => {
                workers.stop.store(true, Ordering::Release);
                workers.signal();
                let _ = enact.join();
                return Err(thread_err(e));
            }
        };
        let threads = vec![enact, clean];
        Ok(ParityStore {
            db,
            schema,
            columns,
            write_lock: Mutex::new(()),
            visible: RwLock::new(()),
            undo: Mutex::new(UndoLog::default()),
            workers,
            threads,
        })
    }

    fn col(&self, col: Column) -> Result<(u8, bool), StorageError> {
        self.columns.get(col).copied().ok_or_else(|| StorageError::UnknownColumn(col.to_string()))
    }

    fn scan_live(&self, col: Column, prefix: &[u8], start: &[u8]) -> Result<KvIter<'_>, StorageError> {
        let (id, ordered) = self.col(col)?;
        if !ordered {
            return Err(err(format!("column {col:?} is hash-indexed; ordered scans need `ordered: true` in the schema")));
        }
        let mut iter = self.db.iter(id).map_err(err)?;
        {
            let _visible = self.visible.read_recursive();
            iter.seek(start.max(prefix)).map_err(err)?;
        }
        let prefix = prefix.to_vec();
        let mut done = false;
        Ok(Box::new(std::iter::from_fn(move || {
            if done {
                return None;
            }
            // Per step, not for the iterator's life: a caller may write while it scans.
            let step = {
                let _visible = self.visible.read_recursive();
                iter.next()
            };
            match step {
                Ok(Some((k, v))) if k.starts_with(&prefix) => Some(Ok((k, v))),
                Ok(_) => {
                    done = true;
                    None
                }
                Err(e) => {
                    done = true;
                    Some(Err(err(e)))
                }
            }
        })))
    }
}

fn spawn_worker(
    name: &str,
    db: Arc<parity_db::Db>,
    workers: Arc<Workers>,
    step: impl Fn(&parity_db::Db) -> parity_db::Result<()> + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(name.into()).spawn(move || loop {
        let stopping = workers.stop.load(Ordering::Acquire);
        if let Err(e) = step(&db) {
            // The log stays on disk and is replayed at the next open; nothing committed
            // is lost, but the tables stop catching up, so say so loudly.
            tracing::error!(error = %e, "ParityDB background step failed");
        }
        if stopping {
            return;
        }
        // Woken by each write; the timeout lets the cleaner release an enactor waiting
        // for log files to be recycled.
        workers.wait(Duration::from_millis(5));
    })
}

impl Drop for ParityStore {
    fn drop(&mut self) {
        self.workers.stop.store(true, Ordering::Release);
        self.workers.signal();
        // The enactor may be waiting for the cleaner, so the cleaner must outlive it.
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Registers this backend as `paritydb`.
pub fn register(registry: &mut Registry) {
    registry.storage.register(
        NAME,
        "ParityDB on disk: hash-indexed point reads, B-tree columns for ordered scans, every commit fsynced",
        Box::new(|ctx, settings| {
            let s: ParitySettings = settings.parse()?;
            let store = ParityStore::open(&ctx.path, ctx.schema, &s)
                .map_err(|e| PluginError::Start { plugin: NAME.into(), reason: e.to_string() })?;
            Ok(Arc::new(store) as Arc<dyn KvStore>)
        }),
    );
}

impl KvRead for ParityStore {
    fn get(&self, col: Column, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let (id, _) = self.col(col)?;
        let _visible = self.visible.read_recursive();
        self.db.get(id, key).map_err(err)
    }
    fn scan_prefix(&self, col: Column, prefix: &[u8]) -> Result<KvIter<'_>, StorageError> {
        self.scan_live(col, prefix, prefix)
    }
    fn scan_prefix_from(&self, col: Column, prefix: &[u8], start: &[u8]) -> Result<KvIter<'_>, StorageError> {
        self.scan_live(col, prefix, start)
    }
}

impl KvStore for ParityStore {
    fn write(&self, batch: WriteBatch, _durability: Durability) -> Result<(), StorageError> {
        check_batch(&self.schema, &batch)?;
        // The last op on a key wins, as the contract says; ParityDB wants one change per key.
        let mut changes: BTreeMap<(u8, Vec<u8>), Option<Vec<u8>>> = BTreeMap::new();
        for op in batch.ops {
            match op {
                WriteOp::Put { col, key, value } => changes.insert((self.col(col)?.0, key), Some(value)),
                WriteOp::Delete { col, key } => changes.insert((self.col(col)?.0, key), None),
            };
        }
        let _writer = self.write_lock.lock();
        let _hidden = self.visible.write();
        {
            let mut undo = self.undo.lock();
            let seq = undo.seq + 1;
            if !undo.live.is_empty() {
                for (col, key) in changes.keys() {
                    let before = self.db.get(*col, key).map_err(err)?;
                    undo.before.entry((*col, key.clone())).or_default().push((seq, before));
                }
            }
            // Committed under the undo lock so a snapshot read never interleaves with it.
            self.db.commit(changes.into_iter().map(|((c, k), v)| (c, k, v))).map_err(err)?;
            undo.seq = seq;
        }
        // Into the log file, then fsync: durable from here on (replayed at open after a crash).
        self.db.process_commits().map_err(err)?;
        self.db.flush_logs().map_err(err)?;
        self.workers.signal();
        Ok(())
    }

    fn snapshot(&self) -> Result<Box<dyn KvRead + '_>, StorageError> {
        let _visible = self.visible.read_recursive();
        let mut undo = self.undo.lock();
        let at = undo.seq;
        *undo.live.entry(at).or_default() += 1;
        Ok(Box::new(ParitySnapshot { store: self, at }))
    }

    fn backend_name(&self) -> &'static str {
        NAME
    }
}

struct ParitySnapshot<'a> {
    store: &'a ParityStore,
    at: u64,
}

impl ParitySnapshot<'_> {
    fn scan(&self, col: Column, prefix: &[u8], start: &[u8]) -> Result<KvIter<'_>, StorageError> {
        let (id, _) = self.store.col(col)?;
        let _visible = self.store.visible.read_recursive();
        let undo = self.store.undo.lock();
        let mut items: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for item in self.store.scan_live(col, prefix, start)? {
            let (k, v) = item?;
            items.insert(k, v);
        }
        for ((c, key), _) in undo.before.iter() {
            if *c == id && key.starts_with(prefix) && key.as_slice() >= start {
                match undo.as_of(id, key, self.at) {
                    Some(Some(v)) => items.insert(key.clone(), v.clone()),
                    Some(None) => items.remove(key),
                    None => None,
                };
            }
        }
        Ok(Box::new(items.into_iter().map(Ok)))
    }
}

impl KvRead for ParitySnapshot<'_> {
    fn get(&self, col: Column, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let (id, _) = self.store.col(col)?;
        let _visible = self.store.visible.read_recursive();
        let undo = self.store.undo.lock();
        match undo.as_of(id, key, self.at) {
            Some(v) => Ok(v.clone()),
            None => self.store.db.get(id, key).map_err(err),
        }
    }
    fn scan_prefix(&self, col: Column, prefix: &[u8]) -> Result<KvIter<'_>, StorageError> {
        self.scan(col, prefix, prefix)
    }
    fn scan_prefix_from(&self, col: Column, prefix: &[u8], start: &[u8]) -> Result<KvIter<'_>, StorageError> {
        self.scan(col, prefix, start)
    }
}

impl Drop for ParitySnapshot<'_> {
    fn drop(&mut self) {
        let mut undo = self.store.undo.lock();
        if let Some(n) = undo.live.get_mut(&self.at) {
            *n -= 1;
            if *n == 0 {
                undo.live.remove(&self.at);
            }
        }
        // Entries older than every live snapshot are never read again.
        match undo.live.keys().next().copied() {
            None => undo.before.clear(),
            Some(oldest) => undo.before.retain(|_, writes| {
                writes.retain(|(seq, _)| *seq > oldest);
                !writes.is_empty()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aether_api::storage::columns;

    #[test]
    fn passes_the_storage_conformance_suite_with_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let open = || Arc::new(ParityStore::open(&path, columns::SCHEMA, &ParitySettings::default()).unwrap());
        aether_testkit::storage_conformance(open, Some(open));
    }

    #[test]
    fn refuses_a_directory_holding_something_else() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("somefile"), b"not paritydb").unwrap();
        let e = ParityStore::open(dir.path(), columns::SCHEMA, &ParitySettings::default()).err().unwrap().to_string();
        assert!(e.contains("holds no paritydb database"), "{e}");
    }

    #[test]
    fn a_snapshot_keeps_its_view_across_many_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = ParityStore::open(dir.path(), columns::SCHEMA, &ParitySettings::default()).unwrap();
        let put = |k: &[u8], v: &[u8]| {
            let mut b = WriteBatch::default();
            b.put(columns::BLOCK_INDEX, k.to_vec(), v.to_vec());
            store.write(b, Durability::Synced).unwrap();
        };
        put(b"a", b"1");
        let first = store.snapshot().unwrap();
        put(b"a", b"2");
        put(b"b", b"x");
        let second = store.snapshot().unwrap();
        put(b"a", b"3");
        let mut del = WriteBatch::default();
        del.delete(columns::BLOCK_INDEX, b"b".to_vec());
        store.write(del, Durability::Synced).unwrap();
        assert_eq!(first.get(columns::BLOCK_INDEX, b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(first.get(columns::BLOCK_INDEX, b"b").unwrap(), None, "b did not exist at the first snapshot");
        assert_eq!(second.get(columns::BLOCK_INDEX, b"a").unwrap(), Some(b"2".to_vec()));
        assert_eq!(second.get(columns::BLOCK_INDEX, b"b").unwrap(), Some(b"x".to_vec()), "a later delete is not seen");
        let keys: Vec<_> = second.scan_prefix(columns::BLOCK_INDEX, b"").unwrap().map(|r| r.unwrap().0).collect();
        assert_eq!(keys, vec![b"a".to_vec(), b"b".to_vec()]);
        drop(first);
        assert_eq!(second.get(columns::BLOCK_INDEX, b"a").unwrap(), Some(b"2".to_vec()), "dropping one snapshot keeps the other's view");
        drop(second);
        assert!(store.undo.lock().before.is_empty(), "the undo log empties when the last snapshot goes");
        assert_eq!(store.get(columns::BLOCK_INDEX, b"a").unwrap(), Some(b"3".to_vec()));
    }

    #[test]
    fn hash_indexed_columns_refuse_ordered_scans() {
        let dir = tempfile::tempdir().unwrap();
        let store = ParityStore::open(dir.path(), columns::SCHEMA, &ParitySettings::default()).unwrap();
        let e = store.scan_prefix(columns::BLOCKS, b"").err().unwrap().to_string();
        assert!(e.contains("hash-indexed"), "{e}");
    }

    #[test]
    fn survives_being_killed_mid_commit() {
        // Re-runs this test binary as a writer and SIGKILLs it (AETHER_CRASH_ROUNDS, default 20).
        aether_testkit::storage_crash_conformance(
            "tests::survives_being_killed_mid_commit",
            |p| ParityStore::open(p, columns::SCHEMA, &ParitySettings::default()).unwrap(),
            aether_testkit::CrashSettings::default(),
        );
    }
}
