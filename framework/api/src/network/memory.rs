//! An in-process network: several nodes in one process exchange messages over channels.
//!
//! For tests and demos of whole multi-validator nodes (real driver, ledger and storage, no
//! sockets). It is not a transport: validators on different machines need the network plugin.
//! It keeps the [`Network`] guarantees: sends never block (a full inbound queue drops the
//! message and counts it), a node never receives its own broadcasts, per-sender order holds.
//!
//! ```
//! use aether_api::network::{memory::MemoryHub, Network};
//! use aether_primitives::types::Keypair;
//! let hub = MemoryHub::new();
//! let (a, b) = (Keypair::from_seed([1; 32]).public(), Keypair::from_seed([2; 32]).public());
//! let (net_a, net_b) = (hub.join(a), hub.join(b));
//! let mut inbox = net_b.subscribe("consensus").unwrap();
//! net_a.broadcast("consensus", b"hello".to_vec()).unwrap();
//! assert_eq!(inbox.try_recv().unwrap().bytes, b"hello");
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::{InboundMessage, Network, NetworkError, PeerId};

/// Largest message the hub carries.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// Inbound queue per subscriber.
const QUEUE: usize = 4_096;

/// The shared medium every in-process node joins.
#[derive(Default)]
pub struct MemoryHub {
    subscribers: Mutex<HashMap<(PeerId, String), mpsc::Sender<InboundMessage>>>,
    members: Mutex<Vec<PeerId>>,
    dropped: AtomicU64,
}

impl MemoryHub {
    pub fn new() -> Arc<MemoryHub> {
        Arc::new(MemoryHub::default())
    }

    /// A network handle for the node whose identity is `peer`.
    pub fn join(self: &Arc<Self>, peer: PeerId) -> Arc<MemoryNetwork> {
        let mut members = self.members.lock();
        if !members.contains(&peer) {
            members.push(peer);
        }
        Arc::new(MemoryNetwork { hub: self.clone(), me: peer })
    }

    /// Messages dropped because a subscriber's queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn deliver(&self, to: &PeerId, message: InboundMessage) {
        let key = (*to, message.topic.clone());
        let sender = self.subscribers.lock().get(&key).cloned();
        if let Some(s) = sender {
            if let Err(mpsc::error::TrySendError::Full(_)) = s.try_send(message) {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            // A closed channel is a stopped node: like a peer that went away.
        }
    }
}

/// One node's handle on a [`MemoryHub`].
pub struct MemoryNetwork {
    hub: Arc<MemoryHub>,
    me: PeerId,
}

impl MemoryNetwork {
    fn check(&self, bytes: &[u8]) -> Result<(), NetworkError> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(NetworkError::TooLarge { len: bytes.len(), max: MAX_MESSAGE_BYTES });
        }
        Ok(())
    }
}

impl Network for MemoryNetwork {
    fn local_peer(&self) -> PeerId {
        self.me
    }

    fn max_message_bytes(&self) -> usize {
        MAX_MESSAGE_BYTES
    }

    fn peers(&self) -> Vec<PeerId> {
        self.hub.members.lock().iter().filter(|p| **p != self.me).copied().collect()
    }

    fn broadcast(&self, topic: &str, bytes: Vec<u8>) -> Result<(), NetworkError> {
        self.check(&bytes)?;
        for peer in self.peers() {
            self.hub.deliver(&peer, InboundMessage::direct(self.me, topic, bytes.clone()));
        }
        Ok(())
    }

    fn send(&self, to: &PeerId, topic: &str, bytes: Vec<u8>) -> Result<(), NetworkError> {
        self.check(&bytes)?;
        if !self.hub.members.lock().contains(to) {
            return Err(NetworkError::UnknownPeer(*to));
        }
        self.hub.deliver(to, InboundMessage::direct(self.me, topic, bytes));
        Ok(())
    }

    fn subscribe(&self, topic: &str) -> Result<mpsc::Receiver<InboundMessage>, NetworkError> {
        let mut subscribers = self.hub.subscribers.lock();
        let key = (self.me, topic.to_string());
        if subscribers.get(&key).is_some_and(|s| !s.is_closed()) {
            return Err(NetworkError::AlreadySubscribed(topic.to_string()));
        }
        // A restarted node subscribes again; its old, closed queue is replaced.
        let (tx, rx) = mpsc::channel(QUEUE);
        subscribers.insert(key, tx);
        Ok(rx)
    }
}
