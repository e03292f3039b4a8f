//! The state contracts see — accounts, contract storage, code — with nested checkpoints so a
//! failed call's writes and transfers are undone exactly.
//!
//! [`Journal`] layers a stack of [`Changes`] over a [`StateReader`] (the committed state, or
//! the ledger's view through uncommitted blocks). The bottom layer collects what a block
//! changes; each call opens a checkpoint above it, merged down when the call returns and
//! dropped when it does not.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use crate::types::{Account, Address, Amount, Hash};

/// Writes to the state: new account values, storage entries (`None` = removed), new code.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub accounts: BTreeMap<Address, Account>,
    pub storage: BTreeMap<(Address, Vec<u8>), Option<Vec<u8>>>,
    pub code: BTreeMap<Hash, Arc<[u8]>>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty() && self.storage.is_empty() && self.code.is_empty()
    }

    /// Applies `newer` on top of these changes.
    pub fn merge(&mut self, newer: Changes) {
        self.accounts.extend(newer.accounts);
        self.storage.extend(newer.storage);
        self.code.extend(newer.code);
    }
}

/// Read access to the state below a [`Journal`].
pub trait StateReader {
    type Error;
    fn account(&self, address: &Address) -> Result<Account, Self::Error>;
    fn storage(&self, contract: &Address, key: &[u8]) -> Result<Option<Vec<u8>>, Self::Error>;
    fn code(&self, hash: &Hash) -> Result<Option<Arc<[u8]>>, Self::Error>;
    /// The first key of `contract`'s storage that starts with `prefix` and is above `after`
    /// (or the first with `prefix` when `after` is `None`), holding a value, in byte order.
    fn next_storage_key(&self, contract: &Address, prefix: &[u8], after: Option<&[u8]>) -> Result<Option<Vec<u8>>, Self::Error>;
}

/// The first key of `changes`' storage for `contract` with `prefix` above `after` (deleted
/// entries included: the caller decides what a deletion hides).
pub fn next_changed_key(changes: &Changes, contract: &Address, prefix: &[u8], after: Option<&[u8]>) -> Option<Vec<u8>> {
    use std::ops::Bound;
    // A cursor below the prefix starts at the prefix.
    let from = match after {
        Some(a) if a >= prefix => Bound::Excluded((*contract, a.to_vec())),
        _ => Bound::Included((*contract, prefix.to_vec())),
    };
    changes
        .storage
        .range((from, Bound::Unbounded))
        .map(|((c, k), _)| (c, k))
        .take_while(|(c, k)| *c == contract && k.starts_with(prefix))
        .map(|(_, k)| k.clone())
        .next()
}

/// An empty state: everything a test or benchmark needs lives in the journal's bottom layer.
#[derive(Clone, Copy, Debug, Default)]
pub struct EmptyState;

impl StateReader for EmptyState {
    type Error = Infallible;
    fn account(&self, _: &Address) -> Result<Account, Infallible> {
        Ok(Account::default())
    }
    fn storage(&self, _: &Address, _: &[u8]) -> Result<Option<Vec<u8>>, Infallible> {
        Ok(None)
    }
    fn code(&self, _: &Hash) -> Result<Option<Arc<[u8]>>, Infallible> {
        Ok(None)
    }
    fn next_storage_key(&self, _: &Address, _: &[u8], _: Option<&[u8]>) -> Result<Option<Vec<u8>>, Infallible> {
        Ok(None)
    }
}

/// An in-memory state for tests, benchmarks and the conformance suite.
pub type MemoryState = Journal<EmptyState>;

/// Changes layered over a reader, with nested checkpoints.
pub struct Journal<R: StateReader> {
    base: R,
    /// Everything kept so far.
    kept: Changes,
    /// One layer per open checkpoint, innermost last.
    layers: Vec<Changes>,
    /// The first read error: execution continues on default values and the error is returned
    /// by [`Journal::into_changes`], so a failing disk can never pass for contract behaviour.
    error: Option<R::Error>,
}

impl Default for Journal<EmptyState> {
    fn default() -> Self {
        Journal::new(EmptyState)
    }
}

impl<R: StateReader> Journal<R> {
    pub fn new(base: R) -> Self {
        Journal { base, kept: Changes::default(), layers: Vec::new(), error: None }
    }

    fn find<T: Clone>(&self, pick: impl Fn(&Changes) -> Option<&T>) -> Option<T> {
        self.layers.iter().rev().chain(std::iter::once(&self.kept)).find_map(|l| pick(l).cloned())
    }

    fn remember<T: Default>(&mut self, r: Result<T, R::Error>) -> T {
        r.unwrap_or_else(|e| {
            self.error.get_or_insert(e);
            T::default()
        })
    }

    fn top(&mut self) -> &mut Changes {
        self.layers.last_mut().unwrap_or(&mut self.kept)
    }

    pub fn account(&mut self, address: &Address) -> Account {
        match self.find(|l| l.accounts.get(address)) {
            Some(a) => a,
            None => {
                let r = self.base.account(address);
                self.remember(r)
            }
        }
    }

    pub fn set_account(&mut self, address: Address, account: Account) {
        self.top().accounts.insert(address, account);
    }

    /// Moves `amount` from `from` to `to`; `Err(balance)` (nothing moved) when `from` holds
    /// less. The one place balances move between accounts (transfers, contract value, module
    /// payments). Both accounts are written even for a zero amount (a transfer of 0 creates
    /// its recipient): what every node's state root already depends on.
    pub fn move_balance(&mut self, from: &Address, to: &Address, amount: Amount) -> Result<(), Amount> {
        let mut sender = self.account(from);
        if sender.balance < amount {
            return Err(sender.balance);
        }
        sender.balance -= amount;
        self.set_account(*from, sender);
        let mut recipient = self.account(to);
        // Total supply fits in u128 and is conserved, so a credit cannot overflow.
        recipient.balance = recipient.balance.saturating_add(amount);
        self.set_account(*to, recipient);
        Ok(())
    }

    pub fn storage(&mut self, contract: &Address, key: &[u8]) -> Option<Vec<u8>> {
        let k = (*contract, key.to_vec());
        match self.find(|l| l.storage.get(&k)) {
            Some(v) => v,
            None => {
                let r = self.base.storage(contract, key);
                self.remember(r)
            }
        }
    }

    /// The first key of `contract`'s storage with `prefix` above `after` that holds a value,
    /// seen through every open layer, and how many candidate keys were examined (a key
    /// deleted in a layer costs a step: callers charge for steps). `Err(max_steps)` when it
    /// gave up after `max_steps` candidates without an answer.
    pub fn next_storage_key(
        &mut self,
        contract: &Address,
        prefix: &[u8],
        after: Option<&[u8]>,
        max_steps: u32,
    ) -> Result<(Option<Vec<u8>>, u32), u32> {
        let mut cursor: Option<Vec<u8>> = after.map(<[u8]>::to_vec);
        for step in 1..=max_steps {
            let below = self.base.next_storage_key(contract, prefix, cursor.as_deref());
            let below = self.remember(below);
            let layered = self
                .layers
                .iter()
                .chain(std::iter::once(&self.kept))
                .filter_map(|l| next_changed_key(l, contract, prefix, cursor.as_deref()))
                .min();
            let Some(candidate) = [below, layered].into_iter().flatten().min() else { return Ok((None, step)) };
            if self.storage(contract, &candidate).is_some() {
                return Ok((Some(candidate), step));
            }
            cursor = Some(candidate);
        }
        Err(max_steps)
    }

    pub fn set_storage(&mut self, contract: Address, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.top().storage.insert((contract, key), value);
    }

    pub fn code(&mut self, hash: &Hash) -> Option<Arc<[u8]>> {
        match self.find(|l| l.code.get(hash)) {
            Some(c) => Some(c),
            None => {
                let r = self.base.code(hash);
                self.remember(r)
            }
        }
    }

    pub fn set_code(&mut self, hash: Hash, code: Arc<[u8]>) {
        self.top().code.insert(hash, code);
    }

    /// Opens a checkpoint: later writes can be undone together.
    pub fn checkpoint(&mut self) {
        self.layers.push(Changes::default());
    }

    /// Keeps the writes since the last checkpoint.
    pub fn commit_checkpoint(&mut self) {
        let top = self.layers.pop();
        assert!(top.is_some(), "commit_checkpoint without a checkpoint");
        if let Some(top) = top {
            self.top().merge(top);
        }
    }

    /// Undoes the writes since the last checkpoint.
    pub fn revert_checkpoint(&mut self) {
        assert!(self.layers.pop().is_some(), "revert_checkpoint without a checkpoint");
    }

    /// Checkpoints open now.
    pub fn depth(&self) -> usize {
        self.layers.len()
    }

    /// Everything kept, or the first read error.
    pub fn into_changes(mut self) -> Result<Changes, R::Error> {
        assert!(self.layers.is_empty(), "into_changes with open checkpoints");
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(self.kept),
        }
    }

    /// The changes kept so far (the bottom layer), for inspection.
    pub fn kept(&self) -> &Changes {
        &self.kept
    }
}
