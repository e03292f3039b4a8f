//! The VM conformance suite: one call proves a backend returns the reference results and
//! charges the reference gas.
//!
//! ```ignore
//! aether_testkit::vm_conformance::check(&MyBackend::new()).unwrap();
//! ```
//!
//! The suite deploys a corpus of contracts ([`corpus`]) and runs a fixed script of calls — the
//! ordinary (arithmetic, storage, events, context, value, hashing, signatures, nested calls)
//! and the adversarial (an infinite loop, recursion with small and large frames, memory growth
//! to the limit and past it, out-of-bounds stores, every engine trap, host calls with
//! out-of-range pointers and lengths, re-entrancy, the call-depth limit, nested reverts and
//! out-of-gas, a 4,000-target `br_table`, and out-of-gas swept over every gas limit from 0 to
//! the full cost of a small call). Each step's result, gas used, events and state are written
//! as one line of a transcript, which must equal the reference transcript
//! (`reference.txt`, produced by the Wasmtime backend and checked against Wasmer) line for line.
//! Modules that validation must refuse are checked for the rule named.
//!
//! To regenerate the reference after a deliberate change to the gas schedule or the corpus
//! (a consensus change): `AETHER_VM_CONFORMANCE_BLESS=wasmtime cargo test --workspace --lib
//! conformance`, then review the diff of `reference.txt`.

pub mod corpus;

use sha2::{Digest, Sha256};

use crate::types::{Account, Address, Keypair};
use aether_vm::executor::{BlockContext, Executor};
use aether_vm::state::MemoryState;
use aether_vm::{CallOutcome, CallResult, VmBackend};

/// The reference transcript.
pub const REFERENCE: &str = include_str!("reference.txt");

/// A backend's transcript differs from the reference, or an invariant broke.
#[derive(Debug, thiserror::Error)]
pub enum ConformanceError {
    #[error("step {line} differs:\n  reference: {expected}\n  {backend}: {actual}")]
    Differs { backend: String, line: usize, expected: String, actual: String },
    #[error("{backend} produced {actual} lines, the reference {expected}")]
    Length { backend: String, expected: usize, actual: usize },
    #[error("invariant broken on {backend}: {0}", backend = .1)]
    Invariant(String, String),
}

const DEPLOYER: Address = Address([0xd0; 20]);
const USER: Address = Address([0x05; 20]);
const BLOCK: BlockContext = BlockContext { height: 42, time_ms: 1_700_000_000_123 };
const GAS: u64 = 10_000_000;

fn show(outcome: &CallOutcome) -> String {
    let result = match &outcome.result {
        CallResult::Returned(d) => format!("returned 0x{}", hex::encode(d)),
        CallResult::Reverted(d) => format!("reverted 0x{}", hex::encode(d)),
        CallResult::Trapped(why) => format!("trapped {why:?}"),
        CallResult::OutOfGas => "out-of-gas".to_string(),
    };
    format!("{result} gas={}", outcome.gas_used)
}

fn digest(data: impl AsRef<[u8]>) -> String {
    hex::encode(&Sha256::digest(data.as_ref())[..8])
}

/// Runs the script on `vm`; returns the transcript. Invariants that hold whatever the
/// reference says (gas within the limit, out-of-gas uses all of it, no engine stack overflow,
/// nothing kept from a failed call) are checked as it goes.
pub fn transcript(vm: &dyn VmBackend) -> Result<Vec<String>, ConformanceError> {
    let broken = |what: String| ConformanceError::Invariant(what, vm.name().to_string());
    let mut lines = Vec::new();
    let mut state = MemoryState::default();
    state.set_account(DEPLOYER, Account { balance: 1_000_000_000, ..Account::default() });
    state.set_account(USER, Account { balance: 1_000_000, ..Account::default() });
    let mut nonce = 0u64;

    let mut deploy = |state: &mut MemoryState, name: &str, code: &[u8], value: u128, lines: &mut Vec<String>| -> Address {
        let mut exec = Executor::new(vm, state, BLOCK);
        let (address, outcome) = exec.deploy(DEPLOYER, nonce, code, &[], value, GAS);
        nonce += 1;
        lines.push(format!("deploy {name}: {} at {address}", show(&outcome)));
        address
    };
    let wat = |s: &str| wat::parse_str(s).expect("corpus module parses");
    let adversary = deploy(&mut state, "adversary", &wat(corpus::ADVERSARY), 0, &mut lines);
    let store = deploy(&mut state, "store", &wat(corpus::STORE), 5_000, &mut lines);
    let proxies: Vec<Address> = (0..9).map(|i| deploy(&mut state, &format!("proxy{i}"), &wat(corpus::PROXY), 0, &mut lines)).collect();
    let br_table = deploy(&mut state, "br_table_4000", &wat(&corpus::br_table_module(4000)), 0, &mut lines);
    let memoryless = deploy(&mut state, "memoryless", &wat(corpus::MEMORYLESS), 0, &mut lines);

    let call = |state: &mut MemoryState, label: &str, caller: Address, to: Address, method: &str, input: &[u8], value: u128, gas: u64| {
        let before = format!("{:?}", state.kept());
        let mut exec = Executor::new(vm, state, BLOCK);
        let outcome = exec.call(caller, to, method, input, value, gas);
        let events = format!("{:?}", exec.events());
        let after = format!("{:?}", state.kept());
        if outcome.gas_used > gas {
            return Err(broken(format!("{label}: used {} gas of a {gas} limit", outcome.gas_used)));
        }
        if outcome.result == CallResult::OutOfGas && outcome.gas_used != gas {
            return Err(broken(format!("{label}: out of gas after {} of {gas}", outcome.gas_used)));
        }
        if let CallResult::Trapped(why) = &outcome.result {
            if why.contains("engine stack overflow") || why.starts_with("engine") {
                return Err(broken(format!("{label}: the engine failed rather than the metering: {why}")));
            }
        }
        // The fee and nonce live outside the executor; a failed call keeps nothing.
        if !matches!(outcome.result, CallResult::Returned(_)) && (before != after || events != "[]") {
            return Err(broken(format!("{label}: a failed call kept writes or events")));
        }
        Ok((outcome, events, after))
    };
    let step =
        |state: &mut MemoryState, lines: &mut Vec<String>, label: &str, to: Address, method: &str, input: &[u8], value: u128, gas: u64| {
            let (outcome, events, after) = call(state, label, USER, to, method, input, value, gas)?;
            lines.push(format!("{label}: {} events={} state={}", show(&outcome), digest(events), digest(after)));
            Ok::<CallOutcome, ConformanceError>(outcome)
        };

    // Ordinary execution.
    step(&mut state, &mut lines, "sum 1000", adversary, "sum", &1000u32.to_le_bytes(), 0, GAS)?;
    step(&mut state, &mut lines, "indirect calls", adversary, "indirect_ok", &[], 0, GAS)?;
    step(&mut state, &mut lines, "sign extension, multi-value", adversary, "allowed_features", &[], 0, GAS)?;
    step(&mut state, &mut lines, "bulk memory", adversary, "fill_copy", &[], 0, GAS)?;
    step(&mut state, &mut lines, "br_table of 4000", br_table, "jump", &[], 0, GAS)?;
    step(&mut state, &mut lines, "put", store, "put", b"first value", 0, GAS)?;
    step(&mut state, &mut lines, "get", store, "get", &[], 0, GAS)?;
    step(&mut state, &mut lines, "put again", store, "put", b"second", 0, GAS)?;
    step(&mut state, &mut lines, "put then revert", store, "put_then_revert", &[], 0, GAS)?;
    step(&mut state, &mut lines, "get after revert", store, "get", &[], 0, GAS)?;
    step(&mut state, &mut lines, "info with value", store, "info", &[], 777, GAS)?;
    step(&mut state, &mut lines, "value beyond balance", store, "info", &[], 10_000_000, GAS)?;
    step(&mut state, &mut lines, "sha256", store, "hash", b"abc", 0, GAS)?;
    let signer = Keypair::from_seed([7; 32]);
    let message = b"conformance";
    let mut verify_input = signer.public().0.to_vec();
    verify_input.extend_from_slice(&signer.sign(message).0);
    verify_input.extend_from_slice(message);
    step(&mut state, &mut lines, "ed25519 valid", store, "verify", &verify_input, 0, GAS)?;
    verify_input[40] ^= 1;
    step(&mut state, &mut lines, "ed25519 invalid", store, "verify", &verify_input, 0, GAS)?;
    let mut pay = USER.0.to_vec();
    pay.extend_from_slice(&100u128.to_le_bytes());
    step(&mut state, &mut lines, "pay", store, "pay", &pay, 0, GAS)?;
    step(&mut state, &mut lines, "pay then revert", store, "pay_then_revert", &pay, 0, GAS)?;
    let mut overpay = USER.0.to_vec();
    overpay.extend_from_slice(&u128::MAX.to_le_bytes());
    step(&mut state, &mut lines, "pay beyond balance", store, "pay", &overpay, 0, GAS)?;
    step(&mut state, &mut lines, "del", store, "del", &[], 0, GAS)?;
    step(&mut state, &mut lines, "get after del", store, "get", &[], 0, GAS)?;
    step(&mut state, &mut lines, "missing method", store, "nope", &[], 0, GAS)?;
    step(&mut state, &mut lines, "init after deploy", adversary, "init", &[], 0, GAS)?;
    step(&mut state, &mut lines, "not a contract", USER, "get", &[], 0, GAS)?;

    // Adversarial.
    step(&mut state, &mut lines, "infinite loop", adversary, "spin", &[], 0, 1_000_000)?;
    step(&mut state, &mut lines, "recursion, small frames", adversary, "recurse_small", &[], 0, GAS)?;
    step(&mut state, &mut lines, "recursion, large frames", adversary, "recurse_big", &[], 0, GAS)?;
    step(&mut state, &mut lines, "memory to the limit", adversary, "grow_all", &[], 0, GAS)?;
    step(&mut state, &mut lines, "memory past the limit", adversary, "grow_huge", &[], 0, GAS)?;
    step(&mut state, &mut lines, "memory past the limit, gas for it", adversary, "grow_huge", &[], 0, 500_000_000)?;
    step(&mut state, &mut lines, "constant operands", adversary, "constants", &[], 0, GAS)?;
    step(&mut state, &mut lines, "rem_s of MIN by -1", adversary, "rem_overflow", &[], 0, GAS)?;
    for method in ["empty_at_0", "empty_at_8", "empty_write_at_8", "byte_at_0"] {
        step(&mut state, &mut lines, &format!("memoryless {method}"), memoryless, method, &[], 0, GAS)?;
    }
    for trap in
        ["oob_store", "oob_after_grow", "unreachable", "div_zero", "overflow", "null_indirect", "indirect_out_of_range", "bad_signature"]
    {
        step(&mut state, &mut lines, trap, adversary, trap, &[], 0, GAS)?;
    }
    for host in ["host_oob_key", "host_oob_value", "host_long_key", "host_huge_len", "host_oob_output"] {
        step(&mut state, &mut lines, host, adversary, host, &[], 0, GAS)?;
    }

    // Nested calls: input for proxy = address, method, callee input.
    let route = |to: Address, method: &str, input: &[u8]| {
        let mut v = to.0.to_vec();
        v.push(method.len() as u8);
        v.extend_from_slice(method.as_bytes());
        v.extend_from_slice(input);
        v
    };
    step(&mut state, &mut lines, "nested get", proxies[0], "forward", &route(store, "put", b"via proxy"), 0, GAS)?;
    step(&mut state, &mut lines, "nested revert", proxies[0], "forward", &route(store, "put_then_revert", &[]), 0, GAS)?;
    step(&mut state, &mut lines, "nested out of gas", proxies[0], "forward", &route(adversary, "spin", &[]), 0, GAS)?;
    step(&mut state, &mut lines, "nested trap", proxies[0], "forward", &route(adversary, "div_zero", &[]), 0, GAS)?;
    step(&mut state, &mut lines, "nested missing contract", proxies[0], "forward", &route(Address([0xee; 20]), "get", &[]), 0, GAS)?;
    step(
        &mut state,
        &mut lines,
        "re-entrancy, self",
        proxies[0],
        "forward",
        &route(proxies[0], "forward", &route(store, "get", &[])),
        0,
        GAS,
    )?;
    let back = route(proxies[1], "forward", &route(proxies[0], "forward", &route(store, "get", &[])));
    step(&mut state, &mut lines, "re-entrancy, via another", proxies[0], "forward", &back, 0, GAS)?;
    let mut chain = route(store, "get", &[]);
    for p in proxies[1..].iter().rev() {
        chain = route(*p, "forward", &chain);
    }
    step(&mut state, &mut lines, "call depth limit", proxies[0], "forward", &chain, 0, 30_000_000)?;
    let mut deep = route(adversary, "recurse_big", &[]);
    for p in proxies[1..7].iter().rev() {
        deep = route(*p, "forward", &deep);
    }
    step(&mut state, &mut lines, "deep recursion at depth 8", proxies[0], "forward", &deep, 0, 30_000_000)?;
    step(&mut state, &mut lines, "nested out of gas, outer limit", proxies[0], "forward", &route(adversary, "spin", &[]), 0, 2_000_000)?;

    // Out of gas at every limit from 0 to the full cost of a small call that moves value (so
    // the sweep also checks that nothing of a starved call is kept).
    let mut pay_one = USER.0.to_vec();
    pay_one.extend_from_slice(&1u128.to_le_bytes());
    let full = call(&mut state, "sweep probe", USER, store, "pay", &pay_one, 0, GAS)?.0;
    lines.push(format!("sweep probe: {}", show(&full)));
    let mut sweep = Sha256::new();
    for limit in 0..full.gas_used {
        let (outcome, _, _) = call(&mut state, &format!("sweep at {limit}"), USER, store, "pay", &pay_one, 0, limit)?;
        if outcome.result != CallResult::OutOfGas {
            return Err(broken(format!("pay with {limit} of its {} gas did not run out: {}", full.gas_used, show(&outcome))));
        }
        sweep.update(show(&outcome).as_bytes());
    }
    lines.push(format!("sweep 0..{}: {}", full.gas_used, hex::encode(&sweep.finalize()[..8])));
    let exact = step(&mut state, &mut lines, "sweep at the full cost", store, "pay", &pay_one, 0, full.gas_used)?;
    if exact != full {
        return Err(broken(format!("pay with exactly its cost: {} (probe: {})", show(&exact), show(&full))));
    }

    // Validation refusals, checked by rule (they never reach the backend).
    for (name, code, rule) in corpus::refused() {
        match aether_vm::prepare(&code, &aether_vm::validate::Limits::default()) {
            Err(aether_vm::VmError::Invalid { rule: got, .. }) if got == rule => lines.push(format!("refuse {name}: {rule}")),
            other => return Err(broken(format!("{name}: expected rule `{rule}`, got {other:?}"))),
        }
    }
    let (_, refused) =
        Executor::new(vm, &mut state, BLOCK).deploy(DEPLOYER, 1_000, &wat("(module (func (result f32) (f32.const 1)))"), &[], 0, GAS);
    lines.push(format!("deploy refused: {}", show(&refused)));
    Ok(lines)
}

/// Runs the suite on `vm` and compares it with the reference. With
/// `AETHER_VM_CONFORMANCE_BLESS` set to the backend's name, writes its transcript as the new
/// reference instead.
pub fn check(vm: &dyn VmBackend) -> Result<(), ConformanceError> {
    let lines = transcript(vm)?;
    if std::env::var("AETHER_VM_CONFORMANCE_BLESS").is_ok_and(|name| name == vm.name()) {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/vm_conformance/reference.txt");
        std::fs::write(path, lines.join("\n") + "\n").expect("write the reference transcript");
        return Ok(());
    }
    let expected: Vec<&str> = REFERENCE.lines().collect();
    for (i, (e, a)) in expected.iter().zip(&lines).enumerate() {
        if e != a {
            return Err(ConformanceError::Differs { backend: vm.name().into(), line: i + 1, expected: e.to_string(), actual: a.clone() });
        }
    }
    if expected.len() != lines.len() {
        return Err(ConformanceError::Length { backend: vm.name().into(), expected: expected.len(), actual: lines.len() });
    }
    Ok(())
}

/// Checks that a backend whose cache holds a single module gives the same results when modules
/// are evicted and compiled again on the next call. Pass a backend built with capacity 1.
pub fn check_recompiles_after_eviction(vm: &dyn VmBackend) -> Result<(), ConformanceError> {
    let broken = |what: String| ConformanceError::Invariant(what, vm.name().to_string());
    let mut state = MemoryState::default();
    let code = |letter: char| {
        wat::parse_str(format!(
            r#"(module (import "env" "set_return" (func $r (param i32 i32))) (memory 1) (data (i32.const 0) "{letter}")
                 (func (export "id") (call $r (i32.const 0) (i32.const 1))))"#
        ))
        .expect("module parses")
    };
    let mut exec = Executor::new(vm, &mut state, BLOCK);
    let (a, _) = exec.deploy(DEPLOYER, 0, &code('a'), &[], 0, GAS);
    let (b, _) = exec.deploy(DEPLOYER, 1, &code('b'), &[], 0, GAS);
    let first = exec.call(DEPLOYER, a, "id", &[], 0, GAS);
    if first.result != CallResult::Returned(b"a".to_vec()) {
        return Err(broken(format!("first call: {}", show(&first))));
    }
    for round in 0..3 {
        let other = exec.call(DEPLOYER, b, "id", &[], 0, GAS);
        let again = exec.call(DEPLOYER, a, "id", &[], 0, GAS);
        if other.result != CallResult::Returned(b"b".to_vec()) || again != first {
            return Err(broken(format!("round {round} after eviction: {} and {}", show(&other), show(&again))));
        }
    }
    match exec.finish().1 {
        Some(e) => Err(broken(format!("the engine failed: {e}"))),
        None => Ok(()),
    }
}

/// Checks that a backend keeping artifacts in `dir` reloads its own on a fresh start (no
/// compile: `is_compiled` is true before any call), gives the same results from them, and
/// compiles again — with the same results — when an artifact is corrupt. `make` builds a fresh
/// backend using `dir`.
pub fn check_artifact_reload(make: &dyn Fn() -> Box<dyn VmBackend>, dir: &std::path::Path) -> Result<(), ConformanceError> {
    let first = make();
    let broken = |what: String| ConformanceError::Invariant(what, first.name().to_string());
    let code = wat::parse_str(corpus::ADVERSARY).expect("corpus module parses");
    let hash = aether_vm::code_hash(&code);
    let mut state = MemoryState::default();
    let (contract, deployed) = Executor::new(first.as_ref(), &mut state, BLOCK).deploy(DEPLOYER, 0, &code, &[], 0, GAS);
    if !matches!(deployed.result, CallResult::Returned(_)) {
        return Err(broken(format!("deploy: {}", show(&deployed))));
    }
    let input = 1000u32.to_le_bytes();
    let mut run = |vm: &dyn VmBackend| Executor::new(vm, &mut state, BLOCK).call(DEPLOYER, contract, "sum", &input, 0, GAS);
    let reference = run(first.as_ref());
    let restarted = make();
    if !restarted.is_compiled(&hash) {
        return Err(broken("a fresh backend did not reload the artifact it compiled".into()));
    }
    if run(restarted.as_ref()) != reference {
        return Err(broken("the reloaded artifact gives another result".into()));
    }
    for entry in std::fs::read_dir(dir).map_err(|e| broken(format!("reading {}: {e}", dir.display())))? {
        let path = entry.map_err(|e| broken(e.to_string()))?.path();
        let mut bytes = std::fs::read(&path).map_err(|e| broken(e.to_string()))?;
        if let Some(last) = bytes.last_mut() {
            *last ^= 0xff;
        }
        std::fs::write(&path, bytes).map_err(|e| broken(e.to_string()))?;
    }
    let after_corruption = make();
    if after_corruption.is_compiled(&hash) {
        return Err(broken("a corrupt artifact was loaded".into()));
    }
    if run(after_corruption.as_ref()) != reference {
        return Err(broken("recompiled after corruption, the result differs".into()));
    }
    if !make().is_compiled(&hash) {
        return Err(broken("the recompiled artifact was not kept".into()));
    }
    Ok(())
}
