//! The `begin_block` hook: the evidence a block records becomes at most one staking `Slash`
//! per validator and epoch.
//!
//! ## Which validator, which epoch
//! Evidence carries its epoch `e` ([`Evidence::epoch`]); the node records it only once the
//! engine of epoch `e` verified it (signatures are bound to the chain and the epoch), in a
//! block of epoch `e` or of a later one (an offence in an epoch's last blocks is found after
//! the set changed). Its `offender` is an index into `validator_set(e)`; the offence is
//! reported to staking with `infraction_epoch = e`, so staking cuts the stake held then,
//! including unbondings started in `e` or later, and refuses an offence older than its
//! unbonding period (a `slash_refused` event). Evidence of an epoch after the block's is
//! ignored.
//!
//! ## Once per validator and epoch
//! An offence is keyed by (epoch, validator identity). The first piece of evidence of a
//! known kind against a validator in an epoch slashes it; any further piece against it in
//! that epoch — a second, different double vote, or a double proposal — is reported as
//! `evidence_ignored` and slashes nothing. One misbehaving node usually equivocates many
//! times before it is stopped (every height of a fork it follows); punishing each vote would
//! turn one fault into a burn of most of the stake. Cosmos SDK's evidence module does the
//! same: one slash per infraction window, the validator being jailed (tombstoned) after the
//! first. In a later epoch the same validator is slashed again.
//!
//! Every piece handled is also recorded by its hash (`processed`), whatever came of it, and
//! a piece seen before is ignored: the ledger already refuses to record the same evidence
//! twice, this makes the module safe on its own.
//!
//! ## Failure
//! One bad piece never fails the hook: an unknown kind, an index outside the set, a repeat,
//! or staking refusing the `Slash` each give an event and the loop goes on. Only running out
//! of gas (or corrupt state) fails the hook, and then the ledger reverts all of it — the
//! block's evidence would then be recorded but never slashed, which is why the cap and the
//! gas are measured (`tests/ledger/gas.rs`, at the ledger's prices, against the 10M
//! `HOOK_GAS_PER_BLOCK`): 16 pieces against 16 different validators, each with an unbonding
//! pool to cut, cost 5.0M with a set of 20 validators and 5.7M with a set of 512 with
//! 176-byte (HotStuff) consensus keys and 64-byte names (both with the hook's downtime work on
//! a plain height, 0.7M at 512); each piece costs about 300k, staking's `Slash` included.
//! Offenders' identities come from the parent's signer list the hook reads for downtime
//! (33 bytes a member); only when that is another epoch's set (an epoch's first block) or
//! absent is the whole recorded set read (names and consensus keys: 3.4M at 512). The worst
//! block — 16 pieces on the height where downtime changes sets and punishes its most — is
//! measured at 7.7M (`tests/ledger/downtime_gas.rs`); that margin (about 2.3M) is what a more
//! expensive staking `Slash` may take.

use aether_api::module::{ModuleContext, ModuleError, ParentSigners};
use aether_module_staking::StakingCall;
use aether_primitives::types::{Amount, Evidence, Hash, PublicKey};

use crate::error::{Result, SlashingError};
use crate::events::{self, EvidenceIgnored, SlashRefused, Slashed};
use crate::params::{Params, MAX_EVIDENCE_PER_BLOCK_CAP};
use crate::state::{self, Offence, Outcome};

/// `Evidence::kind` of a double vote (as `aether-consensus-hotstuff` names it).
pub const DOUBLE_VOTE: &str = "double-vote";
/// `Evidence::kind` of a double proposal.
pub const DOUBLE_PROPOSAL: &str = "double-proposal";

/// Gas for hashing `n` bytes: what the contract host charges for SHA-256
/// (`aether_vm::gas::SHA256` + `SHA256_BLOCK` per 64 bytes).
fn hash_gas(n: usize) -> u64 {
    300u64.saturating_add((n as u64).div_ceil(64).saturating_mul(60))
}

/// Handles the block's evidence: the first `max_evidence_per_block` pieces in order; those
/// after are reported as ignored (at most [`MAX_EVIDENCE_PER_BLOCK_CAP`] of them: the ledger
/// never hands more than 16 pieces in all).
///
/// `parent_signers` (what the hook read for downtime, if anything) lists the set of the
/// parent's epoch: when that is the block's own epoch, its identities map offenders, which
/// saves reading the whole recorded set (names and consensus keys too: most of the cost with
/// 512 validators).
pub fn begin_block(
    cx: &mut dyn ModuleContext,
    params: &Params,
    evidence: &[Evidence],
    parent_signers: Option<&ParentSigners>,
) -> Result<()> {
    if evidence.is_empty() {
        return Ok(());
    }
    let cap = params.max_evidence_per_block as usize;
    let mut set = parent_signers.filter(|s| s.epoch == cx.epoch()).map(|s| s.validators.iter().map(|(id, _)| *id).collect::<Vec<_>>());
    for piece in evidence.iter().take(cap) {
        handle(cx, params, &mut set, piece)?;
    }
    for piece in evidence.iter().skip(cap).take(MAX_EVIDENCE_PER_BLOCK_CAP as usize) {
        let hash = hash_of(cx, piece)?;
        if state::processed(cx, &hash)?.is_none() {
            mark_processed(cx, &hash)?;
        }
        ignore(cx, hash, piece, format!("over max_evidence_per_block ({cap}): not handled"))?;
    }
    Ok(())
}

fn hash_of(cx: &mut dyn ModuleContext, piece: &Evidence) -> Result<Hash> {
    // The encoding `Evidence::hash` digests: offender (4), kind and proof (4-byte length
    // each), epoch (8).
    cx.charge(hash_gas(20usize.saturating_add(piece.kind.len()).saturating_add(piece.proof.len())))?;
    Ok(piece.hash())
}

fn mark_processed(cx: &mut dyn ModuleContext, hash: &Hash) -> Result<()> {
    let height = cx.height();
    state::save(cx, &state::processed_key(hash), &height)
}

fn ignore(cx: &mut dyn ModuleContext, evidence: Hash, piece: &Evidence, reason: String) -> Result<()> {
    let event = EvidenceIgnored { evidence, offender: piece.offender, kind: state::short(&piece.kind), reason };
    events::emit(cx, events::EVIDENCE_IGNORED, &event)
}

/// Asks staking to slash `validator` by `bps` for an offence in `epoch` (and jail it if
/// `jail`). Staking refusing is an outcome, not an error; running out of gas is the hook's
/// error (nothing more can be done in it).
pub(crate) fn request_slash(
    cx: &mut dyn ModuleContext,
    p: &Params,
    validator: &PublicKey,
    epoch: u64,
    bps: u16,
    jail: bool,
) -> Result<Outcome> {
    let call = StakingCall::slash(*validator, epoch, bps, jail).encode();
    match cx.call_module(&p.staking_module, &call) {
        Ok(answer) => {
            let burned: Amount = borsh::from_slice(&answer).map_err(|_| SlashingError::Corrupt("staking's Slash answer (a borsh u128)"))?;
            Ok(Outcome::Slashed { burned })
        }
        Err(ModuleError::OutOfGas) => Err(ModuleError::OutOfGas.into()),
        Err(e) => Ok(Outcome::Refused { reason: state::short(&e.to_string()) }),
    }
}

/// One piece: see the module docs for the rules.
fn handle(cx: &mut dyn ModuleContext, p: &Params, set: &mut Option<Vec<PublicKey>>, piece: &Evidence) -> Result<()> {
    let hash = hash_of(cx, piece)?;
    if let Some(at) = state::processed(cx, &hash)? {
        return ignore(cx, hash, piece, format!("already processed at height {at}"));
    }
    mark_processed(cx, &hash)?;
    if piece.kind != DOUBLE_VOTE && piece.kind != DOUBLE_PROPOSAL {
        return ignore(cx, hash, piece, format!("unknown kind: only {DOUBLE_VOTE:?} and {DOUBLE_PROPOSAL:?} are slashed"));
    }
    // The offence's own epoch: its set names the offender (evidence of an epoch that ended
    // may be recorded early in the next; staking refuses one older than its unbonding period).
    let epoch = piece.epoch;
    let current = cx.epoch();
    if epoch > current {
        return ignore(cx, hash, piece, format!("evidence of epoch {epoch}, after the block's own epoch {current}"));
    }
    // The current epoch's identities are read once per block; an earlier epoch's per piece.
    let earlier;
    let members = if epoch == current {
        match set {
            Some(members) => members,
            None => {
                let recorded = cx.validator_set(epoch)?.ok_or(SlashingError::NoValidatorSet(epoch))?;
                set.insert(recorded.into_iter().map(|v| v.identity).collect())
            }
        }
    } else {
        let Some(recorded) = cx.validator_set(epoch)? else {
            return ignore(cx, hash, piece, format!("no validator set is recorded for epoch {epoch}"));
        };
        earlier = recorded.into_iter().map(|v| v.identity).collect::<Vec<_>>();
        &earlier
    };
    let Some(&validator) = members.get(piece.offender as usize) else {
        let reason = format!("offender index {} is outside epoch {epoch}'s validator set ({} validators)", piece.offender, members.len());
        return ignore(cx, hash, piece, reason);
    };
    if let Some(earlier) = state::offence(cx, &validator, epoch)? {
        let reason = format!(
            "validator {validator}'s offence in epoch {epoch} was already handled (evidence {}): one slash per validator and epoch",
            earlier.evidence
        );
        return ignore(cx, hash, piece, reason);
    }
    let (bps, jail) = (p.double_sign_bps, p.jail_on_double_sign);
    let outcome = request_slash(cx, p, &validator, epoch, bps, jail)?;
    let offence = Offence { kind: piece.kind.clone(), evidence: hash, height: cx.height(), outcome: outcome.clone() };
    state::save(cx, &state::offence_key(&validator, epoch), &offence)?;
    let (offender, kind) = (piece.offender, piece.kind.clone());
    match outcome {
        Outcome::Slashed { burned } => {
            let event = Slashed { evidence: hash, validator, offender, epoch, kind, fraction_bps: bps, jailed: jail, burned };
            events::emit(cx, events::SLASHED, &event)
        }
        Outcome::Refused { reason } => {
            events::emit(cx, events::SLASH_REFUSED, &SlashRefused { evidence: hash, validator, offender, epoch, kind, reason })
        }
    }
}
