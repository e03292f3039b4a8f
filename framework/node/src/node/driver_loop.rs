//! The consensus driver's loop: one thread feeds the engine its timers, peers' messages,
//! "transactions are waiting" and evidence, and performs its outputs through [`NodeIo`].

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch, Notify};

use super::effects::{untag_epoch, NodeIo};
use super::epochs::{safety_key, EngineMaker};
use super::sync::SyncBatch;
use super::{Clock, MAX_EVIDENCE_BYTES};
use crate::codec;
use crate::consensus::driver::{Driver, DriverError, DriverIo};
use crate::consensus::{BlockRef, Evidence, Input, ValidatorSet};
use crate::network::{InboundMessage, PeerId, Verdict};
use crate::storage::columns;
use crate::types::Certificate;

/// Consensus messages of the next epoch kept until this node starts it (peers that committed
/// the boundary block first are already there); more are dropped, and the engine's own
/// retransmissions and timeouts recover them.
const MAX_EARLY_MESSAGES: usize = 1024;

/// The running epoch, as the driver loop needs it.
pub(super) struct EpochState {
    pub(super) maker: EngineMaker,
    /// The running epoch's set: who a consensus message's sender is.
    pub(super) validators: ValidatorSet,
    /// Whether this node signs in epochs whose set holds it.
    pub(super) signing: bool,
    /// Messages tagged with the next epoch, from their senders, in arrival order.
    pub(super) early: std::collections::VecDeque<(PeerId, Vec<u8>)>,
}

/// The epoch's last block committed: replaces the engine with the next epoch's, built from
/// the set that block recorded, and starts it on that block with the safety state it kept
/// (if this node ran it before a restart), then hands it the messages that came early.
fn start_next_epoch(
    driver: &mut Driver,
    io: &mut NodeIo,
    epochs: &mut EpochState,
    committed: BlockRef,
    certificate: Certificate,
    now_ms: u64,
) -> Result<(), DriverError> {
    let next = io.epoch + 1;
    let failed = |reason: String| DriverError::Reconfigure { epoch: next, reason };
    let (engine, ctx) = epochs.maker.engine(&io.ledger, next, epochs.signing).map_err(|e| failed(e.to_string()))?;
    let key = safety_key(engine.name(), next);
    let safety_state = io.store.get(columns::CONSENSUS, &key).map_err(|e| failed(e.to_string()))?;
    tracing::info!(epoch = next, at = committed.height, validators = ctx.validators.len(), signing = ctx.local.is_some(), "epoch started");
    io.epoch = next;
    io.safety_key = key;
    io.peers = ctx.validators.iter().map(|v| v.identity).collect();
    if let Some(n) = &io.network {
        n.admit_validators(&io.peers);
    }
    epochs.validators = ctx.validators;
    *driver = Driver::new(engine);
    io.evidence.retain_verified(driver.engine(), io.epoch);
    driver.handle(now_ms, Input::Start { committed, certificate, safety_state }, io)?;
    for (from, bytes) in std::mem::take(&mut epochs.early) {
        if let Some(from) = epochs.validators.index_of(&from) {
            driver.handle(now_ms, Input::Message { from, bytes }, io)?;
        }
    }
    Ok(())
}

/// Everything the driver loop waits on besides its timers.
pub(super) struct DriverInputs {
    /// The mempool has transactions for a block.
    pub(super) ready: Arc<Notify>,
    pub(super) stop: watch::Receiver<bool>,
    pub(super) consensus: Option<mpsc::Receiver<InboundMessage>>,
    pub(super) evidence_gossip: Option<mpsc::Receiver<InboundMessage>>,
    pub(super) evidence_local: mpsc::Receiver<Evidence>,
    /// Final blocks fetched by block sync.
    pub(super) synced: Option<mpsc::Receiver<SyncBatch>>,
}

async fn recv_or_pending<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx.as_mut() {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Executes and commits final blocks from block sync in order, then tells the engine its new
/// committed head. Blocks consensus committed meanwhile are skipped; a block that does not
/// extend the head or does not execute ends the batch (sync asks again).
fn commit_synced(driver: &mut Driver, io: &mut NodeIo, batch: SyncBatch, now_ms: u64) -> Result<(), DriverError> {
    let mut last = None;
    let mut count = 0;
    for (block, certificate) in batch.blocks {
        let head = io.ledger.head().block;
        if block.header.height <= head.height {
            continue;
        }
        let block_ref = BlockRef { hash: block.hash(), height: block.header.height };
        if block.header.parent != head.hash {
            tracing::warn!(height = block_ref.height, "synced block does not extend the committed head");
            break;
        }
        if let Err(e) = io.ledger.execute_block(block) {
            tracing::error!(height = block_ref.height, error = %e, "a block proven final does not execute here: this node's state differs from the chain's");
            break;
        }
        io.commit(&block_ref, &certificate)?;
        count += 1;
        last = Some((block_ref, certificate));
        if io.epoch_ended.is_some() {
            // The next epoch's engine starts on this block; later ones are fetched again.
            break;
        }
    }
    if let Some((committed, certificate)) = last {
        io.metrics.synced(count);
        tracing::info!(height = committed.height, blocks = count, "block sync committed");
        if io.epoch_ended.is_none() {
            driver.handle(now_ms, Input::Synced { committed, certificate }, io)?;
        }
    }
    Ok(())
}

pub(super) async fn run_driver(
    mut driver: Driver,
    mut io: NodeIo,
    start: Input,
    clock: Arc<dyn Clock>,
    inputs: DriverInputs,
    mut epochs: EpochState,
) -> Result<(), DriverError> {
    let DriverInputs { ready, mut stop, consensus: mut inbound, mut evidence_gossip, mut evidence_local, mut synced } = inputs;
    let result = async {
        driver.handle(clock.now_ms(), start, &mut io)?;
        loop {
            if let Some((committed, certificate)) = io.epoch_ended.take() {
                start_next_epoch(&mut driver, &mut io, &mut epochs, committed, certificate, clock.now_ms())?;
            }
            let sleep = async {
                match driver.next_deadline() {
                    Some(at) => tokio::time::sleep(Duration::from_millis(at.saturating_sub(clock.now_ms()))).await,
                    None => std::future::pending().await,
                }
            };
            let message = recv_or_pending(&mut inbound);
            tokio::select! {
                biased;
                _ = stop.changed() => return Ok(()),
                // Before peers' messages: under steady consensus traffic a later branch would
                // starve, and a node that is behind gains most from committing what sync found.
                Some(batch) = recv_or_pending(&mut synced) => commit_synced(&mut driver, &mut io, batch, clock.now_ms())?,
                _ = sleep => driver.fire_due_timers(clock.now_ms(), &mut io)?,
                Some(m) = message => match untag_epoch(m.bytes) {
                    // Messages from peers that are not this epoch's validators are not consensus input.
                    Some((epoch, bytes)) if epoch == io.epoch => {
                        if let Some(from) = epochs.validators.index_of(&m.from) {
                            driver.handle(clock.now_ms(), Input::Message { from, bytes }, &mut io)?;
                        }
                    }
                    Some((epoch, bytes)) if epoch == io.epoch + 1 && epochs.early.len() < MAX_EARLY_MESSAGES => {
                        epochs.early.push_back((m.from, bytes));
                    }
                    _ => {}
                },
                _ = ready.notified() => driver.handle(clock.now_ms(), Input::TransactionsWaiting, &mut io)?,
                Some(m) = recv_or_pending(&mut evidence_gossip) => {
                    let verdict = match codec::decode::<Evidence>("evidence", &m.bytes, MAX_EVIDENCE_BYTES) {
                        Ok(e) => io.evidence.offer(e, driver.engine(), io.epoch, "a peer"),
                        Err(e) => {
                            tracing::debug!(from = %m.from, error = %e, "undecodable evidence from a peer");
                            Verdict::Reject
                        }
                    };
                    if let Some(n) = &io.network {
                        n.validated(&m, verdict);
                    }
                }
                Some(e) = evidence_local.recv() => {
                    io.evidence.offer(e, driver.engine(), io.epoch, "this node's API");
                }
            }
            // Transactions left over after a commit are waiting too.
            if std::mem::take(&mut io.committed_since_check) && !io.mempool.is_empty() {
                driver.handle(clock.now_ms(), Input::TransactionsWaiting, &mut io)?;
            }
        }
    }
    .await;
    if let Err(e) = &result {
        tracing::error!(error = %e, "consensus driver stopped: the node cannot continue safely");
    }
    result
}
