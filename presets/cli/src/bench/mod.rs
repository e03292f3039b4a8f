//! `aether bench`: load generators that measure committed throughput and latency, each
//! beside a baseline measured in the same run.

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

/// `aether bench ...`.
pub(crate) async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Validators { txs, senders, validators: count, storage } => {
            let opts = validators::ValidatorsBenchOptions {
                txs,
                senders,
                validators: count,
                storage,
                timeout: std::time::Duration::from_secs(600),
            };
            let (baseline, hotstuff) = validators::run_validators_bench(&opts).await?;
            println!(
                "transfers: {txs} from {senders} senders, each sender's to one validator (gossiped to the rest), storage {}",
                opts.storage
            );
            println!("{baseline}  (baseline)");
            println!("{hotstuff}");
            println!("  ratio hotstuff / solo committed tx/s: {:.3}", hotstuff.committed_per_sec / baseline.committed_per_sec);
        }
        BenchCommand::Sync { blocks, txs } => sync::run_sync_bench(&sync::SyncBenchOptions { blocks, txs }).await?,
        BenchCommand::Transfers { txs, senders, storage } => {
            let report = transfers::run_transfer_bench(&transfers::BenchOptions { txs, senders, storage, ..Default::default() }).await?;
            println!("{report}");
        }
    }
    Ok(())
}
