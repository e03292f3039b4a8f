//! Module upgrades and chain parameters through the ledger: a migration that runs exactly once
//! at its height (on the chain, after a restart, on a follower), a failed one that leaves the
//! old version, a node that lacks the new version refusing the block, parameters that apply
//! from the block after the change (blocks and mempool), the `govern_chain` grant and bounds.

use std::sync::Arc;

use aether_api::chain::{ChainCall, ChainParams, ModuleVersion, ScheduledUpgrade, MAX_BLOCK_GAS_CEILING};
use aether_api::module::{module_address, ModuleContext, ModuleError, RuntimeModule};
use aether_node::ledger::{ExecutedBlock, Ledger, LedgerError, TxError};
use aether_node::mempool::{FeePriority, Mempool, MempoolConfig, SubmitError};
use aether_primitives::types::*;
use aether_storage_memory::MemoryStore;

const CHAIN: &str = "upgrades";

fn key(n: u8) -> Keypair {
    Keypair::from_seed([n; 32])
}

/// What every version of the `notes` module shares: `put:K=V` keeps a note under
/// `<prefix>K` (upper-cased from version 2 on), `version` answers the version, and `end_block`
/// records which version ran at each height (`ran/<height>` = version).
fn notes_call(cx: &mut dyn ModuleContext, version: u32, call: &[u8]) -> Result<Vec<u8>, ModuleError> {
    let text = std::str::from_utf8(call).map_err(|e| ModuleError::BadCall(e.to_string()))?;
    if text == "version" {
        return Ok(vec![version as u8]);
    }
    let Some((k, v)) = text.strip_prefix("put:").and_then(|kv| kv.split_once('=')) else {
        return Err(ModuleError::UnknownMethod(text.into()));
    };
    let (prefix, value) = if version == 1 { ("v1/", v.to_string()) } else { ("v2/", v.to_uppercase()) };
    cx.set(format!("{prefix}{k}").as_bytes(), value.as_bytes())?;
    Ok(vec![])
}

fn record_run(cx: &mut dyn ModuleContext, version: u32) -> Result<(), ModuleError> {
    let height = cx.height();
    cx.set(&ran_key(height), &[version as u8])
}

fn ran_key(height: Height) -> Vec<u8> {
    [b"ran/".as_slice(), &height.to_be_bytes()].concat()
}

struct NotesV1;

impl RuntimeModule for NotesV1 {
    fn name(&self) -> &'static str {
        "notes"
    }
    fn version(&self) -> u32 {
        1
    }
    fn call(&self, cx: &mut dyn ModuleContext, call: &[u8]) -> Result<Vec<u8>, ModuleError> {
        notes_call(cx, 1, call)
    }
    fn end_block(&self, cx: &mut dyn ModuleContext) -> Result<(), ModuleError> {
        record_run(cx, 1)
    }
}

/// Version 2: its migration moves every `v1/` note to `v2/`, upper-cased, and counts itself.
struct NotesV2;

impl RuntimeModule for NotesV2 {
    fn name(&self) -> &'static str {
        "notes"
    }
    fn version(&self) -> u32 {
        2
    }
    fn call(&self, cx: &mut dyn ModuleContext, call: &[u8]) -> Result<Vec<u8>, ModuleError> {
        notes_call(cx, 2, call)
    }
    fn end_block(&self, cx: &mut dyn ModuleContext) -> Result<(), ModuleError> {
        record_run(cx, 2)
    }
    fn migrate(&self, cx: &mut dyn ModuleContext, from_version: u32) -> Result<(), ModuleError> {
        if from_version != 1 {
            return Err(ModuleError::Failed(format!("no migration from version {from_version}")));
        }
        let mut after: Option<Vec<u8>> = None;
        while let Some(key) = cx.next_key(b"v1/", after.as_deref())? {
            let value = cx.get(&key)?.unwrap_or_default();
            let upper = String::from_utf8_lossy(&value).to_uppercase();
            cx.set(&[b"v2/".as_slice(), &key[3..]].concat(), upper.as_bytes())?;
            cx.remove(&key)?;
            after = Some(key);
        }
        let runs = cx.get(b"migrations")?.map_or(0, |v| v[0]) + 1;
        cx.set(b"migrations", &[runs])
    }
}

/// A version 2 whose migration writes, then fails (or runs out of gas, with `spin`).
struct BrokenNotesV2 {
    spin: bool,
}

impl RuntimeModule for BrokenNotesV2 {
    fn name(&self) -> &'static str {
        "notes"
    }
    fn version(&self) -> u32 {
        2
    }
    fn call(&self, cx: &mut dyn ModuleContext, call: &[u8]) -> Result<Vec<u8>, ModuleError> {
        notes_call(cx, 2, call)
    }
    fn migrate(&self, cx: &mut dyn ModuleContext, _from_version: u32) -> Result<(), ModuleError> {
        cx.set(b"migrations", &[1])?;
        if self.spin {
            loop {
                cx.charge(1_000_000)?;
            }
        }
        Err(ModuleError::Failed("the v1 notes cannot be read".into()))
    }
}

/// Passes its call to the ledger's `chain` pseudo-module, as itself: `gov` has the
/// `govern_chain` grant, `rogue` has not.
struct Forwarder(&'static str);

impl RuntimeModule for Forwarder {
    fn name(&self) -> &'static str {
        self.0
    }
    fn version(&self) -> u32 {
        1
    }
    fn call(&self, cx: &mut dyn ModuleContext, call: &[u8]) -> Result<Vec<u8>, ModuleError> {
        cx.call_module("chain", call)
    }
}

fn genesis() -> Genesis {
    let module =
        |name: &str, govern_chain| GenesisModule { name: name.into(), version: 1, mint: false, params: String::new(), govern_chain };
    Genesis {
        chain_id: CHAIN.into(),
        genesis_time_ms: 1000,
        modules: vec![module("notes", false), module("gov", true), module("rogue", false)],
        epochs: None,
        accounts: (1..=3).map(|n| GenesisAccount { address: key(n).address(), balance: 1_000_000_000 }).collect(),
        validators: vec![GenesisValidator { name: "v".into(), identity: key(100).public(), consensus_key: vec![], stake: 1 }],
    }
}

/// A ledger on `store` running `notes` version 1 from genesis, carrying `versions` besides.
fn open(store: &Arc<MemoryStore>, versions: Vec<Arc<dyn RuntimeModule>>) -> Ledger {
    let mut ledger = Ledger::open(store.clone(), &genesis())
        .unwrap()
        .with_module(Arc::new(NotesV1))
        .with_module(Arc::new(Forwarder("gov")))
        .with_module(Arc::new(Forwarder("rogue")));
    for version in versions {
        ledger = ledger.with_module_version(version);
    }
    ledger
}

fn tx(from: u8, nonce: u64, module: &str, call: &[u8], gas_limit: u64, fee: Amount) -> SignedTransaction {
    let action = Action::Module { module: module.into(), call: call.to_vec(), value: 0, gas_limit };
    TxBody { chain_id: CHAIN.into(), sender: key(from).public(), nonce, fee, action }.sign(&key(from))
}

/// A transaction of account 1 with room for a migration-free call.
fn call(nonce: u64, module: &str, call: &[u8]) -> SignedTransaction {
    tx(1, nonce, module, call, 1_000_000, 1_000)
}

fn schedule(module: &str, version: u32, height: Height) -> Vec<u8> {
    ChainCall::ScheduleUpgrade { module: module.into(), version, height }.encode()
}

fn commit(l: &Ledger, txs: Vec<SignedTransaction>) -> (Arc<ExecutedBlock>, Vec<(Hash, TxError)>) {
    let head = l.head();
    let built = l.build_block(&head.block.hash, head.certificate, txs, vec![], head.header.time_ms + 10, key(100).address()).unwrap();
    (l.commit(&built.executed.hash, &Certificate(vec![1])).unwrap(), built.rejected)
}

/// Re-executes and commits on `follower` the blocks `leader` committed above its head.
fn replay(leader: &Ledger, follower: &Ledger) -> Result<(), LedgerError> {
    for height in follower.head().block.height + 1..=leader.head().block.height {
        let (block, certificate) = leader.block_by_height(height)?.unwrap();
        let executed = follower.execute_block(block)?;
        follower.commit(&executed.hash, &certificate)?;
        assert_eq!(follower.head().header.state_root, leader.block_by_height(height)?.unwrap().0.header.state_root);
    }
    Ok(())
}

fn note(l: &Ledger, key: &[u8]) -> Option<Vec<u8>> {
    l.contract_storage(&module_address("notes"), key).unwrap()
}

fn versions(l: &Ledger) -> Vec<ModuleVersion> {
    serde_json::from_slice(&l.module_query("chain", "modules", &[], 0).unwrap().answer.unwrap()).unwrap()
}

fn version(name: &str, version: u32, scheduled: Option<(u32, Height)>) -> ModuleVersion {
    ModuleVersion { name: name.into(), version, scheduled: scheduled.map(|(version, height)| ScheduledUpgrade { version, height }) }
}

fn events(block: &ExecutedBlock, topic: &[u8]) -> Vec<String> {
    block.hook_events.iter().filter(|e| e.topic == topic).map(|e| String::from_utf8_lossy(&e.data).into_owned()).collect()
}

fn assert_success(block: &ExecutedBlock) {
    for (i, r) in block.receipts.iter().enumerate() {
        assert_eq!(r.status, TxStatus::Success, "transaction {i} at height {}", block.block.header.height);
    }
}

#[test]
fn a_module_upgrades_migration_runs_exactly_once_at_its_height() {
    let store = Arc::new(MemoryStore::new());
    let l = open(&store, vec![Arc::new(NotesV2)]);
    // Height 1: two notes under version 1, and the upgrade to version 2 at height 4.
    let (b, rejected) =
        commit(&l, vec![call(0, "notes", b"put:a=x"), call(1, "notes", b"put:b=y"), call(2, "gov", &schedule("notes", 2, 4))]);
    assert!(rejected.is_empty(), "{rejected:?}");
    assert_success(&b);
    assert_eq!(versions(&l), vec![version("notes", 1, Some((2, 4))), version("gov", 1, None), version("rogue", 1, None)]);
    commit(&l, vec![]);
    // Height 3, the block before: version 1 answers calls and runs the hooks.
    let (b, _) = commit(&l, vec![call(3, "notes", b"version")]);
    assert_eq!(b.receipts[0].output, vec![1]);
    assert_eq!(note(&l, &ran_key(3)), Some(vec![1]));
    assert_eq!(note(&l, b"migrations"), None);
    // Height 4: switched before any hook; the block's calls and hooks run version 2.
    let (b, _) = commit(&l, vec![call(4, "notes", b"version"), call(5, "notes", b"put:c=z")]);
    assert_success(&b);
    assert_eq!(b.receipts[0].output, vec![2]);
    assert_eq!(events(&b, b"module_upgraded"), vec!["version 1 to 2"]);
    assert!(events(&b, b"hook_failed").is_empty());
    assert_eq!(note(&l, &ran_key(4)), Some(vec![2]));
    assert_eq!(note(&l, b"v2/c"), Some(b"Z".to_vec()));
    // The migration moved version 1's notes.
    assert_eq!((note(&l, b"v1/a"), note(&l, b"v1/b")), (None, None));
    assert_eq!((note(&l, b"v2/a"), note(&l, b"v2/b")), (Some(b"X".to_vec()), Some(b"Y".to_vec())));
    assert_eq!(note(&l, b"migrations"), Some(vec![1]));
    assert_eq!(versions(&l)[0], version("notes", 2, None));
    for _ in 0..10 {
        let (b, _) = commit(&l, vec![]);
        assert!(events(&b, b"module_upgraded").is_empty());
    }
    assert_eq!(note(&l, b"migrations"), Some(vec![1]), "once, however many blocks follow");
    assert_eq!(note(&l, &ran_key(14)), Some(vec![2]));

    // A restart reads the active version from the state on disk.
    drop(l);
    let l = open(&store, vec![Arc::new(NotesV2)]);
    assert_eq!(l.check_module_versions().unwrap(), Vec::<String>::new());
    let (b, _) = commit(&l, vec![call(6, "notes", b"version")]);
    assert_eq!(b.receipts[0].output, vec![2]);
    assert_eq!(note(&l, &ran_key(15)), Some(vec![2]));
    assert_eq!(note(&l, b"migrations"), Some(vec![1]));

    // A follower replaying every block reaches every root and migrates once, at height 4.
    let follower = open(&Arc::new(MemoryStore::new()), vec![Arc::new(NotesV2)]);
    replay(&l, &follower).unwrap();
    assert_eq!(follower.head(), l.head());
    assert_eq!(
        (note(&follower, b"migrations"), note(&follower, &ran_key(3)), note(&follower, &ran_key(4))),
        (Some(vec![1]), Some(vec![1]), Some(vec![2]))
    );
}

#[test]
fn a_failing_or_out_of_gas_migration_is_reverted_alone_and_the_module_stays_on_its_version() {
    for (spin, reason) in [(false, "migrate to version 2: the v1 notes cannot be read"), (true, "migrate to version 2: out of gas")] {
        let l = open(&Arc::new(MemoryStore::new()), vec![Arc::new(BrokenNotesV2 { spin })]);
        let (b, _) = commit(&l, vec![call(0, "notes", b"put:a=x"), call(1, "gov", &schedule("notes", 2, 3))]);
        assert_success(&b);
        commit(&l, vec![]);
        let (b, _) = commit(&l, vec![call(2, "notes", b"version")]);
        let failed: Vec<(Address, String)> = b
            .hook_events
            .iter()
            .filter(|e| e.topic == b"hook_failed")
            .map(|e| (e.emitter, String::from_utf8_lossy(&e.data).into_owned()))
            .collect();
        assert_eq!(failed, vec![(module_address("notes"), reason.to_string())]);
        assert!(events(&b, b"module_upgraded").is_empty());
        assert_eq!(b.receipts[0].output, vec![1], "the block runs version 1");
        assert_eq!(note(&l, &ran_key(3)), Some(vec![1]));
        assert_eq!(note(&l, b"migrations"), None, "the migration's write is reverted");
        assert_eq!(note(&l, b"v1/a"), Some(b"x".to_vec()));
        assert_eq!(versions(&l)[0], version("notes", 1, None), "the schedule is consumed: no retry");
        for _ in 0..3 {
            let (b, _) = commit(&l, vec![]);
            assert!(events(&b, b"hook_failed").is_empty());
        }
        assert_eq!(note(&l, &ran_key(6)), Some(vec![1]), "the chain goes on, on version 1");
    }
}

#[test]
fn a_node_without_the_new_version_refuses_the_upgrade_block_naming_module_and_version() {
    let store = Arc::new(MemoryStore::new());
    let l = open(&store, vec![Arc::new(NotesV2)]);
    let lacking = open(&Arc::new(MemoryStore::new()), vec![]);
    commit(&l, vec![call(0, "gov", &schedule("notes", 2, 3))]);
    commit(&l, vec![]);
    replay(&l, &lacking).unwrap();
    // At start, a scheduled version it lacks is a warning: it can run until then.
    assert_eq!(
        lacking.check_module_versions().unwrap(),
        vec!["the chain upgrades module notes to version 2 at height 3, which this node lacks: it will refuse that block; upgrade the node before then"]
    );
    commit(&l, vec![]);
    let expected = "block 3 needs module notes version 2, which this node lacks (it carries version 1); upgrade the node to a build that registers module notes version 2";
    let err = replay(&l, &lacking).unwrap_err();
    assert!(matches!(err, LedgerError::ModuleVersionMissing { version: 2, height: 3, .. }), "{err:?}");
    assert_eq!(err.to_string(), expected);
    // Nor does it build block 3 with the old code.
    let head = lacking.head();
    let err =
        lacking.build_block(&head.block.hash, head.certificate, vec![], vec![], head.header.time_ms + 10, key(100).address()).unwrap_err();
    assert_eq!(err.to_string(), expected);
    assert_eq!(lacking.head().block.height, 2);

    // A node restarted past the upgrade without version 2 refuses to start.
    drop(l);
    let err = open(&store, vec![]).check_module_versions().unwrap_err();
    assert_eq!(
        err.to_string(),
        "block 4 needs module notes version 2, which this node lacks (it carries version 1); upgrade the node to a build that registers module notes version 2"
    );
}

#[test]
fn chain_parameters_apply_from_the_block_after_the_change_to_blocks_and_the_mempool() {
    let l = Arc::new(open(&Arc::new(MemoryStore::new()), vec![]));
    let follower = open(&Arc::new(MemoryStore::new()), vec![]);
    let pool = Mempool::new(MempoolConfig::default(), l.clone(), Arc::new(FeePriority));
    assert_eq!(l.chain_params().unwrap(), ChainParams::DEFAULT);
    let answer = l.module_query("chain", "params", &[], 0).unwrap().answer.unwrap();
    assert_eq!(String::from_utf8(answer).unwrap(), r#"{"max_block_gas":500000000,"gas_per_fee_unit":1000}"#);

    let lowered = ChainParams { max_block_gas: 1_000_000, gas_per_fee_unit: 100 };
    // Over the new block gas limit, and paying the old fee floor but not the new one.
    let big = |from, nonce| tx(from, nonce, "notes", b"version", 2_000_000, 2_000);
    let cheap = |from, nonce| tx(from, nonce, "notes", b"version", 500_000, 500);
    // Height 1 sets them; it runs under its parent's, so both transactions after the change pass.
    let set = call(0, "gov", &ChainCall::SetParams(lowered).encode());
    let (b, rejected) = commit(&l, vec![set, big(2, 0), cheap(3, 0)]);
    assert!(rejected.is_empty(), "{rejected:?}");
    assert_success(&b);
    assert_eq!(l.chain_params().unwrap(), lowered);

    // From height 2: refused by the mempool (head's parameters) and by blocks.
    let submit = |tx: &SignedTransaction| pool.submit(&aether_primitives::codec::encode(tx));
    assert_eq!(submit(&big(2, 1)), Err(SubmitError::GasLimitTooHigh { got: 2_000_000, max: 1_000_000 }));
    assert_eq!(submit(&cheap(3, 1)), Err(SubmitError::FeeTooLow { fee: 500, min: 5_000 }));
    assert!(submit(&tx(3, 1, "notes", b"version", 500_000, 5_000)).is_ok(), "the new floor is enough");
    let (b, rejected) = commit(&l, vec![big(2, 1), cheap(3, 1)]);
    assert!(b.block.transactions.is_empty());
    let errors: Vec<String> = rejected.iter().map(|(_, e)| e.to_string()).collect();
    assert_eq!(
        errors,
        vec![
            "gas limit 2000000 is above the most one transaction may ask for (1000000)",
            "fee 500 is below 5000, the least for a gas limit of 500000 (one fee unit per 100 gas)"
        ]
    );
    // The block's gas is the new limit: a second 600k transaction waits for the next block.
    let fits = |from, nonce| tx(from, nonce, "notes", b"version", 600_000, 6_000);
    let (b, rejected) = commit(&l, vec![fits(2, 1), fits(3, 1)]);
    assert_eq!((b.block.transactions.len(), rejected.len()), (1, 0));
    // A follower executes the same blocks under the same parameters, read from state.
    replay(&l, &follower).unwrap();
    assert_eq!(follower.chain_params().unwrap(), lowered);
}

#[test]
fn only_a_granted_module_may_change_chain_settings_and_only_within_bounds() {
    let l = open(&Arc::new(MemoryStore::new()), vec![Arc::new(NotesV2)]);
    let set = |max_block_gas, gas_per_fee_unit| ChainCall::SetParams(ChainParams { max_block_gas, gas_per_fee_unit }).encode();
    let cases: Vec<(&str, Vec<u8>, String)> = vec![
        (
            "rogue",
            set(1_000_000, 100),
            "module rogue: only a module genesis grants `govern_chain` may change the chain parameters or schedule module upgrades".into(),
        ),
        (
            "rogue",
            schedule("notes", 2, 5),
            "module rogue: only a module genesis grants `govern_chain` may change the chain parameters or schedule module upgrades".into(),
        ),
        (
            "chain",
            set(1_000_000, 100),
            "module chain: only a module genesis grants `govern_chain` may change the chain parameters or schedule module upgrades".into(),
        ),
        ("gov", set(0, 100), "module gov: chain parameters refused: max_block_gas must be above 0".into()),
        (
            "gov",
            set(MAX_BLOCK_GAS_CEILING + 1, 100),
            "module gov: chain parameters refused: max_block_gas 2000000001 is above the ceiling 2000000000".into(),
        ),
        ("gov", set(1_000_000, 0), "module gov: chain parameters refused: gas_per_fee_unit must be at least 1".into()),
        (
            "gov",
            schedule("notes", 2, 1),
            "module gov: an upgrade of notes cannot be scheduled at height 1: it must be after the current height 1".into(),
        ),
        ("gov", schedule("notes", 1, 5), "module gov: module notes already runs version 1".into()),
        ("gov", schedule("nope", 2, 5), "module gov: unknown module \"nope\"".into()),
    ];
    let txs = cases.iter().enumerate().map(|(i, (module, bytes, _))| call(i as u64, module, bytes)).collect();
    let (b, rejected) = commit(&l, txs);
    assert!(rejected.is_empty(), "{rejected:?}");
    for (i, (_, _, reason)) in cases.iter().enumerate() {
        assert_eq!(b.receipts[i].status, TxStatus::Failed { reason: reason.clone() }, "case {i}");
    }
    // Nothing changed: no record was written.
    assert_eq!(l.chain_params().unwrap(), ChainParams::DEFAULT);
    assert_eq!(versions(&l), vec![version("notes", 1, None), version("gov", 1, None), version("rogue", 1, None)]);
    // The bounds themselves are accepted.
    let (b, _) = commit(&l, vec![call(9, "gov", &set(MAX_BLOCK_GAS_CEILING, 1))]);
    assert_success(&b);
    assert_eq!(l.chain_params().unwrap(), ChainParams { max_block_gas: MAX_BLOCK_GAS_CEILING, gas_per_fee_unit: 1 });
}

#[test]
fn the_govern_chain_grant_is_part_of_the_chains_identity_only_when_given() {
    let granted = genesis();
    let mut plain = genesis();
    plain.modules[1].govern_chain = false;
    let old_rule = Hash::digest_parts(
        domain::GENESIS,
        &[&aether_primitives::codec::encode(&plain), &aether_primitives::codec::encode(&plain.modules)],
    );
    assert_eq!(Ledger::genesis_block(&plain).header.parent, old_rule, "without the grant a genesis keeps its hash");
    assert_ne!(Ledger::genesis_block(&granted).hash(), Ledger::genesis_block(&plain).hash());
    let json = serde_json::to_string(&plain).unwrap();
    assert!(!json.contains("govern_chain"), "absent from genesis.json when not granted: {json}");
    assert!(serde_json::to_string(&granted).unwrap().contains(r#""govern_chain":true"#));
    let mut reserved = genesis();
    reserved.modules[2].name = "chain".into();
    assert_eq!(
        reserved.validate().unwrap_err().to_string(),
        "genesis is not valid: module name \"chain\" is reserved for the ledger's chain parameters and module upgrades"
    );
}
