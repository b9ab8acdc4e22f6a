//! The `<status, operationStatus>` view of a stored run (release-control.md section 7),
//! for `weft runs show` and the API while nobody may be executing it: read from the store
//! (the run's phase, its attempts, its waits and the decisions cast on them) and fed to
//! the same weft-core functions a live run's report uses.

use weft_core::model::TaskKind;
use weft_core::operation::{self, Operation, RunStage, TaskFacts, TaskStage, WaitStage};
use weft_core::waits::{self, ApprovalRequest, WaitState};
use weft_store::{AttemptRecord, RunPhase, RunStore, StoreError, TaskPhase, Timestamp, WaitRecord};

/// A run's operation and its tasks', as stored now.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationView {
    /// The run's pair.
    pub run: Operation,
    /// Each task's pair, in declaration order (`finally` last).
    pub tasks: Vec<TaskOperation>,
}

/// One task's pair.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TaskOperation {
    /// The task.
    pub task: String,
    /// Its pair.
    #[serde(flatten)]
    pub operation: Operation,
}

/// The operation view of `run`; `None` when there is no such run.
pub fn operation_view(
    store: &dyn RunStore,
    run: &str,
) -> Result<Option<OperationView>, StoreError> {
    let Some(record) = store.run(run)? else {
        return Ok(None);
    };
    let attempts = store.attempts(run)?;
    let waits = store.waits(run)?;
    let votes = store.votes(run)?;
    let now = Timestamp::now().0;
    // Declaration order, kinds and `finally` from the stored pipeline (the same text the
    // run was planned from); a task only the store knows (it cannot parse) still counts.
    let mut declared: Vec<(String, TaskKind, bool)> = Vec::new();
    if let Some(pipeline) = super::spec::stored_pipeline(&record) {
        for (tasks, finally) in [(&pipeline.tasks, false), (&pipeline.finally, true)] {
            for task in tasks {
                declared.push((task.name.value.clone(), task.kind, finally));
            }
        }
    }
    for attempt in &attempts {
        if !declared.iter().any(|(name, ..)| *name == attempt.id.task) {
            declared.push((attempt.id.task.clone(), TaskKind::Plugin, false));
        }
    }
    let facts: Vec<(String, TaskFacts)> = declared
        .into_iter()
        .map(|(name, kind, finally)| {
            let latest = attempts
                .iter()
                .filter(|a| a.id.task == name)
                .max_by_key(|a| a.id.attempt);
            // The open wait is written (and flushed) before anyone is told of it, the
            // attempt's phase maybe later: an open wait is what says the task waits.
            let wait = waits
                .iter()
                .filter(|w| w.id.task == name)
                .max_by_key(|w| w.id.attempt);
            let open = wait.is_some_and(WaitRecord::is_open);
            let deferred = wait.is_some_and(|wait| {
                let votes: Vec<waits::Vote> = votes
                    .iter()
                    .filter(|v| v.id == wait.id)
                    .map(crate::execute::waits::vote_of)
                    .collect();
                deferred_now(wait, &votes, now)
            });
            let mut facts = task_facts(kind, finally, latest, deferred);
            if open {
                facts.stage = TaskStage::Waiting(WaitStage::of(kind, deferred));
                facts.started = true;
            }
            (name, facts)
        })
        .collect();
    let stage = match record.phase {
        RunPhase::Finished => {
            let status = record
                .status
                .as_deref()
                .and_then(weft_core::RunStatus::parse);
            status.map_or(RunStage::Running, RunStage::Ended)
        }
        RunPhase::Cancelling => RunStage::Cancelling,
        RunPhase::Queued => RunStage::Queued,
        RunPhase::Scheduled => RunStage::Scheduled,
        _ => RunStage::Running,
    };
    let all: Vec<TaskFacts> = facts.iter().map(|(_, f)| f.clone()).collect();
    Ok(Some(OperationView {
        run: operation::run_operation(stage, &all),
        tasks: facts
            .iter()
            .map(|(name, f)| TaskOperation {
                task: name.clone(),
                operation: operation::task_operation(f),
            })
            .collect(),
    }))
}

fn task_facts(
    kind: TaskKind,
    finally: bool,
    latest: Option<&AttemptRecord>,
    deferred: bool,
) -> TaskFacts {
    let Some(attempt) = latest else {
        return TaskFacts {
            kind,
            finally,
            stage: TaskStage::NotStarted,
            started: false,
            ended_at: None,
        };
    };
    let stage = match attempt.phase {
        TaskPhase::Pending => TaskStage::NotStarted,
        TaskPhase::Queued => TaskStage::QueuedForSlot,
        TaskPhase::Running => TaskStage::Running,
        TaskPhase::Blocked => TaskStage::Waiting(WaitStage::of(kind, deferred)),
        TaskPhase::Cancelling => TaskStage::Cancelling,
        TaskPhase::Terminal => TaskStage::Ended {
            outcome: attempt
                .outcome
                .map_or(weft_core::Outcome::Skipped, Into::into),
            reason: attempt.reason.clone(),
        },
    };
    let started = attempt.started_at.is_some()
        || matches!(
            attempt.phase,
            TaskPhase::Running | TaskPhase::Blocked | TaskPhase::Cancelling
        );
    TaskFacts {
        kind,
        finally,
        stage,
        started,
        ended_at: attempt.ended_at.map(|t| t.0),
    }
}

/// Whether an open approval has been approved and waits for its deferral now.
fn deferred_now(wait: &WaitRecord, votes: &[waits::Vote], now: i64) -> bool {
    if !wait.is_open() || wait.kind != "approval" {
        return false;
    }
    let Ok(request) = serde_json::from_str::<ApprovalRequest>(&wait.request_json) else {
        return false;
    };
    matches!(
        waits::approval_state(&request, votes, now, wait.deadline.map(|d| d.0)),
        WaitState::Deferred { .. }
    )
}

/// Why the stored run `run` waits before its first task, as the live view says it
/// ("queued: deploy group, 2 ahead", "scheduled for 2026-12-24T02:00:00Z"); `None` when it
/// does not wait (or there is no such run).
pub fn held_view(
    store: &dyn RunStore,
    run: &str,
    stale_after: std::time::Duration,
) -> Result<Option<String>, StoreError> {
    let Some(record) = store.run(run)? else {
        return Ok(None);
    };
    match record.phase {
        RunPhase::Scheduled => {
            let at = super::StoredRun::read(run, &record.submitted)
                .ok()
                .and_then(|stored| stored.spec.scheduled_at_ms)
                .and_then(|ms| u64::try_from(ms).ok());
            Ok(at.map(|ms| {
                crate::observe::Held::Scheduled {
                    at: std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
                }
                .describe()
            }))
        }
        RunPhase::Queued => {
            let rows = store.groups_of(run, Timestamp::now(), stale_after)?;
            // The slot it waits for (it may hold its tenant's already).
            let own = || rows.iter().filter(|row| row.holder == run);
            let Some(mine) = own().find(|row| !row.holding).or_else(|| own().next()) else {
                return Ok(Some("queued".into()));
            };
            let group: Vec<_> = rows.iter().filter(|row| row.group == mine.group).collect();
            let holding = group.iter().filter(|row| row.holding && row.alive).count();
            let ahead = group
                .iter()
                .filter(|row| !row.holding && row.alive && !row.superseded && row.seq < mine.seq)
                .count();
            Ok(Some(weft_core::queue::describe_waiting(
                &weft_store::tenants::group_shown(&mine.group),
                ahead,
                holding,
            )))
        }
        _ => Ok(None),
    }
}
