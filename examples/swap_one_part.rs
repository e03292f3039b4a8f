//! The default preset with one part swapped, in Rust: storage is a ParityDB instance opened
//! here instead of RocksDB, and HotStuff gets typed settings. Everything else (Wasmtime, the
//! fee mempool, RPC-less) stays as the preset says.
//!
//! `cargo run --example swap_one_part`

// Example code: a failed unwrap is a failed example, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aether_framework::node::NodeBuilder;
use aether_framework::storage::columns;
use aether_framework::types::{Genesis, GenesisValidator, Keypair};
use aether_presets::aether;
use aether_storage_paritydb::{ParitySettings, ParityStore};

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let height = run(dir.path())?;
    println!("the default preset on ParityDB reached height {height}");
    Ok(())
}

fn run(dir: &std::path::Path) -> anyhow::Result<u64> {
    let key = Keypair::from_seed([1; 32]);
    let genesis = Genesis {
        chain_id: "swap-demo".into(),
        genesis_time_ms: 0,
        modules: vec![],
        epochs: None,
        accounts: vec![],
        validators: vec![GenesisValidator {
            name: "v0".into(),
            identity: key.public(),
            // HotStuff's consensus key: BLS key, proof of possession, VRF key.
            consensus_key: aether_consensus_key(&key),
            stake: 1,
        }],
    };
    let store = ParityStore::open(&dir.join("db"), columns::SCHEMA, &ParitySettings::default())?;
    let node = NodeBuilder::new(genesis)
        .preset(&aether())
        .storage(store)
        .settings(aether_consensus_settings())
        .data_dir(dir)
        .validator_key(key)
        .launch()?;
    let handle = node.handle();
    anyhow::ensure!(handle.info().storage == "paritydb" && handle.info().engine == "hotstuff");
    // Bounded: a node that stops committing fails the example instead of hanging it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while handle.status()?.head.height < 3 {
        anyhow::ensure!(!node.has_stopped() && std::time::Instant::now() < deadline, "no 3 blocks within 30 s");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let height = handle.status()?.head.height;
    node.shutdown()?;
    Ok(height)
}

fn aether_consensus_key(key: &Keypair) -> Vec<u8> {
    aether().registry().consensus_key("hotstuff", key)
}

/// Typed: a misspelt field is a compile error, not a config error at start.
fn aether_consensus_settings() -> impl aether_framework::registry::PluginConfig {
    aether_presets::plugins::hotstuff::HotStuffSettings { min_block_interval_ms: 20, heartbeat_ms: 100, ..Default::default() }
}

#[test]
fn the_swapped_node_makes_blocks() {
    let dir = tempfile::tempdir().unwrap();
    assert!(run(dir.path()).unwrap() >= 3);
}
