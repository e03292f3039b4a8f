//! `aether devnet`: every validator of a chain as its own `aether run` process on 127.0.0.1
//! (the default), with a live table until Ctrl-C; or all of them in this process over the
//! in-process network (`--in-process`). And `aether peers`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aether_presets::{init, keys};
use aether_rpc::AetherApiClient;
use anyhow::{bail, Context};
use clap::Args;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};

use crate::node::{parse_overrides, wait_for_shutdown_signal};

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
    /// Validator I listens for peers on 127.0.0.1 at this port + I (throwaway chain only;
    /// a chain folder's validator-I.toml says where).
    #[arg(long, default_value_t = 30400)]
    pub(crate) p2p_port: u16,
    /// All validators in this process over the in-process network, instead of one process each.
    #[arg(long)]
    pub(crate) in_process: bool,
    /// Override any setting for every validator (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) set: Vec<String>,
}

pub(crate) async fn devnet(a: DevnetArgs) -> anyhow::Result<()> {
    let dir = match &a.dir {
        Some(d) => d.clone(),
        None => {
            let dir = tempfile::Builder::new().prefix("aether-devnet-").tempdir()?.keep();
            let mut opts = init::InitOptions::new(&dir);
            opts.preset = crate::presets().default_preset().name().to_string();
            opts.chain_id = "aether-devnet".into();
            opts.fund_dev_account = true;
            opts.validators = a.validators;
            opts.rpc_listen = Some(a.rpc_listen);
            opts.p2p_port_base = a.p2p_port;
            init::init_chain_in(crate::presets(), &opts)?;
            println!("devnet chain in {} (delete it when done)", dir.display());
            println!("dev account {} is funded: aether tx transfer --dev --to ADDRESS --amount N", keys::dev_account().address());
            dir
        }
    };
    if a.in_process {
        in_process(&dir, a.rpc_listen, &a.set).await
    } else {
        processes(&dir, &a.set).await
    }
}

async fn in_process(dir: &Path, rpc_listen: SocketAddr, set: &[String]) -> anyhow::Result<()> {
    let overrides = parse_overrides(set)?;
    let nodes = aether_presets::devnet::launch_devnet(crate::presets(), dir, rpc_listen, &overrides).await?;
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

/// The validator processes; each is stopped (SIGTERM, then SIGKILL after 15 s) when dropped.
pub(crate) struct Processes(pub(crate) Vec<Child>);

impl Processes {
    pub(crate) fn stop(&mut self) {
        for c in &self.0 {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        for c in &mut self.0 {
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        self.0.clear();
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts `exe run --config CONFIG --set S...` with its output to `log`. The node stops itself
/// if this process dies without stopping it (see `node::PARENT_PID_ENV`).
pub(crate) fn spawn_node(exe: &Path, config: &Path, set: &[String], log: &Path) -> anyhow::Result<Child> {
    let log = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let mut cmd = Command::new(exe);
    cmd.args(["run", "--config"]).arg(config).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    cmd.env(crate::node::PARENT_PID_ENV, std::process::id().to_string());
    for s in set {
        cmd.args(["--set", s]);
    }
    cmd.spawn().with_context(|| format!("starting a node with {}", config.display()))
}

/// The RPC address a process config file names.
fn rpc_of(config: &Path) -> anyhow::Result<SocketAddr> {
    let text = std::fs::read_to_string(config).with_context(|| format!("reading {}", config.display()))?;
    let table: toml::Table = toml::from_str(&text).with_context(|| format!("{} is not TOML", config.display()))?;
    let listen = table.get("rpc").and_then(|r| r.get("listen")).and_then(|l| l.as_str()).unwrap_or("127.0.0.1:9944");
    listen.parse().with_context(|| format!("{}: rpc.listen {listen:?}", config.display()))
}

async fn processes(dir: &Path, set: &[String]) -> anyhow::Result<()> {
    let mut configs = Vec::new();
    while dir.join(format!("validator-{}.toml", configs.len())).is_file() {
        configs.push(dir.join(format!("validator-{}.toml", configs.len())));
    }
    if configs.is_empty() {
        bail!("{} has no validator-I.toml: make the chain with `aether init --validators N` (N > 1), or use --in-process", dir.display());
    }
    let exe = std::env::current_exe().context("finding the aether binary")?;
    let mut children = Processes(Vec::new());
    let mut clients = Vec::new();
    for (i, config) in configs.iter().enumerate() {
        let log_path = dir.join(format!("validator-{i}.log"));
        children.0.push(spawn_node(&exe, config, set, &log_path).with_context(|| format!("starting validator {i}"))?);
        let rpc = rpc_of(config)?;
        clients.push((rpc, HttpClientBuilder::default().request_timeout(Duration::from_secs(2)).build(format!("http://{rpc}"))?));
        println!("validator {i}: JSON-RPC on http://{rpc}, log {}", log_path.display());
    }
    println!("{} validator processes started; Ctrl-C stops them all", configs.len());
    let mut table = tokio::time::interval(Duration::from_secs(2));
    let mut last: Option<(Instant, u64)> = None;
    let outcome = loop {
        tokio::select! {
            _ = wait_for_shutdown_signal() => break Ok(()),
            _ = table.tick() => {
                for (i, c) in children.0.iter_mut().enumerate() {
                    if let Ok(Some(status)) = c.try_wait() {
                        // Dropping `children` stops the others.
                        bail!("validator {i} exited ({status}); see its log");
                    }
                }
                last = print_table(&clients, last).await;
            }
        }
    };
    println!("stopping the validators");
    children.stop();
    outcome
}

/// One line per validator: height, peers, sync state, time since its last commit; and the
/// chain's transactions per second, from validator 0's blocks since the last table.
async fn print_table(clients: &[(SocketAddr, HttpClient)], last: Option<(Instant, u64)>) -> Option<(Instant, u64)> {
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    println!("{:<10} {:>8} {:>6} {:>9} {:>14}", "validator", "height", "peers", "syncing", "last commit");
    let mut head0 = None;
    for (i, (_, c)) in clients.iter().enumerate() {
        match c.status().await {
            Ok(s) => {
                let peers = c.peers().await.ok().flatten().map_or(0, |p| p.peers.len());
                let syncing = c.sync_status().await.map(|s| s.syncing).unwrap_or(false);
                let age = now_ms.saturating_sub(s.head_time_ms);
                println!("{i:<10} {:>8} {peers:>6} {syncing:>9} {:>11} ms", s.height, age);
                if i == 0 {
                    head0 = Some(s.height);
                }
            }
            Err(_) => println!("{i:<10} {:>8}", "down"),
        }
    }
    let head0 = head0?;
    if let Some((at, from)) = last {
        let mut txs = 0usize;
        for h in from + 1..=head0.min(from + 200) {
            if let Ok(Some(b)) = clients[0].1.block_by_height(h).await {
                txs += b.transactions.len();
            }
        }
        println!("chain: {} blocks, {:.0} tx/s since the last table", head0.saturating_sub(from), txs as f64 / at.elapsed().as_secs_f64());
    }
    Some((Instant::now(), head0))
}

#[derive(Args)]
pub(crate) struct PeersArgs {
    /// The node's JSON-RPC URL.
    #[arg(long, default_value = "http://127.0.0.1:9944")]
    pub(crate) rpc: String,
}

/// `aether peers`: the node's connected peers and network counters.
pub(crate) async fn peers(a: PeersArgs) -> anyhow::Result<()> {
    let client = HttpClientBuilder::default().request_timeout(Duration::from_secs(10)).build(&a.rpc)?;
    let Some(view) = client.peers().await.with_context(|| format!("cannot reach the node at {}", a.rpc))? else {
        println!("the node has no network (a single-validator chain)");
        return Ok(());
    };
    println!("{} connected peers", view.peers.len());
    for p in &view.peers {
        println!("  {p}");
    }
    for (topic, bytes) in &view.stats.bytes_in {
        println!("in  {topic:<22} {bytes:>14} bytes");
    }
    for (topic, bytes) in &view.stats.bytes_out {
        println!("out {topic:<22} {bytes:>14} bytes");
    }
    for (reason, n) in &view.stats.dropped {
        println!("dropped {reason:<18} {n:>10}");
    }
    for p in &view.stats.blocked {
        println!("blocked {p}");
    }
    Ok(())
}
