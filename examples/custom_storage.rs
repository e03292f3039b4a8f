//! A storage backend written outside the framework (`aether_examples::log_store`: an
//! append-only log file), run through the storage conformance kit, then under a node.
//!
//! `cargo run --example custom_storage` — the kit panics naming any rule the backend breaks.

// Example code: a failed unwrap is a failed example, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use aether_examples::log_store::{self, LogStore};
use aether_framework::node::NodeBuilder;
use aether_framework::registry::SlotKind;
use aether_framework::types::{Action, Address, Genesis, GenesisAccount, GenesisValidator, Keypair, TxBody};

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    run(dir.path())
}

fn run(dir: &std::path::Path) -> anyhow::Result<()> {
    // 1. The kit: reads, atomic batches, ordered scans, snapshots, reopen, odd keys.
    let kit_dir = dir.join("kit");
    let open = || std::sync::Arc::new(log_store::open_for_node(&kit_dir).expect("open the log store"));
    aether_framework::testkit::storage_conformance(open, Some(open));
    println!("log store: storage conformance kit passed");

    // 2. Under a node: registered by name, as config would choose it (an instance works too:
    //    `.storage(LogStore::open(..)?)`).
    let validator = Keypair::from_seed([1; 32]);
    let alice = Keypair::from_seed([2; 32]);
    let genesis = Genesis {
        chain_id: "log-store-demo".into(),
        genesis_time_ms: 0,
        modules: vec![],
        epochs: None,
        accounts: vec![GenesisAccount { address: alice.address(), balance: 1_000 }],
        validators: vec![GenesisValidator {
            name: "v0".into(),
            identity: validator.public(),
            consensus_key: validator.public().0.to_vec(),
            stake: 1,
        }],
    };
    let launch = || {
        NodeBuilder::new(genesis.clone())
            .register(log_store::register)
            .plugin(SlotKind::Storage, log_store::NAME)
            .plugin(SlotKind::Consensus, "solo")
            .data_dir(dir.join("node"))
            .validator_key(validator.clone())
            .launch()
    };
    let node = launch()?;
    let tx = TxBody {
        chain_id: "log-store-demo".into(),
        sender: alice.public(),
        nonce: 0,
        fee: 1,
        action: Action::Transfer { to: Address([9; 20]), amount: 100, memo: vec![] },
    }
    .sign(&alice);
    let handle = node.handle();
    let hash = handle.submit(&aether_framework::codec::encode(&tx))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !matches!(handle.transaction(&hash)?, aether_framework::node::TxLookup::Committed(_)) {
        anyhow::ensure!(std::time::Instant::now() < deadline, "the transfer did not commit within 20 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    node.shutdown()?;
    // Restarted on the same log: the transfer is still there.
    let node = launch()?;
    let balance = node.handle().account(&Address([9; 20]))?.balance;
    node.shutdown()?;
    anyhow::ensure!(balance == 100, "after a restart the recipient holds {balance}, not 100");
    println!("log store: a node committed a transfer, restarted, and still has it");
    let _ = LogStore::open; // the type a plugin author exports
    Ok(())
}

// The other kits a backend author runs (docs/storage.md): killed writers, identical state
// roots, a killed ledger. The crash kits re-run this test binary with the test's name.

#[test]
fn the_log_store_survives_killed_writers() {
    aether_framework::testkit::storage_crash_conformance(
        "the_log_store_survives_killed_writers",
        |p| log_store::open_for_node(p).unwrap(),
        aether_framework::testkit::CrashSettings::default(),
    );
}

#[test]
fn the_log_store_gives_the_memory_backends_state_roots() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    aether_testkit_node::state_root_conformance(
        || std::sync::Arc::new(log_store::open_for_node(&path).unwrap()),
        aether_testkit_node::StateRootSettings::default(),
    );
}

#[test]
fn a_ledger_on_the_log_store_survives_being_killed() {
    aether_testkit_node::ledger_crash_conformance(
        "a_ledger_on_the_log_store_survives_being_killed",
        |p| std::sync::Arc::new(log_store::open_for_node(p).unwrap()),
        aether_testkit_node::LedgerCrashSettings::default(),
    );
}

#[test]
fn a_node_on_the_log_store_survives_being_killed_and_keeps_going() {
    aether_testkit_node::node_crash_conformance(
        "a_node_on_the_log_store_survives_being_killed_and_keeps_going",
        |p| std::sync::Arc::new(log_store::open_for_node(p).unwrap()),
        aether_testkit_node::LedgerCrashSettings::default(),
    );
}

#[test]
fn the_log_store_passes_the_kit_and_keeps_a_nodes_commits() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path()).unwrap();
}
