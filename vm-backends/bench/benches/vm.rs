//! VM benchmarks, both backends side by side in one run (Wasmtime is the baseline for
//! Wasmer), and gas metering against the same engine running the same loop unmetered.
//!
//!     cargo bench --workspace --bench vm
//!
//! Groups: `token_transfer` (instantiate + call + keep the writes, per call), `instantiate`
//! (warm cache: instantiate and call an empty export), `host_call` (a loop of 10,000 host calls
//! against the same loop without them; the difference per element is the overhead),
//! `compile_100kb` (validation + instrumentation, then the engine's compile), `metering`
//! (a 100,000-iteration loop, instrumented vs plain, on each engine).

// Test and bench code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aether_primitives::types::Address;
use aether_vm::executor::{BlockContext, Executor};
use aether_vm::state::MemoryState;
use aether_vm::validate::Limits;
use aether_vm::{code_hash, prepare, CallResult, VmBackend};
use aether_vm_bench::{big_module, HOST_LOOP, SPIN, TOKEN};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const ALICE: Address = Address([0xa1; 20]);
const BOB: Address = Address([0xb0; 20]);
const BLOCK: BlockContext = BlockContext { height: 1, time_ms: 0 };

fn backends() -> Vec<(&'static str, Box<dyn VmBackend>)> {
    vec![("wasmtime", Box::new(aether_vm_wasmtime::WasmtimeBackend::new())), ("wasmer", Box::new(aether_vm_wasmer::WasmerBackend::new()))]
}

fn deploy(vm: &dyn VmBackend, state: &mut MemoryState, wat: &str, input: &[u8]) -> Address {
    let code = wat::parse_str(wat).unwrap();
    let (address, outcome) = Executor::new(vm, state, BLOCK).deploy(ALICE, 0, &code, input, 0, 10_000_000);
    assert!(matches!(outcome.result, CallResult::Returned(_)), "{outcome:?}");
    address
}

fn token_transfer(c: &mut Criterion) {
    let mut g = c.benchmark_group("token_transfer");
    g.throughput(Throughput::Elements(1));
    for (name, vm) in backends() {
        let mut state = MemoryState::default();
        let token = deploy(vm.as_ref(), &mut state, TOKEN, &u64::MAX.to_le_bytes());
        let mut input = BOB.0.to_vec();
        input.extend_from_slice(&1u64.to_le_bytes());
        g.bench_function(name, |b| {
            b.iter(|| {
                let outcome = Executor::new(vm.as_ref(), &mut state, BLOCK).call(ALICE, token, "transfer", &input, 0, 1_000_000);
                debug_assert!(matches!(outcome.result, CallResult::Returned(_)));
                outcome.gas_used
            })
        });
    }
    g.finish();
}

fn instantiate(c: &mut Criterion) {
    let mut g = c.benchmark_group("instantiate");
    for (name, vm) in backends() {
        let mut state = MemoryState::default();
        let contract = deploy(vm.as_ref(), &mut state, HOST_LOOP, &[]);
        g.bench_function(name, |b| {
            b.iter(|| Executor::new(vm.as_ref(), &mut state, BLOCK).call(ALICE, contract, "noop", &[], 0, 1_000_000))
        });
    }
    g.finish();
}

fn host_call(c: &mut Criterion) {
    const N: u32 = 10_000;
    let mut g = c.benchmark_group("host_call");
    g.throughput(Throughput::Elements(N as u64));
    for (name, vm) in backends() {
        let mut state = MemoryState::default();
        let contract = deploy(vm.as_ref(), &mut state, HOST_LOOP, &[]);
        for method in ["loop_host", "loop_plain"] {
            g.bench_function(format!("{name}/{method}"), |b| {
                b.iter(|| Executor::new(vm.as_ref(), &mut state, BLOCK).call(ALICE, contract, method, &N.to_le_bytes(), 0, 40_000_000))
            });
        }
    }
    g.finish();
}

fn compile_100kb(c: &mut Criterion) {
    let code = big_module(100 * 1024);
    let hash = code_hash(&code);
    let limits = Limits::default();
    let mut g = c.benchmark_group("compile_100kb");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(code.len() as u64));
    g.bench_function("validate_and_instrument", |b| b.iter(|| prepare(&code, &limits).unwrap()));
    let instrumented = prepare(&code, &limits).unwrap();
    for (name, vm) in backends() {
        g.bench_function(name, |b| b.iter(|| vm.compile(hash, &instrumented).unwrap()));
    }
    g.finish();
}

fn metering(c: &mut Criterion) {
    const N: i32 = 100_000;
    let plain = wat::parse_str(SPIN).unwrap();
    let metered = prepare(&plain, &Limits::default()).unwrap();
    let mut g = c.benchmark_group("metering");
    g.throughput(Throughput::Elements(N as u64));
    for (label, code) in [("plain", &plain), ("metered", &metered)] {
        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, code).unwrap();
        let mut store = wasmtime::Store::new(&engine, ());
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        if let Some(gas) = instance.get_global(&mut store, "aether_gas") {
            gas.set(&mut store, wasmtime::Val::I64(i64::MAX)).unwrap();
        }
        let spin = instance.get_typed_func::<i32, i64>(&mut store, "spin").unwrap();
        g.bench_function(format!("wasmtime/{label}"), |b| b.iter(|| spin.call(&mut store, N).unwrap()));
    }
    for (label, code) in [("plain", &plain), ("metered", &metered)] {
        let engine: wasmer::Engine = wasmer::sys::EngineBuilder::new(wasmer::sys::Singlepass::default()).into();
        let mut store = wasmer::Store::new(engine);
        let module = wasmer::Module::new(&store, code).unwrap();
        let instance = wasmer::Instance::new(&mut store, &module, &wasmer::Imports::new()).unwrap();
        if let Ok(gas) = instance.exports.get_global("aether_gas") {
            gas.set(&mut store, wasmer::Value::I64(i64::MAX)).unwrap();
        }
        let spin: wasmer::TypedFunction<i32, i64> = instance.exports.get_typed_function(&store, "spin").unwrap();
        g.bench_function(format!("wasmer/{label}"), |b| b.iter(|| spin.call(&mut store, N).unwrap()));
    }
    g.finish();
}

criterion_group!(benches, token_transfer, instantiate, host_call, compile_100kb, metering);
criterion_main!(benches);
