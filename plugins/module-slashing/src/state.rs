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
//! | `d/tracker` | [`Tracker`] | downtime: the set measured (its epoch), the next measurement's number, each member's missed count |
//! | `d/ids/` ‖ epoch (8, BE) | `Vec<PublicKey>` | downtime: the identities of a set measured, while the window still holds a height of it |
//! | `d/slot/` ‖ slot (8, BE) | [`SlotEntry`] | downtime: who missed the measured height `n` with `n mod window = slot` (the window's ring) |
//! | `t/` ‖ identity (32) ‖ epoch (8, BE) | [`DowntimeOffence`] | the one downtime punishment of a validator in an epoch |
//!
//! Offences of one validator sort by epoch. The offence records only grow (at most
//! `max_evidence_per_block` a block, and only with evidence, which is rare; downtime at most
//! once per validator and epoch); nothing prunes them yet. The downtime ring holds
//! `signed_blocks_window` entries at most, and identity lists are deleted once no entry of
//! the ring refers to their epoch.

use aether_api::module::ModuleContext;
use aether_primitives::types::{Amount, Hash, Height, PublicKey};
use borsh::{BorshDeserialize, BorshSerialize};

use crate::error::{Result, SlashingError};
use crate::params::Params;

pub const PARAMS: &[u8] = b"params";
pub const OFFENCES: &[u8] = b"o/";
pub const PROCESSED: &[u8] = b"e/";
pub const TRACKER: &[u8] = b"d/tracker";
pub const IDS: &[u8] = b"d/ids/";
pub const SLOTS: &[u8] = b"d/slot/";
pub const DOWNTIME_OFFENCES: &[u8] = b"t/";

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

/// One member's downtime count, in the order of the set measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Counter {
    /// Heights it missed among the measured heights numbered `since` or later still in the
    /// window.
    pub missed: u16,
    /// The number of the first measured height counted for it (when it joined the measured
    /// set, or the one after its window was last reset).
    pub since: u64,
}

/// The downtime measurement's running state (one record, rewritten each measured height:
/// about 10 bytes per member).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Tracker {
    /// The epoch whose set `counters` follows (index = validator index in that set).
    pub epoch: u64,
    /// The number the next measured height gets (heights without signers are not measured).
    pub next: u64,
    pub counters: Vec<Counter>,
    /// The epochs whose identity lists are stored (`d/ids/`), oldest first.
    pub id_epochs: Vec<u64>,
}

/// Who missed one measured height, as a bitmap over the set of `epoch` (bit `i`: byte `i / 8`,
/// bit `i % 8`).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SlotEntry {
    pub epoch: u64,
    pub missed: Vec<u8>,
}

/// A validator punished for downtime in an epoch.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct DowntimeOffence {
    /// The height of the block whose hook punished it.
    pub height: Height,
    /// Heights it had missed in its window.
    pub missed: u16,
    pub outcome: Outcome,
}

pub fn ids_key(epoch: u64) -> Vec<u8> {
    [IDS, &epoch.to_be_bytes()[..]].concat()
}

pub fn slot_key(slot: u64) -> Vec<u8> {
    [SLOTS, &slot.to_be_bytes()[..]].concat()
}

pub fn downtime_offence_key(identity: &PublicKey, epoch: u64) -> Vec<u8> {
    [DOWNTIME_OFFENCES, &identity.0[..], &epoch.to_be_bytes()[..]].concat()
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
