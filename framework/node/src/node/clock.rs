//! The node's time source. Consensus and execution never read a clock: the driver reads this
//! one and passes the time in.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::types::TimestampMs;

/// Time source of the driver. Engines never read it; the driver passes its readings in.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> TimestampMs;
}

/// Milliseconds since the Unix epoch that never go backwards: the wall clock read once at
/// start, advanced by a monotonic clock. A wall-clock step (NTP) therefore cannot stall timers
/// or make block times decrease; the drift from wall time is the monotonic clock's drift.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    wall_at_start_ms: TimestampMs,
    start: Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock {
            wall_at_start_ms: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0),
            start: Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> TimestampMs {
        self.wall_at_start_ms + self.start.elapsed().as_millis() as u64
    }
}
