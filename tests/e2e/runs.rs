//! Real pipelines through `weft run --output json`, asserting the document of
//! semantics.md section 8 and the exit code, one scenario per rule family.

use std::time::Duration;

use crate::support::{finish, plugin_dir, run, run_pipeline, signal, spawn_pipeline};

#[test]
fn all_tasks_succeed() {
    let (ran, run) = run_pipeline("all-succeed.yaml", &[]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    run.expect_run("Succeeded", "Succeeded", "Succeeded", "Succeeded");
    run.expect_tasks(&[
        ("fetch", "Succeeded", ""),
        ("build", "Succeeded", ""),
        ("lint", "Succeeded", ""),
        ("package", "Succeeded", ""),
        ("report", "Succeeded", ""),
    ]);
    assert_eq!(
        run.task("build")["results"]["message"],
        "build abc123 for linux"
    );
    let package = run.task("package")["results"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        package.starts_with("build abc123 for linux in all-succeed-"),
        "{package}"
    );
    assert_eq!(
        run.task("report")["results"]["message"],
        "status=Succeeded outcome=Succeeded"
    );
    assert_eq!(run.task("report")["finally"], true);
    assert_eq!(run.task("fetch")["attempts"], 1);
    // Logs go to stderr, prefixed with the task name; stdout holds only the document.
    assert!(
        ran.stderr.contains("[build] build abc123 for linux"),
        "{}",
        ran.stderr
    );
}

#[test]
fn a_when_skipped_task_completes_the_run() {
    let (ran, run) = run_pipeline("when-skipped.yaml", &[]);
    assert_eq!(ran.code, 0);
    run.expect_run("Completed", "Completed", "Completed", "Completed");
    run.expect_tasks(&[
        ("unit", "Succeeded", ""),
        ("integration", "Skipped", "WhenExpressionsFalse"),
        // Ordered after a when-skipped task, it still runs (Tekton).
        ("publish", "Succeeded", ""),
    ]);
    let (_, run) = run_pipeline("when-skipped.yaml", &["-p", "mode=full"]);
    run.expect_run("Succeeded", "Succeeded", "Succeeded", "Succeeded");
}

#[test]
fn a_failure_while_a_sibling_runs_stops_the_run_and_runs_finally() {
    let (ran, run) = run_pipeline("failure-while-sibling-runs.yaml", &[]);
    assert_eq!(ran.code, 1);
    run.expect_run("Failed", "Failed", "Failed", "Failed");
    run.expect_tasks(&[
        ("fails-fast", "Failed", "Failed"),
        // The running sibling is not killed: it finishes.
        ("slow-sibling", "Succeeded", ""),
        ("after-sibling", "Skipped", "RunStopping"),
        ("cleanup", "Succeeded", ""),
    ]);
    assert_eq!(run.task("fails-fast")["exitCode"], 4);
}

#[test]
fn on_error_continue_lets_ordered_tasks_run_but_not_result_consumers() {
    let (ran, run) = run_pipeline("on-error-continue.yaml", &[]);
    assert_eq!(ran.code, 0);
    run.expect_run(
        "SucceededWithWarnings",
        "SucceededWithWarnings",
        "Completed",
        "SucceededWithWarnings",
    );
    run.expect_tasks(&[
        ("flaky", "SucceededWithWarnings", "FailureIgnored"),
        ("ordered", "Succeeded", ""),
        ("consumer", "Skipped", "ResultsMissing"),
    ]);
    assert_eq!(run.task("flaky")["exitCode"], 1);
}

#[test]
fn on_status_gives_all_four_combinations() {
    // success + continue
    let (ran, run) = run_pipeline("on-status.yaml", &["-p", "code=0"]);
    assert_eq!(ran.code, 0);
    run.expect_run("Succeeded", "Succeeded", "Succeeded", "Succeeded");
    run.expect_tasks(&[("check", "Succeeded", ""), ("next", "Succeeded", "")]);

    // failure + stop (an unmapped non-zero code)
    let (ran, run) = run_pipeline("on-status.yaml", &["-p", "code=1"]);
    assert_eq!(ran.code, 1);
    run.expect_run("Failed", "Failed", "Failed", "Failed");
    run.expect_tasks(&[
        ("check", "Failed", "Failed"),
        ("next", "Skipped", "RunStopping"),
        ("report", "Succeeded", ""),
    ]);

    // failure + continue, as a warning
    let (ran, run) = run_pipeline("on-status.yaml", &["-p", "code=2"]);
    assert_eq!(ran.code, 0);
    run.expect_run(
        "SucceededWithWarnings",
        "SucceededWithWarnings",
        "Succeeded",
        "SucceededWithWarnings",
    );
    run.expect_tasks(&[
        ("check", "SucceededWithWarnings", ""),
        ("next", "Succeeded", ""),
    ]);
    assert_eq!(run.task("check")["exitCode"], 2);
    // $(tasks.check.status) is Tekton's view of the raw ending: the plugin failed.
    assert_eq!(
        run.task("report")["results"]["message"],
        "Failed Succeeded SucceededWithWarnings"
    );

    // success + halt
    let (ran, run) = run_pipeline("on-status.yaml", &["-p", "code=3"]);
    assert_eq!(ran.code, 0);
    run.expect_run("Succeeded", "Halted", "Completed", "Halted");
    run.expect_tasks(&[
        ("check", "Succeeded", ""),
        ("next", "Skipped", "RunHalted"),
        ("report", "Succeeded", ""),
    ]);
    assert_eq!(run.0["run"]["haltedBy"]["task"], "check");
    assert_eq!(run.0["run"]["haltedBy"]["message"], "check said 3");
}

#[test]
fn halt_wait_lets_running_siblings_finish() {
    let (ran, run) = run_pipeline("halt-wait.yaml", &[]);
    assert_eq!(ran.code, 0);
    run.expect_run("Succeeded", "Halted", "Completed", "Halted");
    run.expect_tasks(&[
        ("gate", "Succeeded", ""),
        ("long-sibling", "Succeeded", ""),
        ("release", "Skipped", "RunHalted"),
        ("notify", "Succeeded", ""),
    ]);
}

#[test]
fn halt_cancel_cancels_running_siblings_without_cancelling_the_run() {
    let started = std::time::Instant::now();
    let (ran, run) = run_pipeline("halt-cancel.yaml", &[]);
    assert_eq!(ran.code, 0);
    run.expect_run("Succeeded", "Halted", "Completed", "Halted");
    run.expect_tasks(&[
        ("gate", "Succeeded", ""),
        ("long-sibling", "Cancelled", "RunHalted"),
        ("release", "Skipped", "RunHalted"),
        ("notify", "Succeeded", ""),
    ]);
    // The 1.5 s sibling was cut short (generous bound: this is not a timing test).
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn retries_succeed_on_the_last_attempt_and_exhausted_retries_fail() {
    let (ran, run) = run_pipeline("retries.yaml", &[]);
    assert_eq!(ran.code, 0);
    run.expect_run("Succeeded", "Succeeded", "Succeeded", "Succeeded");
    assert_eq!(run.task("flaky")["attempts"], 3);
    assert_eq!(run.task("flaky")["results"]["seen"], "2/2");

    let (ran, run) = run_pipeline("retries.yaml", &["-p", "failTimes=3"]);
    assert_eq!(ran.code, 1);
    run.expect_tasks(&[("flaky", "Failed", "Failed")]);
    assert_eq!(run.task("flaky")["attempts"], 3);
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

#[test]
fn a_task_past_its_timeout_is_timed_out() {
    let (ran, run) = run_pipeline("task-timeout.yaml", &[]);
    assert_eq!(ran.code, 1);
    run.expect_run("Failed", "Failed", "Failed", "TimedOut");
    run.expect_tasks(&[
        ("hangs", "TimedOut", "TaskRunTimeout"),
        ("independent", "Succeeded", ""),
    ]);
}

#[test]
fn the_tasks_timeout_times_out_tasks_and_still_runs_finally() {
    let (ran, run) = run_pipeline("tasks-timeout.yaml", &["--tasks-timeout", "300ms"]);
    assert_eq!(ran.code, 1);
    run.expect_run("TimedOut", "PipelineRunTimeout", "Failed", "TimedOut");
    run.expect_tasks(&[
        ("slow", "TimedOut", "TasksTimeout"),
        ("never-started", "Skipped", "RunTimedOut"),
        ("still-reports", "Succeeded", ""),
    ]);
    assert_eq!(
        run.task("still-reports")["results"]["message"],
        "tasks ended Failed"
    );
}

#[test]
fn the_pipeline_timeout_times_out_the_run() {
    let (ran, run) = run_pipeline("tasks-timeout.yaml", &["--timeout", "300ms"]);
    assert_eq!(ran.code, 1);
    assert_eq!(run.run("status"), "TimedOut");
    assert_eq!(run.run("reason"), "PipelineRunTimeout");
    assert_eq!(run.outcome("slow").0, "TimedOut");
}

#[test]
fn a_finally_task_failing_after_a_green_dag_fails_the_run() {
    let (ran, run) = run_pipeline("finally-fails.yaml", &[]);
    assert_eq!(ran.code, 1);
    run.expect_run("Failed", "Failed", "Succeeded", "Succeeded");
    run.expect_tasks(&[
        ("green", "Succeeded", ""),
        ("upload-logs", "Failed", "Failed"),
    ]);
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
fn the_seed_pipeline_reports_failure_in_finally() {
    let example = crate::support::root().join("examples/build-test-report.yaml");
    let example = example.to_string_lossy();
    let ran = run(&["run", &example, "-p", "testExit=1", "--output", "json"]);
    assert_eq!(ran.code, 1);
    let run = crate::support::Run(ran.json());
    run.expect_tasks(&[
        ("test", "Failed", "Failed"),
        ("report-failure", "Succeeded", ""),
        ("report-success", "Skipped", "WhenExpressionsFalse"),
    ]);
    assert_eq!(
        run.task("report-failure")["results"]["message"],
        "commit 0123abc failed (test: Failed)"
    );
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

#[test]
fn array_params_take_json_and_bad_flags_exit_2() {
    let ran = run(&["run", "tests/pipelines/all-succeed.yaml", "-p", "nonsense"]);
    assert_eq!(ran.code, 2);
    assert!(ran.stderr.contains("expected NAME=VALUE"), "{}", ran.stderr);
    let ran = run(&[
        "run",
        "tests/pipelines/all-succeed.yaml",
        "--timeout",
        "soon",
    ]);
    assert_eq!(ran.code, 2);
    assert!(ran.stderr.contains("--timeout soon"), "{}", ran.stderr);
    let ran = run(&["run", "tests/pipelines/all-succeed.yaml", "--bogus"]);
    assert_eq!(ran.code, 2);
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
fn a_task_that_cannot_be_launched_ends_errored_and_the_run_ends() {
    // The first launch fails (WEFT_FAULT): that task ends Errored without retries, its
    // dependent is skipped, `finally` runs, and the run ends instead of hanging.
    let child = crate::support::weft()
        .arg("run")
        .arg(crate::support::pipelines().join("launch-fails.yaml"))
        .args(["--output", "json"])
        .env("WEFT_FAULT", "task-launch-fail")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("weft starts");
    let (ran, run) = finish_within(child, Duration::from_secs(60));
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    run.expect_run("Failed", "Failed", "Failed", "Failed");
    run.expect_tasks(&[
        ("first", "Errored", "LaunchFailed"),
        ("second", "Skipped", "RunStopping"),
        ("cleanup", "Succeeded", ""),
    ]);
    assert_eq!(run.task("first")["attempts"], 1);
    assert!(
        run.task("first")["message"]
            .as_str()
            .is_some_and(|m| m.contains("fault point")),
        "{:#}",
        run.0
    );
}
