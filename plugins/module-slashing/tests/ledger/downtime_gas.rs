//! What downtime adds to the `begin_block` hook, measured through the ledger at 512
//! validators (176-byte consensus keys, 64-byte names), against the 10M budget the module's
//! hooks share per block.
//!
//! As in `gas.rs`, a wrapper of the same name runs the very same `begin_block` inside a
//! transaction that then fails: its receipt's `gas_used` is the hook's cost (plus the call's
//! overhead). The worst block: the first measured height of a new epoch's set (counts carried
//! to the new set by identity: the old identity list read, the new one written), whose ring
//! slot holds a height of an older epoch (mapped back through that epoch's identity list),
//! with `MAX_JUDGED_PER_BLOCK` validators over the limit (each a staking `Slash` cutting an
//! unbonding pool) and 16 pieces of double-sign evidence (each a `Slash` with a pool) in the
//! same block. Then the same chain again, with the real hook: it must run without failing.
//! Run with `--nocapture` to see the numbers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::common::*;
use aether_api::module::{ModuleContext, ModuleError, RuntimeModule, HOOK_GAS_PER_BLOCK};
use aether_module_slashing::downtime::MAX_JUDGED_PER_BLOCK;
use aether_module_slashing::{Slashing, DOUBLE_VOTE};
use aether_module_staking::StakingCall;
use aether_primitives::types::*;

/// Slashing, plus a call `measure ‖ borsh(Vec<Evidence>)` that runs `begin_block` and fails;
/// its own `begin_block` does nothing while `skip` is set (so the measured call sees the state
/// the hook would have).
struct Metered {
    skip: Arc<AtomicBool>,
}

impl RuntimeModule for Metered {
    fn name(&self) -> &'static str {
        "slashing"
    }
    fn version(&self) -> u32 {
        1
    }
    fn init_genesis(&self, cx: &mut dyn ModuleContext, params: &[u8]) -> Result<(), ModuleError> {
        Slashing.init_genesis(cx, params)
    }
    fn call(&self, cx: &mut dyn ModuleContext, call: &[u8]) -> Result<Vec<u8>, ModuleError> {
        let evidence: Vec<Evidence> = borsh::from_slice(call.strip_prefix(b"measure").unwrap()).unwrap();
        Slashing.begin_block(cx, &evidence)?;
        Err(ModuleError::Failed("measured".into()))
    }
    fn begin_block(&self, cx: &mut dyn ModuleContext, evidence: &[Evidence]) -> Result<(), ModuleError> {
        if self.skip.load(Ordering::SeqCst) {
            return Ok(());
        }
        Slashing.begin_block(cx, evidence)
    }
    fn query(&self, cx: &mut dyn ModuleContext, path: &str, request: &[u8]) -> Result<Vec<u8>, ModuleError> {
        Slashing.query(cx, path, request)
    }
}

fn validator_key(i: u16) -> Keypair {
    let mut seed = [0xD7; 32];
    seed[..2].copy_from_slice(&i.to_be_bytes());
    Keypair::from_seed(seed)
}

const VALIDATORS: u16 = 512;
const PIECES: u16 = 16;
/// Validators `PIECES..PIECES + JUDGED` miss heights 5..=9: 5 of a window of 8, one too many,
/// first at height 9, the first of epoch 2, which block 10 measures.
const JUDGED: u16 = MAX_JUDGED_PER_BLOCK as u16;

/// The chain up to height 9 (unbondings of the 20 validators to punish in block 9, so each
/// slash also cuts a pool), the evidence for block 10, and the measuring transaction's cost
/// in block 3 (a plain height: nothing leaves the ring yet).
fn chain_to_the_worst_block(skip: Arc<AtomicBool>) -> (Chain, Vec<Evidence>, u64) {
    let staking = r#"{"max_validators":512,"slasher":"slashing","unbonding_epochs":2}"#;
    let slashing = r#"{"downtime_slash_bps":100,"min_signed_per_window_bps":5000,"signed_blocks_window":8}"#;
    let mut g = genesis(&[], &[], staking, slashing);
    g.validators = (0..VALIDATORS)
        .map(|i| {
            let mut consensus_key = vec![i as u8; 176];
            consensus_key[..2].copy_from_slice(&i.to_be_bytes());
            ValidatorEntry {
                name: format!("{i:0>64}"),
                identity: validator_key(i).public(),
                consensus_key,
                stake: 10_000 + Amount::from(i),
            }
        })
        .collect();
    g.accounts = (0..PIECES + JUDGED).map(|i| GenesisAccount { address: validator_key(i).address(), balance: FUNDS }).collect();
    g.accounts.sort_by_key(|a| a.address);
    let mut chain = Chain::with_module(&g, Arc::new(Metered { skip }));
    let measure = |chain: &mut Chain, pieces: &[Evidence]| {
        let call = [&b"measure"[..], &borsh::to_vec(&pieces.to_vec()).unwrap()].concat();
        chain.tx_with_gas(&validator_key(0), "slashing", call, 0, 50_000_000)
    };
    let mut plain = 0;
    for height in 1..=9u64 {
        chain.absent = if (5..=9).contains(&height) {
            (PIECES..PIECES + JUDGED).map(|i| validator_key(i).public()).collect()
        } else {
            Default::default()
        };
        let txs = match height {
            3 => vec![measure(&mut chain, &[])],
            9 => (0..PIECES + JUDGED)
                .map(|i| chain.staking(&validator_key(i), StakingCall::unbond(validator_key(i).public(), 10), 0))
                .collect(),
            _ => vec![],
        };
        let b = chain.block(txs);
        if height == 3 {
            assert_eq!(failure(&b, 0), "module slashing: measured");
            plain = b.receipts[0].gas_used;
        } else {
            assert_success(&b);
        }
        assert!(downtime(&b).is_empty(), "height {height}: nobody is over the limit before block 10");
    }
    chain.absent.clear();
    let set = chain.ledger.validator_set(2).unwrap().unwrap();
    let index = |i: u16| set.iter().position(|v| v.identity == validator_key(i).public()).unwrap() as u32;
    let pieces = (0..PIECES).map(|i| evidence_in(2, index(i), DOUBLE_VOTE, &format!("double vote of validator {i}"))).collect();
    (chain, pieces, plain)
}

#[test]
fn the_worst_block_fits_the_hook_budget_with_512_validators() {
    // Measured: block 10's hook, run inside a transaction while the real hook stands aside.
    let skip = Arc::new(AtomicBool::new(false));
    let (mut chain, pieces, plain) = chain_to_the_worst_block(skip.clone());
    skip.store(true, Ordering::SeqCst);
    let call = [&b"measure"[..], &borsh::to_vec(&Vec::<Evidence>::new()).unwrap()].concat();
    let downtime_only = chain.tx_with_gas(&validator_key(0), "slashing", call, 0, 50_000_000);
    let call = [&b"measure"[..], &borsh::to_vec(&pieces).unwrap()].concat();
    let with_evidence = chain.tx_with_gas(&validator_key(1), "slashing", call, 0, 50_000_000);
    let b = chain.block(vec![downtime_only, with_evidence]);
    let (worst_downtime, worst) = (b.receipts[0].gas_used, b.receipts[1].gas_used);
    eprintln!(
        "begin_block with {VALIDATORS} validators: a plain height {plain} gas; the worst height (new set, an older epoch's height leaving the ring, {JUDGED} punished) {worst_downtime}; with {PIECES} pieces of evidence too {worst} of {HOOK_GAS_PER_BLOCK}"
    );
    assert!(worst < HOOK_GAS_PER_BLOCK, "{worst}");

    // The real hook on the same block: it runs whole, punishing all of them.
    let (mut chain, pieces, _) = chain_to_the_worst_block(Arc::new(AtomicBool::new(false)));
    let b = chain.block_with(vec![], pieces);
    assert_eq!(slashed(&b).len(), usize::from(PIECES));
    let punished = downtime(&b);
    assert_eq!(punished.len(), usize::from(JUDGED));
    assert!(punished.iter().all(|p| p.missed == 5 && p.epoch == 2 && p.jailed));
    assert_eq!(staking_slashes(&b), usize::from(PIECES + JUDGED));
}
