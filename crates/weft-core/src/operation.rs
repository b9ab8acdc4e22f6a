//! The `<status, operationStatus>` view of release-control.md section 7: how a run and each
//! of its tasks read to an Azure Release Management user. One pure function per level,
//! fed the same [`TaskFacts`] whether they come from a live [`crate::RunState`] or from
//! the store (a waiting run nobody executes right now).
//!
//! Choices where the design is silent (written down in README's "Release control"):
//! - "Before any task ran" means no plugin task outside `finally` has started: waits deploy
//!   nothing, and `finally` tasks report rather than deploy.
//! - While several things go on at once, what needs a person wins (an intervention, then
//!   a pending approval), then running tasks, then a deferral, then gates.
//! - A task that never ran (skipped) reads `<NotDeployed, Canceled>`.

use serde::{Deserialize, Serialize};

use crate::model::TaskKind;
use crate::status::{Outcome, RunStatus};
use crate::waits::reasons;

/// Azure's deployment status: did anything reach the environment, and how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeploymentStatus {
    /// Nothing ran yet (or never will).
    NotDeployed,
    /// Something ran and the run is not over.
    InProgress,
    /// Over, every task succeeded.
    Succeeded,
    /// Over, with warnings.
    PartiallySucceeded,
    /// Over, failed (including a rejection, failed gates, a cancel after tasks ran).
    Failed,
    /// Cancelled (reserved: weft reads a cancel as `NotDeployed` or `Failed`, as Azure).
    Cancelled,
}

/// Azure's operation status: what the run (or task) is doing, or how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum OperationStatus {
    Queued,
    Scheduled,
    Pending,
    Approved,
    Rejected,
    Deferred,
    QueuedForAgent,
    EvaluatingGates,
    GatesFailed,
    PhaseInProgress,
    ManualInterventionPending,
    Cancelling,
    Canceled,
    PhaseSucceeded,
    PhasePartiallySucceeded,
    PhaseFailed,
}

/// A `<status, operationStatus>` pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// Deployment status.
    pub status: DeploymentStatus,
    /// Operation status.
    pub operation_status: OperationStatus,
}

impl Operation {
    const fn pair(status: DeploymentStatus, operation_status: OperationStatus) -> Operation {
        Operation {
            status,
            operation_status,
        }
    }
}

/// What an open wait is waiting for right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitStage {
    /// An approval not yet decided.
    Approval,
    /// An approval approved but deferred until later.
    Deferred,
    /// A manual intervention.
    Intervention,
    /// A gate being sampled.
    Gate,
}

impl WaitStage {
    /// The stage of a wait of `kind`, `deferred` or not.
    pub fn of(kind: TaskKind, deferred: bool) -> WaitStage {
        match kind {
            TaskKind::Approval if deferred => WaitStage::Deferred,
            TaskKind::Intervention => WaitStage::Intervention,
            TaskKind::Gate => WaitStage::Gate,
            TaskKind::Approval | TaskKind::Plugin => WaitStage::Approval,
        }
    }
}

/// Where a task stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskStage {
    /// Waiting for its parents (or never reached).
    NotStarted,
    /// Ready, waiting for a parallelism or worker slot.
    QueuedForSlot,
    /// Running.
    Running,
    /// An open wait.
    Waiting(WaitStage),
    /// Being cancelled.
    Cancelling,
    /// Over.
    Ended {
        /// Its outcome.
        outcome: Outcome,
        /// Its reason (tells failed gates from other failures).
        reason: String,
    },
}

/// One task, as the view reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFacts {
    /// Plugin task or wait.
    pub kind: TaskKind,
    /// In `finally`.
    pub finally: bool,
    /// Where it stands.
    pub stage: TaskStage,
    /// Whether it started at least once (plugin tasks: ran; waits: waited).
    pub started: bool,
    /// When it ended, in any unit that orders endings (ms, a counter).
    pub ended_at: Option<i64>,
}

impl TaskFacts {
    /// A plugin task outside `finally` that started: the run deployed something.
    fn deployed(&self) -> bool {
        self.kind == TaskKind::Plugin && !self.finally && self.started
    }
}

/// Where the run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStage {
    /// Waiting for a slot of its concurrency group.
    Queued,
    /// Waiting for its scheduled time.
    Scheduled,
    /// Going (including stopping on a failure and running `finally`).
    Running,
    /// A cancel was requested and it drains.
    Cancelling,
    /// Over, with this status.
    Ended(RunStatus),
}

/// The pair of one task.
pub fn task_operation(task: &TaskFacts) -> Operation {
    use DeploymentStatus as D;
    use OperationStatus as O;
    match &task.stage {
        TaskStage::NotStarted => Operation::pair(D::NotDeployed, O::Queued),
        TaskStage::QueuedForSlot => Operation::pair(D::NotDeployed, O::QueuedForAgent),
        TaskStage::Running => Operation::pair(D::InProgress, O::PhaseInProgress),
        TaskStage::Cancelling => Operation::pair(D::InProgress, O::Cancelling),
        TaskStage::Waiting(stage) => Operation::pair(D::NotDeployed, waiting(*stage)),
        TaskStage::Ended { outcome, reason } => {
            let deployed = task.kind == TaskKind::Plugin && task.started;
            ended(*outcome, reason, deployed, task.kind == TaskKind::Approval)
        }
    }
}

/// The pair of the run, from its stage and its tasks (declaration order).
pub fn run_operation(run: RunStage, tasks: &[TaskFacts]) -> Operation {
    use DeploymentStatus as D;
    use OperationStatus as O;
    let deployed = tasks.iter().any(TaskFacts::deployed);
    let going = if deployed {
        D::InProgress
    } else {
        D::NotDeployed
    };
    match run {
        RunStage::Queued => Operation::pair(D::NotDeployed, O::Queued),
        RunStage::Scheduled => Operation::pair(D::NotDeployed, O::Scheduled),
        RunStage::Cancelling => Operation::pair(D::InProgress, O::Cancelling),
        RunStage::Running => {
            let waiting = |stage: WaitStage| {
                tasks
                    .iter()
                    .any(|task| task.stage == TaskStage::Waiting(stage))
            };
            let any = |stage: TaskStage| tasks.iter().any(|task| task.stage == stage);
            let operation = if waiting(WaitStage::Intervention) {
                O::ManualInterventionPending
            } else if waiting(WaitStage::Approval) {
                O::Pending
            } else if any(TaskStage::Running) || any(TaskStage::Cancelling) {
                O::PhaseInProgress
            } else if waiting(WaitStage::Deferred) {
                O::Deferred
            } else if waiting(WaitStage::Gate) {
                O::EvaluatingGates
            } else if any(TaskStage::QueuedForSlot) {
                O::QueuedForAgent
            } else {
                O::PhaseInProgress
            };
            // An intervention always comes after something ran (it asks a person to check
            // it); before anything ran it still reads as in progress.
            let status = if operation == O::ManualInterventionPending {
                D::InProgress
            } else {
                going
            };
            Operation::pair(status, operation)
        }
        RunStage::Ended(status) => match status {
            RunStatus::Succeeded | RunStatus::Completed => {
                let last = tasks
                    .iter()
                    .filter(|task| !task.finally && task.ended_at.is_some())
                    .max_by_key(|task| task.ended_at);
                if last.is_some_and(|task| task.kind == TaskKind::Approval) {
                    Operation::pair(D::Succeeded, O::Approved)
                } else {
                    Operation::pair(D::Succeeded, O::PhaseSucceeded)
                }
            }
            RunStatus::SucceededWithWarnings => {
                Operation::pair(D::PartiallySucceeded, O::PhasePartiallySucceeded)
            }
            RunStatus::Cancelled if deployed => Operation::pair(D::Failed, O::Canceled),
            RunStatus::Cancelled => Operation::pair(D::NotDeployed, O::Canceled),
            RunStatus::Failed | RunStatus::TimedOut | RunStatus::Errored => {
                let ended_as = |pick: fn(Outcome, &str) -> bool| {
                    tasks.iter().any(|task| {
                        !task.finally
                            && matches!(&task.stage, TaskStage::Ended { outcome, reason } if pick(*outcome, reason))
                    })
                };
                if ended_as(|outcome, _| outcome == Outcome::Rejected) {
                    let status = if deployed { D::Failed } else { D::NotDeployed };
                    Operation::pair(status, O::Rejected)
                } else if ended_as(|_, reason| reason == reasons::GATES_FAILED) {
                    Operation::pair(D::Failed, O::GatesFailed)
                } else {
                    Operation::pair(D::Failed, O::PhaseFailed)
                }
            }
        },
    }
}

fn waiting(stage: WaitStage) -> OperationStatus {
    match stage {
        WaitStage::Approval => OperationStatus::Pending,
        WaitStage::Deferred => OperationStatus::Deferred,
        WaitStage::Intervention => OperationStatus::ManualInterventionPending,
        WaitStage::Gate => OperationStatus::EvaluatingGates,
    }
}

fn ended(outcome: Outcome, reason: &str, deployed: bool, approval: bool) -> Operation {
    use DeploymentStatus as D;
    use OperationStatus as O;
    let or_not = |status: D| if deployed { status } else { D::NotDeployed };
    match outcome {
        Outcome::Succeeded if approval => Operation::pair(D::Succeeded, O::Approved),
        Outcome::Succeeded => Operation::pair(D::Succeeded, O::PhaseSucceeded),
        Outcome::SucceededWithWarnings => {
            Operation::pair(D::PartiallySucceeded, O::PhasePartiallySucceeded)
        }
        Outcome::Rejected => Operation::pair(or_not(D::Failed), O::Rejected),
        Outcome::Failed if reason == reasons::GATES_FAILED => {
            Operation::pair(D::Failed, O::GatesFailed)
        }
        Outcome::Failed | Outcome::TimedOut | Outcome::Errored => {
            Operation::pair(D::Failed, O::PhaseFailed)
        }
        Outcome::Cancelled => Operation::pair(or_not(D::Failed), O::Canceled),
        Outcome::Skipped => Operation::pair(D::NotDeployed, O::Canceled),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeploymentStatus as D;
    use OperationStatus as O;

    fn task(kind: TaskKind, stage: TaskStage) -> TaskFacts {
        let started = !matches!(stage, TaskStage::NotStarted | TaskStage::QueuedForSlot);
        TaskFacts {
            kind,
            finally: false,
            stage,
            started,
            ended_at: None,
        }
    }
    fn ended(kind: TaskKind, outcome: Outcome, reason: &str, at: i64) -> TaskFacts {
        TaskFacts {
            ended_at: Some(at),
            ..task(
                kind,
                TaskStage::Ended {
                    outcome,
                    reason: reason.into(),
                },
            )
        }
    }
    fn skipped(kind: TaskKind, at: i64) -> TaskFacts {
        TaskFacts {
            started: false,
            ..ended(kind, Outcome::Skipped, "RunStopping", at)
        }
    }
    fn finally(mut facts: TaskFacts) -> TaskFacts {
        facts.finally = true;
        facts
    }
    /// name, the run's stage, its tasks, the pair wanted.
    type RunRow = (&'static str, RunStage, Vec<TaskFacts>, (D, O));

    const PLUGIN: TaskKind = TaskKind::Plugin;
    const APPROVAL: TaskKind = TaskKind::Approval;
    const GATE: TaskKind = TaskKind::Gate;
    const INTERVENTION: TaskKind = TaskKind::Intervention;

    /// Every run-level row of release-control.md section 7.
    #[test]
    fn run_pairs() {
        let rows: Vec<RunRow> = vec![
            (
                "queued by a concurrency group",
                RunStage::Queued,
                vec![task(PLUGIN, TaskStage::NotStarted)],
                (D::NotDeployed, O::Queued),
            ),
            (
                "scheduled for later",
                RunStage::Scheduled,
                vec![task(PLUGIN, TaskStage::NotStarted)],
                (D::NotDeployed, O::Scheduled),
            ),
            (
                "first ready node is an approval, pending",
                RunStage::Running,
                vec![
                    task(APPROVAL, TaskStage::Waiting(WaitStage::Approval)),
                    task(PLUGIN, TaskStage::NotStarted),
                ],
                (D::NotDeployed, O::Pending),
            ),
            (
                "that approval rejected before any task ran",
                RunStage::Ended(RunStatus::Failed),
                vec![
                    ended(APPROVAL, Outcome::Rejected, "Rejected", 0),
                    skipped(PLUGIN, 1),
                    finally(ended(PLUGIN, Outcome::Succeeded, "", 2)),
                ],
                (D::NotDeployed, O::Rejected),
            ),
            (
                "approved, deferred",
                RunStage::Running,
                vec![
                    task(APPROVAL, TaskStage::Waiting(WaitStage::Deferred)),
                    task(PLUGIN, TaskStage::NotStarted),
                ],
                (D::NotDeployed, O::Deferred),
            ),
            (
                "ready but waiting for a slot",
                RunStage::Running,
                vec![task(PLUGIN, TaskStage::QueuedForSlot)],
                (D::NotDeployed, O::QueuedForAgent),
            ),
            (
                "cancelled before any task ran",
                RunStage::Ended(RunStatus::Cancelled),
                vec![
                    ended(APPROVAL, Outcome::Cancelled, "RunCancelled", 0),
                    skipped(PLUGIN, 1),
                ],
                (D::NotDeployed, O::Canceled),
            ),
            (
                "gates before anything ran",
                RunStage::Running,
                vec![
                    task(GATE, TaskStage::Waiting(WaitStage::Gate)),
                    task(PLUGIN, TaskStage::NotStarted),
                ],
                (D::NotDeployed, O::EvaluatingGates),
            ),
            (
                "gates after a task ran",
                RunStage::Running,
                vec![
                    ended(PLUGIN, Outcome::Succeeded, "", 0),
                    task(GATE, TaskStage::Waiting(WaitStage::Gate)),
                ],
                (D::InProgress, O::EvaluatingGates),
            ),
            (
                "tasks running",
                RunStage::Running,
                vec![task(PLUGIN, TaskStage::Running)],
                (D::InProgress, O::PhaseInProgress),
            ),
            (
                "waiting on a manual intervention",
                RunStage::Running,
                vec![
                    ended(PLUGIN, Outcome::Succeeded, "", 0),
                    task(INTERVENTION, TaskStage::Waiting(WaitStage::Intervention)),
                ],
                (D::InProgress, O::ManualInterventionPending),
            ),
            (
                "waiting on a later approval",
                RunStage::Running,
                vec![
                    ended(PLUGIN, Outcome::Succeeded, "", 0),
                    task(APPROVAL, TaskStage::Waiting(WaitStage::Approval)),
                ],
                (D::InProgress, O::Pending),
            ),
            (
                "a person is asked while a sibling runs: the person wins",
                RunStage::Running,
                vec![
                    task(PLUGIN, TaskStage::Running),
                    task(APPROVAL, TaskStage::Waiting(WaitStage::Approval)),
                ],
                (D::InProgress, O::Pending),
            ),
            (
                "running tasks win over gates",
                RunStage::Running,
                vec![
                    task(PLUGIN, TaskStage::Running),
                    task(GATE, TaskStage::Waiting(WaitStage::Gate)),
                ],
                (D::InProgress, O::PhaseInProgress),
            ),
            (
                "cancel requested",
                RunStage::Cancelling,
                vec![task(PLUGIN, TaskStage::Cancelling)],
                (D::InProgress, O::Cancelling),
            ),
            (
                "succeeded",
                RunStage::Ended(RunStatus::Succeeded),
                vec![
                    ended(APPROVAL, Outcome::Succeeded, "", 0),
                    ended(PLUGIN, Outcome::Succeeded, "", 1),
                ],
                (D::Succeeded, O::PhaseSucceeded),
            ),
            (
                "completed",
                RunStage::Ended(RunStatus::Completed),
                vec![ended(PLUGIN, Outcome::Succeeded, "", 0), skipped(PLUGIN, 1)],
                (D::Succeeded, O::PhaseSucceeded),
            ),
            (
                "succeeded, the last gate an approval (finally does not count)",
                RunStage::Ended(RunStatus::Succeeded),
                vec![
                    ended(PLUGIN, Outcome::Succeeded, "", 0),
                    ended(APPROVAL, Outcome::Succeeded, "", 1),
                    finally(ended(PLUGIN, Outcome::Succeeded, "", 2)),
                ],
                (D::Succeeded, O::Approved),
            ),
            (
                "succeeded with warnings",
                RunStage::Ended(RunStatus::SucceededWithWarnings),
                vec![ended(PLUGIN, Outcome::SucceededWithWarnings, "", 0)],
                (D::PartiallySucceeded, O::PhasePartiallySucceeded),
            ),
            (
                "failed",
                RunStage::Ended(RunStatus::Failed),
                vec![ended(PLUGIN, Outcome::Failed, "Failed", 0)],
                (D::Failed, O::PhaseFailed),
            ),
            (
                "timed out",
                RunStage::Ended(RunStatus::TimedOut),
                vec![ended(PLUGIN, Outcome::TimedOut, "TaskRunTimeout", 0)],
                (D::Failed, O::PhaseFailed),
            ),
            (
                "errored",
                RunStage::Ended(RunStatus::Errored),
                vec![ended(PLUGIN, Outcome::Errored, "LaunchFailed", 0)],
                (D::Failed, O::PhaseFailed),
            ),
            (
                "a rejection after tasks ran",
                RunStage::Ended(RunStatus::Failed),
                vec![
                    ended(PLUGIN, Outcome::Succeeded, "", 0),
                    ended(APPROVAL, Outcome::Rejected, "Rejected", 1),
                ],
                (D::Failed, O::Rejected),
            ),
            (
                "an intervention timed out (rejected)",
                RunStage::Ended(RunStatus::Failed),
                vec![
                    ended(PLUGIN, Outcome::Succeeded, "", 0),
                    ended(INTERVENTION, Outcome::Rejected, "InterventionTimedOut", 1),
                ],
                (D::Failed, O::Rejected),
            ),
            (
                "gates failed",
                RunStage::Ended(RunStatus::Failed),
                vec![
                    ended(GATE, Outcome::Failed, "GatesFailed", 0),
                    skipped(PLUGIN, 1),
                ],
                (D::Failed, O::GatesFailed),
            ),
            (
                "cancelled after tasks ran",
                RunStage::Ended(RunStatus::Cancelled),
                vec![
                    ended(PLUGIN, Outcome::Succeeded, "", 0),
                    ended(PLUGIN, Outcome::Cancelled, "RunCancelled", 1),
                ],
                (D::Failed, O::Canceled),
            ),
        ];
        let mut failed = Vec::new();
        for (name, stage, tasks, (status, operation_status)) in rows {
            let got = run_operation(stage, &tasks);
            let want = Operation {
                status,
                operation_status,
            };
            if got != want {
                failed.push(format!("{name}: got {got:?}, want {want:?}"));
            }
        }
        assert!(failed.is_empty(), "{failed:#?}");
    }

    #[test]
    fn task_pairs() {
        let rows: Vec<(&str, TaskFacts, (D, O))> = vec![
            (
                "not started",
                task(PLUGIN, TaskStage::NotStarted),
                (D::NotDeployed, O::Queued),
            ),
            (
                "queued for a slot",
                task(PLUGIN, TaskStage::QueuedForSlot),
                (D::NotDeployed, O::QueuedForAgent),
            ),
            (
                "running",
                task(PLUGIN, TaskStage::Running),
                (D::InProgress, O::PhaseInProgress),
            ),
            (
                "approval pending",
                task(APPROVAL, TaskStage::Waiting(WaitStage::Approval)),
                (D::NotDeployed, O::Pending),
            ),
            (
                "approval deferred",
                task(APPROVAL, TaskStage::Waiting(WaitStage::Deferred)),
                (D::NotDeployed, O::Deferred),
            ),
            (
                "intervention",
                task(INTERVENTION, TaskStage::Waiting(WaitStage::Intervention)),
                (D::NotDeployed, O::ManualInterventionPending),
            ),
            (
                "gate",
                task(GATE, TaskStage::Waiting(WaitStage::Gate)),
                (D::NotDeployed, O::EvaluatingGates),
            ),
            (
                "approved",
                ended(APPROVAL, Outcome::Succeeded, "", 0),
                (D::Succeeded, O::Approved),
            ),
            (
                "approval rejected",
                ended(APPROVAL, Outcome::Rejected, "Rejected", 0),
                (D::NotDeployed, O::Rejected),
            ),
            (
                "gates failed",
                ended(GATE, Outcome::Failed, "GatesFailed", 0),
                (D::Failed, O::GatesFailed),
            ),
            (
                "task cancelled while running",
                ended(PLUGIN, Outcome::Cancelled, "RunCancelled", 0),
                (D::Failed, O::Canceled),
            ),
            ("skipped", skipped(PLUGIN, 0), (D::NotDeployed, O::Canceled)),
            (
                "warnings",
                ended(PLUGIN, Outcome::SucceededWithWarnings, "FailureIgnored", 0),
                (D::PartiallySucceeded, O::PhasePartiallySucceeded),
            ),
        ];
        let mut failed = Vec::new();
        for (name, facts, (status, operation_status)) in rows {
            let got = task_operation(&facts);
            let want = Operation {
                status,
                operation_status,
            };
            if got != want {
                failed.push(format!("{name}: got {got:?}, want {want:?}"));
            }
        }
        assert!(failed.is_empty(), "{failed:#?}");
    }
}
