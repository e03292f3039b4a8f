//! What HotStuff validators say to each other, and the certificate a committed block carries.
//! All borsh; every signed or hashed structure has a domain tag.

use aether_api::consensus::{BlockRef, ValidatorIndex};
use aether_primitives::codec;
use aether_primitives::types::Hash;
use borsh::{BorshDeserialize, BorshSerialize};

use crate::certificate::QuorumCertificate;
use crate::timeout::TimeoutCertificate;

/// Largest message a validator accepts (a proposal carries its block).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// The signed part of a proposal. Its hash ([`ProposalHeader::digest`]) is what votes and
/// QCs certify, so a QC fixes the block, its parent link, its proposer and the VRF proof that
/// elects the next leader.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ProposalHeader {
    /// The committee's signing domain (chain, genesis, epoch): a proposal signed for one
    /// chain is no proposal on another.
    pub domain: Hash,
    pub round: u64,
    pub block: BlockRef,
    /// The block this one extends (the payload's parent).
    pub parent_block: Hash,
    /// Digest of the proposal this one extends (what `justify` certifies).
    pub parent: Hash,
    pub proposer: ValidatorIndex,
    /// The proposer's ECVRF proof over `election_input(round + 1, parent_seed)`: its output
    /// elects the leader of the next round if this proposal is certified, and its hash is the
    /// seed this proposal hands to its child. The input is fixed by the parent before the
    /// proposer builds anything and the VRF output is unique, so the proposer cannot grind the
    /// election by varying its block.
    pub election: Vec<u8>,
    /// The parent's election seed ([`crate::leader::election_seed`] of its VRF output; the
    /// genesis digest for the first proposal). Checked against the parent on receipt; in the
    /// header so that the election can be recomputed from a commit certificate alone.
    pub parent_seed: Hash,
    /// Signer bitmaps of the QC this proposal extends (`justify`) and of its nearest
    /// ancestors' QCs, newest first, at most `ELIGIBILITY_WINDOW` (10): the validators shown
    /// alive, among whom the next leader is elected. A deterministic function of the parent and
    /// the justify (checked on receipt), in the header so the election can be recomputed from a
    /// commit certificate alone.
    pub recent_signers: Vec<Vec<u8>>,
    /// The round was entered by a timeout certificate (the proposal carries it). Then the next
    /// round's leader is taken in turn rather than by the VRF, so that after a failure two
    /// consecutive rounds have predictable leaders and a two-chain can form within f + 2 rounds.
    pub after_timeout: bool,
}

impl ProposalHeader {
    pub fn digest(&self) -> Hash {
        Hash::digest(b"aether/hotstuff-proposal/v2", &codec::encode(self))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Proposal {
    pub header: ProposalHeader,
    /// Certifies `header.parent`.
    pub justify: QuorumCertificate,
    /// Present when the round was entered by a timeout (`justify.round + 1 < header.round`).
    pub timeout: Option<TimeoutCertificate>,
    /// The block's canonical encoding.
    pub payload: Vec<u8>,
    /// The proposer's ed25519 signature over the digest.
    pub signature: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Timeout {
    pub round: u64,
    pub high_qc: QuorumCertificate,
    /// The signer's newest TC (unsigned, self-verifying): lets a validator that missed the
    /// timeouts of an earlier round catch up.
    pub last_tc: Option<TimeoutCertificate>,
    pub signer: ValidatorIndex,
    pub signature: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Message {
    Proposal(Box<Proposal>),
    Vote {
        round: u64,
        digest: Hash,
        voter: ValidatorIndex,
        signature: Vec<u8>,
    },
    Timeout(Box<Timeout>),
    /// Send me the proposal with this digest (a node missing an ancestor).
    Fetch {
        digest: Hash,
    },
}

/// The certificate stored with a committed block.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
// Built once per commit and encoded at once; boxing would only add indirection.
#[allow(clippy::large_enum_variant)]
pub enum CommitCertificate {
    /// Decided by the two-chain rule: `qc` certifies `header`, and `child_qc` certifies a
    /// child proposed in the very next round.
    Direct { header: ProposalHeader, qc: QuorumCertificate, child: ProposalHeader, child_qc: QuorumCertificate },
    /// Certified, and decided because a descendant was decided directly (the descendant's
    /// certificate is the proof of finality).
    Ancestor { header: ProposalHeader, qc: QuorumCertificate },
    /// The last block of an epoch, decided through a descendant: `path` holds the headers
    /// from its child down to a directly decided block `D` (oldest first, each the parent of
    /// the next), `d_qc` certifies `D`, and `child_qc` certifies `child`, proposed on `D` in the
    /// next round. Self-contained, so the next epoch (and light clients, and block sync) can
    /// take the boundary block as final without the descendants, which never commit.
    Through {
        header: ProposalHeader,
        qc: QuorumCertificate,
        path: Vec<ProposalHeader>,
        d_qc: QuorumCertificate,
        child: ProposalHeader,
        child_qc: QuorumCertificate,
    },
}

impl CommitCertificate {
    pub fn header(&self) -> &ProposalHeader {
        match self {
            CommitCertificate::Direct { header, .. }
            | CommitCertificate::Ancestor { header, .. }
            | CommitCertificate::Through { header, .. } => header,
        }
    }
    pub fn qc(&self) -> &QuorumCertificate {
        match self {
            CommitCertificate::Direct { qc, .. } | CommitCertificate::Ancestor { qc, .. } | CommitCertificate::Through { qc, .. } => qc,
        }
    }
}
