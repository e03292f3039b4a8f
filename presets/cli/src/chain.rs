//! `aether init` (a chain folder) and `aether devnet` (every validator of a chain in one process).

use std::net::SocketAddr;
use std::path::PathBuf;

use aether_presets::{init, keys};
use anyhow::bail;
use clap::Args;

use crate::node::{parse_overrides, wait_for_shutdown_signal};

#[derive(Args)]
pub(crate) struct InitArgs {
    /// Folder to create the chain in.
    #[arg(long, default_value = ".")]
    pub(crate) dir: PathBuf,
    #[arg(long, default_value = "aether")]
    pub(crate) preset: String,
    #[arg(long, default_value = "aether-local")]
    pub(crate) chain_id: String,
    /// Also fund the well-known development account (never on a real chain).
    #[arg(long)]
    pub(crate) dev_account: bool,
    /// RPC listen address to write into aether.toml.
    #[arg(long)]
    pub(crate) rpc_listen: Option<SocketAddr>,
    /// Validators in genesis (equal stake). With more than one, keys go to
    /// keys/validator-I.json and each validator gets its own config, validator-I.toml.
    #[arg(long, default_value_t = 1)]
    pub(crate) validators: usize,
    /// With more than one validator: validator I listens for peers on 127.0.0.1 at this port + I
    /// (the full node, fullnode.toml, at + N).
    #[arg(long, default_value_t = 30400)]
    pub(crate) p2p_port: u16,
}

#[derive(Args)]
pub(crate) struct DevnetArgs {
    /// Chain folder made by `aether init --validators N`.
    #[arg(long)]
    pub(crate) dir: Option<PathBuf>,
    /// Validators of the throwaway chain made when --dir is not given.
    #[arg(long, default_value_t = 4)]
    pub(crate) validators: usize,
    /// Validator I serves RPC on this address's port + I.
    #[arg(long, default_value = "127.0.0.1:9944")]
    pub(crate) rpc_listen: SocketAddr,
    /// Override any setting for every validator (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) set: Vec<String>,
}

pub(crate) fn init(a: InitArgs) -> anyhow::Result<()> {
    let mut opts = init::InitOptions::new(&a.dir);
    opts.preset = a.preset;
    opts.chain_id = a.chain_id;
    opts.fund_dev_account = a.dev_account;
    opts.rpc_listen = a.rpc_listen;
    opts.validators = a.validators;
    opts.p2p_port_base = a.p2p_port;
    let out = init::init_chain(&opts)?;
    println!("initialised chain {:?} in {}", opts.chain_id, a.dir.display());
    println!("  config         {}", out.config.display());
    println!("  genesis        {}", out.genesis.display());
    for (i, (path, address)) in out.validator_keys.iter().enumerate() {
        println!("  validator {i:<4} {} (address {address})", path.display());
    }
    println!("  faucet key     {} (address {}, balance {})", out.faucet_key.display(), out.faucet_address, opts.faucet_balance);
    if a.validators == 1 {
        println!("run it with: aether run --dir {}", a.dir.display());
    } else {
        for c in &out.process_configs {
            println!("  process config {}", c.display());
        }
        println!("run validator I as its own process with: aether run --dir {} --validator I", a.dir.display());
        println!("the full node with:                      aether run --config {}", a.dir.join("fullnode.toml").display());
        println!("all validators in one process with:      aether devnet --in-process --dir {}", a.dir.display());
    }
    Ok(())
}

pub(crate) async fn devnet(a: DevnetArgs) -> anyhow::Result<()> {
    let dir = match a.dir {
        Some(d) => d,
        None => {
            let dir = tempfile::Builder::new().prefix("aether-devnet-").tempdir()?.keep();
            let mut opts = init::InitOptions::new(&dir);
            opts.chain_id = "aether-devnet".into();
            opts.fund_dev_account = true;
            opts.validators = a.validators;
            init::init_chain(&opts)?;
            println!("devnet chain in {} (delete it when done)", dir.display());
            println!("dev account {} is funded: aether tx transfer --dev --to ADDRESS --amount N", keys::dev_account().address());
            dir
        }
    };
    let overrides = parse_overrides(&a.set)?;
    let nodes = aether_presets::devnet::launch_devnet(&dir, a.rpc_listen, &overrides).await?;
    for (i, n) in nodes.iter().enumerate() {
        if let Some(rpc) = &n.rpc {
            println!("validator {i}: JSON-RPC on {}", rpc.http_url());
        }
    }
    let stopped = futures::future::select_all(nodes.iter().map(|n| Box::pin(n.node.stopped())));
    let failed = tokio::select! {
        _ = wait_for_shutdown_signal() => false,
        _ = stopped => true,
    };
    tracing::info!("shutting down");
    let mut errors = Vec::new();
    for (i, n) in nodes.into_iter().enumerate() {
        if let Err(e) = n.shutdown().await {
            errors.push(format!("validator {i}: {e:#}"));
        }
    }
    if failed || !errors.is_empty() {
        bail!("a validator stopped unexpectedly: {}", errors.join("; "));
    }
    tracing::info!("stopped cleanly");
    Ok(())
}
