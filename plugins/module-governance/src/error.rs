//! The module's errors. Each becomes the failed receipt's reason (`module governance: ...`).

use aether_api::module::ModuleError;
use aether_primitives::types::{Address, Amount};

use crate::state::Status;

/// Why a governance call, hook or query failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GovernanceError {
    /// The context refused (out of gas, a refused burn, ...): passed on unchanged.
    #[error(transparent)]
    Context(#[from] ModuleError),
    #[error("governance genesis params: {0}")]
    Params(String),
    #[error("governance needs the mint grant (`\"mint\": true` in its genesis module entry): a vetoed proposal's deposit is burned")]
    NeedsMint,
    #[error("governance is not initialised (its init_genesis did not run)")]
    NotInitialised,
    #[error("stored {0} does not decode: the module's state is corrupt")]
    Corrupt(&'static str),
    #[error("the deposit (the call's value) is {sent}; at least min_deposit = {min} is needed")]
    DepositTooSmall { sent: Amount, min: Amount },
    #[error("{method} takes no value; the transaction sent {sent} (it is refunded)")]
    UnexpectedValue { method: &'static str, sent: Amount },
    #[error("the title must be 1 to {max} bytes without control characters; got {got} bytes")]
    BadTitle { got: usize, max: usize },
    #[error("a proposal carries at most {max} actions (max_actions); got {got}")]
    TooManyActions { got: usize, max: u32 },
    #[error("action {index}: {why}")]
    BadAction { index: usize, why: String },
    #[error("{open} proposals are in voting, the most allowed (max_open_proposals); wait for one to close")]
    TooManyOpen { open: u32 },
    #[error("no proposal {0}")]
    UnknownProposal(u64),
    #[error("proposal {proposal} is not in voting (it is {status}); votes are taken until the end of epoch {voting_end_epoch}")]
    VotingClosed { proposal: u64, status: Status, voting_end_epoch: u64 },
    #[error(
        "{caller} has no voting power: it is neither a validator of epoch {epoch}'s set (voting from its identity key's address) nor a delegator to one"
    )]
    NoVotingPower { caller: Address, epoch: u64 },
    #[error(
        "proposal {proposal} already counts {max} delegator votes, the most one proposal takes; a delegator not counted is represented by its validator's vote"
    )]
    DelegatorVotesFull { proposal: u64, max: u32 },
    #[error(
        "{delegator} delegates to {count} validators of the set; a delegator vote counts at most {max} (its other delegations would be left out): consolidate delegations or let the validators vote"
    )]
    TooManyDelegations { delegator: Address, count: usize, max: usize },
    #[error("staking's answer to BondedDelegations does not decode: {0}")]
    StakingAnswer(String),
    #[error("Execute is governance's own call (it runs a passed proposal's actions); the caller is {0}")]
    NotSelf(Address),
    #[error("proposal {0} is not due for execution in this block")]
    NotDue(u64),
    #[error("action {index} ({module}) failed: {error}")]
    ActionFailed { index: usize, module: String, error: ModuleError },
    #[error("governance invariant broken: {0}")]
    Invariant(String),
    #[error("amount arithmetic overflows ({0})")]
    Overflow(&'static str),
}

impl From<GovernanceError> for ModuleError {
    fn from(e: GovernanceError) -> ModuleError {
        match e {
            GovernanceError::Context(inner) => inner,
            other => ModuleError::Failed(other.to_string()),
        }
    }
}

/// Shorthand for the module's results.
pub type Result<T, E = GovernanceError> = std::result::Result<T, E>;
