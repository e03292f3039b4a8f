//! HotStuff across epochs with the staking module as validator source: four validators in one
//! process (real nodes over the in-process network), stake 1 each. A fifth key registers with
//! a bond of 2,000 in epoch 0 while its node follows the chain; from epoch 1 it is in the set
//! and votes — shown by stopping one of the original four: the newcomer holds nearly all the
//! stake, so the chain commits on only if it signs. Every node agrees on every block, and the
//! boundary block's certificate proves epoch 1's set to a light client. A node that joins
//! later starts by state sync from a block of epoch 1, proving epoch 1's set from genesis
//! with the changes its peers serve.
//! And downtime: a stopped validator is slashed and jailed from the signers of the
//! certificates blocks carry, and the next epoch's set leaves it out.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aether_consensus_hotstuff::HotStuffEngine;
use aether_framework::codec;
use aether_framework::network::memory::MemoryHub;
use aether_framework::node::{Node, NodeHandle};
use aether_framework::types::{Action, EpochSchedule, Genesis, GenesisAccount, GenesisModule, Keypair, SignedTransaction, TxBody};
use aether_module_staking::{Staking, StakingCall};
use aether_tests::{wait_for_height, wait_for_tx};

const CHAIN: &str = "aether-epochs-test";
const EPOCH: u64 = 8;

fn genesis(validators: &[Keypair], users: &[Keypair]) -> Genesis {
    Genesis {
        chain_id: CHAIN.into(),
        genesis_time_ms: 1_700_000_000_000,
        modules: vec![GenesisModule {
            name: "staking".into(),
            version: 1,
            mint: true,
            params: r#"{"min_self_bond":1,"reward_per_epoch":0}"#.into(),
            govern_chain: false,
        }],
        epochs: Some(EpochSchedule { length: EPOCH, validator_source: Some("staking".into()) }),
        accounts: users.iter().map(|k| GenesisAccount { address: k.address(), balance: 1_000_000_000 }).collect(),
        validators: aether_presets::init::equal_stake_validators(validators, "v", HotStuffEngine::consensus_key),
    }
}

fn launch(dir: &Path, genesis: &Genesis, key: &Keypair, hub: &Arc<MemoryHub>) -> Node {
    aether_tests::hotstuff_validator(dir, genesis, key, hub.join(key.public())).module(Staking).launch().expect("validator launches")
}

fn staking_tx(from: &Keypair, nonce: u64, call: StakingCall, value: u128) -> SignedTransaction {
    TxBody {
        chain_id: CHAIN.into(),
        sender: from.public(),
        nonce,
        fee: 10_000,
        action: Action::Module { module: "staking".into(), call: call.encode(), value, gas_limit: 10_000_000 },
    }
    .sign(from)
}

async fn submit(node: &NodeHandle, tx: &SignedTransaction) {
    let hash = node.submit(&codec::encode(tx)).expect("admitted");
    wait_for_tx(node, hash, Duration::from_secs(60)).await;
    match node.transaction(&hash).unwrap() {
        aether_framework::node::TxLookup::Committed(c) => {
            assert_eq!(c.receipt.status, aether_framework::types::TxStatus::Success, "{:?}", c.receipt)
        }
        other => panic!("not committed: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_that_joins_by_staking_votes_from_the_next_epoch_and_every_node_agrees() {
    aether_tests::log_if_asked();
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<Keypair> = (0..5u8).map(|i| Keypair::from_seed([0x70 + i; 32])).collect();
    let operator = Keypair::from_seed([0x7f; 32]);
    let genesis = genesis(&keys[..4], std::slice::from_ref(&operator));
    let hub = MemoryHub::new();
    let mut nodes: Vec<Option<Node>> =
        keys.iter().enumerate().map(|(i, k)| Some(launch(&dir.path().join(format!("n{i}")), &genesis, k, &hub))).collect();
    let handle = |i: usize, nodes: &[Option<Node>]| nodes[i].as_ref().unwrap().handle();

    // Epoch 0: the fifth key registers with a self-bond above each genesis validator's stake.
    let newcomer = &keys[4];
    let register = StakingCall::register(newcomer, &operator.address(), HotStuffEngine::consensus_key(newcomer), "v4", 0);
    submit(&handle(0, &nodes), &staking_tx(&operator, 0, register, 2_000)).await;
    let registered_at = handle(0, &nodes).status().unwrap().head.height;
    assert!(registered_at < EPOCH, "registered within epoch 0 (at {registered_at}); lengthen the epoch if this machine is slow");

    // Epoch 1 starts with five validators; the newcomer's node starts its engine as a signer.
    wait_for_height(&handle(4, &nodes), EPOCH + 2, Duration::from_secs(60)).await;
    let set = handle(0, &nodes).ledger().unwrap().validator_set(1).unwrap().unwrap();
    assert_eq!(set.len(), 5, "{set:?}");
    assert_eq!(set[0].identity, newcomer.public(), "the largest stake leads the set");

    // Evidence of an offence in epoch 0, found only now (epoch 1): checked with epoch 0's
    // engine (its set, its signing domain), then recorded in a block of epoch 1.
    let genesis_block = aether_framework::ledger::Ledger::genesis_block(&genesis).hash();
    let domain = aether_consensus_hotstuff::certificate::signing_domain(CHAIN, &genesis_block, 0);
    let (a, b) = (aether_framework::types::Hash::digest(b"t", b"a"), aether_framework::types::Hash::digest(b"t", b"b"));
    let late = aether_consensus_hotstuff::mocks::double_vote_in(0, &keys[3], domain, 3, 5, a, b);
    let mut wrong_epoch = late.clone();
    wrong_epoch.epoch = 1;
    handle(0, &nodes).submit_evidence(wrong_epoch.clone()).unwrap();
    handle(0, &nodes).submit_evidence(late.clone()).unwrap();
    let mut recorded_at = None;
    for _ in 0..600 {
        let ledger = handle(0, &nodes).ledger().unwrap();
        if let Some(h) = ledger.evidence_recorded(&late.hash()).unwrap() {
            recorded_at = Some(h);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recorded_at = recorded_at.expect("epoch 0's evidence is recorded in epoch 1");
    assert!(recorded_at > EPOCH, "recorded at {recorded_at}, in epoch 1");
    assert_eq!(
        handle(0, &nodes).ledger().unwrap().evidence_recorded(&wrong_epoch.hash()).unwrap(),
        None,
        "the same proof named as epoch 1's proves nothing"
    );

    // No quorum without the newcomer now: stop an original validator; the chain goes on only
    // with the newcomer's votes.
    let stopped = nodes[1].take().unwrap();
    stopped.shutdown().unwrap();
    let from = handle(0, &nodes).status().unwrap().head.height;
    wait_for_height(&handle(4, &nodes), from + 6, Duration::from_secs(90)).await;

    // Every running node holds the same blocks and roots, and each boundary block's
    // certificate proves it final with its epoch's set.
    let reference = handle(0, &nodes).ledger().unwrap();
    let top = [0, 2, 3, 4].iter().map(|&i| handle(i, &nodes).status().unwrap().head.height).min().unwrap();
    for i in [2usize, 3, 4] {
        let ledger = handle(i, &nodes).ledger().unwrap();
        for h in 1..=top {
            let (a, _) = reference.block_by_height(h).unwrap().unwrap();
            let (b, _) = ledger.block_by_height(h).unwrap().unwrap();
            assert_eq!(a.hash(), b.hash(), "node {i} at height {h}");
        }
    }
    let changes = reference.epoch_changes(0, 1).unwrap().unwrap();
    let registry = aether_presets::aether().registry();
    let factory = registry.consensus.get("hotstuff").unwrap().factory.clone();
    let make = |ctx: &aether_framework::consensus::EngineContext| {
        factory(ctx, &aether_framework::registry::PluginSettings::empty("consensus.hotstuff")).map_err(|e| e.to_string())
    };
    assert_eq!(aether_framework::light::verify_validator_set(&genesis, 1, &changes, make).unwrap(), set);

    // A node that joins now starts from its peers' state at a height of epoch 1: the offered
    // block is signed by epoch 1's set (the newcomer's key and an epoch-1 signing domain), so
    // the joiner first proves that set from genesis with the changes a peer serves.
    let joiner_key = Keypair::from_seed([0x7e; 32]);
    let joiner = aether_tests::hotstuff_validator(&dir.path().join("joiner"), &genesis, &joiner_key, hub.join(joiner_key.public()))
        .module(Staking)
        .configure(|c| c.sync.state_sync = true)
        .launch()
        .expect("a node state-syncs into epoch 1");
    let report = joiner.handle().sync_status().state_sync.expect("the joiner started by state sync");
    assert!(report.height > EPOCH, "state sync started from height {} of epoch 1, past the genesis set's epoch", report.height);
    let target = handle(0, &nodes).status().unwrap().head.height;
    wait_for_height(&joiner.handle(), target, Duration::from_secs(60)).await;
    let (a, _) = reference.block_by_height(target).unwrap().unwrap();
    let (b, _) = joiner.handle().ledger().unwrap().block_by_height(target).unwrap().unwrap();
    assert_eq!((a.hash(), a.header.state_root), (b.hash(), b.header.state_root), "the joiner follows the same chain");
    joiner.shutdown().unwrap();
    for node in nodes.into_iter().flatten() {
        node.shutdown().unwrap();
    }
}

/// Downtime end to end: four HotStuff validators (1,000,000 staked each) run staking and
/// slashing with a window of 10 heights of which at least one must be signed; one validator
/// is stopped at once. Every certificate then holds the three others (a quorum of four needs
/// all three), so only the stopped one misses: once 10 measured heights have passed it is
/// slashed 1% and jailed, and epoch 1's set, chosen at height 20, leaves it out; the three
/// go on. (A window of all-missed heights keeps honest validators — sometimes left out of a
/// certificate that formed before their vote arrived — safe from a flaky slash.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_validator_is_slashed_for_downtime_jailed_and_left_out_of_the_next_set() {
    aether_tests::log_if_asked();
    const LENGTH: u64 = 20;
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<Keypair> = (0..4u8).map(|i| Keypair::from_seed([0x60 + i; 32])).collect();
    let mut genesis = genesis(&keys, &[]);
    genesis.epochs = Some(EpochSchedule { length: LENGTH, validator_source: Some("staking".into()) });
    for v in &mut genesis.validators {
        v.stake = 1_000_000;
    }
    genesis.modules.push(GenesisModule {
        name: "slashing".into(),
        version: 1,
        mint: false,
        govern_chain: false,
        params: r#"{"downtime_slash_bps":100,"min_signed_per_window_bps":1000,"signed_blocks_window":10}"#.into(),
    });
    let hub = MemoryHub::new();
    let launch = |i: usize| {
        aether_tests::hotstuff_validator(&dir.path().join(format!("n{i}")), &genesis, &keys[i], hub.join(keys[i].public()))
            .module(Staking)
            .module(aether_module_slashing::Slashing)
            .launch()
            .expect("validator launches")
    };
    let mut nodes: Vec<Option<Node>> = (0..4).map(|i| Some(launch(i))).collect();
    let handle = |i: usize, nodes: &[Option<Node>]| nodes[i].as_ref().unwrap().handle();
    wait_for_height(&handle(0, &nodes), 1, Duration::from_secs(60)).await;
    nodes[3].take().unwrap().shutdown().unwrap();
    let stopped = keys[3].public();

    // Epoch 1 begins without it; the three commit on.
    wait_for_height(&handle(0, &nodes), LENGTH + 3, Duration::from_secs(120)).await;
    let ledger = handle(0, &nodes).ledger().unwrap();
    let set: std::collections::BTreeSet<_> = ledger.validator_set(1).unwrap().unwrap().into_iter().map(|v| v.identity).collect();
    assert_eq!(set, keys[..3].iter().map(|k| k.public()).collect(), "epoch 1's set");
    let query = |who: &Keypair| {
        let answer = ledger.module_query("staking", "validator", &who.public().0, 100_000_000).unwrap().answer.unwrap();
        serde_json::from_slice::<aether_module_staking::ValidatorInfo>(&answer).unwrap()
    };
    let v3 = query(&keys[3]);
    assert_eq!(v3.jailed_since, Some(0), "jailed in epoch 0");
    assert_eq!(v3.tokens, 990_000, "1% burned");
    for k in &keys[..3] {
        assert_eq!(query(k).jailed_since, None, "{} signed and stays", k.public());
    }
    assert!(!set.contains(&stopped));
    for node in nodes.into_iter().flatten() {
        node.shutdown().unwrap();
    }
}
