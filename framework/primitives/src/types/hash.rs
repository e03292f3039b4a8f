//! 32-byte SHA-256 digests with domain separation.

use std::fmt;
use std::str::FromStr;

use borsh::{BorshDeserialize, BorshSerialize};
use sha2::{Digest, Sha256};

use super::ParseError;

/// A SHA-256 digest. Every hash in Aether is domain-separated: the first input is a short
/// ASCII tag naming what is hashed (see [`domain`]), so a transaction hash can never be
/// mistaken for a block hash even if the encoded bytes collide.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, BorshSerialize, BorshDeserialize)]
pub struct Hash(pub [u8; 32]);

/// Domain tags for every hashed or signed format. Changing one changes every hash of that kind;
/// the golden-hash tests in [`crate::codec`] catch that.
pub mod domain {
    pub const TX_SIGNING: &[u8] = b"aether/tx-signing/v1";
    pub const TX: &[u8] = b"aether/tx/v1";
    pub const BLOCK_HEADER: &[u8] = b"aether/header/v1";
    pub const ADDRESS: &[u8] = b"aether/address/v1";
    pub const GENESIS: &[u8] = b"aether/genesis/v1";
    pub const SOLO_CERT: &[u8] = b"aether/solo-certificate/v1";
    pub const EVIDENCE: &[u8] = b"aether/evidence/v1";
    /// Contract code (its identity, the `code_hash` of accounts).
    pub const CODE: &[u8] = b"aether/code/v1";
    /// The address of a deployed contract: hash of the deployer and its nonce.
    pub const CONTRACT_ADDRESS: &[u8] = b"aether/contract-address/v1";
    pub const MODULE_ADDRESS: &[u8] = b"aether/module-address/v1";
    /// An epoch's validator set, as the header of the previous epoch's last block commits to it.
    pub const VALIDATOR_SET: &[u8] = b"aether/validator-set/v1";
    /// The keyless account under whose storage the ledger keeps its own records (validator
    /// sets by epoch).
    pub const SYSTEM_ADDRESS: &[u8] = b"aether/system-address/v1";
}

impl Hash {
    pub const ZERO: Hash = Hash([0u8; 32]);

    /// `sha256(len(domain) as u8 || domain || data)`.
    pub fn digest(domain: &[u8], data: &[u8]) -> Hash {
        Self::digest_parts(domain, &[data])
    }

    /// Like [`Hash::digest`] over the concatenation of `parts`.
    pub fn digest_parts(domain: &[u8], parts: &[&[u8]]) -> Hash {
        let mut h = Sha256::new();
        h.update([domain.len() as u8]);
        h.update(domain);
        for p in parts {
            h.update(p);
        }
        Hash(h.finalize().into())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        format!("0x{}", hex::encode(self.0))
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", &self.to_hex()[..12])
    }
}

impl FromStr for Hash {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Hash(super::parse_hex_array::<32>("hash", s)?))
    }
}

super::hex_serde!(Hash);
