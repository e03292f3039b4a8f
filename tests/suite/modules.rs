//! Runtime modules in a running node: genesis pins them, the builder supplies them, a node
//! without the pinned module or version refuses to start, and module transactions go through
//! the mempool and commit like any other.

use std::time::Duration;

use aether_framework::module::{ModuleContext, ModuleError, RuntimeModule};
use aether_framework::node::NodeBuilder;
use aether_framework::registry::SlotKind;
use aether_framework::types::{Action, Genesis, GenesisAccount, GenesisModule, GenesisValidator, Keypair, TxBody};
use aether_storage_memory::MemoryStore;
use aether_tests::wait_for_tx;

/// Counts calls.
struct Counter(u32);

impl RuntimeModule for Counter {
    fn name(&self) -> &'static str {
        "counter"
    }
    fn version(&self) -> u32 {
        self.0
    }
    fn call(&self, cx: &mut dyn ModuleContext, call: &[u8]) -> Result<Vec<u8>, ModuleError> {
        if call != b"inc" {
            return Err(ModuleError::UnknownMethod(String::from_utf8_lossy(call).into_owned()));
        }
        let n = cx.get(b"n")?.map_or(0, |v| v[0]) + 1;
        cx.set(b"n", &[n])?;
        Ok(vec![n])
    }
    fn query(&self, cx: &mut dyn ModuleContext, path: &str, _request: &[u8]) -> Result<Vec<u8>, ModuleError> {
        match path {
            "count" => Ok(vec![cx.get(b"n")?.map_or(0, |v| v[0])]),
            "sneaky-write" => cx.set(b"n", &[99]).map(|()| vec![]),
            other => Err(ModuleError::UnknownQuery(other.into())),
        }
    }
    /// Reports the count at the end of every block: a hook event, read back over RPC below.
    fn end_block(&self, cx: &mut dyn ModuleContext) -> Result<(), ModuleError> {
        let n = cx.get(b"n")?.map_or(0, |v| v[0]);
        cx.emit(b"count", &[n])
    }
}

fn genesis(validator: &Keypair, user: &Keypair, modules: Vec<GenesisModule>) -> Genesis {
    Genesis {
        chain_id: "modules".into(),
        genesis_time_ms: 0,
        accounts: vec![GenesisAccount { address: user.address(), balance: 1_000_000 }],
        validators: vec![GenesisValidator {
            name: "v0".into(),
            identity: validator.public(),
            consensus_key: validator.public().0.to_vec(),
            stake: 1,
        }],
        modules,
        epochs: None,
    }
}

fn node(genesis: Genesis, validator: &Keypair, module: Option<Counter>) -> NodeBuilder {
    let b = NodeBuilder::new(genesis).validator_key(validator.clone()).plugin(SlotKind::Consensus, "solo").storage(MemoryStore::new());
    match module {
        Some(m) => b.module(m),
        None => b,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_module_runs_transactions_through_the_mempool() {
    let (validator, user) = (Keypair::from_seed([0xc1; 32]), Keypair::from_seed([0xc2; 32]));
    let pinned = vec![GenesisModule { name: "counter".into(), version: 2, mint: false, params: String::new(), govern_chain: false }];
    let node = node(genesis(&validator, &user, pinned), &validator, Some(Counter(2))).launch().unwrap();
    let handle = node.handle();
    let tx = TxBody {
        chain_id: "modules".into(),
        sender: user.public(),
        nonce: 0,
        fee: 100,
        action: Action::Module { module: "counter".into(), call: b"inc".to_vec(), value: 0, gas_limit: 100_000 },
    }
    .sign(&user);
    let hash = handle.submit(&aether_framework::codec::encode(&tx)).unwrap();
    wait_for_tx(&handle, hash, Duration::from_secs(20)).await;
    let location = match handle.transaction(&hash).unwrap() {
        aether_framework::node::TxLookup::Committed(c) => {
            assert_eq!(c.receipt.status, aether_framework::types::TxStatus::Success);
            assert_eq!(c.receipt.output, vec![1]);
            c.location
        }
        other => panic!("not committed: {other:?}"),
    };

    // Over RPC: the module's read-only questions, and what it refuses.
    let rpc_config = aether_framework::config::RpcConfig { listen: "127.0.0.1:0".parse().unwrap(), ..Default::default() };
    let rpc = aether_rpc::RpcServer::bind(&rpc_config, handle.metrics().clone()).await.unwrap().serve(handle.clone());
    let client = jsonrpsee::http_client::HttpClientBuilder::default().build(rpc.http_url()).unwrap();
    use aether_rpc::AetherApiClient;
    let view = client.module_query("counter".into(), "count".into(), None, None).await.unwrap();
    assert_eq!(view.output, vec![1]);
    assert!(view.gas_used > 0);
    let err = client.module_query("counter".into(), "sneaky-write".into(), None, None).await.unwrap_err().to_string();
    assert!(err.contains("module counter: a query cannot change state (set)"), "{err}");
    let err = client.module_query("counter".into(), "nope".into(), None, None).await.unwrap_err().to_string();
    assert!(err.contains("-32012") && err.contains("module counter: unknown query") && err.contains("nope"), "{err}");
    let err = client.module_query("staking".into(), "count".into(), None, None).await.unwrap_err().to_string();
    assert!(err.contains("unknown module") && err.contains("staking") && err.contains("(this chain runs: counter)"), "{err}");
    let view = client.module_query("counter".into(), "count".into(), None, None).await.unwrap();
    assert_eq!(view.output, vec![1], "the refused write was not kept");

    // The module's end-of-block hook event of the block that counted, stored when it committed.
    let events = client.block_events(location.height).await.unwrap();
    assert_eq!((events.height, events.block_hash), (location.height, location.block_hash));
    let expected = aether_rpc::HookEventView {
        emitter: aether_framework::module::module_address("counter"),
        module: Some("counter".into()),
        topic: Some("count".into()),
        topic_hex: b"count".to_vec(),
        data: vec![1],
    };
    assert_eq!(events.events, vec![expected]);
    let err = client.block_events(1_000_000).await.unwrap_err().to_string();
    assert!(err.contains("-32010") && err.contains("block 1000000 is not committed yet (the head is at height"), "{err}");
    rpc.stop().await;
    node.shutdown().unwrap();
}

#[test]
fn a_node_without_the_pinned_module_or_version_refuses_to_start() {
    let (validator, user) = (Keypair::from_seed([0xc1; 32]), Keypair::from_seed([0xc2; 32]));
    let pinned = || vec![GenesisModule { name: "counter".into(), version: 2, mint: false, params: String::new(), govern_chain: false }];
    let err = node(genesis(&validator, &user, pinned()), &validator, None).launch().err().unwrap().to_string();
    assert_eq!(err, r#"unknown runtime module "counter" (key `genesis.modules`); known: none in this build"#);
    let err = node(genesis(&validator, &user, pinned()), &validator, Some(Counter(1))).launch().err().unwrap().to_string();
    assert_eq!(err, "genesis pins runtime module counter at version 2, but this node has counter version 1: run the build the chain runs");
}

#[test]
fn pinning_modules_changes_the_chains_identity_and_no_modules_keeps_it() {
    let (validator, user) = (Keypair::from_seed([0xc1; 32]), Keypair::from_seed([0xc2; 32]));
    let plain = genesis(&validator, &user, vec![]);
    let with = genesis(
        &validator,
        &user,
        vec![GenesisModule { name: "counter".into(), version: 2, mint: false, params: String::new(), govern_chain: false }],
    );
    let hash = |g: &Genesis| aether_framework::ledger::Ledger::genesis_block(g).hash();
    let old_rule =
        aether_framework::types::Hash::digest(aether_framework::types::domain::GENESIS, &aether_framework::codec::encode(&plain));
    assert_eq!(aether_framework::ledger::Ledger::genesis_block(&plain).header.parent, old_rule, "a chain without modules keeps its hash");
    assert_ne!(hash(&plain), hash(&with));
    let mut other_version = with.clone();
    other_version.modules[0].version = 3;
    assert_ne!(hash(&with), hash(&other_version), "the pinned version is part of the chain's identity");
    // And in genesis.json: absent when empty, validated when present.
    assert!(!serde_json::to_string(&plain).unwrap().contains("\"modules\":"));
    let mut bad = with.clone();
    bad.modules.push(GenesisModule { name: "counter".into(), version: 1, mint: false, params: String::new(), govern_chain: false });
    assert_eq!(bad.validate().unwrap_err().to_string(), "genesis is not valid: module counter is listed twice");
}
