//! The records the store keeps, and the write operations that change them.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::StoreError;
pub use crate::vocab::{Outcome, RunPhase, TaskPhase};

/// A point in time: milliseconds since the Unix epoch (UTC). Deadlines after a restart are
/// computed from these stored values, never from a process-local clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Self {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Timestamp(ms)
    }

    /// Milliseconds since the epoch.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// This time minus `d` (saturating).
    pub fn minus(self, d: Duration) -> Self {
        Timestamp(
            self.0
                .saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    }

    /// This time plus `d` (saturating).
    pub fn plus(self, d: Duration) -> Self {
        Timestamp(
            self.0
                .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    }

    /// How long from `earlier` to this time (zero if `earlier` is later).
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }
}

/// The deterministic id of one task execution: `run/task/attempt` (attempt 0-based).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AttemptId {
    /// Run id.
    pub run: String,
    /// Pipeline task name.
    pub task: String,
    /// Attempt, 0-based.
    pub attempt: u32,
}

impl AttemptId {
    /// Builds an id.
    pub fn new(run: impl Into<String>, task: impl Into<String>, attempt: u32) -> Self {
        AttemptId {
            run: run.into(),
            task: task.into(),
            attempt,
        }
    }
}

impl fmt::Display for AttemptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.run, self.task, self.attempt)
    }
}

/// What to do with a run whose engine died (architecture.md, "Persistence and recovery").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Recovery {
    /// In-flight tasks become `Errored` with reason `EngineRestarted`.
    #[default]
    None,
    /// Re-run from the beginning.
    StartOver,
    /// Keep finished tasks, re-run in-flight ones.
    Resume,
}

impl Recovery {
    /// The stored (and CLI) name: `none`, `startOver`, `resume`.
    pub fn as_str(self) -> &'static str {
        match self {
            Recovery::None => "none",
            Recovery::StartOver => "startOver",
            Recovery::Resume => "resume",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Recovery::None),
            "startOver" => Some(Recovery::StartOver),
            "resume" => Some(Recovery::Resume),
            _ => None,
        }
    }
}

#[cfg(feature = "core")]
impl From<Recovery> for weft_core::model::RecoveryStrategy {
    fn from(recovery: Recovery) -> Self {
        match recovery {
            Recovery::None => weft_core::model::RecoveryStrategy::None,
            Recovery::StartOver => weft_core::model::RecoveryStrategy::StartOver,
            Recovery::Resume => weft_core::model::RecoveryStrategy::Resume,
        }
    }
}

#[cfg(feature = "core")]
impl From<weft_core::model::RecoveryStrategy> for Recovery {
    fn from(strategy: weft_core::model::RecoveryStrategy) -> Self {
        match strategy {
            weft_core::model::RecoveryStrategy::None => Recovery::None,
            weft_core::model::RecoveryStrategy::StartOver => Recovery::StartOver,
            weft_core::model::RecoveryStrategy::Resume => Recovery::Resume,
        }
    }
}

/// A run as submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRun {
    /// Unique run id (`$(context.pipelineRun.uid)`).
    pub id: String,
    /// Run name (`$(context.pipelineRun.name)`).
    pub name: String,
    /// `metadata.name` of the pipeline.
    pub pipeline_name: String,
    /// The pipeline document exactly as submitted.
    pub pipeline_source: String,
    /// Params as JSON. The caller redacts secret values; the store never sees them.
    pub params_json: String,
    /// Run options as JSON (timeouts, parallelism, limits...), secrets redacted.
    pub options_json: String,
    /// When the run was created.
    pub created_at: Timestamp,
    /// What to do after an engine crash.
    pub recovery: Recovery,
}

/// The lease an engine holds on a run. Every write for the run carries it; a write whose
/// token is not the run's current one is rejected with [`StoreError::StaleLease`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Lease {
    /// Run id.
    pub run: String,
    /// Who holds it (an engine instance id).
    pub owner: String,
    /// The fencing token: strictly increases with every claim of the run.
    pub token: u64,
}

/// A stored run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    /// The run as submitted.
    pub submitted: NewRun,
    /// Current phase.
    pub phase: RunPhase,
    /// Final status (`Succeeded`, `Failed`...) once finished.
    pub status: Option<String>,
    /// Reason of the final status.
    pub reason: String,
    /// When it finished.
    pub finished_at: Option<Timestamp>,
    /// The final report document (JSON), once finished.
    pub report_json: Option<String>,
    /// Current lease holder, if any.
    pub lease_owner: Option<String>,
    /// Current fencing token (0 = never claimed).
    pub lease_token: u64,
    /// Last heartbeat of the lease holder.
    pub heartbeat_at: Option<Timestamp>,
}

/// One line of the run list (`weft runs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunListItem {
    /// Run id.
    pub id: String,
    /// Run name.
    pub name: String,
    /// Pipeline name.
    pub pipeline_name: String,
    /// Current phase.
    pub phase: RunPhase,
    /// Final status once finished.
    pub status: Option<String>,
    /// Created.
    pub created_at: Timestamp,
    /// Finished.
    pub finished_at: Option<Timestamp>,
}

impl RunListItem {
    /// How long the run took, once finished.
    pub fn duration(&self) -> Option<Duration> {
        self.finished_at.map(|f| f.since(self.created_at))
    }
}

/// A run whose lease holder stopped heartbeating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleRun {
    /// Run id.
    pub id: String,
    /// Last holder.
    pub owner: Option<String>,
    /// Its token.
    pub token: u64,
    /// Its last heartbeat.
    pub heartbeat_at: Option<Timestamp>,
    /// The run's recovery strategy.
    pub recovery: Recovery,
}

/// One attempt of a task. Written whole on every transition (an upsert keyed by `id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// `run/task/attempt`.
    pub id: AttemptId,
    /// Phase.
    pub phase: TaskPhase,
    /// Outcome, once terminal.
    pub outcome: Option<Outcome>,
    /// Reason (skip reason, failure reason, limit...).
    pub reason: String,
    /// Exit code of the raw ending.
    pub exit_code: Option<i32>,
    /// Results as a JSON object.
    pub results_json: String,
    /// Message of the raw ending.
    pub message: String,
    /// When it began running. An update with `None` keeps the stored value.
    pub started_at: Option<Timestamp>,
    /// When it ended. An update with `None` keeps the stored value.
    pub ended_at: Option<Timestamp>,
    /// When this record was written.
    pub updated_at: Timestamp,
}

impl AttemptRecord {
    /// A record in `phase` with empty details.
    pub fn new(id: AttemptId, phase: TaskPhase, at: Timestamp) -> Self {
        AttemptRecord {
            id,
            phase,
            outcome: None,
            reason: String::new(),
            exit_code: None,
            results_json: "{}".to_string(),
            message: String::new(),
            started_at: None,
            ended_at: None,
            updated_at: at,
        }
    }

    /// Terminal records never change again.
    pub fn is_terminal(&self) -> bool {
        self.phase == TaskPhase::Terminal
    }
}

/// An event to append to a run's event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// When it happened.
    pub at: Timestamp,
    /// What kind (`transition`, `finallyStarted`, `finished`, ...).
    pub kind: String,
    /// Task it concerns, if any.
    pub task: Option<String>,
    /// Attempt it concerns, if any.
    pub attempt: Option<u32>,
    /// Details as JSON.
    pub data_json: String,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// Run id.
    pub run: String,
    /// Sequence number within the run, from 1, without gaps.
    pub seq: u64,
    /// The event.
    pub event: NewEvent,
}

/// A log line to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLogLine {
    /// When it was written.
    pub at: Timestamp,
    /// Stream (`stdout`, `stderr`, `log`, `host`...).
    pub stream: String,
    /// The text, already masked.
    pub text: String,
}

/// A stored log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Cursor: increases across the whole store; pass the last one seen to poll for more.
    pub cursor: u64,
    /// Attempt it belongs to.
    pub id: AttemptId,
    /// The line.
    pub line: NewLogLine,
}

/// The stream name of the marker line written when a task's log reaches its cap.
pub const TRUNCATED_STREAM: &str = "weft";

/// A workspace snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Snapshot id (increases).
    pub id: u64,
    /// Run id.
    pub run: String,
    /// Task after which it was taken.
    pub task: String,
    /// Workspace name.
    pub workspace: String,
    /// When.
    pub created_at: Timestamp,
    /// The archive bytes (empty in listings).
    pub data: Vec<u8>,
    /// Size of the archive.
    pub size: u64,
}

/// Where a write applies: the run whose lease is checked (an attempt's, a log's or an
/// outbox row's run, which must be the lease's).
impl WriteOp {
    /// The run the write changes.
    pub fn target_run(&self) -> &str {
        match self {
            WriteOp::Attempt { record, .. } => &record.id.run,
            WriteOp::Logs { id, .. } => &id.run,
            WriteOp::OutboxDesire { key, .. }
            | WriteOp::OutboxDelivered { key, .. }
            | WriteOp::OutboxFailed { key, .. } => &key.run,
            other => &other.lease().run,
        }
    }
}

/// The status a reporter converges a forge to: weft-core's one report vocabulary, with its
/// never-backwards rule ([`ReportStatus::may_become`]).
pub use weft_core::contract::ReportStatus;

/// Key of an outbox row.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutboxKey {
    /// Reporter instance (plugin + target).
    pub reporter: String,
    /// Run id.
    pub run: String,
    /// Status context (e.g. `weft/build`).
    pub context: String,
}

/// A row of the reporter outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// Key.
    pub key: OutboxKey,
    /// What the forge should show.
    pub desired: ReportStatus,
    /// Its description.
    pub description: String,
    /// What the forge is known to show.
    pub delivered: Option<ReportStatus>,
    /// Delivery attempts since the last success.
    pub attempts: u32,
    /// Earliest next delivery attempt.
    pub next_attempt_at: Option<Timestamp>,
    /// Last delivery error.
    pub last_error: String,
    /// Last change.
    pub updated_at: Timestamp,
}

/// A message for whichever engine owns a run (cancel today; approval votes, reruns and
/// schedule ticks later). Any process may send one ([`crate::RunStore::send_signal`]); the
/// run's owner takes it ([`crate::RunStore::pending_signals`]), acts on it and marks it
/// handled under its lease ([`WriteOp::SignalHandled`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSignal {
    /// The run it is for.
    pub run: String,
    /// What kind (`cancel`, ...): the engine's vocabulary, versioned by its payload.
    pub kind: String,
    /// Its details as JSON.
    pub payload_json: String,
    /// When it was sent.
    pub sent_at: Timestamp,
}

/// A stored signal, not yet handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalRecord {
    /// Its id (increases).
    pub id: u64,
    /// The signal.
    pub signal: NewSignal,
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteAck {
    /// Applied.
    Done,
    /// Applied without effect (e.g. an outbox update that would regress a terminal state).
    Unchanged,
    /// An event was appended with this sequence number.
    Event(u64),
    /// Log lines: how many were kept and how many dropped by the cap.
    Logs {
        /// Lines stored.
        kept: usize,
        /// Lines dropped.
        dropped: usize,
    },
    /// A snapshot was stored with this id.
    Snapshot(u64),
}

/// A task waiting for people or for a gate: what it waits for (`request_json`, the
/// engine's), since when and until when, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitRecord {
    /// The waiting attempt.
    pub id: AttemptId,
    /// `approval`, `intervention` or `gate`.
    pub kind: String,
    /// What it waits for, as the engine wrote it (approvers, required count...).
    pub request_json: String,
    /// When it started waiting. Kept across restarts.
    pub since: Timestamp,
    /// When it times out, if ever. Kept across restarts.
    pub deadline: Option<Timestamp>,
    /// When it ended.
    pub closed_at: Option<Timestamp>,
    /// How it ended (e.g. `Approved`, `Rejected`, `Cancelled`).
    pub outcome: Option<String>,
}

impl WaitRecord {
    /// Whether it still waits.
    pub fn is_open(&self) -> bool {
        self.closed_at.is_none()
    }
}

/// A decision cast on a wait (an approval vote, a resume or reject). Cast by anyone the
/// engine allowed (not under the run's lease), journaled once per identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoteRecord {
    /// The waiting attempt.
    pub id: AttemptId,
    /// Who.
    pub identity: String,
    /// Approve (resume) rather than reject.
    pub approve: bool,
    /// Their message.
    pub message: String,
    /// An approval deferred until then.
    pub defer_until: Option<Timestamp>,
    /// When.
    pub at: Timestamp,
}

/// One change to the store. Every variant concerning a run carries the writer's [`Lease`]:
/// it is checked in the same transaction as the write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// The run changed phase. Rejected once the run is `Finished`.
    RunPhase {
        /// Writer's lease.
        lease: Lease,
        /// New phase.
        phase: RunPhase,
    },
    /// The run ended: phase `Finished`, final status and report. Written once.
    FinishRun {
        /// Writer's lease.
        lease: Lease,
        /// Final status name.
        status: String,
        /// Its reason.
        reason: String,
        /// The report document.
        report_json: String,
        /// When.
        finished_at: Timestamp,
    },
    /// Upserts an attempt. Rejected with [`StoreError::TerminalAttempt`] when the stored
    /// attempt is terminal.
    Attempt {
        /// Writer's lease.
        lease: Lease,
        /// The new state of the attempt.
        record: AttemptRecord,
    },
    /// Appends an event.
    Event {
        /// Writer's lease.
        lease: Lease,
        /// The event.
        event: NewEvent,
    },
    /// Appends log lines of an attempt, within the per-task cap.
    Logs {
        /// Writer's lease.
        lease: Lease,
        /// The attempt.
        id: AttemptId,
        /// The lines.
        lines: Vec<NewLogLine>,
    },
    /// Stores a checkpoint value.
    Checkpoint {
        /// Writer's lease.
        lease: Lease,
        /// Task.
        task: String,
        /// Key.
        key: String,
        /// Value.
        value: Vec<u8>,
        /// When.
        at: Timestamp,
    },
    /// Sets the desired state of an outbox row (created if missing). An update that would
    /// move the desired state backwards or away from a terminal state is `Unchanged`.
    OutboxDesire {
        /// Writer's lease (its run must be `key.run`).
        lease: Lease,
        /// Row.
        key: OutboxKey,
        /// Desired state.
        state: ReportStatus,
        /// Description.
        description: String,
        /// When.
        at: Timestamp,
    },
    /// Records that the forge now shows `state`; resets the retry counter. Never regresses a
    /// terminal delivered state (`Unchanged`).
    OutboxDelivered {
        /// Writer's lease.
        lease: Lease,
        /// Row.
        key: OutboxKey,
        /// Delivered state.
        state: ReportStatus,
        /// When.
        at: Timestamp,
    },
    /// Records a failed delivery: one more attempt, retry not before `next_attempt_at`.
    OutboxFailed {
        /// Writer's lease.
        lease: Lease,
        /// Row.
        key: OutboxKey,
        /// The error (no tokens in it).
        error: String,
        /// Earliest retry.
        next_attempt_at: Timestamp,
        /// When.
        at: Timestamp,
    },
    /// A task starts waiting. When the attempt already has a wait (a run taken over), the
    /// stored one stays as it is: its `since` and `deadline` hold across restarts.
    OpenWait {
        /// Writer's lease.
        lease: Lease,
        /// The wait (`closed_at` and `outcome` ignored).
        wait: WaitRecord,
    },
    /// A wait ended. Rejected when it is already closed.
    CloseWait {
        /// Writer's lease.
        lease: Lease,
        /// The waiting attempt.
        id: AttemptId,
        /// How it ended.
        outcome: String,
        /// When.
        at: Timestamp,
    },
    /// Stores a workspace snapshot (rejected above the size cap); keeps the last `keep`
    /// (at most [`StoreLimits::snapshots_per_run`]) of the run's workspace.
    Snapshot {
        /// Writer's lease.
        lease: Lease,
        /// Task.
        task: String,
        /// Workspace.
        workspace: String,
        /// Archive bytes.
        data: Vec<u8>,
        /// When.
        at: Timestamp,
        /// Snapshots of this run's workspace to keep, this one included (0 counts as 1).
        keep: u32,
    },
    /// Marks a signal of the lease's run handled. `Unchanged` when it already was;
    /// [`StoreError::NotFound`] when the run has no such signal.
    SignalHandled {
        /// Writer's lease.
        lease: Lease,
        /// The signal.
        id: u64,
        /// When.
        at: Timestamp,
    },
}

impl WriteOp {
    /// The lease the op carries.
    pub fn lease(&self) -> &Lease {
        match self {
            WriteOp::RunPhase { lease, .. }
            | WriteOp::FinishRun { lease, .. }
            | WriteOp::Attempt { lease, .. }
            | WriteOp::Event { lease, .. }
            | WriteOp::Logs { lease, .. }
            | WriteOp::Checkpoint { lease, .. }
            | WriteOp::OutboxDesire { lease, .. }
            | WriteOp::OutboxDelivered { lease, .. }
            | WriteOp::OutboxFailed { lease, .. }
            | WriteOp::OpenWait { lease, .. }
            | WriteOp::CloseWait { lease, .. }
            | WriteOp::Snapshot { lease, .. }
            | WriteOp::SignalHandled { lease, .. } => lease,
        }
    }

    /// A short description for logs and errors (no payloads).
    pub fn describe(&self) -> String {
        let run = &self.lease().run;
        match self {
            WriteOp::RunPhase { phase, .. } => format!("run {run}: phase {}", phase.as_str()),
            WriteOp::FinishRun { status, .. } => format!("run {run}: finish {status}"),
            WriteOp::Attempt { record, .. } => {
                format!("attempt {}: {}", record.id, record.phase.as_str())
            }
            WriteOp::Event { event, .. } => format!("run {run}: event {}", event.kind),
            WriteOp::Logs { id, lines, .. } => format!("attempt {id}: {} log lines", lines.len()),
            WriteOp::Checkpoint { task, key, .. } => format!("run {run}: checkpoint {task}/{key}"),
            WriteOp::OutboxDesire { key, state, .. } => format!(
                "outbox {}/{}/{}: desire {}",
                key.reporter,
                key.run,
                key.context,
                state.as_str()
            ),
            WriteOp::OutboxDelivered { key, state, .. } => format!(
                "outbox {}/{}/{}: delivered {}",
                key.reporter,
                key.run,
                key.context,
                state.as_str()
            ),
            WriteOp::OutboxFailed { key, .. } => format!(
                "outbox {}/{}/{}: delivery failed",
                key.reporter, key.run, key.context
            ),
            WriteOp::Snapshot {
                task, workspace, ..
            } => format!("run {run}: snapshot {task}/{workspace}"),
            WriteOp::OpenWait { wait, .. } => format!("wait {}: open ({})", wait.id, wait.kind),
            WriteOp::CloseWait { id, outcome, .. } => format!("wait {id}: closed ({outcome})"),
            WriteOp::SignalHandled { id, .. } => format!("run {run}: signal {id} handled"),
        }
    }
}

/// Limits the store enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// Log bytes kept per (run, task), all attempts together; the rest is dropped after one
    /// "log truncated" marker.
    pub log_bytes_per_task: u64,
    /// Largest snapshot accepted.
    pub snapshot_max_bytes: u64,
    /// Most snapshots kept per (run, workspace), whatever a write asks for (oldest
    /// deleted first).
    pub snapshots_per_run: u32,
}

impl Default for StoreLimits {
    fn default() -> Self {
        StoreLimits {
            log_bytes_per_task: 4 << 20,
            snapshot_max_bytes: 64 << 20,
            snapshots_per_run: 16,
        }
    }
}

/// Result alias of the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One entry of a concurrency group (release-control.md section 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRow {
    /// The group.
    pub group: String,
    /// Who: a run id, or `run/task` for a task's slot.
    pub holder: String,
    /// Its run.
    pub run: String,
    /// Arrival order in the store (lower came first).
    pub seq: i64,
    /// Holding a slot (else waiting for one).
    pub holding: bool,
    /// A newer arrival displaced it while it waited.
    pub superseded: bool,
    /// Its run is unfinished and its lease live (heartbeat within the staleness bound).
    pub alive: bool,
}

/// A change to a concurrency group, decided on its rows inside one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotChange {
    /// `holder` (of `run`) arrives: it waits, after everyone already there.
    Join {
        /// Who.
        holder: String,
        /// Its run.
        run: String,
    },
    /// `holder` takes a slot.
    Hold(String),
    /// `holder` waits (again), keeping its place.
    Wait(String),
    /// `holder` leaves the group.
    Leave(String),
    /// `holder`, waiting, is displaced by a newer arrival.
    Supersede(String),
    /// `run`'s lease is revoked (its engine stopped heartbeating and its slot is given
    /// away): its engine, if it comes back, can write nothing more.
    Fence(String),
}

/// A cron schedule `weft serve` keeps (release-control.md section 5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRecord {
    /// Its name (unique).
    pub name: String,
    /// The cron expression as given.
    pub cron: String,
    /// Its IANA time zone.
    pub zone: String,
    /// What each tick runs: the engine's versioned run spec, as `runs.options_json`.
    pub spec_json: String,
    /// The next tick; `None`: it never fires again.
    pub next_at: Option<Timestamp>,
    /// A tick claimed whose run may not have been created yet.
    pub firing_at: Option<Timestamp>,
    /// When it was added.
    pub created_at: Timestamp,
}
