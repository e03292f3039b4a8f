//! The module's invariants, checked by the `invariants` query (tests and the simulator ask it
//! every block). It reads the whole state, so its cost grows with it: a query's gas cap
//! bounds it.
//!
//! 1. The module's balance equals Σ validator tokens + Σ unbonding pools' tokens (bonds are backed
//!    by tokens one for one). A plain transfer to the module's address would break this (the
//!    tokens would be stuck there): the check reports it rather than hiding it.
//! 2. For each validator, Σ of its delegations' shares equals its `total_shares` (and no
//!    delegation of 0 shares is stored).
//! 3. For each unbonding pool, Σ of its entries' shares equals its shares (and no empty pool
//!    is stored).
//! 4. No sum overflows; every unbonding entry has its maturity-queue key and vice versa; the
//!    rank index lists exactly the eligible validators under their current tokens.

use aether_api::module::ModuleContext;
use std::collections::BTreeMap;

use aether_primitives::types::{Amount, PublicKey};

use crate::error::{Result, StakingError};
use crate::state::{self, Pool, Unbonding, Validator};

fn broken<T>(why: String) -> Result<T> {
    Err(StakingError::Invariant(why))
}

fn add(sum: Amount, x: Amount, what: &'static str) -> Result<Amount> {
    sum.checked_add(x).ok_or(StakingError::Invariant(format!("{what} overflows u128")))
}

/// Checks every invariant; `Ok` carries a one-line summary.
pub fn check(cx: &mut dyn ModuleContext) -> Result<String> {
    let params = state::params(cx)?;
    let (mut bonded, mut validators, mut ranked) = (0u128, 0u64, 0u64);
    let mut after: Option<Vec<u8>> = None;
    while let Some(key) = cx.next_key(state::VALIDATORS, after.as_deref())? {
        let id = state::parse_validator_key(&key)?;
        let v: Validator = state::existing_validator(cx, &id)?;
        bonded = add(bonded, v.tokens, "Σ validator tokens")?;
        validators += 1;
        let prefix = state::delegation_prefix(&id);
        let (mut shares, mut d_after) = (0u128, None::<Vec<u8>>);
        while let Some(dkey) = cx.next_key(&prefix, d_after.as_deref())? {
            let held: u128 = state::load(cx, &dkey, "delegation")?.ok_or(StakingError::Corrupt("delegation"))?;
            if held == 0 {
                return broken(format!("validator {id}: a delegation of 0 shares is stored"));
            }
            shares = add(shares, held, "Σ delegation shares")?;
            d_after = Some(dkey);
        }
        if shares != v.total_shares {
            return broken(format!("validator {id}: delegations hold {shares} shares, the validator counts {}", v.total_shares));
        }
        let eligible = state::eligible(cx, &params, &id, &v)?;
        let indexed = v.ranked.is_some() && cx.get(&state::rank_key(v.tokens, &id))?.is_some();
        if eligible != indexed || v.ranked.is_some_and(|t| t != v.tokens) {
            return broken(format!("validator {id}: eligible {eligible} but rank index says {:?} with {} tokens", v.ranked, v.tokens));
        }
        ranked += u64::from(indexed);
        after = Some(key);
    }
    let mut rank_keys = 0u64;
    let mut after: Option<Vec<u8>> = None;
    while let Some(key) = cx.next_key(state::RANK, after.as_deref())? {
        rank_keys += 1;
        after = Some(key);
    }
    if rank_keys != ranked {
        return broken(format!("the rank index has {rank_keys} keys for {ranked} eligible validators"));
    }
    let mut entries = 0u64;
    let mut pool_shares: BTreeMap<(PublicKey, u64), u128> = BTreeMap::new();
    let mut after: Option<Vec<u8>> = None;
    while let Some(key) = cx.next_key(state::UNBONDINGS, after.as_deref())? {
        let (id, delegator, mature) = state::parse_unbonding_key(&key)?;
        let entry: Unbonding = state::load(cx, &key, "unbonding")?.ok_or(StakingError::Corrupt("unbonding"))?;
        let sum = pool_shares.entry((id, entry.start_epoch)).or_insert(0);
        *sum = add(*sum, entry.shares, "Σ unbonding shares")?;
        if entry.start_epoch.saturating_add(params.unbonding_epochs) != mature {
            return broken(format!("unbonding of {delegator} from {id} started in epoch {} but matures in {mature}", entry.start_epoch));
        }
        if cx.get(&state::queue_key(mature, &id, &delegator))?.is_none() {
            return broken(format!("unbonding of {delegator} from {id} maturing in epoch {mature} is not queued"));
        }
        entries += 1;
        after = Some(key);
    }
    let (mut unbonding, mut pools) = (0u128, 0usize);
    let mut after: Option<Vec<u8>> = None;
    while let Some(key) = cx.next_key(state::POOLS, after.as_deref())? {
        let (id, start) = state::parse_pool_key(&key)?;
        let pool: Pool = state::load(cx, &key, "unbonding pool")?.ok_or(StakingError::Corrupt("unbonding pool"))?;
        let held = pool_shares.get(&(id, start)).copied().unwrap_or(0);
        if pool.shares == 0 || held != pool.shares {
            return broken(format!(
                "unbonding pool of {id} from epoch {start}: its entries hold {held} shares, the pool counts {}",
                pool.shares
            ));
        }
        unbonding = add(unbonding, pool.tokens, "Σ unbonding pool tokens")?;
        pools += 1;
        after = Some(key);
    }
    if pools != pool_shares.len() {
        return broken(format!("{} unbonding pools have entries but {pools} are stored", pool_shares.len()));
    }
    let mut queued = 0u64;
    let mut after: Option<Vec<u8>> = None;
    while let Some(key) = cx.next_key(state::QUEUE, after.as_deref())? {
        queued += 1;
        after = Some(key);
    }
    if queued != entries {
        return broken(format!("the maturity queue has {queued} keys for {entries} unbonding entries"));
    }
    let own = cx.own_address();
    let balance = cx.balance(&own)?;
    let owed = add(bonded, unbonding, "bonded + unbonding")?;
    if balance != owed {
        return broken(format!("the module holds {balance} but owes {owed} ({bonded} bonded + {unbonding} unbonding)"));
    }
    Ok(format!(
        "ok: {validators} validators ({ranked} eligible), {entries} unbondings in {pools} pools, {bonded} bonded, {unbonding} unbonding"
    ))
}
