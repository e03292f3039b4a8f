//! # aether-storage-bench
//!
//! The criterion benchmarks of the storage backends, side by side in one run
//! (`benches/state.rs`: `cargo bench --workspace --bench state`). A crate of its own because
//! the workloads run the node's authenticated state (`aether-benchkit`), which no storage
//! backend may depend on, not even from its own tests. It has no library code.
//!
//! ```
//! // Every backend here is registered under the name its bench uses.
//! let mut registry = aether_api::registry::Registry::new();
//! aether_storage_memory::register(&mut registry);
//! aether_storage_rocksdb::register(&mut registry);
//! aether_storage_paritydb::register(&mut registry);
//! assert_eq!(registry.storage.names(), ["memory", "paritydb", "rocksdb"]);
//! ```
