//! The HotStuff engine: chained HotStuff with the two-chain commit rule, as in Jolteon
//! (Gelashvili et al., "Jolteon and Ditto", FC 2022) and DiemBFT v4, on the sans-I/O
//! [`ConsensusEngine`] contract.
//!
//! The engine is split by job; each part owns its state, and this module composes them:
//!
//! | part | its job |
//! |---|---|
//! | `safety` | the vote, timeout and one-proposal-per-round rules; the only code that signs votes and timeouts; the state persisted before anything signed leaves |
//! | `pacemaker` | the current round, its timer (1.5x per consecutive timeout, reset by a QC), re-sending what this validator sent in it |
//! | `election` | who leads each round: the VRF draw over the eligible stake, or in turn after a timeout |
//! | `block_tree` | proposals held above the committed head, their QCs, proposals waiting for a parent, fetching |
//! | `aggregation` | votes into QCs, timeouts into TCs, double votes and double proposals into evidence |
//! | `commit_rule` | the two-chain rule and committing a decided block with its ancestors |
//! | `verification` | checking certificates, proposal signatures and VRF proofs once each |
//!
//! and the engine's handlers, by what they handle: `proposer` (leading a round), `voter`
//! (proposals in, votes out), `certificates` (votes and timeouts in, certificates and what
//! they unlock), `rounds` (entering a round, giving up on it), `sync` (start, restart and
//! block sync). Test-only attacking code (feature `mocks`) is in `attacks`.
//!
//! The rules, each from the papers (DiemBFT v4 §"Safety", Jolteon Fig. 2–3), are stated where
//! they are implemented. Across parts:
//! - Votes, timeouts and proposals are persisted (as [`Output::Persist`]) before they are
//!   sent; a restarted leader never signs a second proposal for a round it proposed in.
//! - The pacemaker enters round `r + 1` on a QC or TC for `r`. A validator that sees timeouts
//!   from more than a third of the stake for its round times out too (so a TC forms once any
//!   honest validator gives up).
//! - **Signing domain**: every vote, timeout and proposal covers the chain id, the genesis
//!   block and the epoch ([`crate::certificate::signing_domain`]), so nothing signed for one
//!   chain is valid on another that reuses the keys.
//! - **Bounded memory**: votes and timeouts are collected at most `MAX_FUTURE_ROUNDS` ahead,
//!   fetch answers are capped per peer per second, and proposals waiting for a parent are
//!   forgotten once the chain commits past them.
//! - **Deterministic**: no clock and no randomness inside; time is each input's `now`, and
//!   every map whose order reaches an output is ordered.

mod aggregation;
#[cfg(feature = "mocks")]
mod attacks;
mod block_tree;
mod certificates;
mod commit_rule;
mod election;
mod pacemaker;
mod proposer;
mod rounds;
mod safety;
mod sync;
mod verification;
mod voter;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::sync::Arc;

use aether_api::consensus::{BlockRef, ConsensusEngine, ConsensusError, EngineContext, Evidence, Input, Output};
use aether_primitives::codec;
use aether_primitives::types::{Certificate, Hash, Keypair, PublicKey, TimestampMs};
use borsh::BorshDeserialize;
use serde::{Deserialize, Serialize};

use crate::certificate::{Committee, QuorumCertificate};
use crate::keys::{self, decode_consensus_key, derive_keys, LocalKeys, Member};
use crate::messages::{CommitCertificate, Message, MAX_MESSAGE_BYTES};
use crate::timeout::TimeoutCertificate;
use crate::verified::VerifiedCache;

use aggregation::Aggregator;
use block_tree::BlockTree;
use commit_rule::CommitRule;
use election::Election;
use pacemaker::{Pacemaker, PROPOSE_TIMER, RESEND_TIMER, ROUND_TIMER};
use safety::SafetyRules;
use verification::Verifier;

#[cfg(feature = "mocks")]
pub(crate) use safety::persisted_covers;

/// `[consensus.hotstuff]` settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HotStuffSettings {
    /// Round timeout when rounds are succeeding.
    pub base_timeout_ms: u64,
    /// Cap on the round timeout after repeated timeouts.
    pub max_timeout_ms: u64,
    /// A leader waits at least this long after its previous proposal.
    pub min_block_interval_ms: u64,
    /// An idle chain (no transactions waiting, none in an uncommitted block) gets at most one
    /// block per heartbeat: its leader waits this long after entering its round, unless
    /// transactions arrive meanwhile (and validators wait this much longer before timing out
    /// an idle round). A block that carries transactions is still followed at once, so its
    /// two-chain completes without waiting. 0: propose every `min_block_interval_ms`.
    pub heartbeat_ms: u64,
}

impl aether_api::registry::PluginConfig for HotStuffSettings {
    const SLOT: aether_api::registry::SlotKind = aether_api::registry::SlotKind::Consensus;
    const NAME: &'static str = HotStuffEngine::NAME;
}

impl Default for HotStuffSettings {
    fn default() -> Self {
        HotStuffSettings { base_timeout_ms: 1_000, max_timeout_ms: 30_000, min_block_interval_ms: 100, heartbeat_ms: 1_000 }
    }
}

/// Votes and timeouts are collected for at most this many rounds ahead of the current one:
/// room for a validator that is a little behind, and a bound on the collectors one faulty
/// validator can make this node hold (it costs it no signature: votes are checked lazily).
const MAX_FUTURE_ROUNDS: u64 = 64;

pub struct HotStuffEngine {
    /// The epoch this engine runs (its signing domain, its first and last heights).
    epoch: aether_api::consensus::EpochRange,
    members: Vec<Member>,
    committee: Arc<Committee>,
    me: Option<LocalKeys>,
    settings: HotStuffSettings,

    safety: SafetyRules,
    pacemaker: Pacemaker,
    election: Election,
    tree: BlockTree,
    commit_rule: CommitRule,
    aggregator: Aggregator,
    verifier: Verifier,

    high_qc: QuorumCertificate,
    last_tc: Option<TimeoutCertificate>,
    /// Proposals whose payload the node is verifying, in request order.
    verifying: VecDeque<Hash>,
    /// The round and parent of the block the node is building for this validator's proposal.
    building: Option<(u64, Hash)>,
    last_proposed_ms: Option<TimestampMs>,
    /// The node said transactions wait in its mempool (cleared when a block is built).
    transactions_waiting: bool,
    /// After a restart, the round entered from persisted state: this validator does not lead
    /// it (the network has most likely moved on; proposing there only wastes a block).
    restart_round: u64,
    /// Test-only (feature `mocks`): the grinding leader's rebuilds so far.
    #[cfg(feature = "mocks")]
    grind_tries: u32,
    /// Test-only (feature `mocks`): the attacks this validator runs (see [`crate::mocks::Attack`]).
    #[cfg(feature = "mocks")]
    pub(crate) attacks: Vec<crate::mocks::Attack>,
}

impl HotStuffEngine {
    pub const NAME: &'static str = "hotstuff";

    /// The consensus key genesis lists for the validator with identity key `identity`.
    pub fn consensus_key(identity: &Keypair) -> Vec<u8> {
        keys::consensus_key(identity)
    }

    pub fn from_context(ctx: &EngineContext, settings: HotStuffSettings) -> Result<HotStuffEngine, ConsensusError> {
        Self::with_cache(ctx, settings, VerifiedCache::new())
    }

    /// [`HotStuffEngine::from_context`] with a given memory of verified certificates (the
    /// simulator shares one between the validators it runs; see [`VerifiedCache`]).
    pub fn with_cache(ctx: &EngineContext, settings: HotStuffSettings, verified: VerifiedCache) -> Result<HotStuffEngine, ConsensusError> {
        if settings.base_timeout_ms == 0 || settings.max_timeout_ms < settings.base_timeout_ms {
            return Err(ConsensusError::Setup("consensus.hotstuff: need 0 < base_timeout_ms <= max_timeout_ms".into()));
        }
        let mut members = Vec::new();
        let mut committee_members = Vec::new();
        for (i, v) in ctx.validators.iter().enumerate() {
            let (bls, pop, vrf) = decode_consensus_key(&v.consensus_key)
                .map_err(|e| ConsensusError::Setup(format!("validator {i} ({}): consensus key: {e}", v.name)))?;
            members.push(Member { identity: v.identity, vrf });
            committee_members.push((bls, v.stake, pop));
        }
        let stakes = ctx.validators.iter().map(|v| v.stake).collect();
        let committee_id = Hash::digest_parts(
            b"aether/hotstuff-committee/v1",
            &[
                &codec::encode(&ctx.validators.iter().map(|v| (v.consensus_key.clone(), v.stake)).collect::<Vec<_>>()),
                &ctx.epoch.number.to_le_bytes(),
            ],
        );
        let domain = crate::certificate::signing_domain(&ctx.chain_id, &ctx.genesis, ctx.epoch.number);
        let committee = Arc::new(Committee::new(committee_members, domain).map_err(|e| ConsensusError::Setup(e.to_string()))?);
        let (me, bls) = match &ctx.local {
            None => (None, None),
            Some(local) => {
                let (bls, vrf) = derive_keys(&local.identity);
                let listed = ctx.validators.get(local.index).map(|v| v.consensus_key.clone());
                if listed.as_deref() != Some(Self::consensus_key(&local.identity).as_slice()) {
                    return Err(ConsensusError::Setup(format!(
                        "this node's key {} does not match validator {}'s consensus key in genesis",
                        local.identity.public(),
                        local.index
                    )));
                }
                (Some(LocalKeys { index: local.index, identity: local.identity.clone(), vrf }), Some(bls))
            }
        };
        Ok(HotStuffEngine {
            epoch: ctx.epoch,
            tree: BlockTree::new(members.len()),
            members,
            safety: SafetyRules::new(bls, committee.domain()),
            pacemaker: Pacemaker::new(settings.base_timeout_ms, settings.max_timeout_ms, settings.heartbeat_ms),
            election: Election::new(stakes),
            commit_rule: CommitRule::default(),
            aggregator: Aggregator::new(committee.clone(), ctx.epoch.number),
            verifier: Verifier::new(committee.clone(), committee_id, verified),
            committee,
            me,
            settings,
            high_qc: QuorumCertificate { round: 0, block: Hash::ZERO, signers: vec![], signature: vec![] },
            last_tc: None,
            verifying: VecDeque::new(),
            building: None,
            last_proposed_ms: None,
            transactions_waiting: false,
            restart_round: 0,
            #[cfg(feature = "mocks")]
            grind_tries: 0,
            #[cfg(feature = "mocks")]
            attacks: vec![],
        })
    }

    /// The round this validator is in.
    pub fn round(&self) -> u64 {
        self.pacemaker.round()
    }

    /// Test-only (feature `mocks`): round `r` is led by `leaders[r - 1]` (a twins plan).
    #[cfg(feature = "mocks")]
    pub(crate) fn script_leaders(&mut self, leaders: &[aether_api::consensus::ValidatorIndex]) {
        self.election.scripted = leaders.to_vec();
    }

    fn my_index(&self) -> Option<aether_api::consensus::ValidatorIndex> {
        self.me.as_ref().map(|m| m.index)
    }
}

impl ConsensusEngine for HotStuffEngine {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn handle(&mut self, now: TimestampMs, input: Input, out: &mut Vec<Output>) {
        match input {
            Input::Start { committed, certificate, safety_state } => self.on_start(committed, &certificate, safety_state, now, out),
            Input::Message { from, bytes } => {
                if bytes.len() > MAX_MESSAGE_BYTES {
                    return;
                }
                let Ok(message) = Message::try_from_slice(&bytes) else { return };
                match message {
                    Message::Proposal(p) => self.on_proposal(from, *p, now, out),
                    // Votes and timeouts travel only from their signer (the transport names the
                    // sender), so one validator cannot inject votes in another's name to crowd
                    // out the real ones.
                    Message::Vote { round, digest, voter, signature } if voter == from => {
                        self.on_vote(round, digest, voter, signature, now, out)
                    }
                    Message::Timeout(t) if t.signer == from => self.on_timeout(*t, now, out),
                    Message::Vote { .. } | Message::Timeout(_) => {}
                    Message::Fetch { digest } => self.tree.answer_fetch(from, digest, now, out),
                }
            }
            Input::Timer { id: ROUND_TIMER } => self.on_round_timer(now, out),
            Input::Timer { id: RESEND_TIMER } => self.pacemaker.resend(now, out),
            Input::Timer { id: PROPOSE_TIMER } => {
                if self.my_index() == self.leader_of_current() && !self.pacemaker.timed_out() {
                    self.propose(out);
                }
            }
            Input::TransactionsWaiting => self.on_transactions_waiting(now, out),
            Input::Timer { .. } => {}
            Input::PayloadBuilt { payload } => self.on_built(now, payload, out),
            Input::PayloadBuildFailed { .. } => self.building = None,
            Input::PayloadVerified { block, parent, valid, empty } => self.on_payload_verified(block, parent, valid, empty, now, out),
            Input::Synced { committed, certificate } => self.on_synced(committed, &certificate, now, out),
        }
    }

    fn keeps_safety_state(&self) -> bool {
        true
    }

    fn verify_evidence(&self, evidence: &Evidence) -> Result<(), ConsensusError> {
        // The committee and domain are this epoch's: another epoch's evidence is that epoch's
        // engine's to check (the offender index means another validator there).
        if evidence.epoch != self.epoch.number {
            return Err(ConsensusError::BadEvidence(format!(
                "evidence of epoch {}; this engine checks epoch {}",
                evidence.epoch, self.epoch.number
            )));
        }
        let identities: Vec<PublicKey> = self.members.iter().map(|m| m.identity).collect();
        crate::evidence::check(evidence, &identities, &self.committee).map_err(ConsensusError::BadEvidence)
    }

    /// A block's parent certificate is the QC its proposal extends (what an honest proposer
    /// puts there, [`proposer`]): a QC of this epoch's committee that certifies a proposal of
    /// `parent` this validator holds (or the round-0 QC of this epoch's genesis, when `parent`
    /// is it). The proposal's own `justify` was checked already; this binds the header's bytes,
    /// which the ledger hands to modules, to a real certificate of the parent.
    fn verify_parent_certificate(&self, parent: &BlockRef, certificate: &Certificate) -> Result<(), ConsensusError> {
        let bad = |why: String| ConsensusError::BadCertificate(format!("parent certificate: {why}"));
        let qc = QuorumCertificate::try_from_slice(&certificate.0).map_err(|e| bad(format!("not a HotStuff QC: {e}")))?;
        if qc.round == 0 {
            let genesis = block_tree::genesis_digest(&parent.hash);
            if self.tree.is_genesis(&genesis) && qc.block == genesis && qc.signers.is_empty() && qc.signature.is_empty() {
                return Ok(());
            }
            return Err(bad("a round-0 QC stands only for this epoch's genesis, with no signers".into()));
        }
        match self.tree.verified_block(&qc.block) {
            Some(block) if block == *parent => {}
            Some(block) => return Err(bad(format!("it certifies block {} at height {}, not the parent", block.hash, block.height))),
            None => return Err(bad("it certifies no proposal this validator holds".into())),
        }
        if self.verifier.qc_known_valid(&qc) {
            return Ok(());
        }
        qc.verify(&self.committee).map_err(|e| bad(e.to_string()))
    }

    fn verify_certificate(&self, block: &BlockRef, certificate: &Certificate) -> Result<(), ConsensusError> {
        let bad = |why: &str| ConsensusError::BadCertificate(why.to_string());
        let cert =
            CommitCertificate::try_from_slice(&certificate.0).map_err(|e| bad(&format!("not a HotStuff commit certificate: {e}")))?;
        let header = cert.header();
        if header.block != *block {
            return Err(bad("certifies another block"));
        }
        if header.domain != self.committee.domain() {
            return Err(bad("signed for another chain or epoch"));
        }
        if cert.qc().block != header.digest() || cert.qc().round != header.round {
            return Err(bad("QC does not certify the block's proposal"));
        }
        // The directly decided block: this one, or (the last block of an epoch) a descendant
        // reached through `path`.
        let (decided, decided_qc, child, child_qc) = match &cert {
            CommitCertificate::Direct { child, child_qc, .. } => (header, cert.qc(), child, child_qc),
            CommitCertificate::Through { path, d_qc, child, child_qc, .. } => {
                if self.epoch.last_height != Some(header.block.height) {
                    return Err(bad("only the last block of an epoch is proven through a descendant"));
                }
                let mut parent = header;
                for h in path {
                    if h.parent != parent.digest() || h.domain != header.domain || h.block.height != parent.block.height + 1 {
                        return Err(bad("the path does not link the block to the decided descendant"));
                    }
                    parent = h;
                }
                if path.is_empty() {
                    return Err(bad("the path to the decided descendant is empty"));
                }
                if d_qc.block != parent.digest() || d_qc.round != parent.round {
                    return Err(bad("the decided descendant's QC does not certify it"));
                }
                (parent, d_qc, child, child_qc)
            }
            CommitCertificate::Ancestor { .. } => {
                // Certified, but decided only through a descendant: not a proof of finality alone.
                return Err(bad(
                    "an ancestor certificate shows the block certified, not decided: prove it final with a directly decided descendant",
                ));
            }
        };
        if child.parent != decided.digest() || Some(child.round) != decided.round.checked_add(1) || child.domain != decided.domain {
            return Err(bad("the child is not a direct successor in the next round"));
        }
        if child_qc.block != child.digest() || child_qc.round != child.round {
            return Err(bad("the child QC does not certify the child"));
        }
        decided_qc.verify(&self.committee).map_err(|e| bad(&e.to_string()))?;
        child_qc.verify(&self.committee).map_err(|e| bad(&e.to_string()))?;
        Ok(())
    }
}
