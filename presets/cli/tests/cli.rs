//! The `aether` binary as a user runs it: `init`, `run` as a subprocess, a transfer with
//! `aether tx transfer`, the balance over RPC, a contract deployed, called and queried from the
//! command line, and a clean stop on SIGINT.

// Test and bench code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aether_framework::types::Address;
use aether_rpc::AetherApiClient;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};

mod common;
use common::ChildGuard;

const BIN: &str = env!("CARGO_BIN_EXE_aether");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A client for the node on `port`, once its RPC answers (bounded wait).
async fn connect(port: u16) -> (String, HttpClient) {
    let url = format!("http://127.0.0.1:{port}");
    let client = HttpClientBuilder::default().build(&url).unwrap();
    let start = Instant::now();
    while client.status().await.is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "node RPC on port {port} did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (url, client)
}

/// Starts the binary with `args`, its output (info logs included) to the file `log`: an unread
/// pipe could fill up and block the node's logging.
fn spawn_logged(args: &[&str], log: &std::path::Path) -> std::process::Child {
    let file = std::fs::File::create(log).unwrap();
    Command::new(BIN).args(args).env("AETHER_LOG", "info").stdout(file.try_clone().unwrap()).stderr(file).spawn().unwrap()
}

/// Sends SIGINT to `child` and waits for it to exit, at most `within`.
fn interrupt_and_wait(mut child: std::process::Child, within: Duration) -> std::process::ExitStatus {
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("process did not stop within {within:?} of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_run_transfer_and_stop_on_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let out = Command::new(BIN)
        .args(["init", "--dir", dir.path().to_str().unwrap(), "--rpc-listen", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert!(out.status.success(), "init failed: {}", String::from_utf8_lossy(&out.stderr));
    let faucet = dir.path().join("keys/faucet.json");

    // Output goes to a file: an unread pipe could fill up and block the node's logging.
    let log_path = dir.path().join("node.log");
    let child =
        spawn_logged(&["run", "--dir", dir.path().to_str().unwrap(), "--set", "consensus.hotstuff.min_block_interval_ms=50"], &log_path);
    let mut guard = ChildGuard(Some(child));
    let (url, client) = connect(port).await;

    let to = Address([0x42; 20]);
    let out = Command::new(BIN)
        .args(["tx", "transfer", "--key", faucet.to_str().unwrap(), "--to", &to.to_string(), "--amount", "12345", "--rpc", &url])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "transfer failed: {stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("committed in block"), "{stdout}");
    assert_eq!(client.account(to).await.unwrap().balance, 12345);

    // A bad command line is a readable error with a failing exit code, not a panic.
    let out = Command::new(BIN).args(["tx", "transfer", "--dev", "--to", "0x12", "--amount", "1", "--rpc", &url]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("address"), "{}", String::from_utf8_lossy(&out.stderr));

    let exit = interrupt_and_wait(guard.0.take().unwrap(), Duration::from_secs(20));
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(exit.success(), "exit status {exit:?}; logs:\n{logs}");
    assert!(logs.contains("stopped cleanly"), "logs:\n{logs}");

    // The committed transfer is still there after a restart.
    let mut guard = ChildGuard(Some(
        Command::new(BIN).args(["run", "--dir", dir.path().to_str().unwrap()]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap(),
    ));
    let start = Instant::now();
    let balance = loop {
        if let Ok(a) = client.account(to).await {
            break a.balance;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "restarted node RPC did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(balance, 12345);
    drop(guard.0.take().map(|mut c| {
        let _ = Command::new("kill").args(["-INT", &c.id().to_string()]).status();
        c.wait()
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_dev_starts_a_funded_throwaway_chain() {
    let port = free_port();
    let out_dir = tempfile::tempdir().unwrap();
    let out_path = out_dir.path().join("stdout");
    let child = Command::new(BIN)
        .args(["run", "--dev", "--rpc-listen", &format!("127.0.0.1:{port}")])
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut guard = ChildGuard(Some(child));
    let (url, client) = connect(port).await;
    assert_eq!(client.status().await.unwrap().engine, "hotstuff", "the default preset runs HotStuff");
    let out = Command::new(BIN)
        .args(["tx", "transfer", "--dev", "--to", &Address([7; 20]).to_string(), "--amount", "5", "--rpc", &url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(client.account(Address([7; 20])).await.unwrap().balance, 5);

    // Contracts on the default VM: deploy the example counter, call it, query it.
    assert_eq!(client.status().await.unwrap().vm.as_deref(), Some("wasmtime"));
    let aether = |args: &[&str]| {
        let out = Command::new(BIN).args(args).args(["--rpc", &url]).output().unwrap();
        assert!(out.status.success(), "aether {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let counter_wat = concat!(env!("CARGO_MANIFEST_DIR"), "/../../vm-backends/contracts/counter.wat");
    let deployed = aether(&["tx", "deploy", "--dev", "--code", counter_wat]);
    let contract = deployed.lines().find_map(|l| l.strip_prefix("contract ")).unwrap_or_else(|| panic!("{deployed}")).to_string();
    let called = aether(&["tx", "call", "--dev", "--contract", &contract, "--method", "increment"]);
    assert!(called.contains("Success") && called.contains("output 0x0100000000000000"), "{called}");
    let queried = aether(&["query", "--contract", &contract, "--method", "get"]);
    assert!(queried.starts_with("returned") && queried.contains("output 0x0100000000000000"), "{queried}");

    let mut child = guard.0.take().unwrap();
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(child.wait().unwrap().success());
    let stdout = std::fs::read_to_string(&out_path).unwrap();
    // The dev chain names its folder; remove it.
    let dir = stdout.lines().find_map(|l| l.strip_prefix("dev chain in ")).and_then(|l| l.split(" (").next()).expect("dev folder printed");
    assert!(std::path::Path::new(dir).join("data").is_dir(), "{stdout}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// A base port with `n` consecutive free ports after it.
fn free_ports(n: u16) -> u16 {
    for _ in 0..100 {
        let base = free_port();
        if base.checked_add(n).is_some() && (1..n).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no {n} consecutive free ports");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_four_validators_and_run_them_as_a_devnet() {
    let dir = tempfile::tempdir().unwrap();
    let chain = dir.path().join("four");
    let out = Command::new(BIN).args(["init", "--dir", chain.to_str().unwrap(), "--validators", "4", "--dev-account"]).output().unwrap();
    assert!(out.status.success(), "init failed: {}", String::from_utf8_lossy(&out.stderr));
    let genesis: serde_json::Value = serde_json::from_slice(&std::fs::read(chain.join("genesis.json")).unwrap()).unwrap();
    assert_eq!(genesis["validators"].as_array().unwrap().len(), 4);
    for i in 0..4 {
        assert!(chain.join(format!("keys/validator-{i}.json")).is_file());
    }

    // One process cannot run a four-validator genesis without a network: a clear error.
    let out = Command::new(BIN).args(["run", "--dir", chain.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("4 validators") && err.contains("aether devnet"), "{err}");

    let base = free_ports(4);
    let log_path = dir.path().join("devnet.log");
    let child = spawn_logged(
        &["devnet", "--in-process", "--dir", chain.to_str().unwrap(), "--rpc-listen", &format!("127.0.0.1:{base}")],
        &log_path,
    );
    let mut guard = ChildGuard(Some(child));
    let (_, first) = connect(base).await;
    let (url_third, _) = connect(base + 2).await;
    assert_eq!(first.status().await.unwrap().engine, "hotstuff");

    // Submitted to validator 2; committed, and visible on validator 0.
    let to = Address([0x24; 20]);
    let out = Command::new(BIN)
        .args(["tx", "transfer", "--dev", "--to", &to.to_string(), "--amount", "77", "--rpc", &url_third])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let start = Instant::now();
    while first.account(to).await.unwrap().balance != 77 {
        assert!(start.elapsed() < Duration::from_secs(30), "validator 0 never saw the transfer");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let exit = interrupt_and_wait(guard.0.take().unwrap(), Duration::from_secs(30));
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(exit.success() && logs.contains("stopped cleanly"), "exit {exit:?}; logs:\n{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devnet_runs_each_validator_as_a_process_across_epochs_and_stops_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let chain = dir.path().join("four");
    let rpc = free_ports(10);
    let p2p = rpc + 5;
    let out = Command::new(BIN)
        .args(["init", "--dir", chain.to_str().unwrap(), "--validators", "4", "--dev-account", "--staking", "--epoch-length", "3"])
        .args(["--rpc-listen", &format!("127.0.0.1:{rpc}"), "--p2p-port", &p2p.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "init failed: {}", String::from_utf8_lossy(&out.stderr));
    let log_path = dir.path().join("devnet.log");
    let guard = ChildGuard(Some(spawn_logged(&["devnet", "--dir", chain.to_str().unwrap()], &log_path)));
    let (_, first) = connect(rpc).await;
    let (_, last) = connect(rpc + 3).await;
    // Three epochs of three blocks: each process over libp2p starts a new engine at every
    // boundary (the first to decide a boundary block hands it to the others by block sync).
    let start = Instant::now();
    while last.status().await.map(|s| s.height).unwrap_or(0) < 10 || first.status().await.map(|s| s.height).unwrap_or(0) < 10 {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the validator processes commit blocks across epochs; validator 3's log:\n{}",
            std::fs::read_to_string(chain.join("validator-3.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let set = first.validator_set(Some(3), None).await.unwrap();
    assert_eq!((set.validators.len(), set.changes.len()), (4, 3));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log_path).unwrap().contains("last commit") {
        assert!(Instant::now() < deadline, "devnet prints its table");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut guard = guard;
    let exit = interrupt_and_wait(guard.0.take().unwrap(), Duration::from_secs(30));
    assert!(exit.success(), "devnet exits cleanly on SIGINT: {exit:?}");
    // Every validator process is gone: nothing answers on their RPC ports.
    for i in 0..4 {
        assert!(std::net::TcpStream::connect(("127.0.0.1", rpc + i)).is_err(), "validator {i} stopped with the devnet");
    }
    let logs = std::fs::read_to_string(chain.join("validator-3.log")).unwrap();
    assert!(logs.contains("stopped cleanly"), "validator 3 stopped cleanly on SIGTERM:\n{logs}");
}

/// An operator's staking from the command line: `init --staking --epoch-length` makes a chain
/// whose sets come from the staking module; `tx delegate` and `tx stake` (a second validator's
/// registration) commit; at the next epoch the set holds both, as `aether_getValidatorSet`
/// shows with its proof from genesis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staking_from_the_command_line_changes_the_next_epochs_set() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let d = dir.path().to_str().unwrap();
    let out = Command::new(BIN)
        .args(["init", "--dir", d, "--dev-account", "--staking", "--epoch-length", "6", "--rpc-listen", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert!(out.status.success(), "init failed: {}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new(BIN).args(["init", "--dir", d, "--staking"]).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--epoch-length"), "--staking alone is refused");

    let log_path = dir.path().join("node.log");
    let child = spawn_logged(
        &["run", "--dir", d, "--set", "consensus.hotstuff.min_block_interval_ms=50", "--set", "consensus.hotstuff.heartbeat_ms=100"],
        &log_path,
    );
    let mut guard = ChildGuard(Some(child));
    let (url, client) = connect(port).await;
    let genesis_set = client.validator_set(Some(0), None).await.unwrap().validators;
    assert_eq!(genesis_set.len(), 1);
    let v0 = genesis_set[0].identity.to_string();

    let run = |args: &[&str]| {
        let out = Command::new(BIN).args(args).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{args:?} failed: {stdout} {}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("committed in block") && stdout.contains("Success"), "{args:?}: {stdout}");
        stdout
    };
    run(&["tx", "delegate", "--dev", "--validator", &v0, "--amount", "5000", "--rpc", &url]);
    let new_key = dir.path().join("keys/validator-new.json");
    assert!(Command::new(BIN).args(["keys", "generate", "--out", new_key.to_str().unwrap()]).output().unwrap().status.success());
    run(&["tx", "stake", "--dev", "--validator-key", new_key.to_str().unwrap(), "--amount", "2000", "--name", "newcomer", "--rpc", &url]);

    // The next epoch's set holds both (the newcomer does not run a node: the first validator
    // holds far more than two thirds of the stake, so the chain goes on).
    let start = Instant::now();
    let view = loop {
        let status = client.status().await.unwrap();
        // The epoch of the next block.
        if let Ok(view) = client.validator_set(None, None).await {
            if view.validators.len() == 2 {
                break view;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the set never grew; at height {}; logs:\n{}",
            status.height,
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(view.changes.len() as u64, view.epoch);
    assert!(view.validators[0].stake >= 1_005_000, "bonded, delegated and rewarded: {:?}", view.validators);
    assert!(view.validators.iter().any(|v| v.name == "newcomer" && v.stake >= 2000), "{:?}", view.validators);
    let out = Command::new(BIN)
        .args([
            "validators",
            "--epoch",
            &view.epoch.to_string(),
            "--genesis",
            dir.path().join("genesis.json").to_str().unwrap(),
            "--rpc",
            &url,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("proven from") && stdout.contains("newcomer"),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Governance: a proposal to raise staking's minimum delegation, the validator's vote (it
    // holds nearly all the stake), and the change in force after voting and the timelock.
    let validator_key = dir.path().join("keys/validator.json");
    let stdout = run(&[
        "tx",
        "propose",
        "--dev",
        "--title",
        "raise the minimum delegation",
        "--staking-params",
        r#"{"min_delegation":500}"#,
        "--deposit",
        "1000",
        "--rpc",
        &url,
    ]);
    let id = u64::from_le_bytes(
        hex::decode(stdout.split("output 0x").nth(1).unwrap().lines().next().unwrap().trim()).unwrap().try_into().unwrap(),
    );
    run(&["tx", "vote", "--key", validator_key.to_str().unwrap(), "--proposal", &id.to_string(), "--option", "yes", "--rpc", &url]);
    let start = Instant::now();
    loop {
        let params = client.module_query("staking".into(), "params".into(), None, None).await.unwrap();
        let params: serde_json::Value = serde_json::from_slice(&params.output).unwrap();
        if params["min_delegation"] == "500" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the change never applied: {params}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Governance executed the proposal in a hook: the block's stored hook events say so, and
    // `aether events` shows them.
    let head = client.status().await.unwrap().height;
    let mut executed_at = None;
    for height in 1..=head {
        let view = client.block_events(height).await.unwrap();
        if view.events.iter().any(|e| e.module.as_deref() == Some("governance") && e.topic.as_deref() == Some("governance/executed")) {
            executed_at = Some(height);
            break;
        }
    }
    let height = executed_at.expect("a block up to the head holds governance's executed event").to_string();
    let out = Command::new(BIN).args(["events", &height, "--rpc", &url]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && stdout.starts_with(&format!("block {height} 0x"))
            && stdout.contains("\n  governance governance/executed 0x"),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(BIN).args(["events", "999999999", "--rpc", &url]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("block 999999999 is not committed yet (the head is at height"), "{stderr}");

    // The chain parameters (governance could change them: `init --staking` grants it).
    let out = Command::new(BIN).args(["module-query", "--module", "chain", "--path", "params", "--rpc", &url]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value = serde_json::from_str(stdout.split("json ").nth(1).unwrap_or_default().trim()).unwrap();
    assert_eq!(json, serde_json::json!({"max_block_gas": 500_000_000, "gas_per_fee_unit": 1_000}), "{stdout}");
    let genesis: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("genesis.json")).unwrap()).unwrap();
    assert_eq!(genesis["modules"][2]["name"], "governance");
    assert_eq!(genesis["modules"][2]["govern_chain"], true);
    let exit = interrupt_and_wait(guard.0.take().unwrap(), Duration::from_secs(30));
    assert!(exit.success(), "logs:\n{}", std::fs::read_to_string(&log_path).unwrap());
}
