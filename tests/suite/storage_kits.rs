//! The node-level storage kits (`aether-testkit-node`) on RocksDB and ParityDB.
//!
//! Here rather than in the backend crates: no plugin depends on the node, not even from its
//! tests (docs/architecture.md), so a change in the ledger rebuilds no storage backend. An
//! out-of-tree backend calls the same functions from its own tests (docs/storage.md).

use std::sync::Arc;

use aether_framework::storage::columns;
use aether_storage_paritydb::{ParitySettings, ParityStore};
use aether_storage_rocksdb::{RocksSettings, RocksStore};
use aether_testkit_node::{ledger_crash_conformance, state_root_conformance, LedgerCrashSettings, StateRootSettings};
use aether_vm_wasmtime::WasmtimeBackend;

/// Transfers and contract calls (the VM backend does not matter: they agree to the unit).
fn with_contracts() -> StateRootSettings {
    StateRootSettings { vm: Some(Arc::new(WasmtimeBackend::new())), ..StateRootSettings::default() }
}

#[test]
fn rocksdb_gives_the_memory_backends_state_roots_through_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    state_root_conformance(|| Arc::new(RocksStore::open(&path, columns::SCHEMA, &RocksSettings::default()).unwrap()), with_contracts());
}

#[test]
fn paritydb_gives_the_memory_backends_state_roots_through_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    state_root_conformance(|| Arc::new(ParityStore::open(&path, columns::SCHEMA, &ParitySettings::default()).unwrap()), with_contracts());
}

#[test]
fn a_ledger_on_rocksdb_survives_being_killed_while_committing() {
    // Re-runs this test binary as a committing ledger and SIGKILLs it (AETHER_CRASH_ROUNDS, default 20).
    ledger_crash_conformance(
        "storage_kits::a_ledger_on_rocksdb_survives_being_killed_while_committing",
        |p| Arc::new(RocksStore::open(p, columns::SCHEMA, &RocksSettings::default()).unwrap()),
        LedgerCrashSettings::default(),
    );
}

#[test]
fn a_ledger_on_paritydb_survives_being_killed_while_committing() {
    ledger_crash_conformance(
        "storage_kits::a_ledger_on_paritydb_survives_being_killed_while_committing",
        |p| Arc::new(ParityStore::open(p, columns::SCHEMA, &ParitySettings::default()).unwrap()),
        LedgerCrashSettings::default(),
    );
}

#[test]
fn a_node_on_rocksdb_survives_being_killed_and_keeps_going() {
    // A whole node (solo engine, mempool, ledger) killed while committing, then restarted.
    aether_testkit_node::node_crash_conformance(
        "storage_kits::a_node_on_rocksdb_survives_being_killed_and_keeps_going",
        |p| Arc::new(RocksStore::open(p, columns::SCHEMA, &RocksSettings::default()).unwrap()),
        LedgerCrashSettings::default(),
    );
}
