//! `aether bench sync`: four validator processes (default preset, libp2p on 127.0.0.1) build a
//! chain of transfers; a full-node process then joins and catches up by block sync. Reports
//! the catch-up in blocks/s and MB/s, beside the floor measured in the same run on the same
//! blocks: checking their certificates alone (a key-less HotStuff engine, one core, no
//! execution or storage); and what one validator sent per committed block, per topic.

use std::time::{Duration, Instant};

use aether_framework::codec;
use aether_framework::consensus::{BlockRef, EngineContext, ValidatorSet};
use aether_framework::registry::PluginSettings;
use aether_framework::types::{Action, Address, Genesis, TxBody};
use aether_rpc::AetherApiClient;
use anyhow::{bail, Context};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};

use super::free_port_range;
use crate::devnet::{spawn_node, Processes};

pub struct SyncBenchOptions {
    /// Height the validators reach before the full node starts.
    pub blocks: u64,
    /// Transfers submitted while the chain grows.
    pub txs: u64,
}

async fn height(c: &HttpClient) -> u64 {
    c.status().await.map(|s| s.height).unwrap_or(0)
}

pub async fn run_sync_bench(opts: &SyncBenchOptions) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new().prefix("aether-bench-sync-").tempdir()?;
    let base = free_port_range(10)?;
    let mut init = aether_presets::init::InitOptions::new(dir.path());
    init.validators = 4;
    init.rpc_listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], base)));
    init.p2p_port_base = base + 5;
    aether_presets::init::init_chain(&init)?;
    let exe = std::env::current_exe()?;
    let mut nodes = Processes(Vec::new());
    for i in 0..4 {
        let (config, log) = (dir.path().join(format!("validator-{i}.toml")), dir.path().join(format!("validator-{i}.log")));
        // No idle pacing: the chain grows to the target height whether or not blocks fill.
        nodes.0.push(spawn_node(&exe, &config, &["consensus.hotstuff.heartbeat_ms=0".into()], &log)?);
    }
    let client =
        |port: u16| HttpClientBuilder::default().request_timeout(Duration::from_secs(10)).build(format!("http://127.0.0.1:{port}"));
    let v0 = client(base)?;
    let full = client(base + 4)?;
    let deadline = Instant::now() + Duration::from_secs(600);
    while height(&v0).await < 1 {
        if Instant::now() > deadline {
            bail!("the validators did not start; logs in {}", dir.path().display());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Transfers from the faucet while the chain grows, so blocks carry transactions.
    let faucet = aether_presets::keys::read_key_file(&dir.path().join("keys/faucet.json"))?;
    let chain_id = v0.status().await?.chain_id;
    for nonce in 0..opts.txs {
        let tx = TxBody {
            chain_id: chain_id.clone(),
            sender: faucet.public(),
            nonce,
            fee: 1_000,
            action: Action::Transfer { to: Address([(nonce % 251) as u8; 20]), amount: 1, memo: vec![] },
        }
        .sign(&faucet);
        v0.submit_transaction(format!("0x{}", hex::encode(codec::encode(&tx)))).await?;
    }
    while height(&v0).await < opts.blocks {
        if Instant::now() > deadline {
            bail!("the validators did not reach height {}", opts.blocks);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let target = height(&v0).await;
    let sent = v0.peers().await?.context("validator 0 has no network")?.stats.bytes_out;

    // The full node joins and catches up.
    let started = Instant::now();
    nodes.0.push(spawn_node(&exe, &dir.path().join("fullnode.toml"), &[], &dir.path().join("fullnode.log"))?);
    while height(&full).await < target {
        if Instant::now() > deadline {
            bail!("the full node did not catch up; logs in {}", dir.path().display());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let catch_up = started.elapsed();
    let sync = full.sync_status().await?;
    let received = full.peers().await?.context("the full node has no network")?.stats.bytes_in;
    let sync_bytes = received.get(aether_framework::node::SYNC_TOPIC).copied().unwrap_or(0);

    // The floor on the same blocks: their certificates checked by a key-less engine.
    let mut blocks = Vec::with_capacity(target as usize);
    for h in 1..=target {
        let b = v0.block_by_height(h).await?.with_context(|| format!("block {h}"))?;
        blocks.push((BlockRef { hash: b.hash, height: h }, b.certificate));
    }
    let genesis = Genesis::load(&dir.path().join("genesis.json"))?;
    let registry = aether_presets::aether().registry();
    let ctx = EngineContext {
        chain_id: genesis.chain_id.clone(),
        genesis: aether_framework::ledger::Ledger::genesis_block(&genesis).hash(),
        validators: ValidatorSet::from_genesis(&genesis),
        local: None,
        epoch: Default::default(),
    };
    let verifier = (registry.consensus.get("hotstuff")?.factory)(&ctx, &PluginSettings::empty("consensus.hotstuff"))?;
    let t0 = Instant::now();
    let proofs = blocks.iter().filter(|(b, c)| verifier.verify_certificate(b, c).is_ok()).count();
    let verify = t0.elapsed();
    nodes.stop();

    let secs = catch_up.as_secs_f64();
    println!("chain: {target} blocks, {} transfers, 4 validator processes + 1 full node on 127.0.0.1", opts.txs);
    println!(
        "  full node catch-up: {:.2} s from process start to height {target}: {:.0} blocks/s, {:.2} MB/s of sync messages ({} blocks by sync)",
        secs,
        target as f64 / secs,
        sync_bytes as f64 / 1e6 / secs,
        sync.synced_blocks
    );
    println!(
        "  floor, certificates alone: {:.3} s for {target} certificates ({proofs} proofs of finality, 2 BLS aggregate checks each): {:.0} blocks/s",
        verify.as_secs_f64(),
        target as f64 / verify.as_secs_f64()
    );
    println!("  ratio catch-up / floor: {:.3}", (target as f64 / secs) / (target as f64 / verify.as_secs_f64()));
    println!("  validator 0 sent per committed block (n = 4):");
    for (topic, bytes) in &sent {
        println!("    {topic:<22} {:>10.0} bytes", *bytes as f64 / target as f64);
    }
    Ok(())
}
