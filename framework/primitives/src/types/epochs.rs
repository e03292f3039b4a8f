//! A chain's whole epoch schedule: the genesis length and every change of it governance made
//! since (see `docs/epochs.md`).

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use super::{EpochSchedule, Height};

/// The longest epoch a chain may set (in blocks): a validator set must be able to change (and
/// its sets and boundary headers be kept) at a bounded pace.
pub const MAX_EPOCH_LENGTH: u64 = 1_000_000;

/// A change of the epoch length: epochs from `epoch` on, starting at height `first_height`,
/// are `length` blocks long.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
pub struct EpochLengthChange {
    pub epoch: u64,
    pub first_height: Height,
    pub length: u64,
}

/// Every epoch's heights: the genesis length, then each recorded change in order. Answers what
/// [`EpochSchedule`] answers for a fixed length, for a chain whose length changed.
///
/// ```
/// use aether_primitives::types::{EpochLengthChange, EpochSchedule, EpochTimeline};
///
/// let mut t = EpochTimeline::new(&EpochSchedule { length: 4, validator_source: None });
/// assert_eq!((t.first_height(1), t.last_height(1)), (5, 8));
/// t.push(EpochLengthChange { epoch: 2, first_height: 9, length: 3 }).unwrap();
/// assert_eq!((t.first_height(2), t.last_height(2), t.last_height(3)), (9, 11, 14));
/// assert_eq!((t.epoch_of(8), t.epoch_of(9), t.epoch_of(12)), (1, 2, 3));
/// assert!(t.is_boundary(8) && t.is_boundary(11) && !t.is_boundary(12));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochTimeline {
    genesis_length: u64,
    changes: Vec<EpochLengthChange>,
}

/// Why a recorded history of epoch lengths does not fit a chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EpochTimelineError {
    #[error("epoch length {0} is outside 1..={MAX_EPOCH_LENGTH}")]
    LengthOutOfBounds(u64),
    #[error(
        "a change from epoch {epoch} at height {first_height} does not follow the schedule (epoch {epoch} starts at height {expected})"
    )]
    Misplaced { epoch: u64, first_height: Height, expected: Height },
}

impl EpochTimeline {
    /// The schedule of a chain that never changed its length.
    pub fn new(schedule: &EpochSchedule) -> Self {
        EpochTimeline { genesis_length: schedule.length.max(1), changes: Vec::new() }
    }

    /// The schedule after `changes`, each checked as [`EpochTimeline::push`] checks it.
    pub fn with_changes(schedule: &EpochSchedule, changes: &[EpochLengthChange]) -> Result<Self, EpochTimelineError> {
        let mut timeline = EpochTimeline::new(schedule);
        for change in changes {
            timeline.push(*change)?;
        }
        Ok(timeline)
    }

    /// Appends a change: its length in bounds, its epoch after the last change's, its first
    /// height where that epoch starts under the schedule so far.
    pub fn push(&mut self, change: EpochLengthChange) -> Result<(), EpochTimelineError> {
        if change.length == 0 || change.length > MAX_EPOCH_LENGTH {
            return Err(EpochTimelineError::LengthOutOfBounds(change.length));
        }
        let expected = self.first_height(change.epoch);
        let after_last = self.changes.last().is_none_or(|last| change.epoch > last.epoch);
        if !after_last || change.epoch == 0 || expected != change.first_height {
            return Err(EpochTimelineError::Misplaced { epoch: change.epoch, first_height: change.first_height, expected });
        }
        self.changes.push(change);
        Ok(())
    }

    /// The recorded changes, oldest first.
    pub fn changes(&self) -> &[EpochLengthChange] {
        &self.changes
    }

    /// The segment (first epoch, its first height, length) holding epoch `epoch`.
    fn segment_of_epoch(&self, epoch: u64) -> (u64, Height, u64) {
        self.changes.iter().rev().find(|c| c.epoch <= epoch).map_or((0, 1, self.genesis_length), |c| (c.epoch, c.first_height, c.length))
    }

    /// Blocks in `epoch`.
    pub fn length_of(&self, epoch: u64) -> u64 {
        self.segment_of_epoch(epoch).2
    }

    /// The epoch `height` belongs to (genesis, height 0, opens epoch 0).
    pub fn epoch_of(&self, height: Height) -> u64 {
        let (epoch, first, length) = self
            .changes
            .iter()
            .rev()
            .find(|c| c.first_height <= height)
            .map_or((0, 1, self.genesis_length), |c| (c.epoch, c.first_height, c.length));
        epoch.saturating_add(height.saturating_sub(first) / length)
    }

    /// The first height of `epoch`.
    pub fn first_height(&self, epoch: u64) -> Height {
        let (base, first, length) = self.segment_of_epoch(epoch);
        (epoch - base).saturating_mul(length).saturating_add(first)
    }

    /// The last height of `epoch`: its boundary block.
    pub fn last_height(&self, epoch: u64) -> Height {
        let (base, first, length) = self.segment_of_epoch(epoch);
        (epoch - base).saturating_add(1).saturating_mul(length).saturating_add(first).saturating_sub(1)
    }

    /// Whether `height` is the last block of its epoch.
    pub fn is_boundary(&self, height: Height) -> bool {
        height > 0 && self.last_height(self.epoch_of(height)) == height
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(length: u64) -> EpochSchedule {
        EpochSchedule { length, validator_source: None }
    }

    #[test]
    fn without_changes_it_answers_as_the_genesis_schedule() {
        for length in [1, 2, 5, 7] {
            let (s, t) = (schedule(length), EpochTimeline::new(&schedule(length)));
            for h in 0..60 {
                assert_eq!((t.epoch_of(h), t.is_boundary(h)), (s.epoch_of(h), s.is_boundary(h)), "length {length} height {h}");
            }
            for e in 0..20 {
                assert_eq!((t.first_height(e), t.last_height(e), t.length_of(e)), (s.first_height(e), s.last_height(e), length));
            }
        }
    }

    #[test]
    fn changes_follow_each_other_and_every_height_has_one_epoch() {
        let mut t = EpochTimeline::new(&schedule(5));
        t.push(EpochLengthChange { epoch: 3, first_height: 16, length: 2 }).unwrap();
        t.push(EpochLengthChange { epoch: 5, first_height: 20, length: 7 }).unwrap();
        assert_eq!(
            [0, 1, 2, 3, 4, 5, 6].map(|e| (t.first_height(e), t.last_height(e))),
            [(1, 5), (6, 10), (11, 15), (16, 17), (18, 19), (20, 26), (27, 33)]
        );
        for e in 0..10 {
            for h in t.first_height(e)..=t.last_height(e) {
                assert_eq!(t.epoch_of(h), e, "height {h}");
                assert_eq!(t.is_boundary(h), h == t.last_height(e), "height {h}");
            }
            assert_eq!(t.first_height(e + 1), t.last_height(e) + 1);
        }
        assert_eq!(t.epoch_of(0), 0);
    }

    #[test]
    fn a_misplaced_or_unbounded_change_is_refused() {
        let mut t = EpochTimeline::new(&schedule(5));
        assert_eq!(
            t.push(EpochLengthChange { epoch: 2, first_height: 12, length: 3 }),
            Err(EpochTimelineError::Misplaced { epoch: 2, first_height: 12, expected: 11 })
        );
        assert!(t.push(EpochLengthChange { epoch: 0, first_height: 1, length: 3 }).is_err());
        assert_eq!(t.push(EpochLengthChange { epoch: 2, first_height: 11, length: 0 }), Err(EpochTimelineError::LengthOutOfBounds(0)));
        assert!(t.push(EpochLengthChange { epoch: 2, first_height: 11, length: MAX_EPOCH_LENGTH + 1 }).is_err());
        t.push(EpochLengthChange { epoch: 2, first_height: 11, length: 3 }).unwrap();
        assert!(t.push(EpochLengthChange { epoch: 2, first_height: 11, length: 4 }).is_err(), "not after the last change");
        assert_eq!(t.changes().len(), 1);
    }
}
