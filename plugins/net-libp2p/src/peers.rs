//! What the swarm thread and the `Network` handle share: the send queue of each peer, the
//! subscribers of each topic, the quotas, scores and blocks, and the counters.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aether_api::network::topics::CONSENSUS_TOPIC;
use aether_api::network::{GossipId, InboundMessage, NetworkError, NetworkStats, PeerId, Verdict};
use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::settings::{Libp2pSettings, Quota};
use crate::wire;

/// Why a message was dropped (the keys of [`NetworkStats::dropped`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Drop {
    InboxFull,
    RateLimited,
    Oversize,
    Malformed,
    UnknownTopic,
    SendQueueFull,
    RefusedConnection,
    Reported,
    /// A gossiped message the node judged invalid (a relay no honest peer makes).
    GossipRejected,
    /// A gossip publish with no subscribed peer to send it to yet.
    NoGossipPeers,
}

impl Drop {
    fn key(self) -> &'static str {
        match self {
            Drop::InboxFull => "inbox_full",
            Drop::RateLimited => "rate_limited",
            Drop::Oversize => "oversize",
            Drop::Malformed => "malformed",
            Drop::UnknownTopic => "unknown_topic",
            Drop::SendQueueFull => "send_queue_full",
            Drop::RefusedConnection => "refused_connection",
            Drop::Reported => "reported_invalid",
            Drop::GossipRejected => "gossip_rejected",
            Drop::NoGossipPeers => "no_gossip_peers",
        }
    }
}

/// The outbound queues of one connected peer, drained by its writer task.
pub(crate) struct Link {
    /// Which writer owns the queues (a reconnect makes a new one).
    pub(crate) id: u64,
    pub(crate) high: mpsc::Sender<Vec<u8>>,
    pub(crate) low: mpsc::Sender<Vec<u8>>,
    pub(crate) queued_bytes: Arc<AtomicUsize>,
}

/// Requests from the handle and the readers to the swarm thread.
#[derive(Debug)]
pub(crate) enum Command {
    /// Close the peer's connections and refuse it until its block expires.
    Block(PeerId),
    /// Publish on a gossip topic.
    Publish { topic: String, bytes: Vec<u8> },
    /// The node's verdict on a gossiped message `source` relayed.
    Validated { id: GossipId, source: PeerId, verdict: Verdict },
    /// An epoch's validators: allow them to connect and add them as explicit gossip peers.
    AdmitValidators(Vec<PeerId>),
}

/// A token bucket: `per_second` sustained, `burst` at once.
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Default)]
struct Counters {
    bytes_out: BTreeMap<String, u64>,
    bytes_in: BTreeMap<String, u64>,
    dropped: BTreeMap<String, u64>,
}

/// Adds `n` to `map[key]`, allocating the key only the first time it is seen.
fn add(map: &mut BTreeMap<String, u64>, key: &str, n: usize) {
    match map.get_mut(key) {
        Some(v) => *v += n as u64,
        None => {
            map.insert(key.to_string(), n as u64);
        }
    }
}

pub(crate) struct Shared {
    pub(crate) local: PeerId,
    pub(crate) settings: Libp2pSettings,
    links: Mutex<HashMap<PeerId, Link>>,
    subscribers: Mutex<HashMap<String, mpsc::Sender<InboundMessage>>>,
    /// Per peer, per topic: topics are looked up by `&str`, so a message allocates nothing here.
    buckets: Mutex<HashMap<PeerId, HashMap<String, Bucket>>>,
    scores: Mutex<HashMap<PeerId, u32>>,
    blocked: Mutex<HashMap<PeerId, Instant>>,
    counters: Mutex<Counters>,
    commands: mpsc::Sender<Command>,
}

impl Shared {
    /// Hands `command` to the swarm thread; `false` if its queue is full.
    pub(crate) fn command(&self, command: Command) -> bool {
        self.commands.try_send(command).is_ok()
    }

    pub(crate) fn new(local: PeerId, settings: Libp2pSettings, commands: mpsc::Sender<Command>) -> Shared {
        Shared {
            local,
            settings,
            links: Mutex::default(),
            subscribers: Mutex::default(),
            buckets: Mutex::default(),
            scores: Mutex::default(),
            blocked: Mutex::default(),
            counters: Mutex::default(),
            commands,
        }
    }

    // ---- outbound ----

    pub(crate) fn linked_peers(&self) -> Vec<PeerId> {
        let mut peers: Vec<_> = self.links.lock().keys().copied().collect();
        peers.sort();
        peers
    }

    pub(crate) fn has_link(&self, peer: &PeerId) -> bool {
        self.links.lock().contains_key(peer)
    }

    pub(crate) fn add_link(&self, peer: PeerId, link: Link) {
        self.links.lock().insert(peer, link);
    }

    /// Removes the peer's link if `id` still owns it (a newer writer may have replaced it).
    pub(crate) fn remove_link(&self, peer: &PeerId, id: Option<u64>) {
        let mut links = self.links.lock();
        if links.get(peer).is_some_and(|l| id.is_none_or(|id| l.id == id)) {
            links.remove(peer);
        }
    }

    fn check_outbound(&self, topic: &str, bytes: &[u8]) -> Result<(), NetworkError> {
        if topic.is_empty() || topic.len() > wire::MAX_TOPIC_BYTES {
            return Err(NetworkError::Transport(format!("topic names are 1 to {} bytes", wire::MAX_TOPIC_BYTES)));
        }
        let max = self.settings.quota(topic).max_bytes.min(self.settings.max_message_bytes);
        if bytes.len() > max {
            return Err(NetworkError::TooLarge { len: bytes.len(), max });
        }
        Ok(())
    }

    /// Queues a frame for `peer` without waiting.
    fn enqueue(&self, link: &Link, topic: &str, frame: Vec<u8>) -> Result<(), NetworkError> {
        let len = frame.len();
        if link.queued_bytes.load(Ordering::Relaxed) + len > self.settings.max_queued_bytes_per_peer {
            self.count_drop(Drop::SendQueueFull);
            return Err(NetworkError::Backpressure);
        }
        let queue = if topic == CONSENSUS_TOPIC { &link.high } else { &link.low };
        match queue.try_send(frame) {
            Ok(()) => {
                link.queued_bytes.fetch_add(len, Ordering::Relaxed);
                add(&mut self.counters.lock().bytes_out, topic, len);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.count_drop(Drop::SendQueueFull);
                Err(NetworkError::Backpressure)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(NetworkError::Transport("connection closed".into())),
        }
    }

    pub(crate) fn send(&self, to: &PeerId, topic: &str, bytes: &[u8]) -> Result<(), NetworkError> {
        self.check_outbound(topic, bytes)?;
        let links = self.links.lock();
        let link = links.get(to).ok_or(NetworkError::UnknownPeer(*to))?;
        self.enqueue(link, topic, wire::encode(topic, bytes))
    }

    pub(crate) fn broadcast(&self, topic: &str, bytes: &[u8]) -> Result<(), NetworkError> {
        self.check_outbound(topic, bytes)?;
        let frame = wire::encode(topic, bytes);
        let links = self.links.lock();
        let mut queued = 0;
        for link in links.values() {
            if self.enqueue(link, topic, frame.clone()).is_ok() {
                queued += 1;
            }
        }
        if queued == 0 && !links.is_empty() {
            return Err(NetworkError::Backpressure);
        }
        Ok(())
    }

    // ---- inbound ----

    pub(crate) fn subscribe(&self, topic: &str) -> Result<mpsc::Receiver<InboundMessage>, NetworkError> {
        let mut subscribers = self.subscribers.lock();
        if subscribers.get(topic).is_some_and(|s| !s.is_closed()) {
            return Err(NetworkError::AlreadySubscribed(topic.to_string()));
        }
        let (tx, rx) = mpsc::channel(self.settings.inbox);
        subscribers.insert(topic.to_string(), tx);
        Ok(rx)
    }

    /// Hands a message from `from` to the topic's subscriber, after the peer's quota. `false`
    /// when it was dropped (a gossiped one is then neither relayed nor judged).
    pub(crate) fn deliver(&self, from: PeerId, topic: String, bytes: Vec<u8>, gossip: Option<GossipId>) -> bool {
        if self.is_blocked(&from) {
            return false;
        }
        add(&mut self.counters.lock().bytes_in, &topic, bytes.len());
        if !self.take_token(from, &topic) {
            tracing::debug!(peer = %from, %topic, "message over the rate limit dropped");
            self.penalize(from, 1, Drop::RateLimited);
            return false;
        }
        let subscriber = self.subscribers.lock().get(&topic).cloned();
        let Some(subscriber) = subscriber else {
            self.count_drop(Drop::UnknownTopic);
            return false;
        };
        match subscriber.try_send(InboundMessage { from, topic, bytes, gossip }) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.count_drop(Drop::InboxFull);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.count_drop(Drop::UnknownTopic);
                false
            }
        }
    }

    // ---- gossip ----

    /// Hands a publish to the swarm thread (which owns gossipsub).
    pub(crate) fn publish(&self, topic: &str, bytes: Vec<u8>) -> Result<(), NetworkError> {
        self.check_outbound(topic, &bytes)?;
        self.commands.try_send(Command::Publish { topic: topic.to_string(), bytes }).map_err(|_| NetworkError::Backpressure)
    }

    /// Counts `bytes` sent on `topic` by gossipsub (publications and relays).
    pub(crate) fn count_out(&self, topic: &str, bytes: u64) {
        add(&mut self.counters.lock().bytes_out, topic, bytes as usize);
    }

    /// The node's verdict on gossip `message`: relay, drop, or drop and score its relay.
    pub(crate) fn validated(&self, message: &InboundMessage, verdict: Verdict) {
        let Some(id) = &message.gossip else { return };
        if verdict == Verdict::Reject {
            tracing::debug!(peer = %message.from, topic = %message.topic, "gossip rejected by the node");
            self.penalize(message.from, self.settings.gossip_reject_score, Drop::GossipRejected);
        }
        // If the thread is too busy to hear it, gossipsub forgets the message after a few heartbeats.
        let _ = self.commands.try_send(Command::Validated { id: id.clone(), source: message.from, verdict });
    }

    fn take_token(&self, peer: PeerId, topic: &str) -> bool {
        let Quota { per_second, burst, .. } = self.settings.quota(topic);
        let now = Instant::now();
        let mut buckets = self.buckets.lock();
        let topics = buckets.entry(peer).or_default();
        if !topics.contains_key(topic) {
            topics.insert(topic.to_string(), Bucket { tokens: f64::from(burst), at: now });
        }
        let Some(bucket) = topics.get_mut(topic) else { return false };
        let refill = now.duration_since(bucket.at).as_secs_f64() * f64::from(per_second);
        bucket.tokens = (bucket.tokens + refill).min(f64::from(burst));
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    // ---- misbehaviour ----

    /// Counts a bad message from `peer` and raises its score; at the threshold the peer is
    /// blocked for `block_secs`.
    pub(crate) fn penalize(&self, peer: PeerId, score: u32, reason: Drop) {
        self.count_drop(reason);
        let total = {
            let mut scores = self.scores.lock();
            let s = scores.entry(peer).or_default();
            *s = s.saturating_add(score);
            *s
        };
        if total >= self.settings.block_score && !self.is_blocked(&peer) {
            let dropped = self.counters.lock().dropped.clone();
            tracing::warn!(%peer, reason = reason.key(), score = total, secs = self.settings.block_secs, ?dropped, "blocking misbehaving peer");
            self.blocked.lock().insert(peer, Instant::now() + Duration::from_secs(self.settings.block_secs));
            self.remove_link(&peer, None);
            if self.commands.try_send(Command::Block(peer)).is_err() {
                tracing::warn!(%peer, "network thread busy: the peer's connection closes at its next message");
            }
        }
    }

    pub(crate) fn is_blocked(&self, peer: &PeerId) -> bool {
        self.blocked.lock().get(peer).is_some_and(|until| *until > Instant::now())
    }

    /// Ends expired blocks and returns the peers to allow again; decays scores by `elapsed`.
    pub(crate) fn expire(&self, elapsed: Duration) -> Vec<PeerId> {
        let decay = elapsed.as_secs().max(1) as u32;
        self.scores.lock().retain(|_, s| {
            *s = s.saturating_sub(decay);
            *s > 0
        });
        let now = Instant::now();
        let mut blocked = self.blocked.lock();
        let expired: Vec<_> = blocked.iter().filter(|(_, until)| **until <= now).map(|(p, _)| *p).collect();
        for p in &expired {
            blocked.remove(p);
            self.scores.lock().remove(p);
        }
        expired
    }

    pub(crate) fn count_drop(&self, reason: Drop) {
        add(&mut self.counters.lock().dropped, reason.key(), 1);
    }

    pub(crate) fn stats(&self) -> NetworkStats {
        let counters = self.counters.lock();
        let now = Instant::now();
        let mut blocked: Vec<_> = self.blocked.lock().iter().filter(|(_, u)| **u > now).map(|(p, _)| *p).collect();
        blocked.sort();
        NetworkStats {
            peers: self.links.lock().len(),
            bytes_out: counters.bytes_out.clone(),
            bytes_in: counters.bytes_in.clone(),
            dropped: counters.dropped.clone(),
            blocked,
        }
    }
}
