//! HotStuff in the deterministic simulator: the framework's consensus conformance suite, and
//! checks specific to this engine.
//!
//! More seeds: `AETHER_SIM_SEEDS=500 cargo test --workspace --release --test simulation`;
//! one seed: `AETHER_SIM_SEED=17 cargo test --workspace --test simulation`.

// Test and bench code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aether_api::consensus::{ConsensusEngine, EngineContext, ValidatorSet};
use aether_consensus_hotstuff::messages::CommitCertificate;
use aether_consensus_hotstuff::mocks::{Attack, HotStuffUnderTest};
use aether_consensus_hotstuff::{HotStuffEngine, HotStuffSettings};
use aether_primitives::types::Certificate;
use aether_testkit::sim::conformance::{self, consensus_conformance, Options};
use aether_testkit::sim::{sim_genesis, validator_identity, Behaviour, Crash, LinkModel, SimConfig, SimEpochs, Simulation, SIM_CHAIN_ID};
use borsh::BorshDeserialize;

/// HotStuff with its default settings.
fn hotstuff() -> HotStuffUnderTest {
    HotStuffUnderTest::default()
}

#[test]
fn passes_the_consensus_conformance_suite() {
    let started = std::time::Instant::now();
    let summary = consensus_conformance(&hotstuff(), &Options::default());
    eprintln!("conformance: {} runs, {} blocks, {:.1} s", summary.runs, summary.blocks, started.elapsed().as_secs_f64());
    eprintln!("liveness: scenario | from | commits | slowest honest validator (all seeds) | bar");
    for (name, (took, bar)) in &summary.slowest {
        eprintln!("liveness: {name} | {} ms | {} | {took} ms | {} ms", bar.from_ms, bar.commits, bar.within_ms);
    }
    assert!(summary.runs > 0);
}

/// An engine for the validator set of the simulator's `n` validators on the chain of `seed`
/// that holds no key: what a full node (or a light client) checks certificates and evidence with.
fn observer(n: usize, seed: u64) -> HotStuffEngine {
    let validators = ValidatorSet::new(
        (0..n)
            .map(|i| {
                let k = validator_identity(i);
                aether_api::consensus::Validator {
                    name: format!("v{i}"),
                    identity: k.public(),
                    address: k.address(),
                    consensus_key: HotStuffEngine::consensus_key(&k),
                    stake: 1,
                }
            })
            .collect(),
    );
    let ctx = EngineContext {
        chain_id: SIM_CHAIN_ID.into(),
        genesis: sim_genesis(seed).hash,
        validators,
        local: None,
        epoch: Default::default(),
    };
    HotStuffEngine::from_context(&ctx, HotStuffSettings::default()).unwrap()
}

#[test]
fn every_commit_carries_a_certificate_other_nodes_accept() {
    let report = Simulation::new(&hotstuff(), SimConfig { seed: 3, duration_ms: 10_000, ..SimConfig::default() }).run();
    report.check(20).unwrap();
    // A validator-less engine (a full node) checks the certificates.
    let observer = observer(4, 3);
    let node = &report.nodes[0];
    let mut direct = 0;
    for (block, cert) in node.committed.iter().skip(1) {
        // Only a directly decided block's certificate proves finality alone; an ancestor's shows
        // it certified, and is refused (block sync proves it through the decided descendant).
        match CommitCertificate::try_from_slice(&cert.0).unwrap() {
            CommitCertificate::Direct { .. } => {
                observer.verify_certificate(block, cert).unwrap_or_else(|e| panic!("height {}: {e}", block.height));
                direct += 1;
            }
            CommitCertificate::Ancestor { .. } => {
                let e = observer.verify_certificate(block, cert).expect_err("an ancestor certificate is not proof of finality");
                assert!(e.to_string().contains("not decided"), "{e}");
            }
            CommitCertificate::Through { .. } => panic!("height {}: a chain without epochs has no epoch's last block", block.height),
        }
        // The certificate of one block never proves another.
        let other = node.committed[1].0;
        if other != *block {
            assert!(observer.verify_certificate(&other, cert).is_err());
        }
    }
    assert!(direct > 0, "the two-chain rule decided some blocks directly");
    let (decided, cert) = node
        .committed
        .iter()
        .find(|(_, c)| matches!(CommitCertificate::try_from_slice(&c.0), Ok(CommitCertificate::Direct { .. })))
        .unwrap();
    let mut forged = cert.clone();
    let last = forged.0.len() - 1;
    forged.0[last] ^= 1;
    assert!(observer.verify_certificate(decided, &forged).is_err(), "a flipped bit breaks the certificate");
    // A certified block that was never decided: its certificate without the decided child (the
    // Ancestor form) does not prove finality, even where the QC itself is valid.
    let CommitCertificate::Direct { header, qc, .. } = CommitCertificate::try_from_slice(&cert.0).unwrap() else { unreachable!() };
    let only_certified = Certificate(borsh::to_vec(&CommitCertificate::Ancestor { header, qc }).unwrap());
    assert!(observer.verify_certificate(decided, &only_certified).is_err(), "a certified-but-not-decided block is refused");
}

/// Runs `behaviour` as validator 3 of 4 for a few seeds; returns the evidence honest
/// validators reported, after checking each piece with a key-less observer.
fn evidence_against(behaviour: Behaviour) -> Vec<aether_api::consensus::Evidence> {
    let mut all = vec![];
    for seed in 1..=3 {
        let observer = observer(4, seed);
        let report =
            Simulation::new(&hotstuff(), SimConfig { seed, duration_ms: 20_000, behaviours: vec![(3, behaviour)], ..SimConfig::default() })
                .run();
        report.check(5).unwrap();
        for n in report.nodes.iter().filter(|n| n.behaviour == Behaviour::Honest) {
            for e in &n.evidence {
                assert_eq!(e.offender, 3, "only the faulty validator is ever accused: {e:?}");
                observer.verify_evidence(e).unwrap_or_else(|err| panic!("evidence {} does not verify: {err}", e.kind));
                let mut forged = e.clone();
                forged.offender = 2;
                assert!(observer.verify_evidence(&forged).is_err(), "evidence cannot be pinned on another validator");
                all.push(e.clone());
            }
        }
    }
    all
}

#[test]
fn twins_equivocation_is_reported_as_evidence_and_never_forks() {
    // Validator 3 runs as two copies, each talking to half the network (and one witness).
    let evidence = evidence_against(Behaviour::Twin);
    assert!(!evidence.is_empty(), "double votes or proposals by the twins were reported");
}

/// Enumerated Twins (validator 3 of 4 as two copies): every leader and network choice for
/// the first round, and every 24th plan over the first two rounds, then everyone connected.
/// `cargo test --workspace --test simulation -- --ignored twins_every_plan` runs all 2,704
/// two-round plans (about 11 minutes on 2 cores).
#[test]
fn twins_enumerated_plans_never_fork_and_recover() {
    let one = conformance::twins_enumeration(&hotstuff(), 1, 0..conformance::twins_plan_count(4, 1));
    let two = conformance::twins_enumeration(&hotstuff(), 2, (0..conformance::twins_plan_count(4, 2)).step_by(24));
    eprintln!(
        "twins enumerated: {} one-round plans, {} two-round plans, slowest {:?} ms",
        one.runs,
        two.runs,
        two.slowest.values().map(|(took, _)| *took).max()
    );
    assert_eq!((one.runs, two.runs), (52, 113));
}

#[test]
#[ignore = "2,704 runs: about 11 minutes on 2 cores"]
fn twins_every_plan_over_two_rounds_never_forks_and_recovers() {
    let summary = conformance::twins_enumeration(&hotstuff(), 2, 0..conformance::twins_plan_count(4, 2));
    eprintln!("twins enumerated: {} two-round plans, slowest {:?} ms", summary.runs, summary.slowest.values().map(|(took, _)| *took).max());
}

#[test]
fn an_equivocating_leader_and_double_voter_is_caught_and_never_forks() {
    // Validator 3 runs as two copies heard by everyone, building different blocks: two
    // proposals in every round it leads, and a vote from each copy for its own block.
    let evidence = evidence_against(Behaviour::Equivocator);
    let kinds: std::collections::BTreeSet<&str> = evidence.iter().map(|e| e.kind.as_str()).collect();
    assert!(kinds.contains("double-proposal"), "double proposals reported: {kinds:?}");
    assert!(kinds.contains("double-vote"), "double votes reported: {kinds:?}");
}

#[test]
fn a_restarted_validator_keeps_its_safety_state_and_catches_up() {
    let report = Simulation::new(
        &hotstuff(),
        SimConfig {
            seed: 9,
            duration_ms: 40_000,
            crashes: vec![aether_testkit::sim::Crash { validator: 1, at_ms: 5_000, restart_at_ms: Some(15_000) }],
            link: LinkModel::DEFAULT,
            ..SimConfig::default()
        },
    )
    .run();
    report.check(50).unwrap();
    let restarted = report.nodes.iter().find(|n| n.index == 1).unwrap();
    assert!(restarted.persists > 0);
    assert!(restarted.committed.last().unwrap().0.height + 5 >= report.max_height(), "it caught up");
}

/// The proposers of the blocks honest validator `node` committed.
fn committed_proposers(report: &aether_testkit::sim::Report, node: usize) -> Vec<u32> {
    report.nodes[node].committed.iter().skip(1).map(|(_, c)| CommitCertificate::try_from_slice(&c.0).unwrap().header().proposer).collect()
}

#[test]
fn a_grinding_leader_keeps_only_its_share_of_leadership() {
    // Validator 3 of 4 (equal stake) grinds: whenever its proposal would make it lead the next
    // round too, it rebuilds its block until its election of the round after picks it again.
    let engine = HotStuffUnderTest { attackers: vec![(3, Attack::Grind)], ..HotStuffUnderTest::default() };
    let config = SimConfig { seed: 11, duration_ms: 400_000, stop_at_height: 1_000, ..SimConfig::default() };
    let report = Simulation::new(&engine, config).run();
    report.check(1_000).unwrap();
    let proposers = committed_proposers(&report, 0);
    let led = proposers.iter().filter(|p| **p == 3).count();
    let share = led as f64 / proposers.len() as f64;
    let rebuilt = report.nodes[3].built.len();
    eprintln!("grinder: {led} of {} committed blocks ({:.1}%), {rebuilt} blocks built", proposers.len(), share * 100.0);
    assert!(rebuilt > 2 * led, "the grinder did rebuild its blocks ({rebuilt} built, {led} committed)");
    assert!((0.19..=0.31).contains(&share), "a grinding validator with 25% of the stake led {:.1}% of the blocks", share * 100.0);
}

/// Seeds per attack scenario (`AETHER_SIM_SEEDS` runs more).
fn attack_seeds() -> u64 {
    std::env::var("AETHER_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3)
}

/// The attacks, alone and combined: the forker withholds its proposals from all but one
/// validator (so one honest node learns a QC the others do not), lies low in its timeouts,
/// and leads on stale QCs after the timeouts that follow.
fn attack_sets() -> Vec<(&'static str, Vec<Attack>)> {
    vec![
        ("stale-proposal", vec![Attack::StaleProposal]),
        ("low-timeout", vec![Attack::LowTimeout]),
        ("forged-qc", vec![Attack::ForgedQuorumCertificate, Attack::Withhold]),
        ("forged-tc-on-stale-qc", vec![Attack::ForgedTimeoutCertificate, Attack::StaleProposal, Attack::Withhold]),
        ("withhold", vec![Attack::Withhold]),
        ("never-propose", vec![Attack::NeverPropose]),
        ("eager-timeout", vec![Attack::EagerTimeout]),
        ("beside-committed", vec![Attack::BesideCommitted]),
        ("forker", vec![Attack::Withhold, Attack::StaleProposal, Attack::LowTimeout]),
    ]
}

#[test]
fn attackers_never_break_agreement_and_every_commit_stays_proven() {
    // f attackers of n (n = 4 and 7), on default links, and with lossy links and honest
    // validators crashing mid-step: agreement, validity, a key-less observer's check of every
    // committed block, persist-before-send at every send, and progress.
    let mut runs = 0;
    for (name, attacks) in attack_sets() {
        for seed in 1..=attack_seeds() {
            for (n, link, crashes) in
                [(4usize, LinkModel::DEFAULT, false), (7, LinkModel { latency_ms: 80, jitter_ms: 60, loss: 0.1, duplicate: 0.02 }, true)]
            {
                let f = (n - 1) / 3;
                let faulty: Vec<u32> = (0..f).map(|i| (n - 1 - i) as u32).collect();
                let engine = HotStuffUnderTest {
                    attackers: faulty.iter().flat_map(|v| attacks.iter().map(move |a| (*v, *a))).collect(),
                    ..HotStuffUnderTest::default()
                };
                let crashes = if crashes {
                    // Honest validators 0 and 1 crash mid-step in turn, each back within 3 s.
                    (0..6u64)
                        .map(|i| Crash { validator: (i % 2) as u32, at_ms: 4_000 + i * 7_000, restart_at_ms: Some(6_500 + i * 7_000) })
                        .collect()
                } else {
                    vec![]
                };
                let config = SimConfig {
                    seed,
                    validators: n,
                    link,
                    duration_ms: 60_000,
                    stop_at_height: 60,
                    behaviours: faulty.iter().map(|v| (*v, Behaviour::Attacker)).collect(),
                    crashes,
                    crash_mid_step: true,
                    ..SimConfig::default()
                };
                let report = Simulation::new(&engine, config).run();
                report.check(10).unwrap_or_else(|e| panic!("attack {name}, n = {n}: {e}"));
                runs += 1;
            }
        }
    }
    eprintln!("attackers: {runs} runs");
}

#[test]
fn an_idle_chain_commits_a_block_per_heartbeat_and_a_transaction_without_waiting_for_one() {
    let heartbeat = HotStuffSettings::default().heartbeat_ms;
    // No load; transactions reach every validator once, at 30 s.
    let config = SimConfig { seed: 7, duration_ms: 60_000, idle: true, transactions_at: vec![30_000], ..SimConfig::default() };
    let report = Simulation::new(&hotstuff(), config).run();
    report.check(20).unwrap();
    let blocks = report.min_honest_height();
    assert!((30..=65).contains(&blocks), "{blocks} blocks in 60 s of an idle chain (a heartbeat is {heartbeat} ms)");
    let built: std::collections::HashMap<_, _> =
        report.nodes.iter().flat_map(|n| n.built.iter().copied().zip(n.built_times.iter().copied())).collect();
    let carrying: std::collections::HashSet<_> = report.nodes.iter().flat_map(|n| n.carrying.iter().copied()).collect();
    let node = &report.nodes[0];
    let latencies: Vec<u64> = node
        .committed
        .iter()
        .zip(&node.commit_times)
        .filter(|((b, _), _)| carrying.contains(&b.hash))
        .map(|((b, _), t)| t - built[&b.hash])
        .collect();
    eprintln!("idle: {blocks} blocks in 60 s; the block with transactions committed {latencies:?} ms after it was built");
    assert_eq!(latencies.len(), 1, "the transactions are committed once");
    assert!(latencies[0] < heartbeat / 2, "its two-chain completed without waiting for a heartbeat: {} ms", latencies[0]);
}

#[test]
fn one_seed_gives_one_run() {
    // The scenarios that exercise the most engine paths (fetches after restarts and losses,
    // equivocation): each run twice from one seed, compared event by event.
    for name in ["random_restarts", "slow_lossy", "byzantine/Twin/n4", "leader_crashes"] {
        for seed in [2, 5] {
            let scenario =
                aether_testkit::sim::conformance::scenarios(seed, false).into_iter().find(|s| s.name == name).expect("a scenario");
            let config = SimConfig { record_trace: true, ..scenario.config };
            let first = Simulation::new(&hotstuff(), config.clone()).run();
            let second = Simulation::new(&hotstuff(), config).run();
            assert!(first.trace.len() > 1_000, "{name}: a real run ({} events)", first.trace.len());
            if let Some(i) = first.trace.iter().zip(&second.trace).position(|(a, b)| a != b) {
                panic!("{name} seed {seed}: the runs part at event {i}: {:?} then {:?}", first.trace[i], second.trace[i]);
            }
            assert_eq!(first.trace.len(), second.trace.len(), "{name} seed {seed}");
        }
    }
}

/// Prints what every validator did in one scenario (height, blocks built, persists, commit
/// times): `AETHER_SIM_SEED=4 AETHER_SIM_SCENARIO=leader_crashes cargo test --workspace --test
/// simulation -- replay_one_scenario --ignored --nocapture`.
#[test]
#[ignore]
fn replay_one_scenario() {
    let seed: u64 = std::env::var("AETHER_SIM_SEED").expect("set AETHER_SIM_SEED").parse().expect("a number");
    let name = std::env::var("AETHER_SIM_SCENARIO").expect("set AETHER_SIM_SCENARIO");
    let sc = aether_testkit::sim::conformance::scenarios(seed, false).into_iter().find(|s| s.name == name).expect("a scenario name");
    let report = Simulation::new(&hotstuff(), sc.config.clone()).run();
    for n in &report.nodes {
        eprintln!(
            "v{} {:?} height {} built {} persists {} times {:?}",
            n.index,
            n.behaviour,
            n.committed.len() - 1,
            n.built.len(),
            n.persists,
            &n.commit_times
        );
    }
}

/// Whether validator `index` of its epoch's set signed `qc`.
fn signed(qc: &aether_consensus_hotstuff::certificate::QuorumCertificate, index: usize) -> bool {
    qc.signers.get(index / 8).is_some_and(|byte| byte & (1 << (index % 8)) != 0)
}

/// The stake table of [`stake_moves_between_epochs_while_validators_equivocate_and_boundary_leaders_crash`]:
/// validator 3 (an equivocator) is in the set from genesis, validator 4 joins in epoch 1 with
/// half of the stake (its votes are needed for every quorum then), validator 5 (another
/// equivocator, a fifth of the stake) joins in epoch 2, validator 2 leaves in epoch 4.
fn moving_stake() -> Vec<Vec<u128>> {
    vec![vec![1, 1, 1, 1, 0, 0], vec![1, 1, 1, 1, 3, 0], vec![2, 2, 2, 1, 2, 2], vec![2, 2, 2, 1, 2, 2], vec![3, 3, 0, 1, 3, 1]]
}

#[test]
fn stake_moves_between_epochs_while_validators_equivocate_and_boundary_leaders_crash() {
    for (seed, mid_step) in [(1, false), (2, true), (3, false)] {
        let epochs =
            SimEpochs { length: 10, stakes: moving_stake(), crash_boundary_leaders: Some(2_000), crash_after_boundary: vec![(1, 1_500)] };
        let config = SimConfig {
            validators: 6,
            seed,
            duration_ms: 180_000,
            stop_at_height: 60,
            behaviours: vec![(3, Behaviour::Equivocator), (5, Behaviour::Equivocator)],
            crash_mid_step: mid_step,
            epochs: Some(epochs.clone()),
            ..SimConfig::default()
        };
        let report = Simulation::new(&hotstuff(), config).run();
        // Agreement on blocks and on every epoch's set, validity, every commit proven final
        // by a key-less engine of its own epoch, and six epochs reached.
        report.check(60).unwrap_or_else(|e| panic!("{e}"));
        assert!(report.boundary_crashes > 0, "seed {seed}: a leader crashed right after building an epoch's last block");
        let restarted = report.nodes.iter().find(|n| n.index == 1).unwrap();
        assert!(restarted.epoch_starts.len() >= 6, "seed {seed}: validator 1 restarted into each epoch: {:?}", restarted.epoch_starts);

        // A validator whose offence a block of epoch e records is in no set after e.
        let honest = report.nodes.iter().find(|n| n.behaviour == Behaviour::Honest).unwrap();
        assert!(honest.accused_at.contains_key(&3), "seed {seed}: the equivocator's evidence reached the chain");
        for (offender, height) in &honest.accused_at {
            assert!([3, 5].contains(offender), "seed {seed}: only equivocators are accused, not {offender}");
            for (epoch, set) in &honest.epoch_sets {
                if epochs.last_height(epoch.saturating_sub(1)) >= *height && *epoch > epochs.epoch_of(*height) {
                    assert!(
                        !set.iter().any(|(v, _)| v == offender),
                        "seed {seed}: slashed validator {offender} is in the set of epoch {epoch}"
                    );
                }
            }
        }
        // Sets follow the table otherwise: validator 4 joined in epoch 1, 2 left in epoch 4.
        assert!(report.epoch_set(1).unwrap().contains(&(4, 3)), "seed {seed}: {:?}", report.epoch_set(1));
        assert!(!report.epoch_set(4).unwrap().iter().any(|(v, _)| *v == 2), "seed {seed}: {:?}", report.epoch_set(4));

        // The joiner votes from its first epoch: with half of epoch 1's stake, every quorum
        // certificate of the epoch holds its signature.
        let set1 = report.epoch_set(1).unwrap();
        let joiner = set1.iter().position(|(v, _)| *v == 4).unwrap();
        let mut epoch1_qcs = 0;
        for (block, cert) in honest.committed.iter().filter(|(b, _)| epochs.epoch_of(b.height) == 1 && b.height > 0) {
            let cert = CommitCertificate::try_from_slice(&cert.0).unwrap();
            assert!(signed(cert.qc(), joiner), "seed {seed}: height {}: the QC lacks the joiner's vote", block.height);
            epoch1_qcs += 1;
        }
        assert!(epoch1_qcs >= 5, "seed {seed}: epoch 1 commits checked: {epoch1_qcs}");
        // An epoch's engine never lets the one before decide its blocks: the boundary block
        // proves final with the old set, and the next block's certificate with the new one only.
        let changes = report.epoch_changes();
        assert!(changes.len() >= 5, "seed {seed}: {changes:?}");
        eprintln!(
            "seed {seed}{}: epoch changes (first ms / all ms): {:?}; boundary crashes {}; blocks synced {:?}",
            if mid_step { " (mid-step crashes)" } else { "" },
            changes.iter().map(|c| (c.first_ms, c.all_ms)).collect::<Vec<_>>(),
            report.boundary_crashes,
            report.nodes.iter().map(|n| n.synced).collect::<Vec<_>>()
        );
    }
}

/// The epoch-change number in virtual time, beside the ordinary block interval of the same
/// run: four equal validators, no faults, the default link (50 ± 20 ms, 1% loss). A change
/// restarts HotStuff's pipeline (the boundary block is decided through a certified suffix,
/// then the new engine proposes on it, and its first block needs two certified rounds of its
/// own), so it costs a few rounds, not one.
#[test]
fn an_epoch_change_on_a_healthy_network_takes_a_few_block_intervals_of_virtual_time() {
    let epochs = SimEpochs { length: 10, stakes: vec![vec![1, 1, 1, 1]], crash_boundary_leaders: None, crash_after_boundary: vec![] };
    let report = Simulation::new(
        &hotstuff(),
        SimConfig { seed: 5, duration_ms: 120_000, stop_at_height: 100, epochs: Some(epochs.clone()), ..SimConfig::default() },
    )
    .run();
    report.check(100).unwrap();
    let node = report.nodes.iter().find(|n| n.behaviour == Behaviour::Honest).unwrap();
    // Commit-to-commit gaps inside epochs (first commits at every node, as for the changes).
    let first_commit = |h: usize| report.nodes.iter().filter_map(|n| n.commit_times.get(h).copied()).min();
    let mut inside: Vec<u64> = (2..node.commit_times.len())
        .filter(|h| (*h as u64 - 1) % epochs.length != 0)
        .filter_map(|h| Some(first_commit(h)? - first_commit(h - 1)?))
        .collect();
    inside.sort_unstable();
    let mut changes: Vec<u64> = report.epoch_changes().iter().map(|c| c.first_ms).collect();
    changes.sort_unstable();
    let median = |v: &[u64]| v[v.len() / 2];
    eprintln!(
        "epoch change: median {} ms (min {}, max {}) over {} changes; block interval inside epochs: median {} ms (max {})",
        median(&changes),
        changes[0],
        changes[changes.len() - 1],
        changes.len(),
        median(&inside),
        inside[inside.len() - 1]
    );
    assert!(changes.len() >= 9);
    assert!(median(&changes) <= 4 * median(&inside), "an epoch change costs more than four block intervals");
}
