//! The `Network` contract, checked on three running nodes of any network plugin.
//!
//! One call, [`network_conformance`], with a [`NetworkHarness`] that starts and stops the
//! plugin's nodes. It checks what consensus and the mempool rely on: peers connect; a
//! broadcast reaches every other node and never the sender; so does a gossip publication
//! (directly or relayed after a node's verdict); one peer's messages on a topic
//! arrive in order, across two interleaved topics; `from` is the sender's identity; sends too
//! large for the plugin are refused; a send to an unknown peer is refused; sends never block,
//! even into a peer that reads nothing; a second subscriber to a topic is refused; and a peer
//! that restarts is reached again.
//!
//! Every wait is bounded (seconds, not minutes) and polls without a runtime, so the suite runs
//! from a plain `#[test]`.
//!
//! ```no_run
//! use std::sync::Arc;
//! use aether_api::network::{memory::MemoryHub, Network};
//! use aether_primitives::types::Keypair;
//! use aether_testkit::{network_conformance, NetworkHarness};
//!
//! struct Hub(Arc<MemoryHub>);
//! impl NetworkHarness for Hub {
//!     fn start(&mut self, i: usize) -> Arc<dyn Network> {
//!         self.0.join(Keypair::from_seed([i as u8 + 1; 32]).public())
//!     }
//!     fn stop(&mut self, _i: usize) {}
//! }
//! network_conformance(&mut Hub(MemoryHub::new()));
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use aether_api::network::topics::TX_TOPIC;
use aether_api::network::{InboundMessage, Network, NetworkError, PeerId, Verdict};
use tokio::sync::mpsc;

use crate::types::Keypair;

/// Starts and stops the nodes of the plugin under test. Node `i`'s identity must stay the
/// same across restarts, and the nodes must be allowed to connect to one another.
pub trait NetworkHarness {
    /// Starts node `i` (0, 1 or 2), or starts it again after [`NetworkHarness::stop`].
    fn start(&mut self, i: usize) -> Arc<dyn Network>;
    /// Stops node `i` (the suite has dropped its handle): its peers see it go.
    fn stop(&mut self, i: usize);
}

const CONNECT: Duration = Duration::from_secs(30);
const DELIVER: Duration = Duration::from_secs(20);
const QUIET: Duration = Duration::from_millis(300);
const TOPIC: &str = "conformance/a";
const OTHER_TOPIC: &str = "conformance/b";
const FLOOD_TOPIC: &str = "conformance/flood";

/// Runs the whole suite; panics with a message naming the broken rule.
pub fn network_conformance(harness: &mut impl NetworkHarness) {
    let mut nets: Vec<Arc<dyn Network>> = (0..3).map(|i| harness.start(i)).collect();
    let ids: Vec<PeerId> = nets.iter().map(|n| n.local_peer()).collect();
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2], "each node has its own identity");
    for (i, n) in nets.iter().enumerate() {
        wait_until(CONNECT, &format!("node {i} sees both other nodes as peers"), || {
            let peers = n.peers();
            ids.iter().enumerate().all(|(j, id)| j == i || peers.contains(id)) && !peers.contains(&ids[i])
        });
    }
    let mut inboxes: Vec<_> = nets.iter().map(|n| n.subscribe(TOPIC).expect("subscribe")).collect();
    let mut other: Vec<_> = nets.iter().map(|n| n.subscribe(OTHER_TOPIC).expect("subscribe")).collect();
    assert!(matches!(nets[0].subscribe(TOPIC), Err(NetworkError::AlreadySubscribed(_))), "a second subscriber to a topic is refused");

    broadcast_reaches_others_not_self(&nets, &ids, &mut inboxes);
    publications_reach_others_not_self(&nets);
    order_holds_per_sender_and_topic(&nets, &ids, &mut inboxes, &mut other);
    limits_are_enforced(&nets);
    sends_never_block(&nets, &ids, &mut inboxes);

    // Restart node 1: it is reached again, under the same identity.
    drop(inboxes.remove(1));
    drop(other.remove(1));
    drop(nets.remove(1));
    harness.stop(1);
    let restarted = harness.start(1);
    assert_eq!(restarted.local_peer(), ids[1], "a restarted node keeps its identity");
    let mut inbox = restarted.subscribe(TOPIC).expect("subscribe after restart");
    let deadline = Instant::now() + CONNECT + DELIVER;
    let mut seq = 0u64;
    let reached = loop {
        assert!(Instant::now() < deadline, "node 0 reaches node 1 again within {:?} after node 1 restarts", CONNECT + DELIVER);
        seq += 1;
        let _ = nets[0].send(&ids[1], TOPIC, format!("again {seq}").into_bytes());
        if let Some(m) = recv_within(&mut inbox, Duration::from_millis(200)) {
            break m;
        }
    };
    assert_eq!(reached.from, ids[0], "after a restart `from` is still the sender");
    assert!(reached.bytes.starts_with(b"again "), "the message after a restart is intact");
    drop(restarted);
    drop(nets);
}

/// A publication on a gossip topic (transactions) reaches every other node, directly or relayed
/// after a node accepted it, and never the publisher; verdicts are taken.
fn publications_reach_others_not_self(nets: &[Arc<dyn Network>]) {
    let mut inboxes: Vec<_> = nets.iter().map(|n| n.subscribe(TX_TOPIC).expect("subscribe to the transaction topic")).collect();
    // A relaying plugin may need a moment to learn who gossips what: publish distinct
    // messages until each other node has one.
    let deadline = Instant::now() + DELIVER;
    let mut got = [false; 3];
    let mut seq = 0u32;
    while !(got[1] && got[2]) {
        assert!(Instant::now() < deadline, "a publication from node 0 reaches nodes 1 and 2 within {DELIVER:?} (got {got:?})");
        seq += 1;
        nets[0].publish(TX_TOPIC, format!("published {seq}").into_bytes()).expect("publish");
        for i in [1, 2] {
            while let Some(m) = recv_within(&mut inboxes[i], Duration::from_millis(if got[i] { 1 } else { 100 })) {
                assert!(m.bytes.starts_with(b"published "), "node {i} receives the publication intact");
                assert_eq!(m.topic, TX_TOPIC);
                nets[i].validated(&m, Verdict::Accept);
                got[i] = true;
            }
        }
    }
    std::thread::sleep(QUIET);
    assert!(inboxes[0].try_recv().is_err(), "a node never receives its own publication");
}

fn broadcast_reaches_others_not_self(nets: &[Arc<dyn Network>], ids: &[PeerId], inboxes: &mut [mpsc::Receiver<InboundMessage>]) {
    nets[0].broadcast(TOPIC, b"to everyone".to_vec()).expect("broadcast");
    for i in [1, 2] {
        let m = recv_within(&mut inboxes[i], DELIVER).unwrap_or_else(|| panic!("node {i} receives node 0's broadcast"));
        assert_eq!(m.from, ids[0], "`from` is the broadcaster's identity");
        assert_eq!(m.topic, TOPIC);
        assert_eq!(m.bytes, b"to everyone");
    }
    std::thread::sleep(QUIET);
    assert!(inboxes[0].try_recv().is_err(), "a node never receives its own broadcast");
    // A direct send reaches only its addressee.
    nets[2].send(&ids[1], TOPIC, b"only to 1".to_vec()).expect("send");
    let m = recv_within(&mut inboxes[1], DELIVER).expect("node 1 receives node 2's direct message");
    assert_eq!((m.from, m.bytes.as_slice()), (ids[2], &b"only to 1"[..]), "`from` is the sender's identity");
    std::thread::sleep(QUIET);
    assert!(inboxes[0].try_recv().is_err(), "a direct message reaches only its addressee");
}

fn order_holds_per_sender_and_topic(
    nets: &[Arc<dyn Network>],
    ids: &[PeerId],
    inboxes: &mut [mpsc::Receiver<InboundMessage>],
    other: &mut [mpsc::Receiver<InboundMessage>],
) {
    const COUNT: u64 = 500;
    // Two senders and two topics interleaved, with sizes from 1 byte to 64 KiB: each
    // (sender, topic) stream must arrive in the order sent.
    let mut sent = [[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
    for n in 0..COUNT {
        for (s, sender) in [0usize, 2].into_iter().enumerate() {
            for (t, topic) in [TOPIC, OTHER_TOPIC].into_iter().enumerate() {
                let mut bytes = n.to_be_bytes().to_vec();
                bytes.resize(8 + (n as usize * 131) % 65_536, sender as u8);
                let deadline = Instant::now() + DELIVER;
                loop {
                    match nets[sender].send(&ids[1], topic, bytes.clone()) {
                        Ok(()) => break,
                        // Backpressure is the contract's answer to a fast sender; wait and retry.
                        Err(NetworkError::Backpressure) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
                        Err(e) => panic!("send {n} from node {sender}: {e}"),
                    }
                }
                sent[s][t].push(n);
            }
        }
    }
    for (t, inbox) in [&mut inboxes[1], &mut other[1]].into_iter().enumerate() {
        let mut got: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
        let deadline = Instant::now() + DELIVER;
        while got[0].len() < COUNT as usize || got[1].len() < COUNT as usize {
            let Some(m) = recv_within(inbox, deadline.saturating_duration_since(Instant::now())) else {
                panic!("topic {t}: node 1 received {} and {} of {COUNT} messages from nodes 0 and 2", got[0].len(), got[1].len());
            };
            let n = u64::from_be_bytes(m.bytes[..8].try_into().expect("8 bytes"));
            let s = if m.from == ids[0] {
                0
            } else if m.from == ids[2] {
                1
            } else {
                panic!("message from an unexpected peer {}", m.from)
            };
            assert_eq!(m.bytes.len(), 8 + (n as usize * 131) % 65_536, "message {n} arrives whole");
            got[s].push(n);
        }
        assert_eq!(got[0], sent[0][t], "node 0's messages on topic {t} arrive in the order sent, none lost");
        assert_eq!(got[1], sent[1][t], "node 2's messages on topic {t} arrive in the order sent, none lost");
    }
}

fn limits_are_enforced(nets: &[Arc<dyn Network>]) {
    let max = nets[0].max_message_bytes();
    let peer = nets[1].local_peer();
    assert!(
        matches!(nets[0].send(&peer, TOPIC, vec![0; max + 1]), Err(NetworkError::TooLarge { .. })),
        "a send larger than max_message_bytes is refused"
    );
    assert!(
        matches!(nets[0].broadcast(TOPIC, vec![0; max + 1]), Err(NetworkError::TooLarge { .. })),
        "a broadcast larger than max_message_bytes is refused"
    );
    let stranger = Keypair::from_seed([0xEE; 32]).public();
    assert!(
        matches!(nets[0].send(&stranger, TOPIC, b"hi".to_vec()), Err(NetworkError::UnknownPeer(_))),
        "a send to an unknown peer is refused"
    );
}

fn sends_never_block(nets: &[Arc<dyn Network>], ids: &[PeerId], inboxes: &mut [mpsc::Receiver<InboundMessage>]) {
    // Node 1 subscribes to the flood topic and never reads it: its queue fills, and node 0's
    // sends must still return at once, with Ok or Backpressure.
    let _unread = nets[1].subscribe(FLOOD_TOPIC).expect("subscribe");
    let sender = nets[0].clone();
    let to = ids[1];
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut outcome = (0u64, 0u64);
        for _ in 0..20_000 {
            match sender.send(&to, FLOOD_TOPIC, vec![7; 1024]) {
                Ok(()) => outcome.0 += 1,
                Err(NetworkError::Backpressure) => outcome.1 += 1,
                Err(e) => {
                    let _ = done_tx.send(Err(e.to_string()));
                    return;
                }
            }
        }
        let _ = done_tx.send(Ok(outcome));
    });
    let outcome =
        done_rx.recv_timeout(Duration::from_secs(60)).expect("20,000 sends into a peer that reads nothing return without blocking");
    let (accepted, refused) = outcome.unwrap_or_else(|e| panic!("a flood of sends fails only with Backpressure, not: {e}"));
    assert_eq!(accepted + refused, 20_000);
    // The flooded peer still receives on its other topics.
    let deadline = Instant::now() + DELIVER;
    let received = loop {
        assert!(Instant::now() < deadline, "after a flood into one topic, node 1 still receives on another");
        if nets[2].send(&ids[1], TOPIC, b"after the flood".to_vec()).is_ok() {
            if let Some(m) = recv_within(&mut inboxes[1], Duration::from_millis(500)) {
                break m;
            }
        }
    };
    assert_eq!(received.from, ids[2]);
}

fn recv_within(inbox: &mut mpsc::Receiver<InboundMessage>, within: Duration) -> Option<InboundMessage> {
    let deadline = Instant::now() + within;
    loop {
        match inbox.try_recv() {
            Ok(m) => return Some(m),
            Err(mpsc::error::TryRecvError::Disconnected) => return None,
            Err(mpsc::error::TryRecvError::Empty) if Instant::now() >= deadline => return None,
            Err(mpsc::error::TryRecvError::Empty) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

fn wait_until(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
