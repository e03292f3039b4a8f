//! Genesis and the end of each epoch: the module is the chain's validator source.
//!
//! Work per `end_epoch` is bounded: at most [`MAX_MATURED_PER_EPOCH`] matured unbondings
//! paid (the rest stay queued, already mature, for the next epoch), one reward update per
//! member of the closing set (≤ 512), and at most `max_validators` rank keys read for the
//! next set. Measured in `tests/ledger/gas.rs` at the ledger's prices (the hook's budget,
//! `HOOK_GAS_PER_EPOCH`, is 200M): 17.5M gas with 100 validators, 43.8M with 250 (about 176k
//! per validator: a read of its record and delegation, two mints, a write, a rank-key move, a
//! set member), about 82k per matured unbonding. So 512 validators (the most a set may hold)
//! with the most matured unbondings come to about 172M; the test proves it fits by running
//! the real hook after burning the unbondings' share first.

use aether_api::module::{ModuleContext, ModuleError};
use aether_primitives::types::{Amount, PublicKey, ValidatorEntry};

use crate::error::{Result, StakingError};
use crate::math::{bps_of, mul_div};
use crate::params::Params;
use crate::state::{self, Pool, Unbonding, Validator};

/// Matured unbondings paid per epoch at most. Each costs about 82k gas (a queue step, a read,
/// a payment, two removals; its pool once per pool), so 1,000 take about 82M of the hook's
/// 200M.
pub const MAX_MATURED_PER_EPOCH: usize = 1_000;

/// Registers the genesis set as bonded validators (self-bond = genesis stake, operator = the
/// identity's address, commission 0) and mints their stake into the module's account.
pub fn init_genesis(cx: &mut dyn ModuleContext, json: &[u8]) -> Result<()> {
    let params = Params::from_genesis(json)?;
    state::save(cx, state::PARAMS, &params)?;
    let genesis = cx.validator_set(0)?.ok_or_else(|| StakingError::Params("the chain has no genesis validator set".into()))?;
    let own = cx.own_address();
    for entry in genesis {
        let operator = entry.identity.address();
        let mut v = Validator {
            name: entry.name,
            operator,
            consensus_key: entry.consensus_key,
            commission_bps: 0,
            tokens: entry.stake,
            total_shares: entry.stake,
            jailed_since: None,
            ranked: None,
        };
        state::set_shares(cx, &entry.identity, &operator, entry.stake)?;
        state::store_validator(cx, &params, &entry.identity, &mut v)?;
        cx.mint(&own, entry.stake).map_err(|e| match e {
            ModuleError::NotGranted(_) => StakingError::NeedsMint,
            other => StakingError::Context(other),
        })?;
    }
    Ok(())
}

/// Closes `epoch`: pays matured unbondings, shares the epoch's reward, names the next set.
pub fn end_epoch(cx: &mut dyn ModuleContext, epoch: u64) -> Result<Option<Vec<ValidatorEntry>>> {
    let params = state::params(cx)?;
    pay_matured(cx, epoch)?;
    reward(cx, &params, epoch)?;
    next_set(cx, &params)
}

/// Pays the unbondings that mature at or before `epoch`, oldest first, at most
/// [`MAX_MATURED_PER_EPOCH`]. Entries of one pool are consecutive in the queue (same maturity,
/// same validator), so each pool is read and written once, not once per entry.
fn pay_matured(cx: &mut dyn ModuleContext, epoch: u64) -> Result<()> {
    let mut after: Option<Vec<u8>> = None;
    let mut open: Option<(PublicKey, u64, Pool)> = None;
    for _ in 0..MAX_MATURED_PER_EPOCH {
        // Continue after the last key paid: a removed key still costs a step to pass over.
        let Some(key) = cx.next_key(state::QUEUE, after.as_deref())? else { break };
        let (mature, validator, delegator) = state::parse_queue_key(&key)?;
        if mature > epoch {
            break;
        }
        let entry_key = state::unbonding_key(&validator, &delegator, mature);
        let entry: Unbonding = state::load(cx, &entry_key, "unbonding")?.ok_or(StakingError::Corrupt("unbonding"))?;
        let (open_validator, open_start, mut pool) = match open.take() {
            Some((v, start, pool)) if v == validator && start == entry.start_epoch => (v, start, pool),
            other => {
                if let Some((v, start, pool)) = other {
                    state::set_pool(cx, &v, start, &pool)?;
                }
                (validator, entry.start_epoch, state::pool(cx, &validator, entry.start_epoch)?)
            }
        };
        let amount = state::pool_tokens_of(&pool, entry.shares)?;
        // The entry's shares are part of the pool's, so neither subtraction can fail unless
        // the state is corrupt.
        pool.tokens = pool.tokens.checked_sub(amount).ok_or(StakingError::Corrupt("unbonding pool"))?;
        pool.shares = pool.shares.checked_sub(entry.shares).ok_or(StakingError::Corrupt("unbonding pool"))?;
        open = Some((open_validator, open_start, pool));
        if amount > 0 {
            cx.pay(&delegator, amount)?;
        }
        cx.remove(&entry_key)?;
        cx.remove(&key)?;
        after = Some(key);
    }
    if let Some((v, start, pool)) = open {
        state::set_pool(cx, &v, start, &pool)?;
    }
    Ok(())
}

/// Mints `reward_per_epoch` for the validators of `epoch`'s set, pro rata to their stake in
/// it (the division's remainder to the first listed). Of each share, the commission is minted
/// to the operator and the rest joins the validator's tokens (its delegators' shares grow).
fn reward(cx: &mut dyn ModuleContext, params: &Params, epoch: u64) -> Result<()> {
    let Some(set) = cx.validator_set(epoch)? else { return Ok(()) };
    let total = set.iter().try_fold(0u128, |sum, v| sum.checked_add(v.stake)).ok_or(StakingError::Overflow("set stake"))?;
    if total == 0 || params.reward_per_epoch == 0 {
        return Ok(());
    }
    let mut shares: Vec<Amount> = Vec::with_capacity(set.len());
    for member in &set {
        shares.push(mul_div(params.reward_per_epoch, member.stake, total).ok_or(StakingError::Overflow("reward share"))?);
    }
    let handed: Amount = shares.iter().sum(); // ≤ reward_per_epoch
    if let Some(first) = shares.first_mut() {
        *first += params.reward_per_epoch - handed;
    }
    let own = cx.own_address();
    for (member, share) in set.iter().zip(shares) {
        // A member the module does not know (none, unless genesis lists an unregistered
        // one) gets nothing: less is minted.
        let Some(mut v) = state::validator(cx, &member.identity)? else { continue };
        let mut commission = bps_of(share, v.commission_bps);
        if v.total_shares == 0 {
            // Nobody holds its shares: the whole share goes to the operator.
            commission = share;
        }
        let bonded = share - commission;
        if commission > 0 {
            cx.mint(&v.operator, commission)?;
        }
        if bonded > 0 {
            cx.mint(&own, bonded)?;
            v.tokens = v.tokens.checked_add(bonded).ok_or(StakingError::Overflow("validator tokens"))?;
            state::store_validator(cx, params, &member.identity, &mut v)?;
        }
    }
    Ok(())
}

/// The next set: the first `max_validators` of the rank index (eligible validators by tokens
/// descending, then identity ascending); `None` when nobody qualifies (the ledger keeps the
/// current set).
fn next_set(cx: &mut dyn ModuleContext, params: &Params) -> Result<Option<Vec<ValidatorEntry>>> {
    let mut set = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    while set.len() < params.max_validators as usize {
        let Some(key) = cx.next_key(state::RANK, after.as_deref())? else { break };
        let (tokens, identity) = state::parse_rank_key(&key)?;
        let v = state::existing_validator(cx, &identity)?;
        if v.ranked != Some(tokens) || v.tokens != tokens {
            return Err(StakingError::Corrupt("rank index"));
        }
        set.push(ValidatorEntry { name: v.name, identity, consensus_key: v.consensus_key, stake: tokens });
        after = Some(key);
    }
    Ok(if set.is_empty() { None } else { Some(set) })
}
