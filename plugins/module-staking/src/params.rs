//! The module's genesis parameters (`"params"` of its genesis entry), checked once at
//! `init_genesis` and kept in the module's storage.

use aether_api::module::{valid_module_name, MAX_VALIDATORS};
use aether_primitives::types::{serde_helpers, Amount};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::error::{Result, StakingError};
use crate::math::BPS;

/// The most unbonding entries a `max_unbonding_entries` may allow per delegator and validator.
pub const MAX_UNBONDING_ENTRIES_CAP: u32 = 100;

/// Staking parameters. Every field may be left out of genesis (its default applies); an
/// unknown field is an error. Amounts may be written as JSON numbers or decimal strings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// The least a validator's operator keeps bonded to it (registering, staying in the set,
    /// unjailing). Default 1,000.
    #[serde(with = "serde_helpers::amount")]
    pub min_self_bond: Amount,
    /// The least one delegation may bond. Default 100.
    #[serde(with = "serde_helpers::amount")]
    pub min_delegation: Amount,
    /// Seats in each epoch's set (at most `MAX_VALIDATORS`, 512). Default 100.
    pub max_validators: u32,
    /// Epochs an unbonding waits before it is paid (at least 1). Default 7.
    pub unbonding_epochs: u64,
    /// Tokens minted at the end of each epoch and shared by the epoch's validators. Default 1,000.
    #[serde(with = "serde_helpers::amount")]
    pub reward_per_epoch: Amount,
    /// The highest commission a validator may set, in basis points (≤ 10000). Default 10000.
    pub max_commission_bps: u16,
    /// Epochs a jailed validator waits before it may unjail. Default 1.
    pub jail_epochs: u64,
    /// The module allowed to slash and jail. Default `"slashing"`.
    pub slasher: String,
    /// Unbonding entries one delegator may have from one validator at once (1..=100). Default 7.
    pub max_unbonding_entries: u32,
    /// The module allowed to change these parameters after genesis (`UpdateParams`).
    /// Default `"governance"`.
    pub governance: String,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            min_self_bond: 1_000,
            min_delegation: 100,
            max_validators: 100,
            unbonding_epochs: 7,
            reward_per_epoch: 1_000,
            max_commission_bps: BPS,
            jail_epochs: 1,
            slasher: "slashing".into(),
            max_unbonding_entries: 7,
            governance: "governance".into(),
        }
    }
}

impl Params {
    /// Parses genesis's JSON text (empty: all defaults) and checks it.
    pub fn from_genesis(json: &[u8]) -> Result<Params> {
        let params: Params = aether_api::module::parse_params(json).map_err(StakingError::Params)?;
        params.check()?;
        Ok(params)
    }

    /// Refuses values the module cannot run with, saying what is accepted.
    pub fn check(&self) -> Result<()> {
        let bad = |m: String| Err(StakingError::Params(m));
        if self.min_self_bond == 0 {
            return bad("min_self_bond must be at least 1 (a validator's stake must be above zero)".into());
        }
        if self.min_delegation == 0 {
            return bad("min_delegation must be at least 1".into());
        }
        if self.max_validators == 0 || self.max_validators as usize > MAX_VALIDATORS {
            return bad(format!("max_validators must be 1..={MAX_VALIDATORS}; got {}", self.max_validators));
        }
        if self.unbonding_epochs == 0 {
            return bad("unbonding_epochs must be at least 1 (stake must stay slashable after it unbonds)".into());
        }
        if self.max_commission_bps > BPS {
            return bad(format!("max_commission_bps must be at most {BPS} (100%); got {}", self.max_commission_bps));
        }
        if !valid_module_name(&self.slasher) {
            return bad(format!("slasher must be a module name ([a-z0-9_]{{1,32}}); got {:?}", self.slasher));
        }
        if self.max_unbonding_entries == 0 || self.max_unbonding_entries > MAX_UNBONDING_ENTRIES_CAP {
            return bad(format!("max_unbonding_entries must be 1..={MAX_UNBONDING_ENTRIES_CAP}; got {}", self.max_unbonding_entries));
        }
        if !valid_module_name(&self.governance) {
            return bad(format!("governance must be a module name ([a-z0-9_]{{1,32}}); got {:?}", self.governance));
        }
        Ok(())
    }

    /// These parameters with the fields `changes` (a JSON object naming only the fields to
    /// change) replaced, checked as genesis checks them. `min_self_bond` and
    /// `unbonding_epochs` may not change after genesis: the rank index (eligibility by
    /// self-bond) and the stored unbonding maturities were computed with them, and
    /// re-deriving either touches every validator or entry (unbounded).
    pub fn updated(&self, changes: &str) -> Result<Params> {
        let bad = |m: String| StakingError::Params(m);
        let changes: serde_json::Value = serde_json::from_str(changes).map_err(|e| bad(e.to_string()))?;
        let serde_json::Value::Object(changes) = changes else {
            return Err(bad("a parameter update must be a JSON object of the fields to change".into()));
        };
        for frozen in FROZEN_AFTER_GENESIS {
            if changes.contains_key(*frozen) {
                return Err(bad(format!("{frozen} cannot change after genesis")));
            }
        }
        let mut merged = serde_json::to_value(self).map_err(|e| bad(e.to_string()))?;
        if let serde_json::Value::Object(fields) = &mut merged {
            fields.extend(changes);
        }
        let params: Params = serde_json::from_value(merged).map_err(|e| bad(e.to_string()))?;
        params.check()?;
        Ok(params)
    }
}

/// Parameters `UpdateParams` refuses to change (see [`Params::updated`]).
pub const FROZEN_AFTER_GENESIS: &[&str] = &["min_self_bond", "unbonding_epochs"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_when_absent_and_bad_values_say_what_is_accepted() {
        assert_eq!(Params::from_genesis(b"").unwrap(), Params::default());
        let p = Params::from_genesis(br#"{"min_self_bond":"5000","unbonding_epochs":2}"#).unwrap();
        assert_eq!((p.min_self_bond, p.unbonding_epochs, p.min_delegation), (5_000, 2, 100));
        let err = |json: &str| Params::from_genesis(json.as_bytes()).unwrap_err().to_string();
        assert!(err(r#"{"max_validators":513}"#).contains("max_validators must be 1..=512; got 513"));
        assert!(err(r#"{"unbonding_epochs":0}"#).contains("unbonding_epochs must be at least 1"));
        assert!(err(r#"{"max_commission_bps":10001}"#).contains("at most 10000"));
        assert!(err(r#"{"slasher":"Bad-Name"}"#).contains("slasher must be a module name"));
        assert!(err(r#"{"min_selfbond":1}"#).contains("unknown field `min_selfbond`"));
        assert!(err(r#"{"max_unbonding_entries":0}"#).contains("max_unbonding_entries must be 1..=100"));
        assert!(err(r#"{"governance":""}"#).contains("governance must be a module name"));
    }

    #[test]
    fn updates_change_only_the_named_fields_and_are_checked_like_genesis() {
        let p = Params::from_genesis(br#"{"min_delegation":"500","reward_per_epoch":7}"#).unwrap();
        let q = p.updated(r#"{"min_delegation":"900"}"#).unwrap();
        assert_eq!(q, Params { min_delegation: 900, ..p.clone() });
        let err = |json: &str| p.updated(json).unwrap_err().to_string();
        assert!(err(r#"{"min_delegation":0}"#).contains("min_delegation must be at least 1"));
        assert!(err(r#"{"min_delegaton":1}"#).contains("unknown field `min_delegaton`"));
        assert!(err(r#"{"unbonding_epochs":3}"#).contains("unbonding_epochs cannot change after genesis"));
        assert!(err(r#"{"min_self_bond":3}"#).contains("min_self_bond cannot change after genesis"));
        assert!(err("[1]").contains("must be a JSON object"));
    }
}
