//! Named faulty validators and test harnesses for HotStuff (feature `mocks`; never in a node).
//!
//! - [`double_vote`]: evidence a validator really signed, voting for two blocks in one round.
//! - [`Attack`]: faulty validators that run attacking code against the safety rules
//!   (stale proposals, lying timeouts, forged embedded certificates, withholding, grinding,
//!   never proposing), each run by [`HotStuffUnderTest::attackers`].
//! - [`HotStuffUnderTest`]: HotStuff as the simulator and conformance suite run it, with
//!   scripted leaders for twins plans and a key-less observer that checks every commit.
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

use crate::messages::Message;
use crate::verified::VerifiedCache;
use crate::{HotStuffEngine, HotStuffSettings};

/// What a faulty validator of [`HotStuffUnderTest::attackers`] does. Each breaks the protocol
/// in a way one of the engine's rules must defend against; the rule is named with each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attack {
    /// Leads on a stale QC: after a timeout certificate it proposes on the lowest QC it holds
    /// instead of its high QC. Defended by the vote rule (a TC-justified proposal must extend
    /// a QC at least as high as every high QC the TC reports).
    StaleProposal,
    /// Lies about its high QC in its timeouts (reports, and signs, the lowest QC it holds), to
    /// pull a TC's high-QC round down. Defended by quorum intersection: an honest signer of
    /// any TC reports the QC it locked.
    LowTimeout,
    /// Proposes with a QC whose signer bitmap claims a quorum but whose aggregate holds only
    /// its own signature (the proposal's own signature is valid). Defended by verifying every
    /// embedded QC.
    ForgedQuorumCertificate,
    /// Proposes after a timeout with a TC that says every signer reported the proposal's own
    /// QC round (with [`Attack::StaleProposal`]: a stale QC then passes the vote rule's
    /// high-QC condition), its aggregate only its own signature. Defended by verifying every
    /// embedded TC.
    ForgedTimeoutCertificate,
    /// Sends each of its proposals (and the QC it carries) to one validator only, so one
    /// honest node learns a QC the others do not — until it is released in a timeout.
    Withhold,
    /// Votes and times out, never proposes: every round it leads ends in a timeout.
    NeverPropose,
    /// Times out the moment it enters each round (a valid, signed timeout), trying to end
    /// rounds that honest validators are finishing. Defended by the f + 1 rule: a validator
    /// joins others' timeouts only once more than a third of the stake has timed out.
    EagerTimeout,
    /// Proposes a block that carries its high QC but is built beside the committed head, on
    /// that head's parent (when that parent's election picks it; the header, election proof,
    /// seed and block all consistent with that parent). Its QC passes the vote rule, so votes
    /// for it would certify a fork of a committed block. Defended by refusing a proposal whose
    /// parent is not the block its QC certifies.
    BesideCommitted,
    /// Grinds its block for the next election (see `HotStuffEngine::regrind`). The simulator
    /// counts grinders as honest (they break no rule a node can check).
    Grind,
}

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
    /// Validators that run attacking code (the simulator should count them as faulty: give
    /// them a non-honest behaviour such as [`aether_testkit::sim::Behaviour::Attacker`]).
    pub attackers: Vec<(ValidatorIndex, Attack)>,
}

impl HotStuffUnderTest {
    // A failure to build an engine for a simulated (well-formed) validator set is a bug in the
    // test, reported by the panic; the simulator's `build` has no error path.
    #[allow(clippy::expect_used)]
    fn engine(&self, ctx: &EngineContext) -> HotStuffEngine {
        // The simulator's validator sets are well formed; a failure here is a bug in the test.
        let mut engine = HotStuffEngine::with_cache(
            ctx,
            self.settings.clone(),
            if self.independent { VerifiedCache::new() } else { self.verified.clone() },
        )
        .expect("a simulated validator set is valid");
        if let Some(me) = ctx.local.as_ref().map(|l| l.index) {
            engine.attacks = self.attackers.iter().filter(|(v, _)| *v == me).map(|(_, a)| *a).collect();
        }
        engine
    }
}

impl EngineUnderTest for HotStuffUnderTest {
    fn consensus_key(&self, identity: &Keypair) -> Vec<u8> {
        HotStuffEngine::consensus_key(identity)
    }
    fn build(&self, ctx: &EngineContext) -> Box<dyn ConsensusEngine> {
        Box::new(self.engine(ctx))
    }
    fn build_with_leaders(&self, ctx: &EngineContext, leaders: &[ValidatorIndex]) -> Option<Box<dyn ConsensusEngine>> {
        let mut engine = self.engine(ctx);
        engine.script_leaders(leaders);
        Some(Box::new(engine))
    }
    fn round_of(&self, message: &[u8]) -> Option<u64> {
        use borsh::BorshDeserialize;
        match Message::try_from_slice(message).ok()? {
            Message::Proposal(p) => Some(p.header.round),
            Message::Vote { round, .. } => Some(round),
            Message::Timeout(t) => Some(t.round),
            Message::Fetch { .. } => None,
        }
    }
    fn persist_check(&self) -> Option<aether_testkit::sim::PersistCheck> {
        Some(crate::engine::persisted_covers)
    }
    fn build_observer(&self, ctx: &EngineContext) -> Option<Box<dyn ConsensusEngine>> {
        // Its own memory: the observer trusts no certificate another engine verified.
        Some(Box::new(HotStuffEngine::with_cache(ctx, self.settings.clone(), VerifiedCache::new()).ok()?))
    }
}

/// Evidence that validator `index` (identity `identity`) voted for both `first` and `second`
/// in `round` on the chain of signing `domain` ([`crate::certificate::signing_domain`]) of
/// epoch 0, signed with its real BLS key: a named faulty validator for tests and drills
/// ([`double_vote_in`] for a later epoch).
pub fn double_vote(identity: &Keypair, domain: Hash, index: ValidatorIndex, round: u64, first: Hash, second: Hash) -> Evidence {
    double_vote_in(0, identity, domain, index, round, first, second)
}

/// [`double_vote`] in `epoch` (`domain` must be that epoch's, `index` an index into its set).
pub fn double_vote_in(
    epoch: u64,
    identity: &Keypair,
    domain: Hash,
    index: ValidatorIndex,
    round: u64,
    first: Hash,
    second: Hash,
) -> Evidence {
    let (bls, _) = crate::keys::derive_keys(identity);
    let sign = |block| bls.sign_vote(&crate::certificate::VoteMessage { domain, round, block }).to_bytes().to_vec();
    crate::evidence::Misbehaviour::DoubleVote { round, first, first_signature: sign(first), second, second_signature: sign(second) }
        .into_evidence(index, epoch)
}
