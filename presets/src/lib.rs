//! # aether-presets
//!
//! Presets — named plugin sets with default settings — and the operations on a chain that the
//! `aether` binary (`presets/cli`) and tests share: `init` a chain folder, `launch` a node with
//! its RPC server, run a `devnet`, key files, snapshot export and import.
//!
//! A chain builder extends a preset rather than restating it: one more plugin, one more layer
//! of defaults, a new name. Cargo features choose which plugins compile (all by default;
//! `default-features = false` leaves the `memory` preset: solo engine, in-memory store).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use aether_framework::config::ConfigSource;
//! let dir = std::path::Path::new("/tmp/my-chain");
//! aether_presets::init::init_chain(&aether_presets::init::InitOptions::new(dir))?;
//! let source = ConfigSource { file: Some(dir.join("aether.toml")), ..Default::default() };
//! // The memory preset with slower blocks, as a default an operator can still override.
//! let preset = aether_presets::memory()
//!     .renamed("slow", "solo, 5 s blocks")
//!     .with_defaults("[consensus.solo]\nblock_interval_ms = 5000\n");
//! let node = aether_presets::launch(&preset, &source).await?;
//! println!("RPC at {}", node.rpc.as_ref().unwrap().http_url());
//! node.shutdown().await?;
//! # Ok(()) }
//! ```

/// The plugin crates this build compiles, so a chain builder reaches their settings types
/// (`plugins::hotstuff::HotStuffSettings`) without depending on each crate.
pub mod plugins {
    #[cfg(feature = "hotstuff")]
    pub use aether_consensus_hotstuff as hotstuff;
    #[cfg(feature = "libp2p")]
    pub use aether_net_libp2p as libp2p;
    pub use aether_storage_memory as memory;
    #[cfg(feature = "paritydb")]
    pub use aether_storage_paritydb as paritydb;
    #[cfg(feature = "rocksdb")]
    pub use aether_storage_rocksdb as rocksdb;
    #[cfg(feature = "wasmer")]
    pub use aether_vm_wasmer as wasmer;
    #[cfg(feature = "wasmtime")]
    pub use aether_vm_wasmtime as wasmtime;
}

pub mod devnet;
pub mod init;
pub mod keys;

use aether_framework::config::{self, ConfigSource, NodeConfig};

use aether_framework::node::{Node, NodeBuilder, NodeHandle};
use aether_framework::registry::{Preset, Registry};
use aether_framework::types::Genesis;
use aether_rpc::RpcServer;
use anyhow::{anyhow, Context};

/// `[chain]`, `[node]` and `[mempool]` defaults every preset here shares; each adds its
/// `[consensus]`, `[storage]` and (with a VM compiled in) `[vm]` sections.
const COMMON_DEFAULTS: &str = "[chain]\ngenesis = \"genesis.json\"\n[node]\ndata_dir = \"data\"\n[mempool]\npolicy = \"fee\"\n";

/// Registers every plugin this build compiles (see the crate's features).
pub fn register_compiled_plugins(r: &mut Registry) {
    aether_storage_memory::register(r);
    // Runtime modules are light and run only where genesis pins them: every build has them.
    aether_module_staking::register(r);
    aether_module_slashing::register(r);
    aether_module_governance::register(r);
    #[cfg(feature = "hotstuff")]
    aether_consensus_hotstuff::register(r);
    #[cfg(feature = "rocksdb")]
    aether_storage_rocksdb::register(r);
    #[cfg(feature = "paritydb")]
    aether_storage_paritydb::register(r);
    #[cfg(feature = "wasmtime")]
    aether_vm_wasmtime::register(r);
    #[cfg(feature = "wasmer")]
    aether_vm_wasmer::register(r);
    #[cfg(feature = "libp2p")]
    aether_net_libp2p::register(r);
}

/// The default preset: HotStuff (BLS certificates, VRF leaders) on RocksDB, contracts on
/// Wasmtime, the fee-ordered mempool. Needs the features `hotstuff`, `rocksdb`, `wasmtime`
/// (and `libp2p` for networks of validators).
#[cfg(all(feature = "hotstuff", feature = "rocksdb", feature = "wasmtime"))]
pub fn aether() -> Preset {
    Preset::new(
        "aether",
        "the default node: HotStuff consensus (BLS certificates, VRF leaders), RocksDB storage, Wasmtime contracts, fee-ordered mempool",
    )
    .with_plugins(register_compiled_plugins)
    .with_defaults(COMMON_DEFAULTS)
    .with_defaults("[consensus]\nengine = \"hotstuff\"\n[storage]\nbackend = \"rocksdb\"\n[vm]\nbackend = \"wasmtime\"\n")
}

/// One validator sealing blocks alone, in memory: nothing survives exit. For tests and demos.
/// Always compiled (contracts only with the `wasmtime` feature).
pub fn memory() -> Preset {
    let preset = Preset::new("memory", "solo consensus with in-memory storage: nothing survives exit (tests, demos)")
        .with_plugins(register_compiled_plugins)
        .with_defaults(COMMON_DEFAULTS)
        .with_defaults("[consensus]\nengine = \"solo\"\n[storage]\nbackend = \"memory\"\n");
    if cfg!(feature = "wasmtime") {
        preset.with_defaults("[vm]\nbackend = \"wasmtime\"\n")
    } else {
        preset
    }
}

/// The presets a binary offers, by name; the first is the default.
#[derive(Clone, Debug)]
pub struct Presets(Vec<Preset>);

impl Presets {
    /// Fails on an empty list or a name given twice.
    pub fn new(presets: Vec<Preset>) -> anyhow::Result<Presets> {
        if presets.is_empty() {
            anyhow::bail!("a binary needs at least one preset");
        }
        for (i, p) in presets.iter().enumerate() {
            if presets[..i].iter().any(|q| q.name() == p.name()) {
                anyhow::bail!("preset {:?} is listed twice", p.name());
            }
        }
        Ok(Presets(presets))
    }

    /// The preset named `name`.
    pub fn find(&self, name: &str) -> anyhow::Result<&Preset> {
        self.0
            .iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| anyhow!("unknown preset {name:?}; known: {}", self.0.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")))
    }

    /// The default: the first one listed.
    pub fn default_preset(&self) -> &Preset {
        &self.0[0]
    }

    pub fn iter(&self) -> impl Iterator<Item = &Preset> {
        self.0.iter()
    }

    /// The preset a config file names (`preset = "..."`), or the default.
    pub fn for_config_file(&self, config: &std::path::Path) -> anyhow::Result<&Preset> {
        match init::preset_of(config)? {
            Some(name) => self.find(&name),
            None => Ok(self.default_preset()),
        }
    }
}

/// Every preset this build compiles: `aether` (when its plugins are compiled), then `memory`.
pub fn all() -> Presets {
    Presets(vec![
        #[cfg(all(feature = "hotstuff", feature = "rocksdb", feature = "wasmtime"))]
        aether(),
        memory(),
    ])
}

/// A preset of [`all`] by name.
pub fn find(name: &str) -> anyhow::Result<Preset> {
    all().find(name).cloned()
}

/// Loads config for `preset` from `source`: validated, before anything touches disk.
pub fn load_config(preset: &Preset, source: &ConfigSource) -> anyhow::Result<(NodeConfig, Registry)> {
    let registry = preset.registry();
    let config = config::load_layers(&preset.defaults(), source, &[], &registry).map_err(|e| anyhow!("configuration error: {e}"))?;
    Ok((config, registry))
}

/// A node and its RPC server.
pub struct LaunchedNode {
    pub node: Node,
    pub rpc: Option<RpcServer>,
    pub config: NodeConfig,
}

impl LaunchedNode {
    pub fn handle(&self) -> NodeHandle {
        self.node.handle()
    }

    /// Stops RPC first (no new submissions), then the node (its in-flight commit finishes).
    pub async fn shutdown(self) -> anyhow::Result<()> {
        if let Some(rpc) = self.rpc {
            rpc.stop().await;
        }
        let node = self.node;
        tokio::task::spawn_blocking(move || node.shutdown()).await.context("joining the node")??;
        Ok(())
    }
}

/// Writes the state at `height` (default: the head) of the node configured by `source` to
/// `out`. The node must not be running (the database is opened directly).
pub fn export_snapshot(preset: &Preset, source: &ConfigSource, height: Option<u64>, out: &std::path::Path) -> anyhow::Result<(u64, u64)> {
    let (config, registry) = load_config(preset, source)?;
    let genesis = Genesis::load(&config.chain.genesis)?;
    if !config.node.data_dir.join("db").exists() {
        anyhow::bail!("no database at {}: nothing to export", config.node.data_dir.join("db").display());
    }
    let store = aether_framework::node::open_store(&config, &registry).context("opening the database (is a node running on it?)")?;
    let ledger = aether_framework::ledger::Ledger::open(store, &genesis)?;
    let height = height.unwrap_or_else(|| ledger.head().block.height);
    let bytes = aether_framework::snapshot::Snapshot::export(&ledger, height, out)?;
    Ok((height, bytes))
}

/// Verifies the snapshot at `file` against the chain configured by `source`, then writes it
/// into that node's (empty) data directory. Nothing is written unless every check passes.
pub fn import_snapshot(
    preset: &Preset,
    source: &ConfigSource,
    file: &std::path::Path,
) -> anyhow::Result<aether_framework::snapshot::Snapshot> {
    let (config, registry) = load_config(preset, source)?;
    let genesis = Genesis::load(&config.chain.genesis)?;
    let snapshot = aether_framework::snapshot::Snapshot::read(file)?;
    snapshot.check_chain(&genesis)?;
    let store = aether_framework::node::open_store(&config, &registry)?;
    snapshot.restore_into(store.as_ref())?;
    Ok(snapshot)
}

/// Loads config, genesis and validator key, starts the node and (if enabled) RPC.
pub async fn launch(preset: &Preset, source: &ConfigSource) -> anyhow::Result<LaunchedNode> {
    launch_with(preset, source, |b| b).await
}

/// [`launch`] with more choices made on the [`NodeBuilder`] (an in-process network, a store
/// instance, typed settings, config edits) on top of what config says.
pub async fn launch_with(
    preset: &Preset,
    source: &ConfigSource,
    customize: impl FnOnce(NodeBuilder) -> NodeBuilder,
) -> anyhow::Result<LaunchedNode> {
    // The genesis file comes from the config layers (`customize` cannot move it); key files
    // are read after `customize`, from the config it resolved.
    let (config, _) = load_config(preset, source)?;
    let genesis = Genesis::load(&config.chain.genesis)?;
    let mut prepared = customize(NodeBuilder::new(genesis).preset(preset).config_source(source.clone())).prepare()?;
    if prepared.validator_key().is_none() {
        if let Some(path) = prepared.config().node.validator_key.clone() {
            prepared = prepared.with_validator_key(keys::read_key_file(&path)?);
        }
    }
    if prepared.needs_network_identity() {
        let key = keys::node_key(prepared.config())?;
        prepared = prepared.with_node_key(key);
    }
    let config = prepared.config().clone();
    let bound = if config.rpc.enabled { Some(RpcServer::bind(&config.rpc, prepared.metrics().clone()).await?) } else { None };
    let node = prepared.launch()?;
    let rpc = bound.map(|b| b.serve(node.handle()));
    Ok(LaunchedNode { node, rpc, config })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_extended_preset_keeps_the_base_and_its_later_layers_win() {
        let base = memory();
        let mine =
            base.clone().renamed("mine", "memory, fifo").with_defaults("[mempool]\npolicy = \"fifo\"\n[consensus]\nengine = \"solo\"\n");
        assert_eq!(base.defaults().len() + 1, mine.defaults().len(), "one more layer, the base's kept");
        assert_eq!(init::default_engine(&mine).unwrap(), "solo");
        let source = ConfigSource { base_dir: Some(std::env::temp_dir()), ..ConfigSource::default() };
        let (config, _) = load_config(&mine, &source).unwrap();
        assert_eq!(config.mempool.policy, "fifo", "the extension's default is above the base's");
        let (config, _) = load_config(&base, &source).unwrap();
        assert_eq!(config.mempool.policy, "fee", "the base is unchanged");
    }

    #[test]
    fn a_binarys_preset_list_refuses_duplicates_and_names_the_known_ones() {
        let err = Presets::new(vec![memory(), memory()]).unwrap_err().to_string();
        assert_eq!(err, "preset \"memory\" is listed twice");
        assert!(Presets::new(vec![]).is_err());
        let list = Presets::new(vec![memory().renamed("a", ""), memory()]).unwrap();
        assert_eq!(list.default_preset().name(), "a", "the first is the default");
        let err = list.find("b").unwrap_err().to_string();
        assert_eq!(err, "unknown preset \"b\"; known: a, memory");
    }
}
