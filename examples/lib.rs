//! # aether-examples
//!
//! Runnable examples, one per extension point. Each is a file beside this one; run one with
//! `cargo run --example NAME`, and `cargo test --workspace` runs their tests.
//!
//! | example | extension point |
//! |---|---|
//! | `swap_one_part` | [`NodeBuilder`](aether_framework::node::NodeBuilder): the default preset with its storage swapped for a ParityDB instance and typed consensus settings |
//! | `custom_storage` | a storage backend written here (an append-only log file), through the storage conformance kit, then under a node |
//! | `custom_mempool_policy` | an ordering policy registered in a preset extension and chosen by config |
//! | `my_chain` | a chain's own binary: the `aether` preset extended with one plugin, the reusable CLI (`aether_cli::main`) |
//!
//! The custom backend is kept in this library so that `my_chain` can register it too.

pub mod log_store;
