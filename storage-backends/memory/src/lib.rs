//! # aether-storage-memory
//!
//! An in-memory [`KvStore`]: for tests, simulations and throwaway chains. Everything is lost
//! when the store is dropped — it is not a database and must not back a real node.
//!
//! Snapshots are O(1): each column is an `Arc<BTreeMap>` copied on the first write after a
//! snapshot is taken (copy-on-write), so a snapshot is a set of `Arc` clones.
//!
//! ```
//! use aether_api::storage::{columns, Durability, KvRead, KvStore, WriteBatch};
//! use aether_storage_memory::MemoryStore;
//! let store = MemoryStore::new();
//! let mut batch = WriteBatch::default();
//! batch.put(columns::META, b"k".to_vec(), b"v".to_vec());
//! store.write(batch, Durability::Synced).unwrap();
//! let snapshot = store.snapshot().unwrap();
//! assert_eq!(snapshot.get(columns::META, b"k").unwrap(), Some(b"v".to_vec()));
//! ```

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use aether_api::registry::Registry;
use aether_api::storage::{check_batch, columns, Column, Durability, KvIter, KvRead, KvStore, Schema, StorageError, WriteBatch, WriteOp};
use parking_lot::RwLock;

type Table = Arc<BTreeMap<Vec<u8>, Vec<u8>>>;

pub struct MemoryStore {
    schema: Schema,
    tables: RwLock<HashMap<Column, Table>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub const NAME: &'static str = "memory";

    /// A store with the framework's schema.
    pub fn new() -> MemoryStore {
        Self::with_schema(columns::SCHEMA)
    }

    pub fn with_schema(schema: Schema) -> MemoryStore {
        MemoryStore { schema, tables: RwLock::new(schema.columns.iter().map(|c| (c.name, Table::default())).collect()) }
    }
}

/// Registers this backend as `memory`.
pub fn register(registry: &mut Registry) {
    registry.storage.register(
        MemoryStore::NAME,
        "in-memory; everything is lost on exit (tests and throwaway chains)",
        Box::new(|ctx, settings| {
            let _: NoSettings = settings.parse()?;
            Ok(Arc::new(MemoryStore::with_schema(ctx.schema)) as Arc<dyn KvStore>)
        }),
    );
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NoSettings {}

/// Reads from a fixed set of tables (the live store's current ones, or a snapshot's).
struct Tables(HashMap<Column, Table>);

impl Tables {
    fn table(&self, col: Column) -> Result<&Table, StorageError> {
        self.0.get(col).ok_or_else(|| StorageError::UnknownColumn(col.to_string()))
    }
}

/// Iterates a table it shares (copy-on-write), so it holds no lock and sees no later write;
/// each step seeks past the previous key, which keeps short scans of a large table cheap.
fn scan_table(table: Table, prefix: &[u8], start: &[u8]) -> KvIter<'static> {
    let prefix = prefix.to_vec();
    let mut next_from = Bound::Included(start.max(prefix.as_slice()).to_vec());
    Box::new(std::iter::from_fn(move || {
        let (k, v) = table.range::<[u8], _>((next_from.as_ref().map(|k| k.as_slice()), Bound::Unbounded)).next()?;
        if !k.starts_with(&prefix) {
            return None;
        }
        next_from = Bound::Excluded(k.clone());
        Some(Ok((k.clone(), v.clone())))
    }))
}

impl KvRead for Tables {
    fn get(&self, col: Column, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.table(col)?.get(key).cloned())
    }
    fn scan_prefix(&self, col: Column, prefix: &[u8]) -> Result<KvIter<'_>, StorageError> {
        Ok(scan_table(self.table(col)?.clone(), prefix, prefix))
    }
    fn scan_prefix_from(&self, col: Column, prefix: &[u8], start: &[u8]) -> Result<KvIter<'_>, StorageError> {
        Ok(scan_table(self.table(col)?.clone(), prefix, start))
    }
}

impl KvRead for MemoryStore {
    fn get(&self, col: Column, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let tables = self.tables.read();
        Ok(tables.get(col).ok_or_else(|| StorageError::UnknownColumn(col.to_string()))?.get(key).cloned())
    }
    fn scan_prefix(&self, col: Column, prefix: &[u8]) -> Result<KvIter<'_>, StorageError> {
        self.scan_prefix_from(col, prefix, prefix)
    }
    fn scan_prefix_from(&self, col: Column, prefix: &[u8], start: &[u8]) -> Result<KvIter<'_>, StorageError> {
        let table = self.tables.read().get(col).cloned().ok_or_else(|| StorageError::UnknownColumn(col.to_string()))?;
        Ok(scan_table(table, prefix, start))
    }
}

impl KvStore for MemoryStore {
    // `check_batch` has refused any unknown column before the first write, so the lookups
    // below cannot fail, and a batch is applied whole.
    #[allow(clippy::expect_used)]
    fn write(&self, batch: WriteBatch, _durability: Durability) -> Result<(), StorageError> {
        check_batch(&self.schema, &batch)?;
        let mut tables = self.tables.write();
        for op in batch.ops {
            match op {
                WriteOp::Put { col, key, value } => {
                    Arc::make_mut(tables.get_mut(col).expect("checked")).insert(key, value);
                }
                WriteOp::Delete { col, key } => {
                    Arc::make_mut(tables.get_mut(col).expect("checked")).remove(&key);
                }
            }
        }
        Ok(())
    }

    fn snapshot(&self) -> Result<Box<dyn KvRead + '_>, StorageError> {
        Ok(Box::new(Tables(self.tables.read().clone())))
    }

    fn backend_name(&self) -> &'static str {
        Self::NAME
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passes_the_storage_conformance_suite() {
        aether_testkit::storage_conformance(
            || std::sync::Arc::new(super::MemoryStore::new()),
            None::<fn() -> std::sync::Arc<super::MemoryStore>>,
        );
    }
}
