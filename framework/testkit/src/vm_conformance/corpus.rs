//! The contracts of the VM conformance suite, in WebAssembly text.

/// Arithmetic, loops, traps and resource attacks. Memory starts at 1 page.
pub const ADVERSARY: &str = r#"
(module
  (import "env" "input_read" (func $input_read (param i32)))
  (import "env" "set_return" (func $set_return (param i32 i32)))
  (import "env" "storage_write" (func $storage_write (param i32 i32 i32 i32)))
  (import "env" "sha256" (func $sha256 (param i32 i32 i32)))
  (memory 1)
  (table 4 funcref)
  (elem (i32.const 0) $one $two)
  (type $to_i32 (func (result i32)))
  (type $to_i64 (func (result i64)))
  (func $one (result i32) (i32.const 1))
  (func $two (result i32) (i32.const 2))

  ;; sum of 1..n, n = the input's first 4 bytes; returns 8 bytes
  (func (export "sum") (local $n i32) (local $acc i64)
    (call $input_read (i32.const 0))
    (local.set $n (i32.load (i32.const 0)))
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (local.get $n))))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next)))
    (i64.store (i32.const 8) (local.get $acc))
    (call $set_return (i32.const 8) (i32.const 8)))

  (func (export "spin") (loop $forever (br $forever)))

  (func $down (call $down))
  (func (export "recurse_small") (call $down))

  (func $down_big (param $a i64) (result i64)
    (local i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64
           i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64
           i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64
           i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64)
    (i64.add (i64.add (i64.add (i64.add (local.get $a) (local.get 1)) (local.get 2)) (local.get 3))
      (call $down_big (i64.add (local.get $a) (i64.const 1)))))
  (func (export "recurse_big") (drop (call $down_big (i64.const 0))))

  ;; grows one page at a time until refused; returns the pages added (4 bytes)
  (func (export "grow_all") (local $n i32)
    (block $full (loop $again
      (br_if $full (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $again)))
    (i32.store (i32.const 0) (local.get $n))
    (i32.store (i32.const 4) (memory.size))
    (call $set_return (i32.const 0) (i32.const 8)))

  ;; asks for far more pages than allowed at once
  (func (export "grow_huge")
    (i32.store (i32.const 0) (memory.grow (i32.const 100000)))
    (call $set_return (i32.const 0) (i32.const 4)))

  (func (export "oob_store") (i32.store (i32.const 65534) (i32.const 7)))
  (func (export "oob_after_grow") (drop (memory.grow (i32.const 1))) (i32.store (i32.const 131070) (i32.const 7)))
  (func (export "unreachable") (unreachable))
  (func (export "div_zero") (drop (i32.div_u (i32.const 1) (i32.const 0))))
  (func (export "overflow") (drop (i32.div_s (i32.const 0x80000000) (i32.const -1))))
  (func (export "rem_overflow")
    (i32.store (i32.const 0) (i32.rem_s (i32.const 0x80000000) (i32.const -1)))
    (i64.store (i32.const 4) (i64.rem_s (i64.const 0x8000000000000000) (i64.const -1)))
    (call $set_return (i32.const 0) (i32.const 12)))
  (func (export "indirect_out_of_range") (drop (call_indirect (type $to_i32) (i32.const 10))))
  ;; operations whose operands are all constants (a Singlepass compiler folds them)
  (func (export "constants")
    (i32.store (i32.const 0) (i32.shl (i32.const 1) (i32.const 33)))
    (i32.store (i32.const 4) (i32.shr_s (i32.const -8) (i32.const 65)))
    (i32.store (i32.const 8) (i32.rotl (i32.const 0x80000001) (i32.const 1)))
    (i32.store (i32.const 12) (i32.div_u (i32.const -1) (i32.const 3)))
    (i32.store (i32.const 16) (i32.rem_u (i32.const -1) (i32.const 7)))
    (i32.store (i32.const 20) (i32.div_s (i32.const -7) (i32.const 2)))
    (i32.store (i32.const 24) (i32.rem_s (i32.const -7) (i32.const 2)))
    (i32.store (i32.const 28) (select (i32.const 5) (i32.const 6) (i32.const 0)))
    (i32.store (i32.const 32) (i32.clz (i32.const 1)))
    (i32.store (i32.const 36) (i32.ctz (i32.const 0)))
    (i32.store (i32.const 40) (i32.popcnt (i32.const -1)))
    (i32.store (i32.const 44) (i32.wrap_i64 (i64.const 0x1234567890)))
    (i64.store (i32.const 48) (i64.shl (i64.const 1) (i64.const 65)))
    (i64.store (i32.const 56) (i64.shr_u (i64.const -1) (i64.const 127)))
    (i64.store (i32.const 64) (i64.rotr (i64.const 1) (i64.const 1)))
    (i64.store (i32.const 72) (i64.extend_i32_s (i32.const -2)))
    (i64.store (i32.const 80) (i64.mul (i64.const 0x100000001) (i64.const 0x100000001)))
    (i32.store (i32.const 88) (i32.lt_s (i32.const -1) (i32.const 1)))
    (i32.store (i32.const 92) (i32.lt_u (i32.const -1) (i32.const 1)))
    (i32.store (i32.const 96) (i64.ge_u (i64.const -1) (i64.const 0)))
    (i32.store (i32.const 100) (i32.eqz (i32.const 0)))
    (i32.store (i32.const 104) (block (result i32) (br_if 0 (i32.const 11) (i32.const 1)) (drop) (i32.const 12)))
    (i32.store (i32.const 108) (if (result i32) (i32.const 0) (then (i32.const 13)) (else (i32.const 14))))
    (i32.store offset=4 (i32.const 108) (i32.load8_s offset=3 (i32.const 0x5)))
    (i32.store (i32.const 116) (i32.load16_u (i32.const 8)))
    (i64.store (i32.const 120) (i64.load32_s (i32.const 12)))
    (call $set_return (i32.const 0) (i32.const 128)))
  (func (export "null_indirect") (drop (call_indirect (type $to_i32) (i32.const 3))))
  (func (export "bad_signature") (drop (call_indirect (type $to_i64) (i32.const 0))))
  (func (export "indirect_ok")
    (i32.store (i32.const 0) (i32.add (call_indirect (type $to_i32) (i32.const 0)) (call_indirect (type $to_i32) (i32.const 1))))
    (call $set_return (i32.const 0) (i32.const 4)))

  ;; host calls with pointers past the memory, lengths past the limits
  (func (export "host_oob_key") (call $storage_write (i32.const 65530) (i32.const 16) (i32.const 0) (i32.const 1)))
  (func (export "host_oob_value") (call $storage_write (i32.const 0) (i32.const 1) (i32.const -16) (i32.const 32)))
  (func (export "host_long_key") (call $storage_write (i32.const 0) (i32.const 1000) (i32.const 0) (i32.const 1)))
  (func (export "host_huge_len") (call $sha256 (i32.const 0) (i32.const 0x7fffffff) (i32.const 0)))
  (func (export "host_oob_output") (call $sha256 (i32.const 0) (i32.const 4) (i32.const 65520)))

  ;; bulk memory, metered per 64 bytes
  (func (export "fill_copy")
    (memory.fill (i32.const 0) (i32.const 171) (i32.const 60000))
    (memory.copy (i32.const 100) (i32.const 0) (i32.const 50000))
    (call $set_return (i32.const 59990) (i32.const 20)))

  ;; sign extension and multi-value are allowed
  (func $pair (result i32 i32) (i32.const 0xff) (i32.const 0x8000))
  (func (export "allowed_features") (local $a i32) (local $b i32)
    (call $pair) (local.set $b) (local.set $a)
    (i32.store (i32.const 0) (i32.extend8_s (local.get $a)))
    (i32.store (i32.const 4) (i32.extend16_s (local.get $b)))
    (call $set_return (i32.const 0) (i32.const 8)))
  (func (export "init"))
)
"#;

/// A contract without memory: host calls may only name empty ranges at offset 0.
pub const MEMORYLESS: &str = r#"
(module
  (import "env" "set_return" (func $set_return (param i32 i32)))
  (import "env" "storage_write" (func $storage_write (param i32 i32 i32 i32)))
  (func (export "empty_at_0") (call $set_return (i32.const 0) (i32.const 0)))
  (func (export "empty_at_8") (call $set_return (i32.const 8) (i32.const 0)))
  (func (export "empty_write_at_8") (call $storage_write (i32.const 8) (i32.const 0) (i32.const 8) (i32.const 0)))
  (func (export "byte_at_0") (call $set_return (i32.const 0) (i32.const 1))))
"#;

/// Storage, events, context, value, hashing and signatures.
pub const STORE: &str = r#"
(module
  (import "env" "input_len" (func $input_len (result i32)))
  (import "env" "input_read" (func $input_read (param i32)))
  (import "env" "storage_read" (func $storage_read (param i32 i32 i32 i32) (result i32)))
  (import "env" "storage_write" (func $storage_write (param i32 i32 i32 i32)))
  (import "env" "storage_remove" (func $storage_remove (param i32 i32)))
  (import "env" "caller" (func $caller (param i32)))
  (import "env" "self_address" (func $self_address (param i32)))
  (import "env" "value" (func $value (param i32)))
  (import "env" "balance" (func $balance (param i32 i32)))
  (import "env" "block_height" (func $block_height (result i64)))
  (import "env" "block_time_ms" (func $block_time_ms (result i64)))
  (import "env" "emit_event" (func $emit_event (param i32 i32 i32 i32)))
  (import "env" "transfer" (func $transfer (param i32 i32) (result i32)))
  (import "env" "sha256" (func $sha256 (param i32 i32 i32)))
  (import "env" "ed25519_verify" (func $ed25519_verify (param i32 i32 i32 i32) (result i32)))
  (import "env" "set_return" (func $set_return (param i32 i32)))
  (import "env" "revert" (func $revert (param i32 i32)))
  (memory 1)
  (data (i32.const 1000) "k")
  (data (i32.const 1001) "put")
  (data (i32.const 1004) "no")
  (data (i32.const 1006) "reverted")

  ;; k := input; emits ("put", input); returns the old value's length (4 bytes)
  (func (export "put") (local $len i32)
    (local.set $len (call $input_len))
    (call $input_read (i32.const 2000))
    (i32.store (i32.const 0) (call $storage_read (i32.const 1000) (i32.const 1) (i32.const 4000) (i32.const 0)))
    (call $storage_write (i32.const 1000) (i32.const 1) (i32.const 2000) (local.get $len))
    (call $emit_event (i32.const 1001) (i32.const 3) (i32.const 2000) (local.get $len))
    (call $set_return (i32.const 0) (i32.const 4)))

  (func (export "get") (local $len i32)
    (local.set $len (call $storage_read (i32.const 1000) (i32.const 1) (i32.const 2000) (i32.const 4096)))
    (if (i32.lt_s (local.get $len) (i32.const 0)) (then (return)))
    (call $set_return (i32.const 2000) (local.get $len)))

  (func (export "del") (call $storage_remove (i32.const 1000) (i32.const 1)))

  (func (export "put_then_revert")
    (call $storage_write (i32.const 1000) (i32.const 1) (i32.const 1006) (i32.const 8))
    (call $emit_event (i32.const 1001) (i32.const 3) (i32.const 1006) (i32.const 8))
    (call $revert (i32.const 1004) (i32.const 2)))

  ;; caller (20) self (20) value (16) height (8) time (8) own balance (16)
  (func (export "info")
    (call $caller (i32.const 0))
    (call $self_address (i32.const 20))
    (call $value (i32.const 40))
    (i64.store (i32.const 56) (call $block_height))
    (i64.store (i32.const 64) (call $block_time_ms))
    (call $balance (i32.const 20) (i32.const 72))
    (call $set_return (i32.const 0) (i32.const 88)))

  (func (export "hash")
    (call $input_read (i32.const 0))
    (call $sha256 (i32.const 0) (call $input_len) (i32.const 5000))
    (call $set_return (i32.const 5000) (i32.const 32)))

  ;; input: public key (32) signature (64) message (rest); returns 1 byte
  (func (export "verify")
    (call $input_read (i32.const 0))
    (i32.store8 (i32.const 5000)
      (call $ed25519_verify (i32.const 0) (i32.const 96) (i32.sub (call $input_len) (i32.const 96)) (i32.const 32)))
    (call $set_return (i32.const 5000) (i32.const 1)))

  ;; input: recipient (20) amount (16); returns the status (4 bytes)
  (func (export "pay")
    (call $input_read (i32.const 0))
    (i32.store (i32.const 100) (call $transfer (i32.const 0) (i32.const 20)))
    (call $set_return (i32.const 100) (i32.const 4)))

  ;; pays, then reverts: the payment must be undone
  (func (export "pay_then_revert")
    (call $input_read (i32.const 0))
    (drop (call $transfer (i32.const 0) (i32.const 20)))
    (call $revert (i32.const 1004) (i32.const 2)))
)
"#;

/// Calls another contract: input = address (20), method length (1), method, callee input.
/// Returns the status (4 bytes LE) followed by the callee's output.
pub const PROXY: &str = r#"
(module
  (import "env" "input_len" (func $input_len (result i32)))
  (import "env" "input_read" (func $input_read (param i32)))
  (import "env" "call" (func $call (param i32 i32 i32 i32 i32 i32 i64) (result i32)))
  (import "env" "return_data_len" (func $rd_len (result i32)))
  (import "env" "return_data_read" (func $rd_read (param i32)))
  (import "env" "storage_write" (func $storage_write (param i32 i32 i32 i32)))
  (import "env" "set_return" (func $set_return (param i32 i32)))
  (memory 2)
  (data (i32.const 60100) "proxied")
  (func (export "forward") (local $len i32) (local $m i32) (local $rd i32)
    (local.set $len (call $input_len))
    (call $input_read (i32.const 0))
    (local.set $m (i32.load8_u (i32.const 20)))
    (call $storage_write (i32.const 60100) (i32.const 7) (i32.const 60100) (i32.const 7))
    (i32.store (i32.const 65536)
      (call $call (i32.const 0) (i32.const 21) (local.get $m)
        (i32.add (i32.const 21) (local.get $m))
        (i32.sub (local.get $len) (i32.add (i32.const 21) (local.get $m)))
        (i32.const 60000) (i64.const 3000000)))
    (local.set $rd (call $rd_len))
    (call $rd_read (i32.const 65540))
    (call $set_return (i32.const 65536) (i32.add (i32.const 4) (local.get $rd))))
)
"#;

/// A `br_table` with `targets` entries (the limit is 4096).
pub fn br_table_module(targets: usize) -> String {
    let labels: String = (0..targets).map(|i| format!(" {}", i % 2)).collect();
    format!(
        r#"(module
  (import "env" "set_return" (func $set_return (param i32 i32)))
  (memory 1)
  (func (export "jump") (local $r i32)
    (block $b1 (block $b0
      (br_table{labels} 0 (i32.const {last})))
      (local.set $r (i32.const 10)))
    (i32.store (i32.const 0) (i32.add (local.get $r) (i32.const 1)))
    (call $set_return (i32.const 0) (i32.const 4))))"#,
        last = targets.saturating_sub(1)
    )
}

/// Modules validation must refuse, with the rule each breaks.
pub fn refused() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let wat = |s: &str| wat::parse_str(s).expect("corpus module parses");
    let mut cases = vec![
        ("f32 result", wat("(module (func (result f32) (f32.const 1)))"), "floats"),
        ("f64 local", wat("(module (func (local f64)))"), "floats"),
        ("f64 global", wat("(module (global f64 (f64.const 0)))"), "floats"),
        ("float op on ints", wat("(module (func (drop (f32.convert_i32_s (i32.const 1)))))"), "floats"),
        ("simd", wat("(module (func (drop (v128.const i64x2 0 0))))"), "simd"),
        ("shared memory", wat("(module (memory 1 1 shared))"), "threads"),
        ("atomics", wat("(module (memory 1) (func (drop (i32.atomic.load (i32.const 0)))))"), "threads"),
        ("memory64", wat("(module (memory i64 1))"), "memory64"),
        ("two memories", wat("(module (memory 1) (memory 1))"), "multi-memory"),
        ("externref table", wat("(module (table 1 externref))"), "reference-types"),
        ("ref.null", wat("(module (func (drop (ref.null func))))"), "reference-types"),
        ("table.grow", wat("(module (table 1 funcref) (func (drop (table.grow (ref.null func) (i32.const 1)))))"), "reference-types"),
        ("passive data", wat("(module (memory 1) (data \"x\"))"), "bulk-memory"),
        (
            "memory.init",
            wat("(module (memory 1) (data \"x\") (func (memory.init 0 (i32.const 0) (i32.const 0) (i32.const 1))))"),
            "bulk-memory",
        ),
        ("tail call", wat("(module (func (return_call 0)))"), "proposal"),
        ("unknown import", wat("(module (import \"env\" \"nope\" (func)))"), "imports"),
        ("wrong import type", wat("(module (import \"env\" \"input_len\" (func (result i64))))"), "imports"),
        ("imported memory", wat("(module (import \"env\" \"memory\" (memory 1)))"), "imports"),
        (
            "wasi import",
            wat("(module (import \"wasi_snapshot_preview1\" \"fd_write\" (func (param i32 i32 i32 i32) (result i32))))"),
            "imports",
        ),
        ("start function", wat("(module (func $s) (start $s))"), "start"),
        ("memory too large", wat("(module (memory 65))"), "memory-pages"),
        ("table too large", wat("(module (table 5000 funcref))"), "table-size"),
        ("reserved export", wat("(module (func (export \"aether_gas\")))"), "reserved-export"),
        ("data past memory", wat("(module (memory 1) (data (i32.const 65535) \"ab\"))"), "segment-bounds"),
        ("huge data segment", wat(&format!("(module (memory 8) (data (i32.const 0) \"{}\"))", "a".repeat(300 * 1024))), "data-size"),
        ("huge br_table", wat(&br_table_module(5000)), "br-table"),
        ("deep nesting", wat(&format!("(module (func {}{}))", "(block ".repeat(300), ")".repeat(300))), "nesting"),
        ("too many locals", wat(&format!("(module (func (local{})))", " i32".repeat(2000))), "locals"),
        ("too many globals", wat(&format!("(module {})", "(global i32 (i32.const 0)) ".repeat(300))), "globals"),
        ("too many functions", wat(&format!("(module {})", "(func) ".repeat(5000))), "function-count"),
        ("not wasm", b"\0asm\x01\0\0\0garbage".to_vec(), "malformed"),
        ("not even a header", b"hello".to_vec(), "malformed"),
        ("type error", wat("(module (func (result i32) (i64.const 1)))"), "malformed"),
    ];
    // Code over the size limit: a valid module padded with a custom section.
    let mut big = wat("(module)");
    let padding = vec![0u8; 600 * 1024];
    let mut section = wasm_encoder::Module::new();
    section.section(&wasm_encoder::CustomSection { name: "pad".into(), data: padding.into() });
    big.extend_from_slice(&section.finish()[8..]);
    cases.push(("code too large", big, "code-size"));
    cases
}
