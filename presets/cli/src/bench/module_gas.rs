//! `aether bench module-gas`: the gas each runtime-module call and hook uses beside the CPU
//! time it takes, as ns per gas, and the same for Wasm contract calls on the default VM (the
//! baseline the gas schedule was priced against), in the same run.
//!
//! Everything runs through the real ledger path on the chosen store: blocks are built (that
//! is, executed) and committed, synced, as a node does. Signature verification of the
//! transaction envelope is not in it: `Ledger::build_block` takes transactions the mempool
//! verified and does not check them again (a node pays that once per transaction, whatever
//! the transaction does).
//!
//! Two ledgers, both with staking, slashing and governance over `VALIDATORS` genesis
//! validators:
//! - the transaction ledger (the HotStuff engine's consensus-key check, so `register` pays
//!   for a real BLS proof-of-possession check; one long epoch): blocks of `block_txs`
//!   transactions of one kind, each kind once per round, rounds repeated. A kind's time per
//!   call is (its block's time − an empty block's, same round) / `block_txs`; its gas, the
//!   receipts' mean. `gross` ns/gas divides that time by the gas; `net` first takes off a
//!   plain transfer's time per transaction (nonce, fee, balance moves: the envelope, which
//!   the fee pays and gas does not).
//! - the hook ledger (short epochs; a certificate decoder that reads a signer bitmap, so the
//!   slashing module measures downtime over all `VALIDATORS`; a consensus-key check that
//!   accepts any key, so an epoch's end does not also verify every member's proof of
//!   possession, which is the ledger's own work, not the hook's): a cycle of blocks per
//!   epoch — a block with no signers (the base), a block whose parent all validators signed
//!   (downtime), the same with `EVIDENCE` pieces of double-vote evidence, and the epoch's
//!   last block (staking's `end_epoch`). A hook's ns/gas is (its block's time − the base
//!   block's) / (its block's hook gas − the base block's), gas from `ExecutedBlock::hook_gas`.
//!
//! Medians over the rounds. A call whose ns/gas is above the contract baseline's gets more
//! CPU per gas than a contract, which the schedule is meant to prevent.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aether_consensus_hotstuff::keys::consensus_key;
use aether_framework::ledger::{ExecutedBlock, Ledger};
use aether_framework::registry::{ConsensusKeyCheck, PluginSettings};
use aether_framework::storage::{columns, StorageContext};
use aether_framework::types::{
    Action, Address, Amount, Certificate, EpochSchedule, Evidence, Genesis, GenesisAccount, GenesisModule, Keypair, SignedTransaction,
    TxBody, TxStatus, ValidatorEntry,
};
use aether_module_governance::{GovernanceCall, ProposalAction, VoteOption};
use aether_module_slashing::Slashing;
use aether_module_staking::{Staking, StakingCall};
use anyhow::{bail, Context};

pub struct ModuleGasBenchOptions {
    pub block_txs: usize,
    pub rounds: usize,
    pub validators: usize,
    pub spin: u32,
    pub storage: String,
}

const CHAIN: &str = "bench-module-gas";
/// Pieces of double-vote evidence in the evidence block (the ledger records at most 16).
const EVIDENCE: u32 = 16;
/// Blocks per epoch on the hook ledger: base, downtime, evidence, epoch end.
const HOOK_EPOCH: u64 = 4;
const FUNDS: Amount = 1 << 100;

/// A compute-only contract: `spin` reads n (4 bytes LE) and runs n iterations of a
/// multiply-add.
const SPIN_WAT: &str = r#"(module
  (import "env" "input_read" (func $input_read (param i32)))
  (memory 1)
  (func (export "spin") (local $i i32) (local $n i32) (local $acc i64)
    (call $input_read (i32.const 0))
    (local.set $n (i32.load (i32.const 0)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $acc (i64.add (i64.mul (local.get $acc) (i64.const 6364136223846793005)) (i64.extend_i32_u (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i64.store (i32.const 8) (local.get $acc))))"#;

const TOKEN_WAT: &str = include_str!("../../../../vm-backends/contracts/token.wat");

fn key(tag: u8, i: u64) -> Keypair {
    let mut seed = [tag; 32];
    seed[..8].copy_from_slice(&i.to_le_bytes());
    Keypair::from_seed(seed)
}

/// Signs with the next nonce of each key.
#[derive(Default)]
struct Signer {
    nonces: BTreeMap<Address, u64>,
}

impl Signer {
    fn tx(&mut self, key: &Keypair, action: Action) -> SignedTransaction {
        let nonce = self.nonces.entry(key.address()).or_insert(0);
        let fee = u128::from(action.gas_limit().div_ceil(1_000).max(1_000));
        let tx = TxBody { chain_id: CHAIN.into(), sender: key.public(), nonce: *nonce, fee, action }.sign(key);
        *nonce += 1;
        tx
    }
}

fn module(module: &str, call: Vec<u8>, value: Amount, gas_limit: u64) -> Action {
    Action::Module { module: module.into(), call, value, gas_limit }
}

/// Builds and commits one block; returns it and the time both took.
fn block(
    ledger: &Ledger,
    txs: Vec<SignedTransaction>,
    evidence: Vec<Evidence>,
    certificate: Vec<u8>,
    proposer: Address,
) -> anyhow::Result<(Arc<ExecutedBlock>, Duration)> {
    let count = txs.len();
    let head = ledger.head();
    let started = Instant::now();
    let built = ledger.build_block(&head.block.hash, Certificate(certificate), txs, evidence, head.header.time_ms + 1, proposer)?;
    let executed = ledger.commit(&built.executed.hash, &Certificate(vec![]))?;
    let elapsed = started.elapsed();
    if let Some((hash, e)) = built.rejected.first() {
        bail!("transaction {hash} left out: {e}");
    }
    if executed.receipts.len() != count {
        bail!("{} of {count} transactions fit in a block; lower --block-txs", executed.receipts.len());
    }
    for r in &executed.receipts {
        if let TxStatus::Failed { reason } = &r.status {
            bail!("a benchmark transaction failed: {reason}");
        }
    }
    if let Some(e) = executed.hook_events.iter().find(|e| e.topic == b"hook_failed") {
        bail!("a hook failed: {}", String::from_utf8_lossy(&e.data));
    }
    Ok((executed, elapsed))
}

/// The signer bitmap this bench's certificates carry: bit i set = validator i signed.
fn bitmap_signers(certificate: &[u8], validators: usize) -> Result<Vec<u32>, String> {
    Ok((0..validators.min(certificate.len() * 8)).filter(|i| certificate[i / 8] & (1 << (i % 8)) != 0).map(|i| i as u32).collect())
}

fn accept_any(_key: &[u8]) -> Result<(), String> {
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

struct Setup {
    validators: Vec<Keypair>,
    senders: Vec<Keypair>,
    genesis: Genesis,
}

fn setup(opts: &ModuleGasBenchOptions, senders: usize) -> Setup {
    let validators: Vec<Keypair> = (0..opts.validators as u64).map(|i| key(0xa1, i)).collect();
    let senders: Vec<Keypair> = (0..senders as u64).map(|i| key(0xa2, i)).collect();
    let mut accounts: Vec<GenesisAccount> =
        validators.iter().chain(&senders).map(|k| GenesisAccount { address: k.address(), balance: FUNDS }).collect();
    accounts.sort_by_key(|a| a.address);
    let genesis = Genesis {
        chain_id: CHAIN.into(),
        genesis_time_ms: 0,
        accounts,
        validators: validators
            .iter()
            .enumerate()
            .map(|(i, k)| ValidatorEntry {
                // 64-byte names: the longest staking accepts.
                name: format!("{i:0>64}"),
                identity: k.public(),
                consensus_key: consensus_key(k),
                stake: 1_000_000 + i as Amount,
            })
            .collect(),
        modules: vec![],
        epochs: None,
    };
    Setup { validators, senders, genesis }
}

fn open(opts: &ModuleGasBenchOptions, genesis: &Genesis, dir: &std::path::Path, key_check: ConsensusKeyCheck) -> anyhow::Result<Ledger> {
    let registry = crate::presets().find("aether")?.registry();
    let factory = &registry.storage.get(&opts.storage)?.factory;
    let store = factory(&StorageContext { path: dir.join("db"), schema: columns::SCHEMA }, &PluginSettings::empty("storage"))?;
    let vm_factory = &registry.vm.get("wasmtime")?.factory;
    let vm = vm_factory(&aether_framework::vm::VmContext { artifact_dir: None }, &PluginSettings::empty("vm"))?;
    let ledger = Ledger::open(store, genesis)?
        .with_vm(vm)
        .with_module(Arc::new(Staking))
        .with_module(Arc::new(Slashing))
        .with_module(Arc::new(aether_module_governance::Governance))
        .with_consensus_key_check(key_check)
        .with_certificate_signers(bitmap_signers);
    ledger.check_genesis_init()?;
    Ok(ledger)
}

fn modules(staking: &str, slashing: &str, governance: &str) -> Vec<GenesisModule> {
    vec![
        GenesisModule { name: "staking".into(), version: 1, mint: true, params: staking.into(), govern_chain: false },
        GenesisModule { name: "slashing".into(), version: 1, mint: false, params: slashing.into(), govern_chain: false },
        GenesisModule { name: "governance".into(), version: 1, mint: true, params: governance.into(), govern_chain: false },
    ]
}

/// One measured kind: (block time − empty block time) per call, and gas per call.
#[derive(Default)]
struct Kind {
    per_call_ns: Vec<f64>,
    gas: Vec<u64>,
}

impl Kind {
    fn mean_gas(&self) -> f64 {
        self.gas.iter().sum::<u64>() as f64 / self.gas.len().max(1) as f64
    }
    fn max_gas(&self) -> u64 {
        self.gas.iter().copied().max().unwrap_or(0)
    }
}

pub fn run_module_gas_bench(opts: &ModuleGasBenchOptions) -> anyhow::Result<()> {
    let k = opts.block_txs.max(1);
    let rounds = opts.rounds.max(1);
    if opts.validators < k * rounds || opts.validators < EVIDENCE as usize * 2 {
        bail!("--validators must be at least block-txs × rounds ({}) (each unjail and evidence piece needs its own validator)", k * rounds);
    }
    let started = Instant::now();
    let s = setup(opts, 16);
    println!(
        "set-up: {} validators with HotStuff consensus keys ({} bytes) and 64-byte names, in {:.1} s",
        s.validators.len(),
        s.genesis.validators[0].consensus_key.len(),
        started.elapsed().as_secs_f64()
    );
    let registry = crate::presets().find("aether")?.registry();
    let hotstuff_check = registry.consensus_key_check("hotstuff");

    // ---- The transaction ledger ----
    let dir = tempfile::tempdir()?;
    let mut genesis = s.genesis.clone();
    genesis.modules = modules(
        &format!(r#"{{"max_validators":{},"jail_epochs":0,"slasher":"slashing"}}"#, opts.validators.min(512)),
        r#"{"jail_on_double_sign":true}"#,
        r#"{"max_open_proposals":1024,"max_actions":8}"#,
    );
    genesis.epochs = Some(EpochSchedule { length: 1 << 40, validator_source: Some("staking".into()) });
    let ledger = open(opts, &genesis, dir.path(), hotstuff_check)?;
    let proposer = s.validators[0].address();
    let mut signer = Signer::default();
    let empty = || Vec::new();
    block(&ledger, vec![], vec![], empty(), proposer).context("block 1 (module genesis)")?;

    // Contracts: the token (2 reads, 2 writes, an event) and the compute loop.
    let owner = &s.senders[0];
    let deploy = |signer: &mut Signer, wat: &str, input: Vec<u8>| -> anyhow::Result<Address> {
        let code = wat::parse_str(wat)?;
        let tx = signer.tx(owner, Action::Deploy { code, input, value: 0, gas_limit: 20_000_000 });
        let (b, _) = block(&ledger, vec![tx], vec![], vec![], proposer)?;
        b.receipts[0].contract_address.context("no contract address")
    };
    let token = deploy(&mut signer, TOKEN_WAT, (u64::MAX / 2).to_le_bytes().to_vec()).context("deploying the token")?;
    let spin = deploy(&mut signer, SPIN_WAT, vec![]).context("deploying the spin contract")?;

    // Jail the validators unjail will free (evidence against epoch 0's set; jail_epochs 0).
    for chunk in (0..(k * rounds) as u32).collect::<Vec<_>>().chunks(EVIDENCE as usize) {
        let evidence = chunk
            .iter()
            .map(|&i| Evidence { offender: i, kind: "double-vote".into(), proof: i.to_le_bytes().to_vec(), epoch: 0 })
            .collect();
        block(&ledger, vec![], evidence, empty(), proposer).context("jailing")?;
    }
    // A proposal in voting for vote.
    let submit = |n: u64| {
        // The most actions a proposal may carry (8), each a 4 KB call: the largest submit.
        let actions = (0..8).map(|a| ProposalAction::new("staking", vec![(n + a) as u8; 4_096])).collect();
        GovernanceCall::submit(&format!("proposal {n:0>64}"), actions).encode()
    };
    let first = signer.tx(owner, module("governance", submit(0), 1_000, 5_000_000));
    block(&ledger, vec![first], vec![], empty(), proposer).context("first proposal")?;

    let names = [
        "transfer",
        "contract token.transfer",
        "contract spin",
        "staking register",
        "staking delegate",
        "staking unbond",
        "staking set_commission",
        "staking unjail",
        "governance submit",
        "governance vote",
    ];
    let mut kinds: BTreeMap<&str, Kind> = BTreeMap::new();
    let mut empty_ns = Vec::new();
    let sink = |n: u64| {
        let mut a = [0x5e; 20];
        a[..8].copy_from_slice(&n.to_le_bytes());
        Address(a)
    };
    let mut registered = 0u64;
    for round in 0..rounds {
        let (_, t) = block(&ledger, vec![], vec![], empty(), proposer)?;
        let empty_block = t.as_nanos() as f64;
        empty_ns.push(empty_block);
        for name in names {
            let txs: Vec<SignedTransaction> = (0..k)
                .map(|i| {
                    let n = (round * k + i) as u64;
                    let sender = &s.senders[n as usize % s.senders.len()];
                    // Delegation n and unbond n are the same (delegator, validator) pair, a new
                    // one each: unbond opens a new entry (the costlier path).
                    let pair_validator = &s.validators[(n as usize / s.senders.len()) % s.validators.len()];
                    let validator = &s.validators[n as usize % s.validators.len()];
                    let action = match name {
                        // To one account (as the fee to the proposer): the per-transaction
                        // envelope, with no new account created per transaction.
                        "transfer" => Action::Transfer { to: sink(u64::MAX), amount: 1, memo: vec![] },
                        "contract token.transfer" => {
                            let mut input = sink(n).0.to_vec();
                            input.extend_from_slice(&1u64.to_le_bytes());
                            Action::Call { contract: token, method: "transfer".into(), input, value: 0, gas_limit: 1_000_000 }
                        }
                        "contract spin" => Action::Call {
                            contract: spin,
                            method: "spin".into(),
                            input: opts.spin.to_le_bytes().to_vec(),
                            value: 0,
                            gas_limit: 5_000_000,
                        },
                        "staking register" => {
                            let identity = key(0xa3, registered);
                            registered += 1;
                            let call =
                                StakingCall::register(&identity, &sender.address(), consensus_key(&identity), &format!("{n:0>64}"), 100);
                            module("staking", call.encode(), 1_000, 10_000_000)
                        }
                        "staking delegate" => module("staking", StakingCall::delegate(pair_validator.public()).encode(), 1_000, 1_000_000),
                        "staking unbond" => module("staking", StakingCall::unbond(pair_validator.public(), 500).encode(), 0, 1_000_000),
                        "staking set_commission" => module(
                            "staking",
                            StakingCall::set_commission(validator.public(), 100 + (n % 100) as u16).encode(),
                            0,
                            1_000_000,
                        ),
                        "staking unjail" => module("staking", StakingCall::unjail(validator.public()).encode(), 0, 1_000_000),
                        "governance submit" => module("governance", submit(n + 1), 1_000, 5_000_000),
                        "governance vote" => module("governance", GovernanceCall::vote(1, VoteOption::Yes).encode(), 0, 8_000_000),
                        other => unreachable!("{other}"),
                    };
                    let by = match name {
                        "staking set_commission" | "staking unjail" | "governance vote" => validator,
                        // The token's supply is the deployer's.
                        "contract token.transfer" => owner,
                        _ => sender,
                    };
                    signer.tx(by, action)
                })
                .collect();
            let (b, t) = block(&ledger, txs, vec![], empty(), proposer).with_context(|| name.to_string())?;
            let kind = kinds.entry(name).or_default();
            kind.per_call_ns.push((t.as_nanos() as f64 - empty_block) / k as f64);
            kind.gas.extend(b.receipts.iter().map(|r| r.gas_used));
        }
    }
    let invariants = ledger.module_query("staking", "invariants", &[], 1_000_000_000)?;
    if let Err(e) = invariants.answer {
        bail!("staking invariants broken after the run: {e}");
    }
    drop(ledger);

    // ---- The hook ledger ----
    let dir = tempfile::tempdir()?;
    let mut genesis = s.genesis.clone();
    genesis.modules = modules(
        &format!(r#"{{"max_validators":{},"slasher":"slashing"}}"#, opts.validators.min(512)),
        // Not jailed: every epoch keeps the whole set.
        r#"{"jail_on_double_sign":false}"#,
        "",
    );
    genesis.epochs = Some(EpochSchedule { length: HOOK_EPOCH, validator_source: Some("staking".into()) });
    let ledger = open(opts, &genesis, dir.path(), accept_any)?;
    let all_signed = vec![0xffu8; opts.validators.div_ceil(8)];
    // Block 1 (module genesis) and the rest of epoch 0: not measured.
    while ledger.head().header.height < HOOK_EPOCH {
        block(&ledger, vec![], vec![], all_signed.clone(), proposer)?;
    }
    let hook_gas = |b: &ExecutedBlock| b.hook_gas.iter().map(|h| h.gas).sum::<u64>();
    let (mut base, mut downtime, mut evidence, mut epoch_end) = (Kind::default(), Kind::default(), Kind::default(), Kind::default());
    let mut base_ns = Vec::new();
    let mut base_gas = Vec::new();
    for round in 0..rounds {
        // The epoch's first block: no signers named (as under HotStuff), so no downtime work.
        let (b, t) = block(&ledger, vec![], vec![], empty(), proposer)?;
        let (t0, g0) = (t.as_nanos() as f64, hook_gas(&b));
        base_ns.push(t0);
        base_gas.push(g0);
        base.gas.push(g0);
        let (b, t) = block(&ledger, vec![], vec![], all_signed.clone(), proposer)?;
        downtime.per_call_ns.push(t.as_nanos() as f64 - t0);
        downtime.gas.push(hook_gas(&b) - g0);
        // Offences of the block's own epoch.
        let epoch = ledger.epoch_of(ledger.head().header.height + 1);
        let pieces = (0..EVIDENCE)
            .map(|i| Evidence {
                offender: (round as u32 * EVIDENCE + i) % opts.validators as u32,
                kind: "double-vote".into(),
                proof: format!("round {round} piece {i}").into_bytes(),
                epoch,
            })
            .collect();
        let (b, t) = block(&ledger, vec![], pieces, all_signed.clone(), proposer)?;
        evidence.per_call_ns.push(t.as_nanos() as f64 - t0);
        evidence.gas.push(hook_gas(&b) - g0);
        let (b, t) = block(&ledger, vec![], vec![], empty(), proposer)?;
        if b.block.header.next_validators.is_none() {
            bail!("block {} was meant to end an epoch", b.block.header.height);
        }
        epoch_end.per_call_ns.push(t.as_nanos() as f64 - t0);
        epoch_end.gas.push(hook_gas(&b) - g0);
    }
    let set = ledger.validator_set(ledger.epoch_of(ledger.head().header.height))?.unwrap_or_default().len();
    let invariants = ledger.module_query("staking", "invariants", &[], 1_000_000_000)?;
    if let Err(e) = invariants.answer {
        bail!("staking invariants broken after the hook run: {e}");
    }

    // ---- Report ----
    let transfer_ns = median(kinds["transfer"].per_call_ns.clone());
    println!(
        "through one ledger on {} (build = execute, then the synced commit), {} rounds, {} calls of a kind per block; medians; envelope signatures not verified (build_block takes mempool-verified transactions)",
        opts.storage, rounds, k
    );
    println!("  empty block: {:.0} µs (taken off every block below)", median(empty_ns) / 1e3);
    println!("  plain transfer to one account: {:.2} µs per tx (the envelope: nonce, fee, the sender's account; gas 0)", transfer_ns / 1e3);
    println!("{:<44} {:>12} {:>12} {:>12} {:>10} {:>10}", "call", "gas (mean)", "gas (max)", "µs / call", "ns/gas", "net ns/gas");
    let mut rows: Vec<(String, f64, u64, f64)> = Vec::new();
    for name in names.iter().skip(1) {
        let kind = &kinds[name];
        rows.push((name.to_string(), kind.mean_gas(), kind.max_gas(), median(kind.per_call_ns.clone())));
    }
    let mut baseline = 0.0f64;
    for (name, gas, max, ns) in &rows {
        let gross = ns / gas;
        let net = (ns - transfer_ns) / gas;
        if name.starts_with("contract") {
            baseline = baseline.max(net);
        }
        println!("{name:<44} {gas:>12.0} {max:>12} {:>12.2} {gross:>10.4} {net:>10.4}", ns / 1e3);
    }
    println!(
        "hooks on a ledger of {} validators (set at the end: {set}), block time − the epoch's first block's (no signers: {:.0} µs, hook gas {:.0}):",
        opts.validators,
        median(base_ns) / 1e3,
        median(base_gas.iter().map(|&g| g as f64).collect())
    );
    let hooks = [
        (format!("slashing begin_block: downtime, {} signers", opts.validators), &downtime),
        (format!("slashing begin_block: {EVIDENCE} evidence + downtime"), &evidence),
        (format!("staking end_epoch ({} validators, + set record)", opts.validators), &epoch_end),
    ];
    let mut hook_rows = Vec::new();
    for (name, kind) in hooks {
        let ns = median(kind.per_call_ns.clone());
        let gas = kind.mean_gas();
        println!("{name:<44} {gas:>12.0} {:>12} {:>12.2} {:>10.4} {:>10}", kind.max_gas(), ns / 1e3, ns / gas, "-");
        hook_rows.push((name, ns / gas));
    }
    // The two signature checks register pays for by a fixed charge, alone.
    let identity = key(0xa4, 0);
    let ckey = consensus_key(&identity);
    let message = aether_module_staking::calls::registration_message(&identity.address(), &ckey);
    let signature = identity.sign(&message);
    let time = |f: &dyn Fn()| {
        median(
            (0..rounds.max(5) * 4)
                .map(|_| {
                    let t = Instant::now();
                    f();
                    t.elapsed().as_nanos() as f64
                })
                .collect(),
        )
    };
    let key_check_ns = time(&|| assert!(hotstuff_check(&ckey).is_ok()));
    let verify_ns = time(&|| assert!(identity.public().verify(&message, &signature).is_ok()));
    let (key_gas, verify_gas) = (aether_framework::module::CHECK_CONSENSUS_KEY_GAS, aether_module_staking::calls::VERIFY_GAS);
    println!(
        "  register's fixed charges alone: consensus-key check (HotStuff: BLS proof of possession) {:.1} µs for {key_gas} gas = {:.4} ns/gas; identity signature (ed25519) {:.1} µs for {verify_gas} gas = {:.4} ns/gas",
        key_check_ns / 1e3,
        key_check_ns / key_gas as f64,
        verify_ns / 1e3,
        verify_ns / verify_gas as f64
    );
    println!("contract baseline (the higher net ns/gas of the two contract calls): {baseline:.4} ns/gas");
    let mut over = Vec::new();
    for (name, gas, _, ns) in &rows {
        let net = (ns - transfer_ns) / gas;
        if !name.starts_with("contract") && net > baseline {
            over.push(format!("{name}: {net:.4} ns/gas = {:.2}x the baseline", net / baseline));
        }
    }
    for (name, ratio) in hook_rows {
        if ratio > baseline {
            over.push(format!("{name}: {ratio:.4} ns/gas = {:.2}x the baseline", ratio / baseline));
        }
    }
    if over.is_empty() {
        println!("every module call and hook: ns/gas at or below the contract baseline (gas covers the work)");
    } else {
        println!("above the contract baseline (more CPU per gas than a contract):");
        for line in over {
            println!("  {line}");
        }
    }
    Ok(())
}
