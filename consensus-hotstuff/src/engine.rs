//! The HotStuff engine: chained HotStuff with the two-chain commit rule, as in Jolteon
//! (Gelashvili et al., "Jolteon and Ditto", FC 2022) and DiemBFT v4, on the sans-I/O
//! [`ConsensusEngine`] contract.
//!
//! Rules, each from the papers (DiemBFT v4 §"Safety", Jolteon Fig. 2–3), as implemented:
//! - **Vote** for a proposal of round `r` justified by a QC of round `q` only if `r` is above
//!   every round this validator voted or timed out in, and either `r = q + 1` (the proposal
//!   extends the previous round's QC) or the proposal carries a TC for round `r - 1` and
//!   `q >= ` the highest high-QC round in that TC (it extends the best QC a quorum reported).
//! - **Time out** of round `r` only if this validator's high QC is its highest ever seen and `r`
//!   follows that QC or a TC directly (`safe_to_timeout`); timing out raises the highest voted
//!   round to `r`, so it never votes in `r` afterwards.
//! - **Commit** block `B` when a QC certifies a child `B'` of `B` with `round(B') = round(B) + 1`.
//!   The rounds must be consecutive: a QC for a child in a later round proves nothing about `B`
//!   (rounds in between may have certified a conflicting block under a TC).
//! - Votes, timeouts and proposals are persisted (as [`Output::Persist`]) before they are
//!   sent; a restarted leader never signs a second proposal for a round it proposed in.
//! - The pacemaker enters round `r + 1` on a QC or TC for `r`; a round's timer starts at
//!   `base_timeout_ms` and grows 1.5x with each consecutive round that ended in a timeout (capped),
//!   and resets when a QC forms. A validator that sees timeouts from more than a third of the
//!   stake for its round times out too (so a TC forms once any honest validator gives up).
//! - **Leaders**: see [`crate::leader`]. A proposal for round `r` carries its proposer's VRF
//!   proof over `(r + 1, the parent's election seed)`; once the proposal is certified, that
//!   output elects the leader of `r + 1` among all validators by stake, and its hash is the
//!   seed handed on. Nobody knows that leader before the proposal exists, everyone can check
//!   it, and no single validator can choose it (not by picking a QC's signers, not by varying
//!   its block, not by re-encoding its proof). A round entered by a timeout has a fallback
//!   leader taken in turn (`round mod n`), so a faulty elected leader cannot stall the chain
//!   and an honest fallback leader comes within f + 1 timed-out rounds.
//! - **Signing domain**: every vote, timeout and proposal covers the chain id, the genesis
//!   block and the epoch ([`crate::certificate::signing_domain`]), so nothing signed for one
//!   chain is valid on another that reuses the keys.
//! - **Bounded memory**: votes and timeouts are collected at most `MAX_FUTURE_ROUNDS` ahead,
//!   fetch answers are capped per peer per second, and proposals waiting for a parent are
//!   forgotten once the chain commits past them.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use aether_api::consensus::{BlockRef, ConsensusEngine, ConsensusError, EngineContext, Evidence, Input, Output, TimerId, ValidatorIndex};
use aether_primitives::codec;
use aether_primitives::types::{Amount, Certificate, Hash, Keypair, PublicKey, Signature, TimestampMs};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::certificate::{BlsSecretKey, BlsSignature, Committee, QuorumCertificate, VoteCollector, VoteMessage};
use crate::evidence::Misbehaviour;
use crate::keys::{self, decode_consensus_key, derive_keys};
use crate::leader::{election_input, election_seed, pick_by_stake, VrfPublicKey, VrfSecretKey, PROOF_LEN};
use crate::messages::{CommitCertificate, Message, Proposal, ProposalHeader, Timeout, MAX_MESSAGE_BYTES};
use crate::timeout::{TimeoutCertificate, TimeoutCollector, TimeoutMessage};
use crate::verified::VerifiedCache;

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

impl Default for HotStuffSettings {
    fn default() -> Self {
        HotStuffSettings { base_timeout_ms: 1_000, max_timeout_ms: 30_000, min_block_interval_ms: 100, heartbeat_ms: 1_000 }
    }
}

const ROUND_TIMER: TimerId = 1;
const PROPOSE_TIMER: TimerId = 2;
/// Re-sends this round's proposal and vote (links lose messages) every third of a base timeout.
const RESEND_TIMER: TimerId = 3;
/// Proposals kept below the committed round, to serve peers fetching ancestors.
const KEEP_ROUNDS: u64 = 256;
/// Proposals waiting for an ancestor, at most.
const MAX_WAITING: usize = 1_024;
/// Proposals sent in answer to one fetch, at most.
const FETCH_DEPTH: usize = 32;
/// Uncommitted proposals kept in the safety state, at most.
const MAX_PERSISTED_CHAIN: usize = 16;
/// Votes and timeouts are collected for at most this many rounds ahead of the current one:
/// room for a validator that is a little behind, and a bound on the collectors one faulty
/// validator can make this node hold (it costs it no signature: votes are checked lazily).
const MAX_FUTURE_ROUNDS: u64 = 64;
/// Proposal bytes sent to one peer in answer to its fetches, per second of (input) time: a
/// 40-byte fetch can ask for FETCH_DEPTH proposals of up to MAX_MESSAGE_BYTES each.
const FETCH_ANSWER_BYTES_PER_SECOND: usize = 32 * 1024 * 1024;
/// A validator is elected only if it signed one of the QCs of the last this-many certified
/// proposals of the chain (see `eligible_stakes`).
const ELIGIBILITY_WINDOW: usize = 10;
/// Missing proposals asked for again at each round timer, at most.
const REFETCH_PER_TIMER: usize = 16;

/// What survives a restart (written before any vote or timeout leaves).
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
struct SafetyState {
    highest_vote_round: u64,
    highest_qc_round: u64,
    high_qc: Option<QuorumCertificate>,
    last_tc: Option<TimeoutCertificate>,
    /// The uncommitted proposals this validator voted for or holds a QC of, oldest first: if
    /// every validator crashed, a certified block would otherwise exist nowhere and no leader
    /// could extend its QC (the chain would stall for good).
    chain: Vec<Proposal>,
    /// The highest round this validator proposed in: written before the proposal leaves, so a
    /// leader that crashes and restarts never signs a second proposal for that round.
    highest_proposed_round: u64,
}

/// A vote signed (and the safety state raised) but not yet sent.
struct SignedVote {
    round: u64,
    digest: Hash,
    next_leader: ValidatorIndex,
    signature: Vec<u8>,
}

struct Member {
    identity: PublicKey,
    vrf: VrfPublicKey,
}

struct LocalKeys {
    index: ValidatorIndex,
    identity: Keypair,
    bls: BlsSecretKey,
    vrf: VrfSecretKey,
}

struct Known {
    proposal: Proposal,
    /// The payload executed to the roots it claims on its parent.
    verified: bool,
    /// The proposer's verified VRF output (elects the leader of the next round).
    beta: [u8; 64],
    /// The block carries no transactions and no evidence (known once verified).
    empty: bool,
}

pub struct HotStuffEngine {
    members: Vec<Member>,
    stakes: Vec<Amount>,
    committee: Arc<Committee>,
    me: Option<LocalKeys>,
    settings: HotStuffSettings,

    safety: SafetyState,
    round: u64,
    high_qc: QuorumCertificate,
    last_tc: Option<TimeoutCertificate>,
    consecutive_timeouts: u32,
    my_timeout: Option<Timeout>,
    /// This round's proposal (if leader) and vote (with its recipient), for re-sending.
    my_proposal: Option<Vec<u8>>,
    my_vote: Option<(ValidatorIndex, Vec<u8>)>,

    /// Last committed proposal: digest, block, round, header (None for genesis).
    committed: (Hash, BlockRef, u64),
    committed_beta: Option<[u8; 64]>,
    committed_after_timeout: bool,
    committed_recent_signers: Vec<Vec<u8>>,
    genesis_digest: Option<Hash>,

    proposals: HashMap<Hash, Known>,
    qcs: HashMap<Hash, QuorumCertificate>,
    /// Proposals whose parent has not arrived, by that parent (ordered: the re-fetch walks it,
    /// and the order must not depend on the process's hash seed).
    waiting: BTreeMap<Hash, Vec<Proposal>>,
    /// When each missing proposal was last asked for (fetches are throttled).
    fetched: HashMap<Hash, TimestampMs>,
    /// Per peer: start of its current one-second window and the fetch-answer bytes sent in it.
    fetch_served: Vec<(TimestampMs, usize)>,
    verifying: VecDeque<Hash>,
    pending_commit: Option<(Hash, CommitCertificate)>,
    votes: HashMap<(u64, Hash), VoteCollector>,
    timeouts: BTreeMap<u64, TimeoutCollector>,
    seen_votes: HashMap<(u64, ValidatorIndex), (Hash, Vec<u8>)>,
    seen_proposals: HashMap<(u64, ValidatorIndex), (ProposalHeader, Vec<u8>)>,
    /// Certificates already verified (possibly shared with other engines, see [`VerifiedCache`]).
    verified: VerifiedCache,
    /// QCs this engine aggregated itself: known valid here, but kept out of `verified` so that
    /// an engine sharing that memory (the simulator's) checks them for itself — a collector
    /// that formed a bad QC must not be vouched for by the cache.
    formed_here: VerifiedCache,
    /// Fingerprint of the committee (keys and stakes): part of every cache key.
    committee_id: Hash,
    building: Option<(u64, Hash)>,
    last_proposed_ms: Option<TimestampMs>,
    /// The node said transactions wait in its mempool (cleared when a block is built).
    transactions_waiting: bool,
    /// When this validator entered its current round (an idle leader waits a heartbeat from it).
    round_entered_ms: TimestampMs,
    /// After a restart, the round entered from persisted state: this validator does not lead
    /// it (the network has most likely moved on; proposing there only wastes a block).
    restart_round: u64,
    /// Test-only (feature `mocks`): the grinding leader's rebuilds so far.
    #[cfg(feature = "mocks")]
    grind_tries: u32,
    /// Test-only (feature `mocks`): round `r` is led by `scripted_leaders[r - 1]` (a twins plan).
    #[cfg(feature = "mocks")]
    pub(crate) scripted_leaders: Vec<ValidatorIndex>,
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
        let stakes: Vec<Amount> = ctx.validators.iter().map(|v| v.stake).collect();
        let committee_id = Hash::digest(
            b"aether/hotstuff-committee/v1",
            &codec::encode(&ctx.validators.iter().map(|v| (v.consensus_key.clone(), v.stake)).collect::<Vec<_>>()),
        );
        let domain = crate::certificate::signing_domain(&ctx.chain_id, &ctx.genesis, 0);
        let committee = Arc::new(Committee::new(committee_members, domain).map_err(|e| ConsensusError::Setup(e.to_string()))?);
        let me = match &ctx.local {
            None => None,
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
                Some(LocalKeys { index: local.index, identity: local.identity.clone(), bls, vrf })
            }
        };
        let empty_qc = QuorumCertificate { round: 0, block: Hash::ZERO, signers: vec![], signature: vec![] };
        Ok(HotStuffEngine {
            members,
            stakes,
            committee,
            me,
            settings,
            safety: SafetyState::default(),
            round: 0,
            high_qc: empty_qc,
            last_tc: None,
            consecutive_timeouts: 0,
            my_timeout: None,
            my_proposal: None,
            my_vote: None,
            committed: (Hash::ZERO, BlockRef { hash: Hash::ZERO, height: 0 }, 0),
            committed_beta: None,
            committed_after_timeout: false,
            committed_recent_signers: Vec::new(),
            genesis_digest: None,
            proposals: HashMap::new(),
            qcs: HashMap::new(),
            waiting: BTreeMap::new(),
            fetched: HashMap::new(),
            fetch_served: vec![(0, 0); ctx.validators.len()],
            verifying: VecDeque::new(),
            pending_commit: None,
            votes: HashMap::new(),
            timeouts: BTreeMap::new(),
            seen_votes: HashMap::new(),
            seen_proposals: HashMap::new(),
            verified,
            formed_here: VerifiedCache::new(),
            committee_id,
            building: None,
            last_proposed_ms: None,
            transactions_waiting: false,
            round_entered_ms: 0,
            restart_round: 0,
            #[cfg(feature = "mocks")]
            #[cfg(feature = "mocks")]
            grind_tries: 0,
            #[cfg(feature = "mocks")]
            scripted_leaders: vec![],
            #[cfg(feature = "mocks")]
            attacks: vec![],
        })
    }

    /// The round this validator is in.
    pub fn round(&self) -> u64 {
        self.round
    }

    // ---- certificates -------------------------------------------------------------------

    fn verify_qc(&mut self, qc: &QuorumCertificate) -> bool {
        if qc.round == 0 {
            return Some(qc.block) == self.genesis_digest && qc.signers.is_empty();
        }
        let key = VerifiedCache::key(b"qc", &self.committee_id, &codec::encode(qc));
        if self.verified.contains(&key) || self.formed_here.contains(&key) {
            return true;
        }
        let ok = qc.verify(&self.committee).is_ok();
        if ok {
            self.verified.insert(key);
        }
        ok
    }

    fn verify_tc(&mut self, tc: &TimeoutCertificate) -> bool {
        let key = VerifiedCache::key(b"tc", &self.committee_id, &codec::encode(tc));
        if self.verified.contains(&key) {
            return true;
        }
        let ok = tc.verify(&self.committee).is_ok();
        if ok {
            self.verified.insert(key);
        }
        ok
    }

    // ---- leaders ------------------------------------------------------------------------

    /// The leader of a round entered by a timeout: validators in turn (`round mod n`), so that
    /// after consecutive timeouts an honest leader comes within f + 1 rounds — a random draw
    /// can pick faulty leaders many times in a row, and each costs a (growing) timeout.
    fn fallback_leader(&self, round: u64) -> ValidatorIndex {
        #[cfg(feature = "mocks")]
        if let Some(leader) = self.scripted_leader(round) {
            return leader;
        }
        (round % self.members.len() as u64) as ValidatorIndex
    }

    /// Leader of the round after the certified proposal `digest` (the round it was
    /// proposed in, plus one), when that round is entered by its QC: elected by the proposal's
    /// VRF output among all validators by stake — or taken in turn if the proposal's own round
    /// was entered by a timeout. Why the exception: with VRF leaders after a timeout, each
    /// retry fails again with the probability that the draw lands on a faulty validator, while
    /// the round timer grows 1.5x per failure; one offline validator of four stalled a
    /// simulated chain for 35 s. In turn, rounds `r` and `r + 1` after a timeout have
    /// consecutive leaders, and among any f + 2 consecutive validators two adjacent ones are
    /// honest.
    ///
    /// Nothing a single validator chooses enters the election: the VRF input is the previous
    /// proposal's election seed (see [`election_seed`]), not anything in the block, so a leader
    /// cannot grind its block's contents for a draw it likes; and the draw is over every
    /// validator that signed any of the last QCs of the chain ([`ProposalHeader::recent_signers`],
    /// see `eligible_stakes`) — not over the signers of the one QC its collector picked. An
    /// offline validator thus drops out of the election instead of costing a timeout in its
    /// whole share of rounds.
    fn elected_after(&self, digest: &Hash) -> Option<ValidatorIndex> {
        if Some(*digest) == self.genesis_digest {
            return Some(self.fallback_leader(1));
        }
        let (round, after_timeout, beta, stakes) = if let Some(k) = self.proposals.get(digest) {
            let h = &k.proposal.header;
            (h.round, h.after_timeout, Some(k.beta), self.eligible_stakes(&h.recent_signers))
        } else if *digest == self.committed.0 {
            (self.committed.2, self.committed_after_timeout, self.committed_beta, self.eligible_stakes(&self.committed_recent_signers))
        } else {
            return None;
        };
        #[cfg(feature = "mocks")]
        if let Some(leader) = self.scripted_leader(round.saturating_add(1)) {
            return Some(leader);
        }
        if after_timeout {
            // In turn from round + 1, skipping validators not eligible.
            let n = self.members.len() as u64;
            return (0..n)
                .map(|i| (round.saturating_add(1).saturating_add(i) % n) as usize)
                .find(|i| stakes[*i] > 0)
                .map(|i| i as ValidatorIndex);
        }
        beta.and_then(|beta| pick_by_stake(&beta, &stakes).ok()).map(|i| i as ValidatorIndex)
    }

    /// Stake per validator for an election after a proposal whose header carries `window`
    /// (its `recent_signers`): zero for validators that signed none of those QCs. A collector
    /// picks the signers of the one QC it forms, but leaving an online validator out of the
    /// election would take all `ELIGIBILITY_WINDOW` collectors in a row; an offline or silent
    /// validator signs nothing and drops out after that many certified rounds. Before the chain
    /// has that much history, and if the window names nobody, everyone is eligible.
    fn eligible_stakes(&self, window: &[Vec<u8>]) -> Vec<Amount> {
        if window.len() < ELIGIBILITY_WINDOW {
            return self.stakes.clone();
        }
        let mut stakes = vec![0; self.stakes.len()];
        for bitmap in window {
            for i in crate::certificate::bitmap_indices(self.committee.len(), bitmap).unwrap_or_default() {
                stakes[i] = self.stakes[i];
            }
        }
        if stakes.iter().all(|s| *s == 0) {
            return self.stakes.clone();
        }
        stakes
    }

    /// The `recent_signers` a proposal extending `parent` with a QC signed by `justify_signers`
    /// must carry: that bitmap, then the parent's, newest first, `ELIGIBILITY_WINDOW` at most.
    fn recent_signers_after(&self, parent: &Hash, justify_signers: &[u8]) -> Option<Vec<Vec<u8>>> {
        let inherited = if Some(*parent) == self.genesis_digest {
            &[][..]
        } else if let Some(k) = self.proposals.get(parent) {
            k.proposal.header.recent_signers.as_slice()
        } else if *parent == self.committed.0 {
            self.committed_recent_signers.as_slice()
        } else {
            return None;
        };
        let mut window = Vec::with_capacity(ELIGIBILITY_WINDOW);
        window.push(justify_signers.to_vec());
        window.extend(inherited.iter().take(ELIGIBILITY_WINDOW - 1).cloned());
        Some(window)
    }

    /// The election seed the proposal `digest` hands to its child (the input of the child
    /// proposer's VRF): derived from its own VRF output, or the genesis digest.
    fn seed_of(&self, digest: &Hash) -> Option<Hash> {
        if Some(*digest) == self.genesis_digest {
            return Some(*digest);
        }
        if let Some(k) = self.proposals.get(digest) {
            return Some(election_seed(&k.beta));
        }
        if *digest == self.committed.0 {
            return self.committed_beta.map(|beta| election_seed(&beta));
        }
        None
    }

    /// Leader of `round` as entered now: by the QC of `round - 1`, or by a TC.
    fn leader_of_current(&self) -> Option<ValidatorIndex> {
        if self.high_qc.round.saturating_add(1) == self.round {
            self.elected_after(&self.high_qc.block)
        } else {
            Some(self.fallback_leader(self.round))
        }
    }

    // ---- pacemaker ----------------------------------------------------------------------

    fn resend_interval(&self) -> u64 {
        (self.settings.base_timeout_ms / 3).max(1)
    }

    fn on_resend_timer(&mut self, now: TimestampMs, out: &mut Vec<Output>) {
        if let Some(bytes) = &self.my_proposal {
            out.push(Output::Broadcast { bytes: bytes.clone() });
        }
        if let Some((to, bytes)) = &self.my_vote {
            out.push(Output::Send { to: *to, bytes: bytes.clone() });
        }
        if let Some(t) = &self.my_timeout {
            out.push(Output::Broadcast { bytes: codec::encode(&Message::Timeout(Box::new(t.clone()))) });
        }
        out.push(Output::SetTimer { id: RESEND_TIMER, at_ms: now.saturating_add(self.resend_interval()) });
    }

    fn round_timeout(&self) -> u64 {
        // x1.5 per consecutive timed-out round (as DiemBFT's exponential backoff, gentler than
        // doubling so that a few faulty leaders in a row do not stall the chain for long).
        let k = self.consecutive_timeouts.min(20);
        let grown = u128::from(self.settings.base_timeout_ms) * 3u128.pow(k) / 2u128.pow(k);
        (grown.min(u128::from(self.settings.max_timeout_ms))) as u64
    }

    fn advance_to(&mut self, round: u64, now: TimestampMs, out: &mut Vec<Output>) {
        if round <= self.round {
            return;
        }
        self.round = round;
        self.round_entered_ms = now;
        self.my_timeout = None;
        self.my_proposal = None;
        self.my_vote = None;
        self.building = None;
        // An idle round's leader waits a heartbeat before proposing: give it that long.
        let idle_wait = if self.settings.heartbeat_ms > 0 && !self.has_work() { self.settings.heartbeat_ms } else { 0 };
        out.push(Output::SetTimer { id: ROUND_TIMER, at_ms: now.saturating_add(self.round_timeout()).saturating_add(idle_wait) });
        out.push(Output::SetTimer { id: RESEND_TIMER, at_ms: now.saturating_add(self.resend_interval()) });
        self.timeouts = self.timeouts.split_off(&round.saturating_sub(1));
        let min = round.saturating_sub(2);
        self.votes.retain(|(r, _), _| *r >= min);
        self.seen_votes.retain(|(r, _), _| *r >= min);
        self.seen_proposals.retain(|(r, _), _| *r >= min);
        if let (Some(me), Some(leader)) = (&self.me, self.leader_of_current()) {
            if me.index == leader {
                self.schedule_proposal(now, out);
            }
        }
    }

    /// Whether a block is wanted soon: transactions wait, or an uncommitted block on the high
    /// QC's chain carries some (it commits only once the chain grows two more rounds). An
    /// unknown or unverified ancestor counts as work (propose rather than stall).
    fn has_work(&self) -> bool {
        if self.transactions_waiting {
            return true;
        }
        let mut at = self.high_qc.block;
        for _ in 0..MAX_PERSISTED_CHAIN {
            if at == self.committed.0 {
                return false;
            }
            match self.proposals.get(&at) {
                Some(k) if k.verified && k.empty => at = k.proposal.header.parent,
                _ => return true,
            }
        }
        true
    }

    fn schedule_proposal(&mut self, now: TimestampMs, out: &mut Vec<Output>) {
        if self.round <= self.restart_round {
            return;
        }
        let mut earliest = self.last_proposed_ms.map_or(now, |t| t.saturating_add(self.settings.min_block_interval_ms));
        if self.settings.heartbeat_ms > 0 && !self.has_work() {
            earliest = earliest.max(self.round_entered_ms.saturating_add(self.settings.heartbeat_ms));
        }
        if now >= earliest {
            self.propose(out);
        } else {
            out.push(Output::SetTimer { id: PROPOSE_TIMER, at_ms: earliest });
        }
    }

    fn propose(&mut self, out: &mut Vec<Output>) {
        if self.building.is_some() || self.round <= self.restart_round || self.round <= self.safety.highest_proposed_round {
            return;
        }
        #[cfg(feature = "mocks")]
        if self.attacking(crate::mocks::Attack::NeverPropose) {
            return;
        }
        let base = self.proposal_base();
        let parent_digest = base.block;
        let parent = if parent_digest == self.committed.0 {
            self.committed.1
        } else {
            match self.proposals.get(&parent_digest) {
                Some(k) if k.verified => k.proposal.header.block,
                _ => {
                    // The certified block has not reached us (or was lost in a crash): ask for
                    // it; on_verified proposes once it is here.
                    out.push(Output::Broadcast { bytes: codec::encode(&Message::Fetch { digest: parent_digest }) });
                    return;
                }
            }
        };
        self.building = Some((self.round, parent_digest));
        self.transactions_waiting = false;
        out.push(Output::BuildPayload { parent, parent_certificate: Certificate(codec::encode(&base)) });
    }

    /// The QC a proposal of this round extends: the high QC (an attacker of [`crate::mocks`]
    /// may pick another).
    fn proposal_base(&self) -> QuorumCertificate {
        #[cfg(feature = "mocks")]
        if self.attacking(crate::mocks::Attack::StaleProposal) && self.high_qc.round.saturating_add(1) != self.round {
            return self.oldest_extendable_qc();
        }
        self.high_qc.clone()
    }

    fn on_built(&mut self, now: TimestampMs, payload: aether_api::consensus::Payload, out: &mut Vec<Output>) {
        let Some((round, parent)) = self.building else { return };
        if round <= self.safety.highest_proposed_round {
            return;
        }
        let base = self.proposal_base();
        if round != self.round || parent != base.block {
            // Built on a QC that a newer one replaced meanwhile: build again on the newer one.
            self.building = None;
            if round == self.round {
                self.propose(out);
            }
            return;
        }
        let Some(parent_seed) = self.seed_of(&parent) else { return };
        let Some(me) = &self.me else { return };
        let (election, beta) = me.vrf.prove(&election_input(round.saturating_add(1), &parent_seed));
        let timeout = if base.round.saturating_add(1) == round { None } else { self.last_tc.clone() };
        let header = ProposalHeader {
            domain: self.committee.domain(),
            round,
            block: payload.block,
            parent_block: payload.parent,
            parent,
            proposer: me.index,
            election: election.to_vec(),
            parent_seed,
            recent_signers: self.recent_signers_after(&parent, &base.signers).unwrap_or_default(),
            after_timeout: timeout.is_some(),
        };
        #[cfg(feature = "mocks")]
        if self.regrind(&header, &beta, &payload, out) {
            return;
        }
        #[cfg(feature = "mocks")]
        let (base, timeout) = self.forge_certificates(base, timeout);
        let Some(me) = &self.me else { return };
        let digest = header.digest();
        let signature = me.identity.sign(&digest.0).0.to_vec();
        #[cfg(feature = "mocks")]
        let after_timeout = timeout.is_some();
        let proposal = Proposal { header, justify: base, timeout, payload: payload.bytes, signature };
        self.last_proposed_ms = Some(now);
        let bytes = codec::encode(&Message::Proposal(Box::new(proposal.clone())));
        self.proposals.insert(digest, Known { proposal, verified: true, beta, empty: payload.empty });
        // One write before anything leaves: that this round is proposed in (a restart must
        // never sign another proposal for it), the proposal itself, and the leader's own vote.
        self.safety.highest_proposed_round = round;
        let vote = self.sign_vote_if_safe(digest);
        self.persist_with(digest, out);
        #[cfg(feature = "mocks")]
        if let Some(to) = self.withheld_from_all_but().filter(|_| !after_timeout) {
            // Withholding: the proposal (and the QC it carries) reaches one validator only.
            out.push(Output::Send { to, bytes });
            self.after_verified(digest, now, out);
            return;
        }
        out.push(Output::Broadcast { bytes: bytes.clone() });
        self.my_proposal = Some(bytes);
        if let Some(vote) = vote {
            self.deliver_vote(vote, now, out);
        }
        self.after_verified(digest, now, out);
    }

    #[cfg(feature = "mocks")]
    fn attacking(&self, attack: crate::mocks::Attack) -> bool {
        self.attacks.contains(&attack)
    }

    /// The stale-QC attacker's choice: the lowest QC it holds among the last few rounds (at
    /// most `STALE_ROUNDS` below its committed block, whose proposals every node still keeps),
    /// so that what it proposes or reports forks below what some validators committed. The
    /// high QC if it holds no other.
    #[cfg(feature = "mocks")]
    fn oldest_extendable_qc(&self) -> QuorumCertificate {
        const STALE_ROUNDS: u64 = 3;
        let tc_round = self.last_tc.as_ref().map_or(u64::MAX, |tc| tc.round);
        self.qcs
            .values()
            .filter(|qc| qc.round.saturating_add(STALE_ROUNDS) >= self.committed.2 && qc.round < tc_round && qc.round < self.round)
            .filter(|qc| qc.block == self.committed.0 || self.proposals.get(&qc.block).is_some_and(|k| k.verified))
            .min_by_key(|qc| (qc.round, qc.block))
            .cloned()
            .unwrap_or_else(|| self.high_qc.clone())
    }

    /// The certificate forger's rewrite of what its proposal carries. A forged QC keeps its
    /// signer bitmap (it claims a quorum) but its aggregate signature holds only the forger's
    /// own. A forged TC lies as well: every signer is said to have reported the proposal's
    /// own (possibly stale) QC round, so the vote rule's high-QC condition holds for it; its
    /// aggregate too is the forger's signature alone. The proposal itself is then signed
    /// properly, so only checking the embedded certificates can refuse it.
    #[cfg(feature = "mocks")]
    fn forge_certificates(&self, qc: QuorumCertificate, tc: Option<TimeoutCertificate>) -> (QuorumCertificate, Option<TimeoutCertificate>) {
        let Some(me) = &self.me else { return (qc, tc) };
        let domain = self.committee.domain();
        let qc = if qc.round == 0 || !self.attacking(crate::mocks::Attack::ForgedQuorumCertificate) {
            qc
        } else {
            let signature = me.bls.sign_vote(&VoteMessage { domain, round: qc.round, block: qc.block }).to_bytes().to_vec();
            QuorumCertificate { signature, ..qc }
        };
        let tc = tc.map(|tc| {
            if !self.attacking(crate::mocks::Attack::ForgedTimeoutCertificate) {
                return tc;
            }
            let n = self.members.len();
            let signers: Vec<usize> =
                tc.groups.iter().flat_map(|(_, bitmap)| crate::certificate::bitmap_indices(n, bitmap).unwrap_or_default()).collect();
            let everyone = crate::certificate::bitmap_of(n, &signers);
            let high_qc_round = qc.round;
            let signature = TimeoutMessage { domain, round: tc.round, high_qc_round }.sign(&me.bls).to_bytes().to_vec();
            TimeoutCertificate { groups: vec![(high_qc_round, everyone)], signature, ..tc }
        });
        (qc, tc)
    }

    /// The withholder's one recipient of its proposals (the next validator by index), if this
    /// validator withholds. It withholds proposals that follow a QC (the timeouts they cause
    /// are what the other attacks need); a proposal after a timeout goes to everyone.
    #[cfg(feature = "mocks")]
    fn withheld_from_all_but(&self) -> Option<ValidatorIndex> {
        let me = self.me.as_ref()?.index;
        self.attacking(crate::mocks::Attack::Withhold).then(|| (me + 1) % self.members.len() as ValidatorIndex)
    }

    /// Whether the safety state `persisted` (as this engine wrote it) covers `message`, sent
    /// by validator `sender`: a vote or timeout of a round at or below its highest voted round,
    /// its own proposal of a round at or below its highest proposed round. The simulator asks
    /// at every send (see `aether_testkit::sim::EngineUnderTest::persist_check`).
    #[cfg(feature = "mocks")]
    pub(crate) fn persisted_covers(sender: ValidatorIndex, persisted: Option<&[u8]>, message: &[u8]) -> bool {
        let Ok(message) = Message::try_from_slice(message) else { return true };
        let state = || persisted.and_then(|s| SafetyState::try_from_slice(s).ok()).unwrap_or_default();
        match message {
            Message::Vote { round, .. } => state().highest_vote_round >= round,
            Message::Timeout(t) if t.signer == sender => state().highest_vote_round >= t.round,
            Message::Proposal(p) if p.header.proposer == sender => state().highest_proposed_round >= p.header.round,
            _ => true,
        }
    }

    /// The QC an attacker reports in its timeout of `round`: the lowest it holds (a lying
    /// `LowTimeout`), or a forged one a round above its high QC (`ForgedQuorumCertificate`:
    /// its block, the round just below the timeout's, signed by itself alone and saying so —
    /// a valid signature from too little stake, where its proposals' QCs claim a quorum).
    #[cfg(feature = "mocks")]
    fn reported_qc(&self, round: u64) -> QuorumCertificate {
        if self.attacking(crate::mocks::Attack::LowTimeout) {
            return self.oldest_extendable_qc();
        }
        let below = round.saturating_sub(1);
        match &self.me {
            Some(me) if self.attacking(crate::mocks::Attack::ForgedQuorumCertificate) && below > self.high_qc.round => {
                let block = self.high_qc.block;
                let vote = VoteMessage { domain: self.committee.domain(), round: below, block };
                let signers = crate::certificate::bitmap_of(self.members.len(), &[me.index as usize]);
                QuorumCertificate { round: below, block, signers, signature: me.bls.sign_vote(&vote).to_bytes().to_vec() }
            }
            _ => self.high_qc.clone(),
        }
    }

    #[cfg(feature = "mocks")]
    fn scripted_leader(&self, round: u64) -> Option<ValidatorIndex> {
        round.checked_sub(1).and_then(|i| self.scripted_leaders.get(usize::try_from(i).ok()?)).copied()
    }

    /// The grinding attack, run by a faulty leader: when the proposal it is about to send would
    /// make it the next round's leader too, it rebuilds its block (another block, another
    /// digest) up to 64 times until its own election of the round after that picks it again —
    /// so that, under a grindable election, one leadership becomes all the following ones. It
    /// asks the engine's own rules (`elected_after`, `seed_of`) who would lead, so it attacks
    /// whatever the election is. Returns whether it asked for a rebuild instead of proposing.
    #[cfg(feature = "mocks")]
    fn regrind(
        &mut self,
        header: &ProposalHeader,
        beta: &[u8; 64],
        payload: &aether_api::consensus::Payload,
        out: &mut Vec<Output>,
    ) -> bool {
        const GRIND_TRIES: u32 = 64;
        let Some(me) = self.me.as_ref().map(|m| m.index) else { return false };
        if !self.attacking(crate::mocks::Attack::Grind) || self.grind_tries >= GRIND_TRIES {
            self.grind_tries = 0;
            return false;
        }
        let justify = self.high_qc.clone();
        let hypothetical = |header: ProposalHeader, beta: [u8; 64]| Known {
            proposal: Proposal { header, justify: justify.clone(), timeout: None, payload: vec![], signature: vec![] },
            verified: true,
            beta,
            empty: false,
        };
        let digest = header.digest();
        self.proposals.insert(digest, hypothetical(header.clone(), *beta));
        let (next, seed) = (self.elected_after(&digest), self.seed_of(&digest));
        let mut keeps_leading = true;
        if let (Some(next), Some(seed), Some(vrf)) = (next, seed, self.me.as_ref().map(|m| &m.vrf)) {
            if next == me {
                let round = header.round.saturating_add(1);
                let (election, child_beta) = vrf.prove(&election_input(round.saturating_add(1), &seed));
                let child = ProposalHeader {
                    round,
                    parent: digest,
                    election: election.to_vec(),
                    parent_seed: seed,
                    recent_signers: self.recent_signers_after(&digest, &justify.signers).unwrap_or_default(),
                    after_timeout: false,
                    ..header.clone()
                };
                let child_digest = child.digest();
                let child = hypothetical(child, child_beta);
                self.proposals.insert(child_digest, child);
                keeps_leading = self.elected_after(&child_digest) == Some(me);
                self.proposals.remove(&child_digest);
            }
        }
        self.proposals.remove(&digest);
        if keeps_leading {
            self.grind_tries = 0;
            return false;
        }
        self.grind_tries += 1;
        let parent = BlockRef { hash: payload.parent, height: payload.block.height.saturating_sub(1) };
        out.push(Output::BuildPayload { parent, parent_certificate: Certificate(codec::encode(&self.high_qc)) });
        true
    }

    fn on_round_timer(&mut self, now: TimestampMs, out: &mut Vec<Output>) {
        out.push(Output::SetTimer { id: ROUND_TIMER, at_ms: now.saturating_add(self.round_timeout()) });
        // Ask again for ancestors that never arrived (unless asked for just now).
        let interval = self.resend_interval();
        let due: Vec<Hash> = self
            .waiting
            .keys()
            .filter(|d| self.fetched.get(*d).is_none_or(|t| now >= t.saturating_add(interval)))
            .take(REFETCH_PER_TIMER)
            .copied()
            .collect();
        for digest in due {
            self.fetched.insert(digest, now);
            out.push(Output::Broadcast { bytes: codec::encode(&Message::Fetch { digest }) });
        }
        if let Some(t) = &self.my_timeout {
            // Still stuck in this round: say it again (links lose messages).
            out.push(Output::Broadcast { bytes: codec::encode(&Message::Timeout(Box::new(t.clone()))) });
            return;
        }
        self.time_out(now, out);
    }

    fn time_out(&mut self, now: TimestampMs, out: &mut Vec<Output>) {
        let round = self.round;
        #[cfg(feature = "mocks")]
        let reported = self.reported_qc(round);
        #[cfg(not(feature = "mocks"))]
        let reported = self.high_qc.clone();
        let Some(me) = &self.me else { return };
        let qc_round = self.high_qc.round;
        // safe_to_timeout (DiemBFT v4): the high QC is the highest seen, the round is not one
        // this validator already gave up, and the round follows its QC or a TC directly.
        let follows = qc_round.saturating_add(1) == round || self.last_tc.as_ref().is_some_and(|tc| tc.round.saturating_add(1) == round);
        if self.my_timeout.is_some()
            || qc_round < self.safety.highest_qc_round
            || round < self.safety.highest_vote_round
            || round <= qc_round
            || !follows
        {
            return;
        }
        self.safety.highest_vote_round = self.safety.highest_vote_round.max(round);
        let message = TimeoutMessage { domain: self.committee.domain(), round, high_qc_round: reported.round };
        let timeout = Timeout {
            round,
            high_qc: reported,
            last_tc: self.last_tc.clone(),
            signer: me.index,
            signature: message.sign(&me.bls).to_bytes().to_vec(),
        };
        let tip = self.high_qc.block;
        self.persist_with(tip, out);
        self.consecutive_timeouts = self.consecutive_timeouts.saturating_add(1);
        self.my_timeout = Some(timeout.clone());
        out.push(Output::Broadcast { bytes: codec::encode(&Message::Timeout(Box::new(timeout.clone()))) });
        self.on_timeout(timeout, now, out);
    }

    /// The uncommitted ancestors of `tip` (itself included) that this node holds, oldest first.
    fn uncommitted_chain(&self, tip: Hash) -> Vec<Proposal> {
        let mut chain = Vec::new();
        let mut at = tip;
        while let Some(k) = self.proposals.get(&at) {
            if k.proposal.header.round <= self.committed.2 || chain.len() >= MAX_PERSISTED_CHAIN {
                break;
            }
            chain.push(k.proposal.clone());
            at = k.proposal.header.parent;
        }
        chain.reverse();
        chain
    }

    fn persist_with(&mut self, tip: Hash, out: &mut Vec<Output>) {
        self.safety.chain = self.uncommitted_chain(tip);
        self.persist(out);
    }

    fn persist(&mut self, out: &mut Vec<Output>) {
        self.safety.high_qc = Some(self.high_qc.clone());
        self.safety.last_tc = self.last_tc.clone();
        out.push(Output::Persist { state: codec::encode(&self.safety) });
    }

    // ---- certificates arriving ----------------------------------------------------------

    fn observe_qc(&mut self, qc: QuorumCertificate, now: TimestampMs, out: &mut Vec<Output>) {
        if qc.round > self.high_qc.round {
            self.high_qc = qc.clone();
            self.safety.highest_qc_round = self.safety.highest_qc_round.max(qc.round);
            self.consecutive_timeouts = 0;
        }
        let digest = qc.block;
        let round = qc.round;
        self.qcs.entry(digest).or_insert(qc);
        self.check_commit(digest);
        self.try_pending_commit(out);
        self.advance_to(round.saturating_add(1), now, out);
    }

    fn observe_tc(&mut self, tc: TimeoutCertificate, now: TimestampMs, out: &mut Vec<Output>) {
        let round = tc.round;
        if self.last_tc.as_ref().is_none_or(|t| t.round < tc.round) {
            self.last_tc = Some(tc);
        }
        self.advance_to(round.saturating_add(1), now, out);
    }

    /// The two-chain rule: if `child` is certified and extends a proposal of the round just
    /// before it, that proposal is decided.
    fn check_commit(&mut self, child: Hash) {
        let (Some(child_qc), Some(c)) = (self.qcs.get(&child), self.proposals.get(&child)) else { return };
        let parent = c.proposal.header.parent;
        let Some(p) = self.proposals.get(&parent) else { return };
        if p.proposal.header.round.saturating_add(1) != c.proposal.header.round || p.proposal.header.round <= self.committed.2 {
            return;
        }
        if self.pending_commit.as_ref().is_some_and(|(_, cert)| cert.header().round >= p.proposal.header.round) {
            return;
        }
        let cert = CommitCertificate::Direct {
            header: p.proposal.header.clone(),
            qc: c.proposal.justify.clone(),
            child: c.proposal.header.clone(),
            child_qc: child_qc.clone(),
        };
        self.pending_commit = Some((parent, cert));
    }

    /// Commits the pending decided proposal and its uncommitted ancestors, oldest first, once
    /// all of them are verified here.
    fn try_pending_commit(&mut self, out: &mut Vec<Output>) {
        let Some((target, _)) = &self.pending_commit else { return };
        let mut chain = vec![*target];
        let mut last = *target;
        loop {
            let Some(k) = self.proposals.get(&last) else { return };
            if !k.verified {
                return;
            }
            let parent = k.proposal.header.parent;
            if parent == self.committed.0 {
                break;
            }
            if !self.proposals.contains_key(&parent) {
                return; // an ancestor is missing; it is being fetched
            }
            chain.push(parent);
            last = parent;
        }
        let Some((_, direct)) = self.pending_commit.take() else { return };
        for (position, digest) in chain.iter().enumerate().rev() {
            let header = self.proposals[digest].proposal.header.clone();
            let cert = match position.checked_sub(1) {
                None => direct.clone(),
                // Its QC is the justify of the next block in the chain (its child).
                Some(child) => {
                    CommitCertificate::Ancestor { header: header.clone(), qc: self.proposals[&chain[child]].proposal.justify.clone() }
                }
            };
            out.push(Output::Commit { block: header.block, certificate: Certificate(codec::encode(&cert)) });
            self.committed_beta = Some(self.proposals[digest].beta);
            self.committed_after_timeout = header.after_timeout;
            self.committed_recent_signers = header.recent_signers.clone();
            self.committed = (*digest, header.block, header.round);
        }
        let floor = self.committed.2.saturating_sub(KEEP_ROUNDS);
        self.proposals.retain(|_, k| k.proposal.header.round >= floor);
        self.qcs.retain(|d, _| self.proposals.contains_key(d));
        self.prune_waiting();
    }

    /// Forgets proposals waiting for a parent that can no longer matter: those at or below the
    /// committed round (their parent never arrived, and they were not committed).
    fn prune_waiting(&mut self) {
        let committed_round = self.committed.2;
        self.waiting.retain(|_, children| {
            children.retain(|c| c.header.round > committed_round);
            !children.is_empty()
        });
        self.fetched.retain(|d, _| self.waiting.contains_key(d));
    }

    /// Takes `committed`, decided with proposal header `h`, as the committed head: what the
    /// next leader election reads from it (its VRF output, whether it followed a timeout, the
    /// signers of its QC). Used at start and after block sync, where the proposal itself is gone.
    fn adopt_committed(&mut self, committed: BlockRef, h: &ProposalHeader) {
        self.committed = (h.digest(), committed, h.round);
        // The header is certified, so a quorum checked its seed against its parent when they
        // voted; here the parent is gone, and the seed is taken from the header.
        self.committed_beta = self
            .members
            .get(h.proposer as usize)
            .and_then(|m| m.vrf.verify(&election_input(h.round.saturating_add(1), &h.parent_seed), &h.election).ok());
        self.committed_after_timeout = h.after_timeout;
        self.committed_recent_signers = h.recent_signers.clone();
    }

    /// Block sync committed up to `committed` (its certificate verified as final by the node):
    /// jump the committed head there and rejoin consensus at the round after the highest QC
    /// the certificate carries.
    fn on_synced(&mut self, committed: BlockRef, certificate: &Certificate, now: TimestampMs, out: &mut Vec<Output>) {
        if committed.height <= self.committed.1.height {
            return;
        }
        let Ok(cert) = CommitCertificate::try_from_slice(&certificate.0) else { return };
        let h = cert.header();
        if h.block != committed {
            return;
        }
        self.adopt_committed(committed, h);
        let newest_qc = match &cert {
            CommitCertificate::Direct { child_qc, .. } => child_qc,
            CommitCertificate::Ancestor { qc, .. } => qc,
        };
        if newest_qc.round > self.high_qc.round {
            self.high_qc = newest_qc.clone();
        }
        self.pending_commit = self.pending_commit.take().filter(|(_, c)| c.header().round > h.round);
        let floor = h.round.saturating_sub(KEEP_ROUNDS);
        self.proposals.retain(|_, k| k.proposal.header.round >= floor);
        self.qcs.retain(|d, _| self.proposals.contains_key(d));
        self.prune_waiting();
        self.advance_to(self.high_qc.round.saturating_add(1), now, out);
        // Blocks above the new head this node already holds may now be committable.
        self.try_pending_commit(out);
    }

    // ---- proposals ----------------------------------------------------------------------

    fn on_proposal(&mut self, from: ValidatorIndex, p: Proposal, now: TimestampMs, out: &mut Vec<Output>) {
        let h = &p.header;
        let digest = h.digest();
        if self.proposals.contains_key(&digest)
            || h.round <= self.committed.2
            || h.proposer as usize >= self.members.len()
            || h.domain != self.committee.domain()
        {
            return;
        }
        if h.parent != p.justify.block || h.election.len() != PROOF_LEN || h.block.height == 0 || h.after_timeout != p.timeout.is_some() {
            return;
        }
        let Ok(sig) = <[u8; 64]>::try_from(p.signature.as_slice()) else { return };
        let identity = self.members[h.proposer as usize].identity;
        let sig_key = VerifiedCache::key(b"ed25519", &digest, &[identity.0.as_slice(), &sig].concat());
        if !self.verified.contains(&sig_key) {
            if identity.verify(&digest.0, &Signature(sig)).is_err() {
                return;
            }
            self.verified.insert(sig_key);
        }
        // Shape of the justification: the previous round's QC, or a TC for the previous round
        // and an older QC. Whether a TC-justified proposal extends a QC high enough to vote for
        // is the vote rule's question alone (`sign_vote_if_safe`): one rule in one place, so
        // that breaking it is visible (a proposal on a stale QC is kept, never voted for).
        match &p.timeout {
            None if p.justify.round.checked_add(1) == Some(h.round) => {}
            Some(tc) if tc.round.checked_add(1) == Some(h.round) && p.justify.round < tc.round => {}
            _ => return,
        }
        if !self.verify_qc(&p.justify) || p.timeout.as_ref().is_some_and(|tc| !self.verify_tc(&tc.clone())) {
            return;
        }
        // Two different proposals signed by one proposer for one round: evidence.
        let key = (h.round, h.proposer);
        match self.seen_proposals.get(&key) {
            Some((other, other_sig)) if other.digest() != digest => {
                let m = Misbehaviour::DoubleProposal {
                    first: other.clone(),
                    first_signature: other_sig.clone(),
                    second: h.clone(),
                    second_signature: p.signature.clone(),
                };
                out.push(Output::Evidence(m.into_evidence(h.proposer)));
            }
            Some(_) => {}
            None => {
                self.seen_proposals.insert(key, (h.clone(), p.signature.clone()));
            }
        }
        // The QC first: entering the round through the TC must already see it as the high QC
        // (a leader builds on its high QC the moment it enters its round).
        let justify = p.justify.clone();
        let tc = p.timeout.clone();
        self.observe_qc(justify, now, out);
        if let Some(tc) = tc {
            self.observe_tc(tc, now, out);
        }
        self.accept(from, p, now, out);
    }

    /// Checks the proposer is the round's leader and asks for the payload to be verified,
    /// or waits for (and fetches) the parent if it is not known yet.
    fn accept(&mut self, from: ValidatorIndex, p: Proposal, now: TimestampMs, out: &mut Vec<Output>) {
        let h = &p.header;
        let parent = h.parent;
        let parent_known = parent == self.committed.0 || self.proposals.get(&parent).is_some_and(|k| k.verified);
        if !parent_known {
            let round = h.round;
            if self.waiting.len() < MAX_WAITING {
                let entry = self.waiting.entry(parent).or_default();
                if entry.len() < 8 && !entry.contains(&p) {
                    entry.push(p);
                }
                // Ask for the parent unless it is here awaiting verification or was asked for
                // recently: every fetch answer carries up to FETCH_DEPTH proposals whose parents
                // may be missing too, so unthrottled fetches grow into a storm (the simulator's
                // random-restart scenario found one).
                let recently = self.fetched.get(&parent).is_some_and(|t| now < t.saturating_add(self.resend_interval()));
                // Peers keep proposals only KEEP_ROUNDS back: a gap wider than that cannot be
                // fetched, and trying floods the network. The node's block sync closes it.
                let bridgeable = round <= self.committed.2.saturating_add(KEEP_ROUNDS);
                if !self.proposals.contains_key(&parent) && !recently && bridgeable {
                    if self.fetched.len() >= MAX_WAITING {
                        self.fetched.clear();
                    }
                    self.fetched.insert(parent, now);
                    out.push(Output::Send { to: from, bytes: codec::encode(&Message::Fetch { digest: parent }) });
                }
            }
            return;
        }
        let expected = if p.timeout.is_none() { self.elected_after(&parent) } else { Some(self.fallback_leader(h.round)) };
        if expected != Some(h.proposer) {
            return;
        }
        if self.seed_of(&parent) != Some(h.parent_seed)
            || self.recent_signers_after(&parent, &p.justify.signers).as_ref() != Some(&h.recent_signers)
        {
            return;
        }
        let vrf = self.members[h.proposer as usize].vrf;
        let alpha = election_input(h.round.saturating_add(1), &h.parent_seed);
        let vrf_key = VerifiedCache::key(b"vrf", &Hash(vrf.0), &[alpha.as_slice(), &h.election].concat());
        let beta = match self.verified.output(&vrf_key).and_then(|b| <[u8; 64]>::try_from(b.as_slice()).ok()) {
            Some(beta) => beta,
            None => {
                let Ok(beta) = vrf.verify(&alpha, &h.election) else { return };
                self.verified.insert_output(vrf_key, beta.to_vec());
                beta
            }
        };
        let digest = h.digest();
        out.push(Output::VerifyPayload { bytes: p.payload.clone() });
        self.verifying.push_back(digest);
        self.proposals.insert(digest, Known { proposal: p, verified: false, beta, empty: false });
        let _ = now;
    }

    fn on_payload_verified(
        &mut self,
        block: Option<BlockRef>,
        parent: Option<Hash>,
        valid: bool,
        empty: bool,
        now: TimestampMs,
        out: &mut Vec<Output>,
    ) {
        // Answers come in request order; match by block to be safe.
        let position =
            block.and_then(|b| self.verifying.iter().position(|d| self.proposals.get(d).is_some_and(|k| k.proposal.header.block == b)));
        let Some(digest) = position.and_then(|i| self.verifying.remove(i)).or_else(|| self.verifying.pop_front()) else { return };
        // The block must be the one proposed, on the parent the proposal names (a faulty
        // proposer could pair a header naming one parent with a valid block on another).
        let ok = valid
            && self
                .proposals
                .get(&digest)
                .is_some_and(|k| Some(k.proposal.header.block) == block && Some(k.proposal.header.parent_block) == parent)
            && self.parent_block_matches(&digest);
        if !ok {
            self.proposals.remove(&digest);
            self.waiting.remove(&digest);
            return;
        }
        if let Some(k) = self.proposals.get_mut(&digest) {
            k.verified = true;
            k.empty = empty;
        }
        self.on_verified(digest, now, out);
    }

    /// The payload's parent block is the block of the proposal it claims to extend.
    fn parent_block_matches(&self, digest: &Hash) -> bool {
        let h = &self.proposals[digest].proposal.header;
        let parent_block = if h.parent == self.committed.0 {
            Some(self.committed.1)
        } else {
            self.proposals.get(&h.parent).map(|k| k.proposal.header.block)
        };
        parent_block.is_some_and(|b| b.hash == h.parent_block && b.height.checked_add(1) == Some(h.block.height))
    }

    fn on_verified(&mut self, digest: Hash, now: TimestampMs, out: &mut Vec<Output>) {
        self.try_vote(digest, now, out);
        self.after_verified(digest, now, out);
    }

    /// What a verified proposal unlocks besides a vote: commits, waiting children, a proposal.
    fn after_verified(&mut self, digest: Hash, now: TimestampMs, out: &mut Vec<Output>) {
        self.check_commit(digest);
        // A QC for this proposal may have arrived before it did (catching up).
        if self.qcs.contains_key(&digest) {
            self.check_commit(digest);
        }
        for child in self.waiting.remove(&digest).unwrap_or_default() {
            let child_digest = child.header.digest();
            let from = child.header.proposer;
            self.accept(from, child, now, out);
            self.check_commit(child_digest);
        }
        self.try_pending_commit(out);
        // A leader that could not build because the certified block was missing can now.
        if let (Some(me), Some(leader)) = (&self.me, self.leader_of_current()) {
            if me.index == leader && self.high_qc.block == digest && self.building.is_none() && self.my_timeout.is_none() {
                self.schedule_proposal(now, out);
            }
        }
    }

    fn try_vote(&mut self, digest: Hash, now: TimestampMs, out: &mut Vec<Output>) {
        if let Some(vote) = self.sign_vote_if_safe(digest) {
            self.persist_with(digest, out);
            self.deliver_vote(vote, now, out);
        }
    }

    /// Signs a vote for the verified proposal `digest` if the voting rule allows it, and raises
    /// the highest voted round. The caller persists before the vote leaves.
    fn sign_vote_if_safe(&mut self, digest: Hash) -> Option<SignedVote> {
        let me = self.me.as_ref()?;
        let k = self.proposals.get(&digest)?;
        let (round, qc_round) = (k.proposal.header.round, k.proposal.justify.round);
        if round != self.round || !k.verified || self.my_timeout.is_some() {
            return None;
        }
        // safe_to_vote (DiemBFT v4 / Jolteon).
        if round <= self.safety.highest_vote_round.max(qc_round) {
            return None;
        }
        let consecutive = qc_round.checked_add(1) == Some(round);
        let extends_tc =
            k.proposal.timeout.as_ref().is_some_and(|tc| tc.round.checked_add(1) == Some(round) && qc_round >= tc.max_high_qc_round());
        if !consecutive && !extends_tc {
            return None;
        }
        let next_leader = self.elected_after(&digest)?;
        let signature = me.bls.sign_vote(&VoteMessage { domain: self.committee.domain(), round, block: digest }).to_bytes().to_vec();
        self.safety.highest_vote_round = round;
        Some(SignedVote { round, digest, next_leader, signature })
    }

    /// Sends a persisted vote to the next leader (or counts it, if that is this validator).
    fn deliver_vote(&mut self, vote: SignedVote, now: TimestampMs, out: &mut Vec<Output>) {
        let Some(index) = self.me.as_ref().map(|m| m.index) else { return };
        let SignedVote { round, digest, next_leader, signature } = vote;
        if next_leader == index {
            self.on_vote(round, digest, index, signature, now, out);
        } else {
            let bytes = codec::encode(&Message::Vote { round, digest, voter: index, signature });
            out.push(Output::Send { to: next_leader, bytes: bytes.clone() });
            self.my_vote = Some((next_leader, bytes));
        }
    }

    fn on_vote(&mut self, round: u64, digest: Hash, voter: ValidatorIndex, signature: Vec<u8>, now: TimestampMs, out: &mut Vec<Output>) {
        if round.saturating_add(1) < self.round
            || round > self.round.saturating_add(MAX_FUTURE_ROUNDS)
            || voter as usize >= self.members.len()
            || round <= self.committed.2
        {
            return;
        }
        let Ok(sig) = BlsSignature::from_bytes(&signature) else { return };
        match self.seen_votes.get(&(round, voter)) {
            Some((other, other_sig)) if *other != digest => {
                // Two votes for one round: evidence only if both verify (otherwise anyone could
                // frame a validator). A first vote that does not verify is replaced.
                let key = &self.committee.keys[voter as usize];
                let domain = self.committee.domain();
                let first =
                    BlsSignature::from_bytes(other_sig).is_ok_and(|s| s.verify_vote(&VoteMessage { domain, round, block: *other }, key));
                let second = sig.verify_vote(&VoteMessage { domain, round, block: digest }, key);
                if first && second {
                    let m = Misbehaviour::DoubleVote {
                        round,
                        first: *other,
                        first_signature: other_sig.clone(),
                        second: digest,
                        second_signature: signature.clone(),
                    };
                    out.push(Output::Evidence(m.into_evidence(voter)));
                }
                if first || !second {
                    return;
                }
                self.seen_votes.insert((round, voter), (digest, signature.clone()));
            }
            Some(_) => {}
            None => {
                self.seen_votes.insert((round, voter), (digest, signature.clone()));
            }
        }
        let committee = self.committee.clone();
        let collector = self
            .votes
            .entry((round, digest))
            .or_insert_with(|| VoteCollector::new(&committee, VoteMessage { domain: committee.domain(), round, block: digest }));
        let Ok(outcome) = collector.add(voter, sig) else { return };
        for forged in outcome.forged {
            self.seen_votes.remove(&(round, forged));
        }
        if let Some(qc) = outcome.certificate {
            self.formed_here.insert(VerifiedCache::key(b"qc", &self.committee_id, &codec::encode(&qc)));
            self.observe_qc(qc, now, out);
        }
    }

    fn on_timeout(&mut self, t: Timeout, now: TimestampMs, out: &mut Vec<Output>) {
        if t.signer as usize >= self.members.len() || t.round.saturating_add(1) < self.round || t.high_qc.round >= t.round {
            return;
        }
        if t.high_qc.round > self.high_qc.round {
            if !self.verify_qc(&t.high_qc) {
                return;
            }
            self.observe_qc(t.high_qc.clone(), now, out);
        }
        if let Some(tc) = t.last_tc.as_ref().filter(|tc| tc.round >= self.round) {
            if self.verify_tc(tc) {
                self.observe_tc(tc.clone(), now, out);
            }
        }
        if t.round > self.round.saturating_add(MAX_FUTURE_ROUNDS) {
            return;
        }
        let Ok(sig) = BlsSignature::from_bytes(&t.signature) else { return };
        let committee = self.committee.clone();
        let collector = self.timeouts.entry(t.round).or_insert_with(|| TimeoutCollector::new(&committee, t.round));
        let Ok((tc, _forged)) = collector.add(t.signer, t.high_qc.round, sig) else { return };
        // More than a third of the stake gave up on this round: at least one honest validator
        // did, so join it (otherwise a TC might never form).
        let amplify = collector.stake().saturating_mul(3) > self.committee_total() && t.round == self.round && self.my_timeout.is_none();
        if let Some(tc) = tc {
            self.observe_tc(tc, now, out);
        } else if amplify {
            self.time_out(now, out);
        }
    }

    /// Answers a fetch with the proposal and its ancestors, oldest first, so a node that fell
    /// behind catches up in one round trip per FETCH_DEPTH blocks — within the asking peer's
    /// byte budget for the current second.
    fn on_fetch(&mut self, from: ValidatorIndex, digest: Hash, now: TimestampMs, out: &mut Vec<Output>) {
        let Some(served) = self.fetch_served.get_mut(from as usize) else { return };
        if now >= served.0.saturating_add(1_000) {
            *served = (now, 0);
        }
        let mut chain = Vec::new();
        let mut at = digest;
        while let Some(k) = self.proposals.get(&at) {
            if chain.len() >= FETCH_DEPTH {
                break;
            }
            chain.push(&k.proposal);
            at = k.proposal.header.parent;
        }
        // The newest FETCH_DEPTH are found; the oldest are sent first, as far as the budget goes.
        for p in chain.into_iter().rev() {
            let bytes = codec::encode(&Message::Proposal(Box::new(p.clone())));
            if served.1.saturating_add(bytes.len()) > FETCH_ANSWER_BYTES_PER_SECOND {
                break;
            }
            served.1 += bytes.len();
            out.push(Output::Send { to: from, bytes });
        }
    }

    fn committee_total(&self) -> Amount {
        self.stakes.iter().fold(0u128, |a, b| a.saturating_add(*b))
    }
}

impl ConsensusEngine for HotStuffEngine {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn handle(&mut self, now: TimestampMs, input: Input, out: &mut Vec<Output>) {
        match input {
            Input::Start { committed, certificate, safety_state } => {
                if committed.height == 0 || certificate.0.is_empty() {
                    let g = Hash::digest(b"aether/hotstuff-genesis/v1", &committed.hash.0);
                    self.genesis_digest = Some(g);
                    self.committed = (g, committed, 0);
                    self.high_qc = QuorumCertificate { round: 0, block: g, signers: vec![], signature: vec![] };
                } else if let Ok(cert) = CommitCertificate::try_from_slice(&certificate.0) {
                    self.adopt_committed(committed, cert.header());
                    self.high_qc = cert.qc().clone();
                }
                let restarted = safety_state.is_some();
                let decoded = safety_state.as_deref().map(SafetyState::try_from_slice);
                if let Some(Err(_)) = decoded {
                    // An unreadable safety state must not be mistaken for none: this validator
                    // could sign a vote conflicting with one it already sent. It follows the
                    // chain but never signs again (until an operator resets it knowingly).
                    self.safety.highest_vote_round = u64::MAX;
                }
                if let Some(state) = decoded.and_then(Result::ok) {
                    if let Some(qc) = state.high_qc.clone().filter(|qc| qc.round > self.high_qc.round) {
                        self.high_qc = qc;
                    }
                    self.last_tc = state.last_tc.clone();
                    self.safety = state;
                }
                let entry = self.high_qc.round.max(self.last_tc.as_ref().map_or(0, |t| t.round)).saturating_add(1);
                if restarted {
                    self.restart_round = entry;
                }
                self.advance_to(entry, now, out);
                // Re-verify the uncommitted blocks this validator persisted (the ledger lost them).
                for p in std::mem::take(&mut self.safety.chain) {
                    if p.header.round > self.committed.2 {
                        let proposer = p.header.proposer;
                        self.accept(proposer, p, now, out);
                    }
                }
            }
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
                    Message::Fetch { digest } => self.on_fetch(from, digest, now, out),
                }
            }
            Input::Timer { id: ROUND_TIMER } => self.on_round_timer(now, out),
            Input::Timer { id: RESEND_TIMER } => self.on_resend_timer(now, out),
            Input::Timer { id: PROPOSE_TIMER } => {
                if self.me.as_ref().map(|m| m.index) == self.leader_of_current() && self.my_timeout.is_none() {
                    self.propose(out);
                }
            }
            Input::TransactionsWaiting => {
                self.transactions_waiting = true;
                // A leader waiting for the heartbeat proposes now (after the minimum interval).
                let leading = self.me.as_ref().map(|m| m.index) == self.leader_of_current();
                if leading && self.building.is_none() && self.my_timeout.is_none() && self.round > self.safety.highest_proposed_round {
                    self.schedule_proposal(now, out);
                }
            }
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
        let identities: Vec<PublicKey> = self.members.iter().map(|m| m.identity).collect();
        crate::evidence::check(evidence, &identities, &self.committee).map_err(ConsensusError::BadEvidence)
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
        let CommitCertificate::Direct { child, child_qc, .. } = &cert else {
            // Certified, but decided only through a descendant: not a proof of finality alone.
            return Err(bad(
                "an ancestor certificate shows the block certified, not decided: prove it final with a directly decided descendant",
            ));
        };
        if child.parent != header.digest() || Some(child.round) != header.round.checked_add(1) || child.domain != header.domain {
            return Err(bad("the child is not a direct successor in the next round"));
        }
        if child_qc.block != child.digest() || child_qc.round != child.round {
            return Err(bad("the child QC does not certify the child"));
        }
        cert.qc().verify(&self.committee).map_err(|e| bad(&e.to_string()))?;
        child_qc.verify(&self.committee).map_err(|e| bad(&e.to_string()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aether_api::consensus::{LocalValidator, Validator, ValidatorSet};

    fn identity(i: u8) -> Keypair {
        Keypair::from_seed([0x70 + i; 32])
    }

    fn engine(me: u8) -> HotStuffEngine {
        engine_on("t", me)
    }

    fn engine_on(chain: &str, me: u8) -> HotStuffEngine {
        let validators = ValidatorSet::new(
            (0..4)
                .map(|i| {
                    let k = identity(i);
                    Validator {
                        name: format!("v{i}"),
                        identity: k.public(),
                        address: k.address(),
                        consensus_key: HotStuffEngine::consensus_key(&k),
                        stake: 1,
                    }
                })
                .collect(),
        );
        let ctx = EngineContext {
            chain_id: chain.into(),
            genesis: Hash::digest(b"t", b"genesis"),
            validators,
            local: Some(LocalValidator { index: me as u32, identity: identity(me) }),
        };
        HotStuffEngine::from_context(&ctx, HotStuffSettings::default()).unwrap()
    }

    /// A well-formed round-1 proposal by its leader (validator 1: the fallback leader of
    /// round 1) on genesis.
    fn round_one_proposal(genesis: &BlockRef, block: BlockRef) -> Vec<u8> {
        round_one_proposal_on("t", genesis, block)
    }

    fn round_one_proposal_on(chain: &str, genesis: &BlockRef, block: BlockRef) -> Vec<u8> {
        let g = Hash::digest(b"aether/hotstuff-genesis/v1", &genesis.hash.0);
        let (_, vrf) = derive_keys(&identity(1));
        let (election, _) = vrf.prove(&election_input(2, &g));
        let header = ProposalHeader {
            domain: crate::certificate::signing_domain(chain, &genesis.hash, 0),
            round: 1,
            block,
            parent_block: genesis.hash,
            parent: g,
            proposer: 1,
            election: election.to_vec(),
            after_timeout: false,
            parent_seed: g,
            // The genesis QC's (empty) signer bitmap: the window of a first proposal.
            recent_signers: vec![vec![]],
        };
        let signature = identity(1).sign(&header.digest().0).0.to_vec();
        let justify = QuorumCertificate { round: 0, block: g, signers: vec![], signature: vec![] };
        borsh::to_vec(&Message::Proposal(Box::new(Proposal { header, justify, timeout: None, payload: vec![1, 2, 3], signature }))).unwrap()
    }

    fn started(me: u8) -> (HotStuffEngine, BlockRef) {
        let mut e = engine(me);
        let genesis = BlockRef { hash: Hash::digest(b"t", b"genesis"), height: 0 };
        let mut out = vec![];
        e.handle(0, Input::Start { committed: genesis, certificate: Certificate::default(), safety_state: None }, &mut out);
        (e, genesis)
    }

    #[test]
    fn votes_only_for_a_block_on_the_parent_its_proposal_names() {
        let block = BlockRef { hash: Hash::digest(b"t", b"block 1"), height: 1 };
        for (parent_reported, votes) in [(None, true), (Some(Hash::digest(b"t", b"elsewhere")), false)] {
            let (mut e, genesis) = started(0);
            let mut out = vec![];
            e.handle(10, Input::Message { from: 1, bytes: round_one_proposal(&genesis, block) }, &mut out);
            assert!(out.iter().any(|o| matches!(o, Output::VerifyPayload { bytes } if bytes == &vec![1, 2, 3])), "{out:?}");
            out.clear();
            let parent = parent_reported.unwrap_or(genesis.hash);
            e.handle(11, Input::PayloadVerified { block: Some(block), parent: Some(parent), valid: true, empty: false }, &mut out);
            let persisted = out.iter().position(|o| matches!(o, Output::Persist { .. }));
            let voted = out.iter().position(|o| matches!(o, Output::Send { .. }));
            if votes {
                // The vote goes to the next leader — which may be this validator (then no Send).
                assert!(persisted.is_some() && voted.is_none_or(|v| Some(v) > persisted), "persist, then vote: {out:?}");
                assert_eq!(e.safety.highest_vote_round, 1);
            } else {
                assert!(persisted.is_none() && voted.is_none(), "no vote for a block on another parent: {out:?}");
                assert_eq!(e.safety.highest_vote_round, 0);
            }
        }
    }

    #[test]
    fn refuses_proposals_with_broken_signatures_and_garbage_messages() {
        let block = BlockRef { hash: Hash::digest(b"t", b"block 1"), height: 1 };
        let (mut e, genesis) = started(0);
        let mut bytes = round_one_proposal(&genesis, block);
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let mut out = vec![];
        e.handle(10, Input::Message { from: 1, bytes }, &mut out);
        assert!(!out.iter().any(|o| matches!(o, Output::VerifyPayload { .. })), "a broken signature is refused: {out:?}");
        // Garbage of every length up to 300 bytes never panics and never asks for work.
        for n in 0..300 {
            out.clear();
            e.handle(11, Input::Message { from: 2, bytes: vec![0x5a; n] }, &mut out);
            assert!(out.is_empty(), "{n} bytes of garbage: {out:?}");
        }
    }

    #[test]
    fn an_unreadable_safety_state_never_signs() {
        let mut e = engine(0);
        let genesis = BlockRef { hash: Hash::digest(b"t", b"genesis"), height: 0 };
        let mut out = vec![];
        e.handle(0, Input::Start { committed: genesis, certificate: Certificate::default(), safety_state: Some(vec![0xff; 3]) }, &mut out);
        let block = BlockRef { hash: Hash::digest(b"t", b"block 1"), height: 1 };
        out.clear();
        e.handle(10, Input::Message { from: 1, bytes: round_one_proposal(&genesis, block) }, &mut out);
        out.clear();
        e.handle(11, Input::PayloadVerified { block: Some(block), parent: Some(genesis.hash), valid: true, empty: false }, &mut out);
        assert!(!out.iter().any(|o| matches!(o, Output::Send { .. } | Output::Persist { .. })), "{out:?}");
        out.clear();
        e.handle(5_000, Input::Timer { id: ROUND_TIMER }, &mut out);
        assert!(!out.iter().any(|o| matches!(o, Output::Persist { .. })), "no timeout is signed either: {out:?}");
    }

    fn signed_proposal(header: ProposalHeader, justify: QuorumCertificate, timeout: Option<TimeoutCertificate>) -> Vec<u8> {
        let signature = identity(header.proposer as u8).sign(&header.digest().0).0.to_vec();
        borsh::to_vec(&Message::Proposal(Box::new(Proposal { header, justify, timeout, payload: vec![1], signature }))).unwrap()
    }

    #[test]
    fn a_round_zero_qc_certifies_only_genesis_and_names_no_signers() {
        let (mut e, _) = started(0);
        let genesis = e.genesis_digest.unwrap();
        let qc = |block, signers: Vec<u8>| QuorumCertificate { round: 0, block, signers, signature: vec![] };
        assert!(e.verify_qc(&qc(genesis, vec![])));
        assert!(!e.verify_qc(&qc(Hash::digest(b"test", b"another block"), vec![])), "round 0 certifies genesis only");
        assert!(!e.verify_qc(&qc(genesis, vec![0b111])), "the genesis QC has no signers");
    }

    #[test]
    fn rounds_near_u64_max_from_the_wire_never_panic() {
        let (mut e, genesis) = started(0);
        let g = Hash::digest(b"aether/hotstuff-genesis/v1", &genesis.hash.0);
        let (bls, _) = derive_keys(&identity(1));
        let mut out = vec![];
        for round in [u64::MAX, u64::MAX - 1] {
            let digest = Hash::digest(b"t", b"any");
            let signature = bls.sign_vote(&VoteMessage { domain: e.committee.domain(), round, block: digest }).to_bytes().to_vec();
            e.handle(
                1,
                Input::Message { from: 1, bytes: borsh::to_vec(&Message::Vote { round, digest, voter: 1, signature }).unwrap() },
                &mut out,
            );
            let high_qc = QuorumCertificate { round: round - 1, block: digest, signers: vec![0b111], signature: vec![0; 96] };
            let timeout = Timeout { round, high_qc, last_tc: None, signer: 1, signature: vec![0; 96] };
            e.handle(2, Input::Message { from: 1, bytes: borsh::to_vec(&Message::Timeout(Box::new(timeout))).unwrap() }, &mut out);
            // A proposal whose proposer signature is valid, justified by a QC of round u64::MAX.
            let header = ProposalHeader {
                domain: e.committee.domain(),
                round,
                block: BlockRef { hash: digest, height: 1 },
                parent_block: genesis.hash,
                parent: g,
                proposer: 1,
                election: vec![0; PROOF_LEN],
                after_timeout: false,
                parent_seed: g,
                recent_signers: vec![],
            };
            let justify = QuorumCertificate { round: u64::MAX, block: g, signers: vec![0b111], signature: vec![0; 96] };
            e.handle(3, Input::Message { from: 1, bytes: signed_proposal(header.clone(), justify.clone(), None) }, &mut out);
            let tc = TimeoutCertificate { round: u64::MAX, groups: vec![(0, vec![0b111])], signature: vec![0; 96] };
            let header = ProposalHeader { after_timeout: true, ..header };
            e.handle(4, Input::Message { from: 1, bytes: signed_proposal(header, justify, Some(tc)) }, &mut out);
        }
        assert!(!out.iter().any(|o| matches!(o, Output::VerifyPayload { .. } | Output::Persist { .. })), "{out:?}");
        assert_eq!(e.round(), 1, "nothing from the wire moved the round");
    }

    #[test]
    fn signatures_are_bound_to_the_chain() {
        // Two chains with the same validator keys (a respin, a testnet): nothing signed on one
        // is valid on the other.
        let (a, b) = (engine_on("chain-a", 0), engine_on("chain-b", 0));
        let keys: Vec<BlsSecretKey> = (0..4).map(|i| derive_keys(&identity(i)).0).collect();
        let mut timeouts = TimeoutCollector::new(&a.committee, 5);
        let mut tc = None;
        for (i, key) in keys.iter().enumerate().take(3) {
            let signature = TimeoutMessage { domain: a.committee.domain(), round: 5, high_qc_round: 2 }.sign(key);
            tc = timeouts.add(i as u32, 2, signature).unwrap().0;
        }
        let tc = tc.expect("a quorum of chain A's timeouts");
        assert!(tc.verify(&a.committee).is_ok());
        assert!(tc.verify(&b.committee).is_err(), "a timeout certificate of chain A is refused on chain B");
        let vote = VoteMessage { domain: a.committee.domain(), round: 5, block: Hash::digest(b"t", b"block") };
        let mut votes = VoteCollector::new(&a.committee, vote);
        let mut qc = None;
        for (i, key) in keys.iter().enumerate().take(3) {
            qc = votes.add(i as u32, key.sign_vote(&vote)).unwrap().certificate;
        }
        let qc = qc.expect("a quorum of chain A's votes");
        assert!(qc.verify(&a.committee).is_ok());
        assert!(qc.verify(&b.committee).is_err(), "a quorum certificate of chain A is refused on chain B");

        // A proposal signed on chain A, on the same genesis block, is refused on chain B.
        let block = BlockRef { hash: Hash::digest(b"t", b"block 1"), height: 1 };
        let genesis = BlockRef { hash: Hash::digest(b"t", b"genesis"), height: 0 };
        for (mut e, accepted) in [(engine_on("chain-a", 0), true), (engine_on("chain-b", 0), false)] {
            let mut out = vec![];
            e.handle(0, Input::Start { committed: genesis, certificate: Certificate::default(), safety_state: None }, &mut out);
            out.clear();
            let proposal = round_one_proposal_on("chain-a", &genesis, block);
            e.handle(10, Input::Message { from: 1, bytes: proposal }, &mut out);
            let verifies = out.iter().any(|o| matches!(o, Output::VerifyPayload { .. }));
            assert_eq!(verifies, accepted, "{out:?}");
        }
    }

    #[test]
    fn a_leader_persists_its_proposal_before_sending_it_and_never_proposes_twice_in_a_round() {
        // Validator 1 leads round 1.
        let (mut e, genesis) = started(1);
        let mut out = vec![];
        e.handle(0, Input::Timer { id: PROPOSE_TIMER }, &mut out);
        let block = BlockRef { hash: Hash::digest(b"t", b"block 1"), height: 1 };
        out.clear();
        e.handle(
            1,
            Input::PayloadBuilt { payload: aether_api::consensus::Payload { block, parent: genesis.hash, bytes: vec![7], empty: false } },
            &mut out,
        );
        let is_proposal =
            |o: &Output| matches!(o, Output::Broadcast { bytes } if matches!(Message::try_from_slice(bytes), Ok(Message::Proposal(_))));
        let sent = out.iter().position(is_proposal).expect("the leader proposes");
        let persisted = out.iter().position(|o| matches!(o, Output::Persist { .. }));
        assert!(persisted.is_some_and(|p| p < sent), "persisted before the proposal leaves: {out:?}");
        let Some(Output::Persist { state }) = persisted.map(|p| out[p].clone()) else { unreachable!() };

        // A crash right after the persist: restarted in round 1, it never builds another block
        // for the round it proposed in.
        let mut restarted = engine(1);
        out.clear();
        restarted.handle(5, Input::Start { committed: genesis, certificate: Certificate::default(), safety_state: Some(state) }, &mut out);
        restarted.handle(6, Input::Timer { id: PROPOSE_TIMER }, &mut out);
        assert_eq!(restarted.round(), 1);
        assert!(!out.iter().any(|o| matches!(o, Output::BuildPayload { .. })), "{out:?}");
        let other = BlockRef { hash: Hash::digest(b"t", b"another block 1"), height: 1 };
        restarted.handle(
            7,
            Input::PayloadBuilt {
                payload: aether_api::consensus::Payload { block: other, parent: genesis.hash, bytes: vec![8], empty: false },
            },
            &mut out,
        );
        assert!(!out.iter().any(is_proposal), "no second proposal in round 1: {out:?}");
    }

    #[test]
    fn far_future_votes_and_timeouts_hold_bounded_memory() {
        let (mut e, genesis) = started(0);
        let g = Hash::digest(b"aether/hotstuff-genesis/v1", &genesis.hash.0);
        // One real signature's bytes reused: it decodes, and votes are checked only at a quorum.
        let (bls, _) = derive_keys(&identity(1));
        let signature = bls.sign_vote(&VoteMessage { domain: e.committee.domain(), round: 2, block: g }).to_bytes().to_vec();
        let mut out = vec![];
        for round in 2..5_000u64 {
            let digest = Hash::digest(b"t", &round.to_be_bytes());
            let vote = Message::Vote { round, digest, voter: 1, signature: signature.clone() };
            e.handle(1, Input::Message { from: 1, bytes: borsh::to_vec(&vote).unwrap() }, &mut out);
            let high_qc = QuorumCertificate { round: 0, block: g, signers: vec![], signature: vec![] };
            let timeout = Timeout { round, high_qc, last_tc: None, signer: 1, signature: signature.clone() };
            e.handle(2, Input::Message { from: 1, bytes: borsh::to_vec(&Message::Timeout(Box::new(timeout))).unwrap() }, &mut out);
        }
        let bound = MAX_FUTURE_ROUNDS as usize + 2;
        assert!(e.votes.len() <= bound && e.seen_votes.len() <= bound, "{} vote collectors", e.votes.len());
        assert!(e.timeouts.len() <= bound, "{} timeout collectors", e.timeouts.len());
        assert!(!e.votes.is_empty() && !e.timeouts.is_empty(), "votes and timeouts near the round are still collected");
    }

    #[test]
    fn fetch_answers_are_bounded_per_peer_per_second() {
        let (mut e, genesis) = started(0);
        let g = Hash::digest(b"aether/hotstuff-genesis/v1", &genesis.hash.0);
        // 40 chained proposals of 4 MiB each (built by hand: only the fetch path reads them).
        let mut parent = g;
        for round in 1..=40u64 {
            let header = ProposalHeader {
                domain: e.committee.domain(),
                round,
                block: BlockRef { hash: Hash::digest(b"t", &round.to_be_bytes()), height: round },
                parent_block: Hash::ZERO,
                parent,
                proposer: 1,
                election: vec![0; PROOF_LEN],
                after_timeout: false,
                parent_seed: Hash::ZERO,
                recent_signers: vec![],
            };
            parent = header.digest();
            let justify = QuorumCertificate { round: round - 1, block: header.parent, signers: vec![], signature: vec![] };
            let proposal = Proposal { header, justify, timeout: None, payload: vec![0; 4 << 20], signature: vec![] };
            e.proposals.insert(parent, Known { proposal, verified: true, beta: [0; 64], empty: false });
        }
        let fetch = borsh::to_vec(&Message::Fetch { digest: parent }).unwrap();
        let sent = |out: &[Output]| out.iter().map(|o| if let Output::Send { bytes, .. } = o { bytes.len() } else { 0 }).sum::<usize>();
        let mut out = vec![];
        for _ in 0..100 {
            e.handle(10_000, Input::Message { from: 2, bytes: fetch.clone() }, &mut out);
        }
        let first_second = sent(&out);
        assert!(first_second > 0 && first_second <= FETCH_ANSWER_BYTES_PER_SECOND, "{first_second} bytes in one second");
        // Another peer has its own budget; the same peer gets more a second later.
        out.clear();
        e.handle(10_000, Input::Message { from: 3, bytes: fetch.clone() }, &mut out);
        assert!(sent(&out) > 0);
        out.clear();
        e.handle(11_000, Input::Message { from: 2, bytes: fetch }, &mut out);
        assert!(sent(&out) > 0);
    }

    #[test]
    fn proposals_waiting_for_a_parent_are_forgotten_once_committed_past() {
        let (mut e, genesis) = started(0);
        let waiting = |round: u64| Proposal {
            header: ProposalHeader {
                domain: e.committee.domain(),
                round,
                block: BlockRef { hash: Hash::digest(b"w", &round.to_be_bytes()), height: round },
                parent_block: Hash::ZERO,
                parent: Hash::digest(b"missing", &round.to_be_bytes()),
                proposer: 1,
                election: vec![],
                after_timeout: false,
                parent_seed: Hash::ZERO,
                recent_signers: vec![],
            },
            justify: QuorumCertificate { round: round - 1, block: Hash::ZERO, signers: vec![], signature: vec![] },
            timeout: None,
            payload: vec![],
            signature: vec![],
        };
        for round in [5u64, 50, 500] {
            let p = waiting(round);
            e.waiting.insert(p.header.parent, vec![p]);
            e.fetched.insert(Hash::digest(b"missing", &round.to_be_bytes()), 0);
        }
        // Block sync commits up to a block of round 100.
        let mut header = waiting(100).header;
        header.parent = genesis.hash;
        let block = header.block;
        let qc = QuorumCertificate { round: 100, block: header.digest(), signers: vec![], signature: vec![] };
        let certificate = Certificate(borsh::to_vec(&CommitCertificate::Ancestor { header, qc }).unwrap());
        let mut out = vec![];
        e.handle(5, Input::Synced { committed: block, certificate }, &mut out);
        let rounds: Vec<u64> = e.waiting.values().flatten().map(|p| p.header.round).collect();
        assert_eq!(rounds, vec![500], "only the proposal above the committed round still waits");
        assert_eq!(e.fetched.len(), 1);
    }

    #[test]
    fn an_idle_leader_waits_a_heartbeat_and_transactions_cut_the_wait() {
        // Validator 1 leads round 1 of an idle chain: it waits a heartbeat after entering.
        let settings = HotStuffSettings::default();
        let mut e = engine(1);
        let genesis = BlockRef { hash: Hash::digest(b"t", b"genesis"), height: 0 };
        let mut out = vec![];
        e.handle(0, Input::Start { committed: genesis, certificate: Certificate::default(), safety_state: None }, &mut out);
        assert!(out.contains(&Output::SetTimer { id: PROPOSE_TIMER, at_ms: settings.heartbeat_ms }), "{out:?}");
        assert!(!out.iter().any(|o| matches!(o, Output::BuildPayload { .. })), "no block before the heartbeat: {out:?}");
        assert!(
            out.contains(&Output::SetTimer { id: ROUND_TIMER, at_ms: settings.heartbeat_ms + settings.base_timeout_ms }),
            "an idle round is given the heartbeat before anyone times out: {out:?}"
        );
        // Transactions arrive: it builds at once.
        out.clear();
        e.handle(20, Input::TransactionsWaiting, &mut out);
        assert!(out.iter().any(|o| matches!(o, Output::BuildPayload { .. })), "transactions cut the wait: {out:?}");
    }
}
