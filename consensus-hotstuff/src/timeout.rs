//! Timeout votes and timeout certificates (TCs).
//!
//! A validator that gives up on round `r` signs `(r, round of its highest QC)` (Jolteon, §4:
//! the timeout carries the signer's high-QC round so the next leader can be held to extend a
//! QC at least that high). A TC is a quorum of such signatures. Signers reporting the same
//! high-QC round are grouped: the TC holds one signer bitmap per distinct round and a single
//! aggregate signature, verified with one pairing per group plus one (usually 1–2 groups).

use std::collections::BTreeMap;
use std::sync::Arc;

use aether_api::consensus::ValidatorIndex;
use aether_primitives::types::{Amount, Hash};
use blst::min_pk::{AggregateSignature, PublicKey, Signature};
use borsh::{BorshDeserialize, BorshSerialize};

use crate::certificate::{bitmap_indices, bitmap_of, blst_ok, BlsSecretKey, BlsSignature, CertError, Committee};

/// Domain separation tag of timeout signatures (distinct from votes: a timeout can never be
/// replayed as a vote or the other way round).
pub const TIMEOUT_DST: &[u8] = b"AETHER_HOTSTUFF_TIMEOUT_BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

/// What a timeout signs: the committee's signing domain (chain, genesis, epoch: see
/// [`crate::certificate::signing_domain`]), the round and the signer's high-QC round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, BorshSerialize, BorshDeserialize)]
pub struct TimeoutMessage {
    pub domain: Hash,
    pub round: u64,
    pub high_qc_round: u64,
}

impl TimeoutMessage {
    pub fn signing_bytes(&self) -> [u8; 32] {
        Hash::digest_parts(b"aether/hotstuff-timeout/v2", &[&self.domain.0, &self.round.to_be_bytes(), &self.high_qc_round.to_be_bytes()]).0
    }
    pub fn sign(&self, key: &BlsSecretKey) -> BlsSignature {
        key.sign(&self.signing_bytes(), TIMEOUT_DST)
    }
}

/// Proof that a quorum of stake gave up on `round`.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct TimeoutCertificate {
    pub round: u64,
    /// (high-QC round, signer bitmap), high-QC rounds strictly increasing, bitmaps disjoint.
    pub groups: Vec<(u64, Vec<u8>)>,
    pub signature: Vec<u8>,
}

impl TimeoutCertificate {
    /// The highest high-QC round any signer reported: the next leader's QC must reach it.
    pub fn max_high_qc_round(&self) -> u64 {
        self.groups.iter().map(|(r, _)| *r).max().unwrap_or(0)
    }

    /// Checks that the signers hold a quorum of stake and the aggregate signature verifies.
    pub fn verify(&self, committee: &Committee) -> Result<(), CertError> {
        let n = committee.len();
        let mut seen = vec![false; n];
        let mut stake: Amount = 0;
        let mut messages = Vec::new();
        let mut keys = Vec::new();
        let mut last_round = None;
        for (high_qc_round, map) in &self.groups {
            if last_round.is_some_and(|r| r >= *high_qc_round) || *high_qc_round >= self.round {
                return Err(CertError::BadSignature);
            }
            last_round = Some(*high_qc_round);
            let signers = bitmap_indices(n, map)?;
            if signers.is_empty() {
                return Err(CertError::BadBitmap { got: map.len(), expected: n.div_ceil(8), size: n });
            }
            for i in &signers {
                if std::mem::replace(&mut seen[*i], true) {
                    return Err(CertError::BadSignature);
                }
                stake = stake.saturating_add(committee.stakes[*i]);
            }
            messages.push(TimeoutMessage { domain: committee.domain(), round: self.round, high_qc_round: *high_qc_round }.signing_bytes());
            keys.push(committee.aggregate_key(&signers)?);
        }
        if stake < committee.quorum() {
            return Err(CertError::NotAQuorum { stake, quorum: committee.quorum() });
        }
        let signature = BlsSignature::from_bytes(&self.signature)?;
        crate::crypto_ops::count(crate::crypto_ops::CryptoOp::TcVerify);
        let msgs: Vec<&[u8]> = messages.iter().map(|m| m.as_slice()).collect();
        let pks: Vec<&PublicKey> = keys.iter().collect();
        if blst_ok(signature.0.aggregate_verify(true, &msgs, TIMEOUT_DST, &pks, false)) {
            Ok(())
        } else {
            Err(CertError::BadSignature)
        }
    }
}

/// Collects timeouts for one round; forms a TC once a quorum of stake has timed out. Like
/// votes, signatures are checked in one batch when the quorum is reached, one by one only if
/// the batch fails.
pub struct TimeoutCollector {
    committee: Arc<Committee>,
    round: u64,
    timeouts: BTreeMap<usize, (u64, BlsSignature)>,
    stake: Amount,
    forged: Vec<usize>,
    done: bool,
}

impl TimeoutCollector {
    pub fn new(committee: &Arc<Committee>, round: u64) -> TimeoutCollector {
        TimeoutCollector { committee: committee.clone(), round, timeouts: BTreeMap::new(), stake: 0, forged: vec![], done: false }
    }

    /// Stake of the distinct validators whose timeouts arrived (verified or not).
    pub fn stake(&self) -> Amount {
        self.stake
    }

    /// Adds `index`'s timeout; returns the TC when this one completes a valid quorum, and the
    /// validators whose timeouts turned out forged.
    pub fn add(
        &mut self,
        index: ValidatorIndex,
        high_qc_round: u64,
        signature: BlsSignature,
    ) -> Result<(Option<TimeoutCertificate>, Vec<ValidatorIndex>), CertError> {
        let i = self.committee.check_index(index)?;
        if self.done || self.timeouts.contains_key(&i) || self.forged.contains(&i) || high_qc_round >= self.round {
            return Ok((None, vec![]));
        }
        self.timeouts.insert(i, (high_qc_round, signature));
        self.stake = self.stake.saturating_add(self.committee.stakes[i]);
        if self.stake < self.committee.quorum() {
            return Ok((None, vec![]));
        }
        if let Some(tc) = self.aggregate() {
            self.done = true;
            return Ok((Some(tc), vec![]));
        }
        let (round, domain) = (self.round, self.committee.domain());
        let bad: Vec<usize> = self
            .timeouts
            .iter()
            .filter(|(i, (hqc, sig))| {
                let message = TimeoutMessage { domain, round, high_qc_round: *hqc };
                !sig.verify(&message.signing_bytes(), TIMEOUT_DST, &self.committee.keys[**i])
            })
            .map(|(i, _)| *i)
            .collect();
        for i in &bad {
            self.timeouts.remove(i);
            self.stake -= self.committee.stakes[*i];
            self.forged.push(*i);
        }
        let tc = if self.stake >= self.committee.quorum() { self.aggregate() } else { None };
        self.done = tc.is_some();
        Ok((tc, bad.into_iter().map(|i| i as ValidatorIndex).collect()))
    }

    fn aggregate(&self) -> Option<TimeoutCertificate> {
        let sigs: Vec<&Signature> = self.timeouts.values().map(|(_, s)| &s.0).collect();
        let signature = AggregateSignature::aggregate(&sigs, true).ok()?.to_signature();
        let mut groups: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        for (i, (hqc, _)) in &self.timeouts {
            groups.entry(*hqc).or_default().push(*i);
        }
        let n = self.committee.len();
        let tc = TimeoutCertificate {
            round: self.round,
            groups: groups.into_iter().map(|(r, signers)| (r, bitmap_of(n, &signers))).collect(),
            signature: signature.compress().to_vec(),
        };
        tc.verify(&self.committee).ok().map(|_| tc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Hash = Hash([9; 32]);

    fn setup(n: usize) -> (Vec<BlsSecretKey>, Arc<Committee>) {
        let keys: Vec<BlsSecretKey> = (0..n).map(|i| BlsSecretKey::from_seed([i as u8 + 40; 32])).collect();
        let committee = Committee::new(keys.iter().map(|k| (k.public(), 1, k.prove_possession())).collect(), D).unwrap();
        (keys, Arc::new(committee))
    }

    #[test]
    fn a_quorum_of_timeouts_with_different_high_qcs_forms_a_verifiable_tc() {
        let (keys, committee) = setup(4);
        let mut c = TimeoutCollector::new(&committee, 9);
        let hqc = [3u64, 7, 7, 5];
        let mut tc = None;
        for i in 0..3 {
            let (formed, forged) =
                c.add(i as u32, hqc[i], TimeoutMessage { domain: D, round: 9, high_qc_round: hqc[i] }.sign(&keys[i])).unwrap();
            assert!(forged.is_empty());
            tc = formed;
        }
        let tc = tc.expect("3 of 4 is a quorum");
        tc.verify(&committee).unwrap();
        assert_eq!(tc.max_high_qc_round(), 7);
        // Claiming a higher high-QC round for a signer than it signed breaks the signature.
        let mut lie = tc.clone();
        lie.groups[1].0 = 8;
        assert_eq!(lie.verify(&committee), Err(CertError::BadSignature));
        let mut short = tc.clone();
        short.groups.pop();
        assert!(matches!(short.verify(&committee), Err(CertError::NotAQuorum { .. })));
    }

    /// A TC signed for real by `signers`, each reporting the high-QC round paired with it,
    /// grouped exactly as `groups` says (any order, any rounds).
    fn signed_tc(keys: &[BlsSecretKey], round: u64, groups: &[(u64, &[usize])]) -> TimeoutCertificate {
        let sigs: Vec<Signature> = groups
            .iter()
            .flat_map(|(hqc, signers)| signers.iter().map(move |i| (*hqc, *i)))
            .map(|(hqc, i)| TimeoutMessage { domain: D, round, high_qc_round: hqc }.sign(&keys[i]).0)
            .collect();
        let signature = AggregateSignature::aggregate(&sigs.iter().collect::<Vec<_>>(), true).unwrap().to_signature();
        TimeoutCertificate {
            round,
            groups: groups.iter().map(|(hqc, signers)| (*hqc, bitmap_of(keys.len(), signers))).collect(),
            signature: signature.compress().to_vec(),
        }
    }

    #[test]
    fn a_tc_lists_reported_rounds_increasing_and_below_its_own_round() {
        let (keys, committee) = setup(4);
        signed_tc(&keys, 9, &[(3, &[0]), (5, &[2]), (7, &[1])]).verify(&committee).unwrap();
        // The same signatures grouped out of order: one TC has one encoding (its cache key and
        // its bytes in evidence and proposals), so any other is refused.
        let unordered = signed_tc(&keys, 9, &[(7, &[1]), (3, &[0]), (5, &[2])]);
        assert_eq!(unordered.verify(&committee), Err(CertError::BadSignature));
        // Signers reporting a QC of the TC's own round (only faulty ones would sign that): the
        // next leader could never extend a QC that high, so the TC would stall the round after.
        let too_high = signed_tc(&keys, 9, &[(2, &[0]), (9, &[1, 2])]);
        assert_eq!(too_high.verify(&committee), Err(CertError::BadSignature));
    }

    #[test]
    fn forged_timeouts_are_found_and_the_tc_waits_for_honest_ones() {
        let (keys, committee) = setup(4);
        let mut c = TimeoutCollector::new(&committee, 4);
        c.add(0, 1, TimeoutMessage { domain: D, round: 4, high_qc_round: 1 }.sign(&keys[0])).unwrap();
        c.add(1, 1, TimeoutMessage { domain: D, round: 4, high_qc_round: 1 }.sign(&keys[1])).unwrap();
        // Validator 2 signs another round's timeout and passes it off as this one.
        let (tc, forged) = c.add(2, 1, TimeoutMessage { domain: D, round: 5, high_qc_round: 1 }.sign(&keys[2])).unwrap();
        assert!(tc.is_none());
        assert_eq!(forged, vec![2]);
        let (tc, _) = c.add(3, 2, TimeoutMessage { domain: D, round: 4, high_qc_round: 2 }.sign(&keys[3])).unwrap();
        tc.expect("the honest quorum forms").verify(&committee).unwrap();
    }
}
