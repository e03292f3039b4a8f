//! The canonical binary encoding: borsh.
//!
//! Everything that is hashed or signed is encoded with borsh, which has exactly one encoding
//! per value (fixed-width little-endian integers, length-prefixed sequences, no optional
//! fields or maps with free ordering). [`decode`] rejects trailing bytes and inputs over a
//! caller-chosen size, so bytes from the network or RPC cannot make it allocate without bound.

use borsh::{BorshDeserialize, BorshSerialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("input is {len} bytes; at most {max} are accepted")]
    TooLarge { len: usize, max: usize },
    #[error("cannot decode {what}: {reason}")]
    Malformed { what: &'static str, reason: String },
}

/// The canonical encoding of `value`.
pub fn encode<T: BorshSerialize + ?Sized>(value: &T) -> Vec<u8> {
    // Borsh fails only when its writer does, and a Vec never refuses bytes (our types have no
    // custom serializers that return errors): every caller may rely on this not failing.
    #[allow(clippy::expect_used)]
    borsh::to_vec(value).expect("borsh encoding into a Vec cannot fail")
}

/// Decodes exactly one `T` from `bytes` (no trailing bytes), refusing inputs over `max_len`.
pub fn decode<T: BorshDeserialize>(what: &'static str, bytes: &[u8], max_len: usize) -> Result<T, CodecError> {
    if bytes.len() > max_len {
        return Err(CodecError::TooLarge { len: bytes.len(), max: max_len });
    }
    borsh::from_slice(bytes).map_err(|e| CodecError::Malformed { what, reason: e.to_string() })
}

#[cfg(test)]
mod golden {
    //! Golden hashes of each hashed or signed format. If one of these fails, a format (or a
    //! domain tag) changed: that breaks every existing chain, signature and database. Change
    //! the expected value only for a deliberate, versioned format change.
    use super::*;
    use crate::types::*;

    fn key(n: u8) -> Keypair {
        Keypair::from_seed([n; 32])
    }

    fn sample_tx() -> SignedTransaction {
        let k = key(1);
        TxBody {
            chain_id: "golden".into(),
            sender: k.public(),
            nonce: 7,
            fee: 10,
            action: Action::Transfer { to: key(2).address(), amount: 1_000_000, memo: b"hi".to_vec() },
        }
        .sign(&k)
    }

    fn sample_header() -> Header {
        Header {
            chain_id: "golden".into(),
            parent: Hash::digest(b"t", b"parent"),
            height: 42,
            time_ms: 1_700_000_000_000,
            proposer: key(3).address(),
            tx_root: Block::compute_tx_root(&[sample_tx()]),
            evidence_root: Block::compute_evidence_root(&[sample_evidence()]),
            state_root: Hash::digest(b"t", b"state"),
            parent_certificate: Certificate(vec![1, 2, 3]),
            next_validators: None,
        }
    }

    fn sample_evidence() -> crate::types::Evidence {
        crate::types::Evidence { offender: 3, kind: "double-vote".into(), proof: vec![7; 40], epoch: 2 }
    }

    #[test]
    fn evidence_format() {
        assert_eq!(sample_evidence().hash().to_hex(), GOLDEN_EVIDENCE_HASH);
    }

    /// SHA-256 of the canonical encoding, without any domain tag: pins the bytes themselves.
    fn h<T: BorshSerialize>(v: &T) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(encode(v)))
    }

    #[test]
    fn address_format() {
        assert_eq!(key(1).address().to_hex(), GOLDEN_ADDRESS);
    }

    #[test]
    fn transaction_format() {
        let tx = sample_tx();
        assert_eq!(h(&tx), GOLDEN_TX_ENCODING);
        assert_eq!(tx.hash().to_hex(), GOLDEN_TX_HASH);
        // Transfer keeps enum tag 0 so later action kinds never change existing encodings.
        assert_eq!(encode(&tx.body.action)[0], 0);
        assert!(tx.verify_signature().is_ok());
    }

    #[test]
    fn header_format() {
        assert_eq!(sample_header().hash().to_hex(), GOLDEN_HEADER_HASH);
    }

    #[test]
    fn epoch_boundary_header_and_validator_set_format() {
        let set = vec![ValidatorEntry { name: "v".into(), identity: key(6).public(), consensus_key: vec![4; 8], stake: 77 }];
        let commitment = validator_set_commitment(9, &set);
        assert_eq!(commitment.to_hex(), GOLDEN_VALIDATOR_SET);
        let header = Header { next_validators: Some(commitment), ..sample_header() };
        assert_eq!(header.hash().to_hex(), GOLDEN_BOUNDARY_HEADER_HASH);
        // Without a new length the boundary commits as it always did; with one, to the length too.
        assert_eq!(epoch_start_commitment(9, &set, None), commitment);
        assert_eq!(epoch_start_commitment(9, &set, Some(12)).to_hex(), GOLDEN_EPOCH_START_WITH_LENGTH);
        assert_ne!(epoch_start_commitment(9, &set, Some(12)), epoch_start_commitment(9, &set, Some(13)));
    }

    #[test]
    fn account_and_receipt_format() {
        let account = Account { nonce: 3, balance: 5_000, stake: 0, code_hash: None };
        assert_eq!(h(&account), GOLDEN_ACCOUNT);
        let receipt = Receipt {
            tx_hash: sample_tx().hash(),
            status: TxStatus::Failed { reason: "insufficient balance".into() },
            fee_paid: 10,
            gas_used: 0,
            events: vec![Event { emitter: key(4).address(), topic: b"t".to_vec(), data: vec![9] }],
            output: b"out".to_vec(),
            contract_address: Some(key(5).address()),
        };
        assert_eq!(h(&receipt), GOLDEN_RECEIPT);
    }

    #[test]
    fn contract_action_format() {
        let deploy = Action::Deploy { code: b"\0asm".to_vec(), input: vec![1], value: 7, gas_limit: 1_000 };
        let call = Action::Call { contract: key(3).address(), method: "go".into(), input: vec![2], value: 8, gas_limit: 2_000 };
        assert_eq!(encode(&deploy)[0], 1, "Deploy keeps tag 1");
        assert_eq!(encode(&call)[0], 2, "Call keeps tag 2");
        assert_eq!(h(&(deploy, call)), GOLDEN_CONTRACT_ACTIONS);
    }

    #[test]
    fn module_action_format() {
        let module = Action::Module { module: "staking".into(), call: vec![1, 2], value: 9, gas_limit: 3_000 };
        assert_eq!(encode(&module)[0], 3, "Module keeps tag 3");
        assert_eq!(h(&module), GOLDEN_MODULE_ACTION);
    }

    #[test]
    fn decode_rejects_trailing_bytes_and_oversize() {
        let mut bytes = encode(&sample_tx());
        assert!(decode::<SignedTransaction>("tx", &bytes, 1 << 20).is_ok());
        assert!(matches!(decode::<SignedTransaction>("tx", &bytes, 10), Err(CodecError::TooLarge { .. })));
        bytes.push(0);
        assert!(matches!(decode::<SignedTransaction>("tx", &bytes, 1 << 20), Err(CodecError::Malformed { .. })));
    }

    const GOLDEN_ADDRESS: &str = "0x283f796ef69c3506178bb1db332e0000063fa8a9";
    const GOLDEN_TX_ENCODING: &str = "fd33ed9a5fde804cfa8efc18dd5d4cd4489fe4e6191468e2113ff8112f7c5a3b";
    const GOLDEN_TX_HASH: &str = "0x0f49c796b2aadd1fa8cae9cc5c85995aee6a568d9b81694ae9509c74218d406c";
    /// The header format is unchanged since epochs; this changed with the sample evidence's
    /// encoding (its `evidence_root`) when evidence gained its epoch.
    const GOLDEN_HEADER_HASH: &str = "0xac1cd06909844afca53702e7d3fa09c026a1d794933edc1bb1f4b5ea64fe054a";
    /// Evidence carries its epoch (appended field; store format 6, snapshot format 5).
    const GOLDEN_EVIDENCE_HASH: &str = "0x60774e12f82d1fcc88fe66128296177c269cbcdce846d288f682db14c53f264b";
    const GOLDEN_ACCOUNT: &str = "2c54372bf817c438cfd88301e5d601174bf1e943ba4753d1b0438341bbf56472";
    const GOLDEN_RECEIPT: &str = "0add3014e81a4e03549d7deee366ab8f1d0bfe3d7096f8da248dc29776a67d0d";
    /// A deploy (tag 1) and a call (tag 2), the actions the VM issue appended.
    const GOLDEN_CONTRACT_ACTIONS: &str = "c7908f4946cfc249caba718b56bd1fc0765d9f0edcbc231dce33cbf039855576";
    /// A module call (tag 3), appended by the runtime-module slot.
    const GOLDEN_VALIDATOR_SET: &str = "0x567cfa5de7e16908b211ec08ce9631d7fe4b3ec9265b10b3f653826428a5e6c4";
    const GOLDEN_BOUNDARY_HEADER_HASH: &str = "0x65e1baa209b4187f4d74b4a9afd040bd26ab1ef355708e384e8491902869b018";
    const GOLDEN_EPOCH_START_WITH_LENGTH: &str = "0x56ed84fc7f5cafd7ea973e4640fb027a8c92a18f0e2c56aba25f674ff4a2435d";
    const GOLDEN_MODULE_ACTION: &str = "9c49f5b2406047f5c9a3c91e41b1bdc629d055e5cc8cc6b7f34a01fbaa974058";
}
