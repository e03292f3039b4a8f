//! A node on RocksDB takes 200 signed transfers over JSON-RPC, commits them, survives a
//! restart with identical state, and keeps producing blocks.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use aether_framework::ledger::Ledger;
use aether_framework::types::{Address, Amount, Hash};
use aether_rpc::{AetherApiClient, HeadView};
use aether_storage_memory::MemoryStore;
use aether_tests::*;
use jsonrpsee::core::client::SubscriptionClientT;
use jsonrpsee::http_client::HttpClientBuilder;
use jsonrpsee::rpc_params;
use jsonrpsee::ws_client::WsClientBuilder;

const SENDERS: usize = 5;
const PER_SENDER: u64 = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_transfers_commit_and_survive_restart() {
    let chain = TestChain::new(SENDERS, "[consensus.hotstuff]\nmin_block_interval_ms = 20\n");
    let node = chain.launch().await;
    let url = rpc_url(&node);
    let client = HttpClientBuilder::default().build(&url).unwrap();
    let ws = WsClientBuilder::default().build(ws_url(&node)).await.unwrap();
    let mut heads = ws.subscribe::<HeadView, _>("aether_subscribeNewHeads", rpc_params![], "aether_unsubscribeNewHeads").await.unwrap();

    // Each sender pays a different recipient set; amounts vary so balances are all distinct.
    let recipients: Vec<Address> = (0..7u8).map(|i| Address([i + 1; 20])).collect();
    let mut expected: BTreeMap<Address, Amount> = chain.accounts.iter().map(|k| (k.address(), INITIAL_BALANCE)).collect();
    let mut fees: Amount = 0;
    let mut batches = Vec::new();
    for (s, key) in chain.accounts.iter().enumerate() {
        let mut txs = Vec::new();
        for nonce in 0..PER_SENDER {
            let to = recipients[(s + nonce as usize) % recipients.len()];
            let amount = 1_000 + (s as Amount) * 100 + nonce as Amount;
            let fee = 1 + (nonce % 3) as Amount;
            *expected.get_mut(&key.address()).unwrap() -= amount + fee;
            *expected.entry(to).or_default() += amount;
            fees += fee;
            txs.push(chain.transfer(key, nonce, to, amount, fee));
        }
        batches.push(txs);
    }
    expected.insert(chain.validator.address(), fees);

    // One sequential submitter per sender, all senders concurrently.
    let mut tasks = Vec::new();
    let mut all_hashes = HashSet::new();
    for txs in batches {
        all_hashes.extend(txs.iter().map(|t| t.hash()));
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let client = HttpClientBuilder::default().build(&url).unwrap();
            for tx in txs {
                let hash: Hash = client.submit_transaction(to_hex(&tx)).await.expect("valid transfer accepted");
                assert_eq!(hash, tx.hash());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }

    // Wait for every transaction through the WebSocket head subscription.
    let mut seen = HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.len() < all_hashes.len() {
        let head = tokio::time::timeout_at(deadline, heads.next()).await.expect("all 200 commit within 60 s").unwrap().unwrap();
        let block = client.block_by_hash(head.hash).await.unwrap().expect("announced block is queryable");
        assert_eq!(block.header.height, head.header.height);
        seen.extend(block.transactions.iter().copied());
    }
    assert_eq!(seen.intersection(&all_hashes).count(), 200);

    for (address, balance) in &expected {
        let view = client.account(*address).await.unwrap();
        assert_eq!(view.balance, *balance, "balance of {address}");
    }
    for key in &chain.accounts {
        assert_eq!(client.account(key.address()).await.unwrap().nonce, PER_SENDER);
    }
    let one = chain.accounts[0].address();
    let health = http_get(node.rpc.as_ref().unwrap().local_addr(), "/health").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.contains("\"ok\":true"), "{health}");
    let metrics = http_get(node.rpc.as_ref().unwrap().local_addr(), "/metrics").await;
    assert!(metrics.starts_with("HTTP/1.1 200") && metrics.contains("text/plain"), "{metrics}");
    assert!(metrics.contains("aether_transactions_committed_total 200"), "{metrics}");
    assert!(metrics.contains("aether_mempool_transactions 0"), "{metrics}");
    let tx_view = client.transaction(*all_hashes.iter().next().unwrap()).await.unwrap();
    assert_eq!(tx_view.status, "committed");
    assert!(tx_view.receipt.is_some());

    // Every header's state root recomputes: replay all committed blocks on a fresh ledger,
    // which re-executes each one and checks its tx root and state root against the header.
    let handle = node.handle();
    let head = handle.status().unwrap().head;
    let replay = Ledger::open(Arc::new(MemoryStore::new()), &chain.genesis).unwrap();
    for h in 1..=head.height {
        let (block, cert) = handle.block_by_height(h).unwrap().expect("every height is stored");
        let executed = replay.execute_block(block).unwrap_or_else(|e| panic!("block {h} does not re-execute: {e}"));
        replay.commit(&executed.hash, &cert).unwrap();
    }
    assert_eq!(replay.head().block, head);
    assert_eq!(handle.ledger().unwrap().recompute_state_root().unwrap(), handle.status().unwrap().state_root);

    // Read the head once the node has stopped: HotStuff keeps proposing until then.
    drop((heads, ws, client));
    node.shutdown().await.unwrap();
    // The handle no longer holds the store: the stopped node's data opens directly.
    assert!(handle.status().is_err(), "a handle of a stopped node says so");
    let before = {
        let (config, registry) = aether_presets::load_config(&aether_presets::aether(), &chain.source()).unwrap();
        let ledger = Ledger::open(aether_framework::node::open_store(&config, &registry).unwrap(), &chain.genesis).unwrap();
        let head = ledger.head();
        Before { head: head.block, state_root: head.header.state_root }
    };
    drop(handle);

    // Restart on the same directory: same head, same root, same balances, and it goes on.
    let node = chain.launch().await;
    let handle = node.handle();
    let after = handle.status().unwrap();
    assert_eq!(after.head, before.head, "same height and head hash after restart");
    assert_eq!(after.state_root, before.state_root);
    for (address, balance) in &expected {
        assert_eq!(handle.account(address).unwrap().balance, *balance);
    }
    wait_for_height(&handle, before.head.height + 2, Duration::from_secs(10)).await;
    assert_eq!(handle.account(&one).unwrap().balance, expected[&one], "empty blocks change nothing");
    node.shutdown().await.unwrap();
}

/// A bare HTTP/1.1 GET, to check `/health` as a load balancer would call it.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut response)).await.unwrap().unwrap();
    response
}

/// The committed head of a stopped node, read from its store.
struct Before {
    head: aether_framework::consensus::BlockRef,
    state_root: aether_framework::types::Hash,
}
