//! # aether-module-staking
//!
//! The staking runtime module (`"staking"`, version 1): validators bond tokens, delegators
//! buy shares of a validator's pool, unbonding waits a number of epochs, every epoch mints a
//! reward shared by stake, a slasher module burns part of a misbehaving validator's stake and
//! jails it. It is the chain's **validator source**: at the end of each epoch it names the
//! next set (genesis `"epochs": {"validator_source": "staking"}`).
//!
//! **Status: first version.** Works through the real ledger (tests in `tests/`): genesis
//! validators bonded and backed by minted tokens, registration with an identity signature and
//! the engine's consensus-key check, delegation by shares, unbonding in slashable pools,
//! rewards with commission, slashing and jailing by one configured module, the next set by
//! stake, queries and an `invariants` check.
//!
//! - Params: [`Params`] (genesis `params` JSON; unknown fields refused, defaults when absent).
//! - Calls: [`StakingCall`], borsh-encoded ([`StakingCall::encode`]); registration signs
//!   [`registration_message`]. `UpdateParams` is accepted only from the governance module
//!   (param `governance`, default `"governance"`): a partial JSON object, checked like
//!   genesis; `min_self_bond` and `unbonding_epochs` stay as genesis set them.
//!   `BondedDelegations { delegator }` is read-only (anyone may call it): the delegator's
//!   tokens with each validator of the current set, which governance weighs delegator votes
//!   with.
//! - Storage layout: [`state`]. Per-epoch work and its bound: [`epoch`].
//! - Queries: `params`, `validator` (32-byte identity), `validators` (empty or the last
//!   identity of the previous page), `delegation` (borsh `(Address, PublicKey)`), `unbonding`
//!   (20-byte address), `invariants` ([`invariants`]).
//!
//! Genesis must grant the module `"mint": true`: it mints the genesis stake into its account
//! (so every bond is backed by tokens), mints rewards and burns slashed stake. Without the
//! grant, `init_genesis` fails and the node refuses to start, saying so.
//!
//! ```
//! use std::sync::Arc;
//! use aether_module_staking::{Staking, StakingCall};
//! use aether_node::ledger::Ledger;
//! use aether_primitives::types::*;
//!
//! let validator = Keypair::from_seed([1; 32]);
//! let genesis = Genesis {
//!     chain_id: "doc".into(),
//!     genesis_time_ms: 0,
//!     accounts: vec![],
//!     validators: vec![ValidatorEntry { name: "v1".into(), identity: validator.public(), consensus_key: validator.public().0.to_vec(), stake: 5_000 }],
//!     modules: vec![GenesisModule { name: "staking".into(), version: 1, mint: true, params: r#"{"unbonding_epochs":2}"#.into(), govern_chain: false }],
//!     epochs: Some(EpochSchedule { length: 2, validator_source: Some("staking".into()) }),
//! };
//! let ledger = Ledger::open(Arc::new(aether_storage_memory::MemoryStore::new()), &genesis)?
//!     .with_module(Arc::new(Staking));
//! ledger.check_genesis_init()?;
//! for _ in 0..2 {
//!     let head = ledger.head();
//!     let built = ledger.build_block(&head.block.hash, head.certificate, vec![], vec![], head.header.time_ms + 1, validator.address())?;
//!     ledger.commit(&built.executed.hash, &Certificate(vec![]))?;
//! }
//! // Epoch 0 closed: its reward (1,000 by default) compounded into the validator's stake.
//! assert_eq!(ledger.validator_set(1)?.unwrap()[0].stake, 6_000);
//! assert!(ledger.module_query("staking", "invariants", &[], 100_000_000)?.answer.is_ok());
//! // A delegation, as a CLI would build it:
//! let _call: Vec<u8> = StakingCall::delegate(validator.public()).encode();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What it is **not** (yet): no redelegation; no commission-change rate limit; no check that
//! two validators use different consensus keys; no automatic slashing (a slasher module turns
//! evidence into `Slash` calls and must apply each piece of evidence once); unbonding pays
//! rewards only through the share price (no separate reward withdrawal); the identity
//! signature does not name the chain (the module context does not expose the chain id).
//! `Account.stake` is not used: this module's storage is the only record of stake.

pub mod calls;
pub mod epoch;
pub mod error;
pub mod invariants;
pub mod math;
pub mod params;
pub mod queries;
pub mod state;

use aether_api::module::{ModuleContext, ModuleError, RuntimeModule};
use aether_primitives::types::ValidatorEntry;

pub use calls::{registration_message, StakingCall, REGISTRATION_DOMAIN};
pub use error::StakingError;
pub use params::Params;
pub use queries::{DelegationInfo, UnbondingInfo, ValidatorInfo, ValidatorsPage};

/// The module's name, as genesis and transactions name it.
pub const NAME: &str = "staking";

/// The staking module. Stateless: everything lives in its storage, behind the context.
#[derive(Clone, Copy, Debug, Default)]
pub struct Staking;

impl RuntimeModule for Staking {
    fn name(&self) -> &'static str {
        NAME
    }
    fn version(&self) -> u32 {
        1
    }
    fn init_genesis(&self, cx: &mut dyn ModuleContext, params: &[u8]) -> Result<(), ModuleError> {
        Ok(epoch::init_genesis(cx, params)?)
    }
    fn call(&self, cx: &mut dyn ModuleContext, call: &[u8]) -> Result<Vec<u8>, ModuleError> {
        let call = StakingCall::decode(call)?;
        Ok(calls::run(cx, call)?)
    }
    fn end_epoch(&self, cx: &mut dyn ModuleContext, epoch: u64) -> Result<Option<Vec<ValidatorEntry>>, ModuleError> {
        Ok(epoch::end_epoch(cx, epoch)?)
    }
    fn query(&self, cx: &mut dyn ModuleContext, path: &str, request: &[u8]) -> Result<Vec<u8>, ModuleError> {
        Ok(queries::query(cx, path, request)?)
    }
}

/// Registers the module under [`NAME`] (it runs on chains whose genesis pins it).
pub fn register(registry: &mut aether_api::registry::Registry) {
    registry.modules.register(
        NAME,
        "staking: validators, delegation by shares, unbonding by epochs, rewards, slashing by a slasher module; the validator source",
        Box::new(|| std::sync::Arc::new(Staking)),
    );
}
