//! # aether-module-governance
//!
//! The governance runtime module (`"governance"`, version 1): anyone submits a proposal — a
//! title and a list of module calls — with a deposit; validators and delegators vote,
//! weighted by stake (a delegator's own vote overrides its validator's for its tokens);
//! at the end of the voting period the proposal is tallied against a quorum, a threshold and a
//! veto; a passed proposal's calls run as the governance module after a timelock, all or
//! nothing. A module that accepts calls from `module_address("governance")` thereby gets
//! on-chain parameter changes: staking's `UpdateParams` is the first. With genesis's
//! `"govern_chain": true`, actions to the ledger's `chain` pseudo-module change the chain
//! parameters, set the epoch length and schedule module upgrades
//! ([`ProposalAction::set_chain_params`], [`ProposalAction::set_epoch_length`],
//! [`ProposalAction::upgrade_module`]).
//!
//! **Status: first version.** Works through the real ledger (tests in `tests/`), with staking
//! as the validator source.
//!
//! - Params: [`Params`] (genesis `params` JSON; unknown fields refused, defaults when absent).
//! - Calls: [`GovernanceCall`], borsh-encoded ([`GovernanceCall::encode`]): `Submit { title,
//!   actions }` (value = deposit ≥ `min_deposit`), `Vote { proposal, option }`, and `Execute`,
//!   which only the module itself may call.
//! - Storage layout: [`state`]. Tally rules and bound: [`tally`]. Execution: [`execution`].
//! - Queries: `params`, `proposal` (id, 8 bytes LE), `proposals` (those in voting),
//!   `invariants` ([`invariants`]).
//!
//! **Timing.** A proposal submitted in epoch `s` takes votes until the end of epoch
//! `s + voting_epochs - 1` (transactions of that epoch's last block included); that block's
//! `end_epoch` hook tallies it with that epoch's validator set. A passed proposal is
//! scheduled at `h + timelock_heights`, `h` the tallying block's height, and its actions run
//! in the `end_block` hook of the block at that height: transactions of that block still see
//! the old state, the block's committed state has the change. (At most 16 tallies per epoch
//! and 4 executions per block; beyond that the rest wait one epoch / block.)
//!
//! **Voting power** (Cosmos x/gov's rule). The voter is the transaction's sender. A
//! validator votes from the address of its identity key (`identity.address()`, so with the
//! identity key, not a separate staking operator's), and must be in the current epoch's set
//! when it votes; its vote counts with its stake in the set of the epoch the tally runs in
//! (a validator no longer in that set counts for nothing). Any other sender votes as a
//! delegator: staking's `BondedDelegations` gives its tokens with each validator of the
//! current set, recorded with the vote (none: refused, "has no voting power"; more than
//! [`state::MAX_VOTE_DELEGATIONS`] validators: refused). At the tally those tokens leave
//! their validators' votes for the delegator's option; a delegator that does not vote
//! follows its validator. A new vote replaces the old (a delegator's refreshes its
//! snapshot). At most [`state::MAX_DELEGATOR_VOTES`] delegators vote per proposal. Rules,
//! the snapshot choice and costs: [`tally`]. A delegator vote costs about 190k gas with a
//! set of 2 and 470k with 16 delegations in a set of 16 (it walks the set: roughly 20k per
//! member), a validator's about 84k.
//!
//! **Events** (emitted by the module's address): `governance/submit` (borsh `(id, proposer,
//! deposit, voting_end_epoch)`), `governance/vote` (`(id, identity, option)`),
//! `governance/delegator_vote` (`(id, delegator address, option, tokens)`),
//! `governance/tally` (`(id, status text)`), `governance/executed` (`id`),
//! `governance/execution_failed` (`(id, reason)`).
//!
//! **Deposits.** Held in the module's account while in voting; refunded to the proposer when
//! the proposal is rejected (quorum or threshold) or passes; burned when vetoed. Burning
//! needs the mint grant: genesis must give the module `"mint": true`, or `init_genesis` fails
//! and the node refuses to start, saying so.
//!
//! ```
//! use std::sync::Arc;
//! use aether_module_governance::{Governance, GovernanceCall, ProposalAction, VoteOption};
//! use aether_module_staking::{Staking, StakingCall};
//! use aether_node::ledger::Ledger;
//! use aether_primitives::types::*;
//!
//! let validator = Keypair::from_seed([1; 32]);
//! let genesis = Genesis {
//!     chain_id: "doc".into(),
//!     genesis_time_ms: 0,
//!     accounts: vec![GenesisAccount { address: validator.address(), balance: 1_000_000 }],
//!     validators: vec![ValidatorEntry { name: "v1".into(), identity: validator.public(), consensus_key: validator.public().0.to_vec(), stake: 5_000 }],
//!     modules: vec![
//!         GenesisModule { name: "staking".into(), version: 1, mint: true, params: String::new(), govern_chain: false },
//!         GenesisModule { name: "governance".into(), version: 1, mint: true, params: r#"{"voting_epochs":1,"timelock_heights":1}"#.into(), govern_chain: false },
//!     ],
//!     epochs: Some(EpochSchedule { length: 2, validator_source: Some("staking".into()) }),
//! };
//! let ledger = Ledger::open(Arc::new(aether_storage_memory::MemoryStore::new()), &genesis)?
//!     .with_module(Arc::new(Staking))
//!     .with_module(Arc::new(Governance));
//! ledger.check_genesis_init()?;
//! let tx = |nonce: u64, call: GovernanceCall, value: Amount| {
//!     let action = Action::Module { module: "governance".into(), call: call.encode(), value, gas_limit: 1_000_000 };
//!     TxBody { chain_id: "doc".into(), sender: validator.public(), nonce, fee: 1_000, action }.sign(&validator)
//! };
//! let change = ProposalAction::new("staking", StakingCall::update_params(r#"{"min_delegation":"500"}"#).encode());
//! // Height 1: submit (proposal 1, deposit 1,000) and vote yes. Height 2 ends epoch 0: the
//! // tally passes it for height 2 + 1. Height 3: its action runs.
//! let mut txs = vec![tx(0, GovernanceCall::submit("cheaper delegation", vec![change]), 1_000), tx(1, GovernanceCall::vote(1, VoteOption::Yes), 0)];
//! for _ in 0..3 {
//!     let head = ledger.head();
//!     let built = ledger.build_block(&head.block.hash, head.certificate, std::mem::take(&mut txs), vec![], head.header.time_ms + 1, validator.address())?;
//!     ledger.commit(&built.executed.hash, &Certificate(vec![]))?;
//! }
//! let params: serde_json::Value = serde_json::from_slice(&ledger.module_query("staking", "params", &[], 100_000_000)?.answer?)?;
//! assert_eq!(params["min_delegation"], "500");
//! assert!(ledger.module_query("governance", "invariants", &[], 100_000_000)?.answer.is_ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What it is **not** (yet): it needs an epoch schedule (without one `end_epoch` never runs
//! and nothing is tallied; the context does not say whether the chain has epochs, so genesis
//! cannot refuse it); delegations are snapshotted at vote time, not read at the tally
//! ([`tally`]); no deposit top-ups (`Deposit`) or deposit period: the whole deposit
//! comes with `Submit`; no cancellation; proposals cannot call the governance module itself
//! (so its own parameters change only with a new genesis); a proposal's actions cannot carry
//! value; the epoch length is out of reach (genesis fixes it); the `UNFINISHED` case of
//! [`execution`] (actions that use up the hook gas) is recorded as a failure but also shows
//! as a `hook_failed` event.

pub mod calls;
pub mod error;
pub mod execution;
pub mod invariants;
pub mod params;
pub mod queries;
pub mod state;
pub mod tally;

use aether_api::module::{ModuleContext, ModuleError, RuntimeModule};
use aether_primitives::types::{Evidence, ValidatorEntry};

pub use calls::{GovernanceCall, ProposalAction};
pub use error::GovernanceError;
pub use params::Params;
pub use queries::ProposalInfo;
pub use state::{Status, Tally, VoteOption};

/// The module's name, as genesis and transactions name it.
pub const NAME: &str = "governance";

/// The governance module. Stateless: everything lives in its storage, behind the context.
#[derive(Clone, Copy, Debug, Default)]
pub struct Governance;

impl RuntimeModule for Governance {
    fn name(&self) -> &'static str {
        NAME
    }
    fn version(&self) -> u32 {
        1
    }
    fn init_genesis(&self, cx: &mut dyn ModuleContext, params: &[u8]) -> Result<(), ModuleError> {
        let params = Params::from_genesis(params)?;
        // Burning nothing proves the grant a veto's burn needs.
        cx.burn(0).map_err(|e| match e {
            ModuleError::NotGranted(_) => GovernanceError::NeedsMint.into(),
            other => other,
        })?;
        state::save(cx, state::PARAMS, &params)?;
        Ok(())
    }
    fn call(&self, cx: &mut dyn ModuleContext, call: &[u8]) -> Result<Vec<u8>, ModuleError> {
        let call = GovernanceCall::decode(call)?;
        Ok(calls::run(cx, call)?)
    }
    fn begin_block(&self, cx: &mut dyn ModuleContext, _evidence: &[Evidence]) -> Result<(), ModuleError> {
        Ok(execution::begin_block(cx)?)
    }
    fn end_block(&self, cx: &mut dyn ModuleContext) -> Result<(), ModuleError> {
        Ok(execution::end_block(cx)?)
    }
    fn end_epoch(&self, cx: &mut dyn ModuleContext, epoch: u64) -> Result<Option<Vec<ValidatorEntry>>, ModuleError> {
        tally::end_epoch(cx, epoch)?;
        Ok(None)
    }
    fn query(&self, cx: &mut dyn ModuleContext, path: &str, request: &[u8]) -> Result<Vec<u8>, ModuleError> {
        Ok(queries::query(cx, path, request)?)
    }
}

/// Registers the module under [`NAME`] (it runs on chains whose genesis pins it).
pub fn register(registry: &mut aether_api::registry::Registry) {
    registry.modules.register(
        NAME,
        "governance: deposit-backed proposals of module calls, validator and delegator votes by stake, quorum/threshold/veto, timelocked all-or-nothing execution",
        Box::new(|| std::sync::Arc::new(Governance)),
    );
}
