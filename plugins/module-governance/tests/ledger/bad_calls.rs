//! Refused calls: each fails its receipt with a clear message, the fee is charged and nothing
//! else changes. Genesis refusals. Gas of each call, from receipts (`--nocapture` prints it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use aether_module_governance::{GovernanceCall, ProposalAction, Status, VoteOption::*};
use aether_primitives::types::TxStatus;

#[test]
fn bad_calls_fail_with_clear_messages_charge_the_fee_and_change_nothing_else() {
    let mut chain = Chain::new(&genesis(&[(1, 10_000)], &[30], r#"{"voting_epochs":1}"#));
    let user = key(30);
    let tx = chain.submit(&user, "open", vec![], 1_000);
    assert_success(&chain.block(vec![tx]));
    let before = chain.proposal(1);
    let (user_before, v1_before) = (chain.balance(&user.address()), chain.balance(&key(1).address()));
    let nine = (0..9).map(|_| staking_params_change("{}")).collect();
    let txs = vec![
        chain.gov(&user, GovernanceCall::vote(1, Yes), 0),
        chain.submit(&user, "too small", vec![], 999),
        chain.vote(1, 9, Yes),
        chain.gov(&key(1), GovernanceCall::vote(1, Yes), 5),
        chain.tx(&user, "governance", vec![0xFF], 0),
        chain.submit(&user, "self", vec![ProposalAction::new("governance", vec![])], 1_000),
        chain.gov(&user, GovernanceCall::Execute { proposal: 1 }, 0),
        chain.submit(&user, "nine actions", nine, 1_000),
        chain.submit(&user, "", vec![], 1_000),
    ];
    let b = chain.block(txs);
    let expected = [
        format!(
            "module governance: {} has no voting power: it is neither a validator of epoch 0's set (voting from its identity key's address) nor a delegator to one",
            user.address()
        ),
        "module governance: the deposit (the call's value) is 999; at least min_deposit = 1000 is needed".into(),
        "module governance: no proposal 9".into(),
        "module governance: Vote takes no value; the transaction sent 5 (it is refunded)".into(),
        "module governance: the call does not decode: ".into(),
        "module governance: action 0: a proposal may not call the governance module itself".into(),
        format!("module governance: Execute is governance's own call (it runs a passed proposal's actions); the caller is {}", user.address()),
        "module governance: a proposal carries at most 8 actions (max_actions); got 9".into(),
        "module governance: the title must be 1 to 200 bytes without control characters; got 0 bytes".into(),
    ];
    for (i, want) in expected.iter().enumerate() {
        assert!(failure(&b, i).starts_with(want.as_str()), "transaction {i}: {:?} should start with {want:?}", failure(&b, i));
    }
    // Fees only: 7 transactions from the user, 2 from v1; deposits and values returned.
    assert_eq!(chain.balance(&user.address()), user_before - 7 * FEE);
    assert_eq!(chain.balance(&key(1).address()), v1_before - 2 * FEE);
    assert_eq!(chain.gov_balance(), 1_000);
    assert_eq!(chain.proposal(1), before);
    assert_eq!(chain.open_proposals().len(), 1);

    // After the tally at height 3 (no votes: quorum not met), a vote is refused.
    chain.run_to(3);
    let tx = chain.vote(1, 1, Yes);
    let b = chain.block(vec![tx]);
    assert_eq!(
        failure(&b, 0),
        "module governance: proposal 1 is not in voting (it is rejected: quorum not met: 0 of 10000 stake voted; quorum_bps 2000 needs at least that share); votes are taken until the end of epoch 0"
    );
}

#[test]
fn genesis_refuses_a_missing_mint_grant_and_bad_params() {
    let mut g = genesis(&[(1, 10_000)], &[], "");
    g.modules[1].mint = false;
    let err = open(&g).check_genesis_init().unwrap_err().to_string();
    assert!(err.contains("governance needs the mint grant"), "{err}");
    let err = open(&genesis(&[(1, 10_000)], &[], r#"{"threshold_bps":10001}"#)).check_genesis_init().unwrap_err().to_string();
    assert!(err.contains("governance genesis params: threshold_bps must be at most 10000 (100%); got 10001"), "{err}");
}

#[test]
fn gas_of_each_call() {
    let mut chain = Chain::new(&genesis(&[(1, 10_000)], &[30], r#"{"voting_epochs":1}"#));
    let user = key(30);
    let txs = vec![
        chain.submit(&user, "no actions", vec![], 1_000),
        chain.submit(&user, "one action", vec![staking_params_change(r#"{"min_delegation":"500"}"#)], 1_000),
        chain.submit(&user, "eight actions", (0..8).map(|_| staking_params_change(r#"{"min_delegation":"500"}"#)).collect(), 1_000),
        chain.vote(1, 1, Yes),
        chain.vote(1, 1, No),
        chain.submit(&user, "too small", vec![], 1),
    ];
    let b = chain.block(txs);
    let names = ["Submit (0 actions)", "Submit (1 action)", "Submit (8 actions)", "Vote", "Vote (replacing)", "Submit refused (deposit)"];
    for (i, name) in names.iter().enumerate() {
        let r = &b.receipts[i];
        assert_eq!(r.status == TxStatus::Success, i < 5, "{name}");
        eprintln!("{name}: {} gas", r.gas_used);
        assert!(r.gas_used < GAS);
    }
    assert_eq!(chain.proposal(1).status, Status::Voting);
}
