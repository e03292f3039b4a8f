//! `LogStore`: a storage backend as a plugin author writes one — an append-only log file
//! replayed into memory on open. About 150 lines; it passes the storage conformance kit.
//!
//! Each batch is one record: `len (u32 LE) | sha256(payload) | payload (borsh)`. A record is
//! applied whole or, if the process died while writing it, its torn tail fails the checksum
//! and is cut off on the next open: batches are atomic. `Durability::Synced` calls
//! `sync_data` before returning; `Buffered` leaves the record in the OS page cache, which
//! survives a process crash but not a power loss.
//!
//! What it is not: a database for real chains. It keeps everything in memory, never compacts
//! its log, and copies the whole map on the first write after a snapshot.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;

use aether_framework::registry::{PluginError, Registry};
use aether_framework::storage::{
    check_batch, claim_directory, columns, Column, Durability, KvIter, KvRead, KvStore, Schema, StorageError, WriteBatch, WriteOp,
};
use parking_lot::{Mutex, RwLock};
use sha2::{Digest, Sha256};

/// The name the backend registers under: `[storage] backend = "log"`.
pub const NAME: &str = "log";

/// `(column index, key) -> value`.
type Map = BTreeMap<(u8, Vec<u8>), Vec<u8>>;

/// One op of a logged batch: column index, key, value (`None` deletes).
type LoggedOp = (u8, Vec<u8>, Option<Vec<u8>>);

pub struct LogStore {
    schema: Schema,
    map: RwLock<Arc<Map>>,
    log: Mutex<File>,
}

fn backend_err(reason: impl ToString) -> StorageError {
    StorageError::Backend { backend: NAME, reason: reason.to_string() }
}

impl LogStore {
    /// Opens (or creates) the store in directory `path`, replaying its log.
    pub fn open(path: &Path, schema: Schema) -> Result<LogStore, StorageError> {
        claim_directory(path, NAME, 1, |_| false)?;
        let open_err = |e: std::io::Error| StorageError::Open { backend: NAME, path: path.display().to_string(), reason: e.to_string() };
        let mut file = OpenOptions::new().read(true).append(true).create(true).open(path.join("log")).map_err(open_err)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(open_err)?;
        let mut map = Map::new();
        let mut valid = 0;
        while let Some((ops, next)) = record_at(&bytes, valid) {
            for (col, key, value) in ops {
                match value {
                    Some(v) => map.insert((col, key), v),
                    None => map.remove(&(col, key)),
                };
            }
            valid = next;
        }
        // A torn last record (the process died inside a write) was never acknowledged.
        file.set_len(valid as u64).map_err(open_err)?;
        file.seek(SeekFrom::End(0)).map_err(open_err)?;
        Ok(LogStore { schema, map: RwLock::new(Arc::new(map)), log: Mutex::new(file) })
    }

    fn column(&self, col: Column) -> Result<u8, StorageError> {
        self.schema.columns.iter().position(|c| c.name == col).map(|i| i as u8).ok_or_else(|| StorageError::UnknownColumn(col.to_string()))
    }
}

/// The ops of the record at `offset` and the offset after it; `None` at the end or at a torn
/// or corrupt record.
fn record_at(bytes: &[u8], offset: usize) -> Option<(Vec<LoggedOp>, usize)> {
    let len = u32::from_le_bytes(bytes.get(offset..offset + 4)?.try_into().ok()?) as usize;
    let sum = bytes.get(offset + 4..offset + 36)?;
    let payload = bytes.get(offset + 36..offset + 36 + len)?;
    if Sha256::digest(payload).as_slice() != sum {
        return None;
    }
    Some((borsh::from_slice(payload).ok()?, offset + 36 + len))
}

/// Reads from one version of the map (the live one, or a snapshot's).
struct View<'a> {
    store: &'a LogStore,
    map: Arc<Map>,
}

impl KvRead for View<'_> {
    fn get(&self, col: Column, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.map.get(&(self.store.column(col)?, key.to_vec())).cloned())
    }
    fn scan_prefix(&self, col: Column, prefix: &[u8]) -> Result<KvIter<'_>, StorageError> {
        self.scan_prefix_from(col, prefix, prefix)
    }
    fn scan_prefix_from(&self, col: Column, prefix: &[u8], start: &[u8]) -> Result<KvIter<'_>, StorageError> {
        let c = self.store.column(col)?;
        // A start below the prefix scans the whole prefix (the kit caught this one).
        let from = start.max(prefix).to_vec();
        let items: Vec<_> = self
            .map
            .range((c, from)..)
            .take_while(|((ic, k), _)| *ic == c && k.starts_with(prefix))
            .map(|((_, k), v)| Ok((k.clone(), v.clone())))
            .collect();
        Ok(Box::new(items.into_iter()))
    }
}

impl LogStore {
    fn view(&self) -> View<'_> {
        View { store: self, map: self.map.read().clone() }
    }
}

impl KvRead for LogStore {
    fn get(&self, col: Column, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let c = self.column(col)?;
        Ok(self.map.read().get(&(c, key.to_vec())).cloned())
    }
    fn scan_prefix(&self, col: Column, prefix: &[u8]) -> Result<KvIter<'_>, StorageError> {
        let items: Vec<_> = self.view().scan_prefix(col, prefix)?.collect();
        Ok(Box::new(items.into_iter()))
    }
    fn scan_prefix_from(&self, col: Column, prefix: &[u8], start: &[u8]) -> Result<KvIter<'_>, StorageError> {
        let items: Vec<_> = self.view().scan_prefix_from(col, prefix, start)?.collect();
        Ok(Box::new(items.into_iter()))
    }
}

impl KvStore for LogStore {
    fn write(&self, batch: WriteBatch, durability: Durability) -> Result<(), StorageError> {
        check_batch(&self.schema, &batch)?;
        let mut ops = Vec::with_capacity(batch.ops.len());
        for op in batch.ops {
            ops.push(match op {
                WriteOp::Put { col, key, value } => (self.column(col)?, key, Some(value)),
                WriteOp::Delete { col, key } => (self.column(col)?, key, None),
            });
        }
        let payload = borsh::to_vec(&ops).map_err(backend_err)?;
        let len = u32::try_from(payload.len()).map_err(|_| backend_err("a batch over 4 GiB"))?;
        let mut record = Vec::with_capacity(36 + payload.len());
        record.extend_from_slice(&len.to_le_bytes());
        record.extend_from_slice(&Sha256::digest(&payload));
        record.extend_from_slice(&payload);
        // The log lock orders writers; the map is updated only after the record is written,
        // so readers never see a batch the log does not hold.
        let mut log = self.log.lock();
        log.write_all(&record).map_err(backend_err)?;
        if durability == Durability::Synced {
            log.sync_data().map_err(backend_err)?;
        }
        let mut map = self.map.write();
        let map = Arc::make_mut(&mut map);
        for (col, key, value) in ops {
            match value {
                Some(v) => map.insert((col, key), v),
                None => map.remove(&(col, key)),
            };
        }
        Ok(())
    }

    fn snapshot(&self) -> Result<Box<dyn KvRead + '_>, StorageError> {
        Ok(Box::new(self.view()))
    }

    fn backend_name(&self) -> &'static str {
        NAME
    }
}

/// Registers the backend as `log` (no settings), opening `DATA_DIR/db`.
pub fn register(registry: &mut Registry) {
    registry.storage.register(
        NAME,
        "an append-only log file replayed into memory (the storage example)",
        Box::new(|ctx, _settings| {
            let store =
                LogStore::open(&ctx.path, ctx.schema).map_err(|e| PluginError::Start { plugin: NAME.into(), reason: e.to_string() })?;
            Ok(Arc::new(store) as Arc<dyn KvStore>)
        }),
    );
}

/// A store with the node's schema at `path`.
pub fn open_for_node(path: &Path) -> Result<LogStore, StorageError> {
    LogStore::open(path, columns::SCHEMA)
}
