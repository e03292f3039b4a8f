//! Rewrites validated contract code so that it meters its own gas and call depth.
//!
//! What is added (all appended, so no existing index moves):
//! - globals `aether_gas` (i64, exported: the gas left), a call-depth counter (i32), and
//!   `aether_abort` (i32, exported: why the module stopped itself — [`ABORT_OUT_OF_GAS`] or
//!   [`ABORT_STACK`]);
//! - at the start of every straight-line run of instructions (function entry and after every
//!   control instruction, hence at every branch target), a check-and-subtract of the run's
//!   cost from [`super::gas`]; when the gas left is below it, `aether_abort = 1; unreachable`;
//! - around every call to a defined function, the callee's frame cost added to the depth
//!   counter and checked against [`super::validate::Limits::max_stack_slots`];
//! - `memory.grow`, `memory.fill` and `memory.copy` replaced by calls to appended functions
//!   that charge for their size first;
//! - the memory's maximum lowered to [`super::validate::Limits::max_memory_pages`];
//! - custom sections (names, debug info) dropped.
//!
//! The output is deterministic: the same input always gives the same bytes, on every node.

use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
use wasm_encoder::{
    BlockType, CodeSection, ConstExpr, DataCountSection, DataSection, ElementSection, ExportKind, ExportSection, Function, FunctionSection,
    GlobalSection, GlobalType, ImportSection, Instruction, MemorySection, MemoryType, Module, TableSection, TypeSection, ValType,
};
use wasmparser::{Operator, Parser, Payload};

use super::gas;
use super::validate::{Limits, ModuleInfo};
use super::VmError;

pub use crate::interface::{ABORT_GLOBAL, ABORT_OUT_OF_GAS, ABORT_STACK, GAS_GLOBAL, MEMORY_EXPORT, RESERVED_PREFIX};

/// Version of the rewriting: part of the consensus rules (a change is a hard fork). Backends
/// key their caches by code hash, which is of the original code, so they must be emptied when
/// this changes — it is in the module's identity through [`prepare`]'s callers.
pub const INSTRUMENTATION_VERSION: u32 = 1;

fn encode_error(e: impl std::fmt::Display) -> VmError {
    VmError::Invalid { rule: "malformed".into(), location: format!("could not rewrite the module: {e}") }
}

struct Indices {
    gas: u32,
    depth: u32,
    abort: u32,
    grow: u32,
    fill: u32,
    copy: u32,
    grow_type: u32,
    bulk_type: u32,
}

/// Returns the metered module for validated `code`.
pub fn instrument(code: &[u8], info: &ModuleInfo, limits: &Limits) -> Result<Vec<u8>, VmError> {
    let total_functions = info.function_types.len() as u32;
    let ix = Indices {
        gas: info.globals,
        depth: info.globals + 1,
        abort: info.globals + 2,
        grow: total_functions,
        fill: total_functions + 1,
        copy: total_functions + 2,
        grow_type: info.types,
        bulk_type: info.types + 1,
    };
    let max_indirect_cost = info.frame_costs.iter().copied().max().unwrap_or(0);
    let mut re = RoundtripReencoder;

    let mut types = TypeSection::new();
    let mut imports = None;
    let mut functions = FunctionSection::new();
    let mut tables = None;
    let mut memories = None;
    let mut globals = GlobalSection::new();
    let mut exports = ExportSection::new();
    let mut elements = None;
    let mut data_count = None;
    let mut code_section = CodeSection::new();
    let mut data = None;
    let mut defined = 0usize;

    for payload in Parser::new(0).parse_all(code) {
        match payload.map_err(encode_error)? {
            Payload::TypeSection(r) => re.parse_type_section(&mut types, r).map_err(encode_error)?,
            Payload::ImportSection(r) => {
                let mut s = ImportSection::new();
                re.parse_import_section(&mut s, r).map_err(encode_error)?;
                imports = Some(s);
            }
            Payload::FunctionSection(r) => re.parse_function_section(&mut functions, r).map_err(encode_error)?,
            Payload::TableSection(r) => {
                let mut s = TableSection::new();
                re.parse_table_section(&mut s, r).map_err(encode_error)?;
                tables = Some(s);
            }
            Payload::MemorySection(r) => {
                let mut s = MemorySection::new();
                for m in r {
                    let m = m.map_err(encode_error)?;
                    let limit = limits.max_memory_pages as u64;
                    s.memory(MemoryType {
                        minimum: m.initial,
                        maximum: Some(m.maximum.unwrap_or(limit).min(limit)),
                        memory64: false,
                        shared: false,
                        page_size_log2: None,
                    });
                }
                memories = Some(s);
            }
            Payload::GlobalSection(r) => re.parse_global_section(&mut globals, r).map_err(encode_error)?,
            Payload::ExportSection(r) => re.parse_export_section(&mut exports, r).map_err(encode_error)?,
            Payload::ElementSection(r) => {
                let mut s = ElementSection::new();
                re.parse_element_section(&mut s, r).map_err(encode_error)?;
                elements = Some(s);
            }
            Payload::DataCountSection { count, .. } => data_count = Some(DataCountSection { count }),
            Payload::DataSection(r) => {
                let mut s = DataSection::new();
                re.parse_data_section(&mut s, r).map_err(encode_error)?;
                data = Some(s);
            }
            Payload::CodeSectionEntry(body) => {
                let function = rewrite_body(&body, defined, info, &ix, limits, max_indirect_cost)?;
                code_section.function(&function);
                defined += 1;
            }
            _ => {}
        }
    }
    debug_assert_eq!(defined, info.frame_costs.len());

    // Appended types, globals, exports and functions.
    types.ty().function([ValType::I32], [ValType::I32]);
    types.ty().function([ValType::I32, ValType::I32, ValType::I32], []);
    let mutable = |val_type| GlobalType { val_type, mutable: true, shared: false };
    globals.global(mutable(ValType::I64), &ConstExpr::i64_const(0));
    globals.global(mutable(ValType::I32), &ConstExpr::i32_const(0));
    globals.global(mutable(ValType::I32), &ConstExpr::i32_const(0));
    exports.export(GAS_GLOBAL, ExportKind::Global, ix.gas);
    exports.export(ABORT_GLOBAL, ExportKind::Global, ix.abort);
    if info.has_memory {
        exports.export(MEMORY_EXPORT, ExportKind::Memory, 0);
        functions.function(ix.grow_type);
        functions.function(ix.bulk_type);
        functions.function(ix.bulk_type);
        code_section.function(&grow_function(&ix));
        code_section.function(&bulk_function(&ix, true));
        code_section.function(&bulk_function(&ix, false));
    }

    let mut module = Module::new();
    module.section(&types);
    if let Some(s) = &imports {
        module.section(s);
    }
    module.section(&functions);
    if let Some(s) = &tables {
        module.section(s);
    }
    if let Some(s) = &memories {
        module.section(s);
    }
    module.section(&globals);
    module.section(&exports);
    if let Some(s) = &elements {
        module.section(s);
    }
    if let Some(s) = &data_count {
        module.section(s);
    }
    module.section(&code_section);
    if let Some(s) = &data {
        module.section(s);
    }
    Ok(module.finish())
}

fn ends_run(op: &Operator<'_>) -> bool {
    use Operator::*;
    matches!(
        op,
        Block { .. }
            | Loop { .. }
            | If { .. }
            | Else
            | End
            | Br { .. }
            | BrIf { .. }
            | BrTable { .. }
            | Return
            | Unreachable
            | Call { .. }
            | CallIndirect { .. }
            | MemoryGrow { .. }
            | MemoryFill { .. }
            | MemoryCopy { .. }
    )
}

fn charge(f: &mut Function, ix: &Indices, cost: u64) {
    if cost == 0 {
        return;
    }
    let cost = cost as i64;
    f.instruction(&Instruction::GlobalGet(ix.gas));
    f.instruction(&Instruction::I64Const(cost));
    f.instruction(&Instruction::I64LtS);
    abort_if(f, ix, ABORT_OUT_OF_GAS);
    f.instruction(&Instruction::GlobalGet(ix.gas));
    f.instruction(&Instruction::I64Const(cost));
    f.instruction(&Instruction::I64Sub);
    f.instruction(&Instruction::GlobalSet(ix.gas));
}

/// Consumes an i32 condition; if it is non-zero, records `reason` and traps.
fn abort_if(f: &mut Function, ix: &Indices, reason: i32) {
    f.instruction(&Instruction::If(BlockType::Empty));
    f.instruction(&Instruction::I32Const(reason));
    f.instruction(&Instruction::GlobalSet(ix.abort));
    f.instruction(&Instruction::Unreachable);
    f.instruction(&Instruction::End);
}

fn rewrite_body(
    body: &wasmparser::FunctionBody<'_>,
    body_index: usize,
    info: &ModuleInfo,
    ix: &Indices,
    limits: &Limits,
    max_indirect_cost: u32,
) -> Result<Function, VmError> {
    let mut re = RoundtripReencoder;
    let mut locals = Vec::new();
    for local in body.get_locals_reader().map_err(encode_error)? {
        let (count, ty) = local.map_err(encode_error)?;
        locals.push((count, re.val_type(ty).map_err(encode_error)?));
    }
    let mut ops = Vec::new();
    let mut reader = body.get_operators_reader().map_err(encode_error)?;
    while !reader.eof() {
        ops.push(reader.read().map_err(encode_error)?);
    }
    // Wasmer 7.1's Singlepass compiler takes the wrong branch of a `br_table` whose index is an
    // `i32.const` (found by the conformance suite: `(br_table 0 1 0 (i32.const 1))` goes to
    // label 0). Passing every index through a local first gives both engines a computed index.
    let scratch = if ops.iter().any(|op| matches!(op, Operator::BrTable { .. })) {
        let params = info.function_params(body_index);
        let declared: u32 = locals.iter().map(|(n, _)| *n).sum();
        locals.push((1, ValType::I32));
        Some(params + declared)
    } else {
        None
    };
    let mut f = Function::new(locals);
    let mut run_start = true;
    for (i, op) in ops.iter().enumerate() {
        if run_start {
            let cost: u64 = ops[i..]
                .iter()
                .position(ends_run)
                .map(|end| &ops[i..=i + end])
                .unwrap_or(&ops[i..])
                .iter()
                .map(gas::instruction_cost)
                .sum();
            charge(&mut f, ix, cost);
        }
        run_start = ends_run(op);
        let frame = match op {
            Operator::Call { function_index } if *function_index >= info.imported_functions => {
                Some(info.frame_costs[(*function_index - info.imported_functions) as usize])
            }
            Operator::CallIndirect { .. } => Some(max_indirect_cost),
            _ => None,
        };
        if let Some(cost) = frame {
            f.instruction(&Instruction::GlobalGet(ix.depth));
            f.instruction(&Instruction::I32Const(cost as i32));
            f.instruction(&Instruction::I32Add);
            f.instruction(&Instruction::GlobalSet(ix.depth));
            f.instruction(&Instruction::GlobalGet(ix.depth));
            f.instruction(&Instruction::I32Const(limits.max_stack_slots as i32));
            f.instruction(&Instruction::I32GtU);
            abort_if(&mut f, ix, ABORT_STACK);
        }
        if let (Operator::BrTable { .. }, Some(local)) = (op, scratch) {
            f.instruction(&Instruction::LocalSet(local));
            f.instruction(&Instruction::LocalGet(local));
        }
        match op {
            Operator::MemoryGrow { .. } => f.instruction(&Instruction::Call(ix.grow)),
            Operator::MemoryFill { .. } => f.instruction(&Instruction::Call(ix.fill)),
            Operator::MemoryCopy { .. } => f.instruction(&Instruction::Call(ix.copy)),
            other => f.instruction(&re.instruction(other.clone()).map_err(encode_error)?),
        };
        if let Some(cost) = frame {
            f.instruction(&Instruction::GlobalGet(ix.depth));
            f.instruction(&Instruction::I32Const(cost as i32));
            f.instruction(&Instruction::I32Sub);
            f.instruction(&Instruction::GlobalSet(ix.depth));
        }
    }
    Ok(f)
}

/// Charges `local(cost_local)` (an i64) from the gas global, aborting when it is not there.
fn charge_dynamic(f: &mut Function, ix: &Indices, cost_local: u32) {
    f.instruction(&Instruction::GlobalGet(ix.gas));
    f.instruction(&Instruction::LocalGet(cost_local));
    f.instruction(&Instruction::I64LtS);
    abort_if(f, ix, ABORT_OUT_OF_GAS);
    f.instruction(&Instruction::GlobalGet(ix.gas));
    f.instruction(&Instruction::LocalGet(cost_local));
    f.instruction(&Instruction::I64Sub);
    f.instruction(&Instruction::GlobalSet(ix.gas));
}

/// `(pages: i32) -> i32`: charges per page, then `memory.grow`.
fn grow_function(ix: &Indices) -> Function {
    let mut f = Function::new([(1, ValType::I64)]);
    f.instruction(&Instruction::LocalGet(0));
    f.instruction(&Instruction::I64ExtendI32U);
    f.instruction(&Instruction::I64Const(gas::MEMORY_GROW_PER_PAGE as i64));
    f.instruction(&Instruction::I64Mul);
    f.instruction(&Instruction::LocalSet(1));
    charge_dynamic(&mut f, ix, 1);
    f.instruction(&Instruction::LocalGet(0));
    f.instruction(&Instruction::MemoryGrow(0));
    f.instruction(&Instruction::End);
    f
}

/// `(dest, value_or_source, len)`: charges per started 64 bytes, then `memory.fill`/`memory.copy`.
fn bulk_function(ix: &Indices, fill: bool) -> Function {
    let mut f = Function::new([(1, ValType::I64)]);
    f.instruction(&Instruction::LocalGet(2));
    f.instruction(&Instruction::I64ExtendI32U);
    f.instruction(&Instruction::I64Const(gas::BULK_MEMORY_BYTES_PER_GAS as i64 - 1));
    f.instruction(&Instruction::I64Add);
    f.instruction(&Instruction::I64Const(gas::BULK_MEMORY_BYTES_PER_GAS as i64));
    f.instruction(&Instruction::I64DivU);
    f.instruction(&Instruction::LocalSet(3));
    charge_dynamic(&mut f, ix, 3);
    f.instruction(&Instruction::LocalGet(0));
    f.instruction(&Instruction::LocalGet(1));
    f.instruction(&Instruction::LocalGet(2));
    f.instruction(&if fill { Instruction::MemoryFill(0) } else { Instruction::MemoryCopy { src_mem: 0, dst_mem: 0 } });
    f.instruction(&Instruction::End);
    f
}
