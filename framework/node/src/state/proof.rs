//! Proofs of state entries against a state root, checkable without a node.

use jmt::proof::SparseMerkleProof;
use jmt::RootHash;
use sha2::Sha256;

use super::{account_key, key_hash, tree_store::MemoryTree};
use crate::codec;
use crate::types::{Account, Address, Hash};

/// Upper bound on an encoded proof: 256 siblings of at most 65 bytes plus a leaf.
pub const MAX_PROOF_BYTES: usize = 256 * 65 + 128;

/// A sparse Merkle proof that a key has a given value, or is absent, under a state root.
#[derive(Clone, Debug, PartialEq)]
pub struct StateProof(pub(crate) SparseMerkleProof<Sha256>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProofError {
    #[error("the proof is not a well-formed state proof: {0}")]
    Malformed(String),
    #[error("the proof does not match the state root: {0}")]
    Mismatch(String),
}

impl StateProof {
    /// The proof's canonical encoding (borsh), as served over RPC in hex.
    pub fn to_bytes(&self) -> Vec<u8> {
        crate::codec::encode(&self.0)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<StateProof, ProofError> {
        if bytes.len() > MAX_PROOF_BYTES {
            return Err(ProofError::Malformed(format!("{} bytes, more than the {MAX_PROOF_BYTES} any proof needs", bytes.len())));
        }
        borsh::from_slice(bytes).map(StateProof).map_err(|e| ProofError::Malformed(e.to_string()))
    }
}

/// Checks that under `root`, state key `key` holds `value` (or, with `None`, holds nothing).
pub fn verify_proof(root: &Hash, key: &[u8], value: Option<&[u8]>, proof: &StateProof) -> Result<(), ProofError> {
    proof.0.verify(RootHash(root.0), key_hash(key), value).map_err(|e| ProofError::Mismatch(format!("{e:#}")))
}

/// Checks an account proof as served by `aether_getAccountProof`: `account` is the account's
/// value at the proven height (`None`: the address has no account there), `proof` the proof's
/// bytes, and `state_root` the `state_root` of the header at that height.
pub fn verify_account_proof(state_root: &Hash, address: &Address, account: Option<&Account>, proof: &StateProof) -> Result<(), ProofError> {
    let encoded = account.map(codec::encode);
    verify_proof(state_root, &account_key(address), encoded.as_deref(), proof)
}

/// Builds a tree of `entries` in memory and proves `key` in it: for examples and tests of
/// verifiers.
pub fn prove_in_memory(entries: &[(Vec<u8>, Vec<u8>)], key: &[u8]) -> Result<(Hash, StateProof), ProofError> {
    let mut tree = MemoryTree::default();
    let root = tree.put(0, entries.iter().map(|(k, v)| (key_hash(k), Some(v.clone()))));
    let (_, proof) = tree.tree().get_with_proof(key_hash(key), 0).map_err(|e| ProofError::Malformed(format!("{e:#}")))?;
    Ok((root, StateProof(proof)))
}
