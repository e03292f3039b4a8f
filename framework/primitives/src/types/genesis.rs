//! The genesis description: chain id, initial accounts and validators.

use std::collections::BTreeSet;
use std::path::Path;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use super::serde_helpers;
use super::{Address, Amount, PublicKey, TimestampMs};

/// The chain's starting point, read from `genesis.json`. Its hash (see
/// `Ledger::genesis_block` in `aether-node`) identifies the chain: a data directory created
/// for one genesis refuses to open with another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    pub chain_id: String,
    pub genesis_time_ms: TimestampMs,
    #[serde(default)]
    pub accounts: Vec<GenesisAccount>,
    pub validators: Vec<GenesisValidator>,
    /// The runtime modules this chain runs, pinned by name and version, in hook order. A node
    /// that lacks one, or has it at another version, refuses to start. Not in the borsh
    /// encoding: the genesis hash covers it separately when it is not empty, so chains
    /// without modules keep the hash they had.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[borsh(skip)]
    pub modules: Vec<GenesisModule>,
}

/// A runtime module a chain runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisModule {
    pub name: String,
    pub version: u32,
    /// The module may create and destroy tokens (`mint`, `burn`); every other module can only
    /// move what it holds.
    #[serde(default)]
    pub mint: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAccount {
    pub address: Address,
    #[serde(with = "serde_helpers::amount")]
    pub balance: Amount,
}

/// A validator of the initial set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisValidator {
    pub name: String,
    /// The validator's ed25519 identity key; its address receives the fees of its blocks.
    pub identity: PublicKey,
    /// Engine-specific consensus key (for `solo`, the ed25519 identity key's bytes; for
    /// HotStuff, a BLS public key).
    #[serde(with = "serde_helpers::bytes")]
    pub consensus_key: Vec<u8>,
    #[serde(with = "serde_helpers::amount")]
    pub stake: Amount,
}

#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    #[error("cannot read genesis file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("genesis file {path} is not valid: {source}")]
    Parse { path: String, source: serde_json::Error },
    #[error("genesis is not valid: {0}")]
    Invalid(String),
}

impl Genesis {
    pub fn load(path: &Path) -> Result<Genesis, GenesisError> {
        let text = std::fs::read_to_string(path).map_err(|source| GenesisError::Read { path: path.display().to_string(), source })?;
        let genesis: Genesis =
            serde_json::from_str(&text).map_err(|source| GenesisError::Parse { path: path.display().to_string(), source })?;
        genesis.validate()?;
        Ok(genesis)
    }

    /// Checks what the JSON schema cannot: a usable chain id, at least one validator, no
    /// duplicate accounts or validators, total supply representable.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let bad = |m: String| Err(GenesisError::Invalid(m));
        if self.chain_id.is_empty()
            || self.chain_id.len() > 64
            || !self.chain_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return bad(format!("chain_id {:?} must be 1-64 characters of [A-Za-z0-9_-]", self.chain_id));
        }
        if self.validators.is_empty() {
            return bad("at least one validator is required".into());
        }
        let mut seen = BTreeSet::new();
        let mut total: Amount = 0;
        for a in &self.accounts {
            if !seen.insert(a.address) {
                return bad(format!("account {} is listed twice", a.address));
            }
            total = match total.checked_add(a.balance) {
                Some(t) => t,
                None => return bad("total balance overflows u128".into()),
            };
        }
        let mut keys = BTreeSet::new();
        for v in &self.validators {
            if !keys.insert(v.identity) {
                return bad(format!("validator {} ({}) is listed twice", v.name, v.identity));
            }
            if v.stake == 0 {
                return bad(format!("validator {} has zero stake", v.name));
            }
        }
        let mut names = BTreeSet::new();
        for m in &self.modules {
            let valid =
                (1..=32).contains(&m.name.len()) && m.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !valid {
                return bad(format!("module name {:?} must be 1-32 characters of [a-z0-9_]", m.name));
            }
            if !names.insert(&m.name) {
                return bad(format!("module {} is listed twice", m.name));
            }
        }
        Ok(())
    }
}
