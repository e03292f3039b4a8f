//! The VM slot: what a WebAssembly backend implements, and the host interface it calls.
//!
//! The machinery every backend shares (deploy-time validation, gas instrumentation, the host
//! ABI's one implementation, the executor and the module cache) is in `aether-vm`; this module
//! holds only the traits and their types, so the slot can be named without compiling it.
//!
//! The rule every backend keeps: **for the same code, input, state and gas limit, every
//! backend returns the same [`CallResult`], charges the same gas and makes the same host
//! calls in the same order.**

use std::path::PathBuf;

use crate::types::{Address, Amount, Hash, Height, TimestampMs};

/// How a call ended. Gas is charged in every case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallResult {
    /// The contract returned data; its writes are kept.
    Returned(Vec<u8>),
    /// The contract reverted with data; its writes and transfers are undone.
    Reverted(Vec<u8>),
    /// The contract trapped (bad memory access, unreachable, bad host-call argument...). The
    /// text is the framework's, identical on every backend.
    Trapped(String),
    /// The gas limit was reached; all of it is used.
    OutOfGas,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallOutcome {
    pub result: CallResult,
    pub gas_used: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VmError {
    #[error("code rejected by validation: rule `{rule}`: {location}")]
    Invalid { rule: String, location: String },
    #[error("code could not be compiled: {0}")]
    Compile(String),
    #[error("code {0} is not compiled on this backend")]
    NotCompiled(Hash),
    #[error("the VM could not run the call: {0}")]
    Engine(String),
}

/// Why a host call failed; the call then ends as [`CallResult::Trapped`] (or
/// [`CallResult::OutOfGas`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("out of gas")]
    OutOfGas,
    #[error("pointer/length out of bounds: {0}")]
    OutOfBounds(String),
    #[error("too large: {0}")]
    TooLarge(String),
    /// A nested call that did not start (no contract there, re-entrancy, depth, value): the
    /// caller sees status `CALL_REFUSED` and keeps running.
    #[error("call refused: {0}")]
    Refused(String),
    #[error("{0}")]
    Other(String),
}

/// The host interface a contract sees, implemented once by `aether_vm::executor`. Called only through
/// `aether_vm::abi::dispatch`, which has already bounds-checked the contract's pointers and charged gas.
pub trait Host {
    fn input(&self) -> &[u8];
    fn caller(&self) -> Address;
    fn self_address(&self) -> Address;
    fn value(&self) -> Amount;
    fn block_height(&self) -> Height;
    fn block_time_ms(&self) -> TimestampMs;
    fn storage_read(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, HostError>;
    fn storage_write(&mut self, key: &[u8], value: &[u8]) -> Result<(), HostError>;
    fn storage_remove(&mut self, key: &[u8]) -> Result<(), HostError>;
    fn balance(&mut self, of: &Address) -> Result<Amount, HostError>;
    fn emit_event(&mut self, topic: Vec<u8>, data: Vec<u8>) -> Result<(), HostError>;
    /// Moves `amount` from this contract to `to`; `Ok(false)` if the balance is too low.
    fn transfer(&mut self, to: &Address, amount: Amount) -> Result<bool, HostError>;
    /// Calls `method` of the contract at `to` with at most `gas_limit`; its writes are undone
    /// unless it returns. `Err(HostError::Refused)` if it could not start.
    fn call(&mut self, to: &Address, method: &str, input: &[u8], value: Amount, gas_limit: u64) -> Result<CallOutcome, HostError>;
}

/// A VM backend: compiles instrumented modules and runs their exports.
///
/// Backends receive only code that `aether_vm::validate::validate` accepted and `aether_vm::instrument`
/// rewrote, so they need no metering or determinism checks of their own; they must:
/// - give every import of `aether_vm::abi::HostFn` to the module, forwarding to `aether_vm::abi::dispatch`
///   (copying the `aether_gas` global into `CallFrame::gas_left` before and back after);
/// - set `aether_gas` to the gas limit before running the entry, and report the outcome with
///   `CallFrame::finish`, mapping their trap codes to `aether_vm::abi::EngineTrap`;
/// - bound memory (the module's own maximum, already lowered by the instrumentation) and the
///   native stack (deeper than the instrumentation's limit needs).
pub trait VmBackend: Send + Sync + 'static {
    /// The name `[vm] backend` selects.
    fn name(&self) -> &'static str;

    /// Compiles an instrumented module and caches it under `code_hash` (the hash of the
    /// original code). Only modules this node compiled itself are ever cached; the cache is
    /// bounded, so a later call may find the module evicted.
    fn compile(&self, code_hash: Hash, instrumented: &[u8]) -> Result<(), VmError>;

    /// Whether `code_hash` is compiled and cached now.
    fn is_compiled(&self, code_hash: &Hash) -> bool;

    /// Runs export `entry` (type `[] -> []`) of compiled code within `gas_limit`.
    /// `Err` only when the backend itself failed (not compiled, engine error); everything the
    /// contract does, including traps, is an `Ok` outcome.
    fn call(&self, code_hash: &Hash, entry: &str, gas_limit: u64, host: &mut dyn Host) -> Result<CallOutcome, VmError>;
}

/// What a VM backend is given besides its settings.
#[derive(Debug, Clone)]
pub struct VmContext {
    /// Where the backend may keep the artifacts it compiled itself (created on first use), so
    /// a module evicted from memory or a restart reloads instead of recompiling.
    pub artifact_dir: Option<PathBuf>,
}
