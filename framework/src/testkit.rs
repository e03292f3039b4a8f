//! Conformance suites that a plugin author runs against a plugin with one call.
//!
//! Status: the storage suite covers the [`KvStore`] contract (reads, atomic batches, ordered
//! prefix scans, snapshot isolation, reopen, empty keys and values, unknown columns, large
//! values, concurrent readers). Atomicity across a killed process is tested at the node level
//! (`presets/tests/crash.rs`, RocksDB); a per-backend crash test belongs here next.
//!
//! ```
//! use aether_framework::testkit::storage_conformance;
//! use aether_storage_memory::MemoryStore;
//! use std::sync::Arc;
//! // The memory store forgets everything on close, so "reopen" is skipped (None).
//! storage_conformance(|| Arc::new(MemoryStore::new()), None::<fn() -> Arc<MemoryStore>>);
//! ```

use std::sync::Arc;

use crate::storage::{columns, Durability, KvRead, KvStore, StorageError, WriteBatch};

fn scan(store: &dyn KvRead, col: &'static str, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    store.scan_prefix(col, prefix).expect("scan").map(|r| r.expect("scan item")).collect()
}

/// Runs the storage contract against stores made by `open`. If `reopen` is given, data
/// written through the first store must be visible through a store it opens after the first
/// is dropped (persistent backends pass the same path again).
///
/// Panics with a message naming the broken rule.
pub fn storage_conformance<S: KvStore, R: KvStore>(open: impl Fn() -> Arc<S>, reopen: Option<impl Fn() -> Arc<R>>) {
    let (a, b, c) = (columns::ACCOUNTS, columns::BLOCK_INDEX, columns::META);
    {
        let store = open();
        assert_eq!(store.get(a, b"missing").unwrap(), None, "absent key reads as None");

        let mut batch = WriteBatch::default();
        batch.put(a, b"k1".to_vec(), b"v1".to_vec());
        batch.put(a, b"k2".to_vec(), b"v2".to_vec());
        batch.put(b, b"k1".to_vec(), b"other column".to_vec());
        batch.put(a, Vec::new(), b"empty key".to_vec());
        batch.put(a, b"empty value".to_vec(), Vec::new());
        store.write(batch, Durability::Synced).unwrap();
        assert_eq!(store.get(a, b"k1").unwrap().as_deref(), Some(&b"v1"[..]), "read your writes");
        assert_eq!(store.get(b, b"k1").unwrap().as_deref(), Some(&b"other column"[..]), "columns are separate");
        assert_eq!(store.get(a, b"").unwrap().as_deref(), Some(&b"empty key"[..]), "empty keys are valid");
        assert_eq!(store.get(a, b"empty value").unwrap().as_deref(), Some(&b""[..]), "empty values are valid and not absent");

        // Later ops in a batch win; deletes apply.
        let mut batch = WriteBatch::default();
        batch.put(a, b"k1".to_vec(), b"first".to_vec());
        batch.put(a, b"k1".to_vec(), b"second".to_vec());
        batch.delete(a, b"k2".to_vec());
        store.write(batch, Durability::Buffered).unwrap();
        assert_eq!(store.get(a, b"k1").unwrap().as_deref(), Some(&b"second"[..]), "the last op on a key in a batch wins");
        assert_eq!(store.get(a, b"k2").unwrap(), None, "delete removes");

        // A batch naming an unknown column is refused whole.
        let mut batch = WriteBatch::default();
        batch.put(a, b"must-not-exist".to_vec(), b"x".to_vec());
        batch.put("no-such-column", b"k".to_vec(), b"x".to_vec());
        assert!(matches!(store.write(batch, Durability::Synced), Err(StorageError::UnknownColumn(_))), "unknown column is an error");
        assert_eq!(store.get(a, b"must-not-exist").unwrap(), None, "a refused batch applies nothing");
        assert!(store.get("no-such-column", b"k").is_err(), "reading an unknown column is an error");

        // Ordered prefix iteration.
        let mut batch = WriteBatch::default();
        for k in [&b"p/3"[..], b"p/1", b"p/2", b"q/1", b"p", b"o/9", b"p/\xff"] {
            batch.put(b, k.to_vec(), k.to_vec());
        }
        store.write(batch, Durability::Buffered).unwrap();
        let keys: Vec<Vec<u8>> = scan(store.as_ref(), b, b"p/").into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![b"p/1".to_vec(), b"p/2".to_vec(), b"p/3".to_vec(), b"p/\xff".to_vec()], "prefix scan is ordered and exact");
        assert_eq!(scan(store.as_ref(), b, b"").len(), 8, "empty prefix scans the whole column");

        // Snapshots do not see later writes.
        let snapshot = store.snapshot().unwrap();
        let mut batch = WriteBatch::default();
        batch.put(b, b"p/4".to_vec(), b"later".to_vec());
        batch.delete(b, b"p/1".to_vec());
        store.write(batch, Durability::Buffered).unwrap();
        assert_eq!(snapshot.get(b, b"p/4").unwrap(), None, "snapshot must not see a later put");
        assert!(snapshot.get(b, b"p/1").unwrap().is_some(), "snapshot must not see a later delete");
        assert_eq!(scan(snapshot.as_ref(), b, b"p/").len(), 4, "snapshot scans are isolated too");
        drop(snapshot);
        assert_eq!(scan(store.as_ref(), b, b"p/").len(), 4, "live store sees p/4 and not p/1");

        // Large values.
        let big: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i * 7) as u8).collect();
        let mut batch = WriteBatch::default();
        batch.put(c, b"big".to_vec(), big.clone());
        store.write(batch, Durability::Synced).unwrap();
        assert_eq!(store.get(c, b"big").unwrap().as_deref(), Some(big.as_slice()), "4 MiB value round-trips");

        // Concurrent readers during writes see either old or new values, never torn batches.
        let writer = store.clone();
        std::thread::scope(|s| {
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    let r = store.clone();
                    s.spawn(move || {
                        for _ in 0..200 {
                            let snap = r.snapshot().unwrap();
                            let x = snap.get(c, b"pair-x").unwrap();
                            let y = snap.get(c, b"pair-y").unwrap();
                            assert_eq!(x, y, "a snapshot saw half of a batch");
                        }
                    })
                })
                .collect();
            for i in 0..200u32 {
                let mut batch = WriteBatch::default();
                batch.put(c, b"pair-x".to_vec(), i.to_be_bytes().to_vec());
                batch.put(c, b"pair-y".to_vec(), i.to_be_bytes().to_vec());
                writer.write(batch, Durability::Buffered).unwrap();
            }
            for r in readers {
                r.join().expect("reader");
            }
        });
    }
    if let Some(reopen) = reopen {
        let store = reopen();
        assert_eq!(store.get(a, b"k1").unwrap().as_deref(), Some(&b"second"[..]), "data survives close and reopen");
        assert_eq!(store.get(a, b"").unwrap().as_deref(), Some(&b"empty key"[..]), "empty key survives reopen");
        assert_eq!(scan(store.as_ref(), b, b"p/").len(), 4, "scans work after reopen");
    }
}
