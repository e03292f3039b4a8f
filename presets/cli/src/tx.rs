//! `aether tx` (transfer, deploy, call: signed and submitted over RPC) and `aether query`.

use std::path::PathBuf;
use std::time::Duration;

use aether_framework::codec;
use aether_framework::types::{Action, Address, Amount, Hash, Receipt, TxBody};
use aether_presets::keys;
use aether_rpc::AetherApiClient;
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use jsonrpsee::http_client::HttpClientBuilder;

#[derive(Subcommand)]
pub(crate) enum TxCommand {
    /// Transfer tokens.
    Transfer(TransferArgs),
    /// Deploy a contract from a .wasm or .wat file; prints its address.
    Deploy(DeployArgs),
    /// Call a contract's method.
    Call(CallArgs),
    /// Call a runtime module.
    Module(ModuleArgs),
    /// Register a validator with the staking module, bonding the amount as its self-bond
    /// (signed by the operator's key; the validator's identity key signs the registration).
    Stake(crate::staking::StakeArgs),
    /// Delegate tokens to a validator for shares of its stake.
    Delegate(crate::staking::DelegateArgs),
    /// Unbond shares from a validator; the tokens come back after the unbonding epochs.
    Unstake(crate::staking::UnstakeArgs),
    /// Take your jailed validator back into the running (after its jail epochs).
    Unjail(crate::staking::UnjailArgs),
    /// Open a governance proposal: module calls run, all or nothing, if it passes.
    Propose(crate::staking::ProposeArgs),
    /// Vote on a governance proposal: a validator of the current set (with its identity key)
    /// votes its stake; anyone delegating to the set votes its delegated tokens, which then
    /// leave its validators' votes for this one.
    Vote(crate::staking::VoteArgs),
}

#[derive(Args)]
pub(crate) struct ModuleArgs {
    /// The module's name.
    #[arg(long)]
    pub(crate) module: String,
    /// The call, 0x hex (the module decodes it).
    #[arg(long, default_value = "")]
    pub(crate) call: String,
    /// Value sent to the module.
    #[arg(long, default_value_t = 0)]
    pub(crate) value: Amount,
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) gas: u64,
    #[command(flatten)]
    pub(crate) signer: SignerArgs,
}

#[derive(Args)]
pub(crate) struct ModuleQueryArgs {
    #[arg(long)]
    pub(crate) module: String,
    /// Which question (the module defines them).
    #[arg(long)]
    pub(crate) path: String,
    /// The question's argument, 0x hex.
    #[arg(long, default_value = "")]
    pub(crate) data: String,
    #[arg(long, default_value = "http://127.0.0.1:9944")]
    pub(crate) rpc: String,
}

#[derive(Args)]
pub(crate) struct TransferArgs {
    /// Recipient address (0x + 40 hex digits).
    #[arg(long)]
    pub(crate) to: Address,
    #[arg(long)]
    pub(crate) amount: Amount,
    #[arg(long, default_value = "")]
    pub(crate) memo: String,
    #[command(flatten)]
    pub(crate) signer: SignerArgs,
}

#[derive(Args)]
pub(crate) struct DeployArgs {
    /// Contract code: WebAssembly binary (.wasm) or text (.wat).
    #[arg(long)]
    pub(crate) code: PathBuf,
    /// Input for the contract's `init` export, 0x hex.
    #[arg(long, default_value = "")]
    pub(crate) input: String,
    /// Value sent to the new contract.
    #[arg(long, default_value_t = 0)]
    pub(crate) value: Amount,
    #[arg(long, default_value_t = 5_000_000)]
    pub(crate) gas: u64,
    #[command(flatten)]
    pub(crate) signer: SignerArgs,
}

#[derive(Args)]
pub(crate) struct CallArgs {
    #[arg(long)]
    pub(crate) contract: Address,
    #[arg(long)]
    pub(crate) method: String,
    /// Call input, 0x hex.
    #[arg(long, default_value = "")]
    pub(crate) input: String,
    /// Value sent with the call.
    #[arg(long, default_value_t = 0)]
    pub(crate) value: Amount,
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) gas: u64,
    #[command(flatten)]
    pub(crate) signer: SignerArgs,
}

#[derive(Args)]
pub(crate) struct QueryArgs {
    #[arg(long)]
    pub(crate) contract: Address,
    #[arg(long)]
    pub(crate) method: String,
    /// Call input, 0x hex.
    #[arg(long, default_value = "")]
    pub(crate) input: String,
    /// Caller the contract sees (default: the zero address).
    #[arg(long)]
    pub(crate) caller: Option<Address>,
    #[arg(long, default_value = "http://127.0.0.1:9944")]
    pub(crate) rpc: String,
}

/// Who signs, which node receives it, and the fee.
#[derive(Args)]
pub(crate) struct SignerArgs {
    /// Fee; for deploy and call the default is the least the gas limit needs.
    #[arg(long)]
    pub(crate) fee: Option<Amount>,
    /// Signing key file.
    #[arg(long, conflicts_with = "dev", required_unless_present = "dev")]
    pub(crate) key: Option<PathBuf>,
    /// Sign with the well-known development account.
    #[arg(long)]
    pub(crate) dev: bool,
    #[arg(long, default_value = "http://127.0.0.1:9944")]
    pub(crate) rpc: String,
    /// Return after submitting instead of waiting for the commit.
    #[arg(long)]
    pub(crate) no_wait: bool,
}

/// `aether tx ...`.
pub(crate) async fn run(command: TxCommand) -> anyhow::Result<()> {
    match command {
        TxCommand::Transfer(a) => {
            let action = Action::Transfer { to: a.to, amount: a.amount, memo: a.memo.into_bytes() };
            submit(&a.signer, action).await.map(|_| ())
        }
        TxCommand::Deploy(a) => deploy(a).await,
        TxCommand::Call(a) => call(a).await,
        TxCommand::Module(a) => {
            let action = Action::Module { module: a.module, call: parse_hex("--call", &a.call)?, value: a.value, gas_limit: a.gas };
            submit(&a.signer, action).await.map(|_| ())
        }
        TxCommand::Stake(a) => crate::staking::stake(a).await,
        TxCommand::Delegate(a) => crate::staking::delegate(a).await,
        TxCommand::Unstake(a) => crate::staking::unstake(a).await,
        TxCommand::Unjail(a) => crate::staking::unjail(a).await,
        TxCommand::Propose(a) => crate::staking::propose(a).await,
        TxCommand::Vote(a) => crate::staking::vote(a).await,
    }
}

fn parse_hex(what: &str, text: &str) -> anyhow::Result<Vec<u8>> {
    hex::decode(text.strip_prefix("0x").unwrap_or(text)).with_context(|| format!("{what} is not hex"))
}

/// Signs `action` with the signer's key at its next nonce, submits it, and (unless --no-wait)
/// waits for the commit and prints the receipt. Returns the receipt if it waited.
pub(crate) async fn submit(signer: &SignerArgs, action: Action) -> anyhow::Result<Option<Receipt>> {
    let key = match (&signer.key, signer.dev) {
        (Some(path), _) => keys::read_key_file(path)?,
        (None, true) => keys::dev_account(),
        (None, false) => bail!("give --key FILE or --dev"),
    };
    let client = HttpClientBuilder::default().request_timeout(Duration::from_secs(10)).build(&signer.rpc)?;
    let status = client.status().await.with_context(|| format!("cannot reach the node at {}", signer.rpc))?;
    let account = client.account(key.address()).await?;
    let fee = match signer.fee {
        Some(fee) => fee,
        None => chain_params(&client).await.min_fee(action.gas_limit()).max(1),
    };
    let tx = TxBody { chain_id: status.chain_id, sender: key.public(), nonce: account.next_nonce, fee, action }.sign(&key);
    let hash: Hash = client.submit_transaction(format!("0x{}", hex::encode(codec::encode(&tx)))).await?;
    println!("submitted {hash}");
    if signer.no_wait {
        return Ok(None);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let view = client.transaction(hash).await?;
        if view.status == "committed" {
            let receipt = view.receipt.context("committed transaction without receipt")?;
            let loc = view.location.context("committed transaction without location")?;
            println!("committed in block {} ({}): {:?}", loc.height, loc.block_hash, receipt.status);
            if receipt.gas_used > 0 {
                println!("gas used {}", receipt.gas_used);
            }
            if !receipt.output.is_empty() {
                println!("output 0x{}", hex::encode(&receipt.output));
            }
            for e in &receipt.events {
                println!("event {} topic {:?} data 0x{}", e.emitter, String::from_utf8_lossy(&e.topic), hex::encode(&e.data));
            }
            return Ok(Some(receipt));
        }
        if tokio::time::Instant::now() > deadline {
            bail!("not committed after 60 s (status {})", view.status);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn deploy(a: DeployArgs) -> anyhow::Result<()> {
    let text = std::fs::read(&a.code).with_context(|| format!("reading {}", a.code.display()))?;
    let code = wat::parse_bytes(&text).with_context(|| format!("{} is neither WebAssembly nor valid WAT", a.code.display()))?.into_owned();
    // Refuse here what the chain would refuse, with the rule, before paying a fee for it.
    aether_framework::vm::prepare(&code, &aether_framework::vm::validate::Limits::default())?;
    let action = Action::Deploy { code, input: parse_hex("--input", &a.input)?, value: a.value, gas_limit: a.gas };
    if let Some(receipt) = submit(&a.signer, action).await? {
        if let Some(address) = receipt.contract_address {
            println!("contract {address}");
        }
    }
    Ok(())
}

async fn call(a: CallArgs) -> anyhow::Result<()> {
    let action =
        Action::Call { contract: a.contract, method: a.method, input: parse_hex("--input", &a.input)?, value: a.value, gas_limit: a.gas };
    submit(&a.signer, action).await.map(|_| ())
}

pub(crate) async fn query(a: QueryArgs) -> anyhow::Result<()> {
    let client = HttpClientBuilder::default().request_timeout(Duration::from_secs(10)).build(&a.rpc)?;
    let input = format!("0x{}", hex::encode(parse_hex("--input", &a.input)?));
    let view = client
        .contract_query(a.contract, a.method, Some(input), a.caller, None)
        .await
        .with_context(|| format!("query through {}", a.rpc))?;
    println!("{} at height {} (gas {})", view.status, view.height, view.gas_used);
    if let Some(reason) = view.reason {
        println!("reason {reason}");
    }
    println!("output 0x{}", hex::encode(&view.output));
    Ok(())
}

/// The chain parameters the node's next block runs under (its `chain` module's `params`): the
/// defaults from a node too old to answer.
async fn chain_params(client: &jsonrpsee::http_client::HttpClient) -> aether_framework::chain::ChainParams {
    let answer = client.module_query("chain".into(), "params".into(), None, None).await;
    answer.ok().and_then(|view| serde_json::from_slice(&view.output).ok()).unwrap_or_default()
}

/// `aether module-query`.
pub(crate) async fn module_query(a: ModuleQueryArgs) -> anyhow::Result<()> {
    let client = HttpClientBuilder::default().request_timeout(Duration::from_secs(10)).build(&a.rpc)?;
    let data = format!("0x{}", hex::encode(parse_hex("--data", &a.data)?));
    let view = client.module_query(a.module, a.path, Some(data), None).await.with_context(|| format!("module query through {}", a.rpc))?;
    println!("answered at height {} (gas {})", view.height, view.gas_used);
    println!("output 0x{}", hex::encode(&view.output));
    // Many modules answer JSON (`chain`'s `params`, staking's `params`): show it readably too.
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(&view.output) {
        println!("json {json}");
    }
    Ok(())
}
