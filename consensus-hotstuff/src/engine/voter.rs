//! Following a round: a proposal arrives, is checked (signature, justification, leader, VRF
//! proof), its payload is verified by the node, and — if the safety rules allow — this
//! validator votes for it, persisting before the vote leaves. A proposal whose parent is
//! missing waits for it (and the parent is fetched).

use std::collections::VecDeque;

use aether_api::consensus::{BlockRef, Output, ValidatorIndex};
use aether_primitives::codec;
use aether_primitives::types::{Hash, TimestampMs};

use crate::leader::{election_input, PROOF_LEN};
use crate::messages::{Message, Proposal};

use super::block_tree::Known;
use super::election::{recent_signers_after, seed_of};
use super::HotStuffEngine;

/// A vote signed (and the safety state raised) but not yet sent.
pub(super) struct SignedVote {
    round: u64,
    digest: Hash,
    next_leader: ValidatorIndex,
    signature: Vec<u8>,
}

impl HotStuffEngine {
    pub(super) fn on_proposal(&mut self, from: ValidatorIndex, p: Proposal, now: TimestampMs, out: &mut Vec<Output>) {
        let h = &p.header;
        let digest = h.digest();
        if self.tree.proposals.contains_key(&digest)
            || h.round <= self.tree.committed.round
            || h.proposer as usize >= self.members.len()
            || h.domain != self.committee.domain()
        {
            return;
        }
        if h.parent != p.justify.block || h.election.len() != PROOF_LEN || h.block.height == 0 || h.after_timeout != p.timeout.is_some() {
            return;
        }
        let Ok(sig) = <[u8; 64]>::try_from(p.signature.as_slice()) else { return };
        let identity = self.members[h.proposer as usize].identity;
        if !self.verifier.proposal_signature(&identity, &digest, sig) {
            return;
        }
        // Shape of the justification: the previous round's QC, or a TC for the previous round
        // and an older QC. Whether a TC-justified proposal extends a QC high enough to vote for
        // is the vote rule's question alone (`SafetyRules::vote`): one rule in one place, so
        // that breaking it is visible (a proposal on a stale QC is kept, never voted for).
        match &p.timeout {
            None if p.justify.round.checked_add(1) == Some(h.round) => {}
            Some(tc) if tc.round.checked_add(1) == Some(h.round) && p.justify.round < tc.round => {}
            _ => return,
        }
        let genesis = self.tree.genesis;
        if !self.verifier.qc(&p.justify, genesis) || p.timeout.as_ref().is_some_and(|tc| !self.verifier.tc(tc)) {
            return;
        }
        // Two different proposals signed by one proposer for one round: evidence.
        self.aggregator.note_proposal(h, &p.signature, out);
        // The QC first: entering the round through the TC must already see it as the high QC
        // (a leader builds on its high QC the moment it enters its round).
        let justify = p.justify.clone();
        let tc = p.timeout.clone();
        self.observe_qc(justify, now, out);
        if let Some(tc) = tc {
            self.observe_tc(tc, now, out);
        }
        self.accept(from, p, now, out);
    }

    /// Checks the proposer is the round's leader and asks for the payload to be verified,
    /// or waits for (and fetches) the parent if it is not known yet.
    pub(super) fn accept(&mut self, from: ValidatorIndex, p: Proposal, now: TimestampMs, out: &mut Vec<Output>) {
        let h = &p.header;
        let parent = h.parent;
        if self.tree.verified_block(&parent).is_none() {
            if let Some(missing) = self.tree.hold_for_parent(p, now, self.pacemaker.resend_interval()) {
                out.push(Output::Send { to: from, bytes: codec::encode(&Message::Fetch { digest: missing }) });
            }
            return;
        }
        let expected = if p.timeout.is_none() {
            self.election.elected_after(&self.tree, &parent)
        } else {
            Some(self.election.fallback_leader(h.round))
        };
        if expected != Some(h.proposer) {
            return;
        }
        if seed_of(&self.tree, &parent) != Some(h.parent_seed)
            || recent_signers_after(&self.tree, &parent, &p.justify.signers).as_ref() != Some(&h.recent_signers)
        {
            return;
        }
        let vrf = self.members[h.proposer as usize].vrf;
        let alpha = election_input(h.round.saturating_add(1), &h.parent_seed);
        let Some(beta) = self.verifier.vrf_output(&vrf, &alpha, &h.election) else { return };
        let digest = h.digest();
        out.push(Output::VerifyPayload { bytes: p.payload.clone() });
        self.verifying.push_back(digest);
        self.tree.proposals.insert(digest, Known { proposal: p, verified: false, beta, empty: false });
    }

    pub(super) fn on_payload_verified(
        &mut self,
        block: Option<BlockRef>,
        parent: Option<Hash>,
        valid: bool,
        empty: bool,
        now: TimestampMs,
        out: &mut Vec<Output>,
    ) {
        let Some(digest) = take_answered(&mut self.verifying, &self.tree.proposals, block) else { return };
        // The block must be the one proposed, on the parent the proposal names (a faulty
        // proposer could pair a header naming one parent with a valid block on another).
        let ok = valid
            && self
                .tree
                .proposals
                .get(&digest)
                .is_some_and(|k| Some(k.proposal.header.block) == block && Some(k.proposal.header.parent_block) == parent)
            && self.tree.parent_block_matches(&digest);
        if !ok {
            self.tree.reject(&digest);
            return;
        }
        if let Some(k) = self.tree.proposals.get_mut(&digest) {
            k.verified = true;
            k.empty = empty;
        }
        self.try_vote(digest, now, out);
        self.after_verified(digest, now, out);
    }

    /// What a verified proposal unlocks besides a vote: commits, waiting children, a proposal.
    pub(super) fn after_verified(&mut self, digest: Hash, now: TimestampMs, out: &mut Vec<Output>) {
        self.commit_rule.check(&self.tree, digest);
        for child in self.tree.take_children(&digest) {
            let child_digest = child.header.digest();
            let from = child.header.proposer;
            self.accept(from, child, now, out);
            self.commit_rule.check(&self.tree, child_digest);
        }
        self.commit_rule.commit_ready(&mut self.tree, self.epoch.last_height, out);
        // A leader that could not build because the certified block was missing can now.
        if let (Some(me), Some(leader)) = (self.my_index(), self.leader_of_current()) {
            if me == leader && self.high_qc.block == digest && self.building.is_none() && !self.pacemaker.timed_out() {
                self.schedule_proposal(now, out);
            }
        }
    }

    fn try_vote(&mut self, digest: Hash, now: TimestampMs, out: &mut Vec<Output>) {
        if let Some(vote) = self.sign_vote_if_safe(digest) {
            self.persist_with(digest, out);
            self.deliver_vote(vote, now, out);
        }
    }

    /// Signs a vote for the verified proposal `digest` if this validator is in its round, has
    /// not timed out of it, knows the next leader, and the safety rules allow it. The caller
    /// persists before the vote leaves.
    pub(super) fn sign_vote_if_safe(&mut self, digest: Hash) -> Option<SignedVote> {
        let k = self.tree.proposals.get(&digest)?;
        let round = k.proposal.header.round;
        if self.me.is_none() || round != self.pacemaker.round() || !k.verified || self.pacemaker.timed_out() {
            return None;
        }
        let next_leader = self.election.elected_after(&self.tree, &digest)?;
        let signature = self.safety.vote(round, digest, k.proposal.justify.round, k.proposal.timeout.as_ref())?;
        Some(SignedVote { round, digest, next_leader, signature })
    }

    /// Sends a persisted vote to the next leader (or counts it, if that is this validator).
    pub(super) fn deliver_vote(&mut self, vote: SignedVote, now: TimestampMs, out: &mut Vec<Output>) {
        let Some(index) = self.my_index() else { return };
        let SignedVote { round, digest, next_leader, signature } = vote;
        if next_leader == index {
            self.on_vote(round, digest, index, signature, now, out);
        } else {
            let bytes = codec::encode(&Message::Vote { round, digest, voter: index, signature });
            out.push(Output::Send { to: next_leader, bytes: bytes.clone() });
            self.pacemaker.my_vote = Some((next_leader, bytes));
        }
    }

    /// Persists the safety state with the uncommitted chain up to `tip` (before anything
    /// signed leaves).
    pub(super) fn persist_with(&mut self, tip: Hash, out: &mut Vec<Output>) {
        let chain = self.tree.uncommitted_chain(tip);
        let state = self.safety.persisted(&self.high_qc, self.last_tc.as_ref(), chain);
        out.push(Output::Persist { state });
    }
}

/// The proposal a payload verification answers: the one whose block it names, else the oldest
/// asked (answers come in request order; matching by block is the safer way).
fn take_answered(
    verifying: &mut VecDeque<Hash>,
    proposals: &std::collections::HashMap<Hash, Known>,
    block: Option<BlockRef>,
) -> Option<Hash> {
    let position = block.and_then(|b| verifying.iter().position(|d| proposals.get(d).is_some_and(|k| k.proposal.header.block == b)));
    position.and_then(|i| verifying.remove(i)).or_else(|| verifying.pop_front())
}
