//! The events the module emits (in the block's hook events, emitted by
//! `module_address("slashing")`). Topics are ASCII; data is JSON (hashes and keys as `0x`
//! hex, amounts as decimal strings, fields in declaration order), so the same block always
//! gives the same bytes.

use aether_api::module::ModuleContext;
use aether_primitives::types::{serde_helpers, Amount, Hash, PublicKey, ValidatorIndex};
use serde::{Deserialize, Serialize};

use crate::error::{Result, SlashingError};

/// Topic of [`Slashed`]: staking slashed (and, if configured, jailed) an offender.
pub const SLASHED: &[u8] = b"slashing/slashed";
/// Topic of [`SlashRefused`]: the offence is real but staking refused the `Slash` call.
pub const SLASH_REFUSED: &[u8] = b"slashing/slash_refused";
/// Topic of [`EvidenceIgnored`]: a piece of evidence that slashes nobody.
pub const EVIDENCE_IGNORED: &[u8] = b"slashing/evidence_ignored";

/// Topic of [`DowntimeSlashed`]: a validator missed more of its window than allowed.
pub const DOWNTIME: &[u8] = b"slashing/downtime";
/// Topic of [`DowntimeRefused`]: a validator missed too much but staking refused the `Slash`.
pub const DOWNTIME_REFUSED: &[u8] = b"slashing/downtime_refused";

/// A validator punished for downtime.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DowntimeSlashed {
    pub validator: PublicKey,
    /// The epoch of the measured set (the infraction epoch staking was given).
    pub epoch: u64,
    /// Heights it missed of the last `window` measured.
    pub missed: u16,
    pub window: u64,
    pub fraction_bps: u16,
    pub jailed: bool,
    #[serde(with = "serde_helpers::amount")]
    pub burned: Amount,
}

/// A validator that missed too much, which staking refused to slash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DowntimeRefused {
    pub validator: PublicKey,
    pub epoch: u64,
    pub missed: u16,
    pub window: u64,
    /// Staking's error (cut to 256 bytes).
    pub reason: String,
}

/// An offence punished.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slashed {
    /// The hash of the evidence that proved the offence (`Evidence::hash`).
    pub evidence: Hash,
    pub validator: PublicKey,
    /// Its index in the epoch's set, as the evidence named it.
    pub offender: ValidatorIndex,
    /// The epoch of the offence (the recording block's epoch).
    pub epoch: u64,
    pub kind: String,
    pub fraction_bps: u16,
    pub jailed: bool,
    /// Tokens staking burned (the validator's and its unbondings started since the offence).
    #[serde(with = "serde_helpers::amount")]
    pub burned: Amount,
}

/// An offence staking refused to slash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlashRefused {
    pub evidence: Hash,
    pub validator: PublicKey,
    pub offender: ValidatorIndex,
    pub epoch: u64,
    pub kind: String,
    /// Staking's error (cut to 256 bytes).
    pub reason: String,
}

/// A piece of evidence that slashes nobody, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceIgnored {
    pub evidence: Hash,
    pub offender: ValidatorIndex,
    /// As the evidence named it (cut to 256 bytes).
    pub kind: String,
    pub reason: String,
}

pub fn emit<T: Serialize>(cx: &mut dyn ModuleContext, topic: &[u8], event: &T) -> Result<()> {
    let data = serde_json::to_vec(event).map_err(|_| SlashingError::Corrupt("event"))?;
    cx.emit(topic, &data)?;
    Ok(())
}
