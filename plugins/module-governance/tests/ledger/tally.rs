//! The tally through the real ledger, at its edges: quorum met exactly vs one unit of stake
//! short, yes at exactly half vs half plus one unit, veto at exactly 33.4% vs one unit above;
//! deposits refunded or burned. Stakes are genesis stakes (no rewards), so one unit decides.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use aether_module_governance::{Status, VoteOption::*};

/// Votes close with epoch 0 (heights 1..=3) and a passed proposal runs one block later.
const FAST: &str = r#"{"voting_epochs":1,"timelock_heights":1}"#;

#[test]
fn quorum_is_met_at_exactly_its_share_of_stake_and_not_one_unit_below() {
    // Total stake 10,000; quorum 20% = 2,000.
    let mut chain = Chain::new(&genesis(&[(1, 1_999), (2, 1), (3, 8_000)], &[30], FAST));
    let user = key(30);
    let txs = vec![
        chain.submit(&user, "quorum exactly met", vec![], 1_000),
        chain.submit(&user, "one unit short", vec![], 1_000),
        chain.vote(1, 1, Yes),
        chain.vote(2, 1, Yes),
        chain.vote(1, 2, Yes),
    ];
    let b = chain.block(txs);
    assert_success(&b);
    assert_eq!(b.receipts[1].output, 2u64.to_le_bytes(), "Submit returns the id");
    assert_eq!(chain.open_proposals().iter().map(|p| p.id).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(chain.gov_balance(), 2_000, "both deposits held");
    chain.run_to(3);

    let p1 = chain.proposal(1);
    assert_eq!(p1.status, Status::Passed { execute_at: 4 });
    let t = p1.tally.unwrap();
    assert_eq!((t.epoch, t.yes, t.total), (0, 2_000, 10_000));
    let p2 = chain.proposal(2);
    assert_eq!(
        p2.status,
        Status::Rejected { reason: "quorum not met: 1999 of 10000 stake voted; quorum_bps 2000 needs at least that share".into() }
    );
    assert!(chain.open_proposals().is_empty());
    assert_eq!(chain.gov_balance(), 0);
    assert_eq!(chain.balance(&user.address()), FUNDS - 2 * FEE, "both deposits refunded");
    chain.run_to(4);
    assert_eq!(chain.proposal(1).status, Status::Executed { height: 4 }, "a proposal without actions executes trivially");
}

#[test]
fn yes_must_exceed_half_of_yes_plus_no_abstain_excluded_and_a_new_vote_replaces_the_old() {
    // 5,000 + 5,000 + 1.
    let mut chain = Chain::new(&genesis(&[(1, 5_000), (2, 5_000), (3, 1)], &[30], FAST));
    let user = key(30);
    let txs = vec![
        chain.submit(&user, "exactly half", vec![], 1_000),
        chain.submit(&user, "half plus one unit", vec![], 1_000),
        chain.vote(1, 1, Yes),
        chain.vote(2, 1, No),
        chain.vote(3, 1, Abstain),
        chain.vote(1, 2, Yes),
        chain.vote(2, 2, Yes),
        chain.vote(3, 2, Yes),
    ];
    assert_success(&chain.block(txs));
    // v2 changes its mind on proposal 2: its yes is replaced by a no.
    let tx = chain.vote(2, 2, No);
    assert_success(&chain.block(vec![tx]));
    chain.run_to(3);

    let p1 = chain.proposal(1);
    assert_eq!(
        p1.status,
        Status::Rejected {
            reason: "threshold not reached: yes 5000 of 10000 (yes + no + no_with_veto) must exceed threshold_bps 5000".into()
        }
    );
    assert_eq!(p1.tally.unwrap().abstain, 1);
    let p2 = chain.proposal(2);
    assert_eq!(p2.status, Status::Passed { execute_at: 4 });
    let t = p2.tally.unwrap();
    assert_eq!((t.yes, t.no, t.abstain, t.total), (5_001, 5_000, 0, 10_001), "v2 counted once, with its last vote");
    assert_eq!(chain.balance(&user.address()), FUNDS - 2 * FEE);
}

#[test]
fn a_veto_above_its_share_burns_the_deposit_and_a_rejection_refunds_it() {
    // 3,340 + 6,659 + 1 = 10,000: 33.4% is exactly 3,340.
    let mut chain = Chain::new(&genesis(&[(1, 3_340), (2, 6_659), (3, 1)], &[30], FAST));
    let user = key(30);
    let txs = vec![
        chain.submit(&user, "veto exactly at 33.4%", vec![], 1_000),
        chain.submit(&user, "veto one unit above", vec![], 2_000),
        chain.submit(&user, "plain no", vec![], 3_000),
        chain.vote(1, 1, NoWithVeto),
        chain.vote(2, 1, Yes),
        chain.vote(3, 1, Yes),
        chain.vote(1, 2, NoWithVeto),
        chain.vote(2, 2, Yes),
        chain.vote(3, 2, NoWithVeto),
        chain.vote(1, 3, Yes),
        chain.vote(2, 3, No),
    ];
    assert_success(&chain.block(txs));
    assert_eq!(chain.gov_balance(), 6_000);
    chain.run_to(2);
    let before = chain.balance(&user.address());
    let b = chain.block(vec![]);
    // Exactly 33.4% does not veto: 6,660 yes of 10,000 passes.
    assert_eq!(chain.proposal(1).status, Status::Passed { execute_at: 4 });
    assert_eq!(chain.proposal(2).status, Status::Vetoed);
    assert_eq!(chain.proposal(2).tally.unwrap().no_with_veto, 3_341);
    assert!(
        matches!(chain.proposal(3).status, Status::Rejected { reason } if reason.starts_with("threshold not reached: yes 3340 of 9999"))
    );
    // Refunds of 1 and 3; 2's deposit is gone (the block passed the ledger's supply check).
    assert_eq!(chain.balance(&user.address()), before + 1_000 + 3_000);
    assert_eq!(chain.gov_balance(), 0);
    assert_eq!(hook_events(&b, b"governance/tally").len(), 3);
}
