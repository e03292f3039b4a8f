//! HotStuff in the deterministic simulator: the framework's consensus conformance suite, and
//! checks specific to this engine.
//!
//! More seeds: `AETHER_SIM_SEEDS=500 cargo test --workspace --release --test simulation`;
//! one seed: `AETHER_SIM_SEED=17 cargo test --workspace --test simulation`.

use aether_consensus_hotstuff::messages::CommitCertificate;
use aether_consensus_hotstuff::simulated::HotStuffUnderTest;
use aether_consensus_hotstuff::{HotStuffEngine, HotStuffSettings};
use aether_framework::consensus::{ConsensusEngine, EngineContext, ValidatorSet};
use aether_framework::sim::conformance::{consensus_conformance, Options};
use aether_framework::sim::{validator_identity, Behaviour, LinkModel, SimConfig, Simulation};
use borsh::BorshDeserialize;

/// HotStuff with its default settings.
fn hotstuff() -> HotStuffUnderTest {
    HotStuffUnderTest::default()
}

#[test]
fn passes_the_consensus_conformance_suite() {
    consensus_conformance(&hotstuff(), &Options::default());
}

#[test]
fn every_commit_carries_a_certificate_other_nodes_accept() {
    let report = Simulation::new(&hotstuff(), SimConfig { seed: 3, duration_ms: 10_000, ..SimConfig::default() }).run();
    report.check(20).unwrap();
    // A validator-less engine (a full node) checks the certificates.
    let validators = ValidatorSet::new(
        (0..4)
            .map(|i| {
                let k = validator_identity(i);
                aether_framework::consensus::Validator {
                    name: format!("v{i}"),
                    identity: k.public(),
                    address: k.address(),
                    consensus_key: HotStuffEngine::consensus_key(&k),
                    stake: 1,
                }
            })
            .collect(),
    );
    let observer = HotStuffEngine::from_context(
        &EngineContext { chain_id: "aether-sim".into(), validators, local: None },
        HotStuffSettings::default(),
    )
    .unwrap();
    let node = &report.nodes[0];
    let mut direct = 0;
    for (block, cert) in node.committed.iter().skip(1) {
        observer.verify_certificate(block, cert).unwrap_or_else(|e| panic!("height {}: {e}", block.height));
        direct += matches!(CommitCertificate::try_from_slice(&cert.0).unwrap(), CommitCertificate::Direct { .. }) as usize;
        // The certificate of one block never proves another.
        let other = node.committed[1].0;
        if other != *block {
            assert!(observer.verify_certificate(&other, cert).is_err());
        }
    }
    assert!(direct > 0, "the two-chain rule decided some blocks directly");
    let mut forged = node.committed[2].1.clone();
    let last = forged.0.len() - 1;
    forged.0[last] ^= 1;
    assert!(observer.verify_certificate(&node.committed[2].0, &forged).is_err(), "a flipped bit breaks the certificate");
}

#[test]
fn twins_equivocation_is_reported_as_evidence_and_never_forks() {
    // Validator 3 runs as two copies, each talking to half the network: it proposes and votes
    // twice in rounds it leads or votes in.
    let mut evidence = 0;
    for seed in 1..=3 {
        let report = Simulation::new(
            &hotstuff(),
            SimConfig { seed, duration_ms: 20_000, behaviours: vec![(3, Behaviour::Twin)], ..SimConfig::default() },
        )
        .run();
        report.check(5).unwrap();
        evidence += report.nodes.iter().filter(|n| n.behaviour == Behaviour::Honest).map(|n| n.evidence).sum::<usize>();
    }
    assert!(evidence > 0, "double votes or proposals by the twins were reported");
}

#[test]
fn a_restarted_validator_keeps_its_safety_state_and_catches_up() {
    let report = Simulation::new(
        &hotstuff(),
        SimConfig {
            seed: 9,
            duration_ms: 40_000,
            crashes: vec![aether_framework::sim::Crash { validator: 1, at_ms: 5_000, restart_at_ms: Some(15_000) }],
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

/// Prints what every validator did in one scenario (height, blocks built, persists, commit
/// times): `AETHER_SIM_SEED=4 AETHER_SIM_SCENARIO=leader_crashes cargo test --workspace --test
/// simulation -- replay_one_scenario --ignored --nocapture`.
#[test]
#[ignore]
fn replay_one_scenario() {
    let seed: u64 = std::env::var("AETHER_SIM_SEED").expect("set AETHER_SIM_SEED").parse().expect("a number");
    let name = std::env::var("AETHER_SIM_SCENARIO").expect("set AETHER_SIM_SCENARIO");
    let sc = aether_framework::sim::conformance::scenarios(seed, false).into_iter().find(|s| s.name == name).expect("a scenario name");
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
