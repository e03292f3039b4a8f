//! Binary Merkle roots over 32-byte leaves (SHA-256), via the `rs_merkle` crate.
//!
//! Used for the transactions root of a header and (until the authenticated state tree lands)
//! the state root. Leaves are already domain-separated hashes
//! (see [`crate::types::domain`]), so an inner node (a hash of 64 bytes) cannot be passed off
//! as a leaf (a hash of a tagged encoding).

use rs_merkle::{algorithms::Sha256, MerkleTree};

use crate::types::Hash;

/// The root over `leaves` in order; [`Hash::ZERO`] when there are none.
pub fn root(leaves: &[[u8; 32]]) -> Hash {
    if leaves.is_empty() {
        return Hash::ZERO;
    }
    let tree = MerkleTree::<Sha256>::from_leaves(leaves);
    Hash(tree.root().unwrap_or_default())
}
