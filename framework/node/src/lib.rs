//! # aether-node
//!
//! The parts every Aether node shares, built on the plugin API: the [`ledger`] (accounts,
//! blocks, execution, receipts, retention) over the authenticated [`state`] tree, the
//! [`mempool`], layered [`config`], [`snapshot`]s, the built-in plugins ([`solo`], the `fee` and
//! `fifo` policies, see [`builtins`]), and [`node`]: the assembled, running node (its driver
//! loop, side effects, evidence pool, background services and the [`node::NodeHandle`] API).
//!
//! What it is **not**: a plugin. It holds no database, VM, network or RPC server; those are
//! registered by name (`aether-api`'s registry) and assembled by a preset. Storage, consensus
//! and VM plugins never depend on this crate; the RPC server does, because it serves the
//! running node's API ([`node::NodeHandle`]).
//!
//! ## Example: a single-validator chain in memory
//! ```
//! use std::sync::Arc;
//! use aether_node::ledger::Ledger;
//! use aether_primitives::types::*;
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

pub mod builtins;
pub mod config;
pub mod ledger;
pub mod light;
pub mod mempool;
pub mod node;
pub mod snapshot;
pub mod solo;
pub mod state;

// The lower crates under their usual names, so paths inside this crate read `crate::types`.
use aether_api::{chain, consensus, module, network, registry, storage};
use aether_primitives::{codec, types};
use aether_vm as vm;
