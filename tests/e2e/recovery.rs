//! Crash recovery: the engine is killed with SIGKILL at each persistence boundary (the
//! `WEFT_FAULT` points, the reporter's final post included), then `weft runs recover`
//! finishes the run. Every run must end with the same task outcomes as an uninterrupted
//! one; no task with a stored terminal record runs again; the strategies behave as
//! specified; checkpoints are hit; deadlines survive; the fake forge gets the final status
//! exactly once.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::fake_forge::FakeForge;
use crate::support::{Ran, pipelines, run_in};

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

const POINTS: &[(&str, u32)] = &[
    ("task-start-before", 6),
    ("task-start-after", 6),
    ("task-finish-before", 6),
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
            // Every attempt ends terminal in the store, with its own outcome.
            let shown = show(&data, &run);
            for attempt in shown["attempts"].as_array().into_iter().flatten() {
                if attempt["phase"] != "Terminal" || attempt["outcome"].is_null() {
                    failures.push(format!("{fault}: attempt left unfinished: {attempt}"));
                }
            }
            // What had a terminal record before the crash never ran again.
            let (_, lines_after) = stored(&data, &run);
            for id in &terminal_before {
                let before = lines_before.get(id).copied().unwrap_or(0);
                let after = lines_after.get(id).copied().unwrap_or(0);
                if before != after {
                    failures.push(format!("{fault}: {id} had a terminal record but logged {before} then {after} lines: it ran again"));
                }
            }
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

#[test]
fn start_over_closes_the_attempt_it_abandons() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let data = scratch.path();
    // Killed while `build` (the second task) runs: startOver abandons that attempt.
    let ran = in_dir(
        data,
        &[
            "run",
            &pipeline("recoverable-start-over.yaml"),
            "--name",
            "abandoned",
        ],
        Some("task-start-after:2"),
    );
    assert_eq!(ran.code, -1, "{}", ran.stderr);
    let recovered = in_dir(
        data,
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
    assert_eq!(recovered.code, 0, "{}", recovered.stderr);
    // The summary counts both attempts of `build`.
    let build = recovered.json()["tasks"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "build").cloned())
        .unwrap_or_default();
    assert_eq!(build["attempts"], 2, "{build}");
    let shown = show(data, "abandoned");
    let attempts = shown["attempts"].as_array().cloned().unwrap_or_default();
    for attempt in &attempts {
        assert_eq!(attempt["phase"], "Terminal", "{attempt}");
    }
    let first = attempts
        .iter()
        .find(|a| a["id"] == "abandoned/build/0")
        .unwrap_or_else(|| panic!("no abandoned/build/0 in {attempts:?}"));
    assert_eq!(
        (first["outcome"].as_str(), first["reason"].as_str()),
        (Some("Errored"), Some("EngineRestarted")),
        "{first}"
    );
    assert!(
        first["message"]
            .as_str()
            .is_some_and(|m| m.contains("startOver")),
        "{first}"
    );
}

#[test]
fn start_over_runs_everything_again_under_new_attempts() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let data = scratch.path();
    let ran = in_dir(
        data,
        &[
            "run",
            &pipeline("recoverable-start-over.yaml"),
            "--name",
            "again",
        ],
        Some("task-finish-after:2"),
    );
    assert_eq!(ran.code, -1, "{}", ran.stderr);
    let recovered = in_dir(data, &["runs", "recover", "--recover-timeout", "0s"], None);
    assert_eq!(
        recovered.code, 0,
        "{}{}",
        recovered.stdout, recovered.stderr
    );
    assert!(
        recovered.stdout.contains("strategy startOver"),
        "{}",
        recovered.stdout
    );
    let shown = show(data, "again");
    assert_eq!(shown["report"]["run"]["status"], "Succeeded");
    let ids: Vec<&str> = shown["attempts"]
        .as_array()
        .map(|a| a.iter().filter_map(|a| a["id"].as_str()).collect())
        .unwrap_or_default();
    // The first two tasks had terminal records; they ran again as attempt 1, and the old
    // records are still there, unchanged.
    for id in [
        "again/fetch/0",
        "again/fetch/1",
        "again/build/0",
        "again/build/1",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
}

#[test]
fn strategy_none_errors_in_flight_tasks_and_still_runs_finally() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let data = scratch.path();
    // Killed while `build` runs (the second task to start).
    let ran = in_dir(
        data,
        &["run", &pipeline("recoverable-none.yaml"), "--name", "none"],
        Some("task-start-after:2"),
    );
    assert_eq!(ran.code, -1, "{}", ran.stderr);
    let recovered = in_dir(
        data,
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
    assert_eq!(recovered.code, 1, "{}", recovered.stderr);
    let report = show(data, "none")["report"].clone();
    let got = outcomes(&report);
    assert_eq!(got["fetch"].0, "Succeeded");
    assert_eq!(
        (got["build"].0.as_str(), got["build"].1.as_str()),
        ("Errored", "EngineRestarted")
    );
    assert_eq!(
        (got["package"].0.as_str(), got["package"].1.as_str()),
        ("Skipped", "RunStopping")
    );
    assert_eq!(got["report"].0, "Succeeded", "finally still runs");
    assert_eq!(report["run"]["status"], "Failed");
}

#[test]
fn a_fresh_heartbeat_is_not_taken_over() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let data = scratch.path();
    let ran = in_dir(
        data,
        &["run", &pipeline("recoverable.yaml"), "--name", "fresh"],
        Some("task-start-after:1"),
    );
    assert_eq!(ran.code, -1);
    // Within the default 30 s recovery timeout the run still counts as owned.
    let recovered = in_dir(data, &["runs", "recover"], None);
    assert_eq!(recovered.code, 0);
    assert!(
        recovered.stdout.contains("no run to recover"),
        "{}",
        recovered.stdout
    );
}

#[test]
fn deadlines_survive_a_restart() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let data = scratch.path();
    let ran = in_dir(
        data,
        &[
            "run",
            &pipeline("tasks-timeout.yaml"),
            "--name",
            "late",
            "--tasks-timeout",
            "1500ms",
        ],
        Some("task-start-after:1"),
    );
    assert_eq!(ran.code, -1);
    std::thread::sleep(std::time::Duration::from_millis(1600));
    // The tasks deadline passed while no engine ran: the recovered run times out at once
    // instead of granting the 10 s task a fresh 1.5 s.
    let started = std::time::Instant::now();
    let recovered = in_dir(
        data,
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
    assert_eq!(recovered.code, 1, "{}", recovered.stderr);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "the deadline was extended"
    );
    let report = show(data, "late")["report"].clone();
    assert_eq!(report["run"]["status"], "TimedOut");
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
    let db = good.join("weft.db");
    let bytes = std::fs::read(&db).expect("db");
    std::fs::write(&db, &bytes[..bytes.len() / 2]).expect("truncate");
    let _ = std::fs::remove_file(good.join("weft.db-wal"));
    let ran = in_dir(&good, &["runs", "list"], None);
    assert_eq!(ran.code, 3, "{}", ran.stderr);
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

/// Task contexts still owed when the engine died are re-delivered to the task contexts
/// (their task is read back from the stored context), never to the run's context.
#[test]
fn task_statuses_owed_at_a_crash_go_to_their_task_contexts() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let data = scratch.path();
    let forge = FakeForge::start();
    let mut report = reporting_to(&forge);
    report[1].push_str(",tasks=true");
    let file = pipeline("recoverable.yaml");
    let mut args = vec!["run", file.as_str(), "--name", "tasked"];
    args.extend(report.iter().map(String::as_str));
    // Killed right after the first task's terminal record: its task status is still owed.
    let ran = in_dir(data, &args, Some("task-finish-after:1"));
    assert_eq!(ran.code, -1, "{}", ran.stderr);
    let recovered = in_dir(
        data,
        &[
            "runs",
            "recover",
            "--recover-timeout",
            "0s",
            "--secret",
            "forge-token=env:WEFT_TEST_FORGE_TOKEN",
        ],
        None,
    );
    assert_eq!(
        recovered.code, 0,
        "{}{}",
        recovered.stdout, recovered.stderr
    );
    let accepted: Vec<(String, String)> = forge
        .requests()
        .iter()
        .filter(|r| r.ok())
        .map(|r| (r.field("name"), r.field("state")))
        .collect();
    let run_states: Vec<&str> = accepted
        .iter()
        .filter(|(context, _)| context == "weft/recoverable")
        .map(|(_, state)| state.as_str())
        .collect();
    assert_eq!(
        run_states.iter().filter(|s| **s == "success").count(),
        1,
        "the run context got a task's status: {accepted:?}"
    );
    assert_eq!(run_states.last(), Some(&"success"), "{accepted:?}");
    let fetch_final = accepted
        .iter()
        .rfind(|(context, _)| context == "weft/recoverable/fetch")
        .map(|(_, state)| state.as_str());
    assert_eq!(fetch_final, Some("success"), "{accepted:?}");
}
