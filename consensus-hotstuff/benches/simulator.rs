//! HotStuff's pure protocol cost in the simulator (crypto on, blocks are stand-ins):
//! committed blocks per second of CPU and CPU time per committed block for n = 4, 16, 64, 128
//! with zero network latency; and, on the default link model, blocks per virtual second, the
//! virtual time between commits, views (rounds) per committed block, and commit latency (from
//! the leader building a block to its commit at an honest validator, virtual time).
//!
//! `cargo bench --workspace --bench simulator` (`AETHER_SIM_BENCH_N=4,16` to choose sizes)
//!
//! Set-up (key derivation, each engine checking every proof of possession) is excluded: each
//! size runs to two heights and the difference is reported.

// Test and bench code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use aether_consensus_hotstuff::messages::CommitCertificate;
use aether_consensus_hotstuff::mocks::HotStuffUnderTest;
use aether_testkit::sim::{LinkModel, SimConfig, Simulation};
use borsh::BorshDeserialize;

/// HotStuff with its default settings; every validator verifies for itself (no shared
/// verification memory), as on separate machines.
fn hotstuff() -> HotStuffUnderTest {
    HotStuffUnderTest { independent: true, ..HotStuffUnderTest::default() }
}

fn run(n: usize, link: LinkModel, height: u64) -> (f64, aether_testkit::sim::Report) {
    // The engine's own cost: without the conformance suite's finality-proof and persist checks.
    let config = SimConfig {
        validators: n,
        seed: 1,
        link,
        duration_ms: 10_000_000,
        stop_at_height: height,
        engine_checks: false,
        ..SimConfig::default()
    };
    let started = Instant::now();
    let report = Simulation::new(&hotstuff(), config).run();
    report.check(height).expect("the run is correct");
    (started.elapsed().as_secs_f64(), report)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks benches to list themselves
    }
    let sizes: Vec<usize> = std::env::var("AETHER_SIM_BENCH_N")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![4, 16, 64, 128]);
    println!("zero latency (IDEAL link), crypto on, one thread:");
    println!("{:>5} {:>16} {:>22}", "n", "blocks/s (CPU)", "CPU ms per block");
    for n in sizes {
        let (low, high) = if n <= 16 { (20, 220) } else { (5, 25) };
        let (t_low, _) = run(n, LinkModel::IDEAL, low);
        let (t_high, _) = run(n, LinkModel::IDEAL, high);
        let per_block = (t_high - t_low) / (high - low) as f64;
        println!("{n:>5} {:>16.1} {:>22.2}", 1.0 / per_block, per_block * 1e3);
    }
    for (name, link) in
        [("default link (50 +- 20 ms, 1% loss)", LinkModel::DEFAULT), ("slow lossy link (200 +- 150 ms, 50% loss)", LinkModel::SLOW_LOSSY)]
    {
        let (_, report) = run(4, link, if link == LinkModel::DEFAULT { 300 } else { 30 });
        let rounds: Vec<u64> = report.nodes[0]
            .committed
            .iter()
            .skip(1)
            .map(|(_, c)| CommitCertificate::try_from_slice(&c.0).expect("a HotStuff certificate").header().round)
            .collect();
        let views = (rounds[rounds.len() - 1] - rounds[0]) as f64 / (rounds.len() - 1) as f64;
        let mut latency = report.commit_latencies(None);
        latency.sort_unstable();
        let pct = |p: f64| latency[((latency.len() - 1) as f64 * p).round() as usize];
        println!(
            "{name}, n = 4: {:.2} views per committed block; commit latency p50 {} ms, p95 {} ms (virtual, {} blocks)",
            views,
            pct(0.5),
            pct(0.95),
            latency.len()
        );
    }
    let (_, report) = run(4, LinkModel::DEFAULT, 300);
    let times = &report.nodes[0].commit_times;
    let span = (times[times.len() - 1] - times[1]) as f64;
    println!(
        "default link (50 +- 20 ms, 1% loss), n = 4: {} blocks in {:.1} s virtual = {:.1} blocks/s; mean {:.0} ms between commits",
        times.len() - 2,
        span / 1e3,
        (times.len() - 2) as f64 / (span / 1e3),
        span / (times.len() - 2) as f64
    );
}
