//! Registration (and each way it is refused), delegation, entering and leaving the set, and
//! the seat limit with its tie-break.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use aether_module_staking::{StakingCall, REGISTRATION_DOMAIN};
use aether_primitives::types::*;

fn register(chain: &mut Chain, identity: u8, operator: u8, bond: Amount) -> SignedTransaction {
    let call =
        StakingCall::register(&key(identity), &key(operator).address(), key(identity).public().0.to_vec(), &format!("v{identity}"), 0);
    chain.staking(&key(operator), call, bond)
}

#[test]
fn registration_refusals_cost_the_fee_only_and_a_registered_validator_enters_then_leaves_the_set() {
    let mut chain = Chain::new(&genesis(&[(1, 3_000)], &[11, 12], r#"{"unbonding_epochs":2}"#));
    let (operator, other) = (key(11), key(12));
    let identity = key(10);
    let good_key = identity.public().0.to_vec();
    // Signed for another operator than the one who sends it.
    let stolen = StakingCall::register(&identity, &other.address(), good_key.clone(), "v10", 0);
    // A key the engine refuses, properly signed.
    let bad_key = StakingCall::register(&identity, &operator.address(), vec![1, 2, 3], "v10", 0);
    let good = StakingCall::register(&identity, &operator.address(), good_key.clone(), "v10", 0);
    let txs = vec![
        chain.staking(&operator, stolen, 2_000),
        chain.staking(&operator, bad_key, 2_000),
        chain.staking(&operator, good.clone(), 999),
        chain.staking(&operator, good.clone(), 2_000),
        chain.staking(&operator, good, 2_000),
        // Value with a call that takes none; and bytes that are no call.
        chain.staking(&other, StakingCall::unbond(key(1).public(), 1), 50),
        chain.tx(&other, "staking", vec![9], 0),
    ];
    let b = chain.block(txs);
    assert_eq!(
        failure(&b, 0),
        format!("module staking: the identity signature does not verify: identity {} must sign staking::registration_message(operator = the caller, consensus_key)", identity.public())
    );
    assert_eq!(failure(&b, 1), "module staking: the consensus key is not valid: 3 bytes, expected 32");
    assert_eq!(failure(&b, 2), "module staking: the self-bond (the call's value) is 999; at least min_self_bond = 1000 is needed");
    assert_eq!(b.receipts[3].status, TxStatus::Success);
    assert_eq!(failure(&b, 4), format!("module staking: identity {} is already registered", identity.public()));
    assert_eq!(failure(&b, 5), "module staking: Unbond takes no value; the transaction sent 50 (it is refunded)");
    assert!(failure(&b, 6).starts_with("module staking: the call does not decode: cannot decode staking call: "), "{}", failure(&b, 6));
    assert!(b.receipts.iter().all(|r| r.fee_paid == FEE));
    // Only the good registration moved anything: its bond; the others cost their fee.
    assert_eq!(chain.balance(&operator.address()), FUNDS - 5 * FEE - 2_000);
    assert_eq!(chain.balance(&other.address()), FUNDS - 2 * FEE);
    assert_eq!(chain.module_balance(), 3_000 + 2_000);
    assert_eq!(chain.validators().validators.len(), 2);
    let v10 = chain.validator(10);
    assert_eq!((v10.tokens, v10.self_bond, v10.operator), (2_000, 2_000, operator.address()));

    let tx = chain.staking(&other, StakingCall::delegate(identity.public()), 500);
    let b = chain.block(vec![tx]);
    assert_success(&b);
    assert_eq!(b.receipts[0].output, aether_primitives::codec::encode(&500u128), "500 shares at 1 token per share");
    // Epoch 0 closes: v10 was not in its set (no reward) but enters the next one.
    chain.block(vec![]);
    assert_eq!(chain.set(1), names(&[("v1", 4_000), ("v10", 2_500)]));

    // The operator unbonds 1500 of its 2000 shares: self-bond 500 < 1000, so it leaves.
    let tx = chain.staking(&operator, StakingCall::unbond(identity.public(), 1_500), 0);
    let b = chain.block(vec![tx]);
    assert_eq!(b.receipts[0].output, aether_primitives::codec::encode(&1_500u128));
    assert!(!chain.validator(10).eligible);
    chain.run_to(6);
    // Epoch 1's reward still reaches v10 (it sat in epoch 1's set): 2500/6500 of 1000 = 384.
    assert_eq!(chain.validator(10).tokens, 1_000 + 384);
    assert_eq!(chain.set(2), names(&[("v1", 4_616)]));
    let d = chain.delegation(&other.address(), 10);
    assert_eq!((d.shares, d.tokens), (500, 692), "500 of 1000 shares of 1384 tokens");
}

#[test]
fn with_more_candidates_than_seats_the_lowest_staked_are_left_out_and_ties_go_to_the_lower_identity() {
    let mut chain = Chain::new(&genesis(&[(1, 3_000)], &[20, 21, 22, 30], r#"{"max_validators":2}"#));
    let txs = vec![register(&mut chain, 10, 20, 2_000), register(&mut chain, 11, 21, 2_000), register(&mut chain, 12, 22, 1_500)];
    assert_success(&chain.block(txs));
    chain.run_to(3);
    let (low, high) = if key(10).public() < key(11).public() { ("v10", "v11") } else { ("v11", "v10") };
    assert_eq!(chain.set(1), names(&[("v1", 4_000), (low, 2_000)]), "{high} ties {low} at 2000 and has the higher identity");

    // v12 overtakes the seated one: 1500 + 1000 > 2000 + its reward 333.
    let tx = chain.staking(&key(30), StakingCall::delegate(key(12).public()), 1_000);
    assert_success(&chain.block(vec![tx]));
    chain.run_to(6);
    assert_eq!(chain.set(2), names(&[("v1", 4_667), ("v12", 2_500)]));
}

#[test]
fn the_registration_message_format_is_pinned() {
    let operator = Address([7; 20]);
    let message = aether_module_staking::registration_message(&operator, &[0xAB, 0xCD]);
    let mut expected = b"aether/staking/register/v1".to_vec();
    expected.extend([7; 20]);
    expected.extend([2, 0, 0, 0, 0xAB, 0xCD]);
    assert_eq!(message, expected);
    assert_eq!(REGISTRATION_DOMAIN, b"aether/staking/register/v1");
    // The call encoding: variant byte, then fields in order.
    let call = StakingCall::slash(PublicKey([1; 32]), 5, 500, true).encode();
    let mut expected = vec![5];
    expected.extend([1; 32]);
    expected.extend(5u64.to_le_bytes());
    expected.extend(500u16.to_le_bytes());
    expected.push(1);
    assert_eq!(call, expected);
    assert_eq!(StakingCall::delegate(PublicKey([2; 32])).encode()[0], 1);
}

#[test]
fn operator_calls_are_the_operators_alone_and_within_their_limits() {
    let mut chain = Chain::new(&genesis(&[(1, 3_000), (2, 3_000)], &[30, 31], r#"{"max_commission_bps":2000,"unbonding_epochs":2}"#));
    let (v1, operator, stranger) = (key(1).public(), key(1), key(30));
    let too_much = StakingCall::register(&key(10), &key(31).address(), key(10).public().0.to_vec(), "v10", 2_500);
    let txs = vec![
        chain.staking(&stranger, StakingCall::set_commission(v1, 100), 0),
        chain.staking(&operator, StakingCall::set_commission(v1, 2_001), 0),
        chain.staking(&operator, StakingCall::set_commission(v1, 2_000), 0),
        chain.staking(&operator, StakingCall::unjail(v1), 0),
        chain.staking(&key(31), too_much, 2_000),
    ];
    let b = chain.block(txs);
    assert_eq!(
        failure(&b, 0),
        format!("module staking: only validator {v1}'s operator {} may do this; the caller is {}", operator.address(), stranger.address())
    );
    assert_eq!(failure(&b, 1), "module staking: commission 2001 bps is above max_commission_bps = 2000");
    assert_eq!(b.receipts[2].status, TxStatus::Success);
    assert_eq!(failure(&b, 3), format!("module staking: validator {v1} is not jailed"));
    assert_eq!(failure(&b, 4), "module staking: commission 2500 bps is above max_commission_bps = 2000");
    assert_eq!(chain.validator(1).commission_bps, 2_000);

    // Jailed (a 0% slash), and the operator's self-bond falls to 200 tokens.
    let txs = vec![chain.slash(&key(31), StakingCall::slash(v1, 0, 0, true)), chain.staking(&operator, StakingCall::unbond(v1, 2_800), 0)];
    assert_success(&chain.block(txs));
    chain.run_to(3);
    // Epoch 0's reward (500, 20% commission) lifts v1 to 600 tokens: the self-bond is 600.
    assert_eq!(chain.set(1), names(&[("v2", 3_500)]));
    let tx = chain.staking(&operator, StakingCall::unjail(v1), 0);
    let b = chain.block(vec![tx]);
    assert_eq!(failure(&b, 0), format!("module staking: validator {v1}'s self-bond is 600; unjailing needs min_self_bond = 1000"));
    // Topping up the self-bond: 400 buy 400 × 200 / 600 = 133 shares; then unjail works.
    let txs = vec![chain.staking(&operator, StakingCall::delegate(v1), 400), chain.staking(&operator, StakingCall::unjail(v1), 0)];
    let b = chain.block(txs);
    assert_success(&b);
    assert_eq!(b.receipts[0].output, aether_primitives::codec::encode(&133u128));
    assert_eq!(chain.validator(1).self_bond, 1_000);
    chain.run_to(6);
    assert_eq!(chain.set(2), names(&[("v2", 4_500), ("v1", 1_000)]));
}

#[test]
fn bonded_delegations_lists_a_delegators_tokens_with_each_validator_of_the_current_set() {
    let mut chain = Chain::new(&genesis(&[(1, 5_000), (2, 6_000), (3, 7_000)], &[40, 41], ""));
    let (d, nobody) = (key(40), key(41));
    let txs = vec![
        chain.staking(&d, StakingCall::delegate(key(1).public()), 1_000),
        chain.staking(&d, StakingCall::delegate(key(3).public()), 300),
    ];
    assert_success(&chain.block(txs));
    let ask = |chain: &mut Chain, who: &Keypair| chain.staking(&key(41), StakingCall::bonded_delegations(who.address()), 0);
    let txs = vec![ask(&mut chain, &d), ask(&mut chain, &nobody), chain.staking(&key(41), StakingCall::bonded_delegations(d.address()), 5)];
    let b = chain.block(txs);
    let answer: Vec<(PublicKey, Amount)> = borsh::from_slice(&b.receipts[0].output).unwrap();
    // In the order of the current set (genesis order in epoch 0); none with validator 2.
    let set: Vec<PublicKey> = chain.ledger.validator_set(0).unwrap().unwrap().iter().map(|v| v.identity).collect();
    let mut want = vec![(key(1).public(), 1_000), (key(3).public(), 300)];
    want.sort_by_key(|(id, _)| set.iter().position(|s| s == id));
    assert_eq!(answer, want);
    assert_eq!(borsh::from_slice::<Vec<(PublicKey, Amount)>>(&b.receipts[1].output).unwrap(), vec![], "no delegation: empty");
    assert_eq!(failure(&b, 2), "module staking: BondedDelegations takes no value; the transaction sent 5 (it is refunded)");
}
