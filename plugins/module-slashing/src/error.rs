//! The module's errors. A failed `init_genesis` stops the node with the message; a failed
//! hook is reverted and reported by the ledger as a `hook_failed` event; a failed query is the
//! query's answer.

use aether_api::module::ModuleError;

/// Why genesis, the hook or a query failed. One bad piece of evidence is never an error: it
/// is reported by an event and the hook goes on (see [`crate::process`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlashingError {
    /// The context refused (out of gas above all): passed on unchanged.
    #[error(transparent)]
    Context(#[from] ModuleError),
    #[error("slashing genesis params: {0}")]
    Params(String),
    #[error("slashing is not initialised (its init_genesis did not run)")]
    NotInitialised,
    #[error("stored {0} does not decode: the module's state is corrupt")]
    Corrupt(&'static str),
    #[error("the validator set of epoch {0}, the block's own epoch, is not recorded")]
    NoValidatorSet(u64),
    #[error("{what} must be {expected} bytes; got {got}")]
    BadRequest { what: &'static str, expected: usize, got: usize },
}

impl From<SlashingError> for ModuleError {
    fn from(e: SlashingError) -> ModuleError {
        match e {
            SlashingError::Context(inner) => inner,
            SlashingError::BadRequest { .. } => ModuleError::BadCall(e.to_string()),
            other => ModuleError::Failed(other.to_string()),
        }
    }
}

/// Shorthand for the module's results.
pub type Result<T, E = SlashingError> = std::result::Result<T, E>;
