//! ed25519 keys and signatures.
//!
//! Verification uses `verify_strict`: it rejects non-canonical encodings of the signature's `R`
//! and `s`, and public keys or `R` values of small order. With these rules a signature cannot be
//! mauled into a second valid signature for the same message, so a transaction hash (which
//! covers the signature) identifies one transaction. Plain `verify` would accept some of those
//! variants, and two nodes using different rules could disagree about a block.

use std::fmt;
use std::str::FromStr;

use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

use super::{Address, ParseError};

/// An ed25519 public key (32 bytes, compressed Edwards point). Not checked at construction:
/// [`PublicKey::verify`] fails on keys that are not valid points.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, BorshSerialize, BorshDeserialize)]
pub struct PublicKey(pub [u8; 32]);

/// An ed25519 signature (64 bytes).
#[derive(Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Signature(pub [u8; 64]);

impl Default for Signature {
    fn default() -> Self {
        Signature([0u8; 64])
    }
}

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("public key is not a valid ed25519 point")]
    InvalidPublicKey,
    #[error("signature does not verify under strict ed25519 rules")]
    Invalid,
}

impl PublicKey {
    /// Strict ed25519 verification (see the module docs).
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), SignatureError> {
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| SignatureError::InvalidPublicKey)?;
        let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
        key.verify_strict(message, &sig).map_err(|_| SignatureError::Invalid)
    }

    /// Whether the bytes are a usable ed25519 key: a point on the curve, not of small order
    /// (strict verification rejects weak keys, so such a key could never sign).
    pub fn check(&self) -> Result<(), SignatureError> {
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| SignatureError::InvalidPublicKey)?;
        if key.is_weak() {
            return Err(SignatureError::InvalidPublicKey);
        }
        Ok(())
    }

    pub fn address(&self) -> Address {
        Address::from_public_key(self)
    }

    pub fn to_hex(&self) -> String {
        format!("0x{}", hex::encode(self.0))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}
impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", &self.to_hex()[..12])
    }
}
impl FromStr for PublicKey {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(PublicKey(super::parse_hex_array::<32>("public key", s)?))
    }
}
super::hex_serde!(PublicKey);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature(0x{}..)", hex::encode(&self.0[..6]))
    }
}
impl FromStr for Signature {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Signature(super::parse_hex_array::<64>("signature", s)?))
    }
}
impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}
super::hex_serde!(Signature);

/// An ed25519 signing key. The secret never appears in `Debug` output.
#[derive(Clone)]
pub struct Keypair {
    signing: SigningKey,
}

impl Keypair {
    /// A fresh key from the operating system's randomness. Key generation happens in tools
    /// (`aether keys`, `aether init`), never inside consensus or execution.
    pub fn generate() -> Keypair {
        Keypair { signing: SigningKey::generate(&mut rand::rngs::OsRng) }
    }

    /// A key derived from a 32-byte seed (used for reproducible test and dev keys).
    pub fn from_seed(seed: [u8; 32]) -> Keypair {
        Keypair { signing: SigningKey::from_bytes(&seed) }
    }

    pub fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key().to_bytes())
    }

    pub fn address(&self) -> Address {
        self.public().address()
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.signing.sign(message).to_bytes())
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({})", self.public())
    }
}
