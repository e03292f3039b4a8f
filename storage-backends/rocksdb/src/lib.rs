//! # aether-storage-rocksdb
//!
//! The RocksDB [`KvStore`] backend: one column family per schema column, atomic write batches
//! (synced with fsync when asked), snapshots, and forward iteration for prefix scans. It is the
//! default backend of the `aether` preset.
//!
//! ```no_run
//! use aether_api::storage::{columns, Durability, KvRead, KvStore, WriteBatch};
//! use aether_storage_rocksdb::{RocksStore, RocksSettings};
//! let store = RocksStore::open("/tmp/aether-db".as_ref(), columns::SCHEMA, &RocksSettings::default()).unwrap();
//! let mut batch = WriteBatch::default();
//! batch.put(columns::META, b"k".to_vec(), b"v".to_vec());
//! store.write(batch, Durability::Synced).unwrap();
//! ```
//!
//! Opening a directory that holds something other than a RocksDB database is refused with an
//! error; it never starts a new empty database beside foreign files.

use std::path::Path;
use std::sync::Arc;

use aether_api::registry::{PluginError, Registry};
use aether_api::storage::{
    check_batch, claim_directory, Column, Durability, KvIter, KvRead, KvStore, Schema, StorageError, WriteBatch, WriteOp,
};
use rocksdb::{BlockBasedOptions, Cache, ColumnFamilyDescriptor, Direction, IteratorMode, Options, WriteOptions, DB};
use serde::{Deserialize, Serialize};

const NAME: &str = "rocksdb";
/// Layout version of this backend's files, recorded in the directory's marker.
const STORE_FORMAT: u32 = 1;

/// `[storage.rocksdb]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RocksSettings {
    /// Shared block cache, in MiB.
    pub block_cache_mb: usize,
    /// Bloom filter bits per key for point lookups (0 disables).
    pub bloom_bits_per_key: u32,
    /// Background compaction and flush threads.
    pub background_jobs: i32,
    /// Memtable size per column family, in MiB, before it is flushed to disk: the bound on
    /// the memory written data takes before it is on disk (times the columns being written).
    pub write_buffer_mb: usize,
}

impl aether_api::registry::PluginConfig for RocksSettings {
    const SLOT: aether_api::registry::SlotKind = aether_api::registry::SlotKind::Storage;
    const NAME: &'static str = NAME;
}

impl Default for RocksSettings {
    fn default() -> Self {
        RocksSettings { block_cache_mb: 128, bloom_bits_per_key: 10, background_jobs: 2, write_buffer_mb: 64 }
    }
}

pub struct RocksStore {
    db: DB,
    schema: Schema,
}

fn err(reason: impl ToString) -> StorageError {
    StorageError::Backend { backend: NAME, reason: reason.to_string() }
}

impl RocksStore {
    pub fn open(path: &Path, schema: Schema, settings: &RocksSettings) -> Result<RocksStore, StorageError> {
        let open_err = |reason: String| StorageError::Open { backend: NAME, path: path.display().to_string(), reason };
        // Data directories from before the marker file hold RocksDB's CURRENT file.
        claim_directory(path, NAME, STORE_FORMAT, |p| p.join("CURRENT").is_file())?;
        let cache_bytes = settings
            .block_cache_mb
            .max(1)
            .checked_mul(1024 * 1024)
            .ok_or_else(|| open_err(format!("block_cache_mb = {} is too large", settings.block_cache_mb)))?;
        std::fs::create_dir_all(path).map_err(|e| open_err(format!("cannot create the folder: {e}")))?;
        let mut table = BlockBasedOptions::default();
        let cache = Cache::new_lru_cache(cache_bytes);
        table.set_block_cache(&cache);
        if settings.bloom_bits_per_key > 0 {
            table.set_bloom_filter(settings.bloom_bits_per_key as f64, false);
        }
        let mut cf_opts = Options::default();
        cf_opts.set_block_based_table_factory(&table);
        cf_opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        let write_buffer = settings
            .write_buffer_mb
            .max(1)
            .checked_mul(1024 * 1024)
            .ok_or_else(|| open_err(format!("write_buffer_mb = {} is too large", settings.write_buffer_mb)))?;
        cf_opts.set_write_buffer_size(write_buffer);

        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_max_background_jobs(settings.background_jobs.max(1));
        opts.set_block_based_table_factory(&table);
        let cfs = schema.columns.iter().map(|c| ColumnFamilyDescriptor::new(c.name, cf_opts.clone()));
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(|e| open_err(e.to_string()))?;
        Ok(RocksStore { db, schema })
    }

    fn cf(&self, col: Column) -> Result<&rocksdb::ColumnFamily, StorageError> {
        if !self.schema.contains(col) {
            return Err(StorageError::UnknownColumn(col.to_string()));
        }
        self.db.cf_handle(col).ok_or_else(|| StorageError::UnknownColumn(col.to_string()))
    }
}

/// Registers this backend as `rocksdb`.
pub fn register(registry: &mut Registry) {
    registry.storage.register(
        NAME,
        "RocksDB on disk: column families, synced atomic batches (default)",
        Box::new(|ctx, settings| {
            let s: RocksSettings = settings.parse()?;
            let store = RocksStore::open(&ctx.path, ctx.schema, &s)
                .map_err(|e| PluginError::Start { plugin: NAME.into(), reason: e.to_string() })?;
            Ok(Arc::new(store) as Arc<dyn KvStore>)
        }),
    );
}

fn prefix_iter<'a>(iter: impl Iterator<Item = Result<(Box<[u8]>, Box<[u8]>), rocksdb::Error>> + 'a, prefix: &[u8]) -> KvIter<'a> {
    let prefix = prefix.to_vec();
    Box::new(
        iter.map(|r| r.map(|(k, v)| (k.into_vec(), v.into_vec())).map_err(err))
            .take_while(move |r| r.as_ref().map_or(true, |(k, _)| k.starts_with(&prefix))),
    )
}

impl KvRead for RocksStore {
    fn get(&self, col: Column, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.db.get_cf(self.cf(col)?, key).map_err(err)
    }
    fn scan_prefix(&self, col: Column, prefix: &[u8]) -> Result<KvIter<'_>, StorageError> {
        self.scan_prefix_from(col, prefix, prefix)
    }
    fn scan_prefix_from(&self, col: Column, prefix: &[u8], start: &[u8]) -> Result<KvIter<'_>, StorageError> {
        let cf = self.cf(col)?;
        Ok(prefix_iter(self.db.iterator_cf(cf, IteratorMode::From(start.max(prefix), Direction::Forward)), prefix))
    }
}

struct RocksSnapshot<'a> {
    store: &'a RocksStore,
    snapshot: rocksdb::Snapshot<'a>,
}

impl KvRead for RocksSnapshot<'_> {
    fn get(&self, col: Column, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.snapshot.get_cf(self.store.cf(col)?, key).map_err(err)
    }
    fn scan_prefix(&self, col: Column, prefix: &[u8]) -> Result<KvIter<'_>, StorageError> {
        self.scan_prefix_from(col, prefix, prefix)
    }
    fn scan_prefix_from(&self, col: Column, prefix: &[u8], start: &[u8]) -> Result<KvIter<'_>, StorageError> {
        let cf = self.store.cf(col)?;
        Ok(prefix_iter(self.snapshot.iterator_cf(cf, IteratorMode::From(start.max(prefix), Direction::Forward)), prefix))
    }
}

impl KvStore for RocksStore {
    fn write(&self, batch: WriteBatch, durability: Durability) -> Result<(), StorageError> {
        check_batch(&self.schema, &batch)?;
        let mut wb = rocksdb::WriteBatch::default();
        for op in &batch.ops {
            match op {
                WriteOp::Put { col, key, value } => wb.put_cf(self.cf(col)?, key, value),
                WriteOp::Delete { col, key } => wb.delete_cf(self.cf(col)?, key),
            }
        }
        let mut opts = WriteOptions::default();
        opts.set_sync(durability == Durability::Synced);
        self.db.write_opt(wb, &opts).map_err(err)
    }

    fn snapshot(&self) -> Result<Box<dyn KvRead + '_>, StorageError> {
        Ok(Box::new(RocksSnapshot { store: self, snapshot: self.db.snapshot() }))
    }

    fn backend_name(&self) -> &'static str {
        NAME
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
        let open = || Arc::new(RocksStore::open(&path, columns::SCHEMA, &RocksSettings::default()).unwrap());
        aether_testkit::storage_conformance(open, Some(open));
    }

    #[test]
    fn refuses_a_directory_holding_something_else() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("somefile"), b"not rocksdb").unwrap();
        let e = RocksStore::open(dir.path(), columns::SCHEMA, &RocksSettings::default()).err().unwrap().to_string();
        assert!(e.contains("holds no rocksdb database"), "{e}");
    }

    #[test]
    fn survives_being_killed_mid_commit() {
        // Re-runs this test binary as a writer and SIGKILLs it (AETHER_CRASH_ROUNDS, default 20).
        aether_testkit::storage_crash_conformance(
            "tests::survives_being_killed_mid_commit",
            |p| RocksStore::open(p, columns::SCHEMA, &RocksSettings::default()).unwrap(),
            aether_testkit::CrashSettings::default(),
        );
    }
}
