//! `aether keys`: generate and show key files.

use std::path::PathBuf;

use aether_framework::types::Keypair;
use aether_presets::keys;
use clap::Subcommand;

#[derive(Subcommand)]
pub(crate) enum KeysCommand {
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

pub(crate) fn run(k: KeysCommand) -> anyhow::Result<()> {
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
