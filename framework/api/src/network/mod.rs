//! The networking slot: peers, topic broadcast, direct sends, and inbound message streams.
//!
//! Status: the trait, and [`memory`], an in-process hub for running several nodes in one
//! process (tests). The socket transport (`plugins/net-gossip`, libp2p) comes in a later issue;
//! a single-validator chain (`solo`) runs without a network.
//!
//! Peers are identified by [`PeerId`], derived by the plugin from the node's ed25519 identity
//! key, so the node maps validator identities (from genesis) to peers without a directory.

pub mod memory;

use tokio::sync::mpsc;

use crate::types::PublicKey;

/// A peer's identity: its ed25519 identity key.
pub type PeerId = PublicKey;

/// A message received from a peer. `bytes` are unauthenticated beyond the transport: the
/// consumer (consensus engine, mempool, DA) validates them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundMessage {
    pub from: PeerId,
    pub topic: String,
    pub bytes: Vec<u8>,
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

/// A network plugin.
///
/// Guarantees expected of implementations: sends never block (they enqueue into a bounded
/// queue and fail with [`NetworkError::Backpressure`] when it is full); messages larger than
/// the plugin's limit are refused on send and dropped on receipt; a peer's messages on one
/// topic arrive in the order it sent them (no guarantee across topics or after reconnects);
/// a node never receives its own broadcasts.
pub trait Network: Send + Sync + 'static {
    fn local_peer(&self) -> PeerId;

    /// Currently connected peers.
    fn peers(&self) -> Vec<PeerId>;

    /// Sends `bytes` to every connected peer subscribed to `topic`.
    fn broadcast(&self, topic: &str, bytes: Vec<u8>) -> Result<(), NetworkError>;

    /// Sends `bytes` to one peer.
    fn send(&self, to: &PeerId, topic: &str, bytes: Vec<u8>) -> Result<(), NetworkError>;

    /// The stream of inbound messages on `topic`. One subscriber per topic; the channel is
    /// bounded and the plugin drops (and counts) messages when the consumer falls behind.
    fn subscribe(&self, topic: &str) -> Result<mpsc::Receiver<InboundMessage>, NetworkError>;
}
