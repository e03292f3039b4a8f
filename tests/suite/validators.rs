//! Four HotStuff validators in one process: real nodes (driver, ledger, RocksDB, mempool) over
//! the in-process network. Transactions submitted to one validator reach the others by gossip;
//! all commit the same blocks and state roots; with one stopped the others continue;
//! restarted, it catches up. Evidence of a double vote is recorded in exactly one block.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aether_consensus_hotstuff::HotStuffEngine;
use aether_framework::codec;
use aether_framework::network::memory::MemoryHub;
use aether_framework::node::{Node, NodeHandle};
use aether_framework::types::{Action, Address, Genesis, GenesisAccount, Hash, Keypair, SignedTransaction, TxBody};
use aether_tests::wait_for_height;

const CHAIN: &str = "aether-validators-test";

fn genesis(validators: &[Keypair], accounts: &[Keypair]) -> Genesis {
    Genesis {
        chain_id: CHAIN.into(),
        genesis_time_ms: 1_700_000_000_000,
        modules: vec![],
        epochs: None,
        accounts: accounts.iter().map(|k| GenesisAccount { address: k.address(), balance: 1_000_000_000 }).collect(),
        validators: aether_presets::init::equal_stake_validators(validators, "v", HotStuffEngine::consensus_key),
    }
}

fn launch(dir: &Path, genesis: &Genesis, key: &Keypair, hub: &Arc<MemoryHub>) -> Node {
    aether_tests::launch_hotstuff_validator(dir, genesis, key, hub.join(key.public()))
}

fn transfer(from: &Keypair, nonce: u64) -> SignedTransaction {
    TxBody {
        chain_id: CHAIN.into(),
        sender: from.public(),
        nonce,
        fee: 1,
        action: Action::Transfer { to: Address([7; 20]), amount: 10, memo: vec![] },
    }
    .sign(from)
}

/// Submits to one validator only: gossip must carry it to whoever leads.
fn submit_to(node: &NodeHandle, tx: &SignedTransaction) -> Hash {
    node.submit(&codec::encode(tx)).expect("admitted")
}

/// The first block at or above `from` on `node` that records evidence, waiting up to `within`.
async fn block_with_evidence(node: &NodeHandle, from: u64, within: Duration) -> (u64, Vec<aether_framework::consensus::Evidence>) {
    let deadline = std::time::Instant::now() + within;
    let mut h = from;
    loop {
        match node.block_by_height(h).unwrap() {
            Some((b, _)) if !b.evidence.is_empty() => return (h, b.evidence),
            Some(_) => h += 1,
            None => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no block recorded the evidence within {within:?} (checked up to height {h})"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// The chains of `nodes` agree block by block up to `height`, state roots included.
fn assert_same_chain(nodes: &[NodeHandle], height: u64) {
    for h in 1..=height {
        let blocks: Vec<_> = nodes.iter().map(|n| n.block_by_height(h).unwrap().expect("block").0).collect();
        for b in &blocks[1..] {
            assert_eq!(b.hash(), blocks[0].hash(), "height {h}");
            assert_eq!(b.header.state_root, blocks[0].header.state_root, "height {h}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_agree_tolerate_one_stopped_and_the_stopped_one_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<Keypair> = (0..4u8).map(|i| Keypair::from_seed([0xb0 + i; 32])).collect();
    let sender = Keypair::from_seed([0xc1; 32]);
    let genesis = genesis(&keys, std::slice::from_ref(&sender));
    let hub = MemoryHub::new();
    let dirs: Vec<_> = (0..4).map(|i| dir.path().join(format!("v{i}"))).collect();
    let mut nodes: Vec<Option<Node>> = (0..4).map(|i| Some(launch(&dirs[i], &genesis, &keys[i], &hub))).collect();
    let handles = |nodes: &[Option<Node>]| nodes.iter().flatten().map(Node::handle).collect::<Vec<_>>();

    // All four: 10 transfers, submitted to validator 0 only, commit, and every validator holds
    // the same chain.
    let mut last = Hash::ZERO;
    for nonce in 0..10 {
        last = submit_to(&handles(&nodes)[0], &transfer(&sender, nonce));
    }
    let all = handles(&nodes);
    aether_tests::wait_for_tx(&all[0], last, Duration::from_secs(60)).await;
    let height = all[0].status().unwrap().head.height;
    for n in &all {
        wait_for_height(n, height, Duration::from_secs(30)).await;
    }
    assert_same_chain(&all, height);
    assert_eq!(all[0].account(&sender.address()).unwrap().nonce, 10);
    let proposers: std::collections::BTreeSet<Address> = (1..=height)
        .map(|h| all[0].block_by_height(h).unwrap().unwrap().0)
        .filter(|b| !b.transactions.is_empty())
        .map(|b| b.header.proposer)
        .collect();
    eprintln!("blocks with transfers were proposed by {} validators", proposers.len());

    // Evidence that validator 3 voted twice in round 5, handed to validator 1: verified,
    // gossiped, recorded in one block that every validator accepts. A forgery (pinned on
    // validator 2, who signed nothing) is refused and never recorded.
    let (a, b) = (Hash::digest(b"t", b"proposal a"), Hash::digest(b"t", b"proposal b"));
    let genesis_block = aether_framework::ledger::Ledger::genesis_block(&genesis).hash();
    let domain = aether_consensus_hotstuff::certificate::signing_domain(CHAIN, &genesis_block, 0);
    let evidence = aether_consensus_hotstuff::mocks::double_vote(&keys[3], domain, 3, 5, a, b);
    let mut forged = aether_consensus_hotstuff::mocks::double_vote(&keys[3], domain, 3, 6, a, b);
    forged.offender = 2;
    all[1].submit_evidence(forged.clone()).unwrap();
    all[1].submit_evidence(evidence.clone()).unwrap();
    let (recorded_at, recorded) = block_with_evidence(&all[0], height, Duration::from_secs(30)).await;
    assert_eq!(recorded, vec![evidence.clone()], "only the real evidence is recorded");
    for n in &all {
        wait_for_height(n, recorded_at, Duration::from_secs(30)).await;
        assert_eq!(n.ledger().unwrap().evidence_recorded(&evidence.hash()).unwrap(), Some(recorded_at));
        assert_eq!(n.ledger().unwrap().evidence_recorded(&forged.hash()).unwrap(), None);
    }
    // Offered again, it is not recorded twice.
    all[2].submit_evidence(evidence.clone()).unwrap();

    // Validator 3 stops; three of four are still a quorum. (Its handle holds the store open.)
    drop(all);
    nodes[3].take().unwrap().shutdown().unwrap();
    for nonce in 10..15 {
        last = submit_to(&handles(&nodes)[1], &transfer(&sender, nonce));
    }
    let three = handles(&nodes);
    aether_tests::wait_for_tx(&three[0], last, Duration::from_secs(60)).await;
    let height = three[0].status().unwrap().head.height;
    for n in &three {
        wait_for_height(n, height, Duration::from_secs(30)).await;
    }
    assert_same_chain(&three, height);

    // Restarted from its data folder, it catches up with the others' chain.
    nodes[3] = Some(launch(&dirs[3], &genesis, &keys[3], &hub));
    let restarted = nodes[3].as_ref().unwrap().handle();
    wait_for_height(&restarted, three[0].status().unwrap().head.height, Duration::from_secs(60)).await;
    drop(restarted);
    let last = submit_to(&handles(&nodes)[3], &transfer(&sender, 15));
    let all = handles(&nodes);
    aether_tests::wait_for_tx(&all[0], last, Duration::from_secs(60)).await;
    let height = all[0].status().unwrap().head.height;
    for n in &all {
        wait_for_height(n, height, Duration::from_secs(60)).await;
    }
    assert_same_chain(&all, height);
    assert_eq!(all[3].account(&sender.address()).unwrap().nonce, 16);
    let with_evidence = (1..=height).filter(|h| !all[0].block_by_height(*h).unwrap().unwrap().0.evidence.is_empty()).count();
    assert_eq!(with_evidence, 1, "the double vote is recorded once in the whole chain");
    for n in nodes.into_iter().flatten() {
        n.shutdown().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_with_commits_but_no_safety_state_signs_nothing_until_its_operator_confirms() {
    let dir = tempfile::tempdir().unwrap();
    let key = Keypair::from_seed([0xd0; 32]);
    let genesis = genesis(std::slice::from_ref(&key), &[]);
    let hub = MemoryHub::new();
    let node = launch(dir.path(), &genesis, &key, &hub);
    wait_for_height(&node.handle(), 3, Duration::from_secs(30)).await;
    assert!(node.handle().status().unwrap().info.signing);
    drop(node);

    // The consensus column is lost (say, restored from a backup of the chain only).
    {
        let prepared = aether_tests::hotstuff_validator(dir.path(), &genesis, &key, hub.join(key.public())).prepare().unwrap();
        let store = aether_framework::node::open_store(prepared.config(), prepared.registry()).unwrap();
        let mut batch = aether_framework::storage::WriteBatch::default();
        batch.delete(aether_framework::storage::columns::CONSENSUS, HotStuffEngine::NAME.as_bytes().to_vec());
        store.write(batch, aether_framework::storage::Durability::Synced).unwrap();
    }
    let node = launch(dir.path(), &genesis, &key, &hub);
    let stuck = node.handle().status().unwrap().head.height;
    assert!(!node.handle().status().unwrap().info.signing, "it follows without signing");
    // Its only validator signs nothing, so the chain stands still (it made ~20 blocks a second).
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(node.handle().status().unwrap().head.height, stuck);
    drop(node);

    // The operator confirms this key never signed elsewhere: it signs again.
    let node = aether_tests::hotstuff_validator(dir.path(), &genesis, &key, hub.join(key.public()))
        .configure(|c| c.node.fresh_safety_state = true)
        .launch()
        .unwrap();
    assert!(node.handle().status().unwrap().info.signing);
    wait_for_height(&node.handle(), stuck + 3, Duration::from_secs(30)).await;
}
