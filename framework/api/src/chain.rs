//! What a chain may change about itself without a new genesis: its parameters (block gas
//! limit, fee price) and which version of each runtime module runs.
//!
//! Both belong to the ledger, not to a module, so a module reaches them by calling the
//! ledger's pseudo-module [`CHAIN_MODULE`] (`cx.call_module("chain", &ChainCall::…encode())`),
//! and only a module whose genesis entry grants `"govern_chain": true` may (governance, whose
//! proposals are module calls, carries them as ordinary actions). Everything is recorded in the
//! system account's storage, inside the authenticated state: a chain that never changes
//! anything keeps the state (and roots) it had, and restarts, followers, snapshots and state
//! sync all read the same records.
//!
//! Timing: new parameters apply from the block after the one that set them (a block is
//! executed, built and admitted to the mempool under the parameters its parent's state holds).
//! An upgrade scheduled for height `H` switches the module at the start of block `H`, before
//! any `begin_block` hook, and runs the new version's
//! [`migrate`](crate::module::RuntimeModule::migrate) once.
//!
//! ```
//! use aether_api::chain::{ChainCall, ChainParams};
//!
//! let cheaper = ChainParams { gas_per_fee_unit: 2_000, ..ChainParams::DEFAULT };
//! assert!(cheaper.validate().is_ok());
//! assert_eq!(cheaper.min_fee(5_000), 3);
//! let call = ChainCall::SetParams(cheaper).encode();
//! assert_eq!(ChainCall::decode(&call).unwrap(), ChainCall::SetParams(cheaper));
//! let refused = ChainParams { max_block_gas: 0, ..ChainParams::DEFAULT }.validate().unwrap_err();
//! assert_eq!(refused.to_string(), "max_block_gas must be above 0");
//! ```

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::types::Height;

/// The name under which modules call the ledger's chain settings (reserved: no module may
/// take it). Queries: `params` (the [`ChainParams`] the next block runs under, JSON),
/// `modules` (a [`ModuleVersion`] per module, JSON) and `epochs` (`{"changes": [{"epoch",
/// "first_height", "length"}, ..], "pending_length": n | null}`, JSON).
pub const CHAIN_MODULE: &str = crate::types::RESERVED_MODULE_NAME;

/// The block gas limit of a chain that never set one (`aether_vm::gas::MAX_BLOCK_GAS`).
pub const DEFAULT_MAX_BLOCK_GAS: u64 = 500_000_000;
/// The fee price of a chain that never set one (`aether_vm::gas::GAS_PER_FEE_UNIT`).
pub const DEFAULT_GAS_PER_FEE_UNIT: u64 = 1_000;
/// The highest block gas limit a chain may set: four times the default. A block must execute
/// well within a block interval on every validator, so this is a bound on work, not on taste.
pub const MAX_BLOCK_GAS_CEILING: u64 = 4 * DEFAULT_MAX_BLOCK_GAS;

/// The chain parameters execution, block building and the mempool read from state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainParams {
    /// The most gas the transactions of one block may ask for together; a transaction may ask
    /// for at most this (and at most the VM's per-transaction maximum).
    pub max_block_gas: u64,
    /// Gas per unit of fee: a transaction's fee must be at least `gas_limit /
    /// gas_per_fee_unit`, rounded up. Lowering it raises the fee floor.
    pub gas_per_fee_unit: u64,
}

impl Default for ChainParams {
    fn default() -> Self {
        ChainParams::DEFAULT
    }
}

impl ChainParams {
    /// What a chain runs under until it sets other parameters.
    pub const DEFAULT: ChainParams = ChainParams { max_block_gas: DEFAULT_MAX_BLOCK_GAS, gas_per_fee_unit: DEFAULT_GAS_PER_FEE_UNIT };

    /// Checks the bounds: a block gas limit above 0 and at most [`MAX_BLOCK_GAS_CEILING`], a
    /// fee price of at least 1 gas per fee unit.
    pub fn validate(&self) -> Result<(), ChainParamsError> {
        if self.max_block_gas == 0 {
            return Err(ChainParamsError::ZeroBlockGas);
        }
        if self.max_block_gas > MAX_BLOCK_GAS_CEILING {
            return Err(ChainParamsError::BlockGasAboveCeiling { got: self.max_block_gas, max: MAX_BLOCK_GAS_CEILING });
        }
        if self.gas_per_fee_unit == 0 {
            return Err(ChainParamsError::ZeroGasPerFeeUnit);
        }
        Ok(())
    }

    /// The least fee a transaction asking for `gas_limit` must pay.
    pub fn min_fee(&self, gas_limit: u64) -> u128 {
        // Validated parameters never hold 0; `max` keeps a corrupt record from dividing by it.
        u128::from(gas_limit.div_ceil(self.gas_per_fee_unit.max(1)))
    }
}

/// Why chain parameters are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainParamsError {
    #[error("max_block_gas must be above 0")]
    ZeroBlockGas,
    #[error("max_block_gas {got} is above the ceiling {max}")]
    BlockGasAboveCeiling { got: u64, max: u64 },
    #[error("gas_per_fee_unit must be at least 1")]
    ZeroGasPerFeeUnit,
}

/// A call to [`CHAIN_MODULE`], borsh-encoded (`SetParams` = 0, `ScheduleUpgrade` = 1,
/// `SetEpochLength` = 2).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum ChainCall {
    /// Replaces the chain parameters from the next block on (refused out of bounds).
    SetParams(ChainParams),
    /// Switches `module` to `version` at the start of block `height` (after the current one),
    /// running that version's `migrate` once. Replaces an upgrade of the module already
    /// scheduled. The version must differ from the one running; whether nodes carry it is not
    /// checked (it cannot be, deterministically): a node without it refuses block `height`.
    ScheduleUpgrade { module: String, version: u32, height: Height },
    /// Makes epochs `length` blocks long from the epoch after the current one: the current
    /// epoch ends where it was always going to, and its boundary block records the change
    /// (and its header commits to it, see [`epoch_start_commitment`](aether_primitives::types::epoch_start_commitment)). Replaces
    /// a length set earlier in the same epoch. Refused outside `1..=`
    /// [`MAX_EPOCH_LENGTH`](aether_primitives::types::MAX_EPOCH_LENGTH) and on a chain without epochs.
    SetEpochLength { length: u64 },
}

impl ChainCall {
    /// The bytes for `call_module(CHAIN_MODULE, ..)`.
    pub fn encode(&self) -> Vec<u8> {
        aether_primitives::codec::encode(self)
    }
    pub fn decode(bytes: &[u8]) -> Result<Self, crate::module::ModuleError> {
        aether_primitives::codec::decode("chain call", bytes, 1024).map_err(|e| crate::module::ModuleError::BadCall(e.to_string()))
    }
}

/// The version a module runs and the upgrade scheduled for it, as the ledger records it in the
/// system account (absent: the genesis version, nothing scheduled) and the `modules` query
/// reports it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ModuleVersion {
    pub name: String,
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled: Option<ScheduledUpgrade>,
}

/// An upgrade waiting for its height.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ScheduledUpgrade {
    pub version: u32,
    pub height: Height,
}
