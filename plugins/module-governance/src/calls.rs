//! Transactions: the borsh-encoded [`GovernanceCall`] and what each does.

use aether_api::chain::{ChainCall, ChainParams, CHAIN_MODULE};
use aether_api::module::{valid_module_name, ModuleContext};
use aether_module_staking::StakingCall;
use aether_primitives::types::{Address, Amount, PublicKey};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::error::{GovernanceError, Result};
use crate::state::{self, DelegatorVote, Proposal, Status, VoteOption};
use crate::NAME;

/// Longest call accepted (a proposal of 8 actions of a few hundred bytes each fits easily).
pub const MAX_CALL_BYTES: usize = 64 * 1024;
/// Longest call bytes one action may carry.
pub const MAX_ACTION_CALL_BYTES: usize = 4_096;
/// Longest proposal title, in bytes.
pub const MAX_TITLE_BYTES: usize = 200;

/// One call a proposal makes when it executes: `call` is sent to module `module` with no
/// value, as the governance module (the callee sees `module_address("governance")` as its
/// caller).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ProposalAction {
    pub module: String,
    #[serde(with = "aether_primitives::types::serde_helpers::bytes")]
    pub call: Vec<u8>,
}

/// A call to the governance module: `Action::Module { module: "governance", call:
/// borsh(GovernanceCall), value, .. }`. Borsh encodes the variant as one byte in declaration
/// order (Submit = 0, Vote = 1, Execute = 2), then the fields in order (`String` and `Vec` a
/// `u32` LE length then the items, `u64` 8 bytes LE, [`VoteOption`] one byte).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum GovernanceCall {
    /// Opens a proposal; the value is its deposit (at least `min_deposit`). Returns the id
    /// (borsh `u64`).
    Submit { title: String, actions: Vec<ProposalAction> },
    /// Votes on a proposal in voting (again: replaces the caller's vote). A validator of the
    /// current epoch's set votes from its identity key's address; anyone else votes as a
    /// delegator, with its delegations to that set (staking's `BondedDelegations`), which the
    /// tally moves from their validators' votes to this one.
    Vote { proposal: u64, option: VoteOption },
    /// Internal: only the module itself calls it (from its `end_block`), to run a due
    /// proposal's actions so that a failing action undoes them all.
    Execute { proposal: u64 },
}

impl GovernanceCall {
    pub fn submit(title: &str, actions: Vec<ProposalAction>) -> Self {
        GovernanceCall::Submit { title: title.into(), actions }
    }
    pub fn vote(proposal: u64, option: VoteOption) -> Self {
        GovernanceCall::Vote { proposal, option }
    }
    /// The bytes for `Action::Module::call`.
    pub fn encode(&self) -> Vec<u8> {
        aether_primitives::codec::encode(self)
    }
    pub fn decode(bytes: &[u8]) -> Result<Self, aether_api::module::ModuleError> {
        aether_primitives::codec::decode("governance call", bytes, MAX_CALL_BYTES)
            .map_err(|e| aether_api::module::ModuleError::BadCall(e.to_string()))
    }
    fn method(&self) -> &'static str {
        match self {
            GovernanceCall::Submit { .. } => "Submit",
            GovernanceCall::Vote { .. } => "Vote",
            GovernanceCall::Execute { .. } => "Execute",
        }
    }
}

impl ProposalAction {
    /// An action calling `module` with `call`.
    pub fn new(module: &str, call: Vec<u8>) -> Self {
        ProposalAction { module: module.into(), call }
    }
    /// An action setting the chain parameters (from the block after the one that executes the
    /// proposal). Needs genesis's `"govern_chain": true` on the governance module.
    pub fn set_chain_params(params: ChainParams) -> Self {
        ProposalAction::new(CHAIN_MODULE, ChainCall::SetParams(params).encode())
    }
    /// An action scheduling module `module` to switch to `version` at the start of block
    /// `height` (which must be after the block that executes the proposal), running that
    /// version's migration once. Needs the `govern_chain` grant, like
    /// [`ProposalAction::set_chain_params`].
    pub fn upgrade_module(module: &str, version: u32, height: u64) -> Self {
        ProposalAction::new(CHAIN_MODULE, ChainCall::ScheduleUpgrade { module: module.into(), version, height }.encode())
    }
    /// An action making epochs `length` blocks long from the epoch after the one that executes
    /// the proposal (the current epoch keeps its end). Needs the `govern_chain` grant, like
    /// [`ProposalAction::set_chain_params`].
    pub fn set_epoch_length(length: u64) -> Self {
        ProposalAction::new(CHAIN_MODULE, ChainCall::SetEpochLength { length }.encode())
    }
}

/// Runs one call; returns its borsh-encoded result (the new id for `Submit`, empty for the
/// others).
pub fn run(cx: &mut dyn ModuleContext, call: GovernanceCall) -> Result<Vec<u8>> {
    let p = state::params(cx)?;
    if !matches!(call, GovernanceCall::Submit { .. }) && cx.value() > 0 {
        return Err(GovernanceError::UnexpectedValue { method: call.method(), sent: cx.value() });
    }
    match call {
        GovernanceCall::Submit { title, actions } => {
            let deposit = cx.value();
            if deposit < p.min_deposit {
                return Err(GovernanceError::DepositTooSmall { sent: deposit, min: p.min_deposit });
            }
            if title.is_empty() || title.len() > MAX_TITLE_BYTES || title.chars().any(char::is_control) {
                return Err(GovernanceError::BadTitle { got: title.len(), max: MAX_TITLE_BYTES });
            }
            if actions.len() > p.max_actions as usize {
                return Err(GovernanceError::TooManyActions { got: actions.len(), max: p.max_actions });
            }
            for (index, action) in actions.iter().enumerate() {
                let why = if !valid_module_name(&action.module) {
                    format!("module {:?} is not a module name ([a-z0-9_]{{1,32}})", action.module)
                } else if action.module == NAME {
                    "a proposal may not call the governance module itself".to_string()
                } else if action.call.len() > MAX_ACTION_CALL_BYTES {
                    format!("the call is {} bytes; at most {MAX_ACTION_CALL_BYTES}", action.call.len())
                } else if let Some(why) = chain_action_refused(&action.call).filter(|_| action.module == CHAIN_MODULE) {
                    // Refused now rather than after a vote: the ledger would refuse it at execution.
                    why
                } else {
                    continue;
                };
                return Err(GovernanceError::BadAction { index, why });
            }
            let open = state::open_count(cx)?;
            if open >= p.max_open_proposals {
                return Err(GovernanceError::TooManyOpen { open });
            }
            let id: u64 = state::load(cx, state::NEXT_ID, "next id")?.unwrap_or(1);
            let epoch = cx.epoch();
            // voting_epochs ≤ 10,000, so this overflows only past u64::MAX - 10,000 epochs.
            let voting_end_epoch = epoch.checked_add(p.voting_epochs - 1).ok_or(GovernanceError::Overflow("voting end epoch"))?;
            let proposal = Proposal {
                proposer: cx.caller(),
                title,
                actions,
                deposit,
                submit_height: cx.height(),
                submit_epoch: epoch,
                voting_end_epoch,
                tally: None,
                status: Status::Voting,
            };
            state::save(cx, &state::proposal_key(id), &proposal)?;
            state::save(cx, state::NEXT_ID, &(id + 1))?;
            state::set_open_count(cx, open + 1)?;
            cx.set(&state::voting_end_key(voting_end_epoch, id), &[])?;
            cx.emit(b"governance/submit", &borsh_bytes(&(id, proposal.proposer, deposit, voting_end_epoch)))?;
            Ok(borsh_bytes(&id))
        }
        GovernanceCall::Vote { proposal: id, option } => {
            let proposal = state::proposal(cx, id)?;
            if proposal.status != Status::Voting {
                // In the block that executes it, a proposal carries `begin_block`'s temporary
                // mark until `end_block` runs it: say what is happening, not the mark.
                let status = match proposal.status {
                    Status::Failed { height, reason } if height == cx.height() && reason == crate::execution::UNFINISHED => {
                        Status::Passed { execute_at: height }
                    }
                    other => other,
                };
                return Err(GovernanceError::VotingClosed { proposal: id, status, voting_end_epoch: proposal.voting_end_epoch });
            }
            let (caller, epoch) = (cx.caller(), cx.epoch());
            let set = cx.validator_set(epoch)?.unwrap_or_default();
            // A validator of the set votes from its identity key's address, with its whole
            // stake less what its voting delegators take; any other caller votes as a
            // delegator.
            if let Some(voter) = set.iter().find(|v| v.identity.address() == caller).map(|v| v.identity) {
                state::save(cx, &state::vote_key(id, &voter.0), &option)?;
                cx.emit(b"governance/vote", &borsh_bytes(&(id, voter, option)))?;
                return Ok(vec![]);
            }
            delegator_vote(cx, id, caller, epoch, option)?;
            Ok(vec![])
        }
        GovernanceCall::Execute { proposal: id } => {
            let own = cx.own_address();
            if cx.caller() != own {
                return Err(GovernanceError::NotSelf(cx.caller()));
            }
            // Removed first, so an action cannot run the same proposal again from inside.
            let key = state::executing_key(id);
            if cx.get(&key)?.is_none() {
                return Err(GovernanceError::NotDue(id));
            }
            cx.remove(&key)?;
            let proposal = state::proposal(cx, id)?;
            for (index, action) in proposal.actions.iter().enumerate() {
                cx.call_module(&action.module, &action.call).map_err(|error| GovernanceError::ActionFailed {
                    index,
                    module: action.module.clone(),
                    error,
                })?;
            }
            Ok(vec![])
        }
    }
}

/// Records a delegator's vote with its delegations to the current set, as staking reports
/// them now (the snapshot the tally counts: see [`crate::tally`]).
fn delegator_vote(cx: &mut dyn ModuleContext, id: u64, delegator: Address, epoch: u64, option: VoteOption) -> Result<()> {
    let answer = cx.call_module(aether_module_staking::NAME, &StakingCall::bonded_delegations(delegator).encode())?;
    let delegations: Vec<(PublicKey, Amount)> = borsh::from_slice(&answer).map_err(|e| GovernanceError::StakingAnswer(e.to_string()))?;
    if delegations.is_empty() {
        return Err(GovernanceError::NoVotingPower { caller: delegator, epoch });
    }
    if delegations.len() > state::MAX_VOTE_DELEGATIONS {
        return Err(GovernanceError::TooManyDelegations { delegator, count: delegations.len(), max: state::MAX_VOTE_DELEGATIONS });
    }
    let key = state::delegator_vote_key(id, &delegator);
    if cx.get(&key)?.is_none() {
        let count = state::delegator_vote_count(cx, id)?;
        if count >= state::MAX_DELEGATOR_VOTES {
            return Err(GovernanceError::DelegatorVotesFull { proposal: id, max: state::MAX_DELEGATOR_VOTES });
        }
        state::save(cx, &state::delegator_vote_count_key(id), &(count + 1))?;
    }
    let tokens =
        delegations.iter().try_fold(0 as Amount, |sum, (_, t)| sum.checked_add(*t)).ok_or(GovernanceError::Overflow("delegated tokens"))?;
    state::save(cx, &key, &DelegatorVote { option, delegations })?;
    cx.emit(b"governance/delegator_vote", &borsh_bytes(&(id, delegator, option, tokens)))?;
    Ok(())
}

/// Why a call to the ledger's chain settings can never succeed, if it cannot: it does not
/// decode, or its parameters are out of bounds. (Whether the grant, the module and the height
/// hold is known only when it runs.)
fn chain_action_refused(call: &[u8]) -> Option<String> {
    match ChainCall::decode(call) {
        Err(e) => Some(e.to_string()),
        Ok(ChainCall::SetParams(params)) => params.validate().err().map(|e| format!("chain parameters refused: {e}")),
        Ok(ChainCall::ScheduleUpgrade { .. }) => None,
        Ok(ChainCall::SetEpochLength { length }) => (length == 0 || length > aether_primitives::types::MAX_EPOCH_LENGTH)
            .then(|| format!("epoch length {length} refused: it must be within 1..={}", aether_primitives::types::MAX_EPOCH_LENGTH)),
    }
}

pub(crate) fn borsh_bytes<T: BorshSerialize>(value: &T) -> Vec<u8> {
    aether_primitives::codec::encode(value)
}
