//! `aether snapshot export|import`.

use std::path::PathBuf;

use clap::Subcommand;

use crate::node::NodeArgs;

#[derive(Subcommand)]
pub(crate) enum SnapshotCommand {
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

/// `aether snapshot ...`.
pub(crate) fn run(command: SnapshotCommand) -> anyhow::Result<()> {
    match command {
        SnapshotCommand::Export { node, height, out } => {
            let (preset, source) = node.source()?;
            let (height, bytes) = aether_presets::export_snapshot(preset, &source, height, &out)?;
            println!("exported the state at height {height} to {} ({bytes} bytes)", out.display());
        }
        SnapshotCommand::Import { node, file } => {
            let (preset, source) = node.source()?;
            let s = aether_presets::import_snapshot(preset, &source, &file)?;
            println!(
                "imported height {} ({} state entries, state root {}); start the node with `aether run`",
                s.height(),
                s.contents.entries.len(),
                s.contents.block.header.state_root
            );
        }
    }
    Ok(())
}
