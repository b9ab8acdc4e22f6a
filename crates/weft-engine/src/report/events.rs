//! From run events to desired statuses: `pending` on submission, `running` when the first
//! task starts, each task's `running` and outcome (with `tasks: true`), and the run's final
//! status with its description, composed once from the run report (weft-core
//! `describe`), so a re-delivery after a restart says exactly the same.

use std::sync::atomic::Ordering;

use weft_core::{RunSummary, TaskPhase, describe};

use super::Reporters;
use crate::observe::RunEvent;
use crate::outbox::{DesiredStatus, ReportStatus};

impl Reporters {
    pub(super) fn on_event(&self, event: &RunEvent<'_>) {
        match event {
            RunEvent::Transition {
                task,
                phase,
                outcome,
                reason,
                ..
            } => {
                let after_wait =
                    *phase == TaskPhase::Running && self.showing_wait.swap(false, Ordering::SeqCst);
                if (*phase == TaskPhase::Running && !self.started.swap(true, Ordering::SeqCst))
                    || after_wait
                {
                    self.shared
                        .desire_run(&DesiredStatus::run(ReportStatus::Running));
                }
                let status = match (phase, outcome) {
                    (TaskPhase::Running, _) => Some((
                        ReportStatus::Running,
                        describe::describe_progress(true).to_string(),
                    )),
                    (TaskPhase::Terminal, Some(outcome)) => Some((
                        ReportStatus::from(*outcome),
                        describe::describe_task(*outcome, reason),
                    )),
                    _ => None,
                };
                if let Some((status, description)) = status {
                    self.shared.desire_task(task, status, reason, description);
                }
            }
            RunEvent::Waiting { task, wait, .. } => {
                // The forge shows what the run waits for; it stays pending until a task
                // has run, running after.
                let description = wait.describe(task);
                let status = if self.started.load(Ordering::SeqCst) {
                    ReportStatus::Running
                } else {
                    ReportStatus::Pending
                };
                self.showing_wait.store(true, Ordering::SeqCst);
                self.shared.desire_run(&DesiredStatus {
                    description: description.clone(),
                    ..DesiredStatus::run(status)
                });
                self.shared
                    .desire_task(task, ReportStatus::Pending, "Waiting", description);
            }
            RunEvent::Finished(summary) => {
                self.shared.desire_run(&final_status(summary));
            }
            RunEvent::Log { .. }
            | RunEvent::FinallyStarted
            | RunEvent::Held(_)
            | RunEvent::Instantiated { .. } => {}
        }
    }
}

/// The run's final desired status: status, reason, halting task, and a message naming the
/// first task that failed (with its message) for failing statuses.
pub fn final_status(summary: &RunSummary) -> DesiredStatus {
    let status = ReportStatus::from(summary.status);
    let message = match status {
        ReportStatus::Failed | ReportStatus::TimedOut | ReportStatus::Errored => summary
            .report
            .tasks
            .iter()
            .find(|t| matches!(t.status.as_str(), "Failed" | "TimedOut" | "Errored"))
            .map(|t| {
                let what = format!("task {} {}", t.name, t.status.to_lowercase());
                if t.message.trim().is_empty() {
                    what
                } else {
                    format!("{what} ({})", t.message.trim())
                }
            })
            .unwrap_or_default(),
        ReportStatus::SucceededWithWarnings => summary
            .report
            .tasks
            .iter()
            .filter(|t| t.status == "SucceededWithWarnings")
            .map(|t| t.name.clone())
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    };
    DesiredStatus {
        status,
        run_status: status,
        reason: summary.reason.clone(),
        halted_by: summary
            .halted_by
            .as_ref()
            .map(|h| (h.task.clone(), h.message.clone())),
        message,
        description: describe::describe_run(summary.status, &summary.report),
        task: None,
    }
}
