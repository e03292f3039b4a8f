//! # aether-net-libp2p
//!
//! The socket network plugin (`[network] backend = "libp2p"`): validators and full nodes on
//! different machines, over TCP with Noise encryption and Yamux multiplexing.
//!
//! ```no_run
//! use aether_api::network::{Network, NetworkContext};
//! use aether_net_libp2p::{Libp2pNetwork, Libp2pSettings};
//! use aether_primitives::types::Keypair;
//!
//! let (a, b) = (Keypair::from_seed([1; 32]), Keypair::from_seed([2; 32]));
//! let ctx = |key: &Keypair| NetworkContext {
//!     identity: key.clone(),
//!     chain: "demo".into(),
//!     listen: vec!["127.0.0.1:0".parse().unwrap()],
//!     bootstrap: vec![],
//!     allowed: vec![a.public(), b.public()],
//!     validators: vec![a.public(), b.public()],
//!     max_peers: 8,
//! };
//! let net_a = Libp2pNetwork::start(&ctx(&a), Libp2pSettings::default()).unwrap();
//! let mut ctx_b = ctx(&b);
//! ctx_b.bootstrap = vec![format!("{}@{}", a.public(), net_a.listen_addrs()[0]).parse().unwrap()];
//! let net_b = Libp2pNetwork::start(&ctx_b, Libp2pSettings::default()).unwrap();
//! let mut inbox = net_a.subscribe("aether/tx/1").unwrap();
//! // ... once B is connected (net_b.peers() contains A), B's sends reach A in order:
//! net_b.send(&a.public(), "aether/tx/1", b"hello".to_vec()).unwrap();
//! ```
//!
//! What it guarantees (the `Network` contract, checked by `aether_testkit::network_conformance`):
//! - **Authenticated, ordered, direct.** Every message goes straight to its peer over one
//!   Noise-authenticated stream per direction, so `from` is the peer's key and a peer's messages
//!   arrive in the order it sent them. Nothing is relayed: consensus relies on both properties,
//!   and a gossip mesh would break them. `broadcast` sends to every connected peer; a full
//!   node reaches the validators by listing them as bootstrap peers.
//! - **Allow-listed.** Only the genesis validators and `[network] allowed_peers` may connect;
//!   any other key is refused when the Noise handshake completes. A validator's peer id is
//!   its genesis identity key.
//! - **Never blocks the node.** Each peer has bounded queues (consensus before everything
//!   else); a full queue fails the send with `Backpressure`. Inbound messages wait in a bounded
//!   queue per topic; when the node falls behind they are dropped and counted.
//! - **Misbehaviour is blocked.** Per peer and topic, a token bucket limits the message rate
//!   and a size limit bounds each message ([`Libp2pSettings::quotas`]). Messages over the rate
//!   are dropped and score the peer; a malformed or oversize frame scores it in full; at
//!   `block_score` the peer is disconnected and refused for `block_secs` (4 h by default).
//! - **Stays connected.** Bootstrap peers are redialled with backoff (250 ms doubling to
//!   `max_redial_secs`); connections stay open while idle for `idle_timeout_secs`.
//!
//! What it is **not**: no peer discovery (addresses come from config), no relaying or gossip
//! mesh, no QUIC (libp2p's QUIC brings a second TLS provider and has no datagrams), and no
//! host-name resolution (addresses are `IP:PORT`).

mod identity;
mod peers;
mod service;
mod settings;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use aether_api::network::{InboundMessage, Network, NetworkContext, NetworkError, NetworkStats, PeerId, Verdict};
use aether_api::registry::{PluginError, Registry};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

pub use identity::{aether_peer, libp2p_peer};
pub use settings::{Libp2pSettings, Quota};

use peers::Shared;
use service::Service;

/// The name this plugin registers under (`[network] backend = "libp2p"`).
pub const NAME: &str = "libp2p";

/// Registers the plugin as network backend `libp2p`.
pub fn register(registry: &mut Registry) {
    registry.network.register(
        NAME,
        "libp2p over TCP (Noise, Yamux): direct ordered streams to each peer, allow-listed identities, per-peer quotas and blocking",
        Box::new(|ctx, settings| {
            let parsed: Libp2pSettings = settings.parse()?;
            parsed.check().map_err(|reason| PluginError::Settings { plugin: format!("[{}]", settings.section), reason })?;
            let network = Libp2pNetwork::start(ctx, parsed).map_err(|reason| PluginError::Start { plugin: "libp2p".into(), reason })?;
            Ok(Arc::new(network) as Arc<dyn Network>)
        }),
    );
}

/// The stream protocol nodes of `chain` speak: `/aether/TAG/msg/1`, where TAG is a hash of
/// the chain's name, so nodes of different chains (or genesis files) never exchange messages.
pub fn protocol_for_chain(chain: &str) -> libp2p::StreamProtocol {
    libp2p::StreamProtocol::try_from_owned(format!("/aether/{}/msg/1", service::chain_tag(chain)))
        .unwrap_or(libp2p::StreamProtocol::new("/aether/msg/1"))
}

/// A running libp2p network: its own thread runs the swarm until this handle is dropped.
pub struct Libp2pNetwork {
    shared: Arc<Shared>,
    listen: Vec<SocketAddr>,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Libp2pNetwork {
    /// Starts the swarm thread and binds the listen addresses. Fails if an address cannot be
    /// bound or a key is not an ed25519 key.
    pub fn start(ctx: &NetworkContext, settings: Libp2pSettings) -> Result<Libp2pNetwork, String> {
        settings.check()?;
        let (commands_tx, commands_rx) = mpsc::channel(1024);
        let shared = Arc::new(Shared::new(ctx.identity.public(), settings, commands_tx));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| format!("network runtime: {e}"))?;
        let ctx = ctx.clone();
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("aether-network".into())
            .spawn(move || {
                rt.block_on(async move {
                    match Service::start(&ctx, thread_shared).await {
                        Ok((service, bound)) => {
                            let _ = ready_tx.send(Ok(bound));
                            service.run(commands_rx, stop_rx).await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
            })
            .map_err(|e| format!("network thread: {e}"))?;
        let listen = match ready_rx.recv() {
            Ok(Ok(bound)) => bound,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err("the network thread stopped while starting".into());
            }
        };
        tracing::info!(peer = %shared.local, listen = ?listen, "network started");
        Ok(Libp2pNetwork { shared, listen, stop: Mutex::new(Some(stop_tx)), thread: Mutex::new(Some(thread)) })
    }

    /// The addresses bound (port 0 in config resolves to the port chosen).
    pub fn listen_addrs(&self) -> &[SocketAddr] {
        &self.listen
    }

    /// Stops the swarm thread and closes every connection (also on drop).
    pub fn stop(&self) {
        if let Some(stop) = self.stop.lock().take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.lock().take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Libp2pNetwork {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Network for Libp2pNetwork {
    fn local_peer(&self) -> PeerId {
        self.shared.local
    }

    fn max_message_bytes(&self) -> usize {
        self.shared.settings.max_message_bytes
    }

    fn stats(&self) -> NetworkStats {
        self.shared.stats()
    }

    fn peers(&self) -> Vec<PeerId> {
        self.shared.linked_peers()
    }

    fn admit_validators(&self, validators: &[PeerId]) {
        if !self.shared.command(peers::Command::AdmitValidators(validators.to_vec())) {
            tracing::warn!("network thread busy: the new epoch's validators are not admitted yet");
        }
    }

    fn report(&self, peer: &PeerId, reason: &str) {
        tracing::warn!(%peer, reason, "peer reported by the node");
        self.shared.penalize(*peer, self.shared.settings.block_score, peers::Drop::Reported);
    }

    fn broadcast(&self, topic: &str, bytes: Vec<u8>) -> Result<(), NetworkError> {
        self.shared.broadcast(topic, &bytes)
    }

    fn publish(&self, topic: &str, bytes: Vec<u8>) -> Result<(), NetworkError> {
        if self.shared.settings.is_gossip(topic) {
            self.shared.publish(topic, bytes)
        } else {
            self.shared.broadcast(topic, &bytes)
        }
    }

    fn validated(&self, message: &InboundMessage, verdict: Verdict) {
        self.shared.validated(message, verdict)
    }

    fn send(&self, to: &PeerId, topic: &str, bytes: Vec<u8>) -> Result<(), NetworkError> {
        if *to == self.shared.local {
            return Err(NetworkError::UnknownPeer(*to));
        }
        self.shared.send(to, topic, &bytes)
    }

    fn subscribe(&self, topic: &str) -> Result<mpsc::Receiver<InboundMessage>, NetworkError> {
        self.shared.subscribe(topic)
    }
}
