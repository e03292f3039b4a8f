//! What staking costs in gas, measured through the ledger: each call (from receipts) and the
//! `end_epoch` hook with 100 and with 512 validators, against `HOOK_GAS_PER_EPOCH`.
//!
//! The hook's gas is not in any receipt, so a wrapper module of the same name runs the very
//! same `end_epoch` inside a transaction (then fails, so nothing it did is kept) and the
//! receipt's `gas_used` is the hook's cost at the ledger's prices. Run with `--nocapture` to
//! see the numbers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use crate::common::*;
use aether_api::module::{ModuleContext, ModuleError, RuntimeModule, HOOK_GAS_PER_EPOCH};
use aether_module_staking::epoch::MAX_MATURED_PER_EPOCH;
use aether_module_staking::{Staking, StakingCall};
use aether_primitives::types::*;

/// Staking, plus a call `measure` that runs `end_epoch` for the current epoch and fails; its
/// real `end_epoch` first burns `ballast` gas (to prove what is left of the budget suffices).
struct Metered {
    ballast: u64,
}

impl RuntimeModule for Metered {
    fn name(&self) -> &'static str {
        "staking"
    }
    fn version(&self) -> u32 {
        1
    }
    fn init_genesis(&self, cx: &mut dyn ModuleContext, params: &[u8]) -> Result<(), ModuleError> {
        Staking.init_genesis(cx, params)
    }
    fn call(&self, cx: &mut dyn ModuleContext, call: &[u8]) -> Result<Vec<u8>, ModuleError> {
        if call == b"measure" {
            let epoch = cx.epoch();
            let set = Staking.end_epoch(cx, epoch)?;
            return Err(ModuleError::Failed(format!("measured; set of {}", set.map_or(0, |s| s.len()))));
        }
        Staking.call(cx, call)
    }
    fn end_epoch(&self, cx: &mut dyn ModuleContext, epoch: u64) -> Result<Option<Vec<ValidatorEntry>>, ModuleError> {
        cx.charge(self.ballast)?;
        Staking.end_epoch(cx, epoch)
    }
    fn query(&self, cx: &mut dyn ModuleContext, path: &str, request: &[u8]) -> Result<Vec<u8>, ModuleError> {
        Staking.query(cx, path, request)
    }
}

fn validator_key(i: u16) -> Keypair {
    let mut seed = [0xA5; 32];
    seed[..2].copy_from_slice(&i.to_be_bytes());
    Keypair::from_seed(seed)
}

/// `end_epoch`'s gas as the measuring transaction's receipt reports it (`None` when not
/// measuring: a transaction may use at most 50M gas).
fn measure(chain: &mut Chain, n: usize, measuring: bool) -> Option<u64> {
    if !measuring {
        chain.block(vec![]);
        return None;
    }
    let tx = chain.tx_with_gas(&key(1), "staking", b"measure".to_vec(), 0, 50_000_000);
    let b = chain.block(vec![tx]);
    assert_eq!(failure(&b, 0), format!("module staking: measured; set of {n}"), "the measurement ran to the end");
    Some(b.receipts[0].gas_used)
}

/// A chain of `n` genesis validators and 20 delegators who unbond in epoch 0. Returns
/// `end_epoch`'s gas at epoch 0's boundary (nothing matured) and epoch 1's (20 matured). The
/// harness asserts the real hooks (after `ballast`) did not fail.
fn run(n: u16, ballast: u64, measuring: bool) -> (Option<u64>, Option<u64>) {
    let mut g = genesis(&[], &(1..=DELEGATORS).collect::<Vec<u8>>(), &format!(r#"{{"max_validators":{n},"unbonding_epochs":1}}"#));
    g.validators = (0..n)
        .map(|i| {
            let k = validator_key(i);
            ValidatorEntry {
                name: format!("g{i}"),
                identity: k.public(),
                consensus_key: k.public().0.to_vec(),
                stake: 10_000 + Amount::from(i),
            }
        })
        .collect();
    let mut chain = Chain::with_module(&g, Arc::new(Metered { ballast }));
    let target = validator_key(0).public();
    // Height 1: delegations; height 2: each unbonds, maturing at the end of epoch 1.
    let txs = (1..=DELEGATORS).map(|u| chain.staking(&key(u), StakingCall::delegate(target), 100)).collect();
    assert_success(&chain.block(txs));
    let txs = (1..=DELEGATORS).map(|u| chain.staking(&key(u), StakingCall::unbond(target, 100), 0)).collect();
    assert_success(&chain.block(txs));
    // Height 3 (epoch 0's boundary): n rewards, n set members, nothing matured.
    let without_unbondings = measure(&mut chain, n as usize, measuring);
    assert_eq!(chain.set(1).len(), n as usize, "the real hook fitted and named every validator");
    chain.run_to(5);
    // Height 6 (epoch 1's boundary): the same, plus 20 matured unbondings, which the real
    // hook then pays (the measuring call runs before it and is reverted).
    let before = chain.balance(&key(2).address());
    let with_unbondings = measure(&mut chain, n as usize, measuring);
    assert_eq!(chain.balance(&key(2).address()), before + 100, "the real hook paid the unbonding");
    (without_unbondings, with_unbondings)
}

const DELEGATORS: u8 = 20;

#[test]
fn end_epoch_fits_the_hook_budget_with_512_validators_and_the_most_matured_unbondings() {
    let (base100, with100) = run(100, 0, true);
    let (base100, with100) = (base100.unwrap(), with100.unwrap());
    let per_unbonding = (with100 - base100) / u64::from(DELEGATORS);
    let (base250, _) = run(250, 0, true);
    let base250 = base250.unwrap();
    let per_validator = (base250 - base100) / 150;
    let base512 = base250 + 262 * per_validator;
    let matured = per_unbonding * MAX_MATURED_PER_EPOCH as u64;
    eprintln!("end_epoch, 100 validators: {base100} gas; with {DELEGATORS} matured unbondings {with100} ({per_unbonding} each)");
    eprintln!("end_epoch, 250 validators: {base250} gas ({per_validator} per validator)");
    eprintln!(
        "end_epoch, 512 validators ≈ {base512}; plus {MAX_MATURED_PER_EPOCH} matured ≈ {} of {HOOK_GAS_PER_EPOCH}",
        base512 + matured
    );
    // Proof for the worst case at 512 seats: the real hook still succeeds after first
    // burning what MAX_MATURED_PER_EPOCH matured unbondings would cost.
    run(512, matured, false);
}

/// What Register costs in `gas_of_each_call` (a 32-byte consensus key, a 3-byte name).
const REGISTER_GAS: u64 = 5_486_252;

#[test]
fn gas_of_each_call() {
    let mut chain = Chain::new(&genesis(&[(1, 3_000), (2, 3_000)], &[30, 31, 40], r#"{"unbonding_epochs":2}"#));
    let v1 = key(1).public();
    let register = StakingCall::register(&key(10), &key(31).address(), key(10).public().0.to_vec(), "v10", 500);
    let txs = vec![
        chain.staking(&key(31), register, 2_000),
        chain.staking(&key(30), StakingCall::delegate(v1), 1_000),
        chain.staking(&key(1), StakingCall::set_commission(v1, 700), 0),
    ];
    let b1 = chain.block(txs);
    assert_success(&b1);
    let txs = vec![chain.staking(&key(30), StakingCall::unbond(v1, 400), 0), chain.slash(&key(40), StakingCall::slash(v1, 0, 100, true))];
    let b2 = chain.block(txs);
    assert_success(&b2);
    chain.run_to(3);
    let tx = chain.staking(&key(1), StakingCall::unjail(v1), 0);
    let b3 = chain.block(vec![tx]);
    assert_success(&b3);
    let gas = [
        ("Register", b1.receipts[0].gas_used),
        ("Delegate", b1.receipts[1].gas_used),
        ("SetCommission", b1.receipts[2].gas_used),
        ("Unbond", b2.receipts[0].gas_used),
        ("Slash (through the slashing module, 1 unbonding entry)", b2.receipts[1].gas_used),
        ("Unjail", b3.receipts[0].gas_used),
    ];
    for (call, used) in gas {
        eprintln!("{call}: {used} gas");
        assert!(used < GAS, "{call} fits the tests' 10M gas limit");
    }
    // Registration is dominated by the engine's key check (5M) and the identity signature
    // (0.3M), priced from `aether bench module-gas` so that register gets no more CPU per gas
    // than a contract call. Pinned: a change is a change of the chain's rules.
    assert_eq!((aether_api::module::CHECK_CONSENSUS_KEY_GAS, aether_module_staking::calls::VERIFY_GAS), (5_000_000, 300_000));
    assert_eq!(b1.receipts[0].gas_used, REGISTER_GAS, "Register's gas");
}

#[test]
fn slash_gas_does_not_grow_with_the_number_of_unbonding_delegators() {
    let users: Vec<u8> = (100..120).collect();
    let mut chain = Chain::new(&genesis(&[(1, 3_000), (2, 3_000)], &users, r#"{"unbonding_epochs":2}"#));
    let v1 = key(1).public();
    let txs = users.iter().map(|u| chain.staking(&key(*u), StakingCall::delegate(v1), 100)).collect();
    assert_success(&chain.block(txs));
    let txs = users.iter().map(|u| chain.staking(&key(*u), StakingCall::unbond(v1, 100), 0)).collect();
    assert_success(&chain.block(txs));
    let txs = vec![
        chain.slash(&key(100), StakingCall::slash(key(2).public(), 0, 100, false)),
        chain.slash(&key(100), StakingCall::slash(v1, 0, 100, false)),
    ];
    let b = chain.block(txs);
    assert_success(&b);
    let (none, twenty) = (b.receipts[0].gas_used, b.receipts[1].gas_used);
    eprintln!("Slash: {none} gas with no unbonding entries, {twenty} with 20 entries in one pool");
    // One pool read and written, whatever the number of entries in it.
    assert!(twenty - none < 100_000, "{twenty} - {none}");
    // Each entry lost 1%: 100 → 99.
    assert!(users.iter().all(|u| chain.unbondings(&key(*u).address())[0].amount == 99));
}
