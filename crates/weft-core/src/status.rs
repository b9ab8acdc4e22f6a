//! The status model, in one place: how a task's ending becomes an outcome and a flow,
//! `$(tasks.t.status)`, `$(tasks.status)`, `$(tasks.outcome)`, the run's final status, and
//! which skip reason wins. Everything here is a pure function of node states
//! (semantics.md sections 3 to 6), table-tested below in the style of Tekton's
//! `pipelinerunstate_test.go`.
//!
//! The aggregates are computed from a [`Tally`]: counts over terminal nodes that the run
//! state updates in O(1) per event, so reading `$(tasks.status)` never rescans the run.

use crate::contract::ReportStatus;
use crate::contract::TaskEnding;
use crate::model::{Flow, OnError, OnStatusRule, PolicyOutcome};
use serde::Serialize;
use std::fmt;

/// How a task ended, after the policy (semantics.md section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Outcome {
    /// Done.
    Succeeded,
    /// Done with warnings (also a tolerated failure).
    SucceededWithWarnings,
    /// Failed.
    Failed,
    /// Ran past a timeout.
    TimedOut,
    /// Cancelled (by a user, or by a halting sibling with `halt: cancel`).
    Cancelled,
    /// Rejected at an approval.
    Rejected,
    /// Trap, limit or host error.
    Errored,
    /// Did not run, or decided it does not apply.
    Skipped,
}

impl Outcome {
    /// `Failed`, `TimedOut`, `Errored`, `Rejected`: the outcomes that fail a run.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Outcome::Failed | Outcome::TimedOut | Outcome::Errored | Outcome::Rejected
        )
    }

    /// The name used in reports and variables.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "Succeeded",
            Outcome::SucceededWithWarnings => "SucceededWithWarnings",
            Outcome::Failed => "Failed",
            Outcome::TimedOut => "TimedOut",
            Outcome::Cancelled => "Cancelled",
            Outcome::Rejected => "Rejected",
            Outcome::Errored => "Errored",
            Outcome::Skipped => "Skipped",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Machine-readable reasons used beside outcomes. Skip reasons are [`SkipReason`].
pub mod reasons {
    /// A failure tolerated by `onError: continue`.
    pub const FAILURE_IGNORED: &str = "FailureIgnored";
    /// A plain failure.
    pub const FAILED: &str = "Failed";
    /// The task ran past its own `timeout` (Tekton's TaskRun reason).
    pub const TASK_TIMEOUT: &str = "TaskRunTimeout";
    /// The run's `tasks` timeout passed while the task ran.
    pub const TASKS_TIMEOUT: &str = "TasksTimeout";
    /// The run's `finally` timeout passed while the task ran.
    pub const FINALLY_TIMEOUT: &str = "FinallyTimeout";
    /// The run's `pipeline` timeout passed while the task ran; also the run's reason.
    pub const PIPELINE_RUN_TIMEOUT: &str = "PipelineRunTimeout";
    /// Cancelled by a user.
    pub const RUN_CANCELLED: &str = "RunCancelled";
    /// Cancelled because a sibling halted the run with `halt: cancel`.
    pub const RUN_HALTED: &str = "RunHalted";
    /// The run ended early and successfully because a task halted it.
    pub const HALTED: &str = "Halted";
    /// The run stopped on an infrastructure error.
    pub const INFRASTRUCTURE_ERROR: &str = "InfrastructureError";
    /// The engine could not launch the task's attempt; its plugin never ran.
    pub const LAUNCH_FAILED: &str = "LaunchFailed";
    /// A task mapped to `skipped` by the plugin or `onStatus`.
    pub const SELF_SKIPPED: &str = "SelfSkipped";
}

/// Why a task was skipped (semantics.md section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum SkipReason {
    /// Its `when` was false; tasks ordered after it still run.
    WhenExpressionsFalse,
    /// It consumes a result that was never produced.
    ResultsMissing,
    /// A parent was skipped for a reason other than `WhenExpressionsFalse`.
    ParentSkipped,
    /// A task with flow `stop` ended before this one started.
    RunStopping,
    /// A task with flow `halt` ended before this one started.
    RunHalted,
    /// The run was cancelled.
    RunCancelled,
    /// The run's `tasks` (or `pipeline`/`finally`) timeout passed.
    RunTimedOut,
    /// The plugin (or `onStatus`) said skip.
    SelfSkipped,
    /// A `matrix` param is an empty array: nothing to fan out over (Tekton's
    /// `EmptyArrayInMatrixParams`).
    MatrixEmpty,
}

impl SkipReason {
    /// The reason string.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::WhenExpressionsFalse => "WhenExpressionsFalse",
            SkipReason::ResultsMissing => "ResultsMissing",
            SkipReason::ParentSkipped => "ParentSkipped",
            SkipReason::RunStopping => "RunStopping",
            SkipReason::RunHalted => "RunHalted",
            SkipReason::RunCancelled => "RunCancelled",
            SkipReason::RunTimedOut => "RunTimedOut",
            SkipReason::SelfSkipped => "SelfSkipped",
            SkipReason::MatrixEmpty => "EmptyArrayInMatrixParams",
        }
    }
}

/// What is known about a task that has not started, when deciding whether it runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SkipFacts {
    /// The run was cancelled (any mode).
    pub run_cancelled: bool,
    /// A run timeout (`tasks`, `pipeline` or `finally` for finally tasks) passed.
    pub run_timed_out: bool,
    /// A task with flow `stop` ended.
    pub run_stopping: bool,
    /// A task with flow `halt` ended.
    pub run_halted: bool,
    /// A parent was skipped for a reason other than `WhenExpressionsFalse`.
    pub parent_skipped: bool,
    /// A consumed result is missing.
    pub results_missing: bool,
    /// Its `when` expressions are false (only evaluated when nothing above applies).
    pub when_false: bool,
    /// A `matrix` param is an empty array.
    pub matrix_empty: bool,
}

/// Which skip reason applies, first that holds (Tekton's order: run state before parent
/// state before results before `when`; so `RunStopping` wins over `WhenExpressionsFalse`).
pub fn skip_reason(facts: SkipFacts) -> Option<SkipReason> {
    if facts.run_cancelled {
        Some(SkipReason::RunCancelled)
    } else if facts.run_timed_out {
        Some(SkipReason::RunTimedOut)
    } else if facts.run_stopping {
        Some(SkipReason::RunStopping)
    } else if facts.run_halted {
        Some(SkipReason::RunHalted)
    } else if facts.parent_skipped {
        Some(SkipReason::ParentSkipped)
    } else if facts.results_missing {
        Some(SkipReason::ResultsMissing)
    } else if facts.when_false {
        Some(SkipReason::WhenExpressionsFalse)
    } else if facts.matrix_empty {
        Some(SkipReason::MatrixEmpty)
    } else {
        None
    }
}

/// `$(tasks.t.status)` of a matrixed task from its combinations': `Failed` when one
/// failed, `Succeeded` when all succeeded, else `None` (some skipped or not done).
pub fn matrix_status_view(views: impl Iterator<Item = TaskStatusView>) -> TaskStatusView {
    let mut all_succeeded = true;
    let mut any = false;
    for view in views {
        any = true;
        match view {
            TaskStatusView::Failed => return TaskStatusView::Failed,
            TaskStatusView::Succeeded => {}
            TaskStatusView::None => all_succeeded = false,
        }
    }
    if any && all_succeeded {
        TaskStatusView::Succeeded
    } else {
        TaskStatusView::None
    }
}

/// A raw ending after `onError` and `onStatus`: what it means and what it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    /// Outcome.
    pub outcome: Outcome,
    /// Flow.
    pub flow: Flow,
    /// Reason (empty for plain success, as in the report example).
    pub reason: String,
}

fn mapped(outcome: Outcome, flow: Flow, reason: &str) -> Mapped {
    Mapped {
        outcome,
        flow,
        reason: reason.to_string(),
    }
}

/// Maps a raw ending to outcome and flow (semantics.md section 3). The first `onStatus`
/// rule whose `exitCodes` holds the ending's exit code wins; errors have no exit code and
/// are never remapped.
pub fn apply_policy(ending: &TaskEnding, on_error: OnError, on_status: &[OnStatusRule]) -> Mapped {
    if let Some(code) = ending.exit_code()
        && let Some(rule) = on_status
            .iter()
            .find(|rule| rule.exit_codes.contains(&code))
    {
        let (outcome, default_flow, reason) = match rule.outcome {
            PolicyOutcome::Success => (Outcome::Succeeded, Flow::Continue, ""),
            PolicyOutcome::Warning => (Outcome::SucceededWithWarnings, Flow::Continue, ""),
            PolicyOutcome::Failure => (Outcome::Failed, Flow::Stop, reasons::FAILED),
            PolicyOutcome::Skipped => (Outcome::Skipped, Flow::Continue, reasons::SELF_SKIPPED),
        };
        return mapped(outcome, rule.flow.unwrap_or(default_flow), reason);
    }
    match ending {
        TaskEnding::Success => mapped(Outcome::Succeeded, Flow::Continue, ""),
        TaskEnding::Warning { .. } => mapped(Outcome::SucceededWithWarnings, Flow::Continue, ""),
        TaskEnding::Halt { .. } => mapped(Outcome::Succeeded, Flow::Halt, ""),
        TaskEnding::Skip { .. } => mapped(Outcome::Skipped, Flow::Continue, reasons::SELF_SKIPPED),
        TaskEnding::Failure { .. } => match on_error {
            OnError::StopAndFail => mapped(Outcome::Failed, Flow::Stop, reasons::FAILED),
            OnError::Continue => mapped(
                Outcome::SucceededWithWarnings,
                Flow::Continue,
                reasons::FAILURE_IGNORED,
            ),
        },
        // An error is tolerated by `onError: continue` like a failure (Tekton treats any
        // failed TaskRun so), but keeps its own reason.
        TaskEnding::Errored { reason, .. } => match on_error {
            OnError::StopAndFail => mapped(Outcome::Errored, Flow::Stop, reason),
            OnError::Continue => mapped(
                Outcome::SucceededWithWarnings,
                Flow::Continue,
                reasons::FAILURE_IGNORED,
            ),
        },
    }
}

/// `$(tasks.t.status)`: Tekton's view of one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TaskStatusView {
    /// success, warning or halt.
    Succeeded,
    /// failure, timeout, error or rejection.
    Failed,
    /// skipped, cancelled, or not finished.
    None,
}

impl TaskStatusView {
    /// The variable's value.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatusView::Succeeded => "Succeeded",
            TaskStatusView::Failed => "Failed",
            TaskStatusView::None => "None",
        }
    }
}

/// `$(tasks.t.status)` from the raw ending (if the plugin returned one) and the outcome
/// (if the task is terminal). Raw first: a tolerated failure is still `Failed` here.
pub fn task_status_view(raw: Option<&TaskEnding>, outcome: Option<Outcome>) -> TaskStatusView {
    match raw {
        Some(TaskEnding::Success | TaskEnding::Warning { .. } | TaskEnding::Halt { .. }) => {
            TaskStatusView::Succeeded
        }
        Some(TaskEnding::Failure { .. } | TaskEnding::Errored { .. }) => TaskStatusView::Failed,
        Some(TaskEnding::Skip { .. }) => TaskStatusView::None,
        None => match outcome {
            Some(outcome) if outcome.is_failure() => TaskStatusView::Failed,
            _ => TaskStatusView::None,
        },
    }
}

/// `$(tasks.status)`: Tekton's aggregate over the non-finally tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TasksStatus {
    /// All succeeded (warnings included).
    Succeeded,
    /// Some failed, timed out, errored or were rejected.
    Failed,
    /// Some were skipped (a halted run lands here).
    Completed,
    /// Not all are done, or a user cancelled one.
    None,
}

impl TasksStatus {
    /// The variable's value.
    pub fn as_str(self) -> &'static str {
        match self {
            TasksStatus::Succeeded => "Succeeded",
            TasksStatus::Failed => "Failed",
            TasksStatus::Completed => "Completed",
            TasksStatus::None => "None",
        }
    }
}

/// `$(tasks.outcome)`: weft's richer aggregate over the non-finally tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TasksOutcome {
    /// Some failed, errored or were rejected.
    Failed,
    /// Some timed out (or were skipped by a run timeout).
    TimedOut,
    /// A user cancelled the run.
    Cancelled,
    /// A task halted the run.
    Halted,
    /// Some passed with warnings.
    SucceededWithWarnings,
    /// Some were skipped.
    Completed,
    /// All succeeded.
    Succeeded,
    /// Not all are done.
    None,
}

impl TasksOutcome {
    /// The variable's value.
    pub fn as_str(self) -> &'static str {
        match self {
            TasksOutcome::Failed => "Failed",
            TasksOutcome::TimedOut => "TimedOut",
            TasksOutcome::Cancelled => "Cancelled",
            TasksOutcome::Halted => "Halted",
            TasksOutcome::SucceededWithWarnings => "SucceededWithWarnings",
            TasksOutcome::Completed => "Completed",
            TasksOutcome::Succeeded => "Succeeded",
            TasksOutcome::None => "None",
        }
    }
}

/// Counts over a set of nodes, updated as nodes become terminal (a terminal node never
/// changes, so counting once is exact).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Nodes in the set.
    pub total: usize,
    /// Nodes that are terminal.
    pub terminal: usize,
    /// `Failed`, `Errored` or `Rejected`.
    pub failed: usize,
    /// `TimedOut`.
    pub timed_out: usize,
    /// `SucceededWithWarnings`.
    pub warnings: usize,
    /// `Skipped` (any reason), or `Cancelled` by a halting sibling.
    pub skipped: usize,
    /// Skipped because a run timeout passed (Tekton counts these as failed).
    pub skipped_by_timeout: usize,
    /// Cancelled or skipped because a user cancelled the run.
    pub cancelled_by_user: usize,
    /// Some node ended with flow `halt`.
    pub halted: bool,
}

impl Tally {
    /// An empty tally over `total` nodes.
    pub fn new(total: usize) -> Self {
        Tally {
            total,
            ..Tally::default()
        }
    }

    /// Counts one node that just became terminal.
    pub fn record(&mut self, outcome: Outcome, reason: &str, flow: Flow) {
        self.terminal += 1;
        match outcome {
            Outcome::Failed | Outcome::Errored | Outcome::Rejected => self.failed += 1,
            Outcome::TimedOut => self.timed_out += 1,
            Outcome::SucceededWithWarnings => self.warnings += 1,
            Outcome::Skipped | Outcome::Cancelled => {
                if reason == reasons::RUN_CANCELLED {
                    self.cancelled_by_user += 1;
                } else {
                    self.skipped += 1;
                    if reason == SkipReason::RunTimedOut.as_str() {
                        self.skipped_by_timeout += 1;
                    }
                }
            }
            Outcome::Succeeded => {}
        }
        if flow == Flow::Halt {
            self.halted = true;
        }
    }

    /// Builds a tally from node states: `(outcome if terminal, reason, flow)`.
    pub fn from_nodes<'a>(
        nodes: impl IntoIterator<Item = (Option<Outcome>, &'a str, Flow)>,
    ) -> Self {
        let mut tally = Tally::default();
        for (outcome, reason, flow) in nodes {
            tally.total += 1;
            if let Some(outcome) = outcome {
                tally.record(outcome, reason, flow);
            }
        }
        tally
    }

    /// `$(tasks.status)` (semantics.md section 5), over a tally of non-finally tasks.
    pub fn tasks_status(&self) -> TasksStatus {
        if self.terminal < self.total || self.cancelled_by_user > 0 {
            TasksStatus::None
        } else if self.failed > 0 || self.timed_out > 0 || self.skipped_by_timeout > 0 {
            TasksStatus::Failed
        } else if self.skipped > 0 || self.halted {
            TasksStatus::Completed
        } else {
            TasksStatus::Succeeded
        }
    }

    /// `$(tasks.outcome)` (semantics.md section 5), over a tally of non-finally tasks.
    pub fn tasks_outcome(&self) -> TasksOutcome {
        if self.terminal < self.total {
            TasksOutcome::None
        } else if self.failed > 0 {
            TasksOutcome::Failed
        } else if self.timed_out > 0 || self.skipped_by_timeout > 0 {
            TasksOutcome::TimedOut
        } else if self.cancelled_by_user > 0 {
            TasksOutcome::Cancelled
        } else if self.halted {
            TasksOutcome::Halted
        } else if self.warnings > 0 {
            TasksOutcome::SucceededWithWarnings
        } else if self.skipped > 0 {
            TasksOutcome::Completed
        } else {
            TasksOutcome::Succeeded
        }
    }
}

/// How a user cancelled a run (Tekton's modes, semantics.md section 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum CancelMode {
    /// Let running tasks finish, start nothing new, then `finally`.
    StoppedRunFinally,
    /// Cancel running tasks, then `finally`.
    CancelledRunFinally,
    /// Cancel running tasks, no `finally`.
    Cancelled,
}

impl CancelMode {
    /// The mode's name, used as the run's reason.
    pub fn as_str(self) -> &'static str {
        match self {
            CancelMode::Cancelled => "Cancelled",
            CancelMode::CancelledRunFinally => "CancelledRunFinally",
            CancelMode::StoppedRunFinally => "StoppedRunFinally",
        }
    }

    /// Whether running tasks are cancelled (rather than left to finish).
    pub fn cancels_running(self) -> bool {
        self != CancelMode::StoppedRunFinally
    }

    /// Whether `finally` still runs.
    pub fn runs_finally(self) -> bool {
        self != CancelMode::Cancelled
    }
}

/// The run's final status (semantics.md section 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RunStatus {
    /// All good.
    Succeeded,
    /// Passed with warnings.
    SucceededWithWarnings,
    /// Passed, some tasks skipped.
    Completed,
    /// A task failed.
    Failed,
    /// A run timeout passed.
    TimedOut,
    /// Infrastructure broke.
    Errored,
    /// A user cancelled it.
    Cancelled,
}

impl RunStatus {
    /// Every status.
    pub const ALL: [RunStatus; 7] = [
        RunStatus::Succeeded,
        RunStatus::SucceededWithWarnings,
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::TimedOut,
        RunStatus::Errored,
        RunStatus::Cancelled,
    ];

    /// The status named `name` (as [`RunStatus::as_str`] writes it).
    pub fn parse(name: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The status name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Succeeded => "Succeeded",
            RunStatus::SucceededWithWarnings => "SucceededWithWarnings",
            RunStatus::Completed => "Completed",
            RunStatus::Failed => "Failed",
            RunStatus::TimedOut => "TimedOut",
            RunStatus::Errored => "Errored",
            RunStatus::Cancelled => "Cancelled",
        }
    }

    /// Exit code of `weft run`: 0 for the passing statuses, 1 otherwise.
    pub fn exit_code(self) -> i32 {
        match self {
            RunStatus::Succeeded | RunStatus::SucceededWithWarnings | RunStatus::Completed => 0,
            _ => 1,
        }
    }
}

/// Run-level facts the final status depends on besides task outcomes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFacts {
    /// The `pipeline` or `tasks` timeout passed.
    pub timed_out: bool,
    /// An infrastructure error stopped the run (what broke).
    pub infra_error: Option<String>,
    /// A user cancelled it (the strongest mode asked for).
    pub cancelled: Option<CancelMode>,
    /// The cancel came from a newer run of its concurrency group (reason `Superseded`).
    pub superseded: bool,
    /// The task that halted the run.
    pub halted_by: Option<String>,
}

/// The run's final status and reason: first rule of semantics.md section 6 that applies.
/// `all` tallies every task, `finally` included. Where the table leaves the reason blank,
/// the reason is the status name (as Tekton does).
pub fn final_status(facts: &RunFacts, all: &Tally) -> (RunStatus, String) {
    if facts.timed_out {
        (RunStatus::TimedOut, reasons::PIPELINE_RUN_TIMEOUT.into())
    } else if let Some(error) = &facts.infra_error {
        (RunStatus::Errored, error.clone())
    } else if all.failed > 0 || all.timed_out > 0 {
        (RunStatus::Failed, reasons::FAILED.into())
    } else if let Some(mode) = facts.cancelled {
        let reason = if facts.superseded {
            crate::queue::SUPERSEDED
        } else {
            mode.as_str()
        };
        (RunStatus::Cancelled, reason.into())
    } else if all.warnings > 0 {
        (
            RunStatus::SucceededWithWarnings,
            RunStatus::SucceededWithWarnings.as_str().into(),
        )
    } else if facts.halted_by.is_some() {
        (RunStatus::Succeeded, reasons::HALTED.into())
    } else if all.skipped > 0 {
        (RunStatus::Completed, RunStatus::Completed.as_str().into())
    } else {
        (RunStatus::Succeeded, RunStatus::Succeeded.as_str().into())
    }
}

/// The status a forge is asked to show for a task that ended so.
impl From<Outcome> for ReportStatus {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Succeeded => ReportStatus::Succeeded,
            Outcome::SucceededWithWarnings => ReportStatus::SucceededWithWarnings,
            Outcome::Failed => ReportStatus::Failed,
            Outcome::TimedOut => ReportStatus::TimedOut,
            Outcome::Cancelled => ReportStatus::Cancelled,
            Outcome::Rejected => ReportStatus::Rejected,
            Outcome::Errored => ReportStatus::Errored,
            Outcome::Skipped => ReportStatus::Skipped,
        }
    }
}

/// The status a forge is asked to show for a run that ended so.
impl From<RunStatus> for ReportStatus {
    fn from(status: RunStatus) -> Self {
        match status {
            RunStatus::Succeeded => ReportStatus::Succeeded,
            RunStatus::SucceededWithWarnings => ReportStatus::SucceededWithWarnings,
            RunStatus::Completed => ReportStatus::Completed,
            RunStatus::Failed => ReportStatus::Failed,
            RunStatus::TimedOut => ReportStatus::TimedOut,
            RunStatus::Errored => ReportStatus::Errored,
            RunStatus::Cancelled => ReportStatus::Cancelled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Pos;

    fn failure(code: i32) -> TaskEnding {
        TaskEnding::Failure {
            message: "boom".into(),
            exit_code: code,
        }
    }

    fn rule(codes: &[i32], outcome: PolicyOutcome, flow: Option<Flow>) -> OnStatusRule {
        OnStatusRule {
            exit_codes: codes.to_vec(),
            outcome,
            flow,
            pos: Pos::default(),
        }
    }

    #[test]
    fn default_policy_table() {
        let halt = TaskEnding::Halt {
            message: "done".into(),
        };
        let skip = TaskEnding::Skip {
            message: "n/a".into(),
        };
        let warn = TaskEnding::Warning {
            message: "hm".into(),
        };
        let errored = TaskEnding::Errored {
            reason: "MemoryLimitExceeded".into(),
            message: "oom".into(),
        };
        let table: Vec<(&TaskEnding, OnError, Outcome, Flow, &str)> = vec![
            (
                &TaskEnding::Success,
                OnError::StopAndFail,
                Outcome::Succeeded,
                Flow::Continue,
                "",
            ),
            (
                &warn,
                OnError::StopAndFail,
                Outcome::SucceededWithWarnings,
                Flow::Continue,
                "",
            ),
            (
                &halt,
                OnError::StopAndFail,
                Outcome::Succeeded,
                Flow::Halt,
                "",
            ),
            (
                &skip,
                OnError::StopAndFail,
                Outcome::Skipped,
                Flow::Continue,
                "SelfSkipped",
            ),
        ];
        let fail = failure(1);
        let mut table = table;
        table.push((
            &fail,
            OnError::StopAndFail,
            Outcome::Failed,
            Flow::Stop,
            "Failed",
        ));
        table.push((
            &fail,
            OnError::Continue,
            Outcome::SucceededWithWarnings,
            Flow::Continue,
            "FailureIgnored",
        ));
        table.push((
            &errored,
            OnError::StopAndFail,
            Outcome::Errored,
            Flow::Stop,
            "MemoryLimitExceeded",
        ));
        table.push((
            &errored,
            OnError::Continue,
            Outcome::SucceededWithWarnings,
            Flow::Continue,
            "FailureIgnored",
        ));
        for (ending, on_error, outcome, flow, reason) in table {
            assert_eq!(
                apply_policy(ending, on_error, &[]),
                mapped(outcome, flow, reason),
                "{ending:?} {on_error:?}"
            );
        }
    }

    #[test]
    fn on_status_table_first_match_wins_with_default_flows() {
        let rules = vec![
            rule(&[2], PolicyOutcome::Warning, None),
            rule(&[3], PolicyOutcome::Success, Some(Flow::Halt)),
            rule(&[78], PolicyOutcome::Skipped, None),
            rule(&[4, 5], PolicyOutcome::Failure, None),
            rule(&[6], PolicyOutcome::Failure, Some(Flow::Continue)),
            rule(&[7], PolicyOutcome::Success, None),
            rule(&[2], PolicyOutcome::Failure, None),
        ];
        let table = [
            // success + continue
            (7, Outcome::Succeeded, Flow::Continue),
            // failure + stop
            (5, Outcome::Failed, Flow::Stop),
            // failure + continue (warning)
            (2, Outcome::SucceededWithWarnings, Flow::Continue),
            // success + halt
            (3, Outcome::Succeeded, Flow::Halt),
            (78, Outcome::Skipped, Flow::Continue),
            (6, Outcome::Failed, Flow::Continue),
            // no rule: the default applies
            (9, Outcome::Failed, Flow::Stop),
        ];
        for (code, outcome, flow) in table {
            let got = apply_policy(&failure(code), OnError::StopAndFail, &rules);
            assert_eq!((got.outcome, got.flow), (outcome, flow), "exit code {code}");
        }
        // Errors carry no exit code and are never remapped.
        let errored = TaskEnding::Errored {
            reason: "Trap".into(),
            message: String::new(),
        };
        assert_eq!(
            apply_policy(&errored, OnError::StopAndFail, &rules).outcome,
            Outcome::Errored
        );
    }

    #[test]
    fn task_status_view_table() {
        let table = [
            (
                Some(TaskEnding::Success),
                Some(Outcome::Succeeded),
                TaskStatusView::Succeeded,
            ),
            (
                Some(TaskEnding::Warning {
                    message: String::new(),
                }),
                Some(Outcome::SucceededWithWarnings),
                TaskStatusView::Succeeded,
            ),
            (
                Some(TaskEnding::Halt {
                    message: String::new(),
                }),
                Some(Outcome::Succeeded),
                TaskStatusView::Succeeded,
            ),
            (
                Some(failure(1)),
                Some(Outcome::Failed),
                TaskStatusView::Failed,
            ),
            // A tolerated failure is still Failed in Tekton's view.
            (
                Some(failure(1)),
                Some(Outcome::SucceededWithWarnings),
                TaskStatusView::Failed,
            ),
            (
                Some(TaskEnding::Errored {
                    reason: "Trap".into(),
                    message: String::new(),
                }),
                Some(Outcome::Errored),
                TaskStatusView::Failed,
            ),
            (None, Some(Outcome::TimedOut), TaskStatusView::Failed),
            (None, Some(Outcome::Rejected), TaskStatusView::Failed),
            (
                Some(TaskEnding::Skip {
                    message: String::new(),
                }),
                Some(Outcome::Skipped),
                TaskStatusView::None,
            ),
            (None, Some(Outcome::Skipped), TaskStatusView::None),
            (None, Some(Outcome::Cancelled), TaskStatusView::None),
            (None, None, TaskStatusView::None),
        ];
        for (raw, outcome, expected) in table {
            assert_eq!(
                task_status_view(raw.as_ref(), outcome),
                expected,
                "{raw:?} {outcome:?}"
            );
        }
    }

    type NodeRow = (Option<Outcome>, &'static str, Flow);
    const OK: NodeRow = (Some(Outcome::Succeeded), "", Flow::Continue);
    const WARN: NodeRow = (Some(Outcome::SucceededWithWarnings), "", Flow::Continue);
    const IGNORED: NodeRow = (
        Some(Outcome::SucceededWithWarnings),
        "FailureIgnored",
        Flow::Continue,
    );
    const FAILED: NodeRow = (Some(Outcome::Failed), "Failed", Flow::Stop);
    const TIMED_OUT: NodeRow = (Some(Outcome::TimedOut), "TaskRunTimeout", Flow::Stop);
    const ERRORED: NodeRow = (Some(Outcome::Errored), "Trap", Flow::Stop);
    const REJECTED: NodeRow = (Some(Outcome::Rejected), "Rejected", Flow::Stop);
    const WHEN_SKIP: NodeRow = (
        Some(Outcome::Skipped),
        "WhenExpressionsFalse",
        Flow::Continue,
    );
    const STOP_SKIP: NodeRow = (Some(Outcome::Skipped), "RunStopping", Flow::Continue);
    const HALT_SKIP: NodeRow = (Some(Outcome::Skipped), "RunHalted", Flow::Continue);
    const TIMEOUT_SKIP: NodeRow = (Some(Outcome::Skipped), "RunTimedOut", Flow::Continue);
    const USER_CANCELLED: NodeRow = (Some(Outcome::Cancelled), "RunCancelled", Flow::Continue);
    const USER_SKIP: NodeRow = (Some(Outcome::Skipped), "RunCancelled", Flow::Continue);
    const HALT_CANCELLED: NodeRow = (Some(Outcome::Cancelled), "RunHalted", Flow::Continue);
    const HALTER: NodeRow = (Some(Outcome::Succeeded), "", Flow::Halt);
    const RUNNING: NodeRow = (None, "", Flow::Continue);

    #[test]
    fn aggregate_table() {
        let table: Vec<(&str, Vec<NodeRow>, TasksStatus, TasksOutcome)> = vec![
            (
                "all succeeded",
                vec![OK, OK],
                TasksStatus::Succeeded,
                TasksOutcome::Succeeded,
            ),
            (
                "no tasks",
                vec![],
                TasksStatus::Succeeded,
                TasksOutcome::Succeeded,
            ),
            (
                "one still running",
                vec![OK, RUNNING],
                TasksStatus::None,
                TasksOutcome::None,
            ),
            (
                "failure while running",
                vec![FAILED, RUNNING],
                TasksStatus::None,
                TasksOutcome::None,
            ),
            (
                "user cancelled",
                vec![OK, USER_CANCELLED],
                TasksStatus::None,
                TasksOutcome::Cancelled,
            ),
            (
                "user cancel skipped",
                vec![OK, USER_SKIP],
                TasksStatus::None,
                TasksOutcome::Cancelled,
            ),
            (
                "user cancel beats failure in tasks.status",
                vec![FAILED, USER_CANCELLED],
                TasksStatus::None,
                TasksOutcome::Failed,
            ),
            (
                "failed",
                vec![OK, FAILED, STOP_SKIP],
                TasksStatus::Failed,
                TasksOutcome::Failed,
            ),
            (
                "timed out",
                vec![OK, TIMED_OUT],
                TasksStatus::Failed,
                TasksOutcome::TimedOut,
            ),
            (
                "skipped by tasks timeout",
                vec![OK, TIMEOUT_SKIP],
                TasksStatus::Failed,
                TasksOutcome::TimedOut,
            ),
            (
                "errored",
                vec![ERRORED],
                TasksStatus::Failed,
                TasksOutcome::Failed,
            ),
            (
                "rejected",
                vec![REJECTED, OK],
                TasksStatus::Failed,
                TasksOutcome::Failed,
            ),
            (
                "failed beats timed out",
                vec![TIMED_OUT, FAILED],
                TasksStatus::Failed,
                TasksOutcome::Failed,
            ),
            (
                "when skipped",
                vec![OK, WHEN_SKIP],
                TasksStatus::Completed,
                TasksOutcome::Completed,
            ),
            (
                "halted and skipped",
                vec![HALTER, HALT_SKIP],
                TasksStatus::Completed,
                TasksOutcome::Halted,
            ),
            (
                "halted with nothing left",
                vec![OK, HALTER],
                TasksStatus::Completed,
                TasksOutcome::Halted,
            ),
            (
                "halt cancelled a sibling",
                vec![HALTER, HALT_CANCELLED],
                TasksStatus::Completed,
                TasksOutcome::Halted,
            ),
            (
                "halt beats warnings",
                vec![HALTER, WARN],
                TasksStatus::Completed,
                TasksOutcome::Halted,
            ),
            (
                "warnings",
                vec![OK, WARN],
                TasksStatus::Succeeded,
                TasksOutcome::SucceededWithWarnings,
            ),
            (
                "tolerated failure never fails the aggregate",
                vec![IGNORED, OK],
                TasksStatus::Succeeded,
                TasksOutcome::SucceededWithWarnings,
            ),
            (
                "warnings beat skipped",
                vec![WARN, WHEN_SKIP],
                TasksStatus::Completed,
                TasksOutcome::SucceededWithWarnings,
            ),
        ];
        for (name, nodes, status, outcome) in table {
            let tally = Tally::from_nodes(nodes);
            assert_eq!(tally.tasks_status(), status, "{name}: tasks.status");
            assert_eq!(tally.tasks_outcome(), outcome, "{name}: tasks.outcome");
        }
    }

    #[test]
    fn final_status_table() {
        let timed_out = RunFacts {
            timed_out: true,
            ..RunFacts::default()
        };
        let infra = RunFacts {
            infra_error: Some("StoreUnavailable".into()),
            ..RunFacts::default()
        };
        let cancelled = RunFacts {
            cancelled: Some(CancelMode::CancelledRunFinally),
            ..RunFacts::default()
        };
        let halted = RunFacts {
            halted_by: Some("check".into()),
            ..RunFacts::default()
        };
        let none = RunFacts::default();
        let table: Vec<(&str, &RunFacts, Vec<NodeRow>, RunStatus, &str)> = vec![
            (
                "1 timeout wins over everything",
                &timed_out,
                vec![FAILED, TIMEOUT_SKIP],
                RunStatus::TimedOut,
                "PipelineRunTimeout",
            ),
            (
                "2 infrastructure error",
                &infra,
                vec![FAILED],
                RunStatus::Errored,
                "StoreUnavailable",
            ),
            (
                "3 a task failed",
                &none,
                vec![OK, FAILED],
                RunStatus::Failed,
                "Failed",
            ),
            (
                "3 a task timed out",
                &none,
                vec![TIMED_OUT],
                RunStatus::Failed,
                "Failed",
            ),
            (
                "3 errored",
                &none,
                vec![ERRORED],
                RunStatus::Failed,
                "Failed",
            ),
            (
                "3 rejected",
                &none,
                vec![REJECTED],
                RunStatus::Failed,
                "Failed",
            ),
            (
                "3 failure beats cancel",
                &cancelled,
                vec![FAILED, USER_CANCELLED],
                RunStatus::Failed,
                "Failed",
            ),
            (
                "3 failure beats halt",
                &halted,
                vec![HALTER, FAILED],
                RunStatus::Failed,
                "Failed",
            ),
            (
                "4 cancelled",
                &cancelled,
                vec![OK, USER_CANCELLED],
                RunStatus::Cancelled,
                "CancelledRunFinally",
            ),
            (
                "5 warnings",
                &none,
                vec![OK, WARN],
                RunStatus::SucceededWithWarnings,
                "SucceededWithWarnings",
            ),
            (
                "5 tolerated failure",
                &none,
                vec![IGNORED],
                RunStatus::SucceededWithWarnings,
                "SucceededWithWarnings",
            ),
            (
                "5 warnings beat halt",
                &halted,
                vec![HALTER, WARN],
                RunStatus::SucceededWithWarnings,
                "SucceededWithWarnings",
            ),
            (
                "6 halted",
                &halted,
                vec![HALTER, HALT_SKIP, HALT_CANCELLED],
                RunStatus::Succeeded,
                "Halted",
            ),
            (
                "7 skipped",
                &none,
                vec![OK, WHEN_SKIP],
                RunStatus::Completed,
                "Completed",
            ),
            (
                "8 all succeeded",
                &none,
                vec![OK, OK],
                RunStatus::Succeeded,
                "Succeeded",
            ),
        ];
        for (name, facts, nodes, status, reason) in table {
            let tally = Tally::from_nodes(nodes);
            assert_eq!(
                final_status(facts, &tally),
                (status, reason.to_string()),
                "{name}"
            );
        }
    }

    #[test]
    fn skip_reason_precedence_table() {
        let all = SkipFacts {
            run_cancelled: true,
            run_timed_out: true,
            run_stopping: true,
            run_halted: true,
            parent_skipped: true,
            results_missing: true,
            when_false: true,
            matrix_empty: true,
        };
        let table = [
            (all, Some(SkipReason::RunCancelled)),
            (
                SkipFacts {
                    run_cancelled: false,
                    ..all
                },
                Some(SkipReason::RunTimedOut),
            ),
            (
                SkipFacts {
                    run_cancelled: false,
                    run_timed_out: false,
                    ..all
                },
                Some(SkipReason::RunStopping),
            ),
            (
                SkipFacts {
                    when_false: true,
                    run_stopping: true,
                    ..SkipFacts::default()
                },
                Some(SkipReason::RunStopping),
            ),
            (
                SkipFacts {
                    when_false: true,
                    run_halted: true,
                    ..SkipFacts::default()
                },
                Some(SkipReason::RunHalted),
            ),
            (
                SkipFacts {
                    when_false: true,
                    parent_skipped: true,
                    results_missing: true,
                    ..SkipFacts::default()
                },
                Some(SkipReason::ParentSkipped),
            ),
            (
                SkipFacts {
                    when_false: true,
                    matrix_empty: true,
                    ..SkipFacts::default()
                },
                Some(SkipReason::WhenExpressionsFalse),
            ),
            (
                SkipFacts {
                    matrix_empty: true,
                    ..SkipFacts::default()
                },
                Some(SkipReason::MatrixEmpty),
            ),
            (
                SkipFacts {
                    when_false: true,
                    results_missing: true,
                    ..SkipFacts::default()
                },
                Some(SkipReason::ResultsMissing),
            ),
            (
                SkipFacts {
                    when_false: true,
                    ..SkipFacts::default()
                },
                Some(SkipReason::WhenExpressionsFalse),
            ),
            (SkipFacts::default(), None),
        ];
        for (facts, expected) in table {
            assert_eq!(skip_reason(facts), expected, "{facts:?}");
        }
    }

    #[test]
    fn exit_codes_of_weft_run() {
        for (status, code) in [
            (RunStatus::Succeeded, 0),
            (RunStatus::SucceededWithWarnings, 0),
            (RunStatus::Completed, 0),
            (RunStatus::Failed, 1),
            (RunStatus::TimedOut, 1),
            (RunStatus::Errored, 1),
            (RunStatus::Cancelled, 1),
        ] {
            assert_eq!(status.exit_code(), code);
        }
    }
}

#[cfg(test)]
mod matrix_status_tests {
    use super::*;

    #[test]
    fn a_matrixed_tasks_status_is_its_combinations_together() {
        use TaskStatusView::{Failed, None as Nothing, Succeeded};
        let table: [(&[TaskStatusView], TaskStatusView); 6] = [
            (&[Succeeded, Succeeded], Succeeded),
            (&[Succeeded, Failed], Failed),
            (&[Nothing, Failed], Failed),
            (&[Succeeded, Nothing], Nothing),
            (&[Nothing, Nothing], Nothing),
            (&[], Nothing),
        ];
        for (views, expected) in table {
            assert_eq!(
                matrix_status_view(views.iter().copied()),
                expected,
                "{views:?}"
            );
        }
    }
}
