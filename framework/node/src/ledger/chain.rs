//! The chain's own settings in state — its parameters and each module's active version — and
//! the pseudo-module [`CHAIN_MODULE`] through which a module genesis grants `govern_chain`
//! changes them (see [`crate::chain`]).
//!
//! Records live in the system account's storage, written only when something changes, so a
//! chain that never changes anything has the state (and roots) it always had:
//! - `chain/params`: the [`ChainParams`] (absent: [`ChainParams::DEFAULT`]);
//! - `module/<name>`: a [`ModuleVersion`] (absent: the genesis version, nothing scheduled);
//! - `chain/epoch_length`: a length set in the current epoch, for the next (absent: none);
//! - `chain/epochs`: every length change made, oldest first, a `Vec<`[`EpochLengthChange`]`>`
//!   (absent: the genesis length forever).

use std::sync::Arc;

use super::modules::{system_address, Modules, Runtime};
use super::LedgerError;
use crate::chain::{ChainCall, ChainParams, ModuleVersion, ScheduledUpgrade, CHAIN_MODULE};
use crate::module::{ModuleError, RuntimeModule};
use crate::types::{EpochLengthChange, EpochTimeline, Height, MAX_EPOCH_LENGTH};
use crate::vm::state::{Journal, StateReader};

// The defaults are the VM's historical constants: a chain that never sets parameters runs
// exactly as before they were in state.
const _: () = assert!(ChainParams::DEFAULT.max_block_gas == crate::vm::gas::MAX_BLOCK_GAS);
const _: () = assert!(ChainParams::DEFAULT.gas_per_fee_unit == crate::vm::gas::GAS_PER_FEE_UNIT);

const PARAMS_KEY: &[u8] = b"chain/params";
const PENDING_EPOCH_LENGTH_KEY: &[u8] = b"chain/epoch_length";
const EPOCHS_KEY: &[u8] = b"chain/epochs";
/// Bounds the decoding of the history of epoch lengths (each change is 24 bytes; at most one
/// per epoch, so ten million is beyond any chain's life).
const EPOCHS_MAX_BYTES: usize = 24 * 10_000_000 + 4;

/// The chain's epoch schedule as `journal`'s state records it (`None`: a chain without epochs).
pub(super) fn timeline_in<R: StateReader>(journal: &mut Journal<R>, runtime: &Runtime) -> Result<Option<EpochTimeline>, String> {
    let Some(schedule) = &runtime.epochs else { return Ok(None) };
    let changes: Vec<EpochLengthChange> = match journal.storage(&system_address(), EPOCHS_KEY) {
        None => Vec::new(),
        Some(bytes) => crate::codec::decode("epoch length changes", &bytes, EPOCHS_MAX_BYTES).map_err(|e| e.to_string())?,
    };
    EpochTimeline::with_changes(schedule, &changes).map(Some).map_err(|e| e.to_string())
}

/// The epoch length set in the current epoch for the next, if any.
fn pending_length_in<R: StateReader>(journal: &mut Journal<R>) -> Result<Option<u64>, String> {
    match journal.storage(&system_address(), PENDING_EPOCH_LENGTH_KEY) {
        None => Ok(None),
        Some(bytes) => crate::codec::decode("pending epoch length", &bytes, 8).map(Some).map_err(|e| e.to_string()),
    }
}

/// On the last block of `epoch` (at `height`): applies a length set during the epoch to the
/// epochs from `epoch + 1` on, records it in the history and clears it. Returns the new length
/// when it differs from the one the next epoch had (the boundary header commits to it).
pub(super) fn close_epoch_length<R: StateReader>(
    journal: &mut Journal<R>,
    timeline: &mut EpochTimeline,
    epoch: u64,
    height: Height,
) -> Result<Option<u64>, String> {
    let Some(length) = pending_length_in(journal)? else { return Ok(None) };
    journal.set_storage(system_address(), PENDING_EPOCH_LENGTH_KEY.to_vec(), None);
    if length == timeline.length_of(epoch + 1) {
        return Ok(None);
    }
    timeline.push(EpochLengthChange { epoch: epoch + 1, first_height: height + 1, length }).map_err(|e| e.to_string())?;
    journal.set_storage(system_address(), EPOCHS_KEY.to_vec(), Some(crate::codec::encode(&timeline.changes().to_vec())));
    Ok(Some(length))
}

fn module_key(name: &str) -> Vec<u8> {
    let mut key = b"module/".to_vec();
    key.extend_from_slice(name.as_bytes());
    key
}

/// The chain parameters `journal`'s state holds.
pub(super) fn params_in<R: StateReader>(journal: &mut Journal<R>) -> Result<ChainParams, String> {
    match journal.storage(&system_address(), PARAMS_KEY) {
        None => Ok(ChainParams::DEFAULT),
        Some(bytes) => crate::codec::decode("chain parameters", &bytes, 64).map_err(|e| e.to_string()),
    }
}

/// The recorded version of module `name`, if the chain ever recorded one.
fn record_in<R: StateReader>(journal: &mut Journal<R>, name: &str) -> Result<Option<ModuleVersion>, String> {
    match journal.storage(&system_address(), &module_key(name)) {
        None => Ok(None),
        Some(bytes) => crate::codec::decode("module version", &bytes, 1024).map(Some).map_err(|e| e.to_string()),
    }
}

fn write_record<R: StateReader>(journal: &mut Journal<R>, record: &ModuleVersion) {
    journal.set_storage(system_address(), module_key(&record.name), Some(crate::codec::encode(record)));
}

/// Each module's version and scheduled upgrade, in hook order.
pub(super) fn versions_in<R: StateReader>(journal: &mut Journal<R>, runtime: &Runtime) -> Result<Vec<ModuleVersion>, String> {
    runtime
        .modules
        .iter()
        .map(|m| {
            Ok(record_in(journal, m.name())?.unwrap_or_else(|| ModuleVersion {
                name: m.name().into(),
                version: m.version(),
                scheduled: None,
            }))
        })
        .collect()
}

/// The instance of `name` at `version` this node carries.
fn instance(runtime: &Runtime, name: &str, version: u32, height: Height) -> Result<Arc<dyn RuntimeModule>, LedgerError> {
    runtime.versions.get(&(name.to_string(), version)).cloned().ok_or_else(|| missing_version(runtime, name, version, height))
}

/// The error of a node asked to run module `name` at a `version` it lacks, at `height`.
pub(super) fn missing_version(runtime: &Runtime, name: &str, version: u32, height: Height) -> LedgerError {
    LedgerError::ModuleVersionMissing {
        module: name.to_string(),
        version,
        height,
        carried: runtime.versions.range((name.to_string(), 0)..=(name.to_string(), u32::MAX)).map(|((_, v), _)| *v).collect(),
    }
}

/// An upgrade due at the start of this block: the module's position in hook order, the
/// version it leaves, and the instance it switches to.
pub(super) struct DueUpgrade {
    pub(super) index: usize,
    pub(super) from: u32,
    pub(super) to: Arc<dyn RuntimeModule>,
}

/// The modules a block at `height` starts with on `journal`'s state, in hook order, each at
/// the version the chain records, and the upgrades due at its start (one record read per
/// module). A version this node lacks — running or due — is an error: it must never run other
/// code than its peers.
pub(super) fn block_modules<R: StateReader>(
    journal: &mut Journal<R>,
    runtime: &Runtime,
    height: Height,
) -> Result<(Modules, Vec<DueUpgrade>), LedgerError> {
    let (mut active, mut due) = (Vec::with_capacity(runtime.modules.len()), Vec::new());
    for (index, genesis_instance) in runtime.modules.iter().enumerate() {
        let name = genesis_instance.name();
        let Some(record) = record_in(journal, name).map_err(|e| super::corrupt("module version", &e))? else {
            active.push(genesis_instance.clone());
            continue;
        };
        active.push(if record.version == genesis_instance.version() {
            genesis_instance.clone()
        } else {
            instance(runtime, name, record.version, height)?
        });
        // Scheduling refuses heights not above the current one, so `<` cannot happen; `<=`
        // still never leaves an upgrade behind.
        if let Some(upgrade) = record.scheduled.filter(|u| u.height <= height) {
            due.push(DueUpgrade { index, from: record.version, to: instance(runtime, name, upgrade.version, height)? });
        }
    }
    Ok((active, due))
}

/// Records that module `name` runs `version`, with nothing scheduled.
pub(super) fn record_version<R: StateReader>(journal: &mut Journal<R>, name: &str, version: u32) {
    write_record(journal, &ModuleVersion { name: name.to_string(), version, scheduled: None });
}

/// What a granted module's call to [`CHAIN_MODULE`] does, on `journal` at `height`; `spend`
/// charges gas. Returns the event it emits (topic, data).
pub(super) fn call<R: StateReader>(
    journal: &mut Journal<R>,
    runtime: &Runtime,
    height: Height,
    call: &[u8],
    spend: &mut dyn FnMut(u64) -> Result<(), ModuleError>,
) -> Result<(&'static [u8], Vec<u8>), ModuleError> {
    use crate::vm::gas;
    let write_cost = |bytes: usize| gas::STORAGE_WRITE.saturating_add((bytes as u64).saturating_mul(gas::STORAGE_BYTE));
    match ChainCall::decode(call)? {
        ChainCall::SetParams(params) => {
            params.validate().map_err(|e| ModuleError::Failed(format!("chain parameters refused: {e}")))?;
            let bytes = crate::codec::encode(&params);
            spend(write_cost(PARAMS_KEY.len() + bytes.len()))?;
            journal.set_storage(system_address(), PARAMS_KEY.to_vec(), Some(bytes.clone()));
            Ok((b"chain/params", bytes))
        }
        ChainCall::ScheduleUpgrade { module, version, height: at } => {
            let Some(genesis_instance) = super::modules::find(&runtime.modules, &module) else {
                return Err(ModuleError::UnknownModule(module));
            };
            if at <= height {
                return Err(ModuleError::Failed(format!(
                    "an upgrade of {module} cannot be scheduled at height {at}: it must be after the current height {height}"
                )));
            }
            spend(gas::STORAGE_READ)?;
            let current = record_in(journal, &module).map_err(ModuleError::Failed)?.map_or(genesis_instance.version(), |r| r.version);
            if version == current {
                return Err(ModuleError::Failed(format!("module {module} already runs version {version}")));
            }
            let record = ModuleVersion { name: module, version: current, scheduled: Some(ScheduledUpgrade { version, height: at }) };
            let bytes = crate::codec::encode(&record);
            spend(write_cost(bytes.len() + 7 + record.name.len()))?;
            write_record(journal, &record);
            Ok((b"chain/upgrade_scheduled", crate::codec::encode(&(record.name, version, at))))
        }
        ChainCall::SetEpochLength { length } => {
            if runtime.epochs.is_none() {
                return Err(ModuleError::Failed("the epoch length cannot be set: this chain has no epochs (genesis sets none)".into()));
            }
            if length == 0 || length > MAX_EPOCH_LENGTH {
                return Err(ModuleError::Failed(format!("epoch length {length} refused: it must be within 1..={MAX_EPOCH_LENGTH}")));
            }
            let bytes = crate::codec::encode(&length);
            spend(write_cost(PENDING_EPOCH_LENGTH_KEY.len() + bytes.len()))?;
            journal.set_storage(system_address(), PENDING_EPOCH_LENGTH_KEY.to_vec(), Some(bytes.clone()));
            Ok((b"chain/epoch_length", bytes))
        }
    }
}

/// Answers a query to [`CHAIN_MODULE`] on `journal`'s state: `params` and `modules`, as JSON.
pub(super) fn query<R: StateReader>(journal: &mut Journal<R>, runtime: &Runtime, path: &str) -> Result<Vec<u8>, ModuleError> {
    let json = match path {
        "params" => serde_json::to_vec(&params_in(journal).map_err(ModuleError::Failed)?),
        "modules" => serde_json::to_vec(&versions_in(journal, runtime).map_err(ModuleError::Failed)?),
        "epochs" => {
            let changes = timeline_in(journal, runtime).map_err(ModuleError::Failed)?.map(|t| t.changes().to_vec()).unwrap_or_default();
            let pending = pending_length_in(journal).map_err(ModuleError::Failed)?;
            serde_json::to_vec(&serde_json::json!({ "changes": changes, "pending_length": pending }))
        }
        other => return Err(ModuleError::UnknownQuery(other.to_string())),
    };
    json.map_err(|e| ModuleError::Failed(e.to_string()))
}

/// Whether `name` is the ledger's pseudo-module.
pub(super) fn is_chain(name: &str) -> bool {
    name == CHAIN_MODULE
}
