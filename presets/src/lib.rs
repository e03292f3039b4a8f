//! # aether-presets
//!
//! Presets — named plugin sets with default settings — and the operations on a chain that the
//! `aether` binary (`presets/cli`) and tests share: `init` a chain folder, `launch` a node with
//! its RPC server, run a `devnet`, key files, snapshot export and import.
//!
//! A chain builder assembles a preset in Rust the same way these do: a [`Preset`] whose
//! `register` adds plugins to the registry and whose `defaults` are TOML.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use aether_framework::config::ConfigSource;
//! let dir = std::path::Path::new("/tmp/my-chain");
//! aether_presets::init::init_chain(&aether_presets::init::InitOptions::new(dir))?;
//! let source = ConfigSource { file: Some(dir.join("aether.toml")), ..Default::default() };
//! let node = aether_presets::launch(aether_presets::find("aether")?, &source).await?;
//! println!("RPC at {}", node.rpc.as_ref().unwrap().http_url());
//! node.shutdown().await?;
//! # Ok(()) }
//! ```

pub mod devnet;
pub mod init;
pub mod keys;

use aether_framework::config::{self, ConfigSource, NodeConfig};
use std::sync::Arc;

use aether_framework::node::{Node, NodeHandle, NodeMetrics, SystemClock};
use aether_framework::registry::{Preset, Registry};
use aether_framework::types::Genesis;
use aether_rpc::RpcServer;
use anyhow::{anyhow, Context};

/// Settings every preset here shares (contracts on Wasmtime); each adds its `[consensus]` and
/// `[storage]` sections.
macro_rules! common_defaults {
    () => {
        "[chain]\ngenesis = \"genesis.json\"\n[node]\ndata_dir = \"data\"\n[mempool]\npolicy = \"fee\"\n[vm]\nbackend = \"wasmtime\"\n"
    };
}

/// The default preset: HotStuff (BLS certificates, VRF leaders) on RocksDB.
pub const AETHER: Preset = Preset {
    name: "aether",
    description:
        "the default node: HotStuff consensus (BLS certificates, VRF leaders), RocksDB storage, Wasmtime contracts, fee-ordered mempool",
    defaults: concat!(common_defaults!(), "[consensus]\nengine = \"hotstuff\"\n[storage]\nbackend = \"rocksdb\"\n"),
    register: register_all,
};

/// One validator sealing blocks alone, in memory: nothing survives exit. For tests and demos.
pub const MEMORY: Preset = Preset {
    name: "memory",
    description: "solo consensus with in-memory storage: nothing survives exit (tests, demos)",
    defaults: concat!(common_defaults!(), "[consensus]\nengine = \"solo\"\n[storage]\nbackend = \"memory\"\n"),
    register: register_all,
};

fn register_all(r: &mut Registry) {
    aether_consensus_hotstuff::register(r);
    aether_storage_memory::register(r);
    aether_storage_rocksdb::register(r);
    aether_storage_paritydb::register(r);
    aether_vm_wasmtime::register(r);
    aether_vm_wasmer::register(r);
    aether_net_libp2p::register(r);
}

pub const PRESETS: &[Preset] = &[AETHER, MEMORY];

pub fn find(name: &str) -> anyhow::Result<&'static Preset> {
    PRESETS
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| anyhow!("unknown preset {name:?}; known: {}", PRESETS.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")))
}

/// Loads config for `preset` from `source`: validated, before anything touches disk.
pub fn load_config(preset: &Preset, source: &ConfigSource) -> anyhow::Result<(NodeConfig, Registry)> {
    let registry = preset.registry();
    let config = config::load(preset.defaults, source, &registry).map_err(|e| anyhow!("configuration error: {e}"))?;
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
    launch_on(preset, source, None).await
}

/// [`launch`] on a given network instead of the one `[network]` configures (the in-process
/// devnet passes its hub).
pub async fn launch_on(
    preset: &Preset,
    source: &ConfigSource,
    network: Option<Arc<dyn aether_framework::network::Network>>,
) -> anyhow::Result<LaunchedNode> {
    let (config, registry) = load_config(preset, source)?;
    let genesis = Genesis::load(&config.chain.genesis)?;
    let key = match &config.node.validator_key {
        Some(path) => Some(keys::read_key_file(path)?),
        None => None,
    };
    let metrics = Arc::new(NodeMetrics::default());
    let bound = if config.rpc.enabled { Some(RpcServer::bind(&config.rpc, metrics.clone()).await?) } else { None };
    let network = match network {
        Some(n) => Some(n),
        None if config.network.is_some() => {
            let identity = match &key {
                Some(k) => k.clone(),
                None => keys::node_key(&config)?,
            };
            aether_framework::node::open_network(&config, &registry, &genesis, &identity)?
        }
        None => None,
    };
    let node = Node::launch_with(&config, &registry, &genesis, key, Arc::new(SystemClock::default()), metrics, network)?;
    let rpc = bound.map(|b| b.serve(node.handle()));
    Ok(LaunchedNode { node, rpc, config })
}
