//! The plugins that live in the node itself (the `solo` engine, the `fee` and `fifo` mempool
//! policies) and [`Preset`], a named set of plugins with default settings.
//!
//! ```
//! let registry = aether_node::builtins::registry();
//! assert!(registry.consensus.get("solo").is_ok());
//! let err = registry.consensus.get("pbft").err().unwrap();
//! assert_eq!(err.to_string(), r#"unknown consensus engine "pbft" (key `consensus.engine`); known: solo"#);
//! ```

use std::sync::Arc;

use aether_api::consensus::ConsensusEngine;
use aether_api::mempool::OrderingPolicy;
use aether_api::registry::{PluginError, Registry};

use crate::mempool::{FeePriority, Fifo};
use crate::solo::{SoloEngine, SoloSettings};

/// Registers the built-in plugins into `registry`.
pub fn register(r: &mut Registry) {
    r.consensus.register(
        SoloEngine::NAME,
        "one validator seals a block every interval, or early when transactions wait",
        Box::new(|ctx, settings| {
            let s: SoloSettings = settings.parse()?;
            let engine =
                SoloEngine::from_context(ctx, s).map_err(|e| PluginError::Start { plugin: "solo".into(), reason: e.to_string() })?;
            Ok(Box::new(engine) as Box<dyn ConsensusEngine>)
        }),
    );
    r.mempool_policy.register(
        "fee",
        "highest fee first, then arrival order",
        Box::new(|_| Ok(Arc::new(FeePriority) as Arc<dyn OrderingPolicy>)),
    );
    r.mempool_policy.register("fifo", "arrival order regardless of fee", Box::new(|_| Ok(Arc::new(Fifo) as Arc<dyn OrderingPolicy>)));
}

/// A registry holding only the built-in plugins.
pub fn registry() -> Registry {
    let mut r = Registry::new();
    register(&mut r);
    r
}

/// A named set of plugins with default settings: what `aether run --preset NAME` runs.
pub struct Preset {
    pub name: &'static str,
    pub description: &'static str,
    /// Default settings as TOML: the lowest config layer.
    pub defaults: &'static str,
    /// Registers the preset's plugins.
    pub register: fn(&mut Registry),
}

impl Preset {
    pub fn registry(&self) -> Registry {
        let mut r = registry();
        (self.register)(&mut r);
        r
    }
}
