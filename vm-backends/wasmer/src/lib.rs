//! # aether-vm-wasmer
//!
//! Aether's VM backend on [Wasmer](https://wasmer.io) with the Singlepass compiler, chosen
//! for its linear-time compilation (no compile-time blow-up on hostile code) and a compiler
//! independent of Wasmtime's Cranelift, so a mixed network does not share one code generator.
//! Registered as `[vm] backend = "wasmer"`.
//!
//! Like every backend it runs only framework-validated, instrumented modules and forwards host
//! functions to [`abi::dispatch`]; gas, results and state are identical to `wasmtime`'s (the
//! framework's VM conformance suite checks it). What it is not: a general Wasmer embedding.
//!
//! ```
//! use aether_vm::{executor::{BlockContext, Executor}, state::MemoryState, CallResult};
//! use aether_primitives::types::Address;
//! let vm = aether_vm_wasmer::WasmerBackend::new();
//! let mut state = MemoryState::default();
//! let mut exec = Executor::new(&vm, &mut state, BlockContext { height: 1, time_ms: 0 });
//! let code = wat::parse_str(r#"(module (func (export "ping")))"#).unwrap();
//! let (contract, deployed) = exec.deploy(Address([1; 20]), 0, &code, &[], 0, 1_000_000);
//! assert_eq!(deployed.result, CallResult::Returned(vec![]));
//! let called = exec.call(Address([1; 20]), contract, "ping", &[], 0, 100_000);
//! assert_eq!(called.result, CallResult::Returned(vec![]));
//! ```

use aether_primitives::types::Hash;
use aether_vm::abi::{self, AbiType, CallFrame, EngineExit, EngineTrap, GuestMemory, HostFn};
use aether_vm::cache::{ArtifactDir, CacheSettings, ModuleCache, DEFAULT_CACHE_MODULES};
use aether_vm::instrument::{ABORT_GLOBAL, GAS_GLOBAL, MEMORY_EXPORT};
use aether_vm::{CallOutcome, Host, VmBackend, VmError};
use wasmer::sys::{EngineBuilder, Singlepass};
use wasmer::{
    Engine, ExternType, Function, FunctionEnv, FunctionEnvMut, FunctionType, Global, Imports, Instance, Memory, MemoryView, Module,
    RuntimeError, Store, Type, TypedFunction, Value,
};

struct StoreData {
    /// The frame of the running call; lives on the stack of [`WasmerBackend::call`], which
    /// outlives the store, and is only dereferenced from host functions during that call.
    frame: *mut CallFrame<'static>,
    memory: Option<Memory>,
    gas: Option<Global>,
}

// SAFETY: the pointer is used only on the thread running the call, during the call.
#[allow(unsafe_code)]
unsafe impl Send for StoreData {}

pub struct WasmerBackend {
    engine: Engine,
    cache: ModuleCache<Module>,
    artifacts: Option<ArtifactDir>,
}

/// Registers this backend as `[vm] backend = "wasmer"`; settings `[vm.wasmer]` are
/// [`aether_vm::cache::CacheSettings`].
pub fn register(registry: &mut aether_api::registry::Registry) {
    registry.vm.register(
        "wasmer",
        "Wasmer (Singlepass): WebAssembly contracts with framework-metered gas",
        Box::new(|ctx, settings| {
            let s: CacheSettings = settings.parse()?;
            let mut backend = WasmerBackend::with_cache_capacity(s.cache_modules);
            if let Some(dir) = s.artifact_dir(ctx) {
                backend = backend.with_artifact_dir(dir);
            }
            Ok(std::sync::Arc::new(backend) as std::sync::Arc<dyn VmBackend>)
        }),
    );
}

impl Default for WasmerBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl WasmerBackend {
    pub fn new() -> Self {
        Self::with_cache_capacity(DEFAULT_CACHE_MODULES)
    }

    /// A backend keeping at most `modules` compiled modules.
    pub fn with_cache_capacity(modules: usize) -> Self {
        let engine: Engine = EngineBuilder::new(Singlepass::default()).into();
        WasmerBackend { engine, cache: ModuleCache::new(modules), artifacts: None }
    }
}

impl WasmerBackend {
    /// Keeps the artifacts this backend compiles in `dir` and reloads them from there.
    pub fn with_artifact_dir(mut self, dir: std::path::PathBuf) -> Self {
        self.artifacts = Some(ArtifactDir::new(dir, "wasmer-7.1-singlepass"));
        self
    }

    /// Loads this node's own artifact for `code_hash` into the memory cache, if there is one.
    fn reload(&self, code_hash: &Hash) -> bool {
        let Some(bytes) = self.artifacts.as_ref().and_then(|a| a.load(code_hash)) else { return false };
        // SAFETY: the file was written by `compile` on this node from a module it compiled
        // (never taken from the network) and matches its checksum; Wasmer also refuses
        // artifacts of another version.
        #[allow(unsafe_code)]
        let module = unsafe { Module::deserialize(&self.engine, bytes) };
        match module {
            Ok(module) => {
                self.cache.insert(*code_hash, module);
                true
            }
            Err(_) => false,
        }
    }
}

fn wasm_type(t: &AbiType) -> Type {
    match t {
        AbiType::I32 => Type::I32,
        AbiType::I64 => Type::I64,
    }
}

#[derive(Debug)]
struct HostAbort;

impl std::fmt::Display for HostAbort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("host function ended the call")
    }
}

impl std::error::Error for HostAbort {}

struct ViewMemory<'a>(Option<MemoryView<'a>>);

impl GuestMemory for ViewMemory<'_> {
    fn size(&mut self) -> u64 {
        self.0.as_ref().map_or(0, |view| view.data_size())
    }
    fn read(&mut self, ptr: u32, buf: &mut [u8]) -> bool {
        match &self.0 {
            Some(view) => view.read(ptr as u64, buf).is_ok(),
            None => buf.is_empty(),
        }
    }
    fn write(&mut self, ptr: u32, data: &[u8]) -> bool {
        match &self.0 {
            Some(view) => view.write(ptr as u64, data).is_ok(),
            None => data.is_empty(),
        }
    }
}

fn host_call(func: HostFn, mut env: FunctionEnvMut<StoreData>, params: &[Value]) -> Result<Vec<Value>, RuntimeError> {
    let mut args = [0u64; 8];
    for (slot, v) in args.iter_mut().zip(params) {
        *slot = match v {
            Value::I32(x) => *x as u32 as u64,
            Value::I64(x) => *x as u64,
            _ => 0,
        };
    }
    let (data, mut store) = env.data_and_store_mut();
    // `call` sets the global before it runs any export.
    let Some(gas) = data.gas.clone() else { return Err(RuntimeError::new("host call before the gas global was set")) };
    let left = gas.get(&mut store).i64().unwrap_or(0);
    // SAFETY: see `StoreData::frame`.
    #[allow(unsafe_code)]
    let frame = unsafe { &mut *data.frame };
    frame.gas_left = u64::try_from(left).unwrap_or(0);
    let result = {
        let view = data.memory.as_ref().map(|m| m.view(&store));
        abi::dispatch(frame, func, &args[..params.len()], &mut ViewMemory(view))
    };
    gas.set(&mut store, Value::I64(frame.gas_left as i64))?;
    match result {
        Ok(Some(v)) => Ok(vec![match func.results()[0] {
            AbiType::I32 => Value::I32(v as u32 as i32),
            AbiType::I64 => Value::I64(v as i64),
        }]),
        Ok(None) => Ok(vec![]),
        Err(abi::EndRun) => Err(RuntimeError::user(Box::new(HostAbort))),
    }
}

fn engine_trap(error: RuntimeError) -> EngineTrap {
    if error.downcast_ref::<HostAbort>().is_some() {
        return EngineTrap::Host;
    }
    use wasmer_types::TrapCode;
    match error.to_trap() {
        Some(TrapCode::UnreachableCodeReached) => EngineTrap::Unreachable,
        Some(TrapCode::HeapAccessOutOfBounds) => EngineTrap::MemoryOutOfBounds,
        Some(TrapCode::TableAccessOutOfBounds) => EngineTrap::TableOutOfBounds,
        Some(TrapCode::IndirectCallToNull) => EngineTrap::IndirectCallToNull,
        Some(TrapCode::BadSignature) => EngineTrap::BadSignature,
        Some(TrapCode::IntegerDivisionByZero) => EngineTrap::IntegerDivisionByZero,
        Some(TrapCode::IntegerOverflow) => EngineTrap::IntegerOverflow,
        Some(TrapCode::StackOverflow) => EngineTrap::StackOverflow,
        _ => EngineTrap::Other,
    }
}

impl VmBackend for WasmerBackend {
    fn name(&self) -> &'static str {
        "wasmer"
    }

    fn compile(&self, code_hash: Hash, instrumented: &[u8]) -> Result<(), VmError> {
        let module = Module::new(&self.engine, instrumented).map_err(|e| VmError::Compile(e.to_string()))?;
        if let (Some(artifacts), Ok(bytes)) = (&self.artifacts, module.serialize()) {
            artifacts.store(&code_hash, &bytes);
        }
        self.cache.insert(code_hash, module);
        Ok(())
    }

    fn is_compiled(&self, code_hash: &Hash) -> bool {
        self.cache.contains(code_hash) || self.reload(code_hash)
    }

    fn call(&self, code_hash: &Hash, entry: &str, gas_limit: u64, host: &mut dyn Host) -> Result<CallOutcome, VmError> {
        let module = self.cache.get(code_hash).ok_or(VmError::NotCompiled(*code_hash))?;
        let mut frame = CallFrame::new(host, gas_limit);
        let frame_ptr = (&mut frame as *mut CallFrame<'_>).cast::<CallFrame<'static>>();
        let mut store = Store::new(self.engine.clone());
        let env = FunctionEnv::new(&mut store, StoreData { frame: frame_ptr, memory: None, gas: None });
        let mut imports = Imports::new();
        for import in module.imports() {
            let (ExternType::Function(_), Some(func)) = (import.ty(), HostFn::by_name(import.module(), import.name())) else {
                return Err(VmError::Engine(format!("unexpected import {}.{}", import.module(), import.name())));
            };
            let ty = FunctionType::new(
                func.params().iter().map(wasm_type).collect::<Vec<_>>(),
                func.results().iter().map(wasm_type).collect::<Vec<_>>(),
            );
            let f = Function::new_with_env(&mut store, &env, ty, move |env, params| host_call(func, env, params));
            imports.define(HostFn::MODULE, func.name(), f);
        }
        let instance = Instance::new(&mut store, &module, &imports).map_err(|e| VmError::Engine(format!("instantiation failed: {e}")))?;
        let not_instrumented = |_| VmError::Engine("module is not instrumented".into());
        let gas = instance.exports.get_global(GAS_GLOBAL).map_err(not_instrumented)?.clone();
        let abort = instance.exports.get_global(ABORT_GLOBAL).map_err(not_instrumented)?.clone();
        let memory = instance.exports.get_memory(MEMORY_EXPORT).ok().cloned();
        let limit = i64::try_from(gas_limit).unwrap_or(i64::MAX);
        gas.set(&mut store, Value::I64(limit)).map_err(|e| VmError::Engine(e.to_string()))?;
        {
            let data = env.as_mut(&mut store);
            data.memory = memory;
            data.gas = Some(gas.clone());
        }
        let func: TypedFunction<(), ()> = match instance.exports.get_typed_function(&store, entry) {
            Ok(f) => f,
            Err(_) => return Ok(abi::missing_entry(entry)),
        };
        let exit = match func.call(&mut store) {
            Ok(()) => EngineExit::Finished,
            Err(e) => EngineExit::Trap(engine_trap(e)),
        };
        let gas_left = gas.get(&mut store).i64().unwrap_or(0);
        let abort_code = abort.get(&mut store).i32().unwrap_or(0);
        drop(store);
        Ok(frame.finish(gas_limit.min(limit as u64), exit, gas_left, abort_code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The suite runs on a thread with a small stack: nested calls and deep recursion must
    /// grow the stack themselves, whatever thread (a tokio worker has 2 MiB) runs a block.
    #[test]
    fn passes_the_vm_conformance_suite_on_a_small_thread_stack() {
        let run = std::thread::Builder::new()
            .stack_size(512 * 1024)
            .spawn(|| aether_testkit::vm_conformance::check(&WasmerBackend::new()))
            .unwrap();
        if let Err(e) = run.join().expect("the suite does not panic") {
            panic!("{e}");
        }
    }

    #[test]
    fn a_restarted_backend_reloads_its_own_artifacts_and_recompiles_corrupt_ones() {
        let dir = tempfile::tempdir().unwrap();
        let make = || Box::new(WasmerBackend::new().with_artifact_dir(dir.path().to_path_buf())) as Box<dyn VmBackend>;
        aether_testkit::vm_conformance::check_artifact_reload(&make, dir.path()).unwrap();
    }

    #[test]
    fn an_evicted_module_is_compiled_again_with_the_same_results() {
        aether_testkit::vm_conformance::check_recompiles_after_eviction(&WasmerBackend::with_cache_capacity(1)).unwrap();
    }
}
