//! Block sync: a node that is behind (restarted, partitioned, new) fetches committed blocks
//! from its peers and commits them, beside consensus rather than instead of it.
//!
//! Protocol on [`SYNC_TOPIC`] (borsh [`SyncMessage`], direct sends): every node announces
//! `Status { base, head }` to its peers each second; a node whose best peer is more than
//! [`SYNC_LAG`] blocks ahead (or has committed the last block of this node's epoch: the other
//! validators' engines left the epoch, so its consensus cannot finish it) asks `GetBlocks { from, count }` of up to [`PARALLEL_REQUESTS`]
//! peers at once (different ranges, each peer at most one request), and peers answer
//! `Blocks { from, blocks }` from their ledger, at most [`MAX_BATCH_BLOCKS`] blocks and
//! [`MAX_BATCH_BYTES`] bytes (always at least one block).
//!
//! Trust: each answer must prove itself. Its blocks must be the heights asked for and link by
//! parent hash; then, from the last block backwards, the first whose certificate passes the
//! engine's `verify_certificate` (proof of finality) makes it and every block before it in the
//! answer final: the hash chain ties them to it. Blocks after it are dropped and asked for
//! again. An answer that breaks its own hash chain or starts off this node's chain is a lie:
//! the peer is reported to the network (which blocks it) and never asked again. Only final
//! blocks reach the driver, which executes and commits them in order and then tells the engine
//! its new committed head ([`Input::Synced`](crate::consensus::Input::Synced)).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use borsh::{BorshDeserialize, BorshSerialize};
use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};

use super::{NodeMetrics, SYNC_TOPIC};
use crate::codec;
use crate::consensus::BlockRef;
use crate::ledger::{Ledger, MAX_BLOCK_BYTES};
use crate::network::{InboundMessage, Network, PeerId};
use crate::state::chunks::{MAX_CHUNK_BYTES, MAX_CHUNK_ENTRIES};
use crate::types::{Block, Certificate, Height};

/// Blocks behind the best peer before sync starts fetching (consensus catches up on less).
pub const SYNC_LAG: u64 = 4;
/// Most blocks in one answer.
pub const MAX_BATCH_BLOCKS: u32 = 64;
/// Most bytes of blocks in one answer (a single larger block is still sent alone).
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Requests in flight at once, each to a different peer.
pub const PARALLEL_REQUESTS: usize = 4;
/// Heights fetched ahead of the committed head (bounds the memory of waiting blocks).
const WINDOW: u64 = 4 * MAX_BATCH_BLOCKS as u64;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const STATUS_EVERY: Duration = Duration::from_secs(1);
const TICK: Duration = Duration::from_millis(100);
/// Largest sync message accepted: one maximal block plus its certificate and framing.
pub(super) const MAX_SYNC_MESSAGE_BYTES: usize = MAX_BLOCK_BYTES + 1024 * 1024;
/// Epoch changes one answer carries at most.
const MAX_EPOCH_CHANGES_PER_MESSAGE: u64 = 64;
/// What serving a state sync costs, and how much of it one peer gets per second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Serving {
    /// A snapshot offer (a state sync asks once a second until it has one).
    Offer,
    /// A state chunk (a state sync has at most two asked at once).
    Chunk,
}

impl Serving {
    fn per_second(self) -> u32 {
        match self {
            Serving::Offer => 2,
            Serving::Chunk => 20,
        }
    }
}
/// Answers in a row without a block proven final after which a peer is reported.
const MAX_UNPROVEN_ANSWERS: u32 = 3;
/// How far below its head a node looks for a block to offer for state sync.
const SNAPSHOT_SEARCH: u64 = 64;

/// The sync protocol's messages.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum SyncMessage {
    /// The lowest height this node serves blocks from, and its committed head.
    Status {
        base: Height,
        head: Height,
    },
    GetBlocks {
        from: Height,
        count: u32,
    },
    /// Committed blocks `from`, `from + 1`, ... with their certificates.
    Blocks {
        from: Height,
        blocks: Vec<(Block, Certificate)>,
    },
    /// State sync: asks for the newest state the peer serves.
    GetSnapshot,
    /// The newest height whose state this node serves: its block, and a certificate that
    /// proves the block final.
    Snapshot {
        block: Box<Block>,
        certificate: Certificate,
    },
    /// State sync: asks for the state at `height` from the entry after key hash `after`.
    GetStateChunk {
        height: Height,
        after: Option<[u8; 32]>,
    },
    /// Entries of the state at `height` after key hash `after`, in key-hash order, with the
    /// range proof of the last one ([`crate::state::chunks`]).
    StateChunk {
        height: Height,
        after: Option<[u8; 32]>,
        entries: Vec<(Vec<u8>, Vec<u8>)>,
        proof: Vec<u8>,
        last: bool,
    },
    /// State sync into a later epoch: asks for the changes ending epochs `from`, `from + 1`, ...
    /// (each epoch's last header, its certificate and the next set), to prove the set that
    /// signed an offered block from genesis ([`crate::light`]).
    GetEpochChanges {
        from: u64,
    },
    /// As many of those changes, oldest first, as fit one message (none: not served here).
    EpochChanges {
        changes: Vec<crate::light::EpochChange>,
    },
}

/// Where sync stands (RPC `aether_syncStatus`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SyncStatus {
    /// More than [`SYNC_LAG`] blocks behind the best peer.
    pub syncing: bool,
    /// This node's committed head.
    pub head: Height,
    /// The highest head a peer announced.
    pub best_peer_head: Height,
    /// Peers that announced a status.
    pub peers: usize,
    /// Blocks committed through sync since start.
    pub synced_blocks: u64,
    /// Peers reported for serving blocks that do not prove themselves.
    pub bad_peers: usize,
    /// How this node started from a peer's state, if it did (in this run).
    pub state_sync: Option<super::StateSyncReport>,
}

/// Final blocks for the driver to commit, in order.
pub(super) struct SyncBatch {
    pub(super) blocks: Vec<(Block, Certificate)>,
}

struct Request {
    peer: PeerId,
    count: u32,
    deadline: Instant,
}

pub(super) struct SyncService {
    pub(super) ledger: Arc<Ledger>,
    pub(super) network: Arc<dyn Network>,
    pub(super) inbox: mpsc::Receiver<InboundMessage>,
    /// Key-less instances of the chain's engine, one per epoch, for `verify_certificate`.
    pub(super) verifier: super::epochs::EpochVerifiers,
    pub(super) to_driver: mpsc::Sender<SyncBatch>,
    pub(super) status: Arc<Mutex<SyncStatus>>,
    pub(super) metrics: Arc<NodeMetrics>,
}

struct State {
    peer_heads: HashMap<PeerId, Height>,
    /// The lowest height each peer serves blocks from (below it, it pruned them).
    peer_bases: HashMap<PeerId, Height>,
    in_flight: BTreeMap<Height, Request>,
    /// Final blocks waiting to be handed to the driver, by height.
    ready: BTreeMap<Height, (Block, Certificate)>,
    /// Everything below this height has been handed to the driver.
    handed_up_to: Height,
    handed_at: Instant,
    bad: HashSet<PeerId>,
    /// Answers in a row, per peer, in which no block was proven final.
    unproven: HashMap<PeerId, u32>,
    /// State served per peer and kind in the current second, and when that second began.
    served: HashMap<(PeerId, Serving), (Instant, u32)>,
    next_peer: usize,
}

impl State {
    fn new() -> State {
        State {
            peer_heads: HashMap::new(),
            peer_bases: HashMap::new(),
            in_flight: BTreeMap::new(),
            ready: BTreeMap::new(),
            handed_up_to: 0,
            handed_at: Instant::now(),
            bad: HashSet::new(),
            unproven: HashMap::new(),
            served: HashMap::new(),
            next_peer: 0,
        }
    }

    /// Whether `peer` may be served one more `kind` this second (and counts it).
    fn within_budget(&mut self, peer: PeerId, kind: Serving) -> bool {
        let (since, served) = self.served.entry((peer, kind)).or_insert((Instant::now(), 0));
        if since.elapsed() >= Duration::from_secs(1) {
            (*since, *served) = (Instant::now(), 0);
        }
        if *served >= kind.per_second() {
            return false;
        }
        *served += 1;
        true
    }
}

impl SyncService {
    pub(super) fn spawn(self, stop: watch::Receiver<bool>) -> std::io::Result<std::thread::JoinHandle<()>> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
        std::thread::Builder::new().name("aether-sync".into()).spawn(move || rt.block_on(self.run(stop)))
    }

    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut state = State::new();
        let mut tick = tokio::time::interval(TICK);
        let mut last_status = Instant::now() - STATUS_EVERY;
        let mut announced_epoch = self.ledger.epoch_of(self.ledger.head().block.height + 1);
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                m = self.inbox.recv() => match m {
                    Some(m) => self.on_message(&mut state, m),
                    None => return,
                },
                _ = tick.tick() => {
                    // A new epoch is news at once: the validators still in the old one need its
                    // last block, which only this node may have decided.
                    let epoch = self.ledger.epoch_of(self.ledger.head().block.height + 1);
                    if last_status.elapsed() >= STATUS_EVERY || epoch != announced_epoch {
                        self.announce();
                        last_status = Instant::now();
                        announced_epoch = epoch;
                    }
                    self.expire(&mut state);
                    self.request(&mut state);
                    self.publish(&state);
                }
            }
            if !self.hand_over(&mut state) {
                return;
            }
        }
    }

    fn announce(&self) {
        let head = self.ledger.head().block.height;
        let base = self.ledger.oldest_block().unwrap_or(0);
        let _ = self.network.broadcast(SYNC_TOPIC, codec::encode(&SyncMessage::Status { base, head }));
    }

    fn on_message(&self, state: &mut State, m: InboundMessage) {
        if state.bad.contains(&m.from) {
            return;
        }
        let message = match codec::decode::<SyncMessage>("sync message", &m.bytes, MAX_SYNC_MESSAGE_BYTES) {
            Ok(message) => message,
            Err(e) => {
                self.report(state, m.from, &format!("undecodable sync message: {e}"));
                return;
            }
        };
        match message {
            SyncMessage::Status { base, head } => {
                state.peer_heads.insert(m.from, head);
                state.peer_bases.insert(m.from, base);
            }
            SyncMessage::GetBlocks { from, count } => self.serve(m.from, from, count),
            SyncMessage::Blocks { from, blocks } => self.on_blocks(state, m.from, from, blocks),
            // Serving state costs this thread certificate checks (an offer) or a tree walk (a
            // chunk): a peer gets a few of each per second.
            SyncMessage::GetSnapshot => {
                if state.within_budget(m.from, Serving::Offer) {
                    self.serve_snapshot(m.from);
                }
            }
            SyncMessage::GetStateChunk { height, after } => {
                if state.within_budget(m.from, Serving::Chunk) {
                    self.serve_chunk(m.from, height, after);
                }
            }
            SyncMessage::GetEpochChanges { from } => {
                if state.within_budget(m.from, Serving::Offer) {
                    self.serve_epoch_changes(m.from, from);
                }
            }
            // Answers to a state sync; this node is past it.
            SyncMessage::Snapshot { .. } | SyncMessage::StateChunk { .. } | SyncMessage::EpochChanges { .. } => {}
        }
    }

    /// Offers the newest committed block whose certificate proves it final (HotStuff's
    /// directly committed blocks; an ancestor-committed head is skipped) and whose state is
    /// retained.
    fn serve_snapshot(&self, peer: PeerId) {
        let head = self.ledger.head().block.height;
        let oldest = self.ledger.store().snapshot().ok().and_then(|s| crate::state::oldest_version(s.as_ref()).ok()).unwrap_or(head);
        for height in (head.saturating_sub(SNAPSHOT_SEARCH).max(oldest).max(1)..=head).rev() {
            let Ok(Some((block, certificate))) = self.ledger.block_by_height(height) else { continue };
            if self.verifier.verify(&BlockRef { hash: block.hash(), height }, &certificate).is_ok() {
                let _ = self.network.send(&peer, SYNC_TOPIC, codec::encode(&SyncMessage::Snapshot { block: Box::new(block), certificate }));
                return;
            }
        }
    }

    /// Answers with the epoch changes from epoch `from`, as many as fit half a sync message
    /// (a change holds a whole set), up to the last epoch that ended here.
    fn serve_epoch_changes(&self, peer: PeerId, from: u64) {
        let ended = self.ledger.epoch_of(self.ledger.head().block.height + 1);
        let mut changes = vec![];
        let mut bytes = 0;
        for epoch in from..ended.min(from.saturating_add(MAX_EPOCH_CHANGES_PER_MESSAGE)) {
            let Ok(Some(mut one)) = self.ledger.epoch_changes(epoch, epoch + 1) else { break };
            bytes += codec::encode(&one).len();
            if bytes > MAX_SYNC_MESSAGE_BYTES / 2 && !changes.is_empty() {
                break;
            }
            changes.append(&mut one);
        }
        let _ = self.network.send(&peer, SYNC_TOPIC, codec::encode(&SyncMessage::EpochChanges { changes }));
    }

    /// Answers with one chunk of the state at `height`, if that height is retained here.
    fn serve_chunk(&self, peer: PeerId, height: Height, after: Option<[u8; 32]>) {
        let head = self.ledger.head().block.height;
        let chunk = self.ledger.store().snapshot().map_err(crate::state::StateError::from).and_then(|store| {
            crate::state::check_retained(store.as_ref(), height, head)?;
            crate::state::chunks::read_chunk(store.as_ref(), height, after, MAX_CHUNK_ENTRIES, MAX_CHUNK_BYTES)
        });
        match chunk {
            Ok(c) => {
                let message = SyncMessage::StateChunk { height, after, entries: c.entries, proof: c.proof, last: c.last };
                let _ = self.network.send(&peer, SYNC_TOPIC, codec::encode(&message));
            }
            Err(e) => tracing::debug!(%peer, height, error = %e, "cannot serve a state chunk"),
        }
    }

    /// Answers a peer's request from the committed chain.
    fn serve(&self, peer: PeerId, from: Height, count: u32) {
        let head = self.ledger.head().block.height;
        let mut blocks = Vec::new();
        let mut bytes = 0;
        let end = from.saturating_add(u64::from(count.clamp(1, MAX_BATCH_BLOCKS)));
        for height in from.max(1)..end.min(head + 1) {
            let Ok(Some((block, certificate))) = self.ledger.block_by_height(height) else { break };
            let size = borsh::object_length(&block).unwrap_or(MAX_BATCH_BYTES) + certificate.0.len();
            if !blocks.is_empty() && bytes + size > MAX_BATCH_BYTES {
                break;
            }
            bytes += size;
            blocks.push((block, certificate));
        }
        let _ = self.network.send(&peer, SYNC_TOPIC, codec::encode(&SyncMessage::Blocks { from, blocks }));
    }

    fn on_blocks(&self, state: &mut State, peer: PeerId, from: Height, blocks: Vec<(Block, Certificate)>) {
        let Some(request) = state.in_flight.get(&from) else { return };
        if request.peer != peer {
            return; // not asked of this peer: ignored, not trusted
        }
        let count = request.count;
        state.in_flight.remove(&from);
        if blocks.len() > count as usize {
            self.report(state, peer, "answered with more blocks than asked for");
            return;
        }
        for (i, (block, _)) in blocks.iter().enumerate() {
            if block.header.height != from + i as u64 {
                self.report(state, peer, "answered with blocks at heights not asked for");
                return;
            }
            if i > 0 && block.header.parent != blocks[i - 1].0.hash() {
                self.report(state, peer, "answered with blocks that do not link by parent hash");
                return;
            }
        }
        let head = self.ledger.head().block;
        if from == head.height + 1 && blocks.first().is_some_and(|(b, _)| b.header.parent != head.hash) {
            self.report(state, peer, "answered with a block that does not extend the committed chain");
            return;
        }
        // The last block whose certificate proves finality makes it and its ancestors final.
        let last_final = blocks.iter().rposition(|(block, certificate)| {
            self.verifier.verify(&BlockRef { hash: block.hash(), height: block.header.height }, certificate).is_ok()
        });
        let Some(last_final) = last_final else {
            // An honest peer's committed chain proves itself within a few blocks (its head is
            // always directly committed): full answers, again and again, with no proof are a
            // peer lying about certificates or stalling sync. Short answers (a byte limit, a
            // pruned or short chain) are not held against it.
            if blocks.len() < count as usize {
                tracing::debug!(%peer, from, count = blocks.len(), "a short answer proves no block; asking again");
                return;
            }
            let strikes = state.unproven.entry(peer).or_default();
            *strikes += 1;
            if *strikes >= MAX_UNPROVEN_ANSWERS {
                self.report(state, peer, "answered again and again with blocks none of which is proven final");
            } else {
                tracing::debug!(%peer, from, count = blocks.len(), "no block in the answer is proven final; asking again");
            }
            return;
        };
        state.unproven.remove(&peer);
        for (block, certificate) in blocks.into_iter().take(last_final + 1) {
            if block.header.height > head.height {
                state.ready.insert(block.header.height, (block, certificate));
            }
        }
    }

    fn report(&self, state: &mut State, peer: PeerId, reason: &str) {
        tracing::warn!(%peer, reason, "sync: peer served invalid data; blocking it");
        state.bad.insert(peer);
        state.peer_heads.remove(&peer);
        state.in_flight.retain(|_, r| r.peer != peer);
        self.network.report(&peer, reason);
    }

    fn expire(&self, state: &mut State) {
        let now = Instant::now();
        let head = self.ledger.head().block.height;
        state.in_flight.retain(|from, r| {
            if r.deadline <= now {
                tracing::debug!(peer = %r.peer, from, "sync request timed out");
            }
            r.deadline > now && from + u64::from(r.count) > head + 1
        });
        state.ready = state.ready.split_off(&(head + 1));
        // Blocks handed over but not committed (the driver refused one): fetch them again.
        if state.handed_up_to > head + 1 && state.handed_at.elapsed() > REQUEST_TIMEOUT {
            state.handed_up_to = 0;
        }
    }

    /// The highest head at least two peers announced (the only one's, with one peer): a
    /// single peer claiming a far head cannot keep this node "syncing" (and `/ready` at 503).
    fn best_peer_head(&self, state: &State) -> Height {
        let mut heads: Vec<Height> = state.peer_heads.values().copied().collect();
        heads.sort_unstable_by(|a, b| b.cmp(a));
        heads.get(1).or(heads.first()).copied().unwrap_or(0)
    }

    /// Asks peers for the next ranges above what is committed, waiting or in flight.
    fn request(&self, state: &mut State) {
        let head = self.ledger.head().block.height;
        let best = self.best_peer_head(state);
        // Peers that committed this node's epoch's last block have left its engine: the old
        // epoch's consensus cannot bring this node there any more, only sync can, at any lag.
        // One peer is enough here (a false claim costs one request, whose answer must prove
        // itself): the first validator to decide the boundary block is the only one that can
        // hand it over until others sync it.
        let epoch_end = self.ledger.epoch_timeline().map(|s| s.last_height(s.epoch_of(head + 1)));
        let highest = state.peer_heads.values().copied().max().unwrap_or(0);
        let past_the_epoch = epoch_end.is_some_and(|last| highest >= last);
        if !past_the_epoch && best <= head + SYNC_LAG && state.ready.is_empty() && state.in_flight.is_empty() {
            return;
        }
        let target = if past_the_epoch { best.max(highest) } else { best };
        let connected: HashSet<PeerId> = self.network.peers().into_iter().collect();
        while state.in_flight.len() < PARALLEL_REQUESTS {
            let next = [
                head + 1,
                state.handed_up_to,
                state.ready.keys().next_back().map_or(0, |h| h + 1),
                state.in_flight.iter().next_back().map_or(0, |(from, r)| from + u64::from(r.count)),
            ]
            .into_iter()
            .max()
            .unwrap_or(head + 1);
            if next > target || next > head + WINDOW {
                return;
            }
            let busy: HashSet<PeerId> = state.in_flight.values().map(|r| r.peer).collect();
            let mut candidates: Vec<PeerId> = state
                .peer_heads
                .iter()
                .filter(|(p, h)| {
                    **h >= next
                        && state.peer_bases.get(p).is_none_or(|base| *base <= next)
                        && !busy.contains(p)
                        && connected.contains(p)
                        && !state.bad.contains(p)
                })
                .map(|(p, _)| *p)
                .collect();
            if candidates.is_empty() {
                return;
            }
            candidates.sort();
            let peer = candidates[state.next_peer % candidates.len()];
            state.next_peer = state.next_peer.wrapping_add(1);
            let count = MAX_BATCH_BLOCKS.min(u32::try_from(target - next + 1).unwrap_or(MAX_BATCH_BLOCKS));
            if self.network.send(&peer, SYNC_TOPIC, codec::encode(&SyncMessage::GetBlocks { from: next, count })).is_err() {
                return;
            }
            state.in_flight.insert(next, Request { peer, count, deadline: Instant::now() + REQUEST_TIMEOUT });
        }
    }

    /// Hands the final blocks that extend the committed head to the driver, when its queue
    /// has room (never waits: this loop also serves peers). `false` when the driver stopped.
    fn hand_over(&self, state: &mut State) -> bool {
        if self.to_driver.is_closed() {
            return false;
        }
        if self.to_driver.capacity() == 0 {
            return true;
        }
        let head = self.ledger.head().block.height;
        let start = (head + 1).max(state.handed_up_to);
        let mut blocks = Vec::new();
        let mut next = start;
        while let Some(entry) = state.ready.remove(&next) {
            blocks.push(entry);
            next += 1;
        }
        if blocks.is_empty() {
            return true;
        }
        state.handed_up_to = next;
        state.handed_at = Instant::now();
        self.status.lock().synced_blocks += blocks.len() as u64;
        self.to_driver.try_send(SyncBatch { blocks }).is_ok()
    }

    fn publish(&self, state: &State) {
        let head = self.ledger.head().block.height;
        let best = self.best_peer_head(state);
        let mut status = self.status.lock();
        status.head = head;
        status.best_peer_head = best;
        status.syncing = best > head + SYNC_LAG;
        status.peers = state.peer_heads.len();
        status.bad_peers = state.bad.len();
        self.metrics.sync(best, status.syncing, self.network.peers().len());
        // Ready once a peer has told us its head and we are within the lag of the best one.
        self.metrics.set_ready(!status.syncing && status.peers > 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::memory::MemoryHub;
    use crate::node::testing::Recording;
    use crate::solo::{SoloEngine, SoloSettings};
    use crate::types::{Genesis, GenesisAccount, GenesisValidator, Keypair};
    use aether_storage_memory::MemoryStore;

    /// A solo chain of `blocks` committed blocks, a fresh ledger of the same chain, and the
    /// sealing engine (also the certificate verifier).
    fn chains(blocks: u64) -> (Arc<Ledger>, Arc<Ledger>, SoloEngine) {
        let validator = Keypair::from_seed([1; 32]);
        let genesis = Genesis {
            chain_id: "sync-test".into(),
            genesis_time_ms: 0,
            modules: vec![],
            epochs: None,
            accounts: vec![GenesisAccount { address: validator.address(), balance: 1_000 }],
            validators: vec![GenesisValidator {
                name: "v0".into(),
                identity: validator.public(),
                consensus_key: validator.public().0.to_vec(),
                stake: 1,
            }],
        };
        let engine = SoloEngine::new(validator.clone(), SoloSettings::default());
        let honest = Arc::new(Ledger::open(Arc::new(MemoryStore::new()), &genesis).unwrap());
        for i in 1..=blocks {
            let head = honest.head();
            let built = honest.build_block(&head.block.hash, head.certificate, vec![], vec![], i * 1_000, validator.address()).unwrap();
            let block_ref = built.executed.block_ref();
            honest.commit(&block_ref.hash, &engine.certify(&block_ref)).unwrap();
        }
        let fresh = Arc::new(Ledger::open(Arc::new(MemoryStore::new()), &genesis).unwrap());
        (honest, fresh, engine)
    }

    fn service(ledger: Arc<Ledger>, verifier: SoloEngine, network: Arc<dyn Network>) -> (SyncService, mpsc::Receiver<SyncBatch>) {
        let (to_driver, from_sync) = mpsc::channel(2);
        let inbox = network.subscribe(SYNC_TOPIC).unwrap();
        let service = SyncService {
            ledger,
            network,
            inbox,
            verifier: super::super::epochs::EpochVerifiers::single(Box::new(verifier)),
            to_driver,
            status: Arc::default(),
            metrics: Arc::default(),
        };
        (service, from_sync)
    }

    /// The node hears `peer` announce `head`, asks it for blocks, and gets `blocks` back.
    fn answer(service: &SyncService, state: &mut State, peer: PeerId, head: Height, blocks: Vec<(Block, Certificate)>) {
        let msg = |m: SyncMessage| InboundMessage::direct(peer, SYNC_TOPIC, codec::encode(&m));
        service.on_message(state, msg(SyncMessage::Status { base: 1, head }));
        service.request(state);
        assert!(state.in_flight.contains_key(&1), "the node asks the peer for blocks from height 1");
        service.on_message(state, msg(SyncMessage::Blocks { from: 1, blocks }));
    }

    /// A solo chain of `blocks` blocks, and a fresh node syncing it over `network` (the hub,
    /// joined as `me`) from a peer joined as `peer`.
    struct Fixture {
        honest: Arc<Ledger>,
        fresh: Arc<Ledger>,
        service: SyncService,
        from_sync: mpsc::Receiver<SyncBatch>,
        peer: PeerId,
        _peer_net: Arc<dyn Network>,
    }

    fn fixture(blocks: u64, wrap: impl FnOnce(Arc<dyn Network>) -> Arc<dyn Network>) -> Fixture {
        let (honest, fresh, engine) = chains(blocks);
        let hub = MemoryHub::new();
        let (me, peer) = (Keypair::from_seed([8; 32]).public(), Keypair::from_seed([9; 32]).public());
        let peer_net: Arc<dyn Network> = hub.join(peer);
        let (service, from_sync) = service(fresh.clone(), engine, wrap(hub.join(me)));
        Fixture { honest, fresh, service, from_sync, peer, _peer_net: peer_net }
    }

    fn served(ledger: &Ledger, heights: std::ops::RangeInclusive<u64>) -> Vec<(Block, Certificate)> {
        heights.map(|h| ledger.block_by_height(h).unwrap().unwrap()).collect()
    }

    #[test]
    fn an_honest_answer_is_handed_to_the_driver_in_order() {
        let mut f = fixture(10, |n| n);
        let mut state = State::new();
        answer(&f.service, &mut state, f.peer, 10, served(&f.honest, 1..=10));
        assert!(f.service.hand_over(&mut state));
        let batch = f.from_sync.try_recv().expect("final blocks reach the driver");
        let heights: Vec<u64> = batch.blocks.iter().map(|(b, _)| b.header.height).collect();
        assert_eq!(heights, (1..=10).collect::<Vec<_>>());
        assert!(state.bad.is_empty());
    }

    #[test]
    fn a_peer_serving_a_forged_block_is_reported_and_nothing_is_committed() {
        let reported = Arc::new(Mutex::new(Vec::new()));
        let record = reported.clone();
        let mut f = fixture(10, move |inner| Arc::new(Recording { inner, reported: record }));
        let liar = f.peer;
        let mut state = State::new();
        // Block 3's contents changed (its timestamp), its certificate and the rest genuine.
        let mut blocks = served(&f.honest, 1..=10);
        blocks[2].0.header.time_ms += 1;
        answer(&f.service, &mut state, liar, 10, blocks);
        assert_eq!(*reported.lock(), vec![liar], "the liar is reported to the network");
        assert!(state.bad.contains(&liar) && state.ready.is_empty());
        assert!(f.service.hand_over(&mut state));
        assert!(f.from_sync.try_recv().is_err(), "no block of the lie reaches the driver");
        assert_eq!(f.fresh.head().block.height, 0);
    }

    #[test]
    fn blocks_without_proof_of_finality_are_not_committed() {
        let mut f = fixture(5, |n| n);
        let mut state = State::new();
        // The real blocks, each with a certificate that proves nothing.
        let unproven = || served(&f.honest, 1..=5).into_iter().map(|(b, _)| (b, Certificate(vec![0; 64]))).collect::<Vec<_>>();
        answer(&f.service, &mut state, f.peer, 5, unproven());
        assert!(state.ready.is_empty(), "unproven blocks wait for proof");
        assert!(f.service.hand_over(&mut state));
        assert!(f.from_sync.try_recv().is_err(), "unproven blocks never reach the driver");
        // A forged certificate on the last block alone also proves nothing.
        let mut blocks = served(&f.honest, 1..=5);
        blocks[4].1 .0[0] ^= 1;
        answer(&f.service, &mut state, f.peer, 5, blocks);
        let ready: Vec<u64> = state.ready.keys().copied().collect();
        assert_eq!(ready, vec![1, 2, 3, 4], "only blocks up to the last verified certificate are kept");
        assert!(state.unproven.is_empty(), "a proven answer clears the peer's strikes");
    }

    #[test]
    fn a_peer_that_never_proves_its_blocks_is_reported() {
        let reported = Arc::new(Mutex::new(Vec::new()));
        let record = reported.clone();
        let mut f = fixture(5, move |inner| Arc::new(Recording { inner, reported: record }));
        let mut state = State::new();
        let unproven = || served(&f.honest, 1..=5).into_iter().map(|(b, _)| (b, Certificate(vec![0; 64]))).collect::<Vec<_>>();
        for _ in 0..MAX_UNPROVEN_ANSWERS {
            let mut short = unproven();
            short.truncate(2);
            answer(&f.service, &mut state, f.peer, 5, short);
        }
        assert!(state.unproven.is_empty(), "short answers (a byte limit, a pruned chain) are not held against a peer");
        for _ in 1..MAX_UNPROVEN_ANSWERS {
            answer(&f.service, &mut state, f.peer, 5, unproven());
        }
        assert!(reported.lock().is_empty(), "a few unproven answers are tolerated (a range may end before a proof)");
        answer(&f.service, &mut state, f.peer, 5, unproven());
        assert_eq!(*reported.lock(), vec![f.peer], "answer after answer without proof gets the peer reported");
        assert!(state.bad.contains(&f.peer));
        assert!(f.service.hand_over(&mut state));
        assert!(f.from_sync.try_recv().is_err(), "nothing it served reaches the driver");
    }

    #[test]
    fn one_peer_cannot_claim_the_best_head_alone() {
        let f = fixture(0, |n| n);
        let service = f.service;
        let mut state = State::new();
        let peer = |i: u8| Keypair::from_seed([i; 32]).public();
        state.peer_heads.insert(peer(1), 1_000_000);
        assert_eq!(service.best_peer_head(&state), 1_000_000, "with one peer, its head");
        state.peer_heads.insert(peer(2), 10);
        state.peer_heads.insert(peer(3), 12);
        assert_eq!(service.best_peer_head(&state), 12, "a lone far claim is outvoted");
    }

    #[test]
    fn a_peer_is_served_a_bounded_amount_of_state_per_second() {
        let mut state = State::new();
        let (a, b) = (Keypair::from_seed([1; 32]).public(), Keypair::from_seed([2; 32]).public());
        let chunks = (0..100).filter(|_| state.within_budget(a, Serving::Chunk)).count();
        let offers = (0..100).filter(|_| state.within_budget(a, Serving::Offer)).count();
        assert_eq!((chunks, offers), (20, 2), "per kind, per second");
        assert!(state.within_budget(b, Serving::Chunk), "another peer has its own budget");
    }

    #[test]
    fn sync_messages_have_a_stable_encoding() {
        let m = SyncMessage::GetBlocks { from: 7, count: 64 };
        assert_eq!(hex::encode(codec::encode(&m)), "01070000000000000040000000");
        assert_eq!(codec::decode::<SyncMessage>("sync", &codec::encode(&m), 1024).unwrap(), m);
    }
}
