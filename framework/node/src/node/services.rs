//! Background services beside the driver: admitting gossiped transactions, and pruning
//! history beyond the retention settings. Each runs on its own thread until told to stop.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::{NodeError, NodeMetrics};
use crate::ledger::{Ledger, Retention};
use crate::mempool::{Mempool, SubmitError};
use crate::network::{InboundMessage, Network, Verdict};

/// Admits transactions peers gossip (topic [`super::TX_TOPIC`]) until `stop`, and tells the
/// network which to relay ([`gossip_verdict`]): only those the mempool admitted. Refusals
/// (duplicates are common: several peers relay one transaction) are counted in the metrics
/// like any other.
pub(super) fn spawn_tx_gossip(
    mempool: Arc<Mempool>,
    metrics: Arc<NodeMetrics>,
    network: Arc<dyn Network>,
    mut inbound: mpsc::Receiver<InboundMessage>,
    mut stop: watch::Receiver<bool>,
) -> Result<std::thread::JoinHandle<()>, NodeError> {
    let rt =
        tokio::runtime::Builder::new_current_thread().build().map_err(|source| NodeError::Thread { name: "transaction gossip", source })?;
    let thread = std::thread::Builder::new().name("aether-tx-gossip".into()).spawn(move || {
        rt.block_on(async move {
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    m = inbound.recv() => match m {
                        None => return,
                        Some(m) => {
                            let verdict = match mempool.submit(&m.bytes) {
                                Ok(_) => {
                                    metrics.mempool(mempool.len(), mempool.bytes());
                                    Verdict::Accept
                                }
                                Err(e) => {
                                    metrics.rejected(&e);
                                    gossip_verdict(&e)
                                }
                            };
                            network.validated(&m, verdict);
                        }
                    },
                }
            }
        })
    });
    thread.map_err(|source| NodeError::Thread { name: "transaction gossip", source })
}

/// Whether a relayed transaction the mempool refused shows a dishonest relay: only what no
/// honest node admits (and so never relays) does; the rest depends on this node's view (its
/// minimum fee, its pool, nonces already used).
pub(super) fn gossip_verdict(error: &SubmitError) -> Verdict {
    match error {
        SubmitError::Undecodable(_)
        | SubmitError::WrongChain { .. }
        | SubmitError::BadSignature(_)
        | SubmitError::GasLimitTooHigh { .. } => Verdict::Reject,
        // The mempool's size limit is this node's setting; the network already refuses what
        // is over the topic's limit.
        SubmitError::Oversize { .. }
        | SubmitError::FeeTooLow { .. }
        | SubmitError::Duplicate(_)
        | SubmitError::StaleNonce { .. }
        | SubmitError::FutureNonce { .. }
        | SubmitError::NonceInPool(_)
        | SubmitError::InsufficientBalance { .. }
        | SubmitError::PoolFull { .. }
        | SubmitError::State(_)
        | SubmitError::NodeStopped => Verdict::Ignore,
    }
}

/// Removes history beyond `retention` in the background, after each new head.
pub(super) fn spawn_pruner(
    ledger: Arc<Ledger>,
    retention: Retention,
    stop: watch::Receiver<bool>,
) -> Result<std::thread::JoinHandle<()>, NodeError> {
    let thread = std::thread::Builder::new().name("aether-pruner".into()).spawn(move || {
        let mut pruned_at = None;
        // Stops when told to, or when the node's side of the channel is gone (a launch that
        // failed after this thread started).
        while !*stop.borrow() && stop.has_changed().is_ok() {
            let head = ledger.head().block.height;
            if pruned_at != Some(head) {
                // Bounded steps, so a stop request is noticed within one step.
                loop {
                    match ledger.prune(&retention, 10_000) {
                        Ok(p) if p.done => break,
                        Ok(_) if *stop.borrow() => return,
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "pruning failed; retrying after the next block");
                            break;
                        }
                    }
                }
                pruned_at = Some(head);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    thread.map_err(|source| NodeError::Thread { name: "pruning", source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Hash;

    /// Only refusals no honest relay causes count against the relay; the rest depend on this
    /// node's view and must not get honest peers blocked.
    #[test]
    fn only_what_no_honest_node_admits_counts_against_the_relay() {
        let reject = [
            SubmitError::Undecodable("x".into()),
            SubmitError::WrongChain { expected: "a".into(), got: "b".into() },
            SubmitError::BadSignature("x".into()),
            SubmitError::GasLimitTooHigh { got: 2, max: 1 },
        ];
        let ignore = [
            SubmitError::Oversize { len: 2, max: 1 },
            SubmitError::FeeTooLow { fee: 1, min: 2 },
            SubmitError::Duplicate(Hash::ZERO),
            SubmitError::StaleNonce { expected: 2, got: 1 },
            SubmitError::FutureNonce { expected: 1, got: 9 },
            SubmitError::NonceInPool(1),
            SubmitError::InsufficientBalance { available: 1, needed: 2 },
            SubmitError::PoolFull { min_priority: 1 },
            SubmitError::State("x".into()),
        ];
        for e in &reject {
            assert_eq!(gossip_verdict(e), Verdict::Reject, "{e}");
        }
        for e in &ignore {
            assert_eq!(gossip_verdict(e), Verdict::Ignore, "{e}");
        }
    }
}
