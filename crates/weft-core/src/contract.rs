//! Plain data mirroring the WIT contract (`wit/`: the shared types, and what the task,
//! reporter, form-decorator and gate worlds pass), shared by the runtime (which converts to and
//! from the generated bindings of each contract version) and the engine (which validates
//! pipelines against what plugins declare, and builds what it hands plugins). No
//! behaviour lives here beyond the status vocabulary's ordering rule.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A parameter value, typed like Tekton's params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// A plain string.
    Str(String),
    /// An array of strings.
    Array(Vec<String>),
    /// An object with string values (ordered by key).
    Object(BTreeMap<String, String>),
}

impl ParamValue {
    /// The declared type this value has.
    pub fn param_type(&self) -> ParamType {
        match self {
            ParamValue::Str(_) => ParamType::String,
            ParamValue::Array(_) => ParamType::Array,
            ParamValue::Object(_) => ParamType::Object,
        }
    }

    /// The value as a string, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            ParamValue::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// The declared type of a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    /// `type: string` (the default).
    String,
    /// `type: array`.
    Array,
    /// `type: object`.
    Object,
}

impl std::fmt::Display for ParamType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ParamType::String => "string",
            ParamType::Array => "array",
            ParamType::Object => "object",
        })
    }
}

/// One parameter a plugin accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamSpec {
    /// Parameter name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Its declared type.
    pub param_type: ParamType,
    /// The value used when unset; `None` makes the param required.
    pub default: Option<ParamValue>,
    /// When non-empty, the only string values allowed.
    pub allowed: Vec<String>,
}

/// One result a plugin may produce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultSpec {
    /// Result name.
    pub name: String,
    /// What it holds.
    pub description: String,
}

/// A workspace a plugin wants mounted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceSpec {
    /// Workspace name as the plugin knows it.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Whether the plugin only reads it.
    pub read_only: bool,
    /// Whether the task works without it.
    pub optional: bool,
}

/// What a plugin needs from the host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Secret names it may ask for.
    pub secrets: Vec<String>,
    /// HTTP hosts it may call (`host`, `host:port`, `*.suffix`).
    pub http_hosts: Vec<String>,
    /// Workspaces it uses.
    pub workspaces: Vec<WorkspaceSpec>,
}

/// What a plugin says about itself (`describe()`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginInfo {
    /// Plugin name (what `taskRef.name` refers to).
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// What it does.
    pub description: String,
    /// Params it accepts. Plain WASI commands declare none and accept any.
    pub params: Vec<ParamSpec>,
    /// Results it may produce.
    pub results: Vec<ResultSpec>,
    /// True when `results` is the complete set.
    pub results_fixed: bool,
    /// True when the plugin accepts params it does not declare (plain WASI commands).
    pub accepts_any_params: bool,
    /// What it needs from the host.
    pub capabilities: Capabilities,
}

/// Where a task runs: the part of its `task-context` that is not params or workspaces.
#[derive(Debug, Clone, Default)]
pub struct TaskContext {
    /// The run's name.
    pub run_name: String,
    /// The run's unique id.
    pub run_uid: String,
    /// The pipeline's name.
    pub pipeline_name: String,
    /// The pipeline task's name.
    pub task_name: String,
    /// 0 for the first attempt.
    pub retry_count: u32,
    /// Retries allowed.
    pub retries: u32,
}

/// A workspace as the task sees it in its `task-context` (the WIT `workspace-binding`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceBinding {
    /// Workspace name as the task knows it.
    pub name: String,
    /// Path the guest sees (e.g. `/workspace/source`).
    pub path: String,
    /// Whether the guest may only read it.
    pub read_only: bool,
}

/// What a form decorator says about itself (`describe()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecoratorInfo {
    /// Id (`name`), version, description and capabilities.
    pub info: PluginInfo,
    /// The JSON Schema (text) its `input` must match; empty accepts any input.
    pub input_schema: String,
}

/// What a form decorator returned: the new form state and the run-scoped secrets to add
/// (`NAME` or `NAME.KEY`, value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decorated {
    /// The params after the decorator, in full.
    pub params: BTreeMap<String, ParamValue>,
    /// Run-scoped secrets to add, in the order given.
    pub secrets: Vec<(String, String)>,
}

/// How a task ended, as the plugin said it (the "raw" ending of semantics.md section 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum TaskEnding {
    /// Done.
    Success,
    /// Done, with a warning.
    Warning {
        /// What to look at.
        message: String,
    },
    /// Done; the rest of the run is not needed.
    Halt {
        /// Why.
        message: String,
    },
    /// The task decided it does not apply.
    Skip {
        /// Why.
        message: String,
    },
    /// It failed.
    Failure {
        /// What went wrong.
        message: String,
        /// Exit code (default 1).
        exit_code: i32,
    },
    /// It errored: a trap, a limit hit or a host error. Never said by a plugin itself.
    Errored {
        /// Machine-readable reason naming the limit or the fault (e.g. `MemoryLimitExceeded`).
        reason: String,
        /// Human-readable detail.
        message: String,
    },
}

impl TaskEnding {
    /// The exit code this ending carries: the failure's code, 0 for the successful endings,
    /// none for errors.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            TaskEnding::Failure { exit_code, .. } => Some(*exit_code),
            TaskEnding::Errored { .. } => None,
            _ => Some(0),
        }
    }

    /// The message attached to the ending, if any.
    pub fn message(&self) -> &str {
        match self {
            TaskEnding::Success => "",
            TaskEnding::Warning { message }
            | TaskEnding::Halt { message }
            | TaskEnding::Skip { message }
            | TaskEnding::Failure { message, .. }
            | TaskEnding::Errored { message, .. } => message,
        }
    }
}

/// A status as reporters take it (the WIT `status` of the `reporter` world): what a
/// forge is asked to show for a run or a task. The one vocabulary of the reporter outbox,
/// the store and the reporters; [`ReportStatus::may_become`] is the one "never go
/// backwards" rule they all apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ReportStatus {
    /// Not started yet (queued, waiting).
    Pending,
    /// Started, not terminal.
    Running,
    /// Succeeded (also when halted early).
    Succeeded,
    /// Succeeded with warnings.
    SucceededWithWarnings,
    /// Completed (allowed failures or skips).
    Completed,
    /// Failed.
    Failed,
    /// Timed out.
    TimedOut,
    /// Errored.
    Errored,
    /// Rejected (an approval said no).
    Rejected,
    /// Cancelled.
    Cancelled,
    /// Task-level: did not run.
    Skipped,
}

impl ReportStatus {
    /// Every status.
    pub const ALL: [ReportStatus; 11] = [
        ReportStatus::Pending,
        ReportStatus::Running,
        ReportStatus::Succeeded,
        ReportStatus::SucceededWithWarnings,
        ReportStatus::Completed,
        ReportStatus::Failed,
        ReportStatus::TimedOut,
        ReportStatus::Errored,
        ReportStatus::Rejected,
        ReportStatus::Cancelled,
        ReportStatus::Skipped,
    ];

    /// Its name (as the WIT and the store spell it).
    pub fn as_str(self) -> &'static str {
        match self {
            ReportStatus::Pending => "Pending",
            ReportStatus::Running => "Running",
            ReportStatus::Succeeded => "Succeeded",
            ReportStatus::SucceededWithWarnings => "SucceededWithWarnings",
            ReportStatus::Completed => "Completed",
            ReportStatus::Failed => "Failed",
            ReportStatus::TimedOut => "TimedOut",
            ReportStatus::Errored => "Errored",
            ReportStatus::Rejected => "Rejected",
            ReportStatus::Cancelled => "Cancelled",
            ReportStatus::Skipped => "Skipped",
        }
    }

    /// Parses a name.
    pub fn parse(name: &str) -> Option<ReportStatus> {
        ReportStatus::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// 0 pending, 1 running, 2 terminal.
    pub fn rank(self) -> u8 {
        match self {
            ReportStatus::Pending => 0,
            ReportStatus::Running => 1,
            _ => 2,
        }
    }

    /// Everything but pending and running.
    pub fn is_terminal(self) -> bool {
        self.rank() == 2
    }

    /// Whether a context desired (or shown) as `self` may be desired as `next`: never
    /// backwards (pending -> running -> terminal) and never away from a terminal status.
    /// The same non-terminal status may be desired again (with a newer description).
    pub fn may_become(self, next: ReportStatus) -> bool {
        !self.is_terminal() && next.rank() >= self.rank()
    }
}

/// One event a reporter is asked to report (the WIT `run-event`): the desired status of a
/// run, or of one of its tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportEvent {
    /// The run's name.
    pub run_name: String,
    /// The run's unique id.
    pub run_uid: String,
    /// The pipeline's name.
    pub pipeline_name: String,
    /// The run's desired status.
    pub status: ReportStatus,
    /// The run's reason (`Halted`, `CancelledRunFinally`, ...); may be empty.
    pub reason: String,
    /// Set when a task halted the run early.
    pub halted_by: Option<ReportHalt>,
    /// The run's message; may be empty.
    pub message: String,
    /// A human description suggested by the host; may be empty.
    pub description: String,
    /// Set for a task-level event.
    pub task: Option<ReportTask>,
    /// The reporter's configuration (secret names, never values).
    pub config: Vec<(String, String)>,
    /// 0 for the first delivery attempt of this event, 1 for the first retry, ...
    pub attempt: u32,
}

/// The task that ended a run early with a successful halt (the WIT `halt`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportHalt {
    /// The task's name.
    pub task: String,
    /// The message it halted with.
    pub message: String,
}

/// The task of a task-level [`ReportEvent`] (the WIT `task-event`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportTask {
    /// The task's name in the pipeline.
    pub name: String,
    /// The task's desired status.
    pub status: ReportStatus,
    /// The task's reason; may be empty.
    pub reason: String,
    /// The task's message; may be empty.
    pub message: String,
}

/// What a reporter asks the host to do next (the WIT `delivery`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Delivered, or the forge already has that state.
    Done,
    /// A transient failure; the wait the server named in milliseconds, 0 for none.
    RetryAfter(u64),
    /// Will never succeed as configured; the message says why.
    Permanent(String),
}

/// Where one evaluation of a gate runs (the WIT `gate-context` of the `gate` world, but
/// its params, which travel with the request as a task's do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GateContext {
    /// The run's name.
    pub run_name: String,
    /// The run's unique id.
    pub run_uid: String,
    /// The pipeline's name.
    pub pipeline_name: String,
    /// The gate's name in the pipeline (the name of the task that refers to it).
    pub task_name: String,
    /// Which evaluation of this wait this is: 0 for the first.
    pub sample: u32,
    /// When the gate started waiting, in milliseconds since the Unix epoch (UTC); the same
    /// for every sample of one wait.
    pub waiting_since_ms: u64,
}

/// What one sample of a gate found (the WIT `gate-result`), with the gate's message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "message", rename_all = "camelCase")]
pub enum GateResult {
    /// The condition holds now.
    Passed(String),
    /// The condition does not hold yet: sample again.
    Failed(String),
    /// The condition could not be checked; counts as a failed sample.
    Error(String),
}

#[cfg(test)]
mod report_status_tests {
    use super::ReportStatus::{self, *};

    #[test]
    fn never_backwards_never_away_from_terminal() {
        // (from, to, allowed)
        let table = [
            (Pending, Running, true),
            (Pending, Succeeded, true),
            (Running, Failed, true),
            (Running, Running, true),
            (Pending, Pending, true),
            (Running, Pending, false),
            (Succeeded, Failed, false),
            (Failed, Succeeded, false),
            (Failed, Failed, false),
            (Skipped, Running, false),
        ];
        for (from, to, allowed) in table {
            assert_eq!(from.may_become(to), allowed, "{from:?} -> {to:?}");
        }
        for status in ReportStatus::ALL {
            assert_eq!(ReportStatus::parse(status.as_str()), Some(status));
        }
    }
}
