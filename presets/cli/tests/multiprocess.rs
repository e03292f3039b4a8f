//! Validators as separate processes on 127.0.0.1 over the libp2p network plugin, with the
//! default preset (HotStuff, RocksDB): transfers commit on all four; one validator is killed
//! with SIGKILL under load and the other three keep committing; it stays down until it is more
//! than the engine's fetch window (256 rounds) behind, is restarted, catches up by block sync
//! and rejoins consensus; a full node joins late, starts from a validator's state by state
//! sync and follows the chain; finally every node's committed
//! block hash and state root agree at every height, read over RPC.
//!
//! Every child is killed when the test ends, also when it fails (`ChildGuard`); every wait is
//! bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use aether_framework::codec;
use aether_framework::types::{Action, Address, TxBody};
use aether_rpc::AetherApiClient;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};

mod common;
use common::ChildGuard;

const BIN: &str = env!("CARGO_BIN_EXE_aether");
const VALIDATORS: usize = 4;
/// The engine fetches missing proposals only within this many rounds (HotStuff's window).
const FETCH_WINDOW: u64 = 256;

/// A base port with `count` free consecutive ports above it, on 127.0.0.1.
fn free_port_range(count: u16) -> u16 {
    let seed = std::process::id() as u64 ^ Instant::now().elapsed().as_nanos() as u64;
    for attempt in 0..50u64 {
        let base = 20_000 + ((seed.wrapping_mul(7919).wrapping_add(attempt * 104_729)) % 30_000) as u16;
        let listeners: Vec<_> = (0..count).map_while(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).ok()).collect();
        if listeners.len() == count as usize {
            return base;
        }
    }
    panic!("no {count} consecutive free ports found");
}

fn spawn(dir: &Path, args: &[&str], log: &str) -> ChildGuard {
    let file = std::fs::File::create(dir.join(log)).unwrap();
    let child = Command::new(BIN)
        .args(args)
        .env("AETHER_LOG", "info,aether_net_libp2p=debug")
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    ChildGuard(Some(child))
}

fn spawn_validator(dir: &Path, i: usize, log: &str) -> ChildGuard {
    // No idle pacing: the chain must outgrow the engine's fetch window quickly, load or not
    // (pacing is tested in the simulator).
    let i = i.to_string();
    spawn(dir, &["run", "--dir", dir.to_str().unwrap(), "--validator", &i, "--set", "consensus.hotstuff.heartbeat_ms=0"], log)
}

fn client(port: u16) -> HttpClient {
    HttpClientBuilder::default().request_timeout(Duration::from_secs(5)).build(format!("http://127.0.0.1:{port}")).unwrap()
}

async fn height(c: &HttpClient) -> Option<u64> {
    c.status().await.ok().map(|s| s.height)
}

/// Waits until `cond` over the heights of `clients` holds, at most `within`.
async fn wait_heights(clients: &[&HttpClient], within: Duration, what: &str, cond: impl Fn(&[u64]) -> bool) -> Vec<u64> {
    let deadline = Instant::now() + within;
    loop {
        let mut hs = Vec::new();
        for c in clients {
            hs.push(height(c).await.unwrap_or(0));
        }
        if cond(&hs) {
            return hs;
        }
        assert!(Instant::now() < deadline, "within {within:?}: {what} (heights {hs:?})");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validator_processes_survive_a_kill_sync_a_restart_and_agree() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    eprintln!("chain folder {}", path.display());
    let _keep = KeepOnFailure(path.to_path_buf());
    // Validators 0..3 and the full node: RPC on base..base+4, peers on base+5..base+9.
    let base = free_port_range(10);
    let (rpc, p2p) = (base, base + 5);
    let out = Command::new(BIN)
        .args(["init", "--dir", path.to_str().unwrap(), "--validators", "4"])
        .args(["--rpc-listen", &format!("127.0.0.1:{rpc}"), "--p2p-port", &p2p.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "init failed: {}", String::from_utf8_lossy(&out.stderr));
    let mut nodes: Vec<ChildGuard> = (0..VALIDATORS).map(|i| spawn_validator(path, i, &format!("validator-{i}.log"))).collect();
    let clients: Vec<HttpClient> = (0..=VALIDATORS as u16).map(|i| client(rpc + i)).collect();
    let validators: Vec<&HttpClient> = clients[..VALIDATORS].iter().collect();
    wait_heights(&validators, Duration::from_secs(60), "all four validators commit blocks", |h| h.iter().all(|h| *h >= 3)).await;

    // Load: transfers from the faucet, all submitted to validator 0.
    let faucet = aether_presets::keys::read_key_file(&path.join("keys/faucet.json")).unwrap();
    let chain_id = clients[0].status().await.unwrap().chain_id;
    let mut hashes = Vec::new();
    let submit = |nonce: u64| {
        let tx = TxBody {
            chain_id: chain_id.clone(),
            sender: faucet.public(),
            nonce,
            fee: 1_000,
            action: Action::Transfer { to: Address([nonce as u8 + 1; 20]), amount: 1_000 + nonce as u128, memo: vec![] },
        }
        .sign(&faucet);
        format!("0x{}", hex::encode(codec::encode(&tx)))
    };
    for nonce in 0..20 {
        hashes.push(clients[0].submit_transaction(submit(nonce)).await.unwrap());
    }
    // Validator 3 dies (SIGKILL) while transfers are in flight.
    drop(std::mem::replace(&mut nodes[3], ChildGuard(None))); // Child::kill is SIGKILL
    for nonce in 20..40 {
        hashes.push(clients[0].submit_transaction(submit(nonce)).await.unwrap());
    }
    let survivors: Vec<&HttpClient> = clients[..3].iter().collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    for hash in &hashes {
        for (i, c) in survivors.iter().enumerate() {
            loop {
                if c.transaction(*hash).await.map(|t| t.status == "committed").unwrap_or(false) {
                    break;
                }
                assert!(Instant::now() < deadline, "transfer {hash} commits on validator {i} while validator 3 is down");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    // Stay down until the others are beyond the engine's fetch window: only block sync helps.
    let down_at = height(&clients[0]).await.unwrap();
    wait_heights(&survivors, Duration::from_secs(180), "three validators keep committing past the fetch window", |h| {
        h.iter().all(|h| *h > down_at + FETCH_WINDOW + 20)
    })
    .await;
    nodes[3] = spawn_validator(path, 3, "validator-3-restarted.log");
    let target = height(&clients[0]).await.unwrap();
    wait_heights(&[&clients[3]], Duration::from_secs(120), "the restarted validator catches up", |h| h[0] >= target).await;
    let synced = clients[3].sync_status().await.unwrap();
    // The engine alone cannot fetch across the gap; sync brings it within the window, and
    // the engine may fetch the last stretch itself.
    assert!(synced.synced_blocks >= 64, "the restarted validator caught up by block sync: {synced:?}");
    // Rejoined consensus: it keeps pace with the others after catching up.
    let after = height(&clients[0]).await.unwrap();
    wait_heights(&[&clients[3]], Duration::from_secs(60), "the restarted validator keeps committing", |h| h[0] >= after + 20).await;
    let log = std::fs::read_to_string(path.join("validator-3-restarted.log")).unwrap();
    assert!(log.contains("block sync committed"), "the restarted validator logs its sync");

    // A full node joins late, starts from a validator's state by state sync, and follows the chain.
    let _full = spawn(path, &["run", "--config", path.join("fullnode.toml").to_str().unwrap(), "--state-sync"], "fullnode.log");
    let target = height(&clients[0]).await.unwrap();
    wait_heights(&[&clients[VALIDATORS]], Duration::from_secs(120), "the full node reaches the head", |h| h[0] >= target).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest_like_get(rpc + VALIDATORS as u16, "/ready").await != 200 {
        assert!(Instant::now() < deadline, "a caught-up full node answers /ready with 200");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let full_sync = clients[VALIDATORS].sync_status().await.unwrap();
    let report = full_sync.state_sync.clone().unwrap_or_else(|| panic!("the full node started by state sync: {full_sync:?}"));
    assert!(report.height > FETCH_WINDOW && report.entries >= 40, "state synced at a late height with the whole state: {report:?}");
    assert!(
        clients[VALIDATORS].block_by_height(1).await.map(|b| b.is_none()).unwrap_or(true),
        "the full node never replayed the chain from genesis"
    );

    // A transfer submitted to the full node is gossiped to the validators and commits.
    let from_full = clients[VALIDATORS].submit_transaction(submit(40)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !clients[0].transaction(from_full).await.map(|t| t.status == "committed").unwrap_or(false) {
        assert!(Instant::now() < deadline, "a transfer submitted to the full node commits on validator 0");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Every node's committed chain agrees at every height.
    let mut top = u64::MAX;
    for c in &clients {
        top = top.min(height(c).await.unwrap());
    }
    for h in 1..=top {
        let reference = clients[0].block_by_height(h).await.unwrap().unwrap();
        for (i, c) in clients.iter().enumerate().skip(1) {
            if i == VALIDATORS && h < report.height {
                continue; // the full node's chain starts at its state sync
            }
            let b = c.block_by_height(h).await.unwrap().unwrap_or_else(|| panic!("node {i} has no block at {h}"));
            assert_eq!(b.hash, reference.hash, "node {i} agrees on the block at height {h}");
            assert_eq!(b.header.state_root, reference.header.state_root, "node {i} agrees on the state root at height {h}");
        }
    }
    let balance = clients[3].account(Address([40; 20])).await.unwrap().balance;
    assert_eq!(balance, 1_039, "the synced validator has the transfers' effects");
}

/// `GET path` on the RPC port; the HTTP status.
async fn reqwest_like_get(port: u16, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut response)).await.unwrap().unwrap();
    response.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// Copies the chain folder's logs to `target/multiprocess-logs` when the test fails.
struct KeepOnFailure(std::path::PathBuf);

impl Drop for KeepOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("multiprocess-logs");
            let _ = std::fs::create_dir_all(&out);
            for entry in std::fs::read_dir(&self.0).into_iter().flatten().flatten() {
                if entry.path().extension().is_some_and(|e| e == "log") {
                    let _ = std::fs::copy(entry.path(), out.join(entry.file_name()));
                }
            }
            eprintln!("logs kept in {}", out.display());
        }
    }
}
