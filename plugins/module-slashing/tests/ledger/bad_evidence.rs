//! Evidence that slashes nobody: an index outside the set, an unknown kind, a validator
//! staking refuses to slash, pieces over the cap. Each gives an event; the block commits and
//! the chain goes on. Bad genesis params stop the node with a clear message.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use aether_module_slashing::{OutcomeInfo, Slashing, DOUBLE_PROPOSAL, DOUBLE_VOTE};

const STAKING: &str = r#"{"slasher":"slashing","unbonding_epochs":2}"#;

#[test]
fn an_index_outside_the_set_or_an_unknown_kind_is_ignored_and_the_chain_goes_on() {
    let mut chain = Chain::new(&genesis(&[(1, 3_000), (2, 2_000), (3, 1_500)], &[], STAKING, ""));
    let outside = evidence(3, DOUBLE_VOTE, "index 3 of a set of 3");
    let unknown = evidence(0, "double-nap", "slept twice");
    let good = evidence(2, DOUBLE_PROPOSAL, "v3 proposed twice");
    // Staking mints the genesis stake into its account in block 1 (its init_genesis).
    let before = 3_000 + 2_000 + 1_500;
    let b = chain.block_with(vec![], vec![outside.clone(), unknown.clone(), good.clone()]);
    let ig = ignored(&b);
    assert_eq!(ig.len(), 2);
    assert_eq!((ig[0].evidence, ig[0].offender, ig[0].kind.as_str()), (outside.hash(), 3, DOUBLE_VOTE));
    assert_eq!(ig[0].reason, "offender index 3 is outside epoch 0's validator set (3 validators)");
    assert_eq!((ig[1].evidence, ig[1].kind.as_str()), (unknown.hash(), "double-nap"));
    assert_eq!(ig[1].reason, r#"unknown kind: only "double-vote" and "double-proposal" are slashed"#);
    // The bad pieces did not stop the good one after them.
    let s = slashed(&b);
    assert_eq!((s.len(), s[0].validator, s[0].burned), (1, key(3).public(), 300));
    assert_eq!(chain.staking_balance(), before - 300);
    assert!(chain.processed(&outside) && chain.processed(&unknown) && chain.processed(&good));
    assert!(chain.offences(1).is_empty());
    // The event's wire form.
    let raw = b.hook_events.iter().find(|e| e.topic == b"slashing/evidence_ignored").unwrap();
    let text = String::from_utf8(raw.data.clone()).unwrap();
    assert!(text.starts_with(&format!(r#"{{"evidence":"{}","offender":3,"kind":"double-vote","reason":"#, outside.hash())), "{text}");

    // The ledger records a piece only once: offered again, it is left out of the block.
    let head = chain.ledger.head();
    let built =
        chain.ledger.build_block(&head.block.hash, head.certificate, vec![], vec![good], head.header.time_ms + 10, PROPOSER).unwrap();
    assert!(built.executed.block.evidence.is_empty());
    chain.run_to(2 * EPOCH);
    assert_eq!(chain.set(2), ["v1", "v2"]);
}

#[test]
fn a_slash_staking_refuses_gives_an_event_and_the_chain_goes_on() {
    // Staking lets another module slash, so it refuses this one's calls.
    let g = genesis(&[(1, 3_000), (2, 2_000)], &[], r#"{"slasher":"someone_else"}"#, "");
    let mut chain = Chain::new(&g);
    let (e, again) = (evidence(1, DOUBLE_VOTE, "a"), evidence(1, DOUBLE_VOTE, "b"));
    let b = chain.block_with(vec![], vec![e.clone()]);
    assert!(slashed(&b).is_empty());
    let r = refused(&b);
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].evidence, r[0].validator, r[0].epoch, r[0].kind.as_str()), (e.hash(), key(2).public(), 0, DOUBLE_VOTE));
    let expected = format!(
        "only the slasher module \"someone_else\" (address {}) may slash; the caller is {}",
        aether_api::module::module_address("someone_else"),
        aether_api::module::module_address("slashing")
    );
    assert_eq!(r[0].reason, expected);
    assert_eq!(chain.validator(2).tokens, 2_000);
    assert_eq!(chain.validator(2).jailed_since, None);
    assert_eq!(chain.offences(2)[0].outcome, OutcomeInfo::Refused { reason: expected });
    // One attempt per offence: a second piece in the epoch is not sent to staking again.
    let b = chain.block_with(vec![], vec![again]);
    assert_eq!((refused(&b).len(), ignored(&b).len()), (0, 1));
    chain.run_to(2 * EPOCH);
    assert_eq!(chain.set(2), ["v1", "v2"]);
}

#[test]
fn pieces_over_max_evidence_per_block_are_reported_not_slashed() {
    let g = genesis(&[(1, 3_000), (2, 2_000), (3, 1_500)], &[], STAKING, r#"{"max_evidence_per_block":2}"#);
    let mut chain = Chain::new(&g);
    let pieces: Vec<_> = (0..3).map(|i| evidence(i, DOUBLE_VOTE, &format!("piece {i}"))).collect();
    let b = chain.block_with(vec![], pieces.clone());
    assert_eq!(slashed(&b).iter().map(|s| s.offender).collect::<Vec<_>>(), vec![0, 1]);
    let ig = ignored(&b);
    assert_eq!((ig.len(), ig[0].evidence, ig[0].reason.as_str()), (1, pieces[2].hash(), "over max_evidence_per_block (2): not handled"));
    assert_eq!(chain.validator(3).tokens, 1_500);
}

#[test]
fn bad_params_or_a_missing_staking_module_stop_genesis_with_a_clear_message() {
    let refused_genesis = |params: &str| {
        let g = genesis(&[(1, 3_000)], &[], STAKING, params);
        open(&g, std::sync::Arc::new(aether_module_slashing::Slashing)).check_genesis_init().unwrap_err().to_string()
    };
    let e = refused_genesis(r#"{"double_sign_bps":20000}"#);
    assert!(e.contains("slashing genesis params: double_sign_bps must be at most 10000 (100%); got 20000"), "{e}");
    let e = refused_genesis(r#"{"double_sign_pct":20}"#);
    assert!(e.contains("unknown field `double_sign_pct`"), "{e}");
    let e = refused_genesis(r#"{"staking_module":"stakin"}"#);
    assert!(e.contains(r#"staking_module "stakin" is not a module of this chain"#), "{e}");
}

#[test]
fn transactions_and_bad_queries_are_refused() {
    let mut chain = Chain::new(&genesis(&[(1, 3_000)], &[30], STAKING, ""));
    let tx = chain.tx_with_gas(&key(30), "slashing", b"slash v1 please".to_vec(), 0, GAS);
    let b = chain.block(vec![tx]);
    assert!(failure(&b, 0).contains("slashing takes no transactions"), "{}", failure(&b, 0));
    let e = chain.slashing_query("offences", &[1, 2, 3]).unwrap_err().to_string();
    assert!(e.contains("an offences request (a validator identity key) must be 32 bytes; got 3"), "{e}");
    assert!(chain.slashing_query("evidence", &[]).is_err());
    let params = String::from_utf8(chain.slashing_query("params", &[]).unwrap()).unwrap();
    assert_eq!(
        params,
        r#"{"double_sign_bps":2000,"jail_on_double_sign":true,"staking_module":"staking","max_evidence_per_block":16,"signed_blocks_window":100,"min_signed_per_window_bps":5000,"downtime_slash_bps":1,"downtime_jail":true}"#
    );
}

/// Slashing, plus a call that hands its (borsh `Vec<Evidence>`) argument to `begin_block`
/// again: the only way to show the module itself, not just the ledger, never handles a
/// piece twice.
struct Replayer;

impl aether_api::module::RuntimeModule for Replayer {
    fn name(&self) -> &'static str {
        "slashing"
    }
    fn version(&self) -> u32 {
        1
    }
    fn init_genesis(&self, cx: &mut dyn aether_api::module::ModuleContext, params: &[u8]) -> Result<(), aether_api::module::ModuleError> {
        Slashing.init_genesis(cx, params)
    }
    fn call(&self, cx: &mut dyn aether_api::module::ModuleContext, call: &[u8]) -> Result<Vec<u8>, aether_api::module::ModuleError> {
        let evidence: Vec<aether_primitives::types::Evidence> = borsh::from_slice(call).unwrap();
        Slashing.begin_block(cx, &evidence).map(|()| vec![])
    }
    fn begin_block(
        &self,
        cx: &mut dyn aether_api::module::ModuleContext,
        evidence: &[aether_primitives::types::Evidence],
    ) -> Result<(), aether_api::module::ModuleError> {
        Slashing.begin_block(cx, evidence)
    }
    fn query(
        &self,
        cx: &mut dyn aether_api::module::ModuleContext,
        path: &str,
        request: &[u8],
    ) -> Result<Vec<u8>, aether_api::module::ModuleError> {
        Slashing.query(cx, path, request)
    }
}

#[test]
fn a_piece_handed_over_again_is_never_acted_on_twice() {
    let mut chain = Chain::with_module(&genesis(&[(1, 3_000), (2, 2_000)], &[30], STAKING, ""), std::sync::Arc::new(Replayer));
    let e = evidence(1, DOUBLE_VOTE, "a");
    assert_eq!(slashed(&chain.block_with(vec![], vec![e.clone()])).len(), 1);
    // Epoch 1 (so not caught by the once-per-epoch rule): the same piece again.
    chain.run_to(EPOCH);
    let tx = chain.tx_with_gas(&key(30), "slashing", borsh::to_vec(&vec![e.clone()]).unwrap(), 0, GAS);
    let b = chain.block(vec![tx]);
    assert_success(&b);
    let events: Vec<(Vec<u8>, String)> =
        b.receipts[0].events.iter().map(|ev| (ev.topic.clone(), String::from_utf8(ev.data.clone()).unwrap())).collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, b"slashing/evidence_ignored");
    assert!(events[0].1.contains(r#""reason":"already processed at height 1""#), "{}", events[0].1);
    assert_eq!(chain.validator(2).tokens, 1_600 + 400, "slashed once (then epoch 0's reward, 1000 · 2000/5000)");
}
