//! Release control, part 2, through the binary (release-control.md sections 4-7):
//! concurrency groups with each policy across several `weft run` processes on one store
//! (an overlap recorder reads every task's start and end from the store), a task's own
//! group (`QueuedForAgent`), a crashed holder whose slot frees only when its lease
//! expired, `--at`/`--in`, cron schedules fired by running servers (two on one store),
//! and re-runs as new attempts (`--failed-only`, `--attempt N`, the API).

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::serve::Served;
use crate::support::{Ran, pipelines, run_in, weft_in};

/// Short leases so that a killed engine's slot frees within the test.
const FAST: &[(&str, &str)] = &[("WEFT_HEARTBEAT_MS", "200"), ("WEFT_LEASE_TTL_MS", "1500")];

fn spawn_run(data: &Path, file: &str, name: &str, extra: &[&str]) -> Child {
    weft_in(data)
        .arg("run")
        .arg(pipelines().join(file))
        .args(["--name", name, "--output", "json"])
        .args(extra)
        .envs(FAST.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weft starts")
}

fn finish(child: Child) -> Ran {
    let output = child.wait_with_output().expect("weft finishes");
    Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn show(data: &Path, run: &str, extra: &[&str]) -> Value {
    let mut args = vec!["runs", "show", run, "--output", "json"];
    args.extend_from_slice(extra);
    let ran = run_in(data, &args, &[]);
    assert_eq!(ran.code, 0, "{ran:?}");
    ran.json()
}

fn pair(operation: &Value) -> (String, String) {
    (
        operation["status"].as_str().unwrap_or_default().to_string(),
        operation["operationStatus"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// When `run`'s non-finally task `task` ran, from the store: (start, end) in ms.
fn interval(data: &Path, run: &str, task: &str) -> Option<(i64, i64)> {
    let doc = show(data, run, &[]);
    let attempts = doc["attempts"].as_array()?;
    let ran: Vec<(i64, i64)> = attempts
        .iter()
        .filter(|a| a["task"] == task)
        .filter_map(|a| Some((a["startedAt"].as_i64()?, a["endedAt"].as_i64()?)))
        .collect();
    Some((
        ran.iter().map(|r| r.0).min()?,
        ran.iter().map(|r| r.1).max()?,
    ))
}

/// No two intervals overlap (a group of limit 1 held).
fn assert_no_overlap(mut intervals: Vec<(String, (i64, i64))>) {
    intervals.sort_by_key(|(_, (start, _))| *start);
    for pair in intervals.windows(2) {
        let ((a, (_, a_end)), (b, (b_start, _))) = (&pair[0], &pair[1]);
        assert!(
            a_end <= b_start,
            "{a} (until {a_end}) and {b} (from {b_start}) overlapped: {intervals:?}"
        );
    }
}

/// Polls `check` on `run`'s document until it holds (at most 30 s).
fn wait_until(data: &Path, run: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ran = run_in(data, &["runs", "show", run, "--output", "json"], &[]);
        if ran.code == 0 {
            let doc = ran.json();
            if check(&doc) {
                return doc;
            }
        }
        assert!(Instant::now() < deadline, "{run}: never {what}: {ran:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `queue`: three processes on one SQLite store run one at a time, in submission order;
/// a waiting run reads `<NotDeployed, Queued>` with why it waits; another group is not
/// held up.
#[test]
fn queue_runs_one_at_a_time_across_processes_in_submission_order() {
    let data = tempfile::tempdir().expect("tmp");
    let data = data.path();
    let mut children = Vec::new();
    for name in ["q1", "q2", "q3"] {
        children.push((name, spawn_run(data, "queue.yaml", name, &[])));
        // Submission order is arrival order.
        wait_until(data, name, "recorded", |_| true);
    }
    let waiting = wait_until(data, "q3", "queued", |doc| doc["phase"] == "Queued");
    let running = wait_until(data, "q1", "running", |doc| {
        doc["phase"] == "Running" || doc["finishedAt"].is_i64()
    });
    if running["phase"] == "Running" {
        assert_eq!(
            pair(&running["operation"]),
            ("InProgress".into(), "PhaseInProgress".into())
        );
    }
    assert_eq!(
        pair(&waiting["operation"]),
        ("NotDeployed".into(), "Queued".into())
    );
    let why = waiting["waitingFor"].as_str().unwrap_or_default();
    assert!(why.starts_with("queued: deploy-prod group"), "{why}");
    let list = run_in(data, &["runs", "list"], &[]);
    assert!(
        list.stdout.contains("queued: deploy-prod group"),
        "{}",
        list.stdout
    );
    // Another group goes at once.
    let other = finish(spawn_run(
        data,
        "queue.yaml",
        "other",
        &["-p", "env=staging", "-p", "sleepMs=0"],
    ));
    assert_eq!(other.code, 0, "{other:?}");
    for (name, child) in children {
        let ran = finish(child);
        assert_eq!(ran.code, 0, "{name}: {ran:?}");
        assert_eq!(ran.json()["run"]["status"], "Succeeded", "{name}");
    }
    let intervals: Vec<(String, (i64, i64))> = ["q1", "q2", "q3"]
        .iter()
        .map(|r| (r.to_string(), interval(data, r, "deploy").expect("ran")))
        .collect();
    assert!(
        intervals.windows(2).all(|w| w[0].1.0 < w[1].1.0),
        "submission order: {intervals:?}"
    );
    assert_no_overlap(intervals);
}

/// `latestOnly`: a run waiting when a newer one arrives ends `Cancelled`/`Superseded`
/// without running (`<NotDeployed, Canceled>`); the holder finishes, the newest runs.
#[test]
fn latest_only_supersedes_waiting_runs() {
    let data = tempfile::tempdir().expect("tmp");
    let data = data.path();
    let holder = spawn_run(
        data,
        "queue-latest-only.yaml",
        "l1",
        &["-p", "sleepMs=1500"],
    );
    wait_until(data, "l1", "running", |doc| doc["phase"] == "Running");
    let older = spawn_run(data, "queue-latest-only.yaml", "l2", &[]);
    wait_until(data, "l2", "queued", |doc| doc["phase"] == "Queued");
    let newest = spawn_run(data, "queue-latest-only.yaml", "l3", &[]);
    let older = finish(older);
    assert_eq!(older.code, 1, "{older:?}");
    let report = older.json();
    assert_eq!(
        (
            report["run"]["status"].as_str(),
            report["run"]["reason"].as_str()
        ),
        (Some("Cancelled"), Some("Superseded"))
    );
    assert_eq!(
        pair(&report["run"]["operation"]),
        ("NotDeployed".into(), "Canceled".into())
    );
    assert!(
        report["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .all(|t| t["attempts"] == 0),
        "nothing of a superseded waiting run ran: {report:#}"
    );
    for (name, child) in [("l1", holder), ("l3", newest)] {
        let ran = finish(child);
        assert_eq!(ran.code, 0, "{name}: {ran:?}");
    }
    assert_no_overlap(vec![
        ("l1".into(), interval(data, "l1", "deploy").expect("l1 ran")),
        ("l3".into(), interval(data, "l3", "deploy").expect("l3 ran")),
    ]);
}

/// `cancelInProgress`: a newer run cancels the running one (`CancelledRunFinally`,
/// `Superseded`: its finally task runs) and starts once it ended.
#[test]
fn cancel_in_progress_cancels_the_running_run_and_starts_after_it() {
    let data = tempfile::tempdir().expect("tmp");
    let data = data.path();
    let running = spawn_run(
        data,
        "queue-cancel-in-progress.yaml",
        "c1",
        &["-p", "sleepMs=20000"],
    );
    wait_until(data, "c1", "running", |doc| doc["phase"] == "Running");
    let started = Instant::now();
    let newer = spawn_run(data, "queue-cancel-in-progress.yaml", "c2", &[]);
    let running = finish(running);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "cancelled, not waited for"
    );
    assert_eq!(running.code, 1, "{running:?}");
    let report = running.json();
    assert_eq!(
        (
            report["run"]["status"].as_str(),
            report["run"]["reason"].as_str()
        ),
        (Some("Cancelled"), Some("Superseded"))
    );
    assert_eq!(
        pair(&report["run"]["operation"]),
        ("Failed".into(), "Canceled".into())
    );
    let tasks = report["tasks"].as_array().expect("tasks");
    assert_eq!(tasks[0]["status"], "Cancelled");
    assert_eq!(tasks[1]["status"], "Succeeded", "finally runs: {report:#}");
    let newer = finish(newer);
    assert_eq!(newer.code, 0, "{newer:?}");
    let c1_end = show(data, "c1", &[])["finishedAt"]
        .as_i64()
        .expect("finished");
    let (c2_start, _) = interval(data, "c2", "deploy").expect("c2 ran");
    assert!(c1_end <= c2_start, "c2 started before c1 ended");
}

/// A task's own group: while one run's `deploy` holds the group, another run's `deploy`
/// waits (`QueuedForAgent`, the run `<InProgress, QueuedForAgent>`) and the two never
/// overlap; the other run's `build`, outside the group, does not wait.
#[test]
fn a_task_group_holds_across_runs() {
    let data = tempfile::tempdir().expect("tmp");
    let data = data.path();
    let first = spawn_run(data, "queue-task.yaml", "t1", &["-p", "sleepMs=5000"]);
    wait_until(data, "t1", "deploying", |doc| {
        doc["attempts"].as_array().is_some_and(|a| {
            a.iter()
                .any(|a| a["task"] == "deploy" && a["phase"] == "Running")
        })
    });
    let second = spawn_run(data, "queue-task.yaml", "t2", &["-p", "sleepMs=100"]);
    let waiting = wait_until(data, "t2", "queued for its group", |doc| {
        doc["taskOperations"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| t["task"] == "deploy" && t["operationStatus"] == "QueuedForAgent")
            || doc["finishedAt"].is_i64()
    });
    assert_eq!(
        pair(&waiting["operation"]),
        ("InProgress".into(), "QueuedForAgent".into()),
        "{waiting:#}"
    );
    for child in [first, second] {
        let ran = finish(child);
        assert_eq!(ran.code, 0, "{ran:?}");
    }
    let (d1, d2) = (
        interval(data, "t1", "deploy").expect("t1"),
        interval(data, "t2", "deploy").expect("t2"),
    );
    assert_no_overlap(vec![("t1".into(), d1), ("t2".into(), d2)]);
    let b2 = interval(data, "t2", "build").expect("t2 build");
    assert!(
        b2.1 <= d1.1,
        "t2's build ran while t1's deploy held the group: {b2:?} {d1:?}"
    );
}

/// kill -9 of the process holding the slot: the waiter gets the slot only once the
/// holder's lease expired, never earlier; the recovered run queues again behind it; at
/// no moment do two runs of the group run.
#[test]
fn a_killed_holder_frees_its_slot_when_its_lease_expires() {
    let data = tempfile::tempdir().expect("tmp");
    let data = data.path();
    let mut holder = spawn_run(data, "queue.yaml", "k1", &["-p", "sleepMs=30000"]);
    wait_until(data, "k1", "running", |doc| doc["phase"] == "Running");
    let waiter = spawn_run(data, "queue.yaml", "k2", &["-p", "sleepMs=1500"]);
    wait_until(data, "k2", "queued", |doc| doc["phase"] == "Queued");
    holder.kill().expect("kill -9");
    let _ = holder.wait();
    let killed_at = chrono_ms();
    let waiter = finish(waiter);
    assert_eq!(waiter.code, 0, "{waiter:?}");
    let (k2_start, k2_end) = interval(data, "k2", "deploy").expect("k2 ran");
    assert!(
        k2_start >= killed_at + 1000,
        "the slot was given away {} ms after the kill, before the lease (1.5 s) could expire",
        k2_start - killed_at
    );
    // The killed run is recovered; it ran after k2 (its slot had been given away).
    let recovered = run_in(
        data,
        &[
            "runs",
            "recover",
            "--recover-timeout",
            "1s",
            "--output",
            "json",
        ],
        FAST,
    );
    // Its task was killed mid-way and it has no recovery strategy: it fails.
    assert_eq!(recovered.code, 1, "{recovered:?}");
    let doc = show(data, "k1", &[]);
    assert_eq!(doc["status"], "Failed", "{doc:#}");
    assert!(doc["finishedAt"].is_i64(), "{doc:#}");
    let finished = doc["finishedAt"].as_i64().unwrap_or_default();
    assert!(
        finished >= k2_end,
        "k1 finished after k2: {finished} < {k2_end}"
    );
}

fn chrono_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// `--in`: the run is created at once in phase `Scheduled` (`<NotDeployed, Scheduled>`,
/// "scheduled for ..."), its task starts no earlier than the time; `--at` in the past and
/// a malformed time are refused with exit 2 and create nothing.
#[test]
fn scheduled_runs_wait_for_their_time() {
    let data = tempfile::tempdir().expect("tmp");
    let data = data.path();
    let asked = chrono_ms();
    let child = spawn_run(
        data,
        "queue.yaml",
        "later",
        &["--in", "2s", "-p", "sleepMs=0"],
    );
    let doc = wait_until(data, "later", "scheduled", |doc| {
        doc["phase"] == "Scheduled"
    });
    assert_eq!(
        pair(&doc["operation"]),
        ("NotDeployed".into(), "Scheduled".into())
    );
    let why = doc["waitingFor"].as_str().unwrap_or_default();
    assert!(why.starts_with("scheduled for 20"), "{why}");
    let ran = finish(child);
    assert_eq!(ran.code, 0, "{ran:?}");
    let (start, _) = interval(data, "later", "deploy").expect("ran");
    assert!(
        start >= asked + 2000,
        "started {} ms after it was asked for",
        start - asked
    );
    for (args, needle) in [
        (vec!["--at", "2001-01-01T00:00:00Z"], "in the past"),
        (vec!["--at", "tomorrow"], "RFC 3339"),
        (vec!["--in", "soon"], "--in"),
    ] {
        let file = pipelines().join("queue.yaml");
        let mut all = vec!["run", file.to_str().expect("utf-8"), "--name", "refused"];
        all.extend(args);
        let ran = run_in(data, &all, &[]);
        assert_eq!(ran.code, 2, "{ran:?}");
        assert!(ran.stderr.contains(needle), "{needle}: {}", ran.stderr);
    }
    let missing = run_in(data, &["runs", "show", "refused"], &[]);
    assert_eq!(missing.code, 2, "nothing was created: {missing:?}");
    // Handed to the store, a run for later says so at once.
    let file = pipelines().join("queue.yaml");
    let detached = run_in(
        data,
        &[
            "run",
            file.to_str().expect("utf-8"),
            "--name",
            "parked",
            "--in",
            "1h",
            "--detach",
        ],
        &[],
    );
    assert_eq!(detached.code, 0, "{detached:?}");
    let list = run_in(data, &["runs", "list"], &[]);
    let row = list
        .stdout
        .lines()
        .find(|l| l.starts_with("parked"))
        .unwrap_or_default();
    assert!(
        row.contains("Scheduled (scheduled for 20"),
        "{}",
        list.stdout
    );
}

/// A per-second cron schedule on two running servers sharing one store: ticks start
/// runs named after them, each tick once; `weft schedules list|remove`; bad schedules
/// are refused (exit 2, API 400) and create nothing.
#[test]
fn cron_schedules_fire_each_tick_once_on_running_servers() {
    let data = tempfile::tempdir().expect("tmp");
    let data = data.path();
    let db = data.join("weft.db");
    let db = db.to_str().expect("utf-8");
    let file = pipelines().join("queue.yaml");
    let file = file.to_str().expect("utf-8");
    for (args, needle) in [
        (vec!["--cron", "not cron"], "not a cron expression"),
        (
            vec!["--cron", "* * * * *", "--timezone", "Mars/Olympus"],
            "not a time zone",
        ),
    ] {
        let mut all = vec!["schedules", "add", "bad", "--db", db];
        all.extend(args);
        all.push(file);
        let ran = run_in(data, &all, &[]);
        assert_eq!(ran.code, 2, "{ran:?}");
        assert!(ran.stderr.contains(needle), "{needle}: {}", ran.stderr);
    }
    let added = run_in(
        data,
        &[
            "schedules",
            "add",
            "tick",
            "--cron",
            "* * * * * *",
            "--timezone",
            "Europe/Paris",
            "--db",
            db,
            file,
            "-p",
            "sleepMs=0",
            "-p",
            "env=cron",
        ],
        &[],
    );
    assert_eq!(added.code, 0, "{added:?}");
    let one = Served::start_with_env(data, &["--db", db], FAST);
    let two = Served::start_with_env(data, &["--db", db], FAST);
    let (status, body) = one.call(
        "POST",
        "/api/v1/schedules",
        Some(&json!({"name": "bad", "cron": "61 * * * *", "run": {"pipeline": "x"}})),
    );
    assert_eq!(status, 400, "{body}");
    std::thread::sleep(Duration::from_millis(3500));
    let removed = run_in(data, &["schedules", "remove", "tick", "--db", db], &[]);
    assert_eq!(removed.code, 0, "{removed:?}");
    let (status, listed) = two.call("GET", "/api/v1/schedules", None);
    assert_eq!((status, listed), (200, json!([])));
    std::thread::sleep(Duration::from_millis(800));
    let (_, runs) = one.call("GET", "/api/v1/runs?limit=100", None);
    let names: Vec<String> = runs
        .as_array()
        .expect("runs")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .filter(|n| n.starts_with("tick-"))
        .map(String::from)
        .collect();
    assert!(
        names.len() >= 2 && names.len() <= 5,
        "about one run a second: {names:?}"
    );
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "each tick once");
    for name in &names {
        let run = one.wait_for(name, |run| run["finishedAt"].is_i64());
        assert_eq!(run["status"], "Succeeded", "{run:#}");
    }
    std::thread::sleep(Duration::from_millis(1500));
    let (_, after) = one.call("GET", "/api/v1/runs?limit=100", None);
    let count = after
        .as_array()
        .expect("runs")
        .iter()
        .filter(|r| r["name"].as_str().is_some_and(|n| n.starts_with("tick-")))
        .count();
    assert_eq!(count, names.len(), "a removed schedule fires no more");
}

/// `weft runs rerun --failed-only`: attempt 2 keeps the task that succeeded (reason
/// `Carried`, its results flow on) and runs the failed one and `finally` again; attempt
/// 1 stays readable; a re-run of a missing run is exit 2, of an unfinished one exit 5;
/// the API does the same (201, 404).
#[test]
fn rerun_failed_only_is_a_new_attempt() {
    let data = tempfile::tempdir().expect("tmp");
    let data = data.path();
    let file = pipelines().join("rerun.yaml");
    let first = run_in(
        data,
        &[
            "run",
            file.to_str().expect("utf-8"),
            "--name",
            "rel",
            "--output",
            "json",
        ],
        &[],
    );
    assert_eq!(first.code, 1, "{first:?}");
    assert_eq!(
        pair(&first.json()["run"]["operation"]),
        ("Failed".into(), "PhaseFailed".into())
    );
    let again = run_in(
        data,
        &[
            "runs",
            "rerun",
            "rel",
            "--failed-only",
            "-p",
            "code=0",
            "--output",
            "json",
        ],
        &[],
    );
    assert_eq!(again.code, 0, "{again:?}");
    let report = again.json();
    assert_eq!(report["run"]["attempt"], 2);
    assert_eq!(report["run"]["status"], "Succeeded");
    let task = |name: &str| {
        report["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .find(|t| t["name"] == name)
            .cloned()
            .expect("task")
    };
    assert_eq!(
        (
            task("build")["reason"].as_str(),
            task("build")["attempts"].as_u64()
        ),
        (Some("Carried"), Some(0))
    );
    assert_eq!(
        task("test")["results"]["saw"],
        "build-1",
        "kept results flow on"
    );
    assert_eq!(task("notify")["attempts"], 1, "finally runs again");
    let latest = show(data, "rel", &[]);
    assert_eq!(
        (latest["attempt"].as_u64(), latest["status"].as_str()),
        (Some(2), Some("Succeeded"))
    );
    assert_eq!(latest["runAttempts"], json!(["rel", "rel~2"]));
    let earlier = show(data, "rel", &["--attempt", "1"]);
    assert_eq!(
        (earlier["attempt"].as_u64(), earlier["status"].as_str()),
        (Some(1), Some("Failed"))
    );
    let missing = run_in(data, &["runs", "rerun", "nope"], &[]);
    assert_eq!(missing.code, 2, "{missing:?}");
    let none = run_in(data, &["runs", "show", "rel", "--attempt", "7"], &[]);
    assert_eq!(none.code, 2, "{none:?}");
    // Unfinished: exit 5.
    let queue = pipelines().join("queue.yaml");
    let slow = spawn_run(data, "queue.yaml", "slow", &["-p", "sleepMs=3000"]);
    let _ = queue;
    wait_until(data, "slow", "running", |doc| doc["phase"] == "Running");
    let busy = run_in(data, &["runs", "rerun", "slow"], &[]);
    assert_eq!(busy.code, 5, "{busy:?}");
    assert!(busy.stderr.contains("not finished"), "{}", busy.stderr);
    assert_eq!(finish(slow).code, 0);
    // The API.
    let db = data.join("weft.db");
    let served = Served::start(data, &["--db", db.to_str().expect("utf-8")]);
    // A run the operator started (its host directories, its HTTP rules) is not the API's
    // to re-run.
    let (status, body) = served.call("POST", "/api/v1/runs/rel/rerun", Some(&json!({})));
    assert_eq!(status, 403, "{body}");
    let (status, body) = served.submit("rerun.yaml", json!({"name": "api-rel"}));
    assert_eq!(status, 201, "{body}");
    let first = served.wait_for("api-rel", |run| run["finishedAt"].is_i64());
    assert_eq!(first["status"], "Failed");
    let (status, body) = served.call(
        "POST",
        "/api/v1/runs/api-rel/rerun",
        Some(&json!({"failedOnly": true, "params": {"code": "0"}})),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["name"], "api-rel~2");
    let second = served.wait_for("api-rel", |run| {
        run["attempt"] == 2 && run["finishedAt"].is_i64()
    });
    assert_eq!(second["status"], "Succeeded", "{second:#}");
    let (status, _) = served.call("POST", "/api/v1/runs/nope/rerun", None);
    assert_eq!(status, 404);
    let (status, earlier) = served.call("GET", "/api/v1/runs/api-rel?attempt=1", None);
    assert_eq!(
        (
            status,
            earlier["attempt"].as_u64(),
            earlier["status"].as_str()
        ),
        (200, Some(1), Some("Failed"))
    );
}

/// A server killed between claiming a tick and creating its run: the tick stays claimed
/// (`firingAt`), and the next server creates that tick's run, once.
#[test]
fn a_tick_claimed_by_a_dying_server_fires_once() {
    let data = tempfile::tempdir().expect("tmp");
    let data = data.path();
    let db = data.join("weft.db");
    let db = db.to_str().expect("utf-8");
    let file = pipelines().join("queue.yaml");
    let added = run_in(
        data,
        &[
            "schedules",
            "add",
            "crash",
            "--cron",
            "* * * * * *",
            "--db",
            db,
            file.to_str().expect("utf-8"),
            "-p",
            "sleepMs=0",
            "-p",
            "env=crash",
        ],
        &[],
    );
    assert_eq!(added.code, 0, "{added:?}");
    let mut env = FAST.to_vec();
    env.push(("WEFT_FAULT", "tick-claimed"));
    let mut dying = Served::start_with_env(data, &["--db", db], &env);
    let deadline = Instant::now() + Duration::from_secs(20);
    while dying.try_wait().is_none() {
        assert!(
            Instant::now() < deadline,
            "the server never reached the fault point"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let listed = run_in(
        data,
        &["schedules", "list", "--db", db, "--output", "json"],
        &[],
    );
    let firing = listed.json()[0]["firingAt"]
        .as_i64()
        .expect("a tick is claimed, not fired");
    let run = format!(
        "crash-{}",
        chrono::DateTime::<chrono::Utc>::from_timestamp_millis(firing)
            .expect("time")
            .format("%Y%m%d-%H%M%S")
    );
    let heir = Served::start_with_env(data, &["--db", db], FAST);
    let done = heir.wait_for(&run, |r| r["finishedAt"].is_i64());
    assert_eq!(done["status"], "Succeeded", "{done:#}");
    let removed = run_in(data, &["schedules", "remove", "crash", "--db", db], &[]);
    assert_eq!(removed.code, 0);
    let (_, runs) = heir.call("GET", "/api/v1/runs?limit=200", None);
    let same = runs
        .as_array()
        .expect("runs")
        .iter()
        .filter(|r| r["name"] == run.as_str())
        .count();
    assert_eq!(same, 1, "the claimed tick's run exists once");
}

/// A scheduled run whose engine is killed before its time: recovered after it, it starts
/// once, never before its time.
#[test]
fn a_scheduled_run_killed_before_its_time_starts_once() {
    let data = tempfile::tempdir().expect("tmp");
    let data = data.path();
    let asked = chrono_ms();
    let mut waiting = spawn_run(
        data,
        "queue.yaml",
        "sched",
        &["--in", "2s", "-p", "sleepMs=0"],
    );
    wait_until(data, "sched", "scheduled", |doc| {
        doc["phase"] == "Scheduled"
    });
    waiting.kill().expect("kill -9");
    let _ = waiting.wait();
    std::thread::sleep(Duration::from_millis(1600));
    let recovered = run_in(
        data,
        &[
            "runs",
            "recover",
            "--recover-timeout",
            "1s",
            "--output",
            "json",
        ],
        FAST,
    );
    assert_eq!(recovered.code, 0, "{recovered:?}");
    let doc = show(data, "sched", &[]);
    assert_eq!(doc["status"], "Succeeded", "{doc:#}");
    let starts: Vec<i64> = doc["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .filter(|a| a["task"] == "deploy")
        .filter_map(|a| a["startedAt"].as_i64())
        .collect();
    assert_eq!(starts.len(), 1, "started once: {doc:#}");
    assert!(starts[0] >= asked + 2000, "not before its time");
}

/// A re-run killed in its first task is recovered as that attempt: attempt 2 finishes,
/// what it kept stays kept, attempt 1 is unchanged.
#[test]
fn a_rerun_killed_in_its_first_task_recovers_as_that_attempt() {
    let data = tempfile::tempdir().expect("tmp");
    let data = data.path();
    let file = pipelines().join("rerun.yaml");
    let first = run_in(
        data,
        &[
            "run",
            file.to_str().expect("utf-8"),
            "--name",
            "crashy",
            "--output",
            "json",
        ],
        &[],
    );
    assert_eq!(first.code, 1, "{first:?}");
    let mut env = FAST.to_vec();
    env.push(("WEFT_FAULT", "task-start-after"));
    let killed = run_in(
        data,
        &["runs", "rerun", "crashy", "--failed-only", "-p", "code=0"],
        &env,
    );
    assert_eq!(killed.code, -1, "killed at the fault point: {killed:?}");
    std::thread::sleep(Duration::from_millis(1600));
    let recovered = run_in(
        data,
        &[
            "runs",
            "recover",
            "--recover-timeout",
            "1s",
            "--output",
            "json",
        ],
        FAST,
    );
    assert!(recovered.code <= 1, "{recovered:?}");
    let second = show(data, "crashy", &[]);
    assert_eq!(second["attempt"], 2, "{second:#}");
    assert!(second["finishedAt"].is_i64(), "{second:#}");
    let build = second["report"]["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["name"] == "build")
        .cloned()
        .expect("build");
    assert_eq!(build["reason"], "Carried", "{second:#}");
    let first = show(data, "crashy", &["--attempt", "1"]);
    assert_eq!(first["status"], "Failed", "attempt 1 is unchanged");
}

/// A run that succeeded with warnings reads `<PartiallySucceeded, PhasePartiallySucceeded>`.
#[test]
fn warnings_read_as_partially_succeeded() {
    let data = tempfile::tempdir().expect("tmp");
    let file = crate::support::root().join("examples/warning.yaml");
    let ran = run_in(
        data.path(),
        &["run", file.to_str().expect("utf-8"), "--output", "json"],
        &[],
    );
    assert_eq!(ran.code, 0, "{ran:?}");
    let report = ran.json();
    assert_eq!(report["run"]["status"], "SucceededWithWarnings");
    assert_eq!(
        pair(&report["run"]["operation"]),
        (
            "PartiallySucceeded".into(),
            "PhasePartiallySucceeded".into()
        )
    );
}

/// The pairs of waits before anything ran and of a run that ends on an approval:
/// `<NotDeployed, Pending>`, `<InProgress, Pending>`, `<Succeeded, Approved>`,
/// `<NotDeployed, EvaluatingGates>`.
#[test]
fn waits_before_anything_ran_and_a_run_ending_on_an_approval() {
    let data = tempfile::tempdir().expect("tmp");
    let data = data.path();
    let child = spawn_run(data, "approval-around.yaml", "around", &[]);
    let approve = |task: &str| {
        let ran = run_in(data, &["approve", "around", task, "--as", "alice"], &[]);
        assert_eq!(ran.code, 0, "{ran:?}");
    };
    let first = wait_until(data, "around", "pending", |doc| {
        doc["waits"]
            .as_array()
            .is_some_and(|w| w.iter().any(|w| w["open"] == true))
    });
    assert_eq!(
        pair(&first["operation"]),
        ("NotDeployed".into(), "Pending".into())
    );
    approve("deploy.approval-before");
    let later = wait_until(data, "around", "pending again", |doc| {
        doc["waits"].as_array().is_some_and(|w| {
            w.iter()
                .any(|w| w["open"] == true && w["task"] == "deploy.approval-after")
        })
    });
    assert_eq!(
        pair(&later["operation"]),
        ("InProgress".into(), "Pending".into())
    );
    approve("deploy.approval-after");
    let ran = finish(child);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_eq!(
        pair(&ran.json()["run"]["operation"]),
        ("Succeeded".into(), "Approved".into())
    );

    let health = crate::release::Health::start(false);
    let url = format!("url={}", health.url());
    let rule = health.rule();
    let gated = spawn_run(
        data,
        "gate-first.yaml",
        "gated",
        &["-p", &url, "--allow-http", &rule],
    );
    let sampling = wait_until(data, "gated", "sampled", |doc| {
        doc["operation"]["operationStatus"] == "EvaluatingGates"
    });
    assert_eq!(
        pair(&sampling["operation"]),
        ("NotDeployed".into(), "EvaluatingGates".into())
    );
    health.set(true);
    let ran = finish(gated);
    assert_eq!(ran.code, 0, "{ran:?}");
}
