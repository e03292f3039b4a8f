//! # aether-api
//!
//! The plugin API of Aether: one trait per slot a node is assembled from, the types those
//! traits speak, and the [`registry`] that maps names in config to plugin factories. A storage
//! backend, consensus engine or network plugin depends on this crate and `aether-primitives`
//! only; a VM backend also on `aether-vm`, the machinery every WebAssembly engine shares.
//!
//! - [`consensus`]: sans-I/O engines ([`consensus::ConsensusEngine`], `Input`/`Output`), the
//!   validator set, and the [`consensus::driver::Driver`] that enforces the engine contract.
//! - [`storage`]: the key-value store with columns, atomic batches and snapshots.
//! - [`vm`]: the WebAssembly backend and host traits (the shared machinery is `aether-vm`).
//! - [`network`], [`da`]: peers and topics; block dissemination.
//! - [`mempool`]: the ordering-policy slot.
//! - [`registry`]: factories by name, plugin settings, [`registry::PluginError`].
//! - [`chain`]: the chain parameters and module upgrades governance may change.
//!
//! What it is **not**: no database, ledger, config loader or node. Those are `aether-node` and
//! the plugins; `aether-framework` re-exports everything for application code.
//!
//! ## Example: a storage backend is a `KvStore` registered by name
//! ```
//! use std::sync::Arc;
//! use aether_api::registry::Registry;
//! use aether_api::storage::KvStore;
//!
//! let mut registry = Registry::new();
//! registry.storage.register("mine", "my backend", Box::new(|ctx, _settings| {
//!     // Open a store at ctx.path with the columns of ctx.schema, e.g.:
//!     Err(aether_api::registry::PluginError::Start { plugin: "mine".into(), reason: format!("not built ({})", ctx.path.display()) })
//! }));
//! assert_eq!(registry.storage.names(), vec!["mine".to_string()]);
//! # let _: Option<Arc<dyn KvStore>> = None;
//! ```

pub mod chain;
pub mod consensus;
pub mod da;
pub mod mempool;
pub mod module;
pub mod network;
pub mod registry;
pub mod storage;
pub mod vm;

// The primitives under their usual names, so paths inside this crate read `crate::types`.
use aether_primitives::types;
