//! Test helpers shared by the node's unit tests.

use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::network::{InboundMessage, Network, NetworkError, NetworkStats, PeerId};

/// The hub, recording which peers the node reported.
pub(crate) struct Recording {
    pub(crate) inner: Arc<dyn Network>,
    pub(crate) reported: Arc<Mutex<Vec<PeerId>>>,
}

impl Network for Recording {
    fn local_peer(&self) -> PeerId {
        self.inner.local_peer()
    }
    fn max_message_bytes(&self) -> usize {
        self.inner.max_message_bytes()
    }
    fn stats(&self) -> NetworkStats {
        self.inner.stats()
    }
    fn report(&self, peer: &PeerId, _reason: &str) {
        self.reported.lock().push(*peer);
    }
    fn peers(&self) -> Vec<PeerId> {
        self.inner.peers()
    }
    fn broadcast(&self, topic: &str, bytes: Vec<u8>) -> Result<(), NetworkError> {
        self.inner.broadcast(topic, bytes)
    }
    fn send(&self, to: &PeerId, topic: &str, bytes: Vec<u8>) -> Result<(), NetworkError> {
        self.inner.send(to, topic, bytes)
    }
    fn subscribe(&self, topic: &str) -> Result<mpsc::Receiver<InboundMessage>, NetworkError> {
        self.inner.subscribe(topic)
    }
}
