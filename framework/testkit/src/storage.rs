//! The storage conformance suites: a backend author runs each with one call.
//!
//! Status: [`storage_conformance`] covers the [`KvStore`] contract (reads, atomic batches,
//! ordered prefix scans with and without a start key, snapshot isolation, reopen — buffered
//! writes included, empty keys and values, unknown columns, large values, concurrent readers);
//! [`storage_crash_conformance`] SIGKILLs a process of several writer threads at random
//! moments (mostly inside a write) and checks, per thread, that batches are whole, that there
//! is no gap, that synced writes survive and that buffered ones survive once a later synced
//! write returned ([`Durability`]); it lists every broken rule of the failing round with the
//! seed. Memory, RocksDB and ParityDB pass both (memory only the first: it has nothing to
//! survive a process). The kits are themselves tested (`tests/storage_kit.rs`): a correct
//! file-backed store passes, one that commits each operation separately fails on a torn batch,
//! and one that keeps buffered writes only in memory fails on a gap. The node-level checks
//! (identical state roots, a ledger killed while committing) are in `aether-testkit-node`.
//!

use std::sync::Arc;
use std::time::Duration;

use crate::kv::{columns, Durability, KvRead, KvStore, StorageError, WriteBatch};

fn scan(store: &dyn KvRead, col: &'static str, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    store.scan_prefix(col, prefix).expect("scan").map(|r| r.expect("scan item")).collect()
}

/// Runs the storage contract against stores made by `open`. If `reopen` is given, data
/// written through the first store must be visible through a store it opens after the first
/// is dropped (persistent backends pass the same path again).
///
/// Panics with a message naming the broken rule.
pub fn storage_conformance<S: KvStore, R: KvStore>(open: impl Fn() -> Arc<S>, reopen: Option<impl Fn() -> Arc<R>>) {
    let (a, b, c) = (columns::ACCOUNTS, columns::BLOCK_INDEX, columns::META);
    {
        let store = open();
        assert_eq!(store.get(a, b"missing").unwrap(), None, "absent key reads as None");

        let mut batch = WriteBatch::default();
        batch.put(a, b"k1".to_vec(), b"v1".to_vec());
        batch.put(a, b"k2".to_vec(), b"v2".to_vec());
        batch.put(b, b"k1".to_vec(), b"other column".to_vec());
        batch.put(a, Vec::new(), b"empty key".to_vec());
        batch.put(a, b"empty value".to_vec(), Vec::new());
        store.write(batch, Durability::Synced).unwrap();
        assert_eq!(store.get(a, b"k1").unwrap().as_deref(), Some(&b"v1"[..]), "read your writes");
        assert_eq!(store.get(b, b"k1").unwrap().as_deref(), Some(&b"other column"[..]), "columns are separate");
        assert_eq!(store.get(a, b"").unwrap().as_deref(), Some(&b"empty key"[..]), "empty keys are valid");
        assert_eq!(store.get(a, b"empty value").unwrap().as_deref(), Some(&b""[..]), "empty values are valid and not absent");

        // Later ops in a batch win; deletes apply.
        let mut batch = WriteBatch::default();
        batch.put(a, b"k1".to_vec(), b"first".to_vec());
        batch.put(a, b"k1".to_vec(), b"second".to_vec());
        batch.delete(a, b"k2".to_vec());
        store.write(batch, Durability::Buffered).unwrap();
        assert_eq!(store.get(a, b"k1").unwrap().as_deref(), Some(&b"second"[..]), "the last op on a key in a batch wins");
        assert_eq!(store.get(a, b"k2").unwrap(), None, "delete removes");

        // A batch naming an unknown column is refused whole.
        let mut batch = WriteBatch::default();
        batch.put(a, b"must-not-exist".to_vec(), b"x".to_vec());
        batch.put("no-such-column", b"k".to_vec(), b"x".to_vec());
        assert!(matches!(store.write(batch, Durability::Synced), Err(StorageError::UnknownColumn(_))), "unknown column is an error");
        assert_eq!(store.get(a, b"must-not-exist").unwrap(), None, "a refused batch applies nothing");
        assert!(store.get("no-such-column", b"k").is_err(), "reading an unknown column is an error");

        // Ordered prefix iteration.
        let mut batch = WriteBatch::default();
        for k in [&b"p/3"[..], b"p/1", b"p/2", b"q/1", b"p", b"o/9", b"p/\xff"] {
            batch.put(b, k.to_vec(), k.to_vec());
        }
        store.write(batch, Durability::Buffered).unwrap();
        let keys: Vec<Vec<u8>> = scan(store.as_ref(), b, b"p/").into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![b"p/1".to_vec(), b"p/2".to_vec(), b"p/3".to_vec(), b"p/\xff".to_vec()], "prefix scan is ordered and exact");
        assert_eq!(scan(store.as_ref(), b, b"").len(), 8, "empty prefix scans the whole column");
        let from = |start: &[u8]| -> Vec<Vec<u8>> {
            store.scan_prefix_from(b, b"p/", start).expect("scan").map(|r| r.expect("scan item").0).collect()
        };
        assert_eq!(
            from(b"p/2"),
            vec![b"p/2".to_vec(), b"p/3".to_vec(), b"p/\xff".to_vec()],
            "scan_prefix_from starts at the first key >= start"
        );
        assert_eq!(from(b"p/25"), vec![b"p/3".to_vec(), b"p/\xff".to_vec()], "a start between keys lands on the next one");
        assert_eq!(
            from(b"a"),
            scan(store.as_ref(), b, b"p/").into_iter().map(|(k, _)| k).collect::<Vec<_>>(),
            "a start below the prefix scans it all"
        );
        assert!(from(b"q").is_empty(), "a start past the prefix yields nothing");

        // Snapshots do not see later writes.
        let snapshot = store.snapshot().unwrap();
        let mut batch = WriteBatch::default();
        batch.put(b, b"p/4".to_vec(), b"later".to_vec());
        batch.delete(b, b"p/1".to_vec());
        store.write(batch, Durability::Buffered).unwrap();
        assert_eq!(snapshot.get(b, b"p/4").unwrap(), None, "snapshot must not see a later put");
        assert!(snapshot.get(b, b"p/1").unwrap().is_some(), "snapshot must not see a later delete");
        assert_eq!(scan(snapshot.as_ref(), b, b"p/").len(), 4, "snapshot scans are isolated too");
        drop(snapshot);
        assert_eq!(scan(store.as_ref(), b, b"p/").len(), 4, "live store sees p/4 and not p/1");

        // Large values.
        let big: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i * 7) as u8).collect();
        let mut batch = WriteBatch::default();
        batch.put(c, b"big".to_vec(), big.clone());
        store.write(batch, Durability::Synced).unwrap();
        assert_eq!(store.get(c, b"big").unwrap().as_deref(), Some(big.as_slice()), "4 MiB value round-trips");

        // Concurrent readers during writes see either old or new values, never torn batches.
        let writer = store.clone();
        std::thread::scope(|s| {
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    let r = store.clone();
                    s.spawn(move || {
                        for _ in 0..200 {
                            let snap = r.snapshot().unwrap();
                            let x = snap.get(c, b"pair-x").unwrap();
                            let y = snap.get(c, b"pair-y").unwrap();
                            assert_eq!(x, y, "a snapshot saw half of a batch");
                        }
                    })
                })
                .collect();
            for i in 0..200u32 {
                let mut batch = WriteBatch::default();
                batch.put(c, b"pair-x".to_vec(), i.to_be_bytes().to_vec());
                batch.put(c, b"pair-y".to_vec(), i.to_be_bytes().to_vec());
                writer.write(batch, Durability::Buffered).unwrap();
            }
            for r in readers {
                r.join().expect("reader");
            }
        });
    }
    if let Some(reopen) = reopen {
        let store = reopen();
        assert_eq!(store.get(a, b"k1").unwrap().as_deref(), Some(&b"second"[..]), "data survives close and reopen");
        assert_eq!(store.get(a, b"").unwrap().as_deref(), Some(&b"empty key"[..]), "empty key survives reopen");
        assert_eq!(scan(store.as_ref(), b, b"p/").len(), 4, "scans work after reopen");
        // No synced write followed these: closing the store is what must have kept them.
        let last = Some(199u32.to_be_bytes().to_vec());
        assert_eq!(store.get(c, b"pair-x").unwrap(), last, "a buffered write survives close and reopen");
        assert_eq!(store.get(c, b"pair-y").unwrap(), last, "a buffered write survives close and reopen");
    }
}

/// Environment variable that turns a test process into the writer of
/// [`storage_crash_conformance`] (its value: the store's directory).
pub const CRASH_CHILD_ENV: &str = "AETHER_STORAGE_CRASH_CHILD_DIR";
/// The round a writer process belongs to (seeds its choices).
const CRASH_ROUND_ENV: &str = "AETHER_STORAGE_CRASH_ROUND";

/// Settings of [`storage_crash_conformance`]. [`Default`] reads `AETHER_CRASH_ROUNDS` (default
/// 20) and `AETHER_SEED` (default 1) from the environment.
#[derive(Debug, Clone)]
pub struct CrashSettings {
    /// Number of kills.
    pub rounds: usize,
    /// Seeds the kill delays and each writer thread's choice of durability per batch.
    pub seed: u64,
    /// Concurrent writer threads in the child, each on its own keys.
    pub threads: usize,
    /// The child is killed after a delay drawn from `0..=max_kill_delay` once it has
    /// acknowledged its first batch: a random moment, usually inside some thread's write.
    pub max_kill_delay: Duration,
}

impl Default for CrashSettings {
    fn default() -> Self {
        fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
            std::env::var(name).ok().and_then(|v| v.parse().ok())
        }
        CrashSettings {
            rounds: env("AETHER_CRASH_ROUNDS").unwrap_or(20),
            seed: env("AETHER_SEED").unwrap_or(1),
            threads: 4,
            max_kill_delay: Duration::from_millis(40),
        }
    }
}

/// Keys a writer thread rewrites in every batch: a torn batch shows as keys holding
/// different batch numbers.
const CRASH_KEYS: usize = 8;

/// Alternates hash-indexed and ordered columns (backends index them differently).
fn crash_column(i: u64) -> &'static str {
    if i % 2 == 0 {
        columns::META
    } else {
        columns::BLOCK_INDEX
    }
}

fn crash_key(thread: usize, i: usize) -> Vec<u8> {
    format!("crash/{thread:02}/key/{i:02}").into_bytes()
}

/// One key per batch, never rewritten: a batch that vanished while a later one survived
/// shows as a gap in these.
fn crash_log_key(thread: usize, n: u64) -> Vec<u8> {
    format!("crash/{thread:02}/log/{n:012}").into_bytes()
}

/// Batch `n` of a thread writes to key `i` the number `n`, padded to a size and fill of its
/// own (so a value from another batch, or a torn value, never compares equal).
fn crash_value(thread: usize, n: u64, i: usize) -> Vec<u8> {
    let mut v = n.to_be_bytes().to_vec();
    let len = 64 + ((n as usize).wrapping_mul(31) + i * 397 + thread * 101) % 2048;
    v.resize(len, (n as usize + i + thread) as u8);
    v
}

fn crash_log_value(thread: usize, n: u64) -> Vec<u8> {
    format!("{thread}:{n}").into_bytes()
}

/// The batch number key 0 of `thread` holds (0: none yet).
fn crash_batch_number(store: &dyn KvRead, thread: usize) -> Result<u64, StorageError> {
    let v = store.get(crash_column(0), &crash_key(thread, 0))?;
    Ok(v.and_then(|b| Some(u64::from_be_bytes(b.get(..8)?.try_into().ok()?))).unwrap_or(0))
}

/// What the parent learnt from one child's acknowledgements, per writer thread.
#[derive(Debug, Clone, Default)]
struct Acked {
    /// The last batch acknowledged (either durability).
    last: u64,
    /// The lowest batch number the store must hold after the kill: the last synced batch,
    /// and every buffered batch acknowledged before some synced write (of any thread) began.
    required: u64,
    /// Why `required` is what it is, for the failure message.
    required_because: String,
}

/// Checks that a killed writer process leaves every batch whole or absent, that acknowledged
/// synced writes survive, and that buffered writes survive once a later synced write has
/// returned (the [`Durability`] contract).
///
/// Call it from a `#[test]` whose full path is `test_path` (e.g.
/// `"tests::survives_being_killed"`; integration tests: just the function name). The test re-runs
/// its own binary as a writer process (the same test, told so by [`CRASH_CHILD_ENV`]) with
/// `settings.threads` threads. Each thread commits numbered batches to its own keys, each batch
/// rewriting 8 keys of 64 B–2 KiB and adding one log key of its own, half of them
/// `Synced` and half `Buffered` (seeded). The parent kills the writer with SIGKILL at a random
/// moment, reopens the store with `open`, and checks for each thread:
///
/// 1. **whole batch**: the rewritten keys all hold the same batch `N`, whose log key is there
///    and no later batch's is;
/// 2. **no gap**: the log keys of batches `1..N` are all there;
/// 3. **synced survives**: `N` is at least the last batch acknowledged as synced;
/// 4. **buffered survives a later sync**: `N` is at least every batch acknowledged (buffered)
///    before a synced write of any thread began that was then acknowledged;
/// 5. **nothing invented**: `N` is at most one past the last acknowledged batch;
///
/// and that the writer was still writing when it was killed (**writes keep working**: a
/// failed write ends it early, with its error on stderr, which the message shows).
///
/// Each round continues the store of the previous one. The first round with a broken rule
/// panics with all of that round's broken rules, the seed and the round (`AETHER_CRASH_KEEP=1`
/// keeps the store's directory for a look). In the writer process the call never returns.
pub fn storage_crash_conformance<S: KvStore>(test_path: &str, open: impl Fn(&std::path::Path) -> S, settings: CrashSettings) {
    let CrashSettings { rounds, seed, threads, max_kill_delay } = settings;
    if let Ok(dir) = std::env::var(CRASH_CHILD_ENV) {
        let round: u64 = std::env::var(CRASH_ROUND_ENV).ok().and_then(|r| r.parse().ok()).unwrap_or(0);
        crash_writer(Arc::new(open(std::path::Path::new(&dir))), seed, round, threads);
    }

    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let scratch = crate::crash::ScratchDir::new("storage-crash");
    let dir = scratch.path().display().to_string();
    let started = std::time::Instant::now();
    let mut acked = vec![Acked::default(); threads];
    let mut in_store = vec![0u64; threads];
    for round in 0..rounds {
        let context = format!(
            "storage crash kit (seed {seed}, round {round} of {rounds}, {threads} writer threads; rerun with AETHER_SEED={seed}, {})",
            scratch.describe()
        );
        let delay = Duration::from_micros(rng.gen_range(0..=max_kill_delay.as_micros() as u64));
        let env = [(CRASH_CHILD_ENV, dir.clone()), (CRASH_ROUND_ENV, round.to_string())];
        let killed = crate::crash::run_then_kill(test_path, &env, delay).unwrap_or_else(|e| panic!("{context}: {e}"));
        // Each child starts from what the store held after the previous kill.
        for (a, &n) in acked.iter_mut().zip(&in_store) {
            a.last = a.last.max(n);
        }
        let mut violations = read_acks(&killed.lines, &mut acked);
        violations.extend(killed.early_exit().map(|e| format!("writes keep working: {e}")));
        let store =
            crate::crash::in_context(&format!("{context}: reopening the store after the kill"), || open(std::path::Path::new(&dir)));
        for (t, a) in acked.iter().enumerate() {
            match crate::crash::in_context(&context, || check_thread(&store, t, a, in_store[t])) {
                Ok(n) => in_store[t] = n,
                Err(mut v) => violations.append(&mut v),
            }
        }
        drop(store);
        if !violations.is_empty() {
            let list: String = violations.iter().map(|v| format!("\n  - {v}")).collect();
            panic!("{context}: {} broken rule(s):{list}", violations.len());
        }
    }
    eprintln!(
        "storage crash kit: seed {seed}, {rounds} kills of {threads} writer threads in {:.1?}; batches per thread now {in_store:?}",
        started.elapsed()
    );
}

/// The writer process: `threads` threads committing batches until killed.
fn crash_writer<S: KvStore>(store: Arc<S>, seed: u64, round: u64, threads: usize) -> ! {
    use rand::{Rng, SeedableRng};
    let acks = Arc::new(crate::crash::Acks::default());
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (store, acks) = (store.clone(), acks.clone());
            std::thread::spawn(move || {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ (round << 16) ^ ((t as u64) << 40));
                let mut n = crash_batch_number(store.as_ref(), t).unwrap_or_else(|e| acks.fail(&format!("read: {e}")));
                loop {
                    n += 1;
                    let mut batch = WriteBatch::default();
                    for i in 0..CRASH_KEYS {
                        batch.put(crash_column(i as u64), crash_key(t, i), crash_value(t, n, i));
                    }
                    batch.put(crash_column(n), crash_log_key(t, n), crash_log_value(t, n));
                    let synced = rng.gen_bool(0.5);
                    if synced {
                        acks.say(&format!("begin {t} {n}"));
                    }
                    let durability = if synced { Durability::Synced } else { Durability::Buffered };
                    if let Err(e) = store.write(batch, durability) {
                        acks.fail(&format!("thread {t}: write of batch {n} failed: {e}"));
                    }
                    acks.say(&format!("acked {t} {n} {}", if synced { "synced" } else { "buffered" }));
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    acks.fail("a writer thread stopped")
}

/// Folds the child's lines into `acked`; returns lines it cannot read as violations.
fn read_acks(lines: &[String], acked: &mut [Acked]) -> Vec<String> {
    let mut violations = Vec::new();
    // For each synced write in flight: what every thread had acknowledged when it began.
    let mut begun: std::collections::HashMap<(usize, u64), Vec<u64>> = std::collections::HashMap::new();
    for line in lines {
        let parts: Vec<&str> = line.split(' ').collect();
        let parsed = match parts.as_slice() {
            [kind @ ("begin" | "acked"), t, n, rest @ ..] => {
                t.parse::<usize>().ok().zip(n.parse::<u64>().ok()).map(|(t, n)| (*kind, t, n, rest.first().copied()))
            }
            _ => None,
        };
        let Some((kind, t, n, durability)) = parsed.filter(|(_, t, _, _)| *t < acked.len()) else {
            violations.push(format!("the writer printed a line the kit cannot read: {line:?}"));
            continue;
        };
        match (kind, durability) {
            ("begin", _) => {
                begun.insert((t, n), acked.iter().map(|a| a.last).collect());
            }
            (_, Some("synced")) => {
                acked[t].last = n;
                if n > acked[t].required {
                    acked[t].required = n;
                    acked[t].required_because = format!("batch {n} was acknowledged as synced");
                }
                for (u, &before) in begun.remove(&(t, n)).unwrap_or_default().iter().enumerate() {
                    if before > acked[u].required {
                        acked[u].required = before;
                        acked[u].required_because =
                            format!("batch {before} was acknowledged (buffered) or recovered before thread {t}'s synced batch {n} began, which was then acknowledged");
                    }
                }
            }
            _ => acked[t].last = n,
        }
    }
    violations
}

/// Checks one writer thread's keys after a kill; returns the batch number they hold.
fn check_thread(store: &dyn KvRead, t: usize, acked: &Acked, checked_before: u64) -> Result<u64, Vec<String>> {
    let mut violations = Vec::new();
    let read = |col, key: &[u8]| store.get(col, key).unwrap_or_else(|e| panic!("reading the store after the kill failed: {e}"));
    let n = crash_batch_number(store, t).unwrap_or_else(|e| panic!("reading the store after the kill failed: {e}"));
    let holds = |v: &Option<Vec<u8>>| match v {
        None => "nothing".to_string(),
        Some(b) if b.len() >= 8 => format!("batch {}", u64::from_be_bytes(b[..8].try_into().unwrap_or_default())),
        Some(b) => format!("{} bytes", b.len()),
    };
    let torn: Vec<String> = (0..CRASH_KEYS)
        .filter_map(|i| {
            let v = read(crash_column(i as u64), &crash_key(t, i));
            (v != (n > 0).then(|| crash_value(t, n, i))).then(|| format!("key {i} holds {}", holds(&v)))
        })
        .collect();
    if !torn.is_empty() {
        violations.push(format!("whole batch: thread {t}'s key 0 holds batch {n} but {} (a torn batch)", torn.join(", ")));
    }
    // Log keys below what the previous round checked were checked then; rule 3 and 4 catch
    // their loss through the batch number. Re-reading all of them every round would cost
    // O(rounds * batches).
    let from = checked_before.saturating_sub(8).max(1);
    let logged = |m: u64| read(crash_column(m), &crash_log_key(t, m)) == Some(crash_log_value(t, m));
    if n > 0 && !logged(n) {
        violations.push(format!("whole batch: thread {t}'s keys hold batch {n}, but its log key is missing (a torn batch)"));
    }
    let missing: Vec<u64> = (from..n).filter(|&m| !logged(m)).collect();
    if !missing.is_empty() {
        let shown: Vec<String> = missing.iter().take(10).map(u64::to_string).collect();
        violations.push(format!(
            "no gap: thread {t}'s store holds batch {n} but not the log key of {} earlier batch(es): {}{}",
            missing.len(),
            shown.join(", "),
            if missing.len() > 10 { ", ..." } else { "" }
        ));
    }
    let extra: Vec<u64> = (n + 1..=acked.last + 1).filter(|&m| read(crash_column(m), &crash_log_key(t, m)).is_some()).collect();
    if !extra.is_empty() {
        violations
            .push(format!("whole batch: thread {t}'s keys hold batch {n}, but the log keys of batches {extra:?} exist (a torn batch)"));
    }
    if n < acked.required {
        violations.push(format!(
            "{}: thread {t}'s store holds batch {n}, but {}",
            if acked.required_because.contains("synced batch") { "buffered survives a later sync" } else { "synced survives" },
            acked.required_because
        ));
    }
    if n > acked.last + 1 {
        violations.push(format!("nothing invented: thread {t}'s store holds batch {n}, but the last acknowledged was {}", acked.last));
    }
    if violations.is_empty() {
        Ok(n)
    } else {
        Err(violations)
    }
}
