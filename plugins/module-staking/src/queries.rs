//! Read-only queries (`Ledger::module_query("staking", path, request)`, RPC
//! `aether_moduleQuery`). Answers are JSON (amounts as decimal strings, keys and addresses as
//! `0x` hex, fields in declaration order), so the same state always gives the same bytes.

use aether_api::module::{ModuleContext, ModuleError};
use aether_primitives::types::{serde_helpers, Address, Amount, PublicKey};
use serde::{Deserialize, Serialize};

use crate::error::{Result, StakingError};
use crate::state::{self, Unbonding, Validator};

/// Validators per `validators` answer.
pub const VALIDATORS_PAGE: usize = 100;

/// A validator as `validator` and `validators` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorInfo {
    pub identity: PublicKey,
    pub name: String,
    pub operator: Address,
    #[serde(with = "serde_helpers::bytes")]
    pub consensus_key: Vec<u8>,
    pub commission_bps: u16,
    #[serde(with = "serde_helpers::amount")]
    pub tokens: Amount,
    #[serde(with = "serde_helpers::amount")]
    pub total_shares: u128,
    #[serde(with = "serde_helpers::amount")]
    pub self_bond: Amount,
    pub jailed_since: Option<u64>,
    /// Whether it qualifies for the next set (it sits in it if it ranks within `max_validators`).
    pub eligible: bool,
}

/// One page of `validators`, in identity order; ask again with `next_after` as the request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorsPage {
    pub validators: Vec<ValidatorInfo>,
    pub next_after: Option<PublicKey>,
}

/// `delegation`'s answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegationInfo {
    #[serde(with = "serde_helpers::amount")]
    pub shares: u128,
    /// What the shares are worth now.
    #[serde(with = "serde_helpers::amount")]
    pub tokens: Amount,
}

/// One entry of `unbonding`'s answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnbondingInfo {
    pub validator: PublicKey,
    /// What it is worth now (its pool's slashes included).
    #[serde(with = "serde_helpers::amount")]
    pub amount: Amount,
    /// Its shares of the pool (validator, start epoch).
    #[serde(with = "serde_helpers::amount")]
    pub shares: u128,
    pub start_epoch: u64,
    /// Paid at the end of this epoch.
    pub mature_epoch: u64,
}

pub fn query(cx: &mut dyn ModuleContext, path: &str, request: &[u8]) -> Result<Vec<u8>> {
    match path {
        "params" => json(&state::params(cx)?),
        "validator" => {
            let id = identity(request)?;
            let v = state::existing_validator(cx, &id)?;
            json(&info(cx, id, v)?)
        }
        "validators" => {
            let after = if request.is_empty() { None } else { Some(state::validator_key(&identity(request)?)) };
            json(&validators(cx, after)?)
        }
        "delegation" => {
            let (delegator, validator): (Address, PublicKey) =
                aether_primitives::codec::decode("delegation request (borsh (Address, PublicKey))", request, 52)
                    .map_err(|e| ModuleError::BadCall(e.to_string()))?;
            let v = state::existing_validator(cx, &validator)?;
            let shares = state::shares(cx, &validator, &delegator)?;
            json(&DelegationInfo { shares, tokens: state::tokens_of(&v, shares)? })
        }
        "unbonding" => {
            let delegator =
                Address(request.try_into().map_err(|_| {
                    ModuleError::BadCall(format!("unbonding request must be a 20-byte address; got {} bytes", request.len()))
                })?);
            json(&unbondings_of(cx, &delegator)?)
        }
        "invariants" => crate::invariants::check(cx).map(|summary| summary.into_bytes()),
        other => Err(ModuleError::UnknownQuery(other.to_string()).into()),
    }
}

fn json<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|_| StakingError::Corrupt("answer"))
}

fn identity(request: &[u8]) -> Result<PublicKey> {
    let bytes: [u8; 32] = request
        .try_into()
        .map_err(|_| ModuleError::BadCall(format!("request must be a 32-byte identity key; got {} bytes", request.len())))?;
    Ok(PublicKey(bytes))
}

fn info(cx: &mut dyn ModuleContext, identity: PublicKey, v: Validator) -> Result<ValidatorInfo> {
    let self_bond = state::self_bond(cx, &identity, &v)?;
    Ok(ValidatorInfo {
        identity,
        eligible: v.ranked.is_some(),
        name: v.name,
        operator: v.operator,
        consensus_key: v.consensus_key,
        commission_bps: v.commission_bps,
        tokens: v.tokens,
        total_shares: v.total_shares,
        self_bond,
        jailed_since: v.jailed_since,
    })
}

fn validators(cx: &mut dyn ModuleContext, mut after: Option<Vec<u8>>) -> Result<ValidatorsPage> {
    let mut page = ValidatorsPage { validators: Vec::new(), next_after: None };
    while page.validators.len() < VALIDATORS_PAGE {
        let Some(key) = cx.next_key(state::VALIDATORS, after.as_deref())? else { return Ok(page) };
        let id = state::parse_validator_key(&key)?;
        let v = state::existing_validator(cx, &id)?;
        page.validators.push(info(cx, id, v)?);
        after = Some(key);
    }
    page.next_after = page.validators.last().map(|v| v.identity);
    Ok(page)
}

/// The delegator's unbondings from every validator (one prefix walk per validator).
fn unbondings_of(cx: &mut dyn ModuleContext, delegator: &Address) -> Result<Vec<UnbondingInfo>> {
    let mut out = Vec::new();
    let mut after_validator: Option<Vec<u8>> = None;
    while let Some(vkey) = cx.next_key(state::VALIDATORS, after_validator.as_deref())? {
        let id = state::parse_validator_key(&vkey)?;
        let prefix = state::unbonding_prefix_of(&id, delegator);
        let mut after: Option<Vec<u8>> = None;
        while let Some(key) = cx.next_key(&prefix, after.as_deref())? {
            let (_, _, mature_epoch) = state::parse_unbonding_key(&key)?;
            let entry: Unbonding = state::load(cx, &key, "unbonding")?.ok_or(StakingError::Corrupt("unbonding"))?;
            let pool = state::pool(cx, &id, entry.start_epoch)?;
            let amount = state::pool_tokens_of(&pool, entry.shares)?;
            out.push(UnbondingInfo { validator: id, amount, shares: entry.shares, start_epoch: entry.start_epoch, mature_epoch });
            after = Some(key);
        }
        after_validator = Some(vkey);
    }
    Ok(out)
}
