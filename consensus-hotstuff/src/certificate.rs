//! BLS votes and quorum certificates (blst, BLS12-381, `min_pk`: 48-byte public keys in G1,
//! 96-byte signatures in G2, so aggregating many signers' keys is cheap G1 additions).
//!
//! - A **vote** is a BLS signature over [`VoteMessage`] (round and block, domain-separated).
//! - A **quorum certificate** ([`QuorumCertificate`]) is one aggregate signature plus a signer
//!   bitmap. Verifying it sums the signers' stake, aggregates their public keys and does one
//!   pairing check.
//! - Votes are verified **lazily** ([`VoteCollector`]): nothing is checked until the collected
//!   stake reaches a quorum; then the aggregate is checked once. Only if that fails are votes
//!   checked one by one, to find and drop the forged ones (reported to the caller as evidence).
//! - Every committee key must come with a **proof of possession** (a signature over the key
//!   itself under a separate domain tag), checked when the [`Committee`] is built. Without it a
//!   validator could register a "rogue" key crafted from others' keys and forge aggregates.

use std::collections::BTreeMap;
use std::sync::Arc;

use aether_api::consensus::{quorum_threshold, ValidatorIndex};
use aether_primitives::types::{Amount, Hash};
use blst::min_pk::{AggregatePublicKey, AggregateSignature, PublicKey, SecretKey, Signature};
use blst::BLST_ERROR;
use borsh::{BorshDeserialize, BorshSerialize};

/// Domain separation tag of votes (hash-to-curve suite of the proof-of-possession scheme).
pub const VOTE_DST: &[u8] = b"AETHER_HOTSTUFF_VOTE_BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";
/// Domain separation tag of proofs of possession (the standard POP tag).
pub const POP_DST: &[u8] = b"BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("public key of validator {index} is not a valid BLS12-381 G1 point: {reason}")]
    BadPublicKey { index: usize, reason: String },
    #[error("proof of possession of validator {0} does not verify")]
    BadPossession(usize),
    #[error("committee is empty or its stake is zero")]
    EmptyCommittee,
    #[error("validator index {index} is outside a committee of {size}")]
    UnknownValidator { index: ValidatorIndex, size: usize },
    #[error("signature bytes are not a valid compressed G2 point")]
    MalformedSignature,
    #[error("signer bitmap has {got} bytes; a committee of {size} needs {expected} with no bits past the last validator")]
    BadBitmap { got: usize, expected: usize, size: usize },
    #[error("signers hold {stake} stake; a quorum needs {quorum}")]
    NotAQuorum { stake: Amount, quorum: Amount },
    #[error("aggregate signature does not verify for the signers and message")]
    BadSignature,
    #[error("a certificate names no signers")]
    NoSigners,
}

pub(crate) fn blst_ok(e: BLST_ERROR) -> bool {
    e == BLST_ERROR::BLST_SUCCESS
}

/// A validator's BLS secret key.
pub struct BlsSecretKey(SecretKey);

/// A BLS public key, checked to be a valid, non-identity G1 point when decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlsPublicKey(pub(crate) PublicKey);

/// A BLS signature (compressed form on the wire; group-checked when verified).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlsSignature(pub(crate) Signature);

impl BlsSecretKey {
    /// Derives a key from 32 bytes of input keying material (IETF KeyGen).
    // KeyGen fails only for fewer than 32 bytes of IKM; the type gives exactly 32.
    #[allow(clippy::expect_used)]
    pub fn from_seed(ikm: [u8; 32]) -> BlsSecretKey {
        BlsSecretKey(SecretKey::key_gen(&ikm, &[]).expect("32 bytes of IKM is enough for KeyGen"))
    }

    pub fn public(&self) -> BlsPublicKey {
        BlsPublicKey(self.0.sk_to_pk())
    }

    pub fn sign_vote(&self, vote: &VoteMessage) -> BlsSignature {
        self.sign(&vote.signing_bytes(), VOTE_DST)
    }

    /// Signs a 32-byte message digest under domain tag `dst`.
    pub(crate) fn sign(&self, message: &[u8; 32], dst: &[u8]) -> BlsSignature {
        crate::crypto_ops::count(crate::crypto_ops::CryptoOp::BlsSign);
        BlsSignature(self.0.sign(message, dst, &[]))
    }

    /// Signs this key's own public key under [`POP_DST`].
    pub fn prove_possession(&self) -> BlsSignature {
        crate::crypto_ops::count(crate::crypto_ops::CryptoOp::BlsSign);
        BlsSignature(self.0.sign(&self.public().to_bytes(), POP_DST, &[]))
    }
}

impl BlsPublicKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<BlsPublicKey, BLST_ERROR> {
        PublicKey::key_validate(bytes).map(BlsPublicKey)
    }
    pub fn to_bytes(&self) -> [u8; 48] {
        self.0.compress()
    }
    /// Whether `proof` is this key's proof of possession.
    pub fn verify_possession(&self, proof: &BlsSignature) -> bool {
        crate::crypto_ops::count(crate::crypto_ops::CryptoOp::PossessionVerify);
        blst_ok(proof.0.verify(true, &self.to_bytes(), POP_DST, &[], &self.0, false))
    }
}

impl BlsSignature {
    pub fn from_bytes(bytes: &[u8]) -> Result<BlsSignature, CertError> {
        Signature::uncompress(bytes).map(BlsSignature).map_err(|_| CertError::MalformedSignature)
    }
    pub fn to_bytes(&self) -> [u8; 96] {
        self.0.compress()
    }
    /// Checks one vote on its own (used only to find forgeries after a batch failed).
    pub fn verify_vote(&self, vote: &VoteMessage, key: &BlsPublicKey) -> bool {
        self.verify(&vote.signing_bytes(), VOTE_DST, key)
    }

    pub(crate) fn verify(&self, message: &[u8; 32], dst: &[u8], key: &BlsPublicKey) -> bool {
        crate::crypto_ops::count(crate::crypto_ops::CryptoOp::SignatureVerify);
        blst_ok(self.0.verify(true, message, dst, &[], &key.0, false))
    }
}

/// What a vote signs: the chain's [`Committee::domain`] (so a vote, and a QC, is valid on one
/// chain and epoch only, even where validators reuse keys elsewhere), the round and the
/// proposal's digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct VoteMessage {
    pub domain: Hash,
    pub round: u64,
    pub block: Hash,
}

impl VoteMessage {
    pub fn signing_bytes(&self) -> [u8; 32] {
        Hash::digest_parts(b"aether/hotstuff-vote/v2", &[&self.domain.0, &self.round.to_be_bytes(), &self.block.0]).0
    }
}

/// The signing domain of a chain's committee: every signed HotStuff statement (vote, timeout,
/// proposal) covers it. It names the chain twice over (its id and its genesis block, so a
/// respin under the same id is another domain) and the epoch (0 until validator sets change).
pub fn signing_domain(chain_id: &str, genesis: &Hash, epoch: u64) -> Hash {
    Hash::digest_parts(b"aether/hotstuff-domain/v1", &[chain_id.as_bytes(), &genesis.0, &epoch.to_be_bytes()])
}

/// The validators of an epoch with their BLS keys and stake, in index order.
#[derive(Clone, Debug)]
pub struct Committee {
    pub(crate) keys: Vec<BlsPublicKey>,
    pub(crate) stakes: Vec<Amount>,
    quorum: Amount,
    domain: Hash,
}

impl Committee {
    /// Builds a committee from `(key, stake, proof of possession)` in validator-index order,
    /// refusing any member whose proof does not verify. `domain` ([`signing_domain`]) is what
    /// every certificate of this committee is bound to.
    pub fn new(members: Vec<(BlsPublicKey, Amount, BlsSignature)>, domain: Hash) -> Result<Committee, CertError> {
        let total = members.iter().fold(0u128, |t, (_, s, _)| t.saturating_add(*s));
        if members.is_empty() || total == 0 {
            return Err(CertError::EmptyCommittee);
        }
        for (index, (key, _, pop)) in members.iter().enumerate() {
            if !key.verify_possession(pop) {
                return Err(CertError::BadPossession(index));
            }
        }
        let (keys, stakes) = members.into_iter().map(|(k, s, _)| (k, s)).unzip();
        let quorum = quorum_threshold(total);
        Ok(Committee { keys, stakes, quorum, domain })
    }

    /// The signing domain every vote and timeout of this committee covers.
    pub fn domain(&self) -> Hash {
        self.domain
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
    pub fn quorum(&self) -> Amount {
        self.quorum
    }

    pub(crate) fn check_index(&self, index: ValidatorIndex) -> Result<usize, CertError> {
        let i = index as usize;
        if i < self.keys.len() {
            Ok(i)
        } else {
            Err(CertError::UnknownValidator { index, size: self.keys.len() })
        }
    }

    /// Aggregate public key of `signers` (indices known valid; keys were validated when the
    /// committee was built, so only an empty list fails).
    pub(crate) fn aggregate_key(&self, signers: &[usize]) -> Result<PublicKey, CertError> {
        let keys: Vec<&PublicKey> = signers.iter().map(|i| &self.keys[*i].0).collect();
        AggregatePublicKey::aggregate(&keys, false).map(|k| k.to_public_key()).map_err(|_| CertError::NoSigners)
    }
}

/// The indices set in a signer bitmap for a committee of `n` (bit `i` is byte `i / 8`, bit
/// `i % 8`, least significant first). The bitmap must be exactly `ceil(n / 8)` bytes with no
/// bit set past `n - 1`, so each signer set has one encoding.
pub(crate) fn bitmap_indices(n: usize, bitmap: &[u8]) -> Result<Vec<usize>, CertError> {
    let expected = n.div_ceil(8);
    let bad = || CertError::BadBitmap { got: bitmap.len(), expected, size: n };
    if bitmap.len() != expected {
        return Err(bad());
    }
    let mut out = Vec::new();
    for (byte_index, byte) in bitmap.iter().enumerate() {
        for bit in 0..8 {
            if byte & (1 << bit) != 0 {
                let i = byte_index * 8 + bit;
                if i >= n {
                    return Err(bad());
                }
                out.push(i);
            }
        }
    }
    Ok(out)
}

/// The bitmap of `signers` for a committee of `n` (see [`bitmap_indices`]).
pub(crate) fn bitmap_of(n: usize, signers: &[usize]) -> Vec<u8> {
    let mut bitmap = vec![0u8; n.div_ceil(8)];
    for i in signers {
        bitmap[i / 8] |= 1 << (i % 8);
    }
    bitmap
}

/// Proof that validators holding a quorum of stake voted for `block` in `round`.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct QuorumCertificate {
    pub round: u64,
    pub block: Hash,
    /// Bit `i` (byte `i / 8`, bit `i % 8`, least significant first) set if validator `i` signed.
    pub signers: Vec<u8>,
    /// Compressed aggregate BLS signature of the signers' votes.
    pub signature: Vec<u8>,
}

impl QuorumCertificate {
    /// What each signer signed, in `committee`'s domain.
    pub fn vote(&self, committee: &Committee) -> VoteMessage {
        VoteMessage { domain: committee.domain, round: self.round, block: self.block }
    }

    /// The validators whose bits are set.
    pub fn signer_indices(&self, committee: &Committee) -> Result<Vec<usize>, CertError> {
        bitmap_indices(committee.len(), &self.signers)
    }

    /// Checks the signers' stake is a quorum and the aggregate signature verifies: one
    /// aggregation of public keys and one pairing check.
    pub fn verify(&self, committee: &Committee) -> Result<(), CertError> {
        let signers = self.signer_indices(committee)?;
        let stake = signers.iter().fold(0u128, |t, i| t.saturating_add(committee.stakes[*i]));
        if stake < committee.quorum {
            return Err(CertError::NotAQuorum { stake, quorum: committee.quorum });
        }
        let signature = BlsSignature::from_bytes(&self.signature)?;
        crate::crypto_ops::count(crate::crypto_ops::CryptoOp::QcVerify);
        let key = committee.aggregate_key(&signers)?;
        if blst_ok(signature.0.fast_aggregate_verify_pre_aggregated(true, &self.vote(committee).signing_bytes(), VOTE_DST, &key)) {
            Ok(())
        } else {
            Err(CertError::BadSignature)
        }
    }
}

/// HotStuff's `aether_api::registry::CertificateSigners`: a block header's parent
/// certificate is the QC its proposal extends, and the QC's signer bitmap names who signed the
/// parent. The round-0 QC of an epoch's genesis (what the first block of a chain or an epoch
/// carries) names nobody. Only reads: validity is `verify_parent_certificate`'s job.
pub fn parent_certificate_signers(certificate: &[u8], validators: usize) -> Result<Vec<ValidatorIndex>, String> {
    let qc = QuorumCertificate::try_from_slice(certificate).map_err(|e| format!("not a HotStuff QC: {e}"))?;
    if qc.round == 0 {
        if qc.signers.is_empty() && qc.signature.is_empty() {
            return Ok(vec![]);
        }
        return Err("a round-0 QC (an epoch's genesis) names no signers".into());
    }
    let signers = bitmap_indices(validators, &qc.signers).map_err(|e| e.to_string())?;
    if signers.is_empty() {
        return Err(CertError::NoSigners.to_string());
    }
    // Indices are below `validators`, a set size (at most 512), so they fit a u32.
    Ok(signers.into_iter().map(|i| i as ValidatorIndex).collect())
}

/// What adding a vote produced.
#[derive(Debug, Default)]
pub struct AddOutcome {
    /// Set once the collected votes form a verified quorum.
    pub certificate: Option<QuorumCertificate>,
    /// Validators found to have sent a vote that does not verify (evidence for the engine).
    pub forged: Vec<ValidatorIndex>,
}

/// Collects votes for one [`VoteMessage`] and forms a certificate once a quorum of stake has
/// voted, verifying lazily (see the module docs).
pub struct VoteCollector {
    committee: Arc<Committee>,
    vote: VoteMessage,
    /// Unverified votes by validator index.
    votes: BTreeMap<usize, BlsSignature>,
    stake: Amount,
    /// Validators whose vote failed verification; later votes from them are ignored.
    forged: Vec<usize>,
    done: bool,
}

impl VoteCollector {
    pub fn new(committee: &Arc<Committee>, vote: VoteMessage) -> VoteCollector {
        VoteCollector { committee: committee.clone(), vote, votes: BTreeMap::new(), stake: 0, forged: Vec::new(), done: false }
    }

    /// Adds `index`'s vote. Duplicates and votes after the certificate formed are ignored.
    pub fn add(&mut self, index: ValidatorIndex, signature: BlsSignature) -> Result<AddOutcome, CertError> {
        let i = self.committee.check_index(index)?;
        if self.done || self.votes.contains_key(&i) || self.forged.contains(&i) {
            return Ok(AddOutcome::default());
        }
        self.votes.insert(i, signature);
        self.stake = self.stake.saturating_add(self.committee.stakes[i]);
        if self.stake < self.committee.quorum {
            return Ok(AddOutcome::default());
        }
        Ok(self.try_form())
    }

    fn try_form(&mut self) -> AddOutcome {
        let mut outcome = AddOutcome::default();
        if let Some(qc) = self.aggregate_if_valid() {
            self.done = true;
            outcome.certificate = Some(qc);
            return outcome;
        }
        // The batch failed: find the forged votes one by one and drop them.
        let message = self.vote;
        let bad: Vec<usize> =
            self.votes.iter().filter(|(i, sig)| !sig.verify_vote(&message, &self.committee.keys[**i])).map(|(i, _)| *i).collect();
        for i in &bad {
            self.votes.remove(i);
            self.stake -= self.committee.stakes[*i];
            self.forged.push(*i);
            outcome.forged.push(*i as ValidatorIndex);
        }
        if self.stake >= self.committee.quorum {
            // Every remaining vote verified on its own, so the aggregate does too.
            outcome.certificate = self.aggregate_if_valid();
            self.done = outcome.certificate.is_some();
        }
        outcome
    }

    fn aggregate_if_valid(&self) -> Option<QuorumCertificate> {
        crate::crypto_ops::count(crate::crypto_ops::CryptoOp::QcAggregate);
        let sigs: Vec<&Signature> = self.votes.values().map(|s| &s.0).collect();
        // Group-check each signature while aggregating: a point outside G2 is a forgery.
        let aggregate = AggregateSignature::aggregate(&sigs, true).ok()?.to_signature();
        let signers: Vec<usize> = self.votes.keys().copied().collect();
        let key = self.committee.aggregate_key(&signers).ok()?;
        if !blst_ok(aggregate.fast_aggregate_verify_pre_aggregated(false, &self.vote.signing_bytes(), VOTE_DST, &key)) {
            return None;
        }
        let bitmap = bitmap_of(self.committee.len(), &signers);
        Some(QuorumCertificate {
            round: self.vote.round,
            block: self.vote.block,
            signers: bitmap,
            signature: aggregate.compress().to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(stakes: &[Amount]) -> (Vec<BlsSecretKey>, Arc<Committee>) {
        let keys: Vec<BlsSecretKey> = (0..stakes.len()).map(|i| BlsSecretKey::from_seed([i as u8 + 1; 32])).collect();
        let committee =
            Committee::new(keys.iter().zip(stakes).map(|(k, s)| (k.public(), *s, k.prove_possession())).collect(), DOMAIN).unwrap();
        (keys, Arc::new(committee))
    }

    const DOMAIN: Hash = Hash([7; 32]);

    fn vote() -> VoteMessage {
        VoteMessage { domain: DOMAIN, round: 3, block: Hash::digest(b"test", b"block") }
    }

    fn certify(keys: &[BlsSecretKey], committee: &Arc<Committee>, who: &[usize]) -> QuorumCertificate {
        let mut c = VoteCollector::new(committee, vote());
        let mut qc = None;
        for i in who {
            qc = qc.or(c.add(*i as ValidatorIndex, keys[*i].sign_vote(&vote())).unwrap().certificate);
        }
        qc.expect("a quorum voted")
    }

    #[test]
    fn an_honest_quorum_forms_a_certificate_that_verifies() {
        let (keys, committee) = setup(&[1, 1, 1, 1]);
        assert_eq!(committee.quorum(), 3);
        let qc = certify(&keys, &committee, &[0, 2, 3]);
        assert_eq!(qc.signer_indices(&committee).unwrap(), vec![0, 2, 3]);
        assert_eq!(qc.verify(&committee), Ok(()));
        // The certificate round-trips through its canonical encoding.
        let bytes = borsh::to_vec(&qc).unwrap();
        assert_eq!(borsh::from_slice::<QuorumCertificate>(&bytes).unwrap(), qc);
    }

    #[test]
    fn tampered_certificates_are_refused() {
        let (keys, committee) = setup(&[1, 1, 1, 1]);
        let qc = certify(&keys, &committee, &[0, 1, 2]);
        let mut other_block = qc.clone();
        other_block.block = Hash::ZERO;
        assert_eq!(other_block.verify(&committee), Err(CertError::BadSignature));
        let mut other_round = qc.clone();
        other_round.round += 1;
        assert_eq!(other_round.verify(&committee), Err(CertError::BadSignature));
        let mut swapped_signer = qc.clone();
        swapped_signer.signers[0] = 0b1011; // 0, 1, 3 instead of 0, 1, 2
        assert_eq!(swapped_signer.verify(&committee), Err(CertError::BadSignature));
        let mut too_few = qc.clone();
        too_few.signers[0] = 0b0011;
        assert_eq!(too_few.verify(&committee), Err(CertError::NotAQuorum { stake: 2, quorum: 3 }));
        let mut past_the_end = qc.clone();
        past_the_end.signers[0] |= 0b1_0000;
        assert!(matches!(past_the_end.verify(&committee), Err(CertError::BadBitmap { .. })));
        let mut long_bitmap = qc.clone();
        long_bitmap.signers.push(0);
        assert!(matches!(long_bitmap.verify(&committee), Err(CertError::BadBitmap { .. })));
        let mut garbage = qc.clone();
        garbage.signature = vec![0xff; 96];
        assert_eq!(garbage.verify(&committee), Err(CertError::MalformedSignature));
        garbage.signature = vec![1, 2, 3];
        assert_eq!(garbage.verify(&committee), Err(CertError::MalformedSignature));
    }

    #[test]
    fn a_forged_vote_is_found_only_when_the_batch_fails_and_the_quorum_still_forms() {
        let (keys, committee) = setup(&[1, 1, 1, 1]);
        let mut c = VoteCollector::new(&committee, vote());
        assert!(c.add(0, keys[0].sign_vote(&vote())).unwrap().certificate.is_none());
        // Validator 1 sends a vote for another block (or any signature not over this vote).
        let wrong = VoteMessage { round: 3, block: Hash::ZERO, ..vote() };
        assert!(c.add(1, keys[1].sign_vote(&wrong)).unwrap().certificate.is_none());
        let out = c.add(2, keys[2].sign_vote(&vote())).unwrap();
        assert!(out.certificate.is_none(), "2 honest of 3 collected is not a quorum");
        assert_eq!(out.forged, vec![1]);
        // A second try by the forger is ignored; another honest vote completes the quorum.
        assert!(c.add(1, keys[1].sign_vote(&vote())).unwrap().certificate.is_none());
        let qc = c.add(3, keys[3].sign_vote(&vote())).unwrap().certificate.expect("0, 2, 3 are a quorum");
        assert_eq!(qc.signer_indices(&committee).unwrap(), vec![0, 2, 3]);
        assert_eq!(qc.verify(&committee), Ok(()));
    }

    #[test]
    fn a_vote_signed_with_another_validators_key_is_caught() {
        let (keys, committee) = setup(&[1, 1, 1, 1]);
        let mut c = VoteCollector::new(&committee, vote());
        c.add(0, keys[0].sign_vote(&vote())).unwrap();
        c.add(1, keys[0].sign_vote(&vote())).unwrap(); // validator 0's signature claimed as 1's
        let out = c.add(2, keys[2].sign_vote(&vote())).unwrap();
        assert_eq!(out.forged, vec![1]);
        assert!(out.certificate.is_none());
    }

    #[test]
    fn stake_not_headcount_decides_the_quorum() {
        let (keys, committee) = setup(&[70, 10, 10, 10]);
        assert_eq!(committee.quorum(), 67);
        let mut c = VoteCollector::new(&committee, vote());
        assert!(c.add(0, keys[0].sign_vote(&vote())).unwrap().certificate.is_some(), "70 of 100 is a quorum alone");
        let mut c = VoteCollector::new(&committee, vote());
        for i in 1..4 {
            assert!(c.add(i, keys[i as usize].sign_vote(&vote())).unwrap().certificate.is_none(), "30 of 100 never is");
        }
    }

    #[test]
    fn duplicates_and_unknown_validators() {
        let (keys, committee) = setup(&[1, 1, 1, 1]);
        let mut c = VoteCollector::new(&committee, vote());
        c.add(0, keys[0].sign_vote(&vote())).unwrap();
        c.add(0, keys[0].sign_vote(&vote())).unwrap();
        assert!(c.add(1, keys[1].sign_vote(&vote())).unwrap().certificate.is_none(), "a repeated vote counts once");
        assert_eq!(c.add(9, keys[0].sign_vote(&vote())).unwrap_err(), CertError::UnknownValidator { index: 9, size: 4 });
    }

    #[test]
    fn a_key_without_a_valid_proof_of_possession_is_refused() {
        let a = BlsSecretKey::from_seed([1; 32]);
        let b = BlsSecretKey::from_seed([2; 32]);
        // b's proof presented for a's key.
        let members = vec![(a.public(), 1, b.prove_possession()), (b.public(), 1, b.prove_possession())];
        assert_eq!(Committee::new(members, DOMAIN).unwrap_err(), CertError::BadPossession(0));
        // A vote signature is not a proof of possession (different domain tag).
        let vote_sig = a.sign_vote(&vote());
        assert!(!a.public().verify_possession(&vote_sig));
        assert!(BlsPublicKey::from_bytes(&[0u8; 48]).is_err(), "the all-zero key is not a valid point");
    }
}
