//! Downtime: validators that sign too few of the blocks they should are slashed a little and
//! jailed, measured from the signer sets of committed certificates (as Cosmos SDK's
//! `x/slashing` does with a signed-blocks window and a minimum signed fraction).
//!
//! ## What is measured
//! Each block's `begin_block` asks the ledger who signed the certificate the block's header
//! carries for its parent ([`ModuleContext::parent_signers`]: the engine's decoder, checked by
//! honest validators before they voted). That parent is one *measured height*: every member
//! of the parent's epoch set either signed it or missed it. Heights whose certificate names no
//! signers are not measured (block 1's parent, genesis; under HotStuff the last block of each
//! epoch, whose next block carries the new epoch's round-0 QC; any certificate that does not
//! decode, which the ledger reports as an event).
//!
//! ## The window
//! A validator's window is its last `signed_blocks_window` measured heights (fewer right
//! after it joined the measured set or was punished: its count starts again then). Once its
//! window is full and it missed more than [`Params::max_missed_per_window`] of it, it is
//! slashed `downtime_slash_bps` of its stake (bonded at the infraction, unbondings started
//! since included) and jailed if `downtime_jail`, through staking's `Slash`, and its count
//! starts again. At most once per validator and epoch (the epoch of the measured set), and
//! not in an epoch in which it was already slashed for double signing (it is jailed already):
//! a jailed validator stays in its set until the epoch ends and keeps missing, and one fault
//! should be punished once. A jailed validator leaves the next epoch's set (staking names
//! only validators that are not jailed).
//!
//! ## Across epochs
//! Counts follow identities, not indices: when the measured set changes, each member that
//! stays keeps its count, a newcomer starts from nothing, a leaver's count is dropped. The
//! window's ring keeps each height's misses as a bitmap over its own epoch's set, with that
//! set's identities stored until the ring no longer holds a height of it.
//!
//! ## Cost per block (bounded)
//! One `parent_signers` (33 bytes of storage-byte gas per member), the tracker (about 10 bytes
//! per member) read and written, one ring entry read and written (one bit per member), and, on
//! the first height of a new set or when a height of an older set leaves the ring, one identity
//! list read or written (32 bytes per member). Never a loop over the window. Measured with 512
//! validators in `tests/ledger/downtime_gas.rs` (figures in the crate's docs).

use std::collections::BTreeMap;

use aether_api::module::{ModuleContext, ParentSigners};
use aether_primitives::types::PublicKey;

use crate::error::{Result, SlashingError};
use crate::events::{self, DowntimeRefused, DowntimeSlashed};
use crate::params::Params;
use crate::state::{self, Counter, DowntimeOffence, Outcome, SlotEntry, Tracker};

/// Gas for the module's own work per member of the set per measured height (bit tests,
/// counter updates, the judgement), charged with [`ModuleContext::charge`].
pub const GAS_PER_MEMBER: u64 = 30;
/// Gas per entry of an identity map built to carry counts across a set change.
pub const GAS_PER_MAPPED_MEMBER: u64 = 200;

/// At most this many validators over the limit are judged (slashed, or found punished in the
/// epoch already) per block; the rest are judged in the next blocks. Each judgement may be a
/// staking `Slash` (about 0.3M gas), and the hook's budget is fixed (10M, shared with the
/// evidence of the same block): without a cap, a mass outage of small validators would make
/// every block's hook run out and be reverted, and nobody would ever be punished.
pub const MAX_JUDGED_PER_BLOCK: usize = 4;

/// Measures the block's parent height (`signers`, what [`ModuleContext::parent_signers`]
/// answered) and punishes whoever missed too much of its window.
pub fn begin_block(cx: &mut dyn ModuleContext, params: &Params, signers: Option<&ParentSigners>) -> Result<()> {
    let Some(signers) = signers.filter(|_| params.measures_downtime()) else { return Ok(()) };
    let members = signers.validators.len();
    cx.charge(GAS_PER_MEMBER.saturating_mul(members as u64))?;
    let window = params.signed_blocks_window;
    let mut tracker = match state::load::<Tracker>(cx, state::TRACKER, "downtime tracker")? {
        Some(t) if t.epoch == signers.epoch => t,
        previous => follow_new_set(cx, previous, signers)?,
    };
    if tracker.counters.len() != members {
        return Err(SlashingError::Corrupt("downtime tracker (its set changed size within an epoch)"));
    }
    let now = tracker.next;
    let slot_key = state::slot_key(now % window);
    if let Some(leaving) = state::load::<SlotEntry>(cx, &slot_key, "downtime ring entry")? {
        // The ring's slots are written in order, so the entry there is height `now - window`.
        if let Some(left) = now.checked_sub(window) {
            forget(cx, &mut tracker, signers, &leaving, left)?;
        }
    }
    let mut missed = vec![0u8; members.div_ceil(8)];
    for (i, (_, signed)) in signers.validators.iter().enumerate() {
        if !signed {
            missed[i / 8] |= 1 << (i % 8);
            let c = &mut tracker.counters[i];
            c.missed = c.missed.saturating_add(1);
        }
    }
    state::save(cx, &slot_key, &SlotEntry { epoch: signers.epoch, missed })?;
    tracker.next = now.saturating_add(1);
    let max_missed = params.max_missed_per_window();
    let over: Vec<usize> = (0..members)
        .filter(|i| {
            let c = tracker.counters[*i];
            // Judged only on a full window: a newcomer (or one just punished) gets a whole one.
            tracker.next.saturating_sub(c.since) >= window && u64::from(c.missed) > max_missed
        })
        .take(MAX_JUDGED_PER_BLOCK)
        .collect();
    for i in over {
        punish(cx, params, &signers.validators[i].0, signers.epoch, tracker.counters[i].missed)?;
        // Its count starts again whatever came of it: it is judged at most once a window.
        tracker.counters[i] = Counter { missed: 0, since: tracker.next };
    }
    state::save(cx, state::TRACKER, &tracker)
}

/// The tracker for a set measured for the first time: counts carried by identity from the
/// set measured before (if any), newcomers from nothing; the set's identities stored for the
/// ring.
fn follow_new_set(cx: &mut dyn ModuleContext, previous: Option<Tracker>, signers: &ParentSigners) -> Result<Tracker> {
    let (next, carried, mut id_epochs) = match previous {
        None => (0, BTreeMap::new(), Vec::new()),
        Some(t) => {
            let old_ids = identities(cx, t.epoch)?;
            if old_ids.len() != t.counters.len() {
                return Err(SlashingError::Corrupt("downtime tracker (counters and identities differ in length)"));
            }
            cx.charge(GAS_PER_MAPPED_MEMBER.saturating_mul(old_ids.len() as u64))?;
            (t.next, old_ids.into_iter().zip(t.counters).collect::<BTreeMap<PublicKey, Counter>>(), t.id_epochs)
        }
    };
    let counters =
        signers.validators.iter().map(|(id, _)| carried.get(id).copied().unwrap_or(Counter { missed: 0, since: next })).collect();
    let ids: Vec<PublicKey> = signers.validators.iter().map(|(id, _)| *id).collect();
    state::save(cx, &state::ids_key(signers.epoch), &ids)?;
    if !id_epochs.contains(&signers.epoch) {
        id_epochs.push(signers.epoch);
    }
    Ok(Tracker { epoch: signers.epoch, next, counters, id_epochs })
}

/// Takes the height `left`, leaving the window, out of the counts of those who missed it
/// (mapped through its own set's identities if that set is an older one), and deletes the
/// identity lists of sets the ring no longer holds a height of.
fn forget(cx: &mut dyn ModuleContext, tracker: &mut Tracker, signers: &ParentSigners, leaving: &SlotEntry, left: u64) -> Result<()> {
    let current: Vec<usize> = if leaving.epoch == tracker.epoch {
        missed_indices(&leaving.missed, tracker.counters.len())
    } else {
        let old_ids = identities(cx, leaving.epoch)?;
        cx.charge(GAS_PER_MAPPED_MEMBER.saturating_mul(signers.validators.len() as u64))?;
        let position: BTreeMap<&PublicKey, usize> = signers.validators.iter().enumerate().map(|(i, (id, _))| (id, i)).collect();
        missed_indices(&leaving.missed, old_ids.len()).into_iter().filter_map(|i| position.get(&old_ids[i]).copied()).collect()
    };
    for i in current {
        let c = &mut tracker.counters[i];
        // A miss before its count (re)started was never counted.
        if left >= c.since {
            c.missed = c.missed.saturating_sub(1);
        }
    }
    // Heights enter the ring in order and epochs only grow: no height of an older set is left.
    let (gone, kept): (Vec<u64>, Vec<u64>) = tracker.id_epochs.iter().copied().partition(|e| *e < leaving.epoch && *e != tracker.epoch);
    for epoch in gone {
        cx.remove(&state::ids_key(epoch))?;
    }
    tracker.id_epochs = kept;
    Ok(())
}

/// Indices of the set bits of `bitmap` below `members`.
fn missed_indices(bitmap: &[u8], members: usize) -> Vec<usize> {
    (0..members).filter(|i| bitmap.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)).collect()
}

fn identities(cx: &mut dyn ModuleContext, epoch: u64) -> Result<Vec<PublicKey>> {
    state::load(cx, &state::ids_key(epoch), "downtime identity list")?.ok_or(SlashingError::Corrupt("downtime identity list (missing)"))
}

/// Slashes and jails `validator` for downtime in `epoch` unless it was punished in that epoch
/// already (for downtime or double signing).
fn punish(cx: &mut dyn ModuleContext, p: &Params, validator: &PublicKey, epoch: u64, missed: u16) -> Result<()> {
    let key = state::downtime_offence_key(validator, epoch);
    if state::load::<DowntimeOffence>(cx, &key, "downtime offence")?.is_some() || state::offence(cx, validator, epoch)?.is_some() {
        return Ok(());
    }
    let (bps, jail, window) = (p.downtime_slash_bps, p.downtime_jail, p.signed_blocks_window);
    let outcome = crate::process::request_slash(cx, p, validator, epoch, bps, jail)?;
    let height = cx.height();
    state::save(cx, &key, &DowntimeOffence { height, missed, outcome: outcome.clone() })?;
    let validator = *validator;
    match outcome {
        Outcome::Slashed { burned } => {
            let event = DowntimeSlashed { validator, epoch, missed, window, fraction_bps: bps, jailed: jail, burned };
            events::emit(cx, events::DOWNTIME, &event)?;
        }
        Outcome::Refused { reason } => {
            events::emit(cx, events::DOWNTIME_REFUSED, &DowntimeRefused { validator, epoch, missed, window, reason })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmaps_read_back_and_ignore_bits_past_the_set() {
        assert_eq!(missed_indices(&[0b1000_0101, 0b1], 9), vec![0, 2, 7, 8]);
        assert_eq!(missed_indices(&[0b1000_0101, 0b1], 8), vec![0, 2, 7]);
        assert!(missed_indices(&[], 4).is_empty());
    }
}
