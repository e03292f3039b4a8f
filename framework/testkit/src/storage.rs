//! The storage conformance suites: a backend author runs each with one call.
//!
//! Status: [`storage_conformance`] covers the [`KvStore`] contract (reads, atomic batches,
//! ordered prefix scans with and without a start key, snapshot isolation, reopen, empty keys
//! and values, unknown columns, large values, concurrent readers);
//! [`storage_crash_conformance`] kills a writer process mid-commit and checks atomicity and
//! that acknowledged writes survive. Memory, RocksDB and ParityDB pass both (memory only the
//! first: it has nothing to survive a process).
//!

use std::sync::Arc;

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
    }
}

/// Environment variable that turns a test process into the writer of
/// [`storage_crash_conformance`].
pub const CRASH_CHILD_ENV: &str = "AETHER_STORAGE_CRASH_CHILD_DIR";

const CRASH_KEYS: usize = 16;

/// Half the keys go to a hash-indexed column, half to an ordered one (backends index them
/// differently).
fn crash_column(i: usize) -> &'static str {
    if i % 2 == 0 {
        columns::META
    } else {
        columns::BLOCK_INDEX
    }
}

/// Checks that a batch survives a killed process whole or not at all, and that every write
/// acknowledged as synced survives. Call it from a `#[test]` whose full path is `test_path`
/// (e.g. `"tests::survives_being_killed"`): the test re-runs its own binary as a writer that
/// commits batches of 16 keys, kills it with SIGKILL at `rounds` seeded random moments, reopens
/// the store with `open`, and checks that all 16 keys hold the same batch number and that it
/// is at least the last one the writer reported as written. Seed: `AETHER_SEED` (default 1).
///
/// Panics naming the broken rule; in the writer process it never returns.
pub fn storage_crash_conformance<S: KvStore>(test_path: &str, open: impl Fn(&std::path::Path) -> S, rounds: usize) {
    use std::io::{BufRead, Write};
    let key = |i: usize| format!("crash/{i:02}").into_bytes();
    // Batch `n` writes to key `i` the number `n` padded to a size and fill of its own.
    let value = |n: u64, i: usize| {
        let mut v = n.to_be_bytes().to_vec();
        v.resize(1024 + i * 512, i as u8);
        v
    };
    let read_batch_number = |store: &S| -> u64 {
        let values: Vec<Option<Vec<u8>>> = (0..CRASH_KEYS).map(|i| store.get(crash_column(i), &key(i)).expect("read")).collect();
        let n = values[0].as_ref().map_or(0, |b| u64::from_be_bytes(b[..8].try_into().expect("8 bytes")));
        for (i, v) in values.iter().enumerate() {
            let expected = (n > 0).then(|| value(n, i));
            assert!(*v == expected, "a killed write left a torn batch: key {i} does not hold batch {n}'s value");
        }
        n
    };

    if let Ok(dir) = std::env::var(CRASH_CHILD_ENV) {
        let store = open(std::path::Path::new(&dir));
        let mut n = read_batch_number(&store);
        let mut out = std::io::stdout();
        loop {
            n += 1;
            let mut batch = WriteBatch::default();
            for i in 0..CRASH_KEYS {
                batch.put(crash_column(i), key(i), value(n, i));
            }
            store.write(batch, Durability::Synced).expect("write");
            let _ = writeln!(out, "acked {n}");
            let _ = out.flush();
        }
    }

    use rand::{Rng, SeedableRng};
    let seed: u64 = std::env::var("AETHER_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile_dir();
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut last_acked = 0;
    for round in 0..rounds {
        let mut child = std::process::Command::new(&exe)
            .args([test_path, "--exact", "--nocapture", "--test-threads=1"])
            .env(CRASH_CHILD_ENV, &dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the writer process");
        let kill_after: u64 = rng.gen_range(1..40);
        let mut lines = std::io::BufReader::new(child.stdout.take().expect("piped")).lines();
        let mut seen = 0;
        for line in lines.by_ref() {
            if let Some(n) = line.expect("writer output").strip_prefix("acked ") {
                last_acked = n.parse().expect("a batch number");
                seen += 1;
                if seen == kill_after {
                    break;
                }
            }
        }
        assert!(seen > 0, "round {round}: the writer acknowledged nothing (does {test_path:?} name this test?)");
        child.kill().expect("SIGKILL the writer");
        // Acknowledgements already in the pipe were written before the kill.
        for line in lines {
            if let Some(n) = line.ok().and_then(|l| l.strip_prefix("acked ").map(str::to_string)) {
                last_acked = n.parse().expect("a batch number");
            }
        }
        child.wait().expect("reap the writer");
        let store = open(std::path::Path::new(&dir));
        let n = read_batch_number(&store);
        assert!(n >= last_acked, "round {round} (seed {seed}): batch {last_acked} was acknowledged as synced, but only {n} survived");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> String {
    let base = std::env::temp_dir().join(format!("aether-crash-{}-{}", std::process::id(), rand::random::<u64>()));
    base.display().to_string()
}
