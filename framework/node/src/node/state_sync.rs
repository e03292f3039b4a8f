//! State sync: an empty node starts from a peer's state at a height proven final, instead of
//! replaying the chain from genesis; block sync then takes it to the head.
//!
//! Protocol on [`SYNC_TOPIC`] (the [`SyncMessage`] block sync uses): the node asks its peers
//! `GetSnapshot`; each answers `Snapshot { block, certificate }`, its newest block whose
//! certificate proves finality. The node keeps the highest offer whose certificate passes the
//! engine's `verify_certificate` (a peer offering a block of another chain or an unproven one
//! is reported), records it as its target, then fetches the state at that height chunk by chunk
//! (`GetStateChunk` → `StateChunk`, from any peer that retains the height, round robin; the
//! next chunk is asked for as soon as one arrives, so peers read while this node writes),
//! checking every chunk's range proof against the target header's state root before writing it
//! ([`crate::state::chunks`]). When the last chunk is in, the rebuilt root must equal the
//! header's; then the block becomes the head in one synced batch, exactly as after a snapshot
//! import.
//!
//! Failure handling: a peer whose chunk does not prove, or that ends the state early, is
//! reported (the network blocks it) and the restore starts again from the first chunk at the
//! same height with the other peers (what was written is genuine state of that height, so
//! writing it again is harmless). A crash leaves the target recorded; the next start with state
//! sync on resumes at that height, and [`crate::ledger::Ledger::open`] refuses the half-written
//! store otherwise. Every wait is bounded by `[sync] state_sync_timeout_secs`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::sync::{SyncMessage, MAX_SYNC_MESSAGE_BYTES};
use super::SYNC_TOPIC;
use crate::codec;
use crate::consensus::{BlockRef, ConsensusEngine, EngineContext, EpochRange, ValidatorSet};
use crate::ledger;
use crate::network::{InboundMessage, Network, PeerId};
use crate::state::chunks::{ChunkError, ChunkedRestore};
use crate::storage::{Durability, KvStore, WriteBatch};
use crate::types::{Block, Certificate, Genesis, Hash, Height, ValidatorEntry};

/// How long one chunk request may take before another peer is asked.
const CHUNK_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the node asks for offers while it has none.
const OFFER_EVERY: Duration = Duration::from_secs(1);
/// How long the node keeps listening for better offers after the first valid one.
const OFFER_GRACE: Duration = Duration::from_secs(2);
/// Restores started over (after a lying peer) before the node gives up.
const MAX_RESTARTS: u32 = 8;

/// What a finished state sync did (RPC `aether_syncStatus`, field `state_sync`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StateSyncReport {
    /// The height the node started from.
    pub height: Height,
    pub block_hash: Hash,
    /// State entries received and written.
    pub entries: u64,
    /// Bytes of state chunks received.
    pub bytes: u64,
    pub chunks: u64,
    /// Restores started over because a peer served state that did not prove.
    pub restarts: u32,
    pub millis: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StateSyncError {
    #[error("state sync needs a network ([network] in config) and an engine that verifies certificates without a key")]
    Unavailable,
    #[error("state sync found no peer offering a state proven final within {secs} s (peers connected: {peers})")]
    NoOffer { secs: u64, peers: usize },
    #[error("state sync did not finish within {secs} s: {reason}")]
    TimedOut { secs: u64, reason: String },
    #[error("state sync gave up after {restarts} restores were refused; last reason: {reason}")]
    TooManyRestarts { restarts: u32, reason: String },
    #[error("the network stopped during state sync")]
    NetworkClosed,
    #[error("the state sync thread panicked")]
    Panicked,
    #[error("cannot read back the restored state: {0}")]
    Store(String),
    #[error(transparent)]
    Ledger(#[from] ledger::LedgerError),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
}

/// A key-less engine of the chain's consensus for a context: the chain's factory with its
/// settings.
pub(super) type MakeVerifier<'a> = &'a (dyn Fn(&EngineContext) -> Result<Box<dyn ConsensusEngine>, String> + Sync);

/// One state sync into an empty store.
pub(super) struct StateSync<'a> {
    pub(super) network: &'a dyn Network,
    pub(super) inbox: &'a mut mpsc::Receiver<InboundMessage>,
    /// A key-less instance of the chain's engine.
    pub(super) verifier: &'a dyn ConsensusEngine,
    pub(super) store: &'a dyn KvStore,
    pub(super) chain_id: &'a str,
    pub(super) genesis_hash: Hash,
    pub(super) timeout: Duration,
    /// On a chain with epochs: genesis (its set and schedule) and the engine factory, to prove
    /// the set that signed an offered block of a later epoch from genesis.
    pub(super) epochs: Option<(&'a Genesis, MakeVerifier<'a>)>,
}

impl StateSync<'_> {
    /// Runs the whole sync; on success the store holds a chain whose head is the target block.
    pub(super) async fn run(mut self) -> Result<StateSyncReport, StateSyncError> {
        let started = Instant::now();
        let deadline = started + self.timeout;
        let mut bad = HashSet::new();
        let recorded = ledger::state_sync_target(self.store)?;
        let resumed = recorded.is_some();
        let (block, certificate) = match recorded {
            Some(target) => {
                tracing::info!(height = target.0.header.height, "resuming an unfinished state sync");
                target
            }
            None => {
                let target = self.find_target(deadline, &mut bad).await?;
                ledger::begin_state_sync(self.store, &target.0, &target.1)?;
                target
            }
        };
        let height = block.header.height;
        tracing::info!(height, block = %block.hash(), "state sync: fetching the state at a final height");
        let mut report = StateSyncReport { height, block_hash: block.hash(), ..StateSyncReport::default() };
        let mut last_refusal = String::new();
        loop {
            match self.restore(&block, deadline, &mut bad, &mut report).await {
                Ok(()) => break,
                Err(Restore::Refused(reason)) => {
                    report.restarts += 1;
                    last_refusal = reason;
                    if report.restarts >= MAX_RESTARTS {
                        return Err(StateSyncError::TooManyRestarts { restarts: report.restarts, reason: last_refusal });
                    }
                    tracing::warn!(restarts = report.restarts, reason = %last_refusal, "state sync: starting the restore again");
                }
                Err(Restore::Fatal(e)) => return Err(e),
                Err(Restore::OutOfTime) => {
                    let reason = match (last_refusal.is_empty(), resumed) {
                        (false, _) => last_refusal,
                        (true, true) => format!(
                            "no peer served the state at height {height}, where the interrupted sync started; if peers have pruned it, delete the data directory's db folder and start again"
                        ),
                        (true, false) => "no peer answered in time".to_string(),
                    };
                    return Err(StateSyncError::TimedOut { secs: self.timeout.as_secs(), reason });
                }
            }
        }
        let mut batch = WriteBatch::default();
        ledger::finish_state_sync(&mut batch, self.genesis_hash, &block, &certificate);
        self.store.write(batch, Durability::Synced)?;
        report.millis = started.elapsed().as_millis() as u64;
        tracing::info!(height, entries = report.entries, bytes = report.bytes, millis = report.millis, "state sync done");
        Ok(report)
    }

    fn report_peer(&self, bad: &mut HashSet<PeerId>, peer: PeerId, reason: &str) {
        tracing::warn!(%peer, reason, "state sync: peer served invalid data; blocking it");
        bad.insert(peer);
        self.network.report(&peer, reason);
    }

    /// Next message from the network, or `None` at `until`.
    async fn next(&mut self, until: Instant) -> Result<Option<(PeerId, SyncMessage)>, StateSyncError> {
        loop {
            let m = match tokio::time::timeout_at(until.into(), self.inbox.recv()).await {
                Err(_) => return Ok(None),
                Ok(None) => return Err(StateSyncError::NetworkClosed),
                Ok(Some(m)) => m,
            };
            // Undecodable messages are block sync's to punish once it runs; here they are noise.
            if let Ok(message) = codec::decode::<SyncMessage>("sync message", &m.bytes, MAX_SYNC_MESSAGE_BYTES) {
                return Ok(Some((m.from, message)));
            }
        }
    }

    /// Asks peers for offers until one proves itself, listens a little longer for higher
    /// ones, and returns the highest.
    async fn find_target(&mut self, deadline: Instant, bad: &mut HashSet<PeerId>) -> Result<(Block, Certificate), StateSyncError> {
        let mut best: Option<(Block, Certificate)> = None;
        let mut answered = HashSet::new();
        // Each epoch's set proven so far (epoch 0: genesis's), and offers of later epochs
        // waiting for the changes asked of the peer that made them.
        let mut sets: Vec<Vec<ValidatorEntry>> = self.epochs.iter().map(|(g, _)| g.validators.clone()).collect();
        // The epoch schedule proven so far: genesis's, and the length changes the proven epoch
        // changes carry (an offer's epoch is read from it).
        let mut timeline = self.epochs.and_then(|(g, _)| g.epochs.as_ref()).map(crate::types::EpochTimeline::new);
        let mut waiting: std::collections::HashMap<PeerId, (Block, Certificate)> = std::collections::HashMap::new();
        let mut stop_at = deadline;
        let mut ask_at = Instant::now();
        loop {
            let now = Instant::now();
            if now >= stop_at {
                break;
            }
            if now >= ask_at && best.is_none() {
                let _ = self.network.broadcast(SYNC_TOPIC, codec::encode(&SyncMessage::GetSnapshot));
                ask_at = now + OFFER_EVERY;
            }
            // Asking again only until there is an offer; then just listening until `stop_at`.
            let until = if best.is_none() { ask_at.min(stop_at) } else { stop_at };
            let Some((peer, message)) = self.next(until).await? else { continue };
            if bad.contains(&peer) {
                continue;
            }
            let (block, certificate) = match message {
                SyncMessage::Snapshot { block, certificate } => (*block, certificate),
                SyncMessage::EpochChanges { changes } => {
                    let Some(offer) = waiting.remove(&peer) else { continue };
                    let known = sets.len();
                    if let Err(e) = self.learn_sets(&mut sets, timeline.as_mut(), &changes) {
                        self.report_peer(bad, peer, &format!("served epoch changes that do not prove: {e}"));
                        continue;
                    }
                    if sets.len() == known {
                        // Nothing new (it no longer holds those blocks): its offer cannot be checked.
                        continue;
                    }
                    offer
                }
                _ => continue,
            };
            answered.insert(peer);
            let block_ref = BlockRef { hash: block.hash(), height: block.header.height };
            if block.header.chain_id != self.chain_id || block.header.height == 0 {
                self.report_peer(bad, peer, "offered a state sync block of another chain");
                continue;
            }
            let epoch = timeline.as_ref().map_or(0, |t| t.epoch_of(block.header.height));
            if epoch as usize >= sets.len().max(1) {
                // Signed by a later epoch's set: first prove that set from genesis.
                let from = sets.len().saturating_sub(1) as u64;
                if self.network.send(&peer, SYNC_TOPIC, codec::encode(&SyncMessage::GetEpochChanges { from })).is_ok() {
                    waiting.insert(peer, (block, certificate));
                }
                continue;
            }
            let checked = match (epoch, self.epochs) {
                (0, _) | (_, None) => self.verifier.verify_certificate(&block_ref, &certificate).map_err(|e| e.to_string()),
                (e, Some((genesis, make))) => self
                    .epoch_verifier(genesis, make, EpochRange::of_timeline(timeline.as_ref(), e), &sets[e as usize])
                    .and_then(|v| v.verify_certificate(&block_ref, &certificate).map_err(|e| e.to_string())),
            };
            if let Err(e) = checked {
                self.report_peer(bad, peer, &format!("offered a state sync block not proven final: {e}"));
                continue;
            }
            if best.as_ref().is_none_or(|(b, _)| b.header.height < block.header.height) {
                if best.is_none() {
                    stop_at = (Instant::now() + OFFER_GRACE).min(deadline);
                }
                tracing::info!(%peer, height = block.header.height, "state sync: offer");
                best = Some((block, certificate));
            }
            if best.is_some() && self.network.peers().iter().all(|p| answered.contains(p) || bad.contains(p)) {
                break; // every connected peer has answered
            }
        }
        best.ok_or(StateSyncError::NoOffer { secs: self.timeout.as_secs(), peers: self.network.peers().len() })
    }

    /// Adds the sets `changes` prove to `sets` (each epoch's proven set, in order), skipping
    /// changes of epochs already proven.
    fn learn_sets(
        &self,
        sets: &mut Vec<Vec<ValidatorEntry>>,
        timeline: Option<&mut crate::types::EpochTimeline>,
        changes: &[crate::light::EpochChange],
    ) -> Result<(), String> {
        let (Some((genesis, make)), Some(timeline)) = (self.epochs, timeline) else { return Ok(()) };
        let from = sets.len().saturating_sub(1) as u64;
        let new: Vec<_> = changes.iter().filter(|c| c.epoch >= from).cloned().collect();
        let last = sets.last().cloned().unwrap_or_default();
        let proven = crate::light::verify_epoch_changes(genesis, from, &last, timeline, &new, make).map_err(|e| e.to_string())?;
        sets.extend(proven);
        Ok(())
    }

    /// A key-less engine of the epoch `range` spans, with its proven set `set`.
    fn epoch_verifier(
        &self,
        genesis: &Genesis,
        make: MakeVerifier<'_>,
        range: EpochRange,
        set: &[ValidatorEntry],
    ) -> Result<Box<dyn ConsensusEngine>, String> {
        make(&EngineContext {
            chain_id: genesis.chain_id.clone(),
            genesis: self.genesis_hash,
            validators: ValidatorSet::from_entries(set),
            local: None,
            epoch: range,
        })
    }

    /// The next peer to ask, round robin over connected peers not reported, preferring those
    /// that have not let a request time out (all of them, once every peer has).
    fn pick(&self, bad: &HashSet<PeerId>, silent: &HashSet<PeerId>, turn: &mut usize) -> Option<PeerId> {
        let mut peers: Vec<PeerId> = self.network.peers().into_iter().filter(|p| !bad.contains(p)).collect();
        if peers.iter().any(|p| !silent.contains(p)) {
            peers.retain(|p| !silent.contains(p));
        }
        peers.sort();
        let peer = peers.get(*turn % peers.len().max(1)).copied();
        *turn = turn.wrapping_add(1);
        peer
    }

    /// Asks `peer` for the chunk after `after`; `false` if it could not be sent.
    fn ask(&self, peer: PeerId, height: Height, after: Option<[u8; 32]>) -> bool {
        self.network.send(&peer, SYNC_TOPIC, codec::encode(&SyncMessage::GetStateChunk { height, after })).is_ok()
    }

    /// Fetches and writes every chunk of the state at `block`'s height, then checks the root.
    /// The next chunk is asked for (of the next peer) as soon as a chunk arrives, so peers read
    /// while this node checks and writes.
    async fn restore(
        &mut self,
        block: &Block,
        deadline: Instant,
        bad: &mut HashSet<PeerId>,
        report: &mut StateSyncReport,
    ) -> Result<(), Restore> {
        let height = block.header.height;
        let root = block.header.state_root;
        let mut restore = ChunkedRestore::new(height, root);
        let mut after: Option<[u8; 32]> = None;
        let mut turn = 0usize;
        let mut silent = HashSet::new();
        // The chunk asked for ahead (its peer and start) when the previous one arrived.
        let mut asked: Option<(PeerId, Option<[u8; 32]>)> = None;
        loop {
            if Instant::now() >= deadline {
                return Err(Restore::OutOfTime);
            }
            let peer = match asked {
                Some((peer, a)) if a == after => peer,
                _ => {
                    let Some(peer) = self.pick(bad, &silent, &mut turn) else {
                        // Wait for a connection rather than spin.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    };
                    if !self.ask(peer, height, after) {
                        continue;
                    }
                    peer
                }
            };
            let until = (Instant::now() + CHUNK_TIMEOUT).min(deadline);
            let answer = loop {
                match self.next(until).await.map_err(Restore::Fatal)? {
                    None => break None,
                    Some((from, SyncMessage::StateChunk { height: h, after: a, entries, proof, last }))
                        if from == peer && h == height && a == after =>
                    {
                        break Some((entries, proof, last));
                    }
                    Some(_) => {}
                }
            };
            let Some((entries, proof, last)) = answer else {
                tracing::debug!(%peer, height, "state chunk request timed out; asking another peer");
                silent.insert(peer);
                asked = None;
                continue;
            };
            let size: usize = entries.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() + proof.len();
            if entries.is_empty() && (after.is_none() || !last) {
                // Every chain's state has entries (genesis accounts), and only the end is empty.
                self.report_peer(bad, peer, "served an empty state chunk that is not the end");
                asked = None;
                continue;
            }
            asked = None;
            if let (false, Some((key, _))) = (last, entries.last()) {
                let next = Some(crate::state::key_hash(key).0);
                if let Some(next_peer) = self.pick(bad, &silent, &mut turn) {
                    if self.ask(next_peer, height, next) {
                        asked = Some((next_peer, next));
                    }
                }
            }
            let mut batch = WriteBatch::default();
            if !entries.is_empty() {
                match restore.add_chunk(entries, &proof, &mut batch) {
                    Ok(next) => after = next,
                    Err(e) => {
                        let reason = format!("served a state chunk that does not prove: {e}");
                        self.report_peer(bad, peer, &reason);
                        return Err(Restore::Refused(reason));
                    }
                }
                report.chunks += 1;
                report.bytes += size as u64;
                self.store.write(batch, Durability::Buffered).map_err(|e| Restore::Fatal(e.into()))?;
                if report.chunks % 16 == 0 {
                    tracing::info!(height, entries = restore.entries(), bytes = report.bytes, "state sync: progress");
                }
            }
            if last {
                report.entries = restore.entries();
                let mut batch = WriteBatch::default();
                let finished = restore.finish(&mut batch);
                if let Err(e) = finished {
                    let reason = format!("ended the state where it cannot end: {e}");
                    self.report_peer(bad, peer, &reason);
                    return Err(Restore::Refused(reason));
                }
                self.store.write(batch, Durability::Synced).map_err(|e| Restore::Fatal(e.into()))?;
                match ChunkedRestore::check_root(self.store, height, root) {
                    Ok(()) => {}
                    Err(e @ ChunkError::RootMismatch { .. }) => {
                        let reason = format!("ended the state early: {e}");
                        self.report_peer(bad, peer, &reason);
                        return Err(Restore::Refused(reason));
                    }
                    // Reading back what this node wrote failed: its own store, not the peer.
                    Err(e) => return Err(Restore::Fatal(StateSyncError::Store(e.to_string()))),
                }
                return Ok(());
            }
        }
    }
}

enum Restore {
    /// A peer served state that does not prove; start again without it.
    Refused(String),
    OutOfTime,
    Fatal(StateSyncError),
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use parking_lot::Mutex;
    use tokio::sync::watch;

    use super::*;
    use crate::ledger::Ledger;
    use crate::network::memory::MemoryHub;
    use crate::node::sync::SyncService;
    use crate::node::testing::Recording;
    use crate::solo::{SoloEngine, SoloSettings};
    use crate::state::chunks::{read_chunk, MAX_CHUNK_BYTES, MAX_CHUNK_ENTRIES};
    use crate::types::{Address, Genesis, GenesisAccount, GenesisValidator, Keypair};
    use aether_storage_memory::MemoryStore;

    const ACCOUNTS: u32 = 5_000; // two chunks

    fn validator() -> Keypair {
        Keypair::from_seed([1; 32])
    }

    fn genesis() -> Genesis {
        let v = validator();
        let mut accounts: Vec<GenesisAccount> = (0..ACCOUNTS)
            .map(|i| {
                let mut a = [0u8; 20];
                a[..4].copy_from_slice(&i.to_be_bytes());
                GenesisAccount { address: Address(a), balance: u128::from(i) + 1 }
            })
            .collect();
        accounts.push(GenesisAccount { address: v.address(), balance: 1_000 });
        Genesis {
            chain_id: "state-sync-test".into(),
            genesis_time_ms: 0,
            modules: vec![],
            epochs: None,
            accounts,
            validators: vec![GenesisValidator { name: "v0".into(), identity: v.public(), consensus_key: v.public().0.to_vec(), stake: 1 }],
        }
    }

    fn engine() -> SoloEngine {
        SoloEngine::new(validator(), SoloSettings::default())
    }

    /// A solo chain of 3 committed blocks with a transfer each.
    fn honest_chain(genesis: &Genesis) -> Arc<Ledger> {
        let ledger = Arc::new(Ledger::open(Arc::new(MemoryStore::new()), genesis).unwrap());
        for i in 1..=3u64 {
            let head = ledger.head();
            let built = ledger.build_block(&head.block.hash, head.certificate, vec![], vec![], i * 1_000, validator().address()).unwrap();
            let block_ref = built.executed.block_ref();
            ledger.commit(&block_ref.hash, &engine().certify(&block_ref)).unwrap();
        }
        ledger
    }

    /// Serves `ledger` over `network` with block sync's server until `stop` fires.
    fn serve(ledger: Arc<Ledger>, network: Arc<dyn Network>, stop: watch::Receiver<bool>) -> std::thread::JoinHandle<()> {
        let (to_driver, _keep) = mpsc::channel(2);
        let inbox = network.subscribe(SYNC_TOPIC).unwrap();
        let service = SyncService {
            ledger,
            network,
            inbox,
            verifier: crate::node::epochs::EpochVerifiers::single(Box::new(engine())),
            to_driver,
            status: Arc::default(),
            metrics: Arc::default(),
        };
        let handle = service.spawn(stop).unwrap();
        std::mem::forget(_keep);
        handle
    }

    /// A peer that offers the honest snapshot but serves every chunk with one value changed.
    fn serve_lies(honest: Arc<Ledger>, network: Arc<dyn Network>, mut stop: watch::Receiver<bool>) -> std::thread::JoinHandle<()> {
        let mut inbox = network.subscribe(SYNC_TOPIC).unwrap();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
            rt.block_on(async move {
                loop {
                    let m = tokio::select! {
                        _ = stop.changed() => return,
                        m = inbox.recv() => match m { Some(m) => m, None => return },
                    };
                    let answer = match codec::decode::<SyncMessage>("sync", &m.bytes, MAX_SYNC_MESSAGE_BYTES).unwrap() {
                        SyncMessage::GetSnapshot => {
                            let (block, certificate) = honest.block_by_height(honest.head().block.height).unwrap().unwrap();
                            SyncMessage::Snapshot { block: Box::new(block), certificate }
                        }
                        SyncMessage::GetStateChunk { height, after } => {
                            let mut c = read_chunk(honest.store().as_ref(), height, after, MAX_CHUNK_ENTRIES, MAX_CHUNK_BYTES).unwrap();
                            if let Some(entry) = c.entries.last_mut() {
                                entry.1[0] ^= 1;
                            }
                            SyncMessage::StateChunk { height, after, entries: c.entries, proof: c.proof, last: c.last }
                        }
                        _ => continue,
                    };
                    let _ = network.send(&m.from, SYNC_TOPIC, codec::encode(&answer));
                }
            })
        })
    }

    fn state_sync(network: Arc<dyn Network>, store: &MemoryStore, genesis: &Genesis) -> Result<StateSyncReport, StateSyncError> {
        let mut inbox = network.subscribe(SYNC_TOPIC).unwrap();
        let verifier = engine();
        let job = StateSync {
            network: network.as_ref(),
            inbox: &mut inbox,
            verifier: &verifier,
            store,
            chain_id: &genesis.chain_id,
            genesis_hash: Ledger::genesis_block(genesis).hash(),
            timeout: Duration::from_secs(60),
            epochs: None,
        };
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        rt.block_on(job.run())
    }

    /// A solo chain served over the hub by an honest peer (and any others added); the servers
    /// stop when this is dropped.
    struct Served {
        genesis: Genesis,
        honest: Arc<Ledger>,
        hub: Arc<MemoryHub>,
        stop: watch::Sender<bool>,
        servers: Vec<std::thread::JoinHandle<()>>,
    }

    fn served() -> Served {
        let genesis = genesis();
        let honest = honest_chain(&genesis);
        let hub = MemoryHub::new();
        let (stop, stop_rx) = watch::channel(false);
        let server = serve(honest.clone(), hub.join(Keypair::from_seed([9; 32]).public()), stop_rx);
        Served { genesis, honest, hub, stop, servers: vec![server] }
    }

    impl Served {
        /// The syncing node's place on the hub.
        fn me(&self) -> Arc<dyn Network> {
            self.hub.join(Keypair::from_seed([8; 32]).public())
        }
    }

    impl Drop for Served {
        fn drop(&mut self) {
            let _ = self.stop.send(true);
            for s in self.servers.drain(..) {
                let _ = s.join();
            }
        }
    }

    fn check_same_state(honest: &Ledger, fresh: MemoryStore, genesis: &Genesis) {
        let synced = Ledger::open(Arc::new(fresh), genesis).expect("a state-synced store opens as a ledger");
        assert_eq!(synced.head().block, honest.head().block, "the head is the offered block");
        let height = synced.head().block.height;
        let ours: Vec<_> = crate::state::entries_at(synced.store().as_ref(), height).unwrap().map(Result::unwrap).collect();
        let theirs: Vec<_> = crate::state::entries_at(honest.store().as_ref(), height).unwrap().map(Result::unwrap).collect();
        assert_eq!(ours.len(), ACCOUNTS as usize + 1);
        assert_eq!(ours, theirs);
        let probe = genesis.accounts[1234].address;
        assert_eq!(synced.account(&probe).unwrap().balance, 1235, "the flat account table is filled too");
    }

    #[test]
    fn an_empty_node_starts_from_a_peers_state() {
        let s = served();
        let fresh = MemoryStore::new();
        let report = state_sync(s.me(), &fresh, &s.genesis).unwrap();
        assert_eq!((report.height, report.chunks, report.restarts), (3, 2, 0));
        assert_eq!(report.entries, u64::from(ACCOUNTS) + 1);
        check_same_state(&s.honest, fresh, &s.genesis);
    }

    #[test]
    fn a_peer_serving_altered_state_is_reported_and_the_state_comes_from_another() {
        let mut s = served();
        let liar = Keypair::from_seed([7; 32]).public();
        s.servers.push(serve_lies(s.honest.clone(), s.hub.join(liar), s.stop.subscribe()));
        let reported = Arc::new(Mutex::new(Vec::new()));
        let me = Arc::new(Recording { inner: s.me(), reported: reported.clone() });
        let fresh = MemoryStore::new();
        let report = state_sync(me, &fresh, &s.genesis).unwrap();
        assert_eq!(*reported.lock(), vec![liar], "the liar is reported, the honest peer is not");
        assert_eq!(report.restarts, 1, "the restore starts again once, without the liar");
        check_same_state(&s.honest, fresh, &s.genesis);
    }

    #[test]
    fn an_interrupted_state_sync_resumes_at_its_recorded_height() {
        let s = served();
        let (genesis, honest) = (&s.genesis, &s.honest);
        // A sync that recorded height 2 and wrote part of its state, then stopped.
        let fresh = MemoryStore::new();
        let (block, certificate) = honest.block_by_height(2).unwrap().unwrap();
        ledger::begin_state_sync(&fresh, &block, &certificate).unwrap();
        let chunk = read_chunk(honest.store().as_ref(), 2, None, 100, MAX_CHUNK_BYTES).unwrap();
        let mut partial = crate::state::chunks::ChunkedRestore::new(2, block.header.state_root);
        let mut batch = WriteBatch::default();
        partial.add_chunk(chunk.entries, &chunk.proof, &mut batch).unwrap();
        fresh.write(batch, Durability::Synced).unwrap();
        // Started again: the same height, though the peer's head is 3.
        let report = state_sync(s.me(), &fresh, genesis).unwrap();
        assert_eq!(report.height, 2, "resumed at the recorded height, not the newest offer");
        let synced = Ledger::open(Arc::new(fresh), genesis).unwrap();
        assert_eq!(synced.head().block.height, 2);
        assert_eq!(synced.head().header.state_root, block.header.state_root);
    }

    #[test]
    fn an_unfinished_state_sync_is_refused_by_the_ledger_until_finished() {
        let genesis = genesis();
        let honest = honest_chain(&genesis);
        let store = MemoryStore::new();
        let (block, certificate) = honest.block_by_height(3).unwrap().unwrap();
        ledger::begin_state_sync(&store, &block, &certificate).unwrap();
        let e = Ledger::open(Arc::new(store), &genesis).err().expect("a half-restored store is not opened as a new chain");
        assert!(matches!(e, ledger::LedgerError::UnfinishedStateSync { height: 3 }), "{e}");
    }
}
