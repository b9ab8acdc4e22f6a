//! Crashes while a run waits (release-control.md: a waiting run holds nothing; the store
//! holds the wait): the engine is killed with SIGKILL while an approval waits, between two
//! votes, and while a gate is being sampled, then another engine takes the run over. After
//! recovery the run still waits, no vote is lost or counted twice, a gate's stable window
//! restarts (it never counts time it did not observe), and deadlines hold across the
//! restart. A crash matrix kills a release with every kind of wait at every fault point.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::release::{
    decide, finish, is_waiting, show, spawn_run, spawn_run_with_env, wait_of, wait_until,
};
use crate::support::{Ran, run_in, weft_in};

/// `weft runs recover` taking over at once (the killed engine's heartbeat is fresh).
fn recover(data: &Path) -> Ran {
    run_in(data, &["runs", "recover", "--recover-timeout", "0s"], &[])
}

/// The identities who voted on `task`'s wait, in order.
fn voters(shown: &Value, task: &str) -> Vec<String> {
    wait_of(shown, task)
        .and_then(|w| w["votes"].as_array())
        .map(|votes| {
            votes
                .iter()
                .filter_map(|v| v["identity"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[track_caller]
fn killed(ran: &Ran, fault: &str) {
    assert_eq!(
        ran.code, -1,
        "{fault}: expected SIGKILL, got {}: {}",
        ran.code, ran.stderr
    );
    assert!(
        ran.stderr.contains("fault point reached"),
        "{fault}: {}",
        ran.stderr
    );
}

#[test]
fn killed_while_an_approval_waits_its_deadline_holds_after_recovery() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let data = scratch.path();
    let child = spawn_run_with_env(
        data,
        "approval-timeout.yaml",
        "deadline",
        &[],
        &[("WEFT_FAULT", "wait-opened")],
    );
    killed(&finish(child), "wait-opened");
    let before = show(data, "deadline");
    let wait = wait_of(&before, "approve")
        .expect("the wait is in the store")
        .clone();
    assert_eq!(wait["open"], true, "{before:#}");
    // The engine is gone for a while; the wait's clock goes on.
    std::thread::sleep(Duration::from_millis(1500));
    let started = chrono::Utc::now();
    let ran = recover(data);
    assert_eq!(ran.code, 1, "{}\n{}", ran.stdout, ran.stderr);
    let after = show(data, "deadline");
    let closed = wait_of(&after, "approve").expect("wait");
    // It timed out 3 s after it began waiting, not 3 s after the new engine took over
    // (which would close it at least 3 s after the recovery started).
    let closed_at = closed["closedAt"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .expect("closedAt");
    assert!(
        closed_at < started + chrono::Duration::milliseconds(3000),
        "the deadline restarted: closed {closed_at}, recovery started {started}"
    );
    assert_eq!(closed["since"], wait["since"]);
    assert_eq!(closed["deadline"], wait["deadline"]);
    assert_eq!(closed["outcome"], "ApprovalTimedOut");
    assert_eq!(after["status"], "Failed");
}

#[test]
fn killed_between_two_votes_no_vote_is_lost_or_counted_twice() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let data = scratch.path();
    // The second progress is alice's vote counted ("1 of 2"): the engine dies there.
    let child = spawn_run_with_env(
        data,
        "approval.yaml",
        "votes",
        &[],
        &[("WEFT_FAULT", "wait-progress:2")],
    );
    wait_until(data, "votes", "the approval waits", |s| {
        is_waiting(s, "approve")
    });
    assert_eq!(
        decide(
            data,
            "approve",
            "votes",
            "approve",
            "alice",
            &["-m", "first"]
        )
        .code,
        0
    );
    killed(&finish(child), "wait-progress:2");
    // Nobody runs it now: it still waits, with alice's vote.
    let shown = show(data, "votes");
    assert!(is_waiting(&shown, "approve"), "{shown:#}");
    assert_eq!(voters(&shown, "approve"), ["alice"]);
    let engine = weft_in(data)
        .args(["runs", "recover", "--recover-timeout", "0s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("recover starts");
    // A second vote by alice is still refused; bob's completes the approval.
    let again = decide(data, "approve", "votes", "approve", "alice", &[]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(again.stderr.contains("already voted"), "{}", again.stderr);
    assert_eq!(
        decide(data, "approve", "votes", "approve", "bob", &[]).code,
        0
    );
    let ran = finish(engine);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    let shown = show(data, "votes");
    assert_eq!(shown["status"], "Succeeded", "{shown:#}");
    assert_eq!(voters(&shown, "approve"), ["alice", "bob"]);
    let approve = shown["report"]["tasks"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "approve"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(approve["results"]["approvers"], r#"["alice","bob"]"#);
    // One wait, opened once and closed once.
    assert_eq!(
        shown["waits"].as_array().map(Vec::len),
        Some(1),
        "{shown:#}"
    );
}

#[test]
fn killed_while_a_gate_samples_its_stable_window_restarts() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let data = scratch.path();
    // Killed at the 5th sample: passing for about a second of the 2 s window.
    let child = spawn_run_with_env(
        data,
        "gate-window.yaml",
        "window",
        &[],
        &[("WEFT_FAULT", "gate-sampling:5")],
    );
    killed(&finish(child), "gate-sampling:5");
    let before = show(data, "window");
    let wait = wait_of(&before, "window").expect("wait").clone();
    assert_eq!(wait["open"], true);
    let started = Instant::now();
    let ran = recover(data);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    // The new engine observed a whole window itself: the second it saw before the crash
    // does not count.
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "passed after {:?}: the window counted time it did not observe",
        started.elapsed()
    );
    let after = show(data, "window");
    assert_eq!(after["status"], "Succeeded");
    assert_eq!(
        wait_of(&after, "window").expect("wait")["since"],
        wait["since"]
    );
}

/// Casts the release's decisions as soon as each is possible, over crashes and
/// recoveries, until stopped: alice and bob approve `approve`, ops resumes `check`.
struct Decider {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Decider {
    fn start(data: PathBuf, run: String) -> Decider {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut pending = vec![
                ("approve", "approve", "alice"),
                ("approve", "approve", "bob"),
                ("resume", "check", "ops"),
            ];
            let mut unexpected = Vec::new();
            while !pending.is_empty() && !flag.load(Ordering::SeqCst) {
                let shown = show(&data, &run);
                pending.retain(|(verb, task, who)| {
                    if !is_waiting(&shown, task) {
                        return true;
                    }
                    let ran = decide(&data, verb, &run, task, who, &[]);
                    if ran.code == 0 || ran.stderr.contains("already voted") {
                        return false;
                    }
                    if !ran.stderr.contains("no longer waiting")
                        && !ran.stderr.contains("stopped waiting")
                    {
                        unexpected.push(format!("{verb} {task} as {who}: {}", ran.stderr));
                    }
                    true
                });
                std::thread::sleep(Duration::from_millis(100));
            }
            unexpected
        });
        Decider {
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

const POINTS: &[(&str, u32)] = &[
    ("task-start-before", 3),
    ("task-start-after", 3),
    ("task-finish-before", 3),
    ("task-finish-after", 3),
    ("wait-opened", 3),
    ("wait-progress", 4),
    ("gate-sampling", 3),
    ("finally", 1),
    ("final-status-before", 1),
];

#[test]
fn sigkill_at_every_point_of_a_release_then_recovery_decides_each_wait_once() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut crashed = Vec::new();
    let mut failures = Vec::new();
    for (point, max) in POINTS {
        for n in 1..=*max {
            let fault = format!("{point}:{n}");
            let run = format!("crash-{point}-{n}");
            let data = scratch.path().join(&run);
            std::fs::create_dir_all(&data).expect("dir");
            let decider = Decider::start(data.clone(), run.clone());
            let child = spawn_run_with_env(
                &data,
                "release-crash.yaml",
                &run,
                &[],
                &[("WEFT_FAULT", &fault)],
            );
            let first = finish(child);
            if first.code == 0 {
                decider.stop();
                continue; // not reached n times in this run
            }
            if first.code != -1 {
                failures.push(format!("{fault}: exit {}: {}", first.code, first.stderr));
                decider.stop();
                continue;
            }
            crashed.push(fault.clone());
            let ran = recover(&data);
            let unexpected = decider.stop();
            let shown = show(&data, &run);
            let mut problems = Vec::new();
            if ran.code != 0 || shown["status"] != "Succeeded" {
                problems.push(format!(
                    "recover exit {} status {}: {}",
                    ran.code, shown["status"], ran.stderr
                ));
            }
            if voters(&shown, "approve") != ["alice", "bob"] {
                problems.push(format!("approve votes {:?}", voters(&shown, "approve")));
            }
            if voters(&shown, "check") != ["ops"] {
                problems.push(format!("check decisions {:?}", voters(&shown, "check")));
            }
            let waits = shown["waits"].as_array().cloned().unwrap_or_default();
            if waits.len() != 3 || waits.iter().any(|w| w["open"] == true) {
                problems.push(format!("waits {waits:?}"));
            }
            let deploy = shown["report"]["tasks"]
                .as_array()
                .and_then(|t| t.iter().find(|t| t["name"] == "deploy"))
                .map(|t| t["results"]["message"].clone())
                .unwrap_or_default();
            if deploy != r#"deployed after ["alice","bob"]"# {
                problems.push(format!("deploy saw {deploy}"));
            }
            problems.extend(unexpected);
            if !problems.is_empty() {
                failures.push(format!("{fault}: {}", problems.join("; ")));
            }
        }
    }
    eprintln!(
        "release crash matrix: {} crash points tried: {crashed:?}",
        crashed.len()
    );
    assert!(
        crashed.len() >= 15,
        "too few crash points reached: {crashed:?}"
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn a_stored_wait_is_answered_by_the_decisions_cast_while_no_engine_ran() {
    // Decisions cast while the run is orphaned count as soon as an engine takes it over.
    let scratch = tempfile::tempdir().expect("tempdir");
    let data = scratch.path();
    let child = spawn_run(data, "intervention.yaml", "orphan", &["--detach"]);
    let ran = finish(child);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    // No engine: the intervention is not open yet, so it cannot be decided.
    let early = decide(data, "resume", "orphan", "check", "ops", &[]);
    assert_eq!(early.code, 2, "{}", early.stderr);
    let engine = weft_in(data)
        .args(["runs", "recover", "--recover-timeout", "0s"])
        .env("WEFT_FAULT", "wait-opened")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("recover starts");
    killed(&finish(engine), "wait-opened");
    assert_eq!(
        decide(data, "resume", "orphan", "check", "ops", &["-m", "fine"]).code,
        0
    );
    let ran = recover(data);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    let shown = show(data, "orphan");
    assert_eq!(shown["status"], "Succeeded", "{shown:#}");
}
