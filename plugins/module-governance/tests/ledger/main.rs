//! The module's tests through the real ledger, one binary (each file a part).

mod bad_calls;
mod chain_params;
mod common;
mod delegators;
mod execution;
mod gas;
mod tally;
