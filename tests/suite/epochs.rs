//! Epochs in a running node: the validator source names a set at every epoch's end, the node
//! starts a new engine on each boundary block, a restarted node takes the set from committed
//! state, and `aether_getValidatorSet` proves any epoch's set from genesis to a light client
//! that refuses forged changes.

use std::sync::Arc;
use std::time::Duration;

use aether_framework::consensus::solo::SoloSettings;
use aether_framework::module::{ModuleContext, ModuleError, RuntimeModule};
use aether_framework::node::NodeBuilder;
use aether_framework::types::{EpochSchedule, Genesis, GenesisModule, Keypair, ValidatorEntry};
use aether_storage_memory::MemoryStore;
use aether_tests::wait_for_height;

const EPOCH_LENGTH: u64 = 4;

/// Names the same validator every epoch with stake `10 + epoch`, so each epoch's set differs.
struct Growing;

impl RuntimeModule for Growing {
    fn name(&self) -> &'static str {
        "growing"
    }
    fn version(&self) -> u32 {
        1
    }
    fn call(&self, _: &mut dyn ModuleContext, _: &[u8]) -> Result<Vec<u8>, ModuleError> {
        Err(ModuleError::UnknownMethod("none".into()))
    }
    fn end_epoch(&self, cx: &mut dyn ModuleContext, epoch: u64) -> Result<Option<Vec<ValidatorEntry>>, ModuleError> {
        let mut set = cx.validator_set(epoch)?.ok_or_else(|| ModuleError::Failed("no current set".into()))?;
        set[0].stake = 10 + u128::from(epoch) + 1;
        Ok(Some(set))
    }
}

fn genesis(validator: &Keypair) -> Genesis {
    Genesis {
        chain_id: "epochs".into(),
        genesis_time_ms: 0,
        accounts: vec![],
        validators: vec![ValidatorEntry {
            name: "v0".into(),
            identity: validator.public(),
            consensus_key: validator.public().0.to_vec(),
            stake: 10,
        }],
        modules: vec![GenesisModule { name: "growing".into(), version: 1, mint: false, params: String::new(), govern_chain: false }],
        epochs: Some(EpochSchedule { length: EPOCH_LENGTH, validator_source: Some("growing".into()) }),
    }
}

fn node(genesis: &Genesis, validator: &Keypair, store: &Arc<MemoryStore>) -> NodeBuilder {
    NodeBuilder::new(genesis.clone())
        .validator_key(validator.clone())
        .settings(SoloSettings { block_interval_ms: 40, min_block_interval_ms: 10 })
        .storage_shared(store.clone())
        .module(Growing)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn solo_runs_a_new_engine_each_epoch_restarts_on_the_recorded_set_and_proves_it_to_a_light_client() {
    let validator = Keypair::from_seed([0xe1; 32]);
    let genesis = genesis(&validator);
    let store = Arc::new(MemoryStore::new());
    let first = node(&genesis, &validator, &store).launch().unwrap();
    wait_for_height(&first.handle(), 2 * EPOCH_LENGTH + 1, Duration::from_secs(30)).await;
    first.shutdown().unwrap();

    // Restarted on the same store: the engine of the current epoch, from the recorded set.
    let second = node(&genesis, &validator, &store).launch().unwrap();
    let handle = second.handle();
    wait_for_height(&handle, 4 * EPOCH_LENGTH + 1, Duration::from_secs(30)).await;
    let ledger = handle.ledger().unwrap();
    for epoch in 1..=4u64 {
        let set = ledger.validator_set(epoch).unwrap().unwrap();
        assert_eq!(set[0].stake, 10 + u128::from(epoch), "epoch {epoch}");
        let (boundary, _) = ledger.block_by_height(epoch * EPOCH_LENGTH).unwrap().unwrap();
        assert_eq!(boundary.header.next_validators, Some(aether_framework::types::validator_set_commitment(epoch, &set)));
        let (inner, _) = ledger.block_by_height(epoch * EPOCH_LENGTH - 1).unwrap().unwrap();
        assert_eq!(inner.header.next_validators, None);
    }

    // Over RPC: epoch 4's set with the changes from genesis, checked as a light client does.
    let rpc_config = aether_framework::config::RpcConfig { listen: "127.0.0.1:0".parse().unwrap(), ..Default::default() };
    let rpc = aether_rpc::RpcServer::bind(&rpc_config, handle.metrics().clone()).await.unwrap().serve(handle.clone());
    let client = jsonrpsee::http_client::HttpClientBuilder::default().build(rpc.http_url()).unwrap();
    use aether_rpc::AetherApiClient;
    let view = client.validator_set(Some(4), None).await.unwrap();
    rpc.stop().await;
    second.shutdown().unwrap();
    assert_eq!((view.epoch, view.first_height, view.last_height), (4, 17, Some(20)));
    assert_eq!(view.changes.len(), 4);
    let registry = aether_presets::memory().registry();
    let factory = registry.consensus.get("solo").unwrap().factory.clone();
    let make = |ctx: &aether_framework::consensus::EngineContext| {
        factory(ctx, &aether_framework::registry::PluginSettings::empty("consensus.solo")).map_err(|e| e.to_string())
    };
    use aether_framework::light::{verify_validator_set, LightClientError};
    assert_eq!(verify_validator_set(&genesis, 4, &view.changes, make).unwrap(), view.validators);

    // Forged: another next set than the header commits to; a certificate of another block; a
    // change left out.
    let mut forged = view.changes.clone();
    forged[2].next[0].stake = 1_000_000;
    assert!(matches!(verify_validator_set(&genesis, 4, &forged, make), Err(LightClientError::Commitment { epoch: 2, .. })));
    let mut forged = view.changes.clone();
    forged[1].certificate = forged[0].certificate.clone();
    let err = verify_validator_set(&genesis, 4, &forged, make).unwrap_err();
    assert!(matches!(err, LightClientError::Certificate { epoch: 1, .. }), "{err}");
    let mut forged = view.changes.clone();
    forged[3].header.next_validators = Some(aether_framework::types::validator_set_commitment(4, &forged[3].next[..0]));
    assert!(matches!(verify_validator_set(&genesis, 4, &forged, make), Err(LightClientError::Certificate { epoch: 3, .. })));
    assert!(matches!(verify_validator_set(&genesis, 4, &view.changes[..3], make), Err(LightClientError::Length { epoch: 4, got: 3 })));
}

/// Sets the chain's epoch length to [`NEW_LENGTH`] from its `end_epoch` of epoch 1, through
/// the ledger's `chain` pseudo-module (genesis grants it `govern_chain`).
struct Shaper;

const NEW_LENGTH: u64 = 6;

impl RuntimeModule for Shaper {
    fn name(&self) -> &'static str {
        "shaper"
    }
    fn version(&self) -> u32 {
        1
    }
    fn call(&self, _: &mut dyn ModuleContext, _: &[u8]) -> Result<Vec<u8>, ModuleError> {
        Err(ModuleError::UnknownMethod("none".into()))
    }
    fn end_epoch(&self, cx: &mut dyn ModuleContext, epoch: u64) -> Result<Option<Vec<ValidatorEntry>>, ModuleError> {
        if epoch == 1 {
            cx.call_module("chain", &aether_framework::chain::ChainCall::SetEpochLength { length: NEW_LENGTH }.encode())?;
        }
        Ok(None)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn solo_follows_an_epoch_length_governance_changed_across_a_restart_and_a_light_client_proves_it() {
    let validator = Keypair::from_seed([0xe2; 32]);
    let mut genesis = genesis(&validator);
    genesis.chain_id = "epoch-length".into();
    genesis.modules.push(GenesisModule { name: "shaper".into(), version: 1, mint: false, params: String::new(), govern_chain: true });
    let store = Arc::new(MemoryStore::new());
    let launch = || node(&genesis, &validator, &store).module(Shaper).launch().unwrap();
    // Epochs 0 and 1 are 4 long (boundaries 4, 8); from epoch 2 on, 6: 9..=14, 15..=20, 21..=26.
    let first = launch();
    wait_for_height(&first.handle(), 11, Duration::from_secs(30)).await;
    first.shutdown().unwrap();
    // Restarted inside the first longer epoch: its engine's range comes from the recorded schedule.
    let second = launch();
    let handle = second.handle();
    wait_for_height(&handle, 22, Duration::from_secs(30)).await;
    let ledger = handle.ledger().unwrap();
    let boundaries = [4u64, 8, 14, 20];
    for height in 1..=21u64 {
        let (block, _) = ledger.block_by_height(height).unwrap().unwrap();
        assert_eq!(block.header.next_validators.is_some(), boundaries.contains(&height), "height {height}");
    }
    assert_eq!(ledger.epoch_of(21), 4);

    let rpc_config = aether_framework::config::RpcConfig { listen: "127.0.0.1:0".parse().unwrap(), ..Default::default() };
    let rpc = aether_rpc::RpcServer::bind(&rpc_config, handle.metrics().clone()).await.unwrap().serve(handle.clone());
    let client = jsonrpsee::http_client::HttpClientBuilder::default().build(rpc.http_url()).unwrap();
    use aether_rpc::AetherApiClient;
    let view = client.validator_set(Some(4), None).await.unwrap();
    rpc.stop().await;
    second.shutdown().unwrap();
    assert_eq!((view.epoch, view.first_height, view.last_height), (4, 21, Some(26)));
    assert_eq!(
        view.changes.iter().map(|c| (c.header.height, c.next_length)).collect::<Vec<_>>(),
        [(4, None), (8, Some(NEW_LENGTH)), (14, None), (20, None)]
    );
    let registry = aether_presets::memory().registry();
    let factory = registry.consensus.get("solo").unwrap().factory.clone();
    let make = |ctx: &aether_framework::consensus::EngineContext| {
        factory(ctx, &aether_framework::registry::PluginSettings::empty("consensus.solo")).map_err(|e| e.to_string())
    };
    use aether_framework::light::{verify_validator_set, LightClientError};
    assert_eq!(verify_validator_set(&genesis, 4, &view.changes, make).unwrap(), view.validators);
    // A forged length, or a hidden one, does not match what the boundary header commits to.
    for forged_length in [Some(NEW_LENGTH + 1), None] {
        let mut forged = view.changes.clone();
        forged[1].next_length = forged_length;
        let err = verify_validator_set(&genesis, 4, &forged, make).unwrap_err();
        assert!(matches!(err, LightClientError::Commitment { epoch: 1, .. }), "{err}");
    }
    // A length claimed where the header commits to none.
    let mut forged = view.changes.clone();
    forged[2].next_length = Some(4);
    assert!(matches!(verify_validator_set(&genesis, 4, &forged, make), Err(LightClientError::Commitment { epoch: 2, .. })));

    // A batch at a time, as state sync proves sets: the schedule proven by the first batch
    // carries the second (a failed batch leaves it as it was).
    use aether_framework::types::{EpochLengthChange, EpochTimeline};
    let mut timeline = EpochTimeline::new(genesis.epochs.as_ref().unwrap());
    let first =
        aether_framework::light::verify_epoch_changes(&genesis, 0, &genesis.validators, &mut timeline, &view.changes[..2], make).unwrap();
    assert_eq!(timeline.changes(), &[EpochLengthChange { epoch: 2, first_height: 9, length: NEW_LENGTH }]);
    let before = timeline.clone();
    assert!(aether_framework::light::verify_epoch_changes(&genesis, 2, &first[1], &mut timeline, &forged[2..], make).is_err());
    assert_eq!(timeline, before);
    let rest = aether_framework::light::verify_epoch_changes(&genesis, 2, &first[1], &mut timeline, &view.changes[2..], make).unwrap();
    assert_eq!(rest.last(), Some(&view.validators));
    // Without the first batch's schedule, the second batch's boundaries are not where genesis's
    // length puts them.
    let mut genesis_only = EpochTimeline::new(genesis.epochs.as_ref().unwrap());
    let err =
        aether_framework::light::verify_epoch_changes(&genesis, 2, &first[1], &mut genesis_only, &view.changes[2..], make).unwrap_err();
    assert!(matches!(err, LightClientError::WrongHeight { epoch: 2, expected: 12, got: 14 }), "{err}");
}

/// A snapshot exported mid-epoch and one at an epoch's last block each restore a node that
/// continues the chain to the same roots: module state, the recorded sets and the epoch
/// machinery all travel in the state.
#[test]
fn snapshots_mid_epoch_and_at_a_boundary_restore_nodes_that_continue_to_the_same_roots() {
    use aether_framework::ledger::Ledger;
    use aether_framework::snapshot::Snapshot;
    use aether_framework::types::{Action, Certificate, GenesisAccount, TxBody};
    use aether_module_staking::StakingCall;

    let validator = Keypair::from_seed([0xe5; 32]);
    let user = Keypair::from_seed([0xe6; 32]);
    let genesis = Genesis {
        chain_id: "snap-epochs".into(),
        genesis_time_ms: 0,
        accounts: vec![GenesisAccount { address: user.address(), balance: 1_000_000_000 }],
        validators: vec![ValidatorEntry {
            name: "v0".into(),
            identity: validator.public(),
            consensus_key: validator.public().0.to_vec(),
            stake: 1_000_000,
        }],
        modules: ["staking", "slashing", "governance"]
            .iter()
            .map(|m| GenesisModule { name: m.to_string(), version: 1, mint: *m != "slashing", params: String::new(), govern_chain: false })
            .collect(),
        epochs: Some(EpochSchedule { length: EPOCH_LENGTH, validator_source: Some("staking".into()) }),
    };
    let open = |store: Arc<MemoryStore>| {
        Ledger::open(store, &genesis)
            .unwrap()
            .with_module(Arc::new(aether_module_staking::Staking))
            .with_module(Arc::new(aether_module_slashing::Slashing))
            .with_module(Arc::new(aether_module_governance::Governance))
    };
    let original = open(Arc::new(MemoryStore::new()));
    let delegate = |nonce: u64| {
        TxBody {
            chain_id: "snap-epochs".into(),
            sender: user.public(),
            nonce,
            fee: 10_000,
            action: Action::Module {
                module: "staking".into(),
                call: StakingCall::delegate(validator.public()).encode(),
                value: 1_000 + u128::from(nonce),
                gas_limit: 1_000_000,
            },
        }
        .sign(&user)
    };
    let dir = tempfile::tempdir().unwrap();
    let (mid, boundary) = (EPOCH_LENGTH + 2, 2 * EPOCH_LENGTH);
    let mut blocks = vec![];
    for height in 1..=4 * EPOCH_LENGTH {
        let head = original.head();
        let built = original
            .build_block(&head.block.hash, head.certificate, vec![delegate(height - 1)], vec![], height * 10, validator.address())
            .unwrap();
        assert!(built.rejected.is_empty() && built.executed.receipts[0].status == aether_framework::types::TxStatus::Success);
        original.commit(&built.executed.hash, &Certificate(vec![1])).unwrap();
        blocks.push(built.executed.block.clone());
        if height == mid || height == boundary {
            Snapshot::export(&original, height, &dir.path().join(format!("{height}.snap"))).unwrap();
        }
    }
    for at in [mid, boundary] {
        let snapshot = Snapshot::read(&dir.path().join(format!("{at}.snap"))).unwrap();
        snapshot.check_chain(&genesis).unwrap();
        let store = Arc::new(MemoryStore::new());
        snapshot.restore_into(store.as_ref()).unwrap();
        let restored = open(store);
        assert_eq!(restored.head().block.height, at);
        assert_eq!(restored.validator_set(restored.epoch_of(at + 1)).unwrap(), original.validator_set(original.epoch_of(at + 1)).unwrap());
        for block in &blocks[at as usize..] {
            let executed =
                restored.execute_block(block.clone()).unwrap_or_else(|e| panic!("restored at {at}: block {}: {e}", block.header.height));
            restored.commit(&executed.hash, &Certificate(vec![1])).unwrap();
        }
        assert_eq!(restored.head().header.state_root, original.head().header.state_root, "restored at {at}");
        assert!(restored.module_query("staking", "invariants", &[], 100_000_000).unwrap().answer.is_ok());
    }
}
