//! The VM slot: run WebAssembly contracts against one host interface.
//!
//! Status: traits only. Wasmtime and Wasmer backends, shared validation (wasmparser) and the
//! gas schedule come with the VM issue; the ledger's `Action` enum gains deploy and call then.
//!
//! The rule every backend must keep: **for the same code, input, state and gas limit, every
//! backend returns the same [`CallResult`], charges the same gas and makes the same host
//! calls in the same order.** A network may run mixed backends and must never fork over it.
//! Hence gas is charged by the framework (instrumented code and [`Host::charge_gas`] with a
//! documented cost table), never by an engine's own metering.

use crate::types::{Address, Amount, Hash, Height, TimestampMs};

/// How a call ended. Gas is charged in every case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallResult {
    /// The contract returned data; its writes are kept.
    Returned(Vec<u8>),
    /// The contract reverted with data; its writes and transfers are undone.
    Reverted(Vec<u8>),
    /// The contract trapped (bad memory access, unreachable, bad host-call argument...).
    Trapped(String),
    /// The gas limit was reached.
    OutOfGas,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallOutcome {
    pub result: CallResult,
    pub gas_used: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VmError {
    #[error("code rejected by validation: {rule} in {location}")]
    Invalid { rule: String, location: String },
    #[error("code could not be compiled: {0}")]
    Compile(String),
    #[error("code {0} was not prepared on this backend")]
    NotPrepared(Hash),
}

/// Why a host call failed; the backend turns it into [`CallResult::Trapped`] or
/// [`CallResult::OutOfGas`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("out of gas")]
    OutOfGas,
    #[error("pointer/length out of bounds: {0}")]
    OutOfBounds(String),
    #[error("call depth limit {0} reached")]
    DepthLimit(u32),
    #[error("insufficient balance for transfer")]
    InsufficientBalance,
    #[error("{0}")]
    Other(String),
}

/// The host interface a contract sees. Implemented once by the ledger; backends translate
/// contract imports to these calls after bounds-checking every pointer and length.
/// Every method charges its documented gas before doing work.
pub trait Host {
    fn charge_gas(&mut self, amount: u64) -> Result<(), HostError>;
    fn storage_read(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, HostError>;
    fn storage_write(&mut self, key: &[u8], value: &[u8]) -> Result<(), HostError>;
    fn storage_remove(&mut self, key: &[u8]) -> Result<(), HostError>;
    fn caller(&self) -> Address;
    fn self_address(&self) -> Address;
    fn value(&self) -> Amount;
    fn block_height(&self) -> Height;
    fn block_time_ms(&self) -> TimestampMs;
    fn emit_event(&mut self, topic: &[u8], data: &[u8]) -> Result<(), HostError>;
    fn transfer(&mut self, to: Address, amount: Amount) -> Result<(), HostError>;
    /// Calls another contract (depth-limited); its writes are undone if it does not return.
    fn call(&mut self, to: Address, input: &[u8], value: Amount, gas_limit: u64) -> Result<CallOutcome, HostError>;
    fn sha256(&mut self, data: &[u8]) -> Result<[u8; 32], HostError>;
    fn ed25519_verify(&mut self, public_key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> Result<bool, HostError>;
}

/// A VM backend.
pub trait VmBackend: Send + Sync + 'static {
    fn name(&self) -> &'static str;

    /// Compiles `code` (already validated and instrumented by the framework) and caches it
    /// under `code_hash`. Only modules this node compiled itself are ever cached.
    fn prepare(&self, code_hash: Hash, code: &[u8]) -> Result<(), VmError>;

    /// Runs export `entry` of prepared code with `input`, within `gas_limit`.
    fn call(&self, code_hash: &Hash, entry: &str, input: &[u8], gas_limit: u64, host: &mut dyn Host) -> Result<CallOutcome, VmError>;
}
