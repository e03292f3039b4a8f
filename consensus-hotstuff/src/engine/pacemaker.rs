//! The pacemaker: which round this validator is in, when it gives up on it, and what it sent
//! in it (re-sent while the round lasts, since links lose messages).
//!
//! A round's timer starts at `base_timeout_ms` and grows 1.5x with each consecutive round that
//! ended in a timeout (capped at `max_timeout_ms`); a QC resets it. An idle round (no work for
//! a block) adds a heartbeat, since its leader waits that long before proposing. Entering a
//! round is the engine's decision (on a QC or TC for the round before); the pacemaker keeps
//! the clock and the re-sends. It reads no clock: time is the `now` of each input.

use aether_api::consensus::{Output, TimerId, ValidatorIndex};
use aether_primitives::codec;
use aether_primitives::types::TimestampMs;

use crate::messages::{Message, Timeout};

pub(super) const ROUND_TIMER: TimerId = 1;
pub(super) const PROPOSE_TIMER: TimerId = 2;
/// Re-sends this round's proposal, vote and timeout every third of a base timeout.
pub(super) const RESEND_TIMER: TimerId = 3;

pub(super) struct Pacemaker {
    round: u64,
    entered_ms: TimestampMs,
    consecutive_timeouts: u32,
    base_timeout_ms: u64,
    max_timeout_ms: u64,
    heartbeat_ms: u64,
    /// This round's proposal (if leader), for re-sending.
    pub(super) my_proposal: Option<Vec<u8>>,
    /// This round's vote and its recipient, for re-sending.
    pub(super) my_vote: Option<(ValidatorIndex, Vec<u8>)>,
    /// This validator's timeout of this round, once it gave up on it.
    pub(super) my_timeout: Option<Timeout>,
}

impl Pacemaker {
    pub(super) fn new(base_timeout_ms: u64, max_timeout_ms: u64, heartbeat_ms: u64) -> Pacemaker {
        Pacemaker {
            round: 0,
            entered_ms: 0,
            consecutive_timeouts: 0,
            base_timeout_ms,
            max_timeout_ms,
            heartbeat_ms,
            my_proposal: None,
            my_vote: None,
            my_timeout: None,
        }
    }

    /// The round this validator is in.
    pub(super) fn round(&self) -> u64 {
        self.round
    }

    /// When this validator entered its current round (an idle leader waits a heartbeat from it).
    pub(super) fn entered_ms(&self) -> TimestampMs {
        self.entered_ms
    }

    pub(super) fn timed_out(&self) -> bool {
        self.my_timeout.is_some()
    }

    /// Enters `round` at `now` if it is ahead of the current one (returns whether it did):
    /// forgets what was sent in the old round and sets the round and re-send timers. `idle`:
    /// no block is wanted soon, so the leader waits a heartbeat and the timer allows for it.
    pub(super) fn enter(&mut self, round: u64, now: TimestampMs, idle: bool, out: &mut Vec<Output>) -> bool {
        if round <= self.round {
            return false;
        }
        self.round = round;
        self.entered_ms = now;
        self.my_timeout = None;
        self.my_proposal = None;
        self.my_vote = None;
        let idle_wait = if idle { self.heartbeat_ms } else { 0 };
        out.push(Output::SetTimer { id: ROUND_TIMER, at_ms: now.saturating_add(self.round_timeout()).saturating_add(idle_wait) });
        out.push(Output::SetTimer { id: RESEND_TIMER, at_ms: now.saturating_add(self.resend_interval()) });
        true
    }

    /// The round timer fired: set it again (the round may still not end).
    pub(super) fn rearm(&self, now: TimestampMs, out: &mut Vec<Output>) {
        out.push(Output::SetTimer { id: ROUND_TIMER, at_ms: now.saturating_add(self.round_timeout()) });
    }

    /// A QC formed: rounds are succeeding again.
    pub(super) fn qc_formed(&mut self) {
        self.consecutive_timeouts = 0;
    }

    /// This validator gave up on its round with `timeout` (sent once persisted).
    pub(super) fn gave_up(&mut self, timeout: Timeout) {
        self.consecutive_timeouts = self.consecutive_timeouts.saturating_add(1);
        self.my_timeout = Some(timeout);
    }

    pub(super) fn resend_interval(&self) -> u64 {
        (self.base_timeout_ms / 3).max(1)
    }

    /// Re-sends what this validator sent in its round, and sets the next re-send.
    pub(super) fn resend(&self, now: TimestampMs, out: &mut Vec<Output>) {
        if let Some(bytes) = &self.my_proposal {
            out.push(Output::Broadcast { bytes: bytes.clone() });
        }
        if let Some((to, bytes)) = &self.my_vote {
            out.push(Output::Send { to: *to, bytes: bytes.clone() });
        }
        if let Some(t) = &self.my_timeout {
            out.push(Output::Broadcast { bytes: codec::encode(&Message::Timeout(Box::new(t.clone()))) });
        }
        out.push(Output::SetTimer { id: RESEND_TIMER, at_ms: now.saturating_add(self.resend_interval()) });
    }

    fn round_timeout(&self) -> u64 {
        // x1.5 per consecutive timed-out round (as DiemBFT's exponential backoff, gentler than
        // doubling so that a few faulty leaders in a row do not stall the chain for long).
        let k = self.consecutive_timeouts.min(20);
        let grown = u128::from(self.base_timeout_ms) * 3u128.pow(k) / 2u128.pow(k);
        (grown.min(u128::from(self.max_timeout_ms))) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_round_timer_grows_one_and_a_half_times_per_timeout_up_to_its_cap_and_a_qc_resets_it() {
        let mut p = Pacemaker::new(1_000, 3_000, 0);
        let timer = |p: &mut Pacemaker, round| {
            let mut out = vec![];
            assert!(p.enter(round, 0, false, &mut out));
            match out[0] {
                Output::SetTimer { id: ROUND_TIMER, at_ms } => at_ms,
                _ => panic!("the round timer is set first"),
            }
        };
        assert_eq!(timer(&mut p, 1), 1_000);
        let t = Timeout {
            round: 1,
            high_qc: crate::certificate::QuorumCertificate {
                round: 0,
                block: aether_primitives::types::Hash::ZERO,
                signers: vec![],
                signature: vec![],
            },
            last_tc: None,
            signer: 0,
            signature: vec![],
        };
        p.gave_up(t.clone());
        assert_eq!(timer(&mut p, 2), 1_500);
        p.gave_up(t.clone());
        assert_eq!(timer(&mut p, 3), 2_250);
        p.gave_up(t.clone());
        assert_eq!(timer(&mut p, 4), 3_000, "capped");
        p.qc_formed();
        assert_eq!(timer(&mut p, 5), 1_000);
        assert!(!p.enter(5, 0, false, &mut vec![]), "never back to a round already entered");
    }

    #[test]
    fn an_idle_round_allows_for_the_leaders_heartbeat() {
        let mut p = Pacemaker::new(1_000, 30_000, 2_000);
        let mut out = vec![];
        p.enter(1, 10, true, &mut out);
        assert!(matches!(out[0], Output::SetTimer { id: ROUND_TIMER, at_ms: 3_010 }));
    }
}
