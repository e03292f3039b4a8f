//! The data-availability slot: get a block's bytes to every validator, fetch blocks by hash.
//!
//! Status: trait only. Implemented later by gossip DA (whole blocks over the network plugin)
//! and Turbine (erasure-coded shreds over QUIC down a stake-weighted tree).
//!
//! Consensus engines deal in block hashes and may leave block bodies to this slot: the
//! proposer disseminates, replicas wait for availability before verifying.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::mpsc;

use crate::types::Hash;

/// A boxed future that can move between threads (what `futures::future::BoxFuture` is).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, thiserror::Error)]
pub enum DaError {
    #[error("block {0} is not available from any peer")]
    Unavailable(Hash),
    #[error("bytes received for block {expected} hash to {actual}")]
    HashMismatch { expected: Hash, actual: Hash },
    #[error("block of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("the availability stream was already taken")]
    AlreadySubscribed,
    #[error("data availability error: {0}")]
    Transport(String),
}

/// A data-availability plugin.
///
/// Guarantees expected of implementations: bytes delivered for a hash are checked against it
/// (the plugin is told how to hash via the block codec, so it never hands out unverified
/// data); `disseminate` returns once the work is queued, never after network round trips;
/// memory is bounded (old blocks are dropped once committed and pruned).
pub trait DataAvailability: Send + Sync + 'static {
    /// Starts spreading `bytes` (an encoded block whose header hash is `hash`) to validators.
    fn disseminate(&self, hash: Hash, bytes: Vec<u8>) -> Result<(), DaError>;

    /// The block's bytes, from local cache or peers.
    fn fetch(&self, hash: Hash) -> BoxFuture<'static, Result<Vec<u8>, DaError>>;

    /// Blocks that became available locally, as `(hash, bytes)`. Taken once.
    fn available(&self) -> Result<mpsc::Receiver<(Hash, Vec<u8>)>, DaError>;
}
