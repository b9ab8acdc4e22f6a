//! Release control through the `weft` binary (release-control.md sections 1-3 and 7):
//! approvals by two people, a reject, a timeout, a deferral, manual interventions resumed
//! and rejected, gates that pass once their condition holds and gates that time out,
//! hostile gates contained, `weft run --detach`, the forge told what a run waits for, and
//! every refused decision (exit 2, nothing changes). Crashes while waiting are in
//! `release_crash.rs`; the API in `release_api.rs`.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fake_forge::FakeForge;
use crate::support::{Ran, Run, pipelines, run_in, weft_in};

/// A health endpoint whose answer a test flips: 503 until `healthy` is set, then 200.
pub struct Health {
    port: u16,
    healthy: Arc<AtomicBool>,
    hits: Arc<AtomicUsize>,
}

impl Health {
    pub fn start(healthy: bool) -> Health {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let flag = Arc::new(AtomicBool::new(healthy));
        let hits = Arc::new(AtomicUsize::new(0));
        let (answer, count) = (flag.clone(), hits.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                count.fetch_add(1, Ordering::SeqCst);
                let (status, body) = if answer.load(Ordering::SeqCst) {
                    ("200 OK", "ok")
                } else {
                    ("503 Service Unavailable", "down")
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Health {
            port,
            healthy: flag,
            hits,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/health", self.port)
    }

    /// The `--allow-http` rule that lets a run's plugins reach it (a loopback address).
    pub fn rule(&self) -> String {
        format!("!private:127.0.0.1:{}", self.port)
    }

    pub fn set(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::SeqCst);
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

pub fn pipeline(name: &str) -> String {
    pipelines().join(name).to_string_lossy().into_owned()
}

/// `weft run FILE --output json --name NAME ...` in the background.
pub fn spawn_run(data: &Path, file: &str, name: &str, extra: &[&str]) -> Child {
    spawn_run_with_env(data, file, name, extra, &[])
}

/// [`spawn_run`] with extra environment variables (`WEFT_FAULT`).
pub fn spawn_run_with_env(
    data: &Path,
    file: &str,
    name: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Child {
    weft_in(data)
        .args(["run", &pipeline(file), "--output", "json", "--name", name])
        .args(extra)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weft starts")
}

/// Waits for a background `weft` and reads what it printed.
pub fn finish(child: Child) -> Ran {
    let output = child.wait_with_output().expect("weft finishes");
    Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `weft runs show RUN --output json`.
pub fn show(data: &Path, run: &str) -> Value {
    let ran = run_in(data, &["runs", "show", run, "--output", "json"], &[]);
    if ran.code != 0 {
        return Value::Null;
    }
    ran.json()
}

/// Polls `weft runs show` until `done` holds (at most 60 s).
#[track_caller]
pub fn wait_until(data: &Path, run: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let shown = show(data, run);
        if done(&shown) {
            return shown;
        }
        assert!(
            Instant::now() < deadline,
            "run {run} never got to: {what}; last seen {shown:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The stored wait of `task` (its latest attempt).
pub fn wait_of<'a>(shown: &'a Value, task: &str) -> Option<&'a Value> {
    shown["waits"]
        .as_array()?
        .iter()
        .filter(|w| w["task"] == task)
        .max_by_key(|w| w["attempt"].as_u64())
}

/// Whether `task` waits now.
pub fn is_waiting(shown: &Value, task: &str) -> bool {
    wait_of(shown, task).is_some_and(|w| w["open"] == true)
}

/// The `(status, operationStatus)` of the run, as `weft runs show` gives it.
pub fn operation(shown: &Value) -> (String, String) {
    let op = &shown["operation"];
    (
        op["status"].as_str().unwrap_or_default().to_string(),
        op["operationStatus"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// `weft approve|resume RUN TASK --as WHO ...`.
pub fn decide(data: &Path, verb: &str, run: &str, task: &str, who: &str, extra: &[&str]) -> Ran {
    let mut args = vec![verb, run, task, "--as", who];
    args.extend_from_slice(extra);
    run_in(data, &args, &[])
}

/// An identities file (mode 0600) giving `carol` the `release-managers` group.
fn identities(dir: &Path) -> PathBuf {
    let path = dir.join("identities.json");
    std::fs::create_dir_all(dir).expect("dir");
    std::fs::write(
        &path,
        r#"{"carol": {"groups": ["release-managers"]}, "dave": {"groups": ["qa"]}}"#,
    )
    .expect("write identities");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    path
}

#[test]
fn two_approvers_vote_and_refused_votes_change_nothing() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let data = scratch.path();
    let ids = identities(data);
    let ids = ids.to_string_lossy().into_owned();
    let child = spawn_run(data, "approval.yaml", "two", &[]);
    let shown = wait_until(data, "two", "the approval waits", |s| {
        is_waiting(s, "approve")
    });
    assert_eq!(
        operation(&shown),
        ("InProgress".into(), "Pending".into()),
        "build ran, an approval waits"
    );

    // Refused: not listed, unknown run, unknown task, a task that is not waiting, the
    // wrong verb. Each exits 2 with a message saying why, and no vote is stored.
    let refused = [
        (
            decide(data, "approve", "two", "approve", "mallory", &[]),
            "not",
        ),
        (
            decide(data, "approve", "nope", "approve", "alice", &[]),
            "no run named `nope`",
        ),
        (
            decide(data, "approve", "two", "nope", "alice", &[]),
            "has no task `nope`",
        ),
        (
            decide(data, "approve", "two", "deploy", "alice", &[]),
            "is not waiting",
        ),
        (
            decide(data, "resume", "two", "approve", "alice", &[]),
            "use `weft approve`",
        ),
        (
            decide(
                data,
                "approve",
                "two",
                "approve",
                "dave",
                &["--identities", &ids],
            ),
            "not",
        ),
    ];
    for (ran, says) in &refused {
        assert_eq!(ran.code, 2, "{}", ran.stderr);
        assert!(ran.stderr.contains(says), "{says:?} not in {}", ran.stderr);
    }
    let shown = show(data, "two");
    let votes = wait_of(&shown, "approve").expect("wait")["votes"].clone();
    assert_eq!(votes, Value::Array(vec![]), "refused votes were stored");

    let first = decide(data, "approve", "two", "approve", "alice", &["-m", "lgtm"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        first.stdout.contains("alice approved `approve`"),
        "{}",
        first.stdout
    );
    let twice = decide(data, "approve", "two", "approve", "alice", &[]);
    assert_eq!(twice.code, 2);
    assert!(twice.stderr.contains("already"), "{}", twice.stderr);
    let shown = wait_until(data, "two", "1 vote stored", |s| {
        wait_of(s, "approve").is_some_and(|w| w["votes"].as_array().map(Vec::len) == Some(1))
    });
    assert!(
        is_waiting(&shown, "approve"),
        "one of two approvals does not approve"
    );

    // carol approves through her group.
    let second = decide(
        data,
        "approve",
        "two",
        "approve",
        "carol",
        &["--identities", &ids],
    );
    assert_eq!(second.code, 0, "{}", second.stderr);
    let ran = finish(child);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let run = Run(ran.json());
    run.expect_run("Succeeded", "Succeeded", "Succeeded", "Succeeded");
    run.expect_tasks(&[
        ("approve", "Succeeded", ""),
        ("deploy", "Succeeded", ""),
        ("notify", "Succeeded", ""),
    ]);
    let approve = run.task("approve");
    assert_eq!(approve["results"]["decision"], "approved");
    assert_eq!(approve["results"]["approvers"], r#"["alice","carol"]"#);
    assert_eq!(approve["operation"]["operationStatus"], "Approved");
    assert_eq!(
        run.task("deploy")["results"]["message"],
        r#"deployed after ["alice","carol"]"#
    );
    assert_eq!(
        run.task("notify")["results"]["message"],
        "approval Succeeded"
    );
    // The votes are journaled once each, with who, what, the message and when.
    let shown = show(data, "two");
    let votes = wait_of(&shown, "approve").expect("wait")["votes"].clone();
    let who: Vec<(&str, &str, &str)> = votes
        .as_array()
        .expect("votes")
        .iter()
        .map(|v| {
            (
                v["identity"].as_str().unwrap_or_default(),
                v["decision"].as_str().unwrap_or_default(),
                v["message"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        who,
        [("alice", "approve", "lgtm"), ("carol", "approve", "")]
    );
    assert!(votes[0]["at"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(
        operation(&shown),
        ("Succeeded".into(), "PhaseSucceeded".into())
    );
    // And `weft runs show` prints them for people.
    let text = run_in(data, &["runs", "show", "two"], &[]);
    assert!(text.stdout.contains("alice approve"), "{}", text.stdout);
}

#[test]
fn a_reject_stops_the_run_and_finally_reports_it() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let data = scratch.path();
    let forge = FakeForge::start();
    let report = format!(
        "gitlab:url={},project=group/app,sha=0123abcd,token-secret=forge-token",
        forge.url()
    );
    let rule = forge.rule();
    let child = weft_in(data)
        .args([
            "run",
            &pipeline("approval.yaml"),
            "--output",
            "json",
            "--name",
            "rej",
        ])
        .args([
            "--report",
            &report,
            "--secret",
            "forge-token=env:FORGE_TOKEN",
        ])
        .args(["--allow-http", &rule])
        .env("FORGE_TOKEN", "glpat-release-test-token-01")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weft starts");
    wait_until(data, "rej", "the approval waits", |s| {
        is_waiting(s, "approve")
    });
    // While it waits, the forge is told what for (and the run is still going). GitLab
    // refuses a second `running` (`400`: no transition from running to running), so when
    // `running` was delivered before the wait began, the wait's description is sent and
    // refused: what counts is that weft told it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let waiting = loop {
        let found = forge.requests().into_iter().rfind(|r| {
            r.field("description")
                .contains("waiting for approval of approve")
        });
        if let Some(found) = found {
            break found;
        }
        assert!(
            Instant::now() < deadline,
            "the forge never heard of the wait: {:?}",
            forge.requests()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(waiting.field("state"), "running");
    assert!(
        waiting.field("description").contains("(0 of 2 approvals)"),
        "{}",
        waiting.field("description")
    );

    let rejected = decide(
        data,
        "approve",
        "rej",
        "approve",
        "bob",
        &["--reject", "-m", "not on a Friday"],
    );
    assert_eq!(rejected.code, 0, "{}", rejected.stderr);
    let ran = finish(child);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let run = Run(ran.json());
    run.expect_run("Failed", "Failed", "Failed", "Failed");
    run.expect_tasks(&[
        ("build", "Succeeded", ""),
        ("approve", "Rejected", "Rejected"),
        ("deploy", "Skipped", "RunStopping"),
        ("notify", "Succeeded", ""),
    ]);
    assert_eq!(
        run.task("approve")["message"],
        "rejected by bob: not on a Friday"
    );
    assert_eq!(run.task("notify")["results"]["message"], "approval Failed");
    assert_eq!(run.0["run"]["operation"]["operationStatus"], "Rejected");
    // The forge's final status is failed and names who rejected and why.
    let last = forge
        .requests()
        .into_iter()
        .rfind(|r| r.ok())
        .expect("a final status");
    assert_eq!(last.field("state"), "failed");
    let description = last.field("description");
    assert!(
        description.contains("bob") && description.contains("not on a Friday"),
        "{description}"
    );
}

#[test]
fn an_undecided_approval_times_out() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let ran = run_in(
        scratch.path(),
        &[
            "run",
            &pipeline("approval-timeout.yaml"),
            "--output",
            "json",
        ],
        &[],
    );
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "timed out early"
    );
    let run = Run(ran.json());
    run.expect_run("Failed", "Failed", "Failed", "Failed");
    run.expect_tasks(&[
        ("approve", "Rejected", "ApprovalTimedOut"),
        ("deploy", "Skipped", "RunStopping"),
    ]);
    // Nothing ran before the approval: the release was never deployed.
    assert_eq!(
        run.0["run"]["operation"],
        serde_json::json!({"status": "NotDeployed", "operationStatus": "Rejected"})
    );
}

#[test]
fn a_deferred_approval_succeeds_at_its_time() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let data = scratch.path();
    let child = spawn_run(data, "approval.yaml", "later", &[]);
    wait_until(data, "later", "the approval waits", |s| {
        is_waiting(s, "approve")
    });
    let at = chrono::Utc::now() + chrono::Duration::seconds(3);
    let at_text = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let a = decide(
        data,
        "approve",
        "later",
        "approve",
        "alice",
        &["--defer-until", &at_text],
    );
    assert_eq!(a.code, 0, "{}", a.stderr);
    let b = decide(data, "approve", "later", "approve", "bob", &[]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    let shown = wait_until(data, "later", "deferred", |s| operation(s).1 == "Deferred");
    assert_eq!(operation(&shown).0, "InProgress");
    // Deferring is for approving votes only.
    let bad = decide(
        data,
        "approve",
        "later",
        "approve",
        "carol",
        &["--reject", "--defer-until", &at_text],
    );
    assert_eq!(bad.code, 2);
    let bad_time = decide(
        data,
        "approve",
        "later",
        "approve",
        "carol",
        &["--defer-until", "tomorrow"],
    );
    assert_eq!(bad_time.code, 2);
    assert!(bad_time.stderr.contains("RFC 3339"), "{}", bad_time.stderr);
    let ran = finish(child);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let at = chrono::DateTime::parse_from_rfc3339(&at_text).expect("time");
    assert!(
        chrono::Utc::now() >= at,
        "the approval succeeded before its deferral"
    );
    Run(ran.json()).expect_tasks(&[("approve", "Succeeded", ""), ("deploy", "Succeeded", "")]);
}

#[test]
fn a_manual_intervention_is_resumed_or_rejected_by_whom_it_names() {
    let scratch = tempfile::tempdir().expect("tempdir");
    for (name, reject) in [("resumed", false), ("rejected", true)] {
        let data = scratch.path().join(name);
        let child = spawn_run(&data, "intervention.yaml", name, &[]);
        let shown = wait_until(&data, name, "the intervention waits", |s| {
            is_waiting(s, "check")
        });
        assert_eq!(
            operation(&shown),
            ("InProgress".into(), "ManualInterventionPending".into())
        );
        let wrong = decide(&data, "resume", name, "check", "alice", &[]);
        assert_eq!(wrong.code, 2, "only ops may decide: {}", wrong.stderr);
        let approve = decide(&data, "approve", name, "check", "ops", &[]);
        assert_eq!(approve.code, 2);
        assert!(
            approve.stderr.contains("use `weft resume`"),
            "{}",
            approve.stderr
        );
        let mut extra = vec!["-m", "error rate is fine"];
        if reject {
            extra = vec!["--reject", "-m", "error rate 5%"];
        }
        let decided = decide(&data, "resume", name, "check", "ops", &extra);
        assert_eq!(decided.code, 0, "{}", decided.stderr);
        let ran = finish(child);
        let run = Run(ran.json());
        if reject {
            assert_eq!(ran.code, 1, "{}", ran.stderr);
            run.expect_tasks(&[
                ("check", "Rejected", "Rejected"),
                ("promote", "Skipped", "RunStopping"),
            ]);
            assert_eq!(
                run.task("check")["message"],
                "rejected by ops: error rate 5%"
            );
        } else {
            assert_eq!(ran.code, 0, "{}", ran.stderr);
            run.expect_tasks(&[("check", "Succeeded", ""), ("promote", "Succeeded", "")]);
            assert_eq!(run.task("check")["results"]["decision"], "resumed");
        }
    }
}

#[test]
fn a_gate_passes_once_its_condition_holds_for_stable_for() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let data = scratch.path();
    let health = Health::start(false);
    let url = format!("url={}", health.url());
    let rule = health.rule();
    let child = spawn_run(
        data,
        "gate.yaml",
        "gate",
        &["-p", &url, "--allow-http", &rule],
    );
    let shown = wait_until(data, "gate", "the gate samples", |s| {
        is_waiting(s, "healthy")
    });
    assert_eq!(
        operation(&shown),
        ("InProgress".into(), "EvaluatingGates".into()),
        "deploy-staging ran, the gate is sampled"
    );
    // Failing samples first (a few), then the condition turns true and stays true.
    let deadline = Instant::now() + Duration::from_secs(20);
    while health.hits() < 3 {
        assert!(Instant::now() < deadline, "the gate is not sampled");
        std::thread::sleep(Duration::from_millis(50));
    }
    let turned = Instant::now();
    health.set(true);
    let ran = finish(child);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(
        turned.elapsed() >= Duration::from_secs(1),
        "passed before holding for stableFor"
    );
    Run(ran.json()).expect_tasks(&[
        ("healthy", "Succeeded", ""),
        ("deploy-prod", "Succeeded", ""),
    ]);
    // Every sample is in the gate's log, failed ones with what they saw.
    let logs = run_in(data, &["runs", "logs", "gate", "healthy"], &[]);
    assert!(logs.stdout.contains("not yet: GET"), "{}", logs.stdout);
    assert!(logs.stdout.contains("HTTP 503"), "{}", logs.stdout);
    assert!(logs.stdout.contains("passed: GET"), "{}", logs.stdout);
}

#[test]
fn a_gate_that_never_passes_fails_at_its_timeout() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let health = Health::start(false);
    let url = format!("url={}", health.url());
    let rule = health.rule();
    let started = Instant::now();
    let ran = run_in(
        scratch.path(),
        &[
            "run",
            &pipeline("gate-timeout.yaml"),
            "--output",
            "json",
            "-p",
            &url,
            "--allow-http",
            &rule,
        ],
        &[],
    );
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert!(started.elapsed() >= Duration::from_secs(2));
    let run = Run(ran.json());
    run.expect_tasks(&[
        ("healthy", "Failed", "GatesFailed"),
        ("deploy", "Skipped", "RunStopping"),
    ]);
    assert!(
        run.task("healthy")["message"]
            .as_str()
            .is_some_and(|m| m.contains("503")),
        "{:#}",
        run.task("healthy")
    );
    assert_eq!(
        run.0["run"]["operation"],
        serde_json::json!({"status": "Failed", "operationStatus": "GatesFailed"})
    );
}

#[test]
fn a_hostile_gate_is_contained_and_counts_as_failed_samples() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let plugins = crate::support::plugin_dir().to_string_lossy().into_owned();
    for (mode, logged) in [
        // Stopped at the gate's timeout: by the engine, or by the sample's own wall clock
        // (which never outlasts the gate's timeout), whichever comes first.
        (
            "loop",
            &[
                "gate sample still running at the gate's timeout",
                "gate sample 0: error",
            ][..],
        ),
        ("memory", &["MemoryLimitExceeded"][..]),
        ("http", &["blocked"][..]),
    ] {
        let data = scratch.path().join(mode);
        let name = format!("hostile-{mode}");
        let started = Instant::now();
        let ran = run_in(
            &data,
            &[
                "run",
                &pipeline("gate-hostile.yaml"),
                "--output",
                "json",
                "--name",
                &name,
                "--plugins",
                &plugins,
                "-p",
                &format!("mode={mode}"),
                // It imports wasi:http: without a rule it is not even instantiated.
                "--allow-http",
                "allowed.invalid",
            ],
            &[],
        );
        assert_eq!(ran.code, 1, "{mode}: {}", ran.stderr);
        // The gate's 3 s timeout holds even while a sample spins.
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{mode}: not contained"
        );
        Run(ran.json()).expect_tasks(&[("hostile", "Failed", "GatesFailed")]);
        let logs = run_in(&data, &["runs", "logs", &name, "hostile"], &[]);
        assert!(
            logged.iter().any(|line| logs.stdout.contains(line)),
            "{mode}: {}",
            logs.stdout
        );
    }
}

#[test]
fn a_gate_must_name_a_gate_plugin_and_a_task_must_not() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let file = scratch.path().join("wrong-kinds.yaml");
    std::fs::write(
        &file,
        "apiVersion: weft.dev/v1\nkind: Pipeline\nmetadata: {name: wrong}\nspec:\n  tasks:\n    - name: g\n      taskRef: {apiVersion: weft.dev/v1, kind: Gate, name: echo}\n    - name: t\n      taskRef: {name: time-window}\n",
    )
    .expect("write");
    let file = file.to_string_lossy().into_owned();
    let ran = run_in(scratch.path(), &["run", &file], &[]);
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("wrong-kinds.yaml:7:60")
            && ran.stderr.contains("plugin `echo` is a task, not a gate"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("wrong-kinds.yaml:9:23")
            && ran
                .stderr
                .contains("plugin `time-window` is a gate, not a task"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("2 problems found; nothing was run"),
        "{}",
        ran.stderr
    );
}

#[test]
fn a_detached_run_waits_in_the_store_until_an_engine_takes_it() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let data = scratch.path();
    let ran = run_in(
        data,
        &[
            "run",
            &pipeline("approval.yaml"),
            "--name",
            "away",
            "--detach",
        ],
        &[],
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(ran.stdout.contains("away"), "{}", ran.stdout);
    // Nobody runs it: nothing started.
    let shown = show(data, "away");
    assert_eq!(shown["attempts"], Value::Array(vec![]), "{shown:#}");
    // An engine takes it over and it waits for its approval there.
    let engine = weft_in(data)
        .args(["runs", "recover", "--recover-timeout", "0s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("recover starts");
    wait_until(data, "away", "the approval waits", |s| {
        is_waiting(s, "approve")
    });
    for who in ["alice", "bob"] {
        let ran = decide(data, "approve", "away", "approve", who, &[]);
        assert_eq!(ran.code, 0, "{}", ran.stderr);
    }
    let ran = finish(engine);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    let shown = show(data, "away");
    assert_eq!(shown["status"], "Succeeded", "{shown:#}");
}

#[test]
fn the_foreground_view_says_what_it_waits_for_and_how_to_decide() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let data = scratch.path();
    let child = weft_in(data)
        .args(["run", &pipeline("approval.yaml"), "--name", "view"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weft starts");
    wait_until(data, "view", "the approval waits", |s| {
        is_waiting(s, "approve")
    });
    for who in ["alice", "bob"] {
        assert_eq!(decide(data, "approve", "view", "approve", who, &[]).code, 0);
    }
    let ran = finish(child);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let said = format!("{}{}", ran.stdout, ran.stderr);
    assert!(
        said.contains("waiting for approval of approve (0 of 2 approvals)")
            && said.contains("weft approve view approve [--reject]"),
        "{said}"
    );
}

#[test]
fn the_release_example_goes_to_production_and_tells_gitlab_either_way() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let health = Health::start(true);
    let example = crate::support::root()
        .join("examples/release.yaml")
        .to_string_lossy()
        .into_owned();
    for (name, reject) in [("shipped", false), ("stopped", true)] {
        let data = scratch.path().join(name);
        let forge = FakeForge::start();
        let (health_rule, forge_rule) = (health.rule(), forge.rule());
        let child = weft_in(&data)
            .args(["run", &example, "--output", "json", "--name", name])
            .args(["-p", &format!("health-url={}", health.url())])
            .args(["-p", &format!("gitlab-host={}", forge.url())])
            .args(["--secret", "gitlab-api-secret.token=env:GITLAB_TOKEN"])
            .args(["--grant", "report-success=gitlab-api-secret.token"])
            .args(["--grant", "report-failure=gitlab-api-secret.token"])
            .args(["--allow-http", &health_rule, "--allow-http", &forge_rule])
            .env("GITLAB_TOKEN", "glpat-release-example-token")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("weft starts");
        wait_until(&data, name, "the production approval waits", |s| {
            is_waiting(s, "approve-prod")
        });
        if reject {
            let ran = decide(
                &data,
                "approve",
                name,
                "approve-prod",
                "bob",
                &["--reject", "-m", "change freeze"],
            );
            assert_eq!(ran.code, 0, "{}", ran.stderr);
        } else {
            for who in ["alice", "bob"] {
                assert_eq!(
                    decide(&data, "approve", name, "approve-prod", who, &[]).code,
                    0
                );
            }
            wait_until(&data, name, "the canary check waits", |s| {
                is_waiting(s, "check-canary")
            });
            assert_eq!(
                decide(&data, "resume", name, "check-canary", "ops", &[]).code,
                0
            );
        }
        let ran = finish(child);
        let run = Run(ran.json());
        let posted: Vec<String> = forge
            .requests()
            .iter()
            .filter(|r| r.ok())
            .map(|r| r.field("state"))
            .collect();
        if reject {
            assert_eq!(ran.code, 1, "{}", ran.stderr);
            run.expect_tasks(&[
                ("approve-prod", "Rejected", "Rejected"),
                ("deploy-prod", "Skipped", "RunStopping"),
                ("report-failure", "Succeeded", ""),
                ("report-success", "Skipped", "WhenExpressionsFalse"),
            ]);
            assert_eq!(posted, ["failed"]);
            let description = forge.requests()[0].field("description");
            assert!(description.contains("approval Failed"), "{description}");
        } else {
            assert_eq!(ran.code, 0, "{}", ran.stderr);
            // `Completed`: report-failure was skipped by its `when`.
            run.expect_run("Completed", "Completed", "Succeeded", "Succeeded");
            assert_eq!(
                run.task("deploy-prod")["results"]["message"],
                r#"deploying registry.example.com/app:1.4.2 to production, approved by ["alice","bob"]"#
            );
            assert_eq!(posted, ["success"]);
        }
    }
}
