//! A deliberately small file-backed [`KvStore`], correct or with one chosen [`Flaw`]: what the
//! storage kits are tested against (a kit must pass the correct store and fail each flawed one
//! for the rule the flaw breaks), and a short example of what the contract asks of a backend.
//! Never for data: every read takes one lock, the whole store lives in memory, and the log
//! is never compacted.
//!
//! A store is an append-only log of batches in `DIR/log`, each a record `len (u32 LE) ++
//! first 4 bytes of SHA-256(payload) ++ payload (borsh)`, replayed into memory on open; the
//! first short or corrupt record marks where a crash cut the log, and the log is truncated
//! there.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use sha2::Digest;

use crate::kv::{check_batch, columns, Column, Durability, KvIter, KvRead, KvStore, StorageError, WriteBatch, WriteOp};

/// What is wrong with a [`FileStore`], on purpose.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Flaw {
    /// None: each batch is one checksummed record appended with one `write` (fsynced when
    /// `Synced`); a torn record at the end is dropped on open.
    None,
    /// Not atomic: each operation of a batch is its own fsynced record.
    OneCommitPerOp,
    /// Loses buffered writes: a `Buffered` batch is kept in memory only, never written, so
    /// a later `Synced` write does not make it durable.
    BufferedOnlyInMemory,
}

type Tables = HashMap<Column, BTreeMap<Vec<u8>, Vec<u8>>>;

/// An append-only log of batches, replayed into memory on open.
pub struct FileStore {
    flaw: Flaw,
    inner: Mutex<(File, Tables)>,
}

type Record = Vec<(u8, Vec<u8>, Option<Vec<u8>>)>;

/// The batch as a record of column indexes; `check_batch` has passed, so every column is in
/// the schema.
fn record(ops: &[WriteOp]) -> Record {
    let id = |col: Column| columns::SCHEMA.columns.iter().position(|c| c.name == col).unwrap_or(usize::MAX) as u8;
    ops.iter()
        .map(|op| match op {
            WriteOp::Put { col, key, value } => (id(col), key.clone(), Some(value.clone())),
            WriteOp::Delete { col, key } => (id(col), key.clone(), None),
        })
        .collect()
}

fn frame(record: &Record) -> Result<Vec<u8>, StorageError> {
    let payload = borsh::to_vec(record).map_err(storage_err)?;
    let mut out = (payload.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&sha2::Sha256::digest(&payload)[..4]);
    out.extend_from_slice(&payload);
    Ok(out)
}

fn apply(tables: &mut Tables, record: Record) {
    for (col, key, value) in record {
        let Some(table) = columns::SCHEMA.columns.get(col as usize).and_then(|c| tables.get_mut(c.name)) else { continue };
        match value {
            Some(v) => table.insert(key, v),
            None => table.remove(&key),
        };
    }
}

impl FileStore {
    /// Opens (or creates) the store in `dir` with the framework's schema, replaying its log
    /// up to the first torn record and cutting the log there.
    pub fn open(dir: &Path, flaw: Flaw) -> Result<FileStore, StorageError> {
        let open_err = |e: std::io::Error| StorageError::Open { backend: NAME, path: dir.display().to_string(), reason: e.to_string() };
        std::fs::create_dir_all(dir).map_err(open_err)?;
        let mut file = OpenOptions::new().read(true).append(true).create(true).open(dir.join("log")).map_err(open_err)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(open_err)?;
        let mut tables: Tables = columns::SCHEMA.columns.iter().map(|c| (c.name, BTreeMap::new())).collect();
        let mut at = 0;
        while let Some(header) = bytes.get(at..at + 8) {
            let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
            let Some(payload) = bytes.get(at + 8..at + 8 + len) else { break };
            if sha2::Sha256::digest(payload)[..4] != header[4..8] {
                break;
            }
            let Ok(record) = borsh::from_slice(payload) else { break };
            apply(&mut tables, record);
            at += 8 + len;
        }
        file.set_len(at as u64).map_err(open_err)?;
        file.seek(SeekFrom::End(0)).map_err(open_err)?;
        Ok(FileStore { flaw, inner: Mutex::new((file, tables)) })
    }

    fn lock(&self) -> MutexGuard<'_, (File, Tables)> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

const NAME: &str = "file-test";

fn storage_err(e: std::io::Error) -> StorageError {
    StorageError::Backend { backend: NAME, reason: e.to_string() }
}

fn scan(table: Option<&BTreeMap<Vec<u8>, Vec<u8>>>, col: Column, prefix: &[u8], start: &[u8]) -> Result<KvIter<'static>, StorageError> {
    let table = table.ok_or_else(|| StorageError::UnknownColumn(col.to_string()))?;
    let items: Vec<_> = table
        .range(start.max(prefix).to_vec()..)
        .take_while(|(k, _)| k.starts_with(prefix))
        .map(|(k, v)| Ok((k.clone(), v.clone())))
        .collect();
    Ok(Box::new(items.into_iter()))
}

impl KvRead for FileStore {
    fn get(&self, col: Column, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.lock().1.get(col).ok_or_else(|| StorageError::UnknownColumn(col.to_string()))?.get(key).cloned())
    }
    fn scan_prefix(&self, col: Column, prefix: &[u8]) -> Result<KvIter<'_>, StorageError> {
        scan(self.lock().1.get(col), col, prefix, prefix)
    }
    fn scan_prefix_from(&self, col: Column, prefix: &[u8], start: &[u8]) -> Result<KvIter<'_>, StorageError> {
        scan(self.lock().1.get(col), col, prefix, start)
    }
}

struct Snapshot(Tables);

impl KvRead for Snapshot {
    fn get(&self, col: Column, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.0.get(col).ok_or_else(|| StorageError::UnknownColumn(col.to_string()))?.get(key).cloned())
    }
    fn scan_prefix(&self, col: Column, prefix: &[u8]) -> Result<KvIter<'_>, StorageError> {
        scan(self.0.get(col), col, prefix, prefix)
    }
}

impl KvStore for FileStore {
    fn write(&self, batch: WriteBatch, durability: Durability) -> Result<(), StorageError> {
        check_batch(&columns::SCHEMA, &batch)?;
        let mut inner = self.lock();
        let (file, tables) = &mut *inner;
        match (self.flaw, durability) {
            (Flaw::OneCommitPerOp, _) => {
                for op in &batch.ops {
                    file.write_all(&frame(&record(std::slice::from_ref(op)))?).map_err(storage_err)?;
                    file.sync_data().map_err(storage_err)?;
                }
            }
            (Flaw::BufferedOnlyInMemory, Durability::Buffered) => {}
            (_, durability) => {
                file.write_all(&frame(&record(&batch.ops))?).map_err(storage_err)?;
                if durability == Durability::Synced {
                    file.sync_data().map_err(storage_err)?;
                }
            }
        }
        apply(tables, record(&batch.ops));
        Ok(())
    }

    fn snapshot(&self) -> Result<Box<dyn KvRead + '_>, StorageError> {
        Ok(Box::new(Snapshot(self.lock().1.clone())))
    }

    fn backend_name(&self) -> &'static str {
        NAME
    }
}
