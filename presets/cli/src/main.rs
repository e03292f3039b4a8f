//! The `aether` command: initialise chains, run nodes, manage keys, send transactions, list
//! presets and plugins, take snapshots, and benchmark. One module per command group.

mod bench;
mod chain;
mod devnet;
mod keys;
mod node;
mod snapshot;
mod tx;

use clap::{Parser, Subcommand};

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
    /// List the presets this binary knows.
    Presets,
    /// List the plugins of a preset, by slot.
    Plugins {
        #[arg(long, default_value = "aether")]
        preset: String,
    },
    /// Measure throughput and latency.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Export the state at a height to a file, or start a new node's data directory from one.
    #[command(subcommand)]
    Snapshot(snapshot::SnapshotCommand),
}

fn main() {
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
            std::process::exit(1);
        }
    };
    // Exits while the runtime is alive: a failed command does not wait for its tasks.
    if let Err(e) = runtime.block_on(dispatch(cli.command)) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
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
        Command::Presets => {
            node::list_presets();
            Ok(())
        }
        Command::Plugins { preset } => node::list_plugins(&preset),
        Command::Bench(b) => bench::run(b).await,
        Command::Snapshot(s) => snapshot::run(s),
    }
}
