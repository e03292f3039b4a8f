//! Read-only queries (`Ledger::module_query("governance", path, request)`, RPC
//! `aether_moduleQuery`). Answers are JSON (amounts as decimal strings, addresses and call
//! bytes as `0x` hex, fields in declaration order), so the same state always gives the same
//! bytes.
//!
//! - `params`: [`Params`](crate::Params).
//! - `proposal`: request = the id as 8 bytes little-endian (borsh `u64`); answer
//!   [`ProposalInfo`].
//! - `proposals`: the proposals in voting, by voting end then id ([`ProposalInfo`] list;
//!   at most `max_open_proposals` of them, so bounded).
//! - `invariants`: [`crate::invariants`].

use aether_api::module::{ModuleContext, ModuleError};
use aether_primitives::types::{serde_helpers, Address, Amount, Height};
use serde::{Deserialize, Serialize};

use crate::calls::ProposalAction;
use crate::error::{GovernanceError, Result};
use crate::params::MAX_OPEN_PROPOSALS_CAP;
use crate::state::{self, Proposal, Status, Tally};

/// A proposal as `proposal` and `proposals` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalInfo {
    pub id: u64,
    pub proposer: Address,
    pub title: String,
    pub actions: Vec<ProposalAction>,
    #[serde(with = "serde_helpers::amount")]
    pub deposit: Amount,
    pub submit_height: Height,
    pub submit_epoch: u64,
    /// Votes are taken until the end of this epoch; its `end_epoch` tallies.
    pub voting_end_epoch: u64,
    /// `{"passed":{"execute_at":h}}`, `"voting"`, ...
    pub status: Status,
    /// Set at the tally.
    pub tally: Option<Tally>,
}

impl ProposalInfo {
    pub fn new(id: u64, p: Proposal) -> Self {
        ProposalInfo {
            id,
            proposer: p.proposer,
            title: p.title,
            actions: p.actions,
            deposit: p.deposit,
            submit_height: p.submit_height,
            submit_epoch: p.submit_epoch,
            voting_end_epoch: p.voting_end_epoch,
            status: p.status,
            tally: p.tally,
        }
    }
}

pub fn query(cx: &mut dyn ModuleContext, path: &str, request: &[u8]) -> Result<Vec<u8>> {
    match path {
        "params" => json(&state::params(cx)?),
        "proposal" => {
            let id = u64::from_le_bytes(request.try_into().map_err(|_| {
                ModuleError::BadCall(format!("proposal request must be the id as 8 bytes (u64 LE); got {} bytes", request.len()))
            })?);
            let p = state::proposal(cx, id)?;
            json(&ProposalInfo::new(id, p))
        }
        "proposals" => {
            let mut out = Vec::new();
            let mut after: Option<Vec<u8>> = None;
            for _ in 0..MAX_OPEN_PROPOSALS_CAP {
                let Some(key) = cx.next_key(state::VOTING_ENDS, after.as_deref())? else { break };
                let (_, id) = state::parse_pair_key(state::VOTING_ENDS, &key, "voting end key")?;
                let p = state::proposal(cx, id)?;
                out.push(ProposalInfo::new(id, p));
                after = Some(key);
            }
            json(&out)
        }
        "invariants" => crate::invariants::check(cx).map(String::into_bytes),
        other => Err(ModuleError::UnknownQuery(other.to_string()).into()),
    }
}

fn json<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|_| GovernanceError::Corrupt("answer"))
}
