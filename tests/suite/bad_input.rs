//! Bad transactions through RPC: each is refused with its own code and a readable message,
//! the node keeps running, and committed state does not change.

use std::time::Duration;

use aether_framework::types::{Address, Signature};
use aether_rpc::{AetherApiClient, SUBMIT_ERROR_BASE};
use aether_tests::*;
use jsonrpsee::core::ClientError;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};

/// Submits `hex` and returns the error's (code offset, message); panics if it was accepted.
async fn rejected(client: &HttpClient, hex: String) -> (i32, String) {
    match client.submit_transaction(hex).await {
        Ok(h) => panic!("accepted {h}, expected a rejection"),
        Err(ClientError::Call(e)) => (SUBMIT_ERROR_BASE - e.code(), e.message().to_string()),
        Err(other) => panic!("expected a JSON-RPC error, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_transaction_gets_its_own_error() {
    // Blocks at most every 5 s, so the duplicate below is checked while its twin is pending.
    let chain = TestChain::new(
        2,
        "[consensus]\nengine = \"solo\"\n[consensus.solo]\nblock_interval_ms = 5000\nmin_block_interval_ms = 5000\n[mempool]\nmin_fee = 2\nmax_tx_bytes = 4096\n",
    );
    let node = chain.launch().await;
    let handle = node.handle();
    let client = HttpClientBuilder::default().build(rpc_url(&node)).unwrap();
    let (alice, bob) = (&chain.accounts[0], &chain.accounts[1]);
    let to = Address([7; 20]);

    // Let one block commit so the 5 s window starts now.
    wait_for_height(&handle, 1, Duration::from_secs(20)).await;
    let good = chain.transfer(alice, 0, to, 500, 2);
    client.submit_transaction(to_hex(&good)).await.expect("a valid transfer is accepted");

    let mut cases: Vec<(&str, i32, &str, String)> = Vec::new();
    cases.push(("duplicate", 5, "already in the mempool", to_hex(&good)));
    cases.push(("undecodable bytes", 2, "do not decode", "0xdeadbeef".into()));
    cases.push(("not hex", 2, "not hex", "0xzz".into()));
    let mut forged = chain.transfer(bob, 0, to, 10, 2);
    forged.signature = Signature([9; 64]);
    cases.push(("bad signature", 6, "bad signature", to_hex(&forged)));
    let mut other_chain = chain.transfer(bob, 0, to, 10, 2);
    other_chain.body.chain_id = "another-chain".into();
    let other_chain = other_chain.body.sign(bob);
    cases.push(("wrong chain id", 3, "wrong chain id", to_hex(&other_chain)));
    cases.push(("future nonce", 8, "in the future", to_hex(&chain.transfer(bob, 5, to, 10, 2))));
    cases.push(("fee too low", 4, "below the minimum 2", to_hex(&chain.transfer(bob, 0, to, 10, 1))));
    cases.push(("balance too low", 10, "cannot pay", to_hex(&chain.transfer(bob, 0, to, INITIAL_BALANCE, 2))));
    let mut oversize = chain.transfer(bob, 0, to, 10, 2);
    let aether_framework::types::Action::Transfer { memo, .. } = &mut oversize.body.action else { unreachable!("a transfer") };
    *memo = vec![0; 5000];
    cases.push(("oversize", 1, "the limit is 4096", to_hex(&oversize.body.clone().sign(bob))));
    cases.push(("nonce already pending", 9, "already pending", to_hex(&chain.transfer(alice, 0, to, 501, 2))));

    for (name, code, needle, hex) in cases {
        let (got, message) = rejected(&client, hex).await;
        assert_eq!(got, code, "{name}: code; message was {message:?}");
        assert!(message.contains(needle), "{name}: message {message:?} should contain {needle:?}");
    }

    // Every refusal is counted by reason.
    let metrics = handle.metrics().encode();
    assert!(metrics.contains("aether_transactions_rejected_total{reason=\"undecodable\"} 2"), "{metrics}");
    assert!(metrics.contains("aether_transactions_rejected_total{reason=\"duplicate\"} 1"), "{metrics}");

    // Stale nonce: once `good` commits, nonce 0 is in the past.
    let committed_at = handle.status().unwrap().head.height + 1;
    wait_for_height(&handle, committed_at, Duration::from_secs(20)).await;
    let (code, message) = rejected(&client, to_hex(&chain.transfer(alice, 0, to, 1, 2))).await;
    assert_eq!(code, 7, "stale nonce: {message}");
    assert!(message.contains("stale"), "{message}");

    // Nothing but `good` changed the state, and the node is still producing blocks.
    assert_eq!(client.account(to).await.unwrap().balance, 500);
    assert_eq!(client.account(alice.address()).await.unwrap().balance, INITIAL_BALANCE - 502);
    assert_eq!(client.account(bob.address()).await.unwrap().balance, INITIAL_BALANCE);
    let h = handle.status().unwrap().head.height;
    wait_for_height(&handle, h + 1, Duration::from_secs(20)).await;
    assert_eq!(handle.ledger().unwrap().recompute_state_root().unwrap(), handle.status().unwrap().state_root);

    // Malformed parameters are JSON-RPC errors too, not crashes.
    use jsonrpsee::core::client::ClientT;
    let err = client.request::<serde_json::Value, _>("aether_getAccount", jsonrpsee::rpc_params!["0x1234"]).await.unwrap_err().to_string();
    assert!(err.contains("address") && err.contains("20 bytes"), "{err}");
    node.shutdown().await.unwrap();
}
