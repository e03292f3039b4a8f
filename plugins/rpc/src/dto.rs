//! JSON views of node data. Field names are snake_case throughout (the nested core types keep
//! their Rust names); hashes and bytes are `0x` hex; amounts are decimal strings (JSON numbers
//! lose precision above 2^53).

use aether_node::ledger::CommittedTx;
use aether_node::node::{NewHead, NodeStatus};
use aether_primitives::types::serde_helpers;
use aether_primitives::types::{Account, Address, Amount, Block, Certificate, Event, Hash, Header, Receipt, SignedTransaction, TxLocation};
use aether_vm::{CallOutcome, CallResult};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusView {
    pub chain_id: String,
    pub genesis_hash: Hash,
    pub height: u64,
    pub head_hash: Hash,
    pub head_time_ms: u64,
    pub state_root: Hash,
    pub engine: String,
    pub storage: String,
    /// The VM backend (`null`: this node runs no contracts).
    pub vm: Option<String>,
    pub mempool_policy: String,
    pub mempool_size: usize,
    pub validator: Option<Address>,
    /// `false` on a validator that follows the chain without signing (its consensus safety
    /// state is missing; its log says what to do).
    pub signing: bool,
}

impl From<NodeStatus> for StatusView {
    fn from(s: NodeStatus) -> Self {
        StatusView {
            chain_id: s.info.chain_id,
            genesis_hash: s.info.genesis_hash,
            height: s.head.height,
            head_hash: s.head.hash,
            head_time_ms: s.head_time_ms,
            state_root: s.state_root,
            engine: s.info.engine,
            storage: s.info.storage,
            vm: s.info.vm,
            mempool_policy: s.info.mempool_policy,
            mempool_size: s.mempool_size,
            validator: s.info.validator,
            signing: s.info.signing,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeersView {
    /// Connected peers' identities.
    pub peers: Vec<aether_primitives::types::PublicKey>,
    pub stats: aether_api::network::NetworkStats,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthView {
    pub ok: bool,
    pub height: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockView {
    pub hash: Hash,
    pub header: Header,
    /// The certificate that decided this block.
    pub certificate: Certificate,
    pub transactions: Vec<Hash>,
}

impl BlockView {
    pub fn new(block: Block, certificate: Certificate) -> BlockView {
        BlockView {
            hash: block.hash(),
            transactions: block.transactions.iter().map(|t| t.hash()).collect(),
            header: block.header,
            certificate,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadView {
    pub hash: Hash,
    pub header: Header,
    pub tx_count: usize,
}

impl From<&NewHead> for HeadView {
    fn from(h: &NewHead) -> Self {
        HeadView { hash: h.hash, header: h.header.clone(), tx_count: h.tx_count }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionView {
    pub hash: Hash,
    /// `committed`, `pending` (in the mempool) or `unknown`.
    pub status: String,
    pub transaction: Option<SignedTransaction>,
    pub location: Option<TxLocation>,
    pub receipt: Option<Receipt>,
}

impl TransactionView {
    pub fn committed(tx: CommittedTx) -> TransactionView {
        TransactionView {
            hash: tx.receipt.tx_hash,
            status: "committed".into(),
            transaction: Some(tx.transaction),
            location: Some(tx.location),
            receipt: Some(tx.receipt),
        }
    }
    pub fn status_only(hash: Hash, status: &str) -> TransactionView {
        TransactionView { hash, status: status.into(), transaction: None, location: None, receipt: None }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    pub address: Address,
    pub nonce: u64,
    #[serde(with = "serde_helpers::amount")]
    pub balance: Amount,
    /// Hash of the contract code at this address (`null` for plain accounts).
    pub code_hash: Option<Hash>,
    /// The nonce to use for the next transaction, counting pending ones in the mempool.
    pub next_nonce: u64,
    /// The committed head height when the account was read (the account reflects this height
    /// or a later one).
    pub height: u64,
}

/// `aether_getAccountProof`: an account at a height and its proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountProofView {
    pub address: Address,
    pub height: u64,
    /// The header at `height` (its hash and state root), which the proof is against.
    pub block_hash: Hash,
    pub state_root: Hash,
    /// `null`: the address held nothing at `height`.
    pub account: Option<Account>,
    /// `0x` hex of the proof's canonical encoding (`StateProof::from_bytes`).
    pub proof: String,
}

impl AccountView {
    pub fn new(address: Address, account: Account, next_nonce: u64, height: u64) -> AccountView {
        AccountView { address, nonce: account.nonce, balance: account.balance, code_hash: account.code_hash, next_nonce, height }
    }
}

/// `aether_getValidatorSet`: an epoch's validators and the epoch changes that prove them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorSetView {
    pub epoch: u64,
    pub first_height: u64,
    /// `null` on a chain without epochs.
    pub last_height: Option<u64>,
    pub validators: Vec<aether_primitives::types::ValidatorEntry>,
    /// The changes ending each epoch from the asked `from` up to `epoch`, oldest first.
    pub changes: Vec<aether_node::light::EpochChange>,
}

/// `aether_moduleQuery`: a module's answer to a read-only question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleQueryView {
    /// The answer, `0x` hex.
    #[serde(with = "serde_helpers::bytes")]
    pub output: Vec<u8>,
    pub gas_used: u64,
    /// The committed height the query ran on.
    pub height: u64,
}

/// `aether_contractQuery`: what a read-only call returned. Nothing it wrote was kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryView {
    /// `returned`, `reverted`, `trapped` or `out_of_gas`.
    pub status: String,
    /// Returned or revert data, `0x` hex.
    #[serde(with = "serde_helpers::bytes")]
    pub output: Vec<u8>,
    /// Why it trapped, for `trapped`.
    pub reason: Option<String>,
    pub gas_used: u64,
    /// Events the call emitted (not recorded anywhere).
    pub events: Vec<Event>,
    /// The committed height the call ran on.
    pub height: u64,
}

impl QueryView {
    pub fn new(outcome: CallOutcome, events: Vec<Event>, height: u64) -> QueryView {
        let (status, output, reason) = match outcome.result {
            CallResult::Returned(d) => ("returned", d, None),
            CallResult::Reverted(d) => ("reverted", d, None),
            CallResult::Trapped(why) => ("trapped", vec![], Some(why)),
            CallResult::OutOfGas => ("out_of_gas", vec![], None),
        };
        QueryView { status: status.into(), output, reason, gas_used: outcome.gas_used, events, height }
    }
}

/// `aether_getBlockEvents`: the events of a committed block's module hooks and of the ledger
/// itself, in emission order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockEventsView {
    pub height: u64,
    pub block_hash: Hash,
    pub events: Vec<HookEventView>,
}

/// One hook event, with what an operator needs to read it without decoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookEventView {
    pub emitter: Address,
    /// The module whose account emitted it; `null` for the ledger's own events
    /// (`parent_certificate_undecodable`, from the system address) or an unknown emitter.
    pub module: Option<String>,
    /// The topic as text (`hook_failed`, `module_upgraded`, a module's own); `null` when it is
    /// not UTF-8 (then only `topic_hex` says what it is).
    pub topic: Option<String>,
    #[serde(with = "serde_helpers::bytes")]
    pub topic_hex: Vec<u8>,
    /// `0x` hex (for `hook_failed` and `module_upgraded`, UTF-8 text saying what happened).
    #[serde(with = "serde_helpers::bytes")]
    pub data: Vec<u8>,
}

impl BlockEventsView {
    /// `module_of` names the module of an emitter address, if any.
    pub fn new(found: aether_node::ledger::BlockEvents, module_of: impl Fn(&Address) -> Option<String>) -> BlockEventsView {
        let events = found
            .events
            .into_iter()
            .map(|e| HookEventView {
                module: module_of(&e.emitter),
                emitter: e.emitter,
                topic: String::from_utf8(e.topic.clone()).ok(),
                topic_hex: e.topic,
                data: e.data,
            })
            .collect();
        BlockEventsView { height: found.block.height, block_hash: found.block.hash, events }
    }
}
