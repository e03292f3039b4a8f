//! Key files: JSON with the ed25519 secret seed, and the public key and address for reading.

use std::path::Path;

use aether_framework::types::{Address, Hash, Keypair, PublicKey};
use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    kind: String,
    secret: String,
    public: PublicKey,
    address: Address,
}

/// Writes `key` to `path` (mode 0600 on Unix). Refuses to overwrite.
pub fn write_key_file(path: &Path, key: &Keypair) -> anyhow::Result<()> {
    if path.exists() {
        bail!("{} already exists; refusing to overwrite a key", path.display());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let file =
        KeyFile { kind: "ed25519".into(), secret: format!("0x{}", hex::encode(key.seed())), public: key.public(), address: key.address() };
    let text = serde_json::to_string_pretty(&file)? + "\n";
    #[cfg(unix)]
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("creating {}", path.display()))?;
        f.write_all(text.as_bytes())?;
    }
    #[cfg(not(unix))]
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Reads a key file, checking that its public key and address match the secret.
pub fn read_key_file(path: &Path) -> anyhow::Result<Keypair> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read key file {}", path.display()))?;
    let file: KeyFile = serde_json::from_str(&text).with_context(|| format!("key file {} is not valid", path.display()))?;
    if file.kind != "ed25519" {
        bail!("key file {}: kind {:?} is not supported (expected \"ed25519\")", path.display(), file.kind);
    }
    let seed: Hash = file.secret.parse().with_context(|| format!("key file {}: bad secret", path.display()))?;
    let key = Keypair::from_seed(seed.0);
    if key.public() != file.public || key.address() != file.address {
        bail!("key file {}: public key or address does not match the secret", path.display());
    }
    Ok(key)
}

/// The well-known development account funded by `aether run --dev`. Its secret is public:
/// never fund it on a real chain.
pub fn dev_account() -> Keypair {
    Keypair::from_seed(Hash::digest(b"aether/dev-account", b"").0)
}

/// A full node's network identity: `[node] node_key`, or `DATA_DIR/node-key.json`, made on
/// first start. (A validator's identity is its validator key.)
pub fn node_key(config: &aether_framework::config::NodeConfig) -> anyhow::Result<Keypair> {
    let path = config.node.node_key.clone().unwrap_or_else(|| config.node.data_dir.join("node-key.json"));
    if !path.exists() {
        write_key_file(&path, &Keypair::generate())?;
        tracing::info!(path = %path.display(), "created the node's network identity key");
    }
    read_key_file(&path)
}
