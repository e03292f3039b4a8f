//! Helpers shared by the tests that run the `aether` binary.

use std::process::Child;

/// Kills the child process when dropped, so a failing test never leaves a node running.
pub struct ChildGuard(pub Option<Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
