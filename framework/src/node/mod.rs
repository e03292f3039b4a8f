//! Node assembly: builds the plugins named by config from a registry, opens the ledger, and
//! runs the consensus driver on its own thread. [`NodeHandle`] is the node's API for RPC and
//! tools.
//!
//! Order of start-up (so bad config never touches disk): validator set and key, consensus
//! engine, mempool policy — all from config — then the storage backend is opened, the ledger
//! checks the data directory belongs to this genesis, and the driver starts.
//!
//! Shutdown ([`Node::shutdown`], also on drop) stops the driver between two steps: a block
//! being committed finishes committing (one synced batch), nothing half-written remains.

pub mod driver;
pub mod metrics;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{broadcast, mpsc, watch, Notify};

use crate::codec;
use crate::config::NodeConfig;
use crate::consensus::{BlockRef, ConsensusEngine, EngineContext, Evidence, Input, LocalValidator, Payload, ValidatorIndex, ValidatorSet};
use crate::ledger::{CommittedTx, Ledger, LedgerError, Retention, MAX_BLOCK_BYTES};
use crate::mempool::{Mempool, SubmitError};
use crate::network::{InboundMessage, Network, PeerId};
use crate::registry::{PluginError, Registry, RegistryError, StorageContext};
use crate::storage::{columns, Durability, KvStore, WriteBatch};
use crate::types::{Account, Address, Block, Certificate, Genesis, Hash, Header, Height, Keypair, TimestampMs};
use driver::{Driver, DriverError, DriverIo};

/// The network topic consensus messages travel on.
pub const CONSENSUS_TOPIC: &str = "aether/consensus/1";
/// The network topic transactions are gossiped on (the borsh-encoded signed transaction).
/// A node forwards each transaction its API admits once to its peers; the peers admit it to
/// their mempools (with every check) and do not forward it again — a network plugin that
/// relays topics (gossipsub) carries it further.
pub const TX_TOPIC: &str = "aether/tx/1";
/// The network topic evidence of misbehaviour is gossiped on (borsh [`Evidence`]).
pub const EVIDENCE_TOPIC: &str = "aether/evidence/1";
/// Largest encoded piece of evidence accepted from a peer.
pub const MAX_EVIDENCE_BYTES: usize = 64 * 1024;
/// Verified evidence waiting to be recorded in a block, at most (the oldest is dropped).
const MAX_POOLED_EVIDENCE: usize = 256;
pub use metrics::NodeMetrics;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Driver(#[from] DriverError),
}

/// Time source of the driver. Engines never read it; the driver passes its readings in.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> TimestampMs;
}

/// Milliseconds since the Unix epoch that never go backwards: the wall clock read once at
/// start, advanced by a monotonic clock. A wall-clock step (NTP) therefore cannot stall timers
/// or make block times decrease; the drift from wall time is the monotonic clock's drift.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    wall_at_start_ms: TimestampMs,
    start: Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock {
            wall_at_start_ms: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0),
            start: Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> TimestampMs {
        self.wall_at_start_ms + self.start.elapsed().as_millis() as u64
    }
}

/// A committed block announced to subscribers.
#[derive(Debug, Clone)]
pub struct NewHead {
    pub hash: Hash,
    pub header: Header,
    pub tx_count: usize,
}

/// What the node is running.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub chain_id: String,
    pub genesis_hash: Hash,
    pub engine: String,
    pub storage: String,
    /// The VM backend, if contracts run on this node.
    pub vm: Option<String>,
    pub mempool_policy: String,
    pub validator: Option<Address>,
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone)]
pub struct NodeStatus {
    pub info: NodeInfo,
    pub head: BlockRef,
    pub head_time_ms: TimestampMs,
    pub state_root: Hash,
    pub mempool_size: usize,
}

/// Where a transaction stands.
#[derive(Debug, Clone)]
pub enum TxLookup {
    Committed(Box<CommittedTx>),
    Pending,
    Unknown,
}

/// A cheap, cloneable view of a running node.
#[derive(Clone)]
pub struct NodeHandle {
    ledger: Arc<Ledger>,
    mempool: Arc<Mempool>,
    metrics: Arc<NodeMetrics>,
    heads: broadcast::Sender<Arc<NewHead>>,
    info: Arc<NodeInfo>,
    evidence: mpsc::Sender<Evidence>,
    network: Option<Arc<dyn Network>>,
}

impl NodeHandle {
    /// Hands evidence of misbehaviour to the node (as a peer's gossip would): the consensus
    /// engine checks it, and if it proves what it claims the node gossips it and records it in
    /// a block it proposes. Returns an error only if the node's queue is full or it stopped;
    /// evidence that does not verify is dropped with a warning in the log.
    pub fn submit_evidence(&self, evidence: Evidence) -> Result<(), String> {
        self.evidence.try_send(evidence).map_err(|e| format!("evidence not queued: {e}"))
    }

    pub fn info(&self) -> &NodeInfo {
        &self.info
    }

    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    pub fn status(&self) -> NodeStatus {
        let head = self.ledger.head();
        NodeStatus {
            info: (*self.info).clone(),
            head: head.block,
            head_time_ms: head.header.time_ms,
            state_root: head.header.state_root,
            mempool_size: self.mempool.len(),
        }
    }

    /// Largest encoded transaction the mempool accepts.
    pub fn max_tx_bytes(&self) -> usize {
        self.mempool.config().max_tx_bytes
    }

    /// Admits an encoded transaction to the mempool and, if admitted, forwards it to the
    /// node's peers (topic [`TX_TOPIC`]) so whichever validator leads next can include it.
    pub fn submit(&self, bytes: &[u8]) -> Result<Hash, SubmitError> {
        let result = self.mempool.submit(bytes);
        match &result {
            Ok(_) => {
                self.metrics.mempool(self.mempool.len(), self.mempool.bytes());
                if let Some(n) = &self.network {
                    if let Err(e) = n.broadcast(TX_TOPIC, bytes.to_vec()) {
                        tracing::debug!(error = %e, "transaction not gossiped");
                    }
                }
            }
            Err(e) => self.metrics.rejected(e),
        }
        result
    }

    /// Counts a submission refused before it reached the mempool (e.g. by the RPC layer's own
    /// decoding) and hands the error back.
    pub fn refused(&self, error: SubmitError) -> SubmitError {
        self.metrics.rejected(&error);
        error
    }

    pub fn metrics(&self) -> &Arc<NodeMetrics> {
        &self.metrics
    }

    pub fn account(&self, address: &Address) -> Result<Account, LedgerError> {
        self.ledger.account(address)
    }

    /// The nonce `address`'s next transaction should carry, counting its pending ones.
    pub fn next_nonce(&self, address: &Address) -> Result<u64, LedgerError> {
        let committed = self.ledger.account(address)?.nonce;
        Ok(self.mempool.next_nonce(address).map_or(committed, |n| n.max(committed)))
    }

    pub fn block_by_height(&self, height: Height) -> Result<Option<(Block, Certificate)>, LedgerError> {
        self.ledger.block_by_height(height)
    }

    pub fn block_by_hash(&self, hash: &Hash) -> Result<Option<(Block, Certificate)>, LedgerError> {
        self.ledger.block_by_hash(hash)
    }

    pub fn transaction(&self, hash: &Hash) -> Result<TxLookup, LedgerError> {
        if let Some(tx) = self.ledger.transaction(hash)? {
            return Ok(TxLookup::Committed(Box::new(tx)));
        }
        Ok(if self.mempool.contains(hash) { TxLookup::Pending } else { TxLookup::Unknown })
    }

    /// Committed heads from now on. A slow subscriber misses heads (and is told how many)
    /// rather than slowing the node.
    pub fn subscribe_heads(&self) -> broadcast::Receiver<Arc<NewHead>> {
        self.heads.subscribe()
    }
}

/// A running node. Dropping it shuts it down.
pub struct Node {
    handle: NodeHandle,
    stop: watch::Sender<bool>,
    /// Becomes `true` when the driver thread has exited, for whatever reason.
    exited: watch::Receiver<bool>,
    driver: Option<std::thread::JoinHandle<Result<(), DriverError>>>,
    pruner: Option<std::thread::JoinHandle<()>>,
    tx_gossip: Option<std::thread::JoinHandle<()>>,
}

/// Admits transactions peers gossip (topic [`TX_TOPIC`]) until `stop`. They are not
/// forwarded again; refusals (duplicates are common: several peers forward one transaction)
/// are counted in the metrics like any other.
fn spawn_tx_gossip(
    mempool: Arc<Mempool>,
    metrics: Arc<NodeMetrics>,
    mut inbound: mpsc::Receiver<InboundMessage>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("aether-tx-gossip".into()).spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("tokio runtime for the gossip thread");
        rt.block_on(async move {
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    m = inbound.recv() => match m {
                        None => return,
                        Some(m) => match mempool.submit(&m.bytes) {
                            Ok(_) => metrics.mempool(mempool.len(), mempool.bytes()),
                            Err(e) => metrics.rejected(&e),
                        },
                    },
                }
            }
        })
    })
}

/// Removes history beyond `retention` in the background, after each new head.
fn spawn_pruner(ledger: Arc<Ledger>, retention: Retention, stop: watch::Receiver<bool>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("aether-pruner".into()).spawn(move || {
        let mut pruned_at = None;
        while !*stop.borrow() {
            let head = ledger.head().block.height;
            if pruned_at != Some(head) {
                // Bounded steps, so a stop request is noticed within one step.
                loop {
                    match ledger.prune(&retention, 10_000) {
                        Ok(p) if p.done => break,
                        Ok(_) if *stop.borrow() => return,
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "pruning failed; retrying after the next block");
                            break;
                        }
                    }
                }
                pruned_at = Some(head);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
}

/// Opens the configured storage backend on the node's data directory (`DATA_DIR/db`). The
/// backend creates its folder only after it has accepted its settings.
pub fn open_store(config: &NodeConfig, registry: &Registry) -> Result<Arc<dyn KvStore>, NodeError> {
    let storage_factory = &registry.storage.get(&config.storage.name)?.factory;
    Ok(storage_factory(&StorageContext { path: config.node.data_dir.join("db"), schema: columns::SCHEMA }, &config.storage.settings)?)
}

impl Node {
    /// Assembles and starts a node. `validator_key` is this node's identity key if it is a
    /// validator.
    pub fn launch(config: &NodeConfig, registry: &Registry, genesis: &Genesis, validator_key: Option<Keypair>) -> Result<Node, NodeError> {
        Self::launch_with(
            config,
            registry,
            genesis,
            validator_key,
            Arc::new(SystemClock::default()),
            Arc::new(NodeMetrics::default()),
            None,
        )
    }

    /// [`Node::launch`] with a chosen clock and metrics (the RPC plugin serves the same
    /// metrics, so it can be bound before the node starts), and the network consensus
    /// messages travel on (topic [`CONSENSUS_TOPIC`]; required with more than one validator).
    pub fn launch_with(
        config: &NodeConfig,
        registry: &Registry,
        genesis: &Genesis,
        validator_key: Option<Keypair>,
        clock: Arc<dyn Clock>,
        metrics: Arc<NodeMetrics>,
        network: Option<Arc<dyn Network>>,
    ) -> Result<Node, NodeError> {
        genesis.validate().map_err(|e| NodeError::Setup(e.to_string()))?;
        let validators = ValidatorSet::from_genesis(genesis);
        let local = match validator_key {
            Some(key) => {
                let index = validators.index_of(&key.public()).ok_or_else(|| {
                    NodeError::Setup(format!(
                        "validator key {} (address {}) is not in the genesis validator set",
                        key.public(),
                        key.address()
                    ))
                })?;
                Some(LocalValidator { index, identity: key })
            }
            None => None,
        };
        let ctx = EngineContext { chain_id: genesis.chain_id.clone(), validators: validators.clone(), local: local.clone() };
        let engine = (registry.consensus.get(&config.consensus.name)?.factory)(&ctx, &config.consensus.settings)?;
        if validators.len() > 1 && network.is_none() {
            return Err(NodeError::Setup(format!(
                "genesis has {} validators, which needs a network; this build has no socket network plugin yet: run them in one process with `aether devnet --dir DIR`",
                validators.len()
            )));
        }
        let inbound = match &network {
            Some(n) => Some(n.subscribe(CONSENSUS_TOPIC).map_err(|e| NodeError::Setup(format!("network: {e}")))?),
            None => None,
        };
        let policy = (registry.mempool_policy.get(&config.mempool.policy)?.factory)(&crate::registry::PluginSettings::empty("mempool"))?;
        // Plugins are built before the store is opened, so a bad setting touches no data.
        let vm = match &config.vm {
            Some(vm) => {
                let ctx = crate::registry::VmContext { artifact_dir: Some(config.node.data_dir.join("vm-artifacts")) };
                Some((registry.vm.get(&vm.name)?.factory)(&ctx, &vm.settings)?)
            }
            None => None,
        };
        let store = open_store(config, registry)?;
        let mut ledger = Ledger::open(store.clone(), genesis)?;
        if let Some(vm) = vm {
            ledger = ledger.with_vm(vm);
        }
        let ledger = Arc::new(ledger);
        let mempool = Arc::new(Mempool::new(config.mempool.clone(), ledger.clone(), policy));
        let (heads, _) = broadcast::channel(256);
        let info = Arc::new(NodeInfo {
            chain_id: genesis.chain_id.clone(),
            genesis_hash: ledger.genesis_hash(),
            engine: config.consensus.name.clone(),
            storage: config.storage.name.clone(),
            vm: config.vm.as_ref().map(|v| v.name.clone()),
            mempool_policy: mempool.policy_name().to_string(),
            validator: local.as_ref().map(|l| l.identity.address()),
            data_dir: config.node.data_dir.clone(),
        });
        metrics.head(ledger.head().block.height);
        let (evidence_tx, evidence_rx) = mpsc::channel(64);
        let handle = NodeHandle {
            ledger: ledger.clone(),
            mempool: mempool.clone(),
            metrics: metrics.clone(),
            heads: heads.clone(),
            info,
            evidence: evidence_tx,
            network: network.clone(),
        };
        let tx_inbound = match &network {
            Some(n) => Some(n.subscribe(TX_TOPIC).map_err(|e| NodeError::Setup(format!("network: {e}")))?),
            None => None,
        };
        let evidence_inbound = match &network {
            Some(n) => Some(n.subscribe(EVIDENCE_TOPIC).map_err(|e| NodeError::Setup(format!("network: {e}")))?),
            None => None,
        };

        let engine_name = engine.name();
        let safety_state = store.get(columns::CONSENSUS, engine_name.as_bytes()).map_err(LedgerError::from)?;
        let head = ledger.head();
        let start = Input::Start { committed: head.block, certificate: head.certificate, safety_state };
        let io = NodeIo {
            ledger,
            mempool: mempool.clone(),
            store,
            heads,
            engine_name,
            proposer: local.as_ref().map(|l| l.identity.address()).unwrap_or_default(),
            max_block_txs: config.mempool.max_block_txs,
            committed_since_check: false,
            metrics,
            network,
            peers: validators.iter().map(|v| v.identity).collect(),
            evidence_pool: Vec::new(),
        };
        let (stop, stop_rx) = watch::channel(false);
        let pruner = if config.retention.keep_recent > 0 || config.retention.keep_blocks > 0 {
            Some(
                spawn_pruner(handle.ledger.clone(), config.retention, stop.subscribe())
                    .map_err(|e| NodeError::Setup(format!("cannot start the pruning thread: {e}")))?,
            )
        } else {
            None
        };
        let tx_gossip = match tx_inbound {
            Some(rx) => Some(
                spawn_tx_gossip(mempool.clone(), handle.metrics.clone(), rx, stop.subscribe())
                    .map_err(|e| NodeError::Setup(format!("cannot start the transaction gossip thread: {e}")))?,
            ),
            None => None,
        };
        let (exited_tx, exited) = watch::channel(false);
        let ready = mempool.ready_signal();
        let driver = std::thread::Builder::new()
            .name("aether-consensus".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("tokio runtime for the driver thread");
                let inputs = DriverInputs {
                    ready,
                    stop: stop_rx,
                    consensus: inbound,
                    evidence_gossip: evidence_inbound,
                    evidence_local: evidence_rx,
                };
                let result = rt.block_on(run_driver(Driver::new(engine), io, start, clock, inputs, validators));
                let _ = exited_tx.send(true);
                result
            })
            .map_err(|e| NodeError::Setup(format!("cannot start the consensus thread: {e}")))?;
        tracing::info!(chain = %handle.info.chain_id, engine = %handle.info.engine, storage = %handle.info.storage, height = handle.ledger.head().block.height, "node started");
        Ok(Node { handle, stop, exited, driver: Some(driver), pruner, tx_gossip })
    }

    /// Resolves when the driver has stopped on its own (a fatal error such as a failed disk
    /// write); [`Node::shutdown`] then returns that error.
    pub async fn stopped(&self) {
        let mut exited = self.exited.clone();
        let _ = exited.wait_for(|e| *e).await;
    }

    pub fn handle(&self) -> NodeHandle {
        self.handle.clone()
    }

    /// Stops the driver after its current step and waits for it. Returns the error that
    /// stopped it, if it stopped on its own.
    pub fn shutdown(mut self) -> Result<(), NodeError> {
        self.stop_driver()
    }

    fn stop_driver(&mut self) -> Result<(), NodeError> {
        let _ = self.stop.send(true);
        if let Some(p) = self.pruner.take() {
            let _ = p.join();
        }
        if let Some(g) = self.tx_gossip.take() {
            let _ = g.join();
        }
        match self.driver.take() {
            Some(t) => match t.join() {
                Ok(r) => r.map_err(NodeError::from),
                Err(_) => Err(NodeError::Setup("the consensus thread panicked".into())),
            },
            None => Ok(()),
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Err(e) = self.stop_driver() {
            tracing::error!(error = %e, "node stopped with an error");
        }
    }
}

/// Everything the driver loop waits on besides its timers.
struct DriverInputs {
    /// The mempool has transactions for a block.
    ready: Arc<Notify>,
    stop: watch::Receiver<bool>,
    consensus: Option<mpsc::Receiver<InboundMessage>>,
    evidence_gossip: Option<mpsc::Receiver<InboundMessage>>,
    evidence_local: mpsc::Receiver<Evidence>,
}

async fn recv_or_pending<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx.as_mut() {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn run_driver(
    mut driver: Driver,
    mut io: NodeIo,
    start: Input,
    clock: Arc<dyn Clock>,
    inputs: DriverInputs,
    validators: ValidatorSet,
) -> Result<(), DriverError> {
    let DriverInputs { ready, mut stop, consensus: mut inbound, mut evidence_gossip, mut evidence_local } = inputs;
    let result = async {
        driver.handle(clock.now_ms(), start, &mut io)?;
        loop {
            let sleep = async {
                match driver.next_deadline() {
                    Some(at) => tokio::time::sleep(Duration::from_millis(at.saturating_sub(clock.now_ms()))).await,
                    None => std::future::pending().await,
                }
            };
            let message = recv_or_pending(&mut inbound);
            tokio::select! {
                biased;
                _ = stop.changed() => return Ok(()),
                _ = sleep => driver.fire_due_timers(clock.now_ms(), &mut io)?,
                Some(m) = message => {
                    // Messages from peers that are not validators are not consensus input.
                    if let Some(from) = validators.index_of(&m.from) {
                        driver.handle(clock.now_ms(), Input::Message { from, bytes: m.bytes }, &mut io)?;
                    }
                }
                _ = ready.notified() => driver.handle(clock.now_ms(), Input::TransactionsWaiting, &mut io)?,
                Some(m) = recv_or_pending(&mut evidence_gossip) => {
                    match codec::decode::<Evidence>("evidence", &m.bytes, MAX_EVIDENCE_BYTES) {
                        Ok(e) => io.offer_evidence(e, driver.engine(), "a peer"),
                        Err(e) => tracing::debug!(from = %m.from, error = %e, "undecodable evidence from a peer"),
                    }
                }
                Some(e) = evidence_local.recv() => io.offer_evidence(e, driver.engine(), "this node's API"),
            }
            // Transactions left over after a commit are waiting too.
            if std::mem::take(&mut io.committed_since_check) && !io.mempool.is_empty() {
                driver.handle(clock.now_ms(), Input::TransactionsWaiting, &mut io)?;
            }
        }
    }
    .await;
    if let Err(e) = &result {
        tracing::error!(error = %e, "consensus driver stopped: the node cannot continue safely");
    }
    result
}

/// The node's side effects for the driver.
struct NodeIo {
    ledger: Arc<Ledger>,
    mempool: Arc<Mempool>,
    store: Arc<dyn KvStore>,
    heads: broadcast::Sender<Arc<NewHead>>,
    engine_name: &'static str,
    proposer: Address,
    max_block_txs: usize,
    committed_since_check: bool,
    metrics: Arc<NodeMetrics>,
    network: Option<Arc<dyn Network>>,
    /// Validator identities by index (where `send` goes).
    peers: Vec<PeerId>,
    /// Verified evidence not yet recorded on chain, oldest first.
    evidence_pool: Vec<Evidence>,
}

impl NodeIo {
    /// Adds verified, new evidence to the pool and gossips it (once: evidence already pooled
    /// or recorded is ignored, so gossip dies out).
    fn add_evidence(&mut self, evidence: Evidence) {
        if self.evidence_pool.contains(&evidence) {
            return;
        }
        match self.ledger.evidence_recorded(&evidence.hash()) {
            Ok(Some(_)) => return,
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the evidence index; pooling the evidence anyway"),
        }
        tracing::warn!(offender = evidence.offender, kind = %evidence.kind, hash = %evidence.hash(), "misbehaviour proven; recording it in a block");
        if self.evidence_pool.len() >= MAX_POOLED_EVIDENCE {
            self.evidence_pool.remove(0);
        }
        if let Some(n) = &self.network {
            if let Err(e) = n.broadcast(EVIDENCE_TOPIC, codec::encode(&evidence)) {
                tracing::debug!(error = %e, "evidence not gossiped");
            }
        }
        self.evidence_pool.push(evidence);
    }

    /// Evidence from outside the engine: pooled only if the engine says it proves misbehaviour.
    fn offer_evidence(&mut self, evidence: Evidence, engine: &dyn ConsensusEngine, source: &str) {
        match engine.verify_evidence(&evidence) {
            Ok(()) => self.add_evidence(evidence),
            Err(e) => tracing::warn!(source, offender = evidence.offender, kind = %evidence.kind, error = %e, "evidence refused"),
        }
    }
}

impl DriverIo for NodeIo {
    fn broadcast(&mut self, bytes: Vec<u8>) {
        // Without a network there is one validator and nobody to tell (launch checks this).
        if let Some(n) = &self.network {
            if let Err(e) = n.broadcast(CONSENSUS_TOPIC, bytes) {
                tracing::debug!(error = %e, "consensus broadcast not sent");
            }
        }
    }

    fn send(&mut self, to: ValidatorIndex, bytes: Vec<u8>) {
        if let (Some(n), Some(peer)) = (&self.network, self.peers.get(to as usize)) {
            if peer == &n.local_peer() {
                return;
            }
            if let Err(e) = n.send(peer, CONSENSUS_TOPIC, bytes) {
                tracing::debug!(to, error = %e, "consensus message not sent");
            }
        }
    }

    fn persist(&mut self, state: &[u8]) -> Result<(), DriverError> {
        let mut batch = WriteBatch::default();
        batch.put(columns::CONSENSUS, self.engine_name.as_bytes().to_vec(), state.to_vec());
        self.store.write(batch, Durability::Synced).map_err(|e| DriverError::Persist(e.to_string()))
    }

    fn build_payload(&mut self, parent: &BlockRef, parent_certificate: &Certificate, now_ms: TimestampMs) -> Result<Payload, String> {
        let started = Instant::now();
        // On an uncommitted parent (pipelined engines), the mempool still holds the ancestors'
        // transactions: look past them so the block can still fill up.
        let in_ancestors = self.ledger.uncommitted_transactions(&parent.hash).map_err(|e| e.to_string())?;
        let candidates: Vec<_> = self
            .mempool
            .select(self.max_block_txs + in_ancestors.len())
            .into_iter()
            .filter(|tx| in_ancestors.is_empty() || !in_ancestors.contains(&tx.hash()))
            .take(self.max_block_txs)
            .collect();
        let built = self
            .ledger
            .build_block(&parent.hash, parent_certificate.clone(), candidates, self.evidence_pool.clone(), now_ms, self.proposer)
            .map_err(|e| e.to_string())?;
        if !built.rejected.is_empty() {
            tracing::debug!(count = built.rejected.len(), "dropping mempool transactions that no longer apply");
            self.mempool.drop_rejected(&built.rejected.iter().map(|(h, _)| *h).collect::<Vec<_>>());
        }
        let executed = built.executed;
        self.metrics.built(started.elapsed().as_secs_f64());
        Ok(Payload { block: executed.block_ref(), parent: parent.hash, bytes: codec::encode(&executed.block) })
    }

    fn verify_payload(&mut self, bytes: &[u8], engine: &dyn ConsensusEngine) -> (Option<(BlockRef, Hash)>, bool) {
        let block: Block = match codec::decode("block", bytes, MAX_BLOCK_BYTES) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "proposed block does not decode");
                return (None, false);
            }
        };
        let block_ref = BlockRef { hash: block.hash(), height: block.header.height };
        let parent = block.header.parent;
        for e in &block.evidence {
            if let Err(error) = engine.verify_evidence(e) {
                tracing::warn!(block = %block_ref.hash, %error, "proposed block records evidence that does not verify");
                return (Some((block_ref, parent)), false);
            }
        }
        match self.ledger.execute_block(block) {
            Ok(_) => (Some((block_ref, parent)), true),
            Err(e) => {
                tracing::warn!(block = %block_ref.hash, error = %e, "proposed block is invalid");
                (Some((block_ref, parent)), false)
            }
        }
    }

    fn commit(&mut self, block: &BlockRef, certificate: &Certificate) -> Result<(), DriverError> {
        let started = Instant::now();
        let executed =
            self.ledger.commit(&block.hash, certificate).map_err(|e| DriverError::Commit { block: *block, reason: e.to_string() })?;
        let commit_seconds = started.elapsed().as_secs_f64();
        self.mempool.on_committed(&executed.block);
        if !executed.block.evidence.is_empty() {
            self.evidence_pool.retain(|e| !executed.block.evidence.contains(e));
            tracing::info!(height = block.height, count = executed.block.evidence.len(), "evidence recorded");
        }
        self.committed_since_check = true;
        let tx_count = executed.block.transactions.len();
        self.metrics.committed(block.height, tx_count, commit_seconds);
        self.metrics.mempool(self.mempool.len(), self.mempool.bytes());
        tracing::info!(height = block.height, hash = %block.hash, txs = tx_count, "committed");
        let _ = self.heads.send(Arc::new(NewHead { hash: block.hash, header: executed.block.header.clone(), tx_count }));
        Ok(())
    }

    fn evidence(&mut self, evidence: Evidence) {
        // From this node's own engine, which built it from messages it verified.
        self.add_evidence(evidence);
    }
}
