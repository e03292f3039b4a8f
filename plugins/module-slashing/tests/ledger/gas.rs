//! What the `begin_block` hook costs, measured through the ledger, against its budget
//! (`HOOK_GAS_PER_BLOCK`, 10M per module per block for begin and end together).
//!
//! The hook's gas is not in any receipt, so a wrapper module of the same name runs the very
//! same `begin_block` inside a transaction (then fails, so nothing it did is kept) and the
//! receipt's `gas_used` is the hook's cost at the ledger's prices (plus the transaction's
//! call overhead, so slightly more). The real hook then runs in the next block after first
//! burning `HOOK_GAS_PER_BLOCK - measured` as ballast: it succeeding proves the measured cost
//! fits; with a little more ballast it runs out (showing the ballast is real). Run with
//! `--nocapture` to see the numbers.
//!
//! Worst case measured: 16 pieces (the ledger's cap), each against a different validator
//! with an unbonding pool to cut, in a set of 512 validators (the most a set holds) with
//! 176-byte consensus keys (HotStuff's) and 64-byte names: reading the set is the one cost
//! that grows with it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::common::*;
use aether_api::module::{ModuleContext, ModuleError, RuntimeModule, HOOK_GAS_PER_BLOCK};
use aether_module_slashing::params::MAX_EVIDENCE_PER_BLOCK_CAP;
use aether_module_slashing::{Slashing, DOUBLE_VOTE};
use aether_module_staking::StakingCall;
use aether_primitives::types::*;

/// Slashing, plus a call `measure ‖ borsh(Vec<Evidence>)` that runs `begin_block` on that
/// evidence and fails; its real `begin_block` first burns `ballast` gas when there is
/// evidence.
struct Metered {
    ballast: Arc<AtomicU64>,
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
        Err(ModuleError::Failed(format!("measured {} pieces", evidence.len())))
    }
    fn begin_block(&self, cx: &mut dyn ModuleContext, evidence: &[Evidence]) -> Result<(), ModuleError> {
        if !evidence.is_empty() {
            cx.charge(self.ballast.load(Ordering::SeqCst))?;
        }
        Slashing.begin_block(cx, evidence)
    }
    fn query(&self, cx: &mut dyn ModuleContext, path: &str, request: &[u8]) -> Result<Vec<u8>, ModuleError> {
        Slashing.query(cx, path, request)
    }
}

fn validator_key(i: u16) -> Keypair {
    let mut seed = [0x5A; 32];
    seed[..2].copy_from_slice(&i.to_be_bytes());
    Keypair::from_seed(seed)
}

const PIECES: u16 = MAX_EVIDENCE_PER_BLOCK_CAP as u16;

struct Measured {
    one: u64,
    all: u64,
}

/// A chain of `n` genesis validators (consensus keys of `key_len` bytes, names of
/// `name_len`); the first [`PIECES`] unbond a little in block 1 (so each slash also cuts a
/// pool); block 2 measures the hook on 1 and on all pieces; block 3 records the pieces with
/// the real hook behind `HOOK_GAS_PER_BLOCK - measured + extra` of ballast. Returns the
/// measurements and block 3.
fn run(n: u16, key_len: usize, name_len: usize, extra: u64) -> (Measured, Arc<aether_node::ledger::ExecutedBlock>, Chain) {
    let mut g = genesis(&[], &[], r#"{"max_validators":512,"slasher":"slashing","unbonding_epochs":2}"#, "");
    g.validators = (0..n)
        .map(|i| {
            let k = validator_key(i);
            let mut consensus_key = vec![i as u8; key_len];
            consensus_key[..2].copy_from_slice(&i.to_be_bytes());
            ValidatorEntry { name: format!("{i:0>name_len$}"), identity: k.public(), consensus_key, stake: 10_000 + Amount::from(i) }
        })
        .collect();
    g.accounts = (0..PIECES).map(|i| GenesisAccount { address: validator_key(i).address(), balance: FUNDS }).collect();
    g.accounts.sort_by_key(|a| a.address);
    let ballast = Arc::new(AtomicU64::new(0));
    let mut chain = Chain::with_module(&g, Arc::new(Metered { ballast: ballast.clone() }));
    let txs = (0..PIECES).map(|i| chain.staking(&validator_key(i), StakingCall::unbond(validator_key(i).public(), 10), 0)).collect();
    assert_success(&chain.block(txs));

    let pieces: Vec<Evidence> =
        (0..PIECES).map(|i| evidence(u32::from(i), DOUBLE_VOTE, &format!("double vote of validator {i}"))).collect();
    let measure = |chain: &mut Chain, pieces: &[Evidence]| {
        let call = [&b"measure"[..], &borsh::to_vec(&pieces.to_vec()).unwrap()].concat();
        chain.tx_with_gas(&validator_key(0), "slashing", call, 0, 50_000_000)
    };
    let txs = vec![measure(&mut chain, &pieces[..1]), measure(&mut chain, &pieces)];
    let b = chain.block(txs);
    assert_eq!(failure(&b, 0), "module slashing: measured 1 pieces");
    assert_eq!(failure(&b, 1), format!("module slashing: measured {PIECES} pieces"));
    let measured = Measured { one: b.receipts[0].gas_used, all: b.receipts[1].gas_used };

    ballast.store(HOOK_GAS_PER_BLOCK - measured.all + extra, Ordering::SeqCst);
    let b = chain.block_allowing_hook_failures(vec![], pieces);
    ballast.store(0, Ordering::SeqCst);
    (measured, b, chain)
}

#[test]
fn sixteen_pieces_fit_the_hook_budget_with_512_validators_and_hotstuff_keys() {
    let (small, b, _) = run(20, 32, 3, 0);
    assert!(hook_failures(&b).is_empty(), "{:?}", hook_failures(&b));
    assert_eq!(slashed(&b).len(), usize::from(PIECES));
    let per_piece = (small.all - small.one) / u64::from(PIECES - 1);
    eprintln!(
        "begin_block, 20 validators (32-byte keys): 1 piece {} gas, {PIECES} pieces {} ({per_piece} per further piece)",
        small.one, small.all
    );

    let (big, b, chain) = run(512, 176, 64, 0);
    assert!(hook_failures(&b).is_empty(), "{:?}", hook_failures(&b));
    let s = slashed(&b);
    assert_eq!(s.len(), usize::from(PIECES));
    assert!(s.iter().all(|s| s.burned == (10_000 + u128::from(s.offender) - 10) / 5 + 10 / 5), "tokens and the pool, 20% each");
    eprintln!(
        "begin_block, 512 validators (176-byte keys, 64-byte names): 1 piece {} gas, {PIECES} pieces {} of {HOOK_GAS_PER_BLOCK}",
        big.one, big.all
    );
    // Measured 5.66M: 1.0M for the first piece (the hook's downtime work on a plain height,
    // 0.7M, and reading the parent's 512 signers, which also map offenders), then about
    // 310k a piece (staking's Slash with a pool to cut, and this module's reads, writes,
    // hash and event). Before the signer list mapped offenders, reading the 512-member set
    // (names, consensus keys) made it 8.1M. The worst block: `downtime_gas.rs`.
    assert!(big.all < HOOK_GAS_PER_BLOCK, "{}", big.all);
    drop(chain);

    // The ballast is real: a little more and the hook runs out (and is reverted whole).
    let (_, b, chain) = run(20, 32, 3, 100_000);
    assert_eq!(hook_failures(&b), vec!["begin_block: out of gas".to_string()]);
    assert!(slashed(&b).is_empty());
    assert_eq!(chain.validator_tokens_of(&validator_key(0).public()), 10_000 - 10);
}

#[test]
fn the_cap_is_the_ledgers() {
    assert_eq!(MAX_EVIDENCE_PER_BLOCK_CAP as usize, aether_node::ledger::MAX_BLOCK_EVIDENCE);
}
