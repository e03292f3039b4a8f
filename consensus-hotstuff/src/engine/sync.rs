//! Joining the chain: at start (from genesis, or from the committed head and the safety state
//! a previous run persisted) and after block sync moved the committed head ahead.

use aether_api::consensus::{BlockRef, Output};
use aether_primitives::types::{Certificate, TimestampMs};
use borsh::BorshDeserialize;

use crate::certificate::QuorumCertificate;
use crate::leader::election_input;
use crate::messages::{CommitCertificate, ProposalHeader};

use super::HotStuffEngine;

impl HotStuffEngine {
    pub(super) fn on_start(
        &mut self,
        committed: BlockRef,
        certificate: &Certificate,
        safety_state: Option<Vec<u8>>,
        now: TimestampMs,
        out: &mut Vec<Output>,
    ) {
        // A new epoch starts on the last block of the one before as its own genesis: that
        // block's certificate is the old set's, which this engine neither checks nor extends.
        if committed.height == 0 || certificate.0.is_empty() || committed.height.saturating_add(1) == self.epoch.first_height {
            let genesis = self.tree.start_at_genesis(committed);
            self.high_qc = QuorumCertificate { round: 0, block: genesis, signers: vec![], signature: vec![] };
        } else if let Ok(cert) = CommitCertificate::try_from_slice(&certificate.0) {
            self.adopt_committed(committed, cert.header());
            self.high_qc = cert.qc().clone();
        }
        let restarted = safety_state.is_some();
        // An unreadable state makes the safety rules refuse to sign from now on (see `restore`).
        if safety_state.is_some_and(|bytes| self.safety.restore(&bytes)) {
            let state = self.safety.state();
            if let Some(qc) = state.high_qc.clone().filter(|qc| qc.round > self.high_qc.round) {
                self.high_qc = qc;
            }
            self.last_tc = state.last_tc.clone();
        }
        let entry = self.high_qc.round.max(self.last_tc.as_ref().map_or(0, |t| t.round)).saturating_add(1);
        if restarted {
            self.restart_round = entry;
        }
        self.advance_to(entry, now, out);
        // Re-verify the uncommitted blocks this validator persisted (the ledger lost them).
        for p in self.safety.take_chain() {
            if p.header.round > self.tree.committed.round {
                let proposer = p.header.proposer;
                self.accept(proposer, p, now, out);
            }
        }
    }

    /// Takes `committed`, decided with proposal header `h`, as the committed head. The header
    /// is certified, so a quorum checked its seed against its parent when they voted; here the
    /// parent is gone, and the VRF output is taken from the header's proof.
    fn adopt_committed(&mut self, committed: BlockRef, h: &ProposalHeader) {
        let beta = self
            .members
            .get(h.proposer as usize)
            .and_then(|m| m.vrf.verify(&election_input(h.round.saturating_add(1), &h.parent_seed), &h.election).ok());
        self.tree.adopt_committed(committed, h, beta);
    }

    /// Block sync committed up to `committed` (its certificate verified as final by the node):
    /// jump the committed head there and rejoin consensus at the round after the highest QC
    /// the certificate carries.
    pub(super) fn on_synced(&mut self, committed: BlockRef, certificate: &Certificate, now: TimestampMs, out: &mut Vec<Output>) {
        if committed.height <= self.tree.committed.block.height {
            return;
        }
        let Ok(cert) = CommitCertificate::try_from_slice(&certificate.0) else { return };
        let h = cert.header();
        if h.block != committed {
            return;
        }
        self.adopt_committed(committed, h);
        let newest_qc = match &cert {
            CommitCertificate::Direct { child_qc, .. } | CommitCertificate::Through { child_qc, .. } => child_qc,
            CommitCertificate::Ancestor { qc, .. } => qc,
        };
        if newest_qc.round > self.high_qc.round {
            self.high_qc = newest_qc.clone();
        }
        self.commit_rule.synced_to(h.round);
        self.tree.prune();
        self.advance_to(self.high_qc.round.saturating_add(1), now, out);
        // Blocks above the new head this node already holds may now be committable.
        self.commit_rule.commit_ready(&mut self.tree, self.epoch.last_height, out);
    }
}
