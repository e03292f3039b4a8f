//! The libp2p plugin on real sockets (127.0.0.1): the network conformance suite, the allow
//! list, and blocking of a peer that misbehaves.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aether_api::network::{Network, NetworkContext, PeerAddress};
use aether_net_libp2p::{Libp2pNetwork, Libp2pSettings, Quota};
use aether_primitives::types::Keypair;
use aether_testkit::{network_conformance, NetworkHarness};

fn key(i: usize) -> Keypair {
    Keypair::from_seed([i as u8 + 1; 32])
}

fn context(me: usize, allowed: &[usize], bootstrap: Vec<PeerAddress>, listen: SocketAddr) -> NetworkContext {
    NetworkContext {
        identity: key(me),
        chain: "test-chain/0xabc".into(),
        listen: vec![listen],
        bootstrap,
        allowed: allowed.iter().map(|i| key(*i).public()).collect(),
        validators: allowed.iter().map(|i| key(*i).public()).collect(),
        max_peers: 16,
    }
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn wait_until(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Three nodes that know each other; a restarted node binds its old port again.
struct Harness {
    addrs: Vec<Option<SocketAddr>>,
    settings: Libp2pSettings,
}

impl NetworkHarness for Harness {
    fn start(&mut self, i: usize) -> Arc<dyn Network> {
        let bootstrap =
            (0..3).filter(|j| *j != i).filter_map(|j| self.addrs[j].map(|addr| PeerAddress { peer: key(j).public(), addr })).collect();
        let listen = self.addrs[i].unwrap_or_else(any_port);
        let net = Libp2pNetwork::start(&context(i, &[0, 1, 2], bootstrap, listen), self.settings.clone()).unwrap();
        self.addrs[i] = Some(net.listen_addrs()[0]);
        Arc::new(net)
    }
    fn stop(&mut self, _i: usize) {}
}

#[test]
fn libp2p_passes_the_network_conformance_suite() {
    let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).with_test_writer().try_init();
    // The suite floods one topic on purpose: lift the rate quota so the flood is not
    // (correctly) punished as misbehaviour.
    let settings = Libp2pSettings {
        default_quota: Quota { per_second: 1_000_000, burst: 1_000_000, max_bytes: 1 << 20 },
        ..Libp2pSettings::default()
    };
    network_conformance(&mut Harness { addrs: vec![None; 3], settings });
}

#[test]
fn a_key_outside_the_allowed_set_is_refused() {
    let a = Libp2pNetwork::start(&context(0, &[0, 1], vec![], any_port()), Libp2pSettings::default()).unwrap();
    let a_addr = PeerAddress { peer: key(0).public(), addr: a.listen_addrs()[0] };
    let mut inbox = a.subscribe("t/1").unwrap();
    // Node 2 is not in A's allowed set (though A is in node 2's): A refuses it at the handshake.
    let stranger = Libp2pNetwork::start(&context(2, &[0, 2], vec![a_addr], any_port()), Libp2pSettings::default()).unwrap();
    // Node 1 is allowed, and connects in the same time.
    let friend = Libp2pNetwork::start(&context(1, &[0, 1], vec![a_addr], any_port()), Libp2pSettings::default()).unwrap();
    wait_until(Duration::from_secs(20), "the allowed peer connects", || a.peers().contains(&key(1).public()));
    wait_until(Duration::from_secs(20), "A counts the refused connection", || {
        a.stats().dropped.get("refused_connection").copied().unwrap_or(0) > 0
    });
    assert!(!a.peers().contains(&key(2).public()), "A never lists the stranger as a peer");
    // The stranger may see its side of a connection for a moment before A closes it; whatever
    // it sends never reaches A's node.
    for _ in 0..20 {
        let _ = stranger.send(&key(0).public(), "t/1", b"let me in".to_vec());
        std::thread::sleep(Duration::from_millis(50));
    }
    friend.send(&key(0).public(), "t/1", b"hello".to_vec()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let m = loop {
        if let Ok(m) = inbox.try_recv() {
            break m;
        }
        assert!(Instant::now() < deadline, "A receives the allowed peer's message");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(m.from, key(1).public(), "only the allowed peer's message arrives");
    std::thread::sleep(Duration::from_millis(300));
    assert!(inbox.try_recv().is_err(), "nothing from the stranger ever arrives");
}

#[test]
fn a_flooding_peer_is_blocked_and_the_others_keep_talking() {
    let settings = Libp2pSettings {
        default_quota: Quota { per_second: 50, burst: 50, max_bytes: 1024 },
        block_score: 20,
        ..Libp2pSettings::default()
    };
    let a = Libp2pNetwork::start(&context(0, &[0, 1, 2], vec![], any_port()), settings.clone()).unwrap();
    let a_addr = PeerAddress { peer: key(0).public(), addr: a.listen_addrs()[0] };
    let mut inbox = a.subscribe("t/1").unwrap();
    let flooder = Libp2pNetwork::start(&context(1, &[0, 1, 2], vec![a_addr], any_port()), Libp2pSettings::default()).unwrap();
    let honest = Libp2pNetwork::start(&context(2, &[0, 1, 2], vec![a_addr], any_port()), Libp2pSettings::default()).unwrap();
    wait_until(Duration::from_secs(20), "both peers connect", || {
        a.peers().len() == 2 && flooder.peers().contains(&key(0).public()) && honest.peers().contains(&key(0).public())
    });
    // 50 at once is within the burst; 500 more are far over the rate.
    for i in 0..550u32 {
        let _ = flooder.send(&key(0).public(), "t/1", i.to_be_bytes().to_vec());
    }
    wait_until(Duration::from_secs(20), "A blocks the flooder", || a.stats().blocked.contains(&key(1).public()));
    let stats = a.stats();
    assert!(stats.dropped.get("rate_limited").copied().unwrap_or(0) >= 20, "messages over the rate are dropped and counted: {stats:?}");
    wait_until(Duration::from_secs(20), "the flooder's connection is closed", || !a.peers().contains(&key(1).public()));
    let delivered = std::iter::from_fn(|| inbox.try_recv().ok()).filter(|m| m.from == key(1).public()).count();
    assert!((50..=100).contains(&delivered), "about the burst of the flood is delivered, not all of it: {delivered}");
    // The flooder keeps redialling and is refused while blocked.
    std::thread::sleep(Duration::from_secs(2));
    assert!(!a.peers().contains(&key(1).public()), "a blocked peer cannot reconnect");
    honest.send(&key(0).public(), "t/1", b"still here".to_vec()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(m) = inbox.try_recv() {
            if m.from == key(2).public() {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the honest peer is still heard");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn an_oversize_frame_blocks_its_sender() {
    use futures::AsyncWriteExt;
    // A peer speaking the wire protocol by hand: a raw libp2p swarm with the same identity
    // scheme, which writes a frame over A's limit for its topic.
    let settings = Libp2pSettings { default_quota: Quota { per_second: 1000, burst: 1000, max_bytes: 64 }, ..Libp2pSettings::default() };
    let a = Libp2pNetwork::start(&context(0, &[0, 1], vec![], any_port()), settings).unwrap();
    let a_addr = PeerAddress { peer: key(0).public(), addr: a.listen_addrs()[0] };
    let _inbox = a.subscribe("t/1").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use futures::StreamExt;
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(libp2p::identity::Keypair::ed25519_from_bytes(key(1).seed()).unwrap())
            .with_tokio()
            .with_tcp(libp2p::tcp::Config::default(), libp2p::noise::Config::new, libp2p::yamux::Config::default)
            .unwrap()
            .with_behaviour(|_| libp2p_stream::Behaviour::new())
            .unwrap()
            .build();
        let mut control = swarm.behaviour().new_control();
        let a_peer = aether_net_libp2p::libp2p_peer(&key(0).public()).unwrap();
        swarm.dial(format!("/ip4/127.0.0.1/tcp/{}/p2p/{a_peer}", a_addr.addr.port()).parse::<libp2p::Multiaddr>().unwrap()).unwrap();
        let driver = tokio::spawn(async move {
            loop {
                swarm.select_next_some().await;
            }
        });
        let protocol = aether_net_libp2p::protocol_for_chain("test-chain/0xabc");
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut stream = loop {
            match control.open_stream(a_peer, protocol.clone()).await {
                Ok(s) => break s,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot open a stream to A: {e}"),
            }
        };
        stream.write_all(&aether_net_libp2p::wire::encode("t/1", &[0; 65])).await.unwrap();
        stream.flush().await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !a.stats().blocked.contains(&key(1).public()) {
            assert!(Instant::now() < deadline, "a frame over the topic's limit blocks its sender");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        driver.abort();
    });
    assert_eq!(a.stats().dropped.get("oversize"), Some(&1));
}

/// A — B — C in a line (A and C never connect): a transaction A publishes reaches C only
/// through B, and only after B's node accepted it; one B rejects goes no further and counts
/// against A.
#[test]
fn gossip_is_relayed_only_after_the_relay_accepts_it() {
    use aether_api::network::topics::TX_TOPIC;
    use aether_api::network::Verdict;
    let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).with_test_writer().try_init();
    let all = [0, 1, 2];
    let b = Libp2pNetwork::start(&context(1, &all, vec![], any_port()), Libp2pSettings::default()).unwrap();
    let b_addr = PeerAddress { peer: key(1).public(), addr: b.listen_addrs()[0] };
    let a = Libp2pNetwork::start(&context(0, &all, vec![b_addr], any_port()), Libp2pSettings::default()).unwrap();
    let c = Libp2pNetwork::start(&context(2, &all, vec![b_addr], any_port()), Libp2pSettings::default()).unwrap();
    let (mut a_in, mut b_in, mut c_in) = (a.subscribe(TX_TOPIC).unwrap(), b.subscribe(TX_TOPIC).unwrap(), c.subscribe(TX_TOPIC).unwrap());
    wait_until(Duration::from_secs(10), "B links to A and C", || b.peers().len() == 2);
    assert!(!a.peers().contains(&key(2).public()) && !c.peers().contains(&key(0).public()), "A and C are not connected");

    // Until the gossip subscriptions are exchanged a publish finds no peer: publish distinct
    // transactions until one reaches B.
    let deadline = Instant::now() + Duration::from_secs(10);
    let accepted = loop {
        assert!(Instant::now() < deadline, "a published transaction reaches B");
        a.publish(TX_TOPIC, format!("tx {:?}", Instant::now()).into_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        if let Ok(m) = b_in.try_recv() {
            break m;
        }
    };
    assert_eq!(accepted.from, key(0).public(), "B hears it from A");
    assert!(accepted.gossip.is_some(), "a relayed message carries its gossip id");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(c_in.try_recv().is_err(), "B has not accepted it yet: C has nothing");
    b.validated(&accepted, Verdict::Accept);
    let deadline = Instant::now() + Duration::from_secs(10);
    let relayed = loop {
        assert!(Instant::now() < deadline, "after B accepts, the transaction reaches C");
        match c_in.try_recv() {
            Ok(m) => break m,
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    assert_eq!((relayed.from, &relayed.bytes), (key(1).public(), &accepted.bytes), "C hears A's transaction from B");
    while b_in.try_recv().is_ok() {} // the other attempts B never judged

    // One B rejects: never relayed, and A is scored for it.
    a.publish(TX_TOPIC, b"forged".to_vec()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let forged = loop {
        assert!(Instant::now() < deadline, "the forged transaction reaches B");
        match b_in.try_recv() {
            Ok(m) if m.bytes == b"forged" => break m,
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    b.validated(&forged, Verdict::Reject);
    std::thread::sleep(Duration::from_secs(3));
    while let Ok(m) = c_in.try_recv() {
        assert_ne!(m.bytes, b"forged", "a rejected transaction is not relayed");
    }
    assert_eq!(b.stats().dropped.get("gossip_rejected"), Some(&1), "the rejection is counted against the relay");
    assert!(a_in.try_recv().is_err(), "a node never receives its own publications");
}

#[test]
fn a_validator_admitted_for_a_new_epoch_connects_without_config() {
    let a = Libp2pNetwork::start(&context(0, &[0, 1], vec![], any_port()), Libp2pSettings::default()).unwrap();
    let a_addr = PeerAddress { peer: key(0).public(), addr: a.listen_addrs()[0] };
    let mut inbox = a.subscribe("t/1").unwrap();
    // Node 2 joined the set by staking: A's config never listed it, so A refuses it first.
    let newcomer = Libp2pNetwork::start(&context(2, &[0, 2], vec![a_addr], any_port()), Libp2pSettings::default()).unwrap();
    wait_until(Duration::from_secs(20), "A refuses the not-yet-admitted peer", || {
        a.stats().dropped.get("refused_connection").copied().unwrap_or(0) > 0
    });
    assert!(!a.peers().contains(&key(2).public()));
    // The epoch whose set holds it begins: A admits it, and its redials get through.
    a.admit_validators(&[key(0).public(), key(1).public(), key(2).public()]);
    wait_until(Duration::from_secs(30), "the admitted validator connects", || a.peers().contains(&key(2).public()));
    let deadline = Instant::now() + Duration::from_secs(10);
    let m = loop {
        let _ = newcomer.send(&key(0).public(), "t/1", b"now a validator".to_vec());
        if let Ok(m) = inbox.try_recv() {
            break m;
        }
        assert!(Instant::now() < deadline, "A receives the admitted validator's message");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(m.from, key(2).public());
}
