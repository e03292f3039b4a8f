//! The VM slot: WebAssembly contracts against one host interface, with gas that does not
//! depend on the engine.
//!
//! Status: complete for the two reference backends (`vm-backends/wasmtime`,
//! `vm-backends/wasmer`). What lives here, shared by every backend:
//! - [`validate`]: what code may be deployed (no floats, SIMD, threads...; size limits), each
//!   refusal naming its rule and location;
//! - [`instrument`]: the rewriting that makes a module meter its own gas and call depth;
//! - [`gas`]: the cost table; [`abi`]: the host functions and their one implementation;
//! - [`executor`]: deploys and calls against a [`state::ContractState`], nested calls,
//!   re-entrancy and depth limits, value transfers and full revert of failed calls;
//! - [`conformance`]: the suite a backend runs with one call to prove it charges the same gas
//!   and returns the same results as the reference.
//!
//! The rule every backend keeps: **for the same code, input, state and gas limit, every
//! backend returns the same [`CallResult`], charges the same gas and makes the same host
//! calls in the same order.** A network may run mixed backends and must never fork over it.
//!
//! What this is not: an EVM, or a VM with floating point, SIMD or threads; contracts are
//! plain integer WebAssembly that import the functions of [`abi`].
//!
//! # Example: deploy and call a contract on any backend
//! ```ignore
//! use aether_framework::vm::{executor::{Executor, BlockContext}, state::MemoryState};
//! let vm = aether_vm_wasmtime::WasmtimeBackend::new();
//! let mut state = MemoryState::default();
//! let mut exec = Executor::new(&vm, &mut state, BlockContext { height: 1, time_ms: 0 });
//! let code = wat::parse_str(r#"(module (func (export "ping")))"#).unwrap();
//! let (contract, deployed) = exec.deploy(deployer, 0, &code, &[], 0, 1_000_000);
//! let called = exec.call(deployer, contract, "ping", &[], 0, 100_000);
//! ```

pub mod abi;
pub mod cache;
pub mod conformance;
pub mod executor;
pub mod gas;
pub mod instrument;
pub mod state;
pub mod validate;

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

/// The host interface a contract sees, implemented once by [`executor`]. Called only through
/// [`abi::dispatch`], which has already bounds-checked the contract's pointers and charged gas.
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
/// Backends receive only code that [`validate::validate`] accepted and [`instrument`]
/// rewrote, so they need no metering or determinism checks of their own; they must:
/// - give every import of [`abi::HostFn`] to the module, forwarding to [`abi::dispatch`]
///   (copying the `aether_gas` global into [`abi::CallFrame::gas_left`] before and back after);
/// - set `aether_gas` to the gas limit before running the entry, and report the outcome with
///   [`abi::CallFrame::finish`], mapping their trap codes to [`abi::EngineTrap`];
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

/// Validates and instruments `code` with the chain's limits: the bytes a backend compiles.
pub fn prepare(code: &[u8], limits: &validate::Limits) -> Result<Vec<u8>, VmError> {
    let info = validate::validate(code, limits)?;
    instrument::instrument(code, &info, limits)
}

/// The identity of deployed code.
pub fn code_hash(code: &[u8]) -> Hash {
    Hash::digest(crate::types::domain::CODE, code)
}
