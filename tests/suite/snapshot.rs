//! Snapshots: export the state at a height, refuse damaged or foreign files without writing
//! anything, and start a new node from a good one that then continues the chain.

use std::time::Duration;

use aether_framework::types::Address;
use aether_rpc::AetherApiClient;
use aether_tests::*;
use jsonrpsee::http_client::HttpClientBuilder;
use sha2::{Digest, Sha256};

const FAST: &str = "[consensus]\nengine = \"solo\"\n[consensus.solo]\nmin_block_interval_ms = 5\n";

fn preset() -> aether_framework::registry::Preset {
    aether_presets::aether()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_starts_from_a_snapshot_and_continues_the_chain() {
    let a = TestChain::new(3, FAST);
    let node = a.launch().await;
    let client = HttpClientBuilder::default().build(rpc_url(&node)).unwrap();
    let to = Address([5; 20]);
    for nonce in 0..8 {
        let tx = a.transfer(&a.accounts[nonce as usize % 3], nonce / 3, to, 1_000 + nonce as u128, 2);
        client.submit_transaction(to_hex(&tx)).await.unwrap();
        wait_for_tx(&node.handle(), tx.hash(), Duration::from_secs(20)).await;
    }
    let head = node.handle().status().unwrap().head;
    let balances: Vec<_> = a.accounts.iter().map(|k| k.address()).chain([to]).map(|x| node.handle().account(&x).unwrap()).collect();
    node.shutdown().await.unwrap();

    let file = a.dir.path().join("state.snap");
    let (height, bytes) = aether_presets::export_snapshot(&preset(), &a.source(), None, &file).unwrap();
    assert_eq!(height, head.height);
    assert_eq!(bytes, std::fs::metadata(&file).unwrap().len());
    let good = std::fs::read(&file).unwrap();

    // Damaged files are refused before the data directory is even created.
    let b = TestChain::new(3, FAST);
    let try_import = |bytes: &[u8]| {
        let f = b.dir.path().join("candidate.snap");
        std::fs::write(&f, bytes).unwrap();
        let e = aether_presets::import_snapshot(&preset(), &b.source(), &f).unwrap_err().to_string();
        assert!(!b.data_dir().exists(), "a refused snapshot wrote nothing ({e})");
        e
    };
    let e = try_import(&good[..good.len() - 100]);
    assert!(e.contains("damaged") && e.contains("truncated or altered"), "{e}");
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 1;
    assert!(try_import(&flipped).contains("damaged"));
    // Altered state with a recomputed checksum: caught by the state root.
    let mut forged = good.clone();
    let recipient = balances.last().unwrap().balance.to_le_bytes();
    let balance_at = forged.windows(16).rposition(|w| w == recipient).expect("the recipient's balance in the state");
    forged[balance_at] ^= 0x40;
    let body = forged.len() - 32;
    let checksum = Sha256::digest(&forged[..body]);
    forged[body..].copy_from_slice(&checksum);
    let e = try_import(&forged);
    assert!(e.contains("does not match its header"), "{e}");
    assert!(try_import(b"not a snapshot at all").contains("not an Aether snapshot"));
    let other = TestChain::new(4, FAST);
    let e = aether_presets::import_snapshot(&preset(), &other.source(), &file).unwrap_err().to_string();
    assert!(e.contains("but this node runs"), "{e}");
    assert!(!other.data_dir().exists());

    // A good one: the new node starts at the snapshot's height with the same state...
    let restored = aether_presets::import_snapshot(&preset(), &b.source(), &file).unwrap();
    assert_eq!(restored.height(), head.height);
    let e = aether_presets::import_snapshot(&preset(), &b.source(), &file).unwrap_err().to_string();
    assert!(e.contains("already holds a chain"), "{e}");
    let node = b.launch().await;
    assert_eq!(node.handle().status().unwrap().head, head);
    let again: Vec<_> = b.accounts.iter().map(|k| k.address()).chain([to]).map(|x| node.handle().account(&x).unwrap()).collect();
    assert_eq!(again, balances);
    let e = node.handle().ledger().unwrap().block_by_height(head.height - 1).unwrap_err().to_string();
    assert!(e.contains(&format!("oldest block available is at height {}", head.height)), "{e}");
    // Hook events travel with receipts, which a snapshot does not carry: the restored block
    // says its events are not stored here rather than reading as "none".
    let e = node.handle().ledger().unwrap().block_events(head.height).unwrap_err().to_string();
    assert!(e.contains(&format!("the hook events of block {} are not stored on this node", head.height)), "{e}");
    // ...and continues the chain.
    let client = HttpClientBuilder::default().build(rpc_url(&node)).unwrap();
    let next = client.account(b.accounts[0].address()).await.unwrap().next_nonce;
    let tx = b.transfer(&b.accounts[0], next, to, 7, 1);
    client.submit_transaction(to_hex(&tx)).await.unwrap();
    wait_for_tx(&node.handle(), tx.hash(), Duration::from_secs(20)).await;
    assert!(node.handle().status().unwrap().head.height > head.height);
    let events = client.block_events(head.height + 1).await.unwrap();
    assert_eq!((events.height, events.events.len()), (head.height + 1, 0), "blocks committed after the restore store theirs");
    assert_eq!(node.handle().ledger().unwrap().recompute_state_root().unwrap(), node.handle().status().unwrap().state_root);
    node.shutdown().await.unwrap();
}
