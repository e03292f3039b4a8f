//! The `solo` engine through the consensus conformance suite (single-validator scenarios).

// Test and bench code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aether_api::consensus::{ConsensusEngine, EngineContext};
use aether_node::solo::{SoloEngine, SoloSettings};
use aether_primitives::types::Keypair;
use aether_testkit::sim::conformance::{consensus_conformance, Options};
use aether_testkit::sim::EngineUnderTest;

struct Solo;
impl EngineUnderTest for Solo {
    fn consensus_key(&self, identity: &Keypair) -> Vec<u8> {
        identity.public().0.to_vec()
    }
    fn build(&self, ctx: &EngineContext) -> Box<dyn ConsensusEngine> {
        Box::new(SoloEngine::from_context(ctx, SoloSettings::default()).expect("solo engine"))
    }
}

#[test]
fn solo_passes_the_single_validator_scenarios() {
    consensus_conformance(&Solo, &Options { single_validator: true, ..Options::default() });
}
