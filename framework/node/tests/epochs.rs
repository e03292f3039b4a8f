//! Epochs in the ledger: the validator source's `end_epoch` names the next set on an epoch's
//! last block, the ledger checks it and records it in state, and that block's header commits
//! to it; every other block commits to nothing. Also `init_genesis` with genesis parameters.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use aether_api::chain::ChainCall;
use aether_api::module::{module_address, ModuleContext, ModuleError, RuntimeModule};
use aether_node::ledger::{ExecutedBlock, Ledger, LedgerError};
use aether_primitives::codec;
use aether_primitives::types::*;
use aether_storage_memory::MemoryStore;

const CHAIN: &str = "epochs";
const EPOCH_LENGTH: u64 = 3;

fn key(n: u8) -> Keypair {
    Keypair::from_seed([n; 32])
}

fn entry(n: u8, stake: Amount) -> ValidatorEntry {
    ValidatorEntry { name: format!("v{n}"), identity: key(n).public(), consensus_key: key(n).public().0.to_vec(), stake }
}

/// A validator source for tests: `end_epoch` returns the set a transaction stored (`set` with
/// an encoded `Vec<ValidatorEntry>`), once, or nothing. `init_genesis` keeps its parameters
/// and refuses `{"refuse": true}`.
struct Rotator;

impl RuntimeModule for Rotator {
    fn name(&self) -> &'static str {
        "rotator"
    }
    fn version(&self) -> u32 {
        1
    }
    fn init_genesis(&self, cx: &mut dyn ModuleContext, params: &[u8]) -> Result<(), ModuleError> {
        if params == br#"{"refuse":true}"# {
            return Err(ModuleError::Failed("refusing these parameters".into()));
        }
        let genesis_set = cx.validator_set(0)?.ok_or_else(|| ModuleError::Failed("no genesis set".into()))?;
        cx.set(b"params", params)?;
        cx.set(b"genesis-validators", &(genesis_set.len() as u64).to_le_bytes())
    }
    fn call(&self, cx: &mut dyn ModuleContext, call: &[u8]) -> Result<Vec<u8>, ModuleError> {
        match call.split_first() {
            Some((b's', set)) => cx.set(b"next", set).map(|()| vec![]),
            Some((b'k', key)) => cx.check_consensus_key(key).map(|()| vec![]),
            // The chain's epoch length, through the ledger's `chain` pseudo-module.
            Some((b'l', length)) => {
                let length = u64::from_le_bytes(length.try_into().map_err(|_| ModuleError::BadCall("8 bytes".into()))?);
                cx.call_module("chain", &ChainCall::SetEpochLength { length }.encode())
            }
            _ => Err(ModuleError::UnknownMethod(String::from_utf8_lossy(call).into_owned())),
        }
    }
    fn end_epoch(&self, cx: &mut dyn ModuleContext, epoch: u64) -> Result<Option<Vec<ValidatorEntry>>, ModuleError> {
        cx.set(b"last-epoch-closed", &epoch.to_le_bytes())?;
        let Some(bytes) = cx.get(b"next")? else { return Ok(None) };
        cx.remove(b"next")?;
        codec::decode("set", &bytes, usize::MAX).map(Some).map_err(|e| ModuleError::BadCall(e.to_string()))
    }
}

fn genesis(params: &str) -> Genesis {
    Genesis {
        chain_id: CHAIN.into(),
        genesis_time_ms: 1000,
        accounts: vec![GenesisAccount { address: key(1).address(), balance: 1_000_000 }],
        validators: vec![entry(100, 10)],
        modules: vec![GenesisModule { name: "rotator".into(), version: 1, mint: false, params: params.into(), govern_chain: false }],
        epochs: Some(EpochSchedule { length: EPOCH_LENGTH, validator_source: Some("rotator".into()) }),
    }
}

fn ledger() -> Ledger {
    ledger_with(genesis(r#"{"a":1}"#))
}

fn ledger_with(genesis: Genesis) -> Ledger {
    Ledger::open(Arc::new(MemoryStore::new()), &genesis)
        .unwrap()
        .with_module(Arc::new(Rotator))
        // Consensus keys here are ed25519 keys (as `solo` checks them).
        .with_consensus_key_check(|k| match <[u8; 32]>::try_from(k) {
            Ok(k) => PublicKey(k).check().map_err(|e| e.to_string()),
            Err(_) => Err(format!("{} bytes", k.len())),
        })
}

fn call(nonce: u64, call: Vec<u8>) -> SignedTransaction {
    TxBody {
        chain_id: CHAIN.into(),
        sender: key(1).public(),
        nonce,
        fee: 10_000,
        action: Action::Module { module: "rotator".into(), call, value: 0, gas_limit: 10_000_000 },
    }
    .sign(&key(1))
}

fn set_call(nonce: u64, set: &[ValidatorEntry]) -> SignedTransaction {
    let mut bytes = vec![b's'];
    bytes.extend(codec::encode(&set.to_vec()));
    call(nonce, bytes)
}

fn commit(l: &Ledger, txs: Vec<SignedTransaction>) -> Arc<ExecutedBlock> {
    let head = l.head();
    let built = l.build_block(&head.block.hash, head.certificate, txs, vec![], head.header.time_ms + 10, key(100).address()).unwrap();
    assert!(built.rejected.is_empty(), "{:?}", built.rejected);
    l.commit(&built.executed.hash, &Certificate(vec![1])).unwrap()
}

#[test]
fn the_last_block_of_each_epoch_commits_to_the_next_set_and_a_follower_agrees() {
    let l = ledger();
    let follower = ledger();
    let second = vec![entry(100, 10), entry(101, 20)];
    let third = vec![entry(102, 5)];
    let mut nonce = 0;
    for height in 1..=3 * EPOCH_LENGTH {
        let txs = match height {
            2 => vec![set_call(0, &second)],
            // Named in epoch 1's second block: the set of epoch 2.
            5 => vec![set_call(1, &third)],
            _ => vec![],
        };
        nonce += txs.len() as u64;
        let b = commit(&l, txs);
        assert!(b.receipts.iter().all(|r| r.status == TxStatus::Success), "{:?}", b.receipts);
        let epoch = height.saturating_sub(1) / EPOCH_LENGTH;
        let expected = match (height % EPOCH_LENGTH == 0, epoch) {
            (false, _) => None,
            (true, 0) => Some(validator_set_commitment(1, &second)),
            (true, 1) => Some(validator_set_commitment(2, &third)),
            // Nothing named: epoch 2's set carries over.
            (true, _) => Some(validator_set_commitment(3, &third)),
        };
        assert_eq!(b.block.header.next_validators, expected, "height {height}");
        assert_eq!(l.epoch_of(height), epoch);
        let replayed = follower.execute_block(b.block.clone()).expect("the follower computes the same commitment and roots");
        follower.commit(&replayed.hash, &Certificate(vec![1])).unwrap();
    }
    assert_eq!(nonce, 2);
    assert_eq!(l.validator_set(0).unwrap(), Some(vec![entry(100, 10)]));
    assert_eq!(l.validator_set(1).unwrap(), Some(second));
    assert_eq!(l.validator_set(2).unwrap(), Some(third.clone()));
    assert_eq!(l.validator_set(3).unwrap(), Some(third));
    assert_eq!(l.validator_set(4).unwrap(), None, "epoch 4 is not reached");
    assert_eq!(l.contract_storage(&module_address("rotator"), b"last-epoch-closed").unwrap(), Some(2u64.to_le_bytes().to_vec()));
    // The records are state: the roots cover them.
    assert_eq!(l.recompute_state_root().unwrap(), l.head().header.state_root);
}

#[test]
fn a_set_the_ledger_refuses_keeps_the_current_one_and_reverts_the_hook() {
    let bad_sets: Vec<(Vec<ValidatorEntry>, &str)> = vec![
        (vec![], "the next validator set is empty"),
        (vec![entry(101, 1), entry(101, 2)], "appears twice in the next set"),
        (vec![entry(101, 0)], "validator v101 has zero stake in the next set"),
        (vec![ValidatorEntry { consensus_key: vec![1, 2, 3], ..entry(101, 1) }], "validator v101: consensus key: 3 bytes"),
    ];
    for (set, why) in bad_sets {
        let l = ledger();
        commit(&l, vec![set_call(0, &set)]);
        commit(&l, vec![]);
        let boundary = commit(&l, vec![]);
        let failed: Vec<String> = boundary
            .hook_events
            .iter()
            .filter(|e| e.topic == b"hook_failed")
            .map(|e| String::from_utf8_lossy(&e.data).into_owned())
            .collect();
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert!(failed[0].starts_with("end_epoch: ") && failed[0].contains(why), "{failed:?} should say {why:?}");
        assert_eq!(l.validator_set(1).unwrap(), Some(vec![entry(100, 10)]), "the genesis set carries over");
        assert_eq!(boundary.block.header.next_validators, Some(validator_set_commitment(1, &[entry(100, 10)])));
        // The hook's writes went with it: the refused set is still stored, the epoch not noted.
        let rotator = module_address("rotator");
        assert!(l.contract_storage(&rotator, b"next").unwrap().is_some());
        assert_eq!(l.contract_storage(&rotator, b"last-epoch-closed").unwrap(), None);
    }
}

#[test]
fn a_block_with_a_forged_or_missing_commitment_is_refused() {
    let l = ledger();
    let follower = ledger();
    for _ in 0..EPOCH_LENGTH - 1 {
        let b = commit(&l, vec![]);
        let replayed = follower.execute_block(b.block.clone()).unwrap();
        follower.commit(&replayed.hash, &Certificate(vec![1])).unwrap();
    }
    let head = l.head();
    let built = l.build_block(&head.block.hash, head.certificate, vec![], vec![], head.header.time_ms + 10, key(100).address()).unwrap();
    let honest = built.executed.block.clone();
    assert!(honest.header.next_validators.is_some());

    let mut forged = honest.clone();
    forged.header.next_validators = Some(validator_set_commitment(1, &[entry(66, 1_000)]));
    let err = follower.execute_block(forged).unwrap_err();
    assert!(matches!(err, LedgerError::InvalidBlock(ref m) if m.contains("header commits to next validator set")), "{err}");

    let mut missing = honest.clone();
    missing.header.next_validators = None;
    let err = follower.execute_block(missing).unwrap_err();
    assert!(matches!(err, LedgerError::InvalidBlock(ref m) if m.contains("lacks the next validator set")), "{err}");

    follower.execute_block(honest).expect("the honest block executes");
}

#[test]
fn init_genesis_runs_once_in_block_one_with_the_genesis_parameters_and_bad_ones_are_refused_at_start() {
    let l = ledger();
    l.check_genesis_init().expect("good parameters pass");
    commit(&l, vec![]);
    let rotator = module_address("rotator");
    assert_eq!(l.contract_storage(&rotator, b"params").unwrap(), Some(br#"{"a":1}"#.to_vec()));
    assert_eq!(l.contract_storage(&rotator, b"genesis-validators").unwrap(), Some(1u64.to_le_bytes().to_vec()));
    // Changed by hand, then a later block: init does not run again.
    commit(&l, vec![]);
    assert_eq!(l.contract_storage(&rotator, b"params").unwrap(), Some(br#"{"a":1}"#.to_vec()));

    let refused = ledger_with(genesis(r#"{"refuse":true}"#));
    let err = refused.check_genesis_init().unwrap_err();
    assert_eq!(err.to_string(), "genesis parameters of module rotator are refused: refusing these parameters");
}

#[test]
fn genesis_parameters_hash_the_same_however_the_file_orders_their_keys() {
    let parse = |text: &str| -> Genesis {
        let mut g = genesis("");
        g.modules.clear();
        let json = serde_json::json!({
            "chain_id": CHAIN, "genesis_time_ms": 1000, "validators": [],
            "modules": [{"name": "rotator", "version": 1, "params": serde_json::from_str::<serde_json::Value>(text).unwrap()}],
        });
        let mut parsed: Genesis = serde_json::from_value(json).unwrap();
        parsed.validators = g.validators;
        parsed
    };
    let a = parse(r#"{"b": {"y": 1, "x": [2, 3]}, "a": "s"}"#);
    let b = parse(r#"{"a": "s", "b": {"x": [2, 3], "y": 1}}"#);
    assert_eq!(a.modules[0].params, r#"{"a":"s","b":{"x":[2,3],"y":1}}"#);
    assert_eq!(Ledger::genesis_block(&a).hash(), Ledger::genesis_block(&b).hash());
    let c = parse(r#"{"a": "t", "b": {"x": [2, 3], "y": 1}}"#);
    assert_ne!(Ledger::genesis_block(&a).hash(), Ledger::genesis_block(&c).hash(), "other parameters are another chain");
    a.validate().unwrap();
    // Written from Rust, parameters must already be in that form: one chain, one text.
    let mut spaced = a.clone();
    spaced.modules[0].params = r#"{"a": "s"}"#.into();
    assert_eq!(
        spaced.validate().unwrap_err().to_string(),
        r#"genesis is not valid: module rotator: params must be canonical JSON: {"a":"s"}"#
    );
}

#[test]
fn a_module_checks_consensus_keys_with_the_engines_rule() {
    let l = ledger();
    let mut good = vec![b'k'];
    good.extend(key(7).public().0);
    let b = commit(&l, vec![call(0, good), call(1, b"k\x01\x02".to_vec())]);
    assert_eq!(b.receipts[0].status, TxStatus::Success);
    assert_eq!(b.receipts[1].status, TxStatus::Failed { reason: "module rotator: the consensus key is not valid: 2 bytes".into() });
    assert!(b.receipts[0].gas_used >= aether_api::module::CHECK_CONSENSUS_KEY_GAS);
}

fn length_call(nonce: u64, length: u64) -> SignedTransaction {
    let mut bytes = vec![b'l'];
    bytes.extend(length.to_le_bytes());
    call(nonce, bytes)
}

/// Genesis with the rotator granted `govern_chain`.
fn governed_genesis() -> Genesis {
    let mut g = genesis(r#"{"a":1}"#);
    g.modules[0].govern_chain = true;
    g
}

fn open_on(store: &Arc<MemoryStore>, genesis: &Genesis) -> Ledger {
    Ledger::open(store.clone(), genesis).unwrap().with_module(Arc::new(Rotator)).with_consensus_key_check(|k| {
        match <[u8; 32]>::try_from(k) {
            Ok(k) => PublicKey(k).check().map_err(|e| e.to_string()),
            Err(_) => Err(format!("{} bytes", k.len())),
        }
    })
}

#[test]
fn a_granted_module_changes_the_epoch_length_from_the_next_epoch_and_everyone_agrees() {
    const NEW: u64 = 5;
    let genesis = governed_genesis();
    let store = Arc::new(MemoryStore::new());
    let l = open_on(&store, &genesis);
    let follower = open_on(&Arc::new(MemoryStore::new()), &genesis);
    let (first, third) = (vec![entry(100, 10)], vec![entry(102, 5)]);
    // Epochs 0 and 1 keep length 3 (the length is set in epoch 1, at height 4); from epoch 2 on
    // they are 5 long: 7..=11, 12..=16.
    let boundaries = [3u64, 6, 11, 16];
    let mut nonce = 0;
    for height in 1..=16u64 {
        let txs = match height {
            4 => vec![length_call(nonce, NEW)],
            // Named in epoch 2 (where length 3 would have had a boundary at 9): epoch 3's set.
            8 => vec![set_call(nonce, &third)],
            _ => vec![],
        };
        nonce += txs.len() as u64;
        let b = commit(&l, txs);
        assert!(b.receipts.iter().all(|r| r.status == TxStatus::Success), "{:?}", b.receipts);
        let expected = match height {
            3 => Some(validator_set_commitment(1, &first)),
            // The boundary of the epoch that set the length vouches for it with the next set.
            6 => Some(epoch_start_commitment(2, &first, Some(NEW))),
            11 => Some(validator_set_commitment(3, &third)),
            16 => Some(validator_set_commitment(4, &third)),
            _ => None,
        };
        assert_eq!(b.block.header.next_validators, expected, "height {height}");
        assert_eq!(boundaries.contains(&height), expected.is_some());
        let epoch = boundaries.iter().filter(|&&last| last < height).count() as u64;
        assert_eq!(l.epoch_of(height), epoch, "height {height}");
        let replayed = follower.execute_block(b.block.clone()).expect("the follower computes the same commitments and roots");
        follower.commit(&replayed.hash, &Certificate(vec![1])).unwrap();
    }
    let timeline = l.epoch_timeline().unwrap();
    assert_eq!(timeline.changes(), &[EpochLengthChange { epoch: 2, first_height: 7, length: NEW }]);
    assert_eq!([0, 1, 2, 3, 4].map(|e| (timeline.first_height(e), timeline.last_height(e))), [(1, 3), (4, 6), (7, 11), (12, 16), (17, 21)]);
    assert_eq!(follower.epoch_timeline(), Some(timeline.clone()));
    assert_eq!(l.validator_set(3).unwrap(), Some(third.clone()));
    assert_eq!(l.validator_set(4).unwrap(), Some(third));
    assert_eq!(l.contract_storage(&module_address("rotator"), b"last-epoch-closed").unwrap(), Some(3u64.to_le_bytes().to_vec()));
    // The light client's view: one change per epoch, at the new boundaries, the length carried
    // by the one that changed it.
    let changes = l.epoch_changes(0, 4).unwrap().unwrap();
    assert_eq!(
        changes.iter().map(|c| (c.header.height, c.next_length)).collect::<Vec<_>>(),
        [(3, None), (6, Some(NEW)), (11, None), (16, None)]
    );
    // The query reports the history and no pending length.
    let answer = l.module_query("chain", "epochs", &[], 1_000_000).unwrap().answer.unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer, serde_json::json!({"changes": [{"epoch": 2, "first_height": 7, "length": NEW}], "pending_length": null}));
    // A restarted node reads the same schedule from its store.
    drop(l);
    let reopened = open_on(&store, &genesis);
    assert_eq!(reopened.epoch_timeline(), Some(timeline));
    assert_eq!(reopened.epoch_of(17), 4);
    assert_eq!(reopened.recompute_state_root().unwrap(), reopened.head().header.state_root);
}

#[test]
fn a_boundary_header_that_hides_or_forges_the_new_length_is_refused() {
    let genesis = governed_genesis();
    let l = open_on(&Arc::new(MemoryStore::new()), &genesis);
    let follower = open_on(&Arc::new(MemoryStore::new()), &genesis);
    for txs in [vec![length_call(0, 4)], vec![]] {
        let b = commit(&l, txs);
        let replayed = follower.execute_block(b.block.clone()).unwrap();
        follower.commit(&replayed.hash, &Certificate(vec![1])).unwrap();
    }
    let head = l.head();
    let built = l.build_block(&head.block.hash, head.certificate, vec![], vec![], head.header.time_ms + 10, key(100).address()).unwrap();
    let honest = built.executed.block.clone();
    assert_eq!(honest.header.next_validators, Some(epoch_start_commitment(1, &[entry(100, 10)], Some(4))));
    for forged_commitment in [validator_set_commitment(1, &[entry(100, 10)]), epoch_start_commitment(1, &[entry(100, 10)], Some(5))] {
        let mut forged = honest.clone();
        forged.header.next_validators = Some(forged_commitment);
        let err = follower.execute_block(forged).unwrap_err();
        assert!(matches!(err, LedgerError::InvalidBlock(ref m) if m.contains("header commits to next validator set")), "{err}");
    }
    follower.execute_block(honest).expect("the honest block executes");
}

#[test]
fn an_epoch_length_out_of_bounds_or_without_the_grant_is_refused_with_a_clear_error() {
    let l = open_on(&Arc::new(MemoryStore::new()), &governed_genesis());
    let b = commit(&l, vec![length_call(0, 0), length_call(1, MAX_EPOCH_LENGTH + 1)]);
    let reasons: Vec<_> = b.receipts.iter().map(|r| r.status.clone()).collect();
    assert_eq!(
        reasons,
        [
            TxStatus::Failed { reason: "module rotator: epoch length 0 refused: it must be within 1..=1000000".into() },
            TxStatus::Failed {
                reason: format!("module rotator: epoch length {} refused: it must be within 1..=1000000", MAX_EPOCH_LENGTH + 1)
            },
        ]
    );
    commit(&l, vec![]);
    assert!(commit(&l, vec![]).block.header.next_validators == Some(validator_set_commitment(1, &[entry(100, 10)])));
    assert_eq!(l.epoch_timeline().unwrap().changes(), &[]);

    let ungranted = ledger();
    let b = commit(&ungranted, vec![length_call(0, 4)]);
    let TxStatus::Failed { reason } = &b.receipts[0].status else { panic!("{:?}", b.receipts[0]) };
    assert!(reason.contains("only a module genesis grants `govern_chain`"), "{reason}");

    let mut no_epochs = governed_genesis();
    no_epochs.epochs = None;
    let l = open_on(&Arc::new(MemoryStore::new()), &no_epochs);
    let b = commit(&l, vec![length_call(0, 4)]);
    let TxStatus::Failed { reason } = &b.receipts[0].status else { panic!("{:?}", b.receipts[0]) };
    assert!(reason.contains("this chain has no epochs"), "{reason}");
}
