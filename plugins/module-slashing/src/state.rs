//! Storage layout and codecs. Everything lives in the module's own storage (under
//! `module_address("slashing")`), borsh-encoded; keys are fixed-width so they parse back and
//! sort as documented:
//!
//! | key | value | what |
//! |---|---|---|
//! | `params` | [`Params`] | genesis parameters |
//! | `o/` ‖ identity (32) ‖ epoch (8, BE) | [`Offence`] | the one offence of a validator in an epoch: what proved it first and what came of it |
//! | `e/` ‖ evidence hash (32) | `u64` height | a piece of evidence this module handled (whatever the outcome), at that height |
//!
//! Offences of one validator sort by epoch. Both records only grow (at most
//! `max_evidence_per_block` a block, and only with evidence, which is rare); nothing prunes
//! them yet.

use aether_api::module::ModuleContext;
use aether_primitives::types::{Amount, Hash, Height, PublicKey};
use borsh::{BorshDeserialize, BorshSerialize};

use crate::error::{Result, SlashingError};
use crate::params::Params;

pub const PARAMS: &[u8] = b"params";
pub const OFFENCES: &[u8] = b"o/";
pub const PROCESSED: &[u8] = b"e/";

/// Longest reason kept from a refusal (the rest is cut at a character boundary).
pub const MAX_REASON_BYTES: usize = 256;

/// What came of an offence.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Outcome {
    /// Staking slashed: `burned` tokens (validator and unbondings together).
    Slashed { burned: Amount },
    /// Staking refused the `Slash` call (the reason it gave). Not retried: one attempt per
    /// offence.
    Refused { reason: String },
}

/// A validator's offence in one epoch.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Offence {
    /// The kind of the evidence that proved it first (`double-vote` or `double-proposal`).
    pub kind: String,
    /// That evidence's hash (`Evidence::hash`).
    pub evidence: Hash,
    /// The height of the block that recorded it.
    pub height: Height,
    pub outcome: Outcome,
}

pub fn offence_prefix(identity: &PublicKey) -> Vec<u8> {
    [OFFENCES, &identity.0[..]].concat()
}

pub fn offence_key(identity: &PublicKey, epoch: u64) -> Vec<u8> {
    [OFFENCES, &identity.0[..], &epoch.to_be_bytes()[..]].concat()
}

/// The epoch of an `o/` key.
pub fn parse_offence_key(key: &[u8]) -> Result<u64> {
    let epoch: [u8; 8] = key.get(OFFENCES.len() + 32..).and_then(|b| b.try_into().ok()).ok_or(SlashingError::Corrupt("offence key"))?;
    Ok(u64::from_be_bytes(epoch))
}

pub fn processed_key(evidence: &Hash) -> Vec<u8> {
    [PROCESSED, &evidence.0[..]].concat()
}

pub fn load<T: BorshDeserialize>(cx: &mut dyn ModuleContext, key: &[u8], what: &'static str) -> Result<Option<T>> {
    match cx.get(key)? {
        None => Ok(None),
        Some(bytes) => borsh::from_slice(&bytes).map(Some).map_err(|_| SlashingError::Corrupt(what)),
    }
}

pub fn save<T: BorshSerialize>(cx: &mut dyn ModuleContext, key: &[u8], value: &T) -> Result<()> {
    cx.set(key, &aether_primitives::codec::encode(value))?;
    Ok(())
}

pub fn params(cx: &mut dyn ModuleContext) -> Result<Params> {
    load(cx, PARAMS, "params")?.ok_or(SlashingError::NotInitialised)
}

pub fn offence(cx: &mut dyn ModuleContext, identity: &PublicKey, epoch: u64) -> Result<Option<Offence>> {
    load(cx, &offence_key(identity, epoch), "offence")
}

/// The height at which `evidence` was handled, if it was.
pub fn processed(cx: &mut dyn ModuleContext, evidence: &Hash) -> Result<Option<Height>> {
    load(cx, &processed_key(evidence), "processed evidence")
}

/// `reason` cut to [`MAX_REASON_BYTES`] at a character boundary.
pub fn short(reason: &str) -> String {
    if reason.len() <= MAX_REASON_BYTES {
        return reason.to_string();
    }
    let mut end = MAX_REASON_BYTES;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &reason[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offence_keys_sort_by_epoch_and_parse_back() {
        let id = PublicKey([7; 32]);
        let (a, b) = (offence_key(&id, 1), offence_key(&id, 256));
        assert!(a < b && a.starts_with(&offence_prefix(&id)));
        assert_eq!(parse_offence_key(&b).unwrap(), 256);
        assert!(parse_offence_key(&b[..10]).is_err());
    }

    #[test]
    fn long_reasons_are_cut_at_a_character_boundary() {
        assert_eq!(short("no"), "no");
        let long = "é".repeat(200);
        let cut = short(&long);
        assert!(cut.len() <= MAX_REASON_BYTES + "…".len() && cut.ends_with('…'));
    }
}
