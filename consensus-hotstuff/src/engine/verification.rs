//! Checking what arrives signed: QCs, TCs, proposal signatures and VRF proofs, each checked
//! once and remembered ([`VerifiedCache`], keyed by the committee so that a certificate
//! checked for one validator set is never taken for another).
//!
//! QCs this validator aggregated itself are known valid here but kept out of the shared
//! memory (`formed_here`): an engine sharing that memory (the simulator's) must check them
//! for itself, so a collector that formed a bad QC is never vouched for by the cache.

use std::sync::Arc;

use aether_primitives::codec;
use aether_primitives::types::{Hash, PublicKey, Signature};

use crate::certificate::{Committee, QuorumCertificate};
use crate::leader::VrfPublicKey;
use crate::timeout::TimeoutCertificate;
use crate::verified::VerifiedCache;

pub(super) struct Verifier {
    committee: Arc<Committee>,
    /// Fingerprint of the committee (keys and stakes): part of every cache key.
    committee_id: Hash,
    verified: VerifiedCache,
    formed_here: VerifiedCache,
}

impl Verifier {
    pub(super) fn new(committee: Arc<Committee>, committee_id: Hash, verified: VerifiedCache) -> Verifier {
        Verifier { committee, committee_id, verified, formed_here: VerifiedCache::new() }
    }

    /// Whether `qc` is valid: signed by a quorum of stake, or the round-0 QC of the genesis
    /// digest `genesis` (which names no signers).
    pub(super) fn qc(&mut self, qc: &QuorumCertificate, genesis: Option<Hash>) -> bool {
        if qc.round == 0 {
            return Some(qc.block) == genesis && qc.signers.is_empty();
        }
        let key = VerifiedCache::key(b"qc", &self.committee_id, &codec::encode(qc));
        if self.verified.contains(&key) || self.formed_here.contains(&key) {
            return true;
        }
        let ok = qc.verify(&self.committee).is_ok();
        if ok {
            self.verified.insert(key);
        }
        ok
    }

    /// Whether `qc` is already known valid here (checked before, or aggregated here), without
    /// checking it: a read-only look at the memory.
    pub(super) fn qc_known_valid(&self, qc: &QuorumCertificate) -> bool {
        let key = VerifiedCache::key(b"qc", &self.committee_id, &codec::encode(qc));
        self.verified.contains(&key) || self.formed_here.contains(&key)
    }

    /// Whether `tc` is valid: timeouts from a quorum of stake, each over the high-QC round it
    /// reports.
    pub(super) fn tc(&mut self, tc: &TimeoutCertificate) -> bool {
        let key = VerifiedCache::key(b"tc", &self.committee_id, &codec::encode(tc));
        if self.verified.contains(&key) {
            return true;
        }
        let ok = tc.verify(&self.committee).is_ok();
        if ok {
            self.verified.insert(key);
        }
        ok
    }

    /// Records a QC aggregated here from votes the collector checked.
    pub(super) fn formed_here(&mut self, qc: &QuorumCertificate) {
        self.formed_here.insert(VerifiedCache::key(b"qc", &self.committee_id, &codec::encode(qc)));
    }

    /// Whether `signature` is `proposer`'s ed25519 signature of the proposal digest `digest`.
    pub(super) fn proposal_signature(&mut self, proposer: &PublicKey, digest: &Hash, signature: [u8; 64]) -> bool {
        let key = VerifiedCache::key(b"ed25519", digest, &[proposer.0.as_slice(), &signature].concat());
        if self.verified.contains(&key) {
            return true;
        }
        crate::crypto_ops::count(crate::crypto_ops::CryptoOp::ProposalVerify);
        if proposer.verify(&digest.0, &Signature(signature)).is_err() {
            return false;
        }
        self.verified.insert(key);
        true
    }

    /// The VRF output of `proof` by `vrf` over `alpha`, if the proof verifies.
    pub(super) fn vrf_output(&mut self, vrf: &VrfPublicKey, alpha: &[u8], proof: &[u8]) -> Option<[u8; 64]> {
        let key = VerifiedCache::key(b"vrf", &Hash(vrf.0), &[alpha, proof].concat());
        if let Some(beta) = self.verified.output(&key).and_then(|b| <[u8; 64]>::try_from(b.as_slice()).ok()) {
            return Some(beta);
        }
        let beta = vrf.verify(alpha, proof).ok()?;
        self.verified.insert_output(key, beta.to_vec());
        Some(beta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certificate::{bitmap_of, BlsSecretKey};

    #[test]
    fn a_qc_formed_here_is_trusted_here_and_by_no_engine_sharing_the_memory() {
        let keys: Vec<BlsSecretKey> = (0..4u8).map(|i| BlsSecretKey::from_seed([i + 1; 32])).collect();
        let committee =
            Arc::new(Committee::new(keys.iter().map(|k| (k.public(), 1, k.prove_possession())).collect(), Hash([3; 32])).unwrap());
        let shared = VerifiedCache::new();
        let mut here = Verifier::new(committee.clone(), Hash([1; 32]), shared.clone());
        let mut elsewhere = Verifier::new(committee, Hash([1; 32]), shared);
        // Not a valid QC (no real signature): standing for one a faulty collector formed.
        let qc = QuorumCertificate { round: 5, block: Hash([2; 32]), signers: bitmap_of(4, &[0, 1, 2]), signature: vec![0; 96] };
        assert!(!here.qc(&qc, None));
        here.formed_here(&qc);
        assert!(here.qc(&qc, None), "what this engine aggregated from checked votes is not checked again");
        assert!(!elsewhere.qc(&qc, None), "another engine sharing the memory checks it for itself");
    }
}
