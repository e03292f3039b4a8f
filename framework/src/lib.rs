//! # aether-framework
//!
//! The core of Aether, a framework for building blockchains from swappable parts. It defines
//! what a chain is made of — consensus, storage, VM, networking, data availability, mempool
//! ordering — as traits, and provides the parts every chain shares: types and their canonical
//! encoding, the ledger, the mempool, the plugin registry, layered config, and the node driver.
//!
//! What it is **not**: it holds no database, VM, network or RPC server of its own. Those are
//! plugins (`storage-backends/`, `vm-backends/`, `plugins/`), assembled by presets (`presets/`).
//! The built-in `solo` engine and the `fee`/`fifo` mempool policies are the only plugins here.
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
//!     genesis_time_ms: 0,
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
//! ## Map
//! - [`types`], [`codec`], [`merkle`]: data and its one encoding.
//! - Slots: [`consensus`] (sans-I/O engines), [`storage`], [`vm`], [`network`], [`da`],
//!   [`mempool::OrderingPolicy`].
//! - [`ledger`]: state and execution. [`mempool`]: admission and ordering.
//! - [`registry`] and [`config`]: plugins by name, layered settings.
//! - [`node`]: assembly, the driver, and the [`node::NodeHandle`] API.
//! - [`sim`]: the deterministic consensus simulator every engine is tested in.
//! - [`testkit`]: conformance suites plugin authors run against their plugins; `benchkit`
//!   (feature `bench`): the storage benchmark workloads every backend runs.

#[cfg(feature = "bench")]
pub mod benchkit;
pub mod codec;
pub mod config;
pub mod consensus;
pub mod da;
pub mod ledger;
pub mod mempool;
pub mod merkle;
pub mod network;
pub mod node;
pub mod registry;
pub mod sim;
pub mod snapshot;
pub mod state;
pub mod storage;
pub mod testkit;
pub mod types;
pub mod vm;
