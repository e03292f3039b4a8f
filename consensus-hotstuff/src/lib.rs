//! # aether-consensus-hotstuff
//!
//! Aether's default consensus engine: chained HotStuff with the two-chain commit rule
//! (Jolteon / DiemBFT v4), a pacemaker with timeout certificates, BLS quorum certificates and
//! ECVRF leader election, implementing the sans-I/O
//! [`aether_api::consensus::ConsensusEngine`].
//!
//! Status: the engine ([`engine`]) runs in the deterministic simulator
//! (`aether_testkit::sim`) — honest runs, offline and crashing validators, lossy links,
//! partitions, Byzantine behaviours — see `tests/` — and is the default engine of the `aether`
//! preset. Double proposals and double votes become [`evidence`] that nodes gossip and record in
//! blocks. Not yet: sync of blocks older than the engine keeps (`KEEP_ROUNDS`) for a validator
//! that was away long.
//!
//! - [`certificate`]: BLS votes and quorum certificates (lazy batch verification).
//! - [`timeout`]: timeout votes and timeout certificates.
//! - [`leader`]: ECVRF (RFC 9381) and stake-weighted choice.
//! - [`messages`]: the wire format and the commit certificate.
//! - [`evidence`]: checkable proofs of double proposals and double votes.
//! - [`verified`]: memory of verified certificates (shared between simulated validators).
//! - [`crypto_ops`]: process-wide counts of signatures, pairing checks and VRF proofs (benches).
//! - [`keys`]: BLS and VRF keys derived from the identity key; the genesis consensus key.
//! - `mocks` (feature `mocks`): named faulty validators and the simulator harness.
//!
//! ```
//! use aether_consensus_hotstuff::certificate::*;
//! use aether_primitives::types::Hash;
//!
//! // Four validators of equal stake; each proves possession of its key.
//! let keys: Vec<BlsSecretKey> = (0..4u8).map(|i| BlsSecretKey::from_seed([i + 1; 32])).collect();
//! let domain = signing_domain("example-chain", &Hash::digest(b"example", b"genesis"), 0);
//! let members = keys.iter().map(|k| (k.public(), 1, k.prove_possession())).collect();
//! let committee = std::sync::Arc::new(Committee::new(members, domain).unwrap());
//!
//! let vote = VoteMessage { domain, round: 7, block: Hash::digest(b"example", b"block") };
//! let mut collector = VoteCollector::new(&committee, vote);
//! assert!(collector.add(0, keys[0].sign_vote(&vote)).unwrap().certificate.is_none());
//! assert!(collector.add(1, keys[1].sign_vote(&vote)).unwrap().certificate.is_none());
//! let qc = collector.add(3, keys[3].sign_vote(&vote)).unwrap().certificate.expect("3 of 4 is a quorum");
//! assert!(qc.verify(&committee).is_ok());
//! ```

pub mod certificate;
pub mod crypto_ops;
pub mod engine;
pub mod evidence;
pub mod keys;
pub mod leader;
pub mod messages;
#[cfg(feature = "mocks")]
pub mod mocks;
pub mod timeout;
pub mod verified;

pub use engine::{HotStuffEngine, HotStuffSettings};

/// Registers the `hotstuff` engine (settings: `[consensus.hotstuff]`, see [`HotStuffSettings`]).
pub fn register(registry: &mut aether_api::registry::Registry) {
    use aether_api::consensus::ConsensusEngine;
    use aether_api::registry::PluginError;
    registry.register_consensus_key(HotStuffEngine::NAME, HotStuffEngine::consensus_key);
    registry.register_consensus_key_check(HotStuffEngine::NAME, keys::check_consensus_key);
    registry.register_certificate_signers(HotStuffEngine::NAME, certificate::parent_certificate_signers);
    registry.consensus.register(
        HotStuffEngine::NAME,
        "chained HotStuff (two-chain commit), BLS quorum certificates, ECVRF leaders; one validator or many (over a network)",
        std::sync::Arc::new(|ctx, settings| {
            let s: HotStuffSettings = settings.parse()?;
            let engine = HotStuffEngine::from_context(ctx, s)
                .map_err(|e| PluginError::Start { plugin: "hotstuff".into(), reason: e.to_string() })?;
            Ok(Box::new(engine) as Box<dyn ConsensusEngine>)
        }),
    );
}
