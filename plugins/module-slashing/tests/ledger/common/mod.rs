//! The harness every slashing test uses: a real `Ledger` on a `MemoryStore` running the real
//! staking module (validator source, mint grant, `slasher` = `"slashing"`) and this crate's
//! slashing module, epochs of [`EPOCH`] blocks, and a follower ledger that re-executes every
//! committed block. After every block the harness asserts the follower reached the same
//! state root, that no module hook failed, and that staking's `invariants` query passes.
//! (The approach of `plugins/module-staking/tests/ledger/common`, copied, not shared.)
//!
//! Evidence is synthetic: the ledger does not verify evidence (the node's engine does before
//! handing it to `build_block`), so any `Evidence { offender, kind, proof, epoch }` is recorded;
//! distinct proofs give distinct hashes.
//!
//! Certificates are synthetic too: a block is committed with a signer bitmap over its
//! epoch's set (every member but those in [`Chain::absent`]), which the next block carries as
//! its parent certificate and the ledger reads with [`bitmap_signers`] (standing in for an
//! engine's decoder), so downtime tests choose who signed each height.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use aether_api::module::{module_address, RuntimeModule};
use aether_module_slashing::events::{DowntimeSlashed, EvidenceIgnored, SlashRefused, Slashed};
use aether_module_slashing::{events, OffenceInfo, SigningInfo, Slashing};
use aether_module_staking::{Staking, StakingCall, UnbondingInfo, ValidatorInfo};
use aether_node::ledger::{ExecutedBlock, Ledger};
use aether_primitives::types::*;
use aether_storage_memory::MemoryStore;

pub const CHAIN: &str = "slashing-test";
/// Blocks per epoch: epoch e is heights 4e+1 ..= 4e+4.
pub const EPOCH: u64 = 4;
pub const FEE: Amount = 10_000;
pub const GAS: u64 = 10_000_000;
/// Every user account (and every validator's operator) starts with this.
pub const FUNDS: Amount = 100_000_000;
/// Fees go here, so users' balances move only by what they do.
pub const PROPOSER: Address = Address([0xEE; 20]);

pub fn key(n: u8) -> Keypair {
    Keypair::from_seed([n; 32])
}

pub fn entry(n: u8, stake: Amount) -> ValidatorEntry {
    ValidatorEntry { name: format!("v{n}"), identity: key(n).public(), consensus_key: key(n).public().0.to_vec(), stake }
}

/// A genesis with `validators` (seed, stake), staking (`staking_params`, mint granted) and
/// slashing (`slashing_params`), epochs of [`EPOCH`] blocks with staking as validator source,
/// and [`FUNDS`] for each seed in `users` and every validator's operator (its identity's
/// address). Params must be canonical JSON (keys sorted, no spaces).
pub fn genesis(validators: &[(u8, Amount)], users: &[u8], staking_params: &str, slashing_params: &str) -> Genesis {
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
            GenesisModule { name: "staking".into(), version: 1, mint: true, params: staking_params.into(), govern_chain: false },
            GenesisModule { name: "slashing".into(), version: 1, mint: false, params: slashing_params.into(), govern_chain: false },
        ],
        epochs: Some(EpochSchedule { length: EPOCH, validator_source: Some("staking".into()) }),
    }
}

pub fn open(genesis: &Genesis, slashing: Arc<dyn RuntimeModule>) -> Ledger {
    Ledger::open(Arc::new(MemoryStore::new()), genesis)
        .unwrap()
        .with_module(Arc::new(Staking))
        .with_module(slashing)
        // Test consensus keys are opaque bytes (ed25519 keys, or 176-byte stand-ins for
        // HotStuff's in the gas test).
        .with_consensus_key_check(|k| if k.is_empty() { Err("empty".into()) } else { Ok(()) })
        .with_certificate_signers(bitmap_signers)
}

/// The test chains' certificate decoder: a certificate is a signer bitmap over the set (bit
/// `i`: byte `i / 8`, bit `i % 8`) of exactly `ceil(n / 8)` bytes; empty names nobody.
pub fn bitmap_signers(certificate: &[u8], validators: usize) -> Result<Vec<u32>, String> {
    if certificate.is_empty() {
        return Ok(vec![]);
    }
    if certificate.len() != validators.div_ceil(8) {
        return Err(format!("a bitmap of {} bytes for a set of {validators}", certificate.len()));
    }
    Ok((0..validators).filter(|i| certificate[i / 8] & (1 << (i % 8)) != 0).map(|i| i as u32).collect())
}

/// Synthetic evidence; `tag` makes the proof (and so the hash) distinct.
pub fn evidence(offender: u32, kind: &str, tag: &str) -> Evidence {
    evidence_in(0, offender, kind, tag)
}

/// [`evidence`] of an offence in `epoch` (`offender` indexes that epoch's set).
pub fn evidence_in(epoch: u64, offender: u32, kind: &str, tag: &str) -> Evidence {
    Evidence { offender, kind: kind.into(), proof: tag.as_bytes().to_vec(), epoch }
}

/// A chain under test and its follower.
pub struct Chain {
    pub ledger: Ledger,
    pub follower: Ledger,
    nonces: BTreeMap<Address, u64>,
    /// Validators (identities) that sign no block from now on (until removed).
    pub absent: BTreeSet<PublicKey>,
    /// When set, the next block is committed with exactly this certificate.
    pub next_certificate: Option<Certificate>,
}

impl Chain {
    pub fn new(genesis: &Genesis) -> Chain {
        Chain::with_module(genesis, Arc::new(Slashing))
    }

    pub fn with_module(genesis: &Genesis, slashing: Arc<dyn RuntimeModule>) -> Chain {
        let ledger = open(genesis, slashing.clone());
        ledger.check_genesis_init().expect("genesis parameters accepted");
        Chain { ledger, follower: open(genesis, slashing), nonces: BTreeMap::new(), absent: BTreeSet::new(), next_certificate: None }
    }

    pub fn height(&self) -> Height {
        self.ledger.head().block.height
    }

    /// The epoch the next block belongs to.
    pub fn epoch(&self) -> u64 {
        self.height() / EPOCH
    }

    /// Builds a block with `txs` and `evidence`, commits and replays it; asserts every
    /// transaction and every piece of evidence was included, the follower agrees, no hook
    /// failed and staking's invariants hold.
    pub fn block_with(&mut self, txs: Vec<SignedTransaction>, evidence: Vec<Evidence>) -> Arc<ExecutedBlock> {
        let block = self.block_allowing_hook_failures(txs, evidence);
        let failed = hook_failures(&block);
        assert!(failed.is_empty(), "height {}: hooks failed: {failed:?}", block.block.header.height);
        block
    }

    /// [`Chain::block_with`] without the check that no hook failed.
    pub fn block_allowing_hook_failures(&mut self, txs: Vec<SignedTransaction>, evidence: Vec<Evidence>) -> Arc<ExecutedBlock> {
        let head = self.ledger.head();
        let offered = evidence.len();
        let built = self.ledger.build_block(&head.block.hash, head.certificate, txs, evidence, head.header.time_ms + 10, PROPOSER).unwrap();
        assert!(built.rejected.is_empty(), "rejected: {:?}", built.rejected);
        assert_eq!(built.executed.block.evidence.len(), offered, "every piece of evidence recorded");
        let certificate = match self.next_certificate.take() {
            Some(c) => c,
            None => self.signed_by_all_present(built.executed.block.header.height),
        };
        let block = self.ledger.commit(&built.executed.hash, &certificate).unwrap();
        let replayed = self.follower.execute_block(block.block.clone()).expect("the follower re-executes the block");
        self.follower.commit(&replayed.hash, &certificate).unwrap();
        assert_eq!(self.follower.head().header.state_root, self.ledger.head().header.state_root, "follower state root");
        assert_eq!(self.follower.head().block.hash, self.ledger.head().block.hash);
        assert_eq!(replayed.hook_events, block.hook_events, "the follower's hooks emitted the same events");
        self.invariants();
        block
    }

    /// The certificate of the block at `height`: every member of its epoch's set signed but
    /// the absent.
    pub fn signed_by_all_present(&self, height: Height) -> Certificate {
        let set = self.ledger.validator_set(self.ledger.epoch_of(height)).unwrap().unwrap();
        let mut bitmap = vec![0u8; set.len().div_ceil(8)];
        for (i, v) in set.iter().enumerate() {
            if !self.absent.contains(&v.identity) {
                bitmap[i / 8] |= 1 << (i % 8);
            }
        }
        Certificate(bitmap)
    }

    pub fn block(&mut self, txs: Vec<SignedTransaction>) -> Arc<ExecutedBlock> {
        self.block_with(txs, vec![])
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
        self.tx_with_gas(from, "staking", call.encode(), value, GAS)
    }

    pub fn validator(&self, n: u8) -> ValidatorInfo {
        let answer = self.ledger.module_query("staking", "validator", &key(n).public().0, 100_000_000).unwrap().answer;
        serde_json::from_slice(&answer.unwrap()).unwrap()
    }

    pub fn validator_tokens_of(&self, identity: &PublicKey) -> Amount {
        let answer = self.ledger.module_query("staking", "validator", &identity.0, 100_000_000).unwrap().answer;
        serde_json::from_slice::<ValidatorInfo>(&answer.unwrap()).unwrap().tokens
    }

    pub fn unbondings(&self, who: &Address) -> Vec<UnbondingInfo> {
        let answer = self.ledger.module_query("staking", "unbonding", &who.0, 100_000_000).unwrap().answer;
        serde_json::from_slice(&answer.unwrap()).unwrap()
    }

    pub fn slashing_query(&self, path: &str, request: &[u8]) -> Result<Vec<u8>, aether_api::module::ModuleError> {
        self.ledger.module_query("slashing", path, request, 100_000_000).unwrap().answer
    }

    pub fn offences(&self, n: u8) -> Vec<OffenceInfo> {
        serde_json::from_slice(&self.slashing_query("offences", &key(n).public().0).unwrap()).unwrap()
    }

    /// `n`'s downtime count (`None`: not in the set measured last).
    pub fn signing_info(&self, n: u8) -> Option<SigningInfo> {
        serde_json::from_slice(&self.slashing_query("signing_info", &key(n).public().0).unwrap()).unwrap()
    }

    pub fn processed(&self, e: &Evidence) -> bool {
        serde_json::from_slice(&self.slashing_query("processed", &e.hash().0).unwrap()).unwrap()
    }

    pub fn balance(&self, who: &Address) -> Amount {
        self.ledger.account(who).unwrap().balance
    }

    /// What staking holds (bonded and unbonding tokens).
    pub fn staking_balance(&self) -> Amount {
        self.balance(&module_address("staking"))
    }

    /// The names in the set committed for `epoch`, in order.
    pub fn set(&self, epoch: u64) -> Vec<String> {
        self.ledger
            .validator_set(epoch)
            .unwrap()
            .unwrap_or_else(|| panic!("no set for epoch {epoch}"))
            .into_iter()
            .map(|v| v.name)
            .collect()
    }

    /// Validator `n`'s index in `epoch`'s set (what evidence of that epoch names).
    pub fn index_of(&self, epoch: u64, n: u8) -> u32 {
        let set = self.ledger.validator_set(epoch).unwrap().unwrap();
        set.iter().position(|v| v.identity == key(n).public()).unwrap_or_else(|| panic!("v{n} is not in epoch {epoch}'s set")) as u32
    }
}

fn decoded<T: serde::de::DeserializeOwned>(block: &ExecutedBlock, topic: &[u8]) -> Vec<T> {
    block
        .hook_events
        .iter()
        .filter(|e| e.topic == topic)
        .inspect(|e| assert_eq!(e.emitter, module_address("slashing")))
        .map(|e| serde_json::from_slice(&e.data).unwrap())
        .collect()
}

/// The `hook_failed` events' texts.
pub fn hook_failures(block: &ExecutedBlock) -> Vec<String> {
    block.hook_events.iter().filter(|e| e.topic == b"hook_failed").map(|e| String::from_utf8_lossy(&e.data).into_owned()).collect()
}

pub fn slashed(block: &ExecutedBlock) -> Vec<Slashed> {
    decoded(block, events::SLASHED)
}

pub fn refused(block: &ExecutedBlock) -> Vec<SlashRefused> {
    decoded(block, events::SLASH_REFUSED)
}

pub fn ignored(block: &ExecutedBlock) -> Vec<EvidenceIgnored> {
    decoded(block, events::EVIDENCE_IGNORED)
}

pub fn downtime(block: &ExecutedBlock) -> Vec<DowntimeSlashed> {
    decoded(block, events::DOWNTIME)
}

/// How many `staking/slash` events the block has (each one a Slash staking applied).
pub fn staking_slashes(block: &ExecutedBlock) -> usize {
    block.hook_events.iter().filter(|e| e.topic == b"staking/slash").count()
}

pub fn assert_success(block: &ExecutedBlock) {
    for (i, r) in block.receipts.iter().enumerate() {
        assert_eq!(r.status, TxStatus::Success, "transaction {i} at height {}", block.block.header.height);
    }
}

/// The receipt's failure reason (panics on success).
pub fn failure(block: &ExecutedBlock, i: usize) -> String {
    match &block.receipts[i].status {
        TxStatus::Failed { reason } => reason.clone(),
        TxStatus::Success => panic!("transaction {i} succeeded"),
    }
}
