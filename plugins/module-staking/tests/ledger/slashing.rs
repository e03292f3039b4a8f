//! Slashing: only the configured slasher module; the stake bonded at the infraction (tokens
//! now and unbondings started since) is cut and burned; jailing and unjailing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use aether_api::module::module_address;
use aether_module_staking::StakingCall;
use aether_primitives::codec::encode;

#[test]
fn the_slasher_burns_the_stake_bonded_at_the_infraction_and_jails_until_unjailed() {
    let mut chain = Chain::new(&genesis(&[(1, 3_000), (2, 2_000)], &[30, 40], r#"{"unbonding_epochs":3}"#));
    let (alice, reporter) = (key(30), key(40));
    let v1 = key(1).public();

    let tx = chain.staking(&alice, StakingCall::delegate(v1), 1_000);
    assert_success(&chain.block(vec![tx]));
    // Entry A: 500 tokens, started in epoch 0 (before the infraction below).
    let txs = vec![
        chain.staking(&alice, StakingCall::unbond(v1, 500), 0),
        // Nobody but the slasher module may slash, not even through a transaction.
        chain.staking(&reporter, StakingCall::slash(v1, 0, 1_000, true), 0),
    ];
    let b = chain.block(txs);
    assert_eq!(b.receipts[0].output, encode(&500u128));
    assert_eq!(
        failure(&b, 1),
        format!(
            "module staking: only the slasher module \"slashing\" (address {}) may slash; the caller is {}",
            module_address("slashing"),
            reporter.address()
        )
    );
    chain.run_to(3);
    assert_eq!(chain.set(1), names(&[("v1", 4_100), ("v2", 2_400)]));

    // Entry B, epoch 1: 100 shares at 4100/3500 → 117 tokens.
    let tx = chain.staking(&alice, StakingCall::unbond(v1, 100), 0);
    assert_eq!(chain.block(vec![tx]).receipts[0].output, encode(&117u128));
    assert_eq!(chain.module_balance(), 3_983 + 2_400 + 500 + 117);

    // An infraction in epoch 1, 10%, jail: tokens 3983 → cut 398; B 117 → cut 11; A untouched.
    let tx = chain.slash(&reporter, StakingCall::slash(v1, 1, 1_000, true));
    let b = chain.block(vec![tx]);
    assert_success(&b);
    assert_eq!(b.receipts[0].output, encode(&409u128), "398 + 11 burned");
    assert_eq!(chain.module_balance(), 7_000 - 409, "burned, not kept: the block passed the conservation check");
    let v = chain.validator(1);
    assert_eq!((v.tokens, v.jailed_since, v.eligible), (3_585, Some(1), false));
    let entries: Vec<(u128, u64)> = chain.unbondings(&alice.address()).iter().map(|e| (e.amount, e.start_epoch)).collect();
    assert_eq!(entries, vec![(500, 0), (106, 1)]);

    // Jailed: out of the next set. Too early to unjail in the epoch it was jailed.
    let tx = chain.staking(&key(1), StakingCall::unjail(v1), 0);
    let b = chain.block(vec![tx]);
    assert_eq!(
        failure(&b, 0),
        format!("module staking: validator {v1} was jailed in epoch 1; it may unjail from epoch 2 (jail_epochs); this is epoch 1")
    );
    assert_eq!(chain.set(2), names(&[("v2", 2_400 + 369)]));
    // Only its operator may unjail; from epoch 2 it may.
    let txs = vec![chain.staking(&alice, StakingCall::unjail(v1), 0), chain.staking(&key(1), StakingCall::unjail(v1), 0)];
    let b = chain.block(txs);
    assert!(failure(&b, 0).contains(&format!("only validator {v1}'s operator")), "{}", failure(&b, 0));
    assert_eq!(b.receipts[1].status, aether_primitives::types::TxStatus::Success);
    chain.run_to(9);
    // Back in: v1 kept epoch 1's reward (631) on its slashed tokens; v2 had epoch 2 alone.
    assert_eq!(chain.set(3), names(&[("v1", 3_585 + 631), ("v2", 2_769 + 1_000)]));

    // Entries pay what is left of them, each at its own maturity.
    let before = chain.balance(&alice.address());
    chain.run_to(12);
    assert_eq!(chain.balance(&alice.address()), before + 500);
    chain.run_to(15);
    assert_eq!(chain.balance(&alice.address()), before + 500 + 106);

    // Epoch 5: an infraction of epoch 1 is older than the window (5 - 3); a future one too.
    let txs =
        vec![chain.slash(&reporter, StakingCall::slash(v1, 1, 100, false)), chain.slash(&reporter, StakingCall::slash(v1, 9, 100, false))];
    let b = chain.block(txs);
    assert_eq!(failure(&b, 0), "module slashing: infraction epoch 1 is older than the unbonding window (epoch 5 - unbonding_epochs 3): that stake may already be paid out");
    assert_eq!(failure(&b, 1), "module slashing: infraction epoch 9 is in the future (this is epoch 5)");
}

#[test]
fn a_validator_slashed_to_zero_takes_no_delegations() {
    let mut chain = Chain::new(&genesis(&[(1, 3_000), (2, 1_000)], &[30, 40], ""));
    let tx = chain.slash(&key(40), StakingCall::slash(key(2).public(), 0, 10_000, false));
    assert_eq!(chain.block(vec![tx]).receipts[0].output, encode(&1_000u128));
    assert_eq!(chain.module_balance(), 3_000);
    let tx = chain.staking(&key(30), StakingCall::delegate(key(2).public()), 500);
    let b = chain.block(vec![tx]);
    assert_eq!(
        failure(&b, 0),
        format!("module staking: validator {} was slashed to zero tokens; it takes no delegations", key(2).public())
    );
    chain.run_to(3);
    assert_eq!(chain.set(1), names(&[("v1", 3_750)]), "v2's reward (250) leaves its self-bond below the minimum");
}
