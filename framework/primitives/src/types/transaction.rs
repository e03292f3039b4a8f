//! Transactions, accounts and receipts.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use super::serde_helpers;
use super::{domain, Address, Amount, Hash, Height, Keypair, PublicKey, Signature, SignatureError};
use crate::codec;

/// What a transaction does.
///
/// This enum is the seam for later kinds (deploy and call contracts, stake and unstake, calls
/// routed by name to runtime modules): new variants are appended, so existing encodings and
/// hashes stay valid — the golden-hash tests check that `Transfer` keeps tag 0.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Action {
    /// Move `amount` from the sender to `to`. `memo` is opaque to the ledger.
    Transfer {
        to: Address,
        #[serde(with = "serde_helpers::amount")]
        amount: Amount,
        #[serde(with = "serde_helpers::bytes", default)]
        memo: Vec<u8>,
    },
    /// Deploy WebAssembly `code` as a contract at `contract_address` (in `aether-vm`'s executor)
    /// of the sender and this transaction's nonce, send it `value`, and run its `init` export
    /// (if any) with `input`. The receipt's `contract_address` names the new contract.
    Deploy {
        #[serde(with = "serde_helpers::bytes")]
        code: Vec<u8>,
        #[serde(with = "serde_helpers::bytes", default)]
        input: Vec<u8>,
        #[serde(with = "serde_helpers::amount", default)]
        value: Amount,
        gas_limit: u64,
    },
    /// Call export `method` of the contract at `contract` with `input`, sending it `value`.
    Call {
        contract: Address,
        method: String,
        #[serde(with = "serde_helpers::bytes", default)]
        input: Vec<u8>,
        #[serde(with = "serde_helpers::amount", default)]
        value: Amount,
        gas_limit: u64,
    },
    /// Call runtime module `module` with `call` (bytes the module decodes), sending it
    /// `value`. Appended as tag 3: earlier actions' encodings do not change.
    Module {
        module: String,
        #[serde(with = "serde_helpers::bytes", default)]
        call: Vec<u8>,
        #[serde(with = "serde_helpers::amount", default)]
        value: Amount,
        gas_limit: u64,
    },
}

impl Action {
    /// Gas the action asks for (0 for actions that run no contract).
    pub fn gas_limit(&self) -> u64 {
        match self {
            Action::Transfer { .. } => 0,
            Action::Deploy { gas_limit, .. } | Action::Call { gas_limit, .. } | Action::Module { gas_limit, .. } => *gas_limit,
        }
    }

    /// Value the action moves from the sender.
    pub fn value(&self) -> Amount {
        match self {
            Action::Transfer { amount, .. } => *amount,
            Action::Deploy { value, .. } | Action::Call { value, .. } | Action::Module { value, .. } => *value,
        }
    }
}

/// The signed part of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct TxBody {
    /// Must equal the chain's id: a transaction signed for one chain is invalid on every other.
    pub chain_id: String,
    /// The signer; the sender's address is derived from it.
    pub sender: PublicKey,
    /// Must equal the sender account's nonce when executed; each executed tx increments it.
    pub nonce: u64,
    /// Flat fee paid to the block's proposer, charged even if the action fails.
    #[serde(with = "serde_helpers::amount")]
    pub fee: Amount,
    pub action: Action,
}

/// A transaction with its ed25519 signature over [`TxBody::signing_message`].
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SignedTransaction {
    pub body: TxBody,
    pub signature: Signature,
}

impl TxBody {
    /// The message the sender signs: a domain tag and the hash of the body's canonical encoding.
    pub fn signing_message(&self) -> [u8; 32] {
        Hash::digest(domain::TX_SIGNING, &codec::encode(self)).0
    }

    pub fn sign(self, key: &Keypair) -> SignedTransaction {
        debug_assert_eq!(key.public(), self.sender, "signing key must match the sender");
        let signature = key.sign(&self.signing_message());
        SignedTransaction { body: self, signature }
    }
}

impl SignedTransaction {
    /// The transaction's identity: a hash over the whole encoding, signature included (strict
    /// verification makes signatures non-malleable, so this is unique per valid transaction).
    pub fn hash(&self) -> Hash {
        Hash::digest(domain::TX, &codec::encode(self))
    }

    pub fn sender(&self) -> Address {
        self.body.sender.address()
    }

    /// Strict ed25519 verification of the signature.
    pub fn verify_signature(&self) -> Result<(), SignatureError> {
        self.body.sender.verify(&self.body.signing_message(), &self.signature)
    }

    /// The most the sender can be charged: fee plus value moved.
    pub fn max_cost(&self) -> Amount {
        self.body.fee.saturating_add(self.body.action.value())
    }
}

/// An account in the ledger state.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Account {
    pub nonce: u64,
    #[serde(with = "serde_helpers::amount")]
    pub balance: Amount,
    /// Unused, always 0: stake lives in the staking module's storage, its only record (never
    /// two copies of one number). Kept in the encoding so account hashes and the state roots
    /// of existing chains do not change.
    #[serde(with = "serde_helpers::amount")]
    pub stake: Amount,
    /// Hash of deployed contract code. Reserved for the VM issue; always `None` until then.
    pub code_hash: Option<Hash>,
}

/// An event emitted during execution (contracts and modules emit them; transfers do not yet).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Event {
    pub emitter: Address,
    #[serde(with = "serde_helpers::bytes")]
    pub topic: Vec<u8>,
    #[serde(with = "serde_helpers::bytes")]
    pub data: Vec<u8>,
}

/// Whether the action of an included transaction took effect.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum TxStatus {
    Success,
    /// The fee was charged and the nonce advanced, but the action's effects were reverted.
    Failed {
        reason: String,
    },
}

/// The outcome of one included transaction.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Receipt {
    pub tx_hash: Hash,
    pub status: TxStatus,
    #[serde(with = "serde_helpers::amount")]
    pub fee_paid: Amount,
    pub gas_used: u64,
    pub events: Vec<Event>,
    /// What a contract call returned (or reverted with); empty for other actions.
    #[serde(with = "serde_helpers::bytes", default)]
    pub output: Vec<u8>,
    /// The contract a deploy created (set even if the deploy failed, so it can be found).
    #[serde(default)]
    pub contract_address: Option<Address>,
}

/// Where a committed transaction sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct TxLocation {
    pub block_hash: Hash,
    pub height: Height,
    pub index: u32,
}
