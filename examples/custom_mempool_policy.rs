//! A mempool ordering policy of your own: registered by extending a preset, chosen by config
//! (`[mempool] policy = "largest-transfer-first"`), so an operator can switch back without a
//! rebuild.
//!
//! `cargo run --example custom_mempool_policy`

// Example code: a failed unwrap is a failed example, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use aether_framework::config::ConfigSource;
use aether_framework::mempool::OrderingPolicy;
use aether_framework::node::NodeBuilder;
use aether_framework::types::{Action, Address, Genesis, GenesisAccount, GenesisValidator, Keypair, SignedTransaction, TxBody};

/// Transfers of larger amounts first (across senders; each sender's nonces stay in order).
struct LargestTransferFirst;

impl OrderingPolicy for LargestTransferFirst {
    fn name(&self) -> &'static str {
        "largest-transfer-first"
    }
    fn priority(&self, tx: &SignedTransaction, _arrival_seq: u64) -> u128 {
        match &tx.body.action {
            Action::Transfer { amount, .. } => *amount,
            _ => 0,
        }
    }
}

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let order = run(dir.path())?;
    println!("committed in this order of amounts: {order:?}");
    Ok(())
}

/// Submits transfers of 1, 2 and 3 from three senders just after a block, and returns the amounts in the order the first block with all three lists them.
fn run(dir: &std::path::Path) -> anyhow::Result<Vec<u128>> {
    let preset = aether_presets::memory()
        .renamed("memory-largest-first", "the memory preset, largest transfers first")
        .with_plugins(|r| {
            r.mempool_policy.register(
                "largest-transfer-first",
                "larger transfers first",
                Box::new(|_| Ok(Arc::new(LargestTransferFirst) as Arc<dyn OrderingPolicy>)),
            )
        })
        // Slow blocks, so all three wait in the mempool together.
        .with_defaults(
            "[mempool]\npolicy = \"largest-transfer-first\"\n[consensus.solo]\nblock_interval_ms = 1000\nmin_block_interval_ms = 500\n",
        );
    let validator = Keypair::from_seed([1; 32]);
    let senders: Vec<Keypair> = (2..5).map(|i| Keypair::from_seed([i; 32])).collect();
    let genesis = Genesis {
        chain_id: "policy-demo".into(),
        genesis_time_ms: 0,
        modules: vec![],
        epochs: None,
        accounts: senders.iter().map(|k| GenesisAccount { address: k.address(), balance: 1_000 }).collect(),
        validators: vec![GenesisValidator {
            name: "v0".into(),
            identity: validator.public(),
            consensus_key: validator.public().0.to_vec(),
            stake: 1,
        }],
    };
    let node = NodeBuilder::new(genesis)
        .preset(&preset)
        .config_source(ConfigSource { base_dir: Some(dir.to_path_buf()), ..ConfigSource::default() })
        .validator_key(validator)
        .launch()?;
    let handle = node.handle();
    anyhow::ensure!(handle.info().mempool_policy == "largest-transfer-first");
    // Right after a block, the next one is at least `min_block_interval_ms` away.
    let mut heads = handle.subscribe_heads();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while heads.try_recv().is_err() {
        anyhow::ensure!(!node.has_stopped() && std::time::Instant::now() < deadline, "no block within 20 s");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    for (i, sender) in senders.iter().enumerate() {
        let tx = TxBody {
            chain_id: "policy-demo".into(),
            sender: sender.public(),
            nonce: 0,
            fee: 1,
            action: Action::Transfer { to: Address([9; 20]), amount: i as u128 + 1, memo: vec![] },
        }
        .sign(sender);
        handle.submit(&aether_framework::codec::encode(&tx))?;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let ledger = handle.ledger()?;
    let order = loop {
        anyhow::ensure!(std::time::Instant::now() < deadline, "the transfers did not commit together within 20 s");
        let head = ledger.head().block.height;
        let found = (1..=head).filter_map(|h| ledger.block_by_height(h).ok().flatten()).find(|(b, _)| b.transactions.len() == 3);
        if let Some((block, _)) = found {
            break block
                .transactions
                .iter()
                .map(|tx| match &tx.body.action {
                    Action::Transfer { amount, .. } => *amount,
                    _ => 0,
                })
                .collect();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    drop(ledger);
    node.shutdown()?;
    Ok(order)
}

#[test]
fn the_policy_orders_the_block() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(run(dir.path()).unwrap(), vec![3, 2, 1]);
}
