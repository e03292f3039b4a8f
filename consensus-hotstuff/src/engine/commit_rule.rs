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
    /// of them are held and verified; moves the tree's committed head and prunes it. Nothing
    /// above `last_height` (the epoch's last block) commits: a decided block above it commits
    /// only the chain up to it, the last with a [`CommitCertificate::Through`].
    pub(super) fn commit_ready(&mut self, tree: &mut BlockTree, last_height: Option<u64>, out: &mut Vec<Output>) {
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
        // `chain` is newest first: leave out what lies past the epoch, and prove its last block
        // through the decided descendant.
        let past = |d: &Hash| last_height.is_some_and(|last| tree.proposals[d].proposal.header.block.height > last);
        let cut = chain.iter().take_while(|d| past(d)).count();
        let direct = match (cut, &direct) {
            (0, _) => direct,
            (_, _) if cut == chain.len() => return, // nothing of this epoch left to commit
            (_, CommitCertificate::Direct { qc: d_qc, child, child_qc, .. }) => {
                let boundary = chain[cut];
                let mut path: Vec<_> = chain[..cut].iter().map(|d| tree.proposals[d].proposal.header.clone()).collect();
                path.reverse();
                CommitCertificate::Through {
                    header: tree.proposals[&boundary].proposal.header.clone(),
                    qc: tree.proposals[&chain[cut - 1]].proposal.justify.clone(),
                    path,
                    d_qc: d_qc.clone(),
                    child: child.clone(),
                    child_qc: child_qc.clone(),
                }
            }
            (_, _) => return,
        };
        let chain = &chain[cut..];
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

#[cfg(test)]
mod tests {
    use aether_api::consensus::BlockRef;

    use super::*;
    use crate::certificate::QuorumCertificate;
    use crate::engine::block_tree::Known;
    use crate::messages::{Proposal, ProposalHeader};

    /// A tree rooted at genesis holding a chain of proposals in `rounds` (heights 1, 2, ...),
    /// each justified by a QC of its parent; returns the tree and the digests, oldest first.
    /// Signatures are left empty: the commit rule trusts what the engine verified.
    fn chain(rounds: &[u64]) -> (BlockTree, Vec<Hash>) {
        let mut tree = BlockTree::new(4);
        let mut parent = tree.start_at_genesis(BlockRef { hash: Hash::digest(b"t", b"genesis"), height: 0 });
        let mut parent_round = 0;
        let mut digests = vec![];
        for (i, round) in rounds.iter().enumerate() {
            let header = ProposalHeader {
                domain: Hash::ZERO,
                round: *round,
                block: BlockRef { hash: Hash::digest(b"t", &[i as u8]), height: i as u64 + 1 },
                parent_block: Hash::ZERO,
                parent,
                proposer: 0,
                election: vec![],
                parent_seed: Hash::ZERO,
                recent_signers: vec![],
                after_timeout: false,
            };
            let justify = QuorumCertificate { round: parent_round, block: parent, signers: vec![], signature: vec![] };
            let digest = header.digest();
            let proposal = Proposal { header, justify, timeout: None, payload: vec![], signature: vec![] };
            tree.proposals.insert(digest, Known { proposal, verified: true, beta: [0; 64], empty: true });
            digests.push(digest);
            (parent, parent_round) = (digest, *round);
        }
        (tree, digests)
    }

    fn certify(tree: &mut BlockTree, digest: Hash) {
        let round = tree.proposals[&digest].proposal.header.round;
        tree.qcs.insert(digest, QuorumCertificate { round, block: digest, signers: vec![], signature: vec![] });
    }

    fn committed_heights(out: &[Output]) -> Vec<u64> {
        out.iter().filter_map(|o| if let Output::Commit { block, .. } = o { Some(block.height) } else { None }).collect()
    }

    #[test]
    fn a_certified_child_of_the_next_round_decides_its_parent_and_every_uncommitted_ancestor() {
        let (mut tree, d) = chain(&[1, 2, 3]);
        let mut rule = CommitRule::default();
        certify(&mut tree, d[2]);
        rule.check(&tree, d[2]);
        let mut out = vec![];
        rule.commit_ready(&mut tree, None, &mut out);
        assert_eq!(committed_heights(&out), vec![1, 2], "round 2 is decided by its round-3 child, with its ancestor");
        assert_eq!(tree.committed.digest, d[1]);
        let Output::Commit { certificate, .. } = &out[1] else { unreachable!() };
        let cert: CommitCertificate = borsh::from_slice(&certificate.0).unwrap();
        assert!(matches!(cert, CommitCertificate::Direct { .. }), "the decided block carries the two-chain proof");
    }

    #[test]
    fn nothing_past_the_epochs_last_block_commits_and_that_block_is_proven_through_the_decided_one() {
        // Heights 1..=4 in rounds 1, 2, 4, 5: the epoch ends at height 2; round 3 timed out,
        // so height 2 is decided only when height 4 (round 5) certifies height 3 (round 4).
        let (mut tree, d) = chain(&[1, 2, 4, 5]);
        let mut rule = CommitRule::default();
        certify(&mut tree, d[3]);
        rule.check(&tree, d[3]);
        let mut out = vec![];
        rule.commit_ready(&mut tree, Some(2), &mut out);
        assert_eq!(committed_heights(&out), vec![1, 2], "height 3 is decided, but it is past the epoch");
        assert_eq!(tree.committed.digest, d[1]);
        let Output::Commit { certificate, .. } = &out[1] else { unreachable!() };
        let cert: CommitCertificate = borsh::from_slice(&certificate.0).unwrap();
        let CommitCertificate::Through { header, path, child, .. } = cert else {
            panic!("expected a proof through the descendant: {cert:?}")
        };
        assert_eq!(header.block.height, 2);
        assert_eq!(path.iter().map(|h| h.block.height).collect::<Vec<_>>(), vec![3]);
        assert_eq!(child.block.height, 4);
        // A decision wholly past the epoch commits nothing.
        let (mut tree, d) = chain(&[1, 2, 3]);
        tree.commit(d[1]);
        let mut rule = CommitRule::default();
        certify(&mut tree, d[2]);
        let (mut tree2, _) = (tree, ());
        rule.check(&tree2, d[2]);
        let mut out = vec![];
        rule.commit_ready(&mut tree2, Some(2), &mut out);
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn a_child_in_a_later_round_decides_nothing() {
        // Round 2 then round 4 (round 3 timed out): a QC for the round-4 child proves nothing
        // about round 2, since round 3 may have certified a conflicting block under a TC.
        let (mut tree, d) = chain(&[1, 2, 4]);
        let mut rule = CommitRule::default();
        certify(&mut tree, d[2]);
        rule.check(&tree, d[2]);
        let mut out = vec![];
        rule.commit_ready(&mut tree, None, &mut out);
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn a_later_decision_replaces_a_pending_one_and_both_commit_together() {
        let (mut tree, d) = chain(&[1, 2, 3]);
        let mut rule = CommitRule::default();
        // Round 1 is decided by round 2's QC while its own payload is still being verified.
        tree.proposals.get_mut(&d[0]).unwrap().verified = false;
        certify(&mut tree, d[1]);
        rule.check(&tree, d[1]);
        let mut out = vec![];
        rule.commit_ready(&mut tree, None, &mut out);
        assert!(out.is_empty(), "nothing commits before its payload is verified");
        // Round 2 is decided too; once round 1 is verified both commit at once.
        certify(&mut tree, d[2]);
        rule.check(&tree, d[2]);
        tree.proposals.get_mut(&d[0]).unwrap().verified = true;
        rule.commit_ready(&mut tree, None, &mut out);
        assert_eq!(committed_heights(&out), vec![1, 2]);
        // An older decision arriving late does not replace the newer one.
        rule.check(&tree, d[1]);
        assert!(rule.pending.is_none(), "round 1 is committed already");
    }

    #[test]
    fn block_sync_drops_only_decisions_it_passed() {
        let (mut tree, d) = chain(&[1, 2, 3]);
        let mut rule = CommitRule::default();
        certify(&mut tree, d[2]);
        rule.check(&tree, d[2]);
        rule.synced_to(1);
        assert!(rule.pending.is_some(), "round 2's decision is above the synced head: kept");
        rule.synced_to(2);
        assert!(rule.pending.is_none(), "and moot once the node synced to it");
    }
}
