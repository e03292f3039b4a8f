//! A chain's own binary: the `aether` preset extended with one plugin (the example log-file
//! storage backend) and a default that selects it, under the chain's name, run by the reusable
//! CLI. Every `aether` command works on it:
//!
//! ```text
//! cargo run --example my_chain -- init --dir /tmp/my-chain
//! cargo run --example my_chain -- run --dir /tmp/my-chain
//! cargo run --example my_chain -- tx transfer --dir /tmp/my-chain --to ADDRESS --amount 5
//! ```

// Example code: a failed unwrap is a failed example, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aether_presets::Presets;

/// The chain's presets: its own first (the default), then the stock ones.
fn my_presets() -> Presets {
    let mine = aether_presets::aether()
        .renamed("my-chain", "the aether preset, storing blocks and state in an append-only log file")
        .with_plugins(aether_examples::log_store::register)
        .with_defaults("[storage]\nbackend = \"log\"\n");
    Presets::new(vec![mine, aether_presets::aether(), aether_presets::memory()]).expect("distinct preset names")
}

fn main() -> std::process::ExitCode {
    aether_cli::main(my_presets())
}

/// What `init`, `run` and a transfer do, through the same library calls the CLI makes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_run_and_a_transfer_on_the_chains_own_preset() {
    use aether_framework::config::ConfigSource;
    use aether_framework::types::{Action, Address, TxBody};

    let presets = my_presets();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = aether_presets::init::InitOptions::new(dir.path());
    opts.preset = presets.default_preset().name().to_string();
    opts.rpc_listen = Some("127.0.0.1:0".parse().unwrap());
    let out = aether_presets::init::init_chain_in(&presets, &opts).unwrap();
    let preset = presets.for_config_file(&out.config).unwrap();
    assert_eq!(preset.name(), "my-chain", "init wrote the chain's preset into aether.toml");

    let source = ConfigSource { file: Some(out.config.clone()), ..ConfigSource::default() };
    let node = aether_presets::launch(preset, &source).await.unwrap();
    let handle = node.handle();
    assert_eq!(handle.info().storage, "log");
    assert_eq!(handle.info().engine, "hotstuff");
    let faucet = aether_presets::keys::read_key_file(&out.faucet_key).unwrap();
    let to = Address([5; 20]);
    let tx = TxBody {
        chain_id: opts.chain_id.clone(),
        sender: faucet.public(),
        nonce: 0,
        fee: 1,
        action: Action::Transfer { to, amount: 5, memo: vec![] },
    }
    .sign(&faucet);
    let hash = handle.submit(&aether_framework::codec::encode(&tx)).unwrap();
    let mut heads = handle.subscribe_heads();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while !matches!(handle.transaction(&hash).unwrap(), aether_framework::node::TxLookup::Committed(_)) {
        tokio::time::timeout_at(deadline, heads.recv()).await.expect("the transfer commits within 30 s").unwrap();
    }
    assert_eq!(handle.account(&to).unwrap().balance, 5);
    node.shutdown().await.unwrap();
}
