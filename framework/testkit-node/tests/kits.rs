//! The node-level kits are tested on stores whose flaws are known: each kit passes a correct
//! store and fails a flawed one for the rule the flaw breaks.
//!
//! The ledger crash kit re-runs this binary as its child, calling the same test: each test
//! names itself and the child opens the same store variant.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use aether_api::storage::{Column, Durability, KvIter, KvRead, KvStore, StorageError, WriteBatch};
use aether_storage_memory::MemoryStore;
use aether_testkit::file_store::{FileStore, Flaw};
use aether_testkit_node::{
    ledger_crash_conformance, node_crash_conformance, state_root_conformance, LedgerCrashSettings, StateRootSettings,
    LEDGER_CRASH_CHILD_ENV, NODE_CRASH_CHILD_ENV,
};

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload.downcast_ref::<String>().cloned().or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
}

/// A memory store that silently keeps only the first 100 operations of a batch: the kind of
/// backend limit that no single-key test notices.
struct Truncating(MemoryStore);

impl KvRead for Truncating {
    fn get(&self, col: Column, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.0.get(col, key)
    }
    fn scan_prefix(&self, col: Column, prefix: &[u8]) -> Result<KvIter<'_>, StorageError> {
        self.0.scan_prefix(col, prefix)
    }
    fn scan_prefix_from(&self, col: Column, prefix: &[u8], start: &[u8]) -> Result<KvIter<'_>, StorageError> {
        self.0.scan_prefix_from(col, prefix, start)
    }
}

impl KvStore for Truncating {
    fn write(&self, mut batch: WriteBatch, durability: Durability) -> Result<(), StorageError> {
        batch.ops.truncate(100);
        self.0.write(batch, durability)
    }
    fn snapshot(&self) -> Result<Box<dyn KvRead + '_>, StorageError> {
        self.0.snapshot()
    }
    fn backend_name(&self) -> &'static str {
        "truncating"
    }
}

#[test]
fn the_state_root_kit_passes_a_correct_file_store() {
    let dir = tempfile::tempdir().unwrap();
    state_root_conformance(|| Arc::new(FileStore::open(dir.path(), Flaw::None).unwrap()), StateRootSettings::default());
}

#[test]
fn the_state_root_kit_fails_a_store_that_truncates_large_batches() {
    let store = Arc::new(Truncating(MemoryStore::new()));
    let payload =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| state_root_conformance(|| store.clone(), StateRootSettings::default())))
            .expect_err("the state root kit passed a store that drops writes");
    let message = panic_message(payload);
    eprintln!("the state root kit's verdict on a truncating store:\n{message}");
    assert!(message.contains("state root kit (seed "), "the message names the kit and seed: {message}");
    assert!(
        ["opens:", "same roots:", "recomputes:"].iter().any(|rule| message.contains(rule)),
        "failed for another reason than a broken rule: {message}"
    );
}

/// Runs the ledger crash kit with its default settings on a `flaw`ed file store; returns its
/// panic message, or `None` if it passed.
fn ledger_crash_verdict(test_path: &str, flaw: Flaw) -> Option<String> {
    let run = || ledger_crash_conformance(test_path, |p| Arc::new(FileStore::open(p, flaw).unwrap()), LedgerCrashSettings::default());
    if std::env::var_os(LEDGER_CRASH_CHILD_ENV).is_some() {
        run(); // the child: never returns
    }
    std::panic::catch_unwind(run).err().map(panic_message)
}

#[test]
fn the_ledger_crash_kit_passes_a_correct_file_store() {
    if let Some(message) = ledger_crash_verdict("the_ledger_crash_kit_passes_a_correct_file_store", Flaw::None) {
        panic!("the ledger crash kit fails a correct store (too strict?): {message}");
    }
}

#[test]
fn the_ledger_crash_kit_fails_a_store_that_commits_each_op_separately() {
    let message = ledger_crash_verdict("the_ledger_crash_kit_fails_a_store_that_commits_each_op_separately", Flaw::OneCommitPerOp)
        .expect("the ledger crash kit passed a store whose commits are not atomic");
    eprintln!("the ledger crash kit's verdict on a non-atomic store:\n{message}");
    assert!(message.contains("ledger crash kit (seed "), "the message names the kit and seed: {message}");
    // A torn commit shows first as flat tables ahead of the tree (`consistent`); the other
    // rules are what it can break when the kill lands elsewhere in the batch.
    assert!(
        ["consistent:", "re-executes:", "opens:", "committed survives:"].iter().any(|rule| message.contains(rule)),
        "failed for another reason than a broken rule: {message}"
    );
}

/// The node crash kit on a `flaw`ed file store: its panic message, or `None` if it passed.
fn node_crash_verdict(test_path: &str, flaw: Flaw) -> Option<String> {
    let run = || node_crash_conformance(test_path, |p| Arc::new(FileStore::open(p, flaw).unwrap()), LedgerCrashSettings::default());
    if std::env::var_os(NODE_CRASH_CHILD_ENV).is_some() {
        run(); // the child: never returns
    }
    std::panic::catch_unwind(run).err().map(panic_message)
}

#[test]
fn the_node_crash_kit_passes_a_correct_file_store() {
    if let Some(message) = node_crash_verdict("the_node_crash_kit_passes_a_correct_file_store", Flaw::None) {
        panic!("the node crash kit fails a correct store (too strict?): {message}");
    }
}

#[test]
fn the_node_crash_kit_fails_a_store_that_commits_each_op_separately() {
    let message = node_crash_verdict("the_node_crash_kit_fails_a_store_that_commits_each_op_separately", Flaw::OneCommitPerOp)
        .expect("the node crash kit passed a store whose commits are not atomic");
    eprintln!("the node crash kit's verdict on a non-atomic store:\n{message}");
    assert!(message.contains("node crash kit (seed "), "the message names the kit and seed: {message}");
    assert!(
        ["consistent:", "re-executes:", "opens:", "committed survives:", "keeps going:"].iter().any(|rule| message.contains(rule)),
        "failed for another reason than a broken rule: {message}"
    );
}
