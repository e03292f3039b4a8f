//! The storage kits judge backends, so they are tested on backends whose flaws are known: a
//! small file-backed store that is correct, and two variants of it with one flaw each. The
//! crash kit must pass the first and fail the others, each for its own broken rule (a kit
//! that passes everything proves nothing; one that fails a correct store is too strict).
//!
//! The crash kit re-runs this binary as its writer, calling the same test: each test names
//! itself (its path inside this binary) and the child runs the same `FileStore` variant.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use aether_api::storage::{check_batch, columns, Column, Durability, KvIter, KvRead, KvStore, StorageError, WriteBatch, WriteOp};
use aether_testkit::{storage_conformance, storage_crash_conformance, CrashSettings, CRASH_CHILD_ENV};
use sha2::Digest;

/// What is wrong with a [`FileStore`], on purpose.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Flaw {
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
struct FileStore {
    flaw: Flaw,
    inner: Mutex<(File, Tables)>,
}

fn column_id(col: Column) -> u8 {
    columns::SCHEMA.columns.iter().position(|c| c.name == col).expect("checked column") as u8
}

type Record = Vec<(u8, Vec<u8>, Option<Vec<u8>>)>;

fn encode(ops: &[WriteOp]) -> Vec<u8> {
    let record: Record = ops
        .iter()
        .map(|op| match op {
            WriteOp::Put { col, key, value } => (column_id(col), key.clone(), Some(value.clone())),
            WriteOp::Delete { col, key } => (column_id(col), key.clone(), None),
        })
        .collect();
    let payload = borsh::to_vec(&record).unwrap();
    let mut out = (payload.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&sha2::Sha256::digest(&payload)[..4]);
    out.extend_from_slice(&payload);
    out
}

fn apply(tables: &mut Tables, record: Record) {
    for (col, key, value) in record {
        let table = tables.get_mut(columns::SCHEMA.columns[col as usize].name).expect("known column");
        match value {
            Some(v) => table.insert(key, v),
            None => table.remove(&key),
        };
    }
}

impl FileStore {
    fn open(dir: &Path, flaw: Flaw) -> FileStore {
        std::fs::create_dir_all(dir).unwrap();
        let mut file = OpenOptions::new().read(true).append(true).create(true).open(dir.join("log")).unwrap();
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).unwrap();
        let mut tables: Tables = columns::SCHEMA.columns.iter().map(|c| (c.name, BTreeMap::new())).collect();
        let mut at = 0;
        // Replays whole records; the first short or corrupt one is where a crash cut the log.
        while let Some(header) = bytes.get(at..at + 8) {
            let len = u32::from_le_bytes(header[..4].try_into().unwrap()) as usize;
            let Some(payload) = bytes.get(at + 8..at + 8 + len) else { break };
            if sha2::Sha256::digest(payload)[..4] != header[4..8] {
                break;
            }
            apply(&mut tables, borsh::from_slice(payload).unwrap());
            at += 8 + len;
        }
        file.set_len(at as u64).unwrap();
        file.seek(SeekFrom::End(0)).unwrap();
        FileStore { flaw, inner: Mutex::new((file, tables)) }
    }

    fn lock(&self) -> MutexGuard<'_, (File, Tables)> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn storage_err(e: std::io::Error) -> StorageError {
    StorageError::Backend { backend: "file-test", reason: e.to_string() }
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
                    file.write_all(&encode(std::slice::from_ref(op))).map_err(storage_err)?;
                    file.sync_data().map_err(storage_err)?;
                }
            }
            (Flaw::BufferedOnlyInMemory, Durability::Buffered) => {}
            (_, durability) => {
                file.write_all(&encode(&batch.ops)).map_err(storage_err)?;
                if durability == Durability::Synced {
                    file.sync_data().map_err(storage_err)?;
                }
            }
        }
        let record = borsh::from_slice(&encode(&batch.ops)[8..]).unwrap();
        apply(tables, record);
        Ok(())
    }

    fn snapshot(&self) -> Result<Box<dyn KvRead + '_>, StorageError> {
        Ok(Box::new(Snapshot(self.lock().1.clone())))
    }

    fn backend_name(&self) -> &'static str {
        "file-test"
    }
}

/// Runs the crash kit with its default settings on a `flaw`ed store; returns its panic
/// message, or `None` if it passed.
fn crash_kit_verdict(test_path: &str, flaw: Flaw) -> Option<String> {
    let run = || storage_crash_conformance(test_path, |p| FileStore::open(p, flaw), CrashSettings::default());
    if std::env::var_os(CRASH_CHILD_ENV).is_some() {
        run(); // the writer process: never returns
    }
    let payload = std::panic::catch_unwind(run).err()?;
    Some(payload.downcast_ref::<String>().cloned().or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default())
}

#[test]
fn a_correct_file_store_passes_both_storage_kits() {
    if std::env::var_os(CRASH_CHILD_ENV).is_none() {
        let dir = tempfile::tempdir().unwrap();
        let open = || Arc::new(FileStore::open(dir.path(), Flaw::None));
        storage_conformance(open, Some(open));
    }
    if let Some(message) = crash_kit_verdict("a_correct_file_store_passes_both_storage_kits", Flaw::None) {
        panic!("the crash kit fails a correct store (too strict?): {message}");
    }
}

#[test]
fn the_crash_kit_fails_a_store_that_commits_each_op_separately() {
    let message = crash_kit_verdict("the_crash_kit_fails_a_store_that_commits_each_op_separately", Flaw::OneCommitPerOp)
        .expect("the crash kit passed a store whose batches are not atomic");
    eprintln!("the crash kit's verdict on a non-atomic store:\n{message}");
    assert!(message.contains("whole batch: thread"), "failed for another reason than a torn batch: {message}");
    let seed = CrashSettings::default().seed;
    assert!(message.contains(&format!("seed {seed}, round ")), "the message names the seed and round: {message}");
}

#[test]
fn the_crash_kit_fails_a_store_that_loses_buffered_writes_before_a_sync() {
    let message = crash_kit_verdict("the_crash_kit_fails_a_store_that_loses_buffered_writes_before_a_sync", Flaw::BufferedOnlyInMemory)
        .expect("the crash kit passed a store that never persists buffered writes");
    eprintln!("the crash kit's verdict on a store that loses buffered writes:\n{message}");
    assert!(
        message.contains("no gap: thread") || message.contains("buffered survives a later sync"),
        "failed for another reason than lost buffered writes: {message}"
    );
    assert!(!message.contains("whole batch"), "the lossy store keeps batches whole, yet: {message}");
}
