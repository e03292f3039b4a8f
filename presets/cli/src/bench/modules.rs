//! `aether bench modules`: runtime-module calls beside plain transfers, executed and committed
//! by one ledger on the chosen store, in the same run.
//!
//! A chain with the staking module (epochs long enough that none ends during the run) funds
//! `senders` accounts; the same senders then send `txs` transfers and `txs` staking
//! delegations, pre-signed, in blocks of `block_txs`. Rounds alternate (transfers, delegations,
//! transfers, ...) so a slower machine moment hits both alike. Measured: executed and committed
//! tx/s of each kind (building the block = executing it, then the synced commit), their ratio,
//! and the gas a delegation used. No consensus or networking: this isolates what the module
//! costs against what a transfer costs.

use std::time::{Duration, Instant};

use aether_framework::ledger::Ledger;
use aether_framework::registry::PluginSettings;
use aether_framework::storage::{columns, StorageContext};
use aether_framework::types::{
    Action, Address, Certificate, EpochSchedule, Genesis, GenesisAccount, GenesisModule, Keypair, SignedTransaction, TxBody, ValidatorEntry,
};
use aether_module_staking::{Staking, StakingCall};
use anyhow::{bail, Context};

pub struct ModulesBenchOptions {
    pub txs: usize,
    pub senders: usize,
    pub block_txs: usize,
    pub rounds: usize,
    pub storage: String,
}

const CHAIN: &str = "bench-modules";

fn tx(key: &Keypair, nonce: u64, action: Action, fee: u128) -> SignedTransaction {
    TxBody { chain_id: CHAIN.into(), sender: key.public(), nonce, fee, action }.sign(key)
}

/// Builds and commits `txs` in blocks of `block_txs`; returns the time and the receipts' gas.
fn run_blocks(ledger: &Ledger, txs: &[SignedTransaction], block_txs: usize, proposer: Address) -> anyhow::Result<(Duration, u64)> {
    let started = Instant::now();
    let mut gas = 0;
    for chunk in txs.chunks(block_txs.max(1)) {
        let head = ledger.head();
        let built = ledger.build_block(&head.block.hash, head.certificate, chunk.to_vec(), vec![], head.header.time_ms + 1, proposer)?;
        if let Some((hash, e)) = built.rejected.first() {
            bail!("transaction {hash} left out: {e}");
        }
        if built.executed.receipts.len() != chunk.len() {
            bail!("{} of {} transactions fit in a block; lower --block-txs", built.executed.receipts.len(), chunk.len());
        }
        for r in &built.executed.receipts {
            if r.status != aether_framework::types::TxStatus::Success {
                bail!("a benchmark transaction failed: {:?}", r.status);
            }
            gas += r.gas_used;
        }
        ledger.commit(&built.executed.hash, &Certificate(vec![]))?;
    }
    Ok((started.elapsed(), gas))
}

pub fn run_modules_bench(opts: &ModulesBenchOptions) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let validator = Keypair::from_seed([0xb0; 32]);
    let senders: Vec<Keypair> = (0..opts.senders.max(1) as u64)
        .map(|i| {
            let mut seed = [0xb1u8; 32];
            seed[..8].copy_from_slice(&i.to_le_bytes());
            Keypair::from_seed(seed)
        })
        .collect();
    let genesis = Genesis {
        chain_id: CHAIN.into(),
        genesis_time_ms: 0,
        accounts: senders.iter().map(|k| GenesisAccount { address: k.address(), balance: 1u128 << 100 }).collect(),
        validators: vec![ValidatorEntry {
            name: "v".into(),
            identity: validator.public(),
            consensus_key: validator.public().0.to_vec(),
            stake: 1_000_000,
        }],
        modules: vec![GenesisModule { name: "staking".into(), version: 1, mint: true, params: String::new(), govern_chain: false }],
        epochs: Some(EpochSchedule { length: 1 << 40, validator_source: Some("staking".into()) }),
    };
    let registry = crate::presets().find("aether")?.registry();
    let factory = &registry.storage.get(&opts.storage)?.factory;
    let store = factory(&StorageContext { path: dir.path().join("db"), schema: columns::SCHEMA }, &PluginSettings::empty("storage"))?;
    let ledger = Ledger::open(store, &genesis)?.with_module(std::sync::Arc::new(Staking));
    ledger.check_genesis_init()?;
    // Block 1 runs the module's genesis; not measured.
    run_blocks(&ledger, &[], 1, validator.address())?;
    let sink = Address([0x5e; 20]);
    let per_round = opts.txs.max(1);
    let mut nonces = vec![0u64; senders.len()];
    let mut make = |delegate: bool| -> Vec<SignedTransaction> {
        (0..per_round)
            .map(|i| {
                let s = i % senders.len();
                let nonce = nonces[s];
                nonces[s] += 1;
                let action = if delegate {
                    Action::Module {
                        module: "staking".into(),
                        call: StakingCall::delegate(validator.public()).encode(),
                        value: 100,
                        gas_limit: 1_000_000,
                    }
                } else {
                    Action::Transfer { to: sink, amount: 100, memo: vec![] }
                };
                tx(&senders[s], nonce, action, 1_000)
            })
            .collect()
    };
    let (mut transfer_time, mut delegate_time, mut delegate_gas) = (Duration::ZERO, Duration::ZERO, 0u64);
    for _ in 0..opts.rounds.max(1) {
        let transfers = make(false);
        let delegations = make(true);
        transfer_time += run_blocks(&ledger, &transfers, opts.block_txs, validator.address()).context("transfers")?.0;
        let (t, gas) = run_blocks(&ledger, &delegations, opts.block_txs, validator.address()).context("delegations")?;
        delegate_time += t;
        delegate_gas += gas;
    }
    let total = (per_round * opts.rounds.max(1)) as f64;
    let transfer_rate = total / transfer_time.as_secs_f64();
    let delegate_rate = total / delegate_time.as_secs_f64();
    println!(
        "executed and committed by one ledger on {}, blocks of {} txs, {} rounds of {} each, {} senders",
        opts.storage,
        opts.block_txs,
        opts.rounds,
        per_round,
        senders.len()
    );
    println!("  transfers            {transfer_rate:>10.0} tx/s");
    println!("  staking delegations  {delegate_rate:>10.0} tx/s  ({} gas each)", delegate_gas / total as u64);
    println!("  ratio delegation / transfer: {:.3}", delegate_rate / transfer_rate);
    let invariants = ledger.module_query("staking", "invariants", &[], 1_000_000_000)?;
    if let Err(e) = invariants.answer {
        bail!("staking invariants broken after the run: {e}");
    }
    Ok(())
}
