//! Test-only (feature `mocks`): the attacking code [`crate::mocks::Attack`] names, run by a
//! validator the simulator counts as faulty. Each attack bends one choice an honest engine
//! makes (which QC to extend or report, what its certificates carry, whom it sends to, whether
//! it proposes, which block it proposes); everything else runs the honest code, so an attacker
//! stays close enough to the protocol to be accepted where the rules are weak.

use aether_api::consensus::{BlockRef, Output, Payload, ValidatorIndex};
use aether_primitives::codec;
use aether_primitives::types::Certificate;

use crate::certificate::{QuorumCertificate, VoteMessage};
use crate::leader::election_input;
use crate::messages::{Proposal, ProposalHeader};
use crate::mocks::Attack;
use crate::timeout::{TimeoutCertificate, TimeoutMessage};

use super::block_tree::Known;
use super::election::{recent_signers_after, seed_of};
use super::HotStuffEngine;

impl HotStuffEngine {
    pub(super) fn attacking(&self, attack: Attack) -> bool {
        self.attacks.contains(&attack)
    }

    /// The stale-QC attacker's choice: the lowest QC it holds among the last few rounds (at
    /// most `STALE_ROUNDS` below its committed block, whose proposals every node still keeps),
    /// so that what it proposes or reports forks below what some validators committed. The
    /// high QC if it holds no other.
    pub(super) fn oldest_extendable_qc(&self) -> QuorumCertificate {
        const STALE_ROUNDS: u64 = 3;
        let tc_round = self.last_tc.as_ref().map_or(u64::MAX, |tc| tc.round);
        self.tree
            .qcs
            .values()
            .filter(|qc| {
                qc.round.saturating_add(STALE_ROUNDS) >= self.tree.committed.round
                    && qc.round < tc_round
                    && qc.round < self.pacemaker.round()
            })
            .filter(|qc| qc.block == self.tree.committed.digest || self.tree.proposals.get(&qc.block).is_some_and(|k| k.verified))
            .min_by_key(|qc| (qc.round, qc.block))
            .cloned()
            .unwrap_or_else(|| self.high_qc.clone())
    }

    /// The certificate forger's rewrite of what its proposal carries. A forged QC keeps its
    /// signer bitmap (it claims a quorum) but its aggregate signature holds only the forger's
    /// own. A forged TC lies as well: every signer is said to have reported the proposal's
    /// own (possibly stale) QC round, so the vote rule's high-QC condition holds for it; its
    /// aggregate too is the forger's signature alone. The proposal itself is then signed
    /// properly, so only checking the embedded certificates can refuse it.
    pub(super) fn forge_certificates(
        &self,
        qc: QuorumCertificate,
        tc: Option<TimeoutCertificate>,
    ) -> (QuorumCertificate, Option<TimeoutCertificate>) {
        let Some(bls) = self.safety.key() else { return (qc, tc) };
        let domain = self.committee.domain();
        let qc = if qc.round == 0 || !self.attacking(Attack::ForgedQuorumCertificate) {
            qc
        } else {
            let signature = bls.sign_vote(&VoteMessage { domain, round: qc.round, block: qc.block }).to_bytes().to_vec();
            QuorumCertificate { signature, ..qc }
        };
        let tc = tc.map(|tc| {
            if !self.attacking(Attack::ForgedTimeoutCertificate) {
                return tc;
            }
            let n = self.members.len();
            let signers: Vec<usize> =
                tc.groups.iter().flat_map(|(_, bitmap)| crate::certificate::bitmap_indices(n, bitmap).unwrap_or_default()).collect();
            let everyone = crate::certificate::bitmap_of(n, &signers);
            let high_qc_round = qc.round;
            let signature = TimeoutMessage { domain, round: tc.round, high_qc_round }.sign(bls).to_bytes().to_vec();
            TimeoutCertificate { groups: vec![(high_qc_round, everyone)], signature, ..tc }
        });
        (qc, tc)
    }

    /// The attacker's build parent beside the committed head: that head's parent, when it is
    /// held and verified, `base` is of the round just before this one (no TC), and the parent's
    /// election picks this validator too — so everything but the parent/QC link is consistent
    /// and a receiver's election check passes.
    pub(super) fn parent_beside_committed(&self, base: &QuorumCertificate) -> Option<aether_primitives::types::Hash> {
        if !self.attacking(Attack::BesideCommitted) || base.round.saturating_add(1) != self.pacemaker.round() {
            return None;
        }
        let head = self.tree.proposals.get(&self.tree.committed.digest)?;
        let beside = head.proposal.header.parent;
        self.tree.verified_block(&beside)?;
        (self.election.elected_after(&self.tree, &beside) == self.my_index()).then_some(beside)
    }

    /// The withholder's one recipient of its proposals (the next validator by index), if this
    /// validator withholds. It withholds proposals that follow a QC (the timeouts they cause
    /// are what the other attacks need); a proposal after a timeout goes to everyone.
    pub(super) fn withheld_from_all_but(&self) -> Option<ValidatorIndex> {
        let me = self.me.as_ref()?.index;
        self.attacking(Attack::Withhold).then(|| (me + 1) % self.members.len() as ValidatorIndex)
    }

    /// The QC an attacker reports in its timeout of `round`: the lowest it holds (a lying
    /// `LowTimeout`), or a forged one a round above its high QC (`ForgedQuorumCertificate`:
    /// its block, the round just below the timeout's, signed by itself alone and saying so —
    /// a valid signature from too little stake, where its proposals' QCs claim a quorum).
    pub(super) fn reported_qc(&self, round: u64) -> QuorumCertificate {
        if self.attacking(Attack::LowTimeout) {
            return self.oldest_extendable_qc();
        }
        let below = round.saturating_sub(1);
        match (self.my_index(), self.safety.key()) {
            (Some(me), Some(bls)) if self.attacking(Attack::ForgedQuorumCertificate) && below > self.high_qc.round => {
                let block = self.high_qc.block;
                let vote = VoteMessage { domain: self.committee.domain(), round: below, block };
                let signers = crate::certificate::bitmap_of(self.members.len(), &[me as usize]);
                QuorumCertificate { round: below, block, signers, signature: bls.sign_vote(&vote).to_bytes().to_vec() }
            }
            _ => self.high_qc.clone(),
        }
    }

    /// The grinding attack, run by a faulty leader: when the proposal it is about to send would
    /// make it the next round's leader too, it rebuilds its block (another block, another
    /// digest) up to 64 times until its own election of the round after that picks it again —
    /// so that, under a grindable election, one leadership becomes all the following ones. It
    /// asks the engine's own rules (`elected_after`, `seed_of`) who would lead, so it attacks
    /// whatever the election is. Returns whether it asked for a rebuild instead of proposing.
    pub(super) fn regrind(&mut self, header: &ProposalHeader, beta: &[u8; 64], payload: &Payload, out: &mut Vec<Output>) -> bool {
        const GRIND_TRIES: u32 = 64;
        let Some(me) = self.me.as_ref().map(|m| m.index) else { return false };
        if !self.attacking(Attack::Grind) || self.grind_tries >= GRIND_TRIES {
            self.grind_tries = 0;
            return false;
        }
        let justify = self.high_qc.clone();
        let hypothetical = |header: ProposalHeader, beta: [u8; 64]| Known {
            proposal: Proposal { header, justify: justify.clone(), timeout: None, payload: vec![], signature: vec![] },
            verified: true,
            beta,
            empty: false,
        };
        let digest = header.digest();
        self.tree.proposals.insert(digest, hypothetical(header.clone(), *beta));
        let (next, seed) = (self.election.elected_after(&self.tree, &digest), seed_of(&self.tree, &digest));
        let mut keeps_leading = true;
        if let (Some(next), Some(seed), Some(vrf)) = (next, seed, self.me.as_ref().map(|m| &m.vrf)) {
            if next == me {
                let round = header.round.saturating_add(1);
                let (election, child_beta) = vrf.prove(&election_input(round.saturating_add(1), &seed));
                let child = ProposalHeader {
                    round,
                    parent: digest,
                    election: election.to_vec(),
                    parent_seed: seed,
                    recent_signers: recent_signers_after(&self.tree, &digest, &justify.signers).unwrap_or_default(),
                    after_timeout: false,
                    ..header.clone()
                };
                let child_digest = child.digest();
                let child = hypothetical(child, child_beta);
                self.tree.proposals.insert(child_digest, child);
                keeps_leading = self.election.elected_after(&self.tree, &child_digest) == Some(me);
                self.tree.proposals.remove(&child_digest);
            }
        }
        self.tree.proposals.remove(&digest);
        if keeps_leading {
            self.grind_tries = 0;
            return false;
        }
        self.grind_tries += 1;
        let parent = BlockRef { hash: payload.parent, height: payload.block.height.saturating_sub(1) };
        out.push(Output::BuildPayload { parent, parent_certificate: Certificate(codec::encode(&self.high_qc)) });
        true
    }
}
