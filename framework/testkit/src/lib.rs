//! # aether-testkit
//!
//! What a plugin author runs against a plugin, and what Aether's own tests run: never compiled
//! into a node (depend on it from `[dev-dependencies]`, or through `aether-framework`'s
//! `testkit` feature).
//!
//! - [`sim`]: the deterministic consensus simulator (seeded, virtual time, link model,
//!   partitions, crashes, Byzantine behaviours) and its [`sim::conformance`] suite.
//! - [`storage_conformance`], [`storage_crash_conformance`]: the `KvStore` contract, and
//!   atomicity and durability (the `Durability` rules) across a writer process killed at
//!   random moments; [`crash`]: the child-process machinery, for kits of other crates;
//!   [`file_store`]: a small file-backed store, correct or deliberately flawed, that the kits
//!   are tested against.
//! - [`network_conformance`]: the `Network` contract on three running nodes of any network
//!   plugin (the in-process hub and libp2p both pass it).
//! - [`vm_conformance`]: same results and the same gas as the reference on a corpus of
//!   contracts, adversarial ones included.
//!
//! The storage benchmark workloads are `aether-benchkit` (they run the node's state tree).
//!
//! What it is **not**: a mock of the node. The simulator runs an engine with the real driver;
//! the suites run the real plugin.
//!
//! ## Example: a storage backend's whole contract test
//! ```
//! use std::sync::Arc;
//! use aether_storage_memory::MemoryStore;
//! // The memory store forgets everything on close, so "reopen" is skipped (None).
//! aether_testkit::storage_conformance(|| Arc::new(MemoryStore::new()), None::<fn() -> Arc<MemoryStore>>);
//! ```

// The suites fail by panicking with a message that names the broken rule: that is how a test
// reports, so unwrap and expect are the right tools here (this crate is never in a node).
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod crash;
pub mod file_store;
mod network;
pub mod sim;
mod storage;
pub mod vm_conformance;

pub use network::{network_conformance, NetworkHarness};
pub use storage::{storage_conformance, storage_crash_conformance, CrashSettings, CRASH_CHILD_ENV};

// The lower crates under their usual names, so paths inside this crate read `crate::types`.
use aether_api::{consensus, storage as kv};
use aether_primitives::{codec, types};
