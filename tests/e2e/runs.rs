//! Real pipelines through `weft run --output json`, asserting the document of
//! semantics.md section 8 and the exit code: one table per question, each row named; the
//! signal, containment and store tests stand on their own.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{
    each_row, finish, plugin_dir, root, run, run_pipeline, signal, spawn_pipeline, weft,
};

/// One `weft run FILE --output json` of a pipeline, and what it must end with.
#[derive(Default)]
struct Case {
    name: &'static str,
    /// Relative to the repository root.
    file: &'static str,
    flags: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    /// Exit code.
    code: i32,
    /// status, reason, tasksStatus, tasksOutcome
    run: [&'static str; 4],
    /// `(name, status, reason)` of these tasks.
    tasks: &'static [(&'static str, &'static str, &'static str)],
    also: Vec<Also>,
}

/// A check of a case beyond the run's status and its tasks' outcomes.
enum Also {
    /// A field of a task's entry (a JSON pointer into it) is this value.
    Field(&'static str, &'static str, Value),
    /// A string field of a task's entry starts with this.
    StartsWith(&'static str, &'static str, &'static str),
    /// A string field of a task's entry contains this.
    Contains(&'static str, &'static str, &'static str),
    /// A field of `run` (a JSON pointer into it) is this value.
    RunField(&'static str, Value),
    /// Stderr, where task logs go, has this.
    Stderr(&'static str),
}

/// Runs a case; every run must end within 60 s (generous: this is no timing test, but a
/// run that hangs fails instead of hanging the suite).
fn run_case(case: Case) {
    let name = case.name;
    let child = weft()
        .arg("run")
        .arg(root().join(case.file))
        .args(["--output", "json"])
        .args(case.flags)
        .envs(case.env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weft starts");
    let (ran, run) = finish_within(child, Duration::from_secs(60));
    assert_eq!(ran.code, case.code, "{name}: exit code; {}", ran.stderr);
    let [status, reason, tasks_status, tasks_outcome] = case.run;
    run.expect_run(status, reason, tasks_status, tasks_outcome);
    run.expect_tasks(case.tasks);
    for also in case.also {
        let field = |task: &str, pointer: &str| {
            run.task(task)
                .pointer(pointer)
                .cloned()
                .unwrap_or(Value::Null)
        };
        let text = |task: &str, pointer: &str| match field(task, pointer) {
            Value::String(text) => text,
            other => panic!("{name}: {task}{pointer} is not a string: {other}"),
        };
        match also {
            Also::Field(task, pointer, value) => {
                assert_eq!(field(task, pointer), value, "{name}: {task}{pointer}")
            }
            Also::StartsWith(task, pointer, start) => {
                let got = text(task, pointer);
                assert!(got.starts_with(start), "{name}: {task}{pointer} is {got:?}")
            }
            Also::Contains(task, pointer, part) => {
                let got = text(task, pointer);
                assert!(got.contains(part), "{name}: {task}{pointer} is {got:?}")
            }
            Also::RunField(pointer, value) => assert_eq!(
                run.0["run"].pointer(pointer),
                Some(&value),
                "{name}: run{pointer}"
            ),
            Also::Stderr(line) => assert!(ran.stderr.contains(line), "{name}: {}", ran.stderr),
        }
    }
}

fn cases(cases: Vec<Case>) {
    each_row(cases, |case| case.name, run_case);
}

const ALL_SUCCEEDED: [&str; 4] = ["Succeeded", "Succeeded", "Succeeded", "Succeeded"];
const ALL_FAILED: [&str; 4] = ["Failed", "Failed", "Failed", "Failed"];
const HALTED: [&str; 4] = ["Succeeded", "Halted", "Completed", "Halted"];

#[test]
fn task_endings_decide_the_statuses_and_the_exit_code() {
    cases(vec![
        Case {
            name: "all succeed; logs go to stderr, prefixed with the task name",
            file: "tests/pipelines/all-succeed.yaml",
            code: 0,
            run: ALL_SUCCEEDED,
            tasks: &[
                ("fetch", "Succeeded", ""),
                ("build", "Succeeded", ""),
                ("lint", "Succeeded", ""),
                ("package", "Succeeded", ""),
                ("report", "Succeeded", ""),
            ],
            also: vec![
                Also::Field("build", "/results/message", json!("build abc123 for linux")),
                Also::StartsWith(
                    "package",
                    "/results/message",
                    "build abc123 for linux in all-succeed-",
                ),
                Also::Field(
                    "report",
                    "/results/message",
                    json!("status=Succeeded outcome=Succeeded"),
                ),
                Also::Field("report", "/finally", json!(true)),
                Also::Field("fetch", "/attempts", json!(1)),
                Also::Stderr("[build] build abc123 for linux"),
            ],
            ..Case::default()
        },
        Case {
            name: "a when-skipped task completes the run; a task ordered after it still runs",
            file: "tests/pipelines/when-skipped.yaml",
            code: 0,
            run: ["Completed", "Completed", "Completed", "Completed"],
            tasks: &[
                ("unit", "Succeeded", ""),
                ("integration", "Skipped", "WhenExpressionsFalse"),
                ("publish", "Succeeded", ""),
            ],
            ..Case::default()
        },
        Case {
            name: "the when holds: every task runs",
            file: "tests/pipelines/when-skipped.yaml",
            flags: &["-p", "mode=full"],
            code: 0,
            run: ALL_SUCCEEDED,
            tasks: &[
                ("unit", "Succeeded", ""),
                ("integration", "Succeeded", ""),
                ("publish", "Succeeded", ""),
            ],
            ..Case::default()
        },
        Case {
            name: "a failure while a sibling runs stops the run; the sibling finishes; finally runs",
            file: "tests/pipelines/failure-while-sibling-runs.yaml",
            code: 1,
            run: ALL_FAILED,
            tasks: &[
                ("fails-fast", "Failed", "Failed"),
                ("slow-sibling", "Succeeded", ""),
                ("after-sibling", "Skipped", "RunStopping"),
                ("cleanup", "Succeeded", ""),
            ],
            also: vec![Also::Field("fails-fast", "/exitCode", json!(4))],
            ..Case::default()
        },
        Case {
            name: "onError continue lets ordered tasks run but not result consumers",
            file: "tests/pipelines/on-error-continue.yaml",
            code: 0,
            run: [
                "SucceededWithWarnings",
                "SucceededWithWarnings",
                "Completed",
                "SucceededWithWarnings",
            ],
            tasks: &[
                ("flaky", "SucceededWithWarnings", "FailureIgnored"),
                ("ordered", "Succeeded", ""),
                ("consumer", "Skipped", "ResultsMissing"),
            ],
            also: vec![Also::Field("flaky", "/exitCode", json!(1))],
            ..Case::default()
        },
        Case {
            name: "onStatus: success + continue",
            file: "tests/pipelines/on-status.yaml",
            flags: &["-p", "code=0"],
            code: 0,
            run: ALL_SUCCEEDED,
            tasks: &[("check", "Succeeded", ""), ("next", "Succeeded", "")],
            ..Case::default()
        },
        Case {
            name: "onStatus: failure + stop (an unmapped non-zero code)",
            file: "tests/pipelines/on-status.yaml",
            flags: &["-p", "code=1"],
            code: 1,
            run: ALL_FAILED,
            tasks: &[
                ("check", "Failed", "Failed"),
                ("next", "Skipped", "RunStopping"),
                ("report", "Succeeded", ""),
            ],
            ..Case::default()
        },
        Case {
            name: "onStatus: failure + continue, as a warning; $(tasks.check.status) is the raw ending",
            file: "tests/pipelines/on-status.yaml",
            flags: &["-p", "code=2"],
            code: 0,
            run: [
                "SucceededWithWarnings",
                "SucceededWithWarnings",
                "Succeeded",
                "SucceededWithWarnings",
            ],
            tasks: &[
                ("check", "SucceededWithWarnings", ""),
                ("next", "Succeeded", ""),
            ],
            also: vec![
                Also::Field("check", "/exitCode", json!(2)),
                Also::Field(
                    "report",
                    "/results/message",
                    json!("Failed Succeeded SucceededWithWarnings"),
                ),
            ],
            ..Case::default()
        },
        Case {
            name: "onStatus: success + halt",
            file: "tests/pipelines/on-status.yaml",
            flags: &["-p", "code=3"],
            code: 0,
            run: HALTED,
            tasks: &[
                ("check", "Succeeded", ""),
                ("next", "Skipped", "RunHalted"),
                ("report", "Succeeded", ""),
            ],
            also: vec![
                Also::RunField("/haltedBy/task", json!("check")),
                Also::RunField("/haltedBy/message", json!("check said 3")),
            ],
            ..Case::default()
        },
        Case {
            name: "a finally task failing after a green DAG fails the run",
            file: "tests/pipelines/finally-fails.yaml",
            code: 1,
            run: ["Failed", "Failed", "Succeeded", "Succeeded"],
            tasks: &[
                ("green", "Succeeded", ""),
                ("upload-logs", "Failed", "Failed"),
            ],
            ..Case::default()
        },
        Case {
            name: "the seed pipeline reports failure in finally",
            file: "examples/build-test-report.yaml",
            flags: &["-p", "testExit=1"],
            code: 1,
            run: ALL_FAILED,
            tasks: &[
                ("build", "Succeeded", ""),
                ("test", "Failed", "Failed"),
                ("report-failure", "Succeeded", ""),
                ("report-success", "Skipped", "WhenExpressionsFalse"),
            ],
            also: vec![Also::Field(
                "report-failure",
                "/results/message",
                json!("commit 0123abc failed (test: Failed)"),
            )],
            ..Case::default()
        },
        Case {
            // The first launch fails (WEFT_FAULT): that task ends Errored without retries,
            // its dependent is skipped, `finally` runs, and the run ends instead of hanging.
            name: "a task that cannot be launched ends Errored and the run ends",
            file: "tests/pipelines/launch-fails.yaml",
            env: &[("WEFT_FAULT", "task-launch-fail")],
            code: 1,
            run: ALL_FAILED,
            tasks: &[
                ("first", "Errored", "LaunchFailed"),
                ("second", "Skipped", "RunStopping"),
                ("cleanup", "Succeeded", ""),
            ],
            also: vec![
                Also::Field("first", "/attempts", json!(1)),
                Also::Contains("first", "/message", "fault point"),
            ],
            ..Case::default()
        },
    ]);
}

#[test]
fn halt_modes() {
    cases(vec![
        Case {
            name: "halt wait lets running siblings finish",
            file: "tests/pipelines/halt-wait.yaml",
            code: 0,
            run: HALTED,
            tasks: &[
                ("gate", "Succeeded", ""),
                ("long-sibling", "Succeeded", ""),
                ("release", "Skipped", "RunHalted"),
                ("notify", "Succeeded", ""),
            ],
            ..Case::default()
        },
        Case {
            // The 1.5 s sibling is cut short.
            name: "halt cancel cancels running siblings without cancelling the run",
            file: "tests/pipelines/halt-cancel.yaml",
            code: 0,
            run: HALTED,
            tasks: &[
                ("gate", "Succeeded", ""),
                ("long-sibling", "Cancelled", "RunHalted"),
                ("release", "Skipped", "RunHalted"),
                ("notify", "Succeeded", ""),
            ],
            ..Case::default()
        },
    ]);
}

#[test]
fn retries() {
    cases(vec![
        Case {
            name: "retries succeed on the last attempt",
            file: "tests/pipelines/retries.yaml",
            code: 0,
            run: ALL_SUCCEEDED,
            tasks: &[("flaky", "Succeeded", "")],
            also: vec![
                Also::Field("flaky", "/attempts", json!(3)),
                Also::Field("flaky", "/results/seen", json!("2/2")),
            ],
            ..Case::default()
        },
        Case {
            name: "exhausted retries fail the task",
            file: "tests/pipelines/retries.yaml",
            flags: &["-p", "failTimes=3"],
            code: 1,
            run: ALL_FAILED,
            tasks: &[("flaky", "Failed", "Failed")],
            also: vec![Also::Field("flaky", "/attempts", json!(3))],
            ..Case::default()
        },
    ]);
}

#[test]
fn timeouts() {
    cases(vec![
        Case {
            name: "a task past its timeout is timed out",
            file: "tests/pipelines/task-timeout.yaml",
            code: 1,
            run: ["Failed", "Failed", "Failed", "TimedOut"],
            tasks: &[
                ("hangs", "TimedOut", "TaskRunTimeout"),
                ("independent", "Succeeded", ""),
            ],
            ..Case::default()
        },
        Case {
            name: "the tasks timeout times out tasks and still runs finally",
            file: "tests/pipelines/tasks-timeout.yaml",
            flags: &["--tasks-timeout", "300ms"],
            code: 1,
            run: ["TimedOut", "PipelineRunTimeout", "Failed", "TimedOut"],
            tasks: &[
                ("slow", "TimedOut", "TasksTimeout"),
                ("never-started", "Skipped", "RunTimedOut"),
                ("still-reports", "Succeeded", ""),
            ],
            also: vec![Also::Field(
                "still-reports",
                "/results/message",
                json!("tasks ended Failed"),
            )],
            ..Case::default()
        },
        Case {
            name: "the pipeline timeout times out the run, finally included",
            file: "tests/pipelines/tasks-timeout.yaml",
            flags: &["--timeout", "300ms"],
            code: 1,
            run: ["TimedOut", "PipelineRunTimeout", "Failed", "TimedOut"],
            tasks: &[
                ("slow", "TimedOut", "PipelineRunTimeout"),
                ("never-started", "Skipped", "RunTimedOut"),
                ("still-reports", "Skipped", "RunTimedOut"),
            ],
            ..Case::default()
        },
    ]);
}

#[test]
fn every_retried_attempt_ends_terminal_in_the_store_with_its_own_outcome() {
    let data = tempfile::tempdir().expect("tempdir");
    let file = crate::support::pipelines().join("retries.yaml");
    let ran = crate::support::run_in(
        data.path(),
        &["run", &file.to_string_lossy(), "--name", "flaky-run"],
        &[],
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let shown = crate::support::run_in(
        data.path(),
        &["runs", "show", "flaky-run", "--output", "json"],
        &[],
    )
    .json();
    let attempts: Vec<(String, String, String, i64)> = shown["attempts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            (
                a["id"].as_str().unwrap_or_default().to_string(),
                a["phase"].as_str().unwrap_or_default().to_string(),
                a["outcome"].as_str().unwrap_or_default().to_string(),
                a["exitCode"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    let expect = |id: &str, outcome: &str, exit: i64| {
        (
            id.to_string(),
            "Terminal".to_string(),
            outcome.to_string(),
            exit,
        )
    };
    let exit_code = attempts.first().map_or(-1, |a| a.3);
    assert_ne!(exit_code, 0, "{attempts:?}");
    assert_eq!(
        attempts,
        vec![
            expect("flaky-run/flaky/0", "Failed", exit_code),
            expect("flaky-run/flaky/1", "Failed", exit_code),
            expect("flaky-run/flaky/2", "Succeeded", 0),
        ]
    );
    // The summary counts the three attempts.
    let text = crate::support::run_in(data.path(), &["runs", "show", "flaky-run"], &[]);
    assert!(text.stdout.contains("flaky-run/flaky/1"), "{}", text.stdout);
}

/// Waits until the spawned run has its first task running (its log dir is not a signal
/// we can rely on, so give the process time to start; the task sleeps 4 s).
fn settle() {
    std::thread::sleep(Duration::from_millis(1200));
}

#[test]
fn ctrl_c_cancels_running_tasks_and_runs_finally() {
    let child = spawn_pipeline("cancel.yaml", &[]);
    settle();
    signal(&child, "-INT");
    let (ran, run) = finish(child);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert_eq!(run.run("status"), "Cancelled");
    assert_eq!(run.run("reason"), "CancelledRunFinally");
    run.expect_tasks(&[
        ("running", "Cancelled", "RunCancelled"),
        ("waiting", "Skipped", "RunCancelled"),
        ("cleanup", "Succeeded", ""),
    ]);
}

#[test]
fn a_second_ctrl_c_cancels_without_finally() {
    // The finally task takes 4 s, so the second Ctrl-C lands while it runs.
    let child = spawn_pipeline("cancel.yaml", &["-p", "cleanupMs=4000"]);
    settle();
    signal(&child, "-INT");
    settle();
    signal(&child, "-INT");
    let (ran, run) = finish(child);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert_eq!(run.run("status"), "Cancelled");
    assert_eq!(run.run("reason"), "Cancelled");
    run.expect_tasks(&[
        ("running", "Cancelled", "RunCancelled"),
        ("waiting", "Skipped", "RunCancelled"),
        ("cleanup", "Cancelled", "RunCancelled"),
    ]);
}

#[test]
fn sigterm_stops_gracefully_letting_running_tasks_finish() {
    let child = spawn_pipeline("cancel.yaml", &["-p", "sleepMs=2500"]);
    settle();
    signal(&child, "-TERM");
    let (ran, run) = finish(child);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert_eq!(run.run("status"), "Cancelled");
    assert_eq!(run.run("reason"), "StoppedRunFinally");
    run.expect_tasks(&[
        ("running", "Succeeded", ""),
        ("waiting", "Skipped", "RunCancelled"),
        ("cleanup", "Succeeded", ""),
    ]);
}

#[test]
fn misbehaving_plugins_are_contained_and_neighbours_unaffected() {
    let plugins = plugin_dir();
    let plugins = plugins.to_string_lossy();
    // Without an HTTP grant, hostile (which imports wasi:http) never starts.
    let (ran, run) = run_pipeline("contained.yaml", &["--plugins", &plugins]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    run.expect_tasks(&[
        ("spins", "SucceededWithWarnings", "FailureIgnored"),
        ("neighbour", "Succeeded", ""),
    ]);
    let message = run.task("spins")["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("wasi:http/") && message.contains("not instantiated"),
        "{message}"
    );

    // Granted, it starts: the loop is stopped at its timeout, the request is denied.
    let (ran, run) = run_pipeline(
        "contained.yaml",
        &["--plugins", &plugins, "--allow-http", "allowed.invalid"],
    );
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    run.expect_tasks(&[
        ("spins", "TimedOut", "TaskRunTimeout"),
        ("wants-network", "SucceededWithWarnings", "FailureIgnored"),
        ("neighbour", "Succeeded", ""),
    ]);
    let message = run.task("wants-network")["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.starts_with("blocked:"), "{message}");
    assert!(
        ran.stderr
            .contains("denied: not among this task's allowed hosts"),
        "{}",
        ran.stderr
    );

    // Granted to one task only: the other never starts.
    let (ran, run) = run_pipeline(
        "contained.yaml",
        &[
            "--plugins",
            &plugins,
            "--allow-http",
            "wants-network=allowed.invalid",
        ],
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let spins = run.task("spins")["message"].as_str().unwrap_or_default();
    assert!(spins.contains("not instantiated"), "{spins}");
    let wants = run.task("wants-network")["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        wants.starts_with("blocked:"),
        "it ran and its request was denied: {wants}"
    );
    let ran = run_pipeline_raw(&[
        "--plugins",
        &plugins,
        "--allow-http",
        "nope=allowed.invalid",
    ]);
    assert_eq!(ran.code, 2);
    assert!(ran.stderr.contains("no task `nope`"), "{}", ran.stderr);
}

fn run_pipeline_raw(extra: &[&str]) -> crate::support::Ran {
    let path = crate::support::pipelines().join("contained.yaml");
    let path = path.to_string_lossy().into_owned();
    let mut args = vec!["run", path.as_str(), "--output", "json"];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn text_output_shows_a_live_view_and_a_summary() {
    let example = crate::support::root().join("examples/early-exit.yaml");
    let example = example.to_string_lossy();
    let ran = run(&["run", &example]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    for expected in [
        "▶ check",
        "↷ build",
        "RunHalted",
        "TASK",
        "notify (finally)",
        "Succeeded (halted early by check: no changes since the last release)",
        "$(tasks.status) Completed",
        "[notify] pipeline ended: Halted (Completed)",
    ] {
        assert!(
            ran.stdout.contains(expected),
            "missing {expected:?} in:\n{}",
            ran.stdout
        );
    }
    // Not a terminal: no colour codes.
    assert!(!ran.stdout.contains('\u{1b}'), "{}", ran.stdout);
}

/// Waits for `child` at most `limit`; kills it and panics if it is still running.
fn finish_within(
    mut child: std::process::Child,
    limit: Duration,
) -> (crate::support::Ran, crate::support::Run) {
    let started = std::time::Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return finish(child),
            Ok(None) if started.elapsed() < limit => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let output = child.wait_with_output().expect("weft was killed");
                panic!(
                    "the run did not end within {limit:?}\n--- stderr\n{}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        }
    }
}

#[test]
fn bad_flags_exit_2_saying_what_is_wrong() {
    struct Bad {
        name: &'static str,
        flags: &'static [&'static str],
        /// Stderr has this (when given).
        says: Option<&'static str>,
    }
    let rows = vec![
        Bad {
            name: "a param without a value",
            flags: &["-p", "nonsense"],
            says: Some("expected NAME=VALUE"),
        },
        Bad {
            name: "a timeout that is not a duration",
            flags: &["--timeout", "soon"],
            says: Some("--timeout soon"),
        },
        Bad {
            name: "an unknown flag",
            flags: &["--bogus"],
            says: None,
        },
    ];
    each_row(
        rows,
        |bad| bad.name,
        |bad| {
            let mut args = vec!["run", "tests/pipelines/all-succeed.yaml"];
            args.extend_from_slice(bad.flags);
            let ran = run(&args);
            assert_eq!(ran.code, 2, "{}: {}", bad.name, ran.stderr);
            if let Some(says) = bad.says {
                assert!(ran.stderr.contains(says), "{}: {}", bad.name, ran.stderr);
            }
        },
    );
}
