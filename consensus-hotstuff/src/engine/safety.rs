//! Safety rules: the only code that signs votes and timeouts, and the state that must survive a
//! restart for them to stay safe (DiemBFT v4's "SafetyRules", Jolteon Fig. 2–3).
//!
//! - **safe_to_vote**: vote in round `r` for a proposal justified by a QC of round `q` only if
//!   `r` is above every round this validator voted or timed out in, and either `r = q + 1`, or
//!   the proposal carries a TC for `r - 1` and `q` is at least the highest high-QC round that
//!   TC reports (the proposal extends the best QC a quorum knew of).
//! - **safe_to_timeout**: time out of round `r` only if the high QC is the highest this
//!   validator ever saw, `r` is not below a round it voted in, and `r` follows that QC or a TC
//!   directly. Timing out raises the highest voted round to `r`: no vote in `r` afterwards.
//! - **One proposal per round**: a leader proposes in a round only above the highest round it
//!   proposed in.
//!
//! Each rule raises the state before the signature is returned; the engine writes
//! [`SafetyRules::persisted`] before anything signed leaves. An unreadable persisted state
//! never signs again (it cannot tell which rounds it voted in).

use aether_primitives::types::Hash;
use borsh::{BorshDeserialize, BorshSerialize};

use crate::certificate::{BlsSecretKey, QuorumCertificate, VoteMessage};
use crate::messages::Proposal;
use crate::timeout::{TimeoutCertificate, TimeoutMessage};

/// Uncommitted proposals kept in the safety state, at most.
pub(super) const MAX_PERSISTED_CHAIN: usize = 16;

/// What survives a restart (written before any vote, timeout or proposal leaves).
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub(super) struct SafetyState {
    pub(super) highest_vote_round: u64,
    pub(super) highest_qc_round: u64,
    pub(super) high_qc: Option<QuorumCertificate>,
    pub(super) last_tc: Option<TimeoutCertificate>,
    /// The uncommitted proposals this validator voted for or holds a QC of, oldest first: if
    /// every validator crashed, a certified block would otherwise exist nowhere and no leader
    /// could extend its QC (the chain would stall for good).
    pub(super) chain: Vec<Proposal>,
    /// The highest round this validator proposed in: written before the proposal leaves, so a
    /// leader that crashes and restarts never signs a second proposal for that round.
    pub(super) highest_proposed_round: u64,
}

pub(super) struct SafetyRules {
    state: SafetyState,
    /// This validator's BLS key (none on a node that only follows the chain).
    key: Option<BlsSecretKey>,
    domain: Hash,
}

impl SafetyRules {
    pub(super) fn new(key: Option<BlsSecretKey>, domain: Hash) -> SafetyRules {
        SafetyRules { state: SafetyState::default(), key, domain }
    }

    pub(super) fn state(&self) -> &SafetyState {
        &self.state
    }

    /// Takes the state a previous run persisted. Returns false, and refuses to sign from now
    /// on, if it cannot be read: taking it for none could sign a vote conflicting with one
    /// already sent (an operator resets it knowingly).
    pub(super) fn restore(&mut self, persisted: &[u8]) -> bool {
        match SafetyState::try_from_slice(persisted) {
            Ok(state) => {
                self.state = state;
                true
            }
            Err(_) => {
                self.state.highest_vote_round = u64::MAX;
                false
            }
        }
    }

    /// The persisted uncommitted chain, handed over once at start (to be verified again).
    pub(super) fn take_chain(&mut self) -> Vec<Proposal> {
        std::mem::take(&mut self.state.chain)
    }

    /// Records that a QC of `round` was seen (timeouts only report the highest ever seen).
    pub(super) fn observe_qc_round(&mut self, round: u64) {
        self.state.highest_qc_round = self.state.highest_qc_round.max(round);
    }

    /// safe_to_vote. Precondition: the proposal `block` of `round` is verified, justified by a
    /// QC of `qc_round` (and by `tc` if its round was entered by a timeout), and this
    /// validator is in `round` and has not timed out in it. Postcondition when it signs: the
    /// highest voted round is `round`.
    pub(super) fn vote(&mut self, round: u64, block: Hash, qc_round: u64, tc: Option<&TimeoutCertificate>) -> Option<Vec<u8>> {
        let key = self.key.as_ref()?;
        if round <= self.state.highest_vote_round.max(qc_round) {
            return None;
        }
        let consecutive = qc_round.checked_add(1) == Some(round);
        let extends_tc = tc.is_some_and(|tc| tc.round.checked_add(1) == Some(round) && qc_round >= tc.max_high_qc_round());
        if !consecutive && !extends_tc {
            return None;
        }
        let signature = key.sign_vote(&VoteMessage { domain: self.domain, round, block }).to_bytes().to_vec();
        self.state.highest_vote_round = round;
        Some(signature)
    }

    /// safe_to_timeout. `high_qc_round` is this validator's high QC's round, `last_tc_round`
    /// its last TC's; the timeout is signed over `reported_qc_round`, the round of the QC it
    /// carries (the high QC's, except for an attacker of [`crate::mocks`]). Postcondition when
    /// it signs: the highest voted round is at least `round`.
    pub(super) fn timeout(
        &mut self,
        round: u64,
        high_qc_round: u64,
        last_tc_round: Option<u64>,
        reported_qc_round: u64,
    ) -> Option<Vec<u8>> {
        let key = self.key.as_ref()?;
        let follows = high_qc_round.saturating_add(1) == round || last_tc_round.is_some_and(|r| r.saturating_add(1) == round);
        if high_qc_round < self.state.highest_qc_round || round < self.state.highest_vote_round || round <= high_qc_round || !follows {
            return None;
        }
        self.state.highest_vote_round = self.state.highest_vote_round.max(round);
        let message = TimeoutMessage { domain: self.domain, round, high_qc_round: reported_qc_round };
        Some(message.sign(key).to_bytes().to_vec())
    }

    /// Whether this validator may still propose in `round`.
    pub(super) fn may_propose(&self, round: u64) -> bool {
        round > self.state.highest_proposed_round
    }

    /// Records a proposal for `round` (persist before it leaves).
    pub(super) fn record_proposal(&mut self, round: u64) {
        self.state.highest_proposed_round = round;
    }

    /// The bytes to persist, with the certificates and uncommitted chain to keep.
    pub(super) fn persisted(&mut self, high_qc: &QuorumCertificate, last_tc: Option<&TimeoutCertificate>, chain: Vec<Proposal>) -> Vec<u8> {
        self.state.chain = chain;
        self.state.high_qc = Some(high_qc.clone());
        self.state.last_tc = last_tc.cloned();
        aether_primitives::codec::encode(&self.state)
    }

    /// Test-only (feature `mocks`): the key, for attackers that sign forged certificates.
    #[cfg(feature = "mocks")]
    pub(super) fn key(&self) -> Option<&BlsSecretKey> {
        self.key.as_ref()
    }
}

/// Whether the safety state `persisted` (as [`SafetyRules::persisted`] wrote it) covers
/// `message`, sent by validator `sender`: a vote or timeout of a round at or below its highest
/// voted round, its own proposal of a round at or below its highest proposed round. The
/// simulator asks at every send (see `aether_testkit::sim::EngineUnderTest::persist_check`).
#[cfg(feature = "mocks")]
pub(crate) fn persisted_covers(sender: aether_api::consensus::ValidatorIndex, persisted: Option<&[u8]>, message: &[u8]) -> bool {
    use crate::messages::Message;
    let Ok(message) = Message::try_from_slice(message) else { return true };
    let state = || persisted.and_then(|s| SafetyState::try_from_slice(s).ok()).unwrap_or_default();
    match message {
        Message::Vote { round, .. } => state().highest_vote_round >= round,
        Message::Timeout(t) if t.signer == sender => state().highest_vote_round >= t.round,
        Message::Proposal(p) if p.header.proposer == sender => state().highest_proposed_round >= p.header.round,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certificate::{bitmap_of, QuorumCertificate};

    fn rules() -> SafetyRules {
        SafetyRules::new(Some(BlsSecretKey::from_seed([7; 32])), Hash::digest(b"t", b"domain"))
    }

    /// A TC for `round` whose signers reported these high-QC rounds (signatures are not the
    /// safety rules' business: the engine verified the TC before asking).
    fn tc(round: u64, reported: &[u64]) -> TimeoutCertificate {
        TimeoutCertificate { round, groups: reported.iter().map(|r| (*r, bitmap_of(4, &[0]))).collect(), signature: vec![] }
    }

    const B: Hash = Hash([1; 32]);

    #[test]
    fn votes_once_per_round_for_a_proposal_extending_the_previous_rounds_qc() {
        let mut s = rules();
        assert!(s.vote(3, B, 2, None).is_some());
        assert_eq!(s.state().highest_vote_round, 3);
        assert!(s.vote(3, Hash([2; 32]), 2, None).is_none(), "never twice in a round");
        assert!(s.vote(2, B, 1, None).is_none(), "never in an earlier round");
        assert!(s.vote(5, B, 3, None).is_none(), "round 5 on a round-3 QC needs a TC for round 4");
    }

    #[test]
    fn after_a_timeout_votes_only_for_a_proposal_extending_the_highest_qc_the_tc_reports() {
        let mut s = rules();
        assert!(s.vote(5, B, 2, Some(&tc(4, &[2, 3]))).is_none(), "a QC below one a signer reported");
        assert!(s.vote(5, B, 3, Some(&tc(3, &[3]))).is_none(), "a TC for another round");
        assert!(s.vote(5, B, 3, Some(&tc(4, &[2, 3]))).is_some());
    }

    #[test]
    fn times_out_only_from_its_highest_qc_or_tc_and_never_votes_after() {
        let mut s = rules();
        s.observe_qc_round(4);
        assert!(s.timeout(4, 3, None, 3).is_none(), "with a high QC below one it saw");
        assert!(s.timeout(6, 4, None, 4).is_none(), "a round that follows neither its QC nor a TC");
        assert!(s.timeout(4, 4, None, 4).is_none(), "a round its QC already ended");
        assert!(s.timeout(6, 4, Some(5), 4).is_some(), "the round after a TC");
        assert_eq!(s.state().highest_vote_round, 6);
        assert!(s.vote(6, B, 5, None).is_none(), "no vote in a round it timed out of");
        assert!(s.timeout(5, 4, None, 4).is_none(), "no timeout below a round it gave up");
    }

    #[test]
    fn proposes_once_per_round() {
        let mut s = rules();
        assert!(s.may_propose(1));
        s.record_proposal(1);
        assert!(!s.may_propose(1) && s.may_propose(2));
    }

    #[test]
    fn what_it_persists_restores_and_an_unreadable_state_never_signs() {
        let mut s = rules();
        s.vote(1, B, 0, None).unwrap();
        let qc = QuorumCertificate { round: 1, block: B, signers: vec![], signature: vec![] };
        let bytes = s.persisted(&qc, None, vec![]);
        let mut restored = rules();
        assert!(restored.restore(&bytes));
        assert_eq!(restored.state(), s.state());
        assert!(restored.vote(1, B, 0, None).is_none(), "the restored state remembers the vote");
        let mut broken = rules();
        assert!(!broken.restore(&[0xff; 3]), "too short to be a safety state");
        assert!(broken.vote(2, B, 1, None).is_none() && broken.timeout(2, 1, None, 1).is_none());
    }
}
