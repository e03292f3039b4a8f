//! The shared state workloads (`aether_testkit::benchkit`) on the in-memory store with 1M
//! accounts: the cost of the authenticated state itself, with no disk under it.
//!
//! `cargo bench --workspace --bench state -- memory` (`AETHER_BENCH_ACCOUNTS=N` for another size)

// Test and bench code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use aether_storage_memory::MemoryStore;
use aether_testkit::benchkit;
use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    // One store for the whole run: the memory backend keeps nothing across opens.
    let store = Arc::new(MemoryStore::new());
    benchkit::state_benches(c, "memory", || store.clone(), None);
}

criterion_group!(benches, bench);
criterion_main!(benches);
