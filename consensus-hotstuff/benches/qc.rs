//! QC verification cost for n = 4, 100, 1000 signers, beside a single BLS signature
//! verification measured in the same run (the physical floor: one pairing check).
//!
//! `cargo bench --workspace --bench qc`

// Test and bench code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aether_consensus_hotstuff::certificate::*;
use aether_primitives::types::Hash;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

fn bench(c: &mut Criterion) {
    let domain = signing_domain("bench", &Hash::digest(b"bench", b"genesis"), 0);
    let vote = VoteMessage { domain, round: 1, block: Hash::digest(b"bench", b"block") };
    let mut group = c.benchmark_group("bls");
    let one = BlsSecretKey::from_seed([7; 32]);
    let sig = one.sign_vote(&vote);
    let pk = one.public();
    group.bench_function("single_vote_verify", |b| b.iter(|| assert!(sig.verify_vote(&vote, &pk))));
    for n in [4usize, 100, 1000] {
        let keys: Vec<BlsSecretKey> = (0..n).map(|i| BlsSecretKey::from_seed(Hash::digest(b"k", &(i as u64).to_le_bytes()).0)).collect();
        let committee =
            std::sync::Arc::new(Committee::new(keys.iter().map(|k| (k.public(), 1, k.prove_possession())).collect(), domain).unwrap());
        let mut collector = VoteCollector::new(&committee, vote);
        let mut qc = None;
        for (i, k) in keys.iter().enumerate() {
            if let Some(q) = collector.add(i as u32, k.sign_vote(&vote)).unwrap().certificate {
                qc = Some(q);
                break;
            }
        }
        let qc = qc.unwrap();
        group.bench_with_input(BenchmarkId::new("qc_verify", n), &qc, |b, qc| b.iter(|| qc.verify(&committee).unwrap()));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
