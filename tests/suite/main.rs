//! Cross-crate tests, one binary (each test binary links RocksDB; keeping one keeps CI fast).

mod bad_input;
mod config_errors;
mod contracts;
mod end_to_end;
mod snapshot;
mod state;
mod validators;
