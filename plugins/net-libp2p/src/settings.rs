//! `[network.libp2p]`: limits and timings. The peers and addresses are `[network]`'s (shared by
//! every network plugin, see `aether_api::network::NetworkContext`).

use std::collections::BTreeMap;
use std::time::Duration;

use aether_api::network::topics::{CONSENSUS_TOPIC, EVIDENCE_TOPIC, MAX_EVIDENCE_BYTES, SYNC_TOPIC, TX_TOPIC};
use serde::{Deserialize, Serialize};

/// Settings of the libp2p plugin. Every field has a default.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Libp2pSettings {
    /// Largest message on any topic (a proposal carries a whole block: 16 MiB plus its header).
    pub max_message_bytes: usize,
    /// Bytes queued for one peer before sends to it fail with `Backpressure`.
    pub max_queued_bytes_per_peer: usize,
    /// Messages queued for one peer, per priority, before sends fail with `Backpressure`.
    pub max_queued_messages_per_peer: usize,
    /// Inbound messages waiting for the node, per topic; more are dropped and counted.
    pub inbox: usize,
    /// A connection with no open stream is closed after this long.
    pub idle_timeout_secs: u64,
    /// Longest wait between two dials of a bootstrap peer (the wait doubles from 250 ms).
    pub max_redial_secs: u64,
    /// How long a misbehaving peer stays blocked.
    pub block_secs: u64,
    /// Misbehaviour score at which a peer is blocked (a malformed or oversize frame scores
    /// this much at once; each message over the rate limit scores 1; the score decays by 1 per
    /// second).
    pub block_score: u32,
    /// Per-topic limits; topics not listed get `default_quota`. Entries given in config
    /// replace the built-in entry of their topic and leave the others.
    #[serde(deserialize_with = "quotas_over_defaults")]
    pub quotas: BTreeMap<String, Quota>,
    pub default_quota: Quota,
    /// Topics published through gossipsub (relayed by peers after their node validated each
    /// message); other topics go straight to connected peers only.
    pub gossip_topics: Vec<String>,
    /// Score a peer takes for relaying a gossiped message its node rejected (a relay no honest
    /// node makes).
    pub gossip_reject_score: u32,
}

/// What one peer may send on one topic.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Sustained messages per second.
    pub per_second: u32,
    /// Messages allowed in a burst above the sustained rate.
    pub burst: u32,
    /// Largest message on the topic.
    pub max_bytes: usize,
}

impl aether_api::registry::PluginConfig for Libp2pSettings {
    const SLOT: aether_api::registry::SlotKind = aether_api::registry::SlotKind::Network;
    const NAME: &'static str = crate::NAME;
}

impl Default for Libp2pSettings {
    fn default() -> Self {
        const MIB: usize = 1024 * 1024;
        let quotas = [
            // HotStuff sends a handful of messages per round per peer, at up to ~50 rounds/s on
            // a fast network; bursts come from fetch replies (32 proposals each) after a node
            // restarts. Measured: 2,000/s blocked honest peers of a restarted validator.
            (CONSENSUS_TOPIC, Quota { per_second: 10_000, burst: 20_000, max_bytes: 17 * MIB }),
            (TX_TOPIC, Quota { per_second: 20_000, burst: 40_000, max_bytes: MIB }),
            (EVIDENCE_TOPIC, Quota { per_second: 100, burst: 200, max_bytes: MAX_EVIDENCE_BYTES }),
            (SYNC_TOPIC, Quota { per_second: 200, burst: 400, max_bytes: 17 * MIB }),
        ]
        .into_iter()
        .map(|(t, q)| (t.to_string(), q))
        .collect();
        Libp2pSettings {
            max_message_bytes: 17 * MIB,
            max_queued_bytes_per_peer: 64 * MIB,
            max_queued_messages_per_peer: 8_192,
            inbox: 8_192,
            idle_timeout_secs: 300,
            max_redial_secs: 10,
            block_secs: 4 * 3600,
            block_score: 100,
            quotas,
            default_quota: Quota { per_second: 1_000, burst: 2_000, max_bytes: MIB },
            gossip_topics: vec![TX_TOPIC.to_string(), EVIDENCE_TOPIC.to_string()],
            gossip_reject_score: 25,
        }
    }
}

fn quotas_over_defaults<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Quota>, D::Error> {
    let mut quotas = Libp2pSettings::default().quotas;
    quotas.extend(BTreeMap::<String, Quota>::deserialize(d)?);
    Ok(quotas)
}

impl Libp2pSettings {
    pub fn check(&self) -> Result<(), String> {
        if self.max_message_bytes == 0 || self.max_queued_bytes_per_peer < self.max_message_bytes {
            return Err("max_message_bytes must be positive and max_queued_bytes_per_peer at least max_message_bytes".into());
        }
        if self.max_queued_messages_per_peer == 0 || self.inbox == 0 || self.block_score == 0 {
            return Err("max_queued_messages_per_peer, inbox and block_score must be positive".into());
        }
        if self.gossip_topics.iter().any(|t| t == CONSENSUS_TOPIC || t == SYNC_TOPIC) {
            return Err(format!(
                "gossip_topics: {CONSENSUS_TOPIC} and {SYNC_TOPIC} need authenticated senders and per-sender order, which relaying breaks"
            ));
        }
        for (topic, q) in self.quotas.iter().chain([(&"default_quota".to_string(), &self.default_quota)]) {
            if q.per_second == 0 || q.burst == 0 || q.max_bytes == 0 {
                return Err(format!("quota for {topic}: per_second, burst and max_bytes must be positive"));
            }
        }
        Ok(())
    }

    pub fn is_gossip(&self, topic: &str) -> bool {
        self.gossip_topics.iter().any(|t| t == topic)
    }

    pub fn quota(&self, topic: &str) -> Quota {
        self.quotas.get(topic).copied().unwrap_or(self.default_quota)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quota_in_config_replaces_only_its_topic() {
        let settings: Libp2pSettings =
            serde_json::from_value(serde_json::json!({ "quotas": { "aether/tx/1": { "per_second": 5, "burst": 5, "max_bytes": 100 } } }))
                .unwrap();
        assert_eq!(settings.quota(TX_TOPIC), Quota { per_second: 5, burst: 5, max_bytes: 100 });
        assert_eq!(settings.quota(CONSENSUS_TOPIC), Libp2pSettings::default().quota(CONSENSUS_TOPIC), "the others keep their defaults");
        let e = serde_json::from_value::<Libp2pSettings>(serde_json::json!({ "quota": {} })).unwrap_err().to_string();
        assert!(e.contains("quota"), "{e}");
    }
}
