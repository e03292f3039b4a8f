//! Helpers for Aether's cross-crate tests (`tests/suite`): a temporary chain folder with funded
//! accounts and a validator key, launched through the real preset code with RPC on a free port.
//!
//! ```
//! let chain = aether_tests::TestChain::new(2, "");
//! assert!(chain.config_path().is_file());
//! assert_eq!(chain.genesis.accounts.len(), 2);
//! // `chain.launch().await` starts the `aether` preset on it (RocksDB, RPC on a free port).
//! ```

// Test and bench code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use aether_consensus_hotstuff::HotStuffSettings;
use aether_framework::codec;
use aether_framework::config::ConfigSource;
use aether_framework::node::{NodeBuilder, NodeHandle};
use aether_framework::registry::SlotKind;
use aether_framework::types::{
    Action, Address, Amount, Genesis, GenesisAccount, GenesisValidator, Hash, Keypair, SignedTransaction, TxBody,
};
use aether_presets::LaunchedNode;
use tempfile::TempDir;

pub const CHAIN_ID: &str = "aether-test";
pub const INITIAL_BALANCE: Amount = 1_000_000_000;

/// A chain folder: genesis with funded accounts, a validator key, and `aether.toml`.
pub struct TestChain {
    pub dir: TempDir,
    pub validator: Keypair,
    pub accounts: Vec<Keypair>,
    pub genesis: Genesis,
}

impl TestChain {
    /// `accounts` funded accounts (deterministic keys); `extra_toml` is appended to the config.
    pub fn new(accounts: usize, extra_toml: &str) -> TestChain {
        let dir = tempfile::Builder::new().prefix("aether-test-").tempdir().expect("temp dir");
        let validator = Keypair::from_seed([0xa0; 32]);
        let accounts: Vec<Keypair> = (0..accounts).map(|i| Keypair::from_seed(Hash::digest(b"test-account", &[i as u8]).0)).collect();
        let genesis = Genesis {
            chain_id: CHAIN_ID.into(),
            genesis_time_ms: 1_700_000_000_000,
            modules: vec![],
            epochs: None,
            accounts: accounts.iter().map(|k| GenesisAccount { address: k.address(), balance: INITIAL_BALANCE }).collect(),
            validators: vec![GenesisValidator {
                name: "v0".into(),
                identity: validator.public(),
                // HotStuff's key (BLS, proof of possession, VRF); `solo` ignores it.
                consensus_key: aether_consensus_hotstuff::HotStuffEngine::consensus_key(&validator),
                stake: 1,
            }],
        };
        let config =
            format!("[node]\nvalidator_key = \"{}\"\n[rpc]\nlisten = \"127.0.0.1:0\"\n{extra_toml}", aether_presets::init::VALIDATOR_KEY);
        aether_presets::init::write_chain_folder(dir.path(), &genesis, &validator, aether_presets::init::VALIDATOR_KEY, &config)
            .expect("chain folder");
        TestChain { dir, validator, accounts, genesis }
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("aether.toml")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn source(&self) -> ConfigSource {
        ConfigSource { file: Some(self.config_path()), ..Default::default() }
    }

    /// Launches the node with the `aether` preset (RocksDB).
    pub async fn launch(&self) -> LaunchedNode {
        aether_presets::launch(&aether_presets::aether(), &self.source()).await.expect("node launches")
    }

    pub fn transfer(&self, from: &Keypair, nonce: u64, to: Address, amount: Amount, fee: Amount) -> SignedTransaction {
        TxBody { chain_id: CHAIN_ID.into(), sender: from.public(), nonce, fee, action: Action::Transfer { to, amount, memo: vec![] } }
            .sign(from)
    }
}

pub fn to_hex(tx: &SignedTransaction) -> String {
    format!("0x{}", hex::encode(codec::encode(tx)))
}

pub fn rpc_url(node: &LaunchedNode) -> String {
    node.rpc.as_ref().expect("rpc enabled").http_url()
}

pub fn ws_url(node: &LaunchedNode) -> String {
    node.rpc.as_ref().expect("rpc enabled").ws_url()
}

/// Waits (bounded) until the node's committed height reaches `height`.
pub async fn wait_for_height(node: &NodeHandle, height: u64, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut heads = node.subscribe_heads();
    while node.status().unwrap().head.height < height {
        match tokio::time::timeout_at(deadline, heads.recv()).await {
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => panic!("node stopped before height {height}"),
            Err(_) => panic!("height {height} not reached within {timeout:?}; at {}", node.status().unwrap().head.height),
        }
    }
}

/// Waits (bounded) until transaction `hash` is committed.
pub async fn wait_for_tx(node: &NodeHandle, hash: Hash, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut heads = node.subscribe_heads();
    loop {
        if matches!(node.transaction(&hash), Ok(aether_framework::node::TxLookup::Committed(_))) {
            return;
        }
        match tokio::time::timeout_at(deadline, heads.recv()).await {
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => panic!("node stopped before {hash} committed"),
            Err(_) => panic!("transaction {hash} not committed within {timeout:?}"),
        }
    }
}

/// A HotStuff validator of `genesis` with `key` on `network`, in `dir` (RocksDB, 50 ms
/// minimum block interval, 1 s base timeout): for multi-validator tests in one process.
/// Further choices go on the returned builder.
pub fn hotstuff_validator(
    dir: &std::path::Path,
    genesis: &Genesis,
    key: &Keypair,
    network: std::sync::Arc<dyn aether_framework::network::Network>,
) -> NodeBuilder {
    NodeBuilder::new(genesis.clone())
        .preset(&aether_presets::aether())
        .settings(HotStuffSettings { min_block_interval_ms: 50, base_timeout_ms: 1000, ..HotStuffSettings::default() })
        .plugin(SlotKind::Storage, "rocksdb")
        .data_dir(dir.join("data"))
        .validator_key(key.clone())
        .network(network)
}

/// [`hotstuff_validator`], launched.
pub fn launch_hotstuff_validator(
    dir: &std::path::Path,
    genesis: &Genesis,
    key: &Keypair,
    network: std::sync::Arc<dyn aether_framework::network::Network>,
) -> aether_framework::node::Node {
    hotstuff_validator(dir, genesis, key, network).launch().expect("validator launches")
}

/// Prints the nodes' logs when `AETHER_TEST_LOG` is set (a filter such as `info` or
/// `aether_node=debug`): for finding out why a multi-node test failed.
pub fn log_if_asked() {
    if let Ok(filter) = std::env::var("AETHER_TEST_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::new(filter)).with_test_writer().try_init();
    }
}
