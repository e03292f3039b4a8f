//! A seeded random-operations simulation of the proof-of-stake modules (staking, slashing,
//! governance) through the real ledger, as Cosmos SDK's app simulation does.
//!
//! Genesis: 4–6 validators, 8–16 funded users, staking (validator source, mint, 2 unbonding
//! epochs, a reward every epoch), slashing, governance (mint, one voting epoch, a timelock of
//! 2 heights), epochs of [`EPOCH`] blocks. A `ChaCha8Rng` seeded with the run's seed picks,
//! per block, 0–[`MAX_OPS`] operations: transfers between users, delegations (some below
//! `min_delegation`, some to an unknown validator), unbondings of a random share of a
//! delegation the chain holds (some of more shares than held), registrations of new
//! validators (fresh keys; some with a signature for another operator, some with a bond below
//! `min_self_bond`), unjails, commission changes, governance proposals changing staking's
//! `min_delegation` (some changing a frozen parameter, which passes and fails to execute),
//! validators' votes (new validators' identities are funded for it), and 1–3 pieces of
//! synthetic double-vote evidence in about one block in ten, each against a random index of
//! the current set (some out of range).
//!
//! After every block it asserts, naming the seed and the height:
//! - every transaction was included with a receipt, every piece of evidence was recorded, no
//!   hook failed, and the transactions the model knows must fail failed with their reason;
//! - **supply**: the sum of the balances of every account the simulation knows (users,
//!   validators' identities, new validators' operators, the three module accounts, the fee
//!   recipient) equals the genesis balances + the genesis stake staking mints at height 1 +
//!   `reward_per_epoch` for every closed epoch − the amounts of the `staking/slash` events −
//!   the deposits of proposals tallied `vetoed`; and every account the block changed that
//!   the simulation does not know holds nothing (so no token leaves the known accounts);
//! - each `staking/slash` is of the block's own epoch, at 2000 bps (slashing's default), jails,
//!   and is the validator's only one in that epoch; no more slashes than in-range pieces of
//!   evidence, and every out-of-range piece gives a `slashing/evidence_ignored`;
//! - a passed proposal due at this height is `Executed` (with its event) or `Failed` with its
//!   action's error (with its event), never left unfinished;
//! - staking's and governance's `invariants` queries pass;
//! - a follower ledger (memory store, no VM) re-executing the block reaches the same state
//!   root and the same hook events.
//!
//! The same seed is also run on RocksDB with Wasmtime and on ParityDB with Wasmer, and the
//! state root after every block must be identical to the memory run's.
//!
//! A failure names the seed, the backend and the height, and how to re-run that seed.
//!
//! ```text
//! cargo test -p aether-tests --test module_simulation                 # 3 seeds × 60 blocks + backends
//! AETHER_SIM_SEED=42 cargo test -p aether-tests --test module_simulation   # one seed
//! cargo test -p aether-tests --test module_simulation -- --ignored          # 20 seeds × 500 blocks
//! ```
//! `AETHER_SIM_BLOCKS=N` changes the number of blocks of every run.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use aether_framework::codec;
use aether_framework::ledger::{ExecutedBlock, Ledger};
use aether_framework::module::module_address;
use aether_framework::storage::{columns, KvStore};
use aether_framework::types::*;
use aether_module_governance::execution::UNFINISHED;
use aether_module_governance::{GovernanceCall, ProposalAction, ProposalInfo, Status, VoteOption};
use aether_module_staking::{DelegationInfo, StakingCall, ValidatorInfo};
use aether_storage_memory::MemoryStore;
use aether_storage_paritydb::{ParitySettings, ParityStore};
use aether_storage_rocksdb::{RocksSettings, RocksStore};
use aether_vm_wasmer::WasmerBackend;
use aether_vm_wasmtime::WasmtimeBackend;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CHAIN: &str = "module-simulation";
/// Blocks per epoch: epoch e is heights 5e+1 ..= 5e+5.
const EPOCH: u64 = 5;
/// Most operations per block (evidence not counted).
const MAX_OPS: usize = 8;
const GAS: u64 = 10_000_000;
/// Fees (the least a 10M-gas module call needs) go to [`PROPOSER`].
const FEE: Amount = 10_000;
const PROPOSER: Address = Address([0xEE; 20]);
/// Each user and each genesis validator's identity account starts with this.
const FUNDS: Amount = 1_000_000_000_000;
const MIN_SELF_BOND: Amount = 1_000;
const MIN_DEPOSIT: Amount = 1_000;
const STAKING_PARAMS: &str = r#"{"min_self_bond":1000,"reward_per_epoch":10000,"unbonding_epochs":2}"#;
const GOVERNANCE_PARAMS: &str = r#"{"timelock_heights":2,"voting_epochs":1}"#;
/// Downtime measured over 4 heights (shorter than an epoch, so a validator could be judged
/// twice in one epoch: the once-per-epoch rule is exercised), more than half missed
/// is slashed 1% and jailed.
const SLASHING_PARAMS: &str = r#"{"downtime_slash_bps":100,"min_signed_per_window_bps":5000,"signed_blocks_window":4}"#;
/// The chance, in percent, that a validator's vote misses a block's certificate, by the
/// validator's identity (a validator's last key byte picks one): most always sign, some
/// sometimes miss, one in four is mostly offline.
const MISS_PERCENT: [u32; 4] = [0, 0, 30, 80];

/// The simulation's certificates name their signers in a bitmap over the epoch's set (what
/// a real engine's decoder, e.g. HotStuff's QC bitmap, gives the ledger).
fn bitmap_signers(certificate: &[u8], validators: usize) -> Result<Vec<u32>, String> {
    if certificate.len() != validators.div_ceil(8) {
        return Err(format!("a bitmap of {} bytes for a set of {validators}", certificate.len()));
    }
    Ok((0..validators).filter(|i| certificate[i / 8] & (1 << (i % 8)) != 0).map(|i| i as u32).collect())
}

fn key(n: u8) -> Keypair {
    Keypair::from_seed([n; 32])
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    /// MemoryStore, no VM.
    Memory,
    RocksWasmtime,
    ParityWasmer,
}

/// What the model knows a transaction must do.
#[derive(Clone, Debug)]
enum Expect {
    /// Must succeed.
    Success,
    /// Must fail with a reason containing this text.
    Failure(&'static str),
    /// May go either way (the model does not predict it).
    Either,
}

/// Counts of what a run did, by operation: (succeeded, failed).
#[derive(Default, Debug)]
struct Stats {
    ops: BTreeMap<&'static str, (u64, u64)>,
    /// Failure reasons by operation (the reason's words, numbers and keys left out).
    reasons: BTreeMap<String, u64>,
    slashes: u64,
    downtime_slashes: u64,
    burned_by_slashes: Amount,
    evidence: u64,
    evidence_out_of_range: u64,
    tallies: BTreeMap<String, u64>,
    executed: u64,
    execution_failed: u64,
    rewards: u64,
    /// Epochs whose next set has other members.
    set_changes: u64,
}

impl Stats {
    fn add(&mut self, other: &Stats) {
        for (k, (s, f)) in &other.ops {
            let e = self.ops.entry(k).or_default();
            e.0 += s;
            e.1 += f;
        }
        for (k, n) in &other.reasons {
            *self.reasons.entry(k.clone()).or_default() += n;
        }
        self.slashes += other.slashes;
        self.downtime_slashes += other.downtime_slashes;
        self.burned_by_slashes += other.burned_by_slashes;
        self.evidence += other.evidence;
        self.evidence_out_of_range += other.evidence_out_of_range;
        for (k, n) in &other.tallies {
            *self.tallies.entry(k.clone()).or_default() += n;
        }
        self.executed += other.executed;
        self.execution_failed += other.execution_failed;
        self.rewards += other.rewards;
        self.set_changes += other.set_changes;
    }
}

struct Sim {
    seed: u64,
    backend: Backend,
    rng: ChaCha8Rng,
    ledger: Ledger,
    follower: Ledger,
    _dir: Option<tempfile::TempDir>,
    nonces: BTreeMap<Address, u64>,
    users: Vec<Keypair>,
    /// Validators' identity keys with funds for fees: they vote (genesis validators', which
    /// are also their operators, and new validators' once a transfer funded them).
    voters: Vec<Keypair>,
    /// Transactions an operation adds after its own (a new validator's funding).
    extra: Vec<(SignedTransaction, Expect, &'static str)>,
    /// Every validator the chain knows: identity → operator key.
    validators: Vec<(PublicKey, Keypair)>,
    /// (delegator key, validator) pairs that may hold shares.
    delegations: Vec<(Keypair, PublicKey)>,
    /// Accounts whose balances make up the supply.
    known: BTreeSet<Address>,
    /// Genesis balances + minted − burned, as the model counts it.
    expected_supply: Amount,
    /// (delegator, validator) pairs a transaction of the block being built already touched
    /// (their shares before the block say nothing about those after it).
    touched: BTreeSet<(Address, PublicKey)>,
    /// (epoch, validator) slashed: once each at most.
    slashed: BTreeSet<(u64, PublicKey)>,
    /// (epoch, validator) slashed for downtime: once each at most.
    downtime_slashed: BTreeSet<(u64, PublicKey)>,
    /// Passed proposals: id → the height they run at.
    passed: BTreeMap<u64, Height>,
    /// Proposal id → deposit.
    deposits: BTreeMap<u64, Amount>,
    roots: Vec<Hash>,
    stats: Stats,
}

fn genesis_for(seed: u64) -> (Genesis, Vec<Keypair>, Vec<Keypair>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0067_656e_6573_6973);
    let validators: Vec<Keypair> = (1..=rng.gen_range(4u8..=6)).map(key).collect();
    let users: Vec<Keypair> = (0..rng.gen_range(8u8..=16)).map(|i| key(100 + i)).collect();
    let mut accounts: Vec<GenesisAccount> =
        users.iter().chain(&validators).map(|k| GenesisAccount { address: k.address(), balance: FUNDS }).collect();
    accounts.sort_by_key(|a| a.address);
    let genesis = Genesis {
        chain_id: CHAIN.into(),
        genesis_time_ms: 1_000,
        accounts,
        validators: validators
            .iter()
            .enumerate()
            .map(|(i, k)| ValidatorEntry {
                name: format!("v{i}"),
                identity: k.public(),
                consensus_key: k.public().0.to_vec(),
                stake: rng.gen_range(500_000..2_000_000),
            })
            .collect(),
        modules: vec![
            GenesisModule { name: "staking".into(), version: 1, mint: true, params: STAKING_PARAMS.into(), govern_chain: false },
            GenesisModule { name: "slashing".into(), version: 1, mint: false, params: SLASHING_PARAMS.into(), govern_chain: false },
            GenesisModule { name: "governance".into(), version: 1, mint: true, params: GOVERNANCE_PARAMS.into(), govern_chain: false },
        ],
        epochs: Some(EpochSchedule { length: EPOCH, validator_source: Some("staking".into()) }),
    };
    (genesis, validators, users)
}

fn with_modules(ledger: Ledger) -> Ledger {
    ledger
        .with_certificate_signers(bitmap_signers)
        .with_module(Arc::new(aether_module_staking::Staking))
        .with_module(Arc::new(aether_module_slashing::Slashing))
        .with_module(Arc::new(aether_module_governance::Governance))
}

impl Sim {
    fn new(seed: u64, backend: Backend) -> Sim {
        let (genesis, genesis_validators, users) = genesis_for(seed);
        let (store, dir): (Arc<dyn KvStore>, _) = match backend {
            Backend::Memory => (Arc::new(MemoryStore::new()), None),
            Backend::RocksWasmtime => {
                let dir = tempfile::tempdir().unwrap();
                let store = RocksStore::open(&dir.path().join("db"), columns::SCHEMA, &RocksSettings::default()).unwrap();
                (Arc::new(store), Some(dir))
            }
            Backend::ParityWasmer => {
                let dir = tempfile::tempdir().unwrap();
                let store = ParityStore::open(&dir.path().join("db"), columns::SCHEMA, &ParitySettings::default()).unwrap();
                (Arc::new(store), Some(dir))
            }
        };
        let mut ledger = Ledger::open(store, &genesis).unwrap();
        ledger = match backend {
            Backend::Memory => ledger,
            Backend::RocksWasmtime => ledger.with_vm(Arc::new(WasmtimeBackend::new())),
            Backend::ParityWasmer => ledger.with_vm(Arc::new(WasmerBackend::new())),
        };
        let ledger = with_modules(ledger);
        ledger.check_genesis_init().expect("genesis parameters accepted");
        let follower = with_modules(Ledger::open(Arc::new(MemoryStore::new()), &genesis).unwrap());
        let mut known: BTreeSet<Address> = genesis.accounts.iter().map(|a| a.address).collect();
        for m in ["staking", "slashing", "governance"] {
            known.insert(module_address(m));
        }
        known.insert(PROPOSER);
        let expected_supply = genesis.accounts.iter().map(|a| a.balance).sum::<Amount>();
        let validators = genesis_validators.iter().map(|k| (k.public(), k.clone())).collect();
        let delegations = genesis_validators.iter().map(|k| (k.clone(), k.public())).collect();
        Sim {
            seed,
            backend,
            rng: ChaCha8Rng::seed_from_u64(seed),
            ledger,
            follower,
            _dir: dir,
            nonces: BTreeMap::new(),
            users,
            voters: genesis_validators,
            extra: vec![],
            validators,
            delegations,
            known,
            expected_supply,
            touched: BTreeSet::new(),
            slashed: BTreeSet::new(),
            downtime_slashed: BTreeSet::new(),
            passed: BTreeMap::new(),
            deposits: BTreeMap::new(),
            roots: vec![],
            stats: Stats::default(),
        }
    }

    fn height(&self) -> Height {
        self.ledger.head().block.height
    }

    /// Panics naming the seed, the backend and the height.
    fn fail(&self, what: String) -> ! {
        panic!(
            "module simulation, seed {} on {:?}, height {}: {what}\n(re-run: AETHER_SIM_SEED={} cargo test -p aether-tests --test module_simulation)",
            self.seed,
            self.backend,
            self.height(),
            self.seed
        )
    }

    fn tx(&mut self, from: &Keypair, action: Action) -> SignedTransaction {
        let nonce = self.nonces.entry(from.address()).or_insert(0);
        let tx = TxBody { chain_id: CHAIN.into(), sender: from.public(), nonce: *nonce, fee: FEE, action }.sign(from);
        *nonce += 1;
        tx
    }

    fn module_tx(&mut self, from: &Keypair, module: &str, call: Vec<u8>, value: Amount) -> SignedTransaction {
        self.tx(from, Action::Module { module: module.into(), call, value, gas_limit: GAS })
    }

    fn query(&self, module: &str, path: &str, request: &[u8]) -> Result<Vec<u8>, String> {
        let answer = self.ledger.module_query(module, path, request, 1_000_000_000).unwrap();
        answer.answer.map_err(|e| e.to_string())
    }

    fn staking_param(&self, name: &str) -> Amount {
        let params: serde_json::Value = serde_json::from_slice(&self.query("staking", "params", &[]).unwrap()).unwrap();
        match &params[name] {
            serde_json::Value::String(s) => s.parse().unwrap(),
            serde_json::Value::Number(n) => Amount::from(n.as_u64().unwrap()),
            other => panic!("staking param {name}: {other}"),
        }
    }

    fn shares(&self, delegator: &Address, validator: &PublicKey) -> u128 {
        let request = codec::encode(&(*delegator, *validator));
        match self.query("staking", "delegation", &request) {
            Ok(bytes) => serde_json::from_slice::<DelegationInfo>(&bytes).unwrap().shares,
            Err(_) => 0,
        }
    }

    fn validator(&self, identity: &PublicKey) -> Option<ValidatorInfo> {
        self.query("staking", "validator", &identity.0).ok().map(|b| serde_json::from_slice(&b).unwrap())
    }

    fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
        &items[rng.gen_range(0..items.len())]
    }

    /// One random operation: a transaction, what the model expects of it, and its kind.
    fn operation(&mut self, min_delegation: Amount, open: &[u64]) -> (SignedTransaction, Expect, &'static str) {
        let roll = self.rng.gen_range(0..100);
        match roll {
            0..=16 => {
                let from = Self::pick(&mut self.rng, &self.users).clone();
                let to = Self::pick(&mut self.rng, &self.users).address();
                let amount = self.rng.gen_range(1..1_000_000);
                (self.tx(&from, Action::Transfer { to, amount, memo: vec![] }), Expect::Success, "transfer")
            }
            17..=34 => {
                let from = Self::pick(&mut self.rng, &self.users).clone();
                let unknown = self.rng.gen_bool(0.05);
                let validator = if unknown { key(250).public() } else { Self::pick(&mut self.rng, &self.validators).0 };
                let amount = if self.rng.gen_bool(0.1) {
                    self.rng.gen_range(1..min_delegation)
                } else {
                    self.rng.gen_range(min_delegation..500_000)
                };
                let expect = if amount < min_delegation {
                    Expect::Failure("at least min_delegation")
                } else if unknown {
                    Expect::Failure("no validator with identity")
                } else {
                    Expect::Either
                };
                if !unknown {
                    self.delegations.push((from.clone(), validator));
                    self.touched.insert((from.address(), validator));
                }
                (self.module_tx(&from, "staking", StakingCall::delegate(validator).encode(), amount), expect, "delegate")
            }
            35..=48 => {
                let (delegator, validator) = Self::pick(&mut self.rng, &self.delegations).clone();
                let held = self.shares(&delegator.address(), &validator);
                let touched = !self.touched.insert((delegator.address(), validator));
                let (shares, mut expect) = if held == 0 {
                    (1, Expect::Failure("holds 0 shares"))
                } else if self.rng.gen_bool(0.05) {
                    (held + 1, Expect::Failure("cannot unbond"))
                } else if self.rng.gen_bool(0.2) {
                    (held, Expect::Either)
                } else {
                    (self.rng.gen_range(1..=held.div_ceil(2)), Expect::Either)
                };
                if touched {
                    expect = Expect::Either;
                }
                (self.module_tx(&delegator, "staking", StakingCall::unbond(validator, shares).encode(), 0), expect, "unbond")
            }
            49..=56 => {
                let operator = Self::pick(&mut self.rng, &self.users).clone();
                let identity = Keypair::from_seed(self.rng.gen());
                let kind = self.rng.gen_range(0..10);
                let (signed_for, bond, expect) = match kind {
                    0 => (key(251).address(), 5_000, Expect::Failure("the identity signature does not verify")),
                    1 => (operator.address(), MIN_SELF_BOND - 1, Expect::Failure("at least min_self_bond")),
                    _ => (operator.address(), self.rng.gen_range(MIN_SELF_BOND..3_000_000), Expect::Success),
                };
                let name = format!("n{}", self.rng.gen_range(0..1_000_000));
                let call = StakingCall::register(&identity, &signed_for, identity.public().0.to_vec(), &name, self.rng.gen_range(0..3_000));
                if matches!(expect, Expect::Success) {
                    // Fund the identity so that it can vote.
                    let funding = Action::Transfer { to: identity.address(), amount: 1_000_000_000, memo: vec![] };
                    let register = self.module_tx(&operator, "staking", call.encode(), bond);
                    let funding = self.tx(&operator, funding);
                    self.extra.push((funding, Expect::Success, "transfer"));
                    self.known.insert(identity.address());
                    self.voters.push(identity.clone());
                    self.validators.push((identity.public(), operator.clone()));
                    self.delegations.push((operator.clone(), identity.public()));
                    self.touched.insert((operator.address(), identity.public()));
                    return (register, expect, "register");
                }
                (self.module_tx(&operator, "staking", call.encode(), bond), expect, "register")
            }
            57..=60 => {
                let (identity, operator) = Self::pick(&mut self.rng, &self.validators).clone();
                (self.module_tx(&operator, "staking", StakingCall::unjail(identity).encode(), 0), Expect::Either, "unjail")
            }
            61..=63 => {
                let (identity, operator) = Self::pick(&mut self.rng, &self.validators).clone();
                let bps = self.rng.gen_range(0..=10_000);
                let call = StakingCall::set_commission(identity, bps);
                (self.module_tx(&operator, "staking", call.encode(), 0), Expect::Success, "set_commission")
            }
            64..=71 => {
                let from = Self::pick(&mut self.rng, &self.users).clone();
                let (json, title) = if self.rng.gen_bool(0.15) {
                    (r#"{"unbonding_epochs":3}"#.to_string(), "a frozen parameter")
                } else {
                    (format!(r#"{{"min_delegation":{}}}"#, self.rng.gen_range(50..2_000)), "min_delegation")
                };
                let action = ProposalAction::new("staking", StakingCall::update_params(&json).encode());
                let short = self.rng.gen_bool(0.1);
                let deposit = if short { MIN_DEPOSIT - 1 } else { self.rng.gen_range(MIN_DEPOSIT..10_000) };
                let expect = if short { Expect::Failure("at least min_deposit") } else { Expect::Success };
                (self.module_tx(&from, "governance", GovernanceCall::submit(title, vec![action]).encode(), deposit), expect, "submit")
            }
            _ => {
                let voter = Self::pick(&mut self.rng, &self.voters).clone();
                let closed: Vec<u64> = self.deposits.keys().copied().filter(|id| !open.contains(id)).collect();
                let (proposal, expect) = if self.rng.gen_bool(0.03) {
                    (9_999, Expect::Failure("no proposal 9999"))
                } else if open.is_empty() || self.rng.gen_bool(0.05) {
                    match closed.is_empty() {
                        true => (9_999, Expect::Failure("no proposal 9999")),
                        false => (*Self::pick(&mut self.rng, &closed), Expect::Failure("is not in voting")),
                    }
                } else {
                    // A validator outside the current set may not vote.
                    (*Self::pick(&mut self.rng, open), Expect::Either)
                };
                let option = match self.rng.gen_range(0..20) {
                    0..=11 => VoteOption::Yes,
                    12..=14 => VoteOption::No,
                    15..=16 => VoteOption::Abstain,
                    _ => VoteOption::NoWithVeto,
                };
                (self.module_tx(&voter, "governance", GovernanceCall::vote(proposal, option).encode(), 0), expect, "vote")
            }
        }
    }

    /// Builds, commits and replays one random block and checks everything after it.
    fn step(&mut self) {
        let height = self.height() + 1;
        let epoch = (height - 1) / EPOCH;
        // Before height 1 (init_genesis) the modules hold nothing to ask.
        let (min_delegation, open) = if height == 1 {
            (0, vec![])
        } else {
            let open: Vec<u64> = serde_json::from_slice::<Vec<ProposalInfo>>(&self.query("governance", "proposals", &[]).unwrap())
                .unwrap()
                .iter()
                .map(|p| p.id)
                .collect();
            (self.staking_param("min_delegation"), open)
        };
        let mut txs = vec![];
        let mut expects = vec![];
        self.touched.clear();
        // The first block runs init_genesis: leave it empty so height 1 is about genesis.
        let ops = if height == 1 { 0 } else { self.rng.gen_range(0..=MAX_OPS) };
        for _ in 0..ops {
            let (tx, expect, kind) = self.operation(min_delegation, &open);
            txs.push(tx);
            expects.push((expect, kind));
            for (tx, expect, kind) in std::mem::take(&mut self.extra) {
                txs.push(tx);
                expects.push((expect, kind));
            }
        }
        let set_len = self.ledger.validator_set(epoch).unwrap().map_or(0, |s| s.len()) as u32;
        let mut evidence = vec![];
        let mut out_of_range = 0;
        if height > 1 && self.rng.gen_bool(0.1) {
            // Up to 3 pieces: with sets of a few validators, the same one is often named twice
            // in an epoch (slashed once).
            for piece in 0..self.rng.gen_range(1..=3) {
                let offender = if self.rng.gen_bool(0.15) {
                    out_of_range += 1;
                    set_len + self.rng.gen_range(0..3)
                } else {
                    self.rng.gen_range(0..set_len)
                };
                evidence.push(Evidence {
                    offender,
                    kind: "double-vote".into(),
                    proof: format!("{}-{height}-{piece}", self.seed).into_bytes(),
                    epoch: self.ledger.epoch_of(height),
                });
            }
        }
        self.stats.evidence += evidence.len() as u64;
        self.stats.evidence_out_of_range += out_of_range;
        let offered = (txs.len(), evidence.len());

        let head = self.ledger.head();
        let built = self
            .ledger
            .build_block(&head.block.hash, head.certificate, txs, evidence, head.header.time_ms + 10, PROPOSER)
            .unwrap_or_else(|e| self.fail(format!("build_block refused: {e}")));
        if !built.rejected.is_empty() {
            self.fail(format!("transactions rejected: {:?}", built.rejected));
        }
        let certificate = self.certificate_of(height);
        let block = self.ledger.commit(&built.executed.hash, &certificate).unwrap_or_else(|e| self.fail(format!("commit: {e}")));
        if block.receipts.len() != offered.0 || block.block.evidence.len() != offered.1 {
            self.fail(format!(
                "{} receipts for {} transactions, {} pieces of evidence recorded of {}",
                block.receipts.len(),
                offered.0,
                block.block.evidence.len(),
                offered.1
            ));
        }
        let replayed =
            self.follower.execute_block(block.block.clone()).unwrap_or_else(|e| self.fail(format!("the follower refused the block: {e}")));
        self.follower.commit(&replayed.hash, &certificate).unwrap();
        if self.follower.head().header.state_root != self.ledger.head().header.state_root {
            self.fail("the follower reached another state root".into());
        }
        if replayed.hook_events != block.hook_events {
            self.fail("the follower's hooks emitted other events".into());
        }
        self.roots.push(self.ledger.head().header.state_root);

        self.check_receipts(&block, &expects);
        self.account_supply(&block, height);
        self.check_supply(&block);
        self.check_executions(&block, height);
        for module in ["staking", "governance"] {
            if let Err(e) = self.query(module, "invariants", &[]) {
                self.fail(format!("{module} invariants: {e}"));
            }
        }
    }

    fn check_receipts(&mut self, block: &ExecutedBlock, expects: &[(Expect, &'static str)]) {
        for (i, (receipt, (expect, kind))) in block.receipts.iter().zip(expects).enumerate() {
            let entry = self.stats.ops.entry(kind).or_default();
            match (&receipt.status, expect) {
                (TxStatus::Success, Expect::Success | Expect::Either) => entry.0 += 1,
                (TxStatus::Failed { reason }, Expect::Failure(text)) if reason.contains(text) => entry.1 += 1,
                (TxStatus::Failed { .. }, Expect::Either) => entry.1 += 1,
                (status, expect) => self.fail(format!("{kind} (transaction {i}): expected {expect:?}, got {status:?}")),
            }
            if let TxStatus::Failed { reason } = &receipt.status {
                if reason.is_empty() {
                    self.fail(format!("{kind} (transaction {i}) failed without a reason"));
                }
                let words: Vec<&str> =
                    reason.split_whitespace().filter(|w| w.chars().all(|c| c.is_alphabetic() || "_;:,'".contains(c))).collect();
                *self.stats.reasons.entry(format!("{kind}: {}", words.join(" "))).or_default() += 1;
            }
        }
        let failed: Vec<String> =
            block.hook_events.iter().filter(|e| e.topic == b"hook_failed").map(|e| String::from_utf8_lossy(&e.data).into_owned()).collect();
        if !failed.is_empty() {
            self.fail(format!("hooks failed: {failed:?}"));
        }
    }

    /// The certificate block `height` commits with (the next block's parent certificate):
    /// its epoch's set as a bitmap, each member signing unless its miss chance strikes.
    fn certificate_of(&mut self, height: Height) -> Certificate {
        let set = self.ledger.validator_set(self.ledger.epoch_of(height)).unwrap().unwrap_or_default();
        let mut bitmap = vec![0u8; set.len().div_ceil(8)];
        for (i, v) in set.iter().enumerate() {
            let miss = MISS_PERCENT[usize::from(v.identity.0[31] % 4)];
            if self.rng.gen_range(0..100) >= miss {
                bitmap[i / 8] |= 1 << (i % 8);
            }
        }
        Certificate(bitmap)
    }

    /// Updates the expected supply with what the block minted and burned, as the model
    /// counts it: staking's genesis mint at height 1, the reward at each epoch's last block,
    /// slashes (their events' amounts) and vetoed deposits.
    fn account_supply(&mut self, block: &ExecutedBlock, height: Height) {
        if height == 1 {
            let genesis_stake: Amount = self.ledger.validator_set(0).unwrap().unwrap().iter().map(|v| v.stake).sum();
            self.expected_supply += genesis_stake;
        }
        let events = block.receipts.iter().flat_map(|r| r.events.iter()).chain(block.hook_events.iter());
        let mut vetoed = vec![];
        let mut in_range_evidence_slashes = 0u64;
        let mut ignored = 0usize;
        let (mut downtime_events, mut downtime_slashes) = (0u64, 0u64);
        for e in events {
            match e.topic.as_slice() {
                b"governance/submit" => {
                    let (id, _proposer, deposit, _end): (u64, Address, Amount, u64) = codec::decode("submit", &e.data, 1_024).unwrap();
                    self.deposits.insert(id, deposit);
                }
                b"governance/tally" => {
                    let (id, status): (u64, String) = codec::decode("tally", &e.data, 1_024).unwrap();
                    let kind = status.split([':', ',']).next().unwrap_or_default().to_string();
                    *self.stats.tallies.entry(kind).or_default() += 1;
                    if status == "vetoed" {
                        vetoed.push(id);
                    }
                    if let Some(at) = status.strip_prefix("passed, executing at height ") {
                        self.passed.insert(id, at.parse().unwrap());
                    }
                }
                b"governance/executed" => self.stats.executed += 1,
                b"governance/execution_failed" => self.stats.execution_failed += 1,
                b"slashing/evidence_ignored" => ignored += 1,
                b"slashing/downtime" => downtime_events += 1,
                b"staking/slash" if codec::decode::<(PublicKey, u64, u16, Amount, bool)>("slash", &e.data, 1_024).unwrap().2 == 100 => {
                    // Downtime: 1% and jail, at most once per validator and epoch.
                    let (v, infraction, _, burned, jail): (PublicKey, u64, u16, Amount, bool) =
                        codec::decode("slash", &e.data, 1_024).unwrap();
                    // What is measured is the parent's certificate: the offence is of the
                    // parent's epoch (the previous one, in an epoch's first block).
                    let epoch = (height - 2) / EPOCH;
                    if (infraction, jail) != (epoch, true) {
                        self.fail(format!("downtime slash of {v}: infraction epoch {infraction}, jail {jail}; expected ({epoch}, true)"));
                    }
                    if !self.downtime_slashed.insert((epoch, v)) {
                        self.fail(format!("validator {v} slashed twice for downtime in epoch {epoch}"));
                    }
                    self.expected_supply -= burned;
                    self.stats.downtime_slashes += 1;
                    self.stats.burned_by_slashes += burned;
                    downtime_slashes += 1;
                }
                b"staking/slash" => {
                    let (v, infraction, bps, burned, jail): (PublicKey, u64, u16, Amount, bool) =
                        codec::decode("slash", &e.data, 1_024).unwrap();
                    let epoch = (height - 1) / EPOCH;
                    if (infraction, bps, jail) != (epoch, 2_000, true) {
                        self.fail(format!(
                            "slash of {v}: infraction epoch {infraction}, {bps} bps, jail {jail}; expected ({epoch}, 2000, true)"
                        ));
                    }
                    if !self.slashed.insert((epoch, v)) {
                        self.fail(format!("validator {v} slashed twice in epoch {epoch}"));
                    }
                    self.expected_supply -= burned;
                    self.stats.slashes += 1;
                    self.stats.burned_by_slashes += burned;
                    in_range_evidence_slashes += 1;
                }
                _ => {}
            }
        }
        if downtime_events != downtime_slashes {
            self.fail(format!("{downtime_events} downtime events but {downtime_slashes} downtime slashes by staking"));
        }
        let in_range = block.block.evidence.iter().filter(|e| {
            let epoch = (height - 1) / EPOCH;
            let len = self.ledger.validator_set(epoch).unwrap().map_or(0, |s| s.len());
            (e.offender as usize) < len
        });
        let in_range_count = in_range.count();
        if in_range_evidence_slashes > in_range_count as u64 {
            self.fail(format!("{in_range_evidence_slashes} slashes from fewer pieces of in-range evidence"));
        }
        let out_of_range = block.block.evidence.len() - in_range_count;
        if ignored < out_of_range {
            self.fail(format!("{out_of_range} pieces of evidence out of the set's range, {ignored} ignored"));
        }
        for id in vetoed {
            let deposit = *self.deposits.get(&id).unwrap_or_else(|| self.fail(format!("proposal {id} vetoed, its deposit unknown")));
            self.expected_supply -= deposit;
        }
        if height % EPOCH == 0 {
            // The reward end_epoch minted uses the parameters in force after end_block.
            self.expected_supply += self.staking_param("reward_per_epoch");
            self.stats.rewards += 1;
            let (now, next) = (self.ledger.validator_set(height / EPOCH - 1).unwrap(), self.ledger.validator_set(height / EPOCH).unwrap());
            let members = |set: Option<Vec<ValidatorEntry>>| set.unwrap_or_default().into_iter().map(|v| v.identity).collect::<Vec<_>>();
            if members(now) != members(next) {
                self.stats.set_changes += 1;
            }
        }
    }

    /// A passed proposal due at this height ran in it: executed, or failed with its action's
    /// error (and the matching event), never left unfinished.
    fn check_executions(&mut self, block: &ExecutedBlock, height: Height) {
        let due: Vec<u64> = self.passed.iter().filter(|(_, at)| **at == height).map(|(id, _)| *id).collect();
        for id in due {
            self.passed.remove(&id);
            let info: ProposalInfo = serde_json::from_slice(&self.query("governance", "proposal", &id.to_le_bytes()).unwrap()).unwrap();
            let event = |topic: &[u8]| {
                block
                    .hook_events
                    .iter()
                    .any(|e| e.topic == topic && codec::decode::<u64>("id", &e.data[..8.min(e.data.len())], 8).is_ok_and(|x| x == id))
            };
            match &info.status {
                Status::Executed { height: h } if *h == height && event(b"governance/executed") => {}
                Status::Failed { height: h, reason } if *h == height && reason != UNFINISHED && event(b"governance/execution_failed") => {}
                other => self.fail(format!("proposal {id} was due at this height and is {other:?} (title {:?})", info.title)),
            }
        }
    }

    /// The sum of the known accounts' balances equals the expected supply, and no account
    /// outside them holds anything after the block.
    fn check_supply(&self, block: &ExecutedBlock) {
        for (address, account) in &block.changes.accounts {
            if !self.known.contains(address) && account.balance != 0 {
                self.fail(format!("account {address} outside the simulation's accounts holds {}", account.balance));
            }
        }
        let held: Amount = self.known.iter().map(|a| self.ledger.account(a).unwrap().balance).sum();
        if held != self.expected_supply {
            let diff = held as i128 - self.expected_supply as i128;
            self.fail(format!(
                "supply: the accounts hold {held}, genesis + minted − burned is {} (difference {diff})",
                self.expected_supply
            ));
        }
    }

    fn run(mut self, blocks: u64) -> (Vec<Hash>, Stats) {
        for _ in 0..blocks {
            self.step();
        }
        // Newly registered validators must be in staking's records.
        for (identity, _) in &self.validators {
            if self.validator(identity).is_none() {
                self.fail(format!("validator {identity} registered successfully but staking does not know it"));
            }
        }
        (self.roots, self.stats)
    }
}

fn blocks_or(default: u64) -> u64 {
    std::env::var("AETHER_SIM_BLOCKS").ok().map_or(default, |b| b.parse().expect("AETHER_SIM_BLOCKS is a number"))
}

fn seeds_or(default: std::ops::Range<u64>) -> Vec<u64> {
    match std::env::var("AETHER_SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("AETHER_SIM_SEED is a number")],
        Err(_) => default.collect(),
    }
}

fn simulate(seeds: &[u64], blocks: u64) -> Stats {
    let mut total = Stats::default();
    for &seed in seeds {
        let (_, stats) = Sim::new(seed, Backend::Memory).run(blocks);
        total.add(&stats);
    }
    eprintln!("{} seed(s) × {blocks} blocks: {total:#?}", seeds.len());
    total
}

#[test]
fn random_operations_keep_every_invariant_after_every_block() {
    let seeds = seeds_or(1..4);
    let stats = simulate(&seeds, blocks_or(60));
    if seeds.len() > 1 {
        // The mix is not vacuous: each kind of operation succeeded and failed somewhere, and
        // slashes, tallies and epoch changes happened.
        for kind in ["delegate", "unbond", "register", "submit", "vote"] {
            let (ok, failed) = stats.ops.get(kind).copied().unwrap_or_default();
            assert!(ok > 0 && failed > 0, "{kind}: {ok} succeeded, {failed} failed");
        }
        assert!(stats.ops["transfer"].0 > 0 && stats.ops["unjail"].0 + stats.ops["unjail"].1 > 0);
        assert!(stats.slashes > 0 && stats.evidence_out_of_range > 0, "{stats:?}");
        assert!(stats.downtime_slashes > 0, "validators that mostly miss are slashed for downtime: {stats:?}");
        assert!(stats.tallies.len() >= 2 && stats.executed > 0, "{stats:?}");
        assert!(stats.set_changes > 0);
    }
}

#[test]
fn the_same_seed_gives_the_same_state_roots_on_every_store_and_vm() {
    let seed = seeds_or(7..8)[0];
    let blocks = blocks_or(60);
    let (memory, _) = Sim::new(seed, Backend::Memory).run(blocks);
    for backend in [Backend::RocksWasmtime, Backend::ParityWasmer] {
        let (roots, _) = Sim::new(seed, backend).run(blocks);
        assert_eq!(roots.len(), memory.len());
        if let Some(i) = (0..roots.len()).find(|&i| roots[i] != memory[i]) {
            panic!("seed {seed}: {backend:?} reached another state root than Memory at height {}", i + 1);
        }
    }
}

/// `cargo test -p aether-tests --test module_simulation -- --ignored`
#[test]
#[ignore = "long: 20 seeds × 500 blocks"]
fn long_run_many_seeds() {
    simulate(&seeds_or(100..120), blocks_or(500));
}
