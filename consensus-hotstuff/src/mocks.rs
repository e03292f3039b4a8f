//! Named faulty validators and test harnesses for HotStuff (feature `mocks`; never in a node).
//!
//! - [`double_vote`]: evidence a validator really signed, voting for two blocks in one round.
//! - [`HotStuffUnderTest`]: HotStuff as the simulator and conformance suite run it.
//!
//! ```no_run
//! use aether_consensus_hotstuff::mocks::HotStuffUnderTest;
//! use aether_testkit::sim::conformance::{consensus_conformance, Options};
//! consensus_conformance(&HotStuffUnderTest::default(), &Options::default());
//! ```

use aether_api::consensus::{ConsensusEngine, EngineContext};
use aether_api::consensus::{Evidence, ValidatorIndex};
use aether_primitives::types::{Hash, Keypair};
use aether_testkit::sim::EngineUnderTest;

use crate::verified::VerifiedCache;
use crate::{HotStuffEngine, HotStuffSettings};

/// Builds HotStuff engines with `settings` for simulated validators. All the engines it
/// builds share one [`VerifiedCache`], so a certificate is verified once per run rather than
/// once per validator (sound: the key is the certificate's bytes and the committee; a forged
/// certificate has other bytes and is verified, and refused, on its own).
///
/// With `independent` set, each engine gets its own memory instead, as on separate machines:
/// what benches of per-validator cost use.
#[derive(Clone, Debug, Default)]
pub struct HotStuffUnderTest {
    pub settings: HotStuffSettings,
    pub verified: VerifiedCache,
    pub independent: bool,
    /// Validators that run the grinding leader: when a proposal would make it lead the next
    /// round too, it rebuilds its block until its election of the round after picks it again
    /// (see `HotStuffEngine::regrind`). The simulator counts them as honest (they break no
    /// rule a node can check); tests measure their share of leadership.
    pub grinders: Vec<ValidatorIndex>,
}

// A failure to build an engine for a simulated (well-formed) validator set is a bug in the
// test, reported by the panic; the simulator's `build` has no error path.
#[allow(clippy::expect_used)]
impl EngineUnderTest for HotStuffUnderTest {
    fn consensus_key(&self, identity: &Keypair) -> Vec<u8> {
        HotStuffEngine::consensus_key(identity)
    }
    fn build(&self, ctx: &EngineContext) -> Box<dyn ConsensusEngine> {
        // The simulator's validator sets are well formed; a failure here is a bug in the test.
        let mut engine = HotStuffEngine::with_cache(
            ctx,
            self.settings.clone(),
            if self.independent { VerifiedCache::new() } else { self.verified.clone() },
        )
        .expect("a simulated validator set is valid");
        if ctx.local.as_ref().is_some_and(|l| self.grinders.contains(&l.index)) {
            engine.grind_for_leadership();
        }
        Box::new(engine)
    }
}

/// Evidence that validator `index` (identity `identity`) voted for both `first` and `second`
/// in `round` on the chain of signing `domain` ([`crate::certificate::signing_domain`]),
/// signed with its real BLS key: a named faulty validator for tests and drills.
pub fn double_vote(identity: &Keypair, domain: Hash, index: ValidatorIndex, round: u64, first: Hash, second: Hash) -> Evidence {
    let (bls, _) = crate::keys::derive_keys(identity);
    let sign = |block| bls.sign_vote(&crate::certificate::VoteMessage { domain, round, block }).to_bytes().to_vec();
    crate::evidence::Misbehaviour::DoubleVote { round, first, first_signature: sign(first), second, second_signature: sign(second) }
        .into_evidence(index)
}
