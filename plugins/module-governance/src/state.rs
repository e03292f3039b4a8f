//! Storage layout and codecs. Everything lives in the module's own storage (under
//! `module_address("governance")`), borsh-encoded; numbers in keys are big-endian so keys
//! sort by them:
//!
//! | key | value | what |
//! |---|---|---|
//! | `params` | [`Params`] | genesis parameters |
//! | `next_id` | `u64` | the id the next proposal gets (ids start at 1) |
//! | `open` | `u32` | proposals in voting |
//! | `p/` ‖ id (8) | [`Proposal`] | every proposal ever submitted |
//! | `v/` ‖ id (8) ‖ voter identity (32) | [`VoteOption`] | a validator's vote (a new vote replaces it) |
//! | `w/` ‖ id (8) ‖ delegator (20) | [`DelegatorVote`] | a delegator's vote with its delegations at vote time (a new vote replaces it) |
//! | `n/` ‖ id (8) | `u32` | delegator votes on the proposal (at most [`MAX_DELEGATOR_VOTES`]) |
//! | `e/` ‖ voting end epoch (8) ‖ id (8) | empty | proposals in voting, by the epoch their voting ends |
//! | `q/` ‖ execution height (8) ‖ id (8) | empty | passed proposals waiting for their height |
//! | `x/` ‖ id (8) | empty | proposals taken from `q/` by this block's `begin_block`, run by its `end_block` |

use aether_api::module::ModuleContext;
use aether_primitives::types::{Address, Amount, Height, PublicKey};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::calls::ProposalAction;
use crate::error::{GovernanceError, Result};
use crate::params::Params;

pub const PARAMS: &[u8] = b"params";
pub const NEXT_ID: &[u8] = b"next_id";
pub const OPEN: &[u8] = b"open";
pub const PROPOSALS: &[u8] = b"p/";
pub const VOTES: &[u8] = b"v/";
pub const DELEGATOR_VOTES: &[u8] = b"w/";
pub const DELEGATOR_VOTE_COUNTS: &[u8] = b"n/";

/// Delegator votes one proposal takes at most: the tally reads each, so this bounds its work
/// (about 43k gas per vote of 16 entries: [`MAX_TALLIES_PER_EPOCH`](crate::tally::MAX_TALLIES_PER_EPOCH)
/// full proposals take about 88M of the epoch hook's 200M, the validators' votes the rest; see
/// [`crate::tally`]). A delegator already counted may still change its vote when the
/// proposal is full.
pub const MAX_DELEGATOR_VOTES: u32 = 128;
/// Validators of the set one delegator vote may draw on at most: each is an entry of the
/// stored vote that the tally reads, so this bounds one vote's size and tally cost.
pub const MAX_VOTE_DELEGATIONS: usize = 16;
pub const VOTING_ENDS: &[u8] = b"e/";
pub const QUEUE: &[u8] = b"q/";
pub const EXECUTING: &[u8] = b"x/";

/// A vote. Borsh: one byte, Yes = 0, No = 1, Abstain = 2, NoWithVeto = 3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub enum VoteOption {
    Yes,
    No,
    Abstain,
    /// A no that, above `veto_bps` of all votes, rejects the proposal and burns its deposit.
    NoWithVeto,
}

/// A delegator's vote, recorded with what it had bonded when it voted: `delegations` are
/// (validator identity, tokens) with the validators of the voting epoch's set, as staking's
/// `BondedDelegations` answered. At the tally each amount moves from its validator's power to
/// `option` (capped by what that validator has left in the tally epoch's set).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct DelegatorVote {
    pub option: VoteOption,
    pub delegations: Vec<(PublicKey, Amount)>,
}

/// Where a proposal stands.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Open for votes until the end of its `voting_end_epoch`; holds its deposit.
    Voting,
    /// Tallied and rejected (quorum not met or threshold not reached); deposit refunded.
    Rejected { reason: String },
    /// Tallied and vetoed; deposit burned.
    Vetoed,
    /// Tallied and passed (deposit refunded); its actions run in the `end_block` of
    /// `execute_at`.
    Passed { execute_at: Height },
    /// Its actions ran and all succeeded, in the block at `height`.
    Executed { height: Height },
    /// An action failed at `height` (or the execution did not finish): nothing any action
    /// did is kept.
    Failed { height: Height, reason: String },
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Voting => write!(f, "in voting"),
            Status::Rejected { reason } => write!(f, "rejected: {reason}"),
            Status::Vetoed => write!(f, "vetoed"),
            Status::Passed { execute_at } => write!(f, "passed, executing at height {execute_at}"),
            Status::Executed { height } => write!(f, "executed at height {height}"),
            Status::Failed { height, reason } => write!(f, "failed at height {height}: {reason}"),
        }
    }
}

/// The stake behind each option at the tally (the tally epoch's set; `total` is the set's
/// whole stake).
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Tally {
    pub epoch: u64,
    #[serde(with = "aether_primitives::types::serde_helpers::amount")]
    pub yes: Amount,
    #[serde(with = "aether_primitives::types::serde_helpers::amount")]
    pub no: Amount,
    #[serde(with = "aether_primitives::types::serde_helpers::amount")]
    pub abstain: Amount,
    #[serde(with = "aether_primitives::types::serde_helpers::amount")]
    pub no_with_veto: Amount,
    #[serde(with = "aether_primitives::types::serde_helpers::amount")]
    pub total: Amount,
}

/// A proposal (its id is the key).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Proposal {
    pub proposer: Address,
    pub title: String,
    pub actions: Vec<ProposalAction>,
    /// Held in the module's account while in voting; refunded or burned at the tally.
    pub deposit: Amount,
    pub submit_height: Height,
    pub submit_epoch: u64,
    /// Voting ends with this epoch (its `end_epoch` hook tallies).
    pub voting_end_epoch: u64,
    pub tally: Option<Tally>,
    pub status: Status,
}

impl Proposal {
    /// Whether the module's account still holds this proposal's deposit.
    pub fn holds_deposit(&self) -> bool {
        self.status == Status::Voting
    }
}

pub fn proposal_key(id: u64) -> Vec<u8> {
    [PROPOSALS, &id.to_be_bytes()].concat()
}
pub fn vote_key(id: u64, voter: &[u8; 32]) -> Vec<u8> {
    [VOTES, &id.to_be_bytes(), voter].concat()
}
pub fn delegator_votes_prefix(id: u64) -> Vec<u8> {
    [DELEGATOR_VOTES, &id.to_be_bytes()].concat()
}
pub fn delegator_vote_key(id: u64, delegator: &Address) -> Vec<u8> {
    [DELEGATOR_VOTES, &id.to_be_bytes(), &delegator.0].concat()
}
pub fn delegator_vote_count_key(id: u64) -> Vec<u8> {
    [DELEGATOR_VOTE_COUNTS, &id.to_be_bytes()].concat()
}
pub fn voting_end_prefix(epoch: u64) -> Vec<u8> {
    [VOTING_ENDS, &epoch.to_be_bytes()].concat()
}
pub fn voting_end_key(epoch: u64, id: u64) -> Vec<u8> {
    [VOTING_ENDS, &epoch.to_be_bytes(), &id.to_be_bytes()].concat()
}
pub fn queue_key(height: Height, id: u64) -> Vec<u8> {
    [QUEUE, &height.to_be_bytes(), &id.to_be_bytes()].concat()
}
pub fn executing_key(id: u64) -> Vec<u8> {
    [EXECUTING, &id.to_be_bytes()].concat()
}

fn be(bytes: &[u8], what: &'static str) -> Result<u64> {
    Ok(u64::from_be_bytes(bytes.try_into().map_err(|_| GovernanceError::Corrupt(what))?))
}

/// `(a, b)` of a `prefix ‖ a (8) ‖ b (8)` key (`e/` and `q/`).
pub fn parse_pair_key(prefix: &[u8], key: &[u8], what: &'static str) -> Result<(u64, u64)> {
    let rest = key.strip_prefix(prefix).filter(|r| r.len() == 16).ok_or(GovernanceError::Corrupt(what))?;
    Ok((be(&rest[..8], what)?, be(&rest[8..], what)?))
}

/// The id of a `prefix ‖ id (8)` key (`p/` and `x/`).
pub fn parse_id_key(prefix: &[u8], key: &[u8], what: &'static str) -> Result<u64> {
    let rest = key.strip_prefix(prefix).ok_or(GovernanceError::Corrupt(what))?;
    be(rest, what)
}

/// Reads and decodes one value.
pub fn load<T: BorshDeserialize>(cx: &mut dyn ModuleContext, key: &[u8], what: &'static str) -> Result<Option<T>> {
    match cx.get(key)? {
        None => Ok(None),
        Some(bytes) => borsh::from_slice(&bytes).map(Some).map_err(|_| GovernanceError::Corrupt(what)),
    }
}

/// Encodes and writes one value.
pub fn save<T: BorshSerialize>(cx: &mut dyn ModuleContext, key: &[u8], value: &T) -> Result<()> {
    let bytes = borsh::to_vec(value).map_err(|_| GovernanceError::Corrupt("value to store"))?;
    Ok(cx.set(key, &bytes)?)
}

pub fn params(cx: &mut dyn ModuleContext) -> Result<Params> {
    load(cx, PARAMS, "params")?.ok_or(GovernanceError::NotInitialised)
}

pub fn proposal(cx: &mut dyn ModuleContext, id: u64) -> Result<Proposal> {
    load(cx, &proposal_key(id), "proposal")?.ok_or(GovernanceError::UnknownProposal(id))
}

pub fn open_count(cx: &mut dyn ModuleContext) -> Result<u32> {
    Ok(load(cx, OPEN, "open count")?.unwrap_or(0))
}

pub fn set_open_count(cx: &mut dyn ModuleContext, open: u32) -> Result<()> {
    save(cx, OPEN, &open)
}

/// Delegator votes recorded on proposal `id`.
pub fn delegator_vote_count(cx: &mut dyn ModuleContext, id: u64) -> Result<u32> {
    Ok(load(cx, &delegator_vote_count_key(id), "delegator vote count")?.unwrap_or(0))
}
