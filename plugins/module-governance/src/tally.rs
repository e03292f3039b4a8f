//! The end of voting: at the end of each epoch, every proposal whose voting ends with that
//! epoch is tallied with that epoch's validator set.
//!
//! **Who counts (Cosmos x/gov's rule).** The total is the set's stake (bonded stake). Each
//! delegator vote moves its recorded tokens with each validator from that validator's power to
//! the delegator's option (at most what the validator has left in the set; a validator out of
//! the set gives nothing). Each validator that voted then adds what it has left — its own
//! bond and its non-voting delegators' tokens — to its option. A delegator that does not vote
//! follows its validator; if that validator did not vote either, its tokens are not counted.
//! Quorum, veto and threshold are then judged as before ([`outcome`]).
//!
//! **Snapshot at vote, not at tally.** A delegator vote stores the delegator's tokens with
//! each validator of the set *when it votes* (staking's `BondedDelegations`), so the tally
//! reads one record per delegator vote and never walks the chain's delegations. The price: a
//! delegation changed after the vote (more bonded, unbonded, a reward or slash) counts as it
//! was until the delegator votes again (which refreshes the snapshot). The tally caps every
//! moved amount at the validator's power in the tally set, so no option ever gets more than
//! the set's stake, but a delegator that unbonded after voting still takes its old tokens out
//! of its validator's vote. Cosmos reads delegations at the tally instead, which has no such
//! staleness but costs the tally a walk of every voter's delegations.
//!
//! Work per `end_epoch` is bounded: at most [`MAX_TALLIES_PER_EPOCH`] proposals (the rest
//! stay in voting, already past their end, and are tallied at the end of the next epoch with
//! its set), each reading one vote per member of the set (≤ 512) and at most
//! [`MAX_DELEGATOR_VOTES`](state::MAX_DELEGATOR_VOTES) delegator votes of at most
//! [`MAX_VOTE_DELEGATIONS`](state::MAX_VOTE_DELEGATIONS) entries. Measured in
//! `tests/ledger/gas.rs` at the ledger's prices: 27.0M gas for 16 proposals with 256
//! validators, about 6.6k per proposal and member, so about 54M with 512 validators; and at
//! most about 43k per delegator vote of 16 entries, so about 88M for 16 proposals of 128
//! delegator votes each: together under the hook's 200M (`HOOK_GAS_PER_EPOCH`).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use aether_api::module::ModuleContext;
use aether_primitives::types::{Amount, ValidatorEntry};

use crate::calls::borsh_bytes;
use crate::error::{GovernanceError, Result};
use crate::params::Params;
use crate::state::{self, DelegatorVote, Status, Tally, VoteOption};

/// 100% in basis points.
pub const BPS: u16 = 10_000;

/// Proposals tallied per `end_epoch` at most.
pub const MAX_TALLIES_PER_EPOCH: usize = 16;

/// Compares `a × a_scale` with `b × b_scale` exactly (no overflow: the products are held in
/// 144 bits as (high, low 64 bits)).
pub fn cmp_scaled(a: Amount, a_scale: u16, b: Amount, b_scale: u16) -> Ordering {
    fn wide(x: u128, s: u16) -> (u128, u128) {
        let s = u128::from(s);
        let low = (x & u128::from(u64::MAX)) * s; // < 2^80
        let high = (x >> 64) * s + (low >> 64); // < 2^80 + 2^16
        (high, low & u128::from(u64::MAX))
    }
    wide(a, a_scale).cmp(&wide(b, b_scale))
}

/// The outcome of a tally, by the rules of [`Params`]: quorum (`voted × 10000 ≥ total ×
/// quorum_bps`), then veto (`no_with_veto × 10000 > voted × veto_bps`), then threshold
/// (`yes × 10000 > (yes + no + no_with_veto) × threshold_bps`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Deposit refunded.
    Rejected(String),
    /// Deposit burned.
    Vetoed,
    /// Deposit refunded, actions scheduled.
    Passed,
}

pub fn outcome(p: &Params, t: &Tally) -> Result<Outcome> {
    let overflow = || GovernanceError::Overflow("tally");
    let against = t.no.checked_add(t.no_with_veto).ok_or_else(overflow)?;
    let decisive = t.yes.checked_add(against).ok_or_else(overflow)?;
    let voted = decisive.checked_add(t.abstain).ok_or_else(overflow)?;
    if cmp_scaled(voted, BPS, t.total, p.quorum_bps) == Ordering::Less {
        return Ok(Outcome::Rejected(format!(
            "quorum not met: {voted} of {} stake voted; quorum_bps {} needs at least that share",
            t.total, p.quorum_bps
        )));
    }
    if cmp_scaled(t.no_with_veto, BPS, voted, p.veto_bps) == Ordering::Greater {
        return Ok(Outcome::Vetoed);
    }
    if cmp_scaled(t.yes, BPS, decisive, p.threshold_bps) == Ordering::Greater {
        return Ok(Outcome::Passed);
    }
    Ok(Outcome::Rejected(format!(
        "threshold not reached: yes {} of {decisive} (yes + no + no_with_veto) must exceed threshold_bps {}",
        t.yes, p.threshold_bps
    )))
}

/// Tallies the proposals whose voting ended with `epoch` (or earlier, if a previous epoch
/// left some), at most [`MAX_TALLIES_PER_EPOCH`].
pub fn end_epoch(cx: &mut dyn ModuleContext, epoch: u64) -> Result<()> {
    let params = state::params(cx)?;
    let mut set: Option<Vec<ValidatorEntry>> = None;
    let mut after: Option<Vec<u8>> = None;
    for _ in 0..MAX_TALLIES_PER_EPOCH {
        let Some(key) = cx.next_key(state::VOTING_ENDS, after.as_deref())? else { break };
        let (end, id) = state::parse_pair_key(state::VOTING_ENDS, &key, "voting end key")?;
        if end > epoch {
            break;
        }
        let members = match &set {
            Some(members) => members,
            None => set.insert(cx.validator_set(epoch)?.ok_or(GovernanceError::Corrupt("the tally epoch's validator set"))?),
        };
        tally(cx, &params, epoch, id, members)?;
        cx.remove(&key)?;
        after = Some(key);
    }
    Ok(())
}

fn tally(cx: &mut dyn ModuleContext, p: &Params, epoch: u64, id: u64, set: &[ValidatorEntry]) -> Result<()> {
    let mut proposal = state::proposal(cx, id)?;
    if proposal.status != Status::Voting {
        return Err(GovernanceError::Corrupt("a proposal indexed as in voting is not"));
    }
    let mut t = Tally { epoch, ..Tally::default() };
    let overflow = || GovernanceError::Overflow("tally");
    // Each member's power left for its own vote, once its voting delegators took theirs.
    let mut power: BTreeMap<[u8; 32], Amount> = BTreeMap::new();
    for member in set {
        t.total = t.total.checked_add(member.stake).ok_or_else(overflow)?;
        power.insert(member.identity.0, member.stake);
    }
    // Delegator votes first, in delegator-address order (deterministic; the order matters
    // only when snapshots exceed a validator's stake in the tally set, e.g. after a slash).
    let prefix = state::delegator_votes_prefix(id);
    let mut after: Option<Vec<u8>> = None;
    for _ in 0..state::MAX_DELEGATOR_VOTES {
        let Some(key) = cx.next_key(&prefix, after.as_deref())? else { break };
        let vote: DelegatorVote = state::load(cx, &key, "delegator vote")?.ok_or(GovernanceError::Corrupt("delegator vote"))?;
        for (validator, tokens) in &vote.delegations {
            // A validator out of the tally set has no power to give; one whose stake shrank
            // since the vote (a slash, unbondings) gives at most what it has left.
            let Some(left) = power.get_mut(&validator.0) else { continue };
            let moved = (*tokens).min(*left);
            *left -= moved;
            let bucket = bucket(&mut t, vote.option);
            *bucket = bucket.checked_add(moved).ok_or_else(overflow)?;
        }
        after = Some(key);
    }
    for member in set {
        let Some(option) = state::load::<VoteOption>(cx, &state::vote_key(id, &member.identity.0), "vote")? else { continue };
        let left = power.get(&member.identity.0).copied().unwrap_or(0);
        let bucket = bucket(&mut t, option);
        *bucket = bucket.checked_add(left).ok_or_else(overflow)?;
    }
    let height = cx.height();
    proposal.status = match outcome(p, &t)? {
        Outcome::Vetoed => {
            cx.burn(proposal.deposit).map_err(|e| match e {
                aether_api::module::ModuleError::NotGranted(_) => GovernanceError::NeedsMint,
                other => GovernanceError::Context(other),
            })?;
            Status::Vetoed
        }
        Outcome::Rejected(reason) => {
            cx.pay(&proposal.proposer, proposal.deposit)?;
            Status::Rejected { reason }
        }
        Outcome::Passed => {
            cx.pay(&proposal.proposer, proposal.deposit)?;
            let execute_at = height.checked_add(p.timelock_heights).ok_or(GovernanceError::Overflow("execution height"))?;
            cx.set(&state::queue_key(execute_at, id), &[])?;
            Status::Passed { execute_at }
        }
    };
    proposal.tally = Some(t);
    let open = state::open_count(cx)?.checked_sub(1).ok_or(GovernanceError::Corrupt("open count"))?;
    state::set_open_count(cx, open)?;
    cx.emit(b"governance/tally", &borsh_bytes(&(id, proposal.status.to_string())))?;
    state::save(cx, &state::proposal_key(id), &proposal)
}

/// The amount of `t` that `option` adds to.
fn bucket(t: &mut Tally, option: VoteOption) -> &mut Amount {
    match option {
        VoteOption::Yes => &mut t.yes,
        VoteOption::No => &mut t.no,
        VoteOption::Abstain => &mut t.abstain,
        VoteOption::NoWithVeto => &mut t.no_with_veto,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(yes: Amount, no: Amount, abstain: Amount, no_with_veto: Amount, total: Amount) -> Tally {
        Tally { epoch: 0, yes, no, abstain, no_with_veto, total }
    }

    #[test]
    fn scaled_comparison_is_exact_near_the_top_of_u128() {
        assert_eq!(cmp_scaled(u128::MAX, BPS, u128::MAX, BPS), Ordering::Equal);
        assert_eq!(cmp_scaled(u128::MAX, BPS, u128::MAX, BPS - 1), Ordering::Greater);
        assert_eq!(cmp_scaled(u128::MAX - 1, BPS, u128::MAX, BPS), Ordering::Less);
        assert_eq!(cmp_scaled(2_000, BPS, 10_000, 2_000), Ordering::Equal);
    }

    #[test]
    fn outcomes_at_the_edges() {
        let p = Params::default();
        // Quorum: 20% exactly is met, one unit short is not.
        assert_eq!(outcome(&p, &t(2_000, 0, 0, 0, 10_000)).unwrap(), Outcome::Passed);
        assert!(matches!(outcome(&p, &t(1_999, 0, 0, 0, 10_000)).unwrap(), Outcome::Rejected(r) if r.starts_with("quorum not met")));
        // Threshold: exactly half fails, one more passes; abstain does not count.
        assert!(matches!(outcome(&p, &t(500, 500, 9_000, 0, 10_000)).unwrap(), Outcome::Rejected(r) if r.starts_with("threshold")));
        assert_eq!(outcome(&p, &t(501, 500, 9_000, 0, 10_000)).unwrap(), Outcome::Passed);
        // Veto: 33.4% exactly does not veto, above does (abstain counts in the whole).
        assert!(matches!(outcome(&p, &t(0, 0, 6_660, 3_340, 10_000)).unwrap(), Outcome::Rejected(_)));
        assert_eq!(outcome(&p, &t(0, 0, 6_659, 3_341, 10_000)).unwrap(), Outcome::Vetoed);
        // Only abstentions: quorum met, nothing decisive, rejected.
        assert!(matches!(outcome(&p, &t(0, 0, 10_000, 0, 10_000)).unwrap(), Outcome::Rejected(_)));
    }
}
