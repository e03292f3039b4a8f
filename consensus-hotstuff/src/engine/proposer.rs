//! Leading a round: when to propose (after the minimum block interval; on an idle chain, after
//! a heartbeat unless transactions arrive), asking the node for a block on the high QC, and
//! signing, persisting and sending the proposal with the leader's own vote.

use aether_api::consensus::{Output, Payload, ValidatorIndex};
use aether_primitives::codec;
use aether_primitives::types::{Certificate, TimestampMs};

use crate::certificate::QuorumCertificate;
use crate::leader::election_input;
use crate::messages::{Message, Proposal, ProposalHeader};

use super::block_tree::Known;
use super::election::{recent_signers_after, seed_of};
use super::HotStuffEngine;

impl HotStuffEngine {
    /// Leader of the current round as entered: by the QC of the round before, or by a TC.
    pub(super) fn leader_of_current(&self) -> Option<ValidatorIndex> {
        let round = self.pacemaker.round();
        if self.high_qc.round.saturating_add(1) == round {
            self.election.elected_after(&self.tree, &self.high_qc.block)
        } else {
            Some(self.election.fallback_leader(round))
        }
    }

    /// Whether a block is wanted soon: transactions wait, or an uncommitted block on the high
    /// QC's chain carries some (it commits only once the chain grows two more rounds). An
    /// unknown or unverified ancestor counts as work (propose rather than stall).
    pub(super) fn has_work(&self) -> bool {
        self.transactions_waiting || !self.tree.only_empty_blocks_above_committed(self.high_qc.block)
    }

    pub(super) fn on_transactions_waiting(&mut self, now: TimestampMs, out: &mut Vec<Output>) {
        self.transactions_waiting = true;
        // A leader waiting for the heartbeat proposes now (after the minimum interval).
        let leading = self.my_index() == self.leader_of_current();
        if leading && self.building.is_none() && !self.pacemaker.timed_out() && self.safety.may_propose(self.pacemaker.round()) {
            self.schedule_proposal(now, out);
        }
    }

    pub(super) fn schedule_proposal(&mut self, now: TimestampMs, out: &mut Vec<Output>) {
        if self.pacemaker.round() <= self.restart_round {
            return;
        }
        let mut earliest = self.last_proposed_ms.map_or(now, |t| t.saturating_add(self.settings.min_block_interval_ms));
        if self.settings.heartbeat_ms > 0 && !self.has_work() {
            earliest = earliest.max(self.pacemaker.entered_ms().saturating_add(self.settings.heartbeat_ms));
        }
        if now >= earliest {
            self.propose(out);
        } else {
            out.push(Output::SetTimer { id: super::PROPOSE_TIMER, at_ms: earliest });
        }
    }

    /// Asks the node for a block on the proposal base (the high QC), or fetches the certified
    /// block if it has not arrived (`after_verified` proposes once it is here).
    pub(super) fn propose(&mut self, out: &mut Vec<Output>) {
        let round = self.pacemaker.round();
        if self.building.is_some() || round <= self.restart_round || !self.safety.may_propose(round) {
            return;
        }
        #[cfg(feature = "mocks")]
        if self.attacking(crate::mocks::Attack::NeverPropose) {
            return;
        }
        let base = self.proposal_base();
        let parent_digest = self.build_parent(&base);
        let Some(parent) = self.tree.verified_block(&parent_digest) else {
            out.push(Output::Broadcast { bytes: codec::encode(&Message::Fetch { digest: parent_digest }) });
            return;
        };
        self.building = Some((round, parent_digest));
        self.transactions_waiting = false;
        out.push(Output::BuildPayload { parent, parent_certificate: Certificate(codec::encode(&base)) });
    }

    /// The QC a proposal of this round extends: the high QC (an attacker of [`crate::mocks`]
    /// may pick another).
    pub(super) fn proposal_base(&self) -> QuorumCertificate {
        #[cfg(feature = "mocks")]
        if self.attacking(crate::mocks::Attack::StaleProposal) && self.high_qc.round.saturating_add(1) != self.pacemaker.round() {
            return self.oldest_extendable_qc();
        }
        self.high_qc.clone()
    }

    /// The block a proposal on `base` builds on: the block `base` certifies (an attacker of
    /// [`crate::mocks`] may pick another).
    pub(super) fn build_parent(&self, base: &QuorumCertificate) -> aether_primitives::types::Hash {
        #[cfg(feature = "mocks")]
        if let Some(beside) = self.parent_beside_committed(base) {
            return beside;
        }
        base.block
    }

    /// The node built the block: sign the proposal, persist (that this round is proposed in,
    /// the proposal, the leader's own vote) in one write, then send it and the vote.
    pub(super) fn on_built(&mut self, now: TimestampMs, payload: Payload, out: &mut Vec<Output>) {
        let Some((round, parent)) = self.building else { return };
        if !self.safety.may_propose(round) {
            return;
        }
        let base = self.proposal_base();
        if round != self.pacemaker.round() || parent != self.build_parent(&base) {
            // Built on a QC that a newer one replaced meanwhile: build again on the newer one.
            self.building = None;
            if round == self.pacemaker.round() {
                self.propose(out);
            }
            return;
        }
        let Some(parent_seed) = seed_of(&self.tree, &parent) else { return };
        let Some(me) = &self.me else { return };
        let (election, beta) = me.vrf.prove(&election_input(round.saturating_add(1), &parent_seed));
        let timeout = if base.round.saturating_add(1) == round { None } else { self.last_tc.clone() };
        let header = ProposalHeader {
            domain: self.committee.domain(),
            round,
            block: payload.block,
            parent_block: payload.parent,
            parent,
            proposer: me.index,
            election: election.to_vec(),
            parent_seed,
            recent_signers: recent_signers_after(&self.tree, &parent, &base.signers).unwrap_or_default(),
            after_timeout: timeout.is_some(),
        };
        #[cfg(feature = "mocks")]
        if self.regrind(&header, &beta, &payload, out) {
            return;
        }
        #[cfg(feature = "mocks")]
        let (base, timeout) = self.forge_certificates(base, timeout);
        let Some(me) = &self.me else { return };
        let digest = header.digest();
        let signature = me.identity.sign(&digest.0).0.to_vec();
        #[cfg(feature = "mocks")]
        let after_timeout = timeout.is_some();
        let proposal = Proposal { header, justify: base, timeout, payload: payload.bytes, signature };
        self.last_proposed_ms = Some(now);
        let bytes = codec::encode(&Message::Proposal(Box::new(proposal.clone())));
        self.tree.proposals.insert(digest, Known { proposal, verified: true, beta, empty: payload.empty });
        // One write before anything leaves: that this round is proposed in (a restart must
        // never sign another proposal for it), the proposal itself, and the leader's own vote.
        self.safety.record_proposal(round);
        let vote = self.sign_vote_if_safe(digest);
        self.persist_with(digest, out);
        #[cfg(feature = "mocks")]
        if let Some(to) = self.withheld_from_all_but().filter(|_| !after_timeout) {
            // Withholding: the proposal (and the QC it carries) reaches one validator only.
            out.push(Output::Send { to, bytes });
            self.after_verified(digest, now, out);
            return;
        }
        out.push(Output::Broadcast { bytes: bytes.clone() });
        self.pacemaker.my_proposal = Some(bytes);
        if let Some(vote) = vote {
            self.deliver_vote(vote, now, out);
        }
        self.after_verified(digest, now, out);
    }
}
