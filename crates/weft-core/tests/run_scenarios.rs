//! Scenario tests for the run state machine: feed event sequences into `RunState`, assert
//! the report. The harness plays a well-behaved engine: every `Start` is acknowledged
//! with `task_started`, every `Cancel` is confirmed with `task_cancelled`.
//!
//! One table per question (how an ending maps to outcome and flow, onStatus, skip reasons,
//! halt, retries, timeouts, cancellation, finally, engine failures), each row named, over
//! named pipeline fixtures shared between rows. What a table would hide (params rendered
//! before an event, stale events, the JSON shape, scale, prior attempts, stalls) has its
//! own test.

use std::collections::BTreeMap;
use std::sync::Arc;
use weft_core::contract::{ParamValue, TaskEnding};
use weft_core::waits::WaitEnding;
use weft_core::{Action, CancelMode, RunContext, RunState, StartTask, load};

enum Step {
    /// End the current attempt of a task.
    End(
        &'static str,
        TaskEnding,
        &'static [(&'static str, &'static str)],
    ),
    TimedOut(&'static str),
    Cancel(CancelMode),
    TasksTimeout,
    FinallyTimeout,
    PipelineTimeout,
    InfraError(&'static str),
    /// The engine could not launch the task's current (held) attempt.
    LaunchFailed(&'static str),
    /// A wait (approval, intervention, gate) was decided.
    Decided(&'static str, WaitEnding),
}

use Step::*;

fn ok(task: &'static str) -> Step {
    End(task, TaskEnding::Success, &[])
}
fn ok_with(task: &'static str, results: &'static [(&'static str, &'static str)]) -> Step {
    End(task, TaskEnding::Success, results)
}
fn fail(task: &'static str, exit_code: i32) -> Step {
    End(
        task,
        TaskEnding::Failure {
            message: "boom".into(),
            exit_code,
        },
        &[],
    )
}
fn halt(task: &'static str) -> Step {
    End(
        task,
        TaskEnding::Halt {
            message: "nothing to do".into(),
        },
        &[],
    )
}
fn self_skip(task: &'static str) -> Step {
    End(
        task,
        TaskEnding::Skip {
            message: "n/a".into(),
        },
        &[],
    )
}
fn warn(task: &'static str) -> Step {
    End(
        task,
        TaskEnding::Warning {
            message: "hm".into(),
        },
        &[],
    )
}

struct Harness {
    run: RunState,
    /// Current attempt of every task the engine is running.
    running: BTreeMap<String, (usize, u32)>,
    starts: Vec<StartTask>,
    finished: usize,
    finally_started: usize,
    log: Vec<String>,
    /// `task#attempt outcome reason` of every attempt that ended and was retried.
    retried: Vec<String>,
    /// Tasks whose starts stay queued (the engine has not begun them): a launch failure
    /// happens to a queued attempt.
    held: Vec<&'static str>,
}

impl Harness {
    fn new(yaml: &str, params: &[(&str, &str)]) -> Harness {
        Harness::holding(yaml, params, &[])
    }

    /// Like `new`, but the `held` tasks are never begun: their starts stay queued.
    fn holding(yaml: &str, params: &[(&str, &str)], held: &[&'static str]) -> Harness {
        let supplied: BTreeMap<String, ParamValue> = params
            .iter()
            .map(|(k, v)| (k.to_string(), ParamValue::Str(v.to_string())))
            .collect();
        let plan = match load(yaml, "pipeline.yaml", &supplied, None) {
            Ok(plan) => plan,
            Err(diagnostics) => panic!(
                "invalid fixture:\n{}",
                diagnostics
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        };
        let context = RunContext {
            run_name: "run-1".into(),
            run_uid: "uid-1".into(),
            bound_workspaces: ["src".to_string()].into(),
        };
        let mut harness = Harness {
            run: RunState::new(Arc::new(plan), context),
            running: BTreeMap::new(),
            starts: Vec::new(),
            finished: 0,
            finally_started: 0,
            log: Vec::new(),
            retried: Vec::new(),
            held: held.to_vec(),
        };
        let actions = harness.run.start();
        harness.apply(actions);
        harness
    }

    fn apply(&mut self, actions: Vec<Action>) {
        let mut queue: std::collections::VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Start(start) => {
                    self.running
                        .insert(start.name.clone(), (start.node, start.attempt));
                    if self.held.contains(&start.name.as_str()) {
                        self.log
                            .push(format!("queue {}#{}", start.name, start.attempt));
                    } else {
                        self.log
                            .push(format!("start {}#{}", start.name, start.attempt));
                        queue.extend(self.run.task_started(start.node, start.attempt));
                    }
                    self.starts.push(*start);
                }
                Action::Cancel {
                    node,
                    attempt,
                    reason,
                } => {
                    let name = self.run.plan().nodes[node].name.clone();
                    self.log.push(format!("cancel {name} {reason}"));
                    self.running.remove(&name);
                    queue.extend(self.run.task_cancelled(node, attempt));
                }
                Action::Wait(wait) => {
                    let start = wait.start;
                    self.running
                        .insert(start.name.clone(), (start.node, start.attempt));
                    self.log
                        .push(format!("wait {}#{}", start.name, start.attempt));
                    self.starts.push(start);
                }
                // Pipelines in pipelines are tested in `pipelines_in_pipelines.rs`.
                Action::Transition { .. } | Action::ChildStarted(_) | Action::ChildEnded { .. } => {
                }
                Action::AttemptRetried {
                    name,
                    attempt,
                    outcome,
                    reason,
                    ..
                } => self
                    .retried
                    .push(format!("{name}#{attempt} {} {reason}", outcome.as_str())),
                Action::FinallyStarted => {
                    self.log.push("finally".into());
                    self.finally_started += 1;
                }
                Action::Finished(_) => self.finished += 1,
            }
        }
    }

    fn current(&mut self, task: &str) -> (usize, u32) {
        match self.running.remove(task) {
            Some(current) => current,
            None => panic!("task {task} is not running; log: {:?}", self.log),
        }
    }

    fn step(&mut self, step: Step) {
        let actions = match step {
            End(task, ending, results) => {
                let (node, attempt) = self.current(task);
                let results = results
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                self.run.task_ended(node, attempt, ending, results)
            }
            TimedOut(task) => {
                let (node, attempt) = self.current(task);
                self.run.task_timed_out(node, attempt)
            }
            Cancel(mode) => self.run.cancel(mode),
            TasksTimeout => self.run.tasks_timeout(),
            FinallyTimeout => self.run.finally_timeout(),
            PipelineTimeout => self.run.pipeline_timeout(),
            InfraError(message) => self.run.infra_error(message),
            LaunchFailed(task) => {
                let (node, attempt) = self.current(task);
                self.run
                    .task_launch_failed(node, attempt, "plugin `echo` was not prepared")
            }
            Decided(task, ending) => {
                let (node, attempt) = self.current(task);
                self.run.task_waited(node, attempt, &ending)
            }
        };
        self.apply(actions);
    }

    fn params_of(&self, task: &str, attempt: u32) -> BTreeMap<String, ParamValue> {
        self.starts
            .iter()
            .find(|start| start.name == task && start.attempt == attempt)
            .map(|start| start.params.clone())
            .unwrap_or_else(|| panic!("{task}#{attempt} never started"))
    }
}

/// One row of a table: a pipeline fixture, the events the engine feeds in, and the report
/// the run must end with.
struct Row {
    name: &'static str,
    /// A named pipeline fixture (below).
    pipeline: fn() -> String,
    /// `-p` params.
    params: &'static [(&'static str, &'static str)],
    /// Tasks whose starts stay queued: the engine never begins them.
    held: &'static [&'static str],
    steps: Vec<Step>,
    /// status, reason, tasksStatus, tasksOutcome
    run: [&'static str; 4],
    /// name, status, reason, attempts
    tasks: &'static [(&'static str, &'static str, &'static str, u32)],
    /// What else the row checks, beyond the report.
    also: &'static [Check],
}

impl Default for Row {
    fn default() -> Row {
        Row {
            name: "",
            pipeline: || panic!("a row without a pipeline"),
            params: &[],
            held: &[],
            steps: Vec::new(),
            run: [""; 4],
            tasks: &[],
            also: &[],
        }
    }
}

/// A check of a row beyond its report.
enum Check {
    /// The engine's log, exactly (`start t#n`, `queue t#n`, `cancel t reason`, `finally`).
    Log(&'static [&'static str]),
    /// The engine's log has this line.
    Logged(&'static str),
    /// `task#attempt` started with param `name` rendered as this string.
    Param(&'static str, u32, &'static str, &'static str),
    /// `task#attempt outcome reason` of every attempt that ended and was retried, in order.
    Retried(&'static [&'static str]),
    /// How many times `finally` started.
    FinallyStarted(usize),
    /// A task's exit code in the report.
    ExitCode(&'static str, Option<i32>),
    /// A task's message in the report.
    Message(&'static str, &'static str),
    /// The task the run says halted it.
    HaltedBy(&'static str),
}

/// Runs a row: feeds its steps, asserts the run finished once with nothing left running,
/// then its report and its other checks.
fn run_row(row: Row) {
    let name = row.name;
    let mut harness = Harness::holding(&(row.pipeline)(), row.params, row.held);
    for step in row.steps {
        harness.step(step);
    }
    let log = &harness.log;
    assert_eq!(
        harness.finished, 1,
        "{name}: Finished exactly once; log {log:?}"
    );
    assert!(
        harness.running.is_empty(),
        "{name}: still running {:?}",
        harness.running
    );
    let report = harness.run.report();
    let got_run = [
        report.run.status.as_str(),
        report.run.reason.as_str(),
        report.run.tasks_status.as_str(),
        report.run.tasks_outcome.as_str(),
    ];
    assert_eq!(got_run, row.run, "{name}: run; log {log:?}");
    let got_tasks: Vec<(&str, &str, &str, u32)> = report
        .tasks
        .iter()
        .map(|task| {
            (
                task.name.as_str(),
                task.status.as_str(),
                task.reason.as_str(),
                task.attempts,
            )
        })
        .collect();
    assert_eq!(got_tasks, row.tasks, "{name}: tasks; log {log:?}");
    let task = |task: &str| match report.tasks.iter().find(|t| t.name == task) {
        Some(found) => found,
        None => panic!("{name}: no task {task} in the report"),
    };
    for check in row.also {
        match check {
            Check::Log(expected) => assert_eq!(log, expected, "{name}: log"),
            Check::Logged(line) => assert!(
                log.iter().any(|l| l == line),
                "{name}: {line:?} not in log {log:?}"
            ),
            Check::Param(task, attempt, param, value) => assert_eq!(
                harness.params_of(task, *attempt)[*param],
                ParamValue::Str(value.to_string()),
                "{name}: param {param} of {task}#{attempt}"
            ),
            Check::Retried(expected) => {
                assert_eq!(harness.retried, *expected, "{name}: retried attempts")
            }
            Check::FinallyStarted(times) => assert_eq!(
                harness.finally_started, *times,
                "{name}: finally started; log {log:?}"
            ),
            Check::ExitCode(of, code) => {
                assert_eq!(task(of).exit_code, *code, "{name}: exit code of {of}")
            }
            Check::Message(of, message) => {
                assert_eq!(task(of).message, *message, "{name}: message of {of}")
            }
            Check::HaltedBy(by) => assert_eq!(
                report.run.halted_by.as_ref().map(|h| h.task.as_str()),
                Some(*by),
                "{name}: halted by"
            ),
        }
    }
}

/// Runs every row of a table, each on its own (as Go's `t.Run`): a failing row is reported
/// by name and does not hide the rows after it.
fn table(rows: Vec<Row>) {
    let mut failed = Vec::new();
    for row in rows {
        let name = row.name;
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_row(row))).is_err() {
            failed.push(name);
        }
    }
    assert!(failed.is_empty(), "rows failed: {failed:?}");
}

/// A pipeline from task and finally YAML (each a YAML list, indented by 4).
fn pipeline(tasks: &str, finally: &str) -> String {
    let mut yaml = String::from(
        "apiVersion: weft.dev/v1\nkind: Pipeline\nmetadata:\n  name: demo\nspec:\n  params:\n    - name: go\n      default: \"yes\"\n  workspaces:\n    - name: src\n  tasks:\n",
    );
    yaml.push_str(tasks);
    if !finally.is_empty() {
        yaml.push_str("  finally:\n");
        yaml.push_str(finally);
    }
    yaml
}

const ECHO: &str = "taskRef: {name: echo}";

// Pipeline fixtures, named after their shape; rows of different tables share them.

/// No tasks at all.
fn empty() -> String {
    "apiVersion: weft.dev/v1\nkind: Pipeline\nmetadata: {name: empty}\nspec: {}\n".into()
}

/// `a`, then `b` and `c`, then `d` after both.
fn diamond() -> String {
    pipeline(
        &format!(
            "    - {{name: a, {ECHO}}}\n    - {{name: b, {ECHO}, runAfter: [a]}}\n    - {{name: c, {ECHO}, runAfter: [a]}}\n    - {{name: d, {ECHO}, runAfter: [b, c]}}\n"
        ),
        "",
    )
}

/// One task `a`.
fn single() -> String {
    pipeline(&format!("    - {{name: a, {ECHO}}}\n"), "")
}

/// `a` and `b` side by side, `c` after `a`.
fn two_roots_and_a_child() -> String {
    pipeline(
        &format!(
            "    - {{name: a, {ECHO}}}\n    - {{name: b, {ECHO}}}\n    - {{name: c, {ECHO}, runAfter: [a]}}\n"
        ),
        "",
    )
}

/// `a` with the chain `c`, `d` behind it, `b` beside it; finally `fin`.
fn sibling_and_chain_with_finally() -> String {
    pipeline(
        &format!(
            "    - {{name: a, {ECHO}}}\n    - {{name: b, {ECHO}}}\n    - {{name: c, {ECHO}, runAfter: [a]}}\n    - {{name: d, {ECHO}, runAfter: [c]}}\n"
        ),
        &format!("    - {{name: fin, {ECHO}}}\n"),
    )
}

/// `a` (`onError: continue`), `b` ordered after it, `c` consuming its result.
fn on_error_continue() -> String {
    pipeline(
        &format!(
            "    - {{name: a, {ECHO}, onError: continue}}\n    - {{name: b, {ECHO}, runAfter: [a]}}\n    - name: c\n      {ECHO}\n      params: [{{name: x, value: \"$(tasks.a.results.out)\"}}]\n"
        ),
        "",
    )
}

/// `check` mapping exit codes 2, 3, 4, 5 and 78 with `onStatus`; `next` after it; finally
/// `fin`.
fn on_status() -> String {
    pipeline(
        &format!(
            "    - name: check\n      {ECHO}\n      onStatus:\n        - {{exitCodes: [2], outcome: warning}}\n        - {{exitCodes: [3], outcome: success, flow: halt}}\n        - {{exitCodes: [4], outcome: failure, flow: continue}}\n        - {{exitCodes: [5], outcome: success}}\n        - {{exitCodes: [78], outcome: skipped}}\n    - {{name: next, {ECHO}, runAfter: [check]}}\n"
        ),
        &format!("    - {{name: fin, {ECHO}}}\n"),
    )
}

/// `a` runs when `$(params.go)` is `yes`; `b` after it.
fn when_go() -> String {
    pipeline(
        &format!(
            "    - name: a\n      {ECHO}\n      when: [{{input: \"$(params.go)\", operator: in, values: [\"yes\"]}}]\n    - {{name: b, {ECHO}, runAfter: [a]}}\n"
        ),
        "",
    )
}

/// `a` runs unless `$(params.go)` is `no`; dependents by order, by status, by result, and
/// a grandchild behind the result consumer.
fn when_go_with_every_kind_of_dependent() -> String {
    pipeline(
        &format!(
            "    - name: a\n      {ECHO}\n      when: [{{input: \"$(params.go)\", operator: notin, values: [\"no\"]}}]\n    - {{name: by-order, {ECHO}, runAfter: [a]}}\n    - name: by-status\n      {ECHO}\n      params: [{{name: s, value: \"$(tasks.a.status)\"}}]\n    - name: by-result\n      {ECHO}\n      params: [{{name: r, value: \"$(tasks.a.results.x)\"}}]\n    - {{name: grandchild, {ECHO}, runAfter: [by-result]}}\n"
        ),
        "",
    )
}

/// `a`, `b`, and `c` after `b` behind a `when` that is always false.
fn never_when_after_a_sibling() -> String {
    pipeline(
        &format!(
            "    - {{name: a, {ECHO}}}\n    - {{name: b, {ECHO}}}\n    - name: c\n      {ECHO}\n      runAfter: [b]\n      when: [{{input: x, operator: in, values: [y]}}]\n"
        ),
        "",
    )
}

/// `gate` (with `halt: MODE`), `slow` beside it, `after` behind it; finally `fin` rendering
/// `$(tasks.status)/$(tasks.outcome)`.
fn halt_pipeline(mode: &str) -> String {
    pipeline(
        &format!(
            "    - {{name: gate, {ECHO}, halt: {mode}}}\n    - {{name: slow, {ECHO}}}\n    - {{name: after, {ECHO}, runAfter: [gate]}}\n"
        ),
        &format!(
            "    - name: fin\n      {ECHO}\n      params: [{{name: s, value: \"$(tasks.status)/$(tasks.outcome)\"}}]\n"
        ),
    )
}
fn halt_wait() -> String {
    halt_pipeline("wait")
}
fn halt_cancel() -> String {
    halt_pipeline("cancel")
}

/// `flaky` with 2 retries, rendering `$(context.task.retry-count)/$(context.pipelineTask.retries)`.
fn flaky_counting_retries() -> String {
    pipeline(
        &format!(
            "    - name: flaky\n      {ECHO}\n      retries: 2\n      params: [{{name: n, value: \"$(context.task.retry-count)/$(context.pipelineTask.retries)\"}}]\n"
        ),
        "",
    )
}

/// `flaky` with 1 retry.
fn flaky_once() -> String {
    pipeline(&format!("    - {{name: flaky, {ECHO}, retries: 1}}\n"), "")
}

/// `slow` (timeout 1m30s, 1 retry), `next` after it.
fn slow_with_a_timeout_and_a_retry() -> String {
    pipeline(
        &format!(
            "    - {{name: slow, {ECHO}, timeout: 1m30s, retries: 1}}\n    - {{name: next, {ECHO}, runAfter: [slow]}}\n"
        ),
        "",
    )
}

/// `a`, `b` after it; finally `fin`.
fn chain_with_finally() -> String {
    pipeline(
        &format!("    - {{name: a, {ECHO}}}\n    - {{name: b, {ECHO}, runAfter: [a]}}\n"),
        &format!("    - {{name: fin, {ECHO}}}\n"),
    )
}

/// `a`, `b` after it; finally `fin` only when `$(tasks.status)` is `Failed`.
fn chain_with_finally_on_failure() -> String {
    pipeline(
        &format!("    - {{name: a, {ECHO}}}\n    - {{name: b, {ECHO}, runAfter: [a]}}\n"),
        &format!(
            "    - name: fin\n      {ECHO}\n      when: [{{input: \"$(tasks.status)\", operator: in, values: [Failed]}}]\n"
        ),
    )
}

/// `a`; finally `fin`.
fn single_with_finally() -> String {
    pipeline(
        &format!("    - {{name: a, {ECHO}}}\n"),
        &format!("    - {{name: fin, {ECHO}}}\n"),
    )
}

/// `a`; finally `f1` and `f2`.
fn single_with_two_finally() -> String {
    pipeline(
        &format!("    - {{name: a, {ECHO}}}\n"),
        &format!("    - {{name: f1, {ECHO}}}\n    - {{name: f2, {ECHO}}}\n"),
    )
}

/// The two finally tasks of Tekton's "exit handler" blog post.
fn notify() -> String {
    pipeline(
        &format!("    - {{name: build, {ECHO}}}\n"),
        &format!(
            "    - name: notify-failure\n      {ECHO}\n      when: [{{input: \"$(tasks.status)\", operator: in, values: [\"Failed\", \"None\"]}}]\n    - name: notify-success\n      {ECHO}\n      when: [{{input: \"$(tasks.status)\", operator: in, values: [\"Succeeded\", \"Completed\"]}}]\n"
        ),
    )
}

/// `a` (`onError: continue`) and `b`; finally `report` rendering their status, reason and
/// results, and `needs-a` consuming `a`'s result.
fn finally_reading_tasks() -> String {
    pipeline(
        &format!("    - {{name: a, {ECHO}, onError: continue}}\n    - {{name: b, {ECHO}}}\n"),
        &format!(
            "    - name: report\n      {ECHO}\n      params:\n        - {{name: a, value: \"$(tasks.a.status)/$(tasks.a.reason)\"}}\n        - {{name: b, value: \"$(tasks.b.status)/$(tasks.b.results.digest)\"}}\n    - name: needs-a\n      {ECHO}\n      params: [{{name: x, value: \"$(tasks.a.results.digest)\"}}]\n"
        ),
    )
}

/// `a`, `b` after `a`, `c` on its own; finally `fin`.
fn launch_pipeline(a_fields: &str) -> String {
    pipeline(
        &format!(
            "    - {{name: a, {ECHO}{a_fields}}}\n    - {{name: b, {ECHO}, runAfter: [a]}}\n    - {{name: c, {ECHO}}}\n"
        ),
        &format!("    - {{name: fin, {ECHO}}}\n"),
    )
}
fn launch() -> String {
    launch_pipeline("")
}
/// `launch`, with retries, onError and onStatus on `a`.
fn launch_with_every_policy() -> String {
    launch_pipeline(
        ", retries: 2, onError: continue, onStatus: [{exitCodes: [1], outcome: success}]",
    )
}

fn errored(task: &'static str, reason: &str, message: &str) -> Step {
    End(
        task,
        TaskEnding::Errored {
            reason: reason.into(),
            message: message.into(),
        },
        &[],
    )
}

const ALL_SUCCEEDED: [&str; 4] = ["Succeeded", "Succeeded", "Succeeded", "Succeeded"];
const ALL_COMPLETED: [&str; 4] = ["Completed", "Completed", "Completed", "Completed"];
const ALL_FAILED: [&str; 4] = ["Failed", "Failed", "Failed", "Failed"];
/// A run that succeeded with warnings, every task having run.
const WARNED: [&str; 4] = [
    "SucceededWithWarnings",
    "SucceededWithWarnings",
    "Succeeded",
    "SucceededWithWarnings",
];
/// A run that succeeded with warnings, some task skipped.
const WARNED_SOME_SKIPPED: [&str; 4] = [
    "SucceededWithWarnings",
    "SucceededWithWarnings",
    "Completed",
    "SucceededWithWarnings",
];
const HALTED: [&str; 4] = ["Succeeded", "Halted", "Completed", "Halted"];

#[test]
fn a_task_ending_decides_its_outcome_what_runs_next_and_the_run_status() {
    table(vec![
        Row {
            name: "no tasks: finishes at start",
            pipeline: empty,
            run: ALL_SUCCEEDED,
            ..Row::default()
        },
        Row {
            name: "all succeed: d starts only once both parents are done",
            pipeline: diamond,
            steps: vec![ok("a"), ok("c"), ok("b"), ok("d")],
            run: ALL_SUCCEEDED,
            tasks: &[
                ("a", "Succeeded", "", 1),
                ("b", "Succeeded", "", 1),
                ("c", "Succeeded", "", 1),
                ("d", "Succeeded", "", 1),
            ],
            also: &[Check::Log(&[
                "start a#0",
                "start b#0",
                "start c#0",
                "start d#0",
            ])],
            ..Row::default()
        },
        Row {
            name: "failure while a sibling runs: the run stops, the sibling finishes, finally runs",
            pipeline: sibling_and_chain_with_finally,
            steps: vec![fail("a", 2), ok("b"), ok("fin")],
            run: ALL_FAILED,
            tasks: &[
                ("a", "Failed", "Failed", 1),
                ("b", "Succeeded", "", 1),
                ("c", "Skipped", "RunStopping", 0),
                ("d", "Skipped", "RunStopping", 0),
                ("fin", "Succeeded", "", 1),
            ],
            ..Row::default()
        },
        Row {
            name: "onError continue: runAfter dependents run, result consumers are skipped",
            pipeline: on_error_continue,
            steps: vec![fail("a", 1), ok("b")],
            run: WARNED_SOME_SKIPPED,
            tasks: &[
                ("a", "SucceededWithWarnings", "FailureIgnored", 1),
                ("b", "Succeeded", "", 1),
                ("c", "Skipped", "ResultsMissing", 0),
            ],
            ..Row::default()
        },
        Row {
            name: "plugin skip skips its dependents; plugin warning warns the run",
            pipeline: two_roots_and_a_child,
            steps: vec![self_skip("a"), warn("b")],
            run: WARNED_SOME_SKIPPED,
            tasks: &[
                ("a", "Skipped", "SelfSkipped", 1),
                ("b", "SucceededWithWarnings", "", 1),
                ("c", "Skipped", "ParentSkipped", 0),
            ],
            ..Row::default()
        },
        Row {
            name: "errored task fails the run with its reason",
            pipeline: single,
            steps: vec![errored("a", "MemoryLimitExceeded", "oom")],
            run: ALL_FAILED,
            tasks: &[("a", "Errored", "MemoryLimitExceeded", 1)],
            ..Row::default()
        },
    ]);
}

#[test]
fn on_status_maps_an_exit_code_to_an_outcome_and_a_flow() {
    table(vec![
        Row {
            name: "unmatched code: failure + stop",
            pipeline: on_status,
            steps: vec![fail("check", 1), ok("fin")],
            run: ALL_FAILED,
            tasks: &[
                ("check", "Failed", "Failed", 1),
                ("next", "Skipped", "RunStopping", 0),
                ("fin", "Succeeded", "", 1),
            ],
            ..Row::default()
        },
        Row {
            name: "2: warning + continue",
            pipeline: on_status,
            steps: vec![fail("check", 2), ok("next"), ok("fin")],
            run: WARNED,
            tasks: &[
                ("check", "SucceededWithWarnings", "", 1),
                ("next", "Succeeded", "", 1),
                ("fin", "Succeeded", "", 1),
            ],
            ..Row::default()
        },
        Row {
            name: "3: success + halt ends the run early and successfully",
            pipeline: on_status,
            steps: vec![fail("check", 3), ok("fin")],
            run: HALTED,
            tasks: &[
                ("check", "Succeeded", "", 1),
                ("next", "Skipped", "RunHalted", 0),
                ("fin", "Succeeded", "", 1),
            ],
            also: &[Check::ExitCode("check", Some(3)), Check::HaltedBy("check")],
            ..Row::default()
        },
        Row {
            name: "4: failure + continue runs dependents but fails the run",
            pipeline: on_status,
            steps: vec![fail("check", 4), ok("next"), ok("fin")],
            run: ALL_FAILED,
            tasks: &[
                ("check", "Failed", "Failed", 1),
                ("next", "Succeeded", "", 1),
                ("fin", "Succeeded", "", 1),
            ],
            ..Row::default()
        },
        Row {
            name: "5: success + continue",
            pipeline: on_status,
            steps: vec![fail("check", 5), ok("next"), ok("fin")],
            run: ALL_SUCCEEDED,
            tasks: &[
                ("check", "Succeeded", "", 1),
                ("next", "Succeeded", "", 1),
                ("fin", "Succeeded", "", 1),
            ],
            ..Row::default()
        },
        Row {
            name: "78: skipped makes dependents ParentSkipped",
            pipeline: on_status,
            steps: vec![fail("check", 78), ok("fin")],
            run: ALL_COMPLETED,
            tasks: &[
                ("check", "Skipped", "SelfSkipped", 1),
                ("next", "Skipped", "ParentSkipped", 0),
                ("fin", "Succeeded", "", 1),
            ],
            ..Row::default()
        },
    ]);
}

#[test]
fn skip_reasons() {
    table(vec![
        Row {
            name: "when false: skipped, its runAfter dependent still runs",
            pipeline: when_go,
            params: &[("go", "no")],
            steps: vec![ok("b")],
            run: ALL_COMPLETED,
            tasks: &[
                ("a", "Skipped", "WhenExpressionsFalse", 0),
                ("b", "Succeeded", "", 1),
            ],
            ..Row::default()
        },
        Row {
            name: "when false propagates through results, not through order or status",
            pipeline: when_go_with_every_kind_of_dependent,
            params: &[("go", "no")],
            steps: vec![ok("by-order"), ok("by-status")],
            run: ALL_COMPLETED,
            tasks: &[
                ("a", "Skipped", "WhenExpressionsFalse", 0),
                ("by-order", "Succeeded", "", 1),
                ("by-status", "Succeeded", "", 1),
                ("by-result", "Skipped", "ResultsMissing", 0),
                ("grandchild", "Skipped", "ParentSkipped", 0),
            ],
            ..Row::default()
        },
        Row {
            name: "RunStopping wins over WhenExpressionsFalse",
            pipeline: never_when_after_a_sibling,
            steps: vec![fail("a", 1), ok("b")],
            run: ALL_FAILED,
            tasks: &[
                ("a", "Failed", "Failed", 1),
                ("b", "Succeeded", "", 1),
                ("c", "Skipped", "RunStopping", 0),
            ],
            ..Row::default()
        },
    ]);
}

#[test]
fn halt_modes() {
    table(vec![
        Row {
            name: "wait: running siblings finish",
            pipeline: halt_wait,
            steps: vec![halt("gate"), ok("slow"), ok("fin")],
            run: HALTED,
            tasks: &[
                ("gate", "Succeeded", "", 1),
                ("slow", "Succeeded", "", 1),
                ("after", "Skipped", "RunHalted", 0),
                ("fin", "Succeeded", "", 1),
            ],
            also: &[Check::Param("fin", 0, "s", "Completed/Halted")],
            ..Row::default()
        },
        Row {
            name: "cancel: running siblings are cancelled, the run is not",
            pipeline: halt_cancel,
            steps: vec![halt("gate"), ok("fin")],
            run: HALTED,
            tasks: &[
                ("gate", "Succeeded", "", 1),
                ("slow", "Cancelled", "RunHalted", 1),
                ("after", "Skipped", "RunHalted", 0),
                ("fin", "Succeeded", "", 1),
            ],
            also: &[Check::Logged("cancel slow RunHalted")],
            ..Row::default()
        },
    ]);
}

#[test]
fn retries() {
    table(vec![
        Row {
            name: "succeed on the last attempt; each retried attempt keeps its own outcome",
            pipeline: flaky_counting_retries,
            steps: vec![
                fail("flaky", 1),
                errored("flaky", "Trap", "trap"),
                ok("flaky"),
            ],
            run: ALL_SUCCEEDED,
            tasks: &[("flaky", "Succeeded", "", 3)],
            also: &[
                Check::Param("flaky", 0, "n", "0/2"),
                Check::Param("flaky", 2, "n", "2/2"),
                Check::Retried(&["flaky#0 Failed Failed", "flaky#1 Errored Trap"]),
            ],
            ..Row::default()
        },
        Row {
            name: "exhausted: the task fails; its last attempt ends with it, not as retried",
            pipeline: flaky_once,
            steps: vec![fail("flaky", 1), fail("flaky", 7)],
            run: ALL_FAILED,
            tasks: &[("flaky", "Failed", "Failed", 2)],
            also: &[Check::Retried(&["flaky#0 Failed Failed"])],
            ..Row::default()
        },
    ]);
}

#[test]
fn timeouts() {
    table(vec![
        Row {
            name: "task timeout: retried, then times the task out",
            pipeline: slow_with_a_timeout_and_a_retry,
            steps: vec![TimedOut("slow"), TimedOut("slow")],
            run: ["Failed", "Failed", "Failed", "TimedOut"],
            tasks: &[
                ("slow", "TimedOut", "TaskRunTimeout", 2),
                ("next", "Skipped", "RunStopping", 0),
            ],
            also: &[Check::Retried(&["slow#0 TimedOut TaskRunTimeout"])],
            ..Row::default()
        },
        Row {
            name: "tasks timeout: running tasks time out, unstarted are skipped, finally runs",
            pipeline: chain_with_finally_on_failure,
            steps: vec![TasksTimeout, ok("fin")],
            run: ["TimedOut", "PipelineRunTimeout", "Failed", "TimedOut"],
            tasks: &[
                ("a", "TimedOut", "TasksTimeout", 1),
                ("b", "Skipped", "RunTimedOut", 0),
                ("fin", "Succeeded", "", 1),
            ],
            ..Row::default()
        },
        Row {
            name: "pipeline timeout: everything stops, finally is skipped",
            pipeline: chain_with_finally,
            steps: vec![PipelineTimeout],
            run: ["TimedOut", "PipelineRunTimeout", "Failed", "TimedOut"],
            tasks: &[
                ("a", "TimedOut", "PipelineRunTimeout", 1),
                ("b", "Skipped", "RunTimedOut", 0),
                ("fin", "Skipped", "RunTimedOut", 0),
            ],
            ..Row::default()
        },
        Row {
            name: "finally timeout: running finally tasks time out",
            pipeline: single_with_two_finally,
            steps: vec![ok("a"), ok("f1"), FinallyTimeout],
            run: ["Failed", "Failed", "Succeeded", "Succeeded"],
            tasks: &[
                ("a", "Succeeded", "", 1),
                ("f1", "Succeeded", "", 1),
                ("f2", "TimedOut", "FinallyTimeout", 1),
            ],
            ..Row::default()
        },
    ]);
}

#[test]
fn cancellation_modes() {
    table(vec![
        Row {
            name: "Cancelled: cancels running tasks, skips finally",
            pipeline: chain_with_finally,
            steps: vec![Cancel(CancelMode::Cancelled)],
            run: ["Cancelled", "Cancelled", "None", "Cancelled"],
            tasks: &[
                ("a", "Cancelled", "RunCancelled", 1),
                ("b", "Skipped", "RunCancelled", 0),
                ("fin", "Skipped", "RunCancelled", 0),
            ],
            also: &[Check::FinallyStarted(0)],
            ..Row::default()
        },
        Row {
            name: "CancelledRunFinally: cancels running tasks, then runs finally",
            pipeline: chain_with_finally,
            steps: vec![Cancel(CancelMode::CancelledRunFinally), ok("fin")],
            run: ["Cancelled", "CancelledRunFinally", "None", "Cancelled"],
            tasks: &[
                ("a", "Cancelled", "RunCancelled", 1),
                ("b", "Skipped", "RunCancelled", 0),
                ("fin", "Succeeded", "", 1),
            ],
            also: &[Check::FinallyStarted(1)],
            ..Row::default()
        },
        Row {
            name: "StoppedRunFinally: running tasks finish",
            pipeline: chain_with_finally,
            steps: vec![Cancel(CancelMode::StoppedRunFinally), ok("a"), ok("fin")],
            run: ["Cancelled", "StoppedRunFinally", "None", "Cancelled"],
            tasks: &[
                ("a", "Succeeded", "", 1),
                ("b", "Skipped", "RunCancelled", 0),
                ("fin", "Succeeded", "", 1),
            ],
            ..Row::default()
        },
        Row {
            name: "a second cancel (Ctrl-C) escalates and cancels finally",
            pipeline: chain_with_finally,
            steps: vec![
                Cancel(CancelMode::CancelledRunFinally),
                Cancel(CancelMode::Cancelled),
            ],
            run: ["Cancelled", "Cancelled", "None", "Cancelled"],
            tasks: &[
                ("a", "Cancelled", "RunCancelled", 1),
                ("b", "Skipped", "RunCancelled", 0),
                ("fin", "Cancelled", "RunCancelled", 1),
            ],
            ..Row::default()
        },
    ]);
}

#[test]
fn finally_and_tasks_status() {
    table(vec![
        Row {
            name: "a finally task failing after a green DAG fails the run",
            pipeline: single_with_finally,
            steps: vec![ok("a"), fail("fin", 1)],
            run: ["Failed", "Failed", "Succeeded", "Succeeded"],
            tasks: &[("a", "Succeeded", "", 1), ("fin", "Failed", "Failed", 1)],
            ..Row::default()
        },
        Row {
            name: "when on $(tasks.status) after success",
            pipeline: notify,
            steps: vec![ok("build"), ok("notify-success")],
            run: ["Completed", "Completed", "Succeeded", "Succeeded"],
            tasks: &[
                ("build", "Succeeded", "", 1),
                ("notify-failure", "Skipped", "WhenExpressionsFalse", 0),
                ("notify-success", "Succeeded", "", 1),
            ],
            ..Row::default()
        },
        Row {
            name: "when on $(tasks.status) after failure",
            pipeline: notify,
            steps: vec![fail("build", 1), ok("notify-failure")],
            run: ALL_FAILED,
            tasks: &[
                ("build", "Failed", "Failed", 1),
                ("notify-failure", "Succeeded", "", 1),
                ("notify-success", "Skipped", "WhenExpressionsFalse", 0),
            ],
            ..Row::default()
        },
        Row {
            name: "finally sees status, reason and results; skips on missing results",
            pipeline: finally_reading_tasks,
            steps: vec![
                fail("a", 1),
                ok_with("b", &[("digest", "sha256:1")]),
                ok("report"),
            ],
            run: WARNED,
            tasks: &[
                ("a", "SucceededWithWarnings", "FailureIgnored", 1),
                ("b", "Succeeded", "", 1),
                ("report", "Succeeded", "", 1),
                ("needs-a", "Skipped", "ResultsMissing", 0),
            ],
            also: &[
                Check::Param("report", 0, "a", "Failed/FailureIgnored"),
                Check::Param("report", 0, "b", "Succeeded/sha256:1"),
            ],
            ..Row::default()
        },
    ]);
}

#[test]
fn launch_failures_and_infra_errors() {
    const FAILED_A: &[(&str, &str, &str, u32)] = &[
        ("a", "Errored", "LaunchFailed", 1),
        ("b", "Skipped", "RunStopping", 0),
        ("c", "Succeeded", "", 1),
        ("fin", "Succeeded", "", 1),
    ];
    const NOT_PREPARED: &str = "plugin `echo` was not prepared";
    table(vec![
        Row {
            name: "infra error: cancels running tasks, skips the rest and finally",
            pipeline: chain_with_finally,
            steps: vec![InfraError("StoreUnavailable")],
            run: ["Errored", "StoreUnavailable", "Completed", "Completed"],
            tasks: &[
                ("a", "Cancelled", "InfrastructureError", 1),
                ("b", "Skipped", "InfrastructureError", 0),
                ("fin", "Skipped", "InfrastructureError", 0),
            ],
            ..Row::default()
        },
        Row {
            name: "launch of a root task fails: it ends Errored, the run goes on",
            pipeline: launch,
            held: &["a"],
            steps: vec![LaunchFailed("a"), ok("c"), ok("fin")],
            run: ALL_FAILED,
            tasks: FAILED_A,
            also: &[Check::Message("a", NOT_PREPARED)],
            ..Row::default()
        },
        Row {
            name: "retries, onError and onStatus are about what a plugin did: not applied",
            pipeline: launch_with_every_policy,
            held: &["a"],
            steps: vec![LaunchFailed("a"), ok("c"), ok("fin")],
            run: ALL_FAILED,
            tasks: FAILED_A,
            also: &[Check::Message("a", NOT_PREPARED)],
            ..Row::default()
        },
        Row {
            name: "launch of a finally task fails",
            pipeline: launch,
            held: &["fin"],
            steps: vec![ok("a"), ok("c"), ok("b"), LaunchFailed("fin")],
            run: ["Failed", "Failed", "Succeeded", "Succeeded"],
            tasks: &[
                ("a", "Succeeded", "", 1),
                ("b", "Succeeded", "", 1),
                ("c", "Succeeded", "", 1),
                ("fin", "Errored", "LaunchFailed", 1),
            ],
            also: &[Check::Message("fin", NOT_PREPARED)],
            ..Row::default()
        },
        Row {
            name: "a queued task the run cancels is confirmed, never launched",
            pipeline: launch,
            held: &["a"],
            steps: vec![Cancel(CancelMode::CancelledRunFinally), ok("fin")],
            run: ["Cancelled", "CancelledRunFinally", "None", "Cancelled"],
            tasks: &[
                ("a", "Cancelled", "RunCancelled", 1),
                ("b", "Skipped", "RunCancelled", 0),
                ("c", "Cancelled", "RunCancelled", 1),
                ("fin", "Succeeded", "", 1),
            ],
            ..Row::default()
        },
    ]);
}

#[test]
fn results_flow_into_params_with_implicit_edges_and_array_expansion() {
    let yaml = "apiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata: {name: demo}\nspec:\n  params:\n    - {name: flags, type: array, default: [\"-v\", \"-x\"]}\n    - {name: cfg, type: object, properties: {mode: {type: string}}, default: {mode: fast}}\n  workspaces: [{name: src}, {name: cache, optional: true}]\n  tasks:\n    - name: build\n      taskRef: {name: echo}\n    - name: push\n      taskRef: {name: echo}\n      params:\n        - {name: image, value: \"img@$(tasks.build.results.digest)\"}\n        - {name: args, value: [\"$(params.flags[*])\", \"$(params.cfg.mode)\", \"$(params.flags[1])\"]}\n        - {name: all, value: \"$(params.flags[*])\"}\n        - {name: ctx, value: \"$(context.pipelineRun.name)/$(context.pipelineRun.uid)/$(context.pipeline.name)\"}\n        - {name: ws, value: \"$(workspaces.src.bound)/$(workspaces.cache.bound)\"}\n        - {name: state, value: \"$(tasks.build.status)\"}\n        - {name: obj, value: {k: \"$(params.cfg.mode)\"}}\n";
    let mut harness = Harness::new(yaml, &[]);
    assert_eq!(
        harness.log,
        ["start build#0"],
        "push waits for build's result"
    );
    harness.step(ok_with("build", &[("digest", "sha256:abc")]));
    harness.step(ok("push"));
    let params = harness.params_of("push", 0);
    assert_eq!(params["image"], ParamValue::Str("img@sha256:abc".into()));
    assert_eq!(
        params["args"],
        ParamValue::Array(vec!["-v".into(), "-x".into(), "fast".into(), "-x".into()])
    );
    assert_eq!(
        params["all"],
        ParamValue::Array(vec!["-v".into(), "-x".into()])
    );
    assert_eq!(params["ctx"], ParamValue::Str("run-1/uid-1/demo".into()));
    assert_eq!(params["ws"], ParamValue::Str("true/false".into()));
    assert_eq!(params["state"], ParamValue::Str("Succeeded".into()));
    assert_eq!(
        params["obj"],
        ParamValue::Object([("k".to_string(), "fast".to_string())].into())
    );
    assert_eq!(harness.finished, 1);
}

#[test]
fn stale_and_duplicate_events_are_ignored() {
    let mut harness = Harness::new(
        &pipeline(&format!("    - {{name: a, {ECHO}, retries: 1}}\n"), ""),
        &[],
    );
    harness.step(fail("a", 1));
    // The first attempt reporting again (a replayed event) changes nothing.
    assert!(
        harness
            .run
            .task_ended(0, 0, TaskEnding::Success, BTreeMap::new())
            .is_empty()
    );
    assert!(harness.run.task_cancelled(0, 0).is_empty());
    harness.step(ok("a"));
    assert!(
        harness
            .run
            .task_ended(0, 1, TaskEnding::Success, BTreeMap::new())
            .is_empty()
    );
    assert!(harness.run.cancel(CancelMode::Cancelled).is_empty());
    assert_eq!(harness.finished, 1);
    assert_eq!(harness.run.report().tasks[0].attempts, 2);
}

#[test]
fn report_serializes_to_the_documented_json_shape() {
    let mut harness = Harness::new(&on_status(), &[]);
    harness.step(End(
        "check",
        TaskEnding::Failure {
            message: "done early".into(),
            exit_code: 3,
        },
        &[("k", "v")],
    ));
    harness.step(ok("fin"));
    let json = match serde_json::to_value(harness.run.report()) {
        Ok(json) => json,
        Err(error) => panic!("{error}"),
    };
    assert_eq!(
        json,
        serde_json::json!({
            "run": {"name": "run-1", "status": "Succeeded", "reason": "Halted",
                    "tasksStatus": "Completed", "tasksOutcome": "Halted",
                    "haltedBy": {"task": "check", "message": "done early"},
                    "attempt": 1,
                    "operation": {"status": "Succeeded", "operationStatus": "PhaseSucceeded"}},
            "tasks": [
                {"name": "check", "finally": false, "status": "Succeeded", "reason": "",
                 "exitCode": 3, "attempts": 1, "results": {"k": "v"}, "message": "done early",
                 "operation": {"status": "Succeeded", "operationStatus": "PhaseSucceeded"}},
                {"name": "next", "finally": false, "status": "Skipped", "reason": "RunHalted",
                 "exitCode": null, "attempts": 0, "results": {},
                 "operation": {"status": "NotDeployed", "operationStatus": "Canceled"}},
                {"name": "fin", "finally": true, "status": "Succeeded", "reason": "",
                 "exitCode": 0, "attempts": 1, "results": {},
                 "operation": {"status": "Succeeded", "operationStatus": "PhaseSucceeded"}}
            ]
        })
    );
}

#[test]
fn a_long_chain_runs_without_rescanning() {
    // 20,000 tasks in a chain: each event touches only the next task. A quadratic
    // implementation would take minutes here.
    let mut yaml = String::from(
        "apiVersion: weft.dev/v1\nkind: Pipeline\nmetadata: {name: chain}\nspec:\n  tasks:\n    - {name: t0, taskRef: {name: echo}}\n",
    );
    for i in 1..20_000 {
        yaml.push_str(&format!(
            "    - {{name: t{i}, taskRef: {{name: echo}}, runAfter: [t{}]}}\n",
            i - 1
        ));
    }
    let mut harness = Harness::new(&yaml, &[]);
    for i in 0..20_000 {
        let name = format!("t{i}");
        let (node, attempt) = harness.current(&name);
        let actions = harness
            .run
            .task_ended(node, attempt, TaskEnding::Success, BTreeMap::new());
        harness.apply(actions);
    }
    assert_eq!(harness.finished, 1);
    assert_eq!(harness.run.report().run.status, "Succeeded");
}

#[test]
fn recovery_errors_are_not_retried() {
    use std::collections::BTreeMap;
    let yaml = "apiVersion: weft.dev/v1\nkind: Pipeline\nmetadata: {name: r}\nspec:\n  tasks:\n    - name: a\n      retries: 3\n      taskRef: {name: exit}\n";
    let plan = weft_core::load(yaml, "r.yaml", &BTreeMap::new(), None).expect("valid");
    let mut state = weft_core::RunState::new(
        std::sync::Arc::new(plan),
        weft_core::RunContext {
            run_name: "r".into(),
            run_uid: "r".into(),
            bound_workspaces: Default::default(),
        },
    );
    let _ = state.start();
    let _ = state.task_started(0, 0);
    let actions = state.task_ended(
        0,
        0,
        weft_core::contract::TaskEnding::Errored {
            reason: "EngineRestarted".into(),
            message: "the engine restarted".into(),
        },
        BTreeMap::new(),
    );
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, weft_core::Action::Start(_))),
        "{actions:?}"
    );
    let report = state.report();
    assert_eq!(report.tasks[0].status, "Errored");
    assert_eq!(report.tasks[0].attempts, 1);
}

#[test]
fn attempts_of_an_earlier_engine_count_in_the_report_not_in_retry_count() {
    use std::collections::BTreeMap;
    let yaml = "apiVersion: weft.dev/v1\nkind: Pipeline\nmetadata: {name: r}\nspec:\n  tasks:\n    - name: a\n      taskRef: {name: exit}\n      params: [{name: n, value: \"$(context.task.retry-count)\"}]\n    - name: b\n      taskRef: {name: exit}\n";
    let plan = weft_core::load(yaml, "r.yaml", &BTreeMap::new(), None).expect("valid");
    let mut state =
        weft_core::RunState::new(std::sync::Arc::new(plan), weft_core::RunContext::default());
    // startOver after a crash: `a` had two stored attempts, `b` none.
    state.set_prior_attempts(|task| if task == "a" { 2 } else { 0 });
    let actions = state.start();
    let start = actions
        .iter()
        .find_map(|a| match a {
            weft_core::Action::Start(s) if s.name == "a" => Some(s.clone()),
            _ => None,
        })
        .expect("a starts");
    assert_eq!(start.params["n"], ParamValue::Str("0".into()));
    let report = state.report();
    assert_eq!(report.tasks[0].attempts, 3);
    assert_eq!(report.tasks[1].attempts, 1);
}

/// `a`, `b` after `a`, `c` on its own; finally `fin`.
fn started_state(yaml: &str) -> (RunState, Vec<Action>) {
    let plan = load(yaml, "p.yaml", &BTreeMap::new(), None).expect("valid");
    let mut state = RunState::new(Arc::new(plan), RunContext::default());
    let actions = state.start();
    (state, actions)
}

#[test]
fn a_launch_failure_of_an_attempt_being_cancelled_ends_it_as_the_cancel_said() {
    let (mut state, _) = started_state(&launch());
    // a and c are queued; the user cancels before the engine launches either.
    let actions = state.cancel(CancelMode::CancelledRunFinally);
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Cancel { node: 0, .. })),
        "{actions:?}"
    );
    let _ = state.task_launch_failed(0, 0, "plugin `echo` was not prepared");
    let _ = state.task_cancelled(2, 0);
    let report = state.report();
    assert_eq!(
        (
            report.tasks[0].status.as_str(),
            report.tasks[0].reason.as_str()
        ),
        ("Cancelled", "RunCancelled")
    );
    // Stale and repeated launch failures change nothing.
    assert!(state.task_launch_failed(0, 0, "again").is_empty());
    assert!(state.task_launch_failed(0, 7, "stale").is_empty());
}

#[test]
fn abandon_ends_a_stalled_run_from_any_point() {
    // Stalls as the engine can leave a run: cancels never confirmed, starts never begun,
    // and tasks still pending behind them.
    type Stall = fn(&mut RunState) -> Vec<Action>;
    let stalls: Vec<(&str, Stall)> = vec![
        ("nothing begun", |_| Vec::new()),
        ("running, then a cancel never confirmed", |state| {
            let mut actions = state.task_started(0, 0);
            actions.extend(state.cancel(CancelMode::CancelledRunFinally));
            actions
        }),
        (
            "an infra error whose cancels were never confirmed",
            |state| state.infra_error("lost the store"),
        ),
        ("finally queued, never begun", |state| {
            let mut actions = Vec::new();
            for node in [0, 2, 1] {
                actions.extend(state.task_started(node, 0));
                actions.extend(state.task_ended(node, 0, TaskEnding::Success, BTreeMap::new()));
            }
            actions
        }),
    ];
    for (name, stall) in stalls {
        let (mut state, mut actions) = started_state(&launch());
        actions.extend(stall(&mut state));
        assert!(!state.is_finished(), "{name}: not stalled");
        assert!(!state.unfinished_tasks().is_empty(), "{name}");
        let actions = state.abandon("the run stalled");
        let finished: Vec<_> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Finished(summary) => Some(summary),
                _ => None,
            })
            .collect();
        assert_eq!(finished.len(), 1, "{name}: {actions:?}");
        assert_eq!(finished[0].status.as_str(), "Errored", "{name}");
        assert!(state.is_finished(), "{name}");
        assert!(state.unfinished_tasks().is_empty(), "{name}");
        assert!(
            state
                .report()
                .tasks
                .iter()
                .all(|t| t.status != "Cancelling" && t.status != "Queued" && t.status != "Pending"),
            "{name}: {:?}",
            state.report().tasks
        );
        assert!(state.abandon("again").is_empty(), "{name}: finished once");
    }
}

/// A pipeline whose `deploy` waits for `gate` (an approval of two) after `build`, with
/// `notify` in finally.
fn approval_gate() -> String {
    wait_pipeline("")
}

/// A build, then in `finally` an approval of the release notes and a notice after it.
fn approval_in_finally() -> String {
    pipeline(
        &format!("    - {{name: build, {ECHO}}}\n"),
        &format!(
            "    - name: sign-off\n      taskRef: {{apiVersion: weft.dev/v1, kind: ApprovalTask}}\n      params: [{{name: approvers, value: [alice]}}]\n    - {{name: notify, {ECHO}}}\n"
        ),
    )
}

/// [`approval_gate`] whose wait only warns when it fails.
fn approval_gate_continue() -> String {
    wait_pipeline("      onError: continue\n")
}

fn wait_pipeline(gate_fields: &str) -> String {
    pipeline(
        &format!(
            "    - {{name: build, {ECHO}}}\n    - name: gate\n      runAfter: [build]\n      taskRef: {{apiVersion: weft.dev/v1, kind: ApprovalTask}}\n      params:\n        - {{name: approvers, value: [alice, bob]}}\n        - {{name: numberOfApprovalsRequired, value: \"2\"}}\n{gate_fields}    - {{name: deploy, {ECHO}, runAfter: [gate]}}\n"
        ),
        &format!("    - {{name: notify, {ECHO}}}\n"),
    )
}

fn approved() -> WaitEnding {
    WaitEnding::Approved {
        approvers: vec!["alice".into(), "bob".into()],
    }
}

fn rejected() -> WaitEnding {
    WaitEnding::Rejected {
        by: "bob".into(),
        message: "not today".into(),
    }
}

/// Waits end like tasks: approved goes on, rejected or timed out stops the run (or
/// only warns with `onError: continue`); a cancel or a timeout ends an open wait as it
/// ends a running task, a graceful stop ends it as a task that never started.
#[test]
fn waits_end_as_their_decision_says() {
    table(vec![
        Row {
            name: "approved: the run goes on",
            pipeline: approval_gate,
            steps: vec![
                ok("build"),
                Decided("gate", approved()),
                ok("deploy"),
                ok("notify"),
            ],
            run: ["Succeeded", "Succeeded", "Succeeded", "Succeeded"],
            tasks: &[
                ("build", "Succeeded", "", 1),
                ("gate", "Succeeded", "", 1),
                ("deploy", "Succeeded", "", 1),
                ("notify", "Succeeded", "", 1),
            ],
            also: &[
                Check::Log(&[
                    "start build#0",
                    "wait gate#0",
                    "start deploy#0",
                    "finally",
                    "start notify#0",
                ]),
                Check::Message("gate", "approved by alice, bob"),
            ],
            ..Row::default()
        },
        Row {
            name: "rejected: deploy never starts, finally runs",
            pipeline: approval_gate,
            steps: vec![ok("build"), Decided("gate", rejected()), ok("notify")],
            run: ["Failed", "Failed", "Failed", "Failed"],
            tasks: &[
                ("build", "Succeeded", "", 1),
                ("gate", "Rejected", "Rejected", 1),
                ("deploy", "Skipped", "RunStopping", 0),
                ("notify", "Succeeded", "", 1),
            ],
            also: &[Check::Message("gate", "rejected by bob: not today")],
            ..Row::default()
        },
        Row {
            name: "approval timed out",
            pipeline: approval_gate,
            steps: vec![
                ok("build"),
                Decided("gate", WaitEnding::ApprovalTimedOut),
                ok("notify"),
            ],
            run: ["Failed", "Failed", "Failed", "Failed"],
            tasks: &[
                ("build", "Succeeded", "", 1),
                ("gate", "Rejected", "ApprovalTimedOut", 1),
                ("deploy", "Skipped", "RunStopping", 0),
                ("notify", "Succeeded", "", 1),
            ],
            ..Row::default()
        },
        Row {
            name: "rejected with onError: continue only warns",
            pipeline: approval_gate_continue,
            steps: vec![
                ok("build"),
                Decided("gate", rejected()),
                ok("deploy"),
                ok("notify"),
            ],
            run: [
                "SucceededWithWarnings",
                "SucceededWithWarnings",
                "Succeeded",
                "SucceededWithWarnings",
            ],
            tasks: &[
                ("build", "Succeeded", "", 1),
                ("gate", "SucceededWithWarnings", "FailureIgnored", 1),
                ("deploy", "Succeeded", "", 1),
                ("notify", "Succeeded", "", 1),
            ],
            ..Row::default()
        },
        Row {
            name: "an approval in finally waits like any other",
            pipeline: approval_in_finally,
            steps: vec![ok("build"), ok("notify"), Decided("sign-off", rejected())],
            run: ["Failed", "Failed", "Succeeded", "Succeeded"],
            tasks: &[
                ("build", "Succeeded", "", 1),
                ("sign-off", "Rejected", "Rejected", 1),
                ("notify", "Succeeded", "", 1),
            ],
            also: &[Check::FinallyStarted(1)],
            ..Row::default()
        },
        Row {
            name: "cancelled while waiting: the wait is cancelled as a running task",
            pipeline: approval_gate,
            steps: vec![ok("build"), Cancel(CancelMode::Cancelled)],
            run: ["Cancelled", "Cancelled", "None", "Cancelled"],
            tasks: &[
                ("build", "Succeeded", "", 1),
                ("gate", "Cancelled", "RunCancelled", 1),
                ("deploy", "Skipped", "RunCancelled", 0),
                ("notify", "Skipped", "RunCancelled", 0),
            ],
            ..Row::default()
        },
        Row {
            name: "stopped while waiting: the wait ends, finally runs",
            pipeline: approval_gate,
            steps: vec![
                ok("build"),
                Cancel(CancelMode::StoppedRunFinally),
                ok("notify"),
            ],
            run: ["Cancelled", "StoppedRunFinally", "None", "Cancelled"],
            tasks: &[
                ("build", "Succeeded", "", 1),
                ("gate", "Cancelled", "RunCancelled", 1),
                ("deploy", "Skipped", "RunCancelled", 0),
                ("notify", "Succeeded", "", 1),
            ],
            ..Row::default()
        },
        Row {
            name: "tasks timeout while waiting: the wait times out as a running task",
            pipeline: approval_gate,
            steps: vec![ok("build"), TasksTimeout, ok("notify")],
            run: ["TimedOut", "PipelineRunTimeout", "Failed", "TimedOut"],
            tasks: &[
                ("build", "Succeeded", "", 1),
                ("gate", "TimedOut", "TasksTimeout", 1),
                ("deploy", "Skipped", "RunTimedOut", 0),
                ("notify", "Succeeded", "", 1),
            ],
            ..Row::default()
        },
    ]);
}

/// A decision that arrives after the wait was cancelled (the run was cancelled while
/// someone was voting) changes nothing.
#[test]
fn a_decision_after_the_wait_was_cancelled_is_ignored() {
    let mut harness = Harness::new(&approval_gate(), &[]);
    harness.step(ok("build"));
    let (node, attempt) = harness.running["gate"];
    harness.step(Cancel(CancelMode::Cancelled));
    assert_eq!(harness.finished, 1, "log {:?}", harness.log);
    let actions = harness.run.task_waited(node, attempt, &approved());
    assert!(actions.is_empty(), "{actions:?}");
    let report = harness.run.report();
    let gate = report
        .tasks
        .iter()
        .find(|t| t.name == "gate")
        .expect("gate");
    assert_eq!(gate.status.as_str(), "Cancelled");
}

/// A `--failed-only` re-run keeps the tasks that succeeded in the previous attempt (their
/// outcome and results, without running them) and runs everything else again.
#[test]
fn a_failed_only_rerun_keeps_successes_and_runs_the_rest() {
    use weft_core::{Carried, Outcome};
    let yaml = pipeline(
        &format!(
            "    - {{name: a, {ECHO}}}\n    - {{name: b, {ECHO}, runAfter: [a]}}\n    - {{name: c, {ECHO}, runAfter: [a]}}\n    - name: d\n      {ECHO}\n      runAfter: [b, c]\n      params: [{{name: from-b, value: \"$(tasks.b.results.out)\"}}]\n"
        ),
        &format!("    - {{name: fin, {ECHO}}}\n"),
    );
    let supplied = BTreeMap::new();
    let plan = match load(&yaml, "pipeline.yaml", &supplied, None) {
        Ok(plan) => plan,
        Err(d) => panic!("{d:?}"),
    };
    let mut run = RunState::new(
        Arc::new(plan),
        RunContext {
            run_name: "run-1".into(),
            run_uid: "uid-1".into(),
            bound_workspaces: ["src".to_string()].into(),
        },
    );
    // Attempt 1: a and b succeeded (b with a warning), c failed, d was skipped, fin ran.
    run.set_carried(|task| {
        let kept = |outcome, results: &[(&str, &str)]| Carried {
            outcome,
            results: results
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            message: String::new(),
            exit_code: Some(0),
            from_attempt: 1,
        };
        match task {
            "a" => Some(kept(Outcome::Succeeded, &[])),
            "b" => Some(kept(
                Outcome::SucceededWithWarnings,
                &[("out", "from-attempt-1")],
            )),
            "c" => Some(kept(Outcome::Failed, &[])),
            "fin" => Some(kept(Outcome::Succeeded, &[])),
            _ => None,
        }
    });
    let mut started = Vec::new();
    let mut actions = run.start();
    let mut report_d_param = None;
    while !actions.is_empty() {
        let mut next = Vec::new();
        for action in actions {
            if let Action::Start(start) = action {
                started.push(start.name.clone());
                if start.name == "d" {
                    report_d_param = start.params.get("from-b").cloned();
                }
                next.extend(run.task_started(start.node, start.attempt));
                next.extend(run.task_ended(
                    start.node,
                    start.attempt,
                    TaskEnding::Success,
                    BTreeMap::new(),
                ));
            }
        }
        actions = next;
    }
    assert_eq!(
        started,
        ["c", "d", "fin"],
        "only what did not succeed runs, and finally"
    );
    assert_eq!(
        report_d_param,
        Some(ParamValue::Str("from-attempt-1".into())),
        "kept results flow on"
    );
    let report = run.report();
    let row = |name: &str| {
        let task = report.tasks.iter().find(|t| t.name == name).expect(name);
        (task.status.clone(), task.reason.clone(), task.attempts)
    };
    assert_eq!(row("a"), ("Succeeded".into(), "Carried".into(), 0));
    assert_eq!(
        row("b"),
        ("SucceededWithWarnings".into(), "Carried".into(), 0)
    );
    assert_eq!(row("c"), ("Succeeded".into(), "".into(), 1));
    assert_eq!(row("fin"), ("Succeeded".into(), "".into(), 1));
    assert_eq!(report.run.status, "SucceededWithWarnings");
    assert!(
        report.tasks[0].message.starts_with("kept from attempt 1"),
        "{}",
        report.tasks[0].message
    );
}

/// A run that waited in its concurrency group's queue or for its scheduled time and is
/// cancelled or displaced by a newer run (`withdraw`), and a running run a newer one
/// displaces (`supersede`, `cancelInProgress`): who runs, the status, the reason and the
/// `<status, operationStatus>` pair.
#[test]
fn withdrawn_and_superseded_runs() {
    enum How {
        /// Before `start`: `withdraw(superseded)`.
        Withdraw(bool),
        /// After `a` began: `supersede()`.
        SupersedeRunning,
        /// After `a` began: `withdraw(true)` acts as `supersede`.
        WithdrawRunning,
    }
    let yaml = pipeline(
        &format!("    - {{name: a, {ECHO}}}\n    - {{name: b, {ECHO}, runAfter: [a]}}\n"),
        &format!("    - {{name: fin, {ECHO}}}\n"),
    );
    // (row, how, tasks that ran, status, reason, operation pair)
    type Row = (
        &'static str,
        How,
        &'static [&'static str],
        &'static str,
        &'static str,
        (&'static str, &'static str),
    );
    let rows: &[Row] = &[
        (
            "queued run cancelled",
            How::Withdraw(false),
            &[],
            "Cancelled",
            "Cancelled",
            ("NotDeployed", "Canceled"),
        ),
        (
            "queued run superseded",
            How::Withdraw(true),
            &[],
            "Cancelled",
            "Superseded",
            ("NotDeployed", "Canceled"),
        ),
        (
            "running run superseded: finally runs",
            How::SupersedeRunning,
            &["a", "fin"],
            "Cancelled",
            "Superseded",
            ("Failed", "Canceled"),
        ),
        (
            "withdraw of a started run supersedes it",
            How::WithdrawRunning,
            &["a", "fin"],
            "Cancelled",
            "Superseded",
            ("Failed", "Canceled"),
        ),
    ];
    for (row, how, ran, status, reason, pair) in rows {
        let plan = match load(&yaml, "pipeline.yaml", &BTreeMap::new(), None) {
            Ok(plan) => plan,
            Err(d) => panic!("{d:?}"),
        };
        let mut run = RunState::new(
            Arc::new(plan),
            RunContext {
                run_name: "run-1".into(),
                run_uid: "uid-1".into(),
                bound_workspaces: ["src".to_string()].into(),
            },
        );
        let mut started = Vec::new();
        let mut pending = match how {
            How::Withdraw(superseded) => {
                let mut actions = run.withdraw(*superseded);
                // The engine may still call `start`; nothing starts.
                actions.extend(run.start());
                actions
            }
            How::SupersedeRunning | How::WithdrawRunning => run.start(),
        };
        let mut displaced = false;
        while !pending.is_empty() {
            let mut next = Vec::new();
            for action in std::mem::take(&mut pending) {
                match action {
                    Action::Start(start) => {
                        started.push(start.name.clone());
                        next.extend(run.task_started(start.node, start.attempt));
                        if start.name == "a" && !displaced {
                            displaced = true;
                            next.extend(match how {
                                How::WithdrawRunning => run.withdraw(true),
                                _ => run.supersede(),
                            });
                        } else {
                            next.extend(run.task_ended(
                                start.node,
                                start.attempt,
                                TaskEnding::Success,
                                BTreeMap::new(),
                            ));
                        }
                    }
                    Action::Cancel { node, attempt, .. } => {
                        next.extend(run.task_cancelled(node, attempt))
                    }
                    _ => {}
                }
            }
            pending = next;
        }
        assert!(run.is_finished(), "{row}: the run ends");
        assert_eq!(started, *ran, "{row}: tasks that ran");
        let report = run.report();
        assert_eq!(
            (report.run.status.as_str(), report.run.reason.as_str()),
            (*status, *reason),
            "{row}"
        );
        let op = serde_json::to_value(report.run.operation).expect("json");
        assert_eq!(
            (op["status"].as_str(), op["operationStatus"].as_str()),
            (Some(pair.0), Some(pair.1)),
            "{row}"
        );
    }
}
