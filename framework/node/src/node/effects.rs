//! The node's side effects for the consensus driver ([`DriverIo`]): sending consensus
//! messages, persisting the safety state, building, verifying and committing blocks.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::broadcast;

use super::evidence_pool::EvidencePool;
use super::{NewHead, NodeMetrics, CONSENSUS_TOPIC};
use crate::codec;
use crate::consensus::driver::{BuildError, DriverError, DriverIo, PayloadCheck};
use crate::consensus::{BlockRef, ConsensusEngine, Evidence, Payload, ValidatorIndex};
use crate::ledger::{Ledger, LedgerError, MAX_BLOCK_BYTES};
use crate::mempool::Mempool;
use crate::network::{Network, PeerId};
use crate::storage::{columns, Durability, KvStore, WriteBatch};
use crate::types::{Address, Block, Certificate, TimestampMs};

/// The node's side effects for the driver.
pub(super) struct NodeIo {
    pub(super) ledger: Arc<Ledger>,
    pub(super) mempool: Arc<Mempool>,
    pub(super) store: Arc<dyn KvStore>,
    pub(super) heads: broadcast::Sender<Arc<NewHead>>,
    /// Where the current epoch's engine keeps its safety state ([`super::epochs::safety_key`]).
    pub(super) safety_key: Vec<u8>,
    /// The epoch of the running engine: consensus messages travel tagged with it.
    pub(super) epoch: u64,
    /// Set when a commit ended the epoch: the driver loop starts the next epoch's engine on
    /// this block before it feeds anything else.
    pub(super) epoch_ended: Option<(BlockRef, Certificate)>,
    pub(super) proposer: Address,
    pub(super) max_block_txs: usize,
    pub(super) committed_since_check: bool,
    pub(super) metrics: Arc<NodeMetrics>,
    pub(super) network: Option<Arc<dyn Network>>,
    /// Validator identities by index (where `send` goes).
    pub(super) peers: Vec<PeerId>,
    pub(super) evidence: EvidencePool,
}

impl DriverIo for NodeIo {
    fn broadcast(&mut self, bytes: Vec<u8>) {
        // Without a network there is one validator and nobody to tell (launch checks this).
        if let Some(n) = &self.network {
            if let Err(e) = n.broadcast(CONSENSUS_TOPIC, tag_epoch(self.epoch, bytes)) {
                tracing::debug!(error = %e, "consensus broadcast not sent");
            }
        }
    }

    fn send(&mut self, to: ValidatorIndex, bytes: Vec<u8>) {
        if let (Some(n), Some(peer)) = (&self.network, self.peers.get(to as usize)) {
            if peer == &n.local_peer() {
                return;
            }
            if let Err(e) = n.send(peer, CONSENSUS_TOPIC, tag_epoch(self.epoch, bytes)) {
                tracing::debug!(to, error = %e, "consensus message not sent");
            }
        }
    }

    fn persist(&mut self, state: &[u8]) -> Result<(), DriverError> {
        let mut batch = WriteBatch::default();
        batch.put(columns::CONSENSUS, self.safety_key.clone(), state.to_vec());
        self.store.write(batch, Durability::Synced).map_err(|e| DriverError::Persist(e.to_string()))
    }

    fn build_payload(&mut self, parent: &BlockRef, parent_certificate: &Certificate, now_ms: TimestampMs) -> Result<Payload, BuildError> {
        let started = Instant::now();
        // On an uncommitted parent (pipelined engines), the mempool still holds the ancestors'
        // transactions: look past them so the block can still fill up.
        let in_ancestors = self.ledger.uncommitted_transactions(&parent.hash).map_err(build_error)?;
        let candidates: Vec<_> = self
            .mempool
            .select(self.max_block_txs + in_ancestors.len())
            .into_iter()
            .filter(|tx| in_ancestors.is_empty() || !in_ancestors.contains(&tx.hash()))
            .take(self.max_block_txs)
            .collect();
        let built = self
            .ledger
            .build_block(&parent.hash, parent_certificate.clone(), candidates, self.evidence.pending().to_vec(), now_ms, self.proposer)
            .map_err(build_error)?;
        if !built.rejected.is_empty() {
            tracing::debug!(count = built.rejected.len(), "dropping mempool transactions that no longer apply");
            self.mempool.drop_rejected(&built.rejected.iter().map(|(h, _)| *h).collect::<Vec<_>>());
        }
        let executed = built.executed;
        self.metrics.built(started.elapsed().as_secs_f64());
        let empty = executed.block.transactions.is_empty() && executed.block.evidence.is_empty();
        Ok(Payload { block: executed.block_ref(), parent: parent.hash, bytes: codec::encode(&executed.block), empty })
    }

    fn verify_payload(&mut self, bytes: &[u8], engine: &dyn ConsensusEngine) -> PayloadCheck {
        let block: Block = match codec::decode("block", bytes, MAX_BLOCK_BYTES) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "proposed block does not decode");
                return PayloadCheck::Undecodable;
            }
        };
        let block_ref = BlockRef { hash: block.hash(), height: block.header.height };
        let parent = block.header.parent;
        let empty = block.transactions.is_empty() && block.evidence.is_empty();
        for e in &block.evidence {
            if let Err(error) = engine.verify_evidence(e) {
                tracing::warn!(block = %block_ref.hash, %error, "proposed block records evidence that does not verify");
                return PayloadCheck::Decoded { block: block_ref, parent, valid: false, empty };
            }
        }
        match self.ledger.execute_block(block) {
            Ok(_) => PayloadCheck::Decoded { block: block_ref, parent, valid: true, empty },
            Err(e) => {
                tracing::warn!(block = %block_ref.hash, error = %e, "proposed block is invalid");
                PayloadCheck::Decoded { block: block_ref, parent, valid: false, empty }
            }
        }
    }

    fn commit(&mut self, block: &BlockRef, certificate: &Certificate) -> Result<(), DriverError> {
        if let Some((last, _)) = &self.epoch_ended {
            // An engine bug: nothing of the next epoch is this engine's to decide.
            return Err(DriverError::Commit {
                block: *block,
                reason: format!("the engine of epoch {} committed past its last block {}", self.epoch, last.height),
            });
        }
        let started = Instant::now();
        let executed =
            self.ledger.commit(&block.hash, certificate).map_err(|e| DriverError::Commit { block: *block, reason: e.to_string() })?;
        let commit_seconds = started.elapsed().as_secs_f64();
        self.mempool.on_committed(&executed.block);
        if !executed.block.evidence.is_empty() {
            self.evidence.remove_recorded(&executed.block.evidence);
            tracing::info!(height = block.height, count = executed.block.evidence.len(), "evidence recorded");
        }
        self.committed_since_check = true;
        let tx_count = executed.block.transactions.len();
        self.metrics.committed(block.height, tx_count, commit_seconds);
        self.metrics.mempool(self.mempool.len(), self.mempool.bytes());
        // An idle chain still commits (a heartbeat); its empty blocks are not news.
        if tx_count == 0 && executed.block.evidence.is_empty() {
            tracing::debug!(height = block.height, hash = %block.hash, "committed an empty block");
        } else {
            tracing::info!(height = block.height, hash = %block.hash, txs = tx_count, "committed");
        }
        if executed.block.header.next_validators.is_some() && self.ledger.epochs().is_some() {
            tracing::info!(height = block.height, epoch = self.epoch, "the epoch's last block is committed");
            self.epoch_ended = Some((*block, certificate.clone()));
        }
        let _ = self.heads.send(Arc::new(NewHead { hash: block.hash, header: executed.block.header.clone(), tx_count }));
        Ok(())
    }

    fn evidence(&mut self, evidence: Evidence) {
        // From this node's own engine, which built it from messages it verified.
        self.evidence.add(evidence);
    }
}

/// A consensus message on the wire: the epoch of the engine that sent it (8 bytes, little
/// endian), then the engine's bytes. A node hands an engine only its own epoch's messages.
pub(super) fn tag_epoch(epoch: u64, bytes: Vec<u8>) -> Vec<u8> {
    let mut tagged = Vec::with_capacity(8 + bytes.len());
    tagged.extend_from_slice(&epoch.to_le_bytes());
    tagged.extend(bytes);
    tagged
}

/// The epoch and the engine's bytes of a consensus message (`None`: too short to carry one).
pub(super) fn untag_epoch(mut bytes: Vec<u8>) -> Option<(u64, Vec<u8>)> {
    let epoch = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    bytes.drain(..8);
    Some((epoch, bytes))
}

fn build_error(e: LedgerError) -> BuildError {
    match e {
        LedgerError::UnknownParent(parent) => BuildError::UnknownParent(parent),
        other => BuildError::Ledger(Box::new(other)),
    }
}
