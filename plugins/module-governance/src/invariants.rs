//! The module's invariants, checked by the `invariants` query (tests ask it every block). It
//! reads every proposal, so its cost grows with their number: a query's gas cap bounds it.
//!
//! 1. The module's balance equals Σ deposits of the proposals in voting (the only ones that
//!    still hold one: a tally refunds or burns it). A plain transfer to the module's address
//!    would break this; the check reports it rather than hiding it.
//! 2. The proposals in voting are exactly those indexed by voting end (`e/`, under their
//!    `voting_end_epoch`), and their number is the stored open count.
//! 3. The passed proposals are exactly those queued (`q/`, under their `execute_at`).
//! 4. Every proposal's id is below `next_id`.
//! 5. Each proposal's delegator-vote count is the number of its delegator votes, at most
//!    `MAX_DELEGATOR_VOTES` (the bound the tally relies on).

use aether_api::module::ModuleContext;
use aether_primitives::types::Amount;

use crate::error::{GovernanceError, Result};
use crate::state::{self, Proposal, Status};

fn broken<T>(why: String) -> Result<T> {
    Err(GovernanceError::Invariant(why))
}

fn count(cx: &mut dyn ModuleContext, prefix: &[u8]) -> Result<u64> {
    let (mut n, mut after) = (0u64, None::<Vec<u8>>);
    while let Some(key) = cx.next_key(prefix, after.as_deref())? {
        n += 1;
        after = Some(key);
    }
    Ok(n)
}

/// Checks every invariant; `Ok` carries a one-line summary.
pub fn check(cx: &mut dyn ModuleContext) -> Result<String> {
    state::params(cx)?;
    let next_id: u64 = state::load(cx, state::NEXT_ID, "next id")?.unwrap_or(1);
    let (mut proposals, mut voting, mut passed, mut held) = (0u64, 0u64, 0u64, 0 as Amount);
    let mut after: Option<Vec<u8>> = None;
    while let Some(key) = cx.next_key(state::PROPOSALS, after.as_deref())? {
        let id = state::parse_id_key(state::PROPOSALS, &key, "proposal key")?;
        if id >= next_id {
            return broken(format!("proposal {id} is stored but next_id is {next_id}"));
        }
        let p: Proposal = state::proposal(cx, id)?;
        proposals += 1;
        let (delegator_votes, counted) = (count(cx, &state::delegator_votes_prefix(id))?, state::delegator_vote_count(cx, id)?);
        if delegator_votes != u64::from(counted) || counted > state::MAX_DELEGATOR_VOTES {
            return broken(format!(
                "proposal {id} has {delegator_votes} delegator votes, its count says {counted} (at most {})",
                state::MAX_DELEGATOR_VOTES
            ));
        }
        if p.holds_deposit() {
            held = held.checked_add(p.deposit).ok_or(GovernanceError::Invariant("Σ deposits overflows u128".into()))?;
        }
        match p.status {
            Status::Voting => {
                voting += 1;
                if cx.get(&state::voting_end_key(p.voting_end_epoch, id))?.is_none() {
                    return broken(format!("proposal {id} is in voting but not indexed under epoch {}", p.voting_end_epoch));
                }
            }
            Status::Passed { execute_at } => {
                passed += 1;
                if cx.get(&state::queue_key(execute_at, id))?.is_none() {
                    return broken(format!("proposal {id} passed but is not queued for height {execute_at}"));
                }
            }
            _ => {}
        }
        after = Some(key);
    }
    let (indexed, queued, open) = (count(cx, state::VOTING_ENDS)?, count(cx, state::QUEUE)?, state::open_count(cx)?);
    if indexed != voting || u64::from(open) != voting {
        return broken(format!("{voting} proposals are in voting, {indexed} indexed by voting end, open count {open}"));
    }
    if queued != passed {
        return broken(format!("{passed} proposals passed and wait, {queued} are queued"));
    }
    let own = cx.own_address();
    let balance = cx.balance(&own)?;
    if balance != held {
        return broken(format!("the module holds {balance} but the proposals in voting deposited {held}"));
    }
    Ok(format!("ok: {proposals} proposals, {voting} in voting holding {held}, {passed} waiting for execution"))
}
