//! Shares and tokens with rewards (numbers worked by hand), unbonding paid exactly
//! `unbonding_epochs` after the epoch it started, and the per-delegator entry limit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use aether_module_staking::StakingCall;
use aether_primitives::codec::encode;

#[test]
fn shares_track_rewards_and_unbonding_pays_exactly_after_unbonding_epochs() {
    let mut chain = Chain::new(&genesis(&[(1, 3_000), (2, 1_000)], &[30, 31], r#"{"max_unbonding_entries":2,"unbonding_epochs":2}"#));
    let (alice, bob) = (key(30), key(31));
    let v1 = key(1).public();

    // Epoch 0: Alice buys at 1 token per share.
    let tx = chain.staking(&alice, StakingCall::delegate(v1), 1_000);
    let b = chain.block(vec![tx]);
    assert_eq!(b.receipts[0].output, encode(&1_000u128));
    chain.run_to(3);
    // Epoch 0's reward by genesis stake: v1 750 → 4750 tokens for 4000 shares.
    assert_eq!(chain.validator(1).tokens, 4_750);

    // Epoch 1: Bob's 950 buy 950 × 4000 / 4750 = 800 shares; Alice's 1000 shares are worth
    // 1000 × 5700 / 4800 = 1187 (rounded down), Bob's 800 exactly 950.
    let tx = chain.staking(&bob, StakingCall::delegate(v1), 950);
    let b = chain.block(vec![tx]);
    assert_eq!(b.receipts[0].output, encode(&800u128));
    assert_eq!(chain.delegation(&alice.address(), 1).tokens, 1_187);
    assert_eq!(chain.delegation(&bob.address(), 1).tokens, 950);
    chain.run_to(6);
    // Epoch 1's reward by its set (v1 4750, v2 1250 of 6000): 791 + the remainder 1 = 792.
    assert_eq!(chain.validator(1).tokens, 6_492);
    assert_eq!(chain.delegation(&alice.address(), 1).tokens, 1_352, "1000 × 6492 / 4800");
    assert_eq!(chain.delegation(&bob.address(), 1).tokens, 1_082, "800 × 6492 / 4800");

    // Epoch 2: Alice unbonds everything; paid at the end of epoch 4 (height 15).
    let tx = chain.staking(&alice, StakingCall::unbond(v1, 1_000), 0);
    let b = chain.block(vec![tx]);
    assert_eq!(b.receipts[0].output, encode(&1_352u128));
    let entries = chain.unbondings(&alice.address());
    assert_eq!(entries.len(), 1);
    assert_eq!((entries[0].amount, entries[0].start_epoch, entries[0].mature_epoch), (1_352, 2, 4));
    assert_eq!(chain.delegation(&alice.address(), 1).shares, 0);
    let alice_after_unbond = chain.balance(&alice.address());

    // Bob: two unbondings in epoch 2 share one entry; one more in epoch 3; a third entry in
    // epoch 4 is over max_unbonding_entries (2).
    let tx = chain.staking(&bob, StakingCall::unbond(v1, 10), 0);
    assert_success(&chain.block(vec![tx]));
    let tx = chain.staking(&bob, StakingCall::unbond(v1, 10), 0);
    assert_success(&chain.block(vec![tx]));
    assert_eq!(chain.unbondings(&bob.address()).len(), 1);
    let tx = chain.staking(&bob, StakingCall::unbond(v1, 10), 0);
    assert_success(&chain.block(vec![tx]));
    assert_eq!(chain.unbondings(&bob.address()).len(), 2);

    // Not one epoch early: the end of epoch 3 (height 12) pays nothing.
    chain.run_to(12);
    assert_eq!(chain.balance(&alice.address()), alice_after_unbond);
    assert_eq!(chain.unbondings(&alice.address()).len(), 1);
    let tx = chain.staking(&bob, StakingCall::unbond(v1, 10), 0);
    let b = chain.block(vec![tx]);
    assert_eq!(
        failure(&b, 0),
        format!(
            "module staking: {} already has 2 unbonding entries from validator {v1} (max_unbonding_entries); wait for one to mature",
            bob.address()
        )
    );
    // The end of epoch 4 (height 15) pays Alice exactly what she unbonded.
    chain.run_to(14);
    assert_eq!(chain.balance(&alice.address()), alice_after_unbond);
    chain.run_to(15);
    assert_eq!(chain.balance(&alice.address()), alice_after_unbond + 1_352);
    assert!(chain.unbondings(&alice.address()).is_empty());
    assert_eq!(chain.unbondings(&bob.address()).len(), 1, "Bob's epoch-2 entry paid, his epoch-3 one not yet");
    let tx = chain.staking(&bob, StakingCall::unbond(v1, 10), 0);
    assert_success(&chain.block(vec![tx]));
}

#[test]
fn unbonding_more_shares_than_held_or_zero_is_refused() {
    let mut chain = Chain::new(&genesis(&[(1, 3_000)], &[30], ""));
    let v1 = key(1).public();
    let alice = key(30);
    let txs = vec![
        chain.staking(&alice, StakingCall::delegate(v1), 99),
        chain.staking(&alice, StakingCall::delegate(v1), 100),
        chain.staking(&alice, StakingCall::unbond(v1, 101), 0),
        chain.staking(&alice, StakingCall::unbond(v1, 0), 0),
        chain.staking(&alice, StakingCall::delegate(key(9).public()), 100),
    ];
    let b = chain.block(txs);
    assert_eq!(failure(&b, 0), "module staking: the delegation (the call's value) is 99; at least min_delegation = 100 is needed");
    assert_eq!(b.receipts[1].status, aether_primitives::types::TxStatus::Success);
    assert_eq!(failure(&b, 2), format!("module staking: {} holds 100 shares of validator {v1}; cannot unbond 101", alice.address()));
    assert_eq!(failure(&b, 3), "module staking: cannot unbond 0 shares");
    assert_eq!(failure(&b, 4), format!("module staking: no validator with identity {}", key(9).public()));
    assert_eq!(chain.balance(&alice.address()), FUNDS - 5 * FEE - 100);
}
