//! # aether-cli
//!
//! The `aether` command — initialise chains, run nodes and devnets, manage keys, send
//! transactions, list presets and plugins, take snapshots, benchmark — as a library, so a chain
//! builder's own binary is the same command over its own presets:
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     let mine = aether_presets::memory()
//!         .renamed("my-chain", "solo, in memory, 5 s blocks")
//!         .with_defaults("[consensus.solo]\nblock_interval_ms = 5000\n");
//!     aether_cli::main(aether_presets::Presets::new(vec![mine]).expect("one preset"))
//! }
//! ```
//!
//! Every command is included; `bench` only with the `bench` feature (on by default), which
//! compiles the default preset's plugins. One module per command group.

#[cfg(feature = "bench")]
mod bench;
mod chain;
mod devnet;
mod events;
mod keys;
mod node;
mod snapshot;
mod staking;
mod tx;

use std::process::ExitCode;
use std::sync::OnceLock;

use aether_presets::Presets;
use clap::{Parser, Subcommand};

/// The presets this binary was started with (set once by [`main`]).
static PRESETS: OnceLock<Presets> = OnceLock::new();

pub(crate) fn presets() -> &'static Presets {
    PRESETS.get_or_init(aether_presets::all)
}

#[derive(Parser)]
#[command(name = "aether", version, about = "Aether: a blockchain framework of swappable parts")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a chain folder: genesis, validator and faucet keys, aether.toml.
    Init(chain::InitArgs),
    /// Run a node.
    Run(node::RunArgs),
    /// Run every validator of a chain as its own process on 127.0.0.1, with a live table until
    /// Ctrl-C (or all in this process with --in-process); without --dir, a throwaway chain with
    /// a funded dev account.
    Devnet(devnet::DevnetArgs),
    /// A node's connected peers and network counters (over its RPC).
    Peers(devnet::PeersArgs),
    /// Generate or inspect key files.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Sign and submit transactions through a node's RPC.
    #[command(subcommand)]
    Tx(tx::TxCommand),
    /// Run a read-only contract call on a node's committed state (nothing is kept).
    Query(tx::QueryArgs),
    /// Ask a runtime module a read-only question on a node's committed state.
    ModuleQuery(tx::ModuleQueryArgs),
    /// The events of a committed block's module hooks and of the ledger (`hook_failed`,
    /// `module_upgraded`, slashing and jailing), from a node.
    Events(events::EventsArgs),
    /// An epoch's validator set from a node, checked from the genesis file as a light client
    /// does (each epoch's last header, its certificate under that epoch's set, the next set).
    Validators(staking::ValidatorsArgs),
    /// List the presets this binary knows.
    Presets,
    /// List the plugins of a preset (default: the binary's default preset), by slot.
    Plugins {
        #[arg(long)]
        preset: Option<String>,
    },
    /// Measure throughput and latency.
    #[cfg(feature = "bench")]
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Export the state at a height to a file, or start a new node's data directory from one.
    #[command(subcommand)]
    Snapshot(snapshot::SnapshotCommand),
}

/// Runs the command line (`std::env::args`) over `presets` (the first is the default) and
/// returns the process's exit code. Call it once, from `main`, outside any async runtime.
pub fn main(presets: Presets) -> ExitCode {
    if PRESETS.set(presets).is_err() {
        eprintln!("error: aether_cli::main was called twice");
        return ExitCode::FAILURE;
    }
    let filter = std::env::var("AETHER_LOG").or_else(|_| std::env::var("RUST_LOG")).unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Exits while the runtime is alive: a failed command does not wait for its tasks.
    if let Err(e) = runtime.block_on(dispatch(cli.command)) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
    ExitCode::SUCCESS
}

async fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Init(a) => chain::init(a),
        Command::Devnet(a) => devnet::devnet(a).await,
        Command::Peers(a) => devnet::peers(a).await,
        Command::Run(a) => node::run(a).await,
        Command::Keys(k) => keys::run(k),
        Command::Tx(t) => tx::run(t).await,
        Command::Query(a) => tx::query(a).await,
        Command::ModuleQuery(a) => tx::module_query(a).await,
        Command::Events(a) => events::events(a).await,
        Command::Validators(a) => staking::validators(a).await,
        Command::Presets => {
            node::list_presets();
            Ok(())
        }
        Command::Plugins { preset } => node::list_plugins(preset.as_deref()),
        #[cfg(feature = "bench")]
        Command::Bench(b) => bench::run(b).await,
        Command::Snapshot(s) => snapshot::run(s),
    }
}
