//! Workloads shared by the VM benchmarks (`cargo bench --workspace --bench vm`): the token
//! contract, a host-call loop, a 100 KB module, and a plain loop run metered and unmetered.
//! Not a library for anything else.
//!
//! ```
//! // The compile benchmark's module: valid, deployable code of about the asked size.
//! let module = aether_vm_bench::big_module(100_000);
//! assert!(module.len() > 90_000);
//! aether_vm::prepare(&module, &aether_vm::validate::Limits::default()).unwrap();
//! ```

// Benchmark fixtures: a failure is a broken benchmark, reported by its panic message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// The example token contract.
pub const TOKEN: &str = include_str!("../../contracts/token.wat");

/// `loop_host(n)`: n calls of `block_height`; `loop_plain(n)`: the same loop without them.
/// `n` is the input's first 4 bytes.
pub const HOST_LOOP: &str = r#"
(module
  (import "env" "input_read" (func $input_read (param i32)))
  (import "env" "block_height" (func $height (result i64)))
  (memory 1)
  (func $n (result i32) (call $input_read (i32.const 0)) (i32.load (i32.const 0)))
  (func (export "loop_host") (local $i i32) (local $acc i64)
    (local.set $i (call $n))
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $i)))
      (local.set $acc (i64.add (local.get $acc) (call $height)))
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (br $next)))
    (i64.store (i32.const 8) (local.get $acc)))
  (func (export "loop_plain") (local $i i32) (local $acc i64)
    (local.set $i (call $n))
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $i)))
      (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (local.get $i))))
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (br $next)))
    (i64.store (i32.const 8) (local.get $acc)))
  (func (export "noop")))
"#;

/// A loop with no imports: `spin(n) -> i64` (a small hash-like mix per iteration), for metered
/// vs unmetered runs on the same engine.
pub const SPIN: &str = r#"
(module
  (memory 1)
  (func (export "spin") (param $n i32) (result i64) (local $acc i64)
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $acc (i64.xor (i64.mul (local.get $acc) (i64.const 6364136223846793005)) (i64.extend_i32_u (local.get $n))))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next)))
    (local.get $acc)))
"#;

/// A module of about `bytes` of code: many functions of integer arithmetic and branches.
pub fn big_module(bytes: usize) -> Vec<u8> {
    // Only the first function is exported (exports are limited); the rest are compiled all the same.
    let mut text = String::from("(module (memory 1) (export \"f0\" (func $f0))\n");
    let mut i = 0;
    loop {
        text.push_str(&format!(
            "(func $f{i} (param $a i64) (result i64) (local $b i64)
               (local.set $b (i64.mul (local.get $a) (i64.const {k})))
               (if (i64.gt_u (local.get $b) (i64.const 1000)) (then (local.set $b (i64.rem_u (local.get $b) (i64.const 997)))))
               (i64.store (i32.const {off}) (local.get $b))
               (i64.add (i64.load (i32.const {off})) (i64.xor (local.get $a) (i64.const {k}))))\n",
            k = 1_000_003 + i * 7,
            off = (i % 8000) * 8
        ));
        i += 1;
        if i % 64 == 0 {
            let code = wat::parse_str(format!("{text})")).expect("generated module parses");
            if code.len() >= bytes {
                return code;
            }
        }
    }
}
