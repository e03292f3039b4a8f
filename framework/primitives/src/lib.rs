//! # aether-primitives
//!
//! The data every part of Aether shares, and its one encoding: hashes with domain tags,
//! addresses, ed25519 keys, transactions, blocks, receipts, accounts, genesis and evidence
//! ([`types`]); the canonical borsh encoding with size-limited decoding and golden-hash tests
//! ([`codec`]); Merkle roots over hashes ([`merkle`]).
//!
//! What it is **not**: no traits, no I/O, no state. Plugins implement the slot traits of
//! `aether-api`; the ledger that gives these types meaning is in `aether-node`.
//!
//! ## Example: sign a transfer and check its signature
//! ```
//! use aether_primitives::types::{Action, Address, Keypair, TxBody};
//! use aether_primitives::codec;
//!
//! let alice = Keypair::from_seed([2; 32]);
//! let tx = TxBody {
//!     chain_id: "demo".into(), sender: alice.public(), nonce: 0, fee: 1,
//!     action: Action::Transfer { to: Address([9; 20]), amount: 100, memo: vec![] },
//! }.sign(&alice);
//! assert!(tx.verify_signature().is_ok());
//! let bytes = codec::encode(&tx);
//! let back: aether_primitives::types::SignedTransaction = codec::decode("transaction", &bytes, 1 << 20).unwrap();
//! assert_eq!(back.hash(), tx.hash());
//! ```

pub mod codec;
pub mod merkle;
pub mod types;
