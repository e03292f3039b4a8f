//! Execution of transactions against a layered view of the state.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{decode_stored, ExecutedBlock, LedgerError};
use crate::storage::{columns, KvStore};
use crate::types::{Account, Action, Address, Amount, Receipt, SignedTransaction, TxStatus};

/// Why a transaction cannot be included at this point of the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("wrong chain id {got:?}; this chain is {expected:?}")]
    WrongChain { expected: String, got: String },
    #[error("bad signature: {0}")]
    BadSignature(String),
    #[error("nonce {got} is stale: the account's next nonce is {expected}")]
    StaleNonce { expected: u64, got: u64 },
    #[error("nonce {got} is in the future: the account's next nonce is {expected}")]
    FutureNonce { expected: u64, got: u64 },
    #[error("balance {balance} cannot pay {needed}")]
    InsufficientBalance { balance: Amount, needed: Amount },
}

/// Reads through this block's changes, then the uncommitted ancestors (newest first), then the
/// committed store; collects writes in `changes`.
pub(super) struct ExecState<'a> {
    store: &'a dyn KvStore,
    overlays: &'a [Arc<ExecutedBlock>],
    chain_id: &'a str,
    proposer: Address,
    changes: BTreeMap<Address, Account>,
    /// A storage failure is remembered and reported by `into_changes`, so a failing disk can
    /// never be mistaken for an invalid transaction.
    storage_error: Option<LedgerError>,
}

impl<'a> ExecState<'a> {
    pub(super) fn new(store: &'a dyn KvStore, overlays: &'a [Arc<ExecutedBlock>], chain_id: &'a str, proposer: Address) -> Self {
        ExecState { store, overlays, chain_id, proposer, changes: BTreeMap::new(), storage_error: None }
    }

    fn get(&mut self, address: &Address) -> Account {
        if let Some(a) = self.changes.get(address) {
            return a.clone();
        }
        for layer in self.overlays {
            if let Some(a) = layer.changes.get(address) {
                return a.clone();
            }
        }
        let loaded = self.store.get(columns::ACCOUNTS, &address.0).map_err(LedgerError::from).and_then(|b| match b {
            Some(bytes) => decode_stored::<Account>("account", &bytes),
            None => Ok(Account::default()),
        });
        match loaded {
            Ok(a) => a,
            Err(e) => {
                self.storage_error.get_or_insert(e);
                Account::default()
            }
        }
    }

    /// Applies `tx`; on `Err` nothing changed. `check_signature` is false only for
    /// transactions the mempool already verified.
    pub(super) fn apply(&mut self, tx: &SignedTransaction, check_signature: bool) -> Result<Receipt, TxError> {
        let body = &tx.body;
        if body.chain_id != self.chain_id {
            return Err(TxError::WrongChain { expected: self.chain_id.to_string(), got: body.chain_id.clone() });
        }
        if check_signature {
            tx.verify_signature().map_err(|e| TxError::BadSignature(e.to_string()))?;
        }
        let sender_address = tx.sender();
        let mut sender = self.get(&sender_address);
        if body.nonce < sender.nonce {
            return Err(TxError::StaleNonce { expected: sender.nonce, got: body.nonce });
        }
        if body.nonce > sender.nonce {
            return Err(TxError::FutureNonce { expected: sender.nonce, got: body.nonce });
        }
        if sender.balance < body.fee {
            return Err(TxError::InsufficientBalance { balance: sender.balance, needed: body.fee });
        }
        sender.balance -= body.fee;
        sender.nonce += 1;
        self.changes.insert(sender_address, sender);

        let status = match &body.action {
            Action::Transfer { to, amount, .. } => self.transfer(&sender_address, to, *amount),
        };

        // Total supply fits in u128 and is conserved, so crediting the fee cannot overflow.
        let proposer_address = self.proposer;
        let mut proposer = self.get(&proposer_address);
        proposer.balance = proposer.balance.saturating_add(body.fee);
        self.changes.insert(proposer_address, proposer);

        Ok(Receipt { tx_hash: tx.hash(), status, fee_paid: body.fee, gas_used: 0, events: vec![] })
    }

    fn transfer(&mut self, from: &Address, to: &Address, amount: Amount) -> TxStatus {
        let mut sender = self.get(from);
        if sender.balance < amount {
            return TxStatus::Failed { reason: format!("insufficient balance: has {}, transfer needs {amount}", sender.balance) };
        }
        sender.balance -= amount;
        self.changes.insert(*from, sender);
        let mut recipient = self.get(to);
        recipient.balance = recipient.balance.saturating_add(amount);
        self.changes.insert(*to, recipient);
        TxStatus::Success
    }

    pub(super) fn into_changes(self) -> Result<BTreeMap<Address, Account>, LedgerError> {
        match self.storage_error {
            Some(e) => Err(e),
            None => Ok(self.changes),
        }
    }
}
