//! The module's tests through the real ledger, one binary (each file a part).

mod common;
mod gas;
mod genesis_and_rewards;
mod params_update;
mod slashing;
mod unbonding;
mod validators;
