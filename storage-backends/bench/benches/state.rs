//! The shared state workloads (`aether-benchkit`) on every storage backend, 1M accounts each:
//! authenticated block commits beside raw batches of the same accounts, proofs, point reads,
//! bytes per account. One backend: `cargo bench --workspace --bench state -- rocksdb`
//! (`memory`, `paritydb`); `AETHER_BENCH_ACCOUNTS=N` for another size.

// Bench code: a failed set-up is a broken benchmark, reported by its panic message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use aether_api::storage::columns;
use aether_benchkit as benchkit;
use aether_storage_memory::MemoryStore;
use aether_storage_paritydb::{ParitySettings, ParityStore};
use aether_storage_rocksdb::{RocksSettings, RocksStore};
use criterion::{criterion_group, criterion_main, Criterion};

fn memory(c: &mut Criterion) {
    // One store for the whole run: the memory backend keeps nothing across opens.
    let store = Arc::new(MemoryStore::new());
    benchkit::state_benches(c, "memory", || store.clone(), None);
}

fn rocksdb(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("db");
    let open = || Arc::new(RocksStore::open(&path, columns::SCHEMA, &RocksSettings::default()).expect("open rocksdb"));
    benchkit::state_benches(c, "rocksdb", open, Some(&path));
}

fn paritydb(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("db");
    let open = || Arc::new(ParityStore::open(&path, columns::SCHEMA, &ParitySettings::default()).expect("open paritydb"));
    benchkit::state_benches(c, "paritydb", open, Some(&path));
}

criterion_group!(benches, memory, rocksdb, paritydb);
criterion_main!(benches);
