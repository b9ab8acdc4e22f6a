//! One-line human descriptions of a run and of a task, as a forge's status description
//! shows them ("all 3 tasks succeeded; report-failure skipped (when)").
//!
//! They are pure functions of the [`RunReport`] (and of a task's outcome and reason), so a
//! status re-delivered after a restart carries exactly the description first composed.
//! Messages in the report are already masked by the engine (secrets never reach here).

use crate::run::{RunReport, TaskReport};
use crate::status::{Outcome, RunStatus, SkipReason, reasons};

/// How many task names a description lists before it says "and N more".
const MAX_NAMED: usize = 3;
/// Longest message quoted, in characters.
const MAX_MESSAGE: usize = 80;

/// The description of a finished run: its status, in words, with what failed first, then
/// how many tasks succeeded, then what was skipped and why.
pub fn describe_run(status: RunStatus, report: &RunReport) -> String {
    let tasks = &report.tasks;
    let count = |outcome: &str| tasks.iter().filter(|t| t.status == outcome).count();
    let succeeded =
        count(Outcome::Succeeded.as_str()) + count(Outcome::SucceededWithWarnings.as_str());
    let skipped = tasks
        .iter()
        .filter(|t| t.status == Outcome::Skipped.as_str())
        .count();
    let ran = tasks.len() - skipped;
    let tally = if ran == 0 {
        "no task ran".to_string()
    } else if succeeded == ran {
        format!("all {ran} task{} succeeded", plural(ran))
    } else {
        format!("{succeeded} of {ran} task{} succeeded", plural(ran))
    };
    let failing = || {
        tasks
            .iter()
            .filter(|t| is_failure(&t.status))
            .map(describe_failed_task)
            .collect::<Vec<_>>()
    };
    let mut parts = Vec::new();
    match status {
        RunStatus::Succeeded => {
            if let Some(halted) = &report.run.halted_by {
                parts.push(with_message(
                    format!("halted early by {}", halted.task),
                    &halted.message,
                ));
            }
            parts.push(tally);
        }
        RunStatus::SucceededWithWarnings => {
            let warned: Vec<String> = tasks
                .iter()
                .filter(|t| t.status == Outcome::SucceededWithWarnings.as_str())
                .map(|t| with_message(t.name.clone(), &t.message))
                .collect();
            parts.push(format!("passed with warnings: {}", listed(&warned)));
            parts.push(tally);
        }
        RunStatus::Completed => parts.push(tally),
        RunStatus::Failed => {
            parts.push(listed(&failing()));
            parts.push(tally);
        }
        RunStatus::TimedOut => {
            parts.push(format!("timed out ({})", report.run.reason));
            let failed = failing();
            if !failed.is_empty() {
                parts.push(listed(&failed));
            }
            parts.push(tally);
        }
        RunStatus::Errored => {
            parts.push(with_message("errored".to_string(), &report.run.reason));
            parts.push(tally);
        }
        RunStatus::Cancelled => {
            parts.push(format!("cancelled ({})", report.run.reason));
            parts.push(tally);
        }
    }
    parts.extend(skips(tasks));
    parts.retain(|p| !p.is_empty());
    parts.join("; ")
}

/// The description of one task's terminal outcome with its reason ("skipped (when)",
/// "failed (exit 2)").
pub fn describe_task(outcome: Outcome, reason: &str) -> String {
    match outcome {
        Outcome::Skipped => format!("skipped ({})", skip_words(reason)),
        Outcome::Succeeded if reason.is_empty() => "succeeded".into(),
        Outcome::SucceededWithWarnings if reason == reasons::FAILURE_IGNORED => {
            "failed (allowed by onError: continue)".into()
        }
        Outcome::SucceededWithWarnings if reason.is_empty() => "passed with warnings".into(),
        other if reason.is_empty() || reason == other.as_str() => words(other).into(),
        other => format!("{} ({reason})", words(other)),
    }
}

/// A run or task that waits or runs, in words.
pub fn describe_progress(running: bool) -> &'static str {
    if running {
        "running"
    } else {
        "waiting to start"
    }
}

fn is_failure(status: &str) -> bool {
    [
        Outcome::Failed,
        Outcome::TimedOut,
        Outcome::Errored,
        Outcome::Rejected,
    ]
    .iter()
    .any(|o| o.as_str() == status)
}

/// "build failed (exit 2: boom)".
fn describe_failed_task(task: &TaskReport) -> String {
    let outcome = match task.status.as_str() {
        "TimedOut" => "timed out",
        "Errored" => "errored",
        "Rejected" => "was rejected",
        _ => "failed",
    };
    let mut detail = Vec::new();
    if task.status == Outcome::Errored.as_str() && !task.reason.is_empty() {
        detail.push(task.reason.clone());
    }
    if let Some(code) = task.exit_code.filter(|c| *c != 0) {
        detail.push(format!("exit {code}"));
    }
    let message = one_line(&task.message);
    if !message.is_empty() {
        detail.push(message);
    }
    if detail.is_empty() {
        format!("{} {outcome}", task.name)
    } else {
        format!("{} {outcome} ({})", task.name, detail.join(": "))
    }
}

/// "a, b skipped (when)", one entry per skip reason, in the order reasons first appear.
fn skips(tasks: &[TaskReport]) -> Vec<String> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for task in tasks
        .iter()
        .filter(|t| t.status == Outcome::Skipped.as_str())
    {
        let why = skip_words(&task.reason);
        match groups.iter_mut().find(|(w, _)| *w == why) {
            Some((_, names)) => names.push(task.name.clone()),
            None => groups.push((why, vec![task.name.clone()])),
        }
    }
    groups
        .into_iter()
        .map(|(why, names)| format!("{} skipped ({why})", listed(&names)))
        .collect()
}

/// A skip reason in a few words.
fn skip_words(reason: &str) -> String {
    let known = [
        (SkipReason::WhenExpressionsFalse, "when"),
        (SkipReason::ResultsMissing, "results missing"),
        (SkipReason::ParentSkipped, "parent skipped"),
        (SkipReason::RunStopping, "run stopping"),
        (SkipReason::RunHalted, "run halted"),
        (SkipReason::RunCancelled, "run cancelled"),
        (SkipReason::RunTimedOut, "run timed out"),
        (SkipReason::SelfSkipped, "by itself"),
    ];
    known
        .iter()
        .find(|(r, _)| r.as_str() == reason)
        .map_or_else(
            || {
                if reason.is_empty() {
                    "no reason".to_string()
                } else {
                    reason.to_string()
                }
            },
            |(_, words)| (*words).to_string(),
        )
}

fn words(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Succeeded => "succeeded",
        Outcome::SucceededWithWarnings => "passed with warnings",
        Outcome::Failed => "failed",
        Outcome::TimedOut => "timed out",
        Outcome::Cancelled => "cancelled",
        Outcome::Rejected => "rejected",
        Outcome::Errored => "errored",
        Outcome::Skipped => "skipped",
    }
}

/// Names joined with ", ", at most [`MAX_NAMED`] of them, then "and N more".
fn listed(names: &[String]) -> String {
    if names.len() <= MAX_NAMED {
        return names.join(", ");
    }
    format!(
        "{} and {} more",
        names[..MAX_NAMED].join(", "),
        names.len() - MAX_NAMED
    )
}

fn with_message(base: String, message: &str) -> String {
    let message = one_line(message);
    if message.is_empty() {
        base
    } else {
        format!("{base}: {message}")
    }
}

/// `s` on one line, at most [`MAX_MESSAGE`] characters (cut with `…`).
fn one_line(s: &str) -> String {
    let line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= MAX_MESSAGE {
        return line;
    }
    let mut cut: String = line.chars().take(MAX_MESSAGE - 1).collect();
    cut.push('…');
    cut
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{HaltedBy, RunHeader};

    fn task(name: &str, status: &str, reason: &str) -> TaskReport {
        TaskReport {
            name: name.into(),
            finally: false,
            status: status.into(),
            reason: reason.into(),
            exit_code: None,
            attempts: 1,
            results: Default::default(),
            message: String::new(),
            matrix: None,
            runs_pipeline: false,
            nested_in: None,
            operation: crate::operation::task_operation(&crate::operation::TaskFacts {
                kind: crate::model::TaskKind::Plugin,
                finally: false,
                stage: crate::operation::TaskStage::NotStarted,
                started: false,
                ended_at: None,
            }),
        }
    }

    fn report(tasks: Vec<TaskReport>) -> RunReport {
        RunReport {
            run: RunHeader {
                name: "r".into(),
                status: String::new(),
                reason: String::new(),
                tasks_status: String::new(),
                tasks_outcome: String::new(),
                halted_by: None,
                checkpoint_hits: None,
                attempt: 1,
                operation: crate::operation::run_operation(
                    crate::operation::RunStage::Running,
                    &[],
                ),
            },
            tasks,
        }
    }

    #[test]
    fn runs_are_described_as_a_person_would() {
        let mut failed = task("build", "Failed", "Failed");
        failed.exit_code = Some(2);
        failed.message = "cargo\nbuild   broke".into();
        let mut warned = task("lint", "SucceededWithWarnings", "");
        warned.message = "2 warnings".into();
        let mut errored = task("scan", "Errored", "MemoryLimitExceeded");
        errored.message = "grew past 64 MiB".into();
        let mut halted = report(vec![
            task("check", "Succeeded", ""),
            task("deploy", "Skipped", "RunHalted"),
        ]);
        halted.run.halted_by = Some(HaltedBy {
            task: "check".into(),
            message: "up to date".into(),
        });
        let mut timed_out = report(vec![task("slow", "TimedOut", "TasksTimeout")]);
        timed_out.run.reason = "PipelineRunTimeout".into();
        let mut cancelled = report(vec![
            task("a", "Succeeded", ""),
            task("b", "Cancelled", "RunCancelled"),
        ]);
        cancelled.run.reason = "CancelledRunFinally".into();
        let mut infra = report(vec![task("a", "Cancelled", "InfrastructureError")]);
        infra.run.reason = "lost the run's lease".into();
        let cases: Vec<(&str, RunStatus, RunReport, &str)> = vec![
            (
                "a green run whose only skip is a finally task guarded by when",
                RunStatus::Completed,
                report(vec![
                    task("fetch", "Succeeded", ""),
                    task("build", "Succeeded", ""),
                    task("report-success", "Succeeded", ""),
                    task(
                        "report-pipeline-failed-to-gitlab",
                        "Skipped",
                        "WhenExpressionsFalse",
                    ),
                ]),
                "all 3 tasks succeeded; report-pipeline-failed-to-gitlab skipped (when)",
            ),
            (
                "all succeeded",
                RunStatus::Succeeded,
                report(vec![task("a", "Succeeded", "")]),
                "all 1 task succeeded",
            ),
            (
                "a failure names the task, exit code and message first",
                RunStatus::Failed,
                report(vec![
                    task("fetch", "Succeeded", ""),
                    failed.clone(),
                    task("deploy", "Skipped", "RunStopping"),
                    task("notify", "Skipped", "RunStopping"),
                ]),
                "build failed (exit 2: cargo build broke); 1 of 2 tasks succeeded; deploy, notify skipped (run stopping)",
            ),
            (
                "warnings name the tasks and their messages",
                RunStatus::SucceededWithWarnings,
                report(vec![task("a", "Succeeded", ""), warned]),
                "passed with warnings: lint: 2 warnings; all 2 tasks succeeded",
            ),
            (
                "a halt names who halted and why",
                RunStatus::Succeeded,
                halted,
                "halted early by check: up to date; all 1 task succeeded; deploy skipped (run halted)",
            ),
            (
                "an error names its reason",
                RunStatus::Failed,
                report(vec![errored]),
                "scan errored (MemoryLimitExceeded: grew past 64 MiB); 0 of 1 task succeeded",
            ),
            (
                "a timeout",
                RunStatus::TimedOut,
                timed_out,
                "timed out (PipelineRunTimeout); slow timed out; 0 of 1 task succeeded",
            ),
            (
                "a cancel",
                RunStatus::Cancelled,
                cancelled,
                "cancelled (CancelledRunFinally); 1 of 2 tasks succeeded",
            ),
            (
                "an infrastructure error",
                RunStatus::Errored,
                infra,
                "errored: lost the run's lease; 0 of 1 task succeeded",
            ),
            (
                "nothing ran",
                RunStatus::Completed,
                report(vec![task("a", "Skipped", "WhenExpressionsFalse")]),
                "no task ran; a skipped (when)",
            ),
            (
                "long lists are cut",
                RunStatus::Completed,
                report(vec![
                    task("a", "Skipped", "WhenExpressionsFalse"),
                    task("b", "Skipped", "WhenExpressionsFalse"),
                    task("c", "Skipped", "WhenExpressionsFalse"),
                    task("d", "Skipped", "WhenExpressionsFalse"),
                    task("e", "Skipped", "ParentSkipped"),
                ]),
                "no task ran; a, b, c and 1 more skipped (when); e skipped (parent skipped)",
            ),
        ];
        for (what, status, report, expected) in cases {
            assert_eq!(describe_run(status, &report), expected, "{what}");
        }
    }

    #[test]
    fn tasks_are_described_by_outcome_and_reason() {
        let cases = [
            (Outcome::Succeeded, "", "succeeded"),
            (Outcome::Skipped, "WhenExpressionsFalse", "skipped (when)"),
            (Outcome::Skipped, "SelfSkipped", "skipped (by itself)"),
            (Outcome::Failed, "Failed", "failed"),
            (
                Outcome::TimedOut,
                "TaskRunTimeout",
                "timed out (TaskRunTimeout)",
            ),
            (
                Outcome::Errored,
                "CpuBudgetExceeded",
                "errored (CpuBudgetExceeded)",
            ),
            (
                Outcome::SucceededWithWarnings,
                "FailureIgnored",
                "failed (allowed by onError: continue)",
            ),
            (Outcome::SucceededWithWarnings, "", "passed with warnings"),
            (
                Outcome::Cancelled,
                "RunCancelled",
                "cancelled (RunCancelled)",
            ),
        ];
        for (outcome, reason, expected) in cases {
            assert_eq!(
                describe_task(outcome, reason),
                expected,
                "{outcome:?} {reason}"
            );
        }
    }

    #[test]
    fn long_messages_are_cut_on_one_line() {
        let mut failed = task("t", "Failed", "Failed");
        failed.message = "x".repeat(500);
        let text = describe_run(RunStatus::Failed, &report(vec![failed]));
        assert!(text.contains('…') && text.chars().count() < 140, "{text}");
    }
}
