//! Node metrics in the Prometheus text format (prometheus-client), served by the RPC plugin at
//! `GET /metrics`.
//!
//! | metric | kind | meaning |
//! |---|---|---|
//! | `aether_blocks_committed_total` | counter | blocks committed since start |
//! | `aether_transactions_committed_total` | counter | transactions in those blocks |
//! | `aether_transactions_rejected_total{reason}` | counter | submissions refused, by [`SubmitError::reason`] |
//! | `aether_head_height` | gauge | height of the last committed block |
//! | `aether_mempool_transactions`, `aether_mempool_bytes` | gauge | what the mempool holds |
//! | `aether_block_build_seconds` | histogram | selecting and executing a block's transactions |
//! | `aether_block_commit_seconds` | histogram | writing a block durably (one synced batch) |
//!
//! Durations are measured by the node's I/O layer around the driver, never inside consensus
//! or execution, which stay free of clocks.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::mempool::SubmitError;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

pub struct NodeMetrics {
    registry: Registry,
    blocks: Counter,
    transactions: Counter,
    rejected: Family<Reason, Counter>,
    head_height: Gauge,
    mempool_transactions: Gauge,
    mempool_bytes: Gauge,
    build_seconds: Histogram,
    commit_seconds: Histogram,
    sync_best_peer_height: Gauge,
    syncing: Gauge,
    synced_blocks: Counter,
    network_peers: Gauge,
    /// Caught up with the peers (or has none to catch up with): `/ready` answers 200.
    ready: std::sync::atomic::AtomicBool,
}

impl Default for NodeMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("aether");
        let m = NodeMetrics {
            blocks: Counter::default(),
            transactions: Counter::default(),
            rejected: Family::default(),
            head_height: Gauge::default(),
            mempool_transactions: Gauge::default(),
            mempool_bytes: Gauge::default(),
            // 0.25 ms .. ~8 s
            build_seconds: Histogram::new(exponential_buckets(0.000_25, 2.0, 16)),
            commit_seconds: Histogram::new(exponential_buckets(0.000_25, 2.0, 16)),
            sync_best_peer_height: Gauge::default(),
            syncing: Gauge::default(),
            synced_blocks: Counter::default(),
            network_peers: Gauge::default(),
            ready: std::sync::atomic::AtomicBool::new(false),
            registry: Registry::default(),
        };
        registry.register("blocks_committed", "Blocks committed since start", m.blocks.clone());
        registry.register("transactions_committed", "Transactions in committed blocks", m.transactions.clone());
        registry.register("transactions_rejected", "Submitted transactions refused, by reason", m.rejected.clone());
        registry.register("head_height", "Height of the last committed block", m.head_height.clone());
        registry.register("mempool_transactions", "Transactions held by the mempool", m.mempool_transactions.clone());
        registry.register("mempool_bytes", "Encoded bytes held by the mempool", m.mempool_bytes.clone());
        registry.register("block_build_seconds", "Time to select and execute a block's transactions", m.build_seconds.clone());
        registry.register("block_commit_seconds", "Time to write a block durably", m.commit_seconds.clone());
        registry.register("sync_best_peer_height", "Highest committed height a peer announced", m.sync_best_peer_height.clone());
        registry.register("syncing", "1 while block sync is catching up, else 0", m.syncing.clone());
        registry.register("synced_blocks", "Blocks committed through block sync", m.synced_blocks.clone());
        registry.register("network_peers", "Connected peers", m.network_peers.clone());
        NodeMetrics { registry, ..m }
    }
}

impl NodeMetrics {
    /// The current values in the Prometheus text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // The encoder fails only when its writer does; a String never refuses text.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "metrics could not be encoded");
        }
        out
    }

    pub(crate) fn committed(&self, height: u64, transactions: usize, seconds: f64) {
        self.blocks.inc();
        self.transactions.inc_by(transactions as u64);
        self.head_height.set(height as i64);
        self.commit_seconds.observe(seconds);
    }

    pub(crate) fn built(&self, seconds: f64) {
        self.build_seconds.observe(seconds);
    }

    pub(crate) fn rejected(&self, error: &SubmitError) {
        self.rejected.get_or_create(&Reason { reason: error.reason() }).inc();
    }

    pub(crate) fn mempool(&self, transactions: usize, bytes: usize) {
        self.mempool_transactions.set(transactions as i64);
        self.mempool_bytes.set(bytes as i64);
    }

    pub(crate) fn sync(&self, best_peer_height: u64, syncing: bool, peers: usize) {
        self.sync_best_peer_height.set(best_peer_height as i64);
        self.syncing.set(i64::from(syncing));
        self.network_peers.set(peers as i64);
    }

    /// Whether the node has caught up with its peers (see [`NodeMetrics::set_ready`]).
    pub fn is_ready(&self) -> bool {
        self.ready.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn set_ready(&self, ready: bool) {
        self.ready.store(ready, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn synced(&self, blocks: usize) {
        self.synced_blocks.inc_by(blocks as u64);
    }

    pub(crate) fn head(&self, height: u64) {
        self.head_height.set(height as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_counters_with_reasons() {
        let m = NodeMetrics::default();
        m.committed(7, 3, 0.002);
        m.rejected(&SubmitError::Duplicate(crate::types::Hash::ZERO));
        m.rejected(&SubmitError::Duplicate(crate::types::Hash::ZERO));
        let text = m.encode();
        assert!(text.contains("aether_blocks_committed_total 1"), "{text}");
        assert!(text.contains("aether_transactions_committed_total 3"), "{text}");
        assert!(text.contains("aether_transactions_rejected_total{reason=\"duplicate\"} 2"), "{text}");
        assert!(text.contains("aether_head_height 7"), "{text}");
        assert!(text.contains("aether_block_commit_seconds_count 1"), "{text}");
    }
}
