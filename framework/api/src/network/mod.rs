//! The networking slot: peers, topic broadcast, direct sends, and inbound message streams.
//!
//! Status: the trait, the [`topics`] nodes speak, [`NetworkContext`] (what a network plugin is
//! built from), and [`memory`], an in-process hub for running several nodes in one process
//! (tests, `aether devnet --in-process`). The socket transport is the `libp2p` plugin
//! (`plugins/net-libp2p`); a single-validator chain runs without a network.
//!
//! Peers are identified by [`PeerId`], derived by the plugin from the node's ed25519 identity
//! key, so the node maps validator identities (from genesis) to peers without a directory.

pub mod memory;
pub mod topics;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use tokio::sync::mpsc;

use crate::types::{Keypair, PublicKey};

/// A peer's identity: its ed25519 identity key.
pub type PeerId = PublicKey;

/// A message received from a peer. `bytes` are unauthenticated beyond the transport: the
/// consumer (consensus engine, mempool, DA) validates them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundMessage {
    /// The peer that sent it (on a gossip topic: the peer that relayed it, not its author).
    pub from: PeerId,
    pub topic: String,
    pub bytes: Vec<u8>,
    /// Set on messages that arrived by relaying gossip ([`Network::publish`]): the plugin's id
    /// of the message, which the node hands back with its [`Verdict`] ([`Network::validated`]).
    pub gossip: Option<GossipId>,
}

impl InboundMessage {
    /// A message sent directly by `from` (not relayed gossip).
    pub fn direct(from: PeerId, topic: impl Into<String>, bytes: Vec<u8>) -> InboundMessage {
        InboundMessage { from, topic: topic.into(), bytes, gossip: None }
    }
}

/// A network plugin's id of a gossiped message (for libp2p gossipsub: the content hash).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GossipId(pub Vec<u8>);

/// What the node made of a gossiped message ([`Network::validated`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Valid and new to this node: relay it to the node's gossip peers.
    Accept,
    /// Not worth relaying, but no sign of a dishonest peer (a duplicate, a fee below this node's
    /// minimum, a full mempool, a nonce already used).
    Ignore,
    /// Invalid in a way no honest node relays (a bad signature, malformed bytes, another
    /// chain): drop it and count it against the peer that relayed it.
    Reject,
}

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("peer {0} is not connected")]
    UnknownPeer(PeerId),
    #[error("message of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("outbound queue is full; message dropped")]
    Backpressure,
    #[error("topic {0:?} already has a subscriber")]
    AlreadySubscribed(String),
    #[error("network error: {0}")]
    Transport(String),
}

/// What a network plugin is built from (besides its own settings).
#[derive(Clone, Debug)]
pub struct NetworkContext {
    /// The node's identity key: its [`PeerId`] is this key's public half. A validator uses its
    /// genesis identity, so its peer id follows from genesis.
    pub identity: Keypair,
    /// Names this chain on the wire (chain id and genesis hash): nodes of another chain, or of
    /// another genesis with the same id, do not speak the same protocol.
    pub chain: String,
    /// Addresses to accept connections on (`[network] listen`).
    pub listen: Vec<SocketAddr>,
    /// Peers to connect to and keep connected to (`[network] bootstrap`).
    pub bootstrap: Vec<PeerAddress>,
    /// The only peers allowed to connect: the genesis validators and `[network] allowed_peers`.
    /// Connections from other keys are refused when the transport handshake completes.
    pub allowed: Vec<PeerId>,
    /// The genesis validators (all in `allowed`). Plugins may treat them apart (libp2p makes
    /// them gossipsub's explicit peers, which get every gossiped message directly).
    pub validators: Vec<PeerId>,
    /// Most peers connected at once.
    pub max_peers: usize,
}

/// A peer's identity and where it listens: `IDENTITY@IP:PORT` in config, with the identity
/// key in hex (as in genesis).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PeerAddress {
    pub peer: PeerId,
    pub addr: SocketAddr,
}

impl std::str::FromStr for PeerAddress {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (peer, addr) = s.split_once('@').ok_or_else(|| format!("peer address {s:?}: expected IDENTITY@IP:PORT"))?;
        let peer = peer.parse::<PublicKey>().map_err(|e| format!("peer address {s:?}: identity: {e}"))?;
        let addr =
            addr.parse::<SocketAddr>().map_err(|e| format!("peer address {s:?}: {e} (expected IP:PORT; host names are not resolved)"))?;
        Ok(PeerAddress { peer, addr })
    }
}

impl TryFrom<String> for PeerAddress {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<PeerAddress> for String {
    fn from(p: PeerAddress) -> String {
        p.to_string()
    }
}

impl std::fmt::Display for PeerAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.peer, self.addr)
    }
}

/// What a network plugin counts, for metrics, `aether peers` and RPC. Plugins fill what they
/// track; the in-process hub tracks little.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NetworkStats {
    /// Connected peers.
    pub peers: usize,
    /// Bytes sent and received per topic (payload bytes).
    pub bytes_out: BTreeMap<String, u64>,
    pub bytes_in: BTreeMap<String, u64>,
    /// Messages dropped, by reason (`inbox_full`, `rate_limited`, `oversize`, `malformed`,
    /// `unknown_topic`, `send_queue_full`).
    pub dropped: BTreeMap<String, u64>,
    /// Peers blocked for misbehaviour right now.
    pub blocked: Vec<PeerId>,
}

/// A network plugin.
///
/// Guarantees expected of implementations: sends never block (they enqueue into a bounded
/// queue and fail with [`NetworkError::Backpressure`] when it is full); messages larger than
/// the plugin's limit are refused on send and dropped on receipt; a peer's messages on one
/// topic arrive in the order it sent them (no guarantee across topics or after reconnects);
/// a node never receives its own broadcasts.
pub trait Network: Send + Sync + 'static {
    fn local_peer(&self) -> PeerId;

    /// Largest message `broadcast` and `send` accept (larger ones fail with
    /// [`NetworkError::TooLarge`]).
    fn max_message_bytes(&self) -> usize;

    /// Counters for metrics and operators.
    fn stats(&self) -> NetworkStats {
        NetworkStats { peers: self.peers().len(), ..NetworkStats::default() }
    }

    /// The node found a message from `peer` invalid in a way no honest peer sends (a forged
    /// block during sync, a batch that breaks its own hash chain). Plugins that can, block the
    /// peer; the default does nothing.
    fn report(&self, peer: &PeerId, reason: &str) {
        let _ = (peer, reason);
    }

    /// An epoch began with these validators: admit them as peers (allow their connections,
    /// and treat them as validators where the plugin does) if they were not admitted already.
    /// A validator that joined by staking connects to the others this way without their
    /// operators editing `[network] allowed_peers`. Admission only grows: a validator leaving
    /// the set may still run a full node. Plugins that admit every peer ignore it (the default).
    fn admit_validators(&self, validators: &[PeerId]) {
        let _ = validators;
    }

    /// Currently connected peers.
    fn peers(&self) -> Vec<PeerId>;

    /// Sends `bytes` to every connected peer subscribed to `topic`. Fails with
    /// [`NetworkError::Backpressure`] only when no peer's queue had room (peers with a full
    /// queue are skipped and counted).
    fn broadcast(&self, topic: &str, bytes: Vec<u8>) -> Result<(), NetworkError>;

    /// Sends `bytes` to one peer.
    fn send(&self, to: &PeerId, topic: &str, bytes: Vec<u8>) -> Result<(), NetworkError>;

    /// Publishes `bytes` on gossip topic `topic` (transactions, evidence): it reaches the
    /// network's nodes through relays, each relaying it only after its node accepted it
    /// ([`Network::validated`]). Plugins without relaying send it to the directly connected
    /// peers, as [`Network::broadcast`] does (the default).
    fn publish(&self, topic: &str, bytes: Vec<u8>) -> Result<(), NetworkError> {
        self.broadcast(topic, bytes)
    }

    /// The node's verdict on a gossiped message it received (one with
    /// [`InboundMessage::gossip`] set): `Accept` relays it, `Ignore` drops it, `Reject` drops
    /// it and counts against the peer that relayed it. Plugins without relaying ignore it (the
    /// default).
    fn validated(&self, message: &InboundMessage, verdict: Verdict) {
        let _ = (message, verdict);
    }

    /// The stream of inbound messages on `topic`. One subscriber per topic; the channel is
    /// bounded and the plugin drops (and counts) messages when the consumer falls behind.
    fn subscribe(&self, topic: &str) -> Result<mpsc::Receiver<InboundMessage>, NetworkError>;
}
