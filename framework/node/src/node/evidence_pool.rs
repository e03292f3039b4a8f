//! The evidence pool: verified proofs of misbehaviour waiting to be recorded in a block this
//! node proposes. Each piece is published on the gossip topic once when it enters (evidence
//! already pooled or recorded is ignored and not relayed, so gossip dies out), and leaves when
//! a committed block records it.

use std::sync::Arc;

use super::epochs::EpochVerifiers;
use super::EVIDENCE_TOPIC;
use crate::codec;
use crate::consensus::{ConsensusEngine, Evidence};
use crate::ledger::Ledger;
use crate::network::{Network, Verdict};

/// Verified evidence waiting to be recorded in a block, at most (the oldest is dropped).
const MAX_POOLED_EVIDENCE: usize = 256;

/// How many epochs back evidence is still checked and recorded. Whether it still slashes is
/// the staking module's rule (its unbonding period); this only bounds the engines a node
/// builds to check old evidence.
pub const MAX_EVIDENCE_AGE_EPOCHS: u64 = 8;

pub(super) struct EvidencePool {
    ledger: Arc<Ledger>,
    network: Option<Arc<dyn Network>>,
    /// Verified evidence not yet recorded on chain, oldest first.
    pending: Vec<Evidence>,
    /// Key-less engines of earlier epochs (`None`: a chain without epochs).
    earlier: Option<EpochVerifiers>,
}

impl EvidencePool {
    pub(super) fn new(ledger: Arc<Ledger>, network: Option<Arc<dyn Network>>, earlier: Option<EpochVerifiers>) -> EvidencePool {
        EvidencePool { ledger, network, pending: Vec::new(), earlier }
    }

    /// Checks `evidence` with the engine of its own epoch: `engine`, the running one of epoch
    /// `current`, or a key-less engine of an earlier epoch at most [`MAX_EVIDENCE_AGE_EPOCHS`]
    /// back. Evidence of a later epoch proves nothing yet.
    pub(super) fn check(&self, evidence: &Evidence, engine: &dyn ConsensusEngine, current: u64) -> Result<(), String> {
        if evidence.epoch == current {
            return engine.verify_evidence(evidence).map_err(|e| e.to_string());
        }
        if evidence.epoch > current {
            return Err(format!("evidence of epoch {}, which has not begun here (epoch {current})", evidence.epoch));
        }
        if evidence.epoch.saturating_add(MAX_EVIDENCE_AGE_EPOCHS) < current {
            return Err(format!(
                "evidence of epoch {} is more than {MAX_EVIDENCE_AGE_EPOCHS} epochs old (epoch {current})",
                evidence.epoch
            ));
        }
        match &self.earlier {
            Some(verifiers) => verifiers.verify_evidence(evidence),
            None => Err(format!("evidence of epoch {} on a chain without epochs", evidence.epoch)),
        }
    }

    /// What the next block this node builds should record.
    pub(super) fn pending(&self) -> &[Evidence] {
        &self.pending
    }

    /// Forgets what `recorded` (a committed block's evidence) holds.
    pub(super) fn remove_recorded(&mut self, recorded: &[Evidence]) {
        self.pending.retain(|e| !recorded.contains(e));
    }

    /// A new epoch (`current`) began: keeps what is still checkable. Evidence of the epoch that
    /// ended stays (blocks of the new epoch record it, checked with its own epoch's engine);
    /// only evidence too old is dropped.
    pub(super) fn retain_verified(&mut self, engine: &dyn ConsensusEngine, current: u64) {
        let before = self.pending.len();
        let pending = std::mem::take(&mut self.pending);
        self.pending = pending.into_iter().filter(|e| self.check(e, engine, current).is_ok()).collect();
        if self.pending.len() < before {
            tracing::warn!(dropped = before - self.pending.len(), "evidence too old to record any more was dropped");
        }
    }

    /// Adds verified, new evidence to the pool and gossips it. `false` when it was known.
    pub(super) fn add(&mut self, evidence: Evidence) -> bool {
        if self.pending.contains(&evidence) {
            return false;
        }
        match self.ledger.evidence_recorded(&evidence.hash()) {
            Ok(Some(_)) => return false,
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the evidence index; pooling the evidence anyway"),
        }
        tracing::warn!(offender = evidence.offender, kind = %evidence.kind, hash = %evidence.hash(), "misbehaviour proven; recording it in a block");
        if self.pending.len() >= MAX_POOLED_EVIDENCE {
            self.pending.remove(0);
        }
        if let Some(n) = &self.network {
            // Relayed evidence is already known to a relaying network, which refuses it here.
            if let Err(e) = n.publish(EVIDENCE_TOPIC, codec::encode(&evidence)) {
                tracing::debug!(error = %e, "evidence not gossiped");
            }
        }
        self.pending.push(evidence);
        true
    }

    /// Evidence from outside the engine: pooled only if the engine says it proves misbehaviour.
    /// The verdict for gossip: new and proven is relayed, known is not, unproven counts
    /// against the peer that relayed it.
    pub(super) fn offer(&mut self, evidence: Evidence, engine: &dyn ConsensusEngine, current: u64, source: &str) -> Verdict {
        match self.check(&evidence, engine, current) {
            Ok(()) => match self.add(evidence) {
                true => Verdict::Accept,
                false => Verdict::Ignore,
            },
            Err(e) => {
                tracing::warn!(source, offender = evidence.offender, kind = %evidence.kind, error = %e, "evidence refused");
                Verdict::Reject
            }
        }
    }
}
