;; An escrow: the deploy's value is held for a beneficiary. The arbiter may release it to the
;; beneficiary; once the deadline (block time, ms) has passed, anyone may refund it to the
;; depositor (the deployer). Settled once.
;; Storage: "parties" -> depositor (20) ++ beneficiary (20) ++ arbiter (20) ++ deadline (8);
;;          "status" -> 1 byte: 0 open, 1 released, 2 refunded.
;;   init     input: beneficiary (20) ++ arbiter (20) ++ deadline_ms (8)
;;   release  arbiter only; pays the whole balance to the beneficiary; emits ("released", to ++ amount)
;;   refund   after the deadline; pays the whole balance to the depositor; emits ("refunded", to ++ amount)
;;   status   returns the status byte
(module
  (import "env" "input_len" (func $input_len (result i32)))
  (import "env" "input_read" (func $input_read (param i32)))
  (import "env" "caller" (func $caller (param i32)))
  (import "env" "self_address" (func $self_address (param i32)))
  (import "env" "balance" (func $balance (param i32 i32)))
  (import "env" "block_time_ms" (func $block_time_ms (result i64)))
  (import "env" "storage_read" (func $storage_read (param i32 i32 i32 i32) (result i32)))
  (import "env" "storage_write" (func $storage_write (param i32 i32 i32 i32)))
  (import "env" "transfer" (func $transfer (param i32 i32) (result i32)))
  (import "env" "emit_event" (func $emit_event (param i32 i32 i32 i32)))
  (import "env" "set_return" (func $set_return (param i32 i32)))
  (import "env" "revert" (func $revert (param i32 i32)))
  (memory 1)
  (data (i32.const 0) "parties")
  (data (i32.const 8) "status")
  (data (i32.const 16) "released")
  (data (i32.const 24) "refunded")
  (data (i32.const 32) "only the arbiter may release")
  (data (i32.const 64) "the deadline has not passed")
  (data (i32.const 96) "already settled")
  (data (i32.const 112) "bad input")
  ;; parties at 256 (depositor 256, beneficiary 276, arbiter 296, deadline 316);
  ;; caller 400, self 420, balance 440..456, status 500, event data 600..636

  (func (export "init")
    (if (i32.ne (call $input_len) (i32.const 48)) (then (call $revert (i32.const 112) (i32.const 9))))
    (call $caller (i32.const 256))
    (call $input_read (i32.const 276))
    (call $storage_write (i32.const 0) (i32.const 7) (i32.const 256) (i32.const 68))
    (i32.store8 (i32.const 500) (i32.const 0))
    (call $storage_write (i32.const 8) (i32.const 6) (i32.const 500) (i32.const 1)))

  (func $load_open
    (drop (call $storage_read (i32.const 0) (i32.const 7) (i32.const 256) (i32.const 68)))
    (drop (call $storage_read (i32.const 8) (i32.const 6) (i32.const 500) (i32.const 1)))
    (if (i32.load8_u (i32.const 500)) (then (call $revert (i32.const 96) (i32.const 15)))))

  (func $pay_out (param $to i32) (param $status i32) (param $topic i32)
    (call $self_address (i32.const 420))
    (call $balance (i32.const 420) (i32.const 440))
    (drop (call $transfer (local.get $to) (i32.const 440)))
    (i32.store8 (i32.const 500) (local.get $status))
    (call $storage_write (i32.const 8) (i32.const 6) (i32.const 500) (i32.const 1))
    (memory.copy (i32.const 600) (local.get $to) (i32.const 20))
    (memory.copy (i32.const 620) (i32.const 440) (i32.const 16))
    (call $emit_event (local.get $topic) (i32.const 8) (i32.const 600) (i32.const 36)))

  (func $same_address (param $a i32) (param $b i32) (result i32)
    (i32.and
      (i32.and (i64.eq (i64.load (local.get $a)) (i64.load (local.get $b)))
               (i64.eq (i64.load offset=8 (local.get $a)) (i64.load offset=8 (local.get $b))))
      (i32.eq (i32.load offset=16 (local.get $a)) (i32.load offset=16 (local.get $b)))))

  (func (export "release")
    (call $load_open)
    (call $caller (i32.const 400))
    (if (i32.eqz (call $same_address (i32.const 400) (i32.const 296)))
      (then (call $revert (i32.const 32) (i32.const 28))))
    (call $pay_out (i32.const 276) (i32.const 1) (i32.const 16)))

  (func (export "refund")
    (call $load_open)
    (if (i64.lt_u (call $block_time_ms) (i64.load (i32.const 316)))
      (then (call $revert (i32.const 64) (i32.const 27))))
    (call $pay_out (i32.const 256) (i32.const 2) (i32.const 24)))

  (func (export "status")
    (drop (call $storage_read (i32.const 8) (i32.const 6) (i32.const 500) (i32.const 1)))
    (call $set_return (i32.const 500) (i32.const 1))))
