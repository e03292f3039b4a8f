//! `UpdateParams`: only the configured governance module (here the harness's forwarding
//! `slashing` module, named as governance in genesis) may change the parameters; a change
//! names only the fields it changes, is checked like genesis, and applies from the next call.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use aether_api::module::module_address;
use aether_module_staking::StakingCall;

#[test]
fn only_the_governance_module_updates_params_and_updates_are_checked_like_genesis() {
    let mut chain = Chain::new(&genesis(&[(1, 3_000), (2, 3_000)], &[30], r#"{"governance":"slashing","min_delegation":"200"}"#));
    let user = key(30);
    let v1 = key(1).public();
    let txs = vec![
        chain.staking(&user, StakingCall::update_params(r#"{"min_delegation":"50"}"#), 0),
        chain.slash(&user, StakingCall::update_params(r#"{"unbonding_epochs":1}"#)),
        chain.slash(&user, StakingCall::update_params(r#"{"max_validators":0}"#)),
        chain.slash(&user, StakingCall::update_params(r#"{"min_delegation":"50","max_validators":1}"#)),
        // Applies from the next call: 50 is now enough.
        chain.staking(&user, StakingCall::delegate(v1), 50),
    ];
    let b = chain.block(txs);
    assert_eq!(
        failure(&b, 0),
        format!(
            "module staking: only the governance module \"slashing\" (address {}) may update parameters; the caller is {}",
            module_address("slashing"),
            user.address()
        )
    );
    assert_eq!(failure(&b, 1), "module slashing: staking genesis params: unbonding_epochs cannot change after genesis");
    assert_eq!(failure(&b, 2), "module slashing: staking genesis params: max_validators must be 1..=512; got 0");
    assert_eq!(b.receipts[3].status, aether_primitives::types::TxStatus::Success);
    assert_eq!(b.receipts[4].status, aether_primitives::types::TxStatus::Success);
    let params: serde_json::Value = serde_json::from_slice(&chain.query("params", &[]).unwrap()).unwrap();
    assert_eq!((params["min_delegation"].as_str(), params["max_validators"].as_u64()), (Some("50"), Some(1)));
    assert_eq!(params["unbonding_epochs"], 7, "untouched fields keep their values");
    // One seat from the next epoch on: the higher stake (v1, 3,050 + its reward) keeps it.
    chain.run_to(3);
    assert_eq!(chain.set(1).len(), 1);
    assert_eq!(chain.set(1)[0].0, "v1");
}
