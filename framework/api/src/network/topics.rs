//! The network topics a node uses, and the limits of what arrives on them. They are part of
//! the wire contract between nodes, so network plugins can give each its own quota and
//! priority (consensus first).

/// The network topic consensus messages travel on.
pub const CONSENSUS_TOPIC: &str = "aether/consensus/1";
/// The network topic transactions are gossiped on (the borsh-encoded signed transaction).
/// A node forwards each transaction its API admits once to its peers; the peers admit it to
/// their mempools (with every check) and do not forward it again — a network plugin that
/// relays topics (gossipsub) carries it further.
pub const TX_TOPIC: &str = "aether/tx/1";
/// The network topic evidence of misbehaviour is gossiped on (borsh `Evidence`).
pub const EVIDENCE_TOPIC: &str = "aether/evidence/1";
/// Largest encoded piece of evidence accepted from a peer.
pub const MAX_EVIDENCE_BYTES: usize = 64 * 1024;
/// The network topic block sync requests and responses travel on (direct sends only).
pub const SYNC_TOPIC: &str = "aether/sync/1";
