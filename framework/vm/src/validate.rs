//! Validation of contract code before it is deployed, shared by every backend.
//!
//! Code is accepted only if every engine will run it the same way and within bounded
//! resources. A rejection names the rule broken (see [`Rule`]) and where: the section, or the
//! function index and byte offset. The rules:
//!
//! | rule | what is refused |
//! |---|---|
//! | `code-size` | more than [`Limits::max_code_bytes`] bytes |
//! | `floats` | `f32`/`f64` types or instructions (NaN bit patterns differ between CPUs) |
//! | `simd` | `v128` types and vector instructions |
//! | `threads` | shared memory and atomic instructions |
//! | `memory64`, `multi-memory` | 64-bit memory; more than one memory |
//! | `reference-types` | reference instructions, tables of anything but `funcref`, more than one table |
//! | `bulk-memory` | `memory.init`, `data.drop`, `table.*`, passive segments (only `memory.copy`/`memory.fill`, which are metered) |
//! | `proposal` | any other post-MVP instruction (tail calls, exceptions, GC, ...) |
//! | `imports` | imports other than the host functions of [`crate::abi`] with their exact signatures |
//! | `start` | a start function (it would run before gas is set; use an `init` export) |
//! | `memory-pages` | initial memory above [`Limits::max_memory_pages`] (a larger maximum is lowered to the limit) |
//! | `table-size`, `globals`, `function-count`, `locals`, `nesting`, `br-table`, `data-size`, `exports`, `types` | the limits of [`Limits`] |
//! | `segment-bounds` | a data or element segment with a non-constant offset or outside the initial memory/table |
//! | `reserved-export` | an export whose name starts with `aether_` (the instrumentation's) |
//! | `malformed` | anything the WebAssembly validator rejects |

use std::collections::HashSet;

use wasmparser::{
    CompositeInnerType, ConstExpr, DataKind, ElementKind, ExternalKind, FuncValidatorAllocations, Operator, Parser, Payload, RefType,
    TypeRef, ValType, Validator, WasmFeatures,
};

use super::VmError;
use crate::interface::{HostFn, RESERVED_PREFIX};

/// Resource limits on contract code. The defaults are consensus rules: every node of a chain
/// must use the same values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_code_bytes: usize,
    pub max_memory_pages: u32,
    pub max_table_elements: u32,
    pub max_globals: u32,
    pub max_functions: u32,
    pub max_locals: u32,
    pub max_nesting: u32,
    pub max_br_table_targets: u32,
    pub max_data_bytes: usize,
    pub max_exports: u32,
    pub max_types: u32,
    /// The call-stack budget in slots (see [`frame_cost`]); deeper recursion traps with
    /// "call stack exhausted" at the same depth on every engine.
    pub max_stack_slots: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_code_bytes: 512 * 1024,
            max_memory_pages: 64,
            max_table_elements: 4096,
            max_globals: 256,
            max_functions: 4096,
            max_locals: 1024,
            max_nesting: 256,
            max_br_table_targets: 4096,
            max_data_bytes: 256 * 1024,
            max_exports: 256,
            max_types: 512,
            max_stack_slots: 32 * 1024,
        }
    }
}

/// What validation learnt about a module, used by the instrumentation.
#[derive(Clone, Debug, Default)]
pub struct ModuleInfo {
    /// Number of imported functions (they come first in the function index space).
    pub imported_functions: u32,
    /// Type index of every function, imported ones first.
    pub function_types: Vec<u32>,
    /// Number of types in the type section.
    pub types: u32,
    /// Number of globals (none are imported).
    pub globals: u32,
    /// The module declares a memory.
    pub has_memory: bool,
    /// Stack-slot cost of one frame of each defined function (see [`frame_cost`]).
    pub frame_costs: Vec<u32>,
    /// Exported function names.
    pub exported_functions: Vec<String>,
    /// Parameter count of each function's type, imported ones first.
    pub function_param_counts: Vec<u32>,
}

impl ModuleInfo {
    /// Parameters of the `index`-th defined (not imported) function.
    pub fn function_params(&self, index: usize) -> u32 {
        self.function_param_counts.get(self.imported_functions as usize + index).copied().unwrap_or(0)
    }
}

/// Slots one frame of a function is charged against [`Limits::max_stack_slots`]: a fixed
/// overhead for the return address and saved registers, plus one per parameter, local and
/// operand-stack entry at the function's deepest point. Engines spill at most a few words per
/// slot, so the budget is reached long before any engine's native stack limit.
pub fn frame_cost(params: u32, locals: u32, max_operand_height: u32) -> u32 {
    const FRAME_OVERHEAD: u32 = 8;
    FRAME_OVERHEAD + params + locals + max_operand_height
}

fn reject(rule: &str, location: impl Into<String>) -> VmError {
    VmError::Invalid { rule: rule.to_string(), location: location.into() }
}

/// The post-MVP features a contract may use; everything else is refused.
fn allowed_features() -> WasmFeatures {
    WasmFeatures::GC_TYPES
        | WasmFeatures::MUTABLE_GLOBAL
        | WasmFeatures::SIGN_EXTENSION
        | WasmFeatures::MULTI_VALUE
        | WasmFeatures::BULK_MEMORY
}

/// Checks `code` against every rule; returns what the instrumentation needs.
pub fn validate(code: &[u8], limits: &Limits) -> Result<ModuleInfo, VmError> {
    if code.len() > limits.max_code_bytes {
        return Err(reject("code-size", format!("module of {} bytes; the limit is {}", code.len(), limits.max_code_bytes)));
    }
    let mut validator = Validator::new_with_features(allowed_features());
    let mut info = ModuleInfo::default();
    let mut func_params: Vec<u32> = Vec::new();
    let mut type_params: Vec<u32> = Vec::new();
    let mut table_sizes: Vec<u64> = Vec::new();
    let mut memory_pages: u64 = 0;
    let mut data_bytes: usize = 0;
    let mut allocs = FuncValidatorAllocations::default();
    let mut defined_index = 0u32;
    let mut export_names = HashSet::new();
    let malformed = |e: wasmparser::BinaryReaderError| reject("malformed", format!("{} (at byte {})", e.message(), e.offset()));

    for payload in Parser::new(0).parse_all(code) {
        let payload = payload.map_err(malformed)?;
        // Our own checks first, so the common refusals name their rule rather than a parser message.
        match &payload {
            Payload::TypeSection(reader) => {
                if reader.count() > limits.max_types {
                    return Err(reject("types", format!("type section has {} types; the limit is {}", reader.count(), limits.max_types)));
                }
                for (i, group) in reader.clone().into_iter().enumerate() {
                    let group = group.map_err(malformed)?;
                    for sub in group.types() {
                        let CompositeInnerType::Func(f) = &sub.composite_type.inner else {
                            return Err(reject("proposal", format!("type {i} is not a function type")));
                        };
                        for t in f.params().iter().chain(f.results()) {
                            check_val_type(*t, &format!("type {i}"))?;
                        }
                        type_params.push(f.params().len() as u32);
                    }
                }
                info.types = type_params.len() as u32;
            }
            Payload::ImportSection(reader) => {
                for import in reader.clone().into_imports() {
                    let import = import.map_err(malformed)?;
                    let TypeRef::Func(type_index) = import.ty else {
                        return Err(reject("imports", format!("import {}.{} is not a function", import.module, import.name)));
                    };
                    let Some(host) = HostFn::by_name(import.module, import.name) else {
                        return Err(reject(
                            "imports",
                            format!(
                                "import {}.{} is not a host function (the host functions are module \"env\": {})",
                                import.module,
                                import.name,
                                HostFn::names().join(", ")
                            ),
                        ));
                    };
                    let ty = func_type_of(code, type_index)?;
                    if !signature_matches(host, &ty) {
                        return Err(reject(
                            "imports",
                            format!("import env.{} has type {ty:?}; the host function's type is {}", import.name, host.signature_text()),
                        ));
                    }
                    info.function_types.push(type_index);
                    func_params.push(*type_params.get(type_index as usize).unwrap_or(&0));
                    info.imported_functions += 1;
                }
            }
            Payload::FunctionSection(reader) => {
                if reader.count() > limits.max_functions {
                    return Err(reject("function-count", format!("{} functions; the limit is {}", reader.count(), limits.max_functions)));
                }
                for t in reader.clone() {
                    let t = t.map_err(malformed)?;
                    info.function_types.push(t);
                    func_params.push(*type_params.get(t as usize).unwrap_or(&0));
                }
            }
            Payload::TableSection(reader) => {
                for (i, table) in reader.clone().into_iter().enumerate() {
                    let table = table.map_err(malformed)?;
                    let ty = table.ty;
                    if ty.element_type != RefType::FUNCREF || !table_sizes.is_empty() || ty.table64 || ty.shared {
                        return Err(reject("reference-types", format!("table {i}: only one funcref table is allowed")));
                    }
                    if ty.initial > limits.max_table_elements as u64 {
                        return Err(reject(
                            "table-size",
                            format!("table {i} has {} elements; the limit is {}", ty.initial, limits.max_table_elements),
                        ));
                    }
                    table_sizes.push(ty.initial);
                }
            }
            Payload::MemorySection(reader) => {
                for (i, memory) in reader.clone().into_iter().enumerate() {
                    let m = memory.map_err(malformed)?;
                    if i > 0 {
                        return Err(reject("multi-memory", "memory section: only one memory is allowed"));
                    }
                    if m.memory64 {
                        return Err(reject("memory64", "memory section: 64-bit memory"));
                    }
                    if m.shared {
                        return Err(reject("threads", "memory section: shared memory"));
                    }
                    if m.page_size_log2.is_some() {
                        return Err(reject("proposal", "memory section: custom page size"));
                    }
                    if m.initial > limits.max_memory_pages as u64 {
                        return Err(reject(
                            "memory-pages",
                            format!("memory starts at {} pages; the limit is {}", m.initial, limits.max_memory_pages),
                        ));
                    }
                    memory_pages = m.initial;
                    info.has_memory = true;
                }
            }
            Payload::GlobalSection(reader) => {
                if reader.count() > limits.max_globals {
                    return Err(reject("globals", format!("{} globals; the limit is {}", reader.count(), limits.max_globals)));
                }
                for (i, global) in reader.clone().into_iter().enumerate() {
                    check_val_type(global.map_err(malformed)?.ty.content_type, &format!("global {i}"))?;
                }
                info.globals = reader.count();
            }
            Payload::ExportSection(reader) => {
                if reader.count() > limits.max_exports {
                    return Err(reject("exports", format!("{} exports; the limit is {}", reader.count(), limits.max_exports)));
                }
                for export in reader.clone() {
                    let export = export.map_err(malformed)?;
                    if export.name.starts_with(RESERVED_PREFIX) {
                        return Err(reject(
                            "reserved-export",
                            format!("export {:?}: names starting with {:?} are reserved", export.name, RESERVED_PREFIX),
                        ));
                    }
                    if export.kind == ExternalKind::Func {
                        info.exported_functions.push(export.name.to_string());
                    }
                    export_names.insert(export.name.to_string());
                }
            }
            Payload::StartSection { func, .. } => {
                return Err(reject(
                    "start",
                    format!("start function {func}: contracts may not have one; export an `init` function instead"),
                ));
            }
            Payload::ElementSection(reader) => {
                for (i, element) in reader.clone().into_iter().enumerate() {
                    let element = element.map_err(malformed)?;
                    let ElementKind::Active { table_index, offset_expr } = element.kind else {
                        return Err(reject("bulk-memory", format!("element segment {i}: only active segments are allowed")));
                    };
                    let offset = const_offset(&offset_expr)
                        .ok_or_else(|| reject("segment-bounds", format!("element segment {i}: offset must be an i32.const")))?;
                    let size = *table_sizes.get(table_index.unwrap_or(0) as usize).unwrap_or(&0);
                    let items = match &element.items {
                        wasmparser::ElementItems::Functions(r) => r.count(),
                        wasmparser::ElementItems::Expressions(_, r) => r.count(),
                    };
                    if offset as u64 + items as u64 > size {
                        return Err(reject("segment-bounds", format!("element segment {i} ends past the table's {size} elements")));
                    }
                }
            }
            Payload::DataSection(reader) => {
                for (i, data) in reader.clone().into_iter().enumerate() {
                    let data = data.map_err(malformed)?;
                    let DataKind::Active { offset_expr, .. } = data.kind else {
                        return Err(reject("bulk-memory", format!("data segment {i}: only active segments are allowed")));
                    };
                    data_bytes += data.data.len();
                    if data_bytes > limits.max_data_bytes {
                        return Err(reject(
                            "data-size",
                            format!("data segments reach {data_bytes} bytes at segment {i}; the limit is {}", limits.max_data_bytes),
                        ));
                    }
                    let offset = const_offset(&offset_expr)
                        .ok_or_else(|| reject("segment-bounds", format!("data segment {i}: offset must be an i32.const")))?;
                    if offset as u64 + data.data.len() as u64 > memory_pages * 65536 {
                        return Err(reject(
                            "segment-bounds",
                            format!("data segment {i} ends past the initial memory of {memory_pages} pages"),
                        ));
                    }
                }
            }
            _ => {}
        }
        match validator.payload(&payload).map_err(malformed)? {
            wasmparser::ValidPayload::Func(to_validate, body) => {
                let index = info.imported_functions + defined_index;
                defined_index += 1;
                let mut func = to_validate.into_validator(allocs);
                let mut locals = body.get_locals_reader().map_err(malformed)?;
                let mut local_count: u64 = 0;
                for _ in 0..locals.get_count() {
                    let offset = locals.original_position();
                    let (count, ty) = locals.read().map_err(malformed)?;
                    check_val_type(ty, &format!("function {index}, locals"))?;
                    local_count += count as u64;
                    let params = func_params.get(index as usize).copied().unwrap_or(0) as u64;
                    if local_count + params > limits.max_locals as u64 {
                        return Err(reject("locals", format!("function {index} has more than {} locals", limits.max_locals)));
                    }
                    func.define_locals(offset, count, ty).map_err(malformed)?;
                }
                let mut reader = body.get_operators_reader().map_err(malformed)?;
                let mut max_height = 0u32;
                let mut has_br_table = false;
                while !reader.eof() {
                    let offset = reader.original_position();
                    let op = reader.read().map_err(malformed)?;
                    has_br_table |= matches!(op, Operator::BrTable { .. });
                    check_operator(&op, index, offset, limits)?;
                    func.op(offset, &op).map_err(malformed)?;
                    max_height = max_height.max(func.operand_stack_height());
                    if func.control_stack_height() > limits.max_nesting + 1 {
                        return Err(reject(
                            "nesting",
                            format!("function {index} at byte {offset}: blocks nested deeper than {}", limits.max_nesting),
                        ));
                    }
                }
                let params = func_params.get(index as usize).copied().unwrap_or(0);
                // The instrumentation adds one local to functions with a br_table.
                info.frame_costs.push(frame_cost(params, local_count as u32 + has_br_table as u32, max_height));
                allocs = func.into_allocations();
            }
            wasmparser::ValidPayload::End(_) => break,
            _ => {}
        }
    }
    info.function_param_counts = func_params;
    Ok(info)
}

fn check_val_type(ty: ValType, location: &str) -> Result<(), VmError> {
    match ty {
        ValType::I32 | ValType::I64 => Ok(()),
        ValType::F32 | ValType::F64 => Err(reject("floats", format!("{location}: {ty} value"))),
        ValType::V128 => Err(reject("simd", format!("{location}: v128 value"))),
        ValType::Ref(_) => Err(reject("reference-types", format!("{location}: reference value"))),
    }
}

fn const_offset(expr: &ConstExpr<'_>) -> Option<u32> {
    let mut reader = expr.get_operators_reader();
    let first = reader.read().ok()?;
    let Operator::I32Const { value } = first else { return None };
    matches!(reader.read().ok()?, Operator::End).then_some(value as u32)
}

/// Refuses instructions outside the deterministic integer subset, naming the rule.
fn check_operator(op: &Operator<'_>, function: u32, offset: usize, limits: &Limits) -> Result<(), VmError> {
    let at = || format!("function {function} at byte {offset}");
    match op {
        Operator::BrTable { targets } if targets.len() > limits.max_br_table_targets => {
            return Err(reject(
                "br-table",
                format!("{}: br_table with {} targets; the limit is {}", at(), targets.len(), limits.max_br_table_targets),
            ));
        }
        Operator::MemoryInit { .. }
        | Operator::DataDrop { .. }
        | Operator::TableInit { .. }
        | Operator::TableCopy { .. }
        | Operator::ElemDrop { .. } => {
            return Err(reject("bulk-memory", format!("{}: {op:?} (only memory.copy and memory.fill are allowed)", at())));
        }
        Operator::MemoryCopy { .. } | Operator::MemoryFill { .. } | Operator::MemoryGrow { .. } | Operator::MemorySize { .. } => {
            return Ok(())
        }
        _ => {}
    }
    // Classify by the operator's name: the enum has hundreds of variants across proposals, and
    // the validator (run next, with only the allowed features) is the authority; this only
    // picks the rule to name.
    let name = format!("{op:?}");
    let rule = if name.starts_with("F32") || name.starts_with("F64") || name.contains("Trunc") && name.contains("Sat") {
        Some("floats")
    } else if name.starts_with("V128")
        || name.starts_with("I8x16")
        || name.starts_with("I16x8")
        || name.starts_with("I32x4")
        || name.starts_with("I64x2")
    {
        Some("simd")
    } else if name.contains("Atomic") {
        Some("threads")
    } else if name.starts_with("Ref") || name.starts_with("Table") || name.starts_with("TypedSelect") {
        Some("reference-types")
    } else if name.starts_with("ReturnCall")
        || name.starts_with("Throw")
        || name.starts_with("Try")
        || name.starts_with("Struct")
        || name.starts_with("Array")
    {
        Some("proposal")
    } else {
        None
    };
    match rule {
        Some(rule) => Err(reject(rule, format!("{}: {}", at(), name.split([' ', '{']).next().unwrap_or(&name)))),
        None => Ok(()),
    }
}

fn func_type_of(code: &[u8], type_index: u32) -> Result<wasmparser::FuncType, VmError> {
    for payload in Parser::new(0).parse_all(code) {
        if let Ok(Payload::TypeSection(reader)) = payload {
            for (i, ty) in reader.into_iter_err_on_gc_types().enumerate() {
                if i as u32 == type_index {
                    return ty.map_err(|e| reject("malformed", e.message().to_string()));
                }
            }
        }
    }
    Err(reject("malformed", format!("type index {type_index} does not exist")))
}

/// Whether a wasm function type is exactly `host`'s signature.
fn signature_matches(host: HostFn, ty: &wasmparser::FuncType) -> bool {
    let map = |t: &crate::interface::AbiType| match t {
        crate::interface::AbiType::I32 => wasmparser::ValType::I32,
        crate::interface::AbiType::I64 => wasmparser::ValType::I64,
    };
    ty.params().iter().copied().eq(host.params().iter().map(map)) && ty.results().iter().copied().eq(host.results().iter().map(map))
}
