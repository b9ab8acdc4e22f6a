//! What a run tells the world while it goes: [`RunEvent`]s to [`RunObserver`]s (the live
//! view, the log files, the reporters). Observers see only masked text: log lines and
//! messages are masked before any event is made ([`crate::mask`]).

use std::sync::Arc;
use std::time::Duration;

use weft_core::{Outcome, RunSummary, RunWait, TaskPhase};
use weft_runtime::LogLine;

/// Something that happened in a run, for live views and logs.
#[derive(Debug, Clone, Copy)]
pub enum RunEvent<'a> {
    /// A task changed phase.
    Transition {
        /// Task name.
        task: &'a str,
        /// Whether it is a `finally` task.
        is_finally: bool,
        /// New phase.
        phase: TaskPhase,
        /// Outcome, when terminal.
        outcome: Option<Outcome>,
        /// Reason (skip reason, failure reason, ...).
        reason: &'a str,
        /// Attempt, 0-based.
        attempt: u32,
        /// How long the attempt ran, when it just ended.
        elapsed: Option<Duration>,
    },
    /// A task wrote a log line.
    Log {
        /// Task name.
        task: &'a str,
        /// The line (already masked).
        line: &'a LogLine,
    },
    /// A task waits (for approvers, a person, a gate), or what it waits for changed.
    Waiting {
        /// Task name.
        task: &'a str,
        /// Whether it is a `finally` task.
        is_finally: bool,
        /// What it waits for, and how far along it is.
        wait: &'a RunWait,
    },
    /// `finally` tasks are starting.
    FinallyStarted,
    /// The run is over.
    Finished(&'a RunSummary),
}

/// Receives a run's events. Called from several threads (log lines come from tasks).
pub trait RunObserver: Send + Sync {
    /// Takes one event.
    fn event(&self, event: RunEvent<'_>);
}

/// An observer that ignores everything.
pub struct Quiet;

impl RunObserver for Quiet {
    fn event(&self, _event: RunEvent<'_>) {}
}

/// Passes every event to each observer in turn (reporters first, then the view).
pub struct Fanout(pub Vec<Arc<dyn RunObserver>>);

impl RunObserver for Fanout {
    fn event(&self, event: RunEvent<'_>) {
        for observer in &self.0 {
            observer.event(event);
        }
    }
}
