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
    /// Fixed-length epochs, at whose boundaries the validator set may change. `None`: one
    /// epoch forever, the genesis set. Like `modules`, hashed separately only when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[borsh(skip)]
    pub epochs: Option<EpochSchedule>,
}

/// How a chain divides into epochs. Epoch `e` (from 0) holds heights `e·length + 1 ..=
/// (e+1)·length`; its last block runs the validator source's `end_epoch` hook and commits to
/// the next epoch's set in its header. Lengths are in blocks, never milliseconds: a proposer
/// chooses header times.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochSchedule {
    /// Blocks per epoch (at least 1).
    pub length: u64,
    /// The one module whose `end_epoch` hook may name the next validator set (only one may:
    /// two sources would have to agree). `None`: the set never changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validator_source: Option<String>,
}

impl EpochSchedule {
    /// The epoch `height` belongs to (genesis, height 0, opens epoch 0).
    pub fn epoch_of(&self, height: super::Height) -> u64 {
        height.saturating_sub(1) / self.length.max(1)
    }
    /// The first height of `epoch`.
    pub fn first_height(&self, epoch: u64) -> super::Height {
        epoch.saturating_mul(self.length.max(1)).saturating_add(1)
    }
    /// The last height of `epoch`: its boundary block.
    pub fn last_height(&self, epoch: u64) -> super::Height {
        epoch.saturating_add(1).saturating_mul(self.length.max(1))
    }
    /// Whether `height` is the last block of its epoch.
    pub fn is_boundary(&self, height: super::Height) -> bool {
        height > 0 && height % self.length.max(1) == 0
    }
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
    /// The module's genesis parameters, handed to its `init_genesis` as JSON text. Kept in
    /// canonical form (object keys sorted, no spaces) so that equal parameters hash equally
    /// however the file spells them.
    #[serde(default, skip_serializing_if = "String::is_empty", with = "canonical_json")]
    pub params: String,
    /// The module may change the chain parameters and schedule module upgrades (through the
    /// ledger's `chain` pseudo-module): governance's grant. Not in the borsh encoding of the
    /// module list: the genesis hash covers the granted modules separately when there are any,
    /// so chains without the grant keep the hash they had.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[borsh(skip)]
    pub govern_chain: bool,
}

/// The module name the ledger keeps for its own chain parameters and upgrades (`chain`).
pub const RESERVED_MODULE_NAME: &str = "chain";

/// A JSON value kept as its canonical text.
mod canonical_json {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(serde::ser::Error::custom)?;
        value.serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        Ok(if value.is_null() { String::new() } else { super::canonical(&value) })
    }
}

/// `value` as JSON text with object keys sorted at every level and no spaces, whatever map
/// type `serde_json` was built with: the form genesis keeps module parameters in.
pub fn canonical(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys.into_iter().map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&map[k]))).collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(canonical).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAccount {
    pub address: Address,
    #[serde(with = "serde_helpers::amount")]
    pub balance: Amount,
}

/// A validator of the initial set.
pub type GenesisValidator = ValidatorEntry;

/// One member of an epoch's validator set, as genesis lists it and as the validator source
/// module names it at an epoch boundary (what the header's `next_validators` commits to).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorEntry {
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
        if let Some(epochs) = &self.epochs {
            if epochs.length == 0 {
                return bad("epochs.length must be at least 1".into());
            }
            if let Some(source) = &epochs.validator_source {
                if !self.modules.iter().any(|m| &m.name == source) {
                    return bad(format!("epochs.validator_source {source:?} is not one of the modules genesis pins"));
                }
            }
        }
        let mut names = BTreeSet::new();
        for m in &self.modules {
            let valid =
                (1..=32).contains(&m.name.len()) && m.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !valid {
                return bad(format!("module name {:?} must be 1-32 characters of [a-z0-9_]", m.name));
            }
            if m.name == RESERVED_MODULE_NAME {
                return bad(format!(
                    "module name {RESERVED_MODULE_NAME:?} is reserved for the ledger's chain parameters and module upgrades"
                ));
            }
            if !names.insert(&m.name) {
                return bad(format!("module {} is listed twice", m.name));
            }
            if !m.params.is_empty() {
                match serde_json::from_str::<serde_json::Value>(&m.params) {
                    Err(e) => return bad(format!("module {}: params are not JSON: {e}", m.name)),
                    Ok(v) if canonical(&v) != m.params => {
                        return bad(format!("module {}: params must be canonical JSON: {}", m.name, canonical(&v)))
                    }
                    Ok(_) => {}
                }
            }
        }
        Ok(())
    }
}
