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
//!
//! The floor: the public-key operations a committed block took (counted by
//! [`aether_consensus_hotstuff::crypto_ops`]), each priced by timing it alone in the same run,
//! summed. No engine built on these operations can beat it on this machine; the bench prints
//! how far above it the engine runs.

// Test and bench code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use aether_consensus_hotstuff::certificate::{signing_domain, BlsSecretKey, Committee, VoteCollector, VoteMessage};
use aether_consensus_hotstuff::crypto_ops::{CryptoOp, CryptoOpCounts};
use aether_consensus_hotstuff::leader::VrfSecretKey;
use aether_consensus_hotstuff::messages::CommitCertificate;
use aether_consensus_hotstuff::mocks::HotStuffUnderTest;
use aether_primitives::types::{Hash, Keypair};
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

/// Seconds one call of `f` takes, the median of 5 batches (the machine is noisy).
fn time_one(mut f: impl FnMut()) -> f64 {
    const CALLS: u32 = 40;
    let mut batches: Vec<f64> = (0..5)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..CALLS {
                f();
            }
            started.elapsed().as_secs_f64() / f64::from(CALLS)
        })
        .collect();
    batches.sort_by(f64::total_cmp);
    batches[2]
}

/// What each priced operation costs alone here, for a committee of `n` with equal stakes.
fn prices(n: usize) -> Vec<(CryptoOp, f64)> {
    let domain = signing_domain("bench", &Hash::digest(b"bench", b"genesis"), 0);
    let vote = VoteMessage { domain, round: 1, block: Hash::digest(b"bench", b"block") };
    let keys: Vec<BlsSecretKey> = (0..n).map(|i| BlsSecretKey::from_seed(Hash::digest(b"k", &(i as u64).to_le_bytes()).0)).collect();
    let committee =
        std::sync::Arc::new(Committee::new(keys.iter().map(|k| (k.public(), 1, k.prove_possession())).collect(), domain).unwrap());
    let quorum = n - (n - 1) / 3;
    let votes: Vec<_> = keys.iter().take(quorum).map(|k| k.sign_vote(&vote)).collect();
    let aggregate = || {
        let mut collector = VoteCollector::new(&committee, vote);
        votes.iter().enumerate().find_map(|(i, v)| collector.add(i as u32, v.clone()).unwrap().certificate).expect("a quorum")
    };
    let qc = aggregate();
    let vrf = VrfSecretKey::from_seed([9; 32]);
    let (proof, _) = vrf.prove(b"alpha");
    let identity = Keypair::from_seed([5; 32]);
    let signature = identity.sign(b"proposal digest");
    vec![
        (
            CryptoOp::BlsSign,
            time_one(|| {
                std::hint::black_box(keys[0].sign_vote(&vote));
            }),
        ),
        (CryptoOp::QcVerify, time_one(|| qc.verify(&committee).unwrap())),
        (
            CryptoOp::QcAggregate,
            time_one(|| {
                std::hint::black_box(aggregate());
            }),
        ),
        (
            CryptoOp::VrfProve,
            time_one(|| {
                std::hint::black_box(vrf.prove(b"alpha"));
            }),
        ),
        (
            CryptoOp::VrfVerify,
            time_one(|| {
                std::hint::black_box(vrf.public().verify(b"alpha", &proof).unwrap());
            }),
        ),
        (CryptoOp::ProposalVerify, time_one(|| identity.public().verify(b"proposal digest", &signature).unwrap())),
    ]
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
    println!("{:>5} {:>16} {:>22} {:>18} {:>14}", "n", "blocks/s (CPU)", "CPU ms per block", "crypto floor, ms", "engine/floor");
    let mut breakdowns = vec![];
    for n in sizes {
        let (low, high) = if n <= 16 { (20, 220) } else { (5, 25) };
        let at_start = CryptoOpCounts::now();
        let (t_low, _) = run(n, LinkModel::IDEAL, low);
        let at_low = CryptoOpCounts::now();
        let (t_high, _) = run(n, LinkModel::IDEAL, high);
        let at_high = CryptoOpCounts::now();
        let per_block = (t_high - t_low) / (high - low) as f64;
        let (ops_low, ops_high) = (at_low.since(&at_start), at_high.since(&at_low));
        let prices = prices(n);
        let (mut floor, mut priced, mut unpriced) = (0.0, vec![], vec![]);
        for op in CryptoOp::ALL {
            let per = (ops_high.get(op) as f64 - ops_low.get(op) as f64) / (high - low) as f64;
            if per <= 0.0 {
                continue;
            }
            match prices.iter().find(|(p, _)| *p == op) {
                Some((_, seconds)) => {
                    floor += per * seconds;
                    priced.push(format!("{per:.2} {} x {:.0} us", op.name(), seconds * 1e6));
                }
                None => unpriced.push(format!("{} {per:.2}", op.name())),
            }
        }
        println!("{n:>5} {:>16.1} {:>22.2} {:>18.2} {:>14.2}", 1.0 / per_block, per_block * 1e3, floor * 1e3, per_block / floor);
        breakdowns.push(format!(
            "n = {n}, per committed block: {}{}",
            priced.join(", "),
            if unpriced.is_empty() { String::new() } else { format!("; not priced: {}", unpriced.join(", ")) }
        ));
    }
    for line in breakdowns {
        println!("{line}");
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
