//! The runtime-module slot: transaction types written in Rust, run by the ledger beside
//! transfers and contracts.
//!
//! Status: **in progress** (issue 16). A module is named, versioned, stateless between calls (the ledger
//! also executes forks that never commit) and deterministic. Transactions reach it as
//! `Action::Module { module, call, value, gas_limit }`; it keeps its state in its own keyless
//! account and storage inside the authenticated state tree (so roots, proofs, snapshots and
//! pruning cover it with no special case) and sees the chain only through a
//! [`ModuleContext`], every call of which charges gas. Genesis pins which modules run, at
//! which version, with which parameters (`init_genesis`); begin-block, end-block and
//! end-of-epoch hooks run within a fixed per-block budget, and the one module genesis names
//! as validator source picks each epoch's validator set. Queries are read-only and gas-capped.
//!
//! The interface is byte-oriented (calls, keys, values and results are bytes) so a later
//! release can load modules from dynamic libraries.
//!
//! ```
//! use aether_api::module::{ModuleContext, ModuleError, RuntimeModule};
//!
//! /// Counts calls; `call = b"add"` adds one, anything else is refused.
//! struct Counter;
//! impl RuntimeModule for Counter {
//!     fn name(&self) -> &'static str { "counter" }
//!     fn version(&self) -> u32 { 1 }
//!     fn call(&self, cx: &mut dyn ModuleContext, call: &[u8]) -> Result<Vec<u8>, ModuleError> {
//!         if call != b"add" {
//!             return Err(ModuleError::UnknownMethod(String::from_utf8_lossy(call).into_owned()));
//!         }
//!         let n = cx.get(b"n")?.map_or(0, |v| u64::from_le_bytes(v.try_into().unwrap_or_default())) + 1;
//!         cx.set(b"n", &n.to_le_bytes())?;
//!         Ok(n.to_le_bytes().to_vec())
//!     }
//! }
//! assert_eq!(aether_api::module::module_address("counter"), aether_api::module::module_address("counter"));
//! ```

use aether_primitives::types::{domain, Address, Amount, Evidence, Hash, Height, PublicKey, ValidatorEntry};

/// A runtime module. Implementations must be deterministic (no clock, randomness, I/O or
/// threads; `BTreeMap` rather than `HashMap` for anything that is iterated) and keep no state
/// of their own: everything lives behind the context.
pub trait RuntimeModule: Send + Sync + 'static {
    /// The name transactions route by: `[a-z0-9_]{1,32}`.
    fn name(&self) -> &'static str;
    /// The version (genesis will pin it).
    fn version(&self) -> u32;
    /// Runs a call. `Err` reverts everything the call did (the fee stays paid) and becomes
    /// the receipt's failure reason. The call's `value` has been credited to the module's
    /// account before this runs.
    fn call(&self, cx: &mut dyn ModuleContext, call: &[u8]) -> Result<Vec<u8>, ModuleError>;

    /// Sets up the module's state from its genesis parameters (`params`: the JSON text of the
    /// module's `params` in genesis, empty when none). Runs once, at the start of block 1
    /// before any hook, in genesis order, with [`GENESIS_INIT_GAS`] (height 1, no caller, no
    /// value; `validator_set(0)` is the genesis set). A failure is a genesis error: the node
    /// refuses to start with the module's message (it checks this before running the chain).
    fn init_genesis(&self, _cx: &mut dyn ModuleContext, _params: &[u8]) -> Result<(), ModuleError> {
        Ok(())
    }

    /// Runs after `end_block` on the last block of epoch `epoch`. Only the module genesis
    /// names `epochs.validator_source` may name the next epoch's set (`Some`, the whole set in
    /// order, never a diff); what others return is ignored. The ledger checks the set (not
    /// empty, at most [`MAX_VALIDATORS`], unique identities, stake above zero, every consensus
    /// key accepted by the engine); a set that fails, an `Err` or running out keeps the current
    /// set for another epoch and is reported as a `hook_failed` event. Gas comes from the
    /// module's hook budget, as for the other hooks.
    fn end_epoch(&self, _cx: &mut dyn ModuleContext, _epoch: u64) -> Result<Option<Vec<ValidatorEntry>>, ModuleError> {
        Ok(None)
    }

    /// Runs before the block's transactions, with the evidence of misbehaviour the block
    /// records. There is no caller (`caller()` is the zero address) and no value; gas comes
    /// from the module's hook budget ([`HOOK_GAS_PER_BLOCK`] per block, for its begin and end
    /// hooks together, so one module's loop cannot starve another's hooks). An `Err` (running
    /// out included) reverts this hook alone and is reported; the block goes on.
    fn begin_block(&self, _cx: &mut dyn ModuleContext, _evidence: &[Evidence]) -> Result<(), ModuleError> {
        Ok(())
    }

    /// Answers a read-only question about the module's state (`path` names it, `request` is
    /// its argument) on the committed head, for RPC and tools. The context refuses writes,
    /// payments and events; gas is capped by the caller.
    fn query(&self, _cx: &mut dyn ModuleContext, path: &str, _request: &[u8]) -> Result<Vec<u8>, ModuleError> {
        Err(ModuleError::UnknownQuery(path.to_string()))
    }

    /// Runs after the block's transactions, under the same rules as
    /// [`begin_block`](RuntimeModule::begin_block).
    fn end_block(&self, _cx: &mut dyn ModuleContext) -> Result<(), ModuleError> {
        Ok(())
    }

    /// Moves the module's state from what version `from_version` kept to what this version
    /// expects. Runs once, when an upgrade the chain scheduled
    /// ([`crate::chain::ChainCall::ScheduleUpgrade`]) switches the module to this version: at
    /// the start of the scheduled block, before any `begin_block` hook, with
    /// [`MIGRATION_GAS`] (no caller, no value). An `Err`, running out or a panic reverts the
    /// migration and the switch: the module stays on `from_version`, a `hook_failed` event
    /// (`migrate to version V: reason`) reports it, and the chain goes on. The default moves
    /// nothing.
    fn migrate(&self, _cx: &mut dyn ModuleContext, _from_version: u32) -> Result<(), ModuleError> {
        Ok(())
    }
}

/// Gas a module's `migrate` may use (once per upgrade, like `init_genesis`). A migration that
/// needs more must move its state lazily, a bounded part per block from its hooks.
pub const MIGRATION_GAS: u64 = 1_000_000_000;

/// Gas one module's `end_epoch` hook may use (once per epoch, so more than a block's hooks:
/// paying rewards or maturing unbondings touches every validator).
pub const HOOK_GAS_PER_EPOCH: u64 = 200_000_000;

/// Gas each module's `init_genesis` may use.
pub const GENESIS_INIT_GAS: u64 = 1_000_000_000;

/// The most validators an epoch's set may hold.
pub const MAX_VALIDATORS: usize = 512;

/// How deep module calls may nest (a transaction's call is depth 1).
pub const MAX_CALL_DEPTH: u32 = 8;

/// Gas one module's hooks may use in one block (begin and end together). Hooks have no
/// payer, so the protocol bounds them, never unlimited (chains whose hooks ran unbounded have
/// halted on one loop); with the module count genesis pins, this bounds a block's hook work.
pub const HOOK_GAS_PER_BLOCK: u64 = 10_000_000;

/// What a module sees of the chain during a call. Every method charges gas; running out is
/// [`ModuleError::OutOfGas`], which the module should pass on with `?`.
pub trait ModuleContext {
    /// A value of the module's own storage.
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, ModuleError>;
    fn set(&mut self, key: &[u8], value: &[u8]) -> Result<(), ModuleError>;
    fn remove(&mut self, key: &[u8]) -> Result<(), ModuleError>;
    /// The first key of the module's storage that starts with `prefix` and sorts above
    /// `after` (the first with `prefix` when `None`), in byte order: iterate with
    /// `after = Some(last key)`. Each key examined costs a storage read.
    fn next_key(&mut self, prefix: &[u8], after: Option<&[u8]>) -> Result<Option<Vec<u8>>, ModuleError>;
    /// Who signed the transaction.
    fn caller(&self) -> Address;
    /// What the transaction sent to the module (already in its account).
    fn value(&self) -> Amount;
    /// The height of the block being executed.
    fn height(&self) -> Height;
    /// The module's own keyless account.
    fn own_address(&self) -> Address;
    fn balance(&mut self, who: &Address) -> Result<Amount, ModuleError>;
    /// Pays `amount` from the module's own account.
    fn pay(&mut self, to: &Address, amount: Amount) -> Result<(), ModuleError>;
    /// An event in the receipt, emitted by the module's address.
    fn emit(&mut self, topic: &[u8], data: &[u8]) -> Result<(), ModuleError>;
    /// Charges `gas` for the module's own computation.
    fn charge(&mut self, gas: u64) -> Result<(), ModuleError>;
    /// Calls module `module` with `call` (no value), as this module: the callee sees this
    /// module's address as its caller, spends from the same gas, and its writes are undone if
    /// it fails (this module gets the error and may go on). At most [`MAX_CALL_DEPTH`] deep.
    fn call_module(&mut self, module: &str, call: &[u8]) -> Result<Vec<u8>, ModuleError>;
    /// Creates `amount` new tokens for `to`. Only a module genesis grants `mint` may.
    fn mint(&mut self, to: &Address, amount: Amount) -> Result<(), ModuleError>;
    /// Destroys `amount` of the module's own tokens. Only a module genesis grants `mint` may.
    fn burn(&mut self, amount: Amount) -> Result<(), ModuleError>;
    /// The epoch of the block being executed (0 on a chain without epochs).
    fn epoch(&self) -> u64;
    /// The validator set of `epoch` as the chain recorded it (`None` for an epoch not reached
    /// yet): a module maps evidence's validator index to a validator with the set of the
    /// evidence's epoch.
    fn validator_set(&mut self, epoch: u64) -> Result<Option<Vec<ValidatorEntry>>, ModuleError>;
    /// Checks a consensus key with the engine's rules (for HotStuff: a BLS key, its proof of
    /// possession and its VRF key), so a module never admits a key the engine would refuse.
    /// Costs [`CHECK_CONSENSUS_KEY_GAS`].
    fn check_consensus_key(&mut self, key: &[u8]) -> Result<(), ModuleError>;
    /// Who signed the certificate this block's header carries for its parent, read with the
    /// consensus engine's decoder (`aether_api::registry::CertificateSigners`) and mapped to
    /// the set of the parent's epoch. Honest validators check that certificate before they vote
    /// for the block (`ConsensusEngine::verify_parent_certificate`), so a committed block's
    /// signers are the parent's real signers. `None` when the certificate names no signers
    /// (the chain's first block, an epoch's first block under HotStuff, an engine without a
    /// decoder) or does not decode (the ledger then reports a `parent_certificate_undecodable`
    /// event; the block goes on). Costs [`PARENT_SIGNERS_GAS`] plus storage-byte gas for 33
    /// bytes per member of the set.
    fn parent_signers(&mut self) -> Result<Option<ParentSigners>, ModuleError>;
}

/// What [`ModuleContext::parent_signers`] costs besides 33 bytes of storage-byte gas per
/// member of the set: the price of a storage read (the ledger reads the recorded set).
pub const PARENT_SIGNERS_GAS: u64 = 5_000;

/// Which validators signed the certificate of a block's parent (see
/// [`ModuleContext::parent_signers`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParentSigners {
    /// The parent's height.
    pub height: Height,
    /// The parent's epoch, whose set signed the certificate.
    pub epoch: u64,
    /// That epoch's set in order (index = validator index), each identity with whether it
    /// signed.
    pub validators: Vec<(PublicKey, bool)>,
}

/// What [`ModuleContext::check_consensus_key`] costs: for HotStuff, decoding the BLS key and
/// checking its proof of possession (two pairings), 707 µs in release on the reference
/// machine (`aether bench module-gas`). Priced so that it gets no more CPU per gas than a
/// Wasm contract call (0.177 ns/gas, a token transfer in the same run): 5M gas is
/// 0.141 ns/gas. (It was 2M: 0.354 ns/gas, twice a contract's.)
pub const CHECK_CONSENSUS_KEY_GAS: u64 = 5_000_000;

/// Why a module call failed. The message is what the receipt says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModuleError {
    #[error("out of gas")]
    OutOfGas,
    #[error("the call does not decode: {0}")]
    BadCall(String),
    #[error("unknown method {0:?}")]
    UnknownMethod(String),
    #[error("unknown query {0:?}")]
    UnknownQuery(String),
    #[error("a query cannot change state ({0})")]
    ReadOnly(&'static str),
    #[error("module calls nest deeper than {0}")]
    TooDeep(u32),
    #[error("unknown module {0:?}")]
    UnknownModule(String),
    #[error("genesis does not let this module {0} (its `mint` grant)")]
    NotGranted(&'static str),
    #[error("only a module genesis grants `govern_chain` may {0}")]
    NotChainGovernor(&'static str),
    #[error("the call needs a value of {needed}, the transaction sent {sent}")]
    InsufficientValue { needed: Amount, sent: Amount },
    #[error("the module's account holds {balance}, cannot pay {needed}")]
    InsufficientFunds { balance: Amount, needed: Amount },
    #[error("the consensus key is not valid: {0}")]
    BadConsensusKey(String),
    #[error("{0}")]
    Failed(String),
}

/// A module's genesis parameters from the JSON text `init_genesis` receives: the type's
/// defaults when genesis gives none, else the JSON (use `#[serde(deny_unknown_fields, default)]`
/// so a misspelt field is refused and an absent one takes its default). `Err` is the parser's
/// message.
pub fn parse_params<T: serde::de::DeserializeOwned + Default>(json: &[u8]) -> Result<T, String> {
    if json.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_slice(json).map_err(|e| e.to_string())
}

/// The keyless account of module `name`: no key can sign for it, only the module moves its
/// funds.
pub fn module_address(name: &str) -> Address {
    let h = Hash::digest(domain::MODULE_ADDRESS, name.as_bytes());
    let mut a = [0u8; 20];
    a.copy_from_slice(&h.0[..20]);
    Address(a)
}

/// Whether `name` is a valid module name (`[a-z0-9_]{1,32}`).
pub fn valid_module_name(name: &str) -> bool {
    (1..=32).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}
