//! Leader election by a verifiable random function: ECVRF-EDWARDS25519-SHA512-TAI (RFC 9381),
//! via the `vrf-rfc9381` crate, checked against the RFC's Appendix B.3 vectors in the tests.
//!
//! A VRF output (`beta`, 64 bytes) can be computed only by the key holder, is fixed for a given
//! key and input (no grinding), and anyone can check it against the proof. The engine feeds it
//! an input bound to the round and to the previous certificate ([`election_input`]), so the
//! output is unknowable before that certificate exists; [`pick_by_stake`] then maps the output
//! to a validator with probability proportional to stake.

use aether_primitives::types::{Amount, Hash};
use vrf_rfc9381::ec::edwards25519::tai::{EdVrfEdwards25519TaiPublicKey, EdVrfEdwards25519TaiSecretKey};
use vrf_rfc9381::ec::edwards25519::EdVrfProof;
use vrf_rfc9381::{Ciphersuite, Proof, Prover, Verifier};

/// Length of an encoded proof (`pi_string`): Gamma (32) + c (16) + s (32).
pub const PROOF_LEN: usize = 80;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaderError {
    #[error("VRF public key is not a valid edwards25519 point of large order")]
    BadKey,
    #[error("VRF proof is malformed or does not verify for this key and input")]
    BadProof,
    #[error("no stake to elect from")]
    NoStake,
}

/// A validator's VRF secret key (an RFC 8032 ed25519 seed) and its public key.
pub struct VrfSecretKey {
    key: EdVrfEdwards25519TaiSecretKey,
    public: VrfPublicKey,
}

/// A VRF public key (an encoded edwards25519 point).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VrfPublicKey(pub [u8; 32]);

impl VrfSecretKey {
    // The crate takes the seed as a slice; every 32-byte string is a valid RFC 8032 seed.
    #[allow(clippy::expect_used)]
    pub fn from_seed(seed: [u8; 32]) -> VrfSecretKey {
        // ECVRF-edwards25519 keys are RFC 8032 keys: the public key is the ed25519 one (the RFC's
        // vectors check this).
        let public = VrfPublicKey(ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key().to_bytes());
        VrfSecretKey { key: EdVrfEdwards25519TaiSecretKey::from_slice(&seed).expect("any 32 bytes are a seed"), public }
    }

    pub fn public(&self) -> VrfPublicKey {
        self.public
    }

    /// The proof (`pi_string`) for `alpha`, and the output it proves.
    // For a key made by `from_seed`, RFC 9381's prove and proof-to-hash have no failing case,
    // and an edwards25519 proof is always 80 bytes (the RFC's vectors are checked below).
    #[allow(clippy::expect_used)]
    pub fn prove(&self, alpha: &[u8]) -> ([u8; PROOF_LEN], [u8; 64]) {
        crate::crypto_ops::count(crate::crypto_ops::CryptoOp::VrfProve);
        let proof = self.key.prove(alpha).expect("proving with a valid key does not fail");
        let beta = proof.proof_to_hash(Ciphersuite::ECVRF_EDWARDS25519_SHA512_TAI).expect("a fresh proof hashes");
        let pi: [u8; PROOF_LEN] = proof.encode_to_pi().try_into().expect("edwards25519 proofs are 80 bytes");
        (pi, beta.into())
    }
}

impl VrfPublicKey {
    /// Checks `pi` for `alpha` under this key and returns the output (`beta`).
    pub fn verify(&self, alpha: &[u8], pi: &[u8]) -> Result<[u8; 64], LeaderError> {
        crate::crypto_ops::count(crate::crypto_ops::CryptoOp::VrfVerify);
        let key = EdVrfEdwards25519TaiPublicKey::from_slice(&self.0).map_err(|_| LeaderError::BadKey)?;
        let proof = EdVrfProof::decode_pi(pi).map_err(|_| LeaderError::BadProof)?;
        // One proof, one encoding: the decoder reduces the scalar `s` modulo the group order
        // (and a point can have two encodings), so a proposer could otherwise send the same
        // proof under several byte strings, each giving its proposal another digest.
        if proof.encode_to_pi().as_slice() != pi {
            return Err(LeaderError::BadProof);
        }
        key.verify(alpha, proof).map(Into::into).map_err(|_| LeaderError::BadProof)
    }
}

/// The VRF input for electing the leader of `round`: a domain tag, the hash of the previous
/// certificate, and the round.
pub fn election_input(round: u64, previous_certificate: &Hash) -> Vec<u8> {
    let mut alpha = b"aether/hotstuff-leader/v1".to_vec();
    alpha.extend_from_slice(&previous_certificate.0);
    alpha.extend_from_slice(&round.to_be_bytes());
    alpha
}

/// The seed a proposal hands to the election after it: a hash of its VRF output `beta`.
/// The VRF output is unique for the proposer's key and input, so the proposer cannot choose
/// the seed, and it does not depend on the block's contents (a leader that could re-roll it
/// by changing a transaction could grind its way to leading again).
pub fn election_seed(beta: &[u8; 64]) -> Hash {
    Hash::digest(b"aether/hotstuff-election-seed/v1", beta)
}

/// Maps a VRF output to a validator index with probability proportional to `stakes`: the
/// first 16 bytes of `beta` as a big-endian number, reduced modulo the total stake, land in
/// one validator's slice of the cumulative stake. (The modulo bias is below total/2^128.)
pub fn pick_by_stake(beta: &[u8; 64], stakes: &[Amount]) -> Result<usize, LeaderError> {
    let total = stakes.iter().fold(0u128, |t, s| t.saturating_add(*s));
    if total == 0 {
        return Err(LeaderError::NoStake);
    }
    let mut first = [0u8; 16];
    first.copy_from_slice(&beta[..16]);
    let draw = u128::from_be_bytes(first) % total;
    let mut upper = 0u128;
    for (i, s) in stakes.iter().enumerate() {
        upper = upper.saturating_add(*s);
        if draw < upper {
            return Ok(i);
        }
    }
    unreachable!("draw < total = the last upper bound")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// RFC 9381 Appendix B.3 (ECVRF-EDWARDS25519-SHA512-TAI), Examples 16, 17, 18:
    /// (SK, PK, alpha, pi, beta).
    const RFC9381_B3: [(&str, &str, &str, &str, &str); 3] = [
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "8657106690b5526245a92b003bb079ccd1a92130477671f6fc01ad16f26f723f26f8a57ccaed74ee1b190bed1f479d9727d2d0f9b005a6e456a35d4fb0daab1268a1b0db10836d9826a528ca76567805",
            "90cf1df3b703cce59e2a35b925d411164068269d7b2d29f3301c03dd757876ff66b71dda49d2de59d03450451af026798e8f81cd2e333de5cdf4f3e140fdd8ae",
        ),
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "f3141cd382dc42909d19ec5110469e4feae18300e94f304590abdced48aed5933bf0864a62558b3ed7f2fea45c92a465301b3bbf5e3e54ddf2d935be3b67926da3ef39226bbc355bdc9850112c8f4b02",
            "eb4440665d3891d668e7e0fcaf587f1b4bd7fbfe99d0eb2211ccec90496310eb5e33821bc613efb94db5e5b54c70a848a0bef4553a41befc57663b56373a5031",
        ),
        (
            "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
            "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
            "af82",
            "9bc0f79119cc5604bf02d23b4caede71393cedfbb191434dd016d30177ccbf8096bb474e53895c362d8628ee9f9ea3c0e52c7a5c691b6c18c9979866568add7a2d41b00b05081ed0f58ee5e31b3a970e",
            "645427e5d00c62a23fb703732fa5d892940935942101e456ecca7bb217c61c452118fec1219202a0edcf038bb6373241578be7217ba85a2687f7a0310b2df19f",
        ),
    ];

    #[test]
    fn reproduces_the_rfc_9381_appendix_b3_vectors() {
        for (n, (sk, pk, alpha, pi, beta)) in RFC9381_B3.iter().enumerate() {
            let key = VrfSecretKey::from_seed(h(sk).try_into().unwrap());
            assert_eq!(key.public().0.to_vec(), h(pk), "example {}: public key", n + 16);
            let (proof, output) = key.prove(&h(alpha));
            assert_eq!(proof.to_vec(), h(pi), "example {}: pi", n + 16);
            assert_eq!(output.to_vec(), h(beta), "example {}: beta", n + 16);
            let public = VrfPublicKey(h(pk).try_into().unwrap());
            assert_eq!(public.verify(&h(alpha), &h(pi)).unwrap().to_vec(), h(beta), "example {}: verify", n + 16);
        }
    }

    #[test]
    fn tampered_proofs_wrong_inputs_and_bad_keys_are_refused() {
        let (_, pk, alpha, pi, _) = RFC9381_B3[0];
        let public = VrfPublicKey(h(pk).try_into().unwrap());
        let (alpha, pi) = (h(alpha), h(pi));
        for byte in [0, 33, 40, 79] {
            let mut bad = pi.clone();
            bad[byte] ^= 1;
            assert!(public.verify(&alpha, &bad).is_err(), "flipped byte {byte} must not verify");
        }
        assert_eq!(public.verify(b"other input", &pi), Err(LeaderError::BadProof));
        assert_eq!(public.verify(&alpha, &pi[..79]), Err(LeaderError::BadProof));
        let other = VrfPublicKey(h(RFC9381_B3[1].1).try_into().unwrap());
        assert_eq!(other.verify(&alpha, &pi), Err(LeaderError::BadProof));
        // The same proof with `s` + the group order (a non-canonical scalar the decoder would
        // reduce back to `s`) is refused.
        const ORDER: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0x10,
        ];
        let mut malleated = pi.clone();
        let mut carry = 0u16;
        for (i, byte) in ORDER.iter().enumerate() {
            let sum = u16::from(malleated[48 + i]) + u16::from(*byte) + carry;
            malleated[48 + i] = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(carry, 0);
        assert_ne!(malleated, pi);
        assert_eq!(public.verify(&alpha, &malleated), Err(LeaderError::BadProof), "a non-canonical proof is refused");
        let mut identity = [0u8; 32];
        identity[0] = 1; // the identity point: small order, refused
        assert!(VrfPublicKey(identity).verify(&alpha, &pi).is_err());
    }

    #[test]
    fn election_is_stake_weighted_and_bound_to_round_and_certificate() {
        let key = VrfSecretKey::from_seed([9; 32]);
        let cert = Hash::digest(b"test", b"qc");
        let (_, a) = key.prove(&election_input(1, &cert));
        let (_, b) = key.prove(&election_input(2, &cert));
        let (_, c) = key.prove(&election_input(1, &Hash::ZERO));
        assert!(a != b && a != c, "outputs depend on round and certificate");
        assert_eq!(key.prove(&election_input(1, &cert)).1, a, "and on nothing else");

        // Over many rounds, a validator with 70% of the stake leads about 70% of them.
        let stakes = [70u128, 10, 10, 10];
        let mut wins = [0usize; 4];
        for round in 0..2000 {
            let (_, beta) = key.prove(&election_input(round, &cert));
            wins[pick_by_stake(&beta, &stakes).unwrap()] += 1;
        }
        assert!((1300..1500).contains(&wins[0]), "70% stake won {} of 2000", wins[0]);
        for w in &wins[1..] {
            assert!((130..270).contains(w), "10% stake won {w} of 2000");
        }
        assert_eq!(pick_by_stake(&[0; 64], &[0, 0]), Err(LeaderError::NoStake));
        assert_eq!(pick_by_stake(&[0xff; 64], &[0, 5, 0]), Ok(1), "zero-stake validators never lead");
    }
}
