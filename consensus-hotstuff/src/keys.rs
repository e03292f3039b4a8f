//! A HotStuff validator's keys, all derived from its ed25519 identity key: a BLS key for votes
//! and certificates and an ECVRF key for leader election, and the consensus key genesis lists
//! for it (BLS public key, proof of possession, VRF public key).
//!
//! ```
//! use aether_consensus_hotstuff::keys::{consensus_key, decode_consensus_key, CONSENSUS_KEY_LEN};
//! use aether_primitives::types::Keypair;
//! let key = consensus_key(&Keypair::from_seed([1; 32]));
//! assert_eq!(key.len(), CONSENSUS_KEY_LEN);
//! assert!(decode_consensus_key(&key).is_ok());
//! assert!(decode_consensus_key(&key[1..]).unwrap_err().contains("175 bytes"));
//! ```

use aether_api::consensus::ValidatorIndex;
use aether_primitives::types::{Hash, Keypair, PublicKey};

use crate::certificate::{BlsPublicKey, BlsSecretKey, BlsSignature};
use crate::leader::{VrfPublicKey, VrfSecretKey};

/// A validator's public keys, as the engine checks its messages.
pub(crate) struct Member {
    pub(crate) identity: PublicKey,
    pub(crate) vrf: VrfPublicKey,
}

/// This validator's own keys for proposing (its BLS key lives in the engine's safety rules,
/// the only code that signs votes and timeouts).
pub(crate) struct LocalKeys {
    pub(crate) index: ValidatorIndex,
    pub(crate) identity: Keypair,
    pub(crate) vrf: VrfSecretKey,
}

/// Length of a validator's consensus key in genesis: BLS key, its proof of possession, VRF key.
pub const CONSENSUS_KEY_LEN: usize = 48 + 96 + 32;

/// Derives this validator's BLS and VRF keys from its identity key (domain-separated, so
/// no key is used in two schemes).
pub(crate) fn derive_keys(identity: &Keypair) -> (BlsSecretKey, VrfSecretKey) {
    let seed = identity.seed();
    (
        BlsSecretKey::from_seed(Hash::digest(b"aether/hotstuff-bls-key", &seed).0),
        VrfSecretKey::from_seed(Hash::digest(b"aether/hotstuff-vrf-key", &seed).0),
    )
}

/// Splits a genesis consensus key into its BLS key, proof of possession and VRF key.
pub fn decode_consensus_key(bytes: &[u8]) -> Result<(BlsPublicKey, BlsSignature, VrfPublicKey), String> {
    if bytes.len() != CONSENSUS_KEY_LEN {
        return Err(format!(
            "{} bytes; a HotStuff consensus key is {CONSENSUS_KEY_LEN} (BLS key 48, proof of possession 96, VRF key 32)",
            bytes.len()
        ));
    }
    let bls = BlsPublicKey::from_bytes(&bytes[..48]).map_err(|e| format!("BLS key: {e:?}"))?;
    let pop = BlsSignature::from_bytes(&bytes[48..144]).map_err(|e| e.to_string())?;
    let vrf = VrfPublicKey(bytes[144..].try_into().map_err(|_| "VRF key is not 32 bytes".to_string())?);
    Ok((bls, pop, vrf))
}

/// Checks a consensus key as the engine will use it: it decodes (BLS key, proof of
/// possession, VRF key) and the proof of possession verifies, so nobody can enter a set with a
/// BLS key they do not hold (a rogue-key attack on aggregate signatures).
pub fn check_consensus_key(bytes: &[u8]) -> Result<(), String> {
    let (bls, pop, _) = decode_consensus_key(bytes)?;
    if !bls.verify_possession(&pop) {
        return Err("the BLS proof of possession does not verify".into());
    }
    Ok(())
}

/// The consensus key genesis lists for the validator with identity key `identity`.
pub fn consensus_key(identity: &Keypair) -> Vec<u8> {
    let (bls, vrf) = derive_keys(identity);
    let mut key = bls.public().to_bytes().to_vec();
    key.extend_from_slice(&bls.prove_possession().to_bytes());
    key.extend_from_slice(&vrf.public().0);
    key
}
