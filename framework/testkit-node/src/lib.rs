//! # aether-testkit-node
//!
//! Node-level conformance kits for a storage backend: what the node's own tests check on
//! RocksDB and ParityDB, as functions a backend author outside this repository can call.
//!
//! - [`state_root_conformance`]: the same seeded chain of blocks (transfers and, given a VM
//!   backend, calls to a deployed contract that write, delete, pay and revert), built and
//!   executed through the [`Ledger`] alternately on the backend under test and on the memory
//!   backend, gives the same state root at every height (and the header's), across reopens of
//!   the store. The state root must never depend on the backend: a mixed network would fork.
//! - [`ledger_crash_conformance`]: a child process commits blocks through the ledger on the
//!   backend and is killed with SIGKILL at random moments; after each kill the store opens
//!   as a ledger, every block acknowledged as committed is there with the same hash, and at
//!   the end every stored block re-executes on a fresh memory ledger to its header's roots.
//! - [`node_crash_conformance`]: the same with a whole node in the child (the `solo` engine,
//!   mempool and ledger, assembled with `NodeBuilder` on the backend, fed transfers), killed
//!   while committing; at the end a node restarted on the store commits three more blocks.
//!
//! What they do not cover: runtime modules, pruning, contracts in the crash kits (the state
//! root kit runs them only when handed a VM backend, which a storage crate may not want to
//! build), multi-validator consensus and RPC — `presets/cli/tests/crash.rs` kills the real
//! binary running HotStuff.
//! The key-value contract itself is `aether_testkit`'s [`storage_conformance`] and
//! [`storage_crash_conformance`].
//!
//! Why a crate of its own: these kits need [`aether_node`] (the ledger), and `aether-node`'s
//! own tests depend on `aether-testkit`; keeping them here leaves `aether-testkit` free of the
//! node and avoids a second copy of `aether-node` in its tests.
//!
//! ## Example
//! ```
//! use std::sync::Arc;
//! use aether_storage_memory::MemoryStore;
//! use aether_testkit_node::{state_root_conformance, StateRootSettings};
//! // `open` is called three times and must give the same data the second time: a persistent
//! // backend reopens its path; the memory store hands out the same instance.
//! let store: Arc<MemoryStore> = Arc::new(MemoryStore::new());
//! state_root_conformance(|| store.clone(), StateRootSettings { blocks: 20, ..StateRootSettings::default() });
//! ```
//!
//! [`storage_conformance`]: aether_testkit::storage_conformance
//! [`storage_crash_conformance`]: aether_testkit::storage_crash_conformance

// The kits fail by panicking with a message that names the broken rule: that is how a test
// reports, so unwrap and expect are the right tools here (this crate is never in a node).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aether_api::storage::KvStore;
use aether_node::ledger::{ExecutedBlock, Ledger};
use aether_node::node::NodeBuilder;
use aether_node::solo::SoloSettings;
use aether_node::state;
use aether_primitives::types::{
    Action, Address, Certificate, Genesis, GenesisAccount, GenesisValidator, Keypair, SignedTransaction, TxBody, TxStatus,
};
use aether_storage_memory::MemoryStore;
use aether_vm::VmBackend;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::broadcast::error::TryRecvError;

const CHAIN: &str = "testkit-node";
/// Funded accounts of the workload's genesis.
const ACCOUNTS: u8 = 16;

fn key(n: u8) -> Keypair {
    Keypair::from_seed([n + 1; 32])
}

fn proposer() -> Keypair {
    Keypair::from_seed([200; 32])
}

/// The genesis both kits run: 16 funded accounts and one validator.
pub fn kit_genesis() -> Genesis {
    Genesis {
        chain_id: CHAIN.into(),
        genesis_time_ms: 1_000,
        modules: vec![],
        epochs: None,
        accounts: (0..ACCOUNTS).map(|k| GenesisAccount { address: key(k).address(), balance: 1_000_000_000_000 }).collect(),
        validators: vec![GenesisValidator { name: "v".into(), identity: proposer().public(), consensus_key: vec![], stake: 1 }],
    }
}

fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Draws the next block's transactions from `rng`, signing with nonces read from `ledger`'s
/// head (plus what the block already used): 0 to 12 transfers from random funded senders to
/// funded accounts, fresh addresses and themselves, with random amounts, fees and memos; and,
/// if `contract` is deployed, 0 to 4 calls to it that write, delete and pay out of contract
/// storage and balance (one in four reverts).
fn workload(ledger: &Ledger, rng: &mut StdRng, contract: Option<Address>) -> Vec<SignedTransaction> {
    let mut nonces: Vec<Option<u64>> = vec![None; ACCOUNTS as usize];
    let mut next_nonce = |from: u8| {
        let nonce = nonces[from as usize].get_or_insert_with(|| ledger.account(&key(from).address()).expect("read an account").nonce);
        *nonce += 1;
        *nonce - 1
    };
    let mut txs = Vec::new();
    for _ in 0..rng.gen_range(0..=12) {
        let from = rng.gen_range(0..ACCOUNTS);
        let to = match rng.gen_range(0..4) {
            0 => Address(rng.gen()),
            1 => key(from).address(),
            _ => key(rng.gen_range(0..ACCOUNTS)).address(),
        };
        let memo: Vec<u8> = (0..rng.gen_range(0..40)).map(|_| rng.gen()).collect();
        let action = Action::Transfer { to, amount: rng.gen_range(0..1_000_000), memo };
        txs.push(
            TxBody { chain_id: CHAIN.into(), sender: key(from).public(), nonce: next_nonce(from), fee: rng.gen_range(1..50), action }
                .sign(&key(from)),
        );
    }
    for _ in 0..contract.map_or(0, |_| rng.gen_range(0..=4)) {
        let from = rng.gen_range(0..ACCOUNTS);
        let (method, input) = match rng.gen_range(0..4) {
            0 | 1 => ("put", (0..rng.gen_range(0..64)).map(|_| rng.gen()).collect()),
            2 => ("del", vec![]),
            _ => {
                let mut input = key(rng.gen_range(0..ACCOUNTS)).address().0.to_vec();
                input.extend_from_slice(&rng.gen_range(0..1_000u128).to_le_bytes());
                (if rng.gen_bool(0.5) { "pay" } else { "pay_then_revert" }, input)
            }
        };
        let action = Action::Call {
            contract: contract.unwrap_or_default(),
            method: method.into(),
            input,
            value: rng.gen_range(0..3),
            gas_limit: 200_000,
        };
        let fee = aether_vm::gas::min_fee(action.gas_limit()).max(1);
        txs.push(TxBody { chain_id: CHAIN.into(), sender: key(from).public(), nonce: next_nonce(from), fee, action }.sign(&key(from)));
    }
    txs
}

/// The transaction deploying the kit's contract (`aether_testkit`'s `STORE` corpus contract:
/// storage, events, payments) from account 0, and the contract's address.
fn deploy(ledger: &Ledger) -> (SignedTransaction, Address) {
    let deployer = key(0);
    let nonce = ledger.account(&deployer.address()).expect("read an account").nonce;
    let code = wat::parse_str(aether_testkit::vm_conformance::corpus::STORE).expect("the corpus contract parses");
    let action = Action::Deploy { code, input: vec![], value: 1_000_000, gas_limit: 5_000_000 };
    let fee = aether_vm::gas::min_fee(action.gas_limit()).max(1);
    let tx = TxBody { chain_id: CHAIN.into(), sender: deployer.public(), nonce, fee, action }.sign(&deployer);
    (tx, aether_vm::executor::contract_address(&deployer.address(), nonce))
}

/// Builds the next block on `ledger` from `txs` and commits it; every one must be included.
fn build_and_commit(ledger: &Ledger, txs: Vec<SignedTransaction>) -> Result<Arc<ExecutedBlock>, String> {
    let head = ledger.head();
    let built = ledger
        .build_block(&head.block.hash, head.certificate, txs, vec![], head.header.time_ms + 10, proposer().address())
        .map_err(|e| format!("building block {} failed: {e}", head.block.height + 1))?;
    if !built.rejected.is_empty() {
        return Err(format!("block {}: the workload's transactions were refused: {:?}", head.block.height + 1, built.rejected));
    }
    ledger
        .commit(&built.executed.hash, &Certificate(vec![1]))
        .map_err(|e| format!("committing block {} failed: {e}", head.block.height + 1))?;
    Ok(built.executed)
}

/// Settings of [`state_root_conformance`]; [`Default`] reads `AETHER_SEED` (default 1) and
/// runs no contracts.
#[derive(Clone)]
pub struct StateRootSettings {
    /// Blocks to build (the store is reopened halfway).
    pub blocks: u64,
    /// Seeds the workload.
    pub seed: u64,
    /// With a VM backend, block 1 deploys a contract and later blocks call it (contract
    /// storage writes and deletes, payments, reverts) beside the transfers. Any backend will
    /// do: they agree to the unit of gas.
    pub vm: Option<Arc<dyn VmBackend>>,
}

impl std::fmt::Debug for StateRootSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateRootSettings")
            .field("blocks", &self.blocks)
            .field("seed", &self.seed)
            .field("vm", &self.vm.as_ref().map(|vm| vm.name()))
            .finish()
    }
}

impl Default for StateRootSettings {
    fn default() -> Self {
        StateRootSettings { blocks: 100, seed: env("AETHER_SEED").unwrap_or(1), vm: None }
    }
}

/// Checks that the backend `open` returns computes the same state roots as the memory backend.
///
/// `open` is called three times, each time after everything from the previous call is
/// dropped, and must return a store holding the same data (a persistent backend reopens its path; the
/// memory store hands out the same `Arc`). The kit builds `settings.blocks` blocks of seeded
/// transfers (and contract calls if `settings.vm` is set), alternately on the backend's ledger and on a memory ledger; the other ledger
/// executes each block, which checks the block's tx and state roots against its header. After
/// the chain is built, the state root stored at every height must be the same on both and equal
/// to that height's header, and the root recomputed from scratch must equal the head's.
///
/// Panics naming the broken rule, the height and the seed.
pub fn state_root_conformance<S: KvStore>(open: impl Fn() -> Arc<S>, settings: StateRootSettings) {
    let StateRootSettings { blocks, seed, vm } = settings;
    let genesis = kit_genesis();
    let mut rng = StdRng::seed_from_u64(seed);
    let with_vm = |ledger: Ledger| match &vm {
        Some(vm) => ledger.with_vm(vm.clone()),
        None => ledger,
    };
    let memory = with_vm(Ledger::open(Arc::new(MemoryStore::new()), &genesis).unwrap());
    let mut contract = None;
    // Contract calls included: [reverted or failed, succeeded].
    let mut calls = [0u32; 2];
    let context = |height: u64| format!("state root kit (seed {seed}, height {height} of {blocks}; rerun with AETHER_SEED={seed})");
    let mut run = |store: Arc<dyn KvStore>, heights: std::ops::RangeInclusive<u64>| {
        let name = store.backend_name();
        let backend = Ledger::open(store, &genesis)
            .map(with_vm)
            .unwrap_or_else(|e| panic!("{}: opens: the {name} store does not open as a ledger: {e}", context(*heights.start())));
        let (ours, reference) = (backend.head().block, memory.head().block);
        assert!(
            ours == reference,
            "{}: opens: the reopened {name} ledger's head is height {} ({}), but height {} ({}) was committed",
            context(*heights.start()),
            ours.height,
            ours.hash,
            reference.height,
            reference.hash
        );
        for height in heights {
            // Alternate who builds: the builder's reads (nonces, balances) come from its store.
            let (builder, follower) = if height % 2 == 0 { (&memory, &backend) } else { (&backend, &memory) };
            let txs = if height == 1 && vm.is_some() {
                let (tx, address) = deploy(builder);
                contract = Some(address);
                vec![tx]
            } else {
                workload(builder, &mut rng, contract)
            };
            let built = build_and_commit(builder, txs)
                .unwrap_or_else(|e| panic!("{}: same roots: on {}, {e}", context(height), builder.store().backend_name()));
            for (tx, receipt) in built.block.transactions.iter().zip(&built.receipts) {
                if matches!(tx.body.action, Action::Call { .. }) {
                    calls[usize::from(receipt.status == TxStatus::Success)] += 1;
                }
            }
            let executed = follower.execute_block(built.block.clone()).unwrap_or_else(|e| {
                panic!(
                    "{}: same roots: a block built on {} does not execute on {} to its header's roots: {e}",
                    context(height),
                    builder.store().backend_name(),
                    follower.store().backend_name()
                )
            });
            follower
                .commit(&executed.hash, &Certificate(vec![1]))
                .unwrap_or_else(|e| panic!("{}: same roots: committing the executed block failed: {e}", context(height)));
        }
    };
    let open = || aether_testkit::crash::in_context(&format!("state root kit (seed {seed}): opening the store"), &open);
    run(open(), 1..=blocks / 2);
    run(open(), blocks / 2 + 1..=blocks);

    // A workload that silently stopped calling the contract would prove nothing about it.
    assert!(
        vm.is_none() || (calls[1] > 0 && calls[0] > 0),
        "state root kit (seed {seed}): the contract workload did not run: {} calls succeeded, {} failed",
        calls[1],
        calls[0]
    );

    let store = open();
    let backend = Ledger::open(store.clone(), &genesis).unwrap_or_else(|e| panic!("{}: opens: after a reopen: {e}", context(blocks)));
    let mut differ = Vec::new();
    for height in 0..=blocks {
        let ours = state::root_at(store.as_ref(), height)
            .unwrap_or_else(|e| panic!("{}: same roots: the stored root cannot be read: {e}", context(height)));
        let reference = state::root_at(memory.store().as_ref(), height).unwrap();
        let header = memory.block_by_height(height).unwrap().expect("memory keeps every block").0.header.state_root;
        if ours != reference || ours != header {
            differ.push(format!("height {height}: {} root {ours}, memory root {reference}, header {header}", store.backend_name()));
        }
    }
    assert!(
        differ.is_empty(),
        "state root kit (seed {seed}): same roots at every height broken at {} heights:\n  {}",
        differ.len(),
        differ.join("\n  ")
    );
    let recomputed = backend
        .recompute_state_root()
        .unwrap_or_else(|e| panic!("{}: recomputes: the state cannot be rehashed from scratch: {e}", context(blocks)));
    assert_eq!(
        recomputed,
        backend.head().header.state_root,
        "{}: recomputes: the root recomputed from scratch differs from the head's",
        context(blocks)
    );
}

/// Settings of [`ledger_crash_conformance`]; [`Default`] reads `AETHER_CRASH_ROUNDS` (default
/// 20) and `AETHER_SEED` (default 1).
#[derive(Debug, Clone)]
pub struct LedgerCrashSettings {
    /// Number of kills.
    pub rounds: usize,
    /// Seeds the kill delays and the workload.
    pub seed: u64,
    /// The child is killed after a delay drawn from `0..=max_kill_delay` once it has committed
    /// its first block of the round.
    pub max_kill_delay: Duration,
}

impl Default for LedgerCrashSettings {
    fn default() -> Self {
        LedgerCrashSettings {
            rounds: env("AETHER_CRASH_ROUNDS").unwrap_or(20),
            seed: env("AETHER_SEED").unwrap_or(1),
            max_kill_delay: Duration::from_millis(150),
        }
    }
}

/// Environment variable that turns a test process into the committing child of
/// [`ledger_crash_conformance`] (its value: the store's directory).
pub const LEDGER_CRASH_CHILD_ENV: &str = "AETHER_LEDGER_CRASH_CHILD_DIR";
const LEDGER_CRASH_ROUND_ENV: &str = "AETHER_LEDGER_CRASH_ROUND";

/// Checks that a ledger on the backend loses nothing it committed when its process is killed.
///
/// Call it from a `#[test]` whose full path is `test_path`, as for
/// [`aether_testkit::storage_crash_conformance`]: the test re-runs its own binary as a child
/// that opens the store at a directory with `open`, opens the [`Ledger`] on it and commits
/// blocks of seeded transfers, printing each block's height and hash once `commit` returned.
/// The parent kills it with SIGKILL at a random moment, `settings.rounds` times, and after each
/// kill checks:
///
/// 1. **opens**: the store opens as a ledger (which checks the state tree's root against the
///    head's header);
/// 2. **committed survives**: the head is at least the last height the child acknowledged,
///    and every acknowledged height holds the acknowledged block hash;
/// 3. **consistent**: the state recomputed from scratch (the flat tables execution reads)
///    hashes to the head's state root;
/// 4. **commits keep working**: the child was still committing when it was killed.
///
/// At the end, **re-executes**: every stored block executes on a fresh memory ledger to the tx
/// and state roots in its header, and the root recomputed from scratch is the head's.
///
/// Panics with every broken rule of the failing round, the seed and the round. In the child
/// the call never returns.
pub fn ledger_crash_conformance<S: KvStore>(test_path: &str, open: impl Fn(&Path) -> Arc<S>, settings: LedgerCrashSettings) {
    let genesis = kit_genesis();
    if let Ok(dir) = std::env::var(LEDGER_CRASH_CHILD_ENV) {
        let round: u64 = env(LEDGER_CRASH_ROUND_ENV).unwrap_or(0);
        let acks = aether_testkit::crash::Acks::default();
        let ledger = Ledger::open(open(Path::new(&dir)), &genesis).unwrap_or_else(|e| acks.fail(&format!("open the ledger: {e}")));
        let mut rng = StdRng::seed_from_u64(settings.seed ^ (round << 32));
        loop {
            match build_and_commit(&ledger, workload(&ledger, &mut rng, None)) {
                Ok(executed) => acks.say(&format!("committed {} {}", executed.block.header.height, executed.hash)),
                Err(e) => acks.fail(&e),
            }
        }
    }
    kill_rounds("ledger crash kit", "ledger-crash", LEDGER_CRASH_CHILD_ENV, test_path, &open, &settings);
}

/// Checks that a whole node on the backend — consensus driver, mempool, ledger — loses nothing
/// it committed when its process is killed, and keeps going after a restart.
///
/// Call it from a `#[test]` whose full path is `test_path`. The child runs a [`Node`] (the
/// `solo` engine sealing a block every few milliseconds, built with [`NodeBuilder`] on the
/// store `open` gives for a directory) and submits seeded transfers through its handle,
/// printing each committed head the node announces. It is SIGKILLed at random moments
/// `settings.rounds` times; after each kill the same rules as [`ledger_crash_conformance`]
/// hold (**opens**, **committed survives**, **consistent**, **commits keep working**), and at
/// the end every stored block **re-executes**, and a node started on the store **keeps
/// going**: it commits three more blocks.
///
/// [`Node`]: aether_node::node::Node
pub fn node_crash_conformance<S: KvStore>(test_path: &str, open: impl Fn(&Path) -> Arc<S>, settings: LedgerCrashSettings) {
    let genesis = kit_genesis();
    let node_on = |dir: &Path| {
        NodeBuilder::new(genesis.clone())
            .validator_key(proposer())
            .settings(SoloSettings { block_interval_ms: 20, min_block_interval_ms: 2 })
            .storage_shared(open(dir))
            .data_dir(dir.join("node"))
            .launch()
    };
    if let Ok(dir) = std::env::var(NODE_CRASH_CHILD_ENV) {
        let round: u64 = env(LEDGER_CRASH_ROUND_ENV).unwrap_or(0);
        let acks = aether_testkit::crash::Acks::default();
        let node = node_on(Path::new(&dir)).unwrap_or_else(|e| acks.fail(&format!("start the node: {e}")));
        let handle = node.handle();
        let ledger = handle.ledger().unwrap_or_else(|e| acks.fail(&format!("the node's ledger: {e}")));
        let mut heads = handle.subscribe_heads();
        let mut rng = StdRng::seed_from_u64(settings.seed ^ (round << 32));
        loop {
            // Built on the committed state: what is still pending from the last batch is
            // refused as a duplicate nonce, which is fine.
            for tx in workload(&ledger, &mut rng, None) {
                let _ = handle.submit(&aether_primitives::codec::encode(&tx));
            }
            // Polled, not awaited: the handle keeps the channel open, so a dead driver would
            // never close it; it is checked instead.
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match heads.try_recv() {
                    Ok(head) => {
                        acks.say(&format!("committed {} {}", head.header.height, head.hash));
                        break;
                    }
                    // Missed announcements only mean fewer heights to check.
                    Err(TryRecvError::Lagged(_)) => break,
                    Err(TryRecvError::Empty) if node.has_stopped() => acks.fail("the node's driver stopped"),
                    Err(TryRecvError::Empty) if Instant::now() > deadline => acks.fail("no block committed in 10 s"),
                    Err(TryRecvError::Empty) => std::thread::sleep(Duration::from_millis(1)),
                    Err(TryRecvError::Closed) => acks.fail("the node stopped announcing heads"),
                }
            }
        }
    }
    let (ledger, dir, _scratch) = kill_rounds("node crash kit", "node-crash", NODE_CRASH_CHILD_ENV, test_path, &open, &settings);
    drop(ledger);
    let context = format!("node crash kit (seed {}, after {} rounds)", settings.seed, settings.rounds);
    let node = node_on(&dir).unwrap_or_else(|e| panic!("{context}: keeps going: the node does not start on the killed store: {e}"));
    let handle = node.handle();
    let start = handle.status().map(|s| s.head.height).unwrap_or_else(|e| panic!("{context}: keeps going: {e}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while handle.status().map(|s| s.head.height).unwrap_or(0) < start + 3 {
        assert!(!node.has_stopped(), "{context}: keeps going: the restarted node's driver stopped (from height {start})");
        assert!(
            Instant::now() < deadline,
            "{context}: keeps going: the restarted node did not commit 3 blocks within 30 s (from height {start})"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    node.shutdown().unwrap_or_else(|e| panic!("{context}: the restarted node stopped with an error: {e}"));
}

/// Environment variable that turns a test process into the node child of
/// [`node_crash_conformance`] (its value: the store's directory).
pub const NODE_CRASH_CHILD_ENV: &str = "AETHER_NODE_CRASH_CHILD_DIR";

/// The parent side of both crash kits: kills the child `settings.rounds` times, checks the
/// store after each kill and re-executes it at the end. Returns the ledger on the store, its
/// directory, and the guard that removes the directory when dropped.
fn kill_rounds<S: KvStore>(
    kit: &str,
    scratch_name: &str,
    child_env: &str,
    test_path: &str,
    open: &impl Fn(&Path) -> Arc<S>,
    settings: &LedgerCrashSettings,
) -> (Ledger, std::path::PathBuf, aether_testkit::crash::ScratchDir) {
    let LedgerCrashSettings { rounds, seed, max_kill_delay } = settings.clone();
    let genesis = kit_genesis();
    let mut rng = StdRng::seed_from_u64(seed);
    let scratch = aether_testkit::crash::ScratchDir::new(scratch_name);
    let dir = scratch.path().to_path_buf();
    let started = Instant::now();
    let mut last_acked = 0;
    let mut acked_in_total = 0;
    let mut in_child = Duration::ZERO;
    for round in 0..rounds {
        let context = format!("{kit} (seed {seed}, round {round} of {rounds}; rerun with AETHER_SEED={seed}, {})", scratch.describe());
        let delay = Duration::from_micros(rng.gen_range(0..=max_kill_delay.as_micros() as u64));
        let env = [(child_env, dir.display().to_string()), (LEDGER_CRASH_ROUND_ENV, round.to_string())];
        let child_started = Instant::now();
        let killed = aether_testkit::crash::run_then_kill(test_path, &env, delay).unwrap_or_else(|e| panic!("{context}: {e}"));
        in_child += child_started.elapsed();
        let mut violations: Vec<String> = killed.early_exit().map(|e| format!("commits keep working: {e}")).into_iter().collect();
        let mut acked: Vec<(u64, String)> = Vec::new();
        for line in &killed.lines {
            match line.split(' ').collect::<Vec<_>>().as_slice() {
                ["committed", h, hash] if h.parse::<u64>().is_ok() => acked.push((h.parse().unwrap_or(0), hash.to_string())),
                _ => violations.push(format!("the child printed a line the kit cannot read: {line:?}")),
            }
        }
        if let Some((h, _)) = acked.last() {
            last_acked = *h;
        }
        acked_in_total += acked.len();
        let store = aether_testkit::crash::in_context(&format!("{context}: reopening the store after the kill"), || open(&dir));
        let report = |violations: &[String]| -> String {
            let list: String = violations.iter().map(|v| format!("\n  - {v}")).collect();
            format!("{context}: {} broken rule(s):{list}", violations.len())
        };
        let ledger = match Ledger::open(store, &genesis) {
            Ok(l) => l,
            Err(e) => {
                violations.push(format!("opens: the killed store does not open as a ledger: {e}"));
                panic!("{}", report(&violations))
            }
        };
        // A torn commit can leave the head and its tree intact but the flat account table
        // (what execution reads) ahead of them; rehashing the flat state shows it.
        match ledger.recompute_state_root() {
            Ok(root) if root == ledger.head().header.state_root => {}
            Ok(root) => violations.push(format!(
                "consistent: the flat state rehashes to {root}, but the head's state root is {}",
                ledger.head().header.state_root
            )),
            Err(e) => violations.push(format!("consistent: the state cannot be rehashed: {e}")),
        }
        let head = ledger.head().block.height;
        if head < last_acked {
            violations.push(format!("committed survives: block {last_acked} was acknowledged as committed, but the head is {head}"));
        }
        for (h, hash) in &acked {
            match ledger.block_hash_at(*h) {
                Ok(Some(stored)) if stored.to_string() == *hash => {}
                Ok(Some(stored)) => violations.push(format!("committed survives: height {h} holds {stored}, but {hash} was acknowledged")),
                Ok(None) => violations.push(format!("committed survives: block {h} ({hash}) was acknowledged, but the height is empty")),
                Err(e) => violations.push(format!("committed survives: reading height {h}: {e}")),
            }
        }
        assert!(violations.is_empty(), "{}", report(&violations));
    }
    assert!(acked_in_total > 0, "{kit} (seed {seed}): no block was acknowledged in {rounds} rounds; the kit tested nothing");

    let context = format!("{kit} (seed {seed}, after {rounds} rounds)");
    let store = aether_testkit::crash::in_context(&format!("{context}: reopening the store"), || open(&dir));
    let ledger = Ledger::open(store, &genesis).unwrap_or_else(|e| panic!("{context}: opens: {e}"));
    let head = ledger.head();
    let replay = Ledger::open(Arc::new(MemoryStore::new()), &genesis).unwrap();
    for h in 1..=head.block.height {
        let (block, cert) = ledger
            .block_by_height(h)
            .unwrap_or_else(|e| panic!("{context}: reading block {h}: {e}"))
            .unwrap_or_else(|| panic!("{context}: re-executes: block {h} is missing below the head {}", head.block.height));
        let executed = replay
            .execute_block(block)
            .unwrap_or_else(|e| panic!("{context}: re-executes: stored block {h} does not execute to its header's roots: {e}"));
        replay.commit(&executed.hash, &cert).unwrap();
    }
    assert_eq!(replay.head().block.hash, head.block.hash, "{context}: re-executes: the replayed head differs");
    let recomputed =
        ledger.recompute_state_root().unwrap_or_else(|e| panic!("{context}: re-executes: the state cannot be rehashed from scratch: {e}"));
    assert_eq!(recomputed, head.header.state_root, "{context}: re-executes: the root recomputed from scratch differs from the head's");
    eprintln!(
        "{kit}: seed {seed}, {rounds} kills in {:.1?} ({in_child:.1?} of it in child processes); head {} (last acknowledged {last_acked})",
        started.elapsed(),
        head.block.height
    );
    (ledger, dir, scratch)
}
