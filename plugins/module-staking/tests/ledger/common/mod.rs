//! The harness every staking test uses: a real `Ledger` on a `MemoryStore` running the
//! staking module (validator source, mint grant) and a tiny `slashing` module, epochs of
//! [`EPOCH`] blocks, and a follower ledger that re-executes every committed block. After every
//! block the harness asserts the follower reached the same state root and that the staking
//! `invariants` query passes.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use aether_api::module::{module_address, ModuleContext, ModuleError, RuntimeModule};
use aether_module_staking::{DelegationInfo, Staking, StakingCall, UnbondingInfo, ValidatorInfo, ValidatorsPage};
use aether_node::ledger::{ExecutedBlock, Ledger};
use aether_primitives::types::*;
use aether_storage_memory::MemoryStore;

pub const CHAIN: &str = "staking-test";
/// Blocks per epoch: epoch e is heights 3e+1 ..= 3e+3.
pub const EPOCH: u64 = 3;
pub const FEE: Amount = 10_000;
pub const GAS: u64 = 10_000_000;
/// Every user account starts with this.
pub const FUNDS: Amount = 100_000_000;
/// Fees go here, so users' balances move only by what they do.
pub const PROPOSER: Address = Address([0xEE; 20]);

pub fn key(n: u8) -> Keypair {
    Keypair::from_seed([n; 32])
}

pub fn entry(n: u8, stake: Amount) -> ValidatorEntry {
    ValidatorEntry { name: format!("v{n}"), identity: key(n).public(), consensus_key: key(n).public().0.to_vec(), stake }
}

/// The slasher for tests: forwards its call bytes to staking, as itself.
pub struct Slashing;

impl RuntimeModule for Slashing {
    fn name(&self) -> &'static str {
        "slashing"
    }
    fn version(&self) -> u32 {
        1
    }
    fn call(&self, cx: &mut dyn ModuleContext, call: &[u8]) -> Result<Vec<u8>, ModuleError> {
        cx.call_module("staking", call)
    }
}

/// A genesis with `validators` (seed, stake), staking (with `params`, mint granted) and the
/// slashing module, epochs of [`EPOCH`] blocks with staking as validator source, and
/// [`FUNDS`] for each seed in `users` and every validator.
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
            GenesisModule { name: "staking".into(), version: 1, mint: true, params: params.into(), govern_chain: false },
            GenesisModule { name: "slashing".into(), version: 1, mint: false, params: String::new(), govern_chain: false },
        ],
        epochs: Some(EpochSchedule { length: EPOCH, validator_source: Some("staking".into()) }),
    }
}

pub fn open(genesis: &Genesis, staking: Arc<dyn RuntimeModule>) -> Ledger {
    Ledger::open(Arc::new(MemoryStore::new()), genesis)
        .unwrap()
        .with_module(staking)
        .with_module(Arc::new(Slashing))
        // Consensus keys here are ed25519 keys (as `solo` checks them).
        .with_consensus_key_check(|k| match <[u8; 32]>::try_from(k) {
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
        Chain::with_module(genesis, Arc::new(Staking))
    }

    pub fn with_module(genesis: &Genesis, staking: Arc<dyn RuntimeModule>) -> Chain {
        let ledger = open(genesis, staking.clone());
        ledger.check_genesis_init().expect("genesis parameters accepted");
        Chain { ledger, follower: open(genesis, staking), nonces: BTreeMap::new() }
    }

    pub fn height(&self) -> Height {
        self.ledger.head().block.height
    }

    /// The epoch the next block belongs to.
    pub fn epoch(&self) -> u64 {
        self.height() / EPOCH
    }

    /// Builds, commits and replays one block; asserts every transaction was included, the
    /// follower agrees and the invariants hold.
    pub fn block(&mut self, txs: Vec<SignedTransaction>) -> Arc<ExecutedBlock> {
        let head = self.ledger.head();
        let built = self.ledger.build_block(&head.block.hash, head.certificate, txs, vec![], head.header.time_ms + 10, PROPOSER).unwrap();
        assert!(built.rejected.is_empty(), "rejected: {:?}", built.rejected);
        let block = self.ledger.commit(&built.executed.hash, &Certificate(vec![1])).unwrap();
        let replayed = self.follower.execute_block(block.block.clone()).expect("the follower re-executes the block");
        self.follower.commit(&replayed.hash, &Certificate(vec![1])).unwrap();
        assert_eq!(self.follower.head().header.state_root, self.ledger.head().header.state_root, "follower state root");
        assert_eq!(self.follower.head().block.hash, self.ledger.head().block.hash);
        let failed: Vec<String> =
            block.hook_events.iter().filter(|e| e.topic == b"hook_failed").map(|e| String::from_utf8_lossy(&e.data).into_owned()).collect();
        assert!(failed.is_empty(), "height {}: hooks failed: {failed:?}", block.block.header.height);
        self.invariants();
        block
    }

    /// Commits empty blocks until the head is at `height`.
    pub fn run_to(&mut self, height: Height) {
        while self.height() < height {
            self.block(vec![]);
        }
    }

    pub fn invariants(&self) -> String {
        let answer = self.ledger.module_query("staking", "invariants", &[], 1_000_000_000).unwrap();
        let summary = answer.answer.unwrap_or_else(|e| panic!("height {}: invariants: {e}", self.height()));
        String::from_utf8(summary).unwrap()
    }

    pub fn tx(&mut self, from: &Keypair, module: &str, call: Vec<u8>, value: Amount) -> SignedTransaction {
        self.tx_with_gas(from, module, call, value, GAS)
    }

    /// A transaction with `gas_limit` (and the fee it needs, one unit per 1,000 gas).
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

    pub fn staking(&mut self, from: &Keypair, call: StakingCall, value: Amount) -> SignedTransaction {
        self.tx(from, "staking", call.encode(), value)
    }

    /// Through the slashing module (the configured slasher).
    pub fn slash(&mut self, from: &Keypair, call: StakingCall) -> SignedTransaction {
        self.tx(from, "slashing", call.encode(), 0)
    }

    pub fn query(&self, path: &str, request: &[u8]) -> Result<Vec<u8>, ModuleError> {
        self.ledger.module_query("staking", path, request, 100_000_000).unwrap().answer
    }

    pub fn validator(&self, n: u8) -> ValidatorInfo {
        serde_json::from_slice(&self.query("validator", &key(n).public().0).unwrap()).unwrap()
    }

    pub fn validators(&self) -> ValidatorsPage {
        serde_json::from_slice(&self.query("validators", &[]).unwrap()).unwrap()
    }

    pub fn delegation(&self, who: &Address, n: u8) -> DelegationInfo {
        let request = aether_primitives::codec::encode(&(*who, key(n).public()));
        serde_json::from_slice(&self.query("delegation", &request).unwrap()).unwrap()
    }

    pub fn unbondings(&self, who: &Address) -> Vec<UnbondingInfo> {
        serde_json::from_slice(&self.query("unbonding", &who.0).unwrap()).unwrap()
    }

    pub fn balance(&self, who: &Address) -> Amount {
        self.ledger.account(who).unwrap().balance
    }

    pub fn module_balance(&self) -> Amount {
        self.balance(&module_address("staking"))
    }

    /// The set committed for `epoch`, as (seed-name, stake) pairs.
    pub fn set(&self, epoch: u64) -> Vec<(String, Amount)> {
        self.ledger
            .validator_set(epoch)
            .unwrap()
            .unwrap_or_else(|| panic!("no set for epoch {epoch}"))
            .into_iter()
            .map(|v| (v.name, v.stake))
            .collect()
    }
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

pub fn names(set: &[(&str, Amount)]) -> Vec<(String, Amount)> {
    set.iter().map(|(n, s)| (n.to_string(), *s)).collect()
}
