//! Read-only queries (`Ledger::module_query("slashing", path, request)`, RPC
//! `aether_moduleQuery`). Answers are JSON (hashes and keys as `0x` hex, amounts as decimal
//! strings, fields in declaration order).
//!
//! - `params`: the [`Params`](crate::Params).
//! - `offences`: request = a validator's 32-byte identity key; answer = its offences, oldest
//!   epoch first, at most [`MAX_OFFENCES_LISTED`] ([`OffenceInfo`]).
//! - `processed`: request = a 32-byte evidence hash (`Evidence::hash`); answer = `true` if
//!   this module handled that evidence (slashed, refused or ignored it), else `false`.
//! - `signing_info`: request = a validator's 32-byte identity key; answer = its downtime
//!   count in the set measured last ([`SigningInfo`]), or `null` if it is not in that set (or
//!   nothing was measured yet).

use aether_api::module::{ModuleContext, ModuleError};
use aether_primitives::types::{serde_helpers, Amount, Hash, Height, PublicKey};
use serde::{Deserialize, Serialize};

use crate::error::{Result, SlashingError};
use crate::state::{self, Offence, Outcome};

/// Offences one `offences` answer lists at most (the oldest).
pub const MAX_OFFENCES_LISTED: usize = 1_000;

/// A validator's downtime count, as `signing_info` answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningInfo {
    /// The epoch of the set measured last.
    pub epoch: u64,
    /// Heights it missed among the last `counted` measured.
    pub missed: u16,
    /// Measured heights its count covers (at most `window`; fewer after it joined the set or
    /// was punished). It is judged once this reaches `window`.
    pub counted: u64,
    pub window: u64,
    /// It is punished once `missed` exceeds this over a full window.
    pub max_missed: u64,
}

/// One offence, as `offences` answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffenceInfo {
    pub epoch: u64,
    /// The kind of the evidence that proved it first.
    pub kind: String,
    /// That evidence's hash.
    pub evidence: Hash,
    /// The height of the block that recorded it.
    pub height: Height,
    pub outcome: OutcomeInfo,
}

/// What came of an offence: `{"slashed":{"burned":"600"}}` or `{"refused":{"reason":"…"}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeInfo {
    Slashed {
        #[serde(with = "serde_helpers::amount")]
        burned: Amount,
    },
    Refused {
        reason: String,
    },
}

pub fn query(cx: &mut dyn ModuleContext, path: &str, request: &[u8]) -> Result<Vec<u8>> {
    match path {
        "params" => json(&state::params(cx)?),
        "offences" => {
            let identity = PublicKey(bytes32(request, "an offences request (a validator identity key)")?);
            json(&offences(cx, &identity)?)
        }
        "processed" => {
            let hash = Hash(bytes32(request, "a processed request (an evidence hash)")?);
            json(&state::processed(cx, &hash)?.is_some())
        }
        "signing_info" => {
            let identity = PublicKey(bytes32(request, "a signing_info request (a validator identity key)")?);
            json(&signing_info(cx, &identity)?)
        }
        other => Err(ModuleError::UnknownQuery(other.to_string()).into()),
    }
}

fn offences(cx: &mut dyn ModuleContext, identity: &PublicKey) -> Result<Vec<OffenceInfo>> {
    let prefix = state::offence_prefix(identity);
    let mut out = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    while out.len() < MAX_OFFENCES_LISTED {
        let Some(key) = cx.next_key(&prefix, after.as_deref())? else { break };
        let epoch = state::parse_offence_key(&key)?;
        let o: Offence = state::load(cx, &key, "offence")?.ok_or(SlashingError::Corrupt("offence"))?;
        let outcome = match o.outcome {
            Outcome::Slashed { burned } => OutcomeInfo::Slashed { burned },
            Outcome::Refused { reason } => OutcomeInfo::Refused { reason },
        };
        out.push(OffenceInfo { epoch, kind: o.kind, evidence: o.evidence, height: o.height, outcome });
        after = Some(key);
    }
    Ok(out)
}

fn signing_info(cx: &mut dyn ModuleContext, identity: &PublicKey) -> Result<Option<SigningInfo>> {
    let params = state::params(cx)?;
    let Some(tracker) = state::load::<state::Tracker>(cx, state::TRACKER, "downtime tracker")? else { return Ok(None) };
    let ids: Vec<PublicKey> = state::load(cx, &state::ids_key(tracker.epoch), "downtime identity list")?
        .ok_or(SlashingError::Corrupt("downtime identity list (missing)"))?;
    let Some(counter) = ids.iter().position(|id| id == identity).and_then(|i| tracker.counters.get(i)) else { return Ok(None) };
    let window = params.signed_blocks_window;
    Ok(Some(SigningInfo {
        epoch: tracker.epoch,
        missed: counter.missed,
        counted: tracker.next.saturating_sub(counter.since).min(window),
        window,
        max_missed: params.max_missed_per_window(),
    }))
}

fn bytes32(request: &[u8], what: &'static str) -> Result<[u8; 32]> {
    request.try_into().map_err(|_| SlashingError::BadRequest { what, expected: 32, got: request.len() })
}

fn json<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|_| SlashingError::Corrupt("answer"))
}
