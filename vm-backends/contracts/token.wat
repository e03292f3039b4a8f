;; A fungible token with a fixed supply minted to the deployer.
;; Storage: "supply" -> u64; "b" ++ address (21 bytes) -> balance u64 (8 bytes, little-endian).
;;   init          input: supply (8 bytes); mints it to the deployer; emits ("mint", to ++ amount)
;;   transfer      input: to (20) ++ amount (8); reverts "insufficient balance";
;;                 emits ("transfer", from ++ to ++ amount)
;;   balance_of    input: address (20); returns the balance (8 bytes)
;;   total_supply  returns the supply (8 bytes)
(module
  (import "env" "input_len" (func $input_len (result i32)))
  (import "env" "input_read" (func $input_read (param i32)))
  (import "env" "caller" (func $caller (param i32)))
  (import "env" "storage_read" (func $storage_read (param i32 i32 i32 i32) (result i32)))
  (import "env" "storage_write" (func $storage_write (param i32 i32 i32 i32)))
  (import "env" "emit_event" (func $emit_event (param i32 i32 i32 i32)))
  (import "env" "set_return" (func $set_return (param i32 i32)))
  (import "env" "revert" (func $revert (param i32 i32)))
  (memory 1)
  ;; 0..21 balance key, 32..40 value, 64..92 input, 200..220 caller, 300..348 event data
  (data (i32.const 128) "supply")
  (data (i32.const 136) "transfer")
  (data (i32.const 144) "insufficient balance")
  (data (i32.const 168) "bad input")
  (data (i32.const 180) "mint")

  (func $key (param $addr i32)
    (i32.store8 (i32.const 0) (i32.const 98)) ;; "b"
    (memory.copy (i32.const 1) (local.get $addr) (i32.const 20)))

  (func $balance (param $addr i32) (result i64)
    (call $key (local.get $addr))
    (i64.store (i32.const 32) (i64.const 0))
    (drop (call $storage_read (i32.const 0) (i32.const 21) (i32.const 32) (i32.const 8)))
    (i64.load (i32.const 32)))

  (func $set_balance (param $addr i32) (param $v i64)
    (call $key (local.get $addr))
    (i64.store (i32.const 32) (local.get $v))
    (call $storage_write (i32.const 0) (i32.const 21) (i32.const 32) (i32.const 8)))

  (func $expect_input (param $len i32)
    (if (i32.ne (call $input_len) (local.get $len)) (then (call $revert (i32.const 168) (i32.const 9))))
    (call $input_read (i32.const 64)))

  (func (export "init")
    (call $expect_input (i32.const 8))
    (call $caller (i32.const 200))
    (call $set_balance (i32.const 200) (i64.load (i32.const 64)))
    (call $storage_write (i32.const 128) (i32.const 6) (i32.const 64) (i32.const 8))
    (i64.store (i32.const 220) (i64.load (i32.const 64)))
    (call $emit_event (i32.const 180) (i32.const 4) (i32.const 200) (i32.const 28)))

  (func (export "transfer") (local $amount i64) (local $from i64)
    (call $expect_input (i32.const 28))
    (local.set $amount (i64.load (i32.const 84)))
    (call $caller (i32.const 200))
    (local.set $from (call $balance (i32.const 200)))
    (if (i64.lt_u (local.get $from) (local.get $amount))
      (then (call $revert (i32.const 144) (i32.const 20))))
    (call $set_balance (i32.const 200) (i64.sub (local.get $from) (local.get $amount)))
    (call $set_balance (i32.const 64) (i64.add (call $balance (i32.const 64)) (local.get $amount)))
    (memory.copy (i32.const 300) (i32.const 200) (i32.const 20))
    (memory.copy (i32.const 320) (i32.const 64) (i32.const 20))
    (i64.store (i32.const 340) (local.get $amount))
    (call $emit_event (i32.const 136) (i32.const 8) (i32.const 300) (i32.const 48)))

  (func (export "balance_of")
    (call $expect_input (i32.const 20))
    (i64.store (i32.const 96) (call $balance (i32.const 64)))
    (call $set_return (i32.const 96) (i32.const 8)))

  (func (export "total_supply")
    (i64.store (i32.const 32) (i64.const 0))
    (drop (call $storage_read (i32.const 128) (i32.const 6) (i32.const 32) (i32.const 8)))
    (call $set_return (i32.const 32) (i32.const 8))))
