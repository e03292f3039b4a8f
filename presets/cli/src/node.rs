//! `aether run`, and the listings `aether presets` and `aether plugins`.

use std::net::SocketAddr;
use std::path::PathBuf;

use aether_framework::config::ConfigSource;
use aether_framework::registry::Preset;
use aether_presets::{init, keys};
use anyhow::{bail, Context};
use clap::Args;

#[derive(Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) node: NodeArgs,
    /// A throwaway single-validator chain with a funded dev account, in a new temporary folder.
    #[arg(long, conflicts_with_all = ["dir", "config"])]
    pub(crate) dev: bool,
    /// Run validator I of a chain folder made by `aether init --validators N` as this process
    /// (reads DIR/validator-I.toml).
    #[arg(long, requires = "dir", value_name = "I")]
    pub(crate) validator: Option<usize>,
    /// Preset (default: the config file's `preset`, else the binary's default preset).
    #[arg(long)]
    pub(crate) preset: Option<String>,
    /// Override any setting: --set consensus.solo.block_interval_ms=500 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) set: Vec<String>,
    /// Shorthand for --set rpc.listen=ADDR.
    #[arg(long)]
    pub(crate) rpc_listen: Option<SocketAddr>,
    /// Shorthand for --set node.data_dir=PATH.
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
    /// Start an empty data directory from a peer's state at a final height instead of
    /// replaying the chain (shorthand for --set sync.state_sync=true).
    #[arg(long)]
    pub(crate) state_sync: bool,
    /// This validator key has never signed on this chain: start signing although the data
    /// directory has commits and no consensus safety state (a new validator started with
    /// --state-sync). Never use it for a validator that signed before: it could sign twice.
    #[arg(long)]
    pub(crate) fresh_safety_state: bool,
}

/// Which node a command acts on.
#[derive(Args)]
pub(crate) struct NodeArgs {
    /// Chain folder made by `aether init` (reads DIR/aether.toml).
    #[arg(long, conflicts_with = "config")]
    pub(crate) dir: Option<PathBuf>,
    /// Config file (default: ./aether.toml).
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
}

impl NodeArgs {
    /// `DIR/aether.toml`, the `--config` file, or `./aether.toml`.
    fn config_file(&self) -> PathBuf {
        match (&self.dir, &self.config) {
            (Some(d), _) => d.join("aether.toml"),
            (None, Some(c)) => c.clone(),
            (None, None) => PathBuf::from("aether.toml"),
        }
    }

    pub(crate) fn source(&self) -> anyhow::Result<(&'static Preset, ConfigSource)> {
        let file = self.config_file();
        if !file.is_file() {
            bail!("config file {} does not exist", file.display());
        }
        let preset = crate::presets().for_config_file(&file)?;
        Ok((preset, ConfigSource { file: Some(file), env: true, overrides: vec![], base_dir: None }))
    }
}

pub(crate) async fn run(a: RunArgs) -> anyhow::Result<()> {
    let config_file = if a.dev {
        let dir = tempfile::Builder::new().prefix("aether-dev-").tempdir()?.keep();
        let mut opts = init::InitOptions::new(&dir);
        opts.preset = crate::presets().default_preset().name().to_string();
        opts.chain_id = "aether-dev".into();
        opts.fund_dev_account = true;
        let out = init::init_chain_in(crate::presets(), &opts)?;
        let dev = keys::dev_account();
        println!("dev chain in {} (delete it when done)", dir.display());
        println!("dev account {} is funded; send from it with: aether tx transfer --dev --to ADDRESS --amount N", dev.address());
        out.config
    } else if let (Some(i), Some(dir)) = (a.validator, &a.node.dir) {
        let file = dir.join(format!("validator-{i}.toml"));
        if !file.is_file() {
            bail!(
                "{} does not exist; `aether init --dir {} --validators N` writes one config per validator",
                file.display(),
                dir.display()
            );
        }
        file
    } else {
        a.node.config_file()
    };
    if !config_file.is_file() {
        bail!(
            "config file {} does not exist; create a chain with `aether init --dir DIR` or use `aether run --dev`",
            config_file.display()
        );
    }
    let preset = match &a.preset {
        Some(p) => crate::presets().find(p)?,
        None => crate::presets().for_config_file(&config_file)?,
    };
    let overrides = parse_overrides(&a.set)?;
    // A relative --data-dir is relative to the config file's folder, like every path in it.
    let base = config_file.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
    let data_dir = a.data_dir.map(|d| if d.is_absolute() { d } else { base.join(d) });
    let source = ConfigSource { file: Some(config_file), env: true, overrides, base_dir: None };
    // The shorthand flags are typed edits on top of every config layer, `--set` included.
    let (rpc_listen, state_sync, fresh) = (a.rpc_listen, a.state_sync, a.fresh_safety_state);
    let node = aether_presets::launch_with(preset, &source, move |b| {
        b.configure(move |c| {
            if let Some(addr) = rpc_listen {
                c.rpc.listen = addr;
            }
            if let Some(d) = data_dir {
                c.node.data_dir = d;
            }
            c.sync.state_sync |= state_sync;
            c.node.fresh_safety_state |= fresh;
        })
    })
    .await?;
    if let Some(rpc) = &node.rpc {
        println!("JSON-RPC on {} (HTTP and WebSocket), health at {}/health", rpc.http_url(), rpc.http_url());
    }
    tokio::select! {
        _ = parent_gone() => {
            tracing::warn!("the devnet that started this node is gone; shutting down");
            node.shutdown().await?;
            Ok(())
        }
        _ = wait_for_shutdown_signal() => {
            tracing::info!("shutting down");
            node.shutdown().await?;
            tracing::info!("stopped cleanly");
            Ok(())
        }
        _ = node.node.stopped() => {
            // The driver only stops by itself on a fatal error; report it and exit non-zero.
            node.shutdown().await.context("the node stopped")?;
            bail!("the node stopped unexpectedly")
        }
    }
}

/// Set by `aether devnet` on the validator processes it starts: the parent's process id.
pub(crate) const PARENT_PID_ENV: &str = "AETHER_DEVNET_PARENT_PID";

/// Resolves when the process named by [`PARENT_PID_ENV`] is no longer this process's parent
/// (it died and this process was re-parented); never without the variable.
async fn parent_gone() {
    #[cfg(unix)]
    if let Some(parent) = std::env::var(PARENT_PID_ENV).ok().and_then(|p| p.parse::<u32>().ok()) {
        loop {
            if std::os::unix::process::parent_id() != parent {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
    std::future::pending::<()>().await
}

pub(crate) async fn wait_for_shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch for SIGTERM; only Ctrl-C stops the node");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

pub(crate) fn parse_overrides(set: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    set.iter()
        .map(|s| {
            let (k, v) = s.split_once('=').with_context(|| format!("--set {s:?}: expected KEY=VALUE"))?;
            Ok((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// `aether presets`.
pub(crate) fn list_presets() {
    for p in crate::presets().iter() {
        println!("{:<10} {}", p.name(), p.description());
    }
}

/// `aether plugins --preset NAME`.
pub(crate) fn list_plugins(preset: Option<&str>) -> anyhow::Result<()> {
    let presets = crate::presets();
    let registry = match preset {
        Some(name) => presets.find(name)?,
        None => presets.default_preset(),
    }
    .registry();
    for (slot, name, description) in registry.listing() {
        println!("{:<20} {:<10} {}", format!("[{}] {}", slot.section(), slot.selector()), name, description);
    }
    Ok(())
}
