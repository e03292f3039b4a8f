//! The mempool-policy slot: which ready transaction goes into a block first, and which is
//! evicted first when the pool is full. The built-in `fee` and `fifo` policies live in
//! `aether-node`'s mempool.

use aether_primitives::types::SignedTransaction;
/// Orders transactions across senders (within one sender, nonce order always rules).
///
/// `priority` is computed once, at admission, and must depend only on the transaction and its
/// arrival sequence number (so the pool can index it). Higher priority is included first and
/// evicted last.
pub trait OrderingPolicy: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn priority(&self, tx: &SignedTransaction, arrival_seq: u64) -> u128;
}
