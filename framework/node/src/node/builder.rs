//! [`NodeBuilder`]: a node assembled one slot at a time.
//!
//! Each slot (consensus, storage, mempool policy, VM, network) comes from one of three places:
//! - **config**, the default: the preset's defaults, then `aether.toml`, `AETHER_*` variables
//!   and `--set` overrides name a registered plugin ([`NodeBuilder::preset`],
//!   [`NodeBuilder::config_source`]) — `aether run` is exactly this;
//! - **a registered name** chosen in code ([`NodeBuilder::plugin`]) or **typed settings**
//!   ([`NodeBuilder::settings`]: the plugin's settings struct, checked by the compiler);
//! - **an instance** ([`NodeBuilder::storage`], [`NodeBuilder::mempool_policy`],
//!   [`NodeBuilder::vm`], [`NodeBuilder::network`]).
//!
//! What code sets is the top layer, above the command line: a chain builder who wants an
//! operator-overridable default extends the preset's defaults instead
//! ([`Preset::with_defaults`]). A slot given twice in code is an error at
//! [`NodeBuilder::launch`] naming the slot and both choices, never a silent "last one wins".
//!
//! ```
//! use aether_node::node::NodeBuilder;
//! use aether_node::builtins::Preset;
//! use aether_node::mempool::Fifo;
//! use aether_node::solo::SoloSettings;
//! use aether_primitives::types::*;
//! use aether_storage_memory::MemoryStore;
//! let key = Keypair::from_seed([1; 32]);
//! let genesis = Genesis {
//!     chain_id: "demo".into(),
//!     genesis_time_ms: 0, modules: vec![], epochs: None,
//!     accounts: vec![],
//!     validators: vec![GenesisValidator { name: "v0".into(), identity: key.public(), consensus_key: key.public().0.to_vec(), stake: 1 }],
//! };
//! let node = NodeBuilder::new(genesis)
//!     .validator_key(key)
//!     .settings(SoloSettings { block_interval_ms: 200, ..SoloSettings::default() })
//!     .storage(MemoryStore::new())
//!     .mempool_policy(Fifo)
//!     .launch()
//!     .unwrap();
//! assert_eq!(node.handle().info().mempool_policy, "fifo");
//! node.shutdown().unwrap();
//! ```
//!
//! A slot given twice names both choices:
//! ```
//! # use aether_node::node::NodeBuilder;
//! # use aether_primitives::types::*;
//! # use aether_node::mempool::{Fifo, FeePriority};
//! # let genesis = Genesis { chain_id: "demo".into(), genesis_time_ms: 0, modules: vec![], epochs: None, accounts: vec![], validators: vec![] };
//! let err = NodeBuilder::new(genesis).mempool_policy(Fifo).mempool_policy(FeePriority).launch().err().unwrap();
//! assert_eq!(
//!     err.to_string(),
//!     "the mempool policy was given twice to the node builder: first instance \"fifo\", then instance \"fee\"; give each slot once"
//! );
//! ```
//!
//! A misspelt setting does not compile:
//! ```compile_fail,E0560
//! # use aether_node::node::NodeBuilder;
//! # use aether_node::solo::SoloSettings;
//! # let genesis: aether_primitives::types::Genesis = unimplemented!();
//! NodeBuilder::new(genesis).settings(SoloSettings { block_intervl_ms: 200, ..SoloSettings::default() });
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::{open_network, Clock, Node, NodeError, NodeMetrics, SystemClock};
use crate::builtins::Preset;
use crate::config::{self, ConfigError, ConfigSource, NodeConfig};
use crate::mempool::OrderingPolicy;
use crate::network::Network;
use crate::registry::{PluginConfig, Registry, SlotKind};
use crate::storage::KvStore;
use crate::types::{Genesis, Keypair};
use crate::vm::VmBackend;

/// Why [`NodeBuilder`] could not assemble or start a node.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the {slot} was given twice to the node builder: first {first}, then {second}; give each slot once")]
    SlotGivenTwice { slot: SlotKind, first: String, second: String },
    #[error("no {slot} for the node: give one with NodeBuilder::{method}, or start from a preset (NodeBuilder::preset)")]
    MissingSlot { slot: SlotKind, method: &'static str },
    #[error("cannot encode the settings of {plugin}: {reason}")]
    Settings { plugin: String, reason: String },
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    #[error("the [network] section needs this node's network identity: give NodeBuilder::validator_key or NodeBuilder::node_key")]
    NoNetworkIdentity,
    #[error(transparent)]
    Node(#[from] NodeError),
}

/// The lowest layer under every builder's config: launch takes the genesis as a value, so its
/// file path is never read.
const BASE_LAYER: &str = "[chain]\ngenesis = \"genesis.json\"\n";

type Registration = Box<dyn FnOnce(&mut Registry) + Send>;
type Edit = Box<dyn FnOnce(&mut NodeConfig) + Send>;

/// Assembles a node one slot at a time; see the [module docs](self).
#[must_use = "a builder does nothing until `launch`"]
pub struct NodeBuilder {
    genesis: Genesis,
    preset: Option<Preset>,
    source: ConfigSource,
    code: Vec<(String, serde_json::Value)>,
    registrations: Vec<Registration>,
    /// Applied after `registrations`, so a `register` call never replaces an instance.
    instances: Vec<Registration>,
    edits: Vec<Edit>,
    chosen: BTreeMap<SlotKind, String>,
    error: Option<BuildError>,
    validator_key: Option<Keypair>,
    node_key: Option<Keypair>,
    network: Option<Arc<dyn Network>>,
    clock: Option<Arc<dyn Clock>>,
    metrics: Option<Arc<NodeMetrics>>,
}

impl NodeBuilder {
    /// A builder for a node of `genesis` with only the built-in plugins (the `solo` engine, the
    /// `fee` and `fifo` policies) and no config beyond what is set on it.
    pub fn new(genesis: Genesis) -> NodeBuilder {
        NodeBuilder {
            genesis,
            preset: None,
            source: ConfigSource::default(),
            code: Vec::new(),
            registrations: Vec::new(),
            instances: Vec::new(),
            edits: Vec::new(),
            chosen: BTreeMap::new(),
            error: None,
            validator_key: None,
            node_key: None,
            network: None,
            clock: None,
            metrics: None,
        }
    }

    /// Starts from `preset`: its plugins, and its defaults as the lowest config layer.
    pub fn preset(mut self, preset: &Preset) -> NodeBuilder {
        self.preset = Some(preset.clone());
        self
    }

    /// Reads config from `source` (file, environment, command-line overrides) above the
    /// preset's defaults, as `aether run` does.
    pub fn config_source(mut self, source: ConfigSource) -> NodeBuilder {
        self.source = source;
        self
    }

    /// Registers more plugins (a plugin crate's `register`), selectable by name.
    pub fn register(mut self, register: impl FnOnce(&mut Registry) + Send + 'static) -> NodeBuilder {
        self.registrations.push(Box::new(register));
        self
    }

    /// Edits the resolved config before launch (`[node]`, `[mempool]`, `[rpc]`, `[sync]`,
    /// retention, `[network]` peers): typed fields, checked by the compiler.
    pub fn configure(mut self, edit: impl FnOnce(&mut NodeConfig) + Send + 'static) -> NodeBuilder {
        self.edits.push(Box::new(edit));
        self
    }

    /// Where the database and node state live (`[node] data_dir`).
    pub fn data_dir(self, dir: impl Into<PathBuf>) -> NodeBuilder {
        let dir = dir.into();
        self.configure(move |c| c.node.data_dir = dir)
    }

    /// This node validates with `key` (it must be in the genesis validator set).
    pub fn validator_key(mut self, key: Keypair) -> NodeBuilder {
        self.validator_key = Some(key);
        self
    }

    /// A full node's network identity (a validator's is its validator key).
    pub fn node_key(mut self, key: Keypair) -> NodeBuilder {
        self.node_key = Some(key);
        self
    }

    /// Chooses the slot's plugin by its registered name.
    pub fn plugin(self, slot: SlotKind, name: &str) -> NodeBuilder {
        let how = format!("plugin {name:?}");
        self.choose(slot, how, vec![(selector_key(slot), serde_json::Value::String(name.to_string()))])
    }

    /// Chooses plugin `S::NAME` for slot `S::SLOT` with these settings: every field of `S`
    /// overrides its key in the `[SLOT.NAME]` section (tables merge key by key, so a map entry
    /// config has and `S` lacks remains).
    pub fn settings<S: PluginConfig>(self, settings: S) -> NodeBuilder {
        let how = format!("settings for {:?}", S::NAME);
        match serde_json::to_value(&settings) {
            Ok(value) => self.choose(
                S::SLOT,
                how,
                vec![
                    (selector_key(S::SLOT), serde_json::Value::String(S::NAME.to_string())),
                    (format!("{}.{}", S::SLOT.section(), S::NAME), value),
                ],
            ),
            Err(e) => self.fail(BuildError::Settings { plugin: S::NAME.to_string(), reason: e.to_string() }),
        }
    }

    /// Uses this store (already open) instead of opening one from config. Shutdown releases
    /// it once no other copy is held.
    pub fn storage(self, store: impl KvStore) -> NodeBuilder {
        self.storage_shared(Arc::new(store))
    }

    /// [`NodeBuilder::storage`] with a store the caller keeps a handle to.
    pub fn storage_shared(self, store: Arc<dyn KvStore>) -> NodeBuilder {
        let name = store.backend_name();
        self.instance(SlotKind::Storage, name, move |r| {
            r.storage.register(name, "an instance given to the node builder", Box::new(move |_, _| Ok(store.clone())))
        })
    }

    /// Orders the mempool with this policy.
    pub fn mempool_policy(self, policy: impl OrderingPolicy) -> NodeBuilder {
        let policy: Arc<dyn OrderingPolicy> = Arc::new(policy);
        let name = policy.name();
        self.instance(SlotKind::MempoolPolicy, name, move |r| {
            r.mempool_policy.register(name, "an instance given to the node builder", Box::new(move |_| Ok(policy.clone())))
        })
    }

    /// Runs contracts on this VM backend.
    pub fn vm(self, vm: impl VmBackend) -> NodeBuilder {
        let vm: Arc<dyn VmBackend> = Arc::new(vm);
        let name = vm.name();
        self.instance(SlotKind::Vm, name, move |r| {
            r.vm.register(name, "an instance given to the node builder", Box::new(move |_, _| Ok(vm.clone())))
        })
    }

    /// Makes `module` available to genesis (`modules` pins which run, at which version). Not
    /// a slot choice: a chain runs many modules. Giving several versions of one module makes
    /// each available (genesis pins one, upgrades switch to another); the last given is the
    /// one `aether plugins` lists.
    pub fn module(mut self, module: impl crate::module::RuntimeModule) -> NodeBuilder {
        let module: Arc<dyn crate::module::RuntimeModule> = Arc::new(module);
        let name = module.name();
        self.instances.push(Box::new(move |r: &mut Registry| {
            let version = module.clone();
            r.register_module_version(Box::new(move || version.clone()));
            r.modules.register(name, "an instance given to the node builder", Box::new(move || module.clone()))
        }));
        self
    }

    /// Talks to peers over this network (already started) instead of the one `[network]`
    /// configures. Required with more than one validator unless config has `[network]`.
    pub fn network(mut self, network: Arc<dyn Network>) -> NodeBuilder {
        if let Some(first) = self.chosen.get(&SlotKind::Network) {
            let first = first.clone();
            return self.fail(BuildError::SlotGivenTwice { slot: SlotKind::Network, first, second: "an instance".into() });
        }
        self.chosen.insert(SlotKind::Network, "an instance".into());
        self.network = Some(network);
        self
    }

    /// The clock consensus timers run on (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> NodeBuilder {
        self.clock = Some(clock);
        self
    }

    /// Metrics to record into (default: new ones); share them with an RPC server bound
    /// before launch.
    pub fn metrics(mut self, metrics: Arc<NodeMetrics>) -> NodeBuilder {
        self.metrics = Some(metrics);
        self
    }

    /// Resolves config and plugins without starting anything: the config can be read (e.g. to
    /// bind an RPC server) before [`PreparedNode::launch`].
    pub fn prepare(self) -> Result<PreparedNode, BuildError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        // Without a preset or any config source, nothing else can name these slots.
        if self.preset.is_none() && self.source.file.is_none() && !self.source.env && self.source.overrides.is_empty() {
            for (slot, method) in [(SlotKind::Consensus, "settings"), (SlotKind::Storage, "storage")] {
                if !self.chosen.contains_key(&slot) {
                    return Err(BuildError::MissingSlot { slot, method });
                }
            }
        }
        let mut registry = match &self.preset {
            Some(p) => p.registry(),
            None => crate::builtins::registry(),
        };
        for register in self.registrations.into_iter().chain(self.instances) {
            register(&mut registry);
        }
        let mut defaults = vec![BASE_LAYER];
        if let Some(p) = &self.preset {
            defaults.extend(p.defaults());
        }
        let mut config = config::load_layers(&defaults, &self.source, &self.code, &registry)?;
        for edit in self.edits {
            edit(&mut config);
        }
        Ok(PreparedNode {
            config,
            registry,
            genesis: self.genesis,
            validator_key: self.validator_key,
            node_key: self.node_key,
            network: self.network,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock::default())),
            metrics: self.metrics.unwrap_or_default(),
        })
    }

    /// Assembles and starts the node.
    pub fn launch(self) -> Result<Node, BuildError> {
        self.prepare()?.launch()
    }

    fn instance(self, slot: SlotKind, name: &'static str, register: impl FnOnce(&mut Registry) + Send + 'static) -> NodeBuilder {
        let mut b = self.choose(slot, format!("instance {name:?}"), vec![(selector_key(slot), serde_json::Value::String(name.into()))]);
        b.instances.push(Box::new(register));
        b
    }

    fn choose(mut self, slot: SlotKind, how: String, values: Vec<(String, serde_json::Value)>) -> NodeBuilder {
        if let Some(first) = self.chosen.get(&slot) {
            let first = first.clone();
            return self.fail(BuildError::SlotGivenTwice { slot, first, second: how });
        }
        self.chosen.insert(slot, how);
        self.code.extend(values);
        self
    }

    /// Keeps the first error; `launch` reports it.
    fn fail(mut self, error: BuildError) -> NodeBuilder {
        self.error.get_or_insert(error);
        self
    }
}

fn selector_key(slot: SlotKind) -> String {
    format!("{}.{}", slot.section(), slot.selector())
}

/// A node whose config and plugins are resolved, not yet started.
pub struct PreparedNode {
    config: NodeConfig,
    registry: Registry,
    genesis: Genesis,
    validator_key: Option<Keypair>,
    node_key: Option<Keypair>,
    network: Option<Arc<dyn Network>>,
    clock: Arc<dyn Clock>,
    metrics: Arc<NodeMetrics>,
}

impl PreparedNode {
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    pub fn metrics(&self) -> &Arc<NodeMetrics> {
        &self.metrics
    }

    /// The validator key given to the builder, if any.
    pub fn validator_key(&self) -> Option<&Keypair> {
        self.validator_key.as_ref()
    }

    /// Sets the validator key after resolving (e.g. read from the file the config names).
    pub fn with_validator_key(mut self, key: Keypair) -> PreparedNode {
        self.validator_key = Some(key);
        self
    }

    /// Sets a full node's network identity after resolving.
    pub fn with_node_key(mut self, key: Keypair) -> PreparedNode {
        self.node_key = Some(key);
        self
    }

    /// Whether launch will open the configured network and has no identity for it yet.
    pub fn needs_network_identity(&self) -> bool {
        self.network.is_none() && self.config.network.is_some() && self.validator_key.is_none() && self.node_key.is_none()
    }

    /// Opens the configured network (unless one was given), the store and the ledger, and
    /// starts the node.
    pub fn launch(self) -> Result<Node, BuildError> {
        let network = match self.network {
            Some(n) => Some(n),
            None if self.config.network.is_some() => {
                let identity = self.validator_key.as_ref().or(self.node_key.as_ref()).ok_or(BuildError::NoNetworkIdentity)?;
                open_network(&self.config, &self.registry, &self.genesis, identity)?
            }
            None => None,
        };
        Ok(Node::start(&self.config, &self.registry, &self.genesis, self.validator_key, self.clock, self.metrics, network)?)
    }
}
