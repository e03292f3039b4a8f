//! The module's genesis parameters (`"params"` of its genesis entry), checked once at
//! `init_genesis` and kept in the module's storage.

use aether_primitives::types::{serde_helpers, Amount};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::error::{GovernanceError, Result};
use crate::tally::BPS;

/// The most actions `max_actions` may allow per proposal.
pub const MAX_ACTIONS_CAP: u32 = 64;
/// The most proposals `max_open_proposals` may allow in voting at once.
pub const MAX_OPEN_PROPOSALS_CAP: u32 = 1_024;
/// The longest voting period `voting_epochs` may set.
pub const MAX_VOTING_EPOCHS: u64 = 10_000;

/// Governance parameters. Every field may be left out of genesis (its default applies); an
/// unknown field is an error. Amounts may be written as JSON numbers or decimal strings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// The least deposit (the `Submit` call's value) a proposal needs. Default 1,000.
    #[serde(with = "serde_helpers::amount")]
    pub min_deposit: Amount,
    /// Share of the tally set's stake that must vote (any option) for the tally to count, in
    /// basis points; met when `voted × 10000 ≥ total × quorum_bps`. Default 2,000 (20%).
    pub quorum_bps: u16,
    /// A proposal passes when `yes × 10000 > (yes + no + no_with_veto) × threshold_bps`
    /// (abstain excluded; a veto is a no). Default 5,000: yes must exceed half.
    pub threshold_bps: u16,
    /// A proposal is vetoed (rejected, deposit burned) when
    /// `no_with_veto × 10000 > (all votes, abstain included) × veto_bps`. Default 3,340.
    pub veto_bps: u16,
    /// Epochs a proposal is open for votes: from the epoch it is submitted in to the end of
    /// epoch `submit_epoch + voting_epochs - 1` (1..=10,000). Default 2.
    pub voting_epochs: u64,
    /// Blocks between the block that tallies a passing proposal and the block that executes
    /// it (at least 1). Default 10.
    pub timelock_heights: u64,
    /// Actions one proposal may carry (1..=64). Default 8.
    pub max_actions: u32,
    /// Proposals in voting at once (1..=1,024). Default 64.
    pub max_open_proposals: u32,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            min_deposit: 1_000,
            quorum_bps: 2_000,
            threshold_bps: 5_000,
            veto_bps: 3_340,
            voting_epochs: 2,
            timelock_heights: 10,
            max_actions: 8,
            max_open_proposals: 64,
        }
    }
}

impl Params {
    /// Parses genesis's JSON text (empty: all defaults) and checks it.
    pub fn from_genesis(json: &[u8]) -> Result<Params> {
        let params: Params = aether_api::module::parse_params(json).map_err(GovernanceError::Params)?;
        params.check()?;
        Ok(params)
    }

    /// Refuses values the module cannot run with, saying what is accepted.
    pub fn check(&self) -> Result<()> {
        let bad = |m: String| Err(GovernanceError::Params(m));
        if self.min_deposit == 0 {
            return bad("min_deposit must be at least 1".into());
        }
        for (name, bps) in [("quorum_bps", self.quorum_bps), ("threshold_bps", self.threshold_bps), ("veto_bps", self.veto_bps)] {
            if bps > BPS {
                return bad(format!("{name} must be at most {BPS} (100%); got {bps}"));
            }
        }
        if self.voting_epochs == 0 || self.voting_epochs > MAX_VOTING_EPOCHS {
            return bad(format!("voting_epochs must be 1..={MAX_VOTING_EPOCHS}; got {}", self.voting_epochs));
        }
        if self.timelock_heights == 0 {
            return bad("timelock_heights must be at least 1 (execution happens in a later block than the tally)".into());
        }
        if self.max_actions == 0 || self.max_actions > MAX_ACTIONS_CAP {
            return bad(format!("max_actions must be 1..={MAX_ACTIONS_CAP}; got {}", self.max_actions));
        }
        if self.max_open_proposals == 0 || self.max_open_proposals > MAX_OPEN_PROPOSALS_CAP {
            return bad(format!("max_open_proposals must be 1..={MAX_OPEN_PROPOSALS_CAP}; got {}", self.max_open_proposals));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_when_absent_and_bad_values_say_what_is_accepted() {
        assert_eq!(Params::from_genesis(b"").unwrap(), Params::default());
        let p = Params::from_genesis(br#"{"min_deposit":"5000","voting_epochs":1}"#).unwrap();
        assert_eq!((p.min_deposit, p.voting_epochs, p.quorum_bps, p.timelock_heights), (5_000, 1, 2_000, 10));
        let err = |json: &str| Params::from_genesis(json.as_bytes()).unwrap_err().to_string();
        assert!(err(r#"{"min_deposit":0}"#).contains("min_deposit must be at least 1"));
        assert!(err(r#"{"quorum_bps":10001}"#).contains("quorum_bps must be at most 10000 (100%); got 10001"));
        assert!(err(r#"{"veto_bps":20000}"#).contains("veto_bps must be at most 10000"));
        assert!(err(r#"{"voting_epochs":0}"#).contains("voting_epochs must be 1..=10000; got 0"));
        assert!(err(r#"{"timelock_heights":0}"#).contains("timelock_heights must be at least 1"));
        assert!(err(r#"{"max_actions":65}"#).contains("max_actions must be 1..=64; got 65"));
        assert!(err(r#"{"max_open_proposals":0}"#).contains("max_open_proposals must be 1..=1024"));
        assert!(err(r#"{"quorum":1}"#).contains("unknown field `quorum`"));
    }
}
