//! Runtime-module calls inside a transaction: the [`ModuleContext`] the ledger gives a module,
//! over the transaction's journal, with a gas meter.
//!
//! Costs reuse the contract host's (`aether_vm::gas`): a module's storage read or write costs
//! what a contract's does, so neither is a cheaper way to the same state.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::module::{
    module_address, ModuleContext, ModuleError, ParentSigners, RuntimeModule, CHECK_CONSENSUS_KEY_GAS, MAX_CALL_DEPTH, PARENT_SIGNERS_GAS,
};
use crate::registry::{CertificateSigners, ConsensusKeyCheck};
use crate::types::{Address, Amount, EpochSchedule, Event, Height, ValidatorEntry};
use crate::vm::gas;
use crate::vm::state::{Journal, StateReader};

/// The modules a ledger runs, in hook order (genesis order).
pub type Modules = Vec<Arc<dyn RuntimeModule>>;

/// What genesis and the node fix about the chain's runtime: the modules, what genesis grants
/// and hands them, and the epochs.
pub(super) struct Runtime {
    /// The modules at their genesis versions, in hook order. Which version runs is the
    /// chain's record ([`super::chain::block_modules`]).
    pub(super) modules: Modules,
    /// Every version of a module this node carries (the genesis ones included), by name and
    /// version: what an upgrade may switch to.
    pub(super) versions: BTreeMap<(String, u32), Arc<dyn RuntimeModule>>,
    /// Modules genesis lets mint and burn.
    pub(super) mint_grants: BTreeSet<String>,
    /// Modules genesis lets change the chain parameters and schedule upgrades.
    pub(super) chain_governors: BTreeSet<String>,
    /// Each module's genesis parameters (canonical JSON text).
    pub(super) params: BTreeMap<String, String>,
    pub(super) epochs: Option<EpochSchedule>,
    /// The set of epoch 0.
    pub(super) genesis_validators: Vec<ValidatorEntry>,
    /// The consensus engine's check of a consensus key.
    pub(super) key_check: ConsensusKeyCheck,
    /// The consensus engine's reading of the signers of a parent certificate.
    pub(super) certificate_signers: CertificateSigners,
}

impl Runtime {
    pub(super) fn epoch_of(&self, height: Height) -> u64 {
        self.epochs.as_ref().map_or(0, |e| e.epoch_of(height))
    }
}

/// The keyless account whose storage holds the ledger's own records (validator sets).
pub fn system_address() -> Address {
    let h = crate::types::Hash::digest(crate::types::domain::SYSTEM_ADDRESS, b"");
    let mut a = [0u8; 20];
    a.copy_from_slice(&h.0[..20]);
    Address(a)
}

/// The system storage key of `epoch`'s validator set (big-endian, so sets sort by epoch).
pub(super) fn validator_set_key(epoch: u64) -> Vec<u8> {
    let mut key = b"validators/".to_vec();
    key.extend_from_slice(&epoch.to_be_bytes());
    key
}

/// The validator set of `epoch` as `journal` sees the chain (epoch 0: genesis's).
pub(super) fn validator_set_in<R: StateReader>(
    journal: &mut Journal<R>,
    runtime: &Runtime,
    epoch: u64,
) -> Result<Option<Vec<ValidatorEntry>>, String> {
    if epoch == 0 {
        return Ok(Some(runtime.genesis_validators.clone()));
    }
    match journal.storage(&system_address(), &validator_set_key(epoch)) {
        None => Ok(None),
        Some(bytes) => crate::codec::decode("validator set", &bytes, usize::MAX).map(Some).map_err(|e| e.to_string()),
    }
}

/// Checks a next validator set: not empty, at most [`crate::module::MAX_VALIDATORS`], unique
/// identities, stake above zero and a representable total, every key accepted by the engine.
pub(super) fn check_validator_set(set: &[ValidatorEntry], key_check: ConsensusKeyCheck) -> Result<(), String> {
    if set.is_empty() {
        return Err("the next validator set is empty".into());
    }
    if set.len() > crate::module::MAX_VALIDATORS {
        return Err(format!("the next validator set has {} members; at most {}", set.len(), crate::module::MAX_VALIDATORS));
    }
    let mut seen = BTreeSet::new();
    let mut total: Amount = 0;
    for v in set {
        if !seen.insert(v.identity) {
            return Err(format!("validator {} ({}) appears twice in the next set", v.name, v.identity));
        }
        if v.stake == 0 {
            return Err(format!("validator {} has zero stake in the next set", v.name));
        }
        total = total.checked_add(v.stake).ok_or("the next set's total stake overflows")?;
        v.identity.check().map_err(|e| format!("validator {}: identity key: {e}", v.name))?;
        key_check(&v.consensus_key).map_err(|e| format!("validator {}: consensus key: {e}", v.name))?;
    }
    Ok(())
}

/// The module named `name`.
pub(super) fn find<'m>(modules: &'m Modules, name: &str) -> Option<&'m Arc<dyn RuntimeModule>> {
    modules.iter().find(|m| m.name() == name)
}

/// One module call's view of the chain.
pub(super) struct ModuleCall<'j, R: StateReader> {
    pub(super) journal: &'j mut Journal<R>,
    pub(super) address: Address,
    pub(super) caller: Address,
    pub(super) value: Amount,
    pub(super) height: Height,
    pub(super) epoch: u64,
    pub(super) gas_limit: u64,
    pub(super) gas_used: u64,
    pub(super) events: Vec<Event>,
    /// A query's context: writes, payments and events are refused.
    pub(super) read_only: bool,
    /// Genesis grants this module `mint`.
    pub(super) may_mint: bool,
    /// Genesis grants this module `govern_chain`.
    pub(super) may_govern: bool,
    /// Tokens created and destroyed by this call (counted by the block's conservation check
    /// only if the call's changes are kept).
    pub(super) minted: u128,
    pub(super) burned: u128,
    /// The grants, the epochs.
    pub(super) runtime: &'j Runtime,
    /// The modules this call may call, at the versions the block runs.
    pub(super) active: &'j Modules,
    /// 1 for a transaction's call or a hook.
    pub(super) depth: u32,
    /// The signers of the block's parent certificate, read once per block (`None` outside
    /// blocks, and when the certificate names none).
    pub(super) parent_signers: Option<&'j ParentSigners>,
}

impl<'j, R: StateReader> ModuleCall<'j, R> {
    pub(super) fn new(
        journal: &'j mut Journal<R>,
        (runtime, active): (&'j Runtime, &'j Modules),
        module: &str,
        caller: Address,
        value: Amount,
        height: Height,
        gas_limit: u64,
    ) -> Self {
        ModuleCall {
            journal,
            address: module_address(module),
            caller,
            value,
            height,
            epoch: runtime.epoch_of(height),
            gas_limit,
            gas_used: 0,
            events: Vec::new(),
            read_only: false,
            may_mint: runtime.mint_grants.contains(module),
            may_govern: runtime.chain_governors.contains(module),
            minted: 0,
            burned: 0,
            runtime,
            active,
            depth: 1,
            parent_signers: None,
        }
    }

    /// What entering a module costs, before it runs.
    pub(super) fn charge_base(&mut self) -> Result<(), ModuleError> {
        self.spend(gas::CALL_CONTRACT)
    }

    fn spend(&mut self, gas: u64) -> Result<(), ModuleError> {
        let used = self.gas_used.saturating_add(gas);
        if used > self.gas_limit {
            self.gas_used = self.gas_limit;
            return Err(ModuleError::OutOfGas);
        }
        self.gas_used = used;
        Ok(())
    }

    fn writable(&self, what: &'static str) -> Result<(), ModuleError> {
        if self.read_only {
            return Err(ModuleError::ReadOnly(what));
        }
        Ok(())
    }

    fn bytes(len: usize) -> u64 {
        (len as u64).saturating_mul(gas::STORAGE_BYTE)
    }

    /// This module's call to the ledger's `chain` pseudo-module; its event is emitted by the
    /// system account. Only a granted module gets past the first check.
    fn call_chain(&mut self, call: &[u8]) -> Result<Vec<u8>, ModuleError> {
        if !self.may_govern {
            return Err(ModuleError::NotChainGovernor("change the chain parameters or schedule module upgrades"));
        }
        let (gas_limit, mut gas_used) = (self.gas_limit, self.gas_used);
        let mut spend = |gas: u64| {
            gas_used = gas_used.saturating_add(gas);
            if gas_used > gas_limit {
                gas_used = gas_limit;
                return Err(ModuleError::OutOfGas);
            }
            Ok(())
        };
        // Like a module callee's, the call's write is undone if it fails (here: its event runs out).
        self.journal.checkpoint();
        let result = super::chain::call(self.journal, self.runtime, self.height, call, &mut spend);
        self.gas_used = gas_used;
        let result = result.and_then(|(topic, data)| {
            self.spend(gas::EVENT.saturating_add(((topic.len() + data.len()) as u64).saturating_mul(gas::EVENT_BYTE)))?;
            self.events.push(Event { emitter: system_address(), topic: topic.to_vec(), data });
            Ok(vec![])
        });
        match result {
            Ok(_) => self.journal.commit_checkpoint(),
            Err(_) => self.journal.revert_checkpoint(),
        }
        result
    }
}

impl<R: StateReader> ModuleContext for ModuleCall<'_, R> {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, ModuleError> {
        self.spend(gas::STORAGE_READ.saturating_add(Self::bytes(key.len())))?;
        let value = self.journal.storage(&self.address, key);
        self.spend(Self::bytes(value.as_ref().map_or(0, Vec::len)))?;
        Ok(value)
    }
    fn set(&mut self, key: &[u8], value: &[u8]) -> Result<(), ModuleError> {
        self.writable("set")?;
        self.spend(gas::STORAGE_WRITE.saturating_add(Self::bytes(key.len() + value.len())))?;
        self.journal.set_storage(self.address, key.to_vec(), Some(value.to_vec()));
        Ok(())
    }
    fn remove(&mut self, key: &[u8]) -> Result<(), ModuleError> {
        self.writable("remove")?;
        self.spend(gas::STORAGE_REMOVE.saturating_add(Self::bytes(key.len())))?;
        self.journal.set_storage(self.address, key.to_vec(), None);
        Ok(())
    }
    fn next_key(&mut self, prefix: &[u8], after: Option<&[u8]>) -> Result<Option<Vec<u8>>, ModuleError> {
        // As many candidate keys as the gas left pays for (deleted keys cost steps too).
        let affordable = (self.gas_limit.saturating_sub(self.gas_used) / gas::STORAGE_READ).min(u64::from(u32::MAX)) as u32;
        match self.journal.next_storage_key(&self.address, prefix, after, affordable) {
            Ok((key, steps)) => {
                let bytes = key.as_ref().map_or(0, Vec::len);
                self.spend(u64::from(steps).saturating_mul(gas::STORAGE_READ).saturating_add(Self::bytes(bytes)))?;
                Ok(key)
            }
            Err(_) => {
                self.gas_used = self.gas_limit;
                Err(ModuleError::OutOfGas)
            }
        }
    }
    fn call_module(&mut self, module: &str, call: &[u8]) -> Result<Vec<u8>, ModuleError> {
        self.writable("call_module")?;
        self.spend(gas::CALL_CONTRACT)?;
        if self.depth >= MAX_CALL_DEPTH {
            return Err(ModuleError::TooDeep(MAX_CALL_DEPTH));
        }
        if super::chain::is_chain(module) {
            return self.call_chain(call);
        }
        let callee = find(self.active, module).cloned().ok_or_else(|| ModuleError::UnknownModule(module.to_string()))?;
        let caller = self.address;
        let gas_left = self.gas_limit - self.gas_used;
        self.journal.checkpoint();
        let mut inner = ModuleCall::new(self.journal, (self.runtime, self.active), module, caller, 0, self.height, gas_left);
        inner.depth = self.depth + 1;
        inner.epoch = self.epoch;
        inner.parent_signers = self.parent_signers;
        let result = callee.call(&mut inner, call);
        let (used, events, minted, burned) = (inner.gas_used, std::mem::take(&mut inner.events), inner.minted, inner.burned);
        self.gas_used = self.gas_used.saturating_add(used).min(self.gas_limit);
        match result {
            Ok(output) => {
                self.journal.commit_checkpoint();
                self.events.extend(events);
                self.minted = self.minted.saturating_add(minted);
                self.burned = self.burned.saturating_add(burned);
                Ok(output)
            }
            Err(e) => {
                self.journal.revert_checkpoint();
                // Out of gas inside is out of gas here: the gas is gone.
                Err(e)
            }
        }
    }
    fn caller(&self) -> Address {
        self.caller
    }
    fn value(&self) -> Amount {
        self.value
    }
    fn height(&self) -> Height {
        self.height
    }
    fn own_address(&self) -> Address {
        self.address
    }
    fn balance(&mut self, who: &Address) -> Result<Amount, ModuleError> {
        self.spend(gas::BALANCE)?;
        Ok(self.journal.account(who).balance)
    }
    fn pay(&mut self, to: &Address, amount: Amount) -> Result<(), ModuleError> {
        self.writable("pay")?;
        self.spend(gas::TRANSFER)?;
        self.journal.move_balance(&self.address, to, amount).map_err(|balance| ModuleError::InsufficientFunds { balance, needed: amount })
    }
    fn emit(&mut self, topic: &[u8], data: &[u8]) -> Result<(), ModuleError> {
        self.writable("emit")?;
        self.spend(gas::EVENT.saturating_add(((topic.len() + data.len()) as u64).saturating_mul(gas::EVENT_BYTE)))?;
        self.events.push(Event { emitter: self.address, topic: topic.to_vec(), data: data.to_vec() });
        Ok(())
    }
    fn charge(&mut self, gas: u64) -> Result<(), ModuleError> {
        self.spend(gas)
    }
    fn mint(&mut self, to: &Address, amount: Amount) -> Result<(), ModuleError> {
        self.writable("mint")?;
        if !self.may_mint {
            return Err(ModuleError::NotGranted("mint"));
        }
        self.spend(gas::TRANSFER)?;
        let mut recipient = self.journal.account(to);
        let (Some(balance), Some(minted)) = (recipient.balance.checked_add(amount), self.minted.checked_add(amount)) else {
            return Err(ModuleError::Failed(format!("minting {amount} would overflow the supply")));
        };
        recipient.balance = balance;
        self.minted = minted;
        self.journal.set_account(*to, recipient);
        Ok(())
    }
    fn burn(&mut self, amount: Amount) -> Result<(), ModuleError> {
        self.writable("burn")?;
        if !self.may_mint {
            return Err(ModuleError::NotGranted("burn"));
        }
        self.spend(gas::TRANSFER)?;
        let mut own = self.journal.account(&self.address);
        if own.balance < amount {
            return Err(ModuleError::InsufficientFunds { balance: own.balance, needed: amount });
        }
        own.balance -= amount;
        self.burned = self.burned.saturating_add(amount);
        self.journal.set_account(self.address, own);
        Ok(())
    }
    fn epoch(&self) -> u64 {
        self.epoch
    }
    fn validator_set(&mut self, epoch: u64) -> Result<Option<Vec<ValidatorEntry>>, ModuleError> {
        self.spend(gas::STORAGE_READ)?;
        let set = validator_set_in(self.journal, self.runtime, epoch).map_err(ModuleError::Failed)?;
        let bytes = set.as_ref().map_or(0, |s| s.iter().map(|v| 64 + v.name.len() + v.consensus_key.len()).sum());
        self.spend(Self::bytes(bytes))?;
        Ok(set)
    }
    fn check_consensus_key(&mut self, key: &[u8]) -> Result<(), ModuleError> {
        self.spend(CHECK_CONSENSUS_KEY_GAS)?;
        (self.runtime.key_check)(key).map_err(ModuleError::BadConsensusKey)
    }
    fn parent_signers(&mut self) -> Result<Option<ParentSigners>, ModuleError> {
        let members = self.parent_signers.map_or(0, |s| s.validators.len());
        self.spend(PARENT_SIGNERS_GAS.saturating_add(Self::bytes(members.saturating_mul(33))))?;
        Ok(self.parent_signers.cloned())
    }
}

/// The signers of the certificate `certificate` of the block at `height - 1`, as `decode`
/// (the engine's [`CertificateSigners`]) reads it, mapped to the set of that block's epoch.
/// `Ok(None)`: the certificate names no signers (or there is no parent). `Err`: why it does not
/// decode (the decoder's error or panic, an index outside the set); the caller reports it and
/// goes on. Deterministic: the decoder is pure and the set is read from the chain's state.
pub(super) fn read_parent_signers<R: StateReader>(
    journal: &mut Journal<R>,
    runtime: &Runtime,
    (height, parent_epoch): (Height, u64),
    certificate: &[u8],
) -> Result<Option<ParentSigners>, String> {
    let Some(parent) = height.checked_sub(1) else { return Ok(None) };
    let epoch = parent_epoch;
    let set = validator_set_in(journal, runtime, epoch)?.ok_or_else(|| format!("the set of epoch {epoch} is not recorded"))?;
    let decode = runtime.certificate_signers;
    let indices = std::panic::catch_unwind(|| decode(certificate, set.len()))
        .unwrap_or_else(|_| Err("the engine's certificate decoder panicked".into()))?;
    if indices.is_empty() {
        return Ok(None);
    }
    let mut signed = vec![false; set.len()];
    for index in indices {
        let slot = signed
            .get_mut(index as usize)
            .ok_or_else(|| format!("it names validator {index}, outside epoch {epoch}'s set of {}", set.len()))?;
        *slot = true;
    }
    let validators = set.iter().zip(signed).map(|(v, signed)| (v.identity, signed)).collect();
    Ok(Some(ParentSigners { height: parent, epoch, validators }))
}
