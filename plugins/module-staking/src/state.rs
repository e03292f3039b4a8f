//! Storage layout and codecs. Everything lives in the module's own storage (under
//! `module_address("staking")`), borsh-encoded; keys are fixed-width so they parse back and
//! sort as documented:
//!
//! | key | value | what |
//! |---|---|---|
//! | `params` | [`Params`] | genesis parameters |
//! | `v/` ‖ identity (32) | [`Validator`] | a registered validator |
//! | `d/` ‖ identity (32) ‖ delegator (20) | `u128` shares | a delegation (the operator's self-bond too) |
//! | `u/` ‖ identity (32) ‖ delegator (20) ‖ mature epoch (8, BE) | [`Unbonding`] | an unbonding entry |
//! | `m/` ‖ mature epoch (8, BE) ‖ identity (32) ‖ delegator (20) | empty | the maturity queue, oldest first |
//! | `r/` ‖ !tokens (16, BE) ‖ identity (32) | empty | eligible validators, most tokens first, then identity |
//!
//! Unbondings of one delegator from one validator that mature in the same epoch started in
//! the same epoch (maturity = start + `unbonding_epochs`), so they share one entry.
//!
//! The rank index `r/` holds exactly the validators that may sit in the next set (not jailed,
//! self-bond ≥ `min_self_bond`, tokens > 0): every write of a validator goes through
//! [`store_validator`], which keeps it in step, so choosing the next set reads only the first
//! `max_validators` keys.

use aether_api::module::ModuleContext;
use aether_primitives::types::{Address, Amount, PublicKey};
use borsh::{BorshDeserialize, BorshSerialize};

use crate::error::{Result, StakingError};
use crate::math::mul_div;
use crate::params::Params;

pub const PARAMS: &[u8] = b"params";
pub const VALIDATORS: &[u8] = b"v/";
pub const DELEGATIONS: &[u8] = b"d/";
pub const UNBONDINGS: &[u8] = b"u/";
pub const QUEUE: &[u8] = b"m/";
pub const RANK: &[u8] = b"r/";

/// A registered validator (its identity is the key).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Validator {
    pub name: String,
    /// Who registered it: holds the self-bond, receives commission, may unjail and set
    /// commission.
    pub operator: Address,
    pub consensus_key: Vec<u8>,
    pub commission_bps: u16,
    /// Tokens bonded to it (self-bond, delegations, compounded rewards, less slashes): its
    /// stake in the set.
    pub tokens: Amount,
    /// Shares issued to its delegators; a share is worth `tokens / total_shares`.
    pub total_shares: u128,
    /// The epoch it was jailed in, if jailed.
    pub jailed_since: Option<u64>,
    /// The tokens it is listed under in the rank index, if listed.
    pub ranked: Option<Amount>,
}

/// Tokens on their way out: paid to the delegator at the end of `mature` (its key), slashable
/// for infractions from `start_epoch` on.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Unbonding {
    pub start_epoch: u64,
    pub amount: Amount,
}

pub fn validator_key(id: &PublicKey) -> Vec<u8> {
    [VALIDATORS, &id.0].concat()
}
pub fn delegation_prefix(id: &PublicKey) -> Vec<u8> {
    [DELEGATIONS, &id.0].concat()
}
pub fn delegation_key(id: &PublicKey, delegator: &Address) -> Vec<u8> {
    [DELEGATIONS, &id.0, &delegator.0].concat()
}
pub fn unbonding_prefix(id: &PublicKey) -> Vec<u8> {
    [UNBONDINGS, &id.0].concat()
}
pub fn unbonding_prefix_of(id: &PublicKey, delegator: &Address) -> Vec<u8> {
    [UNBONDINGS, &id.0, &delegator.0].concat()
}
pub fn unbonding_key(id: &PublicKey, delegator: &Address, mature: u64) -> Vec<u8> {
    [UNBONDINGS, &id.0, &delegator.0, &mature.to_be_bytes()].concat()
}
pub fn queue_key(mature: u64, id: &PublicKey, delegator: &Address) -> Vec<u8> {
    [QUEUE, &mature.to_be_bytes(), &id.0, &delegator.0].concat()
}
pub fn rank_key(tokens: Amount, id: &PublicKey) -> Vec<u8> {
    [RANK, &(!tokens).to_be_bytes(), &id.0].concat()
}

fn bytes<const N: usize>(slice: &[u8], what: &'static str) -> Result<[u8; N]> {
    slice.try_into().map_err(|_| StakingError::Corrupt(what))
}

/// `(identity, delegator, mature)` of a `u/` key.
pub fn parse_unbonding_key(key: &[u8]) -> Result<(PublicKey, Address, u64)> {
    let rest = key.strip_prefix(UNBONDINGS).filter(|r| r.len() == 60).ok_or(StakingError::Corrupt("unbonding key"))?;
    Ok((
        PublicKey(bytes(&rest[..32], "unbonding key")?),
        Address(bytes(&rest[32..52], "unbonding key")?),
        u64::from_be_bytes(bytes(&rest[52..], "unbonding key")?),
    ))
}

/// `(mature, identity, delegator)` of an `m/` key.
pub fn parse_queue_key(key: &[u8]) -> Result<(u64, PublicKey, Address)> {
    let rest = key.strip_prefix(QUEUE).filter(|r| r.len() == 60).ok_or(StakingError::Corrupt("queue key"))?;
    Ok((
        u64::from_be_bytes(bytes(&rest[..8], "queue key")?),
        PublicKey(bytes(&rest[8..40], "queue key")?),
        Address(bytes(&rest[40..], "queue key")?),
    ))
}

/// The identity of a `v/` key.
pub fn parse_validator_key(key: &[u8]) -> Result<PublicKey> {
    let rest = key.strip_prefix(VALIDATORS).ok_or(StakingError::Corrupt("validator key"))?;
    Ok(PublicKey(bytes(rest, "validator key")?))
}

/// The delegator of a `d/` key.
pub fn parse_delegation_key(key: &[u8]) -> Result<(PublicKey, Address)> {
    let rest = key.strip_prefix(DELEGATIONS).filter(|r| r.len() == 52).ok_or(StakingError::Corrupt("delegation key"))?;
    Ok((PublicKey(bytes(&rest[..32], "delegation key")?), Address(bytes(&rest[32..], "delegation key")?)))
}

/// `(tokens, identity)` of an `r/` key.
pub fn parse_rank_key(key: &[u8]) -> Result<(Amount, PublicKey)> {
    let rest = key.strip_prefix(RANK).filter(|r| r.len() == 48).ok_or(StakingError::Corrupt("rank key"))?;
    Ok((!u128::from_be_bytes(bytes(&rest[..16], "rank key")?), PublicKey(bytes(&rest[16..], "rank key")?)))
}

/// Reads and decodes one value.
pub fn load<T: BorshDeserialize>(cx: &mut dyn ModuleContext, key: &[u8], what: &'static str) -> Result<Option<T>> {
    match cx.get(key)? {
        None => Ok(None),
        Some(bytes) => borsh::from_slice(&bytes).map(Some).map_err(|_| StakingError::Corrupt(what)),
    }
}

/// Encodes and writes one value.
pub fn save<T: BorshSerialize>(cx: &mut dyn ModuleContext, key: &[u8], value: &T) -> Result<()> {
    let bytes = borsh::to_vec(value).map_err(|_| StakingError::Corrupt("value to store"))?;
    Ok(cx.set(key, &bytes)?)
}

pub fn params(cx: &mut dyn ModuleContext) -> Result<Params> {
    load(cx, PARAMS, "params")?.ok_or(StakingError::NotInitialised)
}

pub fn validator(cx: &mut dyn ModuleContext, id: &PublicKey) -> Result<Option<Validator>> {
    load(cx, &validator_key(id), "validator")
}

pub fn existing_validator(cx: &mut dyn ModuleContext, id: &PublicKey) -> Result<Validator> {
    validator(cx, id)?.ok_or(StakingError::UnknownValidator(*id))
}

pub fn shares(cx: &mut dyn ModuleContext, id: &PublicKey, delegator: &Address) -> Result<u128> {
    Ok(load(cx, &delegation_key(id, delegator), "delegation")?.unwrap_or(0))
}

/// Writes a delegation's shares (removes it at zero).
pub fn set_shares(cx: &mut dyn ModuleContext, id: &PublicKey, delegator: &Address, shares: u128) -> Result<()> {
    let key = delegation_key(id, delegator);
    if shares == 0 {
        Ok(cx.remove(&key)?)
    } else {
        save(cx, &key, &shares)
    }
}

/// What `shares` of `v` are worth in tokens now (rounded down).
pub fn tokens_of(v: &Validator, shares: u128) -> Result<Amount> {
    if v.total_shares == 0 {
        return Ok(0);
    }
    mul_div(shares, v.tokens, v.total_shares).ok_or(StakingError::Overflow("shares to tokens"))
}

/// The operator's bond to its own validator, in tokens.
pub fn self_bond(cx: &mut dyn ModuleContext, id: &PublicKey, v: &Validator) -> Result<Amount> {
    let own = shares(cx, id, &v.operator)?;
    tokens_of(v, own)
}

/// Whether `v` may sit in the next set: not jailed, tokens above zero, self-bond at least
/// `min_self_bond`.
pub fn eligible(cx: &mut dyn ModuleContext, params: &Params, id: &PublicKey, v: &Validator) -> Result<bool> {
    Ok(v.jailed_since.is_none() && v.tokens > 0 && self_bond(cx, id, v)? >= params.min_self_bond)
}

/// Writes `v`, moving its rank-index key if its eligibility or tokens changed. Every change of
/// a validator's tokens, shares, self-bond or jail goes through here (delegation shares
/// first: eligibility reads the operator's).
pub fn store_validator(cx: &mut dyn ModuleContext, params: &Params, id: &PublicKey, v: &mut Validator) -> Result<()> {
    let wanted = if eligible(cx, params, id, v)? { Some(v.tokens) } else { None };
    if wanted != v.ranked {
        if let Some(old) = v.ranked {
            cx.remove(&rank_key(old, id))?;
        }
        if let Some(new) = wanted {
            cx.set(&rank_key(new, id), &[])?;
        }
        v.ranked = wanted;
    }
    save(cx, &validator_key(id), v)
}
