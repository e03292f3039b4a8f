//! `aether tx stake | delegate | unstake | unjail` (the staking module) and `aether tx
//! propose | vote` (the governance module): calls built, signed and submitted over RPC.

use std::path::PathBuf;
use std::time::Duration;

use aether_framework::types::{Action, Amount, PublicKey};
use aether_module_governance::{GovernanceCall, ProposalAction, VoteOption};
use aether_module_staking::StakingCall;
use aether_presets::keys;
use aether_rpc::AetherApiClient;
use anyhow::Context;
use clap::Args;
use jsonrpsee::http_client::HttpClientBuilder;

use crate::tx::{submit, SignerArgs};

/// Gas for a staking call: registration checks a consensus key (5M gas) and a signature
/// (0.3M), the others far less.
const STAKING_GAS: u64 = 10_000_000;

#[derive(Args)]
pub(crate) struct StakeArgs {
    /// The validator's identity key file (its node's `--validator-key`): it signs the
    /// registration, and its consensus key is derived from it for the chain's engine.
    #[arg(long)]
    pub(crate) validator_key: PathBuf,
    /// The self-bond.
    #[arg(long)]
    pub(crate) amount: Amount,
    /// The validator's name in sets and queries.
    #[arg(long)]
    pub(crate) name: String,
    /// Commission on rewards, in basis points (100 = 1%).
    #[arg(long, default_value_t = 0)]
    pub(crate) commission_bps: u16,
    #[command(flatten)]
    pub(crate) signer: SignerArgs,
}

#[derive(Args)]
pub(crate) struct DelegateArgs {
    /// The validator's identity public key (0x + 64 hex digits).
    #[arg(long)]
    pub(crate) validator: PublicKey,
    #[arg(long)]
    pub(crate) amount: Amount,
    #[command(flatten)]
    pub(crate) signer: SignerArgs,
}

#[derive(Args)]
pub(crate) struct UnstakeArgs {
    #[arg(long)]
    pub(crate) validator: PublicKey,
    /// Shares to unbond (`aether module-query --module staking --path delegation` shows yours).
    #[arg(long)]
    pub(crate) shares: u128,
    #[command(flatten)]
    pub(crate) signer: SignerArgs,
}

#[derive(Args)]
pub(crate) struct UnjailArgs {
    #[arg(long)]
    pub(crate) validator: PublicKey,
    #[command(flatten)]
    pub(crate) signer: SignerArgs,
}

#[derive(Args)]
pub(crate) struct ProposeArgs {
    #[arg(long)]
    pub(crate) title: String,
    /// A module call to run if the proposal passes, `MODULE:0xCALL` (repeat for several, run
    /// in order). For a staking parameter change, `--staking-params JSON` builds it.
    #[arg(long = "action")]
    pub(crate) actions: Vec<String>,
    /// Staking parameters to change, e.g. `{"min_delegation":500}` (adds that action).
    #[arg(long)]
    pub(crate) staking_params: Option<String>,
    /// The deposit (at least the module's `min_deposit`; burned if the proposal is vetoed).
    #[arg(long)]
    pub(crate) deposit: Amount,
    /// Gas limit of the transaction (the fee covers it).
    #[arg(long, default_value_t = STAKING_GAS)]
    pub(crate) gas: u64,
    #[command(flatten)]
    pub(crate) signer: SignerArgs,
}

#[derive(Args)]
pub(crate) struct VoteArgs {
    #[arg(long)]
    pub(crate) proposal: u64,
    /// yes, no, abstain or veto (a no that, above its share, burns the deposit).
    #[arg(long)]
    pub(crate) option: String,
    /// Gas limit of the transaction (the fee covers it). A delegator's vote reads its
    /// delegation with every validator of the set (about 20k gas per validator): raise it on
    /// chains with hundreds of validators.
    #[arg(long, default_value_t = STAKING_GAS)]
    pub(crate) gas: u64,
    #[command(flatten)]
    pub(crate) signer: SignerArgs,
}

fn governance(call: GovernanceCall, value: Amount, gas_limit: u64) -> Action {
    Action::Module { module: aether_module_governance::NAME.into(), call: call.encode(), value, gas_limit }
}

pub(crate) async fn propose(a: ProposeArgs) -> anyhow::Result<()> {
    let mut actions = Vec::new();
    for text in &a.actions {
        let (module, call) = text.split_once(':').with_context(|| format!("--action {text:?}: write MODULE:0xCALL"))?;
        let call =
            hex::decode(call.strip_prefix("0x").unwrap_or(call)).with_context(|| format!("--action {text:?}: the call is not hex"))?;
        actions.push(ProposalAction { module: module.into(), call });
    }
    if let Some(params) = &a.staking_params {
        actions.push(ProposalAction {
            module: aether_module_staking::NAME.into(),
            call: StakingCall::UpdateParams { params_json: params.clone() }.encode(),
        });
    }
    if actions.is_empty() {
        anyhow::bail!("a proposal needs at least one --action or --staking-params");
    }
    submit(&a.signer, governance(GovernanceCall::submit(&a.title, actions), a.deposit, a.gas)).await.map(|_| ())
}

pub(crate) async fn vote(a: VoteArgs) -> anyhow::Result<()> {
    let option = match a.option.as_str() {
        "yes" => VoteOption::Yes,
        "no" => VoteOption::No,
        "abstain" => VoteOption::Abstain,
        "veto" | "no-with-veto" => VoteOption::NoWithVeto,
        other => anyhow::bail!("--option {other:?}: write yes, no, abstain or veto"),
    };
    submit(&a.signer, governance(GovernanceCall::vote(a.proposal, option), 0, a.gas)).await.map(|_| ())
}

fn action(call: StakingCall, value: Amount) -> Action {
    Action::Module { module: aether_module_staking::NAME.into(), call: call.encode(), value, gas_limit: STAKING_GAS }
}

pub(crate) async fn stake(a: StakeArgs) -> anyhow::Result<()> {
    let identity = keys::read_key_file(&a.validator_key)?;
    let operator = match (&a.signer.key, a.signer.dev) {
        (Some(path), _) => keys::read_key_file(path)?,
        (None, _) => keys::dev_account(),
    };
    // The consensus key the chain's engine expects for this identity.
    let client = HttpClientBuilder::default().request_timeout(Duration::from_secs(10)).build(&a.signer.rpc)?;
    let status = client.status().await.with_context(|| format!("cannot reach the node at {}", a.signer.rpc))?;
    let registry = crate::presets().default_preset().registry();
    let consensus_key = registry.consensus_key(&status.engine, &identity);
    let call = StakingCall::register(&identity, &operator.address(), consensus_key, &a.name, a.commission_bps);
    println!("registering validator {} ({}) operated by {}", a.name, identity.public(), operator.address());
    submit(&a.signer, action(call, a.amount)).await.map(|_| ())
}

pub(crate) async fn delegate(a: DelegateArgs) -> anyhow::Result<()> {
    submit(&a.signer, action(StakingCall::delegate(a.validator), a.amount)).await.map(|_| ())
}

pub(crate) async fn unstake(a: UnstakeArgs) -> anyhow::Result<()> {
    submit(&a.signer, action(StakingCall::unbond(a.validator, a.shares), 0)).await.map(|_| ())
}

pub(crate) async fn unjail(a: UnjailArgs) -> anyhow::Result<()> {
    submit(&a.signer, action(StakingCall::unjail(a.validator), 0)).await.map(|_| ())
}

#[derive(Args)]
pub(crate) struct ValidatorsArgs {
    /// The epoch (default: the epoch of the node's next block).
    #[arg(long)]
    pub(crate) epoch: Option<u64>,
    /// The chain's genesis file: the set is then proven from it, not taken on the node's word.
    #[arg(long)]
    pub(crate) genesis: Option<PathBuf>,
    #[arg(long, default_value = "http://127.0.0.1:9944")]
    pub(crate) rpc: String,
}

/// `aether validators`.
pub(crate) async fn validators(a: ValidatorsArgs) -> anyhow::Result<()> {
    let client = HttpClientBuilder::default().request_timeout(Duration::from_secs(30)).build(&a.rpc)?;
    let status = client.status().await.with_context(|| format!("cannot reach the node at {}", a.rpc))?;
    let view = client.validator_set(a.epoch, None).await.with_context(|| format!("aether_getValidatorSet through {}", a.rpc))?;
    let last = view.last_height.map_or("-".to_string(), |h| h.to_string());
    println!("epoch {} (heights {}..={last}), {} validators", view.epoch, view.first_height, view.validators.len());
    for v in &view.validators {
        println!("  {:<20} {} stake {}", v.name, v.identity, v.stake);
    }
    let Some(path) = a.genesis else { return Ok(()) };
    let genesis = aether_framework::types::Genesis::load(&path)?;
    let registry = crate::presets().default_preset().registry();
    let factory = registry.consensus.get(&status.engine)?.factory.clone();
    let make = |ctx: &aether_framework::consensus::EngineContext| {
        factory(ctx, &aether_framework::registry::PluginSettings::empty(format!("consensus.{}", status.engine))).map_err(|e| e.to_string())
    };
    let proven = aether_framework::light::verify_validator_set(&genesis, view.epoch, &view.changes, make)
        .map_err(|e| anyhow::anyhow!("the node's answer does not prove the set: {e}"))?;
    if proven != view.validators {
        anyhow::bail!("the proven set differs from the set the node named");
    }
    println!("proven from {} through {} epoch changes", path.display(), view.changes.len());
    Ok(())
}
