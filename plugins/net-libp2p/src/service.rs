//! The swarm thread: owns the libp2p swarm, keeps bootstrap peers connected (redial with
//! backoff), gives each connected peer one outbound stream fed from its queues, reads every
//! inbound stream, and carries out blocks.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aether_api::network::{GossipId, NetworkContext, PeerId, Verdict};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::core::multiaddr::Protocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ListenError, NetworkBehaviour, SwarmEvent};
use libp2p::{allow_block_list, connection_limits, gossipsub, identify, noise, tcp, yamux, Multiaddr, StreamProtocol, Swarm};
use tokio::sync::{mpsc, oneshot};

use crate::identity;
use crate::peers::{Command, Drop, Link, Shared};
use crate::settings::Libp2pSettings;
use crate::wire::{self, FrameError};

#[derive(NetworkBehaviour)]
struct Behaviour {
    allow: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    limits: connection_limits::Behaviour,
    identify: identify::Behaviour,
    gossip: gossipsub::Behaviour,
    streams: libp2p_stream::Behaviour,
}

/// A bootstrap peer and when to dial it next.
struct Dial {
    peer: libp2p::PeerId,
    addr: Multiaddr,
    next: Instant,
    backoff: Duration,
}

const FIRST_REDIAL: Duration = Duration::from_millis(250);
const TICK: Duration = Duration::from_millis(250);
const OPEN_STREAM_TIMEOUT: Duration = Duration::from_secs(10);
const OPEN_ATTEMPTS: u32 = 6;

pub(crate) struct Service {
    swarm: Swarm<Behaviour>,
    shared: Arc<Shared>,
    control: libp2p_stream::Control,
    protocol: StreamProtocol,
    dials: Vec<Dial>,
    /// Every peer allowed to connect, by libp2p id (blocks take peers out of the swarm's list).
    allowed: HashMap<libp2p::PeerId, PeerId>,
    connected: HashSet<libp2p::PeerId>,
    next_link: u64,
    max_redial: Duration,
    /// Gossipsub's explicit peers (the other validators).
    explicit: HashSet<libp2p::PeerId>,
    /// The explicit peers subscribed to each gossip topic (from gossipsub's events).
    explicit_subscribed: HashMap<gossipsub::TopicHash, HashSet<libp2p::PeerId>>,
    /// Gossiped messages handed to the node and not yet judged: the relay, topic and size, to
    /// report the verdict and count the bytes relayed on.
    judging: HashMap<Vec<u8>, Judging>,
}

struct Judging {
    source: libp2p::PeerId,
    topic: String,
    len: usize,
}

/// Gossiped messages awaiting the node's verdict that are remembered for byte counting.
const MAX_JUDGING: usize = 65_536;

/// A short tag of the chain's name (chain id and genesis hash) for protocol names.
pub(crate) fn chain_tag(chain: &str) -> String {
    aether_primitives::types::Hash::digest(b"aether/network", chain.as_bytes()).to_string()[2..18].to_string()
}

pub(crate) fn multiaddr(addr: &SocketAddr) -> Multiaddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) => Protocol::Ip4(ip),
        IpAddr::V6(ip) => Protocol::Ip6(ip),
    };
    Multiaddr::empty().with(ip).with(Protocol::Tcp(addr.port()))
}

fn socket_addr(addr: &Multiaddr) -> Option<SocketAddr> {
    let mut ip = None;
    let mut port = None;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(a) => ip = Some(IpAddr::V4(a)),
            Protocol::Ip6(a) => ip = Some(IpAddr::V6(a)),
            Protocol::Tcp(p) => port = Some(p),
            _ => {}
        }
    }
    Some(SocketAddr::new(ip?, port?))
}

impl Service {
    /// Builds the swarm and binds every listen address. Must run inside the thread's runtime.
    pub(crate) async fn start(ctx: &NetworkContext, shared: Arc<Shared>) -> Result<(Service, Vec<SocketAddr>), String> {
        let key = identity::keypair(&ctx.identity)?;
        let chain_tag = chain_tag(&ctx.chain);
        let protocol = crate::protocol_for_chain(&ctx.chain);
        let mut allowed = HashMap::new();
        for peer in &ctx.allowed {
            allowed.insert(identity::libp2p_peer(peer)?, *peer);
        }
        let mut allow = allow_block_list::Behaviour::<allow_block_list::AllowedPeers>::default();
        for peer in allowed.keys() {
            allow.allow_peer(*peer);
        }
        let max_peers = u32::try_from(ctx.max_peers).unwrap_or(u32::MAX);
        // Two per peer: when both sides dial at once, each keeps the connection it accepted.
        let limits = connection_limits::ConnectionLimits::default()
            .with_max_established_per_peer(Some(2))
            .with_max_established(Some(max_peers.saturating_mul(2)))
            .with_max_pending_incoming(Some(max_peers));
        let idle = shared.settings.idle_timeout();
        let identify_config = identify::Config::new(format!("/aether/{chain_tag}/id/1"), key.public())
            .with_agent_version(format!("aether/{}", env!("CARGO_PKG_VERSION")));
        let gossip = gossip_behaviour(&chain_tag, &shared.settings)?;
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
            .map_err(|e| format!("transport: {e}"))?
            .with_behaviour(|_| Behaviour {
                allow,
                limits: connection_limits::Behaviour::new(limits),
                identify: identify::Behaviour::new(identify_config.with_interval(Duration::from_secs(300))),
                gossip,
                streams: libp2p_stream::Behaviour::new(),
            })
            .map_err(|e| format!("behaviour: {e}"))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
            .build();
        let mut listeners = HashSet::new();
        for addr in &ctx.listen {
            let id = swarm.listen_on(multiaddr(addr)).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            listeners.insert(id);
        }
        // Wait for each listener's bound address, so port 0 resolves and a failure is reported now.
        let mut bound = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !listeners.is_empty() {
            let event =
                tokio::time::timeout_at(deadline, swarm.select_next_some()).await.map_err(|_| "timed out binding listen addresses")?;
            match event {
                SwarmEvent::NewListenAddr { listener_id, address } if listeners.remove(&listener_id) => {
                    bound.extend(socket_addr(&address));
                }
                SwarmEvent::ListenerClosed { listener_id, reason: Err(e), .. } if listeners.contains(&listener_id) => {
                    return Err(format!("listener failed: {e}"));
                }
                SwarmEvent::ListenerError { listener_id, error } if listeners.contains(&listener_id) => {
                    return Err(format!("listener failed: {error}"));
                }
                _ => {}
            }
        }
        let mut dials = Vec::new();
        for b in &ctx.bootstrap {
            if b.peer == ctx.identity.public() {
                continue;
            }
            dials.push(Dial {
                peer: identity::libp2p_peer(&b.peer)?,
                addr: multiaddr(&b.addr),
                next: Instant::now(),
                backoff: FIRST_REDIAL,
            });
        }
        for topic in &shared.settings.gossip_topics {
            swarm.behaviour_mut().gossip.subscribe(&gossipsub::IdentTopic::new(topic)).map_err(|e| format!("gossip topic {topic}: {e}"))?;
        }
        // Validators get every gossiped message directly, outside the mesh.
        let mut explicit = HashSet::new();
        for v in ctx.validators.iter().filter(|v| **v != ctx.identity.public()) {
            let peer = identity::libp2p_peer(v)?;
            swarm.behaviour_mut().gossip.add_explicit_peer(&peer);
            explicit.insert(peer);
        }
        let control = swarm.behaviour().streams.new_control();
        let max_redial = Duration::from_secs(shared.settings.max_redial_secs.max(1));
        Ok((
            Service {
                swarm,
                shared,
                control,
                protocol,
                dials,
                allowed,
                connected: HashSet::new(),
                next_link: 0,
                max_redial,
                explicit,
                explicit_subscribed: HashMap::new(),
                judging: HashMap::new(),
            },
            bound,
        ))
    }

    /// Runs until `stop` fires (or its sender is dropped).
    pub(crate) async fn run(mut self, mut commands: mpsc::Receiver<Command>, mut stop: oneshot::Receiver<()>) {
        let incoming = match self.control.accept(self.protocol.clone()) {
            Ok(i) => i,
            Err(e) => {
                tracing::error!(error = %e, "cannot accept streams");
                return;
            }
        };
        let reader_shared = self.shared.clone();
        tokio::spawn(accept_streams(incoming, reader_shared));
        let mut tick = tokio::time::interval(TICK);
        let mut last_tick = Instant::now();
        loop {
            tokio::select! {
                _ = &mut stop => break,
                event = self.swarm.select_next_some() => self.on_event(event),
                Some(command) = commands.recv() => self.on_command(command),
                _ = tick.tick() => {
                    let now = Instant::now();
                    if now.duration_since(last_tick) >= Duration::from_secs(1) {
                        self.expire_blocks(now.duration_since(last_tick));
                        last_tick = now;
                    }
                    self.link_connected_peers();
                    self.redial(now);
                }
            }
        }
    }

    fn on_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished { peer_id, endpoint, .. } => {
                tracing::debug!(peer = %peer_id, addr = %endpoint.get_remote_address(), "connected");
                self.connected.insert(peer_id);
                if let Some(d) = self.dials.iter_mut().find(|d| d.peer == peer_id) {
                    d.backoff = FIRST_REDIAL;
                }
                self.link(peer_id);
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established: 0, cause, .. } => {
                tracing::debug!(peer = %peer_id, cause = ?cause, "disconnected");
                self.connected.remove(&peer_id);
                if let Some(peer) = self.allowed.get(&peer_id) {
                    self.shared.remove_link(peer, None);
                }
            }
            SwarmEvent::IncomingConnectionError { error: ListenError::Denied { cause }, send_back_addr, .. } => {
                tracing::debug!(from = %send_back_addr, %cause, "connection refused");
                self.shared.count_drop(Drop::RefusedConnection);
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::trace!(peer = ?peer_id, %error, "dial failed");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossip(gossipsub::Event::Message { propagation_source, message_id, message })) => {
                self.on_gossip(propagation_source, message_id, message);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossip(gossipsub::Event::Subscribed { peer_id, topic }))
                if self.explicit.contains(&peer_id) =>
            {
                self.explicit_subscribed.entry(topic).or_default().insert(peer_id);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossip(gossipsub::Event::Unsubscribed { peer_id, topic })) => {
                if let Some(peers) = self.explicit_subscribed.get_mut(&topic) {
                    peers.remove(&peer_id);
                }
            }
            _ => {}
        }
    }

    /// A gossiped message: checked against its topic's limit and the relay's quota, then
    /// handed to the node, whose verdict decides whether it is relayed.
    fn on_gossip(&mut self, source: libp2p::PeerId, id: gossipsub::MessageId, message: gossipsub::Message) {
        let gossip = &mut self.swarm.behaviour_mut().gossip;
        let Some(peer) = self.allowed.get(&source).copied() else {
            gossip.report_message_validation_result(&id, &source, gossipsub::MessageAcceptance::Ignore);
            return;
        };
        let topic = message.topic.as_str().to_string();
        if !self.shared.settings.is_gossip(&topic) {
            gossip.report_message_validation_result(&id, &source, gossipsub::MessageAcceptance::Reject);
            self.shared.penalize(peer, self.shared.settings.block_score, Drop::Malformed);
            return;
        }
        if message.data.len() > self.shared.settings.quota(&topic).max_bytes {
            gossip.report_message_validation_result(&id, &source, gossipsub::MessageAcceptance::Reject);
            self.shared.penalize(peer, self.shared.settings.block_score, Drop::Oversize);
            return;
        }
        let len = message.data.len();
        if self.shared.deliver(peer, topic.clone(), message.data, Some(GossipId(id.0.clone()))) {
            if self.judging.len() >= MAX_JUDGING {
                self.judging.clear(); // verdicts lost by a busy node; only byte counts suffer
            }
            self.judging.insert(id.0, Judging { source, topic, len });
        } else {
            self.swarm.behaviour_mut().gossip.report_message_validation_result(&id, &source, gossipsub::MessageAcceptance::Ignore);
        }
    }

    /// The peers gossipsub sends a message on `topic` to, leaving out `except` (the relay it
    /// came from): its mesh for the topic and the explicit peers subscribed to it. An estimate
    /// for byte counts: peers that sent the same message meanwhile are skipped by gossipsub.
    fn gossip_recipients(&self, topic: &gossipsub::TopicHash, except: Option<&libp2p::PeerId>) -> u64 {
        let mut peers: HashSet<&libp2p::PeerId> = self.swarm.behaviour().gossip.mesh_peers(topic).collect();
        if let Some(explicit) = self.explicit_subscribed.get(topic) {
            // Subscriptions of a peer that disconnected are not withdrawn by an event.
            peers.extend(explicit.iter().filter(|p| self.connected.contains(p)));
        }
        peers.iter().filter(|p| except != Some(**p)).count() as u64
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::AdmitValidators(validators) => {
                for v in validators.iter().filter(|v| **v != self.shared.local) {
                    let Ok(id) = identity::libp2p_peer(v) else { continue };
                    if self.allowed.insert(id, *v).is_none() {
                        tracing::info!(peer = %v, "admitted: a validator of the new epoch");
                    }
                    if !self.shared.is_blocked(v) {
                        self.swarm.behaviour_mut().allow.allow_peer(id);
                    }
                    if self.explicit.insert(id) {
                        self.swarm.behaviour_mut().gossip.add_explicit_peer(&id);
                    }
                }
            }
            Command::Block(peer) => {
                if let Ok(id) = identity::libp2p_peer(&peer) {
                    // Closes its connections and refuses new ones until the block expires.
                    self.swarm.behaviour_mut().allow.disallow_peer(id);
                    let _ = self.swarm.disconnect_peer_id(id);
                }
            }
            Command::Publish { topic, bytes } => {
                let hash = gossipsub::IdentTopic::new(&topic).hash();
                let len = bytes.len() as u64;
                match self.swarm.behaviour_mut().gossip.publish(hash.clone(), bytes) {
                    Ok(_) => self.shared.count_out(&topic, len * self.gossip_recipients(&hash, None)),
                    Err(gossipsub::PublishError::Duplicate) => {}
                    Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => self.shared.count_drop(Drop::NoGossipPeers),
                    Err(gossipsub::PublishError::AllQueuesFull(_)) => self.shared.count_drop(Drop::SendQueueFull),
                    Err(e) => tracing::debug!(%topic, error = %e, "gossip publish failed"),
                }
            }
            Command::Validated { id, source, verdict } => {
                let source = match self.judging.remove(&id.0) {
                    Some(Judging { source, topic, len }) => {
                        if verdict == Verdict::Accept {
                            let hash = gossipsub::IdentTopic::new(&topic).hash();
                            self.shared.count_out(&topic, len as u64 * self.gossip_recipients(&hash, Some(&source)));
                        }
                        source
                    }
                    // Forgotten by a busy node: the relay's id from its key.
                    None => match identity::libp2p_peer(&source) {
                        Ok(source) => source,
                        Err(_) => return,
                    },
                };
                let acceptance = match verdict {
                    Verdict::Accept => gossipsub::MessageAcceptance::Accept,
                    Verdict::Ignore => gossipsub::MessageAcceptance::Ignore,
                    Verdict::Reject => gossipsub::MessageAcceptance::Reject,
                };
                self.swarm.behaviour_mut().gossip.report_message_validation_result(&gossipsub::MessageId(id.0), &source, acceptance);
            }
        }
    }

    fn expire_blocks(&mut self, elapsed: Duration) {
        for peer in self.shared.expire(elapsed) {
            tracing::info!(%peer, "block expired");
            if let Ok(id) = identity::libp2p_peer(&peer) {
                if self.allowed.contains_key(&id) {
                    self.swarm.behaviour_mut().allow.allow_peer(id);
                }
            }
        }
    }

    /// Gives every connected peer without a writer one (after a failed stream open, too).
    fn link_connected_peers(&mut self) {
        let peers: Vec<_> = self.connected.iter().copied().collect();
        for p in peers {
            self.link(p);
        }
    }

    fn link(&mut self, peer_id: libp2p::PeerId) {
        let Some(peer) = self.allowed.get(&peer_id).copied() else { return };
        if self.shared.has_link(&peer) || self.shared.is_blocked(&peer) {
            return;
        }
        self.next_link += 1;
        let n = self.shared.settings.max_queued_messages_per_peer;
        let (high, high_rx) = mpsc::channel(n);
        let (low, low_rx) = mpsc::channel(n);
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let link = Link { id: self.next_link, high, low, queued_bytes: queued_bytes.clone() };
        self.shared.add_link(peer, link);
        let writer = Writer {
            control: self.control.clone(),
            shared: self.shared.clone(),
            protocol: self.protocol.clone(),
            peer,
            peer_id,
            id: self.next_link,
            queued_bytes,
        };
        tokio::spawn(writer.run(high_rx, low_rx));
    }

    fn redial(&mut self, now: Instant) {
        for d in &mut self.dials {
            if self.connected.contains(&d.peer) || d.next > now {
                continue;
            }
            if self.allowed.get(&d.peer).is_some_and(|p| self.shared.is_blocked(p)) {
                continue;
            }
            let opts =
                DialOpts::peer_id(d.peer).addresses(vec![d.addr.clone()]).condition(PeerCondition::DisconnectedAndNotDialing).build();
            if let Err(e) = self.swarm.dial(opts) {
                tracing::trace!(peer = %d.peer, error = %e, "dial not started");
            }
            d.next = now + d.backoff;
            d.backoff = (d.backoff * 2).min(self.max_redial);
        }
    }
}

/// Gossipsub for the gossip topics: content-addressed ids (so a transaction relayed by several
/// peers is one message), anonymous messages (the node checks the contents; authorship of a
/// relayed message means nothing), every message validated by the node before it is relayed,
/// no flood publishing, and per-topic size limits from the quotas.
fn gossip_behaviour(chain_tag: &str, settings: &Libp2pSettings) -> Result<gossipsub::Behaviour, String> {
    let mut config = gossipsub::ConfigBuilder::default();
    let largest = settings.gossip_topics.iter().map(|t| settings.quota(t).max_bytes).max().unwrap_or(0);
    config
        .protocol_id_prefix(format!("/aether/{chain_tag}/meshsub"))
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .validate_messages()
        .message_id_fn(|m: &gossipsub::Message| {
            gossipsub::MessageId::from(aether_primitives::types::Hash::digest(b"aether/gossip", &m.data).0.to_vec())
        })
        .flood_publish(false)
        .heartbeat_initial_delay(Duration::from_millis(100))
        .heartbeat_interval(Duration::from_millis(700))
        // Room for the largest message plus its protobuf framing.
        .max_transmit_size(largest + 4096);
    for topic in &settings.gossip_topics {
        config.max_transmit_size_for_topic(settings.quota(topic).max_bytes + 4096, gossipsub::IdentTopic::new(topic).hash());
    }
    let config = config.build().map_err(|e| format!("gossipsub config: {e}"))?;
    gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, config).map_err(|e| format!("gossipsub: {e}"))
}

/// One peer's outbound stream: consensus frames first, then the rest, in queue order.
struct Writer {
    control: libp2p_stream::Control,
    shared: Arc<Shared>,
    protocol: StreamProtocol,
    peer: PeerId,
    peer_id: libp2p::PeerId,
    id: u64,
    queued_bytes: Arc<AtomicUsize>,
}

impl Writer {
    /// Opens the peer's stream, retrying a few times: right after a connection is established
    /// the remote may not be accepting yet, and queued messages must not be lost to that.
    async fn open(&mut self) -> Result<libp2p::Stream, String> {
        let mut last = String::new();
        for attempt in 0..OPEN_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100 << attempt.min(4))).await;
            }
            match tokio::time::timeout(OPEN_STREAM_TIMEOUT, self.control.open_stream(self.peer_id, self.protocol.clone())).await {
                Ok(Ok(mut stream)) => {
                    // The remote may drop a stream it has no room to accept (libp2p-stream's
                    // accept queue holds one): only its acknowledgement makes the stream usable.
                    let mut ack = [0u8; 1];
                    match tokio::time::timeout(OPEN_STREAM_TIMEOUT, stream.read_exact(&mut ack)).await {
                        Ok(Ok(())) if ack[0] == wire::ACCEPTED => return Ok(stream),
                        Ok(Ok(())) => last = "the peer answered the stream with an unknown acknowledgement".into(),
                        Ok(Err(e)) => last = format!("stream not accepted: {e}"),
                        Err(_) => last = "timed out waiting for the peer to accept the stream".into(),
                    }
                }
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = "timed out opening a stream".into(),
            }
            tracing::debug!(peer = %self.peer, attempt, error = %last, "cannot open a stream yet");
            if !self.shared.has_link(&self.peer) {
                break;
            }
        }
        Err(last)
    }

    async fn run(mut self, mut high: mpsc::Receiver<Vec<u8>>, mut low: mpsc::Receiver<Vec<u8>>) {
        let result: Result<(), String> = async {
            let mut stream = self.open().await?;
            loop {
                let frame = tokio::select! {
                    biased;
                    f = high.recv() => f,
                    f = low.recv() => f,
                };
                let Some(frame) = frame else { break };
                self.queued_bytes.fetch_sub(frame.len(), std::sync::atomic::Ordering::Relaxed);
                stream.write_all(&frame).await.map_err(|e| e.to_string())?;
                if high.is_empty() && low.is_empty() {
                    stream.flush().await.map_err(|e| e.to_string())?;
                }
            }
            let _ = stream.close().await;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::debug!(peer = %self.peer, error = %e, "outbound stream ended");
        }
        self.shared.remove_link(&self.peer, Some(self.id));
    }
}

async fn accept_streams(mut incoming: libp2p_stream::IncomingStreams, shared: Arc<Shared>) {
    while let Some((peer_id, stream)) = incoming.next().await {
        // Only allowed peers connect, and allowed peers are ed25519 identities.
        let Some(peer) = identity::aether_peer(&peer_id) else { continue };
        tokio::spawn(read_stream(shared.clone(), peer, stream));
    }
}

async fn read_stream(shared: Arc<Shared>, peer: PeerId, mut stream: libp2p::Stream) {
    if stream.write_all(&[wire::ACCEPTED]).await.is_err() || stream.flush().await.is_err() {
        return;
    }
    let max = shared.settings.max_message_bytes;
    loop {
        if shared.is_blocked(&peer) {
            break;
        }
        let frame = wire::read(&mut stream, max, |topic| shared.settings.quota(topic).max_bytes).await;
        match frame {
            Ok(Some((topic, payload))) => {
                shared.deliver(peer, topic, payload, None);
            }
            Ok(None) | Err(FrameError::Io(_)) => break,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "bad frame");
                let reason = match e {
                    FrameError::Oversize { .. } | FrameError::TopicOversize { .. } => Drop::Oversize,
                    _ => Drop::Malformed,
                };
                // The stream cannot be resynchronised after a bad frame: score it in full.
                shared.penalize(peer, shared.settings.block_score, reason);
                break;
            }
        }
    }
}
