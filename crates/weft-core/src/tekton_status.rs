//! A run as Tekton writes a `PipelineRun`'s status (`weft run --output tekton`, `weft runs
//! show --output tekton`), so tools that read Tekton's status can read weft's: the
//! `Succeeded` condition with Tekton's reasons and messages
//! (`pkg/reconciler/pipelinerun/resources/pipelinerunstate.go`,
//! `GetPipelineConditionStatus`), `childReferences`, `skippedTasks` with Tekton's skipping
//! reasons, and `results`.
//!
//! Counting follows Tekton's `getPipelineTasksCount` over every task, `finally` included:
//! succeeded (warnings too), failed (failures, errors, rejections and timeouts), failures
//! `onError: continue` ignored, cancelled, skipped (a skip by a run timeout also makes the
//! run fail), incomplete. Where weft has no Tekton counterpart the choice is written here:
//! a task that skipped itself (`SelfSkipped`) ran (it has a child reference) and is listed
//! skipped with reason `None`; a task a halt skipped (`RunHalted`) reads "PipelineRun was
//! stopping"; a halted run reads as Tekton's successful one.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

/// One task as the status needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFacts {
    /// Its name (a matrixed task's combination is `<task>-<index>`).
    pub name: String,
    /// The pipeline task it runs (its own name, or its matrixed task's).
    pub pipeline_task: String,
    /// In `spec.finally`.
    pub finally: bool,
    /// weft's outcome (`Succeeded`, `Skipped`, ...) when terminal, else its phase.
    pub status: String,
    /// weft's reason.
    pub reason: String,
    /// Attempts started (0: it never ran).
    pub attempts: u32,
    /// Its results.
    pub results: BTreeMap<String, String>,
    /// It runs a pipeline: its child is a `PipelineRun`, not a `TaskRun`.
    pub runs_pipeline: bool,
}

/// The run as the status needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFacts {
    /// The run's name.
    pub name: String,
    /// The pipeline's name (`tekton.dev/pipeline` label).
    pub pipeline: String,
    /// weft's final status, or `None` while the run goes.
    pub status: Option<String>,
    /// weft's reason (for a cancelled run, the cancel mode).
    pub reason: String,
    /// While the run goes: its phase (`Running`, `Stopping`, `RunningFinally`, ...).
    pub phase: String,
    /// Created with `spec.status: PipelineRunPending` and not started.
    pub pending: bool,
    /// The run's `pipeline` timeout.
    pub pipeline_timeout: Option<Duration>,
    /// The run's `tasks` timeout.
    pub tasks_timeout: Option<Duration>,
    /// Every task, in declaration order, `finally` last.
    pub tasks: Vec<TaskFacts>,
    /// The pipeline's results that resolved.
    pub results: BTreeMap<String, String>,
}

/// Tekton's counts of a run's tasks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Succeeded.
    pub succeeded: u32,
    /// Failed (timeouts included).
    pub failed: u32,
    /// Failed with `onError: continue`.
    pub ignored_failed: u32,
    /// Cancelled.
    pub cancelled: u32,
    /// Skipped.
    pub skipped: u32,
    /// Skipped because a run timeout passed.
    pub skipped_due_to_timeout: u32,
    /// Not finished.
    pub incomplete: u32,
}

/// Tekton's counts (`getPipelineTasksCount`): of pipeline tasks, so a matrixed task's
/// combinations count once, as one task (see [`pipeline_task_status`]).
pub fn counts(tasks: &[TaskFacts]) -> Counts {
    let mut c = Counts::default();
    let mut groups: Vec<Vec<&TaskFacts>> = Vec::new();
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for task in tasks {
        let at = *index.entry(task.pipeline_task.as_str()).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[at].push(task);
    }
    for members in &groups {
        let (status, reason) = pipeline_task_status(members);
        match (status, reason) {
            ("SucceededWithWarnings", "FailureIgnored") => c.ignored_failed += 1,
            ("Succeeded" | "SucceededWithWarnings", _) => c.succeeded += 1,
            ("Failed" | "Errored" | "Rejected" | "TimedOut", _) => c.failed += 1,
            ("Cancelled", _) => c.cancelled += 1,
            ("Skipped", "RunTimedOut") => {
                c.skipped += 1;
                c.skipped_due_to_timeout += 1;
            }
            ("Skipped", _) => c.skipped += 1,
            _ => c.incomplete += 1,
        }
    }
    c
}

/// A pipeline task's status and reason from its TaskRuns' (one, or a matrix's
/// combinations), as Tekton judges a matrixed task: not done while one is not, failed
/// when one failed, cancelled when one was, skipped when all were, else succeeded.
pub fn pipeline_task_status<'a>(members: &[&'a TaskFacts]) -> (&'a str, &'a str) {
    let terminal = |status: &str| {
        matches!(
            status,
            "Succeeded"
                | "SucceededWithWarnings"
                | "Failed"
                | "Errored"
                | "Rejected"
                | "TimedOut"
                | "Cancelled"
                | "Skipped"
        )
    };
    let pick = |wanted: &dyn Fn(&str) -> bool| {
        members
            .iter()
            .find(|m| wanted(&m.status))
            .map(|m| (m.status.as_str(), m.reason.as_str()))
    };
    if let [only] = members {
        return (only.status.as_str(), only.reason.as_str());
    }
    pick(&|s| !terminal(s))
        .or_else(|| pick(&|s| matches!(s, "Failed" | "Errored" | "Rejected" | "TimedOut")))
        .or_else(|| pick(&|s| s == "Cancelled"))
        .or_else(|| {
            members
                .iter()
                .all(|m| m.status == "Skipped")
                .then(|| pick(&|s| s == "Skipped"))
                .flatten()
        })
        .or_else(|| pick(&|s| s == "SucceededWithWarnings"))
        .or_else(|| pick(&|s| s == "Succeeded"))
        .unwrap_or(("Skipped", ""))
}

/// Go's `time.Duration.String()`: `1h0m0s`, `1m30s`, `1s`, `500ms`.
pub fn go_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_string();
    }
    let millis = d.as_millis();
    if millis < 1000 {
        return format!("{millis}ms");
    }
    let total = d.as_secs();
    let (hours, minutes, seconds) = (total / 3600, (total % 3600) / 60, total % 60);
    let fraction = d.subsec_millis();
    let seconds = if fraction == 0 {
        format!("{seconds}s")
    } else {
        let text = format!("{seconds}.{fraction:03}");
        format!("{}s", text.trim_end_matches('0'))
    };
    match (hours, minutes) {
        (0, 0) => seconds,
        (0, m) => format!("{m}m{seconds}"),
        (h, m) => format!("{h}h{m}m{seconds}"),
    }
}

/// The `Succeeded` condition: `(status, reason, message)`.
pub fn condition(run: &RunFacts) -> (&'static str, String, String) {
    let c = counts(&run.tasks);
    let completed = c.succeeded + c.failed + c.cancelled + c.ignored_failed;
    let name = &run.name;
    if run.pending {
        return (
            "Unknown",
            "PipelineRunPending".into(),
            format!("PipelineRun {name:?} is pending"),
        );
    }
    let Some(status) = run.status.as_deref() else {
        let reason = match run.phase.as_str() {
            "Stopping" | "Halting" => "PipelineRunStopping",
            "Cancelling" | "RunningFinally" if run.reason == "StoppedRunFinally" => {
                "StoppedRunningFinally"
            }
            "Cancelling" | "RunningFinally" if run.reason == "CancelledRunFinally" => {
                "CancelledRunningFinally"
            }
            _ => "Running",
        };
        return (
            "Unknown",
            reason.into(),
            format!(
                "Tasks Completed: {completed} (Failed: {}, Cancelled {}), Incomplete: {}, Skipped: {}",
                c.failed, c.cancelled, c.incomplete, c.skipped
            ),
        );
    };
    let tasks_message = if c.ignored_failed > 0 {
        format!(
            "Tasks Completed: {completed} (Failed: {} (Ignored: {}), Cancelled {}), Skipped: {}",
            c.failed + c.ignored_failed,
            c.ignored_failed,
            c.cancelled,
            c.skipped
        )
    } else {
        format!(
            "Tasks Completed: {completed} (Failed: {}, Cancelled {}), Skipped: {}",
            c.failed, c.cancelled, c.skipped
        )
    };
    match status {
        "TimedOut" => {
            let tasks_fired = run.tasks_timeout.is_some()
                && run.tasks.iter().any(|t| {
                    t.reason == "TasksTimeout" || (!t.finally && t.reason == "RunTimedOut")
                });
            let message = match (tasks_fired, run.tasks_timeout, run.pipeline_timeout) {
                (true, Some(tasks), _) => format!(
                    "PipelineRun {name:?} failed due to tasks failed to finish within {:?}",
                    go_duration(tasks)
                ),
                (_, _, Some(whole)) => format!(
                    "PipelineRun {name:?} failed to finish within {:?}",
                    go_duration(whole)
                ),
                _ => tasks_message,
            };
            ("False", "PipelineRunTimeout".into(), message)
        }
        "Cancelled" => (
            "False",
            "Cancelled".into(),
            format!("PipelineRun {name:?} was cancelled"),
        ),
        "Failed" | "Errored" => ("False", "Failed".into(), tasks_message),
        _ if c.failed > 0 || c.skipped_due_to_timeout > 0 => {
            ("False", "Failed".into(), tasks_message)
        }
        _ if c.cancelled > 0 && run.reason != "Halted" => {
            ("False", "Cancelled".into(), tasks_message)
        }
        _ => {
            let reason = if c.skipped > 0 {
                "Completed"
            } else {
                "Succeeded"
            };
            ("True", reason.into(), tasks_message)
        }
    }
}

/// Tekton's skipping reason for a skipped task.
pub fn skipping_reason(run: &RunFacts, task: &TaskFacts) -> &'static str {
    match task.reason.as_str() {
        "WhenExpressionsFalse" => "When Expressions evaluated to false",
        "ParentSkipped" => "Parent Tasks were skipped",
        "EmptyArrayInMatrixParams" => "Matrix Parameters have an empty array",
        "ResultsMissing" => "Results were missing",
        "RunStopping" | "RunHalted" => "PipelineRun was stopping",
        "RunCancelled" if run.reason == "StoppedRunFinally" => "PipelineRun was gracefully stopped",
        "RunCancelled" => "PipelineRun was gracefully cancelled",
        "RunTimedOut" if task.finally => "PipelineRun Finally timeout has been reached",
        "RunTimedOut"
            if run.tasks_timeout.is_some()
                && run.tasks.iter().any(|t| t.reason == "TasksTimeout")
                || run.pipeline_timeout.is_none() =>
        {
            "PipelineRun Tasks timeout has been reached"
        }
        "RunTimedOut" => "PipelineRun timeout has been reached",
        _ => "None",
    }
}

/// The run as a Tekton `PipelineRun` object (`tekton.dev/v1`).
pub fn pipeline_run(run: &RunFacts) -> Value {
    let (status, reason, message) = condition(run);
    let children: Vec<Value> = run
        .tasks
        .iter()
        .filter(|task| task.attempts > 0)
        .map(|task| {
            json!({
                "apiVersion": "tekton.dev/v1",
                "kind": if task.runs_pipeline { "PipelineRun" } else { "TaskRun" },
                "name": format!("{}-{}", run.name, task.name),
                "pipelineTaskName": task.pipeline_task,
            })
        })
        .collect();
    // A matrixed task is skipped as a whole: listed once, by its pipeline task's name.
    let mut listed = std::collections::HashSet::new();
    let skipped: Vec<Value> = run
        .tasks
        .iter()
        .filter(|task| task.status == "Skipped" && listed.insert(task.pipeline_task.as_str()))
        .map(|task| json!({"name": task.pipeline_task, "reason": skipping_reason(run, task)}))
        .collect();
    let mut status_object = json!({
        "conditions": [{
            "type": "Succeeded",
            "status": status,
            "reason": reason,
            "message": message,
        }],
    });
    if !children.is_empty() {
        status_object["childReferences"] = Value::Array(children);
    }
    if !skipped.is_empty() {
        status_object["skippedTasks"] = Value::Array(skipped);
    }
    if !run.results.is_empty() {
        status_object["results"] = Value::Array(
            run.results
                .iter()
                .map(|(name, value)| json!({"name": name, "value": value}))
                .collect(),
        );
    }
    json!({
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "metadata": {
            "name": run.name,
            "labels": {"tekton.dev/pipeline": run.pipeline},
        },
        "status": status_object,
    })
}

/// The pipeline's `spec.results` from its tasks' results: each whose every
/// `$(tasks.T.results.R)` resolved (Tekton leaves out the others).
pub fn pipeline_results(
    pipeline: &crate::Pipeline,
    tasks: &[TaskFacts],
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    'results: for result in &pipeline.results {
        let Ok(template) = crate::vars::parse_template(&result.value.value) else {
            continue;
        };
        let mut value = String::new();
        for piece in template.pieces {
            match piece {
                crate::vars::Piece::Literal(text) => value.push_str(&text),
                crate::vars::Piece::Var(crate::vars::VarRef::TaskResult { task, result }) => {
                    match tasks
                        .iter()
                        .find(|t| t.name == task)
                        .and_then(|t| t.results.get(&result))
                    {
                        Some(text) => value.push_str(text),
                        None => continue 'results,
                    }
                }
                crate::vars::Piece::Var(crate::vars::VarRef::MatrixResults { task, result }) => {
                    let mut items = Vec::new();
                    for combination in tasks.iter().filter(|t| t.pipeline_task == task) {
                        match combination.results.get(&result) {
                            Some(text) => items.push(text.as_str()),
                            None => continue 'results,
                        }
                    }
                    value.push_str(&serde_json::to_string(&items).unwrap_or_default());
                }
                crate::vars::Piece::Var(_) => continue 'results,
            }
        }
        out.insert(result.name.value.clone(), value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(name: &str, status: &str, reason: &str) -> TaskFacts {
        TaskFacts {
            name: name.into(),
            pipeline_task: name.into(),
            finally: false,
            status: status.into(),
            reason: reason.into(),
            attempts: u32::from(status != "Skipped"),
            results: BTreeMap::new(),
            runs_pipeline: false,
        }
    }

    /// Combination `index` of matrixed task `of`.
    fn combination(of: &str, index: usize, status: &str, reason: &str) -> TaskFacts {
        TaskFacts {
            name: format!("{of}-{index}"),
            pipeline_task: of.into(),
            ..task(of, status, reason)
        }
    }

    #[test]
    fn a_matrixed_task_counts_once_as_tekton_judges_it() {
        let table: Vec<(&str, Vec<TaskFacts>, Counts)> = vec![
            (
                "all combinations succeeded",
                vec![
                    combination("t", 0, "Succeeded", ""),
                    combination("t", 1, "Succeeded", ""),
                ],
                Counts {
                    succeeded: 1,
                    ..Counts::default()
                },
            ),
            (
                "one failed",
                vec![
                    combination("t", 0, "Succeeded", ""),
                    combination("t", 1, "Failed", "Failed"),
                ],
                Counts {
                    failed: 1,
                    ..Counts::default()
                },
            ),
            (
                "skipped by when: all of them",
                vec![
                    combination("t", 0, "Skipped", "WhenExpressionsFalse"),
                    combination("t", 1, "Skipped", "WhenExpressionsFalse"),
                    task("u", "Succeeded", ""),
                ],
                Counts {
                    succeeded: 1,
                    skipped: 1,
                    ..Counts::default()
                },
            ),
            (
                "one still running",
                vec![
                    combination("t", 0, "Failed", "Failed"),
                    combination("t", 1, "Running", ""),
                ],
                Counts {
                    incomplete: 1,
                    ..Counts::default()
                },
            ),
        ];
        for (case, tasks, expected) in table {
            assert_eq!(counts(&tasks), expected, "{case}");
        }
    }

    fn run(status: Option<&str>, reason: &str, tasks: Vec<TaskFacts>) -> RunFacts {
        RunFacts {
            name: "pr".into(),
            pipeline: "p".into(),
            status: status.map(String::from),
            reason: reason.into(),
            phase: "Running".into(),
            pending: false,
            pipeline_timeout: None,
            tasks_timeout: None,
            tasks,
            results: BTreeMap::new(),
        }
    }

    #[test]
    fn conditions_read_as_tektons() {
        // Each a pipeline task of its own (same-named ones would be one matrixed task).
        let made = std::cell::Cell::new(0);
        let ok = || {
            made.set(made.get() + 1);
            task(&format!("ok{}", made.get()), "Succeeded", "")
        };
        let table: Vec<(RunFacts, (&str, &str, &str))> = vec![
            (
                run(Some("Succeeded"), "Succeeded", vec![ok(), ok()]),
                (
                    "True",
                    "Succeeded",
                    "Tasks Completed: 2 (Failed: 0, Cancelled 0), Skipped: 0",
                ),
            ),
            (
                run(
                    Some("Completed"),
                    "Completed",
                    vec![ok(), ok(), task("c", "Skipped", "WhenExpressionsFalse")],
                ),
                (
                    "True",
                    "Completed",
                    "Tasks Completed: 2 (Failed: 0, Cancelled 0), Skipped: 1",
                ),
            ),
            (
                run(
                    Some("Failed"),
                    "Failed",
                    vec![
                        ok(),
                        task("b", "Failed", "Failed"),
                        task("c", "Skipped", "RunStopping"),
                    ],
                ),
                (
                    "False",
                    "Failed",
                    "Tasks Completed: 2 (Failed: 1, Cancelled 0), Skipped: 1",
                ),
            ),
            (
                run(
                    Some("SucceededWithWarnings"),
                    "",
                    vec![ok(), task("b", "SucceededWithWarnings", "FailureIgnored")],
                ),
                (
                    "True",
                    "Succeeded",
                    "Tasks Completed: 2 (Failed: 1 (Ignored: 1), Cancelled 0), Skipped: 0",
                ),
            ),
            (
                run(
                    Some("Cancelled"),
                    "CancelledRunFinally",
                    vec![task("a", "Skipped", "RunCancelled")],
                ),
                ("False", "Cancelled", "PipelineRun \"pr\" was cancelled"),
            ),
            (
                run(None, "", vec![ok(), task("b", "Running", "")]),
                (
                    "Unknown",
                    "Running",
                    "Tasks Completed: 1 (Failed: 0, Cancelled 0), Incomplete: 1, Skipped: 0",
                ),
            ),
            (
                RunFacts {
                    pending: true,
                    ..run(None, "", vec![task("a", "Pending", "")])
                },
                (
                    "Unknown",
                    "PipelineRunPending",
                    "PipelineRun \"pr\" is pending",
                ),
            ),
            (
                RunFacts {
                    tasks_timeout: Some(Duration::from_secs(1)),
                    pipeline_timeout: Some(Duration::from_secs(3600)),
                    ..run(
                        Some("TimedOut"),
                        "PipelineRunTimeout",
                        vec![task("a", "TimedOut", "TasksTimeout")],
                    )
                },
                (
                    "False",
                    "PipelineRunTimeout",
                    "PipelineRun \"pr\" failed due to tasks failed to finish within \"1s\"",
                ),
            ),
            (
                RunFacts {
                    pipeline_timeout: Some(Duration::from_secs(90)),
                    ..run(
                        Some("TimedOut"),
                        "PipelineRunTimeout",
                        vec![task("a", "TimedOut", "PipelineRunTimeout")],
                    )
                },
                (
                    "False",
                    "PipelineRunTimeout",
                    "PipelineRun \"pr\" failed to finish within \"1m30s\"",
                ),
            ),
        ];
        for (facts, (status, reason, message)) in table {
            let (s, r, m) = condition(&facts);
            assert_eq!(
                (s, r.as_str(), m.as_str()),
                (status, reason, message),
                "{facts:?}"
            );
        }
    }

    #[test]
    fn go_durations_print_as_go_does() {
        for (d, text) in [
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(1), "1s"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::ZERO, "0s"),
        ] {
            assert_eq!(go_duration(d), text);
        }
    }

    #[test]
    fn skipped_tasks_carry_tektons_reasons_and_children_only_what_ran() {
        let facts = run(
            Some("Completed"),
            "Completed",
            vec![
                task("a", "Succeeded", ""),
                task("b", "Skipped", "WhenExpressionsFalse"),
                task("c", "Skipped", "ParentSkipped"),
            ],
        );
        let object = pipeline_run(&facts);
        assert_eq!(
            object["status"]["skippedTasks"],
            json!([
                {"name": "b", "reason": "When Expressions evaluated to false"},
                {"name": "c", "reason": "Parent Tasks were skipped"},
            ])
        );
        assert_eq!(object["status"]["childReferences"][0]["name"], "pr-a");
        assert_eq!(
            object["status"]["childReferences"].as_array().map(Vec::len),
            Some(1)
        );
    }
}
