//! Mempool ordering policies: which ready transaction goes into a block first, and which is
//! evicted first when the pool is full.

use crate::types::SignedTransaction;

/// Orders transactions across senders (within one sender, nonce order always rules).
///
/// `priority` is computed once, at admission, and must depend only on the transaction and its
/// arrival sequence number (so the pool can index it). Higher priority is included first and
/// evicted last.
pub trait OrderingPolicy: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn priority(&self, tx: &SignedTransaction, arrival_seq: u64) -> u128;
}

/// Highest fee first; among equal fees, first come first served. The default.
#[derive(Debug, Default, Clone, Copy)]
pub struct FeePriority;

impl OrderingPolicy for FeePriority {
    fn name(&self) -> &'static str {
        "fee"
    }
    fn priority(&self, tx: &SignedTransaction, _arrival_seq: u64) -> u128 {
        tx.body.fee
    }
}

/// Strict arrival order, whatever the fee.
#[derive(Debug, Default, Clone, Copy)]
pub struct Fifo;

impl OrderingPolicy for Fifo {
    fn name(&self) -> &'static str {
        "fifo"
    }
    fn priority(&self, _tx: &SignedTransaction, arrival_seq: u64) -> u128 {
        u128::MAX - arrival_seq as u128
    }
}
