//! [`NodeHandle`]: the running node's API (for RPC, tools and tests), and the views it returns.

use std::path::PathBuf;
use std::sync::{Arc, Weak};

use tokio::sync::{broadcast, mpsc};

use super::sync::SyncStatus;
use super::{EvidenceQueueError, NodeMetrics, TX_TOPIC};
use crate::consensus::{BlockRef, Evidence};
use crate::ledger::{CommittedTx, Ledger, LedgerError};
use crate::mempool::{Mempool, SubmitError};
use crate::network::Network;
use crate::types::{Account, Address, Block, Certificate, Hash, Header, Height, TimestampMs};

/// A committed block announced to subscribers.
#[derive(Debug, Clone)]
pub struct NewHead {
    pub hash: Hash,
    pub header: Header,
    pub tx_count: usize,
}

/// What the node is running.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub chain_id: String,
    pub genesis_hash: Hash,
    pub engine: String,
    pub storage: String,
    /// The VM backend, if contracts run on this node.
    pub vm: Option<String>,
    pub mempool_policy: String,
    pub validator: Option<Address>,
    /// Whether this validator signs. `false` on a validator whose chain has commits but whose
    /// consensus safety state is missing: it follows the chain without signing until started
    /// with `--fresh-safety-state` (see [`crate::consensus::ConsensusEngine::keeps_safety_state`]).
    pub signing: bool,
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone)]
pub struct NodeStatus {
    pub info: NodeInfo,
    pub head: BlockRef,
    pub head_time_ms: TimestampMs,
    pub state_root: Hash,
    pub mempool_size: usize,
}

/// Where a transaction stands.
#[derive(Debug, Clone)]
pub enum TxLookup {
    Committed(Box<CommittedTx>),
    Pending,
    Unknown,
}

/// A cheap, cloneable view of a running node.
///
/// It does not keep the node's parts alive: after [`super::Node::shutdown`] the ledger,
/// mempool and network are gone (the database lock and the network's sockets are released, so
/// the node can be started again on the same data directory and addresses while handles
/// remain), and calls that need them return [`LedgerError::NodeStopped`] /
/// [`SubmitError::NodeStopped`]. A handle call still running while the node shuts down holds
/// the ledger until it returns, so the store closes when that call ends.
#[derive(Clone)]
pub struct NodeHandle {
    pub(super) ledger: Weak<Ledger>,
    pub(super) mempool: Weak<Mempool>,
    pub(super) max_tx_bytes: usize,
    pub(super) metrics: Arc<NodeMetrics>,
    pub(super) heads: broadcast::Sender<Arc<NewHead>>,
    pub(super) info: Arc<NodeInfo>,
    pub(super) evidence: mpsc::Sender<Evidence>,
    pub(super) network: Option<Weak<dyn Network>>,
    pub(super) sync: Arc<parking_lot::Mutex<SyncStatus>>,
}

impl NodeHandle {
    /// Hands evidence of misbehaviour to the node (as a peer's gossip would): the consensus
    /// engine checks it, and if it proves what it claims the node gossips it and records it in
    /// a block it proposes. Returns an error only if the node's queue is full or it stopped;
    /// evidence that does not verify is dropped with a warning in the log.
    pub fn submit_evidence(&self, evidence: Evidence) -> Result<(), EvidenceQueueError> {
        self.evidence.try_send(evidence).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => EvidenceQueueError::Full,
            mpsc::error::TrySendError::Closed(_) => EvidenceQueueError::Stopped,
        })
    }

    /// Where block sync stands.
    pub fn sync_status(&self) -> SyncStatus {
        self.sync.lock().clone()
    }

    /// The connected peers and the network's counters; `None` without a network.
    pub fn network(&self) -> Option<(Vec<crate::network::PeerId>, crate::network::NetworkStats)> {
        self.network.as_ref().and_then(Weak::upgrade).map(|n| (n.peers(), n.stats()))
    }

    pub fn info(&self) -> &NodeInfo {
        &self.info
    }

    /// The node's ledger, while it runs.
    pub fn ledger(&self) -> Result<Arc<Ledger>, LedgerError> {
        self.ledger.upgrade().ok_or(LedgerError::NodeStopped)
    }

    fn mempool(&self) -> Option<Arc<Mempool>> {
        self.mempool.upgrade()
    }

    pub fn status(&self) -> Result<NodeStatus, LedgerError> {
        let head = self.ledger()?.head();
        Ok(NodeStatus {
            info: (*self.info).clone(),
            head: head.block,
            head_time_ms: head.header.time_ms,
            state_root: head.header.state_root,
            mempool_size: self.mempool().map_or(0, |m| m.len()),
        })
    }

    /// Largest encoded transaction the mempool accepts.
    pub fn max_tx_bytes(&self) -> usize {
        self.max_tx_bytes
    }

    /// Admits an encoded transaction to the mempool and, if admitted, publishes it on the
    /// gossip topic [`TX_TOPIC`] so whichever validator leads next can include it.
    pub fn submit(&self, bytes: &[u8]) -> Result<Hash, SubmitError> {
        let Some(mempool) = self.mempool() else { return Err(SubmitError::NodeStopped) };
        let result = mempool.submit(bytes);
        match &result {
            Ok(_) => {
                self.metrics.mempool(mempool.len(), mempool.bytes());
                if let Some(n) = self.network.as_ref().and_then(Weak::upgrade) {
                    if let Err(e) = n.publish(TX_TOPIC, bytes.to_vec()) {
                        tracing::debug!(error = %e, "transaction not gossiped");
                    }
                }
            }
            Err(e) => self.metrics.rejected(e),
        }
        result
    }

    /// Counts a submission refused before it reached the mempool (e.g. by the RPC layer's own
    /// decoding) and hands the error back.
    pub fn refused(&self, error: SubmitError) -> SubmitError {
        self.metrics.rejected(&error);
        error
    }

    pub fn metrics(&self) -> &Arc<NodeMetrics> {
        &self.metrics
    }

    pub fn account(&self, address: &Address) -> Result<Account, LedgerError> {
        self.ledger()?.account(address)
    }

    /// The nonce `address`'s next transaction should carry, counting its pending ones.
    pub fn next_nonce(&self, address: &Address) -> Result<u64, LedgerError> {
        let committed = self.ledger()?.account(address)?.nonce;
        Ok(self.mempool().and_then(|m| m.next_nonce(address)).map_or(committed, |n| n.max(committed)))
    }

    pub fn block_by_height(&self, height: Height) -> Result<Option<(Block, Certificate)>, LedgerError> {
        self.ledger()?.block_by_height(height)
    }

    pub fn block_by_hash(&self, hash: &Hash) -> Result<Option<(Block, Certificate)>, LedgerError> {
        self.ledger()?.block_by_hash(hash)
    }

    pub fn transaction(&self, hash: &Hash) -> Result<TxLookup, LedgerError> {
        if let Some(tx) = self.ledger()?.transaction(hash)? {
            return Ok(TxLookup::Committed(Box::new(tx)));
        }
        Ok(if self.mempool().is_some_and(|m| m.contains(hash)) { TxLookup::Pending } else { TxLookup::Unknown })
    }

    /// Committed heads from now on. A slow subscriber misses heads (and is told how many)
    /// rather than slowing the node.
    pub fn subscribe_heads(&self) -> broadcast::Receiver<Arc<NewHead>> {
        self.heads.subscribe()
    }
}
