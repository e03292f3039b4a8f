//! The ledger: account state, transaction execution, and the chain store (blocks, receipts,
//! certificates) — everything that turns a decided block into committed state.
//!
//! # Status
//! Transfers with fees. Contract deploy/call and staking append `Action` variants later.
//! The state root of each header is the root of the authenticated state tree
//! ([`crate::state`], a Jellyfish Merkle tree versioned by height): only the changed accounts
//! are rehashed per block, and any retained height can prove an account or its absence.
//!
//! # Execution rules (deterministic; the block header is the only source of time)
//! A transaction is **invalid** (a block containing it is rejected) if its chain id differs,
//! its signature fails strict verification, its nonce is not the sender's account nonce, or
//! the sender cannot pay the fee. Otherwise the fee moves to the proposer and the nonce
//! advances; then the action runs, and if it fails (e.g. the balance cannot cover the amount)
//! its effects are undone and the receipt says why.

mod chain;
mod events;
mod execution;
mod modules;
mod retention;

pub use events::BlockEvents;
pub use retention::{PruneProgress, Retention};

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::codec::{self, CodecError};
use crate::consensus::{BlockRef, Evidence};
use crate::state::{self, StateDelta, StateError, StateProof};
use crate::storage::{columns, Durability, KvStore, StorageError, WriteBatch};
use crate::types::{
    domain, Account, Address, Block, Certificate, Genesis, Hash, Header, Height, Receipt, SignedTransaction, TimestampMs, TxLocation,
};

pub use execution::{max_tx_gas, HookGas, TxError, PARENT_CERTIFICATE_UNDECODABLE};
use execution::{ChainReader, ExecState};
pub use modules::system_address;

use crate::vm::executor::BlockContext;
use crate::vm::state::Changes;
use crate::vm::{CallOutcome, VmBackend};

/// Upper bound on an encoded block accepted for verification.
pub const MAX_BLOCK_BYTES: usize = 16 * 1024 * 1024;
/// Version of the on-disk layout written by this code.
/// 2: state in a Jellyfish Merkle tree (1 had a flat account table only).
/// 3: blocks record evidence (headers gain `evidence_root`; an `evidence` column).
/// 4: contracts (storage and code columns; receipts gain `output` and `contract_address`).
/// 5: epochs (headers gain `next_validators`).
/// 6: evidence carries its epoch (blocks recording evidence encode it).
pub const STORE_FORMAT_VERSION: u32 = 6;
/// Most pieces of evidence one block records.
pub const MAX_BLOCK_EVIDENCE: usize = 16;

const META_GENESIS: &[u8] = b"genesis_hash";
pub(crate) const META_HEAD: &[u8] = b"head";
const META_FORMAT: &[u8] = b"format_version";
/// The block a state sync into this store is rebuilding the state of, until it finishes.
const META_STATE_SYNC_TARGET: &[u8] = b"state_sync_target";

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the data directory holds chain {stored}, but the genesis given is chain {expected}; use a fresh data directory or the matching genesis")]
    GenesisMismatch { stored: Hash, expected: Hash },
    #[error("the data directory was written by a newer Aether (store format {found}; this build reads {supported})")]
    FormatTooNew { found: u32, supported: u32 },
    #[error("the data directory was written by an older Aether (store format {found}; this build reads {supported} and does not migrate it); start from a fresh data directory or a snapshot")]
    FormatTooOld { found: u32, supported: u32 },
    #[error("stored {what} is corrupt: {reason}")]
    Corrupt { what: String, reason: String },
    #[error("the node has shut down (its store is closed)")]
    NodeStopped,
    #[error("the block breaks conservation of supply: the accounts it touches held {before} and would hold {after}, with {minted} minted and {burned} burned")]
    Conservation { before: crate::types::Amount, after: crate::types::Amount, minted: crate::types::Amount, burned: crate::types::Amount },
    #[error("unknown module {name:?} (this chain runs: {known})")]
    UnknownModule { name: String, known: String },
    #[error("genesis parameters of module {module} are refused: {reason}")]
    ModuleGenesis { module: String, reason: String },
    /// The chain runs (or at this height switches to) a module version this node was not
    /// built with: running the old code instead would fork it from its peers.
    #[error("block {height} needs module {module} version {version}, which this node lacks (it carries version{} {}); upgrade the node to a build that registers module {module} version {version}", if carried.len() == 1 { "" } else { "s" }, carried.iter().map(u32::to_string).collect::<Vec<_>>().join(", "))]
    ModuleVersionMissing { module: String, version: u32, height: Height, carried: Vec<u32> },
    #[error("unknown parent block {0}")]
    UnknownParent(Hash),
    #[error("block {0} was not built or verified by this node")]
    UnknownBlock(Hash),
    #[error("block {block} does not extend the committed head {head}")]
    NotOnHead { block: Hash, head: Hash },
    #[error("invalid block: {0}")]
    InvalidBlock(String),
    #[error("invalid transaction {index} ({hash}) in block: {error}")]
    InvalidTransaction { index: usize, hash: Hash, error: TxError },
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error(transparent)]
    State(#[from] StateError),
    /// The VM failed (not a contract: e.g. no free instance slot); the block or query is not
    /// used, so the failure can never become part of the state.
    #[error("the VM failed, not the contract: {0}")]
    Vm(crate::vm::VmError),
    #[error("block at height {requested} was pruned; the oldest block available is at height {oldest}")]
    BlockPruned { requested: Height, oldest: Height },
    /// The block is committed here but its hook events are not: this node started from a
    /// snapshot or state sync at that block, or committed it before hook events were stored.
    #[error("the hook events of block {height} are not stored on this node (it started from a snapshot or state sync at that block, or committed it with an older Aether)")]
    HookEventsNotStored { height: Height },
    #[error("the data directory holds an unfinished state sync (to height {height}); run the node with state sync on to finish it (`aether run --state-sync`), or delete the data directory's db folder")]
    UnfinishedStateSync { height: Height },
}

/// The last committed block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainHead {
    pub block: BlockRef,
    pub header: Header,
    pub certificate: Certificate,
}

/// A block executed on top of its parent but not yet committed.
#[derive(Debug)]
pub struct ExecutedBlock {
    pub block: Block,
    pub hash: Hash,
    pub receipts: Vec<Receipt>,
    /// Accounts, contract storage and code changed by this block, with their new values.
    pub changes: Changes,
    /// The same changes applied to the authenticated state tree (its root is the header's).
    pub state: Arc<StateDelta>,
    /// Events of the block's module hooks (`hook_failed` for a hook that failed and was
    /// reverted), in emission order. Stored when the block commits (see
    /// [`Ledger::block_events`]).
    pub hook_events: Vec<crate::types::Event>,
    /// The gas each module hook used, in run order (in memory only, like `hook_events`).
    pub hook_gas: Vec<HookGas>,
}

impl ExecutedBlock {
    pub fn block_ref(&self) -> BlockRef {
        BlockRef { hash: self.hash, height: self.block.header.height }
    }
}

/// A module's answer to [`Ledger::module_query`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleAnswer {
    /// The module's answer, or why it refused.
    pub answer: Result<Vec<u8>, crate::module::ModuleError>,
    pub gas_used: u64,
    /// The committed height it answered on.
    pub height: Height,
}

/// What [`Ledger::build_block`] produced, and the candidates it found invalid.
#[derive(Debug)]
pub struct BuiltBlock {
    pub executed: Arc<ExecutedBlock>,
    pub rejected: Vec<(Hash, TxError)>,
}

/// A committed transaction with where it is and what it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedTx {
    pub transaction: SignedTransaction,
    pub location: TxLocation,
    pub receipt: Receipt,
}

pub struct Ledger {
    store: Arc<dyn KvStore>,
    chain_id: String,
    genesis_hash: Hash,
    head: RwLock<ChainHead>,
    /// Executed, uncommitted blocks by hash.
    pending: Mutex<HashMap<Hash, Arc<ExecutedBlock>>>,
    /// Runs contract transactions; without one they are invalid here (see [`Ledger::with_vm`]).
    vm: Option<Arc<dyn VmBackend>>,
    /// Runtime modules (see [`Ledger::with_module`]), what genesis gives them, and epochs.
    runtime: modules::Runtime,
    /// The epoch schedule as the committed head's state records it (genesis's length and
    /// every change since); re-read when a boundary block commits. Execution never reads it:
    /// it reads the schedule from each block's parent state.
    timeline: RwLock<Option<crate::types::EpochTimeline>>,
    /// The chain parameters the committed head's state records, re-read when a block commits:
    /// the mempool checks every submitted transaction against them, so they are not read from
    /// storage per transaction. Execution reads them from each block's parent state.
    params: RwLock<crate::chain::ChainParams>,
}

impl crate::mempool::AccountReader for Ledger {
    fn chain_id(&self) -> &str {
        Ledger::chain_id(self)
    }
    fn account(&self, address: &Address) -> Result<Account, Box<dyn std::error::Error + Send + Sync>> {
        Ledger::account(self, address).map_err(Into::into)
    }
    fn chain_params(&self) -> Result<crate::chain::ChainParams, Box<dyn std::error::Error + Send + Sync>> {
        Ledger::chain_params(self).map_err(Into::into)
    }
}

impl Ledger {
    /// The genesis block of `genesis`. Its parent field is the hash of the whole genesis
    /// description, so validators and settings are part of the chain's identity.
    ///
    /// The state root of a large genesis takes seconds to compute and a node start asks for
    /// this block several times (network name, state sync, ledger), so the last one computed
    /// is kept: its parent field, a hash of the whole genesis, says whether it is this one.
    pub fn genesis_block(genesis: &Genesis) -> Block {
        static LAST: parking_lot::Mutex<Option<Block>> = parking_lot::Mutex::new(None);
        // What older genesis files lacked is hashed only when present, so their chains keep
        // their identity.
        let mut parent = match (&genesis.modules[..], &genesis.epochs) {
            ([], None) => Hash::digest(domain::GENESIS, &codec::encode(genesis)),
            (modules, None) => Hash::digest_parts(domain::GENESIS, &[&codec::encode(genesis), &codec::encode(&modules.to_vec())]),
            (modules, Some(epochs)) => {
                Hash::digest_parts(domain::GENESIS, &[&codec::encode(genesis), &codec::encode(&modules.to_vec()), &codec::encode(epochs)])
            }
        };
        let governors: Vec<String> = genesis.modules.iter().filter(|m| m.govern_chain).map(|m| m.name.clone()).collect();
        if !governors.is_empty() {
            parent = Hash::digest_parts(domain::GENESIS, &[&parent.0, b"govern_chain", &codec::encode(&governors)]);
        }
        if let Some(block) = LAST.lock().as_ref().filter(|b| b.header.parent == parent) {
            return block.clone();
        }
        let block = Self::compute_genesis_block(genesis, parent);
        *LAST.lock() = Some(block.clone());
        block
    }

    fn compute_genesis_block(genesis: &Genesis, parent: Hash) -> Block {
        let entries = genesis_entries(genesis);
        Block {
            header: Header {
                chain_id: genesis.chain_id.clone(),
                parent,
                height: 0,
                time_ms: genesis.genesis_time_ms,
                proposer: Address::default(),
                tx_root: Hash::ZERO,
                evidence_root: Hash::ZERO,
                state_root: state::root_of(entries.iter().map(|(k, v)| (k.as_slice(), v.as_slice()))),
                parent_certificate: Certificate::default(),
                next_validators: None,
            },
            transactions: vec![],
            evidence: vec![],
        }
    }

    /// Opens the ledger on `store`, writing genesis if the store is empty. Refuses a store
    /// that holds another chain or a newer format, and checks that the stored state matches
    /// the head's state root.
    pub fn open(store: Arc<dyn KvStore>, genesis: &Genesis) -> Result<Ledger, LedgerError> {
        let genesis_block = Self::genesis_block(genesis);
        let genesis_hash = genesis_block.hash();
        match store.get(columns::META, META_GENESIS)? {
            None => {
                if let Some((block, _)) = state_sync_target(store.as_ref())? {
                    return Err(LedgerError::UnfinishedStateSync { height: block.header.height });
                }
                Self::write_genesis(store.as_ref(), genesis, &genesis_block)?
            }
            Some(bytes) => {
                let stored: Hash = decode_stored("genesis hash", &bytes)?;
                if stored != genesis_hash {
                    return Err(LedgerError::GenesisMismatch { stored, expected: genesis_hash });
                }
                let format: u32 = match store.get(columns::META, META_FORMAT)? {
                    Some(b) => decode_stored("format version", &b)?,
                    None => return Err(corrupt("format version", "missing")),
                };
                if format > STORE_FORMAT_VERSION {
                    return Err(LedgerError::FormatTooNew { found: format, supported: STORE_FORMAT_VERSION });
                }
                if format < STORE_FORMAT_VERSION {
                    return Err(LedgerError::FormatTooOld { found: format, supported: STORE_FORMAT_VERSION });
                }
            }
        }
        let head_ref: BlockRef = decode_stored("head", &store.get(columns::META, META_HEAD)?.ok_or_else(|| corrupt("head", "missing"))?)?;
        let head_block: Block = load_block(store.as_ref(), &head_ref.hash)?.ok_or_else(|| corrupt("head block", "missing"))?;
        let certificate = load_certificate(store.as_ref(), &head_ref.hash)?;
        let root = state::root_at(store.as_ref(), head_ref.height)?;
        if root != head_block.header.state_root {
            return Err(corrupt(
                "state",
                &format!(
                    "the state tree's root at height {} is {root}, but the head says {}",
                    head_ref.height, head_block.header.state_root
                ),
            ));
        }
        let ledger = Ledger {
            store,
            chain_id: genesis.chain_id.clone(),
            genesis_hash,
            head: RwLock::new(ChainHead { block: head_ref, header: head_block.header, certificate }),
            pending: Mutex::new(HashMap::new()),
            vm: None,
            runtime: modules::Runtime {
                modules: modules::Modules::new(),
                versions: Default::default(),
                mint_grants: genesis.modules.iter().filter(|m| m.mint).map(|m| m.name.clone()).collect(),
                chain_governors: genesis.modules.iter().filter(|m| m.govern_chain).map(|m| m.name.clone()).collect(),
                params: genesis.modules.iter().map(|m| (m.name.clone(), m.params.clone())).collect(),
                epochs: genesis.epochs.clone(),
                genesis_validators: genesis.validators.clone(),
                key_check: crate::registry::accept_any_consensus_key,
                certificate_signers: crate::registry::no_certificate_signers,
            },
            timeline: RwLock::new(None),
            params: RwLock::new(crate::chain::ChainParams::DEFAULT),
        };
        ledger.reload_timeline()?;
        ledger.reload_params()?;
        Ok(ledger)
    }

    /// Reads the chain parameters from the committed state into the cache.
    fn reload_params(&self) -> Result<(), LedgerError> {
        let mut journal = crate::vm::state::Journal::new(ChainReader { store: self.store.as_ref(), overlays: &[] });
        let params = chain::params_in(&mut journal).map_err(|e| corrupt("chain parameters", &e))?;
        journal.into_changes()?;
        *self.params.write() = params;
        Ok(())
    }

    /// Reads the epoch schedule from the committed state into the cache.
    fn reload_timeline(&self) -> Result<(), LedgerError> {
        let mut journal = crate::vm::state::Journal::new(ChainReader { store: self.store.as_ref(), overlays: &[] });
        let timeline = chain::timeline_in(&mut journal, &self.runtime).map_err(|e| corrupt("epoch lengths", &e))?;
        journal.into_changes()?;
        *self.timeline.write() = timeline;
        Ok(())
    }

    /// Runs contracts on `vm`. A ledger without a VM treats deploy and call transactions as
    /// invalid, so it refuses blocks that hold them rather than computing a different state:
    /// every node of a chain with contracts needs a VM (any backend: they agree to the unit).
    pub fn with_vm(mut self, vm: Arc<dyn VmBackend>) -> Self {
        self.vm = Some(vm);
        self
    }

    /// Runs `module` for `Action::Module` transactions naming it. Every node of a chain must
    /// run the same modules (genesis will pin them): a node without one computes a failed
    /// receipt where the others succeed, and forks.
    pub fn with_module(mut self, module: Arc<dyn crate::module::RuntimeModule>) -> Self {
        self.runtime.versions.insert((module.name().to_string(), module.version()), module.clone());
        match self.runtime.modules.iter_mut().find(|m| m.name() == module.name()) {
            Some(slot) => *slot = module,
            None => self.runtime.modules.push(module),
        }
        self
    }

    /// Carries `module` as one more version of a module given with [`Ledger::with_module`]
    /// (which is the genesis version): the version an upgrade the chain schedules switches to
    /// ([`crate::chain::ChainCall::ScheduleUpgrade`]). A node must carry every version its chain
    /// runs at the heights it executes; it refuses a block that needs one it lacks.
    pub fn with_module_version(mut self, module: Arc<dyn crate::module::RuntimeModule>) -> Self {
        self.runtime.versions.insert((module.name().to_string(), module.version()), module);
        self
    }

    /// Checks consensus keys with `check` (the engine's rules; see
    /// [`crate::registry::Registry::consensus_key_check`]): keys in a next validator set and
    /// `check_consensus_key` of modules. Every node of a chain must use the same check.
    pub fn with_consensus_key_check(mut self, check: crate::registry::ConsensusKeyCheck) -> Self {
        self.runtime.key_check = check;
        self
    }

    /// Reads the signers of each block's parent certificate with `decode` (the engine's; see
    /// [`crate::registry::Registry::certificate_signers`]) for modules'
    /// `parent_signers`. Every node of a chain must use the same decoder.
    pub fn with_certificate_signers(mut self, decode: crate::registry::CertificateSigners) -> Self {
        self.runtime.certificate_signers = decode;
        self
    }

    /// The modules this ledger runs, by name, at their genesis versions (see
    /// [`Ledger::module_versions`] for the versions the chain runs now).
    pub fn modules(&self) -> impl Iterator<Item = (&str, u32)> {
        self.runtime.modules.iter().map(|m| (m.name(), m.version()))
    }

    /// Each module's version on the committed head and the upgrade scheduled for it, in hook
    /// order.
    pub fn module_versions(&self) -> Result<Vec<crate::chain::ModuleVersion>, LedgerError> {
        let mut journal = crate::vm::state::Journal::new(ChainReader { store: self.store.as_ref(), overlays: &[] });
        let versions = chain::versions_in(&mut journal, &self.runtime).map_err(|e| corrupt("module version", &e))?;
        journal.into_changes()?;
        Ok(versions)
    }

    /// The chain parameters the block after the committed head runs under (and the mempool
    /// admits by).
    pub fn chain_params(&self) -> Result<crate::chain::ChainParams, LedgerError> {
        Ok(*self.params.read())
    }

    /// Checks, at start, that this node carries every module version its chain needs next:
    /// a version running on the committed head that it lacks is an error (it could execute no
    /// block); an upgrade scheduled to a version it lacks is returned as a warning (it runs
    /// until that height, then refuses the block; the node logs it).
    pub fn check_module_versions(&self) -> Result<Vec<String>, LedgerError> {
        let next = self.head().block.height + 1;
        let mut warnings = Vec::new();
        for module in self.module_versions()? {
            let carried = |version: u32| self.runtime.versions.contains_key(&(module.name.clone(), version));
            if !carried(module.version) {
                return Err(chain::missing_version(&self.runtime, &module.name, module.version, next));
            }
            if let Some(upgrade) = module.scheduled.filter(|u| !carried(u.version)) {
                let warning = format!(
                    "the chain upgrades module {} to version {} at height {}, which this node lacks: it will refuse that block; upgrade the node before then",
                    module.name, upgrade.version, upgrade.height
                );
                tracing::warn!("{warning}");
                warnings.push(warning);
            }
        }
        Ok(warnings)
    }

    /// The chain's epochs as genesis set them (`None`: one epoch, the genesis set, forever);
    /// governance may have changed their length since: see [`Ledger::epoch_timeline`].
    pub fn epochs(&self) -> Option<&crate::types::EpochSchedule> {
        self.runtime.epochs.as_ref()
    }

    /// The chain's epoch schedule as the committed head's state records it: genesis's length
    /// and every change governance made (`None`: no epochs). Exact for every height up to the
    /// end of the head's epoch; beyond it a length set in the current epoch is not yet in it.
    pub fn epoch_timeline(&self) -> Option<crate::types::EpochTimeline> {
        self.timeline.read().clone()
    }

    /// The epoch of the block at `height` (as [`Ledger::epoch_timeline`] knows it).
    pub fn epoch_of(&self, height: Height) -> u64 {
        self.timeline.read().as_ref().map_or(0, |t| t.epoch_of(height))
    }

    /// The validator set of `epoch` as committed (`None` until the last block of the epoch
    /// before it commits). Epoch 0's is genesis's; a restarted node reads later ones here.
    pub fn validator_set(&self, epoch: u64) -> Result<Option<Vec<crate::types::ValidatorEntry>>, LedgerError> {
        let mut journal = crate::vm::state::Journal::new(ChainReader { store: self.store.as_ref(), overlays: &[] });
        let set = modules::validator_set_in(&mut journal, &self.runtime, epoch).map_err(|e| corrupt("validator set", &e))?;
        journal.into_changes()?;
        Ok(set)
    }

    /// The changes ending epochs `from .. to` (each epoch's last block, its certificate and
    /// the next set), oldest first: what a light client needs to follow sets from epoch
    /// `from`'s (see [`crate::light`]). `Ok(None)` when an epoch in the range has not ended,
    /// or its block is pruned here.
    pub fn epoch_changes(&self, from: u64, to: u64) -> Result<Option<Vec<crate::light::EpochChange>>, LedgerError> {
        let Some(schedule) = self.epoch_timeline() else { return Ok(if from >= to { Some(vec![]) } else { None }) };
        let mut changes = Vec::with_capacity(to.saturating_sub(from).min(1024) as usize);
        for epoch in from..to {
            let (Some((block, certificate)), Some(next)) =
                (self.block_by_height(schedule.last_height(epoch))?, self.validator_set(epoch + 1)?)
            else {
                return Ok(None);
            };
            // Only an epoch whose length changed carries it (its boundary header commits to it).
            let next_length = schedule.changes().iter().find(|c| c.epoch == epoch + 1).map(|c| c.length);
            changes.push(crate::light::EpochChange { epoch, header: block.header, certificate, next, next_length });
        }
        Ok(Some(changes))
    }

    /// Runs every module's `init_genesis` on a chain that has not yet committed block 1, and
    /// discards the result: a node checks its genesis parameters this way before it runs, so a
    /// bad parameter is a clear error at start rather than a `hook_failed` event in block 1.
    pub fn check_genesis_init(&self) -> Result<(), LedgerError> {
        if self.head().block.height > 0 {
            return Ok(());
        }
        let mut journal = crate::vm::state::Journal::new(ChainReader { store: self.store.as_ref(), overlays: &[] });
        for module in &self.runtime.modules {
            let name = module.name();
            let params = self.runtime.params.get(name).map_or(&[][..], |p| p.as_bytes());
            let mut cx = modules::ModuleCall::new(
                &mut journal,
                (&self.runtime, &self.runtime.modules),
                name,
                Address::default(),
                0,
                1,
                crate::module::GENESIS_INIT_GAS,
            );
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| module.init_genesis(&mut cx, params)))
                .unwrap_or_else(|_| Err(crate::module::ModuleError::Failed("panicked".into())));
            if let Err(e) = result {
                return Err(LedgerError::ModuleGenesis { module: name.to_string(), reason: e.to_string() });
            }
        }
        journal.into_changes()?;
        Ok(())
    }

    pub fn vm(&self) -> Option<&Arc<dyn VmBackend>> {
        self.vm.as_ref()
    }

    /// A committed entry of a contract's storage.
    pub fn contract_storage(&self, contract: &Address, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        use crate::vm::state::StateReader;
        ChainReader { store: self.store.as_ref(), overlays: &[] }.storage(contract, key)
    }

    /// Runs `method` of `contract` on the committed head state as `caller` and discards every
    /// write: a read-only query. The block context is the head's height and time.
    pub fn query(
        &self,
        caller: Address,
        contract: Address,
        method: &str,
        input: &[u8],
        gas_limit: u64,
    ) -> Result<(CallOutcome, Vec<crate::types::Event>), LedgerError> {
        let vm = self.vm.as_ref().ok_or_else(|| LedgerError::InvalidBlock("this node has no VM backend".into()))?;
        let head = self.head();
        let block = BlockContext { height: head.block.height, time_ms: head.header.time_ms };
        execution::query(
            ChainReader { store: self.store.as_ref(), overlays: &[] },
            vm.as_ref(),
            block,
            caller,
            contract,
            method,
            input,
            gas_limit,
        )
    }

    /// Asks module `module` the read-only question `path` with `request` on the committed head,
    /// within `gas_limit`. The outer error is the node's (no such module, storage); the inner
    /// one the module's answer (unknown query, out of gas, a refused write).
    /// Module `chain` is the ledger's own: `params`, `modules` and `epochs` (see [`crate::chain`]).
    pub fn module_query(&self, module: &str, path: &str, request: &[u8], gas_limit: u64) -> Result<ModuleAnswer, LedgerError> {
        let height = self.head().block.height;
        let mut journal = crate::vm::state::Journal::new(ChainReader { store: self.store.as_ref(), overlays: &[] });
        if chain::is_chain(module) {
            let answer = chain::query(&mut journal, &self.runtime, path);
            journal.into_changes()?;
            return Ok(ModuleAnswer { answer, gas_used: 0, height });
        }
        // The versions running on the head: the block after it runs the same unless an upgrade
        // is due, and a query answers about committed state.
        let (active, _) = chain::block_modules(&mut journal, &self.runtime, height)?;
        let found = modules::find(&active, module).cloned().ok_or_else(|| {
            let known: Vec<&str> = active.iter().map(|m| m.name()).collect();
            LedgerError::UnknownModule { name: module.to_string(), known: if known.is_empty() { "none".into() } else { known.join(", ") } }
        })?;
        let mut cx = modules::ModuleCall::new(&mut journal, (&self.runtime, &active), module, Address::default(), 0, height, gas_limit);
        cx.read_only = true;
        cx.epoch = self.epoch_of(height);
        let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| found.query(&mut cx, path, request)))
            .unwrap_or_else(|_| Err(crate::module::ModuleError::Failed(format!("module {module} panicked"))));
        let gas_used = cx.gas_used;
        // A storage failure while reading must not pass for the module's answer.
        journal.into_changes()?;
        Ok(ModuleAnswer { answer, gas_used, height })
    }

    fn write_genesis(store: &dyn KvStore, genesis: &Genesis, block: &Block) -> Result<(), LedgerError> {
        if store.get(columns::META, META_HEAD)?.is_some() {
            return Err(corrupt("metadata", "head present without genesis hash"));
        }
        let hash = block.hash();
        let mut batch = WriteBatch::default();
        for a in &genesis.accounts {
            batch.put(columns::ACCOUNTS, a.address.0.to_vec(), codec::encode(&Account { balance: a.balance, ..Account::default() }));
        }
        let delta = state::compute_delta(store, &[], 0, genesis_entries(genesis).into_iter().map(|(k, v)| (k, Some(v))))?;
        debug_assert_eq!(delta.root, block.header.state_root);
        state::write_delta(store, &delta, &mut batch)?;
        put_block(&mut batch, block, &hash, &Certificate::default());
        // Genesis runs no hooks (block 1 runs `init_genesis`): its list is known to be empty.
        events::put(&mut batch, &hash, &[]);
        batch.put(columns::META, META_GENESIS, codec::encode(&hash));
        batch.put(columns::META, META_FORMAT, codec::encode(&STORE_FORMAT_VERSION));
        batch.put(columns::META, META_HEAD, codec::encode(&BlockRef { hash, height: 0 }));
        store.write(batch, Durability::Synced)?;
        Ok(())
    }

    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }
    pub fn genesis_hash(&self) -> Hash {
        self.genesis_hash
    }
    pub fn store(&self) -> &Arc<dyn KvStore> {
        &self.store
    }
    pub fn head(&self) -> ChainHead {
        self.head.read().clone()
    }

    /// The committed account (default if it never received anything).
    pub fn account(&self, address: &Address) -> Result<Account, LedgerError> {
        Ok(match self.store.get(columns::ACCOUNTS, &address.0)? {
            Some(b) => decode_stored("account", &b)?,
            None => Account::default(),
        })
    }

    pub fn block_hash_at(&self, height: Height) -> Result<Option<Hash>, LedgerError> {
        match self.store.get(columns::BLOCK_INDEX, &height.to_be_bytes())? {
            Some(b) => Ok(Some(decode_stored("block index", &b)?)),
            None => Ok(None),
        }
    }

    pub fn block_by_hash(&self, hash: &Hash) -> Result<Option<(Block, Certificate)>, LedgerError> {
        match load_block(self.store.as_ref(), hash)? {
            Some(b) => Ok(Some((b, load_certificate(self.store.as_ref(), hash)?))),
            None => Ok(None),
        }
    }

    /// The block at `height`; an error if it was pruned, `None` if not reached yet.
    pub fn block_by_height(&self, height: Height) -> Result<Option<(Block, Certificate)>, LedgerError> {
        let oldest = self.oldest_block()?;
        if height < oldest {
            return Err(LedgerError::BlockPruned { requested: height, oldest });
        }
        match self.block_hash_at(height)? {
            Some(h) => self.block_by_hash(&h),
            None => Ok(None),
        }
    }

    pub fn transaction(&self, hash: &Hash) -> Result<Option<CommittedTx>, LedgerError> {
        let Some(loc) = self.store.get(columns::TX_INDEX, &hash.0)? else { return Ok(None) };
        let location: TxLocation = decode_stored("tx location", &loc)?;
        let receipt: Receipt =
            decode_stored("receipt", &self.store.get(columns::RECEIPTS, &hash.0)?.ok_or_else(|| corrupt("receipt", "missing"))?)?;
        let (block, _) = self.block_by_hash(&location.block_hash)?.ok_or_else(|| corrupt("block of transaction", "missing"))?;
        let transaction = block
            .transactions
            .get(location.index as usize)
            .cloned()
            .ok_or_else(|| corrupt("tx location", "index past the block's transactions"))?;
        Ok(Some(CommittedTx { transaction, location, receipt }))
    }

    /// Recomputes the committed state root from scratch: reads every entry of the head
    /// version of the tree, rebuilds a tree of them in memory, and checks that the flat
    /// account table holds the same accounts. Slow (O(accounts)); for checks and tests.
    pub fn recompute_state_root(&self) -> Result<Hash, LedgerError> {
        let snapshot = self.store.snapshot()?;
        let height =
            decode_stored::<BlockRef>("head", &snapshot.get(columns::META, META_HEAD)?.ok_or_else(|| corrupt("head", "missing"))?)?.height;
        let mut entries = Vec::new();
        for item in state::entries_at(snapshot.as_ref(), height)? {
            let (key, value) = item?;
            if let Some((column, flat_key)) = state::flat_location(&key) {
                let flat = snapshot.get(column, &flat_key)?;
                if flat.as_deref() != Some(value.as_slice()) {
                    return Err(corrupt(
                        "state",
                        &format!("entry 0x{} differs between the state tree and the {column} table", hex::encode(&key)),
                    ));
                }
            }
            entries.push((key, value));
        }
        Ok(state::root_of(entries.iter().map(|(k, v)| (k.as_slice(), v.as_slice()))))
    }

    /// The account at `height` with a proof against that height's state root.
    /// `None` when the address held nothing then (the proof shows absence).
    pub fn account_with_proof(&self, address: &Address, height: Height) -> Result<(Option<Account>, StateProof, Header), LedgerError> {
        let head = self.head();
        state::check_retained(self.store.as_ref(), height, head.block.height)?;
        let header = if height == head.block.height {
            head.header
        } else {
            // Retained heights are at or below the head; a pruned block is an error above.
            self.block_by_height(height)?
                .map(|(b, _)| b.header)
                .ok_or_else(|| corrupt("block index", &format!("no block at retained height {height}")))?
        };
        let (value, proof) = state::get_with_proof(self.store.as_ref(), &state::account_key(address), height)?;
        let account = value.map(|v| decode_stored::<Account>("account", &v)).transpose()?;
        Ok((account, proof, header))
    }

    /// The height of the committed block that recorded `evidence`, if one did.
    pub fn evidence_recorded(&self, evidence: &Hash) -> Result<Option<Height>, LedgerError> {
        match self.store.get(columns::EVIDENCE, &evidence.0)? {
            Some(b) => Ok(Some(decode_stored("evidence index", &b)?)),
            None => Ok(None),
        }
    }

    /// Why `evidence` may not be recorded in a block on top of `overlays` (it already was, on
    /// the committed chain or in an uncommitted ancestor), or `None` if it may.
    fn evidence_already_recorded(&self, evidence: &Evidence, overlays: &[Arc<ExecutedBlock>]) -> Result<Option<String>, LedgerError> {
        let hash = evidence.hash();
        if let Some(height) = self.evidence_recorded(&hash)? {
            return Ok(Some(format!("evidence {hash} was already recorded at height {height}")));
        }
        for b in overlays {
            if b.block.evidence.iter().any(|e| e.hash() == hash) {
                return Ok(Some(format!("evidence {hash} is already recorded by ancestor {}", b.hash)));
            }
        }
        Ok(None)
    }

    /// Hashes of the transactions in the uncommitted blocks from `parent` back to the committed
    /// head (what a block built on `parent` must not include again).
    pub fn uncommitted_transactions(&self, parent: &Hash) -> Result<std::collections::HashSet<Hash>, LedgerError> {
        let head = self.head();
        Ok(self.overlay_chain(parent, &head.block.hash)?.iter().flat_map(|b| b.receipts.iter().map(|r| r.tx_hash)).collect())
    }

    /// Executed blocks from `parent` back to (excluding) the committed head, newest first.
    fn overlay_chain(&self, parent: &Hash, head: &Hash) -> Result<Vec<Arc<ExecutedBlock>>, LedgerError> {
        let pending = self.pending.lock();
        let mut chain = Vec::new();
        let mut cursor = *parent;
        while cursor != *head {
            let b = pending.get(&cursor).ok_or(LedgerError::UnknownParent(*parent))?;
            cursor = b.block.header.parent;
            chain.push(b.clone());
        }
        Ok(chain)
    }

    fn parent_header(&self, parent: &Hash, head: &ChainHead) -> Result<Header, LedgerError> {
        if *parent == head.block.hash {
            return Ok(head.header.clone());
        }
        self.pending.lock().get(parent).map(|b| b.block.header.clone()).ok_or(LedgerError::UnknownParent(*parent))
    }

    /// The tree version `height` on top of `overlays` (the uncommitted ancestors, newest first).
    fn state_with(&self, overlays: &[Arc<ExecutedBlock>], height: Height, changes: &Changes) -> Result<StateDelta, LedgerError> {
        let pending: Vec<Arc<StateDelta>> = overlays.iter().rev().map(|b| b.state.clone()).collect();
        let updates = changes
            .accounts
            .iter()
            .map(|(a, acc)| (state::account_key(a), Some(codec::encode(acc))))
            .chain(changes.storage.iter().map(|((c, k), v)| (state::storage_key(c, k), v.clone())))
            .chain(changes.code.iter().map(|(h, code)| (state::code_key(h), Some(code.to_vec()))));
        Ok(state::compute_delta(self.store.as_ref(), &pending, height, updates)?)
    }

    /// Builds a block on `parent` from `candidates` in order, leaving out any that are invalid
    /// at that point (stale nonce, fee unaffordable...) and stopping before the encoded block
    /// would exceed [`MAX_BLOCK_BYTES`]. Candidates already in an uncommitted ancestor are
    /// skipped without being reported as rejected. Signatures are not re-checked: callers pass
    /// transactions the mempool verified. Of `evidence` (checked by the consensus engine), it
    /// records up to [`MAX_BLOCK_EVIDENCE`] pieces that no ancestor recorded yet.
    pub fn build_block(
        &self,
        parent: &Hash,
        parent_certificate: Certificate,
        candidates: Vec<SignedTransaction>,
        evidence: Vec<Evidence>,
        time_ms: TimestampMs,
        proposer: Address,
    ) -> Result<BuiltBlock, LedgerError> {
        let head = self.head();
        let parent_header = self.parent_header(parent, &head)?;
        let overlays = self.overlay_chain(parent, &head.block.hash)?;
        let mut recorded = Vec::new();
        for e in evidence {
            if recorded.len() >= MAX_BLOCK_EVIDENCE {
                break;
            }
            if self.evidence_already_recorded(&e, &overlays)?.is_none() && !recorded.contains(&e) {
                recorded.push(e);
            }
        }
        let height = parent_header.height + 1;
        let time_ms = time_ms.max(parent_header.time_ms);
        let context = BlockContext { height, time_ms };
        let mut state =
            ExecState::new(self.store.as_ref(), &overlays, &self.chain_id, proposer, context, self.vm.as_deref(), &self.runtime);
        let mut included = Vec::with_capacity(candidates.len());
        let mut receipts = Vec::with_capacity(candidates.len());
        let mut rejected = Vec::new();
        // A pipelined engine builds on uncommitted blocks, whose transactions are still in the
        // mempool: skip those (they are neither new nor invalid).
        let in_ancestors: std::collections::HashSet<Hash> = overlays.iter().flat_map(|b| b.receipts.iter().map(|r| r.tx_hash)).collect();
        let candidates = candidates.into_iter().filter(|tx| in_ancestors.is_empty() || !in_ancestors.contains(&tx.hash()));
        let next_validators = state.run_block(&recorded, &parent_certificate, |state| {
            // Headroom for the header and the transactions vector's length prefix.
            let mut budget = MAX_BLOCK_BYTES - 64 * 1024;
            for tx in candidates {
                let size = codec::encode(&tx).len();
                if size > budget {
                    break;
                }
                match state.apply(&tx, false) {
                    Ok(r) => {
                        budget -= size;
                        receipts.push(r);
                        included.push(tx);
                    }
                    // Not invalid, only too late for this block: leave it for the next.
                    Err(TxError::BlockGasFull { .. }) => continue,
                    Err(e) => {
                        tracing::debug!(tx = %tx.hash(), error = %e, "left out of block");
                        rejected.push((tx.hash(), e));
                    }
                }
            }
            Ok(())
        })?;
        let (minted, burned) = (state.minted, state.burned);
        let (changes, hook_events, hook_gas) = state.into_changes()?;
        check_conservation(&ChainReader { store: self.store.as_ref(), overlays: &overlays }, &changes, minted, burned)?;
        let delta = self.state_with(&overlays, height, &changes)?;
        let header = Header {
            chain_id: self.chain_id.clone(),
            parent: *parent,
            height,
            time_ms,
            proposer,
            tx_root: Block::compute_tx_root(&included),
            evidence_root: Block::compute_evidence_root(&recorded),
            state_root: delta.root,
            parent_certificate,
            next_validators,
        };
        let block = Block { header, transactions: included, evidence: recorded };
        Ok(BuiltBlock { executed: self.remember(block, receipts, changes, delta, (hook_events, hook_gas)), rejected })
    }

    /// Verifies and executes a block proposed by someone else: it must extend a known block,
    /// every transaction must be valid, and the roots must match its header. Its evidence must
    /// be new to the chain, unique, and at most [`MAX_BLOCK_EVIDENCE`] pieces; whether each
    /// piece proves misbehaviour is the consensus engine's check, done by the caller.
    pub fn execute_block(&self, block: Block) -> Result<Arc<ExecutedBlock>, LedgerError> {
        let h = &block.header;
        if h.chain_id != self.chain_id {
            return Err(LedgerError::InvalidBlock(format!("chain id {:?}, expected {:?}", h.chain_id, self.chain_id)));
        }
        let head = self.head();
        let parent_header = self.parent_header(&h.parent, &head)?;
        if h.height != parent_header.height + 1 {
            return Err(LedgerError::InvalidBlock(format!("height {} on a parent at height {}", h.height, parent_header.height)));
        }
        if h.time_ms < parent_header.time_ms {
            return Err(LedgerError::InvalidBlock(format!("time {} is before its parent's {}", h.time_ms, parent_header.time_ms)));
        }
        let tx_root = Block::compute_tx_root(&block.transactions);
        if tx_root != h.tx_root {
            return Err(LedgerError::InvalidBlock(format!("tx root {tx_root} does not match header {}", h.tx_root)));
        }
        let evidence_root = Block::compute_evidence_root(&block.evidence);
        if evidence_root != h.evidence_root {
            return Err(LedgerError::InvalidBlock(format!("evidence root {evidence_root} does not match header {}", h.evidence_root)));
        }
        if block.evidence.len() > MAX_BLOCK_EVIDENCE {
            return Err(LedgerError::InvalidBlock(format!("{} pieces of evidence; at most {MAX_BLOCK_EVIDENCE}", block.evidence.len())));
        }
        let overlays = self.overlay_chain(&h.parent, &head.block.hash)?;
        for (i, e) in block.evidence.iter().enumerate() {
            if block.evidence[..i].contains(e) {
                return Err(LedgerError::InvalidBlock(format!("evidence {} appears twice", e.hash())));
            }
            if let Some(why) = self.evidence_already_recorded(e, &overlays)? {
                return Err(LedgerError::InvalidBlock(why));
            }
        }
        let context = BlockContext { height: h.height, time_ms: h.time_ms };
        let mut state =
            ExecState::new(self.store.as_ref(), &overlays, &self.chain_id, h.proposer, context, self.vm.as_deref(), &self.runtime);
        let mut receipts = Vec::with_capacity(block.transactions.len());
        let next_validators = state.run_block(&block.evidence, &h.parent_certificate, |state| {
            for (index, tx) in block.transactions.iter().enumerate() {
                receipts.push(state.apply(tx, true).map_err(|error| LedgerError::InvalidTransaction { index, hash: tx.hash(), error })?);
            }
            Ok(())
        })?;
        if next_validators != h.next_validators {
            return Err(LedgerError::InvalidBlock(match (h.next_validators, next_validators) {
                (Some(claimed), None) => format!("header commits to a next validator set ({claimed}) on a block that ends no epoch"),
                (None, Some(expected)) => format!("header lacks the next validator set this epoch's last block commits to ({expected})"),
                (claimed, expected) => format!("header commits to next validator set {claimed:?}; execution gives {expected:?}"),
            }));
        }
        let (minted, burned) = (state.minted, state.burned);
        let (changes, hook_events, hook_gas) = state.into_changes()?;
        check_conservation(&ChainReader { store: self.store.as_ref(), overlays: &overlays }, &changes, minted, burned)?;
        let delta = self.state_with(&overlays, h.height, &changes)?;
        if delta.root != h.state_root {
            return Err(LedgerError::InvalidBlock(format!("state root {} does not match header {}", delta.root, h.state_root)));
        }
        Ok(self.remember(block, receipts, changes, delta, (hook_events, hook_gas)))
    }

    fn remember(
        &self,
        block: Block,
        receipts: Vec<Receipt>,
        changes: Changes,
        delta: StateDelta,
        (hook_events, hook_gas): (Vec<crate::types::Event>, Vec<HookGas>),
    ) -> Arc<ExecutedBlock> {
        let hash = block.hash();
        let executed = Arc::new(ExecutedBlock { block, hash, receipts, changes, state: Arc::new(delta), hook_events, hook_gas });
        self.pending.lock().insert(hash, executed.clone());
        executed
    }

    /// Commits an executed block with the certificate that decided it: its state changes,
    /// the block, its receipts, its hook events and the new head are written in one synced
    /// batch. The block's
    /// parent must be the committed head.
    pub fn commit(&self, hash: &Hash, certificate: &Certificate) -> Result<Arc<ExecutedBlock>, LedgerError> {
        let executed = self.pending.lock().get(hash).cloned().ok_or(LedgerError::UnknownBlock(*hash))?;
        // Only the driver commits, so the head cannot move between this check and the update
        // below; readers are not blocked while the batch is fsynced.
        let head_hash = self.head.read().block.hash;
        if executed.block.header.parent != head_hash {
            return Err(LedgerError::NotOnHead { block: *hash, head: head_hash });
        }
        let mut batch = WriteBatch::default();
        let changes = &executed.changes;
        for (address, account) in &changes.accounts {
            batch.put(columns::ACCOUNTS, address.0.to_vec(), codec::encode(account));
        }
        for ((contract, key), value) in &changes.storage {
            let mut flat = contract.0.to_vec();
            flat.extend_from_slice(key);
            match value {
                Some(v) => batch.put(columns::CONTRACT_STORAGE, flat, v.clone()),
                None => batch.delete(columns::CONTRACT_STORAGE, flat),
            }
        }
        for (hash, code) in &changes.code {
            batch.put(columns::CODE, hash.0.to_vec(), code.to_vec());
        }
        state::write_delta(self.store.as_ref(), &executed.state, &mut batch)?;
        put_block(&mut batch, &executed.block, hash, certificate);
        let height = executed.block.header.height;
        for (index, (tx, receipt)) in executed.block.transactions.iter().zip(&executed.receipts).enumerate() {
            let location = TxLocation { block_hash: *hash, height, index: index as u32 };
            batch.put(columns::TX_INDEX, receipt.tx_hash.0.to_vec(), codec::encode(&location));
            batch.put(columns::RECEIPTS, receipt.tx_hash.0.to_vec(), codec::encode(receipt));
            debug_assert_eq!(tx.hash(), receipt.tx_hash);
        }
        events::put(&mut batch, hash, &executed.hook_events);
        for e in &executed.block.evidence {
            batch.put(columns::EVIDENCE, e.hash().0.to_vec(), codec::encode(&height));
        }
        let block_ref = executed.block_ref();
        batch.put(columns::META, META_HEAD, codec::encode(&block_ref));
        self.store.write(batch, Durability::Synced)?;
        // A boundary block may have changed the epoch length: readers of the new head see the
        // schedule it recorded.
        if executed.block.header.next_validators.is_some() {
            self.reload_timeline()?;
        }
        // Any block may have changed the chain parameters (one read per block, not per
        // transaction the mempool admits).
        self.reload_params()?;
        *self.head.write() = ChainHead { block: block_ref, header: executed.block.header.clone(), certificate: certificate.clone() };
        // Blocks at or below the new head can never be committed now.
        self.pending.lock().retain(|_, b| b.block.header.height > height);
        Ok(executed)
    }
}

/// The chain metadata of a store restored from a snapshot at `block`: that block is the head
/// and the oldest block kept.
pub(crate) fn write_restored_head(batch: &mut WriteBatch, genesis_hash: Hash, block: &Block, certificate: &Certificate) {
    let hash = block.hash();
    put_block(batch, block, &hash, certificate);
    batch.put(columns::META, META_GENESIS, codec::encode(&genesis_hash));
    batch.put(columns::META, META_FORMAT, codec::encode(&STORE_FORMAT_VERSION));
    batch.put(columns::META, META_HEAD, codec::encode(&BlockRef { hash, height: block.header.height }));
    batch.put(columns::META, retention::META_BLOCKS_OLDEST, codec::encode(&block.header.height));
}

/// Whether `store` holds a chain (a committed head).
pub fn has_chain(store: &dyn KvStore) -> Result<bool, LedgerError> {
    Ok(store.get(columns::META, META_HEAD)?.is_some())
}

/// The block an unfinished state sync into `store` targets, with its certificate.
pub fn state_sync_target(store: &dyn KvStore) -> Result<Option<(Block, Certificate)>, LedgerError> {
    match store.get(columns::META, META_STATE_SYNC_TARGET)? {
        Some(b) => Ok(Some(decode_stored("state sync target", &b)?)),
        None => Ok(None),
    }
}

/// Records, durably, that a state sync into `store` (which holds no chain) rebuilds the state
/// of `block`: [`Ledger::open`] refuses the store until [`finish_state_sync`] has run.
pub fn begin_state_sync(store: &dyn KvStore, block: &Block, certificate: &Certificate) -> Result<(), LedgerError> {
    let mut batch = WriteBatch::default();
    batch.put(columns::META, META_STATE_SYNC_TARGET, codec::encode(&(block.clone(), certificate.clone())));
    store.write(batch, Durability::Synced)?;
    Ok(())
}

/// The chain metadata that ends a state sync whose state is written: `block` becomes the head
/// (as after a snapshot import) and the target is cleared, in the caller's batch.
pub fn finish_state_sync(batch: &mut WriteBatch, genesis_hash: Hash, block: &Block, certificate: &Certificate) {
    write_restored_head(batch, genesis_hash, block, certificate);
    batch.delete(columns::META, META_STATE_SYNC_TARGET);
}

fn put_block(batch: &mut WriteBatch, block: &Block, hash: &Hash, certificate: &Certificate) {
    batch.put(columns::BLOCKS, hash.0.to_vec(), codec::encode(block));
    batch.put(columns::BLOCK_INDEX, block.header.height.to_be_bytes().to_vec(), codec::encode(hash));
    batch.put(columns::CERTIFICATES, hash.0.to_vec(), codec::encode(certificate));
}

fn load_block(store: &dyn KvStore, hash: &Hash) -> Result<Option<Block>, LedgerError> {
    match store.get(columns::BLOCKS, &hash.0)? {
        Some(b) => Ok(Some(decode_stored("block", &b)?)),
        None => Ok(None),
    }
}

fn load_certificate(store: &dyn KvStore, hash: &Hash) -> Result<Certificate, LedgerError> {
    match store.get(columns::CERTIFICATES, &hash.0)? {
        Some(b) => decode_stored("certificate", &b),
        None => Err(corrupt("certificate", &format!("missing for block {hash}"))),
    }
}

fn decode_stored<T: borsh::BorshDeserialize>(what: &'static str, bytes: &[u8]) -> Result<T, LedgerError> {
    codec::decode(what, bytes, usize::MAX).map_err(|e| corrupt(what, &e.to_string()))
}

fn corrupt(what: &str, reason: &str) -> LedgerError {
    LedgerError::Corrupt { what: what.to_string(), reason: reason.to_string() }
}

/// The state entries genesis creates: one account per funded address.
fn genesis_entries(genesis: &Genesis) -> Vec<(Vec<u8>, Vec<u8>)> {
    genesis
        .accounts
        .iter()
        .map(|a| (state::account_key(&a.address), codec::encode(&Account { balance: a.balance, ..Account::default() })))
        .collect()
}

/// Checks that a block's balance changes net to what it minted minus what it burned: only the
/// accounts it touched are read, so every block pays for it, and a bug that creates or
/// destroys tokens (a module, a fee path) stops the block instead of entering the chain.
fn check_conservation(
    before: &ChainReader<'_>,
    changes: &Changes,
    minted: crate::types::Amount,
    burned: crate::types::Amount,
) -> Result<(), LedgerError> {
    use crate::vm::state::StateReader;
    let (mut held, mut holds) = (0u128, 0u128);
    for (address, account) in &changes.accounts {
        // Total supply fits in u128 and these accounts hold part of it.
        held = held.saturating_add(before.account(address)?.balance);
        holds = holds.saturating_add(account.balance);
    }
    if held.checked_add(minted) != holds.checked_add(burned) {
        return Err(LedgerError::Conservation { before: held, after: holds, minted, burned });
    }
    Ok(())
}

#[cfg(test)]
mod conservation_tests {
    use super::*;

    #[test]
    fn a_change_that_creates_or_destroys_tokens_is_refused_unless_minted_or_burned() {
        let store = aether_storage_memory::MemoryStore::new();
        let reader = ChainReader { store: &store, overlays: &[] };
        let mut changes = Changes::default();
        changes.accounts.insert(Address([1; 20]), crate::types::Account { balance: 70, ..Default::default() });
        changes.accounts.insert(Address([2; 20]), crate::types::Account { balance: 30, ..Default::default() });
        // From nothing to 100: only a mint of 100 explains it.
        assert!(check_conservation(&reader, &changes, 100, 0).is_ok());
        assert!(check_conservation(&reader, &changes, 130, 30).is_ok(), "130 minted, 30 burned");
        let err = check_conservation(&reader, &changes, 99, 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the block breaks conservation of supply: the accounts it touches held 0 and would hold 100, with 99 minted and 0 burned"
        );
        assert!(check_conservation(&reader, &changes, 0, 0).is_err());
    }
}
