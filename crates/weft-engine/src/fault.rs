//! Fault points for crash tests. With `WEFT_FAULT=<point>[:<n>]` in the environment the
//! process kills itself with SIGKILL the n-th time (default the first) it reaches that
//! point, so tests can stop the engine at every persistence boundary exactly where they
//! want. Without the variable every point is a no-op.
//!
//! Points: `task-start-before`, `task-start-after`, `task-finish-before` (an attempt ended
//! but its record is not yet durable), `task-ended-unrecorded` (its ending is durable in
//! the journal, its terminal record not yet), `task-finish-after`, `finally`,
//! `final-status-before`, `report-final-before`; for waits, `wait-opened` (the wait is
//! durable in the store), `wait-progress` (a wait's progress changed: a vote was counted,
//! a gate sample came back) and `gate-sampling` (a gate sample is being taken); for
//! schedules, `tick-claimed` (a server claimed a tick and has not created its run).
//!
//! Failure points make an operation fail instead of killing the process, the n-th time it
//! is reached: `task-launch-fail` (the launch of a task attempt fails; see [`fails`]).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

struct Fault {
    point: String,
    nth: u64,
    hits: AtomicU64,
}

fn configured() -> Option<&'static Fault> {
    static FAULT: OnceLock<Option<Fault>> = OnceLock::new();
    FAULT
        .get_or_init(|| {
            let spec = std::env::var("WEFT_FAULT").ok()?;
            let (point, nth) = match spec.split_once(':') {
                Some((point, nth)) => (point.to_string(), nth.parse().ok()?),
                None => (spec, 1),
            };
            Some(Fault {
                point,
                nth,
                hits: AtomicU64::new(0),
            })
        })
        .as_ref()
}

/// Whether `name` is the configured point (callers make state durable before it).
pub fn armed(name: &str) -> bool {
    configured().is_some_and(|fault| fault.point == name)
}

/// Reaches the fault point `name`.
pub fn point(name: &str) {
    let Some(fault) = configured() else {
        return;
    };
    if fault.point == name && fault.hits.fetch_add(1, Ordering::SeqCst) + 1 == fault.nth {
        kill_self();
    }
}

/// Reaches the failure point `name`: true the n-th time when it is the configured point,
/// and the caller then fails the operation as the real failure would.
pub fn fails(name: &str) -> bool {
    configured().is_some_and(|fault| {
        fault.point == name && fault.hits.fetch_add(1, Ordering::SeqCst) + 1 == fault.nth
    })
}

#[allow(unsafe_code)]
fn kill_self() {
    eprintln!("weft: fault point reached; killing the engine (WEFT_FAULT)");
    // SAFETY: sending a signal to our own process has no memory-safety preconditions.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
}
