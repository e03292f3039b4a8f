//! Entering a round (on a QC or TC for the one before) and giving up on it (the round timer,
//! or timeouts from more than a third of the stake).

use aether_api::consensus::Output;
use aether_primitives::codec;
use aether_primitives::types::TimestampMs;

use crate::messages::{Message, Timeout};

use super::HotStuffEngine;

impl HotStuffEngine {
    /// Enters `round` if it is ahead of the current one; its leader schedules a proposal.
    pub(super) fn advance_to(&mut self, round: u64, now: TimestampMs, out: &mut Vec<Output>) {
        // An idle round's leader waits a heartbeat before proposing: give it that long.
        let idle = self.settings.heartbeat_ms > 0 && round > self.pacemaker.round() && !self.has_work();
        if !self.pacemaker.enter(round, now, idle, out) {
            return;
        }
        self.building = None;
        self.aggregator.forget_before(round);
        if let (Some(me), Some(leader)) = (self.my_index(), self.leader_of_current()) {
            if me == leader {
                self.schedule_proposal(now, out);
            }
        }
        #[cfg(feature = "mocks")]
        if self.attacking(crate::mocks::Attack::EagerTimeout) {
            self.time_out(now, out);
        }
    }

    pub(super) fn on_round_timer(&mut self, now: TimestampMs, out: &mut Vec<Output>) {
        self.pacemaker.rearm(now, out);
        // Ask again for ancestors that never arrived (unless asked for just now).
        for digest in self.tree.refetch_due(now, self.pacemaker.resend_interval()) {
            out.push(Output::Broadcast { bytes: codec::encode(&Message::Fetch { digest }) });
        }
        if let Some(t) = &self.pacemaker.my_timeout {
            // Still stuck in this round: say it again (links lose messages).
            out.push(Output::Broadcast { bytes: codec::encode(&Message::Timeout(Box::new(t.clone()))) });
            return;
        }
        self.time_out(now, out);
    }

    /// Gives up on the current round if the safety rules allow: signs a timeout carrying the
    /// high QC and the last TC, persists, then broadcasts it (and counts it here).
    pub(super) fn time_out(&mut self, now: TimestampMs, out: &mut Vec<Output>) {
        let round = self.pacemaker.round();
        #[cfg(feature = "mocks")]
        let reported = self.reported_qc(round);
        #[cfg(not(feature = "mocks"))]
        let reported = self.high_qc.clone();
        let Some(signer) = self.my_index() else { return };
        if self.pacemaker.timed_out() {
            return;
        }
        let last_tc_round = self.last_tc.as_ref().map(|tc| tc.round);
        let Some(signature) = self.safety.timeout(round, self.high_qc.round, last_tc_round, reported.round) else { return };
        let timeout = Timeout { round, high_qc: reported, last_tc: self.last_tc.clone(), signer, signature };
        let tip = self.high_qc.block;
        self.persist_with(tip, out);
        self.pacemaker.gave_up(timeout.clone());
        out.push(Output::Broadcast { bytes: codec::encode(&Message::Timeout(Box::new(timeout.clone()))) });
        self.on_timeout(timeout, now, out);
    }
}
