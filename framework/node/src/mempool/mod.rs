//! The mempool: admission checks, per-sender nonce queues, bounded size with eviction, and
//! block candidate selection under a pluggable [`OrderingPolicy`].
//!
//! Admission checks, in order (each failure is a distinct [`SubmitError`]): encoded size,
//! decoding, chain id, minimum fee, duplicate, strict signature, nonce (stale, already
//! pending, or leaving a gap), balance covering this and the sender's pending transactions,
//! and room in the pool, by count and by bytes (a full pool evicts lowest-priority sender tails
//! while the newcomer ranks higher). Only the tail of a sender's queue is ever evicted, so no
//! nonce gap is left behind.
//!
//! Consistency with the ledger: admission reads account state under the pool's lock and
//! ignores queued transactions whose nonce that state has passed, so between a block's commit
//! and [`Mempool::on_committed`] a submission neither counts the block's transactions as
//! pending nor expects their nonces. The commit itself (an fsync) never holds the pool's lock.

mod policy;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

pub use aether_api::mempool::OrderingPolicy;
pub use policy::{FeePriority, Fifo};

use crate::codec;
use crate::types::{Account, Address, Amount, Block, Hash, SignedTransaction};

/// What admission reads of the chain: its id and the committed state of accounts. The ledger
/// is the reader a node uses; the pool needs nothing else of it.
pub trait AccountReader: Send + Sync + 'static {
    fn chain_id(&self) -> &str;
    /// The committed state of `address` (a default account if it has none).
    fn account(&self, address: &Address) -> Result<Account, Box<dyn std::error::Error + Send + Sync>>;
    /// The chain parameters the next block runs under (the gas and fee bounds admission
    /// checks). Readers of chains that never change them need not say.
    fn chain_params(&self) -> Result<crate::chain::ChainParams, Box<dyn std::error::Error + Send + Sync>> {
        Ok(crate::chain::ChainParams::DEFAULT)
    }
}

/// `[mempool]` settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MempoolConfig {
    /// Ordering policy by registered name (`fee`, `fifo`, or a plugin's).
    pub policy: String,
    /// Most transactions held at once.
    pub max_txs: usize,
    /// Most bytes (encoded transactions) held at once.
    pub max_bytes: usize,
    /// Largest encoded transaction accepted.
    pub max_tx_bytes: usize,
    /// Smallest fee accepted.
    #[serde(with = "crate::types::serde_helpers::amount")]
    pub min_fee: Amount,
    /// Most transactions offered for one block.
    pub max_block_txs: usize,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        MempoolConfig {
            policy: "fee".into(),
            max_txs: 50_000,
            max_bytes: 128 * 1024 * 1024,
            // Room for a contract deploy: code up to 512 KiB plus its init input.
            max_tx_bytes: 640 * 1024,
            min_fee: 1,
            max_block_txs: 5_000,
        }
    }
}

/// Why a transaction was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("transaction is {len} bytes; the limit is {max}")]
    Oversize { len: usize, max: usize },
    #[error("transaction bytes do not decode: {0}")]
    Undecodable(String),
    #[error("wrong chain id {got:?}; this chain is {expected:?}")]
    WrongChain { expected: String, got: String },
    #[error("fee {fee} is below the minimum {min}")]
    FeeTooLow { fee: Amount, min: Amount },
    #[error("transaction {0} is already in the mempool")]
    Duplicate(Hash),
    #[error("bad signature: {0}")]
    BadSignature(String),
    #[error("nonce {got} is stale: the account's next nonce is {expected}")]
    StaleNonce { expected: u64, got: u64 },
    #[error("nonce {got} is in the future: the next acceptable nonce for this sender is {expected}")]
    FutureNonce { expected: u64, got: u64 },
    #[error("a transaction with nonce {0} from this sender is already pending")]
    NonceInPool(u64),
    #[error("balance {available} (after pending transactions) cannot pay {needed}")]
    InsufficientBalance { available: Amount, needed: Amount },
    #[error("mempool is full and this transaction ranks below everything it could evict (the lowest-ranked pending one has priority {min_priority}; under the fee policy priority is the fee)")]
    PoolFull { min_priority: u128 },
    #[error("cannot read account state: {0}")]
    State(String),
    #[error("gas limit {got} is above the most one transaction may ask for ({max})")]
    GasLimitTooHigh { got: u64, max: u64 },
    #[error("the node has shut down")]
    NodeStopped,
}

impl SubmitError {
    /// A short snake_case name of the reason (the `reason` label of the rejection metric).
    pub fn reason(&self) -> &'static str {
        match self {
            SubmitError::Oversize { .. } => "oversize",
            SubmitError::Undecodable(_) => "undecodable",
            SubmitError::WrongChain { .. } => "wrong_chain",
            SubmitError::FeeTooLow { .. } => "fee_too_low",
            SubmitError::Duplicate(_) => "duplicate",
            SubmitError::BadSignature(_) => "bad_signature",
            SubmitError::StaleNonce { .. } => "stale_nonce",
            SubmitError::FutureNonce { .. } => "future_nonce",
            SubmitError::NonceInPool(_) => "nonce_in_pool",
            SubmitError::InsufficientBalance { .. } => "insufficient_balance",
            SubmitError::PoolFull { .. } => "pool_full",
            SubmitError::State(_) => "state",
            SubmitError::GasLimitTooHigh { .. } => "gas_limit_too_high",
            SubmitError::NodeStopped => "node_stopped",
        }
    }
    /// A stable machine-readable code per reason (used as the JSON-RPC error code offset).
    pub fn code(&self) -> i32 {
        match self {
            SubmitError::Oversize { .. } => 1,
            SubmitError::Undecodable(_) => 2,
            SubmitError::WrongChain { .. } => 3,
            SubmitError::FeeTooLow { .. } => 4,
            SubmitError::Duplicate(_) => 5,
            SubmitError::BadSignature(_) => 6,
            SubmitError::StaleNonce { .. } => 7,
            SubmitError::FutureNonce { .. } => 8,
            SubmitError::NonceInPool(_) => 9,
            SubmitError::InsufficientBalance { .. } => 10,
            SubmitError::PoolFull { .. } => 11,
            SubmitError::State(_) => 12,
            SubmitError::GasLimitTooHigh { .. } => 13,
            SubmitError::NodeStopped => 14,
        }
    }
}

struct PoolTx {
    tx: SignedTransaction,
    sender: Address,
    priority: u128,
    seq: u64,
    bytes: usize,
}

impl PoolTx {
    fn tail_key(&self, hash: Hash) -> TailKey {
        (self.priority, Reverse(self.seq), hash)
    }
}

/// Eviction order: lowest priority first, newest first among equals.
type TailKey = (u128, Reverse<u64>, Hash);

/// One sender's pending transactions, contiguous in nonce from the account's nonce.
#[derive(Default)]
struct SenderQueue {
    txs: BTreeMap<u64, Hash>,
    /// Sum of the queued transactions' [`SignedTransaction::max_cost`].
    cost: Amount,
}

#[derive(Default)]
struct Inner {
    by_hash: HashMap<Hash, PoolTx>,
    senders: HashMap<Address, SenderQueue>,
    /// The last transaction of each sender: the only eviction candidates.
    tails: BTreeSet<TailKey>,
    next_seq: u64,
    bytes: usize,
    /// Transactions handed out by the last [`Mempool::select`]: they may be in a block being
    /// built or committed, so they are never evicted (a sender could otherwise reuse their
    /// nonce). Replaced by the next selection, cleared by a commit.
    in_flight: HashSet<Hash>,
}

impl Inner {
    fn tail_of(&self, sender: &Address) -> Option<TailKey> {
        let h = *self.senders.get(sender)?.txs.values().next_back()?;
        Some(self.by_hash[&h].tail_key(h))
    }

    fn insert(&mut self, hash: Hash, t: PoolTx) {
        if let Some(old_tail) = self.tail_of(&t.sender) {
            self.tails.remove(&old_tail);
        }
        self.tails.insert(t.tail_key(hash));
        let q = self.senders.entry(t.sender).or_default();
        q.txs.insert(t.tx.body.nonce, hash);
        q.cost = q.cost.saturating_add(t.tx.max_cost());
        self.bytes += t.bytes;
        self.by_hash.insert(hash, t);
    }

    /// Removes `hash`; if it was its sender's tail, the previous one becomes the tail.
    fn remove(&mut self, hash: &Hash) -> Option<PoolTx> {
        let t = self.by_hash.remove(hash)?;
        self.bytes -= t.bytes;
        let was_tail = self.tails.remove(&t.tail_key(*hash));
        if let Some(q) = self.senders.get_mut(&t.sender) {
            q.txs.remove(&t.tx.body.nonce);
            q.cost = q.cost.saturating_sub(t.tx.max_cost());
            if q.txs.is_empty() {
                self.senders.remove(&t.sender);
            } else if was_tail {
                if let Some(key) = self.tail_of(&t.sender) {
                    self.tails.insert(key);
                }
            }
        }
        Some(t)
    }

    /// Removes `hash` and every later transaction of its sender (they would leave a gap).
    fn remove_with_successors(&mut self, hash: &Hash) {
        let Some(t) = self.by_hash.get(hash) else { return };
        let (sender, nonce) = (t.sender, t.tx.body.nonce);
        let doomed: Vec<Hash> = match self.senders.get(&sender) {
            Some(q) => q.txs.range(nonce..).map(|(_, h)| *h).collect(),
            None => return,
        };
        for h in doomed.iter().rev() {
            self.remove(h);
        }
    }
}

pub struct Mempool {
    config: MempoolConfig,
    chain_id: String,
    ledger: Arc<dyn AccountReader>,
    policy: Arc<dyn OrderingPolicy>,
    /// Held while reading account state for admission and while a block commits, so
    /// admission never sees the ledger and the pool disagree about a committed block.
    inner: Mutex<Inner>,
    ready: Arc<Notify>,
}

impl Mempool {
    pub fn new(config: MempoolConfig, ledger: Arc<dyn AccountReader>, policy: Arc<dyn OrderingPolicy>) -> Mempool {
        Mempool {
            chain_id: ledger.chain_id().to_string(),
            config,
            ledger,
            policy,
            inner: Mutex::new(Inner::default()),
            ready: Arc::new(Notify::new()),
        }
    }

    pub fn config(&self) -> &MempoolConfig {
        &self.config
    }

    pub fn policy_name(&self) -> &'static str {
        self.policy.name()
    }

    /// Notified whenever a transaction is admitted.
    pub fn ready_signal(&self) -> Arc<Notify> {
        self.ready.clone()
    }

    pub fn len(&self) -> usize {
        self.inner.lock().by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total encoded size of the held transactions.
    pub fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }

    pub fn contains(&self, hash: &Hash) -> bool {
        self.inner.lock().by_hash.contains_key(hash)
    }

    /// The nonce the sender's next transaction should carry, counting pending ones; `None`
    /// when the pool holds nothing from `sender`.
    pub fn next_nonce(&self, sender: &Address) -> Option<u64> {
        self.inner.lock().senders.get(sender).and_then(|q| q.txs.keys().next_back()).map(|n| n + 1)
    }

    /// Checks and admits an encoded transaction; returns its hash.
    pub fn submit(&self, bytes: &[u8]) -> Result<Hash, SubmitError> {
        let max = self.config.max_tx_bytes;
        if bytes.len() > max {
            return Err(SubmitError::Oversize { len: bytes.len(), max });
        }
        let tx: SignedTransaction = codec::decode("transaction", bytes, max).map_err(|e| SubmitError::Undecodable(e.to_string()))?;
        self.admit(tx, bytes.len())
    }

    /// Like [`Mempool::submit`] for a decoded transaction.
    pub fn submit_decoded(&self, tx: SignedTransaction) -> Result<Hash, SubmitError> {
        let len = codec::encode(&tx).len();
        if len > self.config.max_tx_bytes {
            return Err(SubmitError::Oversize { len, max: self.config.max_tx_bytes });
        }
        self.admit(tx, len)
    }

    fn admit(&self, tx: SignedTransaction, bytes: usize) -> Result<Hash, SubmitError> {
        if tx.body.chain_id != self.chain_id {
            return Err(SubmitError::WrongChain { expected: self.chain_id.clone(), got: tx.body.chain_id.clone() });
        }
        // Contract transactions pay at least for their gas limit, and ask for no more than one
        // transaction may, under the head's chain parameters: checked here so they are never
        // admitted only to be refused by blocks.
        let gas_limit = tx.body.action.gas_limit();
        let params = self.ledger.chain_params().map_err(|e| SubmitError::State(e.to_string()))?;
        let max_gas = crate::ledger::max_tx_gas(&params);
        if gas_limit > max_gas {
            return Err(SubmitError::GasLimitTooHigh { got: gas_limit, max: max_gas });
        }
        let min = self.config.min_fee.max(params.min_fee(gas_limit));
        if tx.body.fee < min {
            return Err(SubmitError::FeeTooLow { fee: tx.body.fee, min });
        }
        let hash = tx.hash();
        if self.contains(&hash) {
            return Err(SubmitError::Duplicate(hash));
        }
        // The expensive check runs outside the lock.
        tx.verify_signature().map_err(|e| SubmitError::BadSignature(e.to_string()))?;
        let sender = tx.sender();

        let mut inner = self.inner.lock();
        if inner.by_hash.contains_key(&hash) {
            return Err(SubmitError::Duplicate(hash));
        }
        let account = self.ledger.account(&sender).map_err(|e| SubmitError::State(e.to_string()))?;
        let nonce = tx.body.nonce;
        if nonce < account.nonce {
            return Err(SubmitError::StaleNonce { expected: account.nonce, got: nonce });
        }
        // Entries below the account's nonce were just committed (the cleanup after a commit has
        // not run yet): they are neither pending nor owed any more.
        let (expected, pending_cost) = match inner.senders.get(&sender) {
            Some(q) => {
                let committed: Amount = q.txs.range(..account.nonce).map(|(_, h)| inner.by_hash[h].tx.max_cost()).sum();
                (q.txs.keys().next_back().map_or(account.nonce, |n| (n + 1).max(account.nonce)), q.cost.saturating_sub(committed))
            }
            None => (account.nonce, 0),
        };
        if nonce < expected {
            return Err(SubmitError::NonceInPool(nonce));
        }
        if nonce > expected {
            return Err(SubmitError::FutureNonce { expected, got: nonce });
        }
        let available = account.balance.saturating_sub(pending_cost);
        if available < tx.max_cost() {
            return Err(SubmitError::InsufficientBalance { available, needed: tx.max_cost() });
        }
        let seq = inner.next_seq;
        let priority = self.policy.priority(&tx, seq);
        while inner.by_hash.len() >= self.config.max_txs || inner.bytes + bytes > self.config.max_bytes {
            let victim = inner.tails.iter().find(|(_, _, h)| inner.by_hash[h].sender != sender && !inner.in_flight.contains(h)).copied();
            match victim {
                Some((p, _, h)) if p < priority => {
                    inner.remove(&h);
                    tracing::debug!(evicted = %h, "mempool full: evicted lowest-priority tail");
                }
                Some((p, ..)) => return Err(SubmitError::PoolFull { min_priority: p }),
                None => return Err(SubmitError::PoolFull { min_priority: priority }),
            }
        }
        inner.next_seq += 1;
        inner.insert(hash, PoolTx { tx, sender, priority, seq, bytes });
        drop(inner);
        self.ready.notify_one();
        Ok(hash)
    }

    /// Up to `max` transactions for a block: best-priority sender heads first, each sender's
    /// transactions in nonce order. Nothing is removed until the block commits.
    pub fn select(&self, max: usize) -> Vec<SignedTransaction> {
        let mut inner = self.inner.lock();
        let inner = &mut *inner;
        inner.in_flight.clear();
        let mut heap: BinaryHeap<(u128, Reverse<u64>, Address, u64)> = BinaryHeap::new();
        for (sender, q) in &inner.senders {
            if let Some((nonce, h)) = q.txs.iter().next() {
                let t = &inner.by_hash[h];
                heap.push((t.priority, Reverse(t.seq), *sender, *nonce));
            }
        }
        let mut out = Vec::with_capacity(max.min(inner.by_hash.len()));
        while out.len() < max {
            let Some((_, _, sender, nonce)) = heap.pop() else { break };
            let q = &inner.senders[&sender];
            let hash = q.txs[&nonce];
            inner.in_flight.insert(hash);
            out.push(inner.by_hash[&hash].tx.clone());
            if let Some((next_nonce, h)) = q.txs.range(nonce + 1..).next() {
                let t = &inner.by_hash[h];
                heap.push((t.priority, Reverse(t.seq), sender, *next_nonce));
            }
        }
        out
    }

    /// Call after `block` is committed to the ledger: drops its transactions and any of their
    /// senders' transactions whose nonce the committed state has passed.
    pub fn on_committed(&self, block: &Block) {
        let mut inner = self.inner.lock();
        inner.in_flight.clear();
        let mut touched = BTreeSet::new();
        for tx in &block.transactions {
            inner.remove(&tx.hash());
            touched.insert(tx.sender());
        }
        for sender in touched {
            let Ok(account) = self.ledger.account(&sender) else { continue };
            let stale: Vec<Hash> = match inner.senders.get(&sender) {
                Some(q) => q.txs.range(..account.nonce).map(|(_, h)| *h).collect(),
                None => continue,
            };
            for h in stale {
                inner.remove(&h);
            }
            // Defensive: what remains must be affordable; drop from the tail until it is.
            while let Some(q) = inner.senders.get(&sender) {
                if q.cost <= account.balance {
                    break;
                }
                let Some(&tail) = q.txs.values().next_back() else { break };
                tracing::warn!(%sender, tx = %tail, "pending transactions exceed the committed balance; dropping the last");
                inner.remove(&tail);
            }
        }
    }

    /// Checks the pool's internal invariants, returning the first one broken: every sender
    /// queue is non-empty and nonce-contiguous from its account's committed nonce, its running
    /// cost equals the sum of its transactions' costs, the tail set holds exactly each sender's
    /// last transaction, and the byte and count totals match. O(pool size); for tests and
    /// debugging.
    pub fn check_invariants(&self) -> Result<(), String> {
        let inner = self.inner.lock();
        let mut count = 0;
        let mut tails = BTreeSet::new();
        for (sender, q) in &inner.senders {
            let first = *q.txs.keys().next().ok_or(format!("sender {sender} has an empty queue"))?;
            let account = self.ledger.account(sender).map_err(|e| e.to_string())?;
            if first != account.nonce {
                return Err(format!("sender {sender}: queue starts at nonce {first}, account nonce is {}", account.nonce));
            }
            let mut cost: Amount = 0;
            for (i, (nonce, h)) in q.txs.iter().enumerate() {
                if *nonce != first + i as u64 {
                    return Err(format!("sender {sender}: nonce gap before {nonce}"));
                }
                let t = inner.by_hash.get(h).ok_or(format!("queued {h} is not in by_hash"))?;
                if t.sender != *sender || t.tx.body.nonce != *nonce {
                    return Err(format!("{h} is filed under the wrong sender or nonce"));
                }
                cost = cost.saturating_add(t.tx.max_cost());
                count += 1;
            }
            if cost != q.cost {
                return Err(format!("sender {sender}: running cost {} but transactions cost {cost}", q.cost));
            }
            if cost > account.balance {
                return Err(format!("sender {sender}: pending cost {cost} exceeds balance {}", account.balance));
            }
            tails.insert(inner.tail_of(sender).ok_or(format!("sender {sender} has no tail"))?);
        }
        if count != inner.by_hash.len() {
            return Err(format!("{} transactions indexed, {count} queued", inner.by_hash.len()));
        }
        if tails != inner.tails {
            return Err("tail set does not match the senders' last transactions".into());
        }
        let bytes: usize = inner.by_hash.values().map(|t| t.bytes).sum();
        if bytes != inner.bytes {
            return Err(format!("byte total {} but transactions sum to {bytes}", inner.bytes));
        }
        if inner.by_hash.len() > self.config.max_txs || inner.bytes > self.config.max_bytes {
            return Err("pool exceeds its limits".into());
        }
        Ok(())
    }

    /// Drops transactions a block builder found inapplicable, with their senders' later
    /// transactions (which would otherwise wait forever behind a gap).
    pub fn drop_rejected(&self, hashes: &[Hash]) {
        let mut inner = self.inner.lock();
        for h in hashes {
            inner.remove_with_successors(h);
        }
    }
}
