//! Epochs in the simulator: validator sets that change every `length` blocks, one engine per
//! epoch per node (as the node's driver loop runs them), and block sync between nodes.
//!
//! The simulator has no ledger, so a scripted stake table stands in for the staking module:
//! epoch `e`'s set is `stakes[e]` (the last row for later epochs) without every validator that
//! committed evidence accuses (the slashing module's rule: a slashed validator is jailed and
//! leaves the next set; in the simulator it never returns). Each node computes the next set
//! itself when it commits an epoch's last block, from its own committed chain, so nodes agree
//! on sets only if they agree on blocks: [`super::Report::check_epoch_sets`] checks they do.
//!
//! What runs as in the node:
//! - a new engine for each epoch, built from the same [`super::EngineUnderTest`] with the
//!   epoch's set and height range, started on the epoch's last block with the safety state
//!   it persisted under that epoch (a restart resumes the epoch its committed head is in);
//! - consensus messages tagged with the sender's epoch: a node hands its engine only its own
//!   epoch's, keeps up to [`MAX_EARLY_MESSAGES`] of the next one for when it gets there, and
//!   drops the rest;
//! - block sync: a node that hears a later epoch asks the sender for the committed blocks it
//!   lacks, checks each certificate with a key-less engine of the block's own epoch, and
//!   commits them (an engine of a finished epoch has nobody left to talk to);
//! - evidence travels in blocks and is checked by every validator's engine before it votes.
//!   Evidence of a finished epoch is dropped here; the node keeps it and checks it with a
//!   key-less engine of its own epoch (not modelled: the simulator's blocks are checked by the
//!   running engine only).

use std::collections::BTreeSet;

use borsh::{BorshDeserialize, BorshSerialize};
use rand::Rng;

use super::{Behaviour, Event, SimBlock};
use crate::consensus::driver::{Driver, DriverIo};
use crate::consensus::{BlockRef, Evidence, Input, ValidatorIndex};
use crate::types::{Amount, Certificate, Height, TimestampMs};

/// An epoch's set: `(validator, stake)` in the order of the engine's indices.
pub type Members = Vec<(ValidatorIndex, Amount)>;

/// Consensus messages of the next epoch a node keeps until it starts that epoch.
pub const MAX_EARLY_MESSAGES: usize = 1024;

/// Committed blocks one sync answer carries at most.
pub const SYNC_BATCH: usize = 32;

/// Evidence one block carries at most.
pub const MAX_BLOCK_EVIDENCE: usize = 4;

/// A node asks one peer for blocks at most this often (virtual ms).
pub const SYNC_INTERVAL_MS: TimestampMs = 200;

/// Validator sets that change by epoch: see the module docs.
#[derive(Clone, Debug, PartialEq)]
pub struct SimEpochs {
    /// Blocks per epoch (epoch `e` is heights `e * length + 1 ..= (e + 1) * length`).
    pub length: Height,
    /// `stakes[e][v]`: validator `v`'s stake in epoch `e` (0: not in the set); the last row
    /// holds for every later epoch. Rows have one entry per simulated validator.
    pub stakes: Vec<Vec<Amount>>,
    /// Each validator that builds an epoch's last block crashes at once (mid-step if the run
    /// says so) and restarts this many ms later, unless another validator is already down.
    pub crash_boundary_leaders: Option<TimestampMs>,
    /// `(validator, down_ms)`: the validator crashes right after committing an epoch's last
    /// block, before it starts the next epoch's engine, and restarts `down_ms` later (once
    /// per epoch boundary it reaches).
    pub crash_after_boundary: Vec<(ValidatorIndex, TimestampMs)>,
}

impl SimEpochs {
    pub fn first_height(&self, epoch: u64) -> Height {
        epoch * self.length + 1
    }

    pub fn last_height(&self, epoch: u64) -> Height {
        (epoch + 1) * self.length
    }

    /// The epoch a block at `height` belongs to (genesis, height 0, to epoch 0).
    pub fn epoch_of(&self, height: Height) -> u64 {
        height.saturating_sub(1) / self.length
    }

    /// The epoch whose engine runs on a node whose committed head is at `head`: the head's
    /// own epoch, or the next one once the head is an epoch's last block.
    pub fn running_epoch(&self, head: Height) -> u64 {
        self.epoch_of(head + 1)
    }

    /// The members of `epoch`'s set, in the order of their engine indices: `(validator,
    /// stake)` for every validator with stake there that `accused` does not name. A table
    /// that would leave nobody keeps the accused (a chain without validators cannot go on;
    /// the ledger keeps the current set in that case).
    pub fn members(&self, epoch: u64, accused: &BTreeSet<ValidatorIndex>) -> Members {
        let row = self.stakes.get(epoch as usize).or(self.stakes.last()).cloned().unwrap_or_default();
        let all = || row.iter().enumerate().filter(|(_, s)| **s > 0).map(|(v, s)| (v as ValidatorIndex, *s));
        let kept: Vec<_> = all().filter(|(v, _)| !accused.contains(v)).collect();
        if kept.is_empty() {
            all().collect()
        } else {
            kept
        }
    }
}

/// What travels between simulated nodes on a chain with epochs.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub(crate) enum Wire {
    /// An engine's message, tagged with the epoch of the engine that sent it.
    Consensus { epoch: u64, bytes: Vec<u8> },
    /// "Send me your committed blocks from this height", from simulator slot `reply_to` (the
    /// two copies of a duplicated validator are separate processes with one key).
    SyncRequest { from_height: Height, reply_to: u64 },
    /// Committed blocks in height order, each with the certificate its holder committed it with.
    SyncBlocks { blocks: Vec<(Vec<u8>, Certificate)> },
}

/// A block's bytes: the [`super::SimBlock`], then (only if it records any) its evidence, so
/// blocks without evidence encode, and hash, as on a chain without epochs.
pub(crate) fn encode_block(block: &super::SimBlock, evidence: &[Evidence]) -> Vec<u8> {
    let mut bytes = crate::codec::encode(block);
    if !evidence.is_empty() {
        bytes.extend(crate::codec::encode(&evidence.to_vec()));
    }
    bytes
}

/// The block and the evidence it records (`None`: not a block).
pub(crate) fn decode_block(bytes: &[u8]) -> Option<(super::SimBlock, Vec<Evidence>)> {
    let mut rest = bytes;
    let block = super::SimBlock::deserialize(&mut rest).ok()?;
    if rest.is_empty() {
        return Some((block, vec![]));
    }
    let evidence = Vec::<Evidence>::deserialize(&mut rest).ok()?;
    rest.is_empty().then_some((block, evidence))
}

/// The simulator's side of epochs: engines per epoch, tagged messages, block sync.
impl super::Simulation<'_> {
    fn schedule_of_run(&self) -> SimEpochs {
        self.config.epochs.clone().expect("only chains with epochs reach here")
    }

    /// Starts the engine of the epoch the slot's committed head runs (its own, or the next
    /// one on an epoch's last block) with that epoch's set, computed from the slot's own
    /// chain the first time, and the safety state it persisted under that epoch, as a
    /// restarted node does. Then hands it the messages of that epoch that came early.
    pub(super) fn start_epoch_engine(&mut self, slot: usize) {
        let schedule = self.schedule_of_run();
        let (committed, certificate) = self.slots[slot].io.committed.last().cloned().expect("genesis is always committed");
        let epoch = schedule.running_epoch(committed.height);
        let io = &mut self.slots[slot].io;
        let members = io.sets.entry(epoch).or_insert_with(|| schedule.members(epoch, &io.accused)).clone();
        let ctx = self.epoch_context(epoch, &members, Some(self.slots[slot].index));
        let mut driver = Driver::new(self.engine.build(&ctx));
        let now = self.now;
        let s = &mut self.slots[slot];
        s.io.epoch = epoch;
        s.io.set_index = ctx.local.as_ref().map(|l| l.index);
        s.io.members = members;
        s.io.persisted = s.io.safety.get(&epoch).cloned();
        // Evidence of a finished epoch is not this engine's to check (the node checks it with
        // a key-less engine of its epoch; the simulator drops it).
        s.io.pending_evidence.clear();
        s.epoch_starts.entry(epoch).or_insert(now);
        let input = Input::Start { committed, certificate, safety_state: s.io.persisted.clone() };
        let _ = driver.handle(now, input, &mut s.io);
        if s.io.loaded || s.io.pending {
            let _ = driver.handle(now, Input::TransactionsWaiting, &mut s.io);
        }
        for (at_epoch, from, bytes) in std::mem::take(&mut s.early) {
            let sender = s.io.members.iter().position(|(v, _)| *v == from);
            if let (true, Some(index)) = (at_epoch == epoch, sender) {
                let _ = driver.handle(now, Input::Message { from: index as ValidatorIndex, bytes }, &mut s.io);
            }
        }
        s.driver = Some(driver);
        self.after_step(slot);
    }

    /// The slot committed its epoch's last block: it starts the next epoch's engine (or, if
    /// the run says so, crashes first and restarts into it later).
    pub(super) fn end_epoch(&mut self, slot: usize) {
        let schedule = self.schedule_of_run();
        let s = &mut self.slots[slot];
        s.io.epoch_ended = None;
        let ended = s.io.epoch;
        let crash = schedule.crash_after_boundary.iter().find(|(v, _)| *v == s.index).map(|(_, down)| *down);
        if let Some(down) = crash.filter(|_| s.crashed_after.insert(ended)) {
            s.driver = None;
            s.io.crash();
            s.wakes.clear();
            s.early.clear();
            self.schedule(self.now + down, Event::Restart { slot });
            return;
        }
        self.start_epoch_engine(slot);
    }

    /// A validator that has just built an epoch's last block crashes, if the run says so.
    pub(super) fn crash_boundary_leader(&mut self, slot: usize) {
        let Some(down) = self.config.epochs.as_ref().and_then(|e| e.crash_boundary_leaders) else { return };
        let schedule = self.schedule_of_run();
        let s = &self.slots[slot];
        let built = s.io.built.len();
        if built <= s.built_seen {
            return;
        }
        let height = s.io.known.get(&s.io.built[built - 1]).map(|(b, _)| b.height);
        self.slots[slot].built_seen = built;
        let boundary = height.is_some_and(|h| h == schedule.last_height(schedule.epoch_of(h)));
        let anyone_down = self.slots.iter().any(|s| s.driver.is_none() || s.restart_after.is_some());
        if boundary && !anyone_down && self.slots[slot].behaviour == Behaviour::Honest {
            self.boundary_crashes += 1;
            self.crash_at(self.now, slot, Some(down));
        }
    }

    /// A message reached `to` on a chain with epochs.
    pub(super) fn deliver_on_epoch_chain(&mut self, to: usize, from: ValidatorIndex, bytes: Vec<u8>) {
        if self.slots[to].driver.is_none() {
            return;
        }
        self.stats[0] += 1;
        let Ok(wire) = Wire::try_from_slice(&bytes) else { return };
        match wire {
            Wire::Consensus { epoch, bytes } => {
                let s = &mut self.slots[to];
                let mine = s.io.epoch;
                if epoch == mine {
                    // Messages from outside this epoch's set are not consensus input.
                    let Some(index) = s.io.members.iter().position(|(v, _)| *v == from) else { return };
                    if let Some(driver) = s.driver.as_mut() {
                        let _ = driver.handle(self.now, Input::Message { from: index as ValidatorIndex, bytes }, &mut s.io);
                    }
                    self.after_step(to);
                } else if epoch > mine {
                    if epoch == mine + 1 && s.early.len() < MAX_EARLY_MESSAGES {
                        s.early.push_back((epoch, from, bytes));
                    }
                    // The sender is past this node's epoch: fetch what this node lacks.
                    self.request_sync(to, from);
                }
            }
            Wire::SyncRequest { from_height, reply_to } => {
                let s = &self.slots[to];
                if s.behaviour == Behaviour::Silent {
                    return;
                }
                let start = usize::try_from(from_height).unwrap_or(usize::MAX);
                let blocks: Vec<(Vec<u8>, Certificate)> = (start..s.io.committed.len().min(start.saturating_add(SYNC_BATCH)))
                    .filter_map(|h| Some((s.io.committed_blocks.get(h)?.clone(), s.io.committed[h].1.clone())))
                    .collect();
                let asker = usize::try_from(reply_to).ok().filter(|s| self.slots.get(*s).is_some_and(|s| s.index == from));
                if let (false, Some(asker)) = (blocks.is_empty(), asker) {
                    self.send_wire(to, asker, &Wire::SyncBlocks { blocks });
                }
            }
            Wire::SyncBlocks { blocks } => self.commit_synced(to, blocks),
        }
    }

    /// The first running slot of validator `v` (a duplicated validator has two).
    fn running_slot_of(&self, v: ValidatorIndex) -> Option<usize> {
        self.slots.iter().position(|s| s.index == v && s.driver.is_some())
    }

    /// Asks validator `peer` for the committed blocks after `slot`'s head (at most once per
    /// [`SYNC_INTERVAL_MS`]).
    fn request_sync(&mut self, slot: usize, peer: ValidatorIndex) {
        let s = &self.slots[slot];
        if s.last_sync_request.is_some_and(|at| self.now < at + SYNC_INTERVAL_MS) {
            return;
        }
        let from_height = s.io.head().height + 1;
        let Some(target) = self.running_slot_of(peer) else { return };
        self.slots[slot].last_sync_request = Some(self.now);
        self.send_wire(slot, target, &Wire::SyncRequest { from_height, reply_to: slot as u64 });
    }

    /// Sends a sync message over the link model (loss, latency, partitions; no behaviour).
    fn send_wire(&mut self, from_slot: usize, to_slot: usize, wire: &Wire) {
        let (from, to) = (self.slots[from_slot].index, self.slots[to_slot].index);
        if self.cut(from, to) || self.rng.gen_bool(self.config.link.loss) {
            self.stats[1] += 1;
            return;
        }
        let link = self.config.link;
        let delay = link.latency_ms + self.rng.gen_range(0..=2 * link.jitter_ms) - link.jitter_ms.min(link.latency_ms);
        self.schedule(self.now + delay, Event::Deliver { to: to_slot, from, bytes: crate::codec::encode(wire) });
    }

    /// Commits fetched blocks that extend `slot`'s head within its running epoch, as the
    /// node's block sync does: the last of them whose certificate a key-less engine of the
    /// epoch accepts proves it and every block before it final (an ancestor decided through
    /// a descendant carries a certificate that proves nothing alone). Stops at the epoch's
    /// last block: the next epoch's engine starts there and fetches the rest itself.
    fn commit_synced(&mut self, slot: usize, blocks: Vec<(Vec<u8>, Certificate)>) {
        let schedule = self.schedule_of_run();
        let (epoch, members) = (self.slots[slot].io.epoch, self.slots[slot].io.members.clone());
        let mut tip = self.slots[slot].io.head();
        let mut linked = vec![];
        for (bytes, certificate) in blocks {
            let Some((block, _)) = decode_block(&bytes) else { break };
            if block.height <= tip.height && linked.is_empty() {
                continue;
            }
            if block.parent != tip.hash || block.height != tip.height + 1 || block.height > schedule.last_height(epoch) {
                break;
            }
            tip = BlockRef { hash: SimBlock::hash_of(&bytes), height: block.height };
            linked.push((tip, block.parent, bytes, certificate));
        }
        let Some(proven) = (0..linked.len()).rev().find(|i| {
            let (block, _, _, certificate) = &linked[*i];
            self.verify_in_epoch(epoch, &members, block, certificate).is_ok()
        }) else {
            return;
        };
        let mut last = None;
        for (block, parent, bytes, certificate) in linked.into_iter().take(proven + 1) {
            let io = &mut self.slots[slot].io;
            io.know_synced(block, parent, bytes);
            if io.commit(&block, &certificate).is_err() || io.crashed {
                break;
            }
            self.slots[slot].synced += 1;
            last = Some((block, certificate));
        }
        if self.slots[slot].io.epoch_ended.is_some() {
            // The next epoch's engine starts on this block (in `after_step`); ask again at
            // once for what follows, from the new epoch's peers.
            self.slots[slot].last_sync_request = None;
            last = None;
        }
        let s = &mut self.slots[slot];
        if let (Some((committed, certificate)), Some(driver)) = (last, s.driver.as_mut()) {
            let _ = driver.handle(self.now, Input::Synced { committed, certificate }, &mut s.io);
        }
        self.after_step(slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epochs() -> SimEpochs {
        SimEpochs {
            length: 10,
            stakes: vec![vec![1, 1, 1, 0], vec![0, 2, 1, 3]],
            crash_boundary_leaders: None,
            crash_after_boundary: vec![],
        }
    }

    #[test]
    fn heights_map_to_epochs_and_a_head_on_a_boundary_runs_the_next_epoch() {
        let e = epochs();
        assert_eq!((e.epoch_of(0), e.epoch_of(1), e.epoch_of(10), e.epoch_of(11)), (0, 0, 0, 1));
        assert_eq!((e.first_height(1), e.last_height(1)), (11, 20));
        assert_eq!((e.running_epoch(0), e.running_epoch(9), e.running_epoch(10)), (0, 0, 1));
    }

    #[test]
    fn sets_follow_the_table_without_the_accused_and_never_empty() {
        let e = epochs();
        assert_eq!(e.members(0, &BTreeSet::new()), vec![(0, 1), (1, 1), (2, 1)]);
        assert_eq!(e.members(5, &BTreeSet::from([3])), vec![(1, 2), (2, 1)], "the last row holds later; the accused leave");
        assert_eq!(e.members(0, &BTreeSet::from([0, 1, 2])), vec![(0, 1), (1, 1), (2, 1)], "never empty");
    }

    #[test]
    fn blocks_without_evidence_encode_as_before_and_with_it_round_trip() {
        let b = super::super::SimBlock { parent: Default::default(), height: 3, builder: 1, nonce: 9, transactions: 1 };
        assert_eq!(encode_block(&b, &[]), crate::codec::encode(&b));
        let ev = Evidence { offender: 2, kind: "double-vote".into(), proof: vec![1, 2], epoch: 1 };
        let bytes = encode_block(&b, std::slice::from_ref(&ev));
        assert_eq!(decode_block(&bytes), Some((b.clone(), vec![ev])));
        let mut trailing = bytes;
        trailing.push(0);
        assert_eq!(decode_block(&trailing), None, "trailing bytes are not a block");
    }
}
