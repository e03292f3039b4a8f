//! The consensus driver: feeds an engine its inputs and performs its outputs in order.
//!
//! This is the one place that enforces the engine contract of [`crate::consensus`] (the parent module): outputs
//! of one `handle` call are performed in order; a `Persist` is durable before the next output
//! is performed; answers to `BuildPayload`/`VerifyPayload` are queued as inputs and delivered
//! after the current outputs. Side effects go through [`DriverIo`], so the same driver runs in
//! the node (real storage, network, ledger) and in a deterministic simulator (virtual ones).

use std::collections::{BTreeMap, VecDeque};

use super::{BlockRef, ConsensusEngine, Evidence, Input, Output, Payload, TimerId, ValidatorIndex};
use crate::types::{Certificate, Hash, TimestampMs};

/// A failure that must stop the node: continuing could break safety or lose data.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("could not persist consensus safety state: {0}")]
    Persist(String),
    #[error("could not commit block {block:?}: {reason}")]
    Commit { block: BlockRef, reason: String },
    /// The engine of the next epoch could not be built (its set is not recorded, or the
    /// engine refuses it): the node stops rather than sign under the wrong set.
    #[error("could not start epoch {epoch}: {reason}")]
    Reconfigure { epoch: u64, reason: String },
}

/// Why a block could not be built. The engine receives the text as
/// [`Input::PayloadBuildFailed`] and may ask again later.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The parent is not a block this node has built or verified.
    #[error("parent {0} is unknown")]
    UnknownParent(Hash),
    /// The node's ledger or storage failed while building.
    #[error("the ledger could not build a block: {0}")]
    Ledger(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// What checking a proposed block's bytes found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadCheck {
    /// The bytes are not a block: the engine learns nothing about which block was proposed.
    Undecodable,
    /// The bytes are `block`, extending `parent`; `valid` tells whether it executes correctly
    /// on that parent (and records only evidence the engine accepts); `empty` whether it
    /// carries no transactions and no evidence.
    Decoded { block: BlockRef, parent: Hash, valid: bool, empty: bool },
}

impl PayloadCheck {
    /// The input that answers [`Output::VerifyPayload`] with this result.
    pub fn into_input(self) -> Input {
        match self {
            PayloadCheck::Undecodable => Input::PayloadVerified { block: None, parent: None, valid: false, empty: true },
            PayloadCheck::Decoded { block, parent, valid, empty } => {
                Input::PayloadVerified { block: Some(block), parent: Some(parent), valid, empty }
            }
        }
    }
}

/// The effects a driver performs for its engine.
pub trait DriverIo {
    fn broadcast(&mut self, bytes: Vec<u8>);
    fn send(&mut self, to: ValidatorIndex, bytes: Vec<u8>);
    /// Must be durable (fsync) when it returns `Ok`.
    fn persist(&mut self, state: &[u8]) -> Result<(), DriverError>;
    /// Builds a block on `parent`; the error's text is handed to the engine.
    fn build_payload(&mut self, parent: &BlockRef, parent_certificate: &Certificate, now_ms: TimestampMs) -> Result<Payload, BuildError>;
    /// Decodes and executes a proposed block. `engine` checks the certificate its header
    /// carries for its parent ([`ConsensusEngine::verify_parent_certificate`]) and any evidence
    /// the block records ([`ConsensusEngine::verify_evidence`]); either refused makes the block
    /// invalid.
    fn verify_payload(&mut self, bytes: &[u8], engine: &dyn ConsensusEngine) -> PayloadCheck;
    /// Executes and durably stores a decided block.
    fn commit(&mut self, block: &BlockRef, certificate: &Certificate) -> Result<(), DriverError>;
    fn evidence(&mut self, evidence: Evidence);
}

pub struct Driver {
    engine: Box<dyn ConsensusEngine>,
    timers: BTreeMap<TimerId, TimestampMs>,
    queue: VecDeque<Input>,
}

impl Driver {
    pub fn new(engine: Box<dyn ConsensusEngine>) -> Driver {
        Driver { engine, timers: BTreeMap::new(), queue: VecDeque::new() }
    }

    pub fn engine(&self) -> &dyn ConsensusEngine {
        self.engine.as_ref()
    }

    /// Delivers `input`, then every input its outputs produce, performing all outputs.
    pub fn handle(&mut self, now_ms: TimestampMs, input: Input, io: &mut dyn DriverIo) -> Result<(), DriverError> {
        self.queue.push_back(input);
        while let Some(input) = self.queue.pop_front() {
            let mut out = Vec::new();
            self.engine.handle(now_ms, input, &mut out);
            for output in out {
                self.perform(now_ms, output, io)?;
            }
        }
        Ok(())
    }

    fn perform(&mut self, now_ms: TimestampMs, output: Output, io: &mut dyn DriverIo) -> Result<(), DriverError> {
        match output {
            Output::Broadcast { bytes } => io.broadcast(bytes),
            Output::Send { to, bytes } => io.send(to, bytes),
            Output::SetTimer { id, at_ms } => {
                self.timers.insert(id, at_ms);
            }
            Output::CancelTimer { id } => {
                self.timers.remove(&id);
            }
            Output::BuildPayload { parent, parent_certificate } => {
                let answer = match io.build_payload(&parent, &parent_certificate, now_ms) {
                    Ok(payload) => Input::PayloadBuilt { payload },
                    Err(error) => Input::PayloadBuildFailed { parent: parent.hash, reason: error.to_string() },
                };
                self.queue.push_back(answer);
            }
            Output::VerifyPayload { bytes } => {
                let check = io.verify_payload(&bytes, self.engine.as_ref());
                self.queue.push_back(check.into_input());
            }
            Output::Persist { state } => io.persist(&state)?,
            Output::Commit { block, certificate } => io.commit(&block, &certificate)?,
            Output::Evidence(e) => io.evidence(e),
        }
        Ok(())
    }

    /// The earliest pending timer.
    pub fn next_deadline(&self) -> Option<TimestampMs> {
        self.timers.values().min().copied()
    }

    /// Fires every timer due at `now_ms`, earliest first.
    pub fn fire_due_timers(&mut self, now_ms: TimestampMs, io: &mut dyn DriverIo) -> Result<(), DriverError> {
        let mut due: Vec<(TimestampMs, TimerId)> = self.timers.iter().filter(|(_, at)| **at <= now_ms).map(|(id, at)| (*at, *id)).collect();
        due.sort_unstable();
        for (_, id) in due {
            // An earlier timer's handling may have cancelled or moved this one.
            if self.timers.get(&id).is_some_and(|at| *at <= now_ms) {
                self.timers.remove(&id);
                self.handle(now_ms, Input::Timer { id }, io)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::ConsensusError;
    use crate::types::Hash;

    /// An engine that persists, then broadcasts, then asks for a block, and commits it.
    struct Scripted;
    impl ConsensusEngine for Scripted {
        fn name(&self) -> &'static str {
            "scripted"
        }
        fn handle(&mut self, _now: TimestampMs, input: Input, out: &mut Vec<Output>) {
            match input {
                Input::Start { committed, .. } => {
                    out.push(Output::Persist { state: vec![1] });
                    out.push(Output::Broadcast { bytes: vec![2] });
                    out.push(Output::BuildPayload { parent: committed, parent_certificate: Certificate::default() });
                    out.push(Output::SetTimer { id: 9, at_ms: 50 });
                    out.push(Output::SetTimer { id: 4, at_ms: 40 });
                    out.push(Output::SetTimer { id: 5, at_ms: 45 });
                }
                Input::PayloadBuilt { payload } => out.push(Output::Commit { block: payload.block, certificate: Certificate(vec![7]) }),
                Input::Timer { id } => {
                    out.push(Output::Broadcast { bytes: vec![id as u8] });
                    // Timer 4 cancels timer 5, which is due at the same moment.
                    if id == 4 {
                        out.push(Output::CancelTimer { id: 5 });
                    }
                }
                _ => {}
            }
        }
        fn verify_certificate(&self, _: &BlockRef, _: &Certificate) -> Result<(), ConsensusError> {
            Ok(())
        }
    }

    #[derive(Default)]
    struct Log(Vec<String>, bool);
    impl DriverIo for Log {
        fn broadcast(&mut self, b: Vec<u8>) {
            self.0.push(format!("broadcast {b:?}"));
        }
        fn send(&mut self, to: ValidatorIndex, _: Vec<u8>) {
            self.0.push(format!("send {to}"));
        }
        fn persist(&mut self, s: &[u8]) -> Result<(), DriverError> {
            self.0.push(format!("persist {s:?}"));
            if self.1 {
                Err(DriverError::Persist("disk full".into()))
            } else {
                Ok(())
            }
        }
        fn build_payload(&mut self, p: &BlockRef, _: &Certificate, _: TimestampMs) -> Result<Payload, BuildError> {
            self.0.push("build".into());
            Ok(Payload { block: BlockRef { hash: Hash::ZERO, height: p.height + 1 }, parent: p.hash, bytes: vec![], empty: true })
        }
        fn verify_payload(&mut self, _: &[u8], _: &dyn ConsensusEngine) -> PayloadCheck {
            PayloadCheck::Undecodable
        }
        fn commit(&mut self, b: &BlockRef, c: &Certificate) -> Result<(), DriverError> {
            self.0.push(format!("commit {} {:?}", b.height, c.0));
            Ok(())
        }
        fn evidence(&mut self, _: Evidence) {}
    }

    fn start() -> Input {
        Input::Start { committed: BlockRef { hash: Hash::ZERO, height: 0 }, certificate: Certificate::default(), safety_state: None }
    }

    #[test]
    fn outputs_are_performed_in_order_and_answers_come_after() {
        let mut d = Driver::new(Box::new(Scripted));
        let mut io = Log::default();
        d.handle(0, start(), &mut io).unwrap();
        assert_eq!(io.0, vec!["persist [1]", "broadcast [2]", "build", "commit 1 [7]"]);
        assert_eq!(d.next_deadline(), Some(40));
        d.fire_due_timers(39, &mut io).unwrap();
        assert_eq!(io.0.len(), 4, "nothing is due yet");
        // Both 4 (at 40) and 5 (at 45) are due at 50 along with 9; 4 fires first and cancels 5.
        d.fire_due_timers(50, &mut io).unwrap();
        assert_eq!(&io.0[4..], ["broadcast [4]", "broadcast [9]"]);
        assert_eq!(d.next_deadline(), None);
    }

    #[test]
    fn a_failed_persist_stops_everything_after_it() {
        let mut d = Driver::new(Box::new(Scripted));
        let mut io = Log(vec![], true);
        assert!(d.handle(0, start(), &mut io).is_err());
        assert_eq!(io.0, vec!["persist [1]"], "nothing may be sent after a persist that did not complete");
    }
}
