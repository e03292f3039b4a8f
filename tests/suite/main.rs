//! Cross-crate tests, one binary (each test binary links RocksDB; keeping one keeps CI fast).

// Test and bench code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bad_input;
mod builder;
mod config_errors;
mod contracts;
mod end_to_end;
mod epochs;
mod epochs_hotstuff;
mod hostile_peer;
mod modules;
mod snapshot;
mod state;
mod storage_kits;
mod validators;
