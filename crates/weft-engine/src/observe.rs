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
    /// The run waits before its first task, or what it waits for changed.
    Held(&'a Held),
    /// A task's component was instantiated (once per attempt; once per step for a task
    /// of steps).
    Instantiated {
        /// Task name.
        task: &'a str,
        /// How long instantiating took.
        elapsed: Duration,
    },
    /// `finally` tasks are starting.
    FinallyStarted,
    /// The run is over.
    Finished(&'a RunSummary),
}

/// Told how each attempt to deliver a status to a forge went, for every run of a
/// [`crate::runs::RunService`] ([`crate::runs::RunService::observe_deliveries`]): not a
/// [`RunEvent`], because deliveries start before a run's observers exist (`pending` at
/// submission, owed statuses resumed on take-over) and go on after them (finished runs'
/// leftovers). Called from the delivery workers; it should be quick.
pub trait DeliveryObserver: Send + Sync {
    /// One attempt of reporter `plugin` (as configured: `reporter-gitlab`, a path, an
    /// `oci://` reference; user input, so not a metric label as is) ended with `result`.
    fn delivery(&self, plugin: &str, result: DeliveryResult);
}

/// How one attempt to deliver a status went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryResult {
    /// The forge took it.
    Delivered,
    /// It failed and will be tried again after a backoff.
    Retrying,
    /// It failed for good: a permanent answer, or the last attempt allowed.
    GaveUp,
}

impl DeliveryResult {
    /// `delivered`, `retried` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryResult::Delivered => "delivered",
            DeliveryResult::Retrying => "retried",
            DeliveryResult::GaveUp => "failed",
        }
    }
}

/// What a run waits for before its first task (release-control.md sections 4 and 5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// Its scheduled time.
    Scheduled {
        /// When it starts.
        at: std::time::SystemTime,
    },
    /// A slot of its concurrency group.
    Queued {
        /// "queued: deploy-prod group, 2 ahead".
        description: String,
    },
}

impl Held {
    /// What the live view and `weft runs list` say: "queued: deploy group, 2 ahead",
    /// "scheduled for 2026-12-24T02:00:00Z".
    pub fn describe(&self) -> String {
        match self {
            Held::Scheduled { at } => format!("scheduled for {}", describe_time(*at)),
            Held::Queued { description } => description.clone(),
        }
    }
}

/// A time as RFC 3339 in UTC, to the second.
pub fn describe_time(at: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
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
