//! Running a test's own binary as a child writer and killing it with SIGKILL: the machinery
//! shared by [`storage_crash_conformance`](crate::storage_crash_conformance) and the
//! node-level kit in `aether-testkit-node`.
//!
//! The parent re-runs the current test binary with `TEST_PATH --exact` and an environment
//! variable that tells the test it is the child; the child prints one line per acknowledged
//! write on stdout ([`Acks`]); the parent reads them, kills the child after a delay, reaps it
//! and returns every line the child wrote before it died.

use std::io::{BufRead, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a child may live if nobody kills it: a bound, so an orphaned child (its parent
/// died before the kill) cannot run forever.
pub const CHILD_LIFETIME: Duration = Duration::from_secs(120);

/// How long the parent waits for the child's first line (process start plus opening the
/// store, which may replay a log).
pub const FIRST_LINE_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts every line the child means for the parent: the test harness writes its own text to
/// the same stdout, sometimes without a line break before ours.
const MARK: &str = "@aether-crash-kit ";

/// Kills and reaps the child when dropped, so no failure path leaves it running.
struct Reaper(Option<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What a killed child left behind.
#[derive(Debug, Default)]
pub struct KilledChild {
    /// Every line it wrote through [`Acks::say`], in order (a line written before the kill is
    /// never lost: the pipe keeps it).
    pub lines: Vec<String>,
    /// Its stderr, for failure messages.
    pub stderr: String,
    /// Set if it had already ended when the kill came: a writer that stops by itself (a
    /// failed write, a panic) is a failure even if what it left behind looks right.
    pub exited_before_kill: Option<std::process::ExitStatus>,
}

impl KilledChild {
    /// Why the child's run does not count, if it ended by itself.
    pub fn early_exit(&self) -> Option<String> {
        let status = self.exited_before_kill?;
        Some(format!("the child ended by itself before the kill ({status}); its stderr ends with:\n{}", tail(&self.stderr)))
    }
}

fn tail(text: &str) -> String {
    let start = text.char_indices().rev().nth(2000).map_or(0, |(i, _)| i);
    text[start..].to_string()
}

/// Runs this test binary's test `test_path` as a child with `env` set, waits (at most
/// [`FIRST_LINE_TIMEOUT`]) for its first [`Acks::say`] line, then sleeps `delay`, SIGKILLs it and
/// reaps it. Returns an error (with the child's stderr) if it printed nothing.
pub fn run_then_kill(test_path: &str, env: &[(&str, String)], delay: Duration) -> Result<KilledChild, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the test binary: {e}"))?;
    let mut command = Command::new(&exe);
    command.args([test_path, "--exact", "--nocapture", "--test-threads=1"]);
    for (k, v) in env {
        command.env(k, v);
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    let mut reaper = Reaper(Some(child));
    let child = reaper.0.as_mut().ok_or("no child")?;
    let stdout = child.stdout.take().ok_or("stdout is not piped")?;
    let mut stderr = child.stderr.take().ok_or("stderr is not piped")?;
    // Readers on their own threads: the parent must keep time while the child writes, and a
    // full stderr pipe must never block the child.
    let (tx, rx) = mpsc::channel();
    let out_reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            let Some(at) = line.find(MARK) else { continue };
            if tx.send(line[at + MARK.len()..].to_string()).is_err() {
                return;
            }
        }
    });
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    let mut lines = Vec::new();
    let first = rx.recv_timeout(FIRST_LINE_TIMEOUT);
    if let Ok(line) = first {
        lines.push(line);
        std::thread::sleep(delay);
    }
    let exited_before_kill = reaper.0.as_mut().and_then(|c| c.try_wait().ok().flatten());
    drop(reaper); // SIGKILL and reap: the pipes close, so both readers finish
    lines.extend(rx.iter());
    let _ = out_reader.join();
    let stderr = err_reader.join().unwrap_or_default();
    if lines.is_empty() {
        let tail = tail(&stderr);
        return Err(format!(
            "the child printed nothing within {FIRST_LINE_TIMEOUT:?} (does {test_path:?} name the test that calls the kit, \
             with its module path?); its stderr ends with:\n{tail}"
        ));
    }
    Ok(KilledChild { lines, stderr, exited_before_kill })
}

/// The child's side: prints acknowledgement lines, and ends the process when the parent is
/// gone (stdout closed) or [`CHILD_LIFETIME`] has passed.
pub struct Acks {
    started: Instant,
}

impl Default for Acks {
    fn default() -> Self {
        Acks { started: Instant::now() }
    }
}

impl Acks {
    /// Writes `line` whole (concurrent callers never interleave) and flushes it.
    pub fn say(&self, line: &str) {
        let mut out = std::io::stdout().lock();
        if writeln!(out, "{MARK}{line}").and_then(|()| out.flush()).is_err() || self.started.elapsed() > CHILD_LIFETIME {
            std::process::exit(0);
        }
    }

    /// Ends the child with a message on stderr (which the parent shows if it matters).
    pub fn fail(&self, what: &str) -> ! {
        eprintln!("crash-kit child: {what}");
        std::process::exit(3);
    }
}

/// Runs `f`; if it panics (a backend's `open(..).unwrap()` after a kill, say), panics again
/// with `context` (the kit, seed and round) in front of the original message.
pub fn in_context<T>(context: &str, f: impl FnOnce() -> T) -> T {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(payload) => {
            let message = payload.downcast_ref::<String>().cloned().or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()));
            panic!("{context}: {}", message.unwrap_or_else(|| "a panic without a message".into()))
        }
    }
}

/// Set to keep a crash kit's store directory after a failure, for a look at it.
pub const KEEP_ENV: &str = "AETHER_CRASH_KEEP";

/// A crash kit's store directory under the system's temporary directory, removed when dropped
/// (also when the kit panics) unless [`KEEP_ENV`] is set.
pub struct ScratchDir(std::path::PathBuf);

impl ScratchDir {
    pub fn new(kit: &str) -> ScratchDir {
        ScratchDir(std::env::temp_dir().join(format!("aether-{kit}-{}-{}", std::process::id(), rand::random::<u64>())))
    }
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
    /// For failure messages: where the store is, and how to keep it.
    pub fn describe(&self) -> String {
        match std::env::var_os(KEEP_ENV) {
            Some(_) => format!("store kept at {}", self.0.display()),
            None => format!("{KEEP_ENV}=1 keeps the store"),
        }
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if std::env::var_os(KEEP_ENV).is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_panic_inside_gets_the_kits_context_in_front() {
        let payload = std::panic::catch_unwind(|| super::in_context("kit (seed 7, round 3)", || -> u8 { panic!("open failed: {}", 42) }))
            .expect_err("the panic goes on");
        let message = payload.downcast_ref::<String>().cloned().unwrap_or_default();
        assert_eq!(message, "kit (seed 7, round 3): open failed: 42");
        assert_eq!(super::in_context("unused", || 5), 5, "a value passes through");
    }
}
