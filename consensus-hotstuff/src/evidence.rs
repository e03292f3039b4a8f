//! Proofs of misbehaviour that any node can check with the validator set alone: two proposals
//! signed by one proposer for one round, and two votes signed by one validator for one round.
//!
//! The engine reports them as [`Output::Evidence`](aether_api::consensus::Output); the
//! node gossips them and records them in blocks (slashing comes with staking). A block that
//! carries evidence is only valid if every piece passes [`check`].
//!
//! ```
//! use aether_consensus_hotstuff::{evidence::{self, Misbehaviour}, mocks};
//! use aether_primitives::types::{Hash, Keypair};
//!
//! // A validator that signs votes for two blocks in round 9 (a named faulty node, `mocks`).
//! let key = Keypair::from_seed([3; 32]);
//! let domain = aether_consensus_hotstuff::certificate::signing_domain("my-chain", &Hash::digest(b"t", b"genesis"), 0);
//! let e = mocks::double_vote(&key, domain, 2, 9, Hash::digest(b"t", b"a"), Hash::digest(b"t", b"b"));
//! assert_eq!((e.offender, e.kind.as_str()), (2, evidence::DOUBLE_VOTE));
//! assert!(matches!(Misbehaviour::decode(&e), Ok(Misbehaviour::DoubleVote { round: 9, .. })));
//! ```

use aether_api::consensus::{Evidence, ValidatorIndex};
use aether_primitives::codec;
use aether_primitives::types::{Hash, PublicKey, Signature};
use borsh::{BorshDeserialize, BorshSerialize};

use crate::certificate::{BlsSignature, Committee, VoteMessage};
use crate::messages::ProposalHeader;

/// `Evidence::kind` of a [`Misbehaviour::DoubleProposal`].
pub const DOUBLE_PROPOSAL: &str = "double-proposal";
/// `Evidence::kind` of a [`Misbehaviour::DoubleVote`].
pub const DOUBLE_VOTE: &str = "double-vote";
/// Largest encoded proof accepted (two headers with their signatures fit in far less).
pub const MAX_PROOF_BYTES: usize = 4 * 1024;

/// What a validator did wrong, with both signed statements.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
// Short-lived values (decoded, checked, dropped); boxing would only add indirection.
#[allow(clippy::large_enum_variant)]
pub enum Misbehaviour {
    /// Two different proposal headers for one round, both signed (ed25519) by their proposer.
    DoubleProposal { first: ProposalHeader, first_signature: Vec<u8>, second: ProposalHeader, second_signature: Vec<u8> },
    /// Two BLS vote signatures by one validator for different proposals of one round.
    DoubleVote { round: u64, first: Hash, first_signature: Vec<u8>, second: Hash, second_signature: Vec<u8> },
}

impl Misbehaviour {
    pub fn kind(&self) -> &'static str {
        match self {
            Misbehaviour::DoubleProposal { .. } => DOUBLE_PROPOSAL,
            Misbehaviour::DoubleVote { .. } => DOUBLE_VOTE,
        }
    }

    /// The framework's evidence form: offender (an index into `epoch`'s set), kind, borsh
    /// proof, epoch.
    pub fn into_evidence(self, offender: ValidatorIndex, epoch: u64) -> Evidence {
        let kind = self.kind().to_string();
        Evidence { offender, kind, proof: codec::encode(&self), epoch }
    }

    /// Decodes the proof of `evidence`, checking that its kind names what it holds.
    pub fn decode(evidence: &Evidence) -> Result<Misbehaviour, String> {
        if evidence.proof.len() > MAX_PROOF_BYTES {
            return Err(format!("proof of {} bytes exceeds {MAX_PROOF_BYTES}", evidence.proof.len()));
        }
        let m = Misbehaviour::try_from_slice(&evidence.proof).map_err(|e| format!("proof does not decode: {e}"))?;
        if m.kind() != evidence.kind {
            return Err(format!("kind {:?} but the proof is a {}", evidence.kind, m.kind()));
        }
        Ok(m)
    }
}

/// Checks `evidence` against the validators' identity keys (proposals) and BLS committee
/// (votes): both statements are signed by the offender, are for the same round, and differ.
pub fn check(evidence: &Evidence, identities: &[PublicKey], committee: &Committee) -> Result<(), String> {
    let offender = evidence.offender as usize;
    let identity = identities.get(offender).ok_or_else(|| format!("offender {offender} is not a validator"))?;
    match Misbehaviour::decode(evidence)? {
        Misbehaviour::DoubleProposal { first, first_signature, second, second_signature } => {
            if first.round != second.round {
                return Err(format!("proposals are for rounds {} and {}, not one round", first.round, second.round));
            }
            if first.proposer != evidence.offender || second.proposer != evidence.offender {
                return Err("a proposal names another proposer than the offender".into());
            }
            if first.domain != committee.domain() || second.domain != committee.domain() {
                return Err("a proposal was signed for another chain or epoch".into());
            }
            let (a, b) = (first.digest(), second.digest());
            if a == b {
                return Err("the two proposals are the same".into());
            }
            for (digest, sig) in [(a, &first_signature), (b, &second_signature)] {
                let sig = <[u8; 64]>::try_from(sig.as_slice()).map_err(|_| "a proposal signature is not 64 bytes".to_string())?;
                identity.verify(&digest.0, &Signature(sig)).map_err(|_| "a proposal signature does not verify".to_string())?;
            }
            Ok(())
        }
        Misbehaviour::DoubleVote { round, first, first_signature, second, second_signature } => {
            if first == second {
                return Err("the two votes are for the same proposal".into());
            }
            let key = committee.keys.get(offender).ok_or_else(|| format!("offender {offender} has no BLS key"))?;
            for (block, sig) in [(first, &first_signature), (second, &second_signature)] {
                let sig = BlsSignature::from_bytes(sig).map_err(|e| format!("a vote signature: {e}"))?;
                if !sig.verify_vote(&VoteMessage { domain: committee.domain(), round, block }, key) {
                    return Err("a vote signature does not verify".into());
                }
            }
            Ok(())
        }
    }
}
