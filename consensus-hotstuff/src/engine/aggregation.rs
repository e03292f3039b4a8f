//! Aggregation: votes into quorum certificates, timeouts into timeout certificates, and the
//! equivocation they reveal (two votes, or two proposals, signed by one validator for one
//! round become [`Evidence`]).
//!
//! Signatures are checked lazily, once per certificate (see
//! [`crate::certificate::VoteCollector`]); a vote found forged is dropped and cannot frame its
//! supposed signer. Evidence needs both signatures to verify. The engine bounds which rounds
//! reach the collectors; [`Aggregator::forget_before`] drops collectors of rounds left behind.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use aether_api::consensus::{Output, ValidatorIndex};
use aether_primitives::types::{Amount, Hash};

use crate::certificate::{BlsSignature, Committee, QuorumCertificate, VoteCollector, VoteMessage};
use crate::evidence::Misbehaviour;
use crate::messages::ProposalHeader;
use crate::timeout::{TimeoutCertificate, TimeoutCollector};

pub(super) struct Aggregator {
    /// The engine's epoch: evidence found here is of it.
    epoch: u64,
    committee: Arc<Committee>,
    pub(super) votes: HashMap<(u64, Hash), VoteCollector>,
    pub(super) timeouts: BTreeMap<u64, TimeoutCollector>,
    pub(super) seen_votes: HashMap<(u64, ValidatorIndex), (Hash, Vec<u8>)>,
    seen_proposals: HashMap<(u64, ValidatorIndex), (ProposalHeader, Vec<u8>)>,
}

impl Aggregator {
    pub(super) fn new(committee: Arc<Committee>, epoch: u64) -> Aggregator {
        Aggregator {
            committee,
            epoch,
            votes: HashMap::new(),
            timeouts: BTreeMap::new(),
            seen_votes: HashMap::new(),
            seen_proposals: HashMap::new(),
        }
    }

    /// Counts `voter`'s vote for `digest` in `round`. Returns the QC once the votes for
    /// `digest` reach a quorum. A second vote of the voter in the round for another block
    /// becomes evidence (pushed to `out`) if both verify. A voter outside the committee is
    /// ignored (the engine's caller already refuses it; this does not rely on that).
    pub(super) fn add_vote(
        &mut self,
        round: u64,
        digest: Hash,
        voter: ValidatorIndex,
        signature: Vec<u8>,
        out: &mut Vec<Output>,
    ) -> Option<QuorumCertificate> {
        let key = self.committee.keys.get(voter as usize)?;
        let sig = BlsSignature::from_bytes(&signature).ok()?;
        match self.seen_votes.get(&(round, voter)) {
            Some((other, other_sig)) if *other != digest => {
                // Two votes for one round: evidence only if both verify (otherwise anyone could
                // frame a validator). A first vote that does not verify is replaced.
                let domain = self.committee.domain();
                let first =
                    BlsSignature::from_bytes(other_sig).is_ok_and(|s| s.verify_vote(&VoteMessage { domain, round, block: *other }, key));
                let second = sig.verify_vote(&VoteMessage { domain, round, block: digest }, key);
                if first && second {
                    let m = Misbehaviour::DoubleVote {
                        round,
                        first: *other,
                        first_signature: other_sig.clone(),
                        second: digest,
                        second_signature: signature.clone(),
                    };
                    out.push(Output::Evidence(m.into_evidence(voter, self.epoch)));
                }
                if first || !second {
                    return None;
                }
                self.seen_votes.insert((round, voter), (digest, signature));
            }
            Some(_) => {}
            None => {
                self.seen_votes.insert((round, voter), (digest, signature));
            }
        }
        let committee = &self.committee;
        let collector = self
            .votes
            .entry((round, digest))
            .or_insert_with(|| VoteCollector::new(committee, VoteMessage { domain: committee.domain(), round, block: digest }));
        let outcome = collector.add(voter, sig).ok()?;
        for forged in outcome.forged {
            self.seen_votes.remove(&(round, forged));
        }
        outcome.certificate
    }

    /// Counts `signer`'s timeout of `round` reporting a high QC of `high_qc_round`. Returns
    /// the TC if this timeout completed one, and the stake that timed out of the round so far;
    /// None if the signature is malformed or the collector refused it.
    pub(super) fn add_timeout(
        &mut self,
        round: u64,
        signer: ValidatorIndex,
        high_qc_round: u64,
        signature: &[u8],
    ) -> Option<(Option<TimeoutCertificate>, Amount)> {
        let sig = BlsSignature::from_bytes(signature).ok()?;
        let committee = &self.committee;
        let collector = self.timeouts.entry(round).or_insert_with(|| TimeoutCollector::new(committee, round));
        let (tc, _forged) = collector.add(signer, high_qc_round, sig).ok()?;
        Some((tc, collector.stake()))
    }

    /// Notes a verified proposal; a second, different one by the same proposer for the same
    /// round becomes evidence (pushed to `out`).
    pub(super) fn note_proposal(&mut self, header: &ProposalHeader, signature: &[u8], out: &mut Vec<Output>) {
        let key = (header.round, header.proposer);
        match self.seen_proposals.get(&key) {
            Some((other, other_sig)) if other.digest() != header.digest() => {
                let m = Misbehaviour::DoubleProposal {
                    first: other.clone(),
                    first_signature: other_sig.clone(),
                    second: header.clone(),
                    second_signature: signature.to_vec(),
                };
                out.push(Output::Evidence(m.into_evidence(header.proposer, self.epoch)));
            }
            Some(_) => {}
            None => {
                self.seen_proposals.insert(key, (header.clone(), signature.to_vec()));
            }
        }
    }

    /// Entering `round`: timeouts older than the round before it, and votes and proposals older
    /// than two rounds before it, can no longer matter.
    pub(super) fn forget_before(&mut self, round: u64) {
        self.timeouts = self.timeouts.split_off(&round.saturating_sub(1));
        let min = round.saturating_sub(2);
        self.votes.retain(|(r, _), _| *r >= min);
        self.seen_votes.retain(|(r, _), _| *r >= min);
        self.seen_proposals.retain(|(r, _), _| *r >= min);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certificate::BlsSecretKey;

    #[test]
    fn a_quorum_of_votes_forms_a_qc_double_votes_become_evidence_and_strangers_are_ignored() {
        let keys: Vec<BlsSecretKey> = (0..4u8).map(|i| BlsSecretKey::from_seed([i + 9; 32])).collect();
        let domain = Hash([5; 32]);
        let committee = Arc::new(Committee::new(keys.iter().map(|k| (k.public(), 1, k.prove_possession())).collect(), domain).unwrap());
        let mut agg = Aggregator::new(committee.clone(), 0);
        let (a, b) = (Hash([1; 32]), Hash([2; 32]));
        let vote = |i: usize, block| keys[i].sign_vote(&VoteMessage { domain, round: 3, block }).to_bytes().to_vec();
        let mut out = vec![];
        // Validator 9 does not exist: twice, for two blocks, it is ignored (and never indexed).
        assert!(agg.add_vote(3, a, 9, vote(0, a), &mut out).is_none());
        assert!(agg.add_vote(3, b, 9, vote(0, b), &mut out).is_none());
        assert!(out.is_empty());
        assert!(agg.add_vote(3, a, 0, vote(0, a), &mut out).is_none());
        assert!(agg.add_vote(3, b, 0, vote(0, b), &mut out).is_none(), "a second vote counts for nothing");
        assert!(matches!(out.as_slice(), [Output::Evidence(_)]), "and is evidence: {out:?}");
        assert!(agg.add_vote(3, a, 1, vote(1, a), &mut out).is_none());
        let qc = agg.add_vote(3, a, 2, vote(2, a), &mut out).expect("3 of 4 is a quorum");
        assert!(qc.verify(&committee).is_ok());
    }
}
