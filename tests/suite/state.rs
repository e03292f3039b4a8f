//! Authenticated state across backends: identical roots, proofs, pruning.

use std::sync::Arc;

use aether_framework::ledger::{Ledger, LedgerError, Retention};
use aether_framework::state::{self, StateError};
use aether_framework::storage::{columns, KvStore};
use aether_framework::types::*;
use aether_storage_memory::MemoryStore;
use aether_storage_paritydb::{ParitySettings, ParityStore};
use aether_storage_rocksdb::{RocksSettings, RocksStore};

const CHAIN: &str = "state-test";
const ACCOUNTS: u8 = 24;

fn key(n: u8) -> Keypair {
    Keypair::from_seed([n; 32])
}

fn genesis() -> Genesis {
    Genesis {
        chain_id: CHAIN.into(),
        genesis_time_ms: 1000,
        modules: vec![],
        epochs: None,
        accounts: (0..ACCOUNTS).map(|k| GenesisAccount { address: key(k).address(), balance: 1_000_000_000 }).collect(),
        validators: vec![GenesisValidator { name: "v".into(), identity: key(200).public(), consensus_key: vec![], stake: 1 }],
    }
}

/// Block `height`'s transfers: five senders chosen by height, to fresh and existing addresses.
fn transfers(height: u64, nonces: &mut [u64]) -> Vec<SignedTransaction> {
    (0..5u64)
        .map(|i| {
            let from = ((height * 7 + i * 5) % ACCOUNTS as u64) as u8;
            let to = if i == 0 {
                Address(Hash::digest(b"fresh", &height.to_be_bytes()).0[..20].try_into().unwrap())
            } else {
                key((from + 1) % ACCOUNTS).address()
            };
            let nonce = nonces[from as usize];
            nonces[from as usize] += 1;
            TxBody {
                chain_id: CHAIN.into(),
                sender: key(from).public(),
                nonce,
                fee: 1 + i as u128,
                action: Action::Transfer { to, amount: 10 + height as u128, memo: vec![] },
            }
            .sign(&key(from))
        })
        .collect()
}

fn build_and_commit(l: &Ledger, txs: Vec<SignedTransaction>) -> Block {
    let head = l.head();
    let built = l.build_block(&head.block.hash, head.certificate, txs, vec![], head.header.time_ms + 10, key(200).address()).unwrap();
    assert!(built.rejected.is_empty(), "every generated transfer is valid: {:?}", built.rejected);
    let block = built.executed.block.clone();
    l.commit(&built.executed.hash, &Certificate(vec![1])).unwrap();
    block
}

#[test]
fn the_same_blocks_give_the_same_roots_on_every_backend() {
    let dir = tempfile::tempdir().unwrap();
    let stores: Vec<Arc<dyn KvStore>> = vec![
        Arc::new(MemoryStore::new()),
        Arc::new(RocksStore::open(&dir.path().join("rocks"), columns::SCHEMA, &RocksSettings::default()).unwrap()),
        Arc::new(ParityStore::open(&dir.path().join("parity"), columns::SCHEMA, &ParitySettings::default()).unwrap()),
    ];
    let ledgers: Vec<Ledger> = stores.iter().map(|s| Ledger::open(s.clone(), &genesis()).unwrap()).collect();
    let mut nonces = vec![0u64; ACCOUNTS as usize];
    for height in 1..=1000u64 {
        // Built on the memory ledger, verified and committed by the others.
        let block = build_and_commit(&ledgers[0], transfers(height, &mut nonces));
        for l in &ledgers[1..] {
            let executed =
                l.execute_block(block.clone()).unwrap_or_else(|e| panic!("{} at height {height}: {e}", l.store().backend_name()));
            l.commit(&executed.hash, &Certificate(vec![1])).unwrap();
        }
    }
    for height in 0..=1000u64 {
        let roots: Vec<Hash> = stores.iter().map(|s| state::root_at(s.as_ref(), height).unwrap()).collect();
        assert!(roots.iter().all(|r| *r == roots[0]), "height {height}: memory, rocksdb, paritydb roots differ: {roots:?}");
        let header_root = ledgers[0].block_by_height(height).unwrap().unwrap().0.header.state_root;
        assert_eq!(roots[0], header_root, "height {height}: the tree root is the header's state root");
    }
    for l in &ledgers {
        assert_eq!(
            l.recompute_state_root().unwrap(),
            l.head().header.state_root,
            "{}: root recomputed from scratch",
            l.store().backend_name()
        );
    }
}

#[test]
fn accounts_are_proven_present_and_absent_at_past_heights_and_pruning_says_what_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn KvStore> = Arc::new(RocksStore::open(dir.path(), columns::SCHEMA, &RocksSettings::default()).unwrap());
    let ledger = Ledger::open(store.clone(), &genesis()).unwrap();
    let mut nonces = vec![0u64; ACCOUNTS as usize];
    for height in 1..=60 {
        build_and_commit(&ledger, transfers(height, &mut nonces));
    }
    let alice = key(3).address();
    let nobody = Address([0xee; 20]);
    for height in [0, 1, 30, 59, 60] {
        let (account, proof, header) = ledger.account_with_proof(&alice, height).unwrap();
        let account = account.expect("alice exists from genesis");
        state::verify_account_proof(&header.state_root, &alice, Some(&account), &proof).unwrap();
        let proof = state::StateProof::from_bytes(&proof.to_bytes()).unwrap();
        let mut richer = account.clone();
        richer.balance += 1;
        assert!(state::verify_account_proof(&header.state_root, &alice, Some(&richer), &proof).is_err(), "a changed balance fails");
        assert!(state::verify_account_proof(&header.state_root, &alice, None, &proof).is_err(), "claiming absence fails");

        let (missing, proof, header) = ledger.account_with_proof(&nobody, height).unwrap();
        assert_eq!(missing, None);
        state::verify_account_proof(&header.state_root, &nobody, None, &proof).unwrap();
        let planted = Account { balance: 1, ..Account::default() };
        assert!(
            state::verify_account_proof(&header.state_root, &nobody, Some(&planted), &proof).is_err(),
            "absence cannot be turned into presence"
        );
    }
    // A proof from one height does not verify against another height's root (alice changed).
    let (a10, p10, _) = ledger.account_with_proof(&alice, 10).unwrap();
    let root60 = ledger.head().header.state_root;
    assert!(state::verify_account_proof(&root60, &alice, a10.as_ref(), &p10).is_err());
    assert!(matches!(ledger.account_with_proof(&alice, 61), Err(LedgerError::State(StateError::Future { requested: 61, newest: 60 }))));

    let count = |col| store.scan_prefix(col, &[]).map(|i| i.count()).unwrap_or(0);
    let stale_before = count(columns::STATE_STALE);
    assert!(stale_before > 0, "sixty blocks of updates leave stale entries");
    let retention = Retention { keep_recent: 10, keep_blocks: 5 };
    loop {
        let p = ledger.prune(&retention, 500).unwrap();
        if p.done {
            assert_eq!((p.state_oldest, p.blocks_oldest), (51, 56));
            break;
        }
    }
    assert!(count(columns::STATE_STALE) < stale_before, "pruning removed stale entries");
    let e = ledger.account_with_proof(&alice, 50).unwrap_err().to_string();
    assert_eq!(e, "state at height 50 was pruned; the oldest height available is 51");
    let e = ledger.block_by_height(55).unwrap_err().to_string();
    assert_eq!(e, "block at height 55 was pruned; the oldest block available is at height 56");
    for height in 56..=60 {
        let (account, proof, header) = ledger.account_with_proof(&alice, height).unwrap();
        state::verify_account_proof(&header.state_root, &alice, account.as_ref(), &proof).unwrap();
    }
    // Heights 51..55 keep their state; their headers are gone with their blocks.
    assert!(state::get_with_proof(store.as_ref(), &state::account_key(&alice), 51).is_ok());
    assert_eq!(ledger.recompute_state_root().unwrap(), root60, "pruning never touches the head state");
    // The chain continues on the pruned store, and reopens.
    build_and_commit(&ledger, transfers(61, &mut nonces));
    drop(ledger);
    let reopened = Ledger::open(store.clone(), &genesis()).unwrap();
    assert_eq!(reopened.head().block.height, 61);
}

/// A node on ParityDB with a short retention window serves proofs over RPC and prunes in the
/// background.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paritydb_node_serves_proofs_and_prunes_in_the_background() {
    use aether_rpc::{AetherApiClient, HISTORY_UNAVAILABLE};
    use aether_tests::{rpc_url, to_hex, TestChain};
    use jsonrpsee::core::ClientError;
    use jsonrpsee::http_client::HttpClientBuilder;

    let chain = TestChain::new(
        2,
        "[consensus]\nengine = \"solo\"\n[consensus.solo]\nmin_block_interval_ms = 5\n[storage]\nbackend = \"paritydb\"\nkeep_recent = 4\nkeep_blocks = 6\n",
    );
    let node = chain.launch().await;
    let client = HttpClientBuilder::default().build(rpc_url(&node)).unwrap();
    let to = Address([7; 20]);
    for nonce in 0..30 {
        let tx = chain.transfer(&chain.accounts[0], nonce, to, 100, 1);
        client.submit_transaction(to_hex(&tx)).await.unwrap();
        aether_tests::wait_for_tx(&node.node.handle(), tx.hash(), std::time::Duration::from_secs(20)).await;
    }
    let head = node.node.handle().status().unwrap().head.height;
    assert!(head >= 30, "one block per sequential transfer at least");

    let view = client.account_proof(to, None).await.unwrap();
    assert_eq!(view.height, head);
    assert_eq!(view.account.as_ref().map(|a| a.balance), Some(3000));
    let proof = state::StateProof::from_bytes(&hex::decode(view.proof.trim_start_matches("0x")).unwrap()).unwrap();
    state::verify_account_proof(&view.state_root, &to, view.account.as_ref(), &proof).unwrap();
    let header = client.block_by_height(head).await.unwrap().unwrap().header;
    assert_eq!(header.state_root, view.state_root, "the proof is against the header's root");

    let nobody = Address([9; 20]);
    let view = client.account_proof(nobody, Some(head - 2)).await.unwrap();
    assert!(view.account.is_none());
    let proof = state::StateProof::from_bytes(&hex::decode(view.proof.trim_start_matches("0x")).unwrap()).unwrap();
    state::verify_account_proof(&view.state_root, &nobody, None, &proof).unwrap();

    // The pruner runs after each block; wait (bounded) until it has caught up with this head.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let (state_oldest, blocks_oldest) = loop {
        let handle = node.node.handle();
        let ledger = handle.ledger().unwrap();
        let s = state::oldest_version(ledger.store().as_ref()).unwrap();
        let b = ledger.oldest_block().unwrap();
        if s >= head - 3 && b >= head - 5 {
            break (s, b);
        }
        assert!(std::time::Instant::now() < deadline, "pruning did not catch up: state from {s}, blocks from {b}, head {head}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    match client.account_proof(to, Some(1)).await {
        Err(ClientError::Call(e)) => {
            assert_eq!(e.code(), HISTORY_UNAVAILABLE);
            assert!(e.message().contains(&format!("the oldest height available is {state_oldest}")), "{}", e.message());
        }
        other => panic!("a pruned height must be refused, got {other:?}"),
    }
    match client.block_by_height(1).await {
        Err(ClientError::Call(e)) => {
            assert_eq!(e.code(), HISTORY_UNAVAILABLE);
            assert!(e.message().contains(&format!("oldest block available is at height {blocks_oldest}")), "{}", e.message());
        }
        other => panic!("a pruned block must be refused, got {other:?}"),
    }
    node.shutdown().await.unwrap();
}
