//! Ledger execution and mempool policy, on the in-memory store.

// Test and bench code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use aether_node::ledger::{Ledger, LedgerError, TxError};
use aether_node::mempool::{FeePriority, Fifo, Mempool, MempoolConfig, OrderingPolicy, SubmitError};
use aether_primitives::codec;
use aether_primitives::types::*;
use aether_storage_memory::MemoryStore;

const CHAIN: &str = "unit";

fn key(n: u8) -> Keypair {
    Keypair::from_seed([n; 32])
}

fn genesis(balances: &[(u8, Amount)]) -> Genesis {
    Genesis {
        chain_id: CHAIN.into(),
        genesis_time_ms: 1000,
        modules: vec![],
        epochs: None,
        accounts: balances.iter().map(|(k, b)| GenesisAccount { address: key(*k).address(), balance: *b }).collect(),
        validators: vec![GenesisValidator { name: "v".into(), identity: key(100).public(), consensus_key: vec![], stake: 1 }],
    }
}

fn transfer(from: u8, nonce: u64, to: Address, amount: Amount, fee: Amount) -> SignedTransaction {
    TxBody { chain_id: CHAIN.into(), sender: key(from).public(), nonce, fee, action: Action::Transfer { to, amount, memo: vec![] } }
        .sign(&key(from))
}

fn ledger(balances: &[(u8, Amount)]) -> Arc<Ledger> {
    Arc::new(Ledger::open(Arc::new(MemoryStore::new()), &genesis(balances)).unwrap())
}

fn build_and_commit(l: &Ledger, txs: Vec<SignedTransaction>) -> Arc<aether_node::ledger::ExecutedBlock> {
    let head = l.head();
    let b = l.build_block(&head.block.hash, head.certificate, txs, vec![], head.header.time_ms + 10, key(100).address()).unwrap().executed;
    l.commit(&b.hash, &Certificate(vec![1])).unwrap()
}

#[test]
fn transfers_move_value_and_fees_go_to_the_proposer() {
    let l = ledger(&[(1, 1000)]);
    let to = Address([5; 20]);
    let b = build_and_commit(&l, vec![transfer(1, 0, to, 100, 3), transfer(1, 1, to, 50, 2)]);
    assert_eq!(b.receipts.iter().map(|r| &r.status).collect::<Vec<_>>(), vec![&TxStatus::Success, &TxStatus::Success]);
    assert_eq!(l.account(&key(1).address()).unwrap(), Account { nonce: 2, balance: 845, stake: 0, code_hash: None });
    assert_eq!(l.account(&to).unwrap().balance, 150);
    assert_eq!(l.account(&key(100).address()).unwrap().balance, 5);
    assert_eq!(l.recompute_state_root().unwrap(), l.head().header.state_root);
    let found = l.transaction(&b.block.transactions[1].hash()).unwrap().unwrap();
    assert_eq!(found.location.index, 1);
    assert_eq!(found.location.height, 1);
}

#[test]
fn a_failed_transfer_still_pays_its_fee_and_advances_the_nonce() {
    let l = ledger(&[(1, 100)]);
    let to = Address([5; 20]);
    let b = build_and_commit(&l, vec![transfer(1, 0, to, 500, 10)]);
    assert!(matches!(&b.receipts[0].status, TxStatus::Failed { reason } if reason.contains("insufficient balance")));
    assert_eq!(l.account(&key(1).address()).unwrap(), Account { nonce: 1, balance: 90, ..Default::default() });
    assert_eq!(l.account(&to).unwrap().balance, 0);
}

#[test]
fn building_skips_transactions_that_cannot_apply() {
    let l = ledger(&[(1, 100)]);
    let to = Address([5; 20]);
    let b = build_and_commit(&l, vec![transfer(1, 1, to, 1, 1), transfer(1, 0, to, 1, 1), transfer(2, 0, to, 1, 1)]);
    assert_eq!(b.block.transactions.len(), 1, "future nonce and unfunded sender are left out");
    assert_eq!(b.block.transactions[0].body.nonce, 0);
}

#[test]
fn execute_block_rejects_what_a_builder_would_not_produce() {
    let producer = ledger(&[(1, 1000)]);
    let to = Address([5; 20]);
    let head = producer.head();
    let good = producer
        .build_block(&head.block.hash, Certificate::default(), vec![transfer(1, 0, to, 1, 1)], vec![], 2000, key(100).address())
        .unwrap()
        .executed;

    let check = |mutate: &dyn Fn(&mut Block)| -> LedgerError {
        let verifier = ledger(&[(1, 1000)]);
        let mut b = good.block.clone();
        mutate(&mut b);
        verifier.execute_block(b).unwrap_err()
    };
    // The untouched block verifies on an independent ledger.
    assert!(ledger(&[(1, 1000)]).execute_block(good.block.clone()).is_ok());
    assert!(matches!(check(&|b| b.header.state_root = Hash::ZERO), LedgerError::InvalidBlock(m) if m.contains("state root")));
    assert!(matches!(check(&|b| b.header.tx_root = Hash::ZERO), LedgerError::InvalidBlock(m) if m.contains("tx root")));
    assert!(matches!(check(&|b| b.header.height = 5), LedgerError::InvalidBlock(m) if m.contains("height")));
    assert!(matches!(check(&|b| b.header.time_ms = 0), LedgerError::InvalidBlock(m) if m.contains("before its parent")));
    assert!(matches!(check(&|b| b.header.parent = Hash::ZERO), LedgerError::UnknownParent(_)));
    assert!(matches!(check(&|b| b.header.chain_id = "x".into()), LedgerError::InvalidBlock(m) if m.contains("chain id")));
    let forged = |b: &mut Block| {
        b.transactions[0].signature = Signature([3; 64]);
        b.header.tx_root = Block::compute_tx_root(&b.transactions);
    };
    assert!(matches!(check(&forged), LedgerError::InvalidTransaction { error: TxError::BadSignature(_), .. }));
    let replayed = |b: &mut Block| {
        b.transactions.push(b.transactions[0].clone());
        b.header.tx_root = Block::compute_tx_root(&b.transactions);
    };
    assert!(matches!(check(&replayed), LedgerError::InvalidTransaction { index: 1, error: TxError::StaleNonce { .. }, .. }));
}

#[test]
fn blocks_can_build_on_uncommitted_parents_and_commit_in_order() {
    let l = ledger(&[(1, 1000)]);
    let to = Address([5; 20]);
    let head = l.head();
    let b1 = l
        .build_block(&head.block.hash, Certificate::default(), vec![transfer(1, 0, to, 10, 1)], vec![], 2000, key(100).address())
        .unwrap()
        .executed;
    let b2 =
        l.build_block(&b1.hash, Certificate(vec![1]), vec![transfer(1, 1, to, 10, 1)], vec![], 3000, key(100).address()).unwrap().executed;
    assert_eq!(b2.block.transactions.len(), 1, "nonce 1 applies on top of the pending parent");
    assert!(matches!(l.commit(&b2.hash, &Certificate::default()), Err(LedgerError::NotOnHead { .. })));
    l.commit(&b1.hash, &Certificate::default()).unwrap();
    l.commit(&b2.hash, &Certificate::default()).unwrap();
    assert_eq!(l.account(&to).unwrap().balance, 20);
    assert_eq!(l.recompute_state_root().unwrap(), l.head().header.state_root);
}

#[test]
fn a_store_of_another_genesis_is_refused_and_reopening_keeps_state() {
    let store = Arc::new(MemoryStore::new());
    let l = Ledger::open(store.clone(), &genesis(&[(1, 1000)])).unwrap();
    build_and_commit(&l, vec![transfer(1, 0, Address([5; 20]), 10, 1)]);
    let head = l.head();
    drop(l);
    let again = Ledger::open(store.clone(), &genesis(&[(1, 1000)])).unwrap();
    assert_eq!(again.head(), head);
    match Ledger::open(store, &genesis(&[(1, 999)])) {
        Err(e @ LedgerError::GenesisMismatch { .. }) => assert!(e.to_string().contains("fresh data directory")),
        other => panic!("expected a genesis mismatch, got {:?}", other.map(|_| ())),
    }
}

fn pool(l: &Arc<Ledger>, max_txs: usize, policy: Arc<dyn OrderingPolicy>) -> Mempool {
    Mempool::new(MempoolConfig { max_txs, ..MempoolConfig::default() }, l.clone(), policy)
}

fn submit(p: &Mempool, tx: &SignedTransaction) -> Result<Hash, SubmitError> {
    p.submit(&codec::encode(tx))
}

#[test]
fn selection_orders_by_fee_across_senders_and_by_nonce_within_one() {
    let l = ledger(&[(1, 1000), (2, 1000), (3, 1000)]);
    let p = pool(&l, 100, Arc::new(FeePriority));
    let to = Address([9; 20]);
    let (a0, a1) = (transfer(1, 0, to, 1, 1), transfer(1, 1, to, 1, 50));
    let b0 = transfer(2, 0, to, 1, 10);
    let c0 = transfer(3, 0, to, 1, 5);
    for t in [&a0, &a1, &b0, &c0] {
        submit(&p, t).unwrap();
    }
    let order: Vec<Hash> = p.select(10).iter().map(|t| t.hash()).collect();
    // a1 pays most but must follow a0, which pays least.
    assert_eq!(order, vec![b0.hash(), c0.hash(), a0.hash(), a1.hash()]);
    assert_eq!(p.select(2).len(), 2);

    let fifo = pool(&l, 100, Arc::new(Fifo));
    for t in [&c0, &b0] {
        submit(&fifo, t).unwrap();
    }
    assert_eq!(fifo.select(10).iter().map(|t| t.hash()).collect::<Vec<_>>(), vec![c0.hash(), b0.hash()]);
}

#[test]
fn a_full_pool_evicts_the_cheapest_tail_or_refuses() {
    let l = ledger(&[(1, 1000), (2, 1000), (3, 1000)]);
    let p = pool(&l, 2, Arc::new(FeePriority));
    let to = Address([9; 20]);
    let cheap = transfer(1, 0, to, 1, 2);
    let mid = transfer(2, 0, to, 1, 5);
    submit(&p, &cheap).unwrap();
    submit(&p, &mid).unwrap();
    assert!(matches!(submit(&p, &transfer(3, 0, to, 1, 1)), Err(SubmitError::PoolFull { min_priority: 2 })));
    submit(&p, &transfer(3, 0, to, 1, 9)).unwrap();
    assert!(!p.contains(&cheap.hash()), "the lowest-fee tail was evicted");
    assert!(p.contains(&mid.hash()));
    assert_eq!(p.len(), 2);
}

#[test]
fn eviction_takes_a_senders_last_transaction_and_the_previous_one_becomes_its_tail() {
    let l = ledger(&[(1, 1000), (2, 1000)]);
    let p = pool(&l, 3, Arc::new(FeePriority));
    let to = Address([9; 20]);
    let (a0, a1, a2) = (transfer(1, 0, to, 1, 9), transfer(1, 1, to, 1, 3), transfer(1, 2, to, 1, 2));
    for t in [&a0, &a1, &a2] {
        submit(&p, t).unwrap();
    }
    // Sender 2 outbids sender 1's tail (fee 2), then its new tail (fee 3); never a0 (a gap
    // would strand nothing here, but a0 is not a tail while a1 exists).
    submit(&p, &transfer(2, 0, to, 1, 5)).unwrap();
    assert!(!p.contains(&a2.hash()) && p.contains(&a1.hash()));
    submit(&p, &transfer(2, 1, to, 1, 5)).unwrap();
    assert!(!p.contains(&a1.hash()) && p.contains(&a0.hash()));
    // Sender 1's queue is still contiguous: its next nonce is 1 again.
    assert_eq!(p.next_nonce(&key(1).address()), Some(1));
    assert_eq!(p.select(10).iter().filter(|t| t.body.sender == key(1).public()).count(), 1);
}

#[test]
fn transactions_handed_to_a_block_builder_are_not_evicted() {
    let l = ledger(&[(1, 1000), (2, 1000)]);
    let p = pool(&l, 2, Arc::new(FeePriority));
    let to = Address([9; 20]);
    let (a0, a1) = (transfer(1, 0, to, 1, 1), transfer(1, 1, to, 1, 1));
    submit(&p, &a0).unwrap();
    submit(&p, &a1).unwrap();
    let building = p.select(10);
    assert_eq!(building.len(), 2);
    // A richer newcomer may not push out a1 while a block holding it is being built.
    assert!(matches!(submit(&p, &transfer(2, 0, to, 1, 50)), Err(SubmitError::PoolFull { .. })));
    let b = build_and_commit(&l, building);
    p.on_committed(&b.block);
    assert!(p.is_empty());
    p.check_invariants().unwrap();
}

#[test]
fn rejected_transactions_leave_with_their_successors_and_stale_ones_are_cleaned_on_commit() {
    let l = ledger(&[(1, 1000), (2, 1000)]);
    let p = pool(&l, 100, Arc::new(FeePriority));
    let to = Address([9; 20]);
    let (a0, a1, a2) = (transfer(1, 0, to, 1, 1), transfer(1, 1, to, 1, 1), transfer(1, 2, to, 1, 1));
    for t in [&a0, &a1, &a2] {
        submit(&p, t).unwrap();
    }
    p.drop_rejected(&[a1.hash()]);
    assert!(p.contains(&a0.hash()) && !p.contains(&a1.hash()) && !p.contains(&a2.hash()));

    // Another node's block used sender 2's nonce 0 with a different transaction: the pool's
    // own nonce-0 transaction from sender 2 can never apply and goes on commit.
    let b0 = transfer(2, 0, to, 1, 1);
    submit(&p, &b0).unwrap();
    let other = transfer(2, 0, to, 2, 1);
    let b = build_and_commit(&l, vec![other]);
    p.on_committed(&b.block);
    assert!(!p.contains(&b0.hash()));
    assert!(p.contains(&a0.hash()));
}

#[test]
fn admission_checks_balance_across_pending_transactions_and_commits_clean_up() {
    let l = ledger(&[(1, 100)]);
    let p = pool(&l, 100, Arc::new(FeePriority));
    let to = Address([9; 20]);
    submit(&p, &transfer(1, 0, to, 60, 1)).unwrap();
    assert!(matches!(submit(&p, &transfer(1, 1, to, 60, 1)), Err(SubmitError::InsufficientBalance { available: 39, needed: 61 })));
    submit(&p, &transfer(1, 1, to, 30, 1)).unwrap();
    assert_eq!(p.next_nonce(&key(1).address()), Some(2));
    let b = build_and_commit(&l, p.select(10));
    // Between the commit and the cleanup, admission already sees the new state correctly.
    assert!(matches!(submit(&p, &transfer(1, 1, to, 1, 1)), Err(SubmitError::StaleNonce { expected: 2, got: 1 })));
    submit(&p, &transfer(1, 2, to, 1, 1)).unwrap();
    p.on_committed(&b.block);
    assert_eq!(p.len(), 1, "only the new transaction is left");
    p.drop_rejected(&[transfer(1, 2, to, 1, 1).hash()]);
    assert!(p.is_empty());
    assert_eq!(p.next_nonce(&key(1).address()), None);
    assert!(matches!(submit(&p, &transfer(1, 0, to, 1, 1)), Err(SubmitError::StaleNonce { expected: 2, got: 0 })));
}

/// Seeded random interleavings of submissions (valid, duplicate, gapped, underfunded, high
/// and low fees into a small pool), block builds and commits, and rejections. After every
/// step the pool's invariants hold and selection respects per-sender nonce order. A failure
/// prints its seed; set AETHER_SEED to replay one.
#[test]
fn mempool_invariants_hold_under_random_operations() {
    use rand::{Rng, SeedableRng};
    let seeds: Vec<u64> = match std::env::var("AETHER_SEED") {
        Ok(s) => vec![s.parse().expect("AETHER_SEED is a u64")],
        Err(_) => (0..20).collect(),
    };
    for seed in seeds {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let senders: Vec<u8> = (1..=6).collect();
        let l = ledger(&senders.iter().map(|s| (*s, 1_000_000)).collect::<Vec<_>>());
        let policy: Arc<dyn OrderingPolicy> = if seed % 2 == 0 { Arc::new(FeePriority) } else { Arc::new(Fifo) };
        let p = Mempool::new(MempoolConfig { max_txs: 12, max_bytes: 12 * 200, ..MempoolConfig::default() }, l.clone(), policy);
        let mut next: std::collections::HashMap<u8, u64> = senders.iter().map(|s| (*s, 0)).collect();
        let to = Address([9; 20]);
        let (mut accepted, mut committed, mut full_seen) = (0, 0, false);
        for step in 0..300 {
            // Mostly submissions, so the small pool fills and evicts; some builds and rejections.
            let op = rng.gen_range(0..20);
            if op < 17 {
                let s = senders[rng.gen_range(0..senders.len())];
                let base = l.account(&key(s).address()).unwrap().nonce.max(next[&s]);
                let nonce = match rng.gen_range(0..6) {
                    0 => base + 1,               // a gap
                    1 => base.saturating_sub(1), // stale or already pending
                    _ => base,
                };
                // Now and then more than the balance, which admission must refuse.
                let amount = if rng.gen_bool(0.1) { 2_000_000 } else { rng.gen_range(1..200) };
                let tx = transfer(s, nonce, to, amount, rng.gen_range(1..50));
                let before = p.len();
                let result = submit(&p, &tx);
                // Full: an admission that evicted (the pool did not grow) or a refusal for room.
                full_seen |= matches!(result, Err(SubmitError::PoolFull { .. })) || (result.is_ok() && p.len() <= before);
                if result.is_ok() {
                    accepted += 1;
                    next.insert(s, nonce + 1);
                    if rng.gen_bool(0.2) {
                        assert!(matches!(submit(&p, &tx), Err(SubmitError::Duplicate(_))), "seed {seed} step {step}");
                    }
                }
            } else if op < 19 {
                let candidates = p.select(rng.gen_range(1..4));
                let mut last: std::collections::HashMap<PublicKey, u64> = Default::default();
                for t in &candidates {
                    if let Some(prev) = last.insert(t.body.sender, t.body.nonce) {
                        assert_eq!(t.body.nonce, prev + 1, "seed {seed} step {step}: selection out of nonce order");
                    }
                }
                let head = l.head();
                let built = l
                    .build_block(&head.block.hash, Certificate::default(), candidates, vec![], head.header.time_ms + 1, key(100).address())
                    .unwrap();
                assert!(built.rejected.is_empty(), "seed {seed} step {step}: the pool offered inapplicable txs {:?}", built.rejected);
                committed += built.executed.block.transactions.len();
                let hash = built.executed.hash;
                let committed_block = l.commit(&hash, &Certificate::default()).unwrap();
                p.on_committed(&committed_block.block);
                for s in &senders {
                    let committed = l.account(&key(*s).address()).unwrap().nonce;
                    next.insert(*s, p.next_nonce(&key(*s).address()).unwrap_or(committed));
                }
            } else {
                let pending = p.select(100);
                if !pending.is_empty() {
                    let victim = pending[rng.gen_range(0..pending.len())].hash();
                    p.drop_rejected(&[victim]);
                    for s in &senders {
                        let committed = l.account(&key(*s).address()).unwrap().nonce;
                        next.insert(*s, p.next_nonce(&key(*s).address()).unwrap_or(committed));
                    }
                }
            }
            if let Err(e) = p.check_invariants() {
                panic!("seed {seed} step {step}: {e}");
            }
        }
        // The run must have exercised the interesting paths, or it proves nothing.
        assert!(accepted > 50 && committed > 20 && full_seen, "seed {seed}: accepted {accepted}, committed {committed}, full {full_seen}");
    }
}
