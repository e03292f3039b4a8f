//! Unbonding stake is slashable for what happened while it was bonded: the offence's epoch
//! is the recording block's epoch, and staking cuts the unbondings that started in that
//! epoch or later, not those that started before.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use aether_module_slashing::DOUBLE_VOTE;
use aether_module_staking::StakingCall;
use aether_primitives::codec::decode;

#[test]
fn unbondings_started_in_the_offence_epoch_are_cut_and_earlier_ones_are_not() {
    let mut chain = Chain::new(&genesis(&[(1, 5_000), (2, 3_000)], &[30, 31], r#"{"slasher":"slashing","unbonding_epochs":2}"#, ""));
    let (alice, bob, v1) = (key(30), key(31), key(1).public());
    let txs = vec![chain.staking(&alice, StakingCall::delegate(v1), 1_000), chain.staking(&bob, StakingCall::delegate(v1), 1_000)];
    assert_success(&chain.block(txs));
    // Epoch 0: alice unbonds (before the offence's epoch).
    let tx = chain.staking(&alice, StakingCall::unbond(v1, 500), 0);
    assert_success(&chain.block(vec![tx]));
    chain.run_to(EPOCH);

    // Epoch 1: bob unbonds, then (a later block of the same epoch) evidence of v1's double
    // vote is recorded: the offence is of epoch 1, when bob's tokens were still bonded.
    let tx = chain.staking(&bob, StakingCall::unbond(v1, 500), 0);
    let b = chain.block(vec![tx]);
    assert_success(&b);
    let bob_unbonding: u128 = decode("tokens", &b.receipts[0].output, 16).unwrap();
    assert!(bob_unbonding > 500, "bob's shares gained epoch 0's reward: {bob_unbonding}");
    let tokens = chain.validator(1).tokens;
    let before = chain.staking_balance();
    let b = chain.block_with(vec![], vec![evidence_in(1, chain.index_of(1, 1), DOUBLE_VOTE, "v1 in epoch 1")]);
    let s = slashed(&b);
    assert_eq!((s.len(), s[0].epoch), (1, 1));
    let (cut_tokens, cut_bob) = (tokens / 5, bob_unbonding / 5);
    assert_eq!(s[0].burned, cut_tokens + cut_bob, "the validator's tokens and bob's unbonding, 20% each");
    assert_eq!(chain.staking_balance(), before - s[0].burned);
    assert_eq!(chain.validator(1).tokens, tokens - cut_tokens);
    let amounts =
        |who: &aether_primitives::types::Address| chain.unbondings(who).iter().map(|u| (u.amount, u.start_epoch)).collect::<Vec<_>>();
    assert_eq!(amounts(&alice.address()), vec![(500, 0)], "alice unbonded in epoch 0: untouched");
    assert_eq!(amounts(&bob.address()), vec![(bob_unbonding - cut_bob, 1)]);

    // Each is paid what is left, at its maturity (start + 2 epochs).
    let (a0, b0) = (chain.balance(&alice.address()), chain.balance(&bob.address()));
    chain.run_to(3 * EPOCH);
    assert_eq!(chain.balance(&alice.address()), a0 + 500);
    assert_eq!(chain.balance(&bob.address()), b0);
    chain.run_to(4 * EPOCH);
    assert_eq!(chain.balance(&bob.address()), b0 + bob_unbonding - cut_bob);
}
