//! Node assembly: builds the plugins named by config from a registry, opens the ledger, and
//! runs the consensus driver on its own thread. [`NodeHandle`] is the node's API for RPC and
//! tools.
//!
//! Order of start-up (so bad config never touches disk): validator set and key, consensus
//! engine, mempool policy — all from config — then the storage backend is opened, the ledger
//! checks the data directory belongs to this genesis, and the driver starts.
//!
//! Shutdown ([`Node::shutdown`], also on drop) stops the driver between two steps: a block
//! being committed finishes committing (one synced batch), nothing half-written remains.

//! Parts, one job each:
//! - [`NodeBuilder`]: a node assembled one slot at a time (by config, name, typed settings
//!   or instance);
//! - `launch`: starting and stopping a [`Node`];
//! - `handle`: [`NodeHandle`], the API RPC and tools use, and its views;
//! - `driver_loop`: the thread that feeds the consensus engine its inputs;
//! - `effects`: what the engine's outputs do (send, persist, build, verify, commit);
//! - `evidence_pool`: verified misbehaviour waiting to be recorded in a block;
//! - `services`: transaction gossip and pruning threads;
//! - [`sync`]: block sync, beside consensus;
//! - [`state_sync`]: an empty node's start from a peer's state at a final height;
//! - [`Clock`], [`NodeError`], [`NodeMetrics`]; the topics are the network API's.

mod builder;
mod clock;
mod driver_loop;
mod effects;
mod epochs;
mod error;
mod evidence_pool;
mod handle;
mod launch;
pub mod metrics;
mod services;
pub mod state_sync;
pub mod sync;
#[cfg(test)]
pub(crate) mod testing;

pub use crate::network::topics::{CONSENSUS_TOPIC, EVIDENCE_TOPIC, MAX_EVIDENCE_BYTES, SYNC_TOPIC, TX_TOPIC};
pub use builder::{BuildError, NodeBuilder, PreparedNode};
pub use clock::{Clock, SystemClock};
pub use error::{EvidenceQueueError, NodeError};
pub use handle::{NewHead, NodeHandle, NodeInfo, NodeStatus, TxLookup};
pub use launch::{open_network, open_store, Node};
pub use metrics::NodeMetrics;
pub use state_sync::{StateSyncError, StateSyncReport};
pub use sync::SyncStatus;
