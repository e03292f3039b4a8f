//! Why a node could not start, or stopped.

use crate::consensus::driver::DriverError;
use crate::ledger::LedgerError;
use crate::network::NetworkError;
use crate::registry::{PluginError, RegistryError};
use crate::types::{Address, GenesisError, PublicKey};

/// Why a node refused to start, or why a node stopped.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Genesis(#[from] GenesisError),
    #[error("validator key {identity} (address {address}) is not in the genesis validator set")]
    NotAValidator { identity: PublicKey, address: Address },
    #[error("genesis has {validators} validators, which needs a network: add a [network] section (`aether init --validators N` writes one per validator), or run them in one process with `aether devnet --in-process --dir DIR`")]
    NetworkRequired { validators: usize },
    #[error("network: cannot subscribe to {topic}: {source}")]
    Subscribe { topic: &'static str, source: NetworkError },
    #[error("cannot start the {name} thread: {source}")]
    Thread { name: &'static str, source: std::io::Error },
    #[error("genesis pins runtime module {name} at version {pinned}, but this node has {found}: run the build the chain runs")]
    ModuleVersion { name: String, pinned: u32, found: String },
    #[error("the consensus thread panicked")]
    DriverPanicked,
    #[error(transparent)]
    Driver(#[from] DriverError),
    #[error("state sync: {0}")]
    StateSync(Box<super::state_sync::StateSyncError>),
    #[error("consensus for the current epoch: {0}")]
    Epoch(Box<super::epochs::EpochError>),
}

impl From<super::epochs::EpochError> for NodeError {
    fn from(e: super::epochs::EpochError) -> Self {
        NodeError::Epoch(Box::new(e))
    }
}

impl From<super::state_sync::StateSyncError> for NodeError {
    fn from(e: super::state_sync::StateSyncError) -> Self {
        // Boxed: the sync error carries a ledger error, and NodeError travels in every Result.
        NodeError::StateSync(Box::new(e))
    }
}

/// Why [`super::NodeHandle::submit_evidence`] could not hand evidence to the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceQueueError {
    #[error("evidence not queued: the node's evidence queue is full")]
    Full,
    #[error("evidence not queued: the node has stopped")]
    Stopped,
}
