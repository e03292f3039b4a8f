//! Genesis validators become bonded validators backed by minted tokens; each epoch's reward
//! is minted once, split by stake in the closing set, with commission to the operator; the
//! boundary header commits to the set staking names.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use crate::common::*;
use aether_api::module::module_address;
use aether_module_staking::{Staking, StakingCall};
use aether_primitives::types::*;

#[test]
fn genesis_validators_are_bonded_and_the_first_boundary_commits_to_the_genesis_set_plus_rewards() {
    let mut chain = Chain::new(&genesis(&[(1, 3_000), (2, 1_000)], &[], r#"{"unbonding_epochs":2}"#));
    chain.block(vec![]);
    // Bonds are backed: the module's account holds the genesis stake it minted.
    assert_eq!(chain.module_balance(), 4_000);
    let v1 = chain.validator(1);
    assert_eq!((v1.tokens, v1.total_shares, v1.self_bond, v1.commission_bps), (3_000, 3_000, 3_000, 0));
    assert_eq!(v1.operator, key(1).address());
    assert!(v1.eligible && v1.jailed_since.is_none());
    assert_eq!(chain.delegation(&key(1).address(), 1).shares, 3_000);
    // The validators' own accounts are untouched: the stake is new tokens in staking's account.
    assert_eq!(chain.balance(&key(1).address()), FUNDS);
    assert_eq!(chain.ledger.account(&module_address("staking")).unwrap().stake, 0, "Account.stake is not used");

    // v2's operator takes 10% commission from now on.
    let tx = chain.staking(&key(2), StakingCall::set_commission(key(2).public(), 1_000), 0);
    assert_success(&chain.block(vec![tx]));
    let operator_before = chain.balance(&key(2).address());

    // Height 3 closes epoch 0: 1,000 minted, 3/4 to v1 (750), 1/4 to v2 (250: 25 commission
    // to its operator, 225 compounding).
    let boundary = chain.block(vec![]);
    let expected = vec![entry(1, 3_750), entry(2, 1_225)];
    assert_eq!(boundary.block.header.next_validators, Some(validator_set_commitment(1, &expected)));
    assert_eq!(chain.ledger.validator_set(1).unwrap(), Some(expected));
    assert_eq!(chain.balance(&key(2).address()) - operator_before, 25);
    assert_eq!(chain.module_balance(), 4_000 + 750 + 225);

    // Epoch 1 by the set's stake 3750 : 1225 of 4975 → 753 and 246, the remainder 1 to the
    // first listed (v1: 754); v2's commission 24 (10% of 246, rounded down), 222 compounds.
    let (module_before, operator_before) = (chain.module_balance(), chain.balance(&key(2).address()));
    chain.run_to(6);
    assert_eq!(chain.set(2), names(&[("v1", 3_750 + 754), ("v2", 1_225 + 222)]));
    assert_eq!(chain.balance(&key(2).address()) - operator_before, 24);
    let minted = (chain.module_balance() - module_before) + (chain.balance(&key(2).address()) - operator_before);
    assert_eq!(minted, 1_000, "exactly reward_per_epoch is minted, commission included");
    assert_eq!(chain.validator(2).tokens, 1_447);
}

#[test]
fn the_node_refuses_to_start_without_the_mint_grant_or_with_bad_params() {
    let mut g = genesis(&[(1, 3_000)], &[], "");
    g.modules[0].mint = false;
    let err = open(&g, Arc::new(Staking)).check_genesis_init().unwrap_err().to_string();
    assert!(err.contains("staking needs the mint grant (`\"mint\": true`"), "{err}");

    for (params, why) in [
        (r#"{"max_validators":600}"#, "max_validators must be 1..=512; got 600"),
        (r#"{"slasher":""}"#, "slasher must be a module name"),
        (r#"{"reward":5}"#, "unknown field `reward`"),
        (r#"{"min_self_bond":"lots"}"#, "staking genesis params"),
    ] {
        let err = open(&genesis(&[(1, 3_000)], &[], params), Arc::new(Staking)).check_genesis_init().unwrap_err().to_string();
        assert!(err.starts_with("genesis parameters of module staking are refused: staking genesis params: "), "{err}");
        assert!(err.contains(why), "{err} should say {why:?}");
    }
}

#[test]
fn queries_answer_deterministically_and_refuse_bad_requests() {
    let mut chain = Chain::new(&genesis(&[(1, 3_000), (2, 1_000)], &[], ""));
    chain.block(vec![]);
    let params: serde_json::Value = serde_json::from_slice(&chain.query("params", &[]).unwrap()).unwrap();
    assert_eq!(params["min_self_bond"], "1000");
    assert_eq!(params["slasher"], "slashing");
    let page = chain.validators();
    assert_eq!(page.validators.len(), 2);
    assert!(page.next_after.is_none());
    assert_eq!(chain.query("validators", &[]).unwrap(), chain.query("validators", &[]).unwrap());
    assert_eq!(
        chain.query("validator", &[1, 2]).unwrap_err().to_string(),
        "the call does not decode: request must be a 32-byte identity key; got 2 bytes"
    );
    assert_eq!(
        chain.query("validator", &key(9).public().0).unwrap_err().to_string(),
        format!("no validator with identity {}", key(9).public())
    );
    assert_eq!(chain.query("nope", &[]).unwrap_err().to_string(), "unknown query \"nope\"");
    assert!(
        chain.invariants().starts_with("ok: 2 validators (2 eligible), 0 unbondings in 0 pools, 4000 bonded"),
        "{}",
        chain.invariants()
    );
}
