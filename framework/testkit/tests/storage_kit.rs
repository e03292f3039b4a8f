//! The storage kits judge backends, so they are tested on backends whose flaws are known: a
//! small file-backed store that is correct, and two variants of it with one flaw each. The
//! crash kit must pass the first and fail the others, each for its own broken rule (a kit
//! that passes everything proves nothing; one that fails a correct store is too strict).
//!
//! The stores are `aether_testkit::file_store`. The crash kit re-runs this binary as its
//! writer, calling the same test: each test names itself (its path inside this binary) and the
//! child runs the same `FileStore` variant.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use aether_testkit::file_store::{FileStore, Flaw};
use aether_testkit::{storage_conformance, storage_crash_conformance, CrashSettings, CRASH_CHILD_ENV};

/// Runs the crash kit with its default settings on a `flaw`ed store; returns its panic
/// message, or `None` if it passed.
fn crash_kit_verdict(test_path: &str, flaw: Flaw) -> Option<String> {
    let run = || storage_crash_conformance(test_path, |p| FileStore::open(p, flaw).unwrap(), CrashSettings::default());
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
        let open = || Arc::new(FileStore::open(dir.path(), Flaw::None).unwrap());
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
