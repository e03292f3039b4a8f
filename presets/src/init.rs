//! `aether init`: a chain folder with genesis, keys and config.
//!
//! ```text
//! DIR/aether.toml            config (preset, paths, RPC address)
//! DIR/genesis.json           chain id, funded accounts, validator set
//! DIR/keys/validator.json    this node's validator key (one validator)
//! DIR/keys/validator-I.json  validator I's key (`--validators N`, N > 1; aether.toml names 0)
//! DIR/keys/faucet.json       the account holding the initial supply
//! DIR/validator-I.toml       validator I as its own process (`--validators N`, N > 1):
//!                            its key, DATA_DIR `data-I`, RPC on port base+I, the libp2p
//!                            network on 127.0.0.1:(p2p base+I), every other node as bootstrap
//! DIR/fullnode.toml          a non-validator node following the chain (`--validators N`, N > 1),
//!                            identity DIR/keys/fullnode.json, RPC base+N, p2p base+N
//! ```
//!
//! Each validator's consensus key in genesis is derived from its identity key by the preset's
//! consensus engine (for HotStuff: BLS key, proof of possession, VRF key).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use aether_framework::types::{Address, Amount, EpochSchedule, Genesis, GenesisAccount, GenesisModule, GenesisValidator, Keypair};
use anyhow::{bail, Context};

use crate::keys;

pub struct InitOptions {
    pub dir: PathBuf,
    pub preset: String,
    pub chain_id: String,
    /// Balance of the faucet account.
    pub faucet_balance: Amount,
    /// Also fund the well-known dev account (see [`keys::dev_account`]).
    pub fund_dev_account: bool,
    pub rpc_listen: Option<SocketAddr>,
    /// Validators in genesis, equal stake (at least 1).
    pub validators: usize,
    /// With more than one validator: validator I listens for peers on 127.0.0.1 at this port + I
    /// (the full node at + N).
    pub p2p_port_base: u16,
    /// Blocks per epoch (`None`: one epoch, the genesis set, forever).
    pub epoch_length: Option<u64>,
    /// Pin the proof-of-stake modules (needs `epoch_length`): staking as the validator source
    /// (validators bond [`STAKING_GENESIS_STAKE`] each, minted into its account), slashing
    /// (double signs in blocks' evidence), governance (proposals and votes).
    pub staking: bool,
}

/// Each genesis validator's self-bond on a chain `init` makes with staking.
pub const STAKING_GENESIS_STAKE: Amount = 1_000_000;

impl InitOptions {
    pub fn new(dir: &Path) -> InitOptions {
        InitOptions {
            dir: dir.to_path_buf(),
            preset: crate::all().default_preset().name().to_string(),
            chain_id: "aether-local".into(),
            faucet_balance: 1_000_000_000_000_000,
            fund_dev_account: false,
            rpc_listen: None,
            validators: 1,
            p2p_port_base: 30400,
            epoch_length: None,
            staking: false,
        }
    }
}

pub struct InitOutput {
    pub config: PathBuf,
    pub genesis: PathBuf,
    /// The key aether.toml names (validator 0's).
    pub validator_key: PathBuf,
    pub validator_address: Address,
    /// Every validator's key file and address, in genesis order.
    pub validator_keys: Vec<(PathBuf, Address)>,
    pub faucet_key: PathBuf,
    pub faucet_address: Address,
    /// With more than one validator: `validator-I.toml` for each validator, then `fullnode.toml`.
    pub process_configs: Vec<PathBuf>,
}

/// Genesis validators of stake 1 each, named `{prefix}{index}`, with the consensus key
/// `consensus_key` derives from each identity key.
pub fn equal_stake_validators(keys: &[Keypair], prefix: &str, consensus_key: impl Fn(&Keypair) -> Vec<u8>) -> Vec<GenesisValidator> {
    keys.iter()
        .enumerate()
        .map(|(i, k)| GenesisValidator { name: format!("{prefix}{i}"), identity: k.public(), consensus_key: consensus_key(k), stake: 1 })
        .collect()
}

/// Where validator `index` of `count` keeps its key, relative to the chain folder.
pub fn validator_key_path(index: usize, count: usize) -> String {
    if count == 1 {
        VALIDATOR_KEY.to_string()
    } else {
        format!("keys/validator-{index}.json")
    }
}

/// The consensus engine a preset runs by default (the last `consensus.engine` its default
/// layers set).
pub fn default_engine(preset: &aether_framework::registry::Preset) -> anyhow::Result<String> {
    let mut engine = None;
    for layer in preset.defaults() {
        let table: toml::Table =
            toml::from_str(layer).with_context(|| format!("preset {}: a defaults layer is not TOML", preset.name()))?;
        if let Some(e) = table.get("consensus").and_then(|c| c.get("engine")).and_then(|e| e.as_str()) {
            engine = Some(e.to_string());
        }
    }
    engine.ok_or_else(|| anyhow::anyhow!("preset {} names no consensus.engine", preset.name()))
}

/// Makes a chain folder for preset `opts.preset` of the presets this build compiles
/// ([`crate::all`]).
pub fn init_chain(opts: &InitOptions) -> anyhow::Result<InitOutput> {
    init_chain_in(&crate::all(), opts)
}

/// [`init_chain`] with `opts.preset` looked up in `presets` (a chain's own binary passes its
/// own list).
pub fn init_chain_in(presets: &crate::Presets, opts: &InitOptions) -> anyhow::Result<InitOutput> {
    let preset = presets.find(&opts.preset)?;
    if opts.validators == 0 || opts.validators > 1_000 {
        bail!("--validators must be between 1 and 1000, got {}", opts.validators);
    }
    let registry = preset.registry();
    if opts.validators > 1 && registry.network.get("libp2p").is_err() {
        bail!(
            "--validators {} writes one libp2p config per validator, but preset {} has no libp2p network plugin (build aether-presets with the `libp2p` feature)",
            opts.validators,
            preset.name()
        );
    }
    let engine = default_engine(preset)?;
    let validators: Vec<Keypair> = (0..opts.validators).map(|_| Keypair::generate()).collect();
    let validator = validators[0].clone();
    let faucet = Keypair::generate();
    let mut accounts = vec![GenesisAccount { address: faucet.address(), balance: opts.faucet_balance }];
    if opts.fund_dev_account {
        accounts.push(GenesisAccount { address: keys::dev_account().address(), balance: opts.faucet_balance });
    }
    if opts.staking && opts.epoch_length.is_none() {
        bail!("--staking needs --epoch-length: the staking module picks each epoch's validator set");
    }
    if opts.epoch_length == Some(0) {
        bail!("--epoch-length must be at least 1");
    }
    let mut validators_entries = equal_stake_validators(&validators, "validator-", |k| registry.consensus_key(&engine, k));
    let mut modules = vec![];
    if opts.staking {
        for (name, mint) in [("staking", true), ("slashing", false), ("governance", true)] {
            if registry.modules.get(name).is_err() {
                bail!("preset {} has no {name} module", preset.name());
            }
            // Governance changes chain parameters and schedules module upgrades by proposal.
            modules.push(GenesisModule { name: name.into(), version: 1, mint, params: String::new(), govern_chain: name == "governance" });
        }
        for v in &mut validators_entries {
            v.stake = STAKING_GENESIS_STAKE;
            // Validators pay fees for their votes and unjailing.
            accounts.push(GenesisAccount { address: v.identity.address(), balance: STAKING_GENESIS_STAKE });
        }
    }
    let genesis = Genesis {
        chain_id: opts.chain_id.clone(),
        genesis_time_ms: SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64,
        modules,
        epochs: opts.epoch_length.map(|length| EpochSchedule { length, validator_source: opts.staking.then(|| "staking".to_string()) }),
        accounts,
        validators: validators_entries,
    };
    let key_path = validator_key_path(0, opts.validators);
    let rpc = opts.rpc_listen.map(|a| format!("\n[rpc]\nlisten = \"{a}\"\n")).unwrap_or_default();
    let config = format!(
        "# Aether node configuration. Layers, lowest first: the preset's defaults, this file,\n\
         # AETHER_<SECTION>__<KEY> environment variables, command-line --set key=value.\n\
         # Swap a part by naming another plugin, e.g. [storage] backend = \"memory\" or\n\
         # [vm] backend = \"wasmer\" (validators of one chain may run different VMs).\n\
         preset = \"{preset}\"\n\n[chain]\ngenesis = \"genesis.json\"\n\n[node]\ndata_dir = \"data\"\nvalidator_key = \"{key_path}\"\n{rpc}",
        preset = opts.preset
    );
    let faucet_key = opts.dir.join("keys/faucet.json");
    if faucet_key.exists() {
        bail!("{} already exists; choose an empty folder", faucet_key.display());
    }
    write_chain_folder(&opts.dir, &genesis, &validator, &key_path, &config)?;
    let mut validator_keys = vec![(opts.dir.join(&key_path), validator.address())];
    for (i, k) in validators.iter().enumerate().skip(1) {
        let path = opts.dir.join(validator_key_path(i, opts.validators));
        keys::write_key_file(&path, k)?;
        validator_keys.push((path, k.address()));
    }
    keys::write_key_file(&faucet_key, &faucet)?;
    let process_configs = if opts.validators > 1 { write_process_configs(opts, &validators)? } else { Vec::new() };
    Ok(InitOutput {
        config: opts.dir.join("aether.toml"),
        genesis: opts.dir.join("genesis.json"),
        validator_key: opts.dir.join(&key_path),
        validator_address: validator.address(),
        validator_keys,
        faucet_key,
        faucet_address: faucet.address(),
        process_configs,
    })
}

/// One config per validator process and one for a full node, on 127.0.0.1 with distinct
/// ports, each node bootstrapping from all the others.
fn write_process_configs(opts: &InitOptions, validators: &[Keypair]) -> anyhow::Result<Vec<PathBuf>> {
    let n = validators.len();
    let rpc_base = opts.rpc_listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9944)));
    let port = |base: u16, i: usize| -> anyhow::Result<u16> {
        u16::try_from(usize::from(base) + i).ok().filter(|p| *p != 0).with_context(|| format!("port {base} + {i} is out of range"))
    };
    let fullnode = Keypair::generate();
    keys::write_key_file(&opts.dir.join("keys/fullnode.json"), &fullnode)?;
    let mut identities: Vec<_> = validators.iter().map(Keypair::public).collect();
    identities.push(fullnode.public());
    let p2p: Vec<String> = (0..=n).map(|i| Ok(format!("127.0.0.1:{}", port(opts.p2p_port_base, i)?))).collect::<anyhow::Result<_>>()?;
    let mut written = Vec::with_capacity(n + 1);
    for i in 0..=n {
        let bootstrap: Vec<String> = (0..=n).filter(|j| *j != i).map(|j| format!("\"{}@{}\"", identities[j], p2p[j])).collect();
        let rpc = SocketAddr::new(rpc_base.ip(), port(rpc_base.port(), i)?);
        let (name, node) = if i < n {
            (format!("validator-{i}.toml"), format!("data_dir = \"data-{i}\"\nvalidator_key = \"{}\"", validator_key_path(i, n)))
        } else {
            ("fullnode.toml".to_string(), "data_dir = \"data-full\"\nnode_key = \"keys/fullnode.json\"".to_string())
        };
        let text = format!(
            "# {what} of a {n}-validator chain, as its own process: aether run --config {name}\n\
             preset = \"{preset}\"\n\n[chain]\ngenesis = \"genesis.json\"\n\n[node]\n{node}\n\n\
             [rpc]\nlisten = \"{rpc}\"\n\n\
             # Peers: every node of this folder. Validators admit the genesis validators and the\n\
             # identities in allowed_peers (the full node); other keys are refused.\n\
             [network]\nbackend = \"libp2p\"\nlisten = [\"{listen}\"]\nbootstrap = [{bootstrap}]\nallowed_peers = [\"{full}\"]\n",
            what = if i < n { format!("Validator {i}") } else { "A full node".to_string() },
            preset = opts.preset,
            listen = p2p[i],
            bootstrap = bootstrap.join(", "),
            full = fullnode.public(),
        );
        let path = opts.dir.join(&name);
        if path.exists() {
            bail!("{} already exists; choose an empty folder", path.display());
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// Where [`write_chain_folder`] puts the validator key, relative to the folder.
pub const VALIDATOR_KEY: &str = "keys/validator.json";

/// Writes a chain folder: `genesis.json`, the validator key at `key_path` (relative to
/// `dir`, e.g. [`VALIDATOR_KEY`]), and `aether.toml` with the text `config_toml`. Checks the
/// genesis first and refuses to overwrite anything, so a failed call leaves no partial folder
/// behind.
pub fn write_chain_folder(dir: &Path, genesis: &Genesis, validator: &Keypair, key_path: &str, config_toml: &str) -> anyhow::Result<()> {
    genesis.validate()?;
    let (config, genesis_path, key) = (dir.join("aether.toml"), dir.join("genesis.json"), dir.join(key_path));
    for p in [&config, &genesis_path, &key] {
        if p.exists() {
            bail!("{} already exists; choose an empty folder", p.display());
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    keys::write_key_file(&key, validator)?;
    std::fs::write(&genesis_path, serde_json::to_string_pretty(genesis)? + "\n")?;
    std::fs::write(&config, config_toml)?;
    Ok(())
}

/// The `preset` key of a config file, if it sets one.
pub fn preset_of(config: &Path) -> anyhow::Result<Option<String>> {
    let text = std::fs::read_to_string(config).with_context(|| format!("cannot read config file {}", config.display()))?;
    let table: toml::Table = toml::from_str(&text).with_context(|| format!("config file {} is not valid TOML", config.display()))?;
    match table.get("preset") {
        None => Ok(None),
        Some(toml::Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => bail!("config file {}: `preset` must be a string, found {other}", config.display()),
    }
}
