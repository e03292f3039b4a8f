//! Delegators vote (Cosmos x/gov rule): a delegator's own vote moves its delegated tokens from
//! its validator's vote to its own option; a delegator that does not vote follows its
//! validator. Delegations are made in epoch 0, so epoch 1's set (staking's, no rewards)
//! carries them; proposals are submitted and tallied in epoch 1 (heights 4..=6).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use aether_module_governance::state::{MAX_DELEGATOR_VOTES, MAX_VOTE_DELEGATIONS};
use aether_module_governance::{GovernanceCall, Status, VoteOption::*};
use aether_module_staking::StakingCall;
use aether_primitives::types::{Amount, GenesisAccount, SignedTransaction};

/// Votes close with the epoch they open in; a passed proposal runs one block later.
const FAST: &str = r#"{"voting_epochs":1,"timelock_heights":1}"#;

fn delegate(chain: &mut Chain, delegator: u8, validator: u8, amount: Amount) -> SignedTransaction {
    chain.tx(&key(delegator), "staking", StakingCall::delegate(key(validator).public()).encode(), amount)
}

#[test]
fn a_delegator_vote_moves_exactly_its_tokens_and_one_unit_flips_the_threshold() {
    // v1 5,000 + d40 1,000 + d41 1,001 = 7,001; v2 5,000; total 12,001.
    let mut chain = Chain::new(&genesis(&[(1, 5_000), (2, 5_000)], &[30, 40, 41], FAST));
    let txs = vec![delegate(&mut chain, 40, 1, 1_000), delegate(&mut chain, 41, 1, 1_001)];
    assert_success(&chain.block(txs));
    chain.run_to(3);
    let user = key(30);
    let txs = vec![
        chain.submit(&user, "d40 says no", vec![], 1_000),
        chain.submit(&user, "d41 says no", vec![], 1_000),
        chain.submit(&user, "delegators follow", vec![], 1_000),
        chain.submit(&user, "validator silent", vec![], 1_000),
    ];
    assert_success(&chain.block(txs)); // height 4, epoch 1
    let txs = vec![
        chain.vote(1, 1, Yes),
        chain.vote(2, 1, No),
        chain.vote(40, 1, No),
        chain.vote(1, 2, Yes),
        chain.vote(2, 2, No),
        // d41 first agrees, then changes its mind: the last vote counts, once.
        chain.vote(41, 2, Yes),
        chain.vote(41, 2, No),
        chain.vote(1, 3, Yes),
        chain.vote(2, 3, No),
        chain.vote(2, 4, No),
        chain.vote(40, 4, Yes),
    ];
    let b = chain.block(txs);
    assert_success(&b);
    eprintln!(
        "validator vote: {} gas; delegator vote (1 delegation, 2 validators in the set): {} gas",
        b.receipts[0].gas_used, b.receipts[2].gas_used
    );
    chain.run_to(6);

    let tally = |id: u64| {
        let t = chain.proposal(id).tally.unwrap();
        assert_eq!((t.epoch, t.total), (1, 12_001));
        (t.yes, t.no)
    };
    // d40's 1,000 leave v1's yes for no: 6,001 yes against 6,000 passes by one unit...
    assert_eq!(tally(1), (6_001, 6_000));
    assert_eq!(chain.proposal(1).status, Status::Passed { execute_at: 7 });
    // ...and d41's 1,001 (one unit more) make it 6,000 against 6,001: rejected.
    assert_eq!(tally(2), (6_000, 6_001));
    assert!(
        matches!(chain.proposal(2).status, Status::Rejected { reason } if reason.starts_with("threshold not reached: yes 6000 of 12001"))
    );
    // No delegator voted: v1's whole stake, delegations included, is its yes.
    assert_eq!(tally(3), (7_001, 5_000));
    // v1 did not vote: only d40's own tokens count; d41's stay silent with v1.
    assert_eq!(tally(4), (1_000, 5_000));
}

#[test]
fn a_vote_without_voting_power_is_refused_and_says_why() {
    let mut chain = Chain::new(&genesis(&[(1, 5_000)], &[30, 40], FAST));
    let user = key(30);
    let tx = chain.submit(&user, "open", vec![], 1_000);
    assert_success(&chain.block(vec![tx]));
    let before = chain.balance(&key(40).address());
    let tx = chain.gov(&key(40), GovernanceCall::vote(1, No), 0);
    let b = chain.block(vec![tx]);
    assert_eq!(
        failure(&b, 0),
        format!(
            "module governance: {} has no voting power: it is neither a validator of epoch 0's set (voting from its identity key's address) nor a delegator to one",
            key(40).address()
        )
    );
    assert_eq!(chain.balance(&key(40).address()), before - FEE, "only the fee is charged");
    chain.run_to(3);
    assert_eq!(chain.proposal(1).tally.unwrap().no, 0, "the refused vote counts for nothing");
}

/// A funded key beyond the `u8` seeds `key` covers.
fn wide_key(i: u16) -> aether_primitives::types::Keypair {
    let mut seed = [0x5D; 32];
    seed[..2].copy_from_slice(&i.to_be_bytes());
    aether_primitives::types::Keypair::from_seed(seed)
}

#[test]
fn delegator_votes_are_capped_per_proposal_and_per_vote_with_clear_errors() {
    let (cap, entries) = (MAX_DELEGATOR_VOTES as u16, MAX_VOTE_DELEGATIONS as u8);
    // Validators 1..=17: one more than a delegator vote may draw on.
    let validators: Vec<(u8, Amount)> = (1..=entries + 1).map(|i| (i, 10_000)).collect();
    let mut g = genesis(&validators, &[30, 40], FAST);
    g.accounts.extend((0..=cap).map(|i| GenesisAccount { address: wide_key(i).address(), balance: FUNDS }));
    g.accounts.sort_by_key(|a| a.address);
    let mut chain = Chain::new(&g);
    // One delegator of v1 more than a proposal counts (1M gas each, so a block holds them);
    // d40 delegates to all 17 validators.
    let mut txs: Vec<SignedTransaction> = (0..=cap)
        .map(|i| chain.tx_with_gas(&wide_key(i), "staking", StakingCall::delegate(key(1).public()).encode(), 100, 1_000_000))
        .collect();
    txs.extend((1..=entries + 1).map(|v| delegate(&mut chain, 40, v, 100)));
    assert_success(&chain.block(txs));
    chain.run_to(3);
    let tx = chain.submit(&key(30), "crowded", vec![], 1_000);
    assert_success(&chain.block(vec![tx]));
    let vote = |chain: &mut Chain, i: u16, option| {
        chain.tx_with_gas(&wide_key(i), "governance", GovernanceCall::vote(1, option).encode(), 0, 1_000_000)
    };
    let mut txs: Vec<SignedTransaction> = (0..=cap).map(|i| vote(&mut chain, i, No)).collect();
    // One already counted may still change its vote when the proposal is full.
    txs.push(vote(&mut chain, 0, Abstain));
    txs.push(chain.gov(&key(40), GovernanceCall::vote(1, No), 0));
    let b = chain.block(txs);
    let n = usize::from(cap);
    assert!(b.receipts[..n].iter().all(|r| r.status == aether_primitives::types::TxStatus::Success));
    assert_eq!(
        failure(&b, n),
        format!("module governance: proposal 1 already counts {cap} delegator votes, the most one proposal takes; a delegator not counted is represented by its validator's vote")
    );
    assert_eq!(b.receipts[n + 1].status, aether_primitives::types::TxStatus::Success, "a counted delegator changes its vote");
    assert_eq!(
        failure(&b, n + 2),
        format!(
            "module governance: {} delegates to {} validators of the set; a delegator vote counts at most {entries} (its other delegations would be left out): consolidate delegations or let the validators vote",
            key(40).address(),
            entries + 1
        )
    );
    chain.run_to(6);
    let t = chain.proposal(1).tally.unwrap();
    // The counted delegators' no (one of them switched to abstain), 100 each; v1 did not vote.
    assert_eq!((t.no, t.abstain, t.yes), (100 * (Amount::from(cap) - 1), 100, 0));
}
