//! # aether-vm-wasmtime
//!
//! Aether's VM backend on [Wasmtime](https://wasmtime.dev) with the Cranelift compiler.
//! Registered as `[vm] backend = "wasmtime"` (the default preset's VM).
//!
//! It runs only what the framework validated and instrumented ([`aether_vm`]): gas
//! and call depth are metered by the module itself, host functions are the framework's
//! [`abi::dispatch`], so this crate only moves values between Wasmtime and the framework.
//! What it is not: a general Wasmtime embedding (no WASI, no fuel, no epochs).
//!
//! ```
//! use aether_vm::{executor::{BlockContext, Executor}, state::MemoryState, CallResult};
//! use aether_primitives::types::Address;
//! let vm = aether_vm_wasmtime::WasmtimeBackend::new();
//! let mut state = MemoryState::default();
//! let mut exec = Executor::new(&vm, &mut state, BlockContext { height: 1, time_ms: 0 });
//! let code = wat::parse_str(r#"(module (func (export "ping")))"#).unwrap();
//! let (contract, deployed) = exec.deploy(Address([1; 20]), 0, &code, &[], 0, 1_000_000);
//! assert_eq!(deployed.result, CallResult::Returned(vec![]));
//! let called = exec.call(Address([1; 20]), contract, "ping", &[], 0, 100_000);
//! assert_eq!(called.result, CallResult::Returned(vec![]));
//! ```

use aether_primitives::types::Hash;
use aether_vm::abi::{self, AbiType, CallFrame, EngineExit, EngineTrap, HostFn, SliceMemory};
use aether_vm::cache::{ArtifactDir, CacheSettings, ModuleCache, DEFAULT_CACHE_MODULES};
use aether_vm::instrument::{ABORT_GLOBAL, GAS_GLOBAL, MEMORY_EXPORT};
use aether_vm::{CallOutcome, Host, VmBackend, VmError};
use wasmtime::{Caller, Config, Engine, FuncType, Global, InstancePre, Linker, Memory, Module, Store, Trap, Val, ValType};

/// Instances alive at once (each call on a stack holds one, nested calls up to 8): the pool's
/// slots, each reserving 4 GiB of address space (not memory), so 1 TiB per backend. Block
/// building and verification need at most 8 each and the RPC runs at most 16 queries (128);
/// running out anyway is the VM's failure, reported as such and never as a contract result
/// (`LedgerError::Vm`).
pub const POOL_INSTANCES: u32 = 256;
/// Native stack the engine may use per contract call; the instrumentation's depth limit is
/// reached long before (see `framework/vm/src/validate.rs`, `frame_cost`).
pub const MAX_WASM_STACK: usize = 1024 * 1024;

/// What a store holds during one call.
struct StoreData {
    /// The frame of the call running in this store. It lives on the stack of
    /// [`WasmtimeBackend::call`], which outlives the store; it is only dereferenced from host
    /// functions, which run inside that call.
    frame: *mut CallFrame<'static>,
    memory: Option<Memory>,
    gas: Option<Global>,
}

// SAFETY: the pointer is used only on the thread running the call, during the call.
#[allow(unsafe_code)]
unsafe impl Send for StoreData {}

pub struct WasmtimeBackend {
    engine: Engine,
    linker: Linker<StoreData>,
    cache: ModuleCache<InstancePre<StoreData>>,
    artifacts: Option<ArtifactDir>,
}

/// Registers this backend as `[vm] backend = "wasmtime"`; settings `[vm.wasmtime]` are
/// [`aether_vm::cache::CacheSettings`].
pub fn register(registry: &mut aether_api::registry::Registry) {
    registry.vm.register(
        "wasmtime",
        "Wasmtime (Cranelift): WebAssembly contracts with framework-metered gas",
        Box::new(|ctx, settings| {
            let s: CacheSettings = settings.parse()?;
            let mut backend = WasmtimeBackend::with_cache_capacity(s.cache_modules);
            if let Some(dir) = s.artifact_dir(ctx) {
                backend = backend.with_artifact_dir(dir);
            }
            Ok(std::sync::Arc::new(backend) as std::sync::Arc<dyn VmBackend>)
        }),
    );
}

impl Default for WasmtimeBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl WasmtimeBackend {
    pub fn new() -> Self {
        Self::with_cache_capacity(DEFAULT_CACHE_MODULES)
    }

    /// A backend keeping at most `modules` compiled modules.
    pub fn with_cache_capacity(modules: usize) -> Self {
        let mut config = Config::new();
        // Belt and braces: the framework's validation already refuses all of these.
        config
            .wasm_simd(false)
            .wasm_relaxed_simd(false)
            .wasm_multi_memory(false)
            .wasm_memory64(false)
            .wasm_bulk_memory(true)
            .wasm_multi_value(true)
            .max_wasm_stack(MAX_WASM_STACK)
            .cranelift_opt_level(wasmtime::OptLevel::Speed);
        // Pooled instances: a call reuses a pre-reserved slot instead of mapping and unmapping
        // memory (which was ~2/3 of a call's time, nearly all of it in the kernel).
        let limits = aether_vm::validate::Limits::default();
        let mut pool = wasmtime::PoolingAllocationConfig::new();
        pool.total_core_instances(POOL_INSTANCES)
            .total_memories(POOL_INSTANCES)
            .total_tables(POOL_INSTANCES)
            .max_memory_size(limits.max_memory_pages as usize * 65536)
            .table_elements(limits.max_table_elements as usize)
            // Reset a small memory by writing zeros rather than giving pages back to the kernel.
            .linear_memory_keep_resident(256 * 1024)
            .table_keep_resident(64 * 1024);
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        // The configuration is fixed in this function, and the names are `HostFn`'s, which are
        // unique: neither step can fail at run time (every test constructs a backend).
        #[allow(clippy::expect_used)]
        let engine = Engine::new(&config).expect("static wasmtime configuration is valid");
        let mut linker = Linker::new(&engine);
        for &func in HostFn::ALL {
            let ty = FuncType::new(&engine, func.params().iter().map(val_type), func.results().iter().map(val_type));
            #[allow(clippy::expect_used)]
            linker
                .func_new(HostFn::MODULE, func.name(), ty, move |caller, params, results| host_call(func, caller, params, results))
                .expect("host function names are unique");
        }
        WasmtimeBackend { engine, linker, cache: ModuleCache::new(modules), artifacts: None }
    }
}

impl WasmtimeBackend {
    /// Keeps the artifacts this backend compiles in `dir` and reloads them from there.
    pub fn with_artifact_dir(mut self, dir: std::path::PathBuf) -> Self {
        self.artifacts = Some(ArtifactDir::new(dir, "wasmtime-48"));
        self
    }

    /// Loads this node's own artifact for `code_hash` into the memory cache, if there is one.
    fn reload(&self, code_hash: &Hash) -> bool {
        let Some(bytes) = self.artifacts.as_ref().and_then(|a| a.load(code_hash)) else { return false };
        // SAFETY: the file was written by `compile` on this node from a module it compiled
        // (never taken from the network) and matches its checksum; Wasmtime also refuses
        // artifacts of another version or configuration.
        #[allow(unsafe_code)]
        let module = unsafe { Module::deserialize(&self.engine, &bytes) };
        match module.and_then(|m| self.linker.instantiate_pre(&m)) {
            Ok(pre) => {
                self.cache.insert(*code_hash, pre);
                true
            }
            Err(_) => false,
        }
    }
}

fn val_type(t: &AbiType) -> ValType {
    match t {
        AbiType::I32 => ValType::I32,
        AbiType::I64 => ValType::I64,
    }
}

/// Marks a host function that ended the call; the frame says why.
#[derive(Debug)]
struct HostAbort;

impl std::fmt::Display for HostAbort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("host function ended the call")
    }
}

impl std::error::Error for HostAbort {}

fn host_call(func: HostFn, mut caller: Caller<'_, StoreData>, params: &[Val], results: &mut [Val]) -> wasmtime::Result<()> {
    let mut args = [0u64; 8];
    for (slot, v) in args.iter_mut().zip(params) {
        *slot = match v {
            Val::I32(x) => *x as u32 as u64,
            Val::I64(x) => *x as u64,
            _ => 0,
        };
    }
    // `call` sets the global before it runs any export.
    let Some(gas) = caller.data().gas else { return Err(wasmtime::Error::msg("host call before the gas global was set")) };
    let left = gas.get(&mut caller).i64().unwrap_or(0);
    let memory = caller.data().memory;
    let (bytes, data): (&mut [u8], &mut StoreData) = match memory {
        Some(m) => m.data_and_store_mut(&mut caller),
        None => (&mut [], caller.data_mut()),
    };
    // SAFETY: see `StoreData::frame`.
    #[allow(unsafe_code)]
    let frame = unsafe { &mut *data.frame };
    frame.gas_left = u64::try_from(left).unwrap_or(0);
    let result = abi::dispatch(frame, func, &args[..params.len()], &mut SliceMemory(bytes));
    let left = frame.gas_left as i64;
    gas.set(&mut caller, Val::I64(left))?;
    match result {
        Ok(Some(v)) => {
            results[0] = match func.results()[0] {
                AbiType::I32 => Val::I32(v as u32 as i32),
                AbiType::I64 => Val::I64(v as i64),
            };
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(abi::EndRun) => Err(wasmtime::Error::new(HostAbort)),
    }
}

fn engine_trap(error: &wasmtime::Error) -> EngineTrap {
    if error.downcast_ref::<HostAbort>().is_some() {
        return EngineTrap::Host;
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::UnreachableCodeReached) => EngineTrap::Unreachable,
        Some(Trap::MemoryOutOfBounds) => EngineTrap::MemoryOutOfBounds,
        Some(Trap::TableOutOfBounds) => EngineTrap::TableOutOfBounds,
        Some(Trap::IndirectCallToNull) => EngineTrap::IndirectCallToNull,
        Some(Trap::BadSignature) => EngineTrap::BadSignature,
        Some(Trap::IntegerDivisionByZero) => EngineTrap::IntegerDivisionByZero,
        Some(Trap::IntegerOverflow) => EngineTrap::IntegerOverflow,
        Some(Trap::StackOverflow) => EngineTrap::StackOverflow,
        _ => EngineTrap::Other,
    }
}

impl VmBackend for WasmtimeBackend {
    fn name(&self) -> &'static str {
        "wasmtime"
    }

    fn compile(&self, code_hash: Hash, instrumented: &[u8]) -> Result<(), VmError> {
        let module = Module::new(&self.engine, instrumented).map_err(|e| VmError::Compile(format!("{e:#}")))?;
        let pre = self.linker.instantiate_pre(&module).map_err(|e| VmError::Compile(format!("{e:#}")))?;
        self.cache.insert(code_hash, pre);
        if let (Some(artifacts), Ok(bytes)) = (&self.artifacts, module.serialize()) {
            artifacts.store(&code_hash, &bytes);
        }
        Ok(())
    }

    fn is_compiled(&self, code_hash: &Hash) -> bool {
        self.cache.contains(code_hash) || self.reload(code_hash)
    }

    fn call(&self, code_hash: &Hash, entry: &str, gas_limit: u64, host: &mut dyn Host) -> Result<CallOutcome, VmError> {
        let pre = self.cache.get(code_hash).ok_or(VmError::NotCompiled(*code_hash))?;
        let mut frame = CallFrame::new(host, gas_limit);
        let frame_ptr = (&mut frame as *mut CallFrame<'_>).cast::<CallFrame<'static>>();
        let mut store = Store::new(&self.engine, StoreData { frame: frame_ptr, memory: None, gas: None });
        let instance = pre.instantiate(&mut store).map_err(|e| VmError::Engine(format!("instantiation failed: {e:#}")))?;
        let gas = instance.get_global(&mut store, GAS_GLOBAL).ok_or_else(|| VmError::Engine("module is not instrumented".into()))?;
        let abort = instance.get_global(&mut store, ABORT_GLOBAL).ok_or_else(|| VmError::Engine("module is not instrumented".into()))?;
        let memory = instance.get_memory(&mut store, MEMORY_EXPORT);
        let limit = i64::try_from(gas_limit).unwrap_or(i64::MAX);
        gas.set(&mut store, Val::I64(limit)).map_err(|e| VmError::Engine(format!("{e:#}")))?;
        store.data_mut().memory = memory;
        store.data_mut().gas = Some(gas);
        let Ok(func) = instance.get_typed_func::<(), ()>(&mut store, entry) else {
            return Ok(abi::missing_entry(entry));
        };
        let exit = match func.call(&mut store, ()) {
            Ok(()) => EngineExit::Finished,
            Err(e) => EngineExit::Trap(engine_trap(&e)),
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
            .spawn(|| aether_testkit::vm_conformance::check(&WasmtimeBackend::new()))
            .unwrap();
        if let Err(e) = run.join().expect("the suite does not panic") {
            panic!("{e}");
        }
    }

    #[test]
    fn a_restarted_backend_reloads_its_own_artifacts_and_recompiles_corrupt_ones() {
        let dir = tempfile::tempdir().unwrap();
        let make = || Box::new(WasmtimeBackend::new().with_artifact_dir(dir.path().to_path_buf())) as Box<dyn VmBackend>;
        aether_testkit::vm_conformance::check_artifact_reload(&make, dir.path()).unwrap();
    }

    #[test]
    fn an_evicted_module_is_compiled_again_with_the_same_results() {
        aether_testkit::vm_conformance::check_recompiles_after_eviction(&WasmtimeBackend::with_cache_capacity(1)).unwrap();
    }
}
