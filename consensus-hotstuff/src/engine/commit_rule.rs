//! The two-chain commit rule (Jolteon, DiemBFT v4): block `B` is decided when a QC certifies
//! a child `B'` of `B` proposed in the very next round, `round(B') = round(B) + 1`. The rounds
//! must be consecutive: a QC for a child in a later round proves nothing about `B` (rounds in
//! between may have certified a conflicting block under a TC).
//!
//! A decided block commits with its uncommitted ancestors, oldest first, once every one of them
//! is held and verified here. The decided block's certificate is
//! [`CommitCertificate::Direct`] (the proof of finality others check); each ancestor's is
//! [`CommitCertificate::Ancestor`], its QC only.

use aether_api::consensus::Output;
use aether_primitives::codec;
use aether_primitives::types::{Certificate, Hash};

use crate::messages::CommitCertificate;

use super::block_tree::BlockTree;

#[derive(Default)]
pub(super) struct CommitRule {
    /// The highest decided proposal not yet committed (ancestors missing or unverified), with
    /// its proof.
    pending: Option<(Hash, CommitCertificate)>,
}

impl CommitRule {
    /// Applies the rule to `child`: if the tree holds it, a QC for it, and its parent proposed
    /// in the round just before it and above the committed head, that parent is decided (kept
    /// pending until [`CommitRule::commit_ready`] can commit it).
    pub(super) fn check(&mut self, tree: &BlockTree, child: Hash) {
        let (Some(child_qc), Some(c)) = (tree.qcs.get(&child), tree.proposals.get(&child)) else { return };
        let parent = c.proposal.header.parent;
        let Some(p) = tree.proposals.get(&parent) else { return };
        if p.proposal.header.round.saturating_add(1) != c.proposal.header.round || p.proposal.header.round <= tree.committed.round {
            return;
        }
        if self.pending.as_ref().is_some_and(|(_, cert)| cert.header().round >= p.proposal.header.round) {
            return;
        }
        let cert = CommitCertificate::Direct {
            header: p.proposal.header.clone(),
            qc: c.proposal.justify.clone(),
            child: c.proposal.header.clone(),
            child_qc: child_qc.clone(),
        };
        self.pending = Some((parent, cert));
    }

    /// Commits the pending decided proposal and its uncommitted ancestors, oldest first, if all
    /// of them are held and verified; moves the tree's committed head and prunes it.
    pub(super) fn commit_ready(&mut self, tree: &mut BlockTree, out: &mut Vec<Output>) {
        let Some((target, _)) = &self.pending else { return };
        let mut chain = vec![*target];
        let mut last = *target;
        loop {
            let Some(k) = tree.proposals.get(&last) else { return };
            if !k.verified {
                return;
            }
            let parent = k.proposal.header.parent;
            if parent == tree.committed.digest {
                break;
            }
            if !tree.proposals.contains_key(&parent) {
                return; // an ancestor is missing; it is being fetched
            }
            chain.push(parent);
            last = parent;
        }
        let Some((_, direct)) = self.pending.take() else { return };
        for (position, digest) in chain.iter().enumerate().rev() {
            let header = tree.proposals[digest].proposal.header.clone();
            let cert = match position.checked_sub(1) {
                None => direct.clone(),
                // Its QC is the justify of the next block in the chain (its child).
                Some(child) => {
                    CommitCertificate::Ancestor { header: header.clone(), qc: tree.proposals[&chain[child]].proposal.justify.clone() }
                }
            };
            out.push(Output::Commit { block: header.block, certificate: Certificate(codec::encode(&cert)) });
            tree.commit(*digest);
        }
        tree.prune();
    }

    /// Block sync committed up to `round`: a pending decision at or below it is moot.
    pub(super) fn synced_to(&mut self, round: u64) {
        self.pending = self.pending.take().filter(|(_, c)| c.header().round > round);
    }
}
