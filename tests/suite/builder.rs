//! The `NodeBuilder` as a chain builder uses it: slots given by instance, typed settings, a
//! restart on the same data, and errors that name what was given wrong.

use std::time::Duration;

use aether_framework::consensus::solo::SoloSettings;
use aether_framework::mempool::OrderingPolicy;
use aether_framework::node::{BuildError, NodeBuilder};
use aether_framework::registry::SlotKind;
use aether_framework::storage::columns;
use aether_framework::types::{Address, Genesis, GenesisAccount, GenesisValidator, Keypair, SignedTransaction};
use aether_storage_rocksdb::{RocksSettings, RocksStore};
use aether_tests::{wait_for_tx, CHAIN_ID, INITIAL_BALANCE};

/// Highest amount first: a policy no preset registers, given to the builder as a value.
struct LargestTransferFirst;

impl OrderingPolicy for LargestTransferFirst {
    fn name(&self) -> &'static str {
        "largest-transfer-first"
    }
    fn priority(&self, tx: &SignedTransaction, _arrival_seq: u64) -> u128 {
        match &tx.body.action {
            aether_framework::types::Action::Transfer { amount, .. } => *amount,
            _ => 0,
        }
    }
}

fn genesis(validator: &Keypair, sender: &Keypair) -> Genesis {
    Genesis {
        chain_id: CHAIN_ID.into(),
        genesis_time_ms: 0,
        modules: vec![],
        epochs: None,
        accounts: vec![GenesisAccount { address: sender.address(), balance: INITIAL_BALANCE }],
        validators: vec![GenesisValidator {
            name: "v0".into(),
            identity: validator.public(),
            consensus_key: validator.public().0.to_vec(),
            stake: 1,
        }],
    }
}

fn node_on(store: RocksStore, genesis: &Genesis, validator: &Keypair) -> NodeBuilder {
    NodeBuilder::new(genesis.clone())
        .validator_key(validator.clone())
        .settings(SoloSettings { block_interval_ms: 200, min_block_interval_ms: 5 })
        .storage(store)
        .mempool_policy(LargestTransferFirst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_built_from_instances_commits_transfers_and_restarts_on_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let validator = Keypair::from_seed([0xb1; 32]);
    let sender = Keypair::from_seed([0xb2; 32]);
    let genesis = genesis(&validator, &sender);
    let to = Address([7; 20]);
    let transfer = |nonce: u64, amount: u128| {
        aether_framework::types::TxBody {
            chain_id: CHAIN_ID.into(),
            sender: sender.public(),
            nonce,
            fee: 1,
            action: aether_framework::types::Action::Transfer { to, amount, memo: vec![] },
        }
        .sign(&sender)
    };
    let encode = |tx: &SignedTransaction| aether_framework::codec::encode(tx);

    let store = RocksStore::open(&db, columns::SCHEMA, &RocksSettings::default()).unwrap();
    let node = node_on(store, &genesis, &validator).launch().unwrap();
    let handle = node.handle();
    assert_eq!(handle.info().storage, "rocksdb");
    assert_eq!(handle.info().mempool_policy, "largest-transfer-first", "the instance orders the mempool");
    assert_eq!(handle.info().engine, "solo");
    let mut last = None;
    for nonce in 0..5 {
        last = Some(handle.submit(&encode(&transfer(nonce, 10 + nonce as u128))).unwrap());
    }
    wait_for_tx(&handle, last.unwrap(), Duration::from_secs(20)).await;
    let before = handle.status().unwrap();
    assert_eq!(handle.account(&to).unwrap().balance, 10 + 11 + 12 + 13 + 14);
    node.shutdown().unwrap();

    // The handle outlives the node but no longer holds the store: it says so, and the
    // database opens again (RocksDB refuses a second open of a locked directory).
    assert!(matches!(handle.status(), Err(aether_framework::ledger::LedgerError::NodeStopped)));
    assert!(handle.submit(&encode(&transfer(5, 1))).is_err());
    let store =
        RocksStore::open(&db, columns::SCHEMA, &RocksSettings::default()).expect("shutdown releases the store although a handle remains");
    let node = node_on(store, &genesis, &validator).launch().unwrap();
    let restarted = node.handle();
    assert!(restarted.status().unwrap().head.height >= before.head.height, "the restart continues from the committed head");
    assert_eq!(restarted.account(&to).unwrap().balance, 60, "committed transfers survive the restart");
    let tx = restarted.submit(&encode(&transfer(5, 40))).unwrap();
    wait_for_tx(&restarted, tx, Duration::from_secs(20)).await;
    assert_eq!(restarted.account(&to).unwrap().balance, 100);
    node.shutdown().unwrap();
}

#[test]
fn a_slot_given_twice_is_an_error_naming_the_slot_and_both_choices() {
    let validator = Keypair::from_seed([0xb1; 32]);
    let genesis = genesis(&validator, &Keypair::from_seed([0xb2; 32]));
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::open(&dir.path().join("db"), columns::SCHEMA, &RocksSettings::default()).unwrap();
    let err = NodeBuilder::new(genesis.clone())
        .storage(store)
        .settings(RocksSettings::default())
        .launch()
        .err()
        .expect("two storage choices are refused");
    assert!(matches!(err, BuildError::SlotGivenTwice { slot: SlotKind::Storage, .. }));
    assert_eq!(
        err.to_string(),
        "the storage backend was given twice to the node builder: first instance \"rocksdb\", then settings for \"rocksdb\"; give each slot once"
    );

    // A name the registry does not know is refused with the names it knows.
    let err = NodeBuilder::new(genesis.clone())
        .preset(&aether_presets::memory())
        .plugin(SlotKind::Storage, "rocks")
        .launch()
        .err()
        .expect("an unknown plugin name is refused")
        .to_string();
    assert!(err.contains(r#"unknown storage backend "rocks""#) && err.contains("memory"), "{err}");

    // With no preset, the slots config would fill must be given.
    let err = NodeBuilder::new(genesis).validator_key(validator).launch().err().expect("no consensus, no storage").to_string();
    assert_eq!(err, "no consensus engine for the node: give one with NodeBuilder::settings, or start from a preset (NodeBuilder::preset)");
}

#[test]
fn a_registered_plugin_never_replaces_an_instance_of_the_same_name() {
    use aether_framework::storage::KvStore;
    let validator = Keypair::from_seed([0xb1; 32]);
    let genesis = genesis(&validator, &Keypair::from_seed([0xb2; 32]));
    let store: std::sync::Arc<dyn KvStore> = std::sync::Arc::new(aether_storage_memory::MemoryStore::new());
    let node = NodeBuilder::new(genesis)
        .validator_key(validator)
        .plugin(SlotKind::Consensus, "solo")
        .storage_shared(store.clone())
        // Registers a factory named "memory" too, after the instance was given.
        .register(aether_storage_memory::register)
        .launch()
        .unwrap();
    let written = store.scan_prefix(columns::BLOCK_INDEX, b"").unwrap().count();
    node.shutdown().unwrap();
    assert!(written > 0, "the node wrote its genesis into the store it was given, not into one the factory made");
}
