//! Account addresses.

use std::fmt;
use std::str::FromStr;

use borsh::{BorshDeserialize, BorshSerialize};

use super::{domain, Hash, ParseError, PublicKey};

/// A 20-byte account address: the first 20 bytes of the domain-separated hash of the owner's
/// ed25519 public key. Hashing (rather than using the key itself) leaves room for other key
/// kinds later without changing the address format.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, BorshSerialize, BorshDeserialize)]
pub struct Address(pub [u8; 20]);

impl Address {
    pub fn from_public_key(key: &PublicKey) -> Address {
        let h = Hash::digest(domain::ADDRESS, &key.0);
        let mut a = [0u8; 20];
        a.copy_from_slice(&h.0[..20]);
        Address(a)
    }

    pub fn to_hex(&self) -> String {
        format!("0x{}", hex::encode(self.0))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({})", self.to_hex())
    }
}

impl FromStr for Address {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Address(super::parse_hex_array::<20>("address", s)?))
    }
}

super::hex_serde!(Address);
