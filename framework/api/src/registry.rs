//! The plugin registry: for each slot, factories by name.
//!
//! A preset fills a [`Registry`]; config then names one plugin per slot
//! (`[consensus] engine = "solo"`), and the node asks the registry for it. Registering a
//! name twice replaces the earlier factory, so a chain builder can override one plugin of a
//! preset without touching the rest.
//!
//! ```
//! use aether_api::registry::{PluginSettings, Registry};
//! use aether_api::mempool::OrderingPolicy;
//! use aether_primitives::types::SignedTransaction;
//! use std::sync::Arc;
//!
//! struct Lifo;
//! impl OrderingPolicy for Lifo {
//!     fn name(&self) -> &'static str { "lifo" }
//!     fn priority(&self, _: &SignedTransaction, seq: u64) -> u128 { seq as u128 }
//! }
//! let mut registry = Registry::new();
//! registry.mempool_policy.register("lifo", "newest first", Box::new(|_| Ok(Arc::new(Lifo) as Arc<dyn OrderingPolicy>)));
//! let policy = (registry.mempool_policy.get("lifo").unwrap().factory)(&PluginSettings::empty("mempool")).unwrap();
//! assert_eq!(policy.name(), "lifo");
//! let err = registry.consensus.get("pbft").err().unwrap();
//! assert_eq!(err.to_string(), r#"unknown consensus engine "pbft" (key `consensus.engine`); known: none in this build"#);
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::consensus::{ConsensusEngine, EngineContext};
use crate::mempool::OrderingPolicy;
use crate::module::RuntimeModule;
use crate::network::{Network, NetworkContext};
use crate::storage::{KvStore, StorageContext};
use crate::types::Keypair;
use crate::vm::{VmBackend, VmContext};

/// The kinds of plugin a node is assembled from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SlotKind {
    Consensus,
    Storage,
    MempoolPolicy,
    Vm,
    Network,
    /// Runtime modules: many per chain, chosen by genesis (`modules`), not by config.
    Module,
}

impl SlotKind {
    /// The config section that selects this slot's plugin.
    pub fn section(self) -> &'static str {
        match self {
            SlotKind::Consensus => "consensus",
            SlotKind::Storage => "storage",
            SlotKind::MempoolPolicy => "mempool",
            SlotKind::Vm => "vm",
            SlotKind::Network => "network",
            SlotKind::Module => "genesis",
        }
    }
    /// The key in that section naming the plugin.
    pub fn selector(self) -> &'static str {
        match self {
            SlotKind::Consensus => "engine",
            SlotKind::Storage | SlotKind::Vm | SlotKind::Network => "backend",
            SlotKind::Module => "modules",
            SlotKind::MempoolPolicy => "policy",
        }
    }
    fn noun(self) -> &'static str {
        match self {
            SlotKind::Consensus => "consensus engine",
            SlotKind::Storage => "storage backend",
            SlotKind::MempoolPolicy => "mempool policy",
            SlotKind::Vm => "VM backend",
            SlotKind::Network => "network backend",
            SlotKind::Module => "runtime module",
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
    /// The section's keys and values (a JSON object; the config loader converts its layers).
    pub value: serde_json::Value,
}

impl PluginSettings {
    pub fn empty(section: impl Into<String>) -> PluginSettings {
        PluginSettings { section: section.into(), value: serde_json::Value::Object(serde_json::Map::new()) }
    }

    /// Deserializes the section. Plugins use `#[serde(deny_unknown_fields, default)]` types so
    /// a misspelt key is an error that names it.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, PluginError> {
        T::deserialize(&self.value).map_err(|e| PluginError::Settings { plugin: format!("[{}]", self.section), reason: e.to_string() })
    }
}

/// A plugin's typed settings: the section `[SLOT.NAME]` as a Rust value. Implemented by each
/// plugin's settings type, so a chain builder sets them with the compiler checking every field
/// (`NodeBuilder::settings` in `aether-node`) instead of writing `"consensus.hotstuff.x"`
/// strings. The value must serialize to exactly what the plugin's factory parses back.
pub trait PluginConfig: serde::Serialize {
    /// The slot the plugin fills.
    const SLOT: SlotKind;
    /// The name the plugin registers under (the value of `SLOT.selector`).
    const NAME: &'static str;
}

/// Builds an engine for one epoch. Shared (`Arc`): the node keeps it to build the next
/// epoch's engine from the same factory.
pub type ConsensusFactory = Arc<dyn Fn(&EngineContext, &PluginSettings) -> Result<Box<dyn ConsensusEngine>, PluginError> + Send + Sync>;
pub type StorageFactory = Box<dyn Fn(&StorageContext, &PluginSettings) -> Result<Arc<dyn KvStore>, PluginError> + Send + Sync>;
pub type PolicyFactory = Box<dyn Fn(&PluginSettings) -> Result<Arc<dyn OrderingPolicy>, PluginError> + Send + Sync>;
/// Builds a network plugin; it binds its listen addresses before returning (a port in use is
/// an error here, not later) and runs its own I/O threads until the last handle is dropped.
pub type NetworkFactory = Box<dyn Fn(&NetworkContext, &PluginSettings) -> Result<Arc<dyn Network>, PluginError> + Send + Sync>;
pub type VmFactory = Box<dyn Fn(&VmContext, &PluginSettings) -> Result<Arc<dyn VmBackend>, PluginError> + Send + Sync>;
/// Makes a runtime module (modules are stateless: one instance serves every call).
pub type ModuleFactory = Box<dyn Fn() -> Arc<dyn RuntimeModule> + Send + Sync>;

/// How an engine derives, from a validator's identity key, the consensus key genesis lists for
/// it (`aether init` writes it). Engines that register none use the identity public key.
pub type ConsensusKeyFn = fn(&Keypair) -> Vec<u8>;

/// How an engine checks a consensus key a validator presents (for HotStuff: decodes the BLS
/// key and VRF key and verifies the proof of possession). Engines that register none accept
/// any key of 1 to 1,024 bytes. Must be deterministic: block execution runs it.
pub type ConsensusKeyCheck = fn(&[u8]) -> Result<(), String>;

/// How an engine reads which validators signed a certificate that a block header carries for
/// its parent (`Header::parent_certificate`): `validators` is the size of the set of the
/// parent's epoch, and the answer is indices into that set. `Ok` with no indices means the
/// certificate names no signers (a chain's or an epoch's first block, whose parent is the
/// engine's genesis). Must be pure and deterministic (block execution runs it on every node)
/// and must not panic on any bytes (a panic is treated as an error). It only *reads*: whether
/// the certificate is valid is checked by honest validators before they vote for the block
/// (`ConsensusEngine::verify_parent_certificate`). Engines that register none name no signers.
pub type CertificateSigners = fn(certificate: &[u8], validators: usize) -> Result<Vec<crate::consensus::ValidatorIndex>, String>;

/// The decoder of engines that register none: no certificate names signers.
pub fn no_certificate_signers(_certificate: &[u8], _validators: usize) -> Result<Vec<crate::consensus::ValidatorIndex>, String> {
    Ok(Vec::new())
}

/// The check of engines that register none: a key of 1 to 1,024 bytes.
pub fn accept_any_consensus_key(key: &[u8]) -> Result<(), String> {
    if key.is_empty() || key.len() > 1024 {
        return Err(format!("{} bytes; a consensus key has 1 to 1,024", key.len()));
    }
    Ok(())
}

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
    pub network: Slot<NetworkFactory>,
    /// Runtime modules a chain's genesis may pin (`modules`), by name.
    pub modules: Slot<ModuleFactory>,
    /// Other versions of modules, by name and version, that a chain may upgrade to (or started
    /// from): see [`Registry::register_module_version`].
    module_versions: BTreeMap<(String, u32), ModuleFactory>,
    consensus_keys: BTreeMap<String, ConsensusKeyFn>,
    consensus_key_checks: BTreeMap<String, ConsensusKeyCheck>,
    certificate_signers: BTreeMap<String, CertificateSigners>,
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
            network: Slot::new(SlotKind::Network),
            modules: Slot::new(SlotKind::Module),
            module_versions: BTreeMap::new(),
            consensus_keys: BTreeMap::new(),
            consensus_key_checks: BTreeMap::new(),
            certificate_signers: BTreeMap::new(),
        }
    }

    /// Registers one more version of a module beside the one [`Registry::modules`] holds under
    /// its name (which genesis pins, and which `aether plugins` lists): a node binary built
    /// with versions 1 and 2 of a module runs a chain from genesis on 1 and switches to 2 at
    /// the height governance scheduled. Replaces an earlier registration of the same name and
    /// version.
    pub fn register_module_version(&mut self, factory: ModuleFactory) {
        let module = factory();
        self.module_versions.insert((module.name().to_string(), module.version()), factory);
    }

    /// Every version of module `name` this registry can make, oldest first: the one
    /// [`Registry::modules`] holds and those [`Registry::register_module_version`] added (the
    /// former wins when both have a version).
    pub fn module_versions(&self, name: &str) -> Vec<Arc<dyn RuntimeModule>> {
        let mut by_version: BTreeMap<u32, Arc<dyn RuntimeModule>> = BTreeMap::new();
        for ((_, version), factory) in self.module_versions.range((name.to_string(), 0)..=(name.to_string(), u32::MAX)) {
            by_version.insert(*version, factory());
        }
        if let Ok(entry) = self.modules.get(name) {
            let module = (entry.factory)();
            by_version.insert(module.version(), module);
        }
        by_version.into_values().collect()
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

    /// Registers how engine `name` checks a consensus key (see [`ConsensusKeyCheck`]).
    pub fn register_consensus_key_check(&mut self, name: &str, check: ConsensusKeyCheck) {
        self.consensus_key_checks.insert(name.to_string(), check);
    }

    /// How engine `name` checks consensus keys.
    pub fn consensus_key_check(&self, name: &str) -> ConsensusKeyCheck {
        self.consensus_key_checks.get(name).copied().unwrap_or(accept_any_consensus_key)
    }

    /// Registers how engine `name` reads the signers of a parent certificate (see
    /// [`CertificateSigners`]). An engine that registers one must also check the parent
    /// certificate of every proposal (`ConsensusEngine::verify_parent_certificate`), or modules
    /// would count signers a proposer made up.
    pub fn register_certificate_signers(&mut self, name: &str, decode: CertificateSigners) {
        self.certificate_signers.insert(name.to_string(), decode);
    }

    /// How engine `name` reads the signers of a parent certificate.
    pub fn certificate_signers(&self, name: &str) -> CertificateSigners {
        self.certificate_signers.get(name).copied().unwrap_or(no_certificate_signers)
    }

    /// Names of the registered plugins per slot, for listings and config validation.
    pub fn known(&self, kind: SlotKind) -> Vec<String> {
        match kind {
            SlotKind::Consensus => self.consensus.names(),
            SlotKind::Storage => self.storage.names(),
            SlotKind::MempoolPolicy => self.mempool_policy.names(),
            SlotKind::Vm => self.vm.names(),
            SlotKind::Network => self.network.names(),
            SlotKind::Module => self.modules.names(),
        }
    }

    /// `(slot, name, description)` for every registered plugin.
    pub fn listing(&self) -> Vec<(SlotKind, String, String)> {
        let mut out = Vec::new();
        out.extend(self.consensus.entries().map(|e| (SlotKind::Consensus, e.name.clone(), e.description.clone())));
        out.extend(self.storage.entries().map(|e| (SlotKind::Storage, e.name.clone(), e.description.clone())));
        out.extend(self.mempool_policy.entries().map(|e| (SlotKind::MempoolPolicy, e.name.clone(), e.description.clone())));
        out.extend(self.vm.entries().map(|e| (SlotKind::Vm, e.name.clone(), e.description.clone())));
        out.extend(self.network.entries().map(|e| (SlotKind::Network, e.name.clone(), e.description.clone())));
        out.extend(self.modules.entries().map(|e| (SlotKind::Module, e.name.clone(), e.description.clone())));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::module::{ModuleContext, ModuleError};

    struct Notes(u32);
    impl RuntimeModule for Notes {
        fn name(&self) -> &'static str {
            "notes"
        }
        fn version(&self) -> u32 {
            self.0
        }
        fn call(&self, _: &mut dyn ModuleContext, _: &[u8]) -> Result<Vec<u8>, ModuleError> {
            Ok(vec![])
        }
    }

    #[test]
    fn a_registry_carries_several_versions_of_a_module_oldest_first() {
        let mut registry = Registry::new();
        assert!(registry.module_versions("notes").is_empty());
        registry.modules.register("notes", "version 3", Box::new(|| Arc::new(Notes(3))));
        registry.register_module_version(Box::new(|| Arc::new(Notes(1))));
        registry.register_module_version(Box::new(|| Arc::new(Notes(3))));
        let versions: Vec<u32> = registry.module_versions("notes").iter().map(|m| m.version()).collect();
        assert_eq!(versions, vec![1, 3]);
        assert!(registry.module_versions("other").is_empty());
        // One entry per name in listings.
        assert_eq!(registry.known(SlotKind::Module), vec!["notes".to_string()]);
    }
}
