//! One simulated node's side effects: the [`DriverIo`] the real driver performs outputs on.
//!
//! Blocks are small stand-ins ([`SimBlock`]) so that hundreds of runs fit in seconds; what the
//! simulator checks is consensus (which block, in which order, with which certificate), not
//! execution, which the ledger's own tests cover.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use borsh::{BorshDeserialize, BorshSerialize};

use crate::consensus::driver::{BuildError, DriverError, DriverIo, PayloadCheck};
use crate::consensus::{BlockRef, Evidence, Payload, ValidatorIndex};
use crate::types::{Certificate, Hash, Height, TimestampMs};

use super::epochs::{decode_block, encode_block, Members, SimEpochs, MAX_BLOCK_EVIDENCE};

/// The block a simulated node builds: enough to be unique and to name its parent.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SimBlock {
    pub parent: Hash,
    pub height: Height,
    pub builder: ValidatorIndex,
    /// Distinguishes two blocks a builder makes on one parent (an equivocating twin does).
    pub nonce: u64,
    /// Stand-in transactions the block carries (0: an empty block).
    pub transactions: u32,
}

impl SimBlock {
    pub fn hash_of(bytes: &[u8]) -> Hash {
        Hash::digest(b"aether/sim-block", bytes)
    }
}

/// What one node (one slot; twins are two slots with one key) did, read by the checkers.
#[derive(Default)]
pub struct NodeIo {
    pub(crate) index: ValidatorIndex,
    /// Messages to hand to the network: `None` is a broadcast.
    pub(crate) outbox: Vec<(Option<ValidatorIndex>, Vec<u8>)>,
    /// Survives a crash: what the engine persisted last.
    pub persisted: Option<Vec<u8>>,
    /// Survives a crash: committed blocks in order, with their certificates.
    pub committed: Vec<(BlockRef, Certificate)>,
    /// Virtual time of each commit (genesis at 0), parallel to `committed`.
    pub commit_times: Vec<TimestampMs>,
    /// The simulator's clock, set before each step.
    pub(crate) now: TimestampMs,
    /// Lost on a crash: blocks built or verified but not committed (hash -> block, parent).
    pub(crate) known: HashMap<Hash, (BlockRef, Hash)>,
    /// Every block this node built (the validity checker's "was proposed").
    pub built: Vec<Hash>,
    /// Virtual time each block in `built` was built at (for commit latency).
    pub built_times: Vec<TimestampMs>,
    pub evidence: Vec<Evidence>,
    /// Contract violations by the engine (commits out of order, of unknown blocks, ...).
    pub violations: Vec<String>,
    pub(crate) nonce: u64,
    pub persists: u64,
    /// Every block is built with transactions (a loaded chain); otherwise only while
    /// `pending` (transactions arrived and are not yet in a block).
    pub(crate) loaded: bool,
    pub(crate) pending: bool,
    /// A commit happened since the simulator last looked (it then tells a loaded node's
    /// engine that transactions wait, as the node does when its mempool still holds some).
    pub(crate) committed_since_check: bool,
    /// Blocks this node built with transactions.
    pub carrying: Vec<Hash>,
    /// Lost on a crash: known blocks that carry transactions.
    pub(crate) known_carrying: std::collections::HashSet<Hash>,
    /// A crash is due right after the next effect (a message, a persist or a commit).
    pub(crate) crash_armed: bool,
    /// The process died mid-step: later effects of the step are not performed.
    pub(crate) crashed: bool,
    /// The engine's persist-before-send rule, checked at every send.
    pub(crate) persist_check: Option<super::PersistCheck>,
    /// Epochs, if the chain has them ([`super::SimConfig::epochs`]); everything below is
    /// used only then.
    pub(crate) schedule: Option<SimEpochs>,
    /// The running engine's epoch.
    pub epoch: u64,
    /// The running epoch's set, `(validator, stake)` in engine index order.
    pub(crate) members: Members,
    /// This node's index in the running epoch's set (what its messages name it as).
    pub(crate) set_index: Option<ValidatorIndex>,
    /// Set when a commit ended the epoch: the simulator starts the next epoch's engine.
    pub(crate) epoch_ended: Option<(BlockRef, Certificate)>,
    /// Survives a crash: each epoch's last persisted safety state.
    pub safety: BTreeMap<u64, Vec<u8>>,
    /// Survives a crash: the bytes of each committed block, parallel to `committed`.
    pub committed_blocks: Vec<Vec<u8>>,
    /// Survives a crash (it follows from the committed chain): validators that evidence in a
    /// committed block accuses, and the set this node computed for each epoch.
    pub accused: BTreeSet<ValidatorIndex>,
    /// The height of the first committed block whose evidence accused each validator.
    pub accused_at: BTreeMap<ValidatorIndex, Height>,
    pub sets: BTreeMap<u64, Members>,
    /// Lost on a crash: the bytes of known blocks, and evidence waiting for a block.
    pub(crate) known_bytes: HashMap<Hash, Vec<u8>>,
    pub(crate) pending_evidence: Vec<Evidence>,
}

impl NodeIo {
    pub(crate) fn new(index: ValidatorIndex, genesis: BlockRef) -> NodeIo {
        NodeIo {
            index,
            committed: vec![(genesis, Certificate::default())],
            commit_times: vec![0],
            committed_blocks: vec![vec![]],
            ..NodeIo::default()
        }
    }

    pub fn head(&self) -> BlockRef {
        self.committed.last().expect("genesis is always committed").0
    }

    fn is_known(&self, hash: &Hash) -> Option<BlockRef> {
        self.known.get(hash).map(|(b, _)| *b).or_else(|| self.committed.iter().rev().find(|(b, _)| &b.hash == hash).map(|(b, _)| *b))
    }

    /// Whether a block between `tip` (included) and the committed head carries transactions.
    fn uncommitted_ancestor_carries(&self, tip: Hash) -> bool {
        let head = self.head().hash;
        let mut at = tip;
        while at != head {
            let Some((_, parent)) = self.known.get(&at) else { return false };
            if self.known_carrying.contains(&at) {
                return true;
            }
            at = *parent;
        }
        false
    }

    /// Whether the next effect happens: not once the process died mid-step; and the effect a
    /// mid-step crash was armed for is the last one.
    fn performs(&mut self) -> bool {
        if self.crashed {
            return false;
        }
        self.crashed = std::mem::take(&mut self.crash_armed);
        true
    }

    fn check_persisted(&mut self, message: &[u8]) {
        // A node outside its epoch's set signs nothing (it may relay others' messages).
        let signer = if self.schedule.is_some() { self.set_index } else { Some(self.index) };
        if let (Some(covers), Some(signer)) = (self.persist_check, signer) {
            if !covers(signer, self.persisted.as_deref(), message) {
                self.violations.push(format!(
                    "sent a message its persisted safety state does not cover (a crash now would let it sign against it) at {} ms",
                    self.now
                ));
            }
        }
    }

    /// A crash: everything not durable is gone.
    pub(crate) fn crash(&mut self) {
        self.crash_armed = false;
        self.crashed = false;
        self.outbox.clear();
        self.known.clear();
        self.known_carrying.clear();
        self.known_bytes.clear();
        self.pending_evidence.clear();
        self.epoch_ended = None;
    }

    /// The last height the running epoch's engine may commit (`None`: no epochs).
    pub(crate) fn epoch_last(&self) -> Option<Height> {
        self.schedule.as_ref().map(|s| s.last_height(self.epoch))
    }

    /// Makes `bytes` (a block sync fetched, checked by the caller) a known block on the head.
    pub(crate) fn know_synced(&mut self, block: BlockRef, parent: Hash, bytes: Vec<u8>) {
        self.known.insert(block.hash, (block, parent));
        self.known_bytes.insert(block.hash, bytes);
    }

    /// What a committed block changes beyond the chain: the validators its evidence accuses
    /// (named by their index in the running epoch's set), and the end of the epoch.
    fn record_commit(&mut self, block: &BlockRef, certificate: &Certificate) {
        let Some(schedule) = &self.schedule else { return };
        let bytes = self.known_bytes.remove(&block.hash).unwrap_or_default();
        if let Some((_, evidence)) = decode_block(&bytes) {
            for e in &evidence {
                if let Some((validator, _)) = self.members.get(e.offender as usize) {
                    self.accused.insert(*validator);
                    self.accused_at.entry(*validator).or_insert(block.height);
                }
            }
            self.pending_evidence.retain(|p| !evidence.contains(p));
        }
        self.committed_blocks.push(bytes);
        if block.height == schedule.last_height(self.epoch) {
            self.epoch_ended = Some((*block, certificate.clone()));
        }
    }
}

impl DriverIo for NodeIo {
    fn broadcast(&mut self, bytes: Vec<u8>) {
        if self.performs() {
            self.check_persisted(&bytes);
            self.outbox.push((None, bytes));
        }
    }
    fn send(&mut self, to: ValidatorIndex, bytes: Vec<u8>) {
        if self.performs() {
            self.check_persisted(&bytes);
            self.outbox.push((Some(to), bytes));
        }
    }
    fn persist(&mut self, state: &[u8]) -> Result<(), DriverError> {
        if !self.performs() {
            return Ok(());
        }
        self.persisted = Some(state.to_vec());
        if self.schedule.is_some() {
            self.safety.insert(self.epoch, state.to_vec());
        }
        self.persists += 1;
        Ok(())
    }
    fn build_payload(&mut self, parent: &BlockRef, _cert: &Certificate, _now: TimestampMs) -> Result<Payload, BuildError> {
        if self.is_known(&parent.hash).is_none() {
            return Err(BuildError::UnknownParent(parent.hash));
        }
        self.nonce += 1;
        // As the node's builder does, pending transactions already in an uncommitted ancestor
        // are not carried again.
        let transactions = u32::from(self.loaded || (self.pending && !self.uncommitted_ancestor_carries(parent.hash)));
        let block = SimBlock { parent: parent.hash, height: parent.height + 1, builder: self.index, nonce: self.nonce, transactions };
        let evidence: Vec<Evidence> = self.pending_evidence.iter().take(MAX_BLOCK_EVIDENCE).cloned().collect();
        let bytes = encode_block(&block, &evidence);
        let r = BlockRef { hash: SimBlock::hash_of(&bytes), height: block.height };
        self.known.insert(r.hash, (r, parent.hash));
        if self.schedule.is_some() {
            self.known_bytes.insert(r.hash, bytes.clone());
        }
        self.built.push(r.hash);
        self.built_times.push(self.now);
        if transactions > 0 {
            self.carrying.push(r.hash);
            self.known_carrying.insert(r.hash);
        }
        Ok(Payload { block: r, parent: parent.hash, bytes, empty: transactions == 0 })
    }
    fn verify_payload(&mut self, bytes: &[u8], engine: &dyn crate::consensus::ConsensusEngine) -> PayloadCheck {
        let Some((block, evidence)) = decode_block(bytes) else { return PayloadCheck::Undecodable };
        let r = BlockRef { hash: SimBlock::hash_of(bytes), height: block.height };
        // Evidence a block records must convince this validator's engine (of the epoch).
        let evidence_holds = evidence.iter().all(|e| engine.verify_evidence(e).is_ok());
        match self.is_known(&block.parent) {
            Some(parent) if parent.height + 1 == block.height && evidence_holds => {
                self.known.insert(r.hash, (r, block.parent));
                if self.schedule.is_some() {
                    self.known_bytes.insert(r.hash, bytes.to_vec());
                }
                if block.transactions > 0 {
                    self.known_carrying.insert(r.hash);
                }
                PayloadCheck::Decoded { block: r, parent: block.parent, valid: true, empty: block.transactions == 0 }
            }
            _ => PayloadCheck::Decoded { block: r, parent: block.parent, valid: false, empty: block.transactions == 0 },
        }
    }
    fn commit(&mut self, block: &BlockRef, certificate: &Certificate) -> Result<(), DriverError> {
        if !self.performs() {
            return Ok(());
        }
        let head = self.head();
        if let Some(last) = self.epoch_last().filter(|last| block.height > *last) {
            let reason =
                format!("the engine of epoch {} committed height {}, past the epoch's last block {last}", self.epoch, block.height);
            self.violations.push(reason.clone());
            return Err(DriverError::Commit { block: *block, reason });
        }
        match self.known.get(&block.hash) {
            Some((known, parent)) if *parent == head.hash && known.height == head.height + 1 => {
                self.record_commit(block, certificate);
                self.committed.push((*block, certificate.clone()));
                self.commit_times.push(self.now);
                self.committed_since_check = true;
                // The transactions this node held are in the chain now.
                if self.known_carrying.contains(&block.hash) {
                    self.pending = false;
                }
                Ok(())
            }
            Some((_, parent)) => {
                let reason = format!("committed {} (parent {parent}) but the head is {} at {}", block.hash, head.hash, head.height);
                self.violations.push(reason.clone());
                Err(DriverError::Commit { block: *block, reason })
            }
            None => {
                let reason = format!("committed {} at height {}, a block it never built or verified", block.hash, block.height);
                self.violations.push(reason.clone());
                Err(DriverError::Commit { block: *block, reason })
            }
        }
    }
    fn evidence(&mut self, evidence: Evidence) {
        if self.schedule.is_some() && !self.pending_evidence.contains(&evidence) {
            self.pending_evidence.push(evidence.clone());
        }
        self.evidence.push(evidence);
    }
}
