//! `aether bench validators --processes`: the same pre-signed transfers as the in-process run,
//! into validators that are separate `aether run` processes (libp2p on 127.0.0.1, the same
//! storage and block interval). Transactions are submitted over HTTP JSON-RPC (sender `i` to
//! validator `i mod n`); commits are observed on validator 0's WebSocket head subscription, so
//! latency includes RPC both ways, which the in-process run does not pay.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aether_framework::codec;
use aether_framework::types::{Genesis, GenesisAccount, Hash, Keypair, SignedTransaction};
use aether_rpc::AetherApiClient;
use anyhow::{bail, Context};
use jsonrpsee::http_client::HttpClientBuilder;
use jsonrpsee::ws_client::WsClientBuilder;

use super::free_port_range;
use super::validators::{percentile, RunReport, ValidatorsBenchOptions, CHAIN};
use crate::devnet::{spawn_node, Processes};

/// `gossip`: transactions travel by gossipsub (the default); otherwise by direct sends to the
/// connected peers (`[network.libp2p] gossip_topics = []`).
pub async fn run_processes(
    opts: &ValidatorsBenchOptions,
    txs: &[SignedTransaction],
    senders: &[Keypair],
    gossip: bool,
) -> anyhow::Result<RunReport> {
    let n = opts.validators;
    let dir = tempfile::Builder::new().prefix("aether-bench-processes-").tempdir()?;
    let ports = free_port_range(2 * n as u16 + 2)?;
    let mut init = aether_presets::init::InitOptions::new(dir.path());
    init.validators = n;
    init.chain_id = CHAIN.into();
    init.rpc_listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], ports)));
    init.p2p_port_base = ports + n as u16 + 1;
    aether_presets::init::init_chain(&init)?;
    // The bench's senders are funded as in the in-process run.
    let genesis_path = dir.path().join("genesis.json");
    let mut genesis = Genesis::load(&genesis_path)?;
    genesis.accounts.extend(senders.iter().map(|k| GenesisAccount { address: k.address(), balance: 1_000_000_000_000 }));
    std::fs::write(&genesis_path, serde_json::to_string_pretty(&genesis)?)?;

    let exe = std::env::current_exe()?;
    let mut nodes = Processes(Vec::new());
    let mut sets = vec![
        "consensus.hotstuff.min_block_interval_ms=50".to_string(),
        format!("storage.backend=\"{}\"", opts.storage),
        format!("mempool.max_txs={}", txs.len().max(1000) * 2),
        "mempool.max_block_txs=10000".to_string(),
    ];
    if !gossip {
        sets.push("network.libp2p.gossip_topics=[]".to_string());
    }
    for i in 0..n {
        let (config, log) = (dir.path().join(format!("validator-{i}.toml")), dir.path().join(format!("validator-{i}.log")));
        nodes.0.push(spawn_node(&exe, &config, &sets, &log)?);
    }
    let clients: Vec<_> = (0..n)
        .map(|i| {
            HttpClientBuilder::default().request_timeout(Duration::from_secs(30)).build(format!("http://127.0.0.1:{}", ports + i as u16))
        })
        .collect::<Result<_, _>>()?;
    let deadline = Instant::now() + opts.timeout;
    for c in &clients {
        while c.status().await.map(|s| s.height).unwrap_or(0) < 2 {
            if Instant::now() > deadline {
                bail!("the validator processes did not start committing; logs in {}", dir.path().display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let ws = WsClientBuilder::default().build(format!("ws://127.0.0.1:{ports}")).await?;
    let mut heads = ws.subscribe_new_heads().await?;

    let sender_index: HashMap<_, usize> = senders.iter().enumerate().map(|(i, k)| (k.public(), i)).collect();
    let mut per_validator: Vec<Vec<(Hash, String)>> = vec![Vec::new(); n];
    for t in txs {
        let to = sender_index.get(&t.body.sender).copied().unwrap_or(0) % n;
        per_validator[to].push((t.hash(), format!("0x{}", hex::encode(codec::encode(t)))));
    }
    let submitted = std::sync::Arc::new(parking_lot::Mutex::new(HashMap::with_capacity(txs.len())));
    let t0 = Instant::now();
    let mut submitters = Vec::new();
    for (client, batch) in clients.iter().cloned().zip(per_validator) {
        let submitted = submitted.clone();
        submitters.push(tokio::spawn(async move {
            for (hash, hex) in batch {
                submitted.lock().insert(hash, Instant::now());
                client.submit_transaction(hex).await?;
            }
            anyhow::Ok(())
        }));
    }
    let mut latencies = Vec::with_capacity(txs.len());
    let mut blocks = 0;
    let mut all_submitted: Option<Duration> = None;
    while latencies.len() < txs.len() {
        let head = match tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), heads.next()).await {
            Ok(Some(Ok(h))) => h,
            Ok(other) => bail!("head subscription ended: {other:?}"),
            Err(_) => bail!("timed out with {} of {} transactions committed", latencies.len(), txs.len()),
        };
        let now = Instant::now();
        if all_submitted.is_none() && submitters.iter().all(|s| s.is_finished()) {
            all_submitted = Some(t0.elapsed());
        }
        if head.tx_count == 0 {
            continue;
        }
        blocks += 1;
        let block = clients[0].block_by_hash(head.hash).await?.context("committed block not found")?;
        let sub = submitted.lock();
        for tx in &block.transactions {
            if let Some(t) = sub.get(tx) {
                latencies.push(now - *t);
            }
        }
    }
    let elapsed = t0.elapsed();
    println!(
        "  (processes, {}: the last RPC submission returned within {:.2} s of the first; all committed at {:.2} s)",
        if gossip { "gossipsub" } else { "direct sends" },
        all_submitted.unwrap_or(elapsed).as_secs_f64(),
        elapsed.as_secs_f64()
    );
    for s in submitters {
        s.await??;
    }
    for (i, c) in clients.iter().enumerate() {
        if let Ok(Some(peers)) = c.peers().await {
            println!("  (validator {i}: network drops {:?})", peers.stats.dropped);
        }
    }
    nodes.stop();
    latencies.sort_unstable();
    Ok(RunReport {
        engine: "hotstuff",
        validators: n,
        blocks,
        elapsed,
        committed_per_sec: txs.len() as f64 / elapsed.as_secs_f64(),
        latency_p50: percentile(&latencies, 0.5),
        latency_p95: percentile(&latencies, 0.95),
    })
}
