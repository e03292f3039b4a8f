//! Who leads each round (the VRF and stake-weighted draw themselves are in [`crate::leader`]).
//!
//! A proposal for round `r` carries its proposer's VRF proof over `(r + 1, the parent's
//! election seed)`; once the proposal is certified, that output elects the leader of `r + 1` by
//! stake, and its hash is the seed handed on. Nobody knows that leader before the proposal
//! exists, everyone can check it, and no single validator can choose it: not by picking a QC's
//! signers (the draw is over everyone who signed any of the last `ELIGIBILITY_WINDOW` QCs), not
//! by varying its block (the block is not an input), not by re-encoding its proof.
//!
//! A round entered by a timeout, and the round after a proposal made in such a round, has a
//! leader taken in turn, skipping validators not eligible: with VRF leaders after a timeout
//! each retry fails again with the probability that the draw lands on a faulty validator while
//! the round timer grows 1.5x per failure (one offline validator of four stalled a simulated
//! chain for 35 s). "In turn" walks the stake line: turn `k` of `n` falls on the validator
//! holding the point `k · total / n`. With equal stakes that is `round mod n` (an honest leader
//! within f + 1 rounds); with unequal ones each validator leads turns in proportion to its
//! stake, so a validator with a sliver of stake that is offline (one that just joined an
//! epoch's set) does not take every other turn — which, as votes go to the next round's
//! leader, would stop every QC.

use aether_api::consensus::ValidatorIndex;
use aether_primitives::types::{Amount, Hash};

use crate::leader::{election_seed, pick_by_stake};

use super::block_tree::BlockTree;

/// A validator is elected only if it signed one of the QCs of the last this-many certified
/// proposals of the chain (see [`Election::eligible_stakes`]).
pub(super) const ELIGIBILITY_WINDOW: usize = 10;

pub(super) struct Election {
    stakes: Vec<Amount>,
    /// Test-only (feature `mocks`): round `r` is led by `scripted[r - 1]` (a twins plan).
    #[cfg(feature = "mocks")]
    pub(super) scripted: Vec<ValidatorIndex>,
}

impl Election {
    pub(super) fn new(stakes: Vec<Amount>) -> Election {
        Election {
            stakes,
            #[cfg(feature = "mocks")]
            scripted: vec![],
        }
    }

    pub(super) fn total_stake(&self) -> Amount {
        self.stakes.iter().fold(0u128, |a, b| a.saturating_add(*b))
    }

    /// The leader of a round entered by a timeout: validators in turn (`round mod n`), so that
    /// after consecutive timeouts an honest leader comes within f + 1 rounds — a random draw
    /// can pick faulty leaders many times in a row, and each costs a (growing) timeout.
    pub(super) fn fallback_leader(&self, round: u64) -> ValidatorIndex {
        #[cfg(feature = "mocks")]
        if let Some(leader) = self.scripted_leader(round) {
            return leader;
        }
        self.in_turn(round, &self.stakes).unwrap_or((round % self.stakes.len().max(1) as u64) as ValidatorIndex)
    }

    /// The first validator with stake in `stakes` from turn `round mod n` on (see the module
    /// docs): turn `k` falls on the validator holding the point `k · (total / n)` of the stake
    /// line of `self.stakes`. `None` if nobody in `stakes` has any.
    fn in_turn(&self, round: u64, stakes: &[Amount]) -> Option<ValidatorIndex> {
        let n = self.stakes.len() as u64;
        if n == 0 {
            return None;
        }
        let step = (self.total_stake() / u128::from(n)).max(1);
        (0..n).map(|i| (round.wrapping_add(i)) % n).find_map(|turn| {
            // turn < n and step <= total / n: the point stays below the total.
            let point = u128::from(turn) * step;
            let mut below = 0u128;
            let holder = self.stakes.iter().position(|s| {
                below = below.saturating_add(*s);
                point < below
            })?;
            (stakes.get(holder).copied().unwrap_or(0) > 0).then_some(holder as ValidatorIndex)
        })
    }

    /// Leader of the round after the certified proposal `digest` (its round plus one), when
    /// that round is entered by its QC: drawn by the proposal's VRF output among the eligible
    /// validators by stake, or taken in turn if the proposal's own round was entered by a
    /// timeout. None if the tree holds no such proposal.
    pub(super) fn elected_after(&self, tree: &BlockTree, digest: &Hash) -> Option<ValidatorIndex> {
        if tree.is_genesis(digest) {
            return Some(self.fallback_leader(1));
        }
        let (round, after_timeout, beta, window) = if let Some(k) = tree.proposals.get(digest) {
            let h = &k.proposal.header;
            (h.round, h.after_timeout, Some(k.beta), h.recent_signers.as_slice())
        } else if *digest == tree.committed.digest {
            let c = &tree.committed;
            (c.round, c.after_timeout, c.beta, c.recent_signers.as_slice())
        } else {
            return None;
        };
        #[cfg(feature = "mocks")]
        if let Some(leader) = self.scripted_leader(round.saturating_add(1)) {
            return Some(leader);
        }
        let stakes = self.eligible_stakes(window);
        if after_timeout {
            // In turn from round + 1, skipping validators not eligible.
            return self.in_turn(round.saturating_add(1), &stakes);
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
            for i in crate::certificate::bitmap_indices(self.stakes.len(), bitmap).unwrap_or_default() {
                stakes[i] = self.stakes[i];
            }
        }
        if stakes.iter().all(|s| *s == 0) {
            return self.stakes.clone();
        }
        stakes
    }

    #[cfg(feature = "mocks")]
    pub(super) fn scripted_leader(&self, round: u64) -> Option<ValidatorIndex> {
        round.checked_sub(1).and_then(|i| self.scripted.get(usize::try_from(i).ok()?)).copied()
    }
}

/// The election seed the proposal `digest` hands to its child (the input of the child
/// proposer's VRF): derived from its own VRF output, or the genesis digest.
pub(super) fn seed_of(tree: &BlockTree, digest: &Hash) -> Option<Hash> {
    if tree.is_genesis(digest) {
        return Some(*digest);
    }
    if let Some(k) = tree.proposals.get(digest) {
        return Some(election_seed(&k.beta));
    }
    if *digest == tree.committed.digest {
        return tree.committed.beta.map(|beta| election_seed(&beta));
    }
    None
}

/// The `recent_signers` a proposal extending `parent` with a QC signed by `justify_signers`
/// must carry: that bitmap, then the parent's, newest first, `ELIGIBILITY_WINDOW` at most.
pub(super) fn recent_signers_after(tree: &BlockTree, parent: &Hash, justify_signers: &[u8]) -> Option<Vec<Vec<u8>>> {
    let inherited = if tree.is_genesis(parent) {
        &[][..]
    } else if let Some(k) = tree.proposals.get(parent) {
        k.proposal.header.recent_signers.as_slice()
    } else if *parent == tree.committed.digest {
        tree.committed.recent_signers.as_slice()
    } else {
        return None;
    };
    let mut window = Vec::with_capacity(ELIGIBILITY_WINDOW);
    window.push(justify_signers.to_vec());
    window.extend(inherited.iter().take(ELIGIBILITY_WINDOW - 1).cloned());
    Some(window)
}
