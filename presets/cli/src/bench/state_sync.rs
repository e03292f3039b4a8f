//! `aether bench state-sync`: four validator processes (default preset, libp2p on 127.0.0.1)
//! run a chain whose genesis holds `accounts` extra accounts; a full-node process then starts
//! with `--state-sync`. Reports the state sync's time and the process's peak memory, beside the
//! same state moved the other way this build offers, measured in the same run: a snapshot
//! exported from a stopped validator and imported (`aether snapshot import`, which holds the
//! whole state in memory) into an empty data directory.
//!
//! Peak memory is the process's `VmHWM` (Linux), read while the process runs: exact for the
//! full node (read after its state sync, while it is still running), sampled every 10 ms for
//! the import (which exits; the sample can only under-state its peak).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aether_framework::types::{Address, Genesis, GenesisAccount};
use aether_rpc::AetherApiClient;
use anyhow::{bail, Context};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};

use super::free_port_range;
use crate::devnet::{spawn_node, Processes};

pub struct StateSyncBenchOptions {
    /// Accounts added to genesis.
    pub accounts: u64,
}

/// Peak resident memory of process `pid` so far, in bytes (`VmHWM`).
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

async fn height(c: &HttpClient) -> u64 {
    c.status().await.map(|s| s.height).unwrap_or(0)
}

/// Runs `exe args` to completion (at most `limit`), sampling its peak memory: (wall time, peak bytes).
fn run_sampled(exe: &Path, args: &[&str], env: (&str, &Path), log: &Path, limit: Duration) -> anyhow::Result<(Duration, u64)> {
    let log = std::fs::File::create(log)?;
    let started = Instant::now();
    let mut child: Child =
        Command::new(exe).args(args).env(env.0, env.1).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log).spawn()?;
    let mut peak = 0;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{args:?} did not finish within {limit:?}");
        }
        peak = peak.max(peak_rss(child.id()).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = started.elapsed();
    if !status.success() {
        bail!("{args:?} failed ({status})");
    }
    Ok((elapsed, peak))
}

pub async fn run_state_sync_bench(opts: &StateSyncBenchOptions) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new().prefix("aether-bench-state-sync-").tempdir()?;
    let path = dir.path();
    let base = free_port_range(10)?;
    let mut init = aether_presets::init::InitOptions::new(path);
    init.validators = 4;
    init.rpc_listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], base)));
    init.p2p_port_base = base + 5;
    aether_presets::init::init_chain(&init)?;
    let genesis_path = path.join("genesis.json");
    let mut genesis = Genesis::load(&genesis_path)?;
    genesis.accounts.extend((0..opts.accounts).map(|i| {
        let mut a = [0xbe; 20];
        a[..8].copy_from_slice(&i.to_be_bytes());
        GenesisAccount { address: Address(a), balance: u128::from(i) + 1 }
    }));
    std::fs::write(&genesis_path, serde_json::to_string(&genesis)?)?;
    let entries = genesis.accounts.len();

    let exe = std::env::current_exe()?;
    let mut nodes = Processes(Vec::new());
    for i in 0..4 {
        let (config, log) = (path.join(format!("validator-{i}.toml")), path.join(format!("validator-{i}.log")));
        nodes.0.push(spawn_node(&exe, &config, &[], &log)?);
    }
    let client =
        |port: u16| HttpClientBuilder::default().request_timeout(Duration::from_secs(10)).build(format!("http://127.0.0.1:{port}"));
    let v0 = client(base)?;
    let full = client(base + 4)?;
    // The full node's RPC port accepts connections before the node answers (state sync runs
    // first): poll with a short timeout so the log is watched as it is written.
    let full_poll =
        HttpClientBuilder::default().request_timeout(Duration::from_millis(200)).build(format!("http://127.0.0.1:{}", base + 4))?;
    let deadline = Instant::now() + Duration::from_secs(900);
    while height(&v0).await < 5 {
        if Instant::now() > deadline {
            bail!("the validators did not start; logs in {}", path.display());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The full node starts from a validator's state.
    let started = Instant::now();
    let full_node = spawn_node(&exe, &path.join("fullnode.toml"), &["sync.state_sync=true".into()], &path.join("fullnode.log"))?;
    let full_pid = full_node.id();
    nodes.0.push(full_node);
    // When the fetching starts (its log line), note the memory start-up took.
    let log = path.join("fullnode.log");
    let mut before_fetch: Option<(Duration, u64)> = None;
    let report = loop {
        if before_fetch.is_none() && std::fs::read_to_string(&log).is_ok_and(|l| l.contains("state sync: fetching")) {
            before_fetch = Some((started.elapsed(), peak_rss(full_pid).unwrap_or(0)));
        }
        if let Ok(Some(report)) = full_poll.sync_status().await.map(|s| s.state_sync) {
            break report;
        }
        if Instant::now() > deadline {
            bail!("the full node did not finish state sync; logs in {}", path.display());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let to_rpc = started.elapsed();
    let full_peak = peak_rss(full_pid).context("reading the full node's peak memory")?;
    let target = height(&v0).await;
    while height(&full).await < target {
        if Instant::now() > deadline {
            bail!("the state-synced full node did not follow the chain; logs in {}", path.display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let to_head = started.elapsed();
    nodes.stop();

    // Baseline: the same state as a snapshot file, exported from validator 3, imported whole.
    let snapshot = path.join("state.snap");
    let (export, _) = run_sampled(
        &exe,
        &["snapshot", "export", "--config", &path.join("validator-3.toml").display().to_string(), "--out", &snapshot.display().to_string()],
        ("AETHER_LOG", Path::new("warn")),
        &path.join("export.log"),
        Duration::from_secs(900),
    )?;
    let snapshot_bytes = std::fs::metadata(&snapshot)?.len();
    let (import, import_peak) = run_sampled(
        &exe,
        &["snapshot", "import", "--config", &path.join("fullnode.toml").display().to_string(), "--file", &snapshot.display().to_string()],
        ("AETHER_NODE__DATA_DIR", &path.join("data-import")),
        &path.join("import.log"),
        Duration::from_secs(900),
    )?;

    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!("state: {entries} accounts in genesis ({} added), 4 validator processes + 1 full node on 127.0.0.1", opts.accounts);
    println!(
        "  state sync: height {}, {} entries in {} chunks, {:.1} MiB received, {:.2} s ({} restarts); {:.2} s from process start to RPC, {:.2} s to the head ({target})",
        report.height,
        report.entries,
        report.chunks,
        mib(report.bytes),
        report.millis as f64 / 1000.0,
        report.restarts,
        to_rpc.as_secs_f64(),
        to_head.as_secs_f64()
    );
    let (fetch_at, startup_peak) = before_fetch.unwrap_or_default();
    println!(
        "    full node peak memory (VmHWM): {:.1} MiB through state sync; {:.1} MiB when fetching began ({:.2} s after process start: config, genesis, network)",
        mib(full_peak),
        mib(startup_peak),
        fetch_at.as_secs_f64()
    );
    println!(
        "  baseline, snapshot file: export {:.2} s ({:.1} MiB file); import {:.2} s, peak memory {:.1} MiB (sampled)",
        export.as_secs_f64(),
        mib(snapshot_bytes),
        import.as_secs_f64(),
        mib(import_peak)
    );
    println!(
        "  ratio state sync / import: time {:.2}, peak memory {:.2}",
        report.millis as f64 / 1000.0 / import.as_secs_f64(),
        full_peak as f64 / import_peak.max(1) as f64
    );
    Ok(())
}
