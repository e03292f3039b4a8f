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
        let (pool, epoch) = (&self.evidence, self.epoch);
        check_proposed_block(&self.ledger, engine, block, |e| pool.check(e, engine, epoch))
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

/// Checks a proposed (decoded) block for the engine: the certificate its header carries for
/// its parent is one the engine issues for that parent (modules count its signers, so a
/// proposer must not make them up), every piece of evidence it records verifies, and it
/// executes on its parent to the roots its header claims (then the ledger keeps it).
pub(super) fn check_proposed_block(
    ledger: &Ledger,
    engine: &dyn ConsensusEngine,
    block: Block,
    check_evidence: impl Fn(&Evidence) -> Result<(), String>,
) -> PayloadCheck {
    let block_ref = BlockRef { hash: block.hash(), height: block.header.height };
    let parent = block.header.parent;
    let empty = block.transactions.is_empty() && block.evidence.is_empty();
    let refused = PayloadCheck::Decoded { block: block_ref, parent, valid: false, empty };
    // A block claiming height 0 is refused by the ledger below whatever this says.
    let parent_ref = BlockRef { hash: parent, height: block.header.height.saturating_sub(1) };
    if let Err(error) = engine.verify_parent_certificate(&parent_ref, &block.header.parent_certificate) {
        tracing::warn!(block = %block_ref.hash, %error, "proposed block carries a parent certificate the engine refuses");
        return refused;
    }
    for e in &block.evidence {
        if let Err(error) = check_evidence(e) {
            tracing::warn!(block = %block_ref.hash, %error, "proposed block records evidence that does not verify");
            return refused;
        }
    }
    match ledger.execute_block(block) {
        Ok(_) => PayloadCheck::Decoded { block: block_ref, parent, valid: true, empty },
        Err(e) => {
            tracing::warn!(block = %block_ref.hash, error = %e, "proposed block is invalid");
            refused
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::Input;
    use crate::ledger::ChainHead;
    use crate::solo::{SoloEngine, SoloSettings};
    use crate::types::{Genesis, GenesisValidator, Keypair};
    use aether_storage_memory::MemoryStore;

    /// Evidence checked by `engine` alone (these chains have no epochs).
    fn same_epoch(engine: &dyn ConsensusEngine) -> impl Fn(&Evidence) -> Result<(), String> + '_ {
        |e| engine.verify_evidence(e).map_err(|e| e.to_string())
    }

    fn ledger(genesis: &Genesis) -> Ledger {
        Ledger::open(Arc::new(MemoryStore::new()), genesis).unwrap()
    }

    #[test]
    fn a_proposed_block_whose_parent_certificate_the_engine_refuses_is_invalid() {
        let key = Keypair::from_seed([3; 32]);
        let genesis = Genesis {
            chain_id: "proposals".into(),
            genesis_time_ms: 0,
            accounts: vec![],
            validators: vec![GenesisValidator {
                name: "v".into(),
                identity: key.public(),
                consensus_key: key.public().0.to_vec(),
                stake: 1,
            }],
            modules: vec![],
            epochs: None,
        };
        let (proposer, honest) = (ledger(&genesis), ledger(&genesis));
        let mut engine = SoloEngine::new(key.clone(), SoloSettings::default());
        let head = honest.head();
        engine.handle(0, Input::Start { committed: head.block, certificate: head.certificate.clone(), safety_state: None }, &mut vec![]);
        let build = |parent: &ChainHead, certificate: Certificate| {
            let built = proposer.build_block(&parent.block.hash, certificate, vec![], vec![], 10, key.address()).unwrap();
            built.executed.block.clone()
        };
        let valid = |check: PayloadCheck| matches!(check, PayloadCheck::Decoded { valid: true, .. });

        // Block 1 on genesis carries genesis's (empty) certificate.
        let one = build(&head, head.certificate.clone());
        assert!(valid(check_proposed_block(&honest, &engine, one.clone(), same_epoch(&engine))));
        let one_ref = BlockRef { hash: one.hash(), height: 1 };
        let seal = engine.certify(&one_ref);
        proposer.commit(&one_ref.hash, &seal).unwrap();
        honest.commit(&one_ref.hash, &seal).unwrap();

        // Block 2 must carry block 1's real seal: another key's seal of it, or garbage, makes an
        // otherwise valid block invalid (modules would count its made-up signer).
        let head = proposer.head();
        let forged = SoloEngine::new(Keypair::from_seed([4; 32]), SoloSettings::default()).certify(&one_ref);
        for bad in [forged, Certificate(vec![7; 64]), Certificate::default()] {
            let block = build(&head, bad.clone());
            assert!(
                !valid(check_proposed_block(&honest, &engine, block, same_epoch(&engine))),
                "{bad:?} accepted as block 1's certificate"
            );
        }
        assert!(valid(check_proposed_block(&honest, &engine, build(&head, seal), same_epoch(&engine))));
    }
}
