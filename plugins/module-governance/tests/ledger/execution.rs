//! Execution through the real ledger: a parameter change of staking applied exactly at the
//! pass height + timelock (not a block earlier), and a proposal whose action fails: nothing
//! of it is kept, an `execution_failed` event, no failed hook, the chain goes on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use crate::common::*;
use aether_api::module::{module_address, ModuleContext, ModuleError, RuntimeModule};
use aether_module_governance::execution::UNFINISHED;
use aether_module_governance::Governance;
use aether_module_governance::{ProposalAction, Status, VoteOption::*};
use aether_module_staking::StakingCall;
use aether_primitives::codec::encode;
use aether_primitives::types::GenesisModule;

#[test]
fn a_staking_parameter_change_applies_exactly_at_pass_height_plus_timelock() {
    // Default voting (2 epochs) and a timelock of 4 blocks.
    let mut chain = Chain::new(&genesis(&[(1, 6_000), (2, 4_000)], &[30, 31], r#"{"timelock_heights":4}"#));
    let (user, delegator) = (key(30), key(31));
    let v1 = key(1).public();
    let txs = vec![
        chain.submit(&user, "min_delegation 500", vec![staking_params_change(r#"{"min_delegation":"500"}"#)], 1_000),
        chain.vote(2, 1, No),
        // Only governance may change staking's parameters.
        chain.tx(&delegator, "staking", StakingCall::update_params(r#"{"min_delegation":"500"}"#).encode(), 0),
        // Epoch 1's set gives v1 8,000: the tally counts that, not epoch 0's 6,000.
        chain.tx(&delegator, "staking", StakingCall::delegate(v1).encode(), 2_000),
    ];
    let b = chain.block(txs);
    assert_eq!(
        failure(&b, 2),
        format!(
            "module staking: only the governance module \"governance\" (address {}) may update parameters; the caller is {}",
            module_address("governance"),
            delegator.address()
        )
    );
    assert_eq!(chain.proposal(1).voting_end_epoch, 1, "submitted in epoch 0, 2 voting epochs: votes until the end of epoch 1");
    chain.run_to(5);
    assert_eq!(chain.proposal(1).status, Status::Voting, "still open at the end of epoch 0");
    // Height 6, epoch 1's last block: a vote in it still counts; its end_epoch tallies.
    let tx = chain.vote(1, 1, Yes);
    let b = chain.block(vec![tx]);
    assert_success(&b);
    let p = chain.proposal(1);
    assert_eq!(p.status, Status::Passed { execute_at: 10 }, "tallied at height 6, + timelock 4");
    let t = p.tally.unwrap();
    assert_eq!((t.epoch, t.yes, t.no, t.total), (1, 8_000, 4_000, 12_000));

    // Voting has closed.
    let tx = chain.vote(1, 1, No);
    let b = chain.block(vec![tx]);
    assert_eq!(
        failure(&b, 0),
        "module governance: proposal 1 is not in voting (it is passed, executing at height 10); votes are taken until the end of epoch 1"
    );
    chain.run_to(9);
    assert_eq!(chain.staking_params()["min_delegation"], "100", "the block before the execution height: old value");
    // Transactions of the execution block still see the old value; the block's state has the new.
    let tx = chain.tx(&delegator, "staking", StakingCall::delegate(v1).encode(), 100);
    // A vote in the execution block is told the truth, not the temporary mark.
    let late_vote = chain.vote(1, 1, No);
    let b = chain.block(vec![tx, late_vote]);
    assert_eq!(b.receipts[0].status, aether_primitives::types::TxStatus::Success);
    assert_eq!(
        failure(&b, 1),
        "module governance: proposal 1 is not in voting (it is passed, executing at height 10); votes are taken until the end of epoch 1"
    );
    assert_eq!(chain.height(), 10);
    assert_eq!(chain.staking_params()["min_delegation"], "500", "at the execution height: new value");
    assert_eq!(chain.proposal(1).status, Status::Executed { height: 10 });
    assert_eq!(hook_events(&b, b"governance/executed"), vec![encode(&1u64)]);
    assert_eq!(hook_events(&b, b"staking/params"), vec![br#"{"min_delegation":"500"}"#.to_vec()]);
    let tx = chain.tx(&delegator, "staking", StakingCall::delegate(v1).encode(), 100);
    let b = chain.block(vec![tx]);
    assert_eq!(failure(&b, 0), "module staking: the delegation (the call's value) is 100; at least min_delegation = 500 is needed");
}

#[test]
fn a_proposal_whose_action_fails_keeps_none_of_its_actions_and_the_chain_goes_on() {
    let mut chain = Chain::new(&genesis(&[(1, 10_000)], &[30], r#"{"voting_epochs":1,"timelock_heights":1}"#));
    let user = key(30);
    let txs = vec![
        // Action 0 would succeed, action 1 is refused by staking.
        chain.submit(
            &user,
            "half good",
            vec![staking_params_change(r#"{"min_delegation":"500"}"#), staking_params_change(r#"{"unbonding_epochs":3}"#)],
            1_000,
        ),
        chain.submit(
            &user,
            "unknown module",
            vec![staking_params_change(r#"{"min_delegation":"700"}"#), ProposalAction::new("nosuch", vec![])],
            1_000,
        ),
        chain.vote(1, 1, Yes),
        chain.vote(1, 2, Yes),
    ];
    assert_success(&chain.block(txs));
    chain.run_to(3);
    assert_eq!(chain.proposal(1).status, Status::Passed { execute_at: 4 });
    // The harness asserts no hook failed in this block.
    let b = chain.block(vec![]);
    let reason1 = "action 1 (staking) failed: staking genesis params: unbonding_epochs cannot change after genesis";
    let reason2 = "action 1 (nosuch) failed: unknown module \"nosuch\"";
    assert_eq!(chain.proposal(1).status, Status::Failed { height: 4, reason: reason1.into() });
    assert_eq!(chain.proposal(2).status, Status::Failed { height: 4, reason: reason2.into() });
    assert_eq!(
        hook_events(&b, b"governance/execution_failed"),
        vec![encode(&(1u64, reason1.to_string())), encode(&(2u64, reason2.to_string()))]
    );
    assert!(hook_events(&b, b"governance/executed").is_empty());
    assert!(hook_events(&b, b"staking/params").is_empty(), "the succeeding actions' events are dropped with their writes");
    assert_eq!(chain.staking_params()["min_delegation"], "100", "nothing of either proposal is kept");

    // The chain keeps committing and governance keeps working.
    let txs = vec![chain.submit(&user, "good", vec![staking_params_change(r#"{"min_delegation":"500"}"#)], 1_000), chain.vote(1, 3, Yes)];
    assert_success(&chain.block(txs));
    chain.run_to(7);
    assert_eq!(chain.proposal(3).status, Status::Executed { height: 7 });
    assert_eq!(chain.staking_params()["min_delegation"], "500");
}

/// Spends all the gas it is given (`call`), as a runaway action would.
struct Burner;

impl RuntimeModule for Burner {
    fn name(&self) -> &'static str {
        "burner"
    }
    fn version(&self) -> u32 {
        1
    }
    fn call(&self, cx: &mut dyn ModuleContext, _call: &[u8]) -> Result<Vec<u8>, ModuleError> {
        loop {
            cx.charge(1_000_000)?;
        }
    }
}

/// The one case the module cannot record as an ordinary failure: actions that use up the
/// hook's gas make the whole end_block fail (the context cannot cap a nested call's gas).
/// The proposal keeps begin_block's mark (Failed, UNFINISHED), is not retried, the other
/// proposal due in the same block is reverted with it (also UNFINISHED), and the chain goes on.
#[test]
fn actions_that_use_up_the_hook_gas_leave_the_proposal_failed_unfinished_and_the_chain_goes_on() {
    let mut g = genesis(&[(1, 10_000)], &[30], r#"{"voting_epochs":1,"timelock_heights":1}"#);
    g.modules.push(GenesisModule { name: "burner".into(), version: 1, mint: false, params: String::new(), govern_chain: false });
    let mut chain = Chain::with_modules(&g, Arc::new(Governance), vec![Arc::new(Burner)]);
    let user = key(30);
    let txs = vec![
        chain.submit(&user, "good", vec![staking_params_change(r#"{"min_delegation":"500"}"#)], 1_000),
        chain.submit(&user, "runaway", vec![ProposalAction::new("burner", vec![])], 1_000),
        chain.vote(1, 1, Yes),
        chain.vote(1, 2, Yes),
    ];
    assert_success(&chain.block(txs));
    chain.run_to(3);
    let b = chain.block_with_hook_failures(vec![]);
    let failed = hook_events(&b, b"hook_failed");
    assert_eq!(failed, vec![b"end_block: out of gas".to_vec()]);
    for id in [1, 2] {
        assert_eq!(chain.proposal(id).status, Status::Failed { height: 4, reason: UNFINISHED.into() });
    }
    assert_eq!(chain.staking_params()["min_delegation"], "100");
    // Not retried: the next blocks' hooks succeed (the harness checks), the marks are dropped.
    chain.run_to(8);
    assert_eq!(chain.proposal(2).status, Status::Failed { height: 4, reason: UNFINISHED.into() });
}
