//! Storage layout and codecs. Everything lives in the module's own storage (under
//! `module_address("staking")`), borsh-encoded; keys are fixed-width so they parse back and
//! sort as documented:
//!
//! | key | value | what |
//! |---|---|---|
//! | `params` | [`Params`] | genesis parameters |
//! | `v/` ‖ identity (32) | [`Validator`] | a registered validator |
//! | `d/` ‖ identity (32) ‖ delegator (20) | `u128` shares | a delegation (the operator's self-bond too) |
//! | `u/` ‖ identity (32) ‖ delegator (20) ‖ mature epoch (8, BE) | [`Unbonding`] | an unbonding entry: shares of a pool |
//! | `p/` ‖ identity (32) ‖ start epoch (8, BE) | [`Pool`] | tokens unbonding from a validator since one epoch |
//! | `m/` ‖ mature epoch (8, BE) ‖ identity (32) ‖ delegator (20) | empty | the maturity queue, oldest first |
//! | `r/` ‖ !tokens (16, BE) ‖ identity (32) | empty | eligible validators, most tokens first, then identity |
//!
//! Unbondings of one delegator from one validator that mature in the same epoch started in
//! the same epoch (maturity = start + `unbonding_epochs`), so they share one entry.
//!
//! Unbonding tokens sit in pools, one per (validator, start epoch), and an entry holds shares
//! of its pool, as a delegation holds shares of a validator. A slash cuts the pools that
//! started at or after the infraction — at most `unbonding_epochs + 1` of them, whatever the
//! number of delegators — and every entry in them loses the same fraction.
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
pub const POOLS: &[u8] = b"p/";

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

/// A delegator's tokens on their way out: `shares` of the pool (validator, `start_epoch`),
/// paid at the end of the epoch in its key (`start_epoch + unbonding_epochs`).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Unbonding {
    pub start_epoch: u64,
    pub shares: u128,
}

/// The tokens unbonding from one validator since one epoch, and the shares its entries hold.
/// Slashable as a whole; a share is worth `tokens / shares`.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Pool {
    pub tokens: Amount,
    pub shares: u128,
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
pub fn pool_prefix(id: &PublicKey) -> Vec<u8> {
    [POOLS, &id.0].concat()
}
pub fn pool_key(id: &PublicKey, start: u64) -> Vec<u8> {
    [POOLS, &id.0, &start.to_be_bytes()].concat()
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

/// `(identity, start)` of a `p/` key.
pub fn parse_pool_key(key: &[u8]) -> Result<(PublicKey, u64)> {
    let rest = key.strip_prefix(POOLS).filter(|r| r.len() == 40).ok_or(StakingError::Corrupt("pool key"))?;
    Ok((PublicKey(bytes(&rest[..32], "pool key")?), u64::from_be_bytes(bytes(&rest[32..], "pool key")?)))
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

pub fn pool(cx: &mut dyn ModuleContext, id: &PublicKey, start: u64) -> Result<Pool> {
    Ok(load(cx, &pool_key(id, start), "unbonding pool")?.unwrap_or_default())
}

/// Writes a pool (removes it when its last share is gone).
pub fn set_pool(cx: &mut dyn ModuleContext, id: &PublicKey, start: u64, pool: &Pool) -> Result<()> {
    let key = pool_key(id, start);
    if pool.shares == 0 {
        Ok(cx.remove(&key)?)
    } else {
        save(cx, &key, pool)
    }
}

/// What `shares` of `pool` are worth now (rounded down; all of it for all the shares).
pub fn pool_tokens_of(pool: &Pool, shares: u128) -> Result<Amount> {
    if pool.shares == 0 {
        return Ok(0);
    }
    mul_div(shares, pool.tokens, pool.shares).ok_or(StakingError::Overflow("pool shares to tokens"))
}
