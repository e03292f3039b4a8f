//! # aether-vm
//!
//! The machinery every WebAssembly backend shares: contracts run against one host interface,
//! with gas that does not depend on the engine. The slot's traits ([`VmBackend`], [`Host`])
//! are `aether-api`'s, re-exported here.
//!
//! Status: complete for the two reference backends (`vm-backends/wasmtime`,
//! `vm-backends/wasmer`). What lives here, shared by every backend:
//! - [`interface`]: the names, status codes and limits contract and host agree on;
//! - [`validate`]: what code may be deployed (no floats, SIMD, threads...; size limits), each
//!   refusal naming its rule and location;
//! - [`instrument`]: the rewriting that makes a module meter its own gas and call depth;
//! - [`gas`]: the cost table; [`abi`]: the host functions and their one implementation;
//! - [`executor`]: deploys and calls against a [`state::ContractState`], nested calls,
//!   re-entrancy and depth limits, value transfers and full revert of failed calls;
//! - [`cache`]: the bounded module cache and the on-disk artifact directory.
//!
//! The conformance suite a backend runs with one call (same gas and results as the reference)
//! is `aether_testkit::vm_conformance`.
//!
//! The rule every backend keeps: **for the same code, input, state and gas limit, every
//! backend returns the same [`CallResult`], charges the same gas and makes the same host
//! calls in the same order.** A network may run mixed backends and must never fork over it.
//!
//! What this is not: an EVM, or a VM with floating point, SIMD or threads; contracts are
//! plain integer WebAssembly that import the functions of [`abi`].
//!
//! # Example: what a backend is given to compile
//! ```
//! use aether_vm::{prepare, validate::Limits};
//!
//! let code = wat::parse_str(r#"(module (func (export "ping")))"#).unwrap();
//! // Validated for determinism, then rewritten to meter its own gas and call depth.
//! let instrumented = prepare(&code, &Limits::default()).unwrap();
//! assert!(instrumented.len() > code.len());
//!
//! let floats = wat::parse_str(r#"(module (func (export "f") (result f32) f32.const 1))"#).unwrap();
//! let refused = prepare(&floats, &Limits::default()).unwrap_err();
//! assert!(refused.to_string().contains("rule `floats`"), "{refused}");
//! ```
//!
//! A backend then compiles those bytes and runs them through [`executor::Executor`], which
//! `aether-node`'s ledger drives for every deploy and call.

pub mod abi;
pub mod cache;
pub mod executor;
pub mod gas;
pub mod instrument;
pub mod interface;
pub mod state;
pub mod validate;

pub use aether_api::vm::*;
use aether_primitives::types;
use aether_primitives::types::Hash;

/// Validates and instruments `code` with the chain's limits: the bytes a backend compiles.
pub fn prepare(code: &[u8], limits: &validate::Limits) -> Result<Vec<u8>, VmError> {
    let info = validate::validate(code, limits)?;
    instrument::instrument(code, &info, limits)
}

/// The identity of deployed code.
pub fn code_hash(code: &[u8]) -> Hash {
    Hash::digest(aether_primitives::types::domain::CODE, code)
}
