//! Core data types: hashes, addresses, keys, transactions, blocks, receipts, accounts, genesis.
//!
//! Every type here that is hashed or signed has one canonical binary encoding (borsh, see
//! [`crate::codec`]); golden-hash tests pin each format. JSON forms (for RPC and genesis
//! files) write hashes, keys and byte strings as `0x`-prefixed hex and amounts as decimal
//! strings, because JSON numbers lose precision above 2^53.

mod address;
mod block;
mod epochs;
mod evidence;
mod genesis;
mod hash;
mod keys;
mod transaction;

pub use address::Address;
pub use block::{epoch_start_commitment, validator_set_commitment, Block, Certificate, Header};
pub use epochs::{EpochLengthChange, EpochTimeline, EpochTimelineError, MAX_EPOCH_LENGTH};
pub use evidence::{Evidence, ValidatorIndex};
pub use genesis::{
    EpochSchedule, Genesis, GenesisAccount, GenesisError, GenesisModule, GenesisValidator, ValidatorEntry, RESERVED_MODULE_NAME,
};
pub use hash::{domain, Hash};
pub use keys::{Keypair, PublicKey, Signature, SignatureError};
pub use transaction::{Account, Action, Event, Receipt, SignedTransaction, TxBody, TxLocation, TxStatus};

/// Token amounts (balances, fees, stake) in the chain's smallest unit.
pub type Amount = u128;
/// Block height; genesis is 0.
pub type Height = u64;
/// Milliseconds since the Unix epoch. Always an input (block header, driver clock), never read
/// from the wall clock inside consensus or execution.
pub type TimestampMs = u64;

/// A value in text form could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {input:?}: {reason}")]
pub struct ParseError {
    pub what: &'static str,
    pub input: String,
    pub reason: String,
}

pub(crate) fn parse_hex_array<const N: usize>(what: &'static str, s: &str) -> Result<[u8; N], ParseError> {
    let err = |reason: String| ParseError { what, input: s.chars().take(80).collect(), reason };
    let digits = s.strip_prefix("0x").unwrap_or(s);
    let bytes = hex::decode(digits).map_err(|e| err(format!("not hex ({e})")))?;
    bytes.try_into().map_err(|b: Vec<u8>| err(format!("expected {N} bytes ({} hex digits), got {} bytes", N * 2, b.len())))
}

/// Implements serde for a fixed-size byte type as a `0x` hex string via its `Display`/`FromStr`.
macro_rules! hex_serde {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use hex_serde;

/// serde helpers for JSON forms.
pub mod serde_helpers {
    /// A `u128` as a decimal string.
    pub mod amount {
        use serde::{Deserialize, Deserializer, Serializer};
        pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(v)
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
            #[derive(Deserialize)]
            #[serde(untagged)]
            enum Either {
                Str(String),
                Num(u64),
            }
            match Either::deserialize(d)? {
                Either::Str(s) => {
                    s.parse().map_err(|_| serde::de::Error::custom(format!("invalid amount {s:?}: expected a decimal integer")))
                }
                Either::Num(n) => Ok(n as u128),
            }
        }
    }
    /// Bytes as a `0x` hex string.
    pub mod bytes {
        use serde::{Deserialize, Deserializer, Serializer};
        pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(&format_args!("0x{}", hex::encode(v)))
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
            let s = String::deserialize(d)?;
            hex::decode(s.strip_prefix("0x").unwrap_or(&s)).map_err(|e| serde::de::Error::custom(format!("invalid hex: {e}")))
        }
    }
}
