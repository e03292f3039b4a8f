//! `aether bench`: load generators that measure committed throughput and latency, each
//! beside a baseline measured in the same run.

pub mod module_gas;
pub mod modules;
pub mod processes;
pub mod state_sync;
pub mod sync;
pub mod transfers;
pub mod validators;

use clap::Subcommand;

#[derive(Subcommand)]
pub(crate) enum BenchCommand {
    /// Signed transfers over RPC into a fresh single-validator node.
    Transfers {
        #[arg(long, default_value_t = 5000)]
        txs: usize,
        #[arg(long, default_value_t = 16)]
        senders: usize,
        #[arg(long, default_value = "rocksdb")]
        storage: String,
    },
    /// Four validator processes build a chain; a full-node process catches up by block sync:
    /// blocks/s and MB/s beside checking the same certificates alone, and bytes per block.
    Sync {
        #[arg(long, default_value_t = 1000)]
        blocks: u64,
        #[arg(long, default_value_t = 5000)]
        txs: u64,
    },
    /// Four validator processes run a chain with ACCOUNTS extra genesis accounts; a full-node
    /// process starts by state sync: its time and peak memory, beside exporting and importing
    /// the same state as a snapshot file.
    StateSync {
        #[arg(long, default_value_t = 100_000)]
        accounts: u64,
    },
    /// Staking delegations (a runtime-module call) beside plain transfers, executed and
    /// committed by one ledger in the same run: tx/s of each and their ratio.
    Modules {
        /// Transactions of each kind per round.
        #[arg(long, default_value_t = 2000)]
        txs: usize,
        #[arg(long, default_value_t = 16)]
        senders: usize,
        #[arg(long, default_value_t = 500)]
        block_txs: usize,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        #[arg(long, default_value = "rocksdb")]
        storage: String,
    },
    /// The gas of each runtime-module call and hook (staking, slashing, governance) beside its
    /// CPU time, as ns per gas, and the same for Wasm contract calls on the default VM (the
    /// baseline), through one ledger in the same run; reports any call above the baseline.
    ModuleGas {
        /// Calls of each kind per block.
        #[arg(long, default_value_t = 50)]
        block_txs: usize,
        /// Rounds (one block of each kind per round); medians are over rounds.
        #[arg(long, default_value_t = 9)]
        rounds: usize,
        /// Genesis validators (the set hooks, votes and rewards run over); at most 512.
        #[arg(long, default_value_t = 512)]
        validators: usize,
        /// Iterations of the compute contract's loop per call.
        #[arg(long, default_value_t = 100_000)]
        spin: u32,
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
        /// Also run the validators as separate processes over libp2p on 127.0.0.1.
        #[arg(long)]
        processes: bool,
    },
}

/// A base port with `count` free consecutive ports above it, on 127.0.0.1.
pub(crate) fn free_port_range(count: u16) -> anyhow::Result<u16> {
    for _ in 0..100 {
        let base = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        if base.checked_add(count).is_some() && (1..count).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return Ok(base);
        }
    }
    anyhow::bail!("no {count} consecutive free ports on 127.0.0.1")
}

/// `aether bench ...`.
pub(crate) async fn run(command: BenchCommand) -> anyhow::Result<()> {
    // The benches make chain folders of the stock `aether` preset and run this binary on them.
    if crate::presets().find("aether").is_err() {
        anyhow::bail!(
            "`bench` runs the stock `aether` preset, which this binary does not offer (list it in the presets given to aether_cli::main)"
        );
    }
    match command {
        BenchCommand::Validators { txs, senders, validators: count, storage, processes } => {
            let opts = validators::ValidatorsBenchOptions {
                txs,
                senders,
                validators: count,
                storage,
                timeout: std::time::Duration::from_secs(600),
                processes,
            };
            let (baseline, hotstuff, separate) = validators::run_validators_bench(&opts).await?;
            println!(
                "transfers: {txs} from {senders} senders, each sender's to one validator (gossiped to the rest), storage {}",
                opts.storage
            );
            println!("{baseline}  (baseline)");
            println!("{hotstuff}");
            println!("  ratio hotstuff / solo committed tx/s: {:.3}", hotstuff.committed_per_sec / baseline.committed_per_sec);
            if let Some((gossip, direct)) = separate {
                println!("{gossip}  (separate processes, libp2p on 127.0.0.1, RPC submission, transactions by gossipsub)");
                println!("{direct}  (the same, transactions by direct sends: gossip_topics = [])");
                println!(
                    "  ratio processes / one process committed tx/s: {:.3} (gossipsub), {:.3} (direct sends)",
                    gossip.committed_per_sec / hotstuff.committed_per_sec,
                    direct.committed_per_sec / hotstuff.committed_per_sec
                );
            }
        }
        BenchCommand::StateSync { accounts } => state_sync::run_state_sync_bench(&state_sync::StateSyncBenchOptions { accounts }).await?,
        BenchCommand::Sync { blocks, txs } => sync::run_sync_bench(&sync::SyncBenchOptions { blocks, txs }).await?,
        BenchCommand::Modules { txs, senders, block_txs, rounds, storage } => {
            modules::run_modules_bench(&modules::ModulesBenchOptions { txs, senders, block_txs, rounds, storage })?
        }
        BenchCommand::ModuleGas { block_txs, rounds, validators, spin, storage } => {
            module_gas::run_module_gas_bench(&module_gas::ModuleGasBenchOptions { block_txs, rounds, validators, spin, storage })?
        }
        BenchCommand::Transfers { txs, senders, storage } => {
            let report = transfers::run_transfer_bench(&transfers::BenchOptions { txs, senders, storage, ..Default::default() }).await?;
            println!("{report}");
        }
    }
    Ok(())
}
