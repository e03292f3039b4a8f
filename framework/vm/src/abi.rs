//! The host interface contracts import (module `"env"`), and its engine-independent
//! implementation.
//!
//! A backend only moves values: for every import it calls [`dispatch`] with the raw
//! arguments, a view of the instance's memory ([`GuestMemory`]) and the [`CallFrame`] it keeps
//! in its store. Everything else — bounds checks on every pointer and length, size limits,
//! gas, the [`Host`] call — happens here, once, so that both backends behave identically.
//!
//! Pointers and lengths are `i32` offsets into the contract's memory; a bad one ends the call
//! with a trap that names the argument (never the node). Addresses are 20 bytes, amounts 16
//! bytes little-endian.
//!
//! | function | signature | effect | gas (see [`super::gas`]) |
//! |---|---|---|---|
//! | `input_len` | `() -> i32` | length of the call's input | `HOST_CALL` |
//! | `input_read` | `(ptr)` | copies the input to `ptr` | + `HOST_BYTE`/byte |
//! | `storage_read` | `(key_ptr, key_len, out_ptr, out_cap) -> i32` | value length, or -1 if absent; copies at most `out_cap` bytes | + `STORAGE_READ` + `HOST_BYTE`/byte |
//! | `storage_write` | `(key_ptr, key_len, val_ptr, val_len)` | sets an entry of this contract's storage | + `STORAGE_WRITE` + `STORAGE_BYTE`/byte |
//! | `storage_remove` | `(key_ptr, key_len)` | removes an entry | + `STORAGE_REMOVE` |
//! | `caller` | `(out_ptr)` | 20-byte address of the caller | + 20 `HOST_BYTE` |
//! | `self_address` | `(out_ptr)` | 20-byte address of this contract | + 20 `HOST_BYTE` |
//! | `value` | `(out_ptr)` | 16-byte amount sent with the call | + 16 `HOST_BYTE` |
//! | `balance` | `(addr_ptr, out_ptr)` | 16-byte balance of an account | + `BALANCE` |
//! | `block_height` | `() -> i64` | height of the block being executed | `HOST_CALL` |
//! | `block_time_ms` | `() -> i64` | the block header's time | `HOST_CALL` |
//! | `emit_event` | `(topic_ptr, topic_len, data_ptr, data_len)` | adds an event to the receipt | + `EVENT` + `EVENT_BYTE`/byte |
//! | `transfer` | `(to_ptr, amount_ptr) -> i32` | 0 sent, 1 balance too low | + `TRANSFER` |
//! | `call` | `(addr_ptr, method_ptr, method_len, input_ptr, input_len, value_ptr, gas: i64) -> i32` | 0 returned, 1 reverted, 2 trapped, 3 out of gas, 4 refused (no contract, re-entrancy, depth, value); the callee's output is then the return data | + `CALL_CONTRACT` + the gas it used |
//! | `return_data_len` | `() -> i32` | length of the last call's output | `HOST_CALL` |
//! | `return_data_read` | `(ptr)` | copies it to `ptr` | + `HOST_BYTE`/byte |
//! | `sha256` | `(ptr, len, out_ptr)` | 32-byte digest | + `sha256_cost(len)` |
//! | `ed25519_verify` | `(pk_ptr, msg_ptr, msg_len, sig_ptr) -> i32` | 1 valid (strict), 0 not | + `ED25519_VERIFY` |
//! | `set_return` | `(ptr, len)` | sets this call's output | + `HOST_BYTE`/byte |
//! | `revert` | `(ptr, len)` | ends the call, undoing its writes; the output is the data | + `HOST_BYTE`/byte |

use sha2::{Digest, Sha256};

use super::{gas, CallOutcome, CallResult, Host, HostError};
use crate::types::{Address, PublicKey, Signature};

pub use crate::interface::{
    AbiType, HostFn, CALL_OUT_OF_GAS, CALL_REFUSED, CALL_RETURNED, CALL_REVERTED, CALL_TRAPPED, MAX_EVENTS_PER_TX, MAX_EVENT_DATA_BYTES,
    MAX_IO_BYTES, MAX_KEY_BYTES, MAX_METHOD_BYTES, MAX_TOPIC_BYTES, MAX_VALUE_BYTES,
};

/// The memory of the running instance, as a backend exposes it to [`dispatch`].
///
/// [`dispatch`] checks every range against [`GuestMemory::size`] itself before calling
/// `read`/`write`, so the rule is the framework's on every backend: a range is valid when
/// `ptr + len <= size` (a zero-length range included).
pub trait GuestMemory {
    /// Bytes of memory now (0 for a module without memory).
    fn size(&mut self) -> u64;
    /// Copies `buf.len()` bytes at `ptr` into `buf`; false if any of them is out of bounds.
    fn read(&mut self, ptr: u32, buf: &mut [u8]) -> bool;
    /// Writes `data` at `ptr`; false (and nothing written) if any byte is out of bounds.
    fn write(&mut self, ptr: u32, data: &[u8]) -> bool;
}

/// The framework's bounds rule, the same on every backend.
fn in_bounds(mem: &mut dyn GuestMemory, ptr: u32, len: usize) -> bool {
    ptr as u64 + len as u64 <= mem.size()
}

/// A [`GuestMemory`] over the instance's memory as one byte slice (empty without a memory).
pub struct SliceMemory<'m>(pub &'m mut [u8]);

impl GuestMemory for SliceMemory<'_> {
    fn size(&mut self) -> u64 {
        self.0.len() as u64
    }

    fn read(&mut self, ptr: u32, buf: &mut [u8]) -> bool {
        let start = ptr as usize;
        match self.0.get(start..start + buf.len()) {
            Some(src) => {
                buf.copy_from_slice(src);
                true
            }
            None => false,
        }
    }

    fn write(&mut self, ptr: u32, data: &[u8]) -> bool {
        let start = ptr as usize;
        match self.0.get_mut(start..start + data.len()) {
            Some(dst) => {
                dst.copy_from_slice(data);
                true
            }
            None => false,
        }
    }
}

/// Why a call stopped before returning normally, recorded by [`dispatch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Abort {
    Revert(Vec<u8>),
    OutOfGas,
    Host(HostError),
}

/// Per-instance state a backend keeps in its store for the duration of one call.
pub struct CallFrame<'h> {
    host: &'h mut dyn Host,
    /// Gas left; the backend copies it from the gas global before [`dispatch`] and back after.
    pub gas_left: u64,
    output: Vec<u8>,
    /// Output of the last nested call.
    return_data: Vec<u8>,
    abort: Option<Abort>,
}

/// How the engine's run of the entry function ended, as the backend saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineExit {
    Finished,
    /// The engine trapped; the backend maps its own trap code to one of these.
    Trap(EngineTrap),
}

/// Engine traps, named the same way on every backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineTrap {
    Unreachable,
    MemoryOutOfBounds,
    TableOutOfBounds,
    IndirectCallToNull,
    BadSignature,
    IntegerDivisionByZero,
    IntegerOverflow,
    /// The engine's own stack guard fired. The instrumentation's depth limit is meant to fire
    /// first; reaching this is reported distinctly so the conformance suite can catch it.
    StackOverflow,
    /// A host-function error the frame did not record (cannot happen with [`dispatch`]).
    Host,
    Other,
}

impl EngineTrap {
    fn text(self) -> &'static str {
        match self {
            EngineTrap::Unreachable => "unreachable executed",
            EngineTrap::MemoryOutOfBounds => "memory access out of bounds",
            EngineTrap::TableOutOfBounds => "table access out of bounds",
            EngineTrap::IndirectCallToNull => "indirect call to a null table entry",
            EngineTrap::BadSignature => "indirect call with the wrong signature",
            EngineTrap::IntegerDivisionByZero => "integer division by zero",
            EngineTrap::IntegerOverflow => "integer overflow",
            EngineTrap::StackOverflow => "engine stack overflow",
            EngineTrap::Host => "host function failed",
            EngineTrap::Other => "engine trap",
        }
    }
}

/// The outcome when `entry` is not an exported function of type `[] -> []` (same text on
/// every backend; nothing ran, nothing is charged by the backend).
pub fn missing_entry(entry: &str) -> CallOutcome {
    CallOutcome { result: CallResult::Trapped(format!("no exported function {entry:?} of type [] -> []")), gas_used: 0 }
}

impl<'h> CallFrame<'h> {
    pub fn new(host: &'h mut dyn Host, gas_limit: u64) -> Self {
        CallFrame { host, gas_left: gas_limit, output: Vec::new(), return_data: Vec::new(), abort: None }
    }

    /// The outcome of the call, from how the engine stopped and the instrumentation's globals
    /// read after it stopped (`gas_global`: `aether_gas`; `abort_global`: `aether_abort`).
    pub fn finish(self, gas_limit: u64, exit: EngineExit, gas_global: i64, abort_global: i32) -> CallOutcome {
        let used_to_now = |gas_left: u64| gas_limit.saturating_sub(gas_left);
        let remaining = u64::try_from(gas_global).unwrap_or(0);
        match (self.abort, exit) {
            (Some(Abort::OutOfGas), _) => CallOutcome { result: CallResult::OutOfGas, gas_used: gas_limit },
            (Some(Abort::Revert(data)), _) => CallOutcome { result: CallResult::Reverted(data), gas_used: used_to_now(self.gas_left) },
            (Some(Abort::Host(e)), _) => {
                CallOutcome { result: CallResult::Trapped(format!("host: {e}")), gas_used: used_to_now(self.gas_left) }
            }
            (None, EngineExit::Finished) => CallOutcome { result: CallResult::Returned(self.output), gas_used: used_to_now(remaining) },
            (None, EngineExit::Trap(trap)) => match abort_global {
                crate::interface::ABORT_OUT_OF_GAS => CallOutcome { result: CallResult::OutOfGas, gas_used: gas_limit },
                crate::interface::ABORT_STACK => {
                    CallOutcome { result: CallResult::Trapped("call stack exhausted".into()), gas_used: used_to_now(remaining) }
                }
                _ => CallOutcome { result: CallResult::Trapped(trap.text().into()), gas_used: used_to_now(remaining) },
            },
        }
    }
}

fn charge(frame: &mut CallFrame<'_>, cost: u64) -> Result<(), Abort> {
    if frame.gas_left < cost {
        frame.gas_left = 0;
        return Err(Abort::OutOfGas);
    }
    frame.gas_left -= cost;
    Ok(())
}

fn arg_u32(args: &[u64], i: usize) -> u32 {
    args[i] as u32
}

fn read(mem: &mut dyn GuestMemory, what: &str, ptr: u32, len: u32, max: usize) -> Result<Vec<u8>, Abort> {
    if len as usize > max {
        return Err(Abort::Host(HostError::TooLarge(format!("{what} of {len} bytes; the limit is {max}"))));
    }
    let mut buf = vec![0u8; len as usize];
    if !in_bounds(mem, ptr, buf.len()) || !mem.read(ptr, &mut buf) {
        return Err(Abort::Host(HostError::OutOfBounds(format!("{what}: {len} bytes at {ptr}"))));
    }
    Ok(buf)
}

fn read_fixed<const N: usize>(mem: &mut dyn GuestMemory, what: &str, ptr: u32) -> Result<[u8; N], Abort> {
    let mut buf = [0u8; N];
    if !in_bounds(mem, ptr, N) || !mem.read(ptr, &mut buf) {
        return Err(Abort::Host(HostError::OutOfBounds(format!("{what}: {N} bytes at {ptr}"))));
    }
    Ok(buf)
}

fn write(mem: &mut dyn GuestMemory, what: &str, ptr: u32, data: &[u8]) -> Result<(), Abort> {
    if !in_bounds(mem, ptr, data.len()) || !mem.write(ptr, data) {
        return Err(Abort::Host(HostError::OutOfBounds(format!("{what}: {} bytes at {ptr}", data.len()))));
    }
    Ok(())
}

fn bytes_cost(n: usize) -> u64 {
    gas::HOST_BYTE * n as u64
}

/// The contract's run must end now (out of gas, a bad argument, a revert...): the backend
/// traps, and [`CallFrame::finish`] reports why, from what [`dispatch`] recorded in the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndRun;

/// Runs host function `func` with `args` (each i32 zero-extended, i64 as is). Returns the
/// result value, or [`EndRun`] when the call must end now.
pub fn dispatch(frame: &mut CallFrame<'_>, func: HostFn, args: &[u64], mem: &mut dyn GuestMemory) -> Result<Option<u64>, EndRun> {
    match run(frame, func, args, mem) {
        Ok(v) => Ok(v),
        Err(abort) => {
            frame.abort = Some(abort);
            Err(EndRun)
        }
    }
}

fn host_err(e: HostError) -> Abort {
    match e {
        HostError::OutOfGas => Abort::OutOfGas,
        e => Abort::Host(e),
    }
}

fn run(frame: &mut CallFrame<'_>, func: HostFn, args: &[u64], mem: &mut dyn GuestMemory) -> Result<Option<u64>, Abort> {
    debug_assert_eq!(args.len(), func.params().len());
    charge(frame, gas::HOST_CALL)?;
    let i32_result = |v: i32| Ok(Some(v as u32 as u64));
    match func {
        HostFn::InputLen => i32_result(frame.host.input().len() as i32),
        HostFn::InputRead => {
            let input = frame.host.input().to_vec();
            charge(frame, bytes_cost(input.len()))?;
            write(mem, "input_read destination", arg_u32(args, 0), &input)?;
            Ok(None)
        }
        HostFn::StorageRead => {
            let (key_len, out_ptr, out_cap) = (arg_u32(args, 1), arg_u32(args, 2), arg_u32(args, 3));
            charge(frame, gas::STORAGE_READ + bytes_cost(key_len as usize))?;
            let key = read(mem, "storage key", arg_u32(args, 0), key_len, MAX_KEY_BYTES)?;
            match frame.host.storage_read(&key).map_err(host_err)? {
                None => i32_result(-1),
                Some(value) => {
                    let n = value.len().min(out_cap as usize);
                    charge(frame, bytes_cost(n))?;
                    write(mem, "storage_read destination", out_ptr, &value[..n])?;
                    i32_result(value.len() as i32)
                }
            }
        }
        HostFn::StorageWrite => {
            let (key_len, val_len) = (arg_u32(args, 1), arg_u32(args, 3));
            charge(frame, gas::STORAGE_WRITE + gas::STORAGE_BYTE * (key_len as u64 + val_len as u64))?;
            let key = read(mem, "storage key", arg_u32(args, 0), key_len, MAX_KEY_BYTES)?;
            let value = read(mem, "storage value", arg_u32(args, 2), val_len, MAX_VALUE_BYTES)?;
            frame.host.storage_write(&key, &value).map_err(host_err)?;
            Ok(None)
        }
        HostFn::StorageRemove => {
            let key_len = arg_u32(args, 1);
            charge(frame, gas::STORAGE_REMOVE + bytes_cost(key_len as usize))?;
            let key = read(mem, "storage key", arg_u32(args, 0), key_len, MAX_KEY_BYTES)?;
            frame.host.storage_remove(&key).map_err(host_err)?;
            Ok(None)
        }
        HostFn::Caller | HostFn::SelfAddress => {
            charge(frame, bytes_cost(20))?;
            let a = if func == HostFn::Caller { frame.host.caller() } else { frame.host.self_address() };
            write(mem, "address destination", arg_u32(args, 0), &a.0)?;
            Ok(None)
        }
        HostFn::Value => {
            charge(frame, bytes_cost(16))?;
            write(mem, "value destination", arg_u32(args, 0), &frame.host.value().to_le_bytes())?;
            Ok(None)
        }
        HostFn::Balance => {
            charge(frame, gas::BALANCE)?;
            let of = Address(read_fixed::<20>(mem, "balance address", arg_u32(args, 0))?);
            let balance = frame.host.balance(&of).map_err(host_err)?;
            write(mem, "balance destination", arg_u32(args, 1), &balance.to_le_bytes())?;
            Ok(None)
        }
        HostFn::BlockHeight => Ok(Some(frame.host.block_height())),
        HostFn::BlockTimeMs => Ok(Some(frame.host.block_time_ms())),
        HostFn::EmitEvent => {
            let (topic_len, data_len) = (arg_u32(args, 1), arg_u32(args, 3));
            charge(frame, gas::EVENT + gas::EVENT_BYTE * (topic_len as u64 + data_len as u64))?;
            let topic = read(mem, "event topic", arg_u32(args, 0), topic_len, MAX_TOPIC_BYTES)?;
            let data = read(mem, "event data", arg_u32(args, 2), data_len, MAX_EVENT_DATA_BYTES)?;
            frame.host.emit_event(topic, data).map_err(host_err)?;
            Ok(None)
        }
        HostFn::Transfer => {
            charge(frame, gas::TRANSFER)?;
            let to = Address(read_fixed::<20>(mem, "transfer recipient", arg_u32(args, 0))?);
            let amount = u128::from_le_bytes(read_fixed::<16>(mem, "transfer amount", arg_u32(args, 1))?);
            let sent = frame.host.transfer(&to, amount).map_err(host_err)?;
            i32_result(if sent { 0 } else { 1 })
        }
        HostFn::Call => {
            charge(frame, gas::CALL_CONTRACT)?;
            let to = Address(read_fixed::<20>(mem, "call address", arg_u32(args, 0))?);
            let method = read(mem, "call method", arg_u32(args, 1), arg_u32(args, 2), MAX_METHOD_BYTES)?;
            let input_len = arg_u32(args, 4);
            charge(frame, bytes_cost(input_len as usize))?;
            let input = read(mem, "call input", arg_u32(args, 3), input_len, MAX_IO_BYTES)?;
            let value = u128::from_le_bytes(read_fixed::<16>(mem, "call value", arg_u32(args, 5))?);
            let Ok(method) = String::from_utf8(method) else {
                frame.return_data = b"method name is not UTF-8".to_vec();
                return i32_result(CALL_REFUSED);
            };
            // The callee gets at most what is left; what it does not use comes back.
            let forwarded = args[6].min(frame.gas_left);
            frame.gas_left -= forwarded;
            let outcome = frame.host.call(&to, &method, &input, value, forwarded);
            let (status, data) = match outcome {
                Ok(CallOutcome { result, gas_used }) => {
                    frame.gas_left += forwarded - gas_used.min(forwarded);
                    match result {
                        CallResult::Returned(d) => (CALL_RETURNED, d),
                        CallResult::Reverted(d) => (CALL_REVERTED, d),
                        CallResult::Trapped(why) => (CALL_TRAPPED, why.into_bytes()),
                        CallResult::OutOfGas => (CALL_OUT_OF_GAS, Vec::new()),
                    }
                }
                Err(HostError::OutOfGas) => return Err(Abort::OutOfGas),
                Err(HostError::Refused(why)) => {
                    frame.gas_left += forwarded;
                    (CALL_REFUSED, why.into_bytes())
                }
                Err(e) => return Err(Abort::Host(e)),
            };
            frame.return_data = data;
            i32_result(status)
        }
        HostFn::ReturnDataLen => i32_result(frame.return_data.len() as i32),
        HostFn::ReturnDataRead => {
            charge(frame, bytes_cost(frame.return_data.len()))?;
            let data = std::mem::take(&mut frame.return_data);
            let result = write(mem, "return_data_read destination", arg_u32(args, 0), &data);
            frame.return_data = data;
            result.map(|_| None)
        }
        HostFn::Sha256 => {
            let len = arg_u32(args, 1);
            charge(frame, gas::sha256_cost(len as usize))?;
            let data = read(mem, "sha256 input", arg_u32(args, 0), len, MAX_IO_BYTES)?;
            let digest: [u8; 32] = Sha256::digest(&data).into();
            write(mem, "sha256 destination", arg_u32(args, 2), &digest)?;
            Ok(None)
        }
        HostFn::Ed25519Verify => {
            charge(frame, gas::ED25519_VERIFY)?;
            let pk = read_fixed::<32>(mem, "ed25519 public key", arg_u32(args, 0))?;
            let msg_len = arg_u32(args, 2);
            charge(frame, bytes_cost(msg_len as usize))?;
            let msg = read(mem, "ed25519 message", arg_u32(args, 1), msg_len, MAX_IO_BYTES)?;
            let sig = read_fixed::<64>(mem, "ed25519 signature", arg_u32(args, 3))?;
            let valid = PublicKey(pk).verify(&msg, &Signature(sig)).is_ok();
            i32_result(valid as i32)
        }
        HostFn::SetReturn | HostFn::Revert => {
            let len = arg_u32(args, 1);
            charge(frame, bytes_cost(len as usize))?;
            let data = read(mem, "return data", arg_u32(args, 0), len, MAX_IO_BYTES)?;
            if func == HostFn::Revert {
                return Err(Abort::Revert(data));
            }
            frame.output = data;
            Ok(None)
        }
    }
}
