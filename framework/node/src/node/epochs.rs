//! One consensus engine per epoch. The node builds each epoch's engine from the same factory
//! with that epoch's recorded set (never from genesis after epoch 0), starts it on the last
//! block of the epoch before, and keeps its safety state under a key of its own. An engine
//! never reconfigures itself: its set, its stake vector and its leaders stay fixed for its life.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::consensus::{BlockRef, ConsensusEngine, EngineContext, EpochRange, LocalValidator, ValidatorSet};
use crate::ledger::{Ledger, LedgerError};
use crate::registry::{ConsensusFactory, PluginSettings};
use crate::types::{Certificate, EpochSchedule, Hash, Keypair};

/// What the node needs to build any epoch's engine.
#[derive(Clone)]
pub(super) struct EngineMaker {
    pub(super) factory: ConsensusFactory,
    pub(super) settings: PluginSettings,
    pub(super) chain_id: String,
    pub(super) genesis: Hash,
    pub(super) schedule: Option<EpochSchedule>,
    /// This node's validator key, if it may sign (it signs in the epochs whose set holds it).
    pub(super) signer: Option<Keypair>,
}

/// Why an epoch's engine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EpochError {
    #[error("epoch {0} has no recorded validator set (the last block of the epoch before is not committed)")]
    NoSet(u64),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Plugin(#[from] crate::registry::PluginError),
}

impl EngineMaker {
    /// The heights of `epoch` as `ledger`'s committed state schedules them (genesis's length
    /// and governance's changes; see [`Ledger::epoch_timeline`]). Without a ledger (a node
    /// checking its settings before it opens one): genesis's schedule, exact for epoch 0.
    pub(super) fn range(&self, ledger: Option<&Ledger>, epoch: u64) -> EpochRange {
        match (ledger, &self.schedule) {
            (Some(ledger), Some(_)) => EpochRange::of_timeline(ledger.epoch_timeline().as_ref(), epoch),
            _ => EpochRange::of(self.schedule.as_ref(), epoch),
        }
    }

    /// The context of an engine for `range`'s epoch and validator set `validators`; `local`
    /// only if this node signs and is in the set.
    pub(super) fn context(&self, range: EpochRange, validators: ValidatorSet, signing: bool) -> EngineContext {
        let local = match (&self.signer, signing) {
            (Some(key), true) => validators.index_of(&key.public()).map(|index| LocalValidator { index, identity: key.clone() }),
            _ => None,
        };
        EngineContext { chain_id: self.chain_id.clone(), genesis: self.genesis, validators, local, epoch: range }
    }

    /// The recorded set of `epoch`.
    pub(super) fn validators(ledger: &Ledger, epoch: u64) -> Result<ValidatorSet, EpochError> {
        let entries = ledger.validator_set(epoch)?.ok_or(EpochError::NoSet(epoch))?;
        Ok(ValidatorSet::from_entries(&entries))
    }

    /// `epoch`'s engine, with its set.
    pub(super) fn engine(
        &self,
        ledger: &Ledger,
        epoch: u64,
        signing: bool,
    ) -> Result<(Box<dyn ConsensusEngine>, EngineContext), EpochError> {
        let ctx = self.context(self.range(Some(ledger), epoch), Self::validators(ledger, epoch)?, signing);
        Ok(((self.factory)(&ctx, &self.settings)?, ctx))
    }
}

/// The key the safety state of `epoch`'s engine is kept under (epoch 0 keeps the engine's
/// name alone, as before epochs existed).
pub(super) fn safety_key(engine: &str, epoch: u64) -> Vec<u8> {
    match epoch {
        0 => engine.as_bytes().to_vec(),
        e => format!("{engine}@{e}").into_bytes(),
    }
}

/// Checks certificates with the key-less engine of each block's own epoch, built when first
/// needed from the set the ledger recorded. Blocks of an epoch whose set is not yet known
/// (the last block before it is not committed here) cannot be checked yet.
pub(crate) struct EpochVerifiers {
    by_epoch: Option<(EngineMaker, Arc<Ledger>)>,
    /// Recent epochs' verifiers (at most [`KEPT_VERIFIERS`]).
    engines: Mutex<BTreeMap<u64, Box<dyn ConsensusEngine>>>,
}

const KEPT_VERIFIERS: usize = 4;

impl EpochVerifiers {
    pub(super) fn new(maker: EngineMaker, ledger: Arc<Ledger>) -> Self {
        EpochVerifiers { by_epoch: Some((maker, ledger)), engines: Mutex::new(BTreeMap::new()) }
    }

    /// One engine for every block (a chain whose set never changes).
    #[cfg(test)]
    pub(super) fn single(engine: Box<dyn ConsensusEngine>) -> Self {
        EpochVerifiers { by_epoch: None, engines: Mutex::new(BTreeMap::from([(0, engine)])) }
    }

    /// Whether `certificate` proves `block` final under the rules and set of its epoch.
    pub(super) fn verify(&self, block: &BlockRef, certificate: &Certificate) -> Result<(), String> {
        let epoch = self.by_epoch.as_ref().map_or(0, |(_, ledger)| ledger.epoch_of(block.height));
        self.with_engine(epoch, |engine| engine.verify_certificate(block, certificate).map_err(|e| e.to_string()))
    }

    /// Whether `evidence` proves misbehaviour under the rules and set of its own epoch.
    pub(super) fn verify_evidence(&self, evidence: &crate::consensus::Evidence) -> Result<(), String> {
        self.with_engine(evidence.epoch, |engine| engine.verify_evidence(evidence).map_err(|e| e.to_string()))
    }

    /// Runs `f` with the key-less engine of `epoch` (epoch 0's only, without epochs).
    fn with_engine<T>(&self, epoch: u64, f: impl FnOnce(&dyn ConsensusEngine) -> Result<T, String>) -> Result<T, String> {
        let mut engines = self.engines.lock();
        let epoch = match &self.by_epoch {
            None => 0,
            Some((maker, ledger)) => {
                if !engines.contains_key(&epoch) {
                    let validators = EngineMaker::validators(ledger, epoch).map_err(|e| e.to_string())?;
                    let ctx = maker.context(maker.range(Some(ledger), epoch), validators, false);
                    let engine = (maker.factory)(&ctx, &maker.settings).map_err(|e| e.to_string())?;
                    if engines.len() >= KEPT_VERIFIERS {
                        engines.pop_first();
                    }
                    engines.insert(epoch, engine);
                }
                epoch
            }
        };
        let engine = engines.get(&epoch).ok_or("no verifier")?;
        f(engine.as_ref())
    }
}
