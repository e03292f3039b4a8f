//! Starting and stopping a node: builds the plugins config names, opens the store and the
//! ledger, and starts the driver thread and the background services.

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, watch};

use super::driver_loop::{run_driver, DriverInputs, EpochState};
use super::effects::NodeIo;
use super::epochs::{safety_key, EngineMaker, EpochVerifiers};
use super::evidence_pool::EvidencePool;
use super::services::{spawn_pruner, spawn_tx_gossip};
use super::state_sync::{StateSync, StateSyncError, StateSyncReport};
use super::sync::{SyncService, SyncStatus};
use super::{Clock, NodeError, NodeHandle, NodeInfo, NodeMetrics, CONSENSUS_TOPIC, EVIDENCE_TOPIC, SYNC_TOPIC, TX_TOPIC};
use crate::config::NodeConfig;
use crate::consensus::driver::{Driver, DriverError};
use crate::consensus::{ConsensusEngine, EngineContext, Input, ValidatorSet};
use crate::ledger::{Ledger, LedgerError};
use crate::mempool::Mempool;
use crate::network::{InboundMessage, Network, NetworkContext};
use crate::registry::{PluginSettings, Registry};
use crate::storage::{columns, KvStore, StorageContext};
use crate::types::{Genesis, Keypair};
use crate::vm::VmContext;

/// The node's parts handles reach through weak references.
type LiveParts = (Arc<Ledger>, Arc<Mempool>, Option<Arc<dyn Network>>);

/// A running node. Dropping it shuts it down.
pub struct Node {
    handle: NodeHandle,
    /// The only long-lived strong references besides the node's threads': dropped at
    /// shutdown, so the store closes although handles remain.
    live: Option<LiveParts>,
    stop: watch::Sender<bool>,
    /// Becomes `true` when the driver thread has exited, for whatever reason.
    exited: watch::Receiver<bool>,
    driver: Option<std::thread::JoinHandle<Result<(), DriverError>>>,
    pruner: Option<std::thread::JoinHandle<()>>,
    tx_gossip: Option<std::thread::JoinHandle<()>>,
    sync: Option<std::thread::JoinHandle<()>>,
}

/// Opens the configured storage backend on the node's data directory (`DATA_DIR/db`). The
/// backend creates its folder only after it has accepted its settings.
pub fn open_store(config: &NodeConfig, registry: &Registry) -> Result<Arc<dyn KvStore>, NodeError> {
    let storage_factory = &registry.storage.get(&config.storage.name)?.factory;
    Ok(storage_factory(&StorageContext { path: config.node.data_dir.join("db"), schema: columns::SCHEMA }, &config.storage.settings)?)
}

/// Builds the network plugin `[network]` names, with `identity` as the node's peer identity
/// (a validator's genesis identity key; a full node's own node key). `None` when config has no
/// `[network]` section. The plugin binds its listen addresses before this returns.
pub fn open_network(
    config: &NodeConfig,
    registry: &Registry,
    genesis: &Genesis,
    identity: &Keypair,
) -> Result<Option<Arc<dyn Network>>, NodeError> {
    let Some(net) = &config.network else { return Ok(None) };
    let mut allowed: Vec<_> = genesis.validators.iter().map(|v| v.identity).collect();
    allowed.extend(net.allowed_peers.iter().copied());
    allowed.sort();
    allowed.dedup();
    let ctx = NetworkContext {
        identity: identity.clone(),
        chain: format!("{}/{}", genesis.chain_id, Ledger::genesis_block(genesis).hash()),
        listen: net.listen.clone(),
        bootstrap: net.bootstrap.clone(),
        allowed,
        validators: genesis.validators.iter().map(|v| v.identity).collect(),
        max_peers: net.max_peers,
    };
    let network = (registry.network.get(&net.backend.name)?.factory)(&ctx, &net.backend.settings)?;
    Ok(Some(network))
}

impl Node {
    /// Assembles and starts a node from resolved config (what [`super::NodeBuilder`] hands
    /// over). `validator_key` is this node's identity key if it is a validator; `network` is
    /// what consensus messages travel on (required with more than one validator).
    pub(crate) fn start(
        config: &NodeConfig,
        registry: &Registry,
        genesis: &Genesis,
        validator_key: Option<Keypair>,
        clock: Arc<dyn Clock>,
        metrics: Arc<NodeMetrics>,
        network: Option<Arc<dyn Network>>,
    ) -> Result<Node, NodeError> {
        genesis.validate()?;
        let validators = ValidatorSet::from_genesis(genesis);
        // On a chain whose set changes by epoch, a validator key outside the genesis set may
        // be in a later set: the node follows the chain and signs when its epoch comes.
        if let Some(key) = &validator_key {
            if genesis.epochs.is_none() && validators.index_of(&key.public()).is_none() {
                return Err(NodeError::NotAValidator { identity: key.public(), address: key.address() });
            }
        }
        let consensus = registry.consensus.get(&config.consensus.name)?;
        let maker = EngineMaker {
            factory: consensus.factory.clone(),
            settings: config.consensus.settings.clone(),
            chain_id: genesis.chain_id.clone(),
            genesis: Ledger::genesis_block(genesis).hash(),
            schedule: genesis.epochs.clone(),
            signer: validator_key.clone(),
        };
        // Settings are checked before anything is opened on disk, with the genesis set.
        let ctx = maker.context(maker.range(None, 0), validators.clone(), true);
        let engine_factory = &consensus.factory;
        engine_factory(&ctx, &config.consensus.settings)?;
        // State sync checks an offered block of epoch 0 with a key-less engine of the genesis
        // set; one of a later epoch with that epoch's set, proven from genesis first.
        let verifier = match &network {
            Some(_) => match engine_factory(&EngineContext { local: None, ..ctx.clone() }, &config.consensus.settings) {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::warn!(engine = %config.consensus.name, error = %e, "block sync is off: the engine cannot verify certificates without a key");
                    None
                }
            },
            None => None,
        };
        if validators.len() > 1 && network.is_none() {
            return Err(NodeError::NetworkRequired { validators: validators.len() });
        }
        let inbound = match &network {
            Some(n) => Some(subscribe(n.as_ref(), CONSENSUS_TOPIC)?),
            None => None,
        };
        let policy = (registry.mempool_policy.get(&config.mempool.policy)?.factory)(&PluginSettings::empty("mempool"))?;
        // Plugins are built before the store is opened, so a bad setting touches no data.
        let vm = match &config.vm {
            Some(vm) => {
                let ctx = VmContext { artifact_dir: Some(config.node.data_dir.join("vm-artifacts")) };
                Some((registry.vm.get(&vm.name)?.factory)(&ctx, &vm.settings)?)
            }
            None => None,
        };
        let modules = pinned_modules(genesis, registry)?;
        let store = open_store(config, registry)?;
        let mut sync_inbox = match &network {
            Some(n) => Some(subscribe(n.as_ref(), SYNC_TOPIC)?),
            None => None,
        };
        let (verifier, state_synced) = if config.sync.state_sync {
            state_sync_if_empty(config, genesis, &maker, store.as_ref(), network.as_deref(), verifier, sync_inbox.as_mut())?
        } else {
            (verifier, None)
        };
        let mut ledger = Ledger::open(store.clone(), genesis)?;
        if let Some(vm) = vm {
            ledger = ledger.with_vm(vm);
        }
        for module in modules {
            ledger = ledger.with_module(module.at_genesis);
            for other in module.others {
                ledger = ledger.with_module_version(other);
            }
        }
        let ledger = ledger
            .with_consensus_key_check(registry.consensus_key_check(&config.consensus.name))
            .with_certificate_signers(registry.certificate_signers(&config.consensus.name));
        ledger.check_genesis_init()?;
        // Refuses a chain already on a version this build lacks; warns of a scheduled one.
        ledger.check_module_versions()?;
        let ledger = Arc::new(ledger);
        let mempool = Arc::new(Mempool::new(config.mempool.clone(), ledger.clone(), policy));
        let (heads, _) = broadcast::channel(256);
        let head = ledger.head();
        // The epoch of the next block, with the set the chain recorded for it (a restarted
        // node reads it from committed state, not from genesis).
        let epoch = ledger.epoch_of(head.block.height + 1);
        let (mut engine, ctx) = maker.engine(&ledger, epoch, true)?;
        let local = ctx.local.clone();
        let validators = ctx.validators.clone();
        if let Some(n) = &network {
            // A node restarted in a later epoch: its set may hold validators genesis did not.
            n.admit_validators(&validators.iter().map(|v| v.identity).collect::<Vec<_>>());
        }
        let engine_name = engine.name();
        let safety_state = store.get(columns::CONSENSUS, &safety_key(engine_name, epoch)).map_err(LedgerError::from)?;
        // A validator with commits but no safety state may have signed in rounds it no longer
        // remembers (its consensus column lost, or its key moved here from another machine):
        // it must not sign again until its operator says the key never signed on this chain.
        // Starting an epoch on its first block is no such gap when the epoch before kept its state.
        let epoch_not_begun = epoch > 0
            && head.block.height + 1 == maker.range(Some(&*ledger), epoch).first_height
            && store.get(columns::CONSENSUS, &safety_key(engine_name, epoch - 1)).map_err(LedgerError::from)?.is_some();
        let signing = match &local {
            Some(l) if engine.keeps_safety_state() && head.block.height > 0 && safety_state.is_none() && !epoch_not_begun => {
                if config.node.fresh_safety_state {
                    tracing::warn!(validator = %l.identity.address(), height = head.block.height, "starting with a fresh consensus safety state, as the operator confirmed (--fresh-safety-state)");
                    true
                } else {
                    tracing::error!(
                        validator = %l.identity.address(),
                        height = head.block.height,
                        "this validator's chain has commits but its consensus safety state is missing: it follows the chain and signs nothing. \
                         If this key has never signed on this chain (a new validator started by state sync), restart once with --fresh-safety-state; \
                         if it has signed, find the data directory it signed from"
                    );
                    engine = engine_factory(&EngineContext { local: None, ..ctx.clone() }, &config.consensus.settings)?;
                    false
                }
            }
            Some(_) => true,
            // Not in this epoch's set: it signs in a later epoch whose set holds it.
            None => validator_key.is_some(),
        };
        let info = Arc::new(NodeInfo {
            chain_id: genesis.chain_id.clone(),
            genesis_hash: ledger.genesis_hash(),
            engine: config.consensus.name.clone(),
            storage: config.storage.name.clone(),
            vm: config.vm.as_ref().map(|v| v.name.clone()),
            mempool_policy: mempool.policy_name().to_string(),
            validator: validator_key.as_ref().map(|k| k.address()),
            signing,
            data_dir: config.node.data_dir.clone(),
        });
        metrics.head(ledger.head().block.height);
        let (evidence_tx, evidence_rx) = mpsc::channel(64);
        let sync_status = Arc::new(parking_lot::Mutex::new(SyncStatus {
            head: ledger.head().block.height,
            state_sync: state_synced,
            ..SyncStatus::default()
        }));
        let handle = NodeHandle {
            sync: sync_status.clone(),
            ledger: Arc::downgrade(&ledger),
            mempool: Arc::downgrade(&mempool),
            max_tx_bytes: config.mempool.max_tx_bytes,
            metrics: metrics.clone(),
            heads: heads.clone(),
            info,
            evidence: evidence_tx,
            network: network.as_ref().map(Arc::downgrade),
        };
        let tx_inbound = match &network {
            Some(n) => Some(subscribe(n.as_ref(), TX_TOPIC)?),
            None => None,
        };
        let evidence_inbound = match &network {
            Some(n) => Some(subscribe(n.as_ref(), EVIDENCE_TOPIC)?),
            None => None,
        };

        let start = Input::Start { committed: head.block, certificate: head.certificate, safety_state };
        let live = (ledger.clone(), mempool.clone(), network.clone());
        let io = NodeIo {
            evidence: EvidencePool::new(
                ledger.clone(),
                network.clone(),
                genesis.epochs.is_some().then(|| EpochVerifiers::new(maker.clone(), ledger.clone())),
            ),
            ledger: ledger.clone(),
            mempool: mempool.clone(),
            store,
            heads,
            safety_key: safety_key(engine_name, epoch),
            epoch,
            epoch_ended: None,
            proposer: validator_key.as_ref().map(|k| k.address()).unwrap_or_default(),
            max_block_txs: config.mempool.max_block_txs,
            committed_since_check: false,
            metrics,
            network: network.clone(),
            peers: validators.iter().map(|v| v.identity).collect(),
        };
        let (stop, stop_rx) = watch::channel(false);
        let pruner = if config.retention.keep_recent > 0 || config.retention.keep_blocks > 0 {
            Some(spawn_pruner(ledger.clone(), config.retention, stop.subscribe())?)
        } else {
            None
        };
        let (synced_tx, synced_rx) = mpsc::channel(2);
        let sync = match (&network, verifier, sync_inbox) {
            (Some(network), Some(_), Some(inbox)) => {
                let service = SyncService {
                    ledger: ledger.clone(),
                    network: network.clone(),
                    inbox,
                    verifier: EpochVerifiers::new(maker.clone(), ledger.clone()),
                    to_driver: synced_tx,
                    status: sync_status,
                    metrics: handle.metrics.clone(),
                };
                Some(service.spawn(stop.subscribe()).map_err(|source| NodeError::Thread { name: "sync", source })?)
            }
            _ => None,
        };
        let synced = sync.as_ref().map(|_| synced_rx);
        if sync.is_none() {
            // Nobody to catch up with.
            handle.metrics.set_ready(true);
        }
        let tx_gossip = match (tx_inbound, &network) {
            (Some(rx), Some(n)) => Some(spawn_tx_gossip(mempool.clone(), handle.metrics.clone(), n.clone(), rx, stop.subscribe())?),
            _ => None,
        };
        let (exited_tx, exited) = watch::channel(false);
        let ready = mempool.ready_signal();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|source| NodeError::Thread { name: "consensus", source })?;
        let driver = std::thread::Builder::new()
            .name("aether-consensus".into())
            .spawn(move || {
                let inputs = DriverInputs {
                    ready,
                    stop: stop_rx,
                    consensus: inbound,
                    evidence_gossip: evidence_inbound,
                    evidence_local: evidence_rx,
                    synced,
                };
                let epochs = EpochState { maker, validators, signing, early: Default::default() };
                let result = rt.block_on(run_driver(Driver::new(engine), io, start, clock, inputs, epochs));
                let _ = exited_tx.send(true);
                result
            })
            .map_err(|source| NodeError::Thread { name: "consensus", source })?;
        tracing::info!(chain = %handle.info.chain_id, engine = %handle.info.engine, storage = %handle.info.storage, height = ledger.head().block.height, "node started");
        Ok(Node { handle, live: Some(live), stop, exited, driver: Some(driver), pruner, tx_gossip, sync })
    }

    /// Whether the driver has stopped (on its own, or by [`Node::shutdown`]).
    pub fn has_stopped(&self) -> bool {
        *self.exited.borrow()
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
        if let Some(s) = self.sync.take() {
            let _ = s.join();
        }
        let result = match self.driver.take() {
            Some(t) => match t.join() {
                Ok(r) => r.map_err(NodeError::from),
                Err(_) => Err(NodeError::DriverPanicked),
            },
            None => Ok(()),
        };
        // Every thread holding the ledger has been joined: this closes the store.
        self.live = None;
        result
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Err(e) = self.stop_driver() {
            tracing::error!(error = %e, "node stopped with an error");
        }
    }
}

/// The modules genesis pins, from the registry, each at its pinned version with the other
/// versions the registry carries (upgrades may switch to them): a node that would run other
/// code than its peers refuses to start (before anything is opened on disk).
fn pinned_modules(genesis: &Genesis, registry: &Registry) -> Result<Vec<PinnedModule>, NodeError> {
    let mut modules = Vec::with_capacity(genesis.modules.len());
    for pinned in &genesis.modules {
        // An unknown name is the registry's error, which lists what the build has.
        registry.modules.get(&pinned.name)?;
        let (mut at_genesis, mut others) = (None, Vec::new());
        for module in registry.module_versions(&pinned.name) {
            if module.name() != pinned.name {
                return Err(NodeError::ModuleVersion {
                    name: pinned.name.clone(),
                    pinned: pinned.version,
                    found: format!("{} version {}", module.name(), module.version()),
                });
            }
            if module.version() == pinned.version {
                at_genesis = Some(module);
            } else {
                others.push(module);
            }
        }
        let Some(at_genesis) = at_genesis else {
            let versions: Vec<String> = others.iter().map(|m| m.version().to_string()).collect();
            return Err(NodeError::ModuleVersion {
                name: pinned.name.clone(),
                pinned: pinned.version,
                found: format!("{} version{} {}", pinned.name, if versions.len() == 1 { "" } else { "s" }, versions.join(", ")),
            });
        };
        modules.push(PinnedModule { at_genesis, others });
    }
    Ok(modules)
}

/// A module genesis pins, at its genesis version, with the other versions the node carries.
struct PinnedModule {
    at_genesis: Arc<dyn crate::module::RuntimeModule>,
    others: Vec<Arc<dyn crate::module::RuntimeModule>>,
}

/// A key-less instance of the chain's engine, for `verify_certificate`.
type Verifier = Box<dyn ConsensusEngine>;

/// Runs state sync when `store` holds no chain yet (or an unfinished state sync), on its own
/// thread and runtime (this may be called from inside another runtime). Hands the verifier
/// back for block sync.
fn state_sync_if_empty(
    config: &NodeConfig,
    genesis: &Genesis,
    maker: &EngineMaker,
    store: &dyn KvStore,
    network: Option<&dyn Network>,
    verifier: Option<Verifier>,
    inbox: Option<&mut mpsc::Receiver<InboundMessage>>,
) -> Result<(Option<Verifier>, Option<StateSyncReport>), NodeError> {
    if crate::ledger::has_chain(store)? {
        tracing::info!("state sync skipped: the data directory already holds a chain");
        return Ok((verifier, None));
    }
    let (Some(network), Some(verifier), Some(inbox)) = (network, verifier, inbox) else {
        return Err(StateSyncError::Unavailable.into());
    };
    let genesis_hash = Ledger::genesis_block(genesis).hash();
    let timeout = std::time::Duration::from_secs(config.sync.state_sync_timeout_secs);
    let make = |ctx: &EngineContext| (maker.factory)(ctx, &maker.settings).map_err(|e| e.to_string());
    let epochs = genesis.epochs.is_some().then_some((genesis, &make as super::state_sync::MakeVerifier<'_>));
    let joined = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("aether-state-sync".into())
            .spawn_scoped(scope, move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
                let job = StateSync {
                    network,
                    inbox,
                    verifier: verifier.as_ref(),
                    store,
                    chain_id: &genesis.chain_id,
                    genesis_hash,
                    timeout,
                    epochs,
                };
                let result = rt.block_on(job.run());
                Ok::<_, std::io::Error>((result, verifier))
            })
            .map(|t| t.join())
    });
    match joined {
        Err(source) | Ok(Ok(Err(source))) => Err(NodeError::Thread { name: "state sync", source }),
        Ok(Err(_)) => Err(StateSyncError::Panicked.into()),
        Ok(Ok(Ok((result, verifier)))) => Ok((Some(verifier), Some(result?))),
    }
}

fn subscribe(network: &dyn Network, topic: &'static str) -> Result<mpsc::Receiver<InboundMessage>, NodeError> {
    network.subscribe(topic).map_err(|source| NodeError::Subscribe { topic, source })
}
