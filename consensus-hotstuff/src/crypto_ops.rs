//! Process-wide counts of the engine's public-key operations.
//!
//! The engine's cost per block is almost all cryptography, so how many operations a block takes
//! is the number that explains a benchmark: the simulator bench divides these counts by the
//! blocks committed and prices them with single operations timed in the same run, giving the
//! floor the engine's own code sits on. Counting is one relaxed atomic add per operation (each
//! operation costs tens of microseconds or more); the counts are shared by every engine in the
//! process, so they mean "per process", not "per validator".
//!
//! ```
//! use aether_consensus_hotstuff::certificate::BlsSecretKey;
//! use aether_consensus_hotstuff::crypto_ops::{CryptoOp, CryptoOpCounts};
//!
//! let before = CryptoOpCounts::now();
//! let key = BlsSecretKey::from_seed([1; 32]);
//! assert!(key.public().verify_possession(&key.prove_possession()));
//! let ops = CryptoOpCounts::now().since(&before);
//! assert!(ops.get(CryptoOp::BlsSign) >= 1 && ops.get(CryptoOp::PossessionVerify) >= 1);
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

/// One kind of public-key operation the engine performs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CryptoOp {
    /// A BLS signature: a vote, a timeout or a proof of possession.
    BlsSign,
    /// A quorum certificate checked: key aggregation and one pairing check.
    QcVerify,
    /// Votes aggregated into a QC by its collector: a group check per vote and one pairing check.
    QcAggregate,
    /// One vote or timeout checked on its own (only after an aggregate failed).
    SignatureVerify,
    /// A timeout certificate checked (also the check of one its collector formed): one pairing
    /// per distinct reported high-QC round, plus one.
    TcVerify,
    /// A proof of possession checked (committee set-up).
    PossessionVerify,
    /// An ECVRF proof made (a leader's election proof).
    VrfProve,
    /// An ECVRF proof checked.
    VrfVerify,
    /// A proposal's ed25519 signature checked.
    ProposalVerify,
}

impl CryptoOp {
    /// Every operation, in a fixed order.
    pub const ALL: [CryptoOp; 9] = [
        CryptoOp::BlsSign,
        CryptoOp::QcVerify,
        CryptoOp::QcAggregate,
        CryptoOp::SignatureVerify,
        CryptoOp::TcVerify,
        CryptoOp::PossessionVerify,
        CryptoOp::VrfProve,
        CryptoOp::VrfVerify,
        CryptoOp::ProposalVerify,
    ];

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            CryptoOp::BlsSign => "BLS sign",
            CryptoOp::QcVerify => "QC verify",
            CryptoOp::QcAggregate => "QC aggregate",
            CryptoOp::SignatureVerify => "one signature verify",
            CryptoOp::TcVerify => "TC verify",
            CryptoOp::PossessionVerify => "PoP verify",
            CryptoOp::VrfProve => "VRF prove",
            CryptoOp::VrfVerify => "VRF verify",
            CryptoOp::ProposalVerify => "ed25519 verify",
        }
    }
}

static COUNTS: [AtomicU64; CryptoOp::ALL.len()] = [const { AtomicU64::new(0) }; CryptoOp::ALL.len()];

/// Counts one `op`.
pub(crate) fn count(op: CryptoOp) {
    COUNTS[op as usize].fetch_add(1, Ordering::Relaxed);
}

/// A snapshot of the counts (or, from [`CryptoOpCounts::since`], the operations between two).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CryptoOpCounts([u64; CryptoOp::ALL.len()]);

impl CryptoOpCounts {
    /// The process's counts so far.
    pub fn now() -> CryptoOpCounts {
        CryptoOpCounts(std::array::from_fn(|i| COUNTS[i].load(Ordering::Relaxed)))
    }

    /// How many `op`s.
    pub fn get(&self, op: CryptoOp) -> u64 {
        self.0[op as usize]
    }

    /// The operations counted after `earlier` was taken.
    pub fn since(&self, earlier: &CryptoOpCounts) -> CryptoOpCounts {
        CryptoOpCounts(std::array::from_fn(|i| self.0[i].saturating_sub(earlier.0[i])))
    }
}
