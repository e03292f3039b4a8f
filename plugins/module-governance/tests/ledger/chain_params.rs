//! Chain parameters and module upgrades by proposal: a passed proposal's `chain` actions take
//! effect exactly from the block after pass height + timelock (the block gas limit lowered, the
//! fee floor raised), only with genesis's `govern_chain` grant, and out-of-bounds parameters
//! are refused when the proposal is submitted. An epoch length by proposal applies from the
//! epoch after the one that executes it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use aether_api::chain::{ChainParams, ModuleVersion, ScheduledUpgrade};
use aether_module_governance::{ProposalAction, Status, VoteOption::*};
use aether_module_staking::StakingCall;
use aether_node::ledger::TxError;
use aether_primitives::types::{Certificate, Genesis};

use crate::common::*;

/// Lower than the harness's 10M-gas transactions could ever pay under: 100 gas per fee unit.
const LOWERED: ChainParams = ChainParams { max_block_gas: 12_000_000, gas_per_fee_unit: 100 };

/// One validator, users 30 and 31, one voting epoch and a timelock of 2: a proposal submitted
/// at height 1 is tallied at height 3 and executes in block 5.
fn genesis_granting(govern_chain: bool) -> Genesis {
    let mut g = genesis(&[(1, 10_000)], &[30, 31], r#"{"voting_epochs":1,"timelock_heights":2}"#);
    g.modules[1].govern_chain = govern_chain;
    g
}

#[test]
fn a_chain_parameter_change_by_proposal_applies_from_the_block_after_pass_height_plus_timelock() {
    let mut chain = Chain::new(&genesis_granting(true));
    let (user, other) = (key(30), key(31));
    let v1 = key(1).public();
    let actions = vec![ProposalAction::set_chain_params(LOWERED), ProposalAction::upgrade_module("staking", 2, 1_000)];
    let txs = vec![chain.submit(&user, "smaller blocks, dearer gas", actions, 1_000), chain.vote(1, 1, Yes)];
    assert_success(&chain.block(txs));
    chain.run_to(4);
    assert_eq!(chain.proposal(1).status, Status::Passed { execute_at: 5 });
    assert_eq!(chain.ledger.chain_params().unwrap(), ChainParams::DEFAULT);
    // Block 5 executes the proposal in its end_block: its own transactions run under the old
    // parameters (15M gas is over the new limit, 10,000 under the new fee floor of 100,000).
    let big = chain.tx_with_gas(&other, "staking", StakingCall::delegate(v1).encode(), 100, 15_000_000);
    let cheap = chain.tx_with_gas(&user, "staking", StakingCall::delegate(v1).encode(), 100, 10_000_000);
    let b = chain.block(vec![big, cheap]);
    assert_success(&b);
    assert_eq!(chain.proposal(1).status, Status::Executed { height: 5 });
    assert_eq!(chain.ledger.chain_params().unwrap(), LOWERED);
    let versions: Vec<ModuleVersion> = serde_json::from_slice(&chain.query("chain", "modules", &[]).unwrap()).unwrap();
    assert_eq!(versions[0].scheduled, Some(ScheduledUpgrade { version: 2, height: 1_000 }), "the upgrade action scheduled it");

    // Block 6 runs under the new ones.
    let big = chain.tx_with_gas(&other, "staking", StakingCall::delegate(v1).encode(), 100, 15_000_000);
    let cheap = chain.tx_with_gas(&user, "staking", StakingCall::delegate(v1).encode(), 100, 10_000_000);
    let head = chain.ledger.head();
    let built =
        chain.ledger.build_block(&head.block.hash, head.certificate, vec![big, cheap], vec![], head.header.time_ms + 10, PROPOSER).unwrap();
    let errors: Vec<TxError> = built.rejected.into_iter().map(|(_, e)| e).collect();
    assert_eq!(
        errors,
        vec![
            TxError::GasLimitTooHigh { got: 15_000_000, max: 12_000_000 },
            TxError::FeeTooLow { fee: 10_000, needed: 100_000, gas_limit: 10_000_000, per: 100 }
        ]
    );
    assert!(built.executed.block.transactions.is_empty());
    // The follower, replaying, reads the same parameters from state.
    chain.ledger.commit(&built.executed.hash, &Certificate(vec![1])).unwrap();
    let replayed = chain.follower.execute_block(built.executed.block.clone()).unwrap();
    assert_eq!(replayed.block.header.state_root, built.executed.block.header.state_root);
}

#[test]
fn without_the_grant_a_passed_chain_parameter_change_fails_and_nothing_changes() {
    let mut chain = Chain::new(&genesis_granting(false));
    let user = key(30);
    let txs = vec![chain.submit(&user, "smaller blocks", vec![ProposalAction::set_chain_params(LOWERED)], 1_000), chain.vote(1, 1, Yes)];
    assert_success(&chain.block(txs));
    chain.run_to(5);
    let reason =
        "action 0 (chain) failed: only a module genesis grants `govern_chain` may change the chain parameters or schedule module upgrades";
    assert_eq!(chain.proposal(1).status, Status::Failed { height: 5, reason: reason.into() });
    assert_eq!(chain.ledger.chain_params().unwrap(), ChainParams::DEFAULT);
    // The chain goes on.
    chain.run_to(7);
}

#[test]
fn out_of_bounds_chain_parameters_are_refused_at_submission() {
    let mut chain = Chain::new(&genesis_granting(true));
    let user = key(30);
    let zero_gas = ChainParams { max_block_gas: 0, ..ChainParams::DEFAULT };
    let free = ChainParams { gas_per_fee_unit: 0, ..ChainParams::DEFAULT };
    let txs = vec![
        chain.submit(&user, "no gas", vec![ProposalAction::set_chain_params(zero_gas)], 1_000),
        chain.submit(&user, "free", vec![ProposalAction::set_chain_params(free)], 1_000),
        chain.submit(&user, "garbage", vec![ProposalAction::new("chain", vec![7])], 1_000),
    ];
    let b = chain.block(txs);
    assert_eq!(failure(&b, 0), "module governance: action 0: chain parameters refused: max_block_gas must be above 0");
    assert_eq!(failure(&b, 1), "module governance: action 0: chain parameters refused: gas_per_fee_unit must be at least 1");
    assert!(failure(&b, 2).starts_with("module governance: action 0: the call does not decode"), "{}", failure(&b, 2));
    assert!(chain.open_proposals().is_empty());
}

#[test]
fn an_epoch_length_change_by_proposal_applies_from_the_epoch_after_the_one_that_executes_it() {
    use aether_primitives::types::{EpochLengthChange, MAX_EPOCH_LENGTH};
    let mut chain = Chain::new(&genesis_granting(true));
    let user = key(30);
    let txs = vec![chain.submit(&user, "longer epochs", vec![ProposalAction::set_epoch_length(5)], 1_000), chain.vote(1, 1, Yes)];
    assert_success(&chain.block(txs));
    chain.run_to(5);
    assert_eq!(chain.proposal(1).status, Status::Executed { height: 5 });
    // Executed in epoch 1 (heights 4..=6): that epoch keeps its end, epochs from 2 are 5 long.
    chain.run_to(17);
    let boundaries: Vec<u64> =
        (1..=17).filter(|&h| chain.ledger.block_by_height(h).unwrap().unwrap().0.header.next_validators.is_some()).collect();
    assert_eq!(boundaries, [3, 6, 11, 16]);
    let timeline = chain.ledger.epoch_timeline().unwrap();
    assert_eq!(timeline.changes(), &[EpochLengthChange { epoch: 2, first_height: 7, length: 5 }]);
    assert_eq!(chain.follower.epoch_timeline(), Some(timeline));
    assert_eq!(chain.ledger.epoch_of(17), 4);

    // Out of bounds: refused at submission.
    let txs = vec![
        chain.submit(&user, "none", vec![ProposalAction::set_epoch_length(0)], 1_000),
        chain.submit(&user, "endless", vec![ProposalAction::set_epoch_length(MAX_EPOCH_LENGTH + 1)], 1_000),
    ];
    let b = chain.block(txs);
    assert_eq!(failure(&b, 0), "module governance: action 0: epoch length 0 refused: it must be within 1..=1000000");
    assert_eq!(failure(&b, 1), "module governance: action 0: epoch length 1000001 refused: it must be within 1..=1000000");
}
