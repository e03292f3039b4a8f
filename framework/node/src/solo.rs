//! `solo`: one validator seals blocks alone. For development chains and single-operator
//! deployments; it offers no fault tolerance.
//!
//! The validator seals a block every `block_interval_ms` (empty if nothing waits), and earlier
//! when transactions wait, but never sooner than `min_block_interval_ms` after the previous
//! block. The certificate of a block is the validator's ed25519 signature over its hash and
//! height. Solo has no votes to protect, so it persists no safety state: a block is final only
//! once committed, and a block built but not committed before a crash was never seen by anyone.

use serde::{Deserialize, Serialize};

use crate::consensus::{BlockRef, ConsensusEngine, ConsensusError, EngineContext, Input, Output, TimerId};
use crate::types::{domain, Certificate, Hash, Keypair, PublicKey, Signature, TimestampMs};

/// `[consensus.solo]` settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SoloSettings {
    /// Longest time between blocks; an empty block is sealed when it passes.
    pub block_interval_ms: u64,
    /// Shortest time between blocks when transactions wait.
    pub min_block_interval_ms: u64,
}

impl crate::registry::PluginConfig for SoloSettings {
    const SLOT: crate::registry::SlotKind = crate::registry::SlotKind::Consensus;
    const NAME: &'static str = SoloEngine::NAME;
}

impl Default for SoloSettings {
    fn default() -> Self {
        SoloSettings { block_interval_ms: 1000, min_block_interval_ms: 50 }
    }
}

const INTERVAL_TIMER: TimerId = 1;

pub struct SoloEngine {
    /// The validator's key; `None` in a key-less instance (a full node, a verifier), which
    /// seals nothing.
    key: Option<Keypair>,
    validator: PublicKey,
    settings: SoloSettings,
    tip: Option<(BlockRef, Certificate)>,
    building: bool,
    last_sealed_ms: TimestampMs,
    /// Whether the interval timer currently points at the early (transactions waiting) time.
    early_timer_set: bool,
    /// The last height of this engine's epoch: it seals nothing above it.
    last_height: Option<crate::types::Height>,
    /// The block this engine started on and its certificate (genesis's empty one, or the
    /// previous epoch's seal): what the first block it builds carries for its parent.
    started_on: Option<(BlockRef, Certificate)>,
}

impl SoloEngine {
    pub const NAME: &'static str = "solo";

    pub fn new(key: Keypair, settings: SoloSettings) -> SoloEngine {
        SoloEngine {
            validator: key.public(),
            key: Some(key),
            settings,
            tip: None,
            building: false,
            last_sealed_ms: 0,
            early_timer_set: false,
            last_height: None,
            started_on: None,
        }
    }

    /// Builds the engine for `ctx`: exactly one validator, and it must be this node.
    pub fn from_context(ctx: &EngineContext, settings: SoloSettings) -> Result<SoloEngine, ConsensusError> {
        if ctx.validators.len() != 1 {
            return Err(ConsensusError::Setup(format!(
                "solo needs exactly one validator, found {} in the set of epoch {}",
                ctx.validators.len(),
                ctx.epoch.number
            )));
        }
        if settings.block_interval_ms == 0 || settings.min_block_interval_ms > settings.block_interval_ms {
            return Err(ConsensusError::Setup(format!(
                "consensus.solo: need block_interval_ms > 0 and min_block_interval_ms ({}) <= block_interval_ms ({})",
                settings.min_block_interval_ms, settings.block_interval_ms
            )));
        }
        let expected = ctx.validators.get(0).ok_or_else(|| ConsensusError::Setup("genesis lists no validator".into()))?.identity;
        let key = match &ctx.local {
            Some(local) if local.identity.public() != expected => {
                return Err(ConsensusError::Setup(format!(
                    "this node's key {} is not the validator {} of this epoch",
                    local.identity.public(),
                    expected
                )))
            }
            Some(local) => Some(local.identity.clone()),
            // Without the key: verifies and follows, never seals.
            None => None,
        };
        Ok(SoloEngine {
            key,
            validator: expected,
            settings,
            tip: None,
            building: false,
            last_sealed_ms: 0,
            early_timer_set: false,
            last_height: ctx.epoch.last_height,
            started_on: None,
        })
    }

    /// This validator's certificate for `block` (what a sealed block carries); empty from a
    /// key-less instance.
    pub fn certify(&self, block: &BlockRef) -> Certificate {
        match &self.key {
            Some(key) => Certificate(key.sign(&Self::certificate_message(block).0).0.to_vec()),
            None => Certificate::default(),
        }
    }

    fn certificate_message(block: &BlockRef) -> Hash {
        Hash::digest_parts(domain::SOLO_CERT, &[&block.hash.0, &block.height.to_be_bytes()])
    }

    /// Verifies a solo certificate for `block` under `validator`'s key.
    pub fn verify(validator: &PublicKey, block: &BlockRef, certificate: &Certificate) -> Result<(), ConsensusError> {
        let sig: [u8; 64] = certificate
            .0
            .as_slice()
            .try_into()
            .map_err(|_| ConsensusError::BadCertificate(format!("solo certificate must be 64 bytes, got {}", certificate.0.len())))?;
        validator.verify(&Self::certificate_message(block).0, &Signature(sig)).map_err(|e| ConsensusError::BadCertificate(e.to_string()))
    }

    fn seal(&mut self, out: &mut Vec<Output>) {
        if self.key.is_none() {
            return;
        }
        if let Some((tip, cert)) = &self.tip {
            if self.last_height.is_some_and(|last| tip.height >= last) {
                return; // the epoch is over: the next epoch's engine seals on
            }
            self.building = true;
            out.push(Output::BuildPayload { parent: *tip, parent_certificate: cert.clone() });
        }
    }

    fn arm_interval(&mut self, now: TimestampMs, out: &mut Vec<Output>) {
        self.early_timer_set = false;
        out.push(Output::SetTimer { id: INTERVAL_TIMER, at_ms: now.saturating_add(self.settings.block_interval_ms) });
    }
}

impl ConsensusEngine for SoloEngine {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn handle(&mut self, now: TimestampMs, input: Input, out: &mut Vec<Output>) {
        match input {
            Input::Start { committed, certificate, .. } => {
                self.started_on = Some((committed, certificate.clone()));
                self.tip = Some((committed, certificate));
                self.last_sealed_ms = now;
                self.arm_interval(now, out);
            }
            Input::Timer { id: INTERVAL_TIMER } if !self.building => self.seal(out),
            Input::TransactionsWaiting if !self.building && !self.early_timer_set => {
                let earliest = self.last_sealed_ms.saturating_add(self.settings.min_block_interval_ms);
                if now >= earliest {
                    self.seal(out);
                } else {
                    self.early_timer_set = true;
                    out.push(Output::SetTimer { id: INTERVAL_TIMER, at_ms: earliest });
                }
            }
            Input::PayloadBuilt { payload } => {
                let Some((tip, _)) = &self.tip else { return };
                if !self.building || payload.parent != tip.hash {
                    return; // stale answer to an earlier request
                }
                let certificate = self.certify(&payload.block);
                out.push(Output::Commit { block: payload.block, certificate: certificate.clone() });
                self.tip = Some((payload.block, certificate));
                self.building = false;
                self.last_sealed_ms = now;
                self.arm_interval(now, out);
            }
            Input::PayloadBuildFailed { .. } => {
                self.building = false;
                self.arm_interval(now, out);
            }
            // A full node of a solo chain syncs; its engine never seals (no key), but keeps the tip.
            Input::Synced { committed, certificate } => self.tip = Some((committed, certificate)),
            // Solo has no peers: messages, verification answers and other timers are ignored.
            Input::Message { .. } | Input::PayloadVerified { .. } | Input::Timer { .. } | Input::TransactionsWaiting => {}
        }
    }

    fn verify_certificate(&self, block: &BlockRef, certificate: &Certificate) -> Result<(), ConsensusError> {
        Self::verify(&self.validator, block, certificate)
    }

    /// The block this engine started on carries the certificate it was started with (signed by
    /// the previous epoch's validator, or genesis's empty one); every later parent, this
    /// validator's seal.
    fn verify_parent_certificate(&self, parent: &BlockRef, certificate: &Certificate) -> Result<(), ConsensusError> {
        match &self.started_on {
            Some((start, expected)) if start == parent => {
                if certificate == expected {
                    Ok(())
                } else {
                    Err(ConsensusError::BadCertificate(format!("not the certificate block {} was committed with", parent.height)))
                }
            }
            _ => Self::verify(&self.validator, parent, certificate),
        }
    }
}

/// Solo's [`crate::registry::CertificateSigners`]: a seal (64 bytes, a signature) is signed by
/// the one validator of its epoch; genesis's empty certificate names nobody.
pub fn certificate_signers(certificate: &[u8], validators: usize) -> Result<Vec<crate::consensus::ValidatorIndex>, String> {
    match (certificate.len(), validators) {
        (0, _) => Ok(vec![]),
        (64, 1) => Ok(vec![0]),
        (64, n) => Err(format!("a solo seal in a set of {n} validators (solo runs exactly one)")),
        (len, _) => Err(format!("a solo certificate is 64 bytes (or empty at genesis), got {len}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::Payload;

    fn started() -> (SoloEngine, BlockRef) {
        let mut e = SoloEngine::new(Keypair::from_seed([1; 32]), SoloSettings { block_interval_ms: 1000, min_block_interval_ms: 100 });
        let g = BlockRef { hash: Hash::digest(b"t", b"g"), height: 0 };
        let mut out = vec![];
        e.handle(0, Input::Start { committed: g, certificate: Certificate::default(), safety_state: None }, &mut out);
        assert_eq!(out, vec![Output::SetTimer { id: INTERVAL_TIMER, at_ms: 1000 }]);
        (e, g)
    }

    #[test]
    fn seals_on_interval_and_certifies_what_it_built() {
        let (mut e, g) = started();
        let mut out = vec![];
        e.handle(1000, Input::Timer { id: INTERVAL_TIMER }, &mut out);
        assert_eq!(out, vec![Output::BuildPayload { parent: g, parent_certificate: Certificate::default() }]);
        // A second timer while building does not ask twice.
        out.clear();
        e.handle(1001, Input::Timer { id: INTERVAL_TIMER }, &mut out);
        assert!(out.is_empty());
        let b1 = BlockRef { hash: Hash::digest(b"t", b"b1"), height: 1 };
        e.handle(1002, Input::PayloadBuilt { payload: Payload { block: b1, parent: g.hash, bytes: vec![], empty: true } }, &mut out);
        let Output::Commit { block, certificate } = &out[0] else { panic!("expected commit, got {out:?}") };
        assert_eq!(*block, b1);
        assert!(e.verify_certificate(&b1, certificate).is_ok());
        let other = BlockRef { hash: Hash::digest(b"t", b"other"), height: 1 };
        assert!(e.verify_certificate(&other, certificate).is_err());
        assert_eq!(out[1], Output::SetTimer { id: INTERVAL_TIMER, at_ms: 2002 });
    }

    #[test]
    fn waiting_transactions_seal_early_but_not_before_min_interval() {
        let (mut e, g) = started();
        let mut out = vec![];
        e.handle(40, Input::TransactionsWaiting, &mut out);
        assert_eq!(out, vec![Output::SetTimer { id: INTERVAL_TIMER, at_ms: 100 }]);
        out.clear();
        e.handle(100, Input::Timer { id: INTERVAL_TIMER }, &mut out);
        assert_eq!(out, vec![Output::BuildPayload { parent: g, parent_certificate: Certificate::default() }]);
        out.clear();
        e.handle(
            150,
            Input::PayloadBuilt {
                payload: Payload { block: BlockRef { hash: Hash::ZERO, height: 1 }, parent: g.hash, bytes: vec![], empty: true },
            },
            &mut out,
        );
        out.clear();
        e.handle(300, Input::TransactionsWaiting, &mut out);
        assert!(matches!(out[0], Output::BuildPayload { .. }), "{out:?}");
    }

    #[test]
    fn ignores_stale_build_answers_and_garbage_messages() {
        let (mut e, g) = started();
        let mut out = vec![];
        // A build is in progress on genesis; an answer built on another parent is stale.
        e.handle(1000, Input::Timer { id: INTERVAL_TIMER }, &mut out);
        assert!(matches!(out[..], [Output::BuildPayload { parent, .. }] if parent == g));
        out.clear();
        let elsewhere =
            Payload { block: BlockRef { hash: Hash::ZERO, height: 1 }, parent: Hash::digest(b"t", b"other"), bytes: vec![], empty: true };
        e.handle(1001, Input::PayloadBuilt { payload: elsewhere }, &mut out);
        assert!(out.is_empty(), "a block on the wrong parent is never committed: {out:?}");
        e.handle(5, Input::Message { from: 3, bytes: vec![0xff; 10] }, &mut out);
        e.handle(
            6,
            Input::PayloadBuilt {
                payload: Payload { block: BlockRef { hash: Hash::ZERO, height: 9 }, parent: Hash::ZERO, bytes: vec![], empty: true },
            },
            &mut out,
        );
        assert!(out.is_empty());
    }

    #[test]
    fn a_seal_names_its_one_signer_and_parent_certificates_must_be_real_seals() {
        let (e, g) = started();
        let b1 = BlockRef { hash: Hash::digest(b"t", b"b1"), height: 1 };
        let seal = e.certify(&b1);
        assert_eq!(certificate_signers(&[], 1), Ok(vec![]), "genesis's empty certificate names nobody");
        assert_eq!(certificate_signers(&seal.0, 1), Ok(vec![0]));
        assert!(certificate_signers(&seal.0[..63], 1).unwrap_err().contains("64 bytes"));
        assert!(certificate_signers(&seal.0, 2).unwrap_err().contains("solo runs exactly one"));

        // The block it started on carries what it was started with; every later one its seal.
        assert!(e.verify_parent_certificate(&g, &Certificate::default()).is_ok());
        assert!(e.verify_parent_certificate(&g, &e.certify(&g)).is_err(), "not what genesis was committed with");
        assert!(e.verify_parent_certificate(&b1, &seal).is_ok());
        let stranger = SoloEngine::new(Keypair::from_seed([2; 32]), SoloSettings::default());
        assert!(e.verify_parent_certificate(&b1, &stranger.certify(&b1)).is_err(), "another key's seal");
        let other = BlockRef { hash: Hash::digest(b"t", b"other"), height: 1 };
        assert!(e.verify_parent_certificate(&other, &seal).is_err(), "the seal of another block");
        assert!(e.verify_parent_certificate(&b1, &Certificate(vec![0xAB; 70])).is_err());
    }
}
