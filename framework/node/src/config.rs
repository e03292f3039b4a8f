//! Layered node configuration (figment): preset defaults < `aether.toml` < `AETHER_*`
//! environment variables < command-line overrides.
//!
//! Every section is strict: an unknown section or key, a value of the wrong type, or a plugin
//! name the registry does not know is an error naming the key, the value and what is
//! accepted — reported before anything is opened on disk.
//!
//! Environment variables use `__` between path segments:
//! `AETHER_CONSENSUS__ENGINE=solo`, `AETHER_RPC__LISTEN=0.0.0.0:9944`.
//!
//! ```
//! use aether_node::config::{load, ConfigSource};
//! let defaults = r#"
//!     [chain]
//!     genesis = "genesis.json"
//!     [consensus]
//!     engine = "solo"
//!     [storage]
//!     backend = "memory"
//! "#;
//! let mut registry = aether_node::builtins::registry();
//! # registry.storage.register("memory", "", Box::new(|_, _| unreachable!()));
//! let source = ConfigSource { overrides: vec![("consensus.engine".into(), "pbft".into())], ..ConfigSource::default() };
//! let err = load(defaults, &source, &registry).unwrap_err();
//! assert!(err.to_string().contains(r#"unknown consensus engine "pbft""#));
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::Value;
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::mempool::MempoolConfig;
use crate::network::{PeerAddress, PeerId};
use crate::registry::{PluginSettings, Registry, RegistryError, SlotKind};

/// Where configuration comes from, beyond the preset's defaults.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    /// `aether.toml`. Must exist if given. Relative paths inside it resolve against its folder.
    pub file: Option<PathBuf>,
    /// Read `AETHER_<SECTION>__<KEY>` variables.
    pub env: bool,
    /// `key.path=value` pairs from the command line; values are TOML (`500`, `true`,
    /// `"text"`), or a bare string when they do not parse as TOML.
    pub overrides: Vec<(String, String)>,
    /// Folder that relative paths resolve against when there is no file (default: current).
    pub base_dir: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    UnknownPlugin(#[from] RegistryError),
    #[error("unknown key `{key}`; accepted here: {accepted}")]
    UnknownKey { key: String, accepted: String },
    #[error("missing key `{0}`")]
    MissingKey(String),
    #[error("invalid value for `{key}`: {reason}")]
    InvalidValue { key: String, reason: String },
}

impl From<figment::Error> for ConfigError {
    fn from(e: figment::Error) -> Self {
        // A figment error may carry several; show them all, each with its key and source.
        ConfigError::Invalid(e.into_iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))
    }
}

/// `[chain]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// Path of `genesis.json`.
    pub genesis: PathBuf,
}

/// `[node]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeSection {
    /// Where the database and node state live.
    pub data_dir: PathBuf,
    /// This node's validator key file; absent on a non-validating node.
    pub validator_key: Option<PathBuf>,
    /// A full node's network identity key file (default `DATA_DIR/node-key.json`, made on
    /// first start). A validator's identity is its validator key.
    pub node_key: Option<PathBuf>,
    /// The operator confirms that this validator key has never signed on this chain although
    /// the data directory holds commits and no consensus safety state (a new validator started
    /// by state sync, or a directory whose consensus column was lost and whose key never
    /// signed since). Without it such a validator follows the chain and signs nothing. Set it
    /// for one start with `aether run --fresh-safety-state`, never in a config file: left on,
    /// it would let a moved or restored validator sign twice in one round.
    pub fresh_safety_state: bool,
}

impl Default for NodeSection {
    fn default() -> Self {
        NodeSection { data_dir: PathBuf::from("data"), validator_key: None, node_key: None, fresh_safety_state: false }
    }
}

/// `[sync]`: how a node that is behind catches up (block sync is always on with a network).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncConfig {
    /// Start an empty data directory from a peer's state at a final height instead of
    /// replaying the chain from genesis (`aether run --state-sync`). Ignored once the data
    /// directory holds a chain.
    pub state_sync: bool,
    /// How long state sync may take, finding peers included, before the node gives up.
    pub state_sync_timeout_secs: u64,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig { state_sync: false, state_sync_timeout_secs: 600 }
    }
}

/// `[rpc]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RpcConfig {
    pub enabled: bool,
    /// HTTP and WebSocket on one address.
    pub listen: SocketAddr,
    pub max_connections: u32,
    pub max_request_bytes: u32,
}

impl Default for RpcConfig {
    fn default() -> Self {
        RpcConfig {
            enabled: true,
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 9944)),
            max_connections: 256,
            max_request_bytes: 1 << 20,
        }
    }
}

/// The plugin chosen for a slot and its settings section.
#[derive(Debug, Clone)]
pub struct SlotChoice {
    pub name: String,
    pub settings: PluginSettings,
}

/// The node's resolved configuration.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub chain: ChainConfig,
    pub node: NodeSection,
    pub consensus: SlotChoice,
    pub storage: SlotChoice,
    /// `[vm] backend`: the contract VM. `None` (no `[vm]` section): contract transactions are
    /// invalid on this node.
    pub vm: Option<SlotChoice>,
    /// `[network]`: absent on a chain whose only validator talks to nobody.
    pub network: Option<NetworkConfig>,
    /// `[storage] keep_recent` / `keep_blocks`: history kept, whatever the backend.
    pub retention: crate::ledger::Retention,
    pub mempool: MempoolConfig,
    pub rpc: RpcConfig,
    pub sync: SyncConfig,
}

/// `[network]`: the plugin (`backend`, settings in `[network.NAME]`) and what every network
/// plugin is told (see [`crate::network::NetworkContext`]).
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    pub backend: SlotChoice,
    /// Addresses to accept peers on, `IP:PORT`.
    pub listen: Vec<SocketAddr>,
    /// Peers to connect to, `IDENTITY@IP:PORT`.
    pub bootstrap: Vec<PeerAddress>,
    /// Peers besides the genesis validators allowed to connect (full nodes), by identity.
    pub allowed_peers: Vec<PeerId>,
    pub max_peers: usize,
}

/// The keys of `[network]` every backend shares.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkShared {
    #[serde(default)]
    listen: Vec<SocketAddr>,
    #[serde(default)]
    bootstrap: Vec<PeerAddress>,
    #[serde(default)]
    allowed_peers: Vec<PeerId>,
    #[serde(default = "default_max_peers")]
    max_peers: usize,
}

fn default_max_peers() -> usize {
    50
}

const NETWORK_SHARED_KEYS: [&str; 4] = ["listen", "bootstrap", "allowed_peers", "max_peers"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    /// Read by the binary before loading (it picks the defaults layer); accepted here so the
    /// key is not reported as unknown.
    #[serde(default)]
    #[allow(dead_code)]
    preset: Option<String>,
    chain: ChainConfig,
    #[serde(default)]
    node: NodeSection,
    consensus: BTreeMap<String, Value>,
    storage: BTreeMap<String, Value>,
    #[serde(default)]
    vm: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    network: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    mempool: MempoolConfig,
    #[serde(default)]
    rpc: RpcConfig,
    #[serde(default)]
    sync: SyncConfig,
}

/// The figment for `preset_defaults` and `source`, before extraction.
pub fn figment(preset_defaults: &str, source: &ConfigSource) -> Result<Figment, ConfigError> {
    figment_layers(&[preset_defaults], source, &[])
}

/// Values set in code (by [`crate::node::NodeBuilder`]), each at a dotted key path: the top
/// layer, above the command line.
pub type CodeLayer = [(String, serde_json::Value)];

/// The figment for default layers (lowest first: a preset's, then each extension's),
/// `source`, and values set in code, before extraction.
pub fn figment_layers(defaults: &[&str], source: &ConfigSource, code: &CodeLayer) -> Result<Figment, ConfigError> {
    let mut fig = Figment::new();
    for layer in defaults {
        fig = fig.merge(Toml::string(layer));
    }
    if let Some(file) = &source.file {
        if !file.is_file() {
            return Err(ConfigError::MissingFile(file.clone()));
        }
        fig = fig.merge(Toml::file_exact(file));
    }
    if source.env {
        // Only nested keys are config; other AETHER_* variables (e.g. AETHER_LOG) are not.
        fig = fig.merge(Env::prefixed("AETHER_").filter(|k| k.as_str().contains("__")).split("__"));
    }
    for (key, raw) in &source.overrides {
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(ConfigError::InvalidValue { key: key.clone(), reason: "expected a dotted key path like consensus.engine".into() });
        }
        fig = fig.merge(Serialized::default(key, parse_override(raw)));
    }
    for (key, value) in code {
        fig = fig.merge(Serialized::default(key, value));
    }
    Ok(fig)
}

fn parse_override(raw: &str) -> toml::Value {
    match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

/// Loads and validates the configuration: every key known, every plugin registered, paths
/// resolved against the config file's folder.
pub fn load(preset_defaults: &str, source: &ConfigSource, registry: &Registry) -> Result<NodeConfig, ConfigError> {
    load_layers(&[preset_defaults], source, &[], registry)
}

/// [`load`] with several default layers (lowest first) and values set in code on top.
pub fn load_layers(defaults: &[&str], source: &ConfigSource, code: &CodeLayer, registry: &Registry) -> Result<NodeConfig, ConfigError> {
    let raw: RawConfig = figment_layers(defaults, source, code)?.extract()?;
    let base = match (&source.file, &source.base_dir) {
        (Some(f), _) => f.parent().map(Path::to_path_buf).unwrap_or_default(),
        (None, Some(b)) => b.clone(),
        (None, None) => PathBuf::new(),
    };
    registry.mempool_policy.get(&raw.mempool.policy)?;
    if raw.mempool.max_txs == 0
        || raw.mempool.max_block_txs == 0
        || raw.mempool.max_tx_bytes < 128
        || raw.mempool.max_bytes < raw.mempool.max_tx_bytes
    {
        return Err(ConfigError::InvalidValue {
            key: "mempool".into(),
            reason: "max_txs and max_block_txs must be positive, max_tx_bytes at least 128, and max_bytes at least max_tx_bytes".into(),
        });
    }
    let resolve = |p: &Path| if p.is_absolute() { p.to_path_buf() } else { base.join(p) };
    let mut storage = raw.storage;
    let mut retention = crate::ledger::Retention::default();
    for (name, slot) in [("keep_recent", &mut retention.keep_recent), ("keep_blocks", &mut retention.keep_blocks)] {
        if let Some(v) = storage.remove(name) {
            *slot = v.deserialize::<u64>().map_err(|_| ConfigError::InvalidValue {
                key: format!("storage.{name}"),
                reason: format!("expected a whole number of heights (0 keeps everything), found {v:?}"),
            })?;
        }
    }
    Ok(NodeConfig {
        chain: ChainConfig { genesis: resolve(&raw.chain.genesis) },
        node: NodeSection {
            data_dir: resolve(&raw.node.data_dir),
            validator_key: raw.node.validator_key.as_deref().map(resolve),
            node_key: raw.node.node_key.as_deref().map(resolve),
            fresh_safety_state: raw.node.fresh_safety_state,
        },
        consensus: choose(SlotKind::Consensus, raw.consensus, &registry.known(SlotKind::Consensus))?,
        storage: choose(SlotKind::Storage, storage, &registry.known(SlotKind::Storage))?,
        vm: raw.vm.map(|section| choose(SlotKind::Vm, section, &registry.known(SlotKind::Vm))).transpose()?,
        network: raw.network.map(|section| network_config(section, registry)).transpose()?,
        retention,
        mempool: raw.mempool,
        rpc: raw.rpc,
        sync: raw.sync,
    })
}

/// Reads a slot section: the selector names a registered plugin; every other key must be the
/// name of a registered plugin of the slot (its settings table).
fn network_config(mut section: BTreeMap<String, Value>, registry: &Registry) -> Result<NetworkConfig, ConfigError> {
    let mut shared = figment::value::Dict::new();
    for key in NETWORK_SHARED_KEYS {
        if let Some(v) = section.remove(key) {
            shared.insert(key.to_string(), v);
        }
    }
    let shared: NetworkShared =
        Value::from(shared).deserialize().map_err(|e| ConfigError::InvalidValue { key: "network".into(), reason: e.to_string() })?;
    if shared.max_peers == 0 {
        return Err(ConfigError::InvalidValue { key: "network.max_peers".into(), reason: "must be at least 1".into() });
    }
    let backend = choose(SlotKind::Network, section, &registry.known(SlotKind::Network)).map_err(|e| match e {
        ConfigError::UnknownKey { key, accepted } => {
            ConfigError::UnknownKey { key, accepted: format!("{}, {accepted}", NETWORK_SHARED_KEYS.join(", ")) }
        }
        other => other,
    })?;
    Ok(NetworkConfig {
        backend,
        listen: shared.listen,
        bootstrap: shared.bootstrap,
        allowed_peers: shared.allowed_peers,
        max_peers: shared.max_peers,
    })
}

fn choose(kind: SlotKind, mut section: BTreeMap<String, Value>, known: &[String]) -> Result<SlotChoice, ConfigError> {
    let (sec, sel) = (kind.section(), kind.selector());
    let key = format!("{sec}.{sel}");
    let name = match section.remove(sel) {
        Some(Value::String(_, s)) => s,
        Some(other) => return Err(ConfigError::InvalidValue { key, reason: format!("expected a plugin name string, found {other:?}") }),
        None => return Err(ConfigError::MissingKey(key)),
    };
    if !known.contains(&name) {
        return Err(RegistryError::UnknownPlugin { slot: kind, name, known: known.to_vec() }.into());
    }
    for k in section.keys() {
        if !known.contains(k) {
            let mut accepted = vec![sel.to_string()];
            accepted.extend(known.iter().map(|n| format!("[{sec}.{n}]")));
            return Err(ConfigError::UnknownKey { key: format!("{sec}.{k}"), accepted: accepted.join(", ") });
        }
    }
    let section_name = format!("{sec}.{name}");
    let settings = match section.remove(&name) {
        Some(v @ Value::Dict(..)) => {
            // Plugins see plain JSON values, so the plugin API does not depend on figment.
            let value =
                serde_json::to_value(&v).map_err(|e| ConfigError::InvalidValue { key: section_name.clone(), reason: e.to_string() })?;
            PluginSettings { section: section_name, value }
        }
        Some(_) => return Err(ConfigError::InvalidValue { key: section_name, reason: "expected a table of settings".into() }),
        None => PluginSettings::empty(section_name),
    };
    Ok(SlotChoice { name, settings })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: &str = "[chain]\ngenesis = \"genesis.json\"\n[consensus]\nengine = \"solo\"\n[storage]\nbackend = \"memory\"\n";

    fn registry() -> Registry {
        let mut r = crate::builtins::registry();
        r.storage.register("memory", "test", Box::new(|_, _| unreachable!()));
        r
    }

    fn with_file(toml: &str) -> Result<NodeConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aether.toml");
        std::fs::write(&path, toml).unwrap();
        load(DEFAULTS, &ConfigSource { file: Some(path), ..Default::default() }, &registry())
    }

    #[test]
    fn layers_override_in_order_and_paths_resolve_against_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aether.toml");
        std::fs::write(&path, "[consensus.solo]\nblock_interval_ms = 250\n[mempool]\nmin_fee = 5\n").unwrap();
        let source = ConfigSource { file: Some(path), overrides: vec![("mempool.min_fee".into(), "7".into())], ..Default::default() };
        let c = load(DEFAULTS, &source, &registry()).unwrap();
        assert_eq!(c.mempool.min_fee, 7, "CLI override beats the file");
        assert_eq!(c.consensus.name, "solo");
        assert_eq!(c.consensus.settings.parse::<crate::solo::SoloSettings>().unwrap().block_interval_ms, 250);
        assert_eq!(c.chain.genesis, dir.path().join("genesis.json"));
    }

    #[test]
    fn environment_sits_between_the_file_and_the_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aether.toml");
        std::fs::write(&path, "[mempool]\nmin_fee = 5\nmax_txs = 10\n").unwrap();
        // Only this test reads the environment, and it sets variables nothing else uses.
        std::env::set_var("AETHER_MEMPOOL__MIN_FEE", "6");
        std::env::set_var("AETHER_MEMPOOL__MAX_BLOCK_TXS", "3");
        let source = ConfigSource {
            file: Some(path),
            env: true,
            overrides: vec![("mempool.max_block_txs".into(), "4".into())],
            ..Default::default()
        };
        let c = load(DEFAULTS, &source, &registry());
        std::env::remove_var("AETHER_MEMPOOL__MIN_FEE");
        std::env::remove_var("AETHER_MEMPOOL__MAX_BLOCK_TXS");
        let c = c.unwrap();
        assert_eq!(c.mempool.min_fee, 6, "env beats the file");
        assert_eq!(c.mempool.max_txs, 10, "the file beats the defaults");
        assert_eq!(c.mempool.max_block_txs, 4, "the command line beats env");
    }

    #[test]
    fn unknown_engine_lists_the_known_ones() {
        let e = with_file("[consensus]\nengine = \"pbft\"\n").unwrap_err().to_string();
        assert_eq!(e, r#"unknown consensus engine "pbft" (key `consensus.engine`); known: solo"#);
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = with_file("[consensus]\nengine = \"solo\"\nfoo = 1\n").unwrap_err().to_string();
        assert!(e.contains("unknown key `consensus.foo`") && e.contains("[consensus.solo]"), "{e}");
        let e = with_file("[mempool]\nmax_tx = 5\n").unwrap_err().to_string();
        assert!(e.contains("max_tx") && e.contains("max_txs"), "{e}");
        let e = with_file("[rcp]\nenabled = true\n").unwrap_err().to_string();
        assert!(e.contains("rcp"), "{e}");
        let c = with_file("[consensus.solo]\nblock_interval = 5\n").unwrap();
        let e = c.consensus.settings.parse::<crate::solo::SoloSettings>().unwrap_err().to_string();
        assert!(e.contains("[consensus.solo]") && e.contains("block_interval"), "{e}");
    }

    #[test]
    fn malformed_toml_and_bad_values_name_the_file_and_key() {
        let e = with_file("[consensus\nengine = \"solo\"\n").unwrap_err().to_string();
        assert!(e.contains("aether.toml"), "{e}");
        let e = with_file("[rpc]\nlisten = \"nowhere\"\n").unwrap_err().to_string();
        assert!(e.contains("listen"), "{e}");
        let e =
            load(DEFAULTS, &ConfigSource { file: Some("/nonexistent/aether.toml".into()), ..Default::default() }, &registry()).unwrap_err();
        assert!(matches!(e, ConfigError::MissingFile(_)));
    }

    #[test]
    fn unknown_mempool_policy_is_refused() {
        let e = with_file("[mempool]\npolicy = \"random\"\n").unwrap_err().to_string();
        assert!(e.contains(r#"unknown mempool policy "random""#) && e.contains("fee, fifo"), "{e}");
    }
}
