//! `aether bench transfers`: a load generator for a single node.
//!
//! Starts a node in process on a fresh temporary chain (RocksDB by default), funds `senders`
//! accounts in genesis, pre-signs `txs` transfers, and submits them over JSON-RPC (HTTP) with
//! one sequential submitter per sender. Commit times come from the node's new-head stream;
//! latency is submit-call start to the commit of the block holding the transaction.
//!
//! Baseline, measured in the same run on the same transactions: strict ed25519 verification
//! alone, single-threaded — the per-transaction work no node can avoid.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aether_framework::codec;
use aether_framework::config::ConfigSource;
use aether_framework::types::{Action, Address, Genesis, GenesisAccount, GenesisValidator, Hash, Keypair, SignedTransaction, TxBody};
use aether_rpc::AetherApiClient;
use anyhow::{bail, Context};
use jsonrpsee::http_client::HttpClientBuilder;
use parking_lot::Mutex;

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub txs: usize,
    pub senders: usize,
    pub storage: String,
    pub min_block_interval_ms: u64,
    pub timeout: Duration,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions { txs: 5_000, senders: 16, storage: "rocksdb".into(), min_block_interval_ms: 50, timeout: Duration::from_secs(300) }
    }
}

#[derive(Debug, Clone)]
pub struct BenchReport {
    pub txs: usize,
    pub senders: usize,
    pub storage: String,
    pub blocks: usize,
    pub elapsed: Duration,
    pub committed_per_sec: f64,
    pub submit_per_sec: f64,
    pub latency_p50: Duration,
    pub latency_p95: Duration,
    pub baseline_verify_per_sec: f64,
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "transfers: {} from {} senders over JSON-RPC, storage {}", self.txs, self.senders, self.storage)?;
        writeln!(
            f,
            "  committed          {:>10.0} tx/s  ({} blocks, {:.2} s)",
            self.committed_per_sec,
            self.blocks,
            self.elapsed.as_secs_f64()
        )?;
        writeln!(f, "  submitted (RPC)    {:>10.0} tx/s", self.submit_per_sec)?;
        writeln!(f, "  commit latency     p50 {:.1} ms, p95 {:.1} ms", ms(self.latency_p50), ms(self.latency_p95))?;
        writeln!(f, "  baseline: ed25519 verify_strict of the same txs, one thread: {:.0} tx/s", self.baseline_verify_per_sec)?;
        write!(f, "  ratio committed / verify-only: {:.3}", self.committed_per_sec / self.baseline_verify_per_sec)
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub async fn run_transfer_bench(opts: &BenchOptions) -> anyhow::Result<BenchReport> {
    if opts.senders == 0 || opts.txs < opts.senders {
        bail!("need at least one sender and at least as many txs as senders");
    }
    let dir = tempfile::Builder::new().prefix("aether-bench-").tempdir()?;
    let chain_id = "aether-bench".to_string();
    let validator = Keypair::generate();
    let senders: Vec<Keypair> =
        (0..opts.senders).map(|i| Keypair::from_seed(Hash::digest(b"aether/bench-sender", &(i as u64).to_le_bytes()).0)).collect();
    let genesis = Genesis {
        chain_id: chain_id.clone(),
        genesis_time_ms: 0,
        modules: vec![],
        epochs: None,
        accounts: senders.iter().map(|k| GenesisAccount { address: k.address(), balance: 1_000_000_000_000 }).collect(),
        validators: vec![GenesisValidator {
            name: "bench".into(),
            identity: validator.public(),
            consensus_key: validator.public().0.to_vec(),
            stake: 1,
        }],
    };
    let config = format!(
            "[node]\nvalidator_key = \"{}\"\n[storage]\nbackend = \"{}\"\n[rpc]\nlisten = \"127.0.0.1:0\"\n[consensus]\nengine = \"solo\"\n[consensus.solo]\nmin_block_interval_ms = {}\n[mempool]\nmax_txs = {}\nmax_block_txs = 10000\n",
            aether_presets::init::VALIDATOR_KEY,
            opts.storage,
            opts.min_block_interval_ms,
            opts.txs.max(1000) * 2
        );
    aether_presets::init::write_chain_folder(dir.path(), &genesis, &validator, aether_presets::init::VALIDATOR_KEY, &config)?;

    // Pre-sign everything so the timed part is the node's work and the RPC round trips.
    let per_sender = opts.txs / opts.senders;
    let recipient = Address([0xee; 20]);
    let mut queues: Vec<Vec<(Hash, String)>> = Vec::new();
    let mut all: Vec<SignedTransaction> = Vec::new();
    for key in &senders {
        let mut q = Vec::new();
        for nonce in 0..per_sender as u64 {
            let tx = TxBody {
                chain_id: chain_id.clone(),
                sender: key.public(),
                nonce,
                fee: 1,
                action: Action::Transfer { to: recipient, amount: 1, memo: vec![] },
            }
            .sign(key);
            q.push((tx.hash(), format!("0x{}", hex::encode(codec::encode(&tx)))));
            all.push(tx);
        }
        queues.push(q);
    }
    let total = all.len();

    let start = Instant::now();
    for tx in &all {
        tx.verify_signature().context("a benchmark transaction does not verify")?;
    }
    let baseline_verify_per_sec = total as f64 / start.elapsed().as_secs_f64();

    let source = ConfigSource { file: Some(dir.path().join("aether.toml")), ..Default::default() };
    let node = aether_presets::launch(&aether_presets::aether(), &source).await?;
    let url = node.rpc.as_ref().context("bench needs RPC")?.http_url();
    let handle = node.handle();
    let mut heads = handle.subscribe_heads();

    let submitted: Arc<Mutex<HashMap<Hash, Instant>>> = Arc::new(Mutex::new(HashMap::with_capacity(total)));
    let client = Arc::new(HttpClientBuilder::default().request_timeout(Duration::from_secs(30)).build(&url)?);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for q in queues {
        let (client, submitted) = (client.clone(), submitted.clone());
        tasks.push(tokio::spawn(async move {
            for (hash, hex) in q {
                submitted.lock().insert(hash, Instant::now());
                client.submit_transaction(hex).await?;
            }
            anyhow::Ok(())
        }));
    }

    let mut latencies = Vec::with_capacity(total);
    let mut blocks = 0usize;
    let mut submit_done: Option<Duration> = None;
    let deadline = tokio::time::Instant::now() + opts.timeout;
    while latencies.len() < total {
        let head = match tokio::time::timeout_at(deadline, heads.recv()).await {
            Ok(Ok(h)) => h,
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(n))) => bail!("bench fell {n} heads behind the node"),
            Ok(Err(e)) => bail!("head stream ended: {e}"),
            Err(_) => bail!("timed out with {} of {total} transactions committed", latencies.len()),
        };
        let now = Instant::now();
        if submit_done.is_none() && tasks.iter().all(|t| t.is_finished()) {
            submit_done = Some(t0.elapsed());
        }
        if head.tx_count == 0 {
            continue;
        }
        blocks += 1;
        let (block, _) = handle.block_by_hash(&head.hash)?.context("committed block not found")?;
        let sub = submitted.lock();
        for tx in &block.transactions {
            if let Some(t) = sub.get(&tx.hash()) {
                latencies.push(now - *t);
            }
        }
    }
    let elapsed = t0.elapsed();
    for t in tasks {
        t.await??;
    }
    let submit_elapsed = submit_done.unwrap_or(elapsed);
    node.shutdown().await?;
    latencies.sort_unstable();
    Ok(BenchReport {
        txs: total,
        senders: opts.senders,
        storage: opts.storage.clone(),
        blocks,
        elapsed,
        committed_per_sec: total as f64 / elapsed.as_secs_f64(),
        submit_per_sec: total as f64 / submit_elapsed.as_secs_f64(),
        latency_p50: percentile(&latencies, 0.50),
        latency_p95: percentile(&latencies, 0.95),
        baseline_verify_per_sec,
    })
}
