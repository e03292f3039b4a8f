//! The consensus slot: a sans-I/O state machine.
//!
//! An engine never touches a socket, a clock, a disk or a thread. The node's driver
//! ([`driver::Driver`]) feeds it [`Input`]s with the current time and performs the
//! [`Output`]s it returns, **in order**. Because it is pure, the same engine runs in the node
//! and in a deterministic simulator, and it can cross a dynamic-library boundary as bytes:
//! messages are opaque byte strings that only the engine decodes.
//!
//! # Contract between engine and driver
//! - The driver delivers inputs one at a time and performs every output of one `handle` call
//!   before delivering the next input.
//! - [`Output::Persist`] is durable (fsync) before any later output is performed; if it cannot
//!   be made durable the driver stops the node. So a restarted validator, given the last
//!   persisted state in [`Input::Start`], never signs two conflicting votes.
//! - [`Output::BuildPayload`] and [`Output::VerifyPayload`] are answered by a later
//!   [`Input::PayloadBuilt`]/[`Input::PayloadBuildFailed`] and [`Input::PayloadVerified`]. The
//!   driver may answer after other inputs have arrived; engines must not assume it is immediate.
//! - [`Output::Commit`] names a block the engine learned from `PayloadBuilt` or from a
//!   `PayloadVerified { valid: true }`, and whose parent is the last committed block: commits
//!   come in height order without gaps. The driver executes and stores the block with its
//!   certificate atomically before performing later outputs.
//! - Timers are absolute times in milliseconds on the driver's clock. Setting a timer with an
//!   id that is already set replaces it. A timer fires at most once.
//! - Messages from the network may be malformed or malicious: engines must reject bad bytes
//!   without panicking (and may report [`Output::Evidence`]).
//!
//! # Example: an engine is a state machine the driver feeds
//! ```
//! use aether_api::consensus::{driver::{Driver, DriverError, DriverIo, PayloadCheck}, BlockRef, ConsensusEngine, ConsensusError, Input, Output, Payload};
//! use aether_primitives::types::{Certificate, Evidence, Hash, TimestampMs};
//!
//! /// Wakes up every second; a real engine would ask for a block and vote on it.
//! struct Metronome;
//! impl ConsensusEngine for Metronome {
//!     fn name(&self) -> &'static str { "metronome" }
//!     fn handle(&mut self, now: TimestampMs, input: Input, out: &mut Vec<Output>) {
//!         if matches!(input, Input::Start { .. } | Input::Timer { .. }) {
//!             out.push(Output::SetTimer { id: 0, at_ms: now + 1_000 });
//!         }
//!     }
//!     fn verify_certificate(&self, _: &BlockRef, _: &Certificate) -> Result<(), ConsensusError> { Ok(()) }
//! }
//!
//! let mut out = Vec::new();
//! let genesis = BlockRef { hash: Hash::ZERO, height: 0 };
//! Metronome.handle(0, Input::Start { committed: genesis, certificate: Certificate::default(), safety_state: None }, &mut out);
//! assert!(matches!(out[0], Output::SetTimer { at_ms: 1_000, .. }));
//!
//! // The driver keeps the engine's timers; `aether-testkit`'s simulator and the node drive it.
//! let mut driver = Driver::new(Box::new(Metronome));
//! # struct NoIo;
//! # impl DriverIo for NoIo {
//! #     fn broadcast(&mut self, _: Vec<u8>) {}
//! #     fn send(&mut self, _: u32, _: Vec<u8>) {}
//! #     fn persist(&mut self, _: &[u8]) -> Result<(), DriverError> { Ok(()) }
//! #     fn build_payload(&mut self, _: &BlockRef, _: &Certificate, _: TimestampMs) -> Result<Payload, aether_api::consensus::driver::BuildError> { unreachable!() }
//! #     fn verify_payload(&mut self, _: &[u8], _: &dyn ConsensusEngine) -> PayloadCheck { unreachable!() }
//! #     fn commit(&mut self, _: &BlockRef, _: &Certificate) -> Result<(), DriverError> { Ok(()) }
//! #     fn evidence(&mut self, _: Evidence) {}
//! # }
//! driver.handle(0, Input::Start { committed: genesis, certificate: Certificate::default(), safety_state: None }, &mut NoIo).unwrap();
//! assert_eq!(driver.next_deadline(), Some(1_000));
//! ```

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::types::{Address, Amount, Certificate, Hash, Height, Keypair, PublicKey, TimestampMs};

pub mod driver;

pub use crate::types::{Evidence, ValidatorIndex};
/// Engine-chosen timer identity.
pub type TimerId = u64;

/// A block as consensus sees it: its hash and height.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct BlockRef {
    pub hash: Hash,
    pub height: Height,
}

/// A built block handed to the engine: its reference and its canonical encoding (which an
/// engine may embed in a proposal, or leave to a data-availability plugin).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payload {
    pub block: BlockRef,
    pub parent: Hash,
    pub bytes: Vec<u8>,
    /// The block carries no transactions and no evidence (engines may pace such blocks
    /// slower: an idle chain need not grow quickly).
    pub empty: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// First input after construction. `committed` is the last committed block (genesis on a
    /// new chain) with its certificate; `safety_state` is the last state the engine persisted
    /// with [`Output::Persist`], if any.
    Start { committed: BlockRef, certificate: Certificate, safety_state: Option<Vec<u8>> },
    /// A message from validator `from`. Unauthenticated bytes: the engine checks signatures.
    Message { from: ValidatorIndex, bytes: Vec<u8> },
    /// A timer set with [`Output::SetTimer`] reached its time.
    Timer { id: TimerId },
    /// Answer to [`Output::BuildPayload`].
    PayloadBuilt { payload: Payload },
    /// [`Output::BuildPayload`] could not be answered (e.g. the parent is unknown).
    PayloadBuildFailed { parent: Hash, reason: String },
    /// Answer to [`Output::VerifyPayload`]: whether the block is valid on top of its parent.
    /// `block` and `parent` (the block it extends, read from its header) are `None` when the
    /// bytes did not even decode as a block. Engines must check `parent` is the block the
    /// proposal claims to extend: a faulty proposer can send a valid block on another parent.
    /// `empty`: the block carries no transactions and no evidence.
    PayloadVerified { block: Option<BlockRef>, parent: Option<Hash>, valid: bool, empty: bool },
    /// The mempool holds transactions ready for a block. Engines may propose early.
    TransactionsWaiting,
    /// Block sync committed blocks fetched from peers, up to `committed`, whose `certificate`
    /// passed [`ConsensusEngine::verify_certificate`] (proof that it is final). Sent only after
    /// `Start`, and only with a height above every commit the engine has output. The engine
    /// takes `committed` as its committed head, forgets what it held at or below it, and
    /// continues consensus from there (it must not output a commit at or below it again).
    Synced { committed: BlockRef, certificate: Certificate },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Broadcast {
        bytes: Vec<u8>,
    },
    Send {
        to: ValidatorIndex,
        bytes: Vec<u8>,
    },
    /// Deliver [`Input::Timer`] at `at_ms` (driver clock). Replaces a timer with the same id.
    SetTimer {
        id: TimerId,
        at_ms: TimestampMs,
    },
    CancelTimer {
        id: TimerId,
    },
    /// Build a block on `parent`, carrying `parent_certificate` in its header.
    BuildPayload {
        parent: BlockRef,
        parent_certificate: Certificate,
    },
    /// Check the encoded block `bytes`: it decodes, extends a known block, and executes to the
    /// roots its header claims.
    VerifyPayload {
        bytes: Vec<u8>,
    },
    /// Make `state` durable before performing any later output.
    Persist {
        state: Vec<u8>,
    },
    /// `block` is decided; `certificate` proves it (see [`ConsensusEngine::verify_certificate`]).
    Commit {
        block: BlockRef,
        certificate: Certificate,
    },
    /// A validator misbehaved provably.
    Evidence(Evidence),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsensusError {
    #[error("certificate does not verify: {0}")]
    BadCertificate(String),
    #[error("engine cannot run with this validator set: {0}")]
    Setup(String),
    #[error("evidence does not prove misbehaviour: {0}")]
    BadEvidence(String),
}

/// A consensus engine: one value per node, owned by the driver task, never behind a lock.
pub trait ConsensusEngine: Send + 'static {
    /// The engine's registered name.
    fn name(&self) -> &'static str;

    /// Handles one input at time `now_ms`, appending outputs to `out` (which the driver passes
    /// empty). Must not panic on any input; must be deterministic given the inputs.
    fn handle(&mut self, now_ms: TimestampMs, input: Input, out: &mut Vec<Output>);

    /// Checks that `certificate` alone proves `block` final under this engine's rules and
    /// validator set: light clients, block sync and state sync trust a block on this answer.
    /// A certificate that only shows the block was certified (not decided) must be refused;
    /// engines whose commit outputs carry such certificates for some blocks (HotStuff's
    /// ancestors of a directly decided block) prove those blocks final through a descendant:
    /// its certificate verifies here, and parent hashes link it back.
    fn verify_certificate(&self, block: &BlockRef, certificate: &Certificate) -> Result<(), ConsensusError>;

    /// Checks the certificate a proposed block's header carries for its parent
    /// (`Header::parent_certificate`, which the proposer chose): `Ok` only if it is a
    /// certificate this engine's rules issue for `parent` under the set of `parent`'s epoch —
    /// so the signers it names (see `aether_api::registry::CertificateSigners`) really signed
    /// `parent`. Runtime modules read those signers (downtime slashing), so a proposer must
    /// not be able to make them up.
    ///
    /// Pre: called by the driver's I/O for a block it was asked to verify
    /// ([`Output::VerifyPayload`]), with `parent` = the block the header names and its height,
    /// after that parent is known to the engine (the engine asked to verify a payload on it).
    /// Post: the node treats `Err` as an invalid block (the engine gets `valid: false` and does
    /// not vote). Must not panic on any bytes; need not be cheap, but is called once per
    /// proposal. A block committed by block sync is not checked here: its finality certificate
    /// shows a quorum voted for it, and an honest validator votes only after this check passed.
    ///
    /// The default accepts anything: right for an engine that registers no
    /// `CertificateSigners` (no module reads its certificates). One that registers a decoder
    /// must override this.
    fn verify_parent_certificate(&self, _parent: &BlockRef, _certificate: &Certificate) -> Result<(), ConsensusError> {
        Ok(())
    }

    /// Whether this engine, as a validator, needs the state it persisted ([`Output::Persist`])
    /// to sign safely: without it, it could sign something conflicting with what it signed
    /// before a crash (a second vote in a round). A node whose chain has commits but whose
    /// store holds no safety state for such an engine does not start it as a signer until its
    /// operator confirms the key never signed on this chain (`aether run --fresh-safety-state`).
    /// Engines that sign nothing they could later contradict (solo) keep the default `false`.
    fn keeps_safety_state(&self) -> bool {
        false
    }

    /// Checks that `evidence` (from this node's engine, a peer, or a proposed block) proves
    /// what it claims, using only the validator set: `Ok` means the offender really signed
    /// two conflicting statements. Nodes gossip and record in blocks only evidence that passes.
    /// The default refuses everything: an engine that reports no evidence accepts none.
    fn verify_evidence(&self, evidence: &Evidence) -> Result<(), ConsensusError> {
        Err(ConsensusError::BadEvidence(format!("engine {} defines no evidence (kind {:?})", self.name(), evidence.kind)))
    }
}

/// The smallest stake that is more than two thirds of `total`: `floor(2 * total / 3) + 1`,
/// computed without overflowing for any `u128` total. Every BFT quorum in Aether uses this.
pub fn quorum_threshold(total: Amount) -> Amount {
    total / 3 * 2 + (total % 3) * 2 / 3 + 1
}

/// One member of the validator set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validator {
    pub name: String,
    pub identity: PublicKey,
    pub address: Address,
    pub consensus_key: Vec<u8>,
    pub stake: Amount,
}

/// The validators of an epoch, in a fixed order (their index is their position).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    total_stake: Amount,
}

impl ValidatorSet {
    pub fn new(validators: Vec<Validator>) -> ValidatorSet {
        let total_stake = validators.iter().map(|v| v.stake).fold(0u128, |a, b| a.saturating_add(b));
        ValidatorSet { validators, total_stake }
    }
    pub fn from_genesis(genesis: &crate::types::Genesis) -> ValidatorSet {
        ValidatorSet::from_entries(&genesis.validators)
    }
    /// The set an epoch's record lists (genesis's, or what a validator source named).
    pub fn from_entries(entries: &[crate::types::ValidatorEntry]) -> ValidatorSet {
        ValidatorSet::new(
            entries
                .iter()
                .map(|v| Validator {
                    name: v.name.clone(),
                    identity: v.identity,
                    address: v.identity.address(),
                    consensus_key: v.consensus_key.clone(),
                    stake: v.stake,
                })
                .collect(),
        )
    }
    pub fn len(&self) -> usize {
        self.validators.len()
    }
    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }
    pub fn get(&self, index: ValidatorIndex) -> Option<&Validator> {
        self.validators.get(index as usize)
    }
    pub fn iter(&self) -> impl Iterator<Item = &Validator> {
        self.validators.iter()
    }
    pub fn index_of(&self, identity: &PublicKey) -> Option<ValidatorIndex> {
        self.validators.iter().position(|v| &v.identity == identity).map(|i| i as ValidatorIndex)
    }
    pub fn total_stake(&self) -> Amount {
        self.total_stake
    }
    /// Smallest stake that is more than two thirds of the total (see [`quorum_threshold`]).
    pub fn quorum_stake(&self) -> Amount {
        quorum_threshold(self.total_stake)
    }
}

/// What an engine factory gets: the chain, the validator set and, on a validator node, this
/// node's own key and position.
#[derive(Clone, Debug)]
pub struct EngineContext {
    pub chain_id: String,
    /// Hash of the chain's genesis block. With `chain_id`, what an engine binds every signed
    /// message to, so that nothing signed for one chain is valid on another that reuses keys
    /// (a respin keeps the id but not the genesis block).
    pub genesis: Hash,
    pub validators: ValidatorSet,
    pub local: Option<LocalValidator>,
    /// The epoch this engine runs: the node builds one engine per epoch, from the same
    /// factory, and starts it on the last block of the epoch before.
    pub epoch: EpochRange,
}

/// An epoch as its engine sees it. The engine binds every signed message to `number` (so no
/// vote of one epoch counts in another), never proposes, votes for or commits a block above
/// `last_height` (except, for engines that need a certified child to decide a block, one
/// uncommitted block at `last_height + 1` that the next epoch's engine replaces), and treats
/// the block at `first_height - 1` as its own genesis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochRange {
    pub number: u64,
    pub first_height: Height,
    /// `None`: the epoch never ends (a chain without epochs).
    pub last_height: Option<Height>,
}

impl Default for EpochRange {
    /// The only epoch of a chain without epochs.
    fn default() -> Self {
        EpochRange { number: 0, first_height: 1, last_height: None }
    }
}

impl EpochRange {
    /// Epoch `epoch` of a chain divided by `schedule` (`None`: the only epoch).
    pub fn of(schedule: Option<&crate::types::EpochSchedule>, epoch: u64) -> EpochRange {
        match schedule {
            None => EpochRange::default(),
            Some(s) => EpochRange { number: epoch, first_height: s.first_height(epoch), last_height: Some(s.last_height(epoch)) },
        }
    }

    /// Epoch `epoch` of a chain whose schedule (genesis's length and governance's changes) is
    /// `timeline` (`None`: the only epoch).
    pub fn of_timeline(timeline: Option<&crate::types::EpochTimeline>, epoch: u64) -> EpochRange {
        match timeline {
            None => EpochRange::default(),
            Some(t) => EpochRange { number: epoch, first_height: t.first_height(epoch), last_height: Some(t.last_height(epoch)) },
        }
    }

    /// Whether a block at `height` belongs to a later epoch.
    pub fn is_past(&self, height: Height) -> bool {
        self.last_height.is_some_and(|last| height > last)
    }
}

#[derive(Clone, Debug)]
pub struct LocalValidator {
    pub index: ValidatorIndex,
    pub identity: Keypair,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_is_more_than_two_thirds() {
        for total in 1u128..200 {
            let set = ValidatorSet { validators: vec![], total_stake: total };
            let q = set.quorum_stake();
            assert!(3 * q > 2 * total, "total {total} quorum {q}");
            assert!(3 * (q - 1) <= 2 * total, "total {total} quorum {q} not minimal");
        }
    }
}
