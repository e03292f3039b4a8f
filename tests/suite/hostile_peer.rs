//! Four HotStuff validators in one process, each on its own libp2p network on 127.0.0.1, and a
//! hostile peer whose key the validators allow (a configured full node gone bad): it floods
//! validator 0 with garbage. Validator 0 blocks it and cuts it off; the four keep committing,
//! and a transfer gossiped during the flood commits on all of them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aether_consensus_hotstuff::HotStuffEngine;
use aether_framework::codec;
use aether_framework::network::topics::EVIDENCE_TOPIC;
use aether_framework::network::{Network, NetworkContext, PeerAddress};
use aether_framework::node::Node;
use aether_framework::types::{Action, Address, Genesis, GenesisAccount, Keypair, TxBody};
use aether_net_libp2p::{Libp2pNetwork, Libp2pSettings};
use aether_tests::{wait_for_height, wait_for_tx};

const CHAIN: &str = "aether-hostile-peer-test";

fn network(me: &Keypair, allowed: &[Keypair], bootstrap: &[(Keypair, SocketAddr)], chain: &str) -> Libp2pNetwork {
    let ctx = NetworkContext {
        identity: me.clone(),
        chain: chain.into(),
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        bootstrap: bootstrap.iter().map(|(k, addr)| PeerAddress { peer: k.public(), addr: *addr }).collect(),
        allowed: allowed.iter().map(Keypair::public).collect(),
        validators: allowed.iter().take(4).map(Keypair::public).collect(),
        max_peers: 16,
    };
    Libp2pNetwork::start(&ctx, Libp2pSettings::default()).expect("network starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_peer_is_blocked_while_the_validators_keep_committing() {
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<Keypair> = (0..4u8).map(|i| Keypair::from_seed([0xd0 + i; 32])).collect();
    let hostile = Keypair::from_seed([0xde; 32]);
    let sender = Keypair::from_seed([0xd9; 32]);
    let genesis = Genesis {
        chain_id: CHAIN.into(),
        genesis_time_ms: 1_700_000_000_000,
        modules: vec![],
        epochs: None,
        accounts: vec![GenesisAccount { address: sender.address(), balance: 1_000_000_000 }],
        validators: aether_presets::init::equal_stake_validators(&keys, "v", HotStuffEngine::consensus_key),
    };
    let chain = format!("{CHAIN}/{}", aether_framework::ledger::Ledger::genesis_block(&genesis).hash());
    let mut allowed = keys.clone();
    allowed.push(hostile.clone());
    // Each validator dials the ones started before it.
    let mut started: Vec<(Keypair, SocketAddr)> = Vec::new();
    let mut networks: Vec<Arc<Libp2pNetwork>> = Vec::new();
    for key in &keys {
        let net = network(key, &allowed, &started, &chain);
        started.push((key.clone(), net.listen_addrs()[0]));
        networks.push(Arc::new(net));
    }
    let nodes: Vec<Node> = (0..4)
        .map(|i| aether_tests::launch_hotstuff_validator(&dir.path().join(format!("v{i}")), &genesis, &keys[i], networks[i].clone()))
        .collect();
    let handles: Vec<_> = nodes.iter().map(Node::handle).collect();
    for h in &handles {
        wait_for_height(h, 3, Duration::from_secs(60)).await;
    }

    // The hostile peer connects to validator 0 and floods the evidence topic with garbage
    // (its quota is 100/s, burst 200).
    let rogue = network(&hostile, &allowed, &started[..1], &chain);
    let v0 = keys[0].public();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !rogue.peers().contains(&v0) {
        assert!(Instant::now() < deadline, "the hostile peer connects to validator 0");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = handles[0].status().unwrap().head.height;
    let transfer = TxBody {
        chain_id: CHAIN.into(),
        sender: sender.public(),
        nonce: 0,
        fee: 1_000,
        action: Action::Transfer { to: Address([7; 20]), amount: 5, memo: vec![] },
    }
    .sign(&sender);
    let hash = handles[1].submit(&codec::encode(&transfer)).expect("the transfer is admitted");
    let mut sent = 0;
    for i in 0..2_000u32 {
        if rogue.send(&v0, EVIDENCE_TOPIC, i.to_le_bytes().repeat(16)).is_ok() {
            sent += 1;
        }
    }
    assert!(sent > 300, "the flood left the hostile peer ({sent} sends queued)");

    // Validator 0 blocks and disconnects it.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !networks[0].stats().blocked.contains(&hostile.public()) {
        assert!(Instant::now() < deadline, "validator 0 blocks the flooding peer: {:?}", networks[0].stats().dropped);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while networks[0].peers().contains(&hostile.public()) || rogue.peers().contains(&v0) {
        assert!(Instant::now() < deadline, "the blocked peer is disconnected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(networks[0].stats().dropped.get("rate_limited").copied().unwrap_or(0) >= 100, "the flood was counted");

    // The validators keep committing, and the transfer gossiped during the flood commits on all.
    for h in &handles {
        wait_for_height(h, before + 10, Duration::from_secs(60)).await;
        wait_for_tx(h, hash, Duration::from_secs(60)).await;
    }
    for n in nodes {
        n.shutdown().unwrap();
    }
}
