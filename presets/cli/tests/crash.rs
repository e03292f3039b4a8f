//! Crash safety: the `aether` binary is killed with SIGKILL at seeded random moments while it
//! commits blocks under load, then restarted on the same folder. Nothing it reported as
//! committed may be lost, it must keep going, and at the end every stored block must
//! re-execute to the roots in its header.
//!
//! `AETHER_CRASH_ROUNDS=N` sets the number of kills (default 20); `AETHER_SEED=N` the seed.

// Test and bench code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aether_framework::codec;
use aether_framework::ledger::Ledger;
use aether_framework::storage::{columns, KvStore};
use aether_framework::types::{Action, Address, Genesis, GenesisAccount, GenesisValidator, Keypair, TxBody};
use aether_rpc::AetherApiClient;
use aether_storage_paritydb::{ParitySettings, ParityStore};
use aether_storage_rocksdb::{RocksSettings, RocksStore};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use rand::{Rng, SeedableRng};

mod common;
use common::ChildGuard;

const BIN: &str = env!("CARGO_BIN_EXE_aether");

async fn connect(url: &str) -> HttpClient {
    let client = HttpClientBuilder::default().request_timeout(Duration::from_secs(5)).build(url).unwrap();
    let start = Instant::now();
    while client.status().await.is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "node did not come back up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_committing_loses_nothing_committed_on_rocksdb() {
    crash_and_restart("rocksdb").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_committing_loses_nothing_committed_on_paritydb() {
    crash_and_restart("paritydb").await
}

async fn crash_and_restart(backend: &str) {
    let rounds: usize = std::env::var("AETHER_CRASH_ROUNDS").map(|v| v.parse().expect("a number")).unwrap_or(20);
    let seed: u64 = std::env::var("AETHER_SEED").map(|v| v.parse().expect("a u64")).unwrap_or(7);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);

    let dir = tempfile::tempdir().unwrap();
    let validator = Keypair::from_seed([1; 32]);
    let sender = Keypair::from_seed([2; 32]);
    let genesis = Genesis {
        chain_id: "crash-test".into(),
        genesis_time_ms: 0,
        modules: vec![],
        epochs: None,
        accounts: vec![GenesisAccount { address: sender.address(), balance: 1_000_000_000 }],
        validators: vec![GenesisValidator { name: "v".into(), identity: validator.public(), consensus_key: vec![], stake: 1 }],
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = format!(
        "[node]\nvalidator_key = \"{}\"\n[rpc]\nlisten = \"127.0.0.1:{port}\"\n[consensus]\nengine = \"solo\"\n[consensus.solo]\nblock_interval_ms = 20\nmin_block_interval_ms = 5\n[storage]\nbackend = \"{backend}\"\n",
        aether_presets::init::VALIDATOR_KEY
    );
    aether_presets::init::write_chain_folder(dir.path(), &genesis, &validator, aether_presets::init::VALIDATOR_KEY, &config).unwrap();
    let url = format!("http://127.0.0.1:{port}");

    let mut committed_height = 0;
    let mut committed_nonce = 0;
    for round in 0..rounds {
        let child = Command::new(BIN)
            .args(["run", "--dir", dir.path().to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut node = ChildGuard(Some(child));
        let client = connect(&url).await;

        // What was reported committed before the last kill is still there.
        let status = client.status().await.unwrap();
        let account = client.account(sender.address()).await.unwrap();
        assert!(
            status.height >= committed_height,
            "seed {seed} round {round}: height {} < {committed_height} seen before the kill",
            status.height
        );
        assert!(account.nonce >= committed_nonce, "seed {seed} round {round}: nonce {} < {committed_nonce}", account.nonce);

        // Load: a stream of transfers, so the kill lands while blocks with transactions commit.
        let load_client = connect(&url).await;
        let key = sender.clone();
        let load = tokio::spawn(async move {
            let mut nonce = load_client.account(key.address()).await.map(|a| a.next_nonce).unwrap_or(0);
            loop {
                let tx = TxBody {
                    chain_id: "crash-test".into(),
                    sender: key.public(),
                    nonce,
                    fee: 1,
                    action: Action::Transfer { to: Address([3; 20]), amount: 1, memo: vec![] },
                }
                .sign(&key);
                if load_client.submit_transaction(format!("0x{}", hex::encode(codec::encode(&tx)))).await.is_ok() {
                    nonce += 1;
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(rng.gen_range(30..300))).await;
        // Anything the node reports now was written before it answered.
        if let (Ok(s), Ok(a)) = (client.status().await, client.account(sender.address()).await) {
            committed_height = s.height;
            committed_nonce = a.nonce;
        }
        let mut child = node.0.take().unwrap();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        load.abort();
    }
    assert!(committed_nonce > 0, "the load never committed anything: the test did not exercise commits");
    eprintln!("{backend}, seed {seed}: {rounds} kills; last reported height {committed_height}, transfers committed {committed_nonce}");

    // Offline check of the folder: the ledger opens (it checks the state tree's root against the
    // head), every block re-executes on a fresh ledger to the tx and state roots in its header,
    // and the root recomputed from scratch agrees.
    let path = dir.path().join("data/db");
    let store: Arc<dyn KvStore> = match backend {
        "rocksdb" => Arc::new(RocksStore::open(&path, columns::SCHEMA, &RocksSettings::default()).unwrap()),
        _ => Arc::new(ParityStore::open(&path, columns::SCHEMA, &ParitySettings::default()).unwrap()),
    };
    let ledger = Ledger::open(store, &genesis).expect("the crashed folder opens consistently");
    let head = ledger.head();
    assert!(head.block.height >= committed_height);
    let replay = Ledger::open(Arc::new(aether_storage_memory::MemoryStore::new()), &genesis).unwrap();
    for h in 1..=head.block.height {
        let (block, cert) = ledger.block_by_height(h).unwrap().unwrap_or_else(|| panic!("block {h} missing"));
        let executed = replay.execute_block(block).unwrap_or_else(|e| panic!("block {h} does not re-execute: {e}"));
        replay.commit(&executed.hash, &cert).unwrap();
    }
    assert_eq!(replay.head().header.state_root, head.header.state_root);
    assert_eq!(ledger.recompute_state_root().unwrap(), head.header.state_root);
}
