//! Votes and timeouts in, certificates out, and what a certificate unlocks: a QC raises the
//! high QC, may decide a block (the commit rule) and moves to the next round; a TC moves to the
//! next round too.

use aether_api::consensus::{Output, ValidatorIndex};
use aether_primitives::types::{Hash, TimestampMs};

use crate::certificate::QuorumCertificate;
use crate::messages::Timeout;
use crate::timeout::TimeoutCertificate;

use super::{HotStuffEngine, MAX_FUTURE_ROUNDS};

impl HotStuffEngine {
    pub(super) fn on_vote(
        &mut self,
        round: u64,
        digest: Hash,
        voter: ValidatorIndex,
        signature: Vec<u8>,
        now: TimestampMs,
        out: &mut Vec<Output>,
    ) {
        let current = self.pacemaker.round();
        if round.saturating_add(1) < current
            || round > current.saturating_add(MAX_FUTURE_ROUNDS)
            || voter as usize >= self.members.len()
            || round <= self.tree.committed.round
        {
            return;
        }
        if let Some(qc) = self.aggregator.add_vote(round, digest, voter, signature, out) {
            self.verifier.formed_here(&qc);
            self.observe_qc(qc, now, out);
        }
    }

    pub(super) fn on_timeout(&mut self, t: Timeout, now: TimestampMs, out: &mut Vec<Output>) {
        if t.signer as usize >= self.members.len() || t.round.saturating_add(1) < self.pacemaker.round() || t.high_qc.round >= t.round {
            return;
        }
        if t.high_qc.round > self.high_qc.round {
            let genesis = self.tree.genesis;
            if !self.verifier.qc(&t.high_qc, genesis) {
                return;
            }
            self.observe_qc(t.high_qc.clone(), now, out);
        }
        if let Some(tc) = t.last_tc.as_ref().filter(|tc| tc.round >= self.pacemaker.round()) {
            if self.verifier.tc(tc) {
                self.observe_tc(tc.clone(), now, out);
            }
        }
        if t.round > self.pacemaker.round().saturating_add(MAX_FUTURE_ROUNDS) {
            return;
        }
        let Some((tc, stake)) = self.aggregator.add_timeout(t.round, t.signer, t.high_qc.round, &t.signature) else { return };
        // More than a third of the stake gave up on this round: at least one honest validator
        // did, so join it (otherwise a TC might never form).
        let amplify =
            stake.saturating_mul(3) > self.election.total_stake() && t.round == self.pacemaker.round() && !self.pacemaker.timed_out();
        if let Some(tc) = tc {
            self.observe_tc(tc, now, out);
        } else if amplify {
            self.time_out(now, out);
        }
    }

    pub(super) fn observe_qc(&mut self, qc: QuorumCertificate, now: TimestampMs, out: &mut Vec<Output>) {
        if qc.round > self.high_qc.round {
            self.high_qc = qc.clone();
            self.safety.observe_qc_round(qc.round);
            self.pacemaker.qc_formed();
        }
        let digest = qc.block;
        let round = qc.round;
        self.tree.qcs.entry(digest).or_insert(qc);
        self.commit_rule.check(&self.tree, digest);
        self.commit_rule.commit_ready(&mut self.tree, self.epoch.last_height, out);
        self.advance_to(round.saturating_add(1), now, out);
    }

    pub(super) fn observe_tc(&mut self, tc: TimeoutCertificate, now: TimestampMs, out: &mut Vec<Output>) {
        let round = tc.round;
        if self.last_tc.as_ref().is_none_or(|t| t.round < tc.round) {
            self.last_tc = Some(tc);
        }
        self.advance_to(round.saturating_add(1), now, out);
    }
}
