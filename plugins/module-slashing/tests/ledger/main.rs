//! The module's tests through the real ledger, one binary (each file a part).

mod bad_evidence;
mod common;
mod double_sign;
mod downtime;
mod downtime_gas;
mod gas;
mod unbonding;
