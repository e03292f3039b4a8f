//! The plugins that live in the node itself (the `solo` engine, the `fee` and `fifo` mempool
//! policies) and [`Preset`], a named set of plugins with default settings.
//!
//! ```
//! let registry = aether_node::builtins::registry();
//! assert!(registry.consensus.get("solo").is_ok());
//! let err = registry.consensus.get("pbft").err().unwrap();
//! assert_eq!(err.to_string(), r#"unknown consensus engine "pbft" (key `consensus.engine`); known: solo"#);
//! ```

use std::borrow::Cow;
use std::sync::Arc;

use aether_api::consensus::ConsensusEngine;
use aether_api::mempool::OrderingPolicy;
use aether_api::registry::{PluginError, Registry};

use crate::mempool::{FeePriority, Fifo};
use crate::solo::{SoloEngine, SoloSettings};

/// Registers the built-in plugins into `registry`.
pub fn register(r: &mut Registry) {
    r.register_consensus_key_check(SoloEngine::NAME, |key| {
        let key: [u8; 32] = key.try_into().map_err(|_| format!("{} bytes; a solo consensus key is an ed25519 key of 32", key.len()))?;
        crate::types::PublicKey(key).check().map_err(|e| e.to_string())
    });
    r.register_certificate_signers(SoloEngine::NAME, crate::solo::certificate_signers);
    r.consensus.register(
        SoloEngine::NAME,
        "one validator seals a block every interval, or early when transactions wait",
        std::sync::Arc::new(|ctx, settings| {
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

/// A named set of plugins with default settings: what `aether run --preset NAME` runs, and
/// what a chain builder extends rather than restates.
///
/// A preset is layers: the built-in plugins, then each `with_plugins` in order (a later one
/// registering a name replaces the earlier plugin); its defaults are TOML layers, lowest
/// first, under the config file, the environment and the command line.
///
/// ```
/// use aether_node::builtins::Preset;
/// let base = Preset::new("solo-chain", "one validator")
///     .with_defaults("[chain]\ngenesis = \"genesis.json\"\n[consensus]\nengine = \"solo\"\n");
/// // Extending: one more layer of defaults and a new name; the base is untouched.
/// let mine = base.clone().renamed("my-chain", "solo, slower blocks")
///     .with_defaults("[consensus.solo]\nblock_interval_ms = 5000\n");
/// assert_eq!(mine.defaults().len(), 2);
/// assert_eq!(base.name(), "solo-chain");
/// assert!(mine.registry().consensus.get("solo").is_ok());
/// ```
/// One layer of a preset's plugins.
type RegisterFn = Arc<dyn Fn(&mut Registry) + Send + Sync>;

#[derive(Clone)]
pub struct Preset {
    name: String,
    description: String,
    defaults: Vec<Cow<'static, str>>,
    plugins: Vec<RegisterFn>,
}

impl Preset {
    /// A preset holding only the built-in plugins and no defaults.
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> Preset {
        Preset { name: name.into(), description: description.into(), defaults: Vec::new(), plugins: Vec::new() }
    }

    /// Adds a layer of plugins (a plugin crate's `register` function, or a closure).
    pub fn with_plugins(mut self, register: impl Fn(&mut Registry) + Send + Sync + 'static) -> Preset {
        self.plugins.push(Arc::new(register));
        self
    }

    /// Adds a layer of default settings (TOML) above the earlier ones.
    pub fn with_defaults(mut self, toml: impl Into<Cow<'static, str>>) -> Preset {
        self.defaults.push(toml.into());
        self
    }

    /// The same plugins and defaults under another name.
    pub fn renamed(mut self, name: impl Into<String>, description: impl Into<String>) -> Preset {
        self.name = name.into();
        self.description = description.into();
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    /// The default layers, lowest first.
    pub fn defaults(&self) -> Vec<&str> {
        self.defaults.iter().map(|d| d.as_ref()).collect()
    }

    /// A registry with the built-ins and this preset's plugins.
    pub fn registry(&self) -> Registry {
        let mut r = registry();
        for register in &self.plugins {
            register(&mut r);
        }
        r
    }
}

impl std::fmt::Debug for Preset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Preset")
            .field("name", &self.name)
            .field("defaults", &self.defaults)
            .field("plugin_layers", &self.plugins.len())
            .finish()
    }
}
