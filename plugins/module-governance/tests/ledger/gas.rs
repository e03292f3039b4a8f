//! What governance's hooks cost in gas, measured through the ledger: the execution of a
//! proposal of 1 and of 8 staking parameter changes (against `HOOK_GAS_PER_BLOCK`, which
//! `MAX_EXECUTIONS_PER_BLOCK` executions share), and the tally of `MAX_TALLIES_PER_EPOCH`
//! proposals with 256 validators (against `HOOK_GAS_PER_EPOCH`).
//!
//! Hook gas is in no receipt, so a wrapper module of the same name runs the very same hook
//! code inside a transaction of the block concerned (then fails, so nothing it did is kept)
//! and the receipt's `gas_used` is the hook's cost at the ledger's prices. The real hooks run
//! afterwards and the harness asserts they did not fail. `--nocapture` prints the numbers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use crate::common::*;
use aether_api::module::{ModuleContext, ModuleError, RuntimeModule, HOOK_GAS_PER_BLOCK, HOOK_GAS_PER_EPOCH};
use aether_module_governance::execution::MAX_EXECUTIONS_PER_BLOCK;
use aether_module_governance::state::{MAX_DELEGATOR_VOTES, MAX_VOTE_DELEGATIONS};
use aether_module_governance::tally::MAX_TALLIES_PER_EPOCH;
use aether_module_governance::{execution, tally, Governance, GovernanceCall, Status, VoteOption::*};
use aether_module_staking::StakingCall;
use aether_primitives::types::*;

/// Governance, plus calls `measure_tally` (this epoch's `end_epoch` work) and
/// `measure_execution` (this block's `end_block` work), which run it and fail.
struct Metered;

impl RuntimeModule for Metered {
    fn name(&self) -> &'static str {
        "governance"
    }
    fn version(&self) -> u32 {
        1
    }
    fn init_genesis(&self, cx: &mut dyn ModuleContext, params: &[u8]) -> Result<(), ModuleError> {
        Governance.init_genesis(cx, params)
    }
    fn call(&self, cx: &mut dyn ModuleContext, call: &[u8]) -> Result<Vec<u8>, ModuleError> {
        match call {
            b"measure_tally" => {
                let epoch = cx.epoch();
                tally::end_epoch(cx, epoch)?;
                Err(ModuleError::Failed("measured".into()))
            }
            b"measure_execution" => {
                execution::end_block(cx)?;
                Err(ModuleError::Failed("measured".into()))
            }
            _ => Governance.call(cx, call),
        }
    }
    fn begin_block(&self, cx: &mut dyn ModuleContext, evidence: &[Evidence]) -> Result<(), ModuleError> {
        Governance.begin_block(cx, evidence)
    }
    fn end_block(&self, cx: &mut dyn ModuleContext) -> Result<(), ModuleError> {
        Governance.end_block(cx)
    }
    fn end_epoch(&self, cx: &mut dyn ModuleContext, epoch: u64) -> Result<Option<Vec<ValidatorEntry>>, ModuleError> {
        Governance.end_epoch(cx, epoch)
    }
    fn query(&self, cx: &mut dyn ModuleContext, path: &str, request: &[u8]) -> Result<Vec<u8>, ModuleError> {
        Governance.query(cx, path, request)
    }
}

fn measure(chain: &mut Chain, what: &str) -> u64 {
    let tx = chain.tx_with_gas(&key(30), "governance", what.as_bytes().to_vec(), 0, 50_000_000);
    let b = chain.block(vec![tx]);
    assert_eq!(failure(&b, 0), "module governance: measured", "the measurement ran to the end");
    b.receipts[0].gas_used
}

#[test]
fn executing_eight_staking_parameter_changes_fits_the_block_hook_budget_four_times_over() {
    let mut chain =
        Chain::with_governance(&genesis(&[(1, 10_000)], &[30], r#"{"voting_epochs":1,"timelock_heights":1}"#), Arc::new(Metered));
    let user = key(30);
    let change = || staking_params_change(r#"{"min_delegation":"500"}"#);
    let txs = vec![chain.submit(&user, "one", vec![change()], 1_000), chain.vote(1, 1, Yes)];
    assert_success(&chain.block(txs));
    chain.run_to(3);
    let one = measure(&mut chain, "measure_execution"); // height 4
    assert_eq!(chain.proposal(1).status, Status::Executed { height: 4 });
    let txs = vec![chain.submit(&user, "eight", (0..8).map(|_| change()).collect(), 1_000), chain.vote(1, 2, Yes)];
    assert_success(&chain.block(txs));
    chain.run_to(6);
    let eight = measure(&mut chain, "measure_execution"); // height 7
    assert_eq!(chain.proposal(2).status, Status::Executed { height: 7 });
    eprintln!("execution (end_block): 1 staking UpdateParams {one} gas, 8 of them {eight} gas");
    let worst = eight * MAX_EXECUTIONS_PER_BLOCK as u64;
    eprintln!("{MAX_EXECUTIONS_PER_BLOCK} proposals of 8 such actions ≈ {worst} of {HOOK_GAS_PER_BLOCK}");
    assert!(worst < HOOK_GAS_PER_BLOCK);
}

#[test]
fn tallying_the_most_proposals_an_epoch_takes_fits_the_epoch_hook_budget() {
    let n: u16 = 256;
    let mut g = genesis(&[], &[30], r#"{"voting_epochs":1}"#);
    g.validators = (0..n)
        .map(|i| {
            let mut seed = [0xA5; 32];
            seed[..2].copy_from_slice(&i.to_be_bytes());
            let k = Keypair::from_seed(seed);
            ValidatorEntry { name: format!("g{i}"), identity: k.public(), consensus_key: k.public().0.to_vec(), stake: 10_000 }
        })
        .collect();
    let mut chain = Chain::with_governance(&g, Arc::new(Metered));
    let user = key(30);
    let txs = (0..MAX_TALLIES_PER_EPOCH).map(|i| chain.submit(&user, &format!("p{i}"), vec![], 1_000)).collect();
    assert_success(&chain.block(txs));
    chain.run_to(2);
    let gas = measure(&mut chain, "measure_tally"); // height 3, before the real end_epoch
    assert!((1..=MAX_TALLIES_PER_EPOCH as u64).all(|id| matches!(chain.proposal(id).status, Status::Rejected { .. })));
    let per_member = gas / (MAX_TALLIES_PER_EPOCH as u64 * u64::from(n));
    let at_512 = per_member * MAX_TALLIES_PER_EPOCH as u64 * 512;
    eprintln!("tally of {MAX_TALLIES_PER_EPOCH} proposals, {n} validators: {gas} gas (~{per_member} per proposal and member); with 512 ≈ {at_512} of {HOOK_GAS_PER_EPOCH}");
    assert!(2 * at_512 < HOOK_GAS_PER_EPOCH);
}

#[test]
fn tallying_the_most_proposals_with_delegator_votes_fits_the_epoch_hook_budget() {
    // 16 validators; 16 delegators, each delegating to all of them (the most one vote draws
    // on) in epoch 0 and voting on each of 16 proposals in epoch 1.
    let n = MAX_VOTE_DELEGATIONS as u8;
    let validators: Vec<(u8, Amount)> = (1..=n).map(|i| (i, 10_000)).collect();
    let delegators: Vec<u8> = (100..100 + n).collect();
    let users: Vec<u8> = delegators.iter().copied().chain([30]).collect();
    let mut chain = Chain::with_governance(&genesis(&validators, &users, r#"{"voting_epochs":1}"#), Arc::new(Metered));
    let mut txs = Vec::new();
    for d in &delegators {
        for v in 1..=n {
            txs.push(chain.tx_with_gas(&key(*d), "staking", StakingCall::delegate(key(v).public()).encode(), 100, 1_000_000));
        }
    }
    assert_success(&chain.block(txs));
    chain.run_to(3);
    let user = key(30);
    let txs = (0..MAX_TALLIES_PER_EPOCH).map(|i| chain.submit(&user, &format!("p{i}"), vec![], 1_000)).collect();
    assert_success(&chain.block(txs)); // height 4, epoch 1
    let mut txs = Vec::new();
    for id in 1..=MAX_TALLIES_PER_EPOCH as u64 {
        for d in &delegators {
            txs.push(chain.tx_with_gas(&key(*d), "governance", GovernanceCall::vote(id, No).encode(), 0, 1_000_000));
        }
    }
    let b = chain.block(txs);
    assert_success(&b);
    let vote_gas = b.receipts[0].gas_used;
    let gas = measure(&mut chain, "measure_tally"); // height 6, before the real end_epoch
    assert!((1..=MAX_TALLIES_PER_EPOCH as u64).all(|id| chain.proposal(id).tally.unwrap().no == 16 * 1_600));
    // Everything the tally read, validators included, charged to the delegator votes: an
    // upper bound per vote of 16 entries.
    let per_vote = gas / (MAX_TALLIES_PER_EPOCH as u64 * u64::from(n));
    let at_cap = per_vote * MAX_TALLIES_PER_EPOCH as u64 * u64::from(MAX_DELEGATOR_VOTES);
    eprintln!(
        "delegator vote with {n} delegations: {vote_gas} gas; tally of {MAX_TALLIES_PER_EPOCH} proposals with {n} delegator votes each: {gas} gas (~{per_vote} per vote); with {MAX_DELEGATOR_VOTES} per proposal ≈ {at_cap} of {HOOK_GAS_PER_EPOCH}"
    );
    // The validators' part (the test above) takes at most half the budget; this the other.
    assert!(2 * at_cap < HOOK_GAS_PER_EPOCH);
}
