//! The plugin registry: for each slot, factories by name.
//!
//! A preset fills a [`Registry`]; config then names one plugin per slot
//! (`[consensus] engine = "solo"`), and the node asks the registry for it. Registering a
//! name twice replaces the earlier factory, so a chain builder can override one plugin of a
//! preset without touching the rest.
//!
//! ```
//! use aether_framework::registry::{Registry, SlotKind};
//! let registry = Registry::with_builtins();
//! assert!(registry.consensus.get("solo").is_ok());
//! let err = registry.consensus.get("pbft").err().unwrap();
//! assert_eq!(err.to_string(), r#"unknown consensus engine "pbft" (key `consensus.engine`); known: solo"#);
//! # let _ = SlotKind::Consensus;
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::consensus::solo::{SoloEngine, SoloSettings};
use crate::consensus::{ConsensusEngine, EngineContext};
use crate::mempool::{FeePriority, Fifo, OrderingPolicy};
use crate::storage::{KvStore, Schema};
use crate::types::Keypair;
use crate::vm::VmBackend;

/// The kinds of plugin a node is assembled from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SlotKind {
    Consensus,
    Storage,
    MempoolPolicy,
    Vm,
}

impl SlotKind {
    /// The config section that selects this slot's plugin.
    pub fn section(self) -> &'static str {
        match self {
            SlotKind::Consensus => "consensus",
            SlotKind::Storage => "storage",
            SlotKind::MempoolPolicy => "mempool",
            SlotKind::Vm => "vm",
        }
    }
    /// The key in that section naming the plugin.
    pub fn selector(self) -> &'static str {
        match self {
            SlotKind::Consensus => "engine",
            SlotKind::Storage | SlotKind::Vm => "backend",
            SlotKind::MempoolPolicy => "policy",
        }
    }
    fn noun(self) -> &'static str {
        match self {
            SlotKind::Consensus => "consensus engine",
            SlotKind::Storage => "storage backend",
            SlotKind::MempoolPolicy => "mempool policy",
            SlotKind::Vm => "VM backend",
        }
    }
}

impl fmt::Display for SlotKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.noun())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("unknown {slot} {name:?} (key `{}.{}`); known: {}", slot.section(), slot.selector(), if known.is_empty() { "none in this build".to_string() } else { known.join(", ") })]
    UnknownPlugin { slot: SlotKind, name: String, known: Vec<String> },
}

/// Why a plugin could not be built from its settings.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("invalid settings for {plugin}: {reason}")]
    Settings { plugin: String, reason: String },
    #[error("{plugin} failed to start: {reason}")]
    Start { plugin: String, reason: String },
}

/// A plugin's own config section (e.g. `[consensus.solo]`), as parsed from the layered config.
#[derive(Debug, Clone)]
pub struct PluginSettings {
    /// Dotted path of the section, for error messages.
    pub section: String,
    pub value: figment::value::Value,
}

impl PluginSettings {
    pub fn empty(section: impl Into<String>) -> PluginSettings {
        PluginSettings { section: section.into(), value: figment::value::Value::from(figment::value::Dict::new()) }
    }

    /// Deserializes the section. Plugins use `#[serde(deny_unknown_fields, default)]` types so
    /// a misspelt key is an error that names it.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, PluginError> {
        self.value.deserialize::<T>().map_err(|e| PluginError::Settings { plugin: format!("[{}]", self.section), reason: e.to_string() })
    }
}

/// Where a storage backend keeps its files.
#[derive(Debug, Clone)]
pub struct StorageContext {
    pub path: PathBuf,
    pub schema: Schema,
}

pub type ConsensusFactory = Box<dyn Fn(&EngineContext, &PluginSettings) -> Result<Box<dyn ConsensusEngine>, PluginError> + Send + Sync>;
pub type StorageFactory = Box<dyn Fn(&StorageContext, &PluginSettings) -> Result<Arc<dyn KvStore>, PluginError> + Send + Sync>;
pub type PolicyFactory = Box<dyn Fn(&PluginSettings) -> Result<Arc<dyn OrderingPolicy>, PluginError> + Send + Sync>;
pub type VmFactory = Box<dyn Fn(&VmContext, &PluginSettings) -> Result<Arc<dyn VmBackend>, PluginError> + Send + Sync>;

/// What a VM backend is given besides its settings.
#[derive(Debug, Clone)]
pub struct VmContext {
    /// Where the backend may keep the artifacts it compiled itself (created on first use), so
    /// a module evicted from memory or a restart reloads instead of recompiling.
    pub artifact_dir: Option<PathBuf>,
}
/// How an engine derives, from a validator's identity key, the consensus key genesis lists for
/// it (`aether init` writes it). Engines that register none use the identity public key.
pub type ConsensusKeyFn = fn(&Keypair) -> Vec<u8>;

pub struct Entry<F> {
    pub name: String,
    pub description: String,
    pub factory: F,
}

/// The plugins of one slot, by name.
pub struct Slot<F> {
    kind: SlotKind,
    entries: BTreeMap<String, Entry<F>>,
}

impl<F> Slot<F> {
    fn new(kind: SlotKind) -> Self {
        Slot { kind, entries: BTreeMap::new() }
    }

    pub fn kind(&self) -> SlotKind {
        self.kind
    }

    /// Registers (or replaces) `name`.
    pub fn register(&mut self, name: &str, description: &str, factory: F) {
        self.entries.insert(name.to_string(), Entry { name: name.to_string(), description: description.to_string(), factory });
    }

    pub fn get(&self, name: &str) -> Result<&Entry<F>, RegistryError> {
        self.entries.get(name).ok_or_else(|| RegistryError::UnknownPlugin { slot: self.kind, name: name.to_string(), known: self.names() })
    }

    pub fn names(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry<F>> {
        self.entries.values()
    }
}

pub struct Registry {
    pub consensus: Slot<ConsensusFactory>,
    pub storage: Slot<StorageFactory>,
    pub mempool_policy: Slot<PolicyFactory>,
    pub vm: Slot<VmFactory>,
    consensus_keys: BTreeMap<String, ConsensusKeyFn>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry {
            consensus: Slot::new(SlotKind::Consensus),
            storage: Slot::new(SlotKind::Storage),
            mempool_policy: Slot::new(SlotKind::MempoolPolicy),
            vm: Slot::new(SlotKind::Vm),
            consensus_keys: BTreeMap::new(),
        }
    }

    /// Registers how engine `name` derives a validator's consensus key (see [`ConsensusKeyFn`]).
    pub fn register_consensus_key(&mut self, name: &str, derive: ConsensusKeyFn) {
        self.consensus_keys.insert(name.to_string(), derive);
    }

    /// The consensus key genesis should list for `identity` under engine `name`.
    pub fn consensus_key(&self, name: &str, identity: &Keypair) -> Vec<u8> {
        match self.consensus_keys.get(name) {
            Some(derive) => derive(identity),
            None => identity.public().0.to_vec(),
        }
    }

    /// A registry holding the plugins that live in the framework itself: the `solo` engine
    /// and the `fee` and `fifo` mempool policies.
    pub fn with_builtins() -> Registry {
        let mut r = Registry::new();
        r.consensus.register(
            SoloEngine::NAME,
            "one validator seals a block every interval, or early when transactions wait",
            Box::new(|ctx, settings| {
                let s: SoloSettings = settings.parse()?;
                let engine =
                    SoloEngine::from_context(ctx, s).map_err(|e| PluginError::Start { plugin: "solo".into(), reason: e.to_string() })?;
                Ok(Box::new(engine) as Box<dyn ConsensusEngine>)
            }),
        );
        r.mempool_policy.register(
            "fee",
            "highest fee first, then arrival order",
            Box::new(|_| Ok(Arc::new(FeePriority) as Arc<dyn OrderingPolicy>)),
        );
        r.mempool_policy.register("fifo", "arrival order regardless of fee", Box::new(|_| Ok(Arc::new(Fifo) as Arc<dyn OrderingPolicy>)));
        r
    }

    /// Names of the registered plugins per slot, for listings and config validation.
    pub fn known(&self, kind: SlotKind) -> Vec<String> {
        match kind {
            SlotKind::Consensus => self.consensus.names(),
            SlotKind::Storage => self.storage.names(),
            SlotKind::MempoolPolicy => self.mempool_policy.names(),
            SlotKind::Vm => self.vm.names(),
        }
    }

    /// `(slot, name, description)` for every registered plugin.
    pub fn listing(&self) -> Vec<(SlotKind, String, String)> {
        let mut out = Vec::new();
        out.extend(self.consensus.entries().map(|e| (SlotKind::Consensus, e.name.clone(), e.description.clone())));
        out.extend(self.storage.entries().map(|e| (SlotKind::Storage, e.name.clone(), e.description.clone())));
        out.extend(self.mempool_policy.entries().map(|e| (SlotKind::MempoolPolicy, e.name.clone(), e.description.clone())));
        out.extend(self.vm.entries().map(|e| (SlotKind::Vm, e.name.clone(), e.description.clone())));
        out
    }
}

/// A named set of plugins with default settings: what `aether run --preset NAME` runs.
pub struct Preset {
    pub name: &'static str,
    pub description: &'static str,
    /// Default settings as TOML: the lowest config layer.
    pub defaults: &'static str,
    /// Registers the preset's plugins.
    pub register: fn(&mut Registry),
}

impl Preset {
    pub fn registry(&self) -> Registry {
        let mut r = Registry::with_builtins();
        (self.register)(&mut r);
        r
    }
}
