//! The `aether` command: initialise chains, run nodes, manage keys, send transactions, list
//! presets and plugins, and benchmark.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use aether_framework::codec;
use aether_framework::config::ConfigSource;
use aether_framework::types::{Action, Address, Amount, Hash, Keypair, TxBody};
use aether_presets::{bench, bench_validators, init, keys, PRESETS};
use aether_rpc::AetherApiClient;
use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use jsonrpsee::http_client::HttpClientBuilder;

#[derive(Parser)]
#[command(name = "aether", version, about = "Aether: a blockchain framework of swappable parts")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a chain folder: genesis, validator and faucet keys, aether.toml.
    Init(InitArgs),
    /// Run a node.
    Run(RunArgs),
    /// Run every validator of a chain in this process over the in-process network (a local
    /// multi-validator HotStuff chain; without --dir, a throwaway one with a funded dev account).
    Devnet(DevnetArgs),
    /// Generate or inspect key files.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Sign and submit transactions through a node's RPC.
    #[command(subcommand)]
    Tx(TxCommand),
    /// Run a read-only contract call on a node's committed state (nothing is kept).
    Query(QueryArgs),
    /// List the presets this binary knows.
    Presets,
    /// List the plugins of a preset, by slot.
    Plugins {
        #[arg(long, default_value = "aether")]
        preset: String,
    },
    /// Measure throughput and latency.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Export the state at a height to a file, or start a new node's data directory from one.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
}

#[derive(Subcommand)]
enum SnapshotCommand {
    /// Write the state at a height, its block and a checksum to a file (stop the node first).
    Export {
        #[command(flatten)]
        node: NodeArgs,
        /// Height to export (default: the head); must be within `[storage] keep_recent`.
        #[arg(long)]
        height: Option<u64>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify a snapshot and write it into this node's empty data directory; then `aether run`.
    Import {
        #[command(flatten)]
        node: NodeArgs,
        #[arg(long)]
        file: PathBuf,
    },
}

/// Which node a command acts on.
#[derive(Args)]
struct NodeArgs {
    /// Chain folder made by `aether init` (reads DIR/aether.toml).
    #[arg(long, conflicts_with = "config")]
    dir: Option<PathBuf>,
    /// Config file (default: ./aether.toml).
    #[arg(long)]
    config: Option<PathBuf>,
}

impl NodeArgs {
    fn source(&self) -> anyhow::Result<(&'static aether_framework::registry::Preset, ConfigSource)> {
        let file = match (&self.dir, &self.config) {
            (Some(d), _) => d.join("aether.toml"),
            (None, Some(c)) => c.clone(),
            (None, None) => PathBuf::from("aether.toml"),
        };
        if !file.is_file() {
            bail!("config file {} does not exist", file.display());
        }
        let preset = aether_presets::find(&init::preset_of(&file)?.unwrap_or_else(|| "aether".into()))?;
        Ok((preset, ConfigSource { file: Some(file), env: true, overrides: vec![], base_dir: None }))
    }
}

#[derive(Args)]
struct InitArgs {
    /// Folder to create the chain in.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    #[arg(long, default_value = "aether")]
    preset: String,
    #[arg(long, default_value = "aether-local")]
    chain_id: String,
    /// Also fund the well-known development account (never on a real chain).
    #[arg(long)]
    dev_account: bool,
    /// RPC listen address to write into aether.toml.
    #[arg(long)]
    rpc_listen: Option<SocketAddr>,
    /// Validators in genesis (equal stake); keys go to keys/validator-I.json when more than one.
    #[arg(long, default_value_t = 1)]
    validators: usize,
}

#[derive(Args)]
struct DevnetArgs {
    /// Chain folder made by `aether init --validators N`.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Validators of the throwaway chain made when --dir is not given.
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// Validator I serves RPC on this address's port + I.
    #[arg(long, default_value = "127.0.0.1:9944")]
    rpc_listen: SocketAddr,
    /// Override any setting for every validator (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

#[derive(Args)]
struct RunArgs {
    /// Chain folder made by `aether init` (reads DIR/aether.toml).
    #[arg(long, conflicts_with = "config")]
    dir: Option<PathBuf>,
    /// Config file (default: ./aether.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// A throwaway single-validator chain with a funded dev account, in a new temporary folder.
    #[arg(long, conflicts_with_all = ["dir", "config"])]
    dev: bool,
    /// Preset (default: the config file's `preset`, else "aether").
    #[arg(long)]
    preset: Option<String>,
    /// Override any setting: --set consensus.solo.block_interval_ms=500 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Shorthand for --set rpc.listen=ADDR.
    #[arg(long)]
    rpc_listen: Option<SocketAddr>,
    /// Shorthand for --set node.data_dir=PATH.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Write a new ed25519 key file.
    Generate {
        #[arg(long)]
        out: PathBuf,
    },
    /// Show a key file's public key and address.
    Show { file: PathBuf },
    /// Show the well-known development account (funded by `run --dev`).
    Dev,
}

#[derive(Subcommand)]
enum TxCommand {
    /// Transfer tokens.
    Transfer(TransferArgs),
    /// Deploy a contract from a .wasm or .wat file; prints its address.
    Deploy(DeployArgs),
    /// Call a contract's method.
    Call(CallArgs),
}

#[derive(Args)]
struct TransferArgs {
    /// Recipient address (0x + 40 hex digits).
    #[arg(long)]
    to: Address,
    #[arg(long)]
    amount: Amount,
    #[arg(long, default_value = "")]
    memo: String,
    #[command(flatten)]
    signer: SignerArgs,
}

#[derive(Args)]
struct DeployArgs {
    /// Contract code: WebAssembly binary (.wasm) or text (.wat).
    #[arg(long)]
    code: PathBuf,
    /// Input for the contract's `init` export, 0x hex.
    #[arg(long, default_value = "")]
    input: String,
    /// Value sent to the new contract.
    #[arg(long, default_value_t = 0)]
    value: Amount,
    #[arg(long, default_value_t = 5_000_000)]
    gas: u64,
    #[command(flatten)]
    signer: SignerArgs,
}

#[derive(Args)]
struct CallArgs {
    #[arg(long)]
    contract: Address,
    #[arg(long)]
    method: String,
    /// Call input, 0x hex.
    #[arg(long, default_value = "")]
    input: String,
    /// Value sent with the call.
    #[arg(long, default_value_t = 0)]
    value: Amount,
    #[arg(long, default_value_t = 1_000_000)]
    gas: u64,
    #[command(flatten)]
    signer: SignerArgs,
}

#[derive(Args)]
struct QueryArgs {
    #[arg(long)]
    contract: Address,
    #[arg(long)]
    method: String,
    /// Call input, 0x hex.
    #[arg(long, default_value = "")]
    input: String,
    /// Caller the contract sees (default: the zero address).
    #[arg(long)]
    caller: Option<Address>,
    #[arg(long, default_value = "http://127.0.0.1:9944")]
    rpc: String,
}

/// Who signs, which node receives it, and the fee.
#[derive(Args)]
struct SignerArgs {
    /// Fee; for deploy and call the default is the least the gas limit needs.
    #[arg(long)]
    fee: Option<Amount>,
    /// Signing key file.
    #[arg(long, conflicts_with = "dev", required_unless_present = "dev")]
    key: Option<PathBuf>,
    /// Sign with the well-known development account.
    #[arg(long)]
    dev: bool,
    #[arg(long, default_value = "http://127.0.0.1:9944")]
    rpc: String,
    /// Return after submitting instead of waiting for the commit.
    #[arg(long)]
    no_wait: bool,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Signed transfers over RPC into a fresh single-validator node.
    Transfers {
        #[arg(long, default_value_t = 5000)]
        txs: usize,
        #[arg(long, default_value_t = 16)]
        senders: usize,
        #[arg(long, default_value = "rocksdb")]
        storage: String,
    },
    /// HotStuff validators in one process (in-process network) beside one solo validator, on
    /// the same pre-signed transfers: committed tx/s and commit latency.
    Validators {
        #[arg(long, default_value_t = 5000)]
        txs: usize,
        #[arg(long, default_value_t = 16)]
        senders: usize,
        #[arg(long, default_value_t = 4)]
        validators: usize,
        #[arg(long, default_value = "rocksdb")]
        storage: String,
    },
}

fn main() {
    let filter = std::env::var("AETHER_LOG").or_else(|_| std::env::var("RUST_LOG")).unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    if let Err(e) = runtime.block_on(dispatch(cli.command)) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Init(a) => cmd_init(a),
        Command::Devnet(a) => cmd_devnet(a).await,
        Command::Run(a) => cmd_run(a).await,
        Command::Keys(k) => cmd_keys(k),
        Command::Tx(TxCommand::Transfer(a)) => {
            let action = Action::Transfer { to: a.to, amount: a.amount, memo: a.memo.into_bytes() };
            submit(&a.signer, action).await.map(|_| ())
        }
        Command::Tx(TxCommand::Deploy(a)) => cmd_deploy(a).await,
        Command::Tx(TxCommand::Call(a)) => cmd_call(a).await,
        Command::Query(a) => cmd_query(a).await,
        Command::Presets => {
            for p in PRESETS {
                println!("{:<10} {}", p.name, p.description);
            }
            Ok(())
        }
        Command::Plugins { preset } => {
            let registry = aether_presets::find(&preset)?.registry();
            for (slot, name, description) in registry.listing() {
                println!("{:<20} {:<10} {}", format!("[{}] {}", slot.section(), slot.selector()), name, description);
            }
            Ok(())
        }
        Command::Snapshot(SnapshotCommand::Export { node, height, out }) => {
            let (preset, source) = node.source()?;
            let (height, bytes) = aether_presets::export_snapshot(preset, &source, height, &out)?;
            println!("exported the state at height {height} to {} ({bytes} bytes)", out.display());
            Ok(())
        }
        Command::Snapshot(SnapshotCommand::Import { node, file }) => {
            let (preset, source) = node.source()?;
            let s = aether_presets::import_snapshot(preset, &source, &file)?;
            println!(
                "imported height {} ({} state entries, state root {}); start the node with `aether run`",
                s.height(),
                s.contents.entries.len(),
                s.contents.block.header.state_root
            );
            Ok(())
        }
        Command::Bench(BenchCommand::Validators { txs, senders, validators, storage }) => {
            let opts = bench_validators::ValidatorsBenchOptions {
                txs,
                senders,
                validators,
                storage,
                timeout: std::time::Duration::from_secs(600),
            };
            let (baseline, hotstuff) = bench_validators::run_validators_bench(&opts).await?;
            println!(
                "transfers: {txs} from {senders} senders, each sender's to one validator (gossiped to the rest), storage {}",
                opts.storage
            );
            println!("{baseline}  (baseline)");
            println!("{hotstuff}");
            println!("  ratio hotstuff / solo committed tx/s: {:.3}", hotstuff.committed_per_sec / baseline.committed_per_sec);
            Ok(())
        }
        Command::Bench(BenchCommand::Transfers { txs, senders, storage }) => {
            let report = bench::run_transfer_bench(&bench::BenchOptions { txs, senders, storage, ..Default::default() }).await?;
            println!("{report}");
            Ok(())
        }
    }
}

fn cmd_init(a: InitArgs) -> anyhow::Result<()> {
    let mut opts = init::InitOptions::new(&a.dir);
    opts.preset = a.preset;
    opts.chain_id = a.chain_id;
    opts.fund_dev_account = a.dev_account;
    opts.rpc_listen = a.rpc_listen;
    opts.validators = a.validators;
    let out = init::init_chain(&opts)?;
    println!("initialised chain {:?} in {}", opts.chain_id, a.dir.display());
    println!("  config         {}", out.config.display());
    println!("  genesis        {}", out.genesis.display());
    for (i, (path, address)) in out.validator_keys.iter().enumerate() {
        println!("  validator {i:<4} {} (address {address})", path.display());
    }
    println!("  faucet key     {} (address {}, balance {})", out.faucet_key.display(), out.faucet_address, opts.faucet_balance);
    if a.validators == 1 {
        println!("run it with: aether run --dir {}", a.dir.display());
    } else {
        println!("run all {} validators in one process with: aether devnet --dir {}", a.validators, a.dir.display());
    }
    Ok(())
}

fn parse_overrides(set: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    set.iter()
        .map(|s| {
            let (k, v) = s.split_once('=').with_context(|| format!("--set {s:?}: expected KEY=VALUE"))?;
            Ok((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

async fn cmd_devnet(a: DevnetArgs) -> anyhow::Result<()> {
    let dir = match a.dir {
        Some(d) => d,
        None => {
            let dir = tempfile::Builder::new().prefix("aether-devnet-").tempdir()?.keep();
            let mut opts = init::InitOptions::new(&dir);
            opts.chain_id = "aether-devnet".into();
            opts.fund_dev_account = true;
            opts.validators = a.validators;
            init::init_chain(&opts)?;
            println!("devnet chain in {} (delete it when done)", dir.display());
            println!("dev account {} is funded: aether tx transfer --dev --to ADDRESS --amount N", keys::dev_account().address());
            dir
        }
    };
    let overrides = parse_overrides(&a.set)?;
    let nodes = aether_presets::devnet::launch_devnet(&dir, a.rpc_listen, &overrides).await?;
    for (i, n) in nodes.iter().enumerate() {
        if let Some(rpc) = &n.rpc {
            println!("validator {i}: JSON-RPC on {}", rpc.http_url());
        }
    }
    let stopped = futures::future::select_all(nodes.iter().map(|n| Box::pin(n.node.stopped())));
    let failed = tokio::select! {
        _ = wait_for_shutdown_signal() => false,
        _ = stopped => true,
    };
    tracing::info!("shutting down");
    let mut errors = Vec::new();
    for (i, n) in nodes.into_iter().enumerate() {
        if let Err(e) = n.shutdown().await {
            errors.push(format!("validator {i}: {e:#}"));
        }
    }
    if failed || !errors.is_empty() {
        bail!("a validator stopped unexpectedly: {}", errors.join("; "));
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

async fn cmd_run(a: RunArgs) -> anyhow::Result<()> {
    let config_file = if a.dev {
        let dir = tempfile::Builder::new().prefix("aether-dev-").tempdir()?.keep();
        let mut opts = init::InitOptions::new(&dir);
        opts.chain_id = "aether-dev".into();
        opts.fund_dev_account = true;
        let out = init::init_chain(&opts)?;
        let dev = keys::dev_account();
        println!("dev chain in {} (delete it when done)", dir.display());
        println!("dev account {} is funded; send from it with: aether tx transfer --dev --to ADDRESS --amount N", dev.address());
        out.config
    } else {
        match (a.dir, a.config) {
            (Some(d), _) => d.join("aether.toml"),
            (None, Some(c)) => c,
            (None, None) => PathBuf::from("aether.toml"),
        }
    };
    if !config_file.is_file() {
        bail!(
            "config file {} does not exist; create a chain with `aether init --dir DIR` or use `aether run --dev`",
            config_file.display()
        );
    }
    let preset_name = match a.preset {
        Some(p) => p,
        None => init::preset_of(&config_file)?.unwrap_or_else(|| "aether".into()),
    };
    let preset = aether_presets::find(&preset_name)?;
    let mut overrides = Vec::new();
    for s in &a.set {
        let (k, v) = s.split_once('=').with_context(|| format!("--set {s:?}: expected KEY=VALUE"))?;
        overrides.push((k.trim().to_string(), v.trim().to_string()));
    }
    if let Some(addr) = a.rpc_listen {
        overrides.push(("rpc.listen".into(), format!("\"{addr}\"")));
    }
    if let Some(d) = a.data_dir {
        overrides.push(("node.data_dir".into(), format!("{:?}", d.display().to_string())));
    }
    let source = ConfigSource { file: Some(config_file), env: true, overrides, base_dir: None };
    let node = aether_presets::launch(preset, &source).await?;
    if let Some(rpc) = &node.rpc {
        println!("JSON-RPC on {} (HTTP and WebSocket), health at {}/health", rpc.http_url(), rpc.http_url());
    }
    tokio::select! {
        _ = wait_for_shutdown_signal() => {
            tracing::info!("shutting down");
            node.shutdown().await?;
            tracing::info!("stopped cleanly");
            Ok(())
        }
        _ = node.node.stopped() => {
            // The driver only stops by itself on a fatal error; report it and exit non-zero.
            node.shutdown().await.context("the node stopped")?;
            bail!("the node stopped unexpectedly")
        }
    }
}

async fn wait_for_shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

fn cmd_keys(k: KeysCommand) -> anyhow::Result<()> {
    let show = |key: &Keypair| println!("public key {}\naddress    {}", key.public(), key.address());
    match k {
        KeysCommand::Generate { out } => {
            let key = Keypair::generate();
            keys::write_key_file(&out, &key)?;
            println!("wrote {}", out.display());
            show(&key);
        }
        KeysCommand::Show { file } => show(&keys::read_key_file(&file)?),
        KeysCommand::Dev => show(&keys::dev_account()),
    }
    Ok(())
}

fn parse_hex(what: &str, text: &str) -> anyhow::Result<Vec<u8>> {
    hex::decode(text.strip_prefix("0x").unwrap_or(text)).with_context(|| format!("{what} is not hex"))
}

/// Signs `action` with the signer's key at its next nonce, submits it, and (unless --no-wait)
/// waits for the commit and prints the receipt. Returns the receipt if it waited.
async fn submit(signer: &SignerArgs, action: Action) -> anyhow::Result<Option<aether_framework::types::Receipt>> {
    let key = match (&signer.key, signer.dev) {
        (Some(path), _) => keys::read_key_file(path)?,
        (None, true) => keys::dev_account(),
        (None, false) => bail!("give --key FILE or --dev"),
    };
    let client = HttpClientBuilder::default().request_timeout(Duration::from_secs(10)).build(&signer.rpc)?;
    let status = client.status().await.with_context(|| format!("cannot reach the node at {}", signer.rpc))?;
    let account = client.account(key.address()).await?;
    let fee = signer.fee.unwrap_or_else(|| aether_framework::vm::gas::min_fee(action.gas_limit()).max(1));
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

async fn cmd_deploy(a: DeployArgs) -> anyhow::Result<()> {
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

async fn cmd_call(a: CallArgs) -> anyhow::Result<()> {
    let action =
        Action::Call { contract: a.contract, method: a.method, input: parse_hex("--input", &a.input)?, value: a.value, gas_limit: a.gas };
    submit(&a.signer, action).await.map(|_| ())
}

async fn cmd_query(a: QueryArgs) -> anyhow::Result<()> {
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
