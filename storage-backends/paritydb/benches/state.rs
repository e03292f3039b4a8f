//! The shared state workloads (`aether_testkit::benchkit`) on ParityDB with 1M accounts:
//! authenticated block commits beside raw batches, proofs, point reads, bytes per account.
//!
//! `cargo bench --workspace --bench state -- paritydb` (`AETHER_BENCH_ACCOUNTS=N` for another size)

// Test and bench code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use aether_api::storage::columns;
use aether_storage_paritydb::{ParitySettings, ParityStore};
use aether_testkit::benchkit;
use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("db");
    let open = || Arc::new(ParityStore::open(&path, columns::SCHEMA, &ParitySettings::default()).expect("open paritydb"));
    benchkit::state_benches(c, "paritydb", open, Some(&path));
}

criterion_group!(benches, bench);
criterion_main!(benches);
