//! The deterministic consensus simulator: N engines, each behind the real [`Driver`], on one
//! thread, in virtual time, over a seeded link model.
//!
//! Status: links (latency, jitter, loss, duplication; reordering follows from jitter),
//! partitions that form and heal, crash and restart with the persisted safety state, and the
//! engine-agnostic Byzantine behaviours in [`Behaviour`]. Checkers: agreement, validity,
//! liveness ([`Report`]). Equivocation and double votes are produced by running two honest
//! engines with one key that build different blocks: [`Behaviour::Equivocator`] (both heard by
//! everyone) and [`Behaviour::Twin`] (each heard by half the network). That is how real
//! equivocation happens, and it needs no knowledge of the engine's messages.
//!
//! Same seed, same run: every random choice comes from one seeded generator, time is virtual,
//! and events at one instant are ordered by a sequence number. A failing run prints its seed.
//!
//! ```
//! use aether_node::solo::{SoloEngine, SoloSettings};
//! use aether_api::consensus::{ConsensusEngine, EngineContext};
//! use aether_testkit::sim::{EngineUnderTest, SimConfig, Simulation};
//! use aether_primitives::types::Keypair;
//!
//! struct Solo;
//! impl EngineUnderTest for Solo {
//!     fn consensus_key(&self, identity: &Keypair) -> Vec<u8> { identity.public().0.to_vec() }
//!     fn build(&self, ctx: &EngineContext) -> Box<dyn ConsensusEngine> {
//!         Box::new(SoloEngine::from_context(ctx, SoloSettings::default()).unwrap())
//!     }
//! }
//! let report = Simulation::new(&Solo, SimConfig { validators: 1, duration_ms: 10_000, ..SimConfig::default() }).run();
//! report.check_agreement().unwrap();
//! assert!(report.min_honest_height() >= 9, "a block a second: {}", report.min_honest_height());
//! ```

pub mod conformance;
pub mod epochs;
mod io;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub use epochs::{Members, SimEpochs};
pub use io::{NodeIo, SimBlock};

use epochs::Wire;

use crate::consensus::driver::Driver;
use crate::consensus::{BlockRef, ConsensusEngine, EngineContext, Input, LocalValidator, Validator, ValidatorIndex, ValidatorSet};
use crate::types::{Amount, Certificate, Hash, Height, Keypair, TimestampMs};

/// What the simulator needs from an engine: the key genesis lists for a validator, and an
/// engine built from a context (as the node's registry would).
pub trait EngineUnderTest {
    fn consensus_key(&self, identity: &Keypair) -> Vec<u8>;
    fn build(&self, ctx: &EngineContext) -> Box<dyn ConsensusEngine>;
    /// An engine whose leader of round `r` is `leaders[r - 1]` for the rounds `leaders` covers
    /// (the engine's own rule after that): what a [`SimConfig::twins`] plan scripts. `None`
    /// (the default): the engine cannot script its leaders, and plans run with its own.
    fn build_with_leaders(&self, _ctx: &EngineContext, _leaders: &[ValidatorIndex]) -> Option<Box<dyn ConsensusEngine>> {
        None
    }
    /// The round a wire message of this engine belongs to, if it names one: a twins plan
    /// partitions the network round by round.
    fn round_of(&self, _message: &[u8]) -> Option<u64> {
        None
    }
    /// An engine for `ctx` (whose `local` is `None`) that holds no key: what a full node or a
    /// light client checks commit certificates with. With one, every run checks that each
    /// block an honest validator committed is proven final by a certificate this observer
    /// accepts ([`Report::check_certificates`]). `None` (the default): no such check.
    fn build_observer(&self, _ctx: &EngineContext) -> Option<Box<dyn ConsensusEngine>> {
        None
    }
    /// The engine's persist-before-send rule, as a predicate the simulator applies to every
    /// message a validator sends: whether the safety state it persisted last covers that
    /// message. A message sent uncovered is a contract violation (a crash right after the
    /// send would let the restarted validator sign against it). `None` (the default): no check.
    fn persist_check(&self) -> Option<PersistCheck> {
        None
    }
}

/// See [`EngineUnderTest::persist_check`]: `(sender, last persisted state, message) -> covered`.
pub type PersistCheck = fn(ValidatorIndex, Option<&[u8]>, &[u8]) -> bool;

/// One round of a [`SimConfig::twins`] plan: who leads it, and which nodes can talk. Nodes
/// are the simulator's slots, numbered validator by validator, a twinned validator taking two
/// consecutive numbers (n = 4 with validator 3 twinned: 0, 1, 2, 3 and 4 for the twins).
#[derive(Clone, Debug, PartialEq)]
pub struct RoundPlan {
    pub leader: ValidatorIndex,
    /// Nodes in different groups do not hear each other; a node in no group hears nobody.
    /// Messages that name no round ([`EngineUnderTest::round_of`]) are not held back.
    pub groups: Vec<Vec<usize>>,
}

/// How messages travel between two nodes. Each message is delayed independently by
/// `latency_ms ± jitter_ms` (so messages overtake each other), dropped with probability
/// `loss`, and delivered twice with probability `duplicate`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkModel {
    pub latency_ms: u64,
    pub jitter_ms: u64,
    pub loss: f64,
    pub duplicate: f64,
}

impl LinkModel {
    /// Instant, lossless delivery: pure protocol cost.
    pub const IDEAL: LinkModel = LinkModel { latency_ms: 0, jitter_ms: 0, loss: 0.0, duplicate: 0.0 };
    /// The default: a data-centre-to-data-centre link.
    pub const DEFAULT: LinkModel = LinkModel { latency_ms: 50, jitter_ms: 20, loss: 0.01, duplicate: 0.01 };
    /// Slow and lossy: 200 ± 150 ms, half the messages lost.
    pub const SLOW_LOSSY: LinkModel = LinkModel { latency_ms: 200, jitter_ms: 150, loss: 0.5, duplicate: 0.05 };
}

/// Between `from_ms` and `until_ms`, messages between different groups are dropped.
/// Validators in no group are cut off from everyone.
#[derive(Clone, Debug, PartialEq)]
pub struct Partition {
    pub from_ms: TimestampMs,
    pub until_ms: TimestampMs,
    pub groups: Vec<Vec<ValidatorIndex>>,
}

/// Validator `validator` stops at `at_ms` (unclean: unpersisted state is lost) and, if
/// `restart_at_ms` is set, starts again from what it persisted.
#[derive(Clone, Debug, PartialEq)]
pub struct Crash {
    pub validator: ValidatorIndex,
    pub at_ms: TimestampMs,
    pub restart_at_ms: Option<TimestampMs>,
}

/// How a validator behaves. All but `Honest` count against the fault bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    Honest,
    /// Never starts: its stake is missing from every quorum.
    Offline,
    /// Runs, but every message it sends is dropped.
    Silent,
    /// Sends what the engine says, and also replays old messages it sent, later, to everyone.
    Replayer,
    /// Sends what the engine says with signatures broken (bytes flipped in each message).
    Forger,
    /// Two engines with this validator's key, each seeing half of the other validators
    /// (split views: each half is led to believe its copy is the only one).
    Twin,
    /// Two engines with this validator's key that build different blocks, both heard by
    /// everyone: an equivocating leader (two proposals in each round it leads) and a double
    /// voter (each copy votes for its own block, so two votes in those rounds).
    Equivocator,
    /// Runs an engine-specific attacker (built by the [`EngineUnderTest`], e.g. HotStuff's
    /// `mocks::Attack`); the network carries what it sends as it is.
    Attacker,
}

impl Behaviour {
    /// Runs as two engines sharing one key.
    pub fn is_duplicated(self) -> bool {
        matches!(self, Behaviour::Twin | Behaviour::Equivocator)
    }
}

#[derive(Clone, Debug)]
pub struct SimConfig {
    pub validators: usize,
    /// Stake per validator; empty means 1 each.
    pub stakes: Vec<Amount>,
    pub seed: u64,
    pub link: LinkModel,
    pub duration_ms: TimestampMs,
    pub partitions: Vec<Partition>,
    pub crashes: Vec<Crash>,
    pub behaviours: Vec<(ValidatorIndex, Behaviour)>,
    /// Stop early once every honest node committed this height (0: run the whole duration).
    pub stop_at_height: Height,
    /// If set, a validator that has just built a block (the leader) crashes at once and
    /// restarts this many ms later — unless another validator is already down.
    pub crash_leaders: Option<TimestampMs>,
    /// Keep every event of the run in [`Report::trace`] (to compare two runs of one seed).
    pub record_trace: bool,
    /// No load: blocks carry transactions only when some arrived (`transactions_at`). By
    /// default every block carries transactions, as on a busy chain, and engines are told
    /// transactions wait after start and after every commit (as a node with a full mempool is).
    pub idle: bool,
    /// Virtual times at which transactions reach every validator's mempool (each is then
    /// carried by the next block its holder builds, and engines are told they wait).
    pub transactions_at: Vec<TimestampMs>,
    /// A Twins plan (Bano et al., "Twins: BFT Systems Made Robust", OPODIS 2021): round `r`
    /// is led by `twins[r - 1].leader` and its messages travel within its groups; later
    /// rounds are led by the engine's own rule, with everyone connected. Validators with
    /// [`Behaviour::Twin`] then follow the plan instead of the half-and-half split.
    pub twins: Vec<RoundPlan>,
    /// The twins plan's partitions apply until then (the network heals: a plan can leave no
    /// round able to end, since validators move through rounds at different times).
    pub twins_until_ms: TimestampMs,
    /// Crash mid-step: each crash of [`SimConfig::crashes`] (and of `crash_leaders`) strikes
    /// right after the validator's next effect (a message, a persist or a commit), so later
    /// effects of that step are lost (a persist then a message: the message; a message then a
    /// persist: the persist), rather than between steps.
    pub crash_mid_step: bool,
    /// Run the checks that need the engine's help (default on): finality proofs of every
    /// commit by a key-less observer, and persist-before-send at every message. They cost
    /// about two QC verifications per block; benches of the engine's own cost turn them off.
    pub engine_checks: bool,
    /// Validator sets that change by epoch, one engine per epoch, block sync ([`epochs`]).
    /// `None` (the default): one set, from `validators` and `stakes`, for the whole run.
    /// Needs an engine with an observer ([`EngineUnderTest::build_observer`]); not with twins plans.
    pub epochs: Option<SimEpochs>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            validators: 4,
            stakes: vec![],
            seed: 0,
            link: LinkModel::DEFAULT,
            duration_ms: 60_000,
            partitions: vec![],
            crashes: vec![],
            behaviours: vec![],
            stop_at_height: 0,
            crash_leaders: None,
            record_trace: false,
            idle: false,
            transactions_at: vec![],
            twins: vec![],
            twins_until_ms: TimestampMs::MAX,
            crash_mid_step: false,
            engine_checks: true,
            epochs: None,
        }
    }
}

impl SimConfig {
    pub fn behaviour(&self, v: ValidatorIndex) -> Behaviour {
        self.behaviours.iter().find(|(i, _)| *i == v).map(|(_, b)| *b).unwrap_or(Behaviour::Honest)
    }
}

/// One running engine. Twins are two slots with the same validator index.
struct Slot {
    index: ValidatorIndex,
    behaviour: Behaviour,
    /// For twins: which half of the other validators this copy talks to (0 or 1).
    half: u8,
    driver: Option<Driver>,
    io: NodeIo,
    sent: Vec<Vec<u8>>,
    wakes: BTreeSet<TimestampMs>,
    built_seen: usize,
    /// The highest round of a message this slot sent (a twins plan routes by it).
    round: u64,
    /// A mid-step crash is armed: down this long once it happens (`None`: for good).
    restart_after: Option<Option<TimestampMs>>,
    /// When mid-step crashes struck (one may cut a run of commits short).
    crashed_mid_step: Vec<TimestampMs>,
    /// Epochs: messages of the next epoch, from their senders, kept until this slot starts it.
    early: VecDeque<(u64, ValidatorIndex, Vec<u8>)>,
    /// Epochs: when this slot last asked a peer for blocks.
    last_sync_request: Option<TimestampMs>,
    /// Epochs: the epoch boundaries after which this slot already crashed (`crash_after_boundary`).
    crashed_after: BTreeSet<u64>,
    /// Epochs: virtual time this slot started each epoch's engine (the first time).
    epoch_starts: BTreeMap<u64, TimestampMs>,
    /// Blocks this slot committed from block sync.
    synced: u64,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Deliver {
        to: usize,
        from: ValidatorIndex,
        bytes: Vec<u8>,
    },
    Wake {
        slot: usize,
    },
    Crash {
        slot: usize,
    },
    /// The slot's next effect is its last before a crash; it restarts `down` ms later.
    ArmCrash {
        slot: usize,
        down: Option<TimestampMs>,
    },
    Restart {
        slot: usize,
    },
    Transactions,
}

/// One event of a run as [`Report::trace`] keeps it: virtual time, the slot it happened to,
/// and what: a delivery (sender and the message's hash), a timer wake-up, a crash or a restart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceEvent {
    Deliver { at: TimestampMs, slot: usize, from: ValidatorIndex, message: Hash },
    Wake { at: TimestampMs, slot: usize },
    Crash { at: TimestampMs, slot: usize },
    Restart { at: TimestampMs, slot: usize },
    Transactions { at: TimestampMs },
}

/// A configured run. [`Simulation::run`] consumes it and returns the [`Report`].
pub struct Simulation<'a> {
    engine: &'a dyn EngineUnderTest,
    config: SimConfig,
    validators: ValidatorSet,
    genesis: BlockRef,
    identities: Vec<Keypair>,
    slots: Vec<Slot>,
    queue: BinaryHeap<Reverse<(TimestampMs, u64, Event)>>,
    seq: u64,
    now: TimestampMs,
    rng: StdRng,
    /// Messages delivered, dropped (loss or partition), duplicated.
    stats: [u64; 3],
    /// The honest validator that hears both copies of every twin.
    witness: ValidatorIndex,
    /// Set when virtual time stopped advancing (reported as a violation).
    livelock: Option<String>,
    trace: Vec<TraceEvent>,
    /// Key-less engines that check certificates of each epoch's set (block sync, the report).
    observers: HashMap<(u64, Members), Box<dyn ConsensusEngine>>,
    /// Crashes of a validator that had just built an epoch's last block.
    boundary_crashes: u64,
}

/// Events one virtual instant may hold before the run is declared a livelock.
const MAX_EVENTS_PER_INSTANT: u64 = 200_000;

/// The chain id of every simulated chain.
pub const SIM_CHAIN_ID: &str = "aether-sim";

/// The genesis block of the simulated chain of `seed` (each seed is its own chain).
pub fn sim_genesis(seed: u64) -> BlockRef {
    BlockRef { hash: Hash::digest(b"aether/sim-genesis", &seed.to_le_bytes()), height: 0 }
}

/// Identity of simulated validator `i`: fixed, so that runs are comparable across seeds.
pub fn validator_identity(i: usize) -> Keypair {
    Keypair::from_seed(Hash::digest(b"aether/sim-validator", &(i as u64).to_le_bytes()).0)
}

impl<'a> Simulation<'a> {
    pub fn new(engine: &'a dyn EngineUnderTest, config: SimConfig) -> Simulation<'a> {
        let identities: Vec<Keypair> = (0..config.validators).map(validator_identity).collect();
        let validators = ValidatorSet::new(
            identities
                .iter()
                .enumerate()
                .map(|(i, k)| Validator {
                    name: format!("v{i}"),
                    identity: k.public(),
                    address: k.address(),
                    consensus_key: engine.consensus_key(k),
                    stake: config.stakes.get(i).copied().unwrap_or(1),
                })
                .collect(),
        );
        let genesis = sim_genesis(config.seed);
        let rng = StdRng::seed_from_u64(config.seed);
        let mut sim = Simulation {
            engine,
            config,
            validators,
            genesis,
            identities,
            slots: vec![],
            queue: BinaryHeap::new(),
            seq: 0,
            now: 0,
            rng,
            stats: [0; 3],
            witness: 0,
            livelock: None,
            trace: vec![],
            observers: HashMap::new(),
            boundary_crashes: 0,
        };
        assert!(
            sim.config.epochs.is_none() || sim.config.twins.is_empty(),
            "a twins plan scripts rounds of one engine; it does not run across epochs"
        );
        sim.witness = (0..sim.config.validators as ValidatorIndex).find(|v| sim.config.behaviour(*v) == Behaviour::Honest).unwrap_or(0);
        for i in 0..sim.config.validators as ValidatorIndex {
            let behaviour = sim.config.behaviour(i);
            let copies = if behaviour.is_duplicated() { 2 } else { 1 };
            for half in 0..copies {
                let mut io = NodeIo::new(i, genesis);
                // Copies of one key (twins, equivocators) hold each other's messages: the rule
                // is one validator's, checked on honest ones.
                io.persist_check = if behaviour == Behaviour::Honest && sim.config.engine_checks { engine.persist_check() } else { None };
                io.loaded = !sim.config.idle;
                // The second copy's blocks differ from the first's (same parent, another nonce).
                io.nonce = u64::from(half) << 32;
                if let Some(epochs) = &sim.config.epochs {
                    io.schedule = Some(epochs.clone());
                    io.sets.insert(0, epochs.members(0, &BTreeSet::new()));
                }
                sim.slots.push(Slot {
                    index: i,
                    behaviour,
                    half,
                    driver: None,
                    io,
                    sent: vec![],
                    wakes: BTreeSet::new(),
                    built_seen: 0,
                    round: 0,
                    restart_after: None,
                    crashed_mid_step: vec![],
                    early: VecDeque::new(),
                    last_sync_request: None,
                    crashed_after: BTreeSet::new(),
                    epoch_starts: BTreeMap::new(),
                    synced: 0,
                });
            }
        }
        for s in 0..sim.slots.len() {
            if sim.slots[s].behaviour != Behaviour::Offline {
                sim.schedule(0, Event::Restart { slot: s });
            }
        }
        for at in sim.config.transactions_at.clone() {
            sim.schedule(at, Event::Transactions);
        }
        for c in sim.config.crashes.clone() {
            for s in 0..sim.slots.len() {
                if sim.slots[s].index == c.validator {
                    let down = c.restart_at_ms.map(|at| at.saturating_sub(c.at_ms));
                    sim.crash_at(c.at_ms, s, down);
                }
            }
        }
        sim
    }

    /// Crashes `slot` at `at` (mid-step if so configured), restarting it `down` ms later.
    fn crash_at(&mut self, at: TimestampMs, slot: usize, down: Option<TimestampMs>) {
        if self.config.crash_mid_step {
            self.schedule(at, Event::ArmCrash { slot, down });
            return;
        }
        self.schedule(at, Event::Crash { slot });
        if let Some(down) = down {
            self.schedule(at + down, Event::Restart { slot });
        }
    }

    fn schedule(&mut self, at: TimestampMs, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, event)));
    }

    fn context(&self, index: ValidatorIndex) -> EngineContext {
        EngineContext {
            chain_id: SIM_CHAIN_ID.into(),
            genesis: self.genesis.hash,
            validators: self.validators.clone(),
            local: Some(LocalValidator { index, identity: self.identities[index as usize].clone() }),
            epoch: Default::default(),
        }
    }

    /// The set of `members` (`(validator, stake)` in index order).
    fn set_of(&self, members: &[(ValidatorIndex, Amount)]) -> ValidatorSet {
        ValidatorSet::new(
            members
                .iter()
                .map(|(v, stake)| {
                    let k = &self.identities[*v as usize];
                    Validator {
                        name: format!("v{v}"),
                        identity: k.public(),
                        address: k.address(),
                        consensus_key: self.engine.consensus_key(k),
                        stake: *stake,
                    }
                })
                .collect(),
        )
    }

    /// The context of `epoch`'s engine with set `members`, for `signer` (`None`: key-less).
    fn epoch_context(&self, epoch: u64, members: &[(ValidatorIndex, Amount)], signer: Option<ValidatorIndex>) -> EngineContext {
        let schedule = self.config.epochs.as_ref().expect("a chain with epochs");
        let local = signer.and_then(|v| {
            let index = members.iter().position(|(m, _)| *m == v)?;
            Some(LocalValidator { index: index as ValidatorIndex, identity: self.identities[v as usize].clone() })
        });
        EngineContext {
            chain_id: SIM_CHAIN_ID.into(),
            genesis: self.genesis.hash,
            validators: self.set_of(members),
            local,
            epoch: crate::consensus::EpochRange {
                number: epoch,
                first_height: schedule.first_height(epoch),
                last_height: Some(schedule.last_height(epoch)),
            },
        }
    }

    /// Whether `certificate` proves `block` final under the set `members` of its epoch.
    fn verify_in_epoch(
        &mut self,
        epoch: u64,
        members: &[(ValidatorIndex, Amount)],
        block: &BlockRef,
        certificate: &crate::types::Certificate,
    ) -> Result<(), String> {
        let key = (epoch, members.to_vec());
        if !self.observers.contains_key(&key) {
            let ctx = self.epoch_context(epoch, members, None);
            let observer = self.engine.build_observer(&ctx).ok_or("the engine has no key-less observer to check certificates with")?;
            self.observers.insert(key.clone(), observer);
        }
        self.observers[&key].verify_certificate(block, certificate).map_err(|e| e.to_string())
    }

    /// Runs to the configured end (or until every honest node reached `stop_at_height`).
    pub fn run(mut self) -> Report {
        let mut same_instant = 0u64;
        while let Some(Reverse((at, _, event))) = self.queue.pop() {
            if at > self.config.duration_ms {
                break;
            }
            same_instant = if at == self.now { same_instant + 1 } else { 0 };
            if same_instant > MAX_EVENTS_PER_INSTANT {
                // Virtual time stopped advancing: an engine (or the simulator) loops on itself.
                let what = format!("{event:?}");
                self.livelock = Some(format!(
                    "livelock: more than {MAX_EVENTS_PER_INSTANT} events at {at} ms without time advancing (last: {})",
                    what.chars().take(200).collect::<String>()
                ));
                break;
            }
            self.now = at;
            for s in &mut self.slots {
                s.io.now = at;
            }
            if self.config.record_trace {
                self.trace.push(match &event {
                    Event::Deliver { to, from, bytes } => {
                        TraceEvent::Deliver { at, slot: *to, from: *from, message: Hash::digest(b"aether/sim-trace", bytes) }
                    }
                    Event::Wake { slot } => TraceEvent::Wake { at, slot: *slot },
                    Event::Crash { slot } | Event::ArmCrash { slot, .. } => TraceEvent::Crash { at, slot: *slot },
                    Event::Restart { slot } => TraceEvent::Restart { at, slot: *slot },
                    Event::Transactions => TraceEvent::Transactions { at },
                });
            }
            match event {
                Event::Restart { slot } => {
                    if self.slots[slot].driver.is_none() {
                        self.start(slot);
                    }
                }
                Event::Crash { slot } => {
                    let s = &mut self.slots[slot];
                    s.driver = None;
                    s.io.crash();
                    s.wakes.clear();
                    s.early.clear();
                }
                Event::ArmCrash { slot, down } => {
                    let s = &mut self.slots[slot];
                    if s.driver.is_some() && s.restart_after.is_none() {
                        s.io.crash_armed = true;
                        s.restart_after = Some(down);
                    }
                }
                Event::Wake { slot } => {
                    self.slots[slot].wakes.remove(&at);
                    let s = &mut self.slots[slot];
                    if let Some(driver) = s.driver.as_mut() {
                        let _ = driver.fire_due_timers(at, &mut s.io);
                    }
                    self.after_step(slot);
                }
                Event::Transactions => {
                    for slot in 0..self.slots.len() {
                        let s = &mut self.slots[slot];
                        s.io.pending = true;
                        let running = match s.driver.as_mut() {
                            Some(driver) => {
                                let _ = driver.handle(at, Input::TransactionsWaiting, &mut s.io);
                                true
                            }
                            None => false,
                        };
                        if running {
                            self.after_step(slot);
                        }
                    }
                }
                Event::Deliver { to, from, bytes } if self.config.epochs.is_some() => self.deliver_on_epoch_chain(to, from, bytes),
                Event::Deliver { to, from, bytes } => {
                    let s = &mut self.slots[to];
                    if let Some(driver) = s.driver.as_mut() {
                        self.stats[0] += 1;
                        let _ = driver.handle(at, Input::Message { from, bytes }, &mut s.io);
                        self.after_step(to);
                    }
                }
            }
            if self.config.stop_at_height > 0 && self.honest_slots().all(|s| s.io.head().height >= self.config.stop_at_height) {
                break;
            }
        }
        self.report()
    }

    fn honest_slots(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter().filter(|s| s.behaviour == Behaviour::Honest)
    }

    fn start(&mut self, slot: usize) {
        if self.config.epochs.is_some() {
            return self.start_epoch_engine(slot);
        }
        let ctx = self.context(self.slots[slot].index);
        let leaders: Vec<ValidatorIndex> = self.config.twins.iter().map(|r| r.leader).collect();
        let engine = if leaders.is_empty() { None } else { self.engine.build_with_leaders(&ctx, &leaders) };
        let mut driver = Driver::new(engine.unwrap_or_else(|| self.engine.build(&ctx)));
        let s = &mut self.slots[slot];
        let (committed, certificate) = s.io.committed.last().cloned().expect("genesis");
        let input = Input::Start { committed, certificate, safety_state: s.io.persisted.clone() };
        let _ = driver.handle(self.now, input, &mut s.io);
        if s.io.loaded || s.io.pending {
            let _ = driver.handle(self.now, Input::TransactionsWaiting, &mut s.io);
        }
        s.driver = Some(driver);
        self.after_step(slot);
    }

    /// Sends what the slot's engine emitted, and schedules its next timer.
    fn after_step(&mut self, slot: usize) {
        // A loaded node's mempool still holds transactions after a commit: tell its engine.
        let s = &mut self.slots[slot];
        if std::mem::take(&mut s.io.committed_since_check) && (s.io.loaded || s.io.pending) {
            if let Some(driver) = s.driver.as_mut() {
                let _ = driver.handle(self.now, Input::TransactionsWaiting, &mut s.io);
            }
        }
        let outbox = std::mem::take(&mut self.slots[slot].io.outbox);
        let (from, behaviour, half) = (self.slots[slot].index, self.slots[slot].behaviour, self.slots[slot].half);
        for (to, mut bytes) in outbox {
            if self.planning() {
                let round = self.engine.round_of(&bytes).unwrap_or(0);
                let s = &mut self.slots[slot];
                s.round = s.round.max(round);
            }
            match behaviour {
                Behaviour::Silent | Behaviour::Offline => continue,
                Behaviour::Forger => {
                    // Keep the message's shape (so it decodes) but break what it proves.
                    if let Some(b) = bytes.last_mut() {
                        *b ^= 0x5a;
                    }
                }
                Behaviour::Replayer => {
                    // Replay something old alongside each new message.
                    if !self.slots[slot].sent.is_empty() {
                        let i = self.rng.gen_range(0..self.slots[slot].sent.len());
                        let old = self.slots[slot].sent[i].clone();
                        self.transmit(slot, from, None, half, behaviour, old);
                    }
                    self.slots[slot].sent.push(bytes.clone());
                }
                Behaviour::Honest | Behaviour::Twin | Behaviour::Equivocator | Behaviour::Attacker => {}
            }
            self.transmit(slot, from, to, half, behaviour, bytes);
        }
        if std::mem::take(&mut self.slots[slot].io.crashed) {
            // The process died inside this step: what it sent before dying is on its way.
            let s = &mut self.slots[slot];
            s.driver = None;
            s.io.crash();
            s.wakes.clear();
            s.early.clear();
            s.crashed_mid_step.push(self.now);
            if let Some(Some(down)) = s.restart_after.take() {
                self.schedule(self.now + down, Event::Restart { slot });
            }
            return;
        }
        if self.slots[slot].io.epoch_ended.is_some() {
            return self.end_epoch(slot);
        }
        self.crash_boundary_leader(slot);
        if let Some(downtime) = self.config.crash_leaders {
            let built = self.slots[slot].io.built.len();
            let anyone_down = self.slots.iter().any(|s| s.driver.is_none() || s.restart_after.is_some());
            if built > self.slots[slot].built_seen && !anyone_down && self.slots[slot].behaviour == Behaviour::Honest {
                self.slots[slot].built_seen = built;
                self.crash_at(self.now, slot, Some(downtime));
            }
        }
        let next = self.slots[slot].driver.as_ref().and_then(|d| d.next_deadline());
        if let Some(at) = next {
            let at = at.max(self.now);
            if self.slots[slot].wakes.insert(at) {
                self.schedule(at, Event::Wake { slot });
            }
        }
    }

    fn transmit(
        &mut self,
        from_slot: usize,
        from: ValidatorIndex,
        to: Option<ValidatorIndex>,
        half: u8,
        behaviour: Behaviour,
        bytes: Vec<u8>,
    ) {
        // Under a twins plan, the round the sender is in decides who hears it (a message that
        // names no round, such as a request for a missing block, always passes).
        let round = if self.planning() && self.engine.round_of(&bytes).is_some() { self.slots[from_slot].round } else { 0 };
        let plan = round.checked_sub(1).and_then(|r| self.config.twins.get(r as usize)).cloned();
        let bytes = match self.config.epochs {
            Some(_) => crate::codec::encode(&Wire::Consensus { epoch: self.slots[from_slot].io.epoch, bytes }),
            None => bytes,
        };
        for target in 0..self.slots.len() {
            let t = &self.slots[target];
            if target == from_slot || to.is_some_and(|to| to != t.index) {
                continue;
            }
            if let Some(plan) = &plan {
                if !plan.groups.iter().any(|g| g.contains(&from_slot) && g.contains(&target)) {
                    self.stats[1] += 1;
                    continue;
                }
            }
            // A twin talks to one half of the others (and both copies to a witness, who can
            // then see the equivocation); its copies do not talk to each other.
            let witness = self.witness;
            let halves = self.config.twins.is_empty();
            if behaviour == Behaviour::Twin && (t.index == from || (halves && t.index % 2 != u32::from(half) && t.index != witness)) {
                continue;
            }
            if halves && t.behaviour == Behaviour::Twin && from % 2 != u32::from(t.half) && from != witness {
                continue;
            }
            // An equivocator's copies are heard by everyone but not by each other.
            if behaviour == Behaviour::Equivocator && t.index == from {
                continue;
            }
            if self.cut(from, t.index) || self.rng.gen_bool(self.config.link.loss) {
                self.stats[1] += 1;
                continue;
            }
            let copies = if self.rng.gen_bool(self.config.link.duplicate) { 2 } else { 1 };
            self.stats[2] += copies - 1;
            for _ in 0..copies {
                let link = self.config.link;
                let delay = link.latency_ms + self.rng.gen_range(0..=2 * link.jitter_ms) - link.jitter_ms.min(link.latency_ms);
                self.schedule(self.now + delay, Event::Deliver { to: target, from, bytes: bytes.clone() });
            }
        }
    }

    /// A twins plan is in force (it has rounds, and the network has not healed yet).
    fn planning(&self) -> bool {
        !self.config.twins.is_empty() && self.now < self.config.twins_until_ms
    }

    fn cut(&self, a: ValidatorIndex, b: ValidatorIndex) -> bool {
        self.config
            .partitions
            .iter()
            .any(|p| p.from_ms <= self.now && self.now < p.until_ms && !p.groups.iter().any(|g| g.contains(&a) && g.contains(&b)))
    }

    /// Blocks honest validators committed that no certificate proves final to a key-less
    /// observer: a block's own certificate, or (an ancestor decided through a descendant) that
    /// of the next later block whose certificate proves it, committed at the same instant (one
    /// decision commits a run of blocks at once) or after a mid-step crash cut that run short.
    /// Each distinct certificate is checked once.
    fn unproven_commits(&mut self) -> Vec<String> {
        if !self.config.engine_checks {
            return vec![];
        }
        let ctx = EngineContext { local: None, ..self.context(0) };
        let Some(observer) = self.engine.build_observer(&ctx) else { return vec![] };
        // On a chain with epochs, each block is checked with a key-less engine of its own
        // epoch's set, as the committing node recorded it.
        let check = |sim: &mut Self, sets: &BTreeMap<u64, Members>, block: &BlockRef, cert: &crate::types::Certificate| match sim
            .config
            .epochs
            .clone()
        {
            None => observer.verify_certificate(block, cert).map_err(|e| e.to_string()),
            Some(schedule) => {
                let epoch = schedule.epoch_of(block.height);
                let members = sets.get(&epoch).cloned().unwrap_or_default();
                sim.verify_in_epoch(epoch, &members, block, cert)
            }
        };
        let mut accepted: std::collections::HashMap<(Hash, Vec<u8>), bool> = std::collections::HashMap::new();
        let mut unproven = vec![];
        let honest: Vec<usize> = (0..self.slots.len()).filter(|i| self.slots[*i].behaviour == Behaviour::Honest).collect();
        for slot in honest {
            let committed = self.slots[slot].io.committed.clone();
            let sets = self.slots[slot].io.sets.clone();
            let index = self.slots[slot].index;
            let mut proven_after = None;
            for i in (1..committed.len()).rev() {
                let (block, cert) = &committed[i];
                let at = self.slots[slot].io.commit_times[i];
                let key = (block.hash, cert.0.clone());
                let ok = match accepted.get(&key) {
                    Some(ok) => *ok,
                    None => {
                        let ok = check(self, &sets, block, cert).is_ok();
                        accepted.insert(key, ok);
                        ok
                    }
                };
                let cut_short = self.slots[slot].crashed_mid_step.contains(&at) && proven_after.is_some();
                if ok {
                    proven_after = Some(at);
                } else if proven_after != Some(at) && !cut_short {
                    let why = check(self, &sets, block, cert).err().unwrap_or_default();
                    unproven
                        .push(format!("validator {index} committed height {} with no certificate proving it final: {why}", block.height));
                }
            }
        }
        unproven
    }

    fn report(mut self) -> Report {
        if let Some(l) = self.livelock.take() {
            for s in &mut self.slots {
                s.io.violations.push(l.clone());
            }
        }
        let unproven = self.unproven_commits();
        Report {
            unproven,
            epochs: self.config.epochs.clone(),
            boundary_crashes: self.boundary_crashes,
            seed: self.config.seed,
            end_ms: self.now,
            nodes: self
                .slots
                .into_iter()
                .map(|s| NodeReport {
                    index: s.index,
                    behaviour: s.behaviour,
                    committed: s.io.committed,
                    commit_times: s.io.commit_times,
                    built: s.io.built,
                    built_times: s.io.built_times,
                    carrying: s.io.carrying,
                    evidence: s.io.evidence,
                    violations: s.io.violations,
                    persists: s.io.persists,
                    epoch_sets: s.io.sets,
                    accused_at: s.io.accused_at,
                    epoch_starts: s.epoch_starts,
                    synced: s.synced,
                })
                .collect(),
            delivered: self.stats[0],
            dropped: self.stats[1],
            duplicated: self.stats[2],
            trace: self.trace,
        }
    }
}

#[derive(Debug)]
pub struct NodeReport {
    pub index: ValidatorIndex,
    pub behaviour: Behaviour,
    pub committed: Vec<(BlockRef, Certificate)>,
    pub commit_times: Vec<TimestampMs>,
    pub built: Vec<Hash>,
    /// Virtual time each block in `built` was built.
    pub built_times: Vec<TimestampMs>,
    /// The blocks in `built` that carry transactions.
    pub carrying: Vec<Hash>,
    /// Misbehaviour this node's engine reported.
    pub evidence: Vec<crate::consensus::Evidence>,
    pub violations: Vec<String>,
    pub persists: u64,
    /// Epochs: the set this node computed for each epoch it reached, `(validator, stake)`.
    pub epoch_sets: BTreeMap<u64, Members>,
    /// Epochs: the height of the first committed block whose evidence accused each validator.
    pub accused_at: BTreeMap<ValidatorIndex, Height>,
    /// Epochs: virtual time this node first started each epoch's engine.
    pub epoch_starts: BTreeMap<u64, TimestampMs>,
    /// Blocks this node committed from block sync.
    pub synced: u64,
}

/// One epoch change as a run saw it (virtual ms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochChange {
    /// The epoch that began.
    pub epoch: u64,
    /// From the first honest commit of the last block before it to the first honest commit
    /// of its first block.
    pub first_ms: TimestampMs,
    /// From the first honest commit of the last block before it until every honest node
    /// that committed that block also committed the epoch's first block.
    pub all_ms: TimestampMs,
}

/// What a run did, and the checkers over it. Every error message names the seed.
#[derive(Debug)]
pub struct Report {
    pub seed: u64,
    pub end_ms: TimestampMs,
    pub nodes: Vec<NodeReport>,
    pub delivered: u64,
    pub dropped: u64,
    pub duplicated: u64,
    /// Every event in order, when [`SimConfig::record_trace`] was set.
    pub trace: Vec<TraceEvent>,
    /// Commits no certificate proves final to a key-less observer (see
    /// [`EngineUnderTest::build_observer`]).
    pub unproven: Vec<String>,
    /// The run's epochs, if it had them.
    pub epochs: Option<SimEpochs>,
    /// Crashes of validators that had just built an epoch's last block.
    pub boundary_crashes: u64,
}

impl Report {
    fn honest(&self) -> impl Iterator<Item = &NodeReport> {
        self.nodes.iter().filter(|n| n.behaviour == Behaviour::Honest)
    }

    /// Agreement: no two honest nodes ever committed different blocks at one height, and no
    /// node broke the driver contract.
    pub fn check_agreement(&self) -> Result<(), String> {
        for n in &self.nodes {
            if let Some(v) = n.violations.first() {
                return Err(format!("seed {}: validator {} broke the engine contract: {v}", self.seed, n.index));
            }
        }
        let longest = self.honest().max_by_key(|n| n.committed.len()).map(|n| &n.committed);
        let Some(longest) = longest else { return Ok(()) };
        for n in self.honest() {
            for (i, (b, _)) in n.committed.iter().enumerate() {
                if longest[i].0 != *b {
                    return Err(format!(
                        "seed {}: agreement broken at height {}: validator {} committed {}, another honest validator {}",
                        self.seed, b.height, n.index, b.hash, longest[i].0.hash
                    ));
                }
            }
        }
        Ok(())
    }

    /// Validity: every committed block was built by some node in the run.
    pub fn check_validity(&self) -> Result<(), String> {
        let built: BTreeSet<&Hash> = self.nodes.iter().flat_map(|n| n.built.iter()).collect();
        for n in self.honest() {
            for (b, _) in n.committed.iter().skip(1) {
                if !built.contains(&b.hash) {
                    return Err(format!("seed {}: validator {} committed {} which nobody built", self.seed, n.index, b.hash));
                }
            }
        }
        Ok(())
    }

    /// Virtual milliseconds from the building of each block to its commit at honest validator
    /// `observer` (the first honest one if `None`), in height order: the commit latency.
    pub fn commit_latencies(&self, observer: Option<ValidatorIndex>) -> Vec<TimestampMs> {
        let built: std::collections::HashMap<&Hash, TimestampMs> =
            self.nodes.iter().flat_map(|n| n.built.iter().zip(n.built_times.iter().copied())).collect();
        let Some(node) = self.honest().find(|n| observer.is_none_or(|o| n.index == o)) else { return vec![] };
        node.committed
            .iter()
            .zip(&node.commit_times)
            .skip(1)
            .filter_map(|((b, _), t)| built.get(&b.hash).map(|at| t.saturating_sub(*at)))
            .collect()
    }

    /// The lowest committed height among honest nodes.
    pub fn min_honest_height(&self) -> Height {
        self.honest().map(|n| n.committed.last().map_or(0, |(b, _)| b.height)).min().unwrap_or(0)
    }

    pub fn max_height(&self) -> Height {
        self.nodes.iter().map(|n| n.committed.last().map_or(0, |(b, _)| b.height)).max().unwrap_or(0)
    }

    /// How long after `from_ms` (virtual time) the slowest honest validator took to commit
    /// `commits` blocks, a validator that reached `stop_height` counting as done then (a run
    /// stops there). `Err` names a validator that never got there, with the blocks it did commit.
    pub fn slowest_to_commit(&self, from_ms: TimestampMs, commits: u64, stop_height: Height) -> Result<TimestampMs, (u32, u64)> {
        let mut slowest = 0;
        for n in self.honest() {
            let after = n.commit_times.iter().skip(1).filter(|t| **t >= from_ms);
            let kth = usize::try_from(commits).ok().and_then(|k| k.checked_sub(1)).and_then(|k| after.clone().nth(k)).copied();
            // Reaching the stop height ends the run: done then (at the start if already there).
            let stopped = n
                .committed
                .iter()
                .zip(&n.commit_times)
                .find(|((b, _), _)| stop_height > 0 && b.height >= stop_height)
                .map(|(_, t)| (*t).max(from_ms));
            let done = match (kth, stopped) {
                (Some(a), Some(b)) => a.min(b),
                (Some(t), None) | (None, Some(t)) => t,
                // Zero commits asked for: done at once.
                (None, None) if commits == 0 => from_ms,
                (None, None) => return Err((n.index, after.count() as u64)),
            };
            slowest = slowest.max(done - from_ms);
        }
        Ok(slowest)
    }

    /// Liveness with a number: every honest validator commits at least `commits` blocks within
    /// `within_ms` of `from_ms` (or reaches `stop_height` by then).
    pub fn check_liveness(&self, from_ms: TimestampMs, within_ms: TimestampMs, commits: u64, stop_height: Height) -> Result<(), String> {
        match self.slowest_to_commit(from_ms, commits, stop_height) {
            Ok(took) if took <= within_ms => Ok(()),
            Ok(took) => Err(format!(
                "seed {}: liveness: an honest validator took {took} ms after {from_ms} ms to commit {commits} blocks (the scenario expects at most {within_ms} ms)",
                self.seed
            )),
            Err((index, count)) => Err(format!(
                "seed {}: liveness: validator {index} committed {count} blocks after {from_ms} ms (the scenario expects {commits} within {within_ms} ms)",
                self.seed
            )),
        }
    }

    /// Every block an honest validator committed is proven final by a certificate a key-less
    /// observer accepts (checked when the engine provides an observer).
    pub fn check_certificates(&self) -> Result<(), String> {
        match self.unproven.first() {
            Some(e) => Err(format!("seed {}: {e} ({} such commits)", self.seed, self.unproven.len())),
            None => Ok(()),
        }
    }

    /// Epochs: every honest node computed the same set for each epoch it reached (sets follow
    /// from the committed chain, so this is agreement seen through reconfiguration).
    pub fn check_epoch_sets(&self) -> Result<(), String> {
        let mut seen: BTreeMap<u64, (&Members, ValidatorIndex)> = BTreeMap::new();
        for n in self.honest() {
            for (epoch, set) in &n.epoch_sets {
                match seen.get(epoch) {
                    Some((other, by)) if *other != set => {
                        return Err(format!(
                            "seed {}: validators {by} and {} disagree on the set of epoch {epoch}: {other:?} against {set:?}",
                            self.seed, n.index
                        ));
                    }
                    Some(_) => {}
                    None => {
                        seen.insert(*epoch, (set, n.index));
                    }
                }
            }
        }
        Ok(())
    }

    /// Epochs: the set of `epoch`, `(validator, stake)`, as honest nodes computed it.
    pub fn epoch_set(&self, epoch: u64) -> Option<&Members> {
        self.honest().find_map(|n| n.epoch_sets.get(&epoch))
    }

    /// Epochs: each epoch change every honest node's chain shows, in order.
    pub fn epoch_changes(&self) -> Vec<EpochChange> {
        let Some(schedule) = &self.epochs else { return vec![] };
        let commit_time = |n: &NodeReport, height: Height| n.commit_times.get(usize::try_from(height).ok()?).copied();
        let mut changes = vec![];
        for epoch in 1.. {
            let (last, first) = (schedule.last_height(epoch - 1), schedule.first_height(epoch));
            let ended: Vec<TimestampMs> = self.honest().filter_map(|n| commit_time(n, last)).collect();
            let began: Vec<TimestampMs> = self.honest().filter_map(|n| commit_time(n, first)).collect();
            let (Some(ended_at), Some(began_at)) = (ended.iter().min(), began.iter().min()) else { break };
            let all_at =
                self.honest().filter(|n| commit_time(n, last).is_some()).map(|n| commit_time(n, first)).collect::<Option<Vec<_>>>();
            let Some(all_at) = all_at.and_then(|t| t.into_iter().max()) else { break };
            changes.push(EpochChange { epoch, first_ms: began_at - ended_at, all_ms: all_at - ended_at });
        }
        changes
    }

    /// Runs agreement, validity and the certificate check (and, with epochs, agreement on
    /// sets), and checks every honest node reached `min_height`.
    pub fn check(&self, min_height: Height) -> Result<(), String> {
        self.check_agreement()?;
        self.check_validity()?;
        self.check_certificates()?;
        self.check_epoch_sets()?;
        let h = self.min_honest_height();
        if h < min_height {
            return Err(format!(
                "seed {}: liveness: an honest validator is at height {h}, below {min_height} (highest {}; {} delivered, {} dropped)",
                self.seed,
                self.max_height(),
                self.delivered,
                self.dropped
            ));
        }
        Ok(())
    }
}
