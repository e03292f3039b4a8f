//! Following validator sets from genesis, as a light client does: each epoch's last block
//! commits to the next set in its header, and that block's certificate, checked with the
//! epoch's own set, vouches for it. A chain of [`EpochChange`]s from genesis therefore proves
//! the set of any epoch to someone who trusts only the genesis file.
//!
//! ```
//! # use aether_node::light::{verify_validator_set, LightClientError};
//! # use aether_primitives::types::*;
//! # let genesis = Genesis { chain_id: "c".into(), genesis_time_ms: 0, accounts: vec![], modules: vec![], epochs: None,
//! #     validators: vec![ValidatorEntry { name: "v".into(), identity: Keypair::from_seed([1; 32]).public(), consensus_key: vec![1], stake: 1 }] };
//! // Epoch 0 needs no proof: it is genesis's set.
//! let make = |_: &aether_api::consensus::EngineContext| -> Result<Box<dyn aether_api::consensus::ConsensusEngine>, String> { unreachable!() };
//! assert_eq!(verify_validator_set(&genesis, 0, &[], make).unwrap(), genesis.validators);
//! // A later epoch needs one change per epoch before it.
//! assert!(matches!(verify_validator_set(&genesis, 2, &[], make), Err(LightClientError::NoEpochs)));
//! ```

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::consensus::{BlockRef, ConsensusEngine, EngineContext, EpochRange, ValidatorSet};
use crate::ledger::Ledger;
use crate::types::{epoch_start_commitment, Certificate, EpochLengthChange, EpochTimeline, Genesis, Header, ValidatorEntry};

/// The end of one epoch: its last block's header, the certificate that decided it, and the
/// set that header commits to (the next epoch's).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct EpochChange {
    /// The epoch this block ends.
    pub epoch: u64,
    pub header: Header,
    pub certificate: Certificate,
    /// The set of epoch `epoch + 1`.
    pub next: Vec<ValidatorEntry>,
    /// The length of epoch `epoch + 1` and those after it, when governance changed it at this
    /// boundary (the header then commits to it with the set,
    /// [`epoch_start_commitment`]); `None`: the length stays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_length: Option<u64>,
}

/// Why a chain of epoch changes does not prove a set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LightClientError {
    #[error("this chain has no epochs: its only set is genesis's (epoch 0)")]
    NoEpochs,
    #[error("the proof holds {got} epoch changes; epoch {epoch} needs {epoch} (one per epoch before it)")]
    Length { epoch: u64, got: usize },
    #[error("epoch change {index} ends epoch {got}, expected {expected}")]
    OutOfOrder { index: usize, expected: u64, got: u64 },
    #[error("the block ending epoch {epoch} is at height {got}; epoch {epoch} ends at {expected}")]
    WrongHeight { epoch: u64, expected: u64, got: u64 },
    #[error("the block ending epoch {epoch} belongs to chain {got:?}, not {expected:?}")]
    WrongChain { epoch: u64, expected: String, got: String },
    #[error("the certificate of the block ending epoch {epoch} does not verify with that epoch's set: {reason}")]
    Certificate { epoch: u64, reason: String },
    #[error("the block ending epoch {epoch} commits to another next set than the one given (header {header:?}, given set {given})")]
    Commitment { epoch: u64, header: Option<crate::types::Hash>, given: crate::types::Hash },
    #[error("epoch {epoch}'s engine cannot be built to check it: {reason}")]
    Engine { epoch: u64, reason: String },
    #[error("the block ending epoch {epoch} gives the next epochs a length the schedule refuses: {reason}")]
    EpochLength { epoch: u64, reason: String },
}

/// The set of `epoch`, proven from `genesis` by `changes` (the changes ending epochs
/// `0 .. epoch`, in order). `make` builds a key-less engine of the chain's consensus for a
/// context (the chain's factory with its settings).
pub fn verify_validator_set(
    genesis: &Genesis,
    epoch: u64,
    changes: &[EpochChange],
    make: impl Fn(&EngineContext) -> Result<Box<dyn ConsensusEngine>, String>,
) -> Result<Vec<ValidatorEntry>, LightClientError> {
    if epoch == 0 {
        return Ok(genesis.validators.clone());
    }
    if genesis.epochs.is_none() {
        return Err(LightClientError::NoEpochs);
    }
    if changes.len() as u64 != epoch {
        return Err(LightClientError::Length { epoch, got: changes.len() });
    }
    let Some(schedule) = &genesis.epochs else { return Err(LightClientError::NoEpochs) };
    let mut timeline = EpochTimeline::new(schedule);
    let sets = verify_epoch_changes(genesis, 0, &genesis.validators, &mut timeline, changes, make)?;
    Ok(sets.last().cloned().unwrap_or_else(|| genesis.validators.clone()))
}

/// The sets `changes` prove, one per change, in order: `changes` must end epochs `from`,
/// `from + 1`, ... in turn, and `set` is epoch `from`'s set, already proven (genesis's for
/// epoch 0). For whoever learns sets a batch at a time (state sync, a light client that keeps
/// what it verified); [`verify_validator_set`] is this from genesis. `timeline` is the epoch
/// schedule proven up to epoch `from` (from genesis: `EpochTimeline::new` of its schedule);
/// the length changes `changes` prove are added to it, so the next batch continues from it.
pub fn verify_epoch_changes(
    genesis: &Genesis,
    from: u64,
    set: &[ValidatorEntry],
    original: &mut EpochTimeline,
    changes: &[EpochChange],
    make: impl Fn(&EngineContext) -> Result<Box<dyn ConsensusEngine>, String>,
) -> Result<Vec<Vec<ValidatorEntry>>, LightClientError> {
    if genesis.epochs.is_none() {
        return Err(LightClientError::NoEpochs);
    }
    let genesis_hash = Ledger::genesis_block(genesis).hash();
    // Kept only if every change proves.
    let mut timeline = original.clone();
    let mut set = set.to_vec();
    let mut proven = Vec::with_capacity(changes.len());
    for (index, change) in changes.iter().enumerate() {
        let e = from + index as u64;
        if change.epoch != e {
            return Err(LightClientError::OutOfOrder { index, expected: e, got: change.epoch });
        }
        let last = timeline.last_height(e);
        if change.header.height != last {
            return Err(LightClientError::WrongHeight { epoch: e, expected: last, got: change.header.height });
        }
        if change.header.chain_id != genesis.chain_id {
            return Err(LightClientError::WrongChain { epoch: e, expected: genesis.chain_id.clone(), got: change.header.chain_id.clone() });
        }
        let ctx = EngineContext {
            chain_id: genesis.chain_id.clone(),
            genesis: genesis_hash,
            validators: ValidatorSet::from_entries(&set),
            local: None,
            epoch: EpochRange::of_timeline(Some(&timeline), e),
        };
        let engine = make(&ctx).map_err(|reason| LightClientError::Engine { epoch: e, reason })?;
        let block = BlockRef { hash: change.header.hash(), height: change.header.height };
        engine
            .verify_certificate(&block, &change.certificate)
            .map_err(|err| LightClientError::Certificate { epoch: e, reason: err.to_string() })?;
        let given = epoch_start_commitment(e + 1, &change.next, change.next_length);
        if change.header.next_validators != Some(given) {
            return Err(LightClientError::Commitment { epoch: e, header: change.header.next_validators, given });
        }
        if let Some(length) = change.next_length {
            timeline
                .push(EpochLengthChange { epoch: e + 1, first_height: last + 1, length })
                .map_err(|err| LightClientError::EpochLength { epoch: e, reason: err.to_string() })?;
        }
        set = change.next.clone();
        proven.push(set.clone());
    }
    *original = timeline;
    Ok(proven)
}
