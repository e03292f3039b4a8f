//! # aether-consensus-hotstuff
//!
//! Status: **building blocks only.** This crate will hold Aether's default consensus engine —
//! chained HotStuff with the two-chain commit rule, a pacemaker with timeout certificates,
//! and ECVRF leader election — implementing the sans-I/O
//! [`aether_framework::consensus::ConsensusEngine`]. What is here today is its certificate
//! layer and leader election, complete and tested: [`certificate`] (BLS votes and quorum
//! certificates) and [`leader`] (ECVRF per RFC 9381, stake-weighted choice).
//!
//! ```
//! use aether_consensus_hotstuff::certificate::*;
//! use aether_framework::types::Hash;
//!
//! // Four validators of equal stake; each proves possession of its key.
//! let keys: Vec<BlsSecretKey> = (0..4u8).map(|i| BlsSecretKey::from_seed([i + 1; 32])).collect();
//! let committee = Committee::new(keys.iter().map(|k| (k.public(), 1, k.prove_possession())).collect()).unwrap();
//!
//! let vote = VoteMessage { round: 7, block: Hash::digest(b"example", b"block") };
//! let mut collector = VoteCollector::new(&committee, vote);
//! assert!(collector.add(0, keys[0].sign_vote(&vote)).unwrap().certificate.is_none());
//! assert!(collector.add(1, keys[1].sign_vote(&vote)).unwrap().certificate.is_none());
//! let qc = collector.add(3, keys[3].sign_vote(&vote)).unwrap().certificate.expect("3 of 4 is a quorum");
//! assert!(qc.verify(&committee).is_ok());
//! ```

pub mod certificate;
pub mod leader;
