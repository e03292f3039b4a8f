//! `aether bench validators`: committed transfers per second and commit latency of several
//! HotStuff validators in one process (real nodes — driver, ledger, storage, mempool — over the
//! in-process network), beside one `solo` validator on the same transactions in the same run.
//!
//! Transactions are pre-signed; each sender's go to one validator's API (sender `i` to
//! validator `i mod n`, no RPC) and reach the others by transaction gossip, so every validator
//! verifies each one once. Latency is from the submission of a transaction to the commit of
//! its block on validator 0. All nodes share the machine's cores.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aether_consensus_hotstuff::{HotStuffEngine, HotStuffSettings};
use aether_framework::codec;
use aether_framework::consensus::solo::{SoloEngine, SoloSettings};
use aether_framework::network::memory::MemoryHub;
use aether_framework::network::Network;
use aether_framework::node::{Node, NodeBuilder};
use aether_framework::registry::SlotKind;
use aether_framework::types::{Action, Address, Genesis, GenesisAccount, Hash, Keypair, SignedTransaction, TxBody};
use anyhow::{bail, Context};

#[derive(Debug, Clone)]
pub struct ValidatorsBenchOptions {
    pub txs: usize,
    pub senders: usize,
    pub validators: usize,
    pub storage: String,
    pub timeout: Duration,
    /// Also run the validators as separate `aether run` processes (libp2p on 127.0.0.1).
    pub processes: bool,
}

/// One configuration's result.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub engine: &'static str,
    pub validators: usize,
    pub blocks: usize,
    pub elapsed: Duration,
    pub committed_per_sec: f64,
    pub latency_p50: Duration,
    pub latency_p95: Duration,
}

impl std::fmt::Display for RunReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "  {:>9} x{}: {:>8.0} tx/s committed ({} blocks with transactions, {:.2} s), latency p50 {:.1} ms, p95 {:.1} ms",
            self.engine,
            self.validators,
            self.committed_per_sec,
            self.blocks,
            self.elapsed.as_secs_f64(),
            self.latency_p50.as_secs_f64() * 1e3,
            self.latency_p95.as_secs_f64() * 1e3
        )
    }
}

pub(crate) const CHAIN: &str = "aether-bench-validators";

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted.get(((sorted.len().max(1) - 1) as f64 * p).round() as usize).copied().unwrap_or_default()
}

fn launch(
    dir: &std::path::Path,
    genesis: &Genesis,
    key: &Keypair,
    engine: &str,
    storage: &str,
    txs: usize,
    network: Option<Arc<dyn Network>>,
) -> anyhow::Result<Node> {
    let builder = NodeBuilder::new(genesis.clone()).preset(&aether_presets::aether()).validator_key(key.clone());
    let builder = match engine {
        HotStuffEngine::NAME => builder.settings(HotStuffSettings { min_block_interval_ms: 50, ..HotStuffSettings::default() }),
        SoloEngine::NAME => builder.settings(SoloSettings { min_block_interval_ms: 50, ..SoloSettings::default() }),
        other => bail!("the validators bench runs hotstuff or solo, not {other:?}"),
    };
    let builder = builder.plugin(SlotKind::Storage, storage).data_dir(dir.join("data")).configure(move |c| {
        c.mempool.max_txs = txs.max(1000) * 2;
        c.mempool.max_block_txs = 10_000;
    });
    let builder = match network {
        Some(n) => builder.network(n),
        None => builder,
    };
    builder.launch().map_err(|e| anyhow::anyhow!("bench node: {e}"))
}

async fn run(
    opts: &ValidatorsBenchOptions,
    validators: usize,
    txs: &[SignedTransaction],
    senders: &[Keypair],
) -> anyhow::Result<RunReport> {
    let dir = tempfile::Builder::new().prefix("aether-bench-validators-").tempdir()?;
    let keys: Vec<Keypair> =
        (0..validators).map(|i| Keypair::from_seed(Hash::digest(b"aether/bench-validator", &(i as u64).to_le_bytes()).0)).collect();
    let engine = if validators == 1 { "solo" } else { "hotstuff" };
    let genesis = Genesis {
        chain_id: CHAIN.into(),
        genesis_time_ms: 0,
        modules: vec![],
        epochs: None,
        accounts: senders.iter().map(|k| GenesisAccount { address: k.address(), balance: 1_000_000_000_000 }).collect(),
        validators: aether_presets::init::equal_stake_validators(&keys, "v", |k| {
            if validators == 1 {
                k.public().0.to_vec()
            } else {
                HotStuffEngine::consensus_key(k)
            }
        }),
    };
    let hub = MemoryHub::new();
    let mut nodes = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let network: Option<Arc<dyn Network>> = if validators > 1 { Some(hub.join(k.public())) } else { None };
        nodes.push(launch(&dir.path().join(format!("v{i}")), &genesis, k, engine, &opts.storage, txs.len(), network)?);
    }
    let handles: Vec<_> = nodes.iter().map(Node::handle).collect();
    let mut heads = handles[0].subscribe_heads();
    let sender_index: HashMap<_, usize> = senders.iter().enumerate().map(|(i, k)| (k.public(), i)).collect();
    let encoded: Vec<(Hash, Vec<u8>, usize)> =
        txs.iter().map(|t| (t.hash(), codec::encode(t), sender_index.get(&t.body.sender).copied().unwrap_or(0) % validators)).collect();
    let submitted = Arc::new(parking_lot::Mutex::new(HashMap::with_capacity(txs.len())));
    let t0 = Instant::now();
    let submitter = {
        let (handles, submitted) = (handles.clone(), submitted.clone());
        std::thread::spawn(move || -> anyhow::Result<()> {
            for (hash, bytes, to) in &encoded {
                submitted.lock().insert(*hash, Instant::now());
                handles[*to].submit(bytes).map_err(|e| anyhow::anyhow!("submit: {e}"))?;
            }
            Ok(())
        })
    };
    let mut latencies = Vec::with_capacity(txs.len());
    let mut blocks = 0;
    let deadline = tokio::time::Instant::now() + opts.timeout;
    while latencies.len() < txs.len() {
        let head = match tokio::time::timeout_at(deadline, heads.recv()).await {
            Ok(Ok(h)) => h,
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(n))) => bail!("bench fell {n} heads behind"),
            Ok(Err(e)) => bail!("head stream ended: {e}"),
            Err(_) => bail!("timed out with {} of {} transactions committed", latencies.len(), txs.len()),
        };
        let now = Instant::now();
        if head.tx_count == 0 {
            continue;
        }
        blocks += 1;
        let (block, _) = handles[0].block_by_hash(&head.hash)?.context("committed block not found")?;
        let sub = submitted.lock();
        for tx in &block.transactions {
            if let Some(t) = sub.get(&tx.hash()) {
                latencies.push(now - *t);
            }
        }
    }
    let elapsed = t0.elapsed();
    submitter.join().map_err(|_| anyhow::anyhow!("submitter panicked"))??;
    drop(handles);
    for n in nodes {
        n.shutdown()?;
    }
    latencies.sort_unstable();
    Ok(RunReport {
        engine,
        validators,
        blocks,
        elapsed,
        committed_per_sec: txs.len() as f64 / elapsed.as_secs_f64(),
        latency_p50: percentile(&latencies, 0.5),
        latency_p95: percentile(&latencies, 0.95),
    })
}

/// Runs the baseline (one `solo` validator), then `validators` HotStuff validators in one
/// process, then (with `processes`) as separate processes, on the same pre-signed transfers.
/// The solo baseline, HotStuff in one process, and (with `processes`) HotStuff as processes with
/// transactions gossiped by gossipsub and by direct sends.
pub async fn run_validators_bench(opts: &ValidatorsBenchOptions) -> anyhow::Result<(RunReport, RunReport, Option<(RunReport, RunReport)>)> {
    if opts.senders == 0 || opts.txs < opts.senders || opts.validators < 2 {
        bail!("need at least one sender, at least as many txs as senders, and at least 2 validators");
    }
    let senders: Vec<Keypair> =
        (0..opts.senders).map(|i| Keypair::from_seed(Hash::digest(b"aether/bench-sender", &(i as u64).to_le_bytes()).0)).collect();
    let per_sender = opts.txs / opts.senders;
    let mut txs = Vec::with_capacity(opts.txs);
    // Interleave senders so every block can take transactions from all of them.
    for nonce in 0..per_sender as u64 {
        for key in &senders {
            let body = TxBody {
                chain_id: CHAIN.into(),
                sender: key.public(),
                nonce,
                fee: 1,
                action: Action::Transfer { to: Address([0xee; 20]), amount: 1, memo: vec![] },
            };
            txs.push(body.sign(key));
        }
    }
    let baseline = run(opts, 1, &txs, &senders).await?;
    let hotstuff = run(opts, opts.validators, &txs, &senders).await?;
    let processes = if opts.processes {
        let gossip = super::processes::run_processes(opts, &txs, &senders, true).await?;
        let direct = super::processes::run_processes(opts, &txs, &senders, false).await?;
        Some((gossip, direct))
    } else {
        None
    };
    Ok((baseline, hotstuff, processes))
}
