//! The consensus conformance suite: one call runs an engine through every scenario below in
//! the simulator, over many seeds, and panics naming the scenario and seed of the first
//! failure (rerun it with [`run_scenario`]).
//!
//! | scenario | what it checks |
//! |---|---|
//! | `all_online` | n = 4, default links: at least 1,000 blocks, agreement, validity |
//! | `one_offline` | one of four never starts: the rest commit |
//! | `slow_lossy` | 200 ± 150 ms links losing half the messages: commits continue |
//! | `partition_heal` | 2 + 2 split for 20 s (no side has a quorum); commits resume within 30 s of healing |
//! | `leader_crashes` | whoever builds a block crashes at once, restarts 2 s later |
//! | `random_restarts` | unclean crashes and restarts at random times, one validator at a time |
//! | `byzantine/<kind>/n<N>` | f of N validators silent, replaying, forging, or twinned (equivocating), n = 4 and 7 |
//! | `byzantine/<kind>/unequal` | the same with unequal stake (faulty stake just under a third) |
//!
//! Engines that run only one validator (like `solo`) run `all_online` with n = 1 only
//! ([`Options::single_validator`]).
//!
//! ```no_run
//! # use aether_framework::sim::{conformance, EngineUnderTest};
//! # fn demo(engine: &dyn EngineUnderTest) {
//! conformance::consensus_conformance(engine, &conformance::Options::default());
//! # }
//! ```

use super::{Behaviour, Crash, EngineUnderTest, LinkModel, Partition, Report, SimConfig, Simulation};
use crate::types::Height;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Clone, Debug)]
pub struct Options {
    /// Seeds per scenario (`AETHER_SIM_SEEDS` overrides it: thousands behind a flag).
    pub seeds: u64,
    /// First seed (`AETHER_SIM_SEED` runs just that one).
    pub first_seed: u64,
    pub single_validator: bool,
    /// Run only scenarios whose name contains this (`AETHER_SIM_SCENARIO`).
    pub only: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        let one: Option<u64> = std::env::var("AETHER_SIM_SEED").ok().and_then(|s| s.parse().ok());
        let seeds = std::env::var("AETHER_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(2);
        let only = std::env::var("AETHER_SIM_SCENARIO").ok();
        Options { seeds: if one.is_some() { 1 } else { seeds }, first_seed: one.unwrap_or(1), single_validator: false, only }
    }
}

/// A scenario: its name, the run, and what must hold afterwards.
pub struct Scenario {
    pub name: String,
    pub config: SimConfig,
    pub min_height: Height,
    /// (fault ends at, bound): commits must resume within `bound` ms of it.
    pub resumes: Option<(u64, u64)>,
}

/// Every scenario for `seed`.
pub fn scenarios(seed: u64, single_validator: bool) -> Vec<Scenario> {
    let base = SimConfig { seed, ..SimConfig::default() };
    if single_validator {
        return vec![Scenario {
            name: "all_online/n1".into(),
            config: SimConfig { validators: 1, duration_ms: 2_000_000, stop_at_height: 1_000, ..base },
            min_height: 1_000,
            resumes: None,
        }];
    }
    let mut list = vec![
        Scenario {
            name: "all_online".into(),
            config: SimConfig { duration_ms: 1_000_000, stop_at_height: 1_000, ..base.clone() },
            min_height: 1_000,
            resumes: None,
        },
        Scenario {
            name: "one_offline".into(),
            config: SimConfig { duration_ms: 60_000, behaviours: vec![(3, Behaviour::Offline)], ..base.clone() },
            min_height: 10,
            resumes: None,
        },
        Scenario {
            name: "slow_lossy".into(),
            config: SimConfig { duration_ms: 120_000, link: LinkModel::SLOW_LOSSY, ..base.clone() },
            min_height: 3,
            resumes: None,
        },
        Scenario {
            name: "partition_heal".into(),
            config: SimConfig {
                duration_ms: 60_000,
                partitions: vec![Partition { from_ms: 2_000, until_ms: 22_000, groups: vec![vec![0, 1], vec![2, 3]] }],
                ..base.clone()
            },
            min_height: 5,
            resumes: Some((22_000, 30_000)),
        },
        Scenario {
            name: "leader_crashes".into(),
            config: SimConfig { duration_ms: 60_000, crash_leaders: Some(2_000), ..base.clone() },
            min_height: 3,
            resumes: None,
        },
        Scenario {
            name: "random_restarts".into(),
            config: SimConfig { duration_ms: 60_000, crashes: random_crashes(seed, 4, 60_000), ..base.clone() },
            min_height: 10,
            resumes: None,
        },
    ];
    for kind in [Behaviour::Silent, Behaviour::Replayer, Behaviour::Forger, Behaviour::Twin] {
        for n in [4usize, 7] {
            let f = (n - 1) / 3;
            let behaviours = (0..f).map(|i| ((n - 1 - i) as u32, kind)).collect();
            list.push(Scenario {
                name: format!("byzantine/{kind:?}/n{n}"),
                config: SimConfig { validators: n, duration_ms: 60_000, behaviours, ..base.clone() },
                min_height: 5,
                resumes: None,
            });
        }
        // Stakes 1..=7 (total 28): validators 3 and 4 hold 9, just under a third.
        list.push(Scenario {
            name: format!("byzantine/{kind:?}/unequal"),
            config: SimConfig {
                validators: 7,
                stakes: (1..=7).collect(),
                duration_ms: 60_000,
                behaviours: vec![(3, kind), (4, kind)],
                ..base.clone()
            },
            min_height: 5,
            resumes: None,
        });
    }
    list
}

/// Crashes at random times, one validator down at a time, each back within 5 s.
fn random_crashes(seed: u64, n: usize, duration_ms: u64) -> Vec<Crash> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let mut t = 1_000;
    let mut crashes = vec![];
    while t < duration_ms - 10_000 {
        let down = rng.gen_range(100..5_000);
        crashes.push(Crash { validator: rng.gen_range(0..n as u32), at_ms: t, restart_at_ms: Some(t + down) });
        t += down + rng.gen_range(500..5_000);
    }
    crashes
}

/// Runs one scenario and checks it.
pub fn run_scenario(engine: &dyn EngineUnderTest, scenario: &Scenario) -> Result<Report, String> {
    let report = Simulation::new(engine, scenario.config.clone()).run();
    let named = |e: String| format!("scenario {}: {e}", scenario.name);
    report.check(scenario.min_height).map_err(named)?;
    if let Some((healed, bound)) = scenario.resumes {
        report.check_resumes(healed, bound).map_err(named)?;
    }
    Ok(report)
}

/// Runs every scenario for every seed. Panics with the scenario and seed of a failure.
pub fn consensus_conformance(engine: &dyn EngineUnderTest, options: &Options) {
    for seed in options.first_seed..options.first_seed + options.seeds {
        for scenario in scenarios(seed, options.single_validator) {
            // The long all-online run is one per suite; the rest run for every seed.
            if scenario.name == "all_online" && seed != options.first_seed {
                continue;
            }
            if options.only.as_ref().is_some_and(|only| !scenario.name.contains(only.as_str())) {
                continue;
            }
            if let Err(e) = run_scenario(engine, &scenario) {
                panic!(
                    "{e}\nreplay: AETHER_SIM_SEED={seed} AETHER_SIM_SCENARIO={} cargo test --workspace --test simulation",
                    scenario.name
                );
            }
        }
    }
}
