//! A node's Aether identity (an ed25519 key, as in genesis) and its libp2p peer id are the same
//! key, so a validator's peer id follows from genesis and needs no directory.

use aether_api::network::PeerId;
use aether_primitives::types::Keypair;

/// The libp2p keypair of an Aether identity key.
pub fn keypair(identity: &Keypair) -> Result<libp2p::identity::Keypair, String> {
    libp2p::identity::Keypair::ed25519_from_bytes(identity.seed()).map_err(|e| format!("identity key: {e}"))
}

/// The libp2p peer id of an Aether peer.
pub fn libp2p_peer(peer: &PeerId) -> Result<libp2p::PeerId, String> {
    let key =
        libp2p::identity::ed25519::PublicKey::try_from_bytes(&peer.0).map_err(|e| format!("identity {peer} is not an ed25519 key: {e}"))?;
    Ok(libp2p::identity::PublicKey::from(key).to_peer_id())
}

/// The Aether identity inside a libp2p peer id, if it is an ed25519 one (ed25519 peer ids embed
/// the public key).
pub fn aether_peer(peer: &libp2p::PeerId) -> Option<PeerId> {
    let multihash = peer.as_ref();
    // 0x00 is the identity multihash: the digest is the protobuf-encoded public key itself.
    if multihash.code() != 0x00 {
        return None;
    }
    let key = libp2p::identity::PublicKey::try_decode_protobuf(multihash.digest()).ok()?;
    let ed = key.try_into_ed25519().ok()?;
    Some(aether_primitives::types::PublicKey(ed.to_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_ids_round_trip_through_libp2p() {
        let key = Keypair::from_seed([7; 32]);
        let from_keypair = keypair(&key).unwrap().public().to_peer_id();
        let from_public = libp2p_peer(&key.public()).unwrap();
        assert_eq!(from_keypair, from_public);
        assert_eq!(aether_peer(&from_public), Some(key.public()));
        assert_eq!(aether_peer(&libp2p::PeerId::random()), None, "a non-ed25519 peer id has no Aether identity");
    }
}
