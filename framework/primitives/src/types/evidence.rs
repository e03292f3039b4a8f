//! Evidence of misbehaviour: a data type blocks record, checked by the consensus engine that
//! defines its `proof` encoding.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use super::{domain, Hash};

/// A validator's position in the validator set (the order of genesis, or of an epoch's set).
pub type ValidatorIndex = u32;

/// Proof that a validator misbehaved (double vote, double proposal, ...), in an engine-defined
/// encoding that other nodes' engines can check.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Evidence {
    /// The offender's index in the validator set of `epoch`.
    pub offender: ValidatorIndex,
    pub kind: String,
    #[serde(with = "super::serde_helpers::bytes")]
    pub proof: Vec<u8>,
    /// The epoch of the offence: whose set `offender` indexes and whose engine checks `proof`
    /// (signatures are bound to their epoch). A block may record evidence of an earlier epoch,
    /// so an offence in an epoch's last blocks is still punished after the set changed.
    #[serde(default)]
    pub epoch: u64,
}

impl Evidence {
    /// Identity of this piece of evidence (blocks record each at most once).
    pub fn hash(&self) -> Hash {
        Hash::digest(domain::EVIDENCE, &crate::codec::encode(self))
    }
}
