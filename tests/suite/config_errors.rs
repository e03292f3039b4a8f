//! Configuration errors are clear and come before anything is written to disk.

use aether_tests::*;

async fn launch_error(extra_toml: &str) -> (String, bool) {
    let chain = TestChain::new(1, extra_toml);
    let err = match aether_presets::launch(&aether_presets::aether(), &chain.source()).await {
        Ok(_) => panic!("launch should fail for {extra_toml:?}"),
        Err(e) => format!("{e:#}"),
    };
    (err, chain.data_dir().exists())
}

#[tokio::test]
async fn unknown_engine_is_named_with_the_known_ones() {
    let (err, touched) = launch_error("[consensus]\nengine = \"pbft\"\n").await;
    assert!(err.contains(r#"unknown consensus engine "pbft" (key `consensus.engine`); known: hotstuff, solo"#), "{err}");
    assert!(!touched, "nothing may be created on disk");
}

#[tokio::test]
async fn unknown_storage_backend_and_keys_are_named() {
    let (err, touched) = launch_error("[storage]\nbackend = \"leveldb\"\n").await;
    assert!(
        err.contains(r#"unknown storage backend "leveldb""#) && ["memory", "paritydb", "rocksdb"].iter().all(|b| err.contains(b)),
        "{err}"
    );
    assert!(!touched);
    let (err, touched) = launch_error("[vm]\nbackend = \"evm\"\n").await;
    assert!(err.contains(r#"unknown VM backend "evm" (key `vm.backend`); known: wasmer, wasmtime"#), "{err}");
    assert!(!touched);
    let (err, touched) = launch_error("[vm.wasmtime]\ncache = 5\n").await;
    assert!(err.contains("[vm.wasmtime]") && err.contains("cache"), "{err}");
    assert!(!touched);
    let (err, touched) = launch_error("[mempool]\nmax_txs_per_block = 5\n").await;
    assert!(err.contains("max_txs_per_block") && err.contains("max_block_txs"), "{err}");
    assert!(!touched);
    let (err, touched) = launch_error("[consensus.hotstuff]\nbase_timeout = 5\n").await;
    assert!(err.contains("[consensus.hotstuff]") && err.contains("base_timeout"), "{err}");
    assert!(!touched);
}

#[tokio::test]
async fn malformed_toml_names_the_file() {
    let (err, touched) = launch_error("[mempool\nmax_txs = 3\n").await;
    assert!(err.contains("aether.toml"), "{err}");
    assert!(!touched);
    let (err, touched) = launch_error("[mempool]\nmax_txs = \"many\"\n").await;
    assert!(err.contains("max_txs"), "{err}");
    assert!(!touched);
}

#[tokio::test]
async fn a_data_dir_of_another_chain_is_refused() {
    let chain = TestChain::new(1, "");
    let node = chain.launch().await;
    node.shutdown().await.unwrap();
    // Same folder, different genesis (another chain id).
    let mut genesis = chain.genesis.clone();
    genesis.chain_id = "different".into();
    std::fs::write(chain.dir.path().join("genesis.json"), serde_json::to_string(&genesis).unwrap()).unwrap();
    let err = match aether_presets::launch(&aether_presets::aether(), &chain.source()).await {
        Ok(_) => panic!("must refuse another chain's data"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("holds chain") && err.contains("genesis"), "{err}");
}
