//! HotStuff in the deterministic simulator.

use aether_consensus_hotstuff::{HotStuffEngine, HotStuffSettings};
use aether_framework::consensus::{ConsensusEngine, EngineContext};
use aether_framework::sim::{EngineUnderTest, LinkModel, SimConfig, Simulation};
use aether_framework::types::Keypair;

struct HotStuff;
impl EngineUnderTest for HotStuff {
    fn consensus_key(&self, identity: &Keypair) -> Vec<u8> {
        HotStuffEngine::consensus_key(identity)
    }
    fn build(&self, ctx: &EngineContext) -> Box<dyn ConsensusEngine> {
        Box::new(HotStuffEngine::from_context(ctx, HotStuffSettings::default()).expect("engine"))
    }
}

#[test]
fn four_honest_validators_commit_the_same_chain() {
    let report = Simulation::new(
        &HotStuff,
        SimConfig { validators: 4, seed: 1, duration_ms: 30_000, link: LinkModel::DEFAULT, ..SimConfig::default() },
    )
    .run();
    eprintln!("height {} / {}; delivered {} dropped {}", report.min_honest_height(), report.max_height(), report.delivered, report.dropped);
    report.check(50).unwrap();
}
