//! Deploys and calls contracts: the call stack above a VM backend.
//!
//! Rules (consensus rules, identical on every backend):
//! - A contract's address is derived from its deployer and the deployer's nonce
//!   ([`contract_address`]); deploying validates the code ([`super::validate`]), stores it
//!   under its hash, and runs the `init` export if there is one.
//! - Every call runs inside a checkpoint: if it does not return (revert, trap, out of gas),
//!   all its writes, transfers, nested calls and events are undone; its gas is still used.
//! - Nested calls are limited to [`MAX_CALL_DEPTH`] contracts deep. Re-entrancy is refused: a
//!   contract already on the call stack cannot be called again until it returns (the caller
//!   sees `CALL_REFUSED`), which rules out the classic re-entrancy drain by construction.
//! - The value sent with a call moves before the callee runs and moves back if it fails.

use std::sync::Arc;

use super::abi::{MAX_EVENTS_PER_TX, MAX_IO_BYTES};
use super::state::{Journal, StateReader};
use super::validate::Limits;
use super::{gas, CallOutcome, CallResult, Host, HostError, VmBackend, VmError};
use crate::types::{domain, Address, Amount, Event, Hash, Height, TimestampMs};

/// Most contracts on one call stack (the transaction's target is the first).
pub const MAX_CALL_DEPTH: usize = 8;
/// The export run after a deploy, if the code has one.
pub const INIT_ENTRY: &str = "init";

/// What the block being executed tells contracts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockContext {
    pub height: Height,
    pub time_ms: TimestampMs,
}

/// The address a deploy by `deployer` at `nonce` creates.
pub fn contract_address(deployer: &Address, nonce: u64) -> Address {
    let h = Hash::digest_parts(domain::CONTRACT_ADDRESS, &[&deployer.0, &nonce.to_le_bytes()]);
    let mut a = [0u8; 20];
    a.copy_from_slice(&h.0[..20]);
    Address(a)
}

/// Runs deploys and calls against a journaled state. One executor per transaction (or query);
/// its events are the transaction's.
pub struct Executor<'a, R: StateReader> {
    vm: &'a dyn VmBackend,
    limits: Limits,
    state: &'a mut Journal<R>,
    block: BlockContext,
    events: Vec<Event>,
    /// Contracts on the call stack, outermost first.
    stack: Vec<Address>,
    /// The first failure of the VM itself (not of a contract), e.g. no instance slot free.
    /// What ran is then not a consensus result: callers must discard it (see [`Self::finish`]).
    engine_error: Option<VmError>,
}

impl<'a, R: StateReader> Executor<'a, R> {
    pub fn new(vm: &'a dyn VmBackend, state: &'a mut Journal<R>, block: BlockContext) -> Self {
        Executor { vm, limits: Limits::default(), state, block, events: Vec::new(), stack: Vec::new(), engine_error: None }
    }

    /// The events kept so far (those of calls that returned).
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    pub fn into_events(self) -> Vec<Event> {
        self.events
    }

    /// The events kept, and the VM's own failure if there was one: then the outcomes of this
    /// executor describe the node, not the contract, and must not be committed.
    pub fn finish(self) -> (Vec<Event>, Option<VmError>) {
        (self.events, self.engine_error)
    }

    /// Deploys `code` as `deployer` (whose nonce before this transaction was `nonce`), sending
    /// `value` and running `init` with `input` if exported. Returns the contract's address and
    /// the outcome; on anything but `Returned` nothing of the deploy is kept.
    pub fn deploy(
        &mut self,
        deployer: Address,
        nonce: u64,
        code: &[u8],
        input: &[u8],
        value: Amount,
        gas_limit: u64,
    ) -> (Address, CallOutcome) {
        let address = contract_address(&deployer, nonce);
        let cost = gas::DEPLOY.saturating_add(gas::DEPLOY_BYTE.saturating_mul(code.len() as u64));
        if gas_limit < cost {
            return (address, CallOutcome { result: CallResult::OutOfGas, gas_used: gas_limit });
        }
        let failed = |why: String| CallOutcome { result: CallResult::Trapped(why), gas_used: cost };
        if self.state.account(&address).code_hash.is_some() {
            return (address, failed(format!("{address} already holds a contract")));
        }
        let hash = super::code_hash(code);
        // Validation already lists the exports: whether there is an `init` to run comes from it.
        let prepared = super::validate::validate(code, &self.limits)
            .and_then(|info| Ok((super::instrument::instrument(code, &info, &self.limits)?, info)));
        let (instrumented, info) = match prepared {
            Ok(p) => p,
            Err(e) => return (address, failed(e.to_string())),
        };
        if !self.vm.is_compiled(&hash) {
            if let Err(e) = self.vm.compile(hash, &instrumented) {
                // Validated code that does not compile is the engine's failure, not the deployer's.
                return (address, self.engine_failure(e));
            }
        }
        self.state.checkpoint();
        if !self.move_value(&deployer, &address, value) {
            self.state.revert_checkpoint();
            return (address, failed(format!("{deployer} cannot send {value} with the deploy")));
        }
        self.state.set_code(hash, Arc::from(code));
        let mut account = self.state.account(&address);
        account.code_hash = Some(hash);
        self.state.set_account(address, account);
        let exports_init = info.exported_functions.iter().any(|name| name == INIT_ENTRY);
        let mut outcome = CallOutcome { result: CallResult::Returned(Vec::new()), gas_used: cost };
        if exports_init {
            let events_before = self.events.len();
            self.stack.push(address);
            let run = self.run(&hash, deployer, address, INIT_ENTRY, input, value, gas_limit - cost);
            self.stack.pop();
            outcome = CallOutcome { result: run.result, gas_used: cost + run.gas_used };
            if !matches!(outcome.result, CallResult::Returned(_)) {
                self.events.truncate(events_before);
            }
        }
        if matches!(outcome.result, CallResult::Returned(_)) {
            self.state.commit_checkpoint();
        } else {
            self.state.revert_checkpoint();
        }
        (address, outcome)
    }

    /// Calls `method` of `contract` as `caller` (a transaction's sender). A call that could
    /// not start (no contract, value not affordable) is `Trapped` with the reason.
    pub fn call(&mut self, caller: Address, contract: Address, method: &str, input: &[u8], value: Amount, gas_limit: u64) -> CallOutcome {
        match self.call_inner(caller, contract, method, input, value, gas_limit) {
            Ok(outcome) => outcome,
            Err(HostError::Refused(why)) => CallOutcome { result: CallResult::Trapped(why), gas_used: gas::INSTANTIATE.min(gas_limit) },
            Err(HostError::OutOfGas) => CallOutcome { result: CallResult::OutOfGas, gas_used: gas_limit },
            Err(e) => CallOutcome { result: CallResult::Trapped(e.to_string()), gas_used: gas::INSTANTIATE.min(gas_limit) },
        }
    }

    fn move_value(&mut self, from: &Address, to: &Address, value: Amount) -> bool {
        // Contracts never touched accounts for a zero value; keep it so (state roots).
        value == 0 || self.state.move_balance(from, to, value).is_ok()
    }

    fn call_inner(
        &mut self,
        caller: Address,
        contract: Address,
        method: &str,
        input: &[u8],
        value: Amount,
        gas_limit: u64,
    ) -> Result<CallOutcome, HostError> {
        if self.stack.len() >= MAX_CALL_DEPTH {
            return Err(HostError::Refused(format!("call depth limit {MAX_CALL_DEPTH} reached")));
        }
        if method == INIT_ENTRY {
            return Err(HostError::Refused(format!("`{INIT_ENTRY}` runs only at deploy")));
        }
        if self.stack.contains(&contract) {
            return Err(HostError::Refused(format!("re-entrant call to {contract}, which is already on the call stack")));
        }
        if input.len() > MAX_IO_BYTES {
            return Err(HostError::Refused(format!("input of {} bytes; the limit is {MAX_IO_BYTES}", input.len())));
        }
        let Some(hash) = self.state.account(&contract).code_hash else {
            return Err(HostError::Refused(format!("no contract at {contract}")));
        };
        if gas_limit < gas::INSTANTIATE {
            return Ok(CallOutcome { result: CallResult::OutOfGas, gas_used: gas_limit });
        }
        self.state.checkpoint();
        if !self.move_value(&caller, &contract, value) {
            self.state.revert_checkpoint();
            return Err(HostError::Refused(format!("{caller} cannot send {value} with the call")));
        }
        let events_before = self.events.len();
        self.stack.push(contract);
        let run = self.run(&hash, caller, contract, method, input, value, gas_limit - gas::INSTANTIATE);
        self.stack.pop();
        if matches!(run.result, CallResult::Returned(_)) {
            self.state.commit_checkpoint();
        } else {
            self.state.revert_checkpoint();
            self.events.truncate(events_before);
        }
        Ok(CallOutcome { result: run.result, gas_used: gas::INSTANTIATE + run.gas_used })
    }

    /// Runs `method` of compiled (or compilable) code; compiles it first when this node has
    /// not (restart, eviction). The native stack is grown first so nested calls can never
    /// overflow the thread's stack, whatever thread runs the block.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        hash: &Hash,
        caller: Address,
        contract: Address,
        method: &str,
        input: &[u8],
        value: Amount,
        gas_limit: u64,
    ) -> CallOutcome {
        for attempt in 0..2 {
            if !self.vm.is_compiled(hash) {
                let Some(code) = self.state.code(hash) else {
                    return self.engine_failure(VmError::NotCompiled(*hash));
                };
                if let Err(e) = super::prepare(&code, &self.limits).and_then(|m| self.vm.compile(*hash, &m)) {
                    return self.engine_failure(e);
                }
            }
            let vm = self.vm;
            let mut context = CallContext { executor: self, caller, contract, value, input };
            // 1 MiB of engine stack per level plus host frames; grow in 8 MiB segments.
            let result = stacker::maybe_grow(2 * 1024 * 1024, 8 * 1024 * 1024, || vm.call(hash, method, gas_limit, &mut context));
            match result {
                Ok(outcome) => return outcome,
                // Evicted between the check and the call by another thread: compile again once.
                Err(VmError::NotCompiled(_)) if attempt == 0 => continue,
                Err(e) => return self.engine_failure(e),
            }
        }
        unreachable!("the loop returns on its second attempt")
    }

    fn engine_failure(&mut self, e: VmError) -> CallOutcome {
        let outcome = CallOutcome { result: CallResult::Trapped(format!("engine: {e}")), gas_used: 0 };
        self.engine_error.get_or_insert(e);
        outcome
    }
}

/// The host a running contract sees: one per call on the stack.
struct CallContext<'e, 'a, R: StateReader> {
    executor: &'e mut Executor<'a, R>,
    caller: Address,
    contract: Address,
    value: Amount,
    input: &'e [u8],
}

impl<R: StateReader> Host for CallContext<'_, '_, R> {
    fn input(&self) -> &[u8] {
        self.input
    }
    fn caller(&self) -> Address {
        self.caller
    }
    fn self_address(&self) -> Address {
        self.contract
    }
    fn value(&self) -> Amount {
        self.value
    }
    fn block_height(&self) -> Height {
        self.executor.block.height
    }
    fn block_time_ms(&self) -> TimestampMs {
        self.executor.block.time_ms
    }
    fn storage_read(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, HostError> {
        Ok(self.executor.state.storage(&self.contract, key))
    }
    fn storage_write(&mut self, key: &[u8], value: &[u8]) -> Result<(), HostError> {
        self.executor.state.set_storage(self.contract, key.to_vec(), Some(value.to_vec()));
        Ok(())
    }
    fn storage_remove(&mut self, key: &[u8]) -> Result<(), HostError> {
        self.executor.state.set_storage(self.contract, key.to_vec(), None);
        Ok(())
    }
    fn balance(&mut self, of: &Address) -> Result<Amount, HostError> {
        Ok(self.executor.state.account(of).balance)
    }
    fn emit_event(&mut self, topic: Vec<u8>, data: Vec<u8>) -> Result<(), HostError> {
        if self.executor.events.len() >= MAX_EVENTS_PER_TX {
            return Err(HostError::TooLarge(format!("more than {MAX_EVENTS_PER_TX} events in one transaction")));
        }
        self.executor.events.push(Event { emitter: self.contract, topic, data });
        Ok(())
    }
    fn transfer(&mut self, to: &Address, amount: Amount) -> Result<bool, HostError> {
        Ok(self.executor.move_value(&self.contract, to, amount))
    }
    fn call(&mut self, to: &Address, method: &str, input: &[u8], value: Amount, gas_limit: u64) -> Result<CallOutcome, HostError> {
        self.executor.call_inner(self.contract, *to, method, input, value, gas_limit)
    }
}
