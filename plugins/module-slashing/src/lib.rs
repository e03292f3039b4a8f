//! # aether-module-slashing
//!
//! The slashing runtime module (`"slashing"`, version 1): it turns the evidence of
//! misbehaviour a block records — double votes and double proposals, as the consensus engine
//! verified them — and downtime, measured from the signers of the certificates blocks carry
//! for their parents, into `Slash` calls to the staking module, which burns part of the
//! offender's stake and jails it. It is the module staking's `slasher` parameter names
//! (staking's default).
//!
//! **Status: first version.** Works through the real ledger with the real staking module
//! (tests in `tests/`): a double vote or double proposal slashes `double_sign_bps` of the
//! stake bonded at the offence (unbondings started since included) and jails; one slash per
//! validator and epoch however many pieces prove it; bad pieces (unknown kind, index outside
//! the set, staking refusing) give events and never stop the block; 16 pieces fit the hook's
//! gas budget (measured). Downtime ([`downtime`]): a validator that missed more than
//! `window - ceil(window · min_signed_per_window_bps / 10000)` of its last
//! `signed_blocks_window` measured heights (defaults 100 and 50%, as Cosmos SDK) is slashed
//! `downtime_slash_bps` (default 0.01%) and jailed, once per epoch; counts follow identities
//! across set changes; the hook's cost is bounded per block (0.7M gas a plain height with 512
//! validators, 2.8M the worst, 7.7M with 16 pieces of evidence too, of the 10M budget).
//!
//! - Params: [`Params`] (genesis `params` JSON; unknown fields refused, defaults when absent).
//! - The hook and its rules (which validator, which epoch, once per epoch): [`process`];
//!   downtime: [`downtime`].
//! - Events: [`events`]. Storage layout: [`state`]. Queries (`params`, `offences`,
//!   `processed`, `signing_info`): [`queries`].
//! - It takes no transactions (a call is refused): evidence reaches it only through blocks.
//!
//! Genesis must pin `staking` (with `"slasher": "slashing"`, the default, and the mint grant
//! it needs anyway) and this module; this module needs no mint grant (staking burns).
//!
//! ```
//! use std::sync::Arc;
//! use aether_module_slashing::{events, Slashing};
//! use aether_module_staking::Staking;
//! use aether_node::ledger::Ledger;
//! use aether_primitives::types::*;
//!
//! let (v1, v2) = (Keypair::from_seed([1; 32]), Keypair::from_seed([2; 32]));
//! let entry = |k: &Keypair, name: &str, stake| ValidatorEntry {
//!     name: name.into(), identity: k.public(), consensus_key: k.public().0.to_vec(), stake,
//! };
//! let genesis = Genesis {
//!     chain_id: "doc".into(),
//!     genesis_time_ms: 0,
//!     accounts: vec![],
//!     validators: vec![entry(&v1, "v1", 3_000), entry(&v2, "v2", 2_000)],
//!     modules: vec![
//!         GenesisModule { name: "staking".into(), version: 1, mint: true, params: r#"{"slasher":"slashing"}"#.into(), govern_chain: false },
//!         GenesisModule { name: "slashing".into(), version: 1, mint: false, params: r#"{"double_sign_bps":2000}"#.into(), govern_chain: false },
//!     ],
//!     epochs: Some(EpochSchedule { length: 2, validator_source: Some("staking".into()) }),
//! };
//! let ledger = Ledger::open(Arc::new(aether_storage_memory::MemoryStore::new()), &genesis)?
//!     .with_module(Arc::new(Staking))
//!     .with_module(Arc::new(Slashing));
//! ledger.check_genesis_init()?;
//!
//! // v2 (index 1 of epoch 0's set) voted twice; the engine verified it, a block records it.
//! let evidence = Evidence { offender: 1, kind: "double-vote".into(), proof: b"two signed votes".to_vec(), epoch: 0 };
//! let head = ledger.head();
//! let built = ledger.build_block(&head.block.hash, head.certificate, vec![], vec![evidence.clone()], 1, v1.address())?;
//! let block = ledger.commit(&built.executed.hash, &Certificate(vec![]))?;
//! let event = block.hook_events.iter().find(|e| e.topic == events::SLASHED).ok_or("no slashed event")?;
//! let slashed: events::Slashed = serde_json::from_slice(&event.data)?;
//! assert_eq!((slashed.validator, slashed.epoch, slashed.burned, slashed.jailed), (v2.public(), 0, 400, true));
//! assert_eq!(ledger.module_query("slashing", "processed", &evidence.hash().0, 1_000_000)?.answer?, b"true");
//!
//! // Jailed: once epoch 0 closes, v2 is out of epoch 1's set.
//! let head = ledger.head();
//! let built = ledger.build_block(&head.block.hash, head.certificate, vec![], vec![], 2, v1.address())?;
//! ledger.commit(&built.executed.hash, &Certificate(vec![]))?;
//! let next: Vec<String> = ledger.validator_set(1)?.unwrap_or_default().into_iter().map(|v| v.name).collect();
//! assert_eq!(next, ["v1"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What it is **not** (yet):
//! - Downtime under HotStuff counts a validator as missing a height when its vote was not in
//!   the QC, and a QC holds the first quorum of votes its collector got: an honest but slow
//!   validator is sometimes counted missing (about a third of heights for the slowest of a
//!   large set). Hence the small burn; a chain with far-apart validators should lower
//!   `min_signed_per_window_bps`. The last block of each epoch is never measured under
//!   HotStuff (the next epoch's first block carries a round-0 QC naming nobody).
//! - It verifies no evidence itself: it trusts that the node recorded only evidence the
//!   current epoch's engine verified (the ledger does not verify evidence; the engine does).
//!   Evidence of an earlier epoch's offence cannot reach it (the engine binds signatures to
//!   the epoch), so an offence found only after its epoch ended goes unpunished.
//! - No per-kind fractions (both kinds burn `double_sign_bps`), no tombstoning (a slashed
//!   validator may unjail and be slashed again in a later epoch), no reward for the reporter.
//! - Its records (`offences`, `processed`, downtime offences) are never pruned; downtime
//!   punishments are reported by events and staking's state, not by a query of their own.

pub mod downtime;
pub mod error;
pub mod events;
pub mod params;
pub mod process;
pub mod queries;
pub mod state;

use aether_api::module::{ModuleContext, ModuleError, RuntimeModule};
use aether_primitives::types::Evidence;

pub use error::SlashingError;
pub use params::Params;
pub use process::{DOUBLE_PROPOSAL, DOUBLE_VOTE};
pub use queries::{OffenceInfo, OutcomeInfo, SigningInfo};

/// The module's name, as genesis and staking's `slasher` name it.
pub const NAME: &str = "slashing";

/// The slashing module. Stateless: everything lives in its storage, behind the context.
#[derive(Clone, Copy, Debug, Default)]
pub struct Slashing;

impl RuntimeModule for Slashing {
    fn name(&self) -> &'static str {
        NAME
    }
    fn version(&self) -> u32 {
        1
    }
    /// Checks and stores the params. Also checks that `staking_module` is a module of this
    /// chain, by calling it with an empty call (staking refuses it as undecodable, reverting
    /// nothing of note): a misspelt name would otherwise refuse every slash, block after block.
    fn init_genesis(&self, cx: &mut dyn ModuleContext, params: &[u8]) -> Result<(), ModuleError> {
        let params = Params::from_genesis(params)?;
        if let Err(ModuleError::UnknownModule(name)) = cx.call_module(&params.staking_module, &[]) {
            return Err(
                SlashingError::Params(format!("staking_module {name:?} is not a module of this chain (genesis does not pin it)")).into()
            );
        }
        state::save(cx, state::PARAMS, &params)?;
        Ok(())
    }
    fn call(&self, _cx: &mut dyn ModuleContext, _call: &[u8]) -> Result<Vec<u8>, ModuleError> {
        Err(ModuleError::Failed("slashing takes no transactions: evidence reaches it only through the blocks that record it".into()))
    }
    /// Evidence first (double signing), then downtime, from one read of the parent's signers.
    fn begin_block(&self, cx: &mut dyn ModuleContext, evidence: &[Evidence]) -> Result<(), ModuleError> {
        let params = state::params(cx)?;
        let signers = if params.measures_downtime() || !evidence.is_empty() { cx.parent_signers()? } else { None };
        process::begin_block(cx, &params, evidence, signers.as_ref())?;
        downtime::begin_block(cx, &params, signers.as_ref())?;
        Ok(())
    }
    fn query(&self, cx: &mut dyn ModuleContext, path: &str, request: &[u8]) -> Result<Vec<u8>, ModuleError> {
        Ok(queries::query(cx, path, request)?)
    }
}

/// Registers the module under [`NAME`] (it runs on chains whose genesis pins it).
pub fn register(registry: &mut aether_api::registry::Registry) {
    registry.modules.register(
        NAME,
        "slashing: double votes and double proposals in blocks' evidence become one staking Slash (burn and jail) per validator and epoch",
        Box::new(|| std::sync::Arc::new(Slashing)),
    );
}
