//! Blocks, headers and certificates.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use super::serde_helpers;
use super::Evidence;
use super::{domain, Address, Hash, Height, SignedTransaction, TimestampMs};
use crate::codec;

/// Proof, in an engine-defined encoding, that consensus decided a block (an ed25519 signature
/// for `solo`, an aggregate BLS signature and signer bitmap for HotStuff). Verified by the
/// engine that produced it (`ConsensusEngine::verify_certificate` in `aether-api`).
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Certificate(#[serde(with = "serde_helpers::bytes")] pub Vec<u8>);

/// A block header. Its hash is the block's identity.
///
/// A header cannot contain the certificate for itself (the certificate signs the header's
/// hash), so it carries the certificate of its parent; the certificate deciding a block is
/// stored beside it when it is committed and carried in its child.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Header {
    pub chain_id: String,
    pub parent: Hash,
    pub height: Height,
    /// Block time, chosen by the proposer from its clock and passed to execution as input.
    pub time_ms: TimestampMs,
    /// Address of the validator that proposed the block (receives fees).
    pub proposer: Address,
    /// Merkle root over the hashes of the block's transactions, in order.
    pub tx_root: Hash,
    /// Merkle root over the hashes of the evidence the block records, in order
    /// ([`Hash::ZERO`] for none).
    pub evidence_root: Hash,
    /// Root of the authenticated state after executing this block.
    pub state_root: Hash,
    /// The certificate that decided the parent (empty for the child of genesis).
    pub parent_certificate: Certificate,
    /// On the last block of an epoch, the commitment to the next epoch's validator set
    /// ([`validator_set_commitment`]): the certificate of this block, signed by this epoch's
    /// set, vouches for the next one, so a light client follows sets from genesis. `None` on
    /// every other block (and on every block of a chain without epochs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_validators: Option<Hash>,
}

impl Header {
    /// The header's identity. `next_validators` is covered only when present, so headers of
    /// chains without epochs hash as they always did.
    pub fn hash(&self) -> Hash {
        let core = HeaderCore {
            chain_id: &self.chain_id,
            parent: &self.parent,
            height: self.height,
            time_ms: self.time_ms,
            proposer: &self.proposer,
            tx_root: &self.tx_root,
            evidence_root: &self.evidence_root,
            state_root: &self.state_root,
            parent_certificate: &self.parent_certificate,
        };
        match &self.next_validators {
            None => Hash::digest(domain::BLOCK_HEADER, &codec::encode(&core)),
            Some(next) => Hash::digest_parts(domain::BLOCK_HEADER, &[&codec::encode(&core), &next.0]),
        }
    }
}

/// The fields every header hash covers, in their encoding order.
#[derive(BorshSerialize)]
struct HeaderCore<'a> {
    chain_id: &'a String,
    parent: &'a Hash,
    height: Height,
    time_ms: TimestampMs,
    proposer: &'a Address,
    tx_root: &'a Hash,
    evidence_root: &'a Hash,
    state_root: &'a Hash,
    parent_certificate: &'a Certificate,
}

/// What a header's `next_validators` holds for `epoch`'s set `validators`, in set order.
pub fn validator_set_commitment(epoch: u64, validators: &[super::ValidatorEntry]) -> Hash {
    Hash::digest_parts(domain::VALIDATOR_SET, &[&epoch.to_le_bytes(), &codec::encode(&validators.to_vec())])
}

/// What the boundary header before `epoch` commits to: `epoch`'s set, and its length when
/// governance changed it from that epoch on (`Some`). Without a change it is exactly
/// [`validator_set_commitment`], so chains that never change their length keep every
/// commitment they had.
pub fn epoch_start_commitment(epoch: u64, validators: &[super::ValidatorEntry], new_length: Option<u64>) -> Hash {
    match new_length {
        None => validator_set_commitment(epoch, validators),
        Some(length) => {
            Hash::digest_parts(domain::VALIDATOR_SET, &[&epoch.to_le_bytes(), &codec::encode(&validators.to_vec()), &length.to_le_bytes()])
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Block {
    pub header: Header,
    pub transactions: Vec<SignedTransaction>,
    /// Proofs of validator misbehaviour this block records (each checked by the consensus
    /// engine before the block is accepted, and recorded at most once per chain).
    #[serde(default)]
    pub evidence: Vec<Evidence>,
}

impl Block {
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// The Merkle root over `evidence` hashes; [`Hash::ZERO`] for none.
    pub fn compute_evidence_root(evidence: &[Evidence]) -> Hash {
        let leaves: Vec<[u8; 32]> = evidence.iter().map(|e| e.hash().0).collect();
        crate::merkle::root(&leaves)
    }

    /// The Merkle root over `txs`' hashes; [`Hash::ZERO`] for none.
    pub fn compute_tx_root(txs: &[SignedTransaction]) -> Hash {
        let leaves: Vec<[u8; 32]> = txs.iter().map(|t| t.hash().0).collect();
        crate::merkle::root(&leaves)
    }
}
