;; A counter. Storage: "count" -> u64 (8 bytes, little-endian).
;;   init       input: optional start value (8 bytes); default 0
;;   increment  adds 1; emits ("incremented", new value); returns the new value (8 bytes)
;;   get        returns the value (8 bytes)
(module
  (import "env" "input_len" (func $input_len (result i32)))
  (import "env" "input_read" (func $input_read (param i32)))
  (import "env" "storage_read" (func $storage_read (param i32 i32 i32 i32) (result i32)))
  (import "env" "storage_write" (func $storage_write (param i32 i32 i32 i32)))
  (import "env" "emit_event" (func $emit_event (param i32 i32 i32 i32)))
  (import "env" "set_return" (func $set_return (param i32 i32)))
  (memory 1)
  (data (i32.const 0) "count")
  (data (i32.const 16) "incremented")
  ;; the value lives at 64

  (func $load (result i64)
    (i64.store (i32.const 64) (i64.const 0))
    (drop (call $storage_read (i32.const 0) (i32.const 5) (i32.const 64) (i32.const 8)))
    (i64.load (i32.const 64)))

  (func $store (param $v i64)
    (i64.store (i32.const 64) (local.get $v))
    (call $storage_write (i32.const 0) (i32.const 5) (i32.const 64) (i32.const 8)))

  (func (export "init")
    (if (i32.eq (call $input_len) (i32.const 8))
      (then (call $input_read (i32.const 64)) (call $store (i64.load (i32.const 64))))
      (else (call $store (i64.const 0)))))

  (func (export "increment") (local $v i64)
    (local.set $v (i64.add (call $load) (i64.const 1)))
    (call $store (local.get $v))
    (call $emit_event (i32.const 16) (i32.const 11) (i32.const 64) (i32.const 8))
    (call $set_return (i32.const 64) (i32.const 8)))

  (func (export "get")
    (drop (call $load))
    (call $set_return (i32.const 64) (i32.const 8))))
