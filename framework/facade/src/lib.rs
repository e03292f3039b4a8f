//! # aether-framework
//!
//! The core of Aether, a framework for building blockchains from swappable parts, behind one
//! import. It re-exports the framework's crates, which a plugin author depends on one by one:
//!
//! | crate | what it holds | who depends on it |
//! |---|---|---|
//! | `aether-primitives` | [`types`], [`codec`], [`merkle`]: data and its one encoding | everyone |
//! | `aether-api` | the slot traits ([`consensus`], [`storage`], [`vm`], [`network`], [`da`], [`mempool::OrderingPolicy`]), the consensus driver, the [`registry`] | every plugin |
//! | `aether-vm` | [`vm`] validation, gas instrumentation, host ABI, executor, module cache | VM backends, the node |
//! | `aether-node` | [`ledger`], [`state`], [`mempool`], [`config`], [`snapshot`], the built-in `solo` engine, the running [`node`] | presets, RPC, applications |
//! | `aether-testkit`, `aether-benchkit` | `sim` and the conformance suites; the storage bench workloads (features `testkit`, `bench`) | tests and benches only |
//!
//! What it is **not**: it holds no database, VM, network or RPC server of its own. Those are
//! plugins (`storage-backends/`, `vm-backends/`, `plugins/`), assembled by presets (`presets/`).
//!
//! ## Example: a single-validator chain in memory
//! ```
//! use std::sync::Arc;
//! use aether_framework::ledger::Ledger;
//! use aether_framework::types::*;
//! use aether_storage_memory::MemoryStore;
//!
//! let validator = Keypair::from_seed([1; 32]);
//! let alice = Keypair::from_seed([2; 32]);
//! let genesis = Genesis {
//!     chain_id: "demo".into(),
//!     genesis_time_ms: 0, modules: vec![], epochs: None,
//!     accounts: vec![GenesisAccount { address: alice.address(), balance: 1_000 }],
//!     validators: vec![GenesisValidator {
//!         name: "v0".into(), identity: validator.public(),
//!         consensus_key: validator.public().0.to_vec(), stake: 1,
//!     }],
//! };
//! let ledger = Ledger::open(Arc::new(MemoryStore::new()), &genesis).unwrap();
//! let tx = TxBody {
//!     chain_id: "demo".into(), sender: alice.public(), nonce: 0, fee: 1,
//!     action: Action::Transfer { to: Address([9; 20]), amount: 100, memo: vec![] },
//! }.sign(&alice);
//! let head = ledger.head();
//! let built = ledger.build_block(&head.block.hash, head.certificate, vec![tx], vec![], 1_000, validator.address()).unwrap().executed;
//! ledger.commit(&built.hash, &Certificate(vec![])).unwrap();
//! assert_eq!(ledger.account(&Address([9; 20])).unwrap().balance, 100);
//! assert_eq!(ledger.account(&alice.address()).unwrap().balance, 899);
//! ```
//!
//! ## Features
//! - `testkit`: re-exports `aether-testkit` as [`testkit`] and [`sim`], and the VM suite as
//!   `vm::conformance`. For tests; a node build never enables it.
//! - `bench`: the storage benchmark workloads (`benchkit`).

pub use aether_api::{chain, da, module, network, storage};
pub use aether_node::{builtins, config, ledger, light, mempool, node, snapshot, state};
pub use aether_primitives::{codec, merkle, types};

/// The consensus slot (`aether-api`) and the built-in `solo` engine (`aether-node`).
pub mod consensus {
    pub use aether_api::consensus::*;
    pub use aether_node::solo;
}

/// Plugins by name (`aether-api`), the built-ins and presets (`aether-node`).
pub mod registry {
    pub use aether_api::registry::*;
    pub use aether_node::builtins::Preset;
}

/// The VM slot's traits and shared machinery (`aether-vm`).
pub mod vm {
    /// The VM conformance suite (`aether_testkit::vm_conformance`).
    #[cfg(feature = "testkit")]
    pub use aether_testkit::vm_conformance as conformance;
    pub use aether_vm::*;
}

#[cfg(feature = "bench")]
pub use aether_benchkit as benchkit;
#[cfg(feature = "testkit")]
pub use aether_testkit as testkit;
#[cfg(feature = "testkit")]
pub use aether_testkit::sim;
