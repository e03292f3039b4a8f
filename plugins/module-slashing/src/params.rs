//! The module's genesis parameters (`"params"` of its genesis entry), checked once at
//! `init_genesis` and kept in the module's storage.

use aether_api::module::valid_module_name;
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::error::{Result, SlashingError};

/// The whole stake, in basis points.
pub const BPS: u16 = 10_000;

/// The highest `max_evidence_per_block` accepted: the ledger's own cap on the evidence one
/// block records (`aether_node::ledger::MAX_BLOCK_EVIDENCE`, a test checks they agree), and
/// the number the hook is measured to handle within its gas budget (`tests/ledger/gas.rs`).
pub const MAX_EVIDENCE_PER_BLOCK_CAP: u32 = 16;

/// The longest `signed_blocks_window` accepted. The window costs one small storage entry per
/// height in it (a signer bitmap), never more gas per block; the cap keeps that state bounded
/// (Cosmos Hub's window is 10,000 blocks).
pub const MAX_SIGNED_BLOCKS_WINDOW: u64 = 10_000;

/// Slashing parameters. Every field may be left out of genesis (its default applies); an
/// unknown field is an error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// The fraction of the offender's stake (bonded at the offence, unbondings started since
    /// included) burned for a double vote or double proposal, in basis points (≤ 10000).
    /// Default 2000 (20%).
    pub double_sign_bps: u16,
    /// Whether a double signer is also jailed (out of the next epoch's set until its operator
    /// unjails it). Default true.
    pub jail_on_double_sign: bool,
    /// The module `Slash` calls go to (its `slasher` parameter must name this module).
    /// Default `"staking"`.
    pub staking_module: String,
    /// Pieces of evidence handled per block (1..=16); a block recording more has the rest
    /// reported as `evidence_ignored` and never slashed (the ledger records evidence once),
    /// so keep it at the ledger's cap, 16, the default.
    pub max_evidence_per_block: u32,
    /// Downtime is measured over a validator's last `signed_blocks_window` measured heights
    /// (1..=10,000). Default 100 (Cosmos SDK's default).
    pub signed_blocks_window: u64,
    /// A validator must have signed at least this fraction of its window, in basis points: it
    /// is punished once it missed more than `window - ceil(window · bps / 10000)` of it.
    /// Default 5000 (50%, Cosmos SDK's default). 0 switches downtime slashing off (nothing is
    /// measured, no gas is spent).
    pub min_signed_per_window_bps: u16,
    /// The fraction of the stake burned for downtime, in basis points. Default 1 (0.01%, what
    /// Cosmos Hub burns): being jailed — out of the next set, so out of its rewards, until the
    /// operator unjails — is the punishment that matters; the burn is a token, and small
    /// because HotStuff's certificates hold only the first quorum of votes, so an honest but
    /// slow validator is sometimes counted as missing.
    pub downtime_slash_bps: u16,
    /// Whether a validator punished for downtime is also jailed. Default true.
    pub downtime_jail: bool,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            double_sign_bps: 2_000,
            jail_on_double_sign: true,
            staking_module: "staking".into(),
            max_evidence_per_block: 16,
            signed_blocks_window: 100,
            min_signed_per_window_bps: 5_000,
            downtime_slash_bps: 1,
            downtime_jail: true,
        }
    }
}

impl Params {
    /// Parses genesis's JSON text (empty: all defaults) and checks it.
    pub fn from_genesis(json: &[u8]) -> Result<Params> {
        let params: Params = aether_api::module::parse_params(json).map_err(SlashingError::Params)?;
        params.check()?;
        Ok(params)
    }

    /// Refuses values the module cannot run with, saying what is accepted.
    pub fn check(&self) -> Result<()> {
        let bad = |m: String| Err(SlashingError::Params(m));
        if self.double_sign_bps > BPS {
            return bad(format!("double_sign_bps must be at most {BPS} (100%); got {}", self.double_sign_bps));
        }
        if self.double_sign_bps == 0 && !self.jail_on_double_sign {
            return bad("double_sign_bps is 0 and jail_on_double_sign is false: a double signer would not be punished at all".into());
        }
        if !valid_module_name(&self.staking_module) {
            return bad(format!("staking_module must be a module name ([a-z0-9_]{{1,32}}); got {:?}", self.staking_module));
        }
        if self.staking_module == crate::NAME {
            return bad(format!("staking_module must name the staking module, not {:?} itself", crate::NAME));
        }
        if self.max_evidence_per_block == 0 || self.max_evidence_per_block > MAX_EVIDENCE_PER_BLOCK_CAP {
            return bad(format!(
                "max_evidence_per_block must be 1..={MAX_EVIDENCE_PER_BLOCK_CAP} (the ledger records at most {MAX_EVIDENCE_PER_BLOCK_CAP} pieces a block); got {}",
                self.max_evidence_per_block
            ));
        }
        if self.signed_blocks_window == 0 || self.signed_blocks_window > MAX_SIGNED_BLOCKS_WINDOW {
            return bad(format!("signed_blocks_window must be 1..={MAX_SIGNED_BLOCKS_WINDOW} heights; got {}", self.signed_blocks_window));
        }
        if self.min_signed_per_window_bps > BPS {
            return bad(format!("min_signed_per_window_bps must be at most {BPS} (100%); got {}", self.min_signed_per_window_bps));
        }
        if self.downtime_slash_bps > BPS {
            return bad(format!("downtime_slash_bps must be at most {BPS} (100%); got {}", self.downtime_slash_bps));
        }
        if self.min_signed_per_window_bps > 0 && self.downtime_slash_bps == 0 && !self.downtime_jail {
            return bad("downtime_slash_bps is 0 and downtime_jail is false: downtime would not be punished at all (set min_signed_per_window_bps to 0 to switch it off)".into());
        }
        Ok(())
    }

    /// Whether downtime is measured at all.
    pub fn measures_downtime(&self) -> bool {
        self.min_signed_per_window_bps > 0
    }

    /// The most heights of a full window a validator may miss unpunished:
    /// `window - ceil(window · min_signed_per_window_bps / 10000)`.
    pub fn max_missed_per_window(&self) -> u64 {
        let window = self.signed_blocks_window;
        // window ≤ 10,000 and bps ≤ 10,000: the product fits easily.
        let must_sign = (window * u64::from(self.min_signed_per_window_bps)).div_ceil(u64::from(BPS));
        window - must_sign
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_when_absent_and_bad_values_say_what_is_accepted() {
        assert_eq!(Params::from_genesis(b"").unwrap(), Params::default());
        assert_eq!(Params::from_genesis(b"{}").unwrap(), Params::default());
        let p = Params::from_genesis(br#"{"double_sign_bps":500,"jail_on_double_sign":false}"#).unwrap();
        assert_eq!(
            (p.double_sign_bps, p.jail_on_double_sign, p.staking_module.as_str(), p.max_evidence_per_block),
            (500, false, "staking", 16)
        );
        let err = |json: &str| Params::from_genesis(json.as_bytes()).unwrap_err().to_string();
        assert!(err(r#"{"double_sign_bps":10001}"#).contains("double_sign_bps must be at most 10000 (100%); got 10001"));
        assert!(err(r#"{"double_sign_bps":0,"jail_on_double_sign":false}"#).contains("would not be punished at all"));
        assert!(err(r#"{"staking_module":"Staking!"}"#).contains("staking_module must be a module name"));
        assert!(err(r#"{"staking_module":"slashing"}"#).contains("not \"slashing\" itself"));
        assert!(err(r#"{"max_evidence_per_block":0}"#).contains("max_evidence_per_block must be 1..=16"));
        assert!(err(r#"{"max_evidence_per_block":17}"#).contains("got 17"));
        assert!(err(r#"{"double_sign_bp":1}"#).contains("unknown field `double_sign_bp`"));
        assert!(err(r#"{"double_sign_bps":-1}"#).starts_with("slashing genesis params: invalid value"));
        // Jailing alone (no burn) is allowed.
        assert!(Params::from_genesis(br#"{"double_sign_bps":0}"#).is_ok());
    }

    #[test]
    fn downtime_params_default_like_cosmos_and_bound_the_window() {
        let p = Params::default();
        assert_eq!((p.signed_blocks_window, p.min_signed_per_window_bps, p.downtime_slash_bps, p.downtime_jail), (100, 5_000, 1, true));
        assert_eq!(p.max_missed_per_window(), 50, "signing 50 of 100 is enough; missing 51 is not");
        let p = Params::from_genesis(br#"{"min_signed_per_window_bps":9500,"signed_blocks_window":10}"#).unwrap();
        assert_eq!(p.max_missed_per_window(), 0, "95% of 10 rounds up to all 10");
        let p = Params::from_genesis(br#"{"min_signed_per_window_bps":0}"#).unwrap();
        assert!(!p.measures_downtime());
        let err = |json: &str| Params::from_genesis(json.as_bytes()).unwrap_err().to_string();
        assert!(err(r#"{"signed_blocks_window":0}"#).contains("signed_blocks_window must be 1..=10000 heights; got 0"));
        assert!(err(r#"{"signed_blocks_window":10001}"#).contains("got 10001"));
        assert!(err(r#"{"min_signed_per_window_bps":10001}"#).contains("min_signed_per_window_bps must be at most 10000"));
        assert!(err(r#"{"downtime_slash_bps":10001}"#).contains("downtime_slash_bps must be at most 10000"));
        assert!(err(r#"{"downtime_jail":false,"downtime_slash_bps":0}"#).contains("downtime would not be punished at all"));
        assert!(Params::from_genesis(br#"{"downtime_jail":false,"downtime_slash_bps":0,"min_signed_per_window_bps":0}"#).is_ok());
    }
}
