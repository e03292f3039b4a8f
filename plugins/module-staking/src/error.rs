//! The module's errors. Each becomes the failed receipt's reason (`module staking: ...`).

use aether_api::module::ModuleError;
use aether_primitives::types::{Address, Amount, PublicKey};

/// Why a staking call, hook or query failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StakingError {
    /// The context refused (out of gas, a refused mint, ...): passed on unchanged.
    #[error(transparent)]
    Context(#[from] ModuleError),
    #[error("staking genesis params: {0}")]
    Params(String),
    #[error(
        "staking needs the mint grant (`\"mint\": true` in its genesis module entry): it mints the genesis \
         validators' stake into its account, mints rewards and burns slashed stake"
    )]
    NeedsMint,
    #[error("staking is not initialised (its init_genesis did not run)")]
    NotInitialised,
    #[error("stored {0} does not decode: the module's state is corrupt")]
    Corrupt(&'static str),
    #[error("{method} takes no value; the transaction sent {sent} (it is refunded)")]
    UnexpectedValue { method: &'static str, sent: Amount },
    #[error("the self-bond (the call's value) is {sent}; at least min_self_bond = {min} is needed")]
    SelfBondTooSmall { sent: Amount, min: Amount },
    #[error("the delegation (the call's value) is {sent}; at least min_delegation = {min} is needed")]
    DelegationTooSmall { sent: Amount, min: Amount },
    #[error("identity {0} is already registered")]
    AlreadyRegistered(PublicKey),
    #[error("identity {0} is not a valid ed25519 key")]
    BadIdentity(PublicKey),
    #[error("the identity signature does not verify: identity {0} must sign staking::registration_message(operator = the caller, consensus_key)")]
    BadIdentitySignature(PublicKey),
    #[error("validator name must be 1 to {max} bytes without control characters; got {got:?}")]
    BadName { got: String, max: usize },
    #[error("commission {got} bps is above max_commission_bps = {max}")]
    CommissionTooHigh { got: u16, max: u16 },
    #[error("no validator with identity {0}")]
    UnknownValidator(PublicKey),
    #[error("validator {0} was slashed to zero tokens; it takes no delegations")]
    SlashedToZero(PublicKey),
    #[error("{delegator} holds {held} shares of validator {validator}; cannot unbond {asked}")]
    NotEnoughShares { delegator: Address, validator: PublicKey, held: u128, asked: u128 },
    #[error("validator {validator}'s unbonding pool of epoch {epoch} was slashed to zero; unbond from the next epoch")]
    PoolSlashedToZero { validator: PublicKey, epoch: u64 },
    #[error("cannot unbond 0 shares")]
    ZeroShares,
    #[error("{delegator} already has {max} unbonding entries from validator {validator} (max_unbonding_entries); wait for one to mature")]
    TooManyUnbondings { delegator: Address, validator: PublicKey, max: u32 },
    #[error("only validator {validator}'s operator {operator} may do this; the caller is {caller}")]
    NotOperator { validator: PublicKey, operator: Address, caller: Address },
    #[error("validator {0} is not jailed")]
    NotJailed(PublicKey),
    #[error("validator {validator} was jailed in epoch {since}; it may unjail from epoch {from} (jail_epochs); this is epoch {now}")]
    StillJailed { validator: PublicKey, since: u64, from: u64, now: u64 },
    #[error("validator {validator}'s self-bond is {self_bond}; unjailing needs min_self_bond = {min}")]
    SelfBondBelowMin { validator: PublicKey, self_bond: Amount, min: Amount },
    #[error("only the slasher module {slasher:?} (address {address}) may slash; the caller is {caller}")]
    NotSlasher { slasher: String, address: Address, caller: Address },
    #[error("only the governance module {governance:?} (address {address}) may update parameters; the caller is {caller}")]
    NotGovernance { governance: String, address: Address, caller: Address },
    #[error("fraction_bps {0} is above 10000 (100%)")]
    BadFraction(u16),
    #[error("infraction epoch {infraction} is in the future (this is epoch {now})")]
    FutureInfraction { infraction: u64, now: u64 },
    #[error("infraction epoch {infraction} is older than the unbonding window (epoch {now} - unbonding_epochs {window}): that stake may already be paid out")]
    StaleInfraction { infraction: u64, now: u64, window: u64 },
    #[error("staking invariant broken: {0}")]
    Invariant(String),
    #[error("amount arithmetic overflows ({0})")]
    Overflow(&'static str),
}

impl From<StakingError> for ModuleError {
    fn from(e: StakingError) -> ModuleError {
        match e {
            StakingError::Context(inner) => inner,
            other => ModuleError::Failed(other.to_string()),
        }
    }
}

/// Shorthand for the module's results.
pub type Result<T, E = StakingError> = std::result::Result<T, E>;
