//! Crash recovery: the engine is killed with SIGKILL at each persistence boundary (the
//! `WEFT_FAULT` points, the reporter's final post included), then `weft runs recover`
//! finishes the run. Every run must end with the same task outcomes as an uninterrupted
//! one; no task with a stored terminal record runs again; the strategies behave as
//! specified; checkpoints are hit; deadlines survive; the fake forge gets the final status
//! exactly once. The crash matrix and the store tests stand alone; single crashes at one
//! point, recovered, are tables of named rows (`Crash`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::fake_forge::FakeForge;
use crate::support::{Ran, each_row, pipelines, run_in};

/// The GitLab token the crash trials' reporter uses (never stored with a run).
const FORGE_TOKEN: &str = "glpat-crash-trial-token-0123";

fn in_dir(data: &Path, args: &[&str], fault: Option<&str>) -> Ran {
    let mut env = vec![("WEFT_TEST_FORGE_TOKEN", FORGE_TOKEN)];
    env.extend(fault.map(|fault| ("WEFT_FAULT", fault)));
    run_in(data, args, &env)
}

fn pipeline(name: &str) -> String {
    pipelines().join(name).to_string_lossy().into_owned()
}

/// `(status, reason, results without the checkpoint marker)` per task, from a report.
fn outcomes(report: &Value) -> BTreeMap<String, (String, String, Value)> {
    report["tasks"]
        .as_array()
        .map(|tasks| {
            tasks
                .iter()
                .map(|t| {
                    let mut results = t["results"].clone();
                    if let Some(map) = results.as_object_mut() {
                        map.remove("checkpoint");
                    }
                    (
                        t["name"].as_str().unwrap_or_default().to_string(),
                        (
                            t["status"].as_str().unwrap_or_default().to_string(),
                            t["reason"].as_str().unwrap_or_default().to_string(),
                            results,
                        ),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn show(data: &Path, run: &str) -> Value {
    let ran = in_dir(data, &["runs", "show", run, "--output", "json"], None);
    assert_eq!(ran.code, 0, "runs show: {}", ran.stderr);
    ran.json()
}

/// Terminal attempts (`task/attempt`) and log lines per attempt, as stored now.
fn stored(data: &Path, run: &str) -> (Vec<String>, BTreeMap<String, usize>) {
    let shown = show(data, run);
    let terminal = shown["attempts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|a| a["phase"] == "Terminal")
                .filter_map(|a| a["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let logs = in_dir(data, &["runs", "logs", run, "--output", "json"], None);
    let mut lines = BTreeMap::new();
    for line in logs
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        let id = format!(
            "{run}/{}/{}",
            line["task"].as_str().unwrap_or_default(),
            line["attempt"]
        );
        *lines.entry(id).or_insert(0) += 1;
    }
    (terminal, lines)
}

/// After recovery: every attempt ends terminal in the store with its own outcome, and
/// what had a terminal record before the crash (`terminal_before`, logging
/// `lines_before`) never ran again.
fn check_records(
    fault: &str,
    data: &Path,
    run: &str,
    terminal_before: &[String],
    lines_before: &BTreeMap<String, usize>,
    failures: &mut Vec<String>,
) {
    let shown = show(data, run);
    for attempt in shown["attempts"].as_array().into_iter().flatten() {
        if attempt["phase"] != "Terminal" || attempt["outcome"].is_null() {
            failures.push(format!("{fault}: attempt left unfinished: {attempt}"));
        }
    }
    let (_, lines_after) = stored(data, run);
    for id in terminal_before {
        let before = lines_before.get(id).copied().unwrap_or(0);
        let after = lines_after.get(id).copied().unwrap_or(0);
        if before != after {
            failures.push(format!(
                "{fault}: {id} had a terminal record but logged {before} then {after} lines: it ran again"
            ));
        }
    }
}

const POINTS: &[(&str, u32)] = &[
    ("task-start-before", 6),
    ("task-start-after", 6),
    ("task-finish-before", 6),
    ("task-ended-unrecorded", 6),
    ("task-finish-after", 6),
    ("finally", 1),
    ("final-status-before", 1),
    ("report-final-before", 1),
];

/// `--report`, `--secret` and `--allow-http` flags reporting to `forge`.
fn reporting_to(forge: &FakeForge) -> Vec<String> {
    vec![
        "--report".into(),
        format!(
            "gitlab:url={},project=group/app,sha=0123abcd,token-secret=forge-token",
            forge.url()
        ),
        "--secret".into(),
        "forge-token=env:WEFT_TEST_FORGE_TOKEN".into(),
        "--allow-http".into(),
        forge.rule(),
    ]
}

/// The description of the final (successful) status the forge accepted.
fn final_description(forge: &FakeForge) -> String {
    forge
        .requests()
        .iter()
        .rfind(|r| r.ok() && r.field("state") == "success")
        .map(|r| r.field("description"))
        .unwrap_or_default()
}

/// The run-level states the forge accepted, in order.
fn forge_states(forge: &FakeForge) -> Vec<String> {
    forge
        .requests()
        .iter()
        .filter(|r| r.ok())
        .map(|r| r.field("state"))
        .collect()
}

#[test]
fn sigkill_at_every_persistence_boundary_then_resume_gives_the_same_outcomes() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let baseline_dir = scratch.path().join("baseline");
    let ran = in_dir(
        &baseline_dir,
        &[
            "run",
            &pipeline("recoverable.yaml"),
            "--output",
            "json",
            "--name",
            "baseline",
        ],
        None,
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let baseline = outcomes(&ran.json());
    // What a run that never crashed tells the forge, for the descriptions below.
    let baseline_forge = FakeForge::start();
    let mut args = vec![
        "run".to_string(),
        pipeline("recoverable.yaml"),
        "--name".into(),
        "baseline-reported".into(),
    ];
    args.extend(reporting_to(&baseline_forge));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ran = in_dir(&baseline_dir, &args, None);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let baseline_description = final_description(&baseline_forge);
    assert!(
        baseline_description.starts_with("all ") && baseline_description.contains("succeeded"),
        "{baseline_description}"
    );

    let mut failures = Vec::new();
    let mut crashed = 0;
    let mut hits = 0;
    for (point, max) in POINTS {
        for n in 1..=*max {
            let data = scratch.path().join(format!("{point}-{n}"));
            let run = format!("crash-{point}-{n}");
            let fault = format!("{point}:{n}");
            let forge = FakeForge::start();
            let file = pipeline("recoverable.yaml");
            let mut args = vec!["run", &file, "--output", "json", "--name", &run];
            let report = reporting_to(&forge);
            args.extend(report.iter().map(String::as_str));
            let ran = in_dir(&data, &args, Some(&fault));
            if ran.code == 0 {
                continue; // the point was not reached n times in this run
            }
            assert_eq!(
                ran.code, -1,
                "{fault}: expected SIGKILL, got exit {}: {}",
                ran.code, ran.stderr
            );
            crashed += 1;
            let (terminal_before, lines_before) = stored(&data, &run);

            let recovered = in_dir(
                &data,
                &[
                    "runs",
                    "recover",
                    "--recover-timeout",
                    "0s",
                    "--output",
                    "json",
                    "--secret",
                    "forge-token=env:WEFT_TEST_FORGE_TOKEN",
                ],
                None,
            );
            if recovered.code != 0 {
                failures.push(format!(
                    "{fault}: recover exited {}: {}",
                    recovered.code, recovered.stderr
                ));
                continue;
            }
            let report = show(&data, &run)["report"].clone();
            if outcomes(&report) != baseline {
                failures.push(format!(
                    "{fault}: outcomes differ:\n  got {:?}\n  want {baseline:?}",
                    outcomes(&report)
                ));
            }
            if report["run"]["status"] != "Succeeded" {
                failures.push(format!("{fault}: run status {}", report["run"]["status"]));
            }
            hits += report["run"]["checkpointHits"].as_u64().unwrap_or(0);
            // The forge got the final status, once, after the earlier ones (which may be
            // coalesced), never going backwards.
            let states = forge_states(&forge);
            let rank = |s: &String| match s.as_str() {
                "pending" => 0,
                "running" => 1,
                _ => 2,
            };
            if states.last().map(String::as_str) != Some("success")
                || states.iter().filter(|s| *s == "success").count() != 1
                || states.windows(2).any(|w| rank(&w[0]) > rank(&w[1]))
            {
                failures.push(format!("{fault}: the forge accepted {states:?}"));
            }
            // The final status says what the uninterrupted run said, re-delivered or not.
            let description = final_description(&forge);
            if description != baseline_description {
                failures.push(format!(
                    "{fault}: the final description was {description:?}, not {baseline_description:?}"
                ));
            }
            check_records(
                &fault,
                &data,
                &run,
                &terminal_before,
                &lines_before,
                &mut failures,
            );
        }
    }
    assert!(
        crashed >= 20,
        "only {crashed} trials crashed; the fault points are not being reached"
    );
    assert!(hits >= 1, "no recovered run hit the `compiled` checkpoint");
    assert!(
        failures.is_empty(),
        "{} of {crashed} trials failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Pipelines in pipelines: killed at every task boundary of a run whose task runs a
/// child pipeline, recovered, the run ends as an uninterrupted one did, every attempt is
/// terminal, and no task of the child with a terminal record runs again.
#[test]
fn a_crash_inside_a_child_pipeline_recovers_without_running_its_ended_tasks_again() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let file = pipeline("nested-recoverable.yaml");
    let ran = in_dir(
        &scratch.path().join("baseline"),
        &["run", &file, "--output", "json", "--name", "baseline"],
        None,
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let baseline = outcomes(&ran.json());
    assert_eq!(
        baseline.get("ship.push").map(|o| o.0.as_str()),
        Some("Succeeded"),
        "{baseline:?}"
    );
    let mut failures = Vec::new();
    let mut crashed = 0;
    for point in [
        "task-start-after",
        "task-finish-before",
        "task-finish-after",
    ] {
        for n in 1..=7 {
            let data = scratch.path().join(format!("{point}-{n}"));
            let run = format!("nested-{point}-{n}");
            let fault = format!("{point}:{n}");
            let ran = in_dir(
                &data,
                &["run", &file, "--output", "json", "--name", &run],
                Some(&fault),
            );
            if ran.code == 0 {
                continue;
            }
            assert_eq!(ran.code, -1, "{fault}: {}", ran.stderr);
            crashed += 1;
            let (terminal_before, lines_before) = stored(&data, &run);
            let recovered = in_dir(
                &data,
                &[
                    "runs",
                    "recover",
                    "--recover-timeout",
                    "0s",
                    "--output",
                    "json",
                ],
                None,
            );
            if recovered.code != 0 {
                failures.push(format!(
                    "{fault}: recover exited {}: {}",
                    recovered.code, recovered.stderr
                ));
                continue;
            }
            let shown = show(&data, &run);
            if outcomes(&shown["report"]) != baseline {
                failures.push(format!(
                    "{fault}: outcomes differ:\n  got {:?}\n  want {baseline:?}",
                    outcomes(&shown["report"])
                ));
            }
            check_records(
                &fault,
                &data,
                &run,
                &terminal_before,
                &lines_before,
                &mut failures,
            );
        }
    }
    assert!(crashed >= 12, "only {crashed} trials crashed");
    assert!(
        failures.is_empty(),
        "{} of {crashed} trials failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn a_corrupt_store_is_a_clear_error_and_nothing_claims_success() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let data = scratch.path();
    std::fs::write(
        data.join("weft.db"),
        b"this is not a database, just some bytes",
    )
    .expect("write");
    let ran = in_dir(
        data,
        &["run", &pipeline("all-succeed.yaml"), "--output", "json"],
        None,
    );
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    assert!(
        ran.stdout.is_empty(),
        "nothing may claim success: {}",
        ran.stdout
    );
    assert!(ran.stderr.contains("weft.db"), "{}", ran.stderr);
    for args in [&["runs", "list"][..], &["runs", "recover"][..]] {
        let ran = in_dir(data, args, None);
        assert_eq!(ran.code, 3, "{args:?}: {}", ran.stderr);
    }
    // Truncated: a real store cut in half.
    let good = scratch.path().join("good");
    let ran = in_dir(&good, &["run", &pipeline("all-succeed.yaml")], None);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    // Every page read and checked: a sound store passes.
    let checked = in_dir(&good, &["db", "check"], None);
    assert_eq!(checked.code, 0, "{}", checked.stderr);
    assert!(checked.stdout.contains(": ok"), "{}", checked.stdout);
    let db = good.join("weft.db");
    let bytes = std::fs::read(&db).expect("db");
    std::fs::write(&db, &bytes[..bytes.len() / 2]).expect("truncate");
    let _ = std::fs::remove_file(good.join("weft.db-wal"));
    let ran = in_dir(&good, &["runs", "list"], None);
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    assert!(ran.stderr.contains("truncated"), "{}", ran.stderr);
    let checked = in_dir(&good, &["db", "check"], None);
    assert_eq!(checked.code, 3, "{}", checked.stderr);
}

#[test]
fn runs_commands_show_history_and_logs() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let data = scratch.path();
    let ran = in_dir(
        data,
        &["run", &pipeline("all-succeed.yaml"), "--name", "hist-1"],
        None,
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let ran = in_dir(
        data,
        &["run", &pipeline("finally-fails.yaml"), "--name", "hist-2"],
        None,
    );
    assert_eq!(ran.code, 1);

    let list = in_dir(data, &["runs", "list", "--output", "json"], None);
    assert_eq!(list.code, 0, "{}", list.stderr);
    let rows = list.json();
    let names: Vec<&str> = rows
        .as_array()
        .map(|r| r.iter().filter_map(|r| r["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, vec!["hist-2", "hist-1"], "newest first");
    assert_eq!(rows[0]["status"], "Failed");
    assert_eq!(rows[1]["status"], "Succeeded");
    let text = in_dir(data, &["runs", "list"], None);
    assert!(
        text.stdout.contains("hist-1") && text.stdout.contains("all-succeed"),
        "{}",
        text.stdout
    );

    let shown = show(data, "hist-1");
    assert_eq!(shown["report"]["run"]["status"], "Succeeded");
    assert_eq!(shown["attempts"].as_array().map(Vec::len), Some(5));
    let text = in_dir(data, &["runs", "show", "hist-2"], None);
    assert!(
        text.stdout.contains("hist-2/upload-logs/0") && text.stdout.contains("Failed"),
        "{}",
        text.stdout
    );

    let logs = in_dir(data, &["runs", "logs", "hist-1", "build"], None);
    assert_eq!(logs.code, 0);
    assert_eq!(logs.stdout.trim(), "[build] build abc123 for linux");
    let logs = in_dir(data, &["runs", "logs", "hist-1", "--follow"], None);
    assert!(
        logs.stdout.contains("[report] status=Succeeded"),
        "{}",
        logs.stdout
    );

    let missing = in_dir(data, &["runs", "show", "nope"], None);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("no run named `nope`"),
        "{}",
        missing.stderr
    );
}

/// A run killed at a fault point, then `weft runs recover`, and what that must give.
struct Crash {
    name: &'static str,
    /// A file of tests/pipelines.
    pipeline: &'static str,
    /// The run's `--name`.
    run: &'static str,
    flags: &'static [&'static str],
    /// Options appended to the GitLab reporter's spec, when the run reports to a fake forge.
    report: Option<&'static str>,
    /// `WEFT_FAULT`: where the engine is killed.
    fault: &'static str,
    /// How long no engine runs between the crash and the recovery.
    down: Duration,
    /// The flags of `weft runs recover`.
    recover: &'static [&'static str],
    /// Exit code of `weft runs recover`.
    code: i32,
    expect: Vec<Expect>,
}

/// What a recovered run must show.
enum Expect {
    /// `runs recover` printed this.
    Says(&'static str),
    /// `runs recover` took less than this.
    Within(Duration),
    /// The recovered run's summary (`--output json`) counts this many attempts of a task.
    SummaryAttempts(&'static str, u64),
    /// The stored run's status.
    Status(&'static str),
    /// A stored task's `(status, reason)`.
    Task(&'static str, &'static str, &'static str),
    /// Every stored attempt is terminal.
    AllTerminal,
    /// A stored attempt's outcome and reason, and a part of its message.
    Attempt(&'static str, &'static str, &'static str, &'static str),
    /// The stored attempts include these.
    AttemptIds(&'static [&'static str]),
    /// The forge accepted this state for this context exactly once, last.
    ForgeOnceLast(&'static str, &'static str),
    /// The last state the forge accepted for this context.
    ForgeLast(&'static str, &'static str),
}

fn crash_and_recover(crash: Crash) {
    let name = crash.name;
    let scratch = tempfile::tempdir().expect("tempdir");
    let data = scratch.path();
    let forge = crash.report.map(|_| FakeForge::start());
    let file = pipeline(crash.pipeline);
    let mut args: Vec<String> = ["run", &file, "--name", crash.run]
        .iter()
        .map(|a| a.to_string())
        .collect();
    args.extend(crash.flags.iter().map(|f| f.to_string()));
    if let (Some(forge), Some(options)) = (&forge, crash.report) {
        let mut report = reporting_to(forge);
        report[1].push_str(options);
        args.extend(report);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ran = in_dir(data, &args, Some(crash.fault));
    assert_eq!(ran.code, -1, "{name}: expected SIGKILL: {}", ran.stderr);
    if !crash.down.is_zero() {
        std::thread::sleep(crash.down);
    }
    let mut args = vec!["runs", "recover"];
    args.extend_from_slice(crash.recover);
    let started = std::time::Instant::now();
    let recovered = in_dir(data, &args, None);
    let took = started.elapsed();
    assert_eq!(
        recovered.code, crash.code,
        "{name}: runs recover: {}{}",
        recovered.stdout, recovered.stderr
    );
    let accepted = |context: &str| -> Vec<String> {
        let forge = forge.as_ref().expect("the case reports to a forge");
        forge
            .requests()
            .iter()
            .filter(|r| r.ok() && r.field("name") == context)
            .map(|r| r.field("state"))
            .collect()
    };
    for expect in crash.expect {
        match expect {
            Expect::Says(text) => {
                assert!(
                    recovered.stdout.contains(text),
                    "{name}: {}",
                    recovered.stdout
                )
            }
            Expect::Within(most) => assert!(took < most, "{name}: took {took:?}"),
            Expect::SummaryAttempts(task, attempts) => {
                let summary = recovered.json()["tasks"]
                    .as_array()
                    .and_then(|t| t.iter().find(|t| t["name"] == task).cloned())
                    .unwrap_or_default();
                assert_eq!(summary["attempts"], attempts, "{name}: {summary}");
            }
            Expect::Status(status) => assert_eq!(
                show(data, crash.run)["report"]["run"]["status"],
                status,
                "{name}"
            ),
            Expect::Task(task, status, reason) => {
                let got = outcomes(&show(data, crash.run)["report"]);
                let (got_status, got_reason, _) = &got[task];
                assert_eq!(
                    (got_status.as_str(), got_reason.as_str()),
                    (status, reason),
                    "{name}: {task}"
                );
            }
            Expect::AllTerminal => {
                let shown = show(data, crash.run);
                for attempt in shown["attempts"].as_array().into_iter().flatten() {
                    assert_eq!(attempt["phase"], "Terminal", "{name}: {attempt}");
                }
            }
            Expect::Attempt(id, outcome, reason, message) => {
                let shown = show(data, crash.run);
                let attempts = shown["attempts"].as_array().cloned().unwrap_or_default();
                let attempt = attempts
                    .iter()
                    .find(|a| a["id"] == id)
                    .unwrap_or_else(|| panic!("{name}: no {id} in {attempts:?}"));
                assert_eq!(
                    (attempt["outcome"].as_str(), attempt["reason"].as_str()),
                    (Some(outcome), Some(reason)),
                    "{name}: {attempt}"
                );
                assert!(
                    attempt["message"]
                        .as_str()
                        .is_some_and(|m| m.contains(message)),
                    "{name}: {attempt}"
                );
            }
            Expect::AttemptIds(ids) => {
                let shown = show(data, crash.run);
                let got: Vec<&str> = shown["attempts"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|a| a["id"].as_str()).collect())
                    .unwrap_or_default();
                for id in ids {
                    assert!(got.contains(id), "{name}: {id} missing from {got:?}");
                }
            }
            Expect::ForgeOnceLast(context, state) => {
                let states = accepted(context);
                assert_eq!(
                    states.iter().filter(|s| *s == state).count(),
                    1,
                    "{name}: {context} got {states:?}"
                );
                assert_eq!(
                    states.last().map(String::as_str),
                    Some(state),
                    "{name}: {context} got {states:?}"
                );
            }
            Expect::ForgeLast(context, state) => {
                let states = accepted(context);
                assert_eq!(
                    states.last().map(String::as_str),
                    Some(state),
                    "{name}: {context} got {states:?}"
                );
            }
        }
    }
}

/// `runs recover` at once (no wait for the dead engine's lease), printing the summary.
const RECOVER_NOW: &[&str] = &["--recover-timeout", "0s", "--output", "json"];

#[test]
fn each_strategy_recovers_a_crashed_run() {
    let rows = vec![
        Crash {
            name: "startOver closes the attempt it abandons (killed while `build`, the second task, runs)",
            pipeline: "recoverable-start-over.yaml",
            run: "abandoned",
            flags: &[],
            report: None,
            fault: "task-start-after:2",
            down: Duration::ZERO,
            recover: RECOVER_NOW,
            code: 0,
            expect: vec![
                Expect::SummaryAttempts("build", 2),
                Expect::AllTerminal,
                Expect::Attempt(
                    "abandoned/build/0",
                    "Errored",
                    "EngineRestarted",
                    "startOver",
                ),
            ],
        },
        Crash {
            // The first two tasks had terminal records; they ran again as attempt 1, and
            // the old records are still there, unchanged.
            name: "startOver runs everything again under new attempts",
            pipeline: "recoverable-start-over.yaml",
            run: "again",
            flags: &[],
            report: None,
            fault: "task-finish-after:2",
            down: Duration::ZERO,
            recover: &["--recover-timeout", "0s"],
            code: 0,
            expect: vec![
                Expect::Says("strategy startOver"),
                Expect::Status("Succeeded"),
                Expect::AttemptIds(&[
                    "again/fetch/0",
                    "again/fetch/1",
                    "again/build/0",
                    "again/build/1",
                ]),
            ],
        },
        Crash {
            name: "strategy none errors in-flight tasks and still runs finally (killed while `build` runs)",
            pipeline: "recoverable-none.yaml",
            run: "none",
            flags: &[],
            report: None,
            fault: "task-start-after:2",
            down: Duration::ZERO,
            recover: RECOVER_NOW,
            code: 1,
            expect: vec![
                Expect::Task("fetch", "Succeeded", ""),
                Expect::Task("build", "Errored", "EngineRestarted"),
                Expect::Task("package", "Skipped", "RunStopping"),
                Expect::Task("report", "Succeeded", ""),
                Expect::Status("Failed"),
            ],
        },
    ];
    each_row(rows, |row| row.name, crash_and_recover);
}

#[test]
fn what_recovery_takes_over_and_keeps() {
    let rows = vec![
        Crash {
            // Within the default 30 s recovery timeout the run still counts as owned.
            name: "a fresh heartbeat is not taken over",
            pipeline: "recoverable.yaml",
            run: "fresh",
            flags: &[],
            report: None,
            fault: "task-start-after:1",
            down: Duration::ZERO,
            recover: &[],
            code: 0,
            expect: vec![Expect::Says("no run to recover")],
        },
        Crash {
            // The tasks deadline passed while no engine ran: the recovered run times out
            // at once instead of granting the 10 s task a fresh 1.5 s.
            name: "deadlines survive a restart",
            pipeline: "tasks-timeout.yaml",
            run: "late",
            flags: &["--tasks-timeout", "1500ms"],
            report: None,
            fault: "task-start-after:1",
            down: Duration::from_millis(1600),
            recover: RECOVER_NOW,
            code: 1,
            expect: vec![
                Expect::Within(Duration::from_secs(8)),
                Expect::Status("TimedOut"),
            ],
        },
        Crash {
            // Killed right after the first task's terminal record: its task status is still
            // owed, and goes to the task's context (read back from the stored context),
            // never to the run's.
            name: "task statuses owed at a crash go to their task contexts",
            pipeline: "recoverable.yaml",
            run: "tasked",
            flags: &[],
            report: Some(",tasks=true"),
            fault: "task-finish-after:1",
            down: Duration::ZERO,
            recover: &[
                "--recover-timeout",
                "0s",
                "--secret",
                "forge-token=env:WEFT_TEST_FORGE_TOKEN",
            ],
            code: 0,
            expect: vec![
                Expect::ForgeOnceLast("weft/recoverable", "success"),
                Expect::ForgeLast("weft/recoverable/fetch", "success"),
            ],
        },
    ];
    each_row(rows, |row| row.name, crash_and_recover);
}
