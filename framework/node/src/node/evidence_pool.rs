//! The evidence pool: verified proofs of misbehaviour waiting to be recorded in a block this
//! node proposes. Each piece is published on the gossip topic once when it enters (evidence
//! already pooled or recorded is ignored and not relayed, so gossip dies out), and leaves when
//! a committed block records it.

use std::sync::Arc;

use super::EVIDENCE_TOPIC;
use crate::codec;
use crate::consensus::{ConsensusEngine, Evidence};
use crate::ledger::Ledger;
use crate::network::{Network, Verdict};

/// Verified evidence waiting to be recorded in a block, at most (the oldest is dropped).
const MAX_POOLED_EVIDENCE: usize = 256;

pub(super) struct EvidencePool {
    ledger: Arc<Ledger>,
    network: Option<Arc<dyn Network>>,
    /// Verified evidence not yet recorded on chain, oldest first.
    pending: Vec<Evidence>,
}

impl EvidencePool {
    pub(super) fn new(ledger: Arc<Ledger>, network: Option<Arc<dyn Network>>) -> EvidencePool {
        EvidencePool { ledger, network, pending: Vec::new() }
    }

    /// What the next block this node builds should record.
    pub(super) fn pending(&self) -> &[Evidence] {
        &self.pending
    }

    /// Forgets what `recorded` (a committed block's evidence) holds.
    pub(super) fn remove_recorded(&mut self, recorded: &[Evidence]) {
        self.pending.retain(|e| !recorded.contains(e));
    }

    /// A new epoch began: keeps only what its engine still verifies. Evidence is bound to the
    /// epoch whose set signed it (offender indices are that set's), and blocks of the new
    /// epoch would be refused for recording the old epoch's.
    pub(super) fn retain_verified(&mut self, engine: &dyn ConsensusEngine) {
        let before = self.pending.len();
        self.pending.retain(|e| engine.verify_evidence(e).is_ok());
        if self.pending.len() < before {
            tracing::warn!(
                dropped = before - self.pending.len(),
                "evidence of the previous epoch left unrecorded: the new epoch's engine does not verify it"
            );
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
    pub(super) fn offer(&mut self, evidence: Evidence, engine: &dyn ConsensusEngine, source: &str) -> Verdict {
        match engine.verify_evidence(&evidence) {
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
