//! Running passed proposals, in two steps so that no proposal can fail the chain's hooks:
//!
//! 1. `begin_block` of a block at height `h` takes the proposals due at or before `h` from the
//!    queue (at most [`MAX_EXECUTIONS_PER_BLOCK`], oldest height first, then by id; more wait
//!    for the next block) and marks each `Failed` with [`UNFINISHED`] and as executing.
//! 2. `end_block` of the same block runs each marked proposal through a call to the module
//!    itself (`Execute`), which calls the actions in order. A failing action fails that call,
//!    and the ledger undoes everything it did (the actions before it included): all or
//!    nothing. The proposal becomes `Executed` or `Failed` with the error, a
//!    `governance/executed` or `governance/execution_failed` event is emitted, and the hook
//!    returns `Ok`.
//!
//! So a proposal scheduled at `h` takes effect in the `end_block` of block `h`: transactions
//! of block `h` still see the old state, the state committed with block `h` has the change.
//!
//! Cost (measured in `tests/ledger/gas.rs`): running a proposal of one staking `UpdateParams` takes
//! about 222k gas of the block's hook budget, one of eight about 735k, so
//! [`MAX_EXECUTIONS_PER_BLOCK`] such proposals take about 2.9M of `HOOK_GAS_PER_BLOCK` (10M).
//!
//! The one case step 2 cannot record: the actions use up the module's hook gas for the block
//! (`HOOK_GAS_PER_BLOCK`, shared with step 1; the context cannot cap a nested call's gas).
//! Then the whole `end_block` is reverted (a `hook_failed` event, the chain goes on), and
//! step 1's mark stands: the proposal stays `Failed` with [`UNFINISHED`] and is not retried
//! (the next `begin_block` drops the leftover marks). The other proposals run in that
//! `end_block` are reverted with it and stay `Failed` with [`UNFINISHED`] too (tested in
//! `tests/ledger/execution.rs`).

use aether_api::module::ModuleContext;

use crate::calls::{borsh_bytes, GovernanceCall};
use crate::error::Result;
use crate::state::{self, Status};
use crate::NAME;

/// Proposals executed per block at most (each may carry `max_actions` calls).
pub const MAX_EXECUTIONS_PER_BLOCK: usize = 4;

/// The failure a proposal carries from its block's `begin_block` until its `end_block` runs
/// it (it keeps it if `end_block` does not finish).
pub const UNFINISHED: &str =
    "the execution did not finish (the governance end_block hook failed, e.g. its actions used up the hook gas); none of its actions is kept";

/// Step 1: marks the proposals due in this block.
pub fn begin_block(cx: &mut dyn ModuleContext) -> Result<()> {
    // Marks a failed end_block left (at most MAX_EXECUTIONS_PER_BLOCK): already Failed.
    let mut after: Option<Vec<u8>> = None;
    for _ in 0..MAX_EXECUTIONS_PER_BLOCK {
        let Some(key) = cx.next_key(state::EXECUTING, after.as_deref())? else { break };
        cx.remove(&key)?;
        after = Some(key);
    }
    let height = cx.height();
    let mut after: Option<Vec<u8>> = None;
    for _ in 0..MAX_EXECUTIONS_PER_BLOCK {
        let Some(key) = cx.next_key(state::QUEUE, after.as_deref())? else { break };
        let (due, id) = state::parse_pair_key(state::QUEUE, &key, "queue key")?;
        if due > height {
            break;
        }
        let mut proposal = state::proposal(cx, id)?;
        proposal.status = Status::Failed { height, reason: UNFINISHED.into() };
        state::save(cx, &state::proposal_key(id), &proposal)?;
        cx.set(&state::executing_key(id), &[])?;
        cx.remove(&key)?;
        after = Some(key);
    }
    Ok(())
}

/// Step 2: runs the proposals step 1 marked, each all or nothing.
pub fn end_block(cx: &mut dyn ModuleContext) -> Result<()> {
    let height = cx.height();
    let mut after: Option<Vec<u8>> = None;
    for _ in 0..MAX_EXECUTIONS_PER_BLOCK {
        let Some(key) = cx.next_key(state::EXECUTING, after.as_deref())? else { break };
        let id = state::parse_id_key(state::EXECUTING, &key, "executing key")?;
        let result = cx.call_module(NAME, &GovernanceCall::Execute { proposal: id }.encode());
        let mut proposal = state::proposal(cx, id)?;
        match result {
            Ok(_) => {
                proposal.status = Status::Executed { height };
                cx.emit(b"governance/executed", &borsh_bytes(&id))?;
            }
            Err(error) => {
                // Execute removes the mark only when it succeeds.
                cx.remove(&key)?;
                let reason = error.to_string();
                cx.emit(b"governance/execution_failed", &borsh_bytes(&(id, reason.clone())))?;
                proposal.status = Status::Failed { height, reason };
            }
        }
        state::save(cx, &state::proposal_key(id), &proposal)?;
        after = Some(key);
    }
    Ok(())
}
