//! Execution of transactions against a layered view of the state.

use std::sync::Arc;

use super::{decode_stored, ExecutedBlock, LedgerError};
use crate::storage::{columns, KvStore};
use crate::types::{Account, Action, Address, Amount, Hash, Receipt, SignedTransaction, TxStatus};
use crate::vm::executor::{BlockContext, Executor};
use crate::vm::state::{Changes, Journal, StateReader};
use crate::vm::{gas, CallOutcome, CallResult, VmBackend};

/// Why a transaction cannot be included at this point of the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("wrong chain id {got:?}; this chain is {expected:?}")]
    WrongChain { expected: String, got: String },
    #[error("bad signature: {0}")]
    BadSignature(String),
    #[error("nonce {got} is stale: the account's next nonce is {expected}")]
    StaleNonce { expected: u64, got: u64 },
    #[error("nonce {got} is in the future: the account's next nonce is {expected}")]
    FutureNonce { expected: u64, got: u64 },
    #[error("balance {balance} cannot pay {needed}")]
    InsufficientBalance { balance: Amount, needed: Amount },
    #[error("gas limit {got} is above the most one transaction may ask for ({max})")]
    GasLimitTooHigh { got: u64, max: u64 },
    #[error("fee {fee} is below {needed}, the least for a gas limit of {gas_limit} (one fee unit per {per} gas)")]
    FeeTooLow { fee: Amount, needed: Amount, gas_limit: u64, per: u64 },
    #[error("the block's gas is used up: {used} of {max} asked for already")]
    BlockGasFull { used: u64, max: u64 },
    #[error("this node has no VM backend, so it cannot run contract transactions")]
    NoVm,
    /// The VM failed on this node (not the contract): the transaction is left out of blocks
    /// this node builds, and a block holding it is not accepted by this node.
    #[error("the VM failed, not the contract: {0}")]
    Vm(String),
}

/// The state below a block: its uncommitted ancestors (newest first), then the committed store.
pub(super) struct ChainReader<'a> {
    pub(super) store: &'a dyn KvStore,
    pub(super) overlays: &'a [Arc<ExecutedBlock>],
}

impl StateReader for ChainReader<'_> {
    type Error = LedgerError;

    fn account(&self, address: &Address) -> Result<Account, LedgerError> {
        for layer in self.overlays {
            if let Some(a) = layer.changes.accounts.get(address) {
                return Ok(a.clone());
            }
        }
        match self.store.get(columns::ACCOUNTS, &address.0)? {
            Some(bytes) => decode_stored::<Account>("account", &bytes),
            None => Ok(Account::default()),
        }
    }

    fn storage(&self, contract: &Address, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        let k = (*contract, key.to_vec());
        for layer in self.overlays {
            if let Some(v) = layer.changes.storage.get(&k) {
                return Ok(v.clone());
            }
        }
        let mut flat = contract.0.to_vec();
        flat.extend_from_slice(key);
        Ok(self.store.get(columns::CONTRACT_STORAGE, &flat)?)
    }

    fn next_storage_key(&self, contract: &Address, prefix: &[u8], after: Option<&[u8]>) -> Result<Option<Vec<u8>>, LedgerError> {
        // Candidates from each overlay and the store, smallest first; a key an overlay deleted
        // (newer layers win) is skipped. Bounded by the keys the overlays deleted.
        let mut cursor: Option<Vec<u8>> = after.map(<[u8]>::to_vec);
        loop {
            let in_overlays = self
                .overlays
                .iter()
                .filter_map(|l| crate::vm::state::next_changed_key(&l.changes, contract, prefix, cursor.as_deref()))
                .min();
            let mut flat_prefix = contract.0.to_vec();
            flat_prefix.extend_from_slice(prefix);
            let start = match &cursor {
                // The first flat key above `contract ‖ cursor`: append a zero byte.
                Some(c) => {
                    let mut s = contract.0.to_vec();
                    s.extend_from_slice(c);
                    s.push(0);
                    s
                }
                None => flat_prefix.clone(),
            };
            let in_store = match self.store.scan_prefix_from(columns::CONTRACT_STORAGE, &flat_prefix, &start)?.next() {
                Some(item) => Some(item?.0[20..].to_vec()),
                None => None,
            };
            let Some(candidate) = [in_overlays, in_store].into_iter().flatten().min() else { return Ok(None) };
            if self.storage(contract, &candidate)?.is_some() {
                return Ok(Some(candidate));
            }
            cursor = Some(candidate);
        }
    }

    fn code(&self, hash: &Hash) -> Result<Option<Arc<[u8]>>, LedgerError> {
        for layer in self.overlays {
            if let Some(c) = layer.changes.code.get(hash) {
                return Ok(Some(c.clone()));
            }
        }
        Ok(self.store.get(columns::CODE, &hash.0)?.map(Arc::from))
    }
}

/// Executes transactions on top of a [`ChainReader`], collecting their changes.
pub(super) struct ExecState<'a> {
    journal: Journal<ChainReader<'a>>,
    chain_id: &'a str,
    proposer: Address,
    block: BlockContext,
    vm: Option<&'a dyn VmBackend>,
    /// Gas asked for by the transactions applied so far (bounded by the block gas limit).
    gas_requested: u64,
    runtime: &'a super::modules::Runtime,
    /// The chain parameters of the parent's state, which this block runs under (read by
    /// [`ExecState::run_block`]).
    params: crate::chain::ChainParams,
    /// The modules this block runs, at their active versions (resolved by
    /// [`ExecState::run_block`], after the upgrades due at this height).
    active: Arc<super::modules::Modules>,
    /// Tokens created and destroyed by kept module calls and hooks in this block.
    pub(super) minted: u128,
    pub(super) burned: u128,
    /// What each module's hooks may still spend in this block.
    hook_gas_used: std::collections::BTreeMap<&'static str, u64>,
    hook_events: Vec<crate::types::Event>,
    /// The gas each hook run used, in run order.
    hook_gas: Vec<HookGas>,
    /// The signers of the block's parent certificate (read once in [`ExecState::run_block`]).
    parent_signers: Option<crate::module::ParentSigners>,
    /// The epoch schedule of the parent's state (`None`: no epochs), and the block's epoch,
    /// read by [`ExecState::run_block`].
    timeline: Option<crate::types::EpochTimeline>,
    epoch: u64,
}

/// Topic of the ledger's event for a block whose parent certificate the engine's decoder
/// cannot read (emitted by [`super::modules::system_address`]; data: the reason). The block
/// goes on; modules see no signers for its parent.
pub const PARENT_CERTIFICATE_UNDECODABLE: &[u8] = b"parent_certificate_undecodable";

/// The gas one module's hook used in a block (a hook that failed included: it used the gas
/// it was charged before it failed, its whole budget if it ran out). Hooks have no receipt;
/// this is how tools and benchmarks see what they cost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookGas {
    /// The module's name.
    pub module: &'static str,
    /// `init_genesis`, `begin_block`, `end_block` or `end_epoch`.
    pub hook: &'static str,
    pub gas: u64,
}

/// Which module hook runs.
#[derive(Clone, Copy)]
pub(super) enum Hook<'e> {
    /// Block 1 only, first: each module's `init_genesis` with its genesis parameters.
    Genesis,
    /// Before the transactions, with the evidence the block records.
    Begin(&'e [crate::types::Evidence]),
    /// After the transactions.
    End,
    /// After `End` on the last block of this epoch.
    EndEpoch(u64),
}

impl Hook<'_> {
    fn stage(self) -> &'static str {
        match self {
            Hook::Genesis => "init_genesis",
            Hook::Begin(_) => "begin_block",
            Hook::End => "end_block",
            Hook::EndEpoch(_) => "end_epoch",
        }
    }
}

impl<'a> ExecState<'a> {
    pub(super) fn new(
        store: &'a dyn KvStore,
        overlays: &'a [Arc<ExecutedBlock>],
        chain_id: &'a str,
        proposer: Address,
        block: BlockContext,
        vm: Option<&'a dyn VmBackend>,
        runtime: &'a super::modules::Runtime,
    ) -> Self {
        ExecState {
            journal: Journal::new(ChainReader { store, overlays }),
            chain_id,
            proposer,
            block,
            vm,
            gas_requested: 0,
            runtime,
            params: crate::chain::ChainParams::DEFAULT,
            active: Arc::new(Vec::new()),
            minted: 0,
            burned: 0,
            hook_gas_used: Default::default(),
            hook_events: Vec::new(),
            hook_gas: Vec::new(),
            parent_signers: None,
            timeline: None,
            epoch: 0,
        }
    }

    /// Counts what a kept call or hook minted and burned.
    fn count_supply(&mut self, minted: u128, burned: u128) {
        self.minted = self.minted.saturating_add(minted);
        self.burned = self.burned.saturating_add(burned);
    }

    /// Applies `tx`; on `Err` nothing changed. `check_signature` is false only for
    /// transactions the mempool already verified.
    pub(super) fn apply(&mut self, tx: &SignedTransaction, check_signature: bool) -> Result<Receipt, TxError> {
        let body = &tx.body;
        if body.chain_id != self.chain_id {
            return Err(TxError::WrongChain { expected: self.chain_id.to_string(), got: body.chain_id.clone() });
        }
        let gas_limit = body.action.gas_limit();
        if !matches!(body.action, Action::Transfer { .. }) {
            if matches!(body.action, Action::Deploy { .. } | Action::Call { .. }) && self.vm.is_none() {
                return Err(TxError::NoVm);
            }
            let params = self.params;
            let max_tx_gas = max_tx_gas(&params);
            if gas_limit > max_tx_gas {
                return Err(TxError::GasLimitTooHigh { got: gas_limit, max: max_tx_gas });
            }
            let needed = params.min_fee(gas_limit);
            if body.fee < needed {
                return Err(TxError::FeeTooLow { fee: body.fee, needed, gas_limit, per: params.gas_per_fee_unit });
            }
            if self.gas_requested + gas_limit > params.max_block_gas {
                return Err(TxError::BlockGasFull { used: self.gas_requested, max: params.max_block_gas });
            }
        }
        if check_signature {
            tx.verify_signature().map_err(|e| TxError::BadSignature(e.to_string()))?;
        }
        let sender_address = tx.sender();
        let mut sender = self.journal.account(&sender_address);
        if body.nonce < sender.nonce {
            return Err(TxError::StaleNonce { expected: sender.nonce, got: body.nonce });
        }
        if body.nonce > sender.nonce {
            return Err(TxError::FutureNonce { expected: sender.nonce, got: body.nonce });
        }
        if sender.balance < body.fee {
            return Err(TxError::InsufficientBalance { balance: sender.balance, needed: body.fee });
        }
        // Everything the transaction does is one checkpoint, dropped whole if the VM (not the
        // contract) fails, so such a failure can never enter the state.
        self.journal.checkpoint();
        sender.balance -= body.fee;
        sender.nonce += 1;
        self.journal.set_account(sender_address, sender);
        let mut engine_error = None;

        let mut receipt = Receipt {
            tx_hash: tx.hash(),
            status: TxStatus::Success,
            fee_paid: body.fee,
            gas_used: 0,
            events: vec![],
            output: vec![],
            contract_address: None,
        };
        match &body.action {
            Action::Transfer { to, amount, .. } => receipt.status = self.transfer(&sender_address, to, *amount),
            Action::Deploy { code, input, value, gas_limit } => {
                let Some(vm) = self.vm else { return Err(TxError::NoVm) };
                let mut executor = Executor::new(vm, &mut self.journal, self.block);
                let (address, outcome) = executor.deploy(sender_address, body.nonce, code, input, *value, *gas_limit);
                let (events, failure) = executor.finish();
                receipt.events = events;
                engine_error = failure;
                receipt.contract_address = Some(address);
                record(&mut receipt, outcome);
            }
            Action::Call { contract, method, input, value, gas_limit } => {
                let Some(vm) = self.vm else { return Err(TxError::NoVm) };
                let mut executor = Executor::new(vm, &mut self.journal, self.block);
                let outcome = executor.call(sender_address, *contract, method, input, *value, *gas_limit);
                let (events, failure) = executor.finish();
                receipt.events = events;
                engine_error = failure;
                record(&mut receipt, outcome);
            }
            Action::Module { module, call, value, gas_limit } => match self.call_module(sender_address, module, call, *value, *gas_limit) {
                Ok((status, gas_used, events, output)) => {
                    receipt.status = status;
                    receipt.gas_used = gas_used;
                    receipt.events = events;
                    receipt.output = output;
                }
                Err(panic) => engine_error = Some(crate::vm::VmError::Engine(panic)),
            },
        }

        // Total supply fits in u128 and is conserved, so crediting the fee cannot overflow.
        let proposer_address = self.proposer;
        let mut proposer = self.journal.account(&proposer_address);
        proposer.balance = proposer.balance.saturating_add(body.fee);
        self.journal.set_account(proposer_address, proposer);
        if let Some(e) = engine_error {
            self.journal.revert_checkpoint();
            return Err(TxError::Vm(e.to_string()));
        }
        self.journal.commit_checkpoint();
        self.gas_requested += gas_limit;
        Ok(receipt)
    }

    /// Runs a module call in its own checkpoint: the value moves to the module's account
    /// first; a failure reverts everything the call did (the fee stays paid). `Err` only when
    /// the module panicked: that is this node's failure, like the VM's, and never a receipt.
    fn call_module(
        &mut self,
        caller: Address,
        name: &str,
        call: &[u8],
        value: Amount,
        gas_limit: u64,
    ) -> Result<(TxStatus, u64, Vec<crate::types::Event>, Vec<u8>), String> {
        if super::chain::is_chain(name) {
            // The chain's settings are governance's: no transaction's signer holds the grant.
            let refused = crate::module::ModuleError::NotChainGovernor("change the chain parameters or schedule module upgrades");
            return Ok((TxStatus::Failed { reason: format!("module {name}: {refused}") }, 0, vec![], vec![]));
        }
        let Some(module) = super::modules::find(&self.active, name).cloned() else {
            let known: Vec<&str> = self.active.iter().map(|m| m.name()).collect();
            let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
            return Ok((TxStatus::Failed { reason: format!("unknown module {name:?} (this chain runs: {known})") }, 0, vec![], vec![]));
        };
        self.journal.checkpoint();
        let to = crate::module::module_address(name);
        if let TxStatus::Failed { reason } = self.transfer(&caller, &to, value) {
            self.journal.revert_checkpoint();
            return Ok((TxStatus::Failed { reason: format!("module {name}: the value cannot be paid: {reason}") }, 0, vec![], vec![]));
        }
        let mut cx = super::modules::ModuleCall::new(
            &mut self.journal,
            (self.runtime, &self.active),
            name,
            caller,
            value,
            self.block.height,
            gas_limit,
        );
        cx.parent_signers = self.parent_signers.as_ref();
        cx.epoch = self.epoch;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cx.charge_base().and_then(|()| module.call(&mut cx, call))));
        let (gas_used, events, minted, burned) = (cx.gas_used, std::mem::take(&mut cx.events), cx.minted, cx.burned);
        match result {
            Ok(Ok(output)) => {
                self.journal.commit_checkpoint();
                self.count_supply(minted, burned);
                Ok((TxStatus::Success, gas_used, events, output))
            }
            Ok(Err(e)) => {
                self.journal.revert_checkpoint();
                Ok((TxStatus::Failed { reason: format!("module {name}: {e}") }, gas_used, vec![], vec![]))
            }
            Err(_) => {
                self.journal.revert_checkpoint();
                Err(format!("module {name} panicked"))
            }
        }
    }

    fn transfer(&mut self, from: &Address, to: &Address, amount: Amount) -> TxStatus {
        match self.journal.move_balance(from, to, amount) {
            Ok(()) => TxStatus::Success,
            Err(balance) => TxStatus::Failed { reason: format!("insufficient balance: has {balance}, transfer needs {amount}") },
        }
    }

    /// The block's state changes, its hook events and its hooks' gas.
    pub(super) fn into_changes(self) -> Result<(Changes, Vec<crate::types::Event>, Vec<HookGas>), LedgerError> {
        Ok((self.journal.into_changes()?, self.hook_events, self.hook_gas))
    }

    /// Runs every module's hook for `hook`, in genesis order, each in its own checkpoint. Block
    /// hooks spend what is left of their module's hook budget for the block
    /// ([`crate::module::HOOK_GAS_PER_BLOCK`]); `init_genesis` and `end_epoch` have budgets of
    /// their own. A hook that fails — its `Err`, running out of gas, or a panic (every node runs
    /// the same code, so every node fails alike) — is reverted alone and reported as a
    /// `hook_failed` event; the block goes on. For `EndEpoch`, returns the next validator set
    /// the validator source named and the ledger accepted (a set it refuses fails the hook).
    pub(super) fn run_hooks(&mut self, hook: Hook<'_>) -> Option<Vec<crate::types::ValidatorEntry>> {
        let runtime = self.runtime;
        let source = runtime.epochs.as_ref().and_then(|e| e.validator_source.as_deref());
        let mut next_set = None;
        let active = self.active.clone();
        for module in active.iter() {
            let name = module.name();
            self.journal.checkpoint();
            let spent = self.hook_gas_used.get(name).copied().unwrap_or(0);
            let budget = match hook {
                Hook::Genesis => crate::module::GENESIS_INIT_GAS,
                Hook::EndEpoch(_) => crate::module::HOOK_GAS_PER_EPOCH,
                Hook::Begin(_) | Hook::End => crate::module::HOOK_GAS_PER_BLOCK.saturating_sub(spent),
            };
            let mut cx = super::modules::ModuleCall::new(
                &mut self.journal,
                (runtime, &active),
                name,
                Address::default(),
                0,
                self.block.height,
                budget,
            );
            cx.parent_signers = self.parent_signers.as_ref();
            cx.epoch = self.epoch;
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match hook {
                Hook::Genesis => module.init_genesis(&mut cx, runtime.params.get(name).map_or(&[][..], |p| p.as_bytes())).map(|()| None),
                Hook::Begin(evidence) => module.begin_block(&mut cx, evidence).map(|()| None),
                Hook::End => module.end_block(&mut cx).map(|()| None),
                Hook::EndEpoch(epoch) => module.end_epoch(&mut cx, epoch),
            }));
            let (gas_used, events, minted, burned) = (cx.gas_used, std::mem::take(&mut cx.events), cx.minted, cx.burned);
            if matches!(hook, Hook::Begin(_) | Hook::End) {
                self.hook_gas_used.insert(name, spent.saturating_add(gas_used));
            }
            self.hook_gas.push(HookGas { module: name, hook: hook.stage(), gas: gas_used });
            let failure = match result {
                Ok(Ok(Some(set))) if Some(name) == source => match super::modules::check_validator_set(&set, runtime.key_check) {
                    Ok(()) => {
                        next_set = Some(set);
                        None
                    }
                    Err(why) => Some(why),
                },
                Ok(Ok(_)) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some("panicked".to_string()),
            };
            match failure {
                None => {
                    self.journal.commit_checkpoint();
                    self.hook_events.extend(events);
                    self.count_supply(minted, burned);
                }
                Some(reason) => {
                    self.journal.revert_checkpoint();
                    let stage = hook.stage();
                    tracing::warn!(module = name, hook = stage, height = self.block.height, %reason, "a module hook failed and was reverted");
                    self.hook_events.push(crate::types::Event {
                        emitter: crate::module::module_address(name),
                        topic: b"hook_failed".to_vec(),
                        data: format!("{stage}: {reason}").into_bytes(),
                    });
                }
            }
        }
        next_set
    }

    /// Switches the modules whose upgrade is due at this height, in hook order, each running
    /// its new version's `migrate` once with [`crate::module::MIGRATION_GAS`]. The schedule is
    /// consumed whatever happens; a migration that fails (its `Err`, running out, a panic) is
    /// reverted with the switch, so the module stays on its old version, and is reported as a
    /// `hook_failed` event; the block goes on. (A due version this node lacks has refused the
    /// block already, in [`super::chain::block_modules`].)
    fn run_upgrades(&mut self, due: Vec<super::chain::DueUpgrade>) {
        for upgrade in due {
            let to = upgrade.to.version();
            let name = upgrade.to.name();
            super::chain::record_version(&mut self.journal, name, upgrade.from);
            self.journal.checkpoint();
            super::chain::record_version(&mut self.journal, name, to);
            // The migration sees (and may call) the modules as they will run: itself switched.
            let mut active = (*self.active).clone();
            active[upgrade.index] = upgrade.to.clone();
            let mut cx = super::modules::ModuleCall::new(
                &mut self.journal,
                (self.runtime, &active),
                name,
                Address::default(),
                0,
                self.block.height,
                crate::module::MIGRATION_GAS,
            );
            cx.epoch = self.epoch;
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| upgrade.to.migrate(&mut cx, upgrade.from)))
                .unwrap_or_else(|_| Err(crate::module::ModuleError::Failed("panicked".into())));
            let (events, minted, burned) = (std::mem::take(&mut cx.events), cx.minted, cx.burned);
            let emitter = crate::module::module_address(name);
            match result {
                Ok(()) => {
                    self.journal.commit_checkpoint();
                    self.hook_events.extend(events);
                    self.hook_events.push(crate::types::Event {
                        emitter,
                        topic: b"module_upgraded".to_vec(),
                        data: format!("version {} to {to}", upgrade.from).into_bytes(),
                    });
                    self.count_supply(minted, burned);
                    self.active = Arc::new(active);
                    tracing::info!(module = name, from = upgrade.from, to, height = self.block.height, "module upgraded");
                }
                Err(reason) => {
                    self.journal.revert_checkpoint();
                    tracing::warn!(module = name, from = upgrade.from, to, height = self.block.height, %reason, "a module's migration failed; it stays on its version");
                    self.hook_events.push(crate::types::Event {
                        emitter,
                        topic: b"hook_failed".to_vec(),
                        data: format!("migrate to version {to}: {reason}").into_bytes(),
                    });
                }
            }
        }
    }

    /// Closes epoch `epoch` on its last block: records the next epoch's set (what the
    /// validator source named, or this epoch's set again) in the system account's storage and
    /// returns the commitment the block's header carries (covering `new_length`, the next
    /// epoch's length, when governance changed it).
    pub(super) fn close_epoch(
        &mut self,
        epoch: u64,
        named: Option<Vec<crate::types::ValidatorEntry>>,
        new_length: Option<u64>,
    ) -> Result<Hash, LedgerError> {
        let next = match named {
            Some(set) => set,
            None => super::modules::validator_set_in(&mut self.journal, self.runtime, epoch)
                .map_err(|e| super::corrupt("validator set", &e))?
                .ok_or_else(|| super::corrupt("validator set", &format!("epoch {epoch} has none recorded")))?,
        };
        let commitment = crate::types::epoch_start_commitment(epoch + 1, &next, new_length);
        self.journal.set_storage(
            super::modules::system_address(),
            super::modules::validator_set_key(epoch + 1),
            Some(crate::codec::encode(&next)),
        );
        Ok(commitment)
    }

    /// Runs the hooks of a block around its transactions (`apply` them in `transactions`):
    /// `init_genesis` on block 1, `begin_block`, then after the transactions `end_block`
    /// and, on an epoch's last block, `end_epoch` and the next set's record. Modules see the
    /// signers of `parent_certificate` (the header's) through `parent_signers`. Returns the
    /// header's `next_validators`.
    pub(super) fn run_block(
        &mut self,
        evidence: &[crate::types::Evidence],
        parent_certificate: &crate::types::Certificate,
        transactions: impl FnOnce(&mut Self) -> Result<(), LedgerError>,
    ) -> Result<Option<Hash>, LedgerError> {
        let height = self.block.height;
        self.params = super::chain::params_in(&mut self.journal).map_err(|e| super::corrupt("chain parameters", &e))?;
        self.timeline = super::chain::timeline_in(&mut self.journal, self.runtime).map_err(|e| super::corrupt("epoch lengths", &e))?;
        self.epoch = self.timeline.as_ref().map_or(0, |t| t.epoch_of(height));
        let parent_epoch = self.timeline.as_ref().map_or(0, |t| t.epoch_of(height.saturating_sub(1)));
        let (active, due) = super::chain::block_modules(&mut self.journal, self.runtime, height)?;
        self.active = Arc::new(active);
        self.run_upgrades(due);
        // Only modules read it: a chain without them never decodes certificates.
        if !self.runtime.modules.is_empty() {
            match super::modules::read_parent_signers(&mut self.journal, self.runtime, (height, parent_epoch), &parent_certificate.0) {
                Ok(signers) => self.parent_signers = signers,
                Err(reason) => {
                    tracing::warn!(height, %reason, "the block's parent certificate does not decode: modules see no signers");
                    self.hook_events.push(crate::types::Event {
                        emitter: super::modules::system_address(),
                        topic: PARENT_CERTIFICATE_UNDECODABLE.to_vec(),
                        data: reason.into_bytes(),
                    });
                }
            }
        }
        if height == 1 {
            self.run_hooks(Hook::Genesis);
        }
        self.run_hooks(Hook::Begin(evidence));
        transactions(self)?;
        self.run_hooks(Hook::End);
        match self.timeline.take() {
            Some(mut timeline) if timeline.is_boundary(height) => {
                let epoch = self.epoch;
                let named = self.run_hooks(Hook::EndEpoch(epoch));
                let new_length = super::chain::close_epoch_length(&mut self.journal, &mut timeline, epoch, height)
                    .map_err(|e| super::corrupt("epoch lengths", &e))?;
                Ok(Some(self.close_epoch(epoch, named, new_length)?))
            }
            _ => Ok(None),
        }
    }
}

/// The most gas one transaction may ask for under `params`: the VM's per-transaction maximum,
/// or less if the block holds less.
pub fn max_tx_gas(params: &crate::chain::ChainParams) -> u64 {
    gas::MAX_TX_GAS.min(params.max_block_gas)
}

/// Fills a receipt from a contract call's outcome.
fn record(receipt: &mut Receipt, outcome: CallOutcome) {
    receipt.gas_used = outcome.gas_used;
    receipt.status = match outcome.result {
        CallResult::Returned(output) => {
            receipt.output = output;
            TxStatus::Success
        }
        CallResult::Reverted(output) => {
            let reason = format!("reverted: {}", String::from_utf8_lossy(&output));
            receipt.output = output;
            TxStatus::Failed { reason }
        }
        CallResult::Trapped(why) => TxStatus::Failed { reason: format!("trapped: {why}") },
        CallResult::OutOfGas => TxStatus::Failed { reason: "out of gas".into() },
    };
}

/// Runs a call on the committed state without keeping anything (the `contract_query` RPC).
#[allow(clippy::too_many_arguments)] // the call's own fields, as `Executor::call` takes them
pub(super) fn query(
    reader: ChainReader<'_>,
    vm: &dyn VmBackend,
    block: BlockContext,
    caller: Address,
    contract: Address,
    method: &str,
    input: &[u8],
    gas_limit: u64,
) -> Result<(CallOutcome, Vec<crate::types::Event>), LedgerError> {
    let mut journal = Journal::new(reader);
    let mut executor = Executor::new(vm, &mut journal, block);
    let outcome = executor.call(caller, contract, method, input, 0, gas_limit);
    let (events, engine_error) = executor.finish();
    // A read error or the VM's own failure must not pass for the contract's answer.
    if let Some(e) = engine_error {
        return Err(LedgerError::Vm(e));
    }
    journal.into_changes()?;
    Ok((outcome, events))
}
