//! The block tree: the proposals this validator holds above its committed head, the QCs it saw
//! for them, proposals waiting for a missing parent, and fetching (asking peers for missing
//! proposals, answering their asks within a byte budget).
//!
//! It decides nothing: which proposal to vote for is the safety rules' question, which is
//! decided the commit rule's. What it guarantees is bounded memory: proposals are kept
//! `KEEP_ROUNDS` below the committed round, at most `MAX_WAITING` wait for a parent and are
//! forgotten once the chain commits past them, and fetch answers stay within
//! `FETCH_ANSWER_BYTES_PER_SECOND` per peer.

use std::collections::{BTreeMap, HashMap};

use aether_api::consensus::{BlockRef, Output, ValidatorIndex};
use aether_primitives::codec;
use aether_primitives::types::{Hash, TimestampMs};

use crate::certificate::QuorumCertificate;
use crate::messages::{Message, Proposal, ProposalHeader};

use super::safety::MAX_PERSISTED_CHAIN;

/// Proposals kept below the committed round, to serve peers fetching ancestors.
pub(super) const KEEP_ROUNDS: u64 = 256;
/// Proposals waiting for an ancestor, at most.
pub(super) const MAX_WAITING: usize = 1_024;
/// Proposals sent in answer to one fetch, at most.
const FETCH_DEPTH: usize = 32;
/// Proposal bytes sent to one peer in answer to its fetches, per second of (input) time: a
/// 40-byte fetch can ask for FETCH_DEPTH proposals of up to MAX_MESSAGE_BYTES each.
pub(super) const FETCH_ANSWER_BYTES_PER_SECOND: usize = 32 * 1024 * 1024;
/// Missing proposals asked for again at each round timer, at most.
const REFETCH_PER_TIMER: usize = 16;

pub(super) struct Known {
    pub(super) proposal: Proposal,
    /// The payload executed to the roots it claims on its parent.
    pub(super) verified: bool,
    /// The proposer's verified VRF output (elects the leader of the next round).
    pub(super) beta: [u8; 64],
    /// The block carries no transactions and no evidence (known once verified).
    pub(super) empty: bool,
}

/// The last committed proposal, as far as the next election needs it (at start and after block
/// sync the proposal itself is gone; only its header was seen).
pub(super) struct Committed {
    pub(super) digest: Hash,
    pub(super) block: BlockRef,
    pub(super) round: u64,
    pub(super) beta: Option<[u8; 64]>,
    pub(super) after_timeout: bool,
    pub(super) recent_signers: Vec<Vec<u8>>,
}

pub(super) struct BlockTree {
    pub(super) proposals: HashMap<Hash, Known>,
    pub(super) qcs: HashMap<Hash, QuorumCertificate>,
    /// Proposals whose parent has not arrived, by that parent (ordered: the re-fetch walks it,
    /// and the order must not depend on the process's hash seed).
    pub(super) waiting: BTreeMap<Hash, Vec<Proposal>>,
    /// When each missing proposal was last asked for (fetches are throttled).
    pub(super) fetched: HashMap<Hash, TimestampMs>,
    /// Per peer: start of its current one-second window and the fetch-answer bytes sent in it.
    fetch_served: Vec<(TimestampMs, usize)>,
    pub(super) committed: Committed,
    /// The digest standing for the genesis block (the root every chain starts from).
    pub(super) genesis: Option<Hash>,
}

/// The digest standing for the proposal of an engine's genesis block (the block it started
/// on): what the round-0 QC certifies.
pub(super) fn genesis_digest(block: &Hash) -> Hash {
    Hash::digest(b"aether/hotstuff-genesis/v1", &block.0)
}

impl BlockTree {
    pub(super) fn new(validators: usize) -> BlockTree {
        BlockTree {
            proposals: HashMap::new(),
            qcs: HashMap::new(),
            waiting: BTreeMap::new(),
            fetched: HashMap::new(),
            fetch_served: vec![(0, 0); validators],
            committed: Committed {
                digest: Hash::ZERO,
                block: BlockRef { hash: Hash::ZERO, height: 0 },
                round: 0,
                beta: None,
                after_timeout: false,
                recent_signers: Vec::new(),
            },
            genesis: None,
        }
    }

    /// Roots the tree at the genesis block; returns the digest that stands for it.
    pub(super) fn start_at_genesis(&mut self, genesis: BlockRef) -> Hash {
        let digest = genesis_digest(&genesis.hash);
        self.genesis = Some(digest);
        self.committed.digest = digest;
        self.committed.block = genesis;
        self.committed.round = 0;
        digest
    }

    pub(super) fn is_genesis(&self, digest: &Hash) -> bool {
        Some(*digest) == self.genesis
    }

    /// Takes `committed`, decided with proposal header `h` whose VRF output is `beta`, as the
    /// committed head (at start and after block sync, where the proposal itself is gone).
    pub(super) fn adopt_committed(&mut self, committed: BlockRef, h: &ProposalHeader, beta: Option<[u8; 64]>) {
        self.committed = Committed {
            digest: h.digest(),
            block: committed,
            round: h.round,
            beta,
            after_timeout: h.after_timeout,
            recent_signers: h.recent_signers.clone(),
        };
    }

    /// Moves the committed head to the held proposal `digest`.
    pub(super) fn commit(&mut self, digest: Hash) {
        let Some(k) = self.proposals.get(&digest) else { return };
        let h = &k.proposal.header;
        self.committed = Committed {
            digest,
            block: h.block,
            round: h.round,
            beta: Some(k.beta),
            after_timeout: h.after_timeout,
            recent_signers: h.recent_signers.clone(),
        };
    }

    /// The block of `digest` if a child may be built or accepted on it: the committed head, or
    /// a verified proposal.
    pub(super) fn verified_block(&self, digest: &Hash) -> Option<BlockRef> {
        if *digest == self.committed.digest {
            return Some(self.committed.block);
        }
        self.proposals.get(digest).filter(|k| k.verified).map(|k| k.proposal.header.block)
    }

    /// The payload's parent block is the block of the proposal it claims to extend.
    pub(super) fn parent_block_matches(&self, digest: &Hash) -> bool {
        let Some(k) = self.proposals.get(digest) else { return false };
        let h = &k.proposal.header;
        let parent_block = if h.parent == self.committed.digest {
            Some(self.committed.block)
        } else {
            self.proposals.get(&h.parent).map(|k| k.proposal.header.block)
        };
        parent_block.is_some_and(|b| b.hash == h.parent_block && b.height.checked_add(1) == Some(h.block.height))
    }

    /// The uncommitted ancestors of `tip` (itself included) that this node holds, oldest
    /// first, `MAX_PERSISTED_CHAIN` at most.
    pub(super) fn uncommitted_chain(&self, tip: Hash) -> Vec<Proposal> {
        let mut chain = Vec::new();
        let mut at = tip;
        while let Some(k) = self.proposals.get(&at) {
            if k.proposal.header.round <= self.committed.round || chain.len() >= MAX_PERSISTED_CHAIN {
                break;
            }
            chain.push(k.proposal.clone());
            at = k.proposal.header.parent;
        }
        chain.reverse();
        chain
    }

    /// Whether every block between `tip` and the committed head is known, verified and empty
    /// (looking `MAX_PERSISTED_CHAIN` back at most): then no uncommitted block waits for its
    /// chain to grow. An unknown or unverified ancestor counts as not empty.
    pub(super) fn only_empty_blocks_above_committed(&self, tip: Hash) -> bool {
        let mut at = tip;
        for _ in 0..MAX_PERSISTED_CHAIN {
            if at == self.committed.digest {
                return true;
            }
            match self.proposals.get(&at) {
                Some(k) if k.verified && k.empty => at = k.proposal.header.parent,
                _ => return false,
            }
        }
        false
    }

    /// Holds `p` until its missing parent arrives. Returns the parent to ask its sender for,
    /// unless it is here awaiting verification, was asked for recently (every fetch answer
    /// carries up to FETCH_DEPTH proposals whose parents may be missing too, so unthrottled
    /// fetches grow into a storm), or lies beyond what peers keep (block sync closes that gap).
    pub(super) fn hold_for_parent(&mut self, p: Proposal, now: TimestampMs, refetch_after_ms: u64) -> Option<Hash> {
        let parent = p.header.parent;
        let round = p.header.round;
        if self.waiting.len() >= MAX_WAITING {
            return None;
        }
        let entry = self.waiting.entry(parent).or_default();
        if entry.len() < 8 && !entry.contains(&p) {
            entry.push(p);
        }
        let recently = self.fetched.get(&parent).is_some_and(|t| now < t.saturating_add(refetch_after_ms));
        let bridgeable = round <= self.committed.round.saturating_add(KEEP_ROUNDS);
        if self.proposals.contains_key(&parent) || recently || !bridgeable {
            return None;
        }
        if self.fetched.len() >= MAX_WAITING {
            self.fetched.clear();
        }
        self.fetched.insert(parent, now);
        Some(parent)
    }

    /// The proposals that waited for `digest`, now that it is here.
    pub(super) fn take_children(&mut self, digest: &Hash) -> Vec<Proposal> {
        self.waiting.remove(digest).unwrap_or_default()
    }

    /// Drops a proposal whose payload failed verification, and what waited for it.
    pub(super) fn reject(&mut self, digest: &Hash) {
        self.proposals.remove(digest);
        self.waiting.remove(digest);
    }

    /// Missing parents to ask for again (not asked for within `interval_ms`), marked as asked.
    pub(super) fn refetch_due(&mut self, now: TimestampMs, interval_ms: u64) -> Vec<Hash> {
        let due: Vec<Hash> = self
            .waiting
            .keys()
            .filter(|d| self.fetched.get(*d).is_none_or(|t| now >= t.saturating_add(interval_ms)))
            .take(REFETCH_PER_TIMER)
            .copied()
            .collect();
        for digest in &due {
            self.fetched.insert(*digest, now);
        }
        due
    }

    /// Answers a fetch with the proposal and its ancestors, oldest first, so a node that fell
    /// behind catches up in one round trip per FETCH_DEPTH blocks — within the asking peer's
    /// byte budget for the current second.
    pub(super) fn answer_fetch(&mut self, from: ValidatorIndex, digest: Hash, now: TimestampMs, out: &mut Vec<Output>) {
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

    /// Forgets what the committed head made useless: proposals more than `KEEP_ROUNDS` below
    /// it and their QCs, and proposals waiting for a parent at or below it (their parent never
    /// arrived, and they were not committed).
    pub(super) fn prune(&mut self) {
        let committed_round = self.committed.round;
        let floor = committed_round.saturating_sub(KEEP_ROUNDS);
        self.proposals.retain(|_, k| k.proposal.header.round >= floor);
        self.qcs.retain(|d, _| self.proposals.contains_key(d));
        self.prune_waiting();
    }

    fn prune_waiting(&mut self) {
        let committed_round = self.committed.round;
        self.waiting.retain(|_, children| {
            children.retain(|c| c.header.round > committed_round);
            !children.is_empty()
        });
        self.fetched.retain(|d, _| self.waiting.contains_key(d));
    }
}
