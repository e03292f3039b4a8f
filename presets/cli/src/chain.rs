//! `aether init`: a chain folder.

use std::net::SocketAddr;
use std::path::PathBuf;

use aether_presets::init;
use clap::Args;

#[derive(Args)]
pub(crate) struct InitArgs {
    /// Folder to create the chain in.
    #[arg(long, default_value = ".")]
    pub(crate) dir: PathBuf,
    /// Preset (default: the binary's default preset).
    #[arg(long)]
    pub(crate) preset: Option<String>,
    #[arg(long, default_value = "aether-local")]
    pub(crate) chain_id: String,
    /// Also fund the well-known development account (never on a real chain).
    #[arg(long)]
    pub(crate) dev_account: bool,
    /// RPC listen address to write into aether.toml (with several validators, validator I's
    /// config gets this port + I, the full node's + N).
    #[arg(long)]
    pub(crate) rpc_listen: Option<SocketAddr>,
    /// Validators in genesis (equal stake). With more than one, keys go to
    /// keys/validator-I.json and each validator gets its own config, validator-I.toml.
    #[arg(long, default_value_t = 1)]
    pub(crate) validators: usize,
    /// With more than one validator: validator I listens for peers on 127.0.0.1 at this port + I
    /// (the full node, fullnode.toml, at + N).
    #[arg(long, default_value_t = 30400)]
    pub(crate) p2p_port: u16,
    /// Blocks per epoch: the validator set may change at each epoch's end.
    #[arg(long)]
    pub(crate) epoch_length: Option<u64>,
    /// Pin the proof-of-stake modules (with --epoch-length): staking picks each epoch's set
    /// (`aether tx stake | delegate | unstake`), slashing punishes double signs, governance
    /// runs proposals (`aether tx propose | vote`).
    #[arg(long, requires = "epoch_length")]
    pub(crate) staking: bool,
}

pub(crate) fn init(a: InitArgs) -> anyhow::Result<()> {
    let mut opts = init::InitOptions::new(&a.dir);
    opts.preset = a.preset.unwrap_or_else(|| crate::presets().default_preset().name().to_string());
    opts.chain_id = a.chain_id;
    opts.fund_dev_account = a.dev_account;
    opts.rpc_listen = a.rpc_listen;
    opts.validators = a.validators;
    opts.p2p_port_base = a.p2p_port;
    opts.epoch_length = a.epoch_length;
    opts.staking = a.staking;
    let out = init::init_chain_in(crate::presets(), &opts)?;
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
        for c in &out.process_configs {
            println!("  process config {}", c.display());
        }
        println!("run validator I as its own process with: aether run --dir {} --validator I", a.dir.display());
        println!("the full node with:                      aether run --config {}", a.dir.join("fullnode.toml").display());
        println!("all of them as processes with:           aether devnet --dir {}", a.dir.display());
        println!("all validators in one process with:      aether devnet --in-process --dir {}", a.dir.display());
    }
    Ok(())
}
