//! Unit tests of the engine: one validator fed inputs by hand.

use super::block_tree::{Known, FETCH_ANSWER_BYTES_PER_SECOND};
use super::*;
use crate::certificate::{BlsSecretKey, VoteCollector, VoteMessage};
use crate::leader::{election_input, PROOF_LEN};
use crate::messages::{Proposal, ProposalHeader, Timeout};
use crate::timeout::{TimeoutCollector, TimeoutMessage};
use aether_api::consensus::{LocalValidator, Validator, ValidatorSet};

fn identity(i: u8) -> Keypair {
    Keypair::from_seed([0x70 + i; 32])
}

fn engine(me: u8) -> HotStuffEngine {
    engine_on("t", me)
}

fn engine_on(chain: &str, me: u8) -> HotStuffEngine {
    let validators = ValidatorSet::new(
        (0..4)
            .map(|i| {
                let k = identity(i);
                Validator {
                    name: format!("v{i}"),
                    identity: k.public(),
                    address: k.address(),
                    consensus_key: HotStuffEngine::consensus_key(&k),
                    stake: 1,
                }
            })
            .collect(),
    );
    let ctx = EngineContext {
        chain_id: chain.into(),
        genesis: Hash::digest(b"t", b"genesis"),
        validators,
        local: Some(LocalValidator { index: me as u32, identity: identity(me) }),
        epoch: Default::default(),
    };
    HotStuffEngine::from_context(&ctx, HotStuffSettings::default()).unwrap()
}

/// A well-formed round-1 proposal by its leader (validator 1: the fallback leader of
/// round 1) on genesis.
fn round_one_proposal(genesis: &BlockRef, block: BlockRef) -> Vec<u8> {
    round_one_proposal_on("t", genesis, block)
}

fn round_one_proposal_on(chain: &str, genesis: &BlockRef, block: BlockRef) -> Vec<u8> {
    let g = Hash::digest(b"aether/hotstuff-genesis/v1", &genesis.hash.0);
    let (_, vrf) = derive_keys(&identity(1));
    let (election, _) = vrf.prove(&election_input(2, &g));
    let header = ProposalHeader {
        domain: crate::certificate::signing_domain(chain, &genesis.hash, 0),
        round: 1,
        block,
        parent_block: genesis.hash,
        parent: g,
        proposer: 1,
        election: election.to_vec(),
        after_timeout: false,
        parent_seed: g,
        // The genesis QC's (empty) signer bitmap: the window of a first proposal.
        recent_signers: vec![vec![]],
    };
    let signature = identity(1).sign(&header.digest().0).0.to_vec();
    let justify = QuorumCertificate { round: 0, block: g, signers: vec![], signature: vec![] };
    borsh::to_vec(&Message::Proposal(Box::new(Proposal { header, justify, timeout: None, payload: vec![1, 2, 3], signature }))).unwrap()
}

fn started(me: u8) -> (HotStuffEngine, BlockRef) {
    let mut e = engine(me);
    let genesis = BlockRef { hash: Hash::digest(b"t", b"genesis"), height: 0 };
    let mut out = vec![];
    e.handle(0, Input::Start { committed: genesis, certificate: Certificate::default(), safety_state: None }, &mut out);
    (e, genesis)
}

#[test]
fn votes_only_for_a_block_on_the_parent_its_proposal_names() {
    let block = BlockRef { hash: Hash::digest(b"t", b"block 1"), height: 1 };
    for (parent_reported, votes) in [(None, true), (Some(Hash::digest(b"t", b"elsewhere")), false)] {
        let (mut e, genesis) = started(0);
        let mut out = vec![];
        e.handle(10, Input::Message { from: 1, bytes: round_one_proposal(&genesis, block) }, &mut out);
        assert!(out.iter().any(|o| matches!(o, Output::VerifyPayload { bytes } if bytes == &vec![1, 2, 3])), "{out:?}");
        out.clear();
        let parent = parent_reported.unwrap_or(genesis.hash);
        e.handle(11, Input::PayloadVerified { block: Some(block), parent: Some(parent), valid: true, empty: false }, &mut out);
        let persisted = out.iter().position(|o| matches!(o, Output::Persist { .. }));
        let voted = out.iter().position(|o| matches!(o, Output::Send { .. }));
        if votes {
            // The vote goes to the next leader — which may be this validator (then no Send).
            assert!(persisted.is_some() && voted.is_none_or(|v| Some(v) > persisted), "persist, then vote: {out:?}");
            assert_eq!(e.safety.state().highest_vote_round, 1);
        } else {
            assert!(persisted.is_none() && voted.is_none(), "no vote for a block on another parent: {out:?}");
            assert_eq!(e.safety.state().highest_vote_round, 0);
        }
    }
}

#[test]
fn refuses_proposals_with_broken_signatures_and_garbage_messages() {
    let block = BlockRef { hash: Hash::digest(b"t", b"block 1"), height: 1 };
    let (mut e, genesis) = started(0);
    let mut bytes = round_one_proposal(&genesis, block);
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let mut out = vec![];
    e.handle(10, Input::Message { from: 1, bytes }, &mut out);
    assert!(!out.iter().any(|o| matches!(o, Output::VerifyPayload { .. })), "a broken signature is refused: {out:?}");
    // Garbage of every length up to 300 bytes never panics and never asks for work.
    for n in 0..300 {
        out.clear();
        e.handle(11, Input::Message { from: 2, bytes: vec![0x5a; n] }, &mut out);
        assert!(out.is_empty(), "{n} bytes of garbage: {out:?}");
    }
}

#[test]
fn an_unreadable_safety_state_never_signs() {
    let mut e = engine(0);
    let genesis = BlockRef { hash: Hash::digest(b"t", b"genesis"), height: 0 };
    let mut out = vec![];
    e.handle(0, Input::Start { committed: genesis, certificate: Certificate::default(), safety_state: Some(vec![0xff; 3]) }, &mut out);
    let block = BlockRef { hash: Hash::digest(b"t", b"block 1"), height: 1 };
    out.clear();
    e.handle(10, Input::Message { from: 1, bytes: round_one_proposal(&genesis, block) }, &mut out);
    out.clear();
    e.handle(11, Input::PayloadVerified { block: Some(block), parent: Some(genesis.hash), valid: true, empty: false }, &mut out);
    assert!(!out.iter().any(|o| matches!(o, Output::Send { .. } | Output::Persist { .. })), "{out:?}");
    out.clear();
    e.handle(5_000, Input::Timer { id: ROUND_TIMER }, &mut out);
    assert!(!out.iter().any(|o| matches!(o, Output::Persist { .. })), "no timeout is signed either: {out:?}");
}

fn signed_proposal(header: ProposalHeader, justify: QuorumCertificate, timeout: Option<TimeoutCertificate>) -> Vec<u8> {
    let signature = identity(header.proposer as u8).sign(&header.digest().0).0.to_vec();
    borsh::to_vec(&Message::Proposal(Box::new(Proposal { header, justify, timeout, payload: vec![1], signature }))).unwrap()
}

#[test]
fn a_round_zero_qc_certifies_only_genesis_and_names_no_signers() {
    let (mut e, _) = started(0);
    let genesis = e.tree.genesis;
    let qc = |block, signers: Vec<u8>| QuorumCertificate { round: 0, block, signers, signature: vec![] };
    let g = genesis.unwrap();
    assert!(e.verifier.qc(&qc(g, vec![]), genesis));
    assert!(!e.verifier.qc(&qc(Hash::digest(b"test", b"another block"), vec![]), genesis), "round 0 certifies genesis only");
    assert!(!e.verifier.qc(&qc(g, vec![0b111]), genesis), "the genesis QC has no signers");
}

#[test]
fn rounds_near_u64_max_from_the_wire_never_panic() {
    let (mut e, genesis) = started(0);
    let g = Hash::digest(b"aether/hotstuff-genesis/v1", &genesis.hash.0);
    let (bls, _) = derive_keys(&identity(1));
    let mut out = vec![];
    for round in [u64::MAX, u64::MAX - 1] {
        let digest = Hash::digest(b"t", b"any");
        let signature = bls.sign_vote(&VoteMessage { domain: e.committee.domain(), round, block: digest }).to_bytes().to_vec();
        e.handle(
            1,
            Input::Message { from: 1, bytes: borsh::to_vec(&Message::Vote { round, digest, voter: 1, signature }).unwrap() },
            &mut out,
        );
        let high_qc = QuorumCertificate { round: round - 1, block: digest, signers: vec![0b111], signature: vec![0; 96] };
        let timeout = Timeout { round, high_qc, last_tc: None, signer: 1, signature: vec![0; 96] };
        e.handle(2, Input::Message { from: 1, bytes: borsh::to_vec(&Message::Timeout(Box::new(timeout))).unwrap() }, &mut out);
        // A proposal whose proposer signature is valid, justified by a QC of round u64::MAX.
        let header = ProposalHeader {
            domain: e.committee.domain(),
            round,
            block: BlockRef { hash: digest, height: 1 },
            parent_block: genesis.hash,
            parent: g,
            proposer: 1,
            election: vec![0; PROOF_LEN],
            after_timeout: false,
            parent_seed: g,
            recent_signers: vec![],
        };
        let justify = QuorumCertificate { round: u64::MAX, block: g, signers: vec![0b111], signature: vec![0; 96] };
        e.handle(3, Input::Message { from: 1, bytes: signed_proposal(header.clone(), justify.clone(), None) }, &mut out);
        let tc = TimeoutCertificate { round: u64::MAX, groups: vec![(0, vec![0b111])], signature: vec![0; 96] };
        let header = ProposalHeader { after_timeout: true, ..header };
        e.handle(4, Input::Message { from: 1, bytes: signed_proposal(header, justify, Some(tc)) }, &mut out);
    }
    assert!(!out.iter().any(|o| matches!(o, Output::VerifyPayload { .. } | Output::Persist { .. })), "{out:?}");
    assert_eq!(e.round(), 1, "nothing from the wire moved the round");
}

#[test]
fn signatures_are_bound_to_the_chain() {
    // Two chains with the same validator keys (a respin, a testnet): nothing signed on one
    // is valid on the other.
    let (a, b) = (engine_on("chain-a", 0), engine_on("chain-b", 0));
    let keys: Vec<BlsSecretKey> = (0..4).map(|i| derive_keys(&identity(i)).0).collect();
    let mut timeouts = TimeoutCollector::new(&a.committee, 5);
    let mut tc = None;
    for (i, key) in keys.iter().enumerate().take(3) {
        let signature = TimeoutMessage { domain: a.committee.domain(), round: 5, high_qc_round: 2 }.sign(key);
        tc = timeouts.add(i as u32, 2, signature).unwrap().0;
    }
    let tc = tc.expect("a quorum of chain A's timeouts");
    assert!(tc.verify(&a.committee).is_ok());
    assert!(tc.verify(&b.committee).is_err(), "a timeout certificate of chain A is refused on chain B");
    let vote = VoteMessage { domain: a.committee.domain(), round: 5, block: Hash::digest(b"t", b"block") };
    let mut votes = VoteCollector::new(&a.committee, vote);
    let mut qc = None;
    for (i, key) in keys.iter().enumerate().take(3) {
        qc = votes.add(i as u32, key.sign_vote(&vote)).unwrap().certificate;
    }
    let qc = qc.expect("a quorum of chain A's votes");
    assert!(qc.verify(&a.committee).is_ok());
    assert!(qc.verify(&b.committee).is_err(), "a quorum certificate of chain A is refused on chain B");

    // A proposal signed on chain A, on the same genesis block, is refused on chain B.
    let block = BlockRef { hash: Hash::digest(b"t", b"block 1"), height: 1 };
    let genesis = BlockRef { hash: Hash::digest(b"t", b"genesis"), height: 0 };
    for (mut e, accepted) in [(engine_on("chain-a", 0), true), (engine_on("chain-b", 0), false)] {
        let mut out = vec![];
        e.handle(0, Input::Start { committed: genesis, certificate: Certificate::default(), safety_state: None }, &mut out);
        out.clear();
        let proposal = round_one_proposal_on("chain-a", &genesis, block);
        e.handle(10, Input::Message { from: 1, bytes: proposal }, &mut out);
        let verifies = out.iter().any(|o| matches!(o, Output::VerifyPayload { .. }));
        assert_eq!(verifies, accepted, "{out:?}");
    }
}

#[test]
fn a_leader_persists_its_proposal_before_sending_it_and_never_proposes_twice_in_a_round() {
    // Validator 1 leads round 1.
    let (mut e, genesis) = started(1);
    let mut out = vec![];
    e.handle(0, Input::Timer { id: PROPOSE_TIMER }, &mut out);
    let block = BlockRef { hash: Hash::digest(b"t", b"block 1"), height: 1 };
    out.clear();
    e.handle(
        1,
        Input::PayloadBuilt { payload: aether_api::consensus::Payload { block, parent: genesis.hash, bytes: vec![7], empty: false } },
        &mut out,
    );
    let is_proposal =
        |o: &Output| matches!(o, Output::Broadcast { bytes } if matches!(Message::try_from_slice(bytes), Ok(Message::Proposal(_))));
    let sent = out.iter().position(is_proposal).expect("the leader proposes");
    let persisted = out.iter().position(|o| matches!(o, Output::Persist { .. }));
    assert!(persisted.is_some_and(|p| p < sent), "persisted before the proposal leaves: {out:?}");
    let Some(Output::Persist { state }) = persisted.map(|p| out[p].clone()) else { unreachable!() };

    // A crash right after the persist: restarted in round 1, it never builds another block
    // for the round it proposed in.
    let mut restarted = engine(1);
    out.clear();
    restarted.handle(5, Input::Start { committed: genesis, certificate: Certificate::default(), safety_state: Some(state) }, &mut out);
    restarted.handle(6, Input::Timer { id: PROPOSE_TIMER }, &mut out);
    assert_eq!(restarted.round(), 1);
    assert!(!out.iter().any(|o| matches!(o, Output::BuildPayload { .. })), "{out:?}");
    let other = BlockRef { hash: Hash::digest(b"t", b"another block 1"), height: 1 };
    restarted.handle(
        7,
        Input::PayloadBuilt {
            payload: aether_api::consensus::Payload { block: other, parent: genesis.hash, bytes: vec![8], empty: false },
        },
        &mut out,
    );
    assert!(!out.iter().any(is_proposal), "no second proposal in round 1: {out:?}");
}

/// Validator 1 sends `e` a vote and a timeout for each round of `rounds` (one real signature's
/// bytes reused: it decodes, and votes and timeouts are checked only at a quorum).
fn flood_votes_and_timeouts(e: &mut HotStuffEngine, genesis: &BlockRef, rounds: std::ops::Range<u64>) {
    let g = Hash::digest(b"aether/hotstuff-genesis/v1", &genesis.hash.0);
    let (bls, _) = derive_keys(&identity(1));
    let signature = bls.sign_vote(&VoteMessage { domain: e.committee.domain(), round: 2, block: g }).to_bytes().to_vec();
    let mut out = vec![];
    for round in rounds {
        let digest = Hash::digest(b"t", &round.to_be_bytes());
        let vote = Message::Vote { round, digest, voter: 1, signature: signature.clone() };
        e.handle(1, Input::Message { from: 1, bytes: borsh::to_vec(&vote).unwrap() }, &mut out);
        let high_qc = QuorumCertificate { round: 0, block: g, signers: vec![], signature: vec![] };
        let timeout = Timeout { round, high_qc, last_tc: None, signer: 1, signature: signature.clone() };
        e.handle(2, Input::Message { from: 1, bytes: borsh::to_vec(&Message::Timeout(Box::new(timeout))).unwrap() }, &mut out);
    }
}

#[test]
fn far_future_votes_and_timeouts_hold_bounded_memory() {
    let (mut e, genesis) = started(0);
    flood_votes_and_timeouts(&mut e, &genesis, 2..5_000);
    let bound = MAX_FUTURE_ROUNDS as usize + 2;
    assert!(e.aggregator.votes.len() <= bound && e.aggregator.seen_votes.len() <= bound, "{} vote collectors", e.aggregator.votes.len());
    assert!(e.aggregator.timeouts.len() <= bound, "{} timeout collectors", e.aggregator.timeouts.len());
    assert!(!e.aggregator.votes.is_empty() && !e.aggregator.timeouts.is_empty(), "votes and timeouts near the round are still collected");
}

#[test]
fn votes_and_timeouts_for_long_past_rounds_hold_no_memory() {
    let (mut e, genesis) = started(0);
    // The validator is far ahead of round 2 (as after a long run); its committed head is not.
    e.pacemaker.enter(5_000, 0, false, &mut vec![]);
    flood_votes_and_timeouts(&mut e, &genesis, 2..4_990);
    assert!(e.aggregator.votes.is_empty() && e.aggregator.seen_votes.is_empty(), "{} vote collectors", e.aggregator.votes.len());
    assert!(e.aggregator.timeouts.is_empty(), "{} timeout collectors", e.aggregator.timeouts.len());
}

#[test]
fn fetch_answers_are_bounded_per_peer_per_second() {
    let (mut e, genesis) = started(0);
    let g = Hash::digest(b"aether/hotstuff-genesis/v1", &genesis.hash.0);
    // 40 chained proposals of 4 MiB each (built by hand: only the fetch path reads them).
    let mut parent = g;
    for round in 1..=40u64 {
        let header = ProposalHeader {
            domain: e.committee.domain(),
            round,
            block: BlockRef { hash: Hash::digest(b"t", &round.to_be_bytes()), height: round },
            parent_block: Hash::ZERO,
            parent,
            proposer: 1,
            election: vec![0; PROOF_LEN],
            after_timeout: false,
            parent_seed: Hash::ZERO,
            recent_signers: vec![],
        };
        parent = header.digest();
        let justify = QuorumCertificate { round: round - 1, block: header.parent, signers: vec![], signature: vec![] };
        let proposal = Proposal { header, justify, timeout: None, payload: vec![0; 4 << 20], signature: vec![] };
        e.tree.proposals.insert(parent, Known { proposal, verified: true, beta: [0; 64], empty: false });
    }
    let fetch = borsh::to_vec(&Message::Fetch { digest: parent }).unwrap();
    let sent = |out: &[Output]| out.iter().map(|o| if let Output::Send { bytes, .. } = o { bytes.len() } else { 0 }).sum::<usize>();
    let mut out = vec![];
    for _ in 0..100 {
        e.handle(10_000, Input::Message { from: 2, bytes: fetch.clone() }, &mut out);
    }
    let first_second = sent(&out);
    assert!(first_second > 0 && first_second <= FETCH_ANSWER_BYTES_PER_SECOND, "{first_second} bytes in one second");
    // Another peer has its own budget; the same peer gets more a second later.
    out.clear();
    e.handle(10_000, Input::Message { from: 3, bytes: fetch.clone() }, &mut out);
    assert!(sent(&out) > 0);
    out.clear();
    e.handle(11_000, Input::Message { from: 2, bytes: fetch }, &mut out);
    assert!(sent(&out) > 0);
}

#[test]
fn proposals_waiting_for_a_parent_are_forgotten_once_committed_past() {
    let (mut e, genesis) = started(0);
    let waiting = |round: u64| Proposal {
        header: ProposalHeader {
            domain: e.committee.domain(),
            round,
            block: BlockRef { hash: Hash::digest(b"w", &round.to_be_bytes()), height: round },
            parent_block: Hash::ZERO,
            parent: Hash::digest(b"missing", &round.to_be_bytes()),
            proposer: 1,
            election: vec![],
            after_timeout: false,
            parent_seed: Hash::ZERO,
            recent_signers: vec![],
        },
        justify: QuorumCertificate { round: round - 1, block: Hash::ZERO, signers: vec![], signature: vec![] },
        timeout: None,
        payload: vec![],
        signature: vec![],
    };
    for round in [5u64, 50, 500] {
        let p = waiting(round);
        e.tree.waiting.insert(p.header.parent, vec![p]);
        e.tree.fetched.insert(Hash::digest(b"missing", &round.to_be_bytes()), 0);
    }
    // Block sync commits up to a block of round 100.
    let mut header = waiting(100).header;
    header.parent = genesis.hash;
    let block = header.block;
    let qc = QuorumCertificate { round: 100, block: header.digest(), signers: vec![], signature: vec![] };
    let certificate = Certificate(borsh::to_vec(&CommitCertificate::Ancestor { header, qc }).unwrap());
    let mut out = vec![];
    e.handle(5, Input::Synced { committed: block, certificate }, &mut out);
    let rounds: Vec<u64> = e.tree.waiting.values().flatten().map(|p| p.header.round).collect();
    assert_eq!(rounds, vec![500], "only the proposal above the committed round still waits");
    assert_eq!(e.tree.fetched.len(), 1);
}

#[test]
fn an_idle_leader_waits_a_heartbeat_and_transactions_cut_the_wait() {
    // Validator 1 leads round 1 of an idle chain: it waits a heartbeat after entering.
    let settings = HotStuffSettings::default();
    let mut e = engine(1);
    let genesis = BlockRef { hash: Hash::digest(b"t", b"genesis"), height: 0 };
    let mut out = vec![];
    e.handle(0, Input::Start { committed: genesis, certificate: Certificate::default(), safety_state: None }, &mut out);
    assert!(out.contains(&Output::SetTimer { id: PROPOSE_TIMER, at_ms: settings.heartbeat_ms }), "{out:?}");
    assert!(!out.iter().any(|o| matches!(o, Output::BuildPayload { .. })), "no block before the heartbeat: {out:?}");
    assert!(
        out.contains(&Output::SetTimer { id: ROUND_TIMER, at_ms: settings.heartbeat_ms + settings.base_timeout_ms }),
        "an idle round is given the heartbeat before anyone times out: {out:?}"
    );
    // Transactions arrive: it builds at once.
    out.clear();
    e.handle(20, Input::TransactionsWaiting, &mut out);
    assert!(out.iter().any(|o| matches!(o, Output::BuildPayload { .. })), "transactions cut the wait: {out:?}");
}

#[test]
fn a_restarted_validator_verifies_again_the_uncommitted_blocks_it_persisted() {
    // Validator 0 votes for round 1's block, persisting it; then every copy of that block may
    // be gone (the ledger keeps only committed blocks). After a restart from the persisted
    // state it must hold the block again, or a certified block could exist nowhere.
    let block = BlockRef { hash: Hash::digest(b"t", b"block 1"), height: 1 };
    let (mut e, genesis) = started(0);
    let mut out = vec![];
    e.handle(10, Input::Message { from: 1, bytes: round_one_proposal(&genesis, block) }, &mut out);
    e.handle(11, Input::PayloadVerified { block: Some(block), parent: Some(genesis.hash), valid: true, empty: false }, &mut out);
    let state = out
        .iter()
        .rev()
        .find_map(|o| if let Output::Persist { state } = o { Some(state.clone()) } else { None })
        .expect("the vote was persisted");
    let mut restarted = engine(0);
    let mut out = vec![];
    restarted.handle(20, Input::Start { committed: genesis, certificate: Certificate::default(), safety_state: Some(state) }, &mut out);
    assert!(out.iter().any(|o| matches!(o, Output::VerifyPayload { bytes } if bytes == &vec![1, 2, 3])), "{out:?}");
    assert_eq!(restarted.safety.state().highest_vote_round, 1, "and it remembers its vote");
}

#[test]
fn proposals_with_inconsistent_headers_are_refused_without_panicking() {
    let block = BlockRef { hash: Hash::digest(b"t", b"block 1"), height: 1 };
    let genesis = BlockRef { hash: Hash::digest(b"t", b"genesis"), height: 0 };
    let valid = round_one_proposal(&genesis, block);
    let Ok(Message::Proposal(p)) = Message::try_from_slice(&valid) else { panic!("a proposal") };
    // Each variant changes the header and is signed again by its proposer's key, so only the
    // rule under test can refuse it.
    let resigned = |change: &dyn Fn(&mut ProposalHeader)| {
        let mut p = p.clone();
        change(&mut p.header);
        p.signature = identity(1).sign(&p.header.digest().0).0.to_vec();
        borsh::to_vec(&Message::Proposal(p)).unwrap()
    };
    let variants: Vec<(&str, Vec<u8>)> = vec![
        ("a proposer outside the committee", resigned(&|h| h.proposer = 99)),
        ("claims a timeout but carries no TC (it would pick the next election rule)", resigned(&|h| h.after_timeout = true)),
        ("an election proof of the wrong length", resigned(&|h| h.election.truncate(10))),
        ("a block at height 0", resigned(&|h| h.block.height = 0)),
    ];
    for (what, bytes) in variants {
        let (mut e, _) = started(0);
        let mut out = vec![];
        e.handle(10, Input::Message { from: 1, bytes }, &mut out);
        assert!(!out.iter().any(|o| matches!(o, Output::VerifyPayload { .. })), "{what}: {out:?}");
    }
    // A proposal at or below the committed round is old news, however well formed.
    let (mut e, _) = started(0);
    e.tree.committed.round = 1;
    let mut out = vec![];
    e.handle(10, Input::Message { from: 1, bytes: valid.clone() }, &mut out);
    assert!(!out.iter().any(|o| matches!(o, Output::VerifyPayload { .. })), "{out:?}");
    // The unchanged proposal is accepted (what the variants are measured against).
    let (mut e, _) = started(0);
    let mut out = vec![];
    e.handle(10, Input::Message { from: 1, bytes: valid }, &mut out);
    assert!(out.iter().any(|o| matches!(o, Output::VerifyPayload { .. })), "{out:?}");
}

#[test]
fn a_late_payload_check_never_votes_in_a_round_already_left() {
    // Validator 0 is checking round 1's block when a round-2 proposal brings the QC that
    // certifies it (others voted without it): validator 0 moves to round 2. The answer to its
    // check then comes: a vote for round 1 now would be useless to the leader that already
    // formed the QC, so none is signed.
    let block = BlockRef { hash: Hash::digest(b"t", b"block 1"), height: 1 };
    let (mut e, genesis) = started(0);
    let mut out = vec![];
    let bytes = round_one_proposal(&genesis, block);
    let Ok(Message::Proposal(first)) = borsh::from_slice::<Message>(&bytes) else { panic!("a proposal") };
    e.handle(10, Input::Message { from: 1, bytes }, &mut out);
    let vote = VoteMessage { domain: e.committee.domain(), round: 1, block: first.header.digest() };
    let mut collector = VoteCollector::new(&e.committee, vote);
    let qc = (1..4u8)
        .find_map(|i| collector.add(u32::from(i), derive_keys(&identity(i)).0.sign_vote(&vote)).unwrap().certificate)
        .expect("three of four");
    let header = ProposalHeader {
        round: 2,
        block: BlockRef { hash: Hash::digest(b"t", b"block 2"), height: 2 },
        parent_block: block.hash,
        parent: first.header.digest(),
        proposer: 2,
        recent_signers: vec![],
        ..first.header.clone()
    };
    e.handle(20, Input::Message { from: 2, bytes: signed_proposal(header, qc, None) }, &mut out);
    assert_eq!(e.pacemaker.round(), 2, "the QC moved it to round 2");
    out.clear();
    e.handle(30, Input::PayloadVerified { block: Some(block), parent: Some(genesis.hash), valid: true, empty: false }, &mut out);
    let voted_in_round_one = out.iter().any(|o| match o {
        Output::Send { bytes, .. } | Output::Broadcast { bytes } => {
            matches!(borsh::from_slice::<Message>(bytes), Ok(Message::Vote { round: 1, .. }))
        }
        _ => false,
    });
    assert!(!voted_in_round_one, "no vote for a round already left: {out:?}");
    assert_eq!(e.safety.state().highest_vote_round, 0);
}

/// A validator with more than two thirds of the stake goes on alone when the round's leader
/// is offline: its own timeout forms the TC, and it leads the next round. This is the first
/// round of an epoch whose set gained a validator that runs no node yet.
#[test]
fn a_new_epochs_engine_with_a_dominant_validator_proceeds_past_an_absent_leader() {
    let validators = ValidatorSet::new(
        [(0u8, 1_000_000u128), (1, 2_000)]
            .iter()
            .map(|(i, stake)| {
                let k = identity(*i);
                Validator {
                    name: format!("v{i}"),
                    identity: k.public(),
                    address: k.address(),
                    consensus_key: HotStuffEngine::consensus_key(&k),
                    stake: *stake,
                }
            })
            .collect(),
    );
    let ctx = EngineContext {
        chain_id: "t".into(),
        genesis: Hash::digest(b"t", b"genesis"),
        validators,
        local: Some(LocalValidator { index: 0, identity: identity(0) }),
        epoch: aether_api::consensus::EpochRange { number: 1, first_height: 7, last_height: Some(12) },
    };
    let mut e = HotStuffEngine::from_context(&ctx, HotStuffSettings::default()).unwrap();
    let boundary = BlockRef { hash: Hash::digest(b"t", b"block 6"), height: 6 };
    let mut out = vec![];
    // The boundary block's certificate is the old epoch's: the new engine starts on it afresh.
    e.handle(0, Input::Start { committed: boundary, certificate: Certificate(vec![1, 2, 3]), safety_state: None }, &mut out);
    let mut built = false;
    let mut timers = std::collections::BTreeMap::new();
    for _ in 0..50 {
        for o in &out {
            match o {
                Output::SetTimer { id, at_ms } => drop(timers.insert(*id, *at_ms)),
                Output::CancelTimer { id } => drop(timers.remove(id)),
                _ => {}
            }
        }
        if out.iter().any(|o| matches!(o, Output::BuildPayload { parent, .. } if *parent == boundary)) {
            built = true;
            break;
        }
        let Some((&id, &at)) = timers.iter().min_by_key(|(_, at)| **at) else { break };
        timers.remove(&id);
        out.clear();
        e.handle(at, Input::Timer { id }, &mut out);
    }
    assert!(built, "never asked for a block on the boundary block; last outputs {out:?}");
}

#[test]
fn a_parent_certificate_must_be_a_valid_qc_of_the_parent_block() {
    use crate::certificate::{bitmap_of, parent_certificate_signers};
    let block1 = BlockRef { hash: Hash::digest(b"t", b"block 1"), height: 1 };
    let (mut e, genesis) = started(0);
    let bytes = round_one_proposal(&genesis, block1);
    let Ok(Message::Proposal(p)) = borsh::from_slice::<Message>(&bytes) else { panic!("a proposal") };
    let mut out = vec![];
    e.handle(10, Input::Message { from: 1, bytes }, &mut out);
    e.handle(11, Input::PayloadVerified { block: Some(block1), parent: Some(genesis.hash), valid: true, empty: false }, &mut out);
    let cert = |qc: &QuorumCertificate| Certificate(borsh::to_vec(qc).unwrap());

    // Block 1 carries the round-0 QC of genesis: valid for genesis only, naming nobody.
    let genesis_qc = p.justify.clone();
    assert_eq!(e.verify_parent_certificate(&genesis, &cert(&genesis_qc)), Ok(()));
    assert_eq!(parent_certificate_signers(&cert(&genesis_qc).0, 4), Ok(vec![]));

    // Block 2 carries the QC of block 1's proposal: here validators 0, 2 and 3 signed.
    let keys: Vec<BlsSecretKey> = (0..4).map(|i| derive_keys(&identity(i)).0).collect();
    let vote = VoteMessage { domain: e.committee.domain(), round: 1, block: p.header.digest() };
    let mut collector = VoteCollector::new(&e.committee, vote);
    let qc = [0usize, 2, 3].iter().find_map(|i| collector.add(*i as u32, keys[*i].sign_vote(&vote)).unwrap().certificate).unwrap();
    assert_eq!(e.verify_parent_certificate(&block1, &cert(&qc)), Ok(()));
    assert_eq!(parent_certificate_signers(&cert(&qc).0, 4), Ok(vec![0, 2, 3]));

    // What a proposer could put there instead, each refused.
    let mut credits_validator_1 = qc.clone();
    credits_validator_1.signers = bitmap_of(4, &[0, 1, 2]);
    let another_block = BlockRef { hash: Hash::digest(b"t", b"another block 1"), height: 1 };
    let unknown_proposal = QuorumCertificate { block: Hash::digest(b"t", b"a proposal never seen"), ..qc.clone() };
    let refused = [
        (block1, cert(&credits_validator_1), "a signer bitmap the aggregate signature does not match"),
        (another_block, cert(&qc), "a real QC of another block"),
        (block1, cert(&unknown_proposal), "a QC of a proposal this validator does not hold"),
        (block1, cert(&genesis_qc), "the round-0 QC past genesis"),
        (block1, Certificate(vec![1, 2, 3]), "garbage"),
        (block1, Certificate::default(), "nothing"),
    ];
    for (parent, certificate, what) in refused {
        assert!(e.verify_parent_certificate(&parent, &certificate).is_err(), "{what} was accepted");
    }
    // The decoder only reads; garbage is an error, never a panic.
    assert!(parent_certificate_signers(&[1, 2, 3], 4).is_err());
    assert!(parent_certificate_signers(&cert(&qc).0, 9).is_err(), "a bitmap of another set size");
    let mut no_signers = qc.clone();
    no_signers.signers = vec![0];
    assert!(parent_certificate_signers(&cert(&no_signers).0, 4).is_err());
}
