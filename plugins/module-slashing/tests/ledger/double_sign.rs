//! Double signing through the real ledger and staking: a double vote burns 20% and jails;
//! one slash per validator and epoch however many pieces prove it; a later epoch's offence
//! is slashed again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use aether_module_slashing::{OutcomeInfo, DOUBLE_PROPOSAL, DOUBLE_VOTE};
use aether_module_staking::StakingCall;

const STAKING: &str = r#"{"slasher":"slashing","unbonding_epochs":2}"#;

#[test]
fn a_double_vote_burns_20_percent_jails_and_the_validator_leaves_the_next_set() {
    let mut chain = Chain::new(&genesis(&[(1, 3_000), (2, 2_000), (3, 1_500)], &[], STAKING, r#"{"double_sign_bps":2000}"#));
    assert_eq!(chain.set(0), ["v1", "v2", "v3"]);
    let e = evidence(chain.index_of(0, 2), DOUBLE_VOTE, "v2 voted for two blocks at height 7");
    assert_eq!(e.offender, 1);
    // Staking mints the genesis stake into its account in block 1 (its init_genesis).
    let before = 3_000 + 2_000 + 1_500;

    let b = chain.block_with(vec![], vec![e.clone()]);
    let s = slashed(&b);
    assert_eq!(s.len(), 1);
    let s = &s[0];
    assert_eq!((s.evidence, s.validator, s.offender, s.epoch), (e.hash(), key(2).public(), 1, 0));
    assert_eq!((s.kind.as_str(), s.fraction_bps, s.jailed, s.burned), (DOUBLE_VOTE, 2_000, true, 400));
    assert_eq!((ignored(&b).len(), refused(&b).len(), staking_slashes(&b)), (0, 0, 1));
    // 20% of 2,000, burned: gone from staking's account (the block passed the ledger's
    // conservation check, so it was destroyed, not moved).
    assert_eq!(chain.staking_balance(), before - 400);
    let v = chain.validator(2);
    assert_eq!((v.tokens, v.jailed_since, v.eligible), (1_600, Some(0), false));
    // The others are untouched.
    assert_eq!((chain.validator(1).tokens, chain.validator(3).tokens), (3_000, 1_500));

    // Queries.
    let offences = chain.offences(2);
    assert_eq!(offences.len(), 1);
    assert_eq!((offences[0].epoch, offences[0].kind.as_str(), offences[0].evidence, offences[0].height), (0, DOUBLE_VOTE, e.hash(), 1));
    assert_eq!(offences[0].outcome, OutcomeInfo::Slashed { burned: 400 });
    assert!(chain.offences(1).is_empty());
    assert!(chain.processed(&e));
    assert!(!chain.processed(&evidence(1, DOUBLE_VOTE, "never recorded")));
    let answer = String::from_utf8(chain.slashing_query("offences", &key(2).public().0).unwrap()).unwrap();
    assert!(answer.contains(r#""outcome":{"slashed":{"burned":"400"}}"#), "{answer}");

    // Jailed: out of epoch 1's set, and it stays out (nobody unjails it); the chain goes on.
    chain.run_to(EPOCH);
    assert_eq!(chain.set(1), ["v1", "v3"]);
    chain.run_to(3 * EPOCH);
    assert_eq!(chain.set(3), ["v1", "v3"]);
    assert_eq!(chain.validator(2).tokens, 1_600 + 307, "only epoch 0's reward (1000 · 2000/6500), none since");
}

#[test]
fn one_slash_per_validator_and_epoch_and_again_in_a_later_epoch() {
    let mut chain = Chain::new(&genesis(&[(1, 3_000), (2, 2_000), (3, 1_500)], &[], STAKING, ""));
    let i = chain.index_of(0, 2);
    // Two different double votes in the same block: one slash.
    let (a, b) = (evidence(i, DOUBLE_VOTE, "votes at height 3"), evidence(i, DOUBLE_VOTE, "votes at height 4"));
    let blk = chain.block_with(vec![], vec![a.clone(), b.clone()]);
    assert_eq!(slashed(&blk).len(), 1);
    assert_eq!(staking_slashes(&blk), 1);
    let ig = ignored(&blk);
    assert_eq!(ig.len(), 1);
    assert_eq!(ig[0].evidence, b.hash());
    assert_eq!(
        ig[0].reason,
        format!(
            "validator {}'s offence in epoch 0 was already handled (evidence {}): one slash per validator and epoch",
            key(2).public(),
            a.hash()
        )
    );
    assert!(chain.processed(&a) && chain.processed(&b));
    // A double proposal later in the same epoch: the same offence window, no slash.
    let c = evidence(i, DOUBLE_PROPOSAL, "two proposals at height 5");
    let blk = chain.block_with(vec![], vec![c.clone()]);
    assert_eq!((slashed(&blk).len(), ignored(&blk).len(), staking_slashes(&blk)), (0, 1, 0));
    assert_eq!(chain.validator(2).tokens, 1_600);
    assert_eq!(chain.offences(2).len(), 1);

    // Epoch 1: out of the set; its operator unjails it (jail_epochs 1), so it is back in
    // epoch 2's set.
    chain.run_to(EPOCH);
    assert_eq!(chain.set(1), ["v1", "v3"]);
    let tx = chain.staking(&key(2), StakingCall::unjail(key(2).public()), 0);
    assert_success(&chain.block(vec![tx]));
    chain.run_to(2 * EPOCH);
    assert!(chain.set(2).contains(&"v2".to_string()));

    // Epoch 2: a new offence, slashed again (20% of what it holds now).
    let tokens = chain.validator(2).tokens;
    let d = evidence_in(2, chain.index_of(2, 2), DOUBLE_VOTE, "votes at height 10");
    let blk = chain.block_with(vec![], vec![d.clone()]);
    let s = slashed(&blk);
    assert_eq!((s.len(), s[0].epoch, s[0].burned), (1, 2, tokens / 5));
    assert_eq!(chain.validator(2).tokens, tokens - tokens / 5);
    assert_eq!(chain.validator(2).jailed_since, Some(2));
    let epochs: Vec<(u64, String)> = chain.offences(2).into_iter().map(|o| (o.epoch, o.kind)).collect();
    assert_eq!(epochs, vec![(0, DOUBLE_VOTE.to_string()), (2, DOUBLE_VOTE.to_string())]);
    chain.run_to(3 * EPOCH);
    assert!(!chain.set(3).contains(&"v2".to_string()));
}

#[test]
fn evidence_against_several_validators_in_one_block_slashes_each() {
    let mut chain = Chain::new(&genesis(
        &[(1, 3_000), (2, 2_000), (3, 1_500), (4, 1_000)],
        &[],
        STAKING,
        r#"{"double_sign_bps":1000,"jail_on_double_sign":false}"#,
    ));
    let pieces = vec![evidence(1, DOUBLE_VOTE, "x"), evidence(3, DOUBLE_PROPOSAL, "y")];
    let blk = chain.block_with(vec![], pieces);
    let got: Vec<(u32, u128, bool)> = slashed(&blk).iter().map(|s| (s.offender, s.burned, s.jailed)).collect();
    assert_eq!(got, vec![(1, 200, false), (3, 100, false)]);
    // Not jailed (jail_on_double_sign false): they stay in the next set.
    chain.run_to(EPOCH);
    assert_eq!(chain.set(1).len(), 4);
    // A later epoch: slashed again without any unjail.
    let blk = chain.block_with(vec![], vec![evidence_in(1, chain.index_of(1, 2), DOUBLE_VOTE, "z")]);
    assert_eq!(slashed(&blk)[0].epoch, 1);
    assert_eq!(chain.offences(2).len(), 2);
}

#[test]
fn evidence_of_an_ended_epoch_recorded_in_the_next_slashes_the_stake_of_the_offence_epoch() {
    let mut chain = Chain::new(&genesis(&[(1, 3_000), (2, 2_000), (3, 1_500)], &[30], STAKING, r#"{"double_sign_bps":2000}"#));
    // A delegation moves v3 ahead of v2 in epoch 1's set (sets are ordered by stake): v2 is
    // index 1 in epoch 0 and index 2 in epoch 1. An offence of epoch 0 found only in epoch 1
    // names epoch 0's index.
    let delegation = chain.staking(&key(30), StakingCall::delegate(key(3).public()), 1_000);
    assert_success(&chain.block(vec![delegation]));
    chain.run_to(EPOCH);
    let (in_epoch_0, in_epoch_1) = (chain.index_of(0, 2), chain.index_of(1, 2));
    assert_ne!(in_epoch_0, in_epoch_1, "{:?}", chain.set(1));

    let late = evidence_in(0, in_epoch_0, DOUBLE_VOTE, "v2 voted twice in epoch 0's last block");
    let b = chain.block_with(vec![], vec![late.clone()]);
    let s = slashed(&b);
    assert_eq!(s.len(), 1, "ignored: {:?}, refused: {:?}", ignored(&b), refused(&b));
    assert_eq!((s[0].validator, s[0].epoch), (key(2).public(), 0), "epoch 0's index names v2, and the offence is epoch 0's");
    assert_eq!(chain.offences(2)[0].epoch, 0);

    // Evidence of an epoch that has not begun is ignored.
    let early = evidence_in(5, 0, DOUBLE_VOTE, "from the future");
    let b = chain.block_with(vec![], vec![early]);
    assert!(slashed(&b).is_empty());
    assert!(ignored(&b)[0].reason.contains("after the block's own epoch"), "{:?}", ignored(&b));
}
