//! The harness every governance test uses: a real `Ledger` on a `MemoryStore` running staking
//! (validator source, mint grant, no rewards unless asked, so stakes stay exactly as set) and
//! governance (mint grant), epochs of [`EPOCH`] blocks, and a follower ledger that re-executes
//! every committed block. After every block the harness asserts the follower reached the same
//! state root, that no hook failed (unless a test expects one), and that both modules'
//! `invariants` queries pass.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use aether_api::module::{module_address, ModuleError, RuntimeModule};
use aether_module_governance::{Governance, GovernanceCall, ProposalAction, ProposalInfo, VoteOption};
use aether_module_staking::{Staking, StakingCall};
use aether_node::ledger::{ExecutedBlock, Ledger};
use aether_primitives::types::*;
use aether_storage_memory::MemoryStore;

pub const CHAIN: &str = "governance-test";
/// Blocks per epoch: epoch e is heights 3e+1 ..= 3e+3; its end_epoch runs at 3e+3.
pub const EPOCH: u64 = 3;
pub const FEE: Amount = 10_000;
pub const GAS: u64 = 10_000_000;
/// Every account starts with this.
pub const FUNDS: Amount = 100_000_000;
/// Fees go here, so users' balances move only by what they do.
pub const PROPOSER: Address = Address([0xEE; 20]);
/// Staking's parameters in these tests: no rewards (stakes stay as genesis sets them) and a
/// self-bond of 1 keeps a validator of stake 1 in the set.
pub const STAKING: &str = r#"{"reward_per_epoch":0,"min_self_bond":1}"#;

pub fn key(n: u8) -> Keypair {
    Keypair::from_seed([n; 32])
}

pub fn entry(n: u8, stake: Amount) -> ValidatorEntry {
    ValidatorEntry { name: format!("v{n}"), identity: key(n).public(), consensus_key: key(n).public().0.to_vec(), stake }
}

/// A genesis with `validators` (seed, stake), staking ([`STAKING`]) and governance (with
/// `params`), both granted mint, epochs of [`EPOCH`] blocks, and [`FUNDS`] for each seed in
/// `users` and every validator.
pub fn genesis(validators: &[(u8, Amount)], users: &[u8], params: &str) -> Genesis {
    let mut accounts: Vec<GenesisAccount> = users
        .iter()
        .chain(validators.iter().map(|(n, _)| n))
        .map(|n| GenesisAccount { address: key(*n).address(), balance: FUNDS })
        .collect();
    accounts.sort_by_key(|a| a.address);
    accounts.dedup_by_key(|a| a.address);
    Genesis {
        chain_id: CHAIN.into(),
        genesis_time_ms: 1_000,
        accounts,
        validators: validators.iter().map(|(n, stake)| entry(*n, *stake)).collect(),
        modules: vec![
            GenesisModule { name: "staking".into(), version: 1, mint: true, params: STAKING.into(), govern_chain: false },
            GenesisModule { name: "governance".into(), version: 1, mint: true, params: params.into(), govern_chain: false },
        ],
        epochs: Some(EpochSchedule { length: EPOCH, validator_source: Some("staking".into()) }),
    }
}

pub fn open(genesis: &Genesis) -> Ledger {
    open_with(genesis, Arc::new(Governance))
}

/// A ledger running staking and `governance` (the module or a wrapper of it).
pub fn open_with(genesis: &Genesis, governance: Arc<dyn RuntimeModule>) -> Ledger {
    open_with_extra(genesis, governance, vec![])
}

/// A ledger running staking, `governance` and `extra` modules (genesis must pin them too).
pub fn open_with_extra(genesis: &Genesis, governance: Arc<dyn RuntimeModule>, extra: Vec<Arc<dyn RuntimeModule>>) -> Ledger {
    let mut ledger = Ledger::open(Arc::new(MemoryStore::new()), genesis).unwrap().with_module(Arc::new(Staking)).with_module(governance);
    for module in extra {
        ledger = ledger.with_module(module);
    }
    ledger.with_consensus_key_check(|k| match <[u8; 32]>::try_from(k) {
        Ok(k) => PublicKey(k).check().map_err(|e| e.to_string()),
        Err(_) => Err(format!("{} bytes, expected 32", k.len())),
    })
}

/// A chain under test and its follower.
pub struct Chain {
    pub ledger: Ledger,
    pub follower: Ledger,
    nonces: BTreeMap<Address, u64>,
}

impl Chain {
    pub fn new(genesis: &Genesis) -> Chain {
        Chain::with_governance(genesis, Arc::new(Governance))
    }

    pub fn with_governance(genesis: &Genesis, governance: Arc<dyn RuntimeModule>) -> Chain {
        Chain::with_modules(genesis, governance, vec![])
    }

    pub fn with_modules(genesis: &Genesis, governance: Arc<dyn RuntimeModule>, extra: Vec<Arc<dyn RuntimeModule>>) -> Chain {
        let ledger = open_with_extra(genesis, governance.clone(), extra.clone());
        ledger.check_genesis_init().expect("genesis parameters accepted");
        Chain { ledger, follower: open_with_extra(genesis, governance, extra), nonces: BTreeMap::new() }
    }

    pub fn height(&self) -> Height {
        self.ledger.head().block.height
    }

    /// Builds, commits and replays one block; asserts every transaction was included, the
    /// follower agrees, no hook failed and the invariants hold.
    pub fn block(&mut self, txs: Vec<SignedTransaction>) -> Arc<ExecutedBlock> {
        let block = self.block_with_hook_failures(txs);
        let failed: Vec<String> =
            block.hook_events.iter().filter(|e| e.topic == b"hook_failed").map(|e| String::from_utf8_lossy(&e.data).into_owned()).collect();
        assert!(failed.is_empty(), "height {}: hooks failed: {failed:?}", block.block.header.height);
        block
    }

    /// [`Chain::block`] without the check that no hook failed.
    pub fn block_with_hook_failures(&mut self, txs: Vec<SignedTransaction>) -> Arc<ExecutedBlock> {
        let head = self.ledger.head();
        let built = self.ledger.build_block(&head.block.hash, head.certificate, txs, vec![], head.header.time_ms + 10, PROPOSER).unwrap();
        assert!(built.rejected.is_empty(), "rejected: {:?}", built.rejected);
        let block = self.ledger.commit(&built.executed.hash, &Certificate(vec![1])).unwrap();
        let replayed = self.follower.execute_block(block.block.clone()).expect("the follower re-executes the block");
        self.follower.commit(&replayed.hash, &Certificate(vec![1])).unwrap();
        assert_eq!(self.follower.head().header.state_root, self.ledger.head().header.state_root, "follower state root");
        assert_eq!(self.follower.head().block.hash, self.ledger.head().block.hash);
        self.invariants("staking");
        self.invariants("governance");
        block
    }

    /// Commits empty blocks until the head is at `height`.
    pub fn run_to(&mut self, height: Height) {
        while self.height() < height {
            self.block(vec![]);
        }
    }

    pub fn invariants(&self, module: &str) -> String {
        let answer = self.ledger.module_query(module, "invariants", &[], 1_000_000_000).unwrap();
        let summary = answer.answer.unwrap_or_else(|e| panic!("height {}: {module} invariants: {e}", self.height()));
        String::from_utf8(summary).unwrap()
    }

    pub fn tx(&mut self, from: &Keypair, module: &str, call: Vec<u8>, value: Amount) -> SignedTransaction {
        self.tx_with_gas(from, module, call, value, GAS)
    }

    /// A transaction with `gas_limit` (and the fee it needs, one unit per 1,000 gas, at
    /// least [`FEE`]).
    pub fn tx_with_gas(&mut self, from: &Keypair, module: &str, call: Vec<u8>, value: Amount, gas_limit: u64) -> SignedTransaction {
        let fee = FEE.max(Amount::from(gas_limit.div_ceil(1_000)));
        let nonce = self.nonces.entry(from.address()).or_insert(0);
        let tx = TxBody {
            chain_id: CHAIN.into(),
            sender: from.public(),
            nonce: *nonce,
            fee,
            action: Action::Module { module: module.into(), call, value, gas_limit },
        }
        .sign(from);
        *nonce += 1;
        tx
    }

    pub fn gov(&mut self, from: &Keypair, call: GovernanceCall, value: Amount) -> SignedTransaction {
        self.tx(from, "governance", call.encode(), value)
    }

    pub fn submit(&mut self, from: &Keypair, title: &str, actions: Vec<ProposalAction>, deposit: Amount) -> SignedTransaction {
        self.gov(from, GovernanceCall::submit(title, actions), deposit)
    }

    pub fn vote(&mut self, validator: u8, proposal: u64, option: VoteOption) -> SignedTransaction {
        self.gov(&key(validator), GovernanceCall::vote(proposal, option), 0)
    }

    pub fn query(&self, module: &str, path: &str, request: &[u8]) -> Result<Vec<u8>, ModuleError> {
        self.ledger.module_query(module, path, request, 100_000_000).unwrap().answer
    }

    pub fn proposal(&self, id: u64) -> ProposalInfo {
        serde_json::from_slice(&self.query("governance", "proposal", &id.to_le_bytes()).unwrap()).unwrap()
    }

    pub fn open_proposals(&self) -> Vec<ProposalInfo> {
        serde_json::from_slice(&self.query("governance", "proposals", &[]).unwrap()).unwrap()
    }

    pub fn staking_params(&self) -> serde_json::Value {
        serde_json::from_slice(&self.query("staking", "params", &[]).unwrap()).unwrap()
    }

    pub fn balance(&self, who: &Address) -> Amount {
        self.ledger.account(who).unwrap().balance
    }

    pub fn gov_balance(&self) -> Amount {
        self.balance(&module_address("governance"))
    }
}

/// An action changing staking's parameters (a JSON object of the fields to change).
pub fn staking_params_change(json: &str) -> ProposalAction {
    ProposalAction::new("staking", StakingCall::update_params(json).encode())
}

/// The receipt's failure reason (panics on success).
pub fn failure(block: &ExecutedBlock, i: usize) -> String {
    match &block.receipts[i].status {
        TxStatus::Failed { reason } => reason.clone(),
        TxStatus::Success => panic!("transaction {i} succeeded"),
    }
}

pub fn assert_success(block: &ExecutedBlock) {
    for (i, r) in block.receipts.iter().enumerate() {
        assert_eq!(r.status, TxStatus::Success, "transaction {i} at height {}", block.block.header.height);
    }
}

/// The hook events of `block` with `topic`, their data as text (lossy).
pub fn hook_events(block: &ExecutedBlock, topic: &[u8]) -> Vec<Vec<u8>> {
    block.hook_events.iter().filter(|e| e.topic == topic).map(|e| e.data.clone()).collect()
}
