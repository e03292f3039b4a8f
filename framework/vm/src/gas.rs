//! The gas schedule: what every instruction and host function costs, on every backend.
//!
//! Gas is not measured by an engine. At deploy the framework rewrites the module
//! ([`super::instrument`]) so that the module itself subtracts the cost of each straight-line
//! run of instructions from an exported global before running it, and the host functions
//! ([`super::abi`]) charge the costs below from the same counter. Both backends run the same
//! rewritten bytes, so the gas used is equal to the unit by construction; the conformance
//! suite (`aether_testkit::vm_conformance`) checks it, including for calls that trap or run out.
//!
//! Rules: a call that runs out of gas uses its whole limit; a call that traps uses what it
//! was charged up to the trap (a straight-line run is charged whole on entry). Costs are
//! consensus rules: changing one is a hard fork.

/// Every instruction.
pub const INSTRUCTION: u64 = 1;
/// `call` and `call_indirect` (frame set-up, the stack-depth check).
pub const CALL: u64 = 4;
/// Integer division and remainder.
pub const DIVISION: u64 = 2;
/// `memory.grow`, per 64 KiB page asked for (charged even when the grow fails).
pub const MEMORY_GROW_PER_PAGE: u64 = 4_096;
/// `memory.copy` and `memory.fill`: one unit per started 64 bytes.
pub const BULK_MEMORY_BYTES_PER_GAS: u64 = 64;

/// Every host function, before it does anything.
pub const HOST_CALL: u64 = 50;
/// Per byte copied between the contract's memory and the host (inputs, outputs, keys).
pub const HOST_BYTE: u64 = 1;
/// Reading one storage entry (plus [`HOST_BYTE`] per key and value byte): a point read of the
/// flat state, 1–6 µs on the reference machine (docs/storage.md).
pub const STORAGE_READ: u64 = 5_000;
/// Writing one storage entry (plus [`STORAGE_BYTE`] per key and value byte): each written key
/// is a state-tree update at commit, ~58 µs each in a 10k-update block on RocksDB with 1M
/// accounts, so a block's gas limit allows about 10,000 of them (~0.6 s of commit work).
pub const STORAGE_WRITE: u64 = 50_000;
/// Per byte of a stored key or value: it is kept by every node.
pub const STORAGE_BYTE: u64 = 20;
/// Removing one storage entry (a tree update, like a write).
pub const STORAGE_REMOVE: u64 = 30_000;
/// Emitting an event (plus [`EVENT_BYTE`] per topic and data byte).
pub const EVENT: u64 = 1_000;
pub const EVENT_BYTE: u64 = 8;
/// Reading an account's balance.
pub const BALANCE: u64 = 1_000;
/// A value transfer from the contract.
pub const TRANSFER: u64 = 5_000;
/// Calling another contract, before the gas handed to it.
pub const CALL_CONTRACT: u64 = 10_000;
/// sha256: base plus per started 64-byte block.
pub const SHA256: u64 = 300;
pub const SHA256_BLOCK: u64 = 60;
/// One ed25519 signature verification (~30 µs of work).
pub const ED25519_VERIFY: u64 = 50_000;

/// Deploying code: base, and per byte (validation, instrumentation, compilation and storage).
pub const DEPLOY: u64 = 50_000;
pub const DEPLOY_BYTE: u64 = 50;
/// Starting a call transaction or a nested call (loading the code, instantiating).
pub const INSTANTIATE: u64 = 5_000;

/// The most gas one transaction may ask for.
pub const MAX_TX_GAS: u64 = 50_000_000;
/// The most gas the transactions of one block may ask for together.
pub const MAX_BLOCK_GAS: u64 = 500_000_000;
/// Gas per unit of fee: a contract transaction's fee must be at least `gas_limit / GAS_PER_FEE_UNIT`
/// (rounded up). The fee is flat: unused gas is not refunded.
pub const GAS_PER_FEE_UNIT: u64 = 1_000;

/// The least fee a transaction asking for `gas_limit` must pay.
pub fn min_fee(gas_limit: u64) -> u128 {
    gas_limit.div_ceil(GAS_PER_FEE_UNIT) as u128
}

/// Cost of one instruction (the instrumentation sums these per straight-line run).
pub fn instruction_cost(op: &wasmparser::Operator<'_>) -> u64 {
    use wasmparser::Operator::*;
    match op {
        Call { .. } | CallIndirect { .. } => CALL,
        I32DivS | I32DivU | I32RemS | I32RemU | I64DivS | I64DivU | I64RemS | I64RemU => DIVISION,
        // Structural markers do no work of their own.
        End | Else | Nop => 0,
        _ => INSTRUCTION,
    }
}

/// sha256 of `len` bytes.
pub fn sha256_cost(len: usize) -> u64 {
    SHA256 + SHA256_BLOCK * (len as u64).div_ceil(64)
}
