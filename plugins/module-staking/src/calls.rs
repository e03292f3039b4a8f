//! Transactions: the borsh-encoded [`StakingCall`] and what each does.

use aether_api::module::{module_address, ModuleContext};
use aether_primitives::types::{Address, Amount, Keypair, PublicKey, Signature};
use borsh::{BorshDeserialize, BorshSerialize};

use crate::error::{Result, StakingError};
use crate::math::{bps_of, mul_div, BPS};
use crate::state::{self, Pool, Unbonding, Validator};

/// The domain tag that opens the message a validator's identity key signs to register.
pub const REGISTRATION_DOMAIN: &[u8] = b"aether/staking/register/v1";

/// Longest validator name, in bytes.
pub const MAX_NAME_BYTES: usize = 64;

/// Longest call accepted (a registration with a large consensus key fits easily).
pub const MAX_CALL_BYTES: usize = 4_096;

/// Gas charged for checking the identity key and verifying its signature (ed25519, strict):
/// 35 µs in release on the reference machine (`aether bench module-gas`), so 300k gas is
/// 0.117 ns/gas, below a Wasm contract call's 0.177 in the same run. (It was the contract
/// host's `aether_vm::gas::ED25519_VERIFY`, 50k: 0.70 ns/gas, four times a contract call's;
/// the host's price has the same gap, see docs/modules.md "Measured".)
pub const VERIFY_GAS: u64 = 300_000;

/// A call to the staking module: `Action::Module { module: "staking", call:
/// borsh(StakingCall), value, .. }`. Borsh encodes the variant as one byte in declaration
/// order (Register = 0 … Slash = 5, UpdateParams = 6, BondedDelegations = 7), then the fields in order (`PublicKey` 32 bytes, `Vec` and
/// `String` a `u32` LE length then the bytes, integers LE, `bool` one byte).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum StakingCall {
    /// Registers a validator operated by the caller; the value is the self-bond.
    Register { identity: PublicKey, consensus_key: Vec<u8>, name: String, commission_bps: u16, identity_signature: Signature },
    /// Bonds the value to `validator` for shares.
    Delegate { validator: PublicKey },
    /// Starts unbonding `shares`: their tokens are paid `unbonding_epochs` after this epoch.
    Unbond { validator: PublicKey, shares: u128 },
    /// By the operator, `jail_epochs` after jailing, with self-bond ≥ `min_self_bond`.
    Unjail { validator: PublicKey },
    /// By the operator, ≤ `max_commission_bps`.
    SetCommission { validator: PublicKey, commission_bps: u16 },
    /// Only from the slasher module: burns `fraction_bps` of the stake bonded at
    /// `infraction_epoch` (the validator's tokens and unbondings started since), and jails.
    Slash { validator: PublicKey, infraction_epoch: u64, fraction_bps: u16, jail: bool },
    /// Only from the governance module (`Params::governance`): replaces the parameters that
    /// `params_json` (a JSON object) names, checked as genesis checks them
    /// ([`Params::updated`](crate::Params::updated)); applies from the next call or hook.
    UpdateParams { params_json: String },
    /// Read-only, from anyone: `delegator`'s delegations to the validators of the current
    /// epoch's set (the stake that votes), as borsh `Vec<(PublicKey, Amount)>` — identity and
    /// what its shares are worth now — in set order, delegations of zero left out. Governance
    /// calls it to weigh a delegator's vote. Work is bounded by the set (at most
    /// `MAX_VALIDATORS` = 512 members): one storage read per member, one more per delegation
    /// found, each charged as the context charges reads.
    BondedDelegations { delegator: Address },
}

/// The message a validator's identity key signs to register: `REGISTRATION_DOMAIN ‖
/// operator (20 bytes) ‖ consensus_key length (u32 LE) ‖ consensus_key`. It binds the
/// identity to the operator who may submit it and to the consensus key it will vote with. No
/// chain id (the module context does not give one): the signature is usable only in a
/// transaction the operator signs, on a chain where the identity is not yet registered.
pub fn registration_message(operator: &Address, consensus_key: &[u8]) -> Vec<u8> {
    let mut message = REGISTRATION_DOMAIN.to_vec();
    message.extend_from_slice(&operator.0);
    message.extend_from_slice(&(consensus_key.len() as u32).to_le_bytes());
    message.extend_from_slice(consensus_key);
    message
}

impl StakingCall {
    /// A registration signed by `identity` for `operator` (who must send the transaction).
    pub fn register(identity: &Keypair, operator: &Address, consensus_key: Vec<u8>, name: &str, commission_bps: u16) -> Self {
        let identity_signature = identity.sign(&registration_message(operator, &consensus_key));
        StakingCall::Register { identity: identity.public(), consensus_key, name: name.into(), commission_bps, identity_signature }
    }
    pub fn delegate(validator: PublicKey) -> Self {
        StakingCall::Delegate { validator }
    }
    pub fn unbond(validator: PublicKey, shares: u128) -> Self {
        StakingCall::Unbond { validator, shares }
    }
    pub fn unjail(validator: PublicKey) -> Self {
        StakingCall::Unjail { validator }
    }
    pub fn set_commission(validator: PublicKey, commission_bps: u16) -> Self {
        StakingCall::SetCommission { validator, commission_bps }
    }
    pub fn slash(validator: PublicKey, infraction_epoch: u64, fraction_bps: u16, jail: bool) -> Self {
        StakingCall::Slash { validator, infraction_epoch, fraction_bps, jail }
    }
    pub fn update_params(params_json: &str) -> Self {
        StakingCall::UpdateParams { params_json: params_json.into() }
    }
    pub fn bonded_delegations(delegator: Address) -> Self {
        StakingCall::BondedDelegations { delegator }
    }
    /// The bytes for `Action::Module::call`.
    pub fn encode(&self) -> Vec<u8> {
        aether_primitives::codec::encode(self)
    }
    pub fn decode(bytes: &[u8]) -> Result<Self, aether_api::module::ModuleError> {
        aether_primitives::codec::decode("staking call", bytes, MAX_CALL_BYTES)
            .map_err(|e| aether_api::module::ModuleError::BadCall(e.to_string()))
    }
    fn method(&self) -> &'static str {
        match self {
            StakingCall::Register { .. } => "Register",
            StakingCall::Delegate { .. } => "Delegate",
            StakingCall::Unbond { .. } => "Unbond",
            StakingCall::Unjail { .. } => "Unjail",
            StakingCall::SetCommission { .. } => "SetCommission",
            StakingCall::Slash { .. } => "Slash",
            StakingCall::UpdateParams { .. } => "UpdateParams",
            StakingCall::BondedDelegations { .. } => "BondedDelegations",
        }
    }
}

/// Runs one call; returns its borsh-encoded result (shares bought, tokens unbonding, tokens
/// burned; empty for the others).
pub fn run(cx: &mut dyn ModuleContext, call: StakingCall) -> Result<Vec<u8>> {
    let params = state::params(cx)?;
    let takes_value = matches!(call, StakingCall::Register { .. } | StakingCall::Delegate { .. });
    if !takes_value && cx.value() > 0 {
        return Err(StakingError::UnexpectedValue { method: call.method(), sent: cx.value() });
    }
    let p = &params;
    match call {
        StakingCall::Register { identity, consensus_key, name, commission_bps, identity_signature } => {
            let value = cx.value();
            if value < p.min_self_bond {
                return Err(StakingError::SelfBondTooSmall { sent: value, min: p.min_self_bond });
            }
            if name.is_empty() || name.len() > MAX_NAME_BYTES || name.chars().any(char::is_control) {
                return Err(StakingError::BadName { got: name, max: MAX_NAME_BYTES });
            }
            if commission_bps > p.max_commission_bps {
                return Err(StakingError::CommissionTooHigh { got: commission_bps, max: p.max_commission_bps });
            }
            if state::validator(cx, &identity)?.is_some() {
                return Err(StakingError::AlreadyRegistered(identity));
            }
            cx.charge(VERIFY_GAS)?;
            identity.check().map_err(|_| StakingError::BadIdentity(identity))?;
            let operator = cx.caller();
            identity
                .verify(&registration_message(&operator, &consensus_key), &identity_signature)
                .map_err(|_| StakingError::BadIdentitySignature(identity))?;
            cx.check_consensus_key(&consensus_key)?;
            let mut v = Validator {
                name,
                operator,
                consensus_key,
                commission_bps,
                tokens: value,
                total_shares: value,
                jailed_since: None,
                ranked: None,
            };
            state::set_shares(cx, &identity, &operator, value)?;
            state::store_validator(cx, p, &identity, &mut v)?;
            cx.emit(b"staking/register", &borsh_bytes(&(identity, operator, value)))?;
            Ok(vec![])
        }
        StakingCall::Delegate { validator } => {
            let amount = cx.value();
            if amount < p.min_delegation {
                return Err(StakingError::DelegationTooSmall { sent: amount, min: p.min_delegation });
            }
            let mut v = state::existing_validator(cx, &validator)?;
            let bought = if v.total_shares == 0 {
                amount
            } else if v.tokens == 0 {
                return Err(StakingError::SlashedToZero(validator));
            } else {
                mul_div(amount, v.total_shares, v.tokens).ok_or(StakingError::Overflow("shares for a delegation"))?
            };
            let delegator = cx.caller();
            let held = state::shares(cx, &validator, &delegator)?;
            v.tokens = v.tokens.checked_add(amount).ok_or(StakingError::Overflow("validator tokens"))?;
            v.total_shares = v.total_shares.checked_add(bought).ok_or(StakingError::Overflow("validator shares"))?;
            state::set_shares(cx, &validator, &delegator, held + bought)?;
            state::store_validator(cx, p, &validator, &mut v)?;
            cx.emit(b"staking/delegate", &borsh_bytes(&(validator, delegator, amount, bought)))?;
            Ok(borsh_bytes(&bought))
        }
        StakingCall::Unbond { validator, shares } => {
            if shares == 0 {
                return Err(StakingError::ZeroShares);
            }
            let mut v = state::existing_validator(cx, &validator)?;
            let delegator = cx.caller();
            let held = state::shares(cx, &validator, &delegator)?;
            if shares > held {
                return Err(StakingError::NotEnoughShares { delegator, validator, held, asked: shares });
            }
            let amount = state::tokens_of(&v, shares)?;
            let now = cx.epoch();
            let mature = now.checked_add(p.unbonding_epochs).ok_or(StakingError::Overflow("maturity epoch"))?;
            if amount > 0 {
                // Into the pool of this validator and epoch, at the pool's share price (1 token
                // per share until a slash; never more, so at least one share per token).
                let mut pool = state::pool(cx, &validator, now)?;
                let bought = if pool.shares == 0 {
                    amount
                } else if pool.tokens == 0 {
                    return Err(StakingError::PoolSlashedToZero { validator, epoch: now });
                } else {
                    mul_div(amount, pool.shares, pool.tokens).ok_or(StakingError::Overflow("unbonding pool shares"))?
                };
                pool.tokens = pool.tokens.checked_add(amount).ok_or(StakingError::Overflow("unbonding pool"))?;
                pool.shares = pool.shares.checked_add(bought).ok_or(StakingError::Overflow("unbonding pool"))?;
                let key = state::unbonding_key(&validator, &delegator, mature);
                let entry = match state::load::<Unbonding>(cx, &key, "unbonding")? {
                    Some(mut same_epoch) => {
                        same_epoch.shares += bought; // ≤ pool.shares, which did not overflow
                        same_epoch
                    }
                    None => {
                        count_unbondings(cx, &validator, &delegator, p.max_unbonding_entries)?;
                        cx.set(&state::queue_key(mature, &validator, &delegator), &[])?;
                        Unbonding { start_epoch: now, shares: bought }
                    }
                };
                state::save(cx, &key, &entry)?;
                state::set_pool(cx, &validator, now, &pool)?;
            }
            // shares ≤ held ≤ total_shares, so amount ≤ tokens: these fail only on corrupt state.
            v.tokens = v.tokens.checked_sub(amount).ok_or(StakingError::Corrupt("validator tokens"))?;
            v.total_shares = v.total_shares.checked_sub(shares).ok_or(StakingError::Corrupt("validator shares"))?;
            state::set_shares(cx, &validator, &delegator, held - shares)?;
            state::store_validator(cx, p, &validator, &mut v)?;
            cx.emit(b"staking/unbond", &borsh_bytes(&(validator, delegator, shares, amount, mature)))?;
            Ok(borsh_bytes(&amount))
        }
        StakingCall::Unjail { validator } => {
            let mut v = state::existing_validator(cx, &validator)?;
            only_operator(cx, &validator, &v)?;
            let since = v.jailed_since.ok_or(StakingError::NotJailed(validator))?;
            let (now, from) = (cx.epoch(), since.saturating_add(p.jail_epochs));
            if now < from {
                return Err(StakingError::StillJailed { validator, since, from, now });
            }
            let self_bond = state::self_bond(cx, &validator, &v)?;
            if self_bond < p.min_self_bond {
                return Err(StakingError::SelfBondBelowMin { validator, self_bond, min: p.min_self_bond });
            }
            v.jailed_since = None;
            state::store_validator(cx, p, &validator, &mut v)?;
            cx.emit(b"staking/unjail", &validator.0)?;
            Ok(vec![])
        }
        StakingCall::SetCommission { validator, commission_bps } => {
            let mut v = state::existing_validator(cx, &validator)?;
            only_operator(cx, &validator, &v)?;
            if commission_bps > p.max_commission_bps {
                return Err(StakingError::CommissionTooHigh { got: commission_bps, max: p.max_commission_bps });
            }
            v.commission_bps = commission_bps;
            state::store_validator(cx, p, &validator, &mut v)?;
            Ok(vec![])
        }
        StakingCall::Slash { validator, infraction_epoch, fraction_bps, jail } => {
            let slasher = module_address(&p.slasher);
            if cx.caller() != slasher {
                return Err(StakingError::NotSlasher { slasher: p.slasher.clone(), address: slasher, caller: cx.caller() });
            }
            let burned = slash(cx, p, &validator, infraction_epoch, fraction_bps, jail)?;
            Ok(borsh_bytes(&burned))
        }
        StakingCall::UpdateParams { params_json } => {
            let governance = module_address(&p.governance);
            if cx.caller() != governance {
                return Err(StakingError::NotGovernance { governance: p.governance.clone(), address: governance, caller: cx.caller() });
            }
            let updated = p.updated(&params_json)?;
            state::save(cx, state::PARAMS, &updated)?;
            cx.emit(b"staking/params", params_json.as_bytes())?;
            Ok(vec![])
        }
        StakingCall::BondedDelegations { delegator } => Ok(borsh_bytes(&bonded_delegations(cx, &delegator)?)),
    }
}

/// `delegator`'s nonzero delegations to the current epoch's set, in set order: the set bounds
/// the walk (a delegator's delegations are keyed by validator first, so this is the bounded
/// way to find them without a reverse index).
pub fn bonded_delegations(cx: &mut dyn ModuleContext, delegator: &Address) -> Result<Vec<(PublicKey, Amount)>> {
    let epoch = cx.epoch();
    let set = cx.validator_set(epoch)?.unwrap_or_default();
    let mut out = Vec::new();
    for member in &set {
        let shares = state::shares(cx, &member.identity, delegator)?;
        if shares == 0 {
            continue;
        }
        // With staking as the validator source every member is registered here; on a chain
        // whose set comes from elsewhere, a member staking does not know holds no delegation.
        let Some(v) = state::validator(cx, &member.identity)? else { continue };
        let tokens = state::tokens_of(&v, shares)?;
        if tokens > 0 {
            out.push((member.identity, tokens));
        }
    }
    Ok(out)
}

/// Refuses a new unbonding entry past `max` for (validator, delegator); reads at most `max`
/// keys.
fn count_unbondings(cx: &mut dyn ModuleContext, validator: &PublicKey, delegator: &Address, max: u32) -> Result<()> {
    let prefix = state::unbonding_prefix_of(validator, delegator);
    let mut after: Option<Vec<u8>> = None;
    for _ in 0..max {
        match cx.next_key(&prefix, after.as_deref())? {
            Some(key) => after = Some(key),
            None => return Ok(()),
        }
    }
    Err(StakingError::TooManyUnbondings { delegator: *delegator, validator: *validator, max })
}

fn only_operator(cx: &mut dyn ModuleContext, validator: &PublicKey, v: &Validator) -> Result<()> {
    if cx.caller() != v.operator {
        return Err(StakingError::NotOperator { validator: *validator, operator: v.operator, caller: cx.caller() });
    }
    Ok(())
}

/// Burns `fraction_bps` of `validator`'s tokens and of its unbonding pools that started at
/// or after `infraction_epoch` (every entry in them loses the same fraction), jails it if
/// asked; returns the tokens burned. Applying the same infraction twice slashes twice: the
/// slasher module must key on the evidence (its hash) and call once.
///
/// Bounded whatever the number of delegators: the infraction is at most `unbonding_epochs`
/// old, so at most `unbonding_epochs + 1` pools are touched (one per start epoch).
fn slash(cx: &mut dyn ModuleContext, p: &crate::Params, validator: &PublicKey, infraction: u64, bps: u16, jail: bool) -> Result<Amount> {
    if bps > BPS {
        return Err(StakingError::BadFraction(bps));
    }
    let now = cx.epoch();
    if infraction > now {
        return Err(StakingError::FutureInfraction { infraction, now });
    }
    if infraction.saturating_add(p.unbonding_epochs) < now {
        return Err(StakingError::StaleInfraction { infraction, now, window: p.unbonding_epochs });
    }
    let mut v = state::existing_validator(cx, validator)?;
    let mut burned = bps_of(v.tokens, bps);
    v.tokens -= burned;
    // Pools sort by start epoch: begin right after the one before the infraction.
    let prefix = state::pool_prefix(validator);
    let mut after = infraction.checked_sub(1).map(|before| state::pool_key(validator, before));
    for _ in 0..=p.unbonding_epochs {
        let Some(key) = cx.next_key(&prefix, after.as_deref())? else { break };
        let mut pool: Pool = state::load(cx, &key, "unbonding pool")?.ok_or(StakingError::Corrupt("unbonding pool"))?;
        let cut = bps_of(pool.tokens, bps);
        if cut > 0 {
            pool.tokens -= cut;
            burned = burned.checked_add(cut).ok_or(StakingError::Overflow("slashed amount"))?;
            state::save(cx, &key, &pool)?;
        }
        after = Some(key);
    }
    if jail {
        v.jailed_since = Some(now);
    }
    state::store_validator(cx, p, validator, &mut v)?;
    if burned > 0 {
        cx.burn(burned)?;
    }
    cx.emit(b"staking/slash", &borsh_bytes(&(*validator, infraction, bps, burned, jail)))?;
    Ok(burned)
}

fn borsh_bytes<T: BorshSerialize>(value: &T) -> Vec<u8> {
    aether_primitives::codec::encode(value)
}
