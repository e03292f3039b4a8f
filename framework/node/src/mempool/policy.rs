//! The built-in ordering policies (`fee`, `fifo`) for the [`OrderingPolicy`] slot.

use aether_api::mempool::OrderingPolicy;
use aether_primitives::types::SignedTransaction;

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
