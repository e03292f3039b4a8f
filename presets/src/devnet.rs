//! `aether devnet`: every validator of a chain folder in one process, connected by the
//! in-process network, each with its own data directory and RPC port.
//!
//! What it is for: trying a multi-validator HotStuff chain on one machine with one command
//! (`aether devnet` makes a throwaway four-validator chain; `aether init --validators N` then
//! `aether devnet --dir DIR` runs a chain folder). What it is not: a deployment. Validators on
//! different machines need the socket network plugin, which is not built yet.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aether_framework::config::ConfigSource;
use aether_framework::network::memory::MemoryHub;
use aether_framework::network::Network;
use aether_framework::types::Genesis;
use anyhow::{bail, Context};

use crate::{keys, LaunchedNode};

/// The chain folder's validator key files, in genesis order.
pub fn validator_key_files(dir: &Path, genesis: &Genesis) -> anyhow::Result<Vec<PathBuf>> {
    let n = genesis.validators.len();
    let mut files = Vec::with_capacity(n);
    for (i, v) in genesis.validators.iter().enumerate() {
        let path = dir.join(crate::init::validator_key_path(i, n));
        let key = keys::read_key_file(&path).with_context(|| format!("validator {i} ({})", v.name))?;
        if key.public() != v.identity {
            bail!("{} holds key {}, but genesis lists {} for validator {i}", path.display(), key.public(), v.identity);
        }
        files.push(path);
    }
    Ok(files)
}

/// Starts every validator of the chain folder `dir` (made by `aether init --validators N`):
/// validator `i` keeps its data in `DIR/data-i` and serves RPC on `rpc_base` + `i`. `presets`
/// resolves the folder's `preset`; `overrides` are `--set` pairs from the command line.
pub async fn launch_devnet(
    presets: &crate::Presets,
    dir: &Path,
    rpc_base: SocketAddr,
    overrides: &[(String, String)],
) -> anyhow::Result<Vec<LaunchedNode>> {
    let config_file = dir.join("aether.toml");
    if !config_file.is_file() {
        bail!("{} does not exist; create a chain with `aether init --dir {} --validators N`", config_file.display(), dir.display());
    }
    // Absolute, so the per-validator paths below do not depend on how config resolves them.
    let dir = &dir.canonicalize().with_context(|| format!("cannot resolve {}", dir.display()))?;
    let config_file = dir.join("aether.toml");
    let preset = presets.for_config_file(&config_file)?;
    let source = ConfigSource { file: Some(config_file.clone()), env: true, overrides: overrides.to_vec(), base_dir: None };
    let (config, _) = crate::load_config(preset, &source)?;
    let genesis = Genesis::load(&config.chain.genesis)?;
    let key_files = validator_key_files(dir, &genesis)?;
    let hub = MemoryHub::new();
    let mut nodes = Vec::with_capacity(key_files.len());
    for (i, key_file) in key_files.iter().enumerate() {
        let key = keys::read_key_file(key_file)?;
        let key_file = key_file.clone();
        let rpc = SocketAddr::new(rpc_base.ip(), rpc_base.port().checked_add(i as u16).context("RPC port out of range")?);
        let network: Arc<dyn Network> = hub.join(key.public());
        let data_dir = dir.join(format!("data-{i}"));
        let launched = crate::launch_with(preset, &source, |b| {
            b.network(network).data_dir(data_dir).configure(move |c| {
                c.rpc.listen = rpc;
                c.node.validator_key = Some(key_file);
            })
        })
        .await;
        match launched {
            Ok(node) => nodes.push(node),
            Err(e) => {
                for n in nodes {
                    let _ = n.shutdown().await;
                }
                return Err(e.context(format!("starting validator {i}")));
            }
        }
    }
    Ok(nodes)
}
