//! # aether-benchkit
//!
//! Benchmark workloads that every storage backend runs with one call, so that backends are
//! compared on exactly the same work (used by `storage-backends/bench`). Its own crate
//! because it runs the node's authenticated state: plugins depend on it only from their
//! benches, so a change in the node rebuilds no plugin's tests.
//!
//! [`state_benches`] fills a store with `AETHER_BENCH_ACCOUNTS` accounts (default 1,000,000)
//! through the authenticated state, the way the ledger commits blocks, then measures:
//! - `state-commit/<backend>/authenticated`: one block of 10,000 account updates — tree delta,
//!   tree writes, stale index and the flat account table, in one synced batch;
//! - `state-commit/<backend>/raw_batch`: the same 10,000 accounts written as one synced batch
//!   of plain puts to the flat account table, the floor the authenticated commit is held to;
//! - `state-read/<backend>/proof_generate` and `proof_verify` for a random account;
//! - `state-read/<backend>/account` (and `account_absent`): a point read of the account table;
//! - disk bytes per account, printed after the fixture is written and the store reopened.
//!
//! Not a test: nothing here asserts speed. The numbers and how to read them are in
//! `docs/storage.md`.
//!
//! ```
//! // A bench target (`benches/state.rs`, `harness = false`) of a backend is this, with its store:
//! fn benches(c: &mut criterion::Criterion) {
//!     let open = || std::sync::Arc::new(aether_storage_memory::MemoryStore::new());
//!     aether_benchkit::state_benches(c, "memory", open, None);
//! }
//! # let _ = benches;
//! ```

// Fixture set-up failing is a broken benchmark, reported by its panic message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, SamplingMode, Throughput};
use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};

use aether_api::storage::{columns, Durability, KvStore, WriteBatch};
use aether_node::state::{self, StateProof};
use aether_primitives::codec;
use aether_primitives::types::{Account, Address, Hash};

/// Accounts updated by one benchmarked block.
pub const BLOCK_UPDATES: usize = 10_000;
/// Accounts written per version while the fixture is built (bounds its memory).
const FIXTURE_CHUNK: u64 = 100_000;

/// The number of accounts the fixture holds: `AETHER_BENCH_ACCOUNTS`, default 1,000,000.
pub fn fixture_accounts() -> u64 {
    std::env::var("AETHER_BENCH_ACCOUNTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000)
}

fn address(i: u64) -> Address {
    let h = Hash::digest(b"aether/bench-account", &i.to_le_bytes());
    Address(h.0[..20].try_into().expect("20 of 32 bytes"))
}

fn account(i: u64, round: u64) -> Vec<u8> {
    codec::encode(&Account { nonce: round, balance: 1_000_000 + u128::from(i) + u128::from(round), ..Account::default() })
}

/// One block's worth of writes: the accounts of `indices` at `round`, as (state key, value)
/// for the tree and (address, value) for the flat table.
struct BlockUpdates {
    tree: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    flat: Vec<(Vec<u8>, Vec<u8>)>,
}

fn block_updates(indices: impl Iterator<Item = u64>, round: u64) -> BlockUpdates {
    let (mut tree, mut flat) = (Vec::new(), Vec::new());
    for i in indices {
        let (a, v) = (address(i), account(i, round));
        tree.push((state::account_key(&a), Some(v.clone())));
        flat.push((a.0.to_vec(), v));
    }
    BlockUpdates { tree, flat }
}

/// Commits `updates` as version `version` the way the ledger commits a block's state.
fn commit_authenticated(store: &dyn KvStore, version: u64, updates: BlockUpdates) -> Hash {
    let delta = state::compute_delta(store, &[], version, updates.tree).expect("compute delta");
    let mut batch = WriteBatch::default();
    for (k, v) in updates.flat {
        batch.put(columns::ACCOUNTS, k, v);
    }
    state::write_delta(store, &delta, &mut batch).expect("write delta");
    store.write(batch, Durability::Synced).expect("commit");
    delta.root
}

fn commit_raw(store: &dyn KvStore, updates: BlockUpdates) {
    let mut batch = WriteBatch::default();
    for (k, v) in updates.flat {
        batch.put(columns::ACCOUNTS, k, v);
    }
    store.write(batch, Durability::Synced).expect("commit");
}

/// Times the three phases of an authenticated commit over a few blocks and prints them:
/// where the time goes, which criterion's single figure does not say. Returns the next version.
fn phase_breakdown(store: &dyn KvStore, backend: &str, accounts: u64, mut version: u64) -> u64 {
    const BLOCKS: u64 = 5;
    let mut rng = StdRng::seed_from_u64(3);
    let (mut tree, mut index, mut write, mut puts) = (Duration::ZERO, Duration::ZERO, Duration::ZERO, 0);
    for round in 0..BLOCKS {
        let picked = sample(&mut rng, accounts as usize, BLOCK_UPDATES);
        let updates = block_updates(picked.into_iter().map(|i| i as u64), 1_000 + round);
        let t = Instant::now();
        let delta = state::compute_delta(store, &[], version, updates.tree).expect("compute delta");
        tree += t.elapsed();
        let t = Instant::now();
        let mut batch = WriteBatch::default();
        for (k, v) in updates.flat {
            batch.put(columns::ACCOUNTS, k, v);
        }
        state::write_delta(store, &delta, &mut batch).expect("write delta");
        index += t.elapsed();
        puts += batch.len();
        let t = Instant::now();
        store.write(batch, Durability::Synced).expect("commit");
        write += t.elapsed();
        version += 1;
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3 / BLOCKS as f64;
    eprintln!(
        "state/{backend}: per 10k-update block: tree update {:.1} ms, stale index + encoding {:.1} ms, synced write of {} puts {:.1} ms",
        ms(tree),
        ms(index),
        puts / BLOCKS as usize,
        ms(write)
    );
    version
}

/// Bytes of all files under `dir`.
pub fn disk_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        match entry.metadata() {
            Ok(m) if m.is_dir() => total += disk_bytes(&entry.path()),
            Ok(m) => total += m.len(),
            Err(_) => {}
        }
    }
    total
}

/// Whether the command line's filters (`cargo bench ... -- rocksdb`) can select this backend's
/// benchmarks; building a 1M-account fixture only to skip every benchmark wastes minutes.
fn selected(backend: &str) -> bool {
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-') && a.chars().any(char::is_alphabetic)).collect();
    filters.is_empty() || filters.iter().any(|f| f.contains(backend) || f.starts_with("state"))
}

/// Runs the state workloads against `backend`. `open` opens the store (the same directory
/// each call for persistent backends, which must be empty the first time); `dir` is that
/// directory, measured for bytes per account (`None` for in-memory stores).
pub fn state_benches<S: KvStore>(c: &mut Criterion, backend: &str, open: impl Fn() -> Arc<S>, dir: Option<&Path>) {
    if !selected(backend) {
        return;
    }
    let accounts = fixture_accounts();
    let started = Instant::now();
    let mut store = open();
    let mut version = 0;
    let mut start = 0;
    while start < accounts {
        let end = (start + FIXTURE_CHUNK).min(accounts);
        commit_authenticated(store.as_ref(), version, block_updates(start..end, 0));
        (version, start) = (version + 1, end);
    }
    eprintln!("state/{backend}: fixture of {accounts} accounts in {version} versions built in {:.1?}", started.elapsed());
    if let Some(dir) = dir {
        // Reopened so that the size is the data at rest (write-ahead logs replayed and flushed).
        drop(store);
        store = open();
        let bytes = disk_bytes(dir);
        eprintln!("state/{backend}: {bytes} bytes on disk after reopening = {:.0} bytes per account", bytes as f64 / accounts as f64);
    }
    let store = store;
    let version = phase_breakdown(store.as_ref(), backend, accounts, version);

    let mut rng = StdRng::seed_from_u64(7);
    let mut group = c.benchmark_group(format!("state-commit/{backend}"));
    group.sampling_mode(SamplingMode::Flat).sample_size(10).measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(BLOCK_UPDATES as u64));
    let mut round = 1;
    let mut next_block = || {
        round += 1;
        let picked = sample(&mut rng, accounts as usize, BLOCK_UPDATES);
        block_updates(picked.into_iter().map(|i| i as u64), round)
    };
    let mut next_version = version;
    group.bench_function("authenticated", |b| {
        b.iter_batched(
            &mut next_block,
            |updates| {
                commit_authenticated(store.as_ref(), next_version, updates);
                next_version += 1;
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("raw_batch", |b| b.iter_batched(&mut next_block, |u| commit_raw(store.as_ref(), u), BatchSize::PerIteration));
    group.finish();

    let newest = next_version - 1;
    let root = state::root_at(store.as_ref(), newest).expect("root");
    let mut group = c.benchmark_group(format!("state-read/{backend}"));
    group.throughput(Throughput::Elements(1));
    let mut rng = StdRng::seed_from_u64(11);
    group.bench_function("proof_generate", |b| {
        b.iter_batched(
            || state::account_key(&address(rng.gen_range(0..accounts))),
            |key| state::get_with_proof(store.as_ref(), &key, newest).expect("proof"),
            BatchSize::SmallInput,
        )
    });
    let proofs: Vec<(Vec<u8>, Vec<u8>, StateProof)> = (0..1_000)
        .map(|_| {
            let key = state::account_key(&address(rng.gen_range(0..accounts)));
            let (value, proof) = state::get_with_proof(store.as_ref(), &key, newest).expect("proof");
            (key, value.expect("every fixture account exists"), proof)
        })
        .collect();
    let mut next = 0;
    group.bench_function("proof_verify", |b| {
        b.iter(|| {
            let (key, value, proof) = &proofs[next % proofs.len()];
            next += 1;
            state::verify_proof(&root, key, Some(value), proof).expect("valid proof")
        })
    });
    group.bench_function("account", |b| {
        b.iter_batched(
            || address(rng.gen_range(0..accounts)),
            |a| store.get(columns::ACCOUNTS, &a.0).expect("read").expect("present"),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("account_absent", |b| {
        b.iter_batched(
            || address(accounts + rng.gen_range(0..accounts)),
            |a| assert!(store.get(columns::ACCOUNTS, &a.0).expect("read").is_none()),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}
