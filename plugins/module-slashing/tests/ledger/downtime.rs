//! Downtime through the real ledger and staking: who signed each height comes from the
//! certificates blocks carry for their parents (the harness commits each block with a signer
//! bitmap leaving out `Chain::absent`). Epochs are 4 blocks; windows cross them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use aether_module_staking::StakingCall;
use aether_primitives::types::Certificate;

const STAKING: &str = r#"{"slasher":"slashing","unbonding_epochs":2}"#;
/// A window of 8 measured heights, at least half signed (so at most 4 missed), 1% burned.
const SLASHING: &str = r#"{"downtime_slash_bps":100,"min_signed_per_window_bps":5000,"signed_blocks_window":8}"#;

#[test]
fn missing_one_height_more_than_the_window_allows_is_slashed_and_jailed_once_and_the_validator_leaves_the_next_set() {
    let mut chain = Chain::new(&genesis(&[(1, 4_000), (2, 3_000), (3, 2_000), (4, 1_500)], &[], STAKING, SLASHING));
    // v3 misses heights 5..=8 (4: the most allowed), v4 heights 5..=9 (5: one too many).
    // Measured height h is judged in block h + 1; both windows are full from height 8 on.
    chain.run_to(4);
    chain.absent.extend([key(3).public(), key(4).public()]);
    chain.run_to(8);
    chain.absent.remove(&key(3).public());
    let v4_tokens = chain.validator(4).tokens;
    chain.run_to(9); // height 9 committed without v4: block 10 measures it
    chain.absent.clear();
    // Block 9 measured height 8: both at the most allowed, on a full window.
    let info = chain.signing_info(4).unwrap();
    assert_eq!((info.epoch, info.missed, info.counted, info.window, info.max_missed), (1, 4, 8, 8, 4));
    assert_eq!(chain.signing_info(3).unwrap().missed, 4);
    assert_eq!(chain.signing_info(1).unwrap().missed, 0);
    assert_eq!(chain.signing_info(9), None, "not a validator");

    let b = chain.block(vec![]);
    assert_eq!(b.block.header.height, 10);
    let punished = downtime(&b);
    assert_eq!(punished.len(), 1, "only v4: {punished:?}");
    let p = &punished[0];
    // Height 9 opens epoch 2: the measured set (and the infraction) is epoch 2's.
    assert_eq!((p.validator, p.epoch, p.missed, p.window, p.fraction_bps, p.jailed), (key(4).public(), 2, 5, 8, 100, true));
    assert_eq!(p.burned, v4_tokens / 100, "1% of its tokens");
    assert_eq!(staking_slashes(&b), 1);
    let v4 = chain.validator(4);
    assert_eq!((v4.tokens, v4.jailed_since, v4.eligible), (v4_tokens - p.burned, Some(2), false));
    let info = chain.signing_info(4).unwrap();
    assert_eq!((info.epoch, info.missed, info.counted), (2, 0, 0), "its count starts again");

    // Exactly once: v4 signs again, v3's misses leave its window unpunished.
    let mut later = 0;
    while chain.height() < 5 * 4 {
        let b = chain.block(vec![]);
        later += downtime(&b).len() + staking_slashes(&b);
    }
    assert_eq!(later, 0, "no second punishment");
    assert_eq!(chain.validator(3).jailed_since, None, "4 missed of 8 is allowed");
    // Jailed in epoch 2: out of epoch 3's set (chosen at epoch 2's end), and it stays out.
    assert_eq!(chain.set(2), ["v1", "v2", "v3", "v4"]);
    assert_eq!(chain.set(3), ["v1", "v2", "v3"]);
    assert_eq!(chain.set(4), ["v1", "v2", "v3"]);
}

#[test]
fn a_validator_still_in_its_set_after_jailing_is_not_punished_again_in_the_same_epoch() {
    // A window of 2: missing both is punished. v2 never signs; it is punished once in epoch
    // 0, its count restarts, it misses a whole window again before epoch 0 ends: no second
    // slash. Out of epoch 1's set, it is measured no more.
    let slashing = r#"{"downtime_slash_bps":100,"min_signed_per_window_bps":5000,"signed_blocks_window":2}"#;
    let mut chain = Chain::new(&genesis(&[(1, 4_000), (2, 3_000), (3, 2_000)], &[], STAKING, slashing));
    chain.absent.insert(key(2).public());
    let mut punished = vec![];
    for _ in 0..(3 * 4) {
        let b = chain.block(vec![]);
        punished.extend(downtime(&b).into_iter().map(|p| (b.block.header.height, p.epoch, p.validator)));
    }
    // Heights 1 and 2 missed: judged in block 3.
    assert_eq!(punished, [(3, 0, key(2).public())]);
    assert_eq!(chain.set(1), ["v1", "v3"]);
    assert_eq!(chain.set(3), ["v1", "v3"]);
}

#[test]
fn counts_follow_identities_across_set_changes() {
    // v5 registers in block 1 with the most stake: from epoch 1 (height 5) it leads the set
    // and every other index moves. v2 misses heights 1..=4 (epoch 0) and 9; v3 heights 4..=8.
    let mut chain = Chain::new(&genesis(&[(1, 4_000), (2, 3_000), (3, 2_000)], &[5], STAKING, SLASHING));
    let absent = |height: u64| -> Vec<u8> {
        let mut who = vec![];
        if (1..=4).contains(&height) || height == 9 {
            who.push(2);
        }
        if (4..=8).contains(&height) {
            who.push(3);
        }
        who
    };
    let mut punished = vec![];
    for height in 1..=12u64 {
        chain.absent = absent(height).into_iter().map(|n| key(n).public()).collect();
        let txs = if height == 1 {
            let call = StakingCall::register(&key(5), &key(5).address(), key(5).public().0.to_vec(), "v5", 0);
            vec![chain.staking(&key(5), call, 50_000)]
        } else {
            vec![]
        };
        let b = chain.block(txs);
        punished.extend(downtime(&b).into_iter().map(|p| (height, p.validator, p.epoch, p.missed)));
    }
    assert_eq!(chain.set(0), ["v1", "v2", "v3"]);
    assert_eq!(chain.set(1), ["v5", "v1", "v2", "v3"]);
    // v3: 5 of heights 1..=8 missed across the change (its epoch-0 miss counted under its
    // epoch-1 index), judged in block 9. v2: height 1 left its window as height 9 entered
    // (the miss mapped back through epoch 0's identities), so 4 of 8: never punished.
    assert_eq!(punished, [(9, key(3).public(), 1, 5)]);
}

#[test]
fn a_height_whose_certificate_does_not_decode_is_not_measured_and_halts_nothing() {
    let mut chain = Chain::new(&genesis(&[(1, 4_000), (2, 3_000), (3, 2_000)], &[], STAKING, SLASHING));
    chain.absent.insert(key(3).public());
    chain.run_to(4);
    // Height 5 is committed with garbage for a certificate (a faulty decoder, a quorum that
    // signed nonsense): block 6 reports it, measures nothing, and goes on.
    chain.next_certificate = Some(Certificate(vec![0xFF; 5]));
    chain.block(vec![]);
    let b = chain.block(vec![]);
    let reported: Vec<_> = b.hook_events.iter().filter(|e| e.topic == aether_node::ledger::PARENT_CERTIFICATE_UNDECODABLE).collect();
    assert_eq!(reported.len(), 1);
    assert_eq!(reported[0].data, b"a bitmap of 5 bytes for a set of 3");
    assert!(hook_failures(&b).is_empty());
    // v3 missed heights 1..=4 and 6..: 8 measured misses first at height 9 (5 was not
    // measured), judged in block 10 — a block later than without the gap.
    chain.run_to(8);
    assert!(downtime(&chain.block(vec![])).is_empty(), "height 8: only 7 measured heights");
    let p = downtime(&chain.block(vec![]));
    assert_eq!(p.len(), 1);
    assert_eq!((p[0].validator, p[0].missed), (key(3).public(), 8));
}

#[test]
fn switched_off_it_measures_nothing() {
    let slashing = r#"{"min_signed_per_window_bps":0,"signed_blocks_window":2}"#;
    let mut chain = Chain::new(&genesis(&[(1, 4_000), (2, 3_000), (3, 2_000)], &[], STAKING, slashing));
    chain.absent.insert(key(3).public());
    for _ in 0..12 {
        assert!(downtime(&chain.block(vec![])).is_empty());
    }
    assert_eq!(chain.set(3), ["v1", "v2", "v3"]);
}
