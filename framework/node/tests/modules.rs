//! Runtime-module calls through the ledger: routing by name, state in the authenticated tree,
//! value, payments, events, gas, and what a bad call costs (its fee, nothing else).

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use aether_api::module::{module_address, ModuleContext, ModuleError, RuntimeModule};
use aether_node::ledger::{ExecutedBlock, Ledger, TxError};
use aether_primitives::types::*;
use aether_storage_memory::MemoryStore;

const CHAIN: &str = "modules";

fn key(n: u8) -> Keypair {
    Keypair::from_seed([n; 32])
}

/// A test module. Calls: `add` (counter + 1, event), `deposit:N` (needs value N, keeps it),
/// `withdraw:N` (pays the caller N from the module's account), `spin` (charges gas forever),
/// `panic` (a bug), anything else an unknown method; an empty call does not decode.
struct Bank;

impl RuntimeModule for Bank {
    fn name(&self) -> &'static str {
        "bank"
    }
    fn version(&self) -> u32 {
        1
    }
    fn call(&self, cx: &mut dyn ModuleContext, call: &[u8]) -> Result<Vec<u8>, ModuleError> {
        let text = std::str::from_utf8(call).map_err(|e| ModuleError::BadCall(e.to_string()))?;
        if text.is_empty() {
            return Err(ModuleError::BadCall("empty call".into()));
        }
        let (method, arg) = text.split_once(':').unwrap_or((text, ""));
        let amount = || arg.parse::<Amount>().map_err(|e| ModuleError::BadCall(format!("{arg:?}: {e}")));
        match method {
            "add" => {
                let n = cx.get(b"count")?.map_or(0, |v| u64::from_le_bytes(v.try_into().unwrap())) + 1;
                cx.set(b"count", &n.to_le_bytes())?;
                cx.emit(b"added", &n.to_le_bytes())?;
                Ok(n.to_le_bytes().to_vec())
            }
            "deposit" => {
                let needed = amount()?;
                if cx.value() < needed {
                    return Err(ModuleError::InsufficientValue { needed, sent: cx.value() });
                }
                // A write before the failure below would be reverted with it.
                cx.set(b"last-depositor", &cx.caller().0)?;
                Ok(vec![])
            }
            "withdraw" => {
                let n = amount()?;
                let caller = cx.caller();
                cx.pay(&caller, n)?;
                Ok(vec![])
            }
            "add-then-fail" => {
                cx.set(b"count", &99u64.to_le_bytes())?;
                Err(ModuleError::Failed("failed after writing".into()))
            }
            "mint" => {
                let caller = cx.caller();
                cx.mint(&caller, amount()?)?;
                Ok(vec![])
            }
            "burn" => {
                cx.burn(amount()?)?;
                Ok(vec![])
            }
            "spin" => loop {
                cx.charge(1_000)?;
            },
            "panic" => panic!("a bug in the module"),
            other => Err(ModuleError::UnknownMethod(other.into())),
        }
    }
}

fn ledger() -> Ledger {
    ledger_granting_mint(false)
}

fn ledger_granting_mint(mint: bool) -> Ledger {
    Ledger::open(Arc::new(MemoryStore::new()), &bank_genesis(mint)).unwrap().with_module(Arc::new(Bank))
}

fn bank_genesis(mint: bool) -> Genesis {
    Genesis {
        chain_id: CHAIN.into(),
        genesis_time_ms: 1000,
        modules: vec![GenesisModule { name: "bank".into(), version: 1, mint, params: String::new(), govern_chain: false }],
        epochs: None,
        accounts: vec![GenesisAccount { address: key(1).address(), balance: 1_000_000 }],
        validators: vec![GenesisValidator { name: "v".into(), identity: key(100).public(), consensus_key: vec![], stake: 1 }],
    }
}

fn module_tx(nonce: u64, module: &str, call: &[u8], value: Amount) -> SignedTransaction {
    TxBody {
        chain_id: CHAIN.into(),
        sender: key(1).public(),
        nonce,
        fee: 200,
        action: Action::Module { module: module.into(), call: call.to_vec(), value, gas_limit: 200_000 },
    }
    .sign(&key(1))
}

fn commit(l: &Ledger, txs: Vec<SignedTransaction>) -> (Arc<ExecutedBlock>, Vec<(Hash, TxError)>) {
    let head = l.head();
    let built = l.build_block(&head.block.hash, head.certificate, txs, vec![], head.header.time_ms + 10, key(100).address()).unwrap();
    (l.commit(&built.executed.hash, &Certificate(vec![1])).unwrap(), built.rejected)
}

#[test]
fn a_module_call_writes_the_modules_state_in_the_tree_and_emits_events() {
    let l = ledger();
    let (b, _) = commit(&l, vec![module_tx(0, "bank", b"add", 0), module_tx(1, "bank", b"add", 0)]);
    assert_eq!(b.receipts[1].status, TxStatus::Success);
    assert_eq!(b.receipts[1].output, 2u64.to_le_bytes());
    assert_eq!(
        b.receipts[1].events,
        vec![Event { emitter: module_address("bank"), topic: b"added".to_vec(), data: 2u64.to_le_bytes().to_vec() }]
    );
    assert!(b.receipts[1].gas_used > 0 && b.receipts[1].gas_used < 200_000);
    assert_eq!(l.contract_storage(&module_address("bank"), b"count").unwrap(), Some(2u64.to_le_bytes().to_vec()));
    // In the authenticated state: recomputing from the flat tables gives the header's root.
    assert_eq!(l.recompute_state_root().unwrap(), l.head().header.state_root);
}

#[test]
fn value_moves_to_the_module_and_the_module_pays_from_its_own_account() {
    let l = ledger();
    let bank = module_address("bank");
    commit(&l, vec![module_tx(0, "bank", b"deposit:500", 500)]);
    assert_eq!(l.account(&bank).unwrap().balance, 500);
    let (b, _) = commit(&l, vec![module_tx(1, "bank", b"withdraw:300", 0), module_tx(2, "bank", b"withdraw:300", 0)]);
    assert_eq!(b.receipts[0].status, TxStatus::Success);
    assert_eq!(b.receipts[1].status, TxStatus::Failed { reason: "module bank: the module's account holds 200, cannot pay 300".into() });
    assert_eq!(l.account(&bank).unwrap().balance, 200);
    // 1,000,000 - 3 fees of 200 - 500 deposited + 300 withdrawn.
    assert_eq!(l.account(&key(1).address()).unwrap().balance, 1_000_000 - 600 - 500 + 300);
}

/// A bad call fails with a message saying what was wrong; the fee is paid and the nonce moves;
/// nothing else changes (no module state, no value kept, the same root as a block holding only
/// the fee payment would give).
#[test]
fn bad_module_calls_fail_with_a_clear_message_and_cost_only_their_fee() {
    let cases: [(&str, &[u8], Amount, &str); 5] = [
        ("nobank", b"add", 0, "unknown module \"nobank\" (this chain runs: bank)"),
        ("bank", b"", 0, "module bank: the call does not decode: empty call"),
        ("bank", b"\xff", 0, "module bank: the call does not decode: invalid utf-8 sequence of 1 bytes from index 0"),
        ("bank", b"steal", 0, "module bank: unknown method \"steal\""),
        ("bank", b"deposit:500", 499, "module bank: the call needs a value of 500, the transaction sent 499"),
    ];
    for (module, call, value, reason) in cases {
        let l = ledger();
        let before_root = l.head().header.state_root;
        let (b, rejected) = commit(&l, vec![module_tx(0, module, call, value)]);
        assert!(rejected.is_empty(), "{module} {call:?}: a bad call is a failed receipt, not a rejected transaction");
        assert_eq!(b.receipts[0].status, TxStatus::Failed { reason: reason.into() }, "{module} {call:?}");
        assert_eq!(b.receipts[0].fee_paid, 200);
        let sender = l.account(&key(1).address()).unwrap();
        assert_eq!((sender.balance, sender.nonce), (1_000_000 - 200, 1), "{module} {call:?}: only the fee was taken");
        assert_eq!(l.account(&module_address("bank")).unwrap().balance, 0, "{module} {call:?}: no value kept");
        assert_eq!(l.contract_storage(&module_address("bank"), b"last-depositor").unwrap(), None, "{module} {call:?}: writes reverted");
        assert_ne!(l.head().header.state_root, before_root, "the fee payment itself is in the state");
        assert_eq!(l.recompute_state_root().unwrap(), l.head().header.state_root);
    }
}

#[test]
fn a_call_that_runs_out_of_gas_fails_alone_and_uses_its_whole_limit() {
    let l = ledger();
    let (b, _) = commit(&l, vec![module_tx(0, "bank", b"spin", 0), module_tx(1, "bank", b"add", 0)]);
    assert_eq!(b.receipts[0].status, TxStatus::Failed { reason: "module bank: out of gas".into() });
    assert_eq!(b.receipts[0].gas_used, 200_000);
    assert_eq!(b.receipts[1].status, TxStatus::Success, "the next transaction runs as usual");
}

#[test]
fn a_panicking_module_never_enters_a_block() {
    let l = ledger();
    let (b, rejected) = commit(&l, vec![module_tx(0, "bank", b"panic", 0)]);
    assert!(b.block.transactions.is_empty(), "a module's panic is this node's failure, never a receipt");
    assert!(matches!(&rejected[..], [(_, TxError::Vm(reason))] if reason.contains("module bank panicked")), "{rejected:?}");
}

#[test]
fn module_calls_need_no_vm_but_pay_for_their_gas() {
    let l = ledger();
    let cheap = TxBody {
        chain_id: CHAIN.into(),
        sender: key(1).public(),
        nonce: 0,
        fee: 1,
        action: Action::Module { module: "bank".into(), call: b"add".to_vec(), value: 0, gas_limit: 200_000 },
    }
    .sign(&key(1));
    let (b, rejected) = commit(&l, vec![cheap]);
    assert!(b.block.transactions.is_empty());
    assert!(matches!(&rejected[..], [(_, TxError::FeeTooLow { .. })]), "{rejected:?}");
    assert!(l.vm().is_none(), "this ledger has no VM, and module calls still run (the tests above)");
}

/// Counts blocks in its end hook; records the height in its begin hook.
struct Ticker;

impl RuntimeModule for Ticker {
    fn name(&self) -> &'static str {
        "ticker"
    }
    fn version(&self) -> u32 {
        1
    }
    fn call(&self, _: &mut dyn ModuleContext, _: &[u8]) -> Result<Vec<u8>, ModuleError> {
        Err(ModuleError::UnknownMethod("ticker takes no calls".into()))
    }
    fn begin_block(&self, cx: &mut dyn ModuleContext, _evidence: &[Evidence]) -> Result<(), ModuleError> {
        let h = cx.height();
        cx.set(b"begun", &h.to_le_bytes())
    }
    fn end_block(&self, cx: &mut dyn ModuleContext) -> Result<(), ModuleError> {
        let n = cx.get(b"ticks")?.map_or(0, |v| u64::from_le_bytes(v.try_into().unwrap())) + 1;
        cx.set(b"ticks", &n.to_le_bytes())?;
        cx.emit(b"tick", &n.to_le_bytes())
    }
}

/// A bug: its end hook writes, then loops forever.
struct Spinner;

impl RuntimeModule for Spinner {
    fn name(&self) -> &'static str {
        "spinner"
    }
    fn version(&self) -> u32 {
        1
    }
    fn call(&self, _: &mut dyn ModuleContext, _: &[u8]) -> Result<Vec<u8>, ModuleError> {
        Ok(vec![])
    }
    fn end_block(&self, cx: &mut dyn ModuleContext) -> Result<(), ModuleError> {
        cx.set(b"before-the-loop", b"x")?;
        loop {
            cx.charge(10_000)?;
        }
    }
}

#[test]
fn a_hook_that_loops_runs_out_of_its_budget_alone_and_the_chain_keeps_committing() {
    let with_hooks = |l: Ledger| l.with_module(Arc::new(Spinner)).with_module(Arc::new(Ticker));
    let l = with_hooks(ledger());
    // A second node executes the same blocks: hooks must give it the same roots.
    let follower = with_hooks(ledger());
    for height in 1..=3u64 {
        let (b, _) = commit(&l, vec![module_tx(height - 1, "bank", b"add", 0)]);
        assert_eq!(b.receipts[0].status, TxStatus::Success, "transactions run between the hooks");
        let failed: Vec<_> = b.hook_events.iter().filter(|e| e.topic == b"hook_failed").collect();
        assert_eq!(failed.len(), 1, "height {height}: {:?}", b.hook_events);
        assert_eq!(failed[0].emitter, module_address("spinner"));
        assert_eq!(failed[0].data, b"end_block: out of gas");
        assert!(b.hook_events.iter().any(|e| e.topic == b"tick" && e.data == height.to_le_bytes()), "the other module's hook ran");
        let replayed = follower.execute_block(b.block.clone()).expect("the follower reaches the same roots");
        follower.commit(&replayed.hash, &Certificate(vec![1])).unwrap();
    }
    let ticker = module_address("ticker");
    assert_eq!(l.contract_storage(&ticker, b"ticks").unwrap(), Some(3u64.to_le_bytes().to_vec()));
    assert_eq!(l.contract_storage(&ticker, b"begun").unwrap(), Some(3u64.to_le_bytes().to_vec()));
    assert_eq!(l.contract_storage(&module_address("spinner"), b"before-the-loop").unwrap(), None, "the failed hook was reverted");
    assert_eq!(l.head().block.height, 3);
    assert_eq!(l.recompute_state_root().unwrap(), l.head().header.state_root);
    assert_eq!(follower.head().header.state_root, l.head().header.state_root);
}

#[test]
fn hook_events_are_stored_with_the_block_and_read_back_after_reopening_the_store() {
    use aether_api::storage::{KvRead, KvStore};
    let store = Arc::new(MemoryStore::new());
    let open = || {
        Ledger::open(store.clone(), &bank_genesis(false))
            .unwrap()
            .with_module(Arc::new(Bank))
            .with_module(Arc::new(Spinner))
            .with_module(Arc::new(Ticker))
    };
    let l = open();
    let mut executed = Vec::new();
    for height in 1..=3u64 {
        executed.push(commit(&l, vec![module_tx(height - 1, "bank", b"add", 0)]).0);
    }
    let tick = |n: u64| Event { emitter: module_address("ticker"), topic: b"tick".to_vec(), data: n.to_le_bytes().to_vec() };
    let failed = Event { emitter: module_address("spinner"), topic: b"hook_failed".to_vec(), data: b"end_block: out of gas".to_vec() };
    let check = |l: &Ledger| {
        for (b, height) in executed.iter().zip(1u64..) {
            let stored = l.block_events(height).unwrap().expect("committed");
            assert_eq!(stored.block, b.block_ref());
            assert_eq!(stored.events, b.hook_events, "height {height}: as executed, in order");
            assert_eq!(stored.events, vec![failed.clone(), tick(height)], "height {height}");
        }
        assert_eq!(l.block_events(0).unwrap().unwrap().events, vec![], "genesis runs no hooks");
        assert_eq!(l.block_events(4).unwrap(), None, "not committed yet");
        assert_eq!(l.module_named_by(&module_address("spinner")), Some("spinner"));
        assert_eq!(l.module_named_by(&aether_node::ledger::system_address()), None);
    };
    check(&l);
    drop(l);
    check(&open());

    // Pruned with the block and its receipts.
    let l = open();
    let block_1 = executed[0].hash;
    let progress = l.prune(&aether_node::ledger::Retention { keep_recent: 0, keep_blocks: 2 }, 1000).unwrap();
    assert_eq!(progress.blocks_oldest, 2);
    assert_eq!(l.block_events(1).unwrap_err().to_string(), "block at height 1 was pruned; the oldest block available is at height 2");
    assert_eq!(store.get(aether_api::storage::columns::RECEIPTS, &block_1.0).unwrap(), None, "the entry is deleted, not only hidden");
    assert_eq!(l.block_events(2).unwrap().unwrap().events, vec![failed, tick(2)]);

    // A committed block whose events this node lacks (as after a snapshot) says so.
    let mut batch = aether_api::storage::WriteBatch::default();
    batch.delete(aether_api::storage::columns::RECEIPTS, executed[2].hash.0.to_vec());
    store.write(batch, aether_api::storage::Durability::Synced).unwrap();
    assert_eq!(
        l.block_events(3).unwrap_err().to_string(),
        "the hook events of block 3 are not stored on this node (it started from a snapshot or state sync at that block, or committed it with an older Aether)"
    );
}

#[test]
fn only_a_module_genesis_grants_mint_creates_and_destroys_tokens_and_the_block_accounts_for_it() {
    let l = ledger_granting_mint(true);
    let (b, _) = commit(
        &l,
        vec![module_tx(0, "bank", b"mint:1000", 0), module_tx(1, "bank", b"deposit:400", 400), module_tx(2, "bank", b"burn:300", 0)],
    );
    assert!(b.receipts.iter().all(|r| r.status == TxStatus::Success), "{:?}", b.receipts);
    // 1,000,000 - 3 fees + 1,000 minted - 400 deposited; the bank burned 300 of its 400.
    assert_eq!(l.account(&key(1).address()).unwrap().balance, 1_000_000 - 600 + 1_000 - 400);
    assert_eq!(l.account(&module_address("bank")).unwrap().balance, 100);

    let l = ledger_granting_mint(false);
    let (b, _) = commit(
        &l,
        vec![module_tx(0, "bank", b"mint:1000", 0), module_tx(1, "bank", b"deposit:400", 400), module_tx(2, "bank", b"burn:300", 0)],
    );
    assert_eq!(
        b.receipts[0].status,
        TxStatus::Failed { reason: "module bank: genesis does not let this module mint (its `mint` grant)".into() }
    );
    assert_eq!(
        b.receipts[2].status,
        TxStatus::Failed { reason: "module bank: genesis does not let this module burn (its `mint` grant)".into() }
    );
    assert_eq!(l.account(&key(1).address()).unwrap().balance, 1_000_000 - 600 - 400, "nothing was created");
}

/// Keeps keys under `k/`: `put:X`, `del:X`, `list` (the keys in order, comma-separated),
/// `mix` (puts `k/d`, deletes `k/e`, then lists, all in one call).
struct Keys;

impl Keys {
    fn list(cx: &mut dyn ModuleContext) -> Result<Vec<u8>, ModuleError> {
        let mut out = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        while let Some(k) = cx.next_key(b"k/", after.as_deref())? {
            out.push(String::from_utf8(k[2..].to_vec()).unwrap());
            after = Some(k);
        }
        Ok(out.join(",").into_bytes())
    }
}

impl RuntimeModule for Keys {
    fn name(&self) -> &'static str {
        "keys"
    }
    fn version(&self) -> u32 {
        1
    }
    fn call(&self, cx: &mut dyn ModuleContext, call: &[u8]) -> Result<Vec<u8>, ModuleError> {
        let text = std::str::from_utf8(call).unwrap();
        let (method, arg) = text.split_once(':').unwrap_or((text, ""));
        let key = format!("k/{arg}").into_bytes();
        match method {
            "put" => cx.set(&key, b"1").map(|()| vec![]),
            "del" => cx.remove(&key).map(|()| vec![]),
            "list" => Keys::list(cx),
            "from-below" => cx.next_key(b"k/", Some(b"a")).map(|k| k.unwrap_or_default()),
            "mix" => {
                cx.set(b"k/d", b"1")?;
                cx.remove(b"k/e")?;
                // A key outside the prefix is never listed.
                cx.set(b"l/z", b"1")?;
                Keys::list(cx)
            }
            other => Err(ModuleError::UnknownMethod(other.into())),
        }
    }
}

#[test]
fn ordered_iteration_sees_the_store_uncommitted_blocks_and_the_call_itself_in_order() {
    let l = ledger().with_module(Arc::new(Keys));
    let tx = |nonce: u64, call: &str| module_tx(nonce, "keys", call.as_bytes(), 0);
    // Committed: a, c, e.
    commit(&l, vec![tx(0, "put:a"), tx(1, "put:c"), tx(2, "put:e"), tx(3, "put:f"), tx(4, "del:f")]);
    // An uncommitted block adds b and deletes c; a block built on it lists.
    let head = l.head();
    let b2 = l
        .build_block(&head.block.hash, head.certificate, vec![tx(5, "put:b"), tx(6, "del:c")], vec![], 2_000, key(100).address())
        .unwrap()
        .executed;
    let b3 = l
        .build_block(
            &b2.hash,
            Certificate(vec![1]),
            vec![tx(7, "list"), tx(8, "mix"), tx(9, "list"), tx(10, "from-below")],
            vec![],
            3_000,
            key(100).address(),
        )
        .unwrap()
        .executed;
    let outputs: Vec<String> = b3.receipts.iter().map(|r| String::from_utf8(r.output.clone()).unwrap()).collect();
    assert_eq!(outputs, vec!["a,b,e", "a,b,d", "a,b,d", "k/a"], "{:?}", b3.receipts);
    assert!(b3.receipts.iter().all(|r| r.gas_used > 0));
}

/// Calls other modules: `forward:CALL` (bank, CALL), `tolerant` (a bank call that writes and
/// fails, the failure kept as a note, then a bank `add`), `recurse` (calls itself).
struct Proxy;

impl RuntimeModule for Proxy {
    fn name(&self) -> &'static str {
        "proxy"
    }
    fn version(&self) -> u32 {
        1
    }
    fn call(&self, cx: &mut dyn ModuleContext, call: &[u8]) -> Result<Vec<u8>, ModuleError> {
        let text = std::str::from_utf8(call).unwrap();
        match text.split_once(':').unwrap_or((text, "")) {
            ("forward", inner) => cx.call_module("bank", inner.as_bytes()),
            ("tolerant", _) => {
                let refused = cx.call_module("bank", b"add-then-fail").unwrap_err();
                cx.set(b"refused", refused.to_string().as_bytes())?;
                cx.call_module("bank", b"add")
            }
            ("recurse", _) => cx.call_module("proxy", b"recurse"),
            (other, _) => Err(ModuleError::UnknownMethod(other.into())),
        }
    }
}

#[test]
fn modules_call_each_other_as_themselves_and_a_failed_inner_call_is_undone_alone() {
    let l = ledger().with_module(Arc::new(Proxy));
    let (b, _) = commit(
        &l,
        vec![
            module_tx(0, "proxy", b"forward:add", 0),
            module_tx(1, "proxy", b"tolerant", 0),
            module_tx(2, "proxy", b"recurse", 0),
            module_tx(3, "proxy", b"forward:withdraw:1", 0),
        ],
    );
    assert_eq!(b.receipts[0].status, TxStatus::Success);
    assert_eq!(b.receipts[0].output, 1u64.to_le_bytes(), "the bank counted");
    assert_eq!(b.receipts[0].events[0].emitter, module_address("bank"), "the callee's events are in the receipt");
    assert_eq!(b.receipts[1].status, TxStatus::Success, "the proxy went on after the bank refused");
    assert_eq!(b.receipts[1].output, 2u64.to_le_bytes(), "the failed inner call's write (99) was undone, the add saw 1");
    assert_eq!(l.contract_storage(&module_address("proxy"), b"refused").unwrap(), Some(b"failed after writing".to_vec()));
    assert_eq!(b.receipts[2].status, TxStatus::Failed { reason: "module proxy: module calls nest deeper than 8".into() });
    assert_eq!(
        b.receipts[3].status,
        TxStatus::Failed { reason: "module proxy: the module's account holds 0, cannot pay 1".into() },
        "the bank pays from its own account, not the proxy's or the sender's"
    );
}

/// Module upgrades and chain parameters (in this binary: one link for both).
#[path = "modules/upgrades.rs"]
mod upgrades;

/// Emits what `parent_signers` answers in its `begin_block`: `none`, or the parent's height,
/// epoch and one byte per member (1: signed).
struct Watcher;

impl RuntimeModule for Watcher {
    fn name(&self) -> &'static str {
        "watcher"
    }
    fn version(&self) -> u32 {
        1
    }
    fn call(&self, _: &mut dyn ModuleContext, _: &[u8]) -> Result<Vec<u8>, ModuleError> {
        Err(ModuleError::UnknownMethod("any".into()))
    }
    fn begin_block(&self, cx: &mut dyn ModuleContext, _: &[Evidence]) -> Result<(), ModuleError> {
        let seen = match cx.parent_signers()? {
            None => b"none".to_vec(),
            Some(s) => {
                let mut bytes = [s.height.to_le_bytes(), s.epoch.to_le_bytes()].concat();
                bytes.extend(s.validators.iter().map(|(_, signed)| u8::from(*signed)));
                bytes
            }
        };
        cx.emit(b"signers", &seen)
    }
}

/// A stand-in for an engine's decoder: the certificate lists signer indices, one per byte;
/// 0xFF does not decode, 0xFE makes the decoder panic (a bug in an engine).
fn listed_signers(certificate: &[u8], _validators: usize) -> Result<Vec<u32>, String> {
    match certificate.first() {
        Some(0xFF) => Err("not a list of signers".into()),
        Some(0xFE) => panic!("a decoder bug"),
        _ => Ok(certificate.iter().map(|b| u32::from(*b)).collect()),
    }
}

#[test]
fn modules_see_who_signed_the_parent_and_a_certificate_that_does_not_decode_halts_nothing() {
    let genesis = Genesis {
        chain_id: CHAIN.into(),
        genesis_time_ms: 1000,
        modules: vec![GenesisModule { name: "watcher".into(), version: 1, mint: false, govern_chain: false, params: String::new() }],
        epochs: None,
        accounts: vec![],
        validators: (100..103)
            .map(|n| GenesisValidator { name: format!("v{n}"), identity: key(n).public(), consensus_key: vec![n], stake: 1 })
            .collect(),
    };
    let open = || {
        Ledger::open(Arc::new(MemoryStore::new()), &genesis)
            .unwrap()
            .with_module(Arc::new(Watcher))
            .with_certificate_signers(listed_signers)
    };
    let (l, follower) = (open(), open());
    let seen = |b: &ExecutedBlock| b.hook_events.iter().find(|e| e.topic == b"signers").map(|e| e.data.clone()).unwrap();
    let undecodable = |b: &ExecutedBlock| {
        b.hook_events
            .iter()
            .filter(|e| e.topic == aether_node::ledger::PARENT_CERTIFICATE_UNDECODABLE)
            .inspect(|e| assert_eq!(e.emitter, aether_node::ledger::system_address()))
            .map(|e| String::from_utf8(e.data.clone()).unwrap())
            .collect::<Vec<_>>()
    };
    let cases: [(&[u8], Option<&str>); 5] = [
        (&[], None),
        (&[0, 2], None),
        (&[0xFF], Some("not a list of signers")),
        (&[7], Some("it names validator 7, outside epoch 0's set of 3")),
        (&[0xFE], Some("the engine's certificate decoder panicked")),
    ];
    for (height, (certificate, error)) in (1u64..).zip(cases) {
        let head = l.head();
        let built =
            l.build_block(&head.block.hash, Certificate(certificate.to_vec()), vec![], vec![], head.header.time_ms + 10, key(1).address());
        let b = l.commit(&built.unwrap().executed.hash, &Certificate(vec![1])).unwrap();
        match (height, error) {
            (1, _) => assert_eq!(seen(&b), b"none", "nothing names signers of genesis"),
            (2, _) => {
                assert_eq!(seen(&b), [&1u64.to_le_bytes()[..], &0u64.to_le_bytes(), &[1, 0, 1]].concat(), "v100 and v102 signed block 1")
            }
            (_, Some(reason)) => {
                assert_eq!(seen(&b), b"none", "height {height}: no signers from a certificate that does not decode");
                assert_eq!(undecodable(&b), [reason], "height {height}");
            }
            _ => unreachable!(),
        }
        // A second node executes the same block to the same roots and events.
        let replayed = follower.execute_block(b.block.clone()).unwrap();
        assert_eq!(replayed.hook_events, b.hook_events);
        follower.commit(&replayed.hash, &Certificate(vec![1])).unwrap();
    }
    assert_eq!(l.head().block.height, 5, "the chain went on");
    assert_eq!(follower.head().header.state_root, l.head().header.state_root);
}
