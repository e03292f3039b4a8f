//! Contracts through transactions: the example contracts (counter, token, escrow) on both VM
//! backends, a node serving `contractQuery`, and two executors on different backends agreeing
//! on every state root over 500 blocks of contract transactions.

use std::sync::Arc;
use std::time::Duration;

use aether_framework::ledger::Ledger;
use aether_framework::types::*;
use aether_framework::vm::{executor::contract_address, gas, VmBackend};
use aether_rpc::AetherApiClient;
use aether_storage_memory::MemoryStore;
use aether_tests::{rpc_url, to_hex, wait_for_tx, TestChain, CHAIN_ID};
use aether_vm_wasmer::WasmerBackend;
use aether_vm_wasmtime::WasmtimeBackend;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CHAIN: &str = "contracts-test";
const COUNTER: &str = include_str!("../../vm-backends/contracts/counter.wat");
const TOKEN: &str = include_str!("../../vm-backends/contracts/token.wat");
const ESCROW: &str = include_str!("../../vm-backends/contracts/escrow.wat");
const PROPOSER: Address = Address([0xbb; 20]);

fn key(n: u8) -> Keypair {
    Keypair::from_seed([n; 32])
}

fn genesis() -> Genesis {
    Genesis {
        chain_id: CHAIN.into(),
        genesis_time_ms: 1_000,
        modules: vec![],
        epochs: None,
        accounts: (0..8).map(|k| GenesisAccount { address: key(k).address(), balance: 1_000_000_000 }).collect(),
        validators: vec![GenesisValidator { name: "v".into(), identity: key(200).public(), consensus_key: vec![], stake: 1 }],
    }
}

fn ledger(vm: Arc<dyn VmBackend>) -> Ledger {
    Ledger::open(Arc::new(MemoryStore::new()), &genesis()).unwrap().with_vm(vm)
}

fn wasm(wat: &str) -> Vec<u8> {
    wat::parse_str(wat).expect("example contract parses")
}

/// Signs `action` from `from` at `nonce`, paying exactly the least fee its gas needs.
fn sign(from: &Keypair, nonce: u64, action: Action) -> SignedTransaction {
    let fee = gas::min_fee(action.gas_limit()).max(1);
    TxBody { chain_id: CHAIN.into(), sender: from.public(), nonce, fee, action }.sign(from)
}

fn deploy(code: &[u8], input: Vec<u8>, value: Amount) -> Action {
    Action::Deploy { code: code.to_vec(), input, value, gas_limit: 5_000_000 }
}

fn call(contract: Address, method: &str, input: Vec<u8>) -> Action {
    Action::Call { contract, method: method.into(), input, value: 0, gas_limit: 1_000_000 }
}

/// Builds a block of `txs` at `time_ms` on the head and commits it; every tx must be included.
fn commit(l: &Ledger, txs: Vec<SignedTransaction>, time_ms: u64) -> Vec<Receipt> {
    let head = l.head();
    let n = txs.len();
    let built = l.build_block(&head.block.hash, head.certificate, txs, vec![], time_ms, PROPOSER).unwrap();
    assert!(built.rejected.is_empty(), "rejected: {:?}", built.rejected);
    assert_eq!(built.executed.receipts.len(), n);
    l.commit(&built.executed.hash, &Certificate(vec![1])).unwrap();
    built.executed.receipts.clone()
}

fn ok(r: &Receipt) -> &Receipt {
    assert_eq!(r.status, TxStatus::Success, "{r:?}");
    r
}

fn failed_with<'r>(r: &'r Receipt, reason: &str) -> &'r Receipt {
    match &r.status {
        TxStatus::Failed { reason: got } => assert!(got.contains(reason), "{got:?} should say {reason:?}"),
        s => panic!("expected a failure saying {reason:?}, got {s:?}"),
    }
    r
}

fn u64_of(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes.try_into().expect("8 bytes"))
}

fn backends() -> Vec<Arc<dyn VmBackend>> {
    vec![Arc::new(WasmtimeBackend::new()), Arc::new(WasmerBackend::new())]
}

#[test]
fn counter_counts_through_transactions_and_queries() {
    for vm in backends() {
        let l = ledger(vm.clone());
        let alice = key(1);
        let counter = contract_address(&alice.address(), 0);
        let r = commit(&l, vec![sign(&alice, 0, deploy(&wasm(COUNTER), 41u64.to_le_bytes().to_vec(), 0))], 2_000);
        assert_eq!(ok(&r[0]).contract_address, Some(counter), "{}", vm.name());
        assert!(l.account(&counter).unwrap().code_hash.is_some());
        let r = commit(&l, (1..=3).map(|n| sign(&alice, n, call(counter, "increment", vec![]))).collect(), 3_000);
        assert_eq!(u64_of(&ok(&r[2]).output), 44);
        assert_eq!(r[2].events.len(), 1);
        assert_eq!((r[2].events[0].emitter, r[2].events[0].topic.as_slice()), (counter, &b"incremented"[..]));
        assert!(r[0].gas_used > 0 && r[0].gas_used == r[1].gas_used, "same work, same gas: {} {}", r[0].gas_used, r[1].gas_used);
        // A read-only query sees the committed value and keeps nothing.
        let (outcome, _) = l.query(Address::default(), counter, "increment", &[], 1_000_000).unwrap();
        assert_eq!(outcome.result, aether_framework::vm::CallResult::Returned(45u64.to_le_bytes().to_vec()));
        assert_eq!(l.contract_storage(&counter, b"count").unwrap(), Some(44u64.to_le_bytes().to_vec()));
        // Gas: the fee is charged, an out-of-gas call changes nothing else.
        let before = l.account(&alice.address()).unwrap().balance;
        let starved = Action::Call { contract: counter, method: "increment".into(), input: vec![], value: 0, gas_limit: 6_000 };
        let r = commit(&l, vec![sign(&alice, 4, starved)], 4_000);
        failed_with(&r[0], "out of gas");
        assert_eq!(r[0].gas_used, 6_000);
        assert_eq!(l.account(&alice.address()).unwrap().balance, before - r[0].fee_paid);
        assert_eq!(l.contract_storage(&counter, b"count").unwrap(), Some(44u64.to_le_bytes().to_vec()));
    }
}

#[test]
fn token_moves_balances_and_reverts_overdrafts() {
    for vm in backends() {
        let l = ledger(vm.clone());
        let (alice, bob) = (key(1), key(2));
        let token = contract_address(&alice.address(), 0);
        let transfer = |to: &Keypair, amount: u64| {
            let mut input = to.address().0.to_vec();
            input.extend_from_slice(&amount.to_le_bytes());
            call(token, "transfer", input)
        };
        let r = commit(&l, vec![sign(&alice, 0, deploy(&wasm(TOKEN), 1_000u64.to_le_bytes().to_vec(), 0))], 2_000);
        assert_eq!(ok(&r[0]).events[0].topic, b"mint");
        let r = commit(
            &l,
            vec![sign(&alice, 1, transfer(&bob, 300)), sign(&bob, 0, transfer(&alice, 50)), sign(&bob, 1, transfer(&alice, 251))],
            3_000,
        );
        ok(&r[0]);
        assert_eq!(r[0].events[0].topic, b"transfer");
        ok(&r[1]);
        // Bob has 250: the overdraft reverts with the contract's message, nothing moves.
        failed_with(&r[2], "insufficient balance");
        assert_eq!(r[2].output, b"insufficient balance");
        assert!(r[2].events.is_empty(), "a reverted call's events are dropped");
        let balance = |who: &Keypair| {
            let (o, _) = l.query(Address::default(), token, "balance_of", &who.address().0, 1_000_000).unwrap();
            match o.result {
                aether_framework::vm::CallResult::Returned(d) => u64_of(&d),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!((balance(&alice), balance(&bob)), (750, 250), "{}", vm.name());
        let r = commit(&l, vec![sign(&alice, 2, call(token, "transfer", vec![1, 2, 3]))], 4_000);
        failed_with(&r[0], "bad input");
    }
}

#[test]
fn escrow_releases_to_the_beneficiary_or_refunds_after_the_deadline() {
    for vm in backends() {
        let l = ledger(vm.clone());
        let (depositor, beneficiary, arbiter, stranger) = (key(1), key(2), key(3), key(4));
        let terms = |deadline: u64| {
            let mut v = beneficiary.address().0.to_vec();
            v.extend_from_slice(&arbiter.address().0);
            v.extend_from_slice(&deadline.to_le_bytes());
            v
        };
        // Escrow 1: released by the arbiter after a stranger's attempt fails.
        let first = contract_address(&depositor.address(), 0);
        let second = contract_address(&depositor.address(), 1);
        let r = commit(
            &l,
            vec![
                sign(&depositor, 0, deploy(&wasm(ESCROW), terms(10_000), 5_000)),
                sign(&depositor, 1, deploy(&wasm(ESCROW), terms(10_000), 7_000)),
            ],
            2_000,
        );
        ok(&r[0]);
        ok(&r[1]);
        assert_eq!(l.account(&first).unwrap().balance, 5_000);
        let beneficiary_before = l.account(&beneficiary.address()).unwrap().balance;
        let r =
            commit(&l, vec![sign(&stranger, 0, call(first, "release", vec![])), sign(&arbiter, 0, call(first, "release", vec![]))], 3_000);
        failed_with(&r[0], "only the arbiter may release");
        assert_eq!(ok(&r[1]).events[0].topic, b"released");
        assert_eq!(l.account(&beneficiary.address()).unwrap().balance, beneficiary_before + 5_000, "{}", vm.name());
        assert_eq!(l.account(&first).unwrap().balance, 0);
        let r = commit(&l, vec![sign(&arbiter, 1, call(first, "release", vec![]))], 4_000);
        failed_with(&r[0], "already settled");
        // Escrow 2: a refund before the deadline fails; after it (block time), it pays back.
        let r = commit(&l, vec![sign(&stranger, 1, call(second, "refund", vec![]))], 9_999);
        failed_with(&r[0], "the deadline has not passed");
        let depositor_before = l.account(&depositor.address()).unwrap().balance;
        let r = commit(&l, vec![sign(&stranger, 2, call(second, "refund", vec![]))], 10_000);
        assert_eq!(ok(&r[0]).events[0].topic, b"refunded");
        assert_eq!(l.account(&depositor.address()).unwrap().balance, depositor_before + 7_000);
        let (status, _) = l.query(Address::default(), second, "status", &[], 100_000).unwrap();
        assert_eq!(status.result, aether_framework::vm::CallResult::Returned(vec![2]));
    }
}

#[test]
fn deploys_of_refused_code_fail_with_the_rule_and_a_node_without_a_vm_refuses_contract_blocks() {
    let l = ledger(Arc::new(WasmtimeBackend::new()));
    let alice = key(1);
    let floats = wat::parse_str("(module (func (export \"f\") (drop (f64.const 1))))").unwrap();
    let r = commit(&l, vec![sign(&alice, 0, deploy(&floats, vec![], 0))], 2_000);
    failed_with(&r[0], "rule `floats`");
    assert_eq!(l.account(&contract_address(&alice.address(), 0)).unwrap().code_hash, None);
    // A contract block cannot be followed without a VM: the block is refused, not misexecuted.
    let r = commit(&l, vec![sign(&alice, 1, deploy(&wasm(COUNTER), vec![], 0))], 3_000);
    ok(&r[0]);
    let without_vm = Ledger::open(Arc::new(MemoryStore::new()), &genesis()).unwrap();
    let first = l.block_by_height(1).unwrap().unwrap().0;
    let err = without_vm.execute_block(first).unwrap_err().to_string();
    assert!(err.contains("no VM backend"), "{err}");
}

/// Two executors, Wasmtime and Wasmer, take turns building blocks of random contract
/// transactions; each executes the other's blocks. `execute_block` checks the state root in
/// the header, so any difference in result, gas or state fails the run at that block.
#[test]
fn mixed_backends_agree_on_every_state_root_over_500_blocks() {
    let wasmtime = ledger(Arc::new(WasmtimeBackend::new()));
    let wasmer = ledger(Arc::new(WasmerBackend::new()));
    let mut rng = ChaCha8Rng::seed_from_u64(500);
    let users: Vec<Keypair> = (0..8).map(key).collect();
    let mut nonces = [0u64; 8];
    let mut next = |i: usize| {
        nonces[i] += 1;
        nonces[i] - 1
    };
    let mut counters = Vec::new();
    let mut tokens = Vec::new();
    let mut escrows = Vec::new();
    let mut receipts_seen = 0usize;
    let mut failures = 0usize;
    for height in 1..=500u64 {
        let mut txs = Vec::new();
        for _ in 0..rng.gen_range(2..8) {
            let u = rng.gen_range(0..users.len());
            let from = &users[u];
            let nonce = next(u);
            let action = match rng.gen_range(0..100) {
                0..=3 => {
                    counters.push(contract_address(&from.address(), nonce));
                    deploy(&wasm(COUNTER), vec![], 0)
                }
                4..=6 => {
                    tokens.push(contract_address(&from.address(), nonce));
                    deploy(&wasm(TOKEN), 1_000_000u64.to_le_bytes().to_vec(), 0)
                }
                7..=8 => {
                    escrows.push(contract_address(&from.address(), nonce));
                    let mut terms = users[rng.gen_range(0..8)].address().0.to_vec();
                    terms.extend_from_slice(&users[rng.gen_range(0..8)].address().0);
                    terms.extend_from_slice(&(1_000 + height * 10 + rng.gen_range(0..500)).to_le_bytes());
                    deploy(&wasm(ESCROW), terms, rng.gen_range(0..1_000))
                }
                9..=40 if !counters.is_empty() => call(counters[rng.gen_range(0..counters.len())], "increment", vec![]),
                41..=75 if !tokens.is_empty() => {
                    let mut input = users[rng.gen_range(0..8)].address().0.to_vec();
                    input.extend_from_slice(&rng.gen_range(0..400_000u64).to_le_bytes());
                    call(tokens[rng.gen_range(0..tokens.len())], "transfer", input)
                }
                76..=85 if !escrows.is_empty() => {
                    let method = if rng.gen_bool(0.5) { "release" } else { "refund" };
                    call(escrows[rng.gen_range(0..escrows.len())], method, vec![])
                }
                86..=90 if !counters.is_empty() => {
                    // Starved calls: out of gas somewhere inside.
                    let gas_limit = rng.gen_range(5_000..80_000);
                    Action::Call {
                        contract: counters[rng.gen_range(0..counters.len())],
                        method: "increment".into(),
                        input: vec![],
                        value: 0,
                        gas_limit,
                    }
                }
                91..=93 => call(users[0].address(), "nothing", vec![]),
                _ => Action::Transfer { to: users[rng.gen_range(0..8)].address(), amount: rng.gen_range(1..100), memo: vec![] },
            };
            txs.push(sign(from, nonce, action));
        }
        let (builder, follower) = if height % 2 == 0 { (&wasmtime, &wasmer) } else { (&wasmer, &wasmtime) };
        let head = builder.head();
        let built = builder.build_block(&head.block.hash, head.certificate, txs, vec![], 1_000 + height * 10, PROPOSER).unwrap();
        assert!(built.rejected.is_empty(), "height {height}: {:?}", built.rejected);
        let followed = follower.execute_block(built.executed.block.clone()).unwrap_or_else(|e| {
            panic!("height {height}: {} refused {}'s block: {e}", follower.vm().unwrap().name(), builder.vm().unwrap().name())
        });
        assert_eq!(followed.receipts, built.executed.receipts, "height {height}: receipts (gas, output, events) differ");
        assert_eq!(followed.block.header.state_root, built.executed.block.header.state_root);
        receipts_seen += built.executed.receipts.len();
        failures += built.executed.receipts.iter().filter(|r| r.status != TxStatus::Success).count();
        let cert = Certificate(vec![1]);
        builder.commit(&built.executed.hash, &cert).unwrap();
        follower.commit(&followed.hash, &cert).unwrap();
    }
    assert_eq!(wasmtime.head().header.state_root, wasmer.head().header.state_root);
    assert_eq!(wasmtime.recompute_state_root().unwrap(), wasmer.recompute_state_root().unwrap());
    assert!(counters.len() > 5 && tokens.len() > 5 && escrows.len() > 3, "the mix deployed every kind");
    assert!(failures > 50 && failures < receipts_seen * 3 / 4, "{failures} failed of {receipts_seen}: both paths exercised");
}

/// Through a running node: deploy over RPC, call, read with `contractQuery` and
/// `getContractStorage`, and see the VM in `status`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_deploys_calls_and_answers_queries_over_rpc() {
    let chain = TestChain::new(1, "[consensus]\nengine = \"solo\"\n[vm]\nbackend = \"wasmer\"\n");
    let node = chain.launch().await;
    let client = jsonrpsee::http_client::HttpClientBuilder::default().build(rpc_url(&node)).unwrap();
    assert_eq!(client.status().await.unwrap().vm.as_deref(), Some("wasmer"));
    let alice = &chain.accounts[0];
    let tx = |nonce, action: Action| {
        TxBody { chain_id: CHAIN_ID.into(), sender: alice.public(), nonce, fee: gas::min_fee(action.gas_limit()), action }.sign(alice)
    };
    let counter = contract_address(&alice.address(), 0);
    let deploy_tx = tx(0, deploy(&wasm(COUNTER), vec![], 0));
    let call_tx = tx(1, call(counter, "increment", vec![]));
    for t in [&deploy_tx, &call_tx] {
        client.submit_transaction(to_hex(t)).await.unwrap();
    }
    wait_for_tx(&node.handle(), call_tx.hash(), Duration::from_secs(30)).await;
    let receipt = client.transaction(call_tx.hash()).await.unwrap().receipt.unwrap();
    assert_eq!(u64_of(&receipt.output), 1);
    let view = client.contract_query(counter, "get".into(), None, None, None).await.unwrap();
    assert_eq!((view.status.as_str(), u64_of(&view.output)), ("returned", 1));
    let stored = client.contract_storage(counter, format!("0x{}", hex::encode(b"count"))).await.unwrap();
    assert_eq!(stored, Some(format!("0x{}", hex::encode(1u64.to_le_bytes()))));
    let missing = client.contract_query(counter, "nope".into(), None, None, None).await.unwrap();
    assert_eq!(missing.status, "trapped");
    let err = client.contract_query(counter, "get".into(), Some("0xzz".into()), None, None).await.unwrap_err().to_string();
    assert!(err.contains("not hex"), "{err}");
    let too_much_gas = client.contract_query(counter, "get".into(), None, None, Some(gas::MAX_TX_GAS + 1)).await.unwrap_err().to_string();
    assert!(too_much_gas.contains("above"), "{too_much_gas}");
    node.shutdown().await.unwrap();
}

/// A backend whose every run fails in the engine (as when no instance slot is free).
struct BrokenVm;

impl VmBackend for BrokenVm {
    fn name(&self) -> &'static str {
        "broken"
    }
    fn compile(&self, _: Hash, _: &[u8]) -> Result<(), aether_framework::vm::VmError> {
        Ok(())
    }
    fn is_compiled(&self, _: &Hash) -> bool {
        true
    }
    fn call(
        &self,
        _: &Hash,
        _: &str,
        _: u64,
        _: &mut dyn aether_framework::vm::Host,
    ) -> Result<aether_framework::vm::CallOutcome, aether_framework::vm::VmError> {
        Err(aether_framework::vm::VmError::Engine("no free instance slot".into()))
    }
}

#[test]
fn a_vm_failure_leaves_the_transaction_out_and_never_enters_the_state() {
    let broken = ledger(Arc::new(BrokenVm));
    let (alice, bob) = (key(1), key(2));
    let deploy_tx = sign(&alice, 0, deploy(&wasm(COUNTER), vec![], 0));
    let transfer = sign(&bob, 0, Action::Transfer { to: alice.address(), amount: 5, memo: vec![] });
    let head = broken.head();
    let built = broken.build_block(&head.block.hash, head.certificate, vec![deploy_tx.clone(), transfer], vec![], 2_000, PROPOSER).unwrap();
    assert_eq!(built.executed.block.transactions.len(), 1, "the transfer is built, the deploy left out");
    assert!(
        matches!(&built.rejected[..], [(h, aether_framework::ledger::TxError::Vm(why))] if *h == deploy_tx.hash() && why.contains("no free instance slot")),
        "{:?}",
        built.rejected
    );
    let alice_after = &built.executed.changes.accounts[&alice.address()];
    assert_eq!((alice_after.nonce, alice_after.balance), (0, 1_000_000_000 + 5), "no fee, no nonce: nothing of the deploy");
    // A block with the deploy, built by a working node, is refused here rather than misexecuted.
    let working = ledger(Arc::new(WasmtimeBackend::new()));
    let head = working.head();
    let good = working.build_block(&head.block.hash, head.certificate, vec![deploy_tx], vec![], 2_000, PROPOSER).unwrap();
    let err = broken.execute_block(good.executed.block.clone()).unwrap_err().to_string();
    assert!(err.contains("the VM failed, not the contract"), "{err}");
}
