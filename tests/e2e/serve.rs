//! `weft serve`: the HTTP API (submit, get, list, logs, cancel), recovery on start-up, and
//! the graceful stop on SIGTERM (running tasks finish within the grace period, the rest
//! is left to the next engine, which takes it over at once).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{pipelines, signal, weft};

/// A running `weft serve` on a free port; killed when dropped.
pub struct Served {
    child: Child,
    address: String,
    stderr: std::sync::Mutex<mpsc::Receiver<String>>,
    /// Sent as `Authorization: Bearer` when set.
    pub token: Option<String>,
}

impl Served {
    /// Starts `weft serve` on 127.0.0.1 with `data` as its data directory.
    pub fn start(data: &Path, extra: &[&str]) -> Served {
        Served::start_with_env(data, extra, &[])
    }

    /// [`Served::start`] with extra environment variables.
    pub fn start_with_env(data: &Path, extra: &[&str], env: &[(&str, &str)]) -> Served {
        let mut args = vec!["--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        Served::spawn(data, &args, env)
    }

    /// Starts `weft serve` with `args` (which give `--listen`).
    pub fn start_listening(data: &Path, args: &[&str]) -> Served {
        Served::spawn(data, args, &[])
    }

    fn spawn(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Served {
        let mut child = weft()
            .env("WEFT_DATA_DIR", data)
            .env_remove("WEFT_DB")
            .envs(env.iter().copied())
            .arg("serve")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("weft serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(address) = line.split("http://").nth(1) {
                    let _ = tx.send(address.trim().to_string());
                }
            }
        });
        let stderr = child.stderr.take().expect("stderr");
        let (err_tx, err_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = err_tx.send(line);
            }
        });
        let address = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("weft serve prints the address it listens on");
        Served {
            child,
            address,
            stderr: std::sync::Mutex::new(err_rx),
            token: None,
        }
    }

    /// The `HOST:PORT` it listens on.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// One request; returns the status and the body (JSON when it parses).
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut stream = TcpStream::connect(&self.address).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        let body = body.map(Value::to_string).unwrap_or_default();
        let auth = self
            .token
            .as_ref()
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.address,
            body.len()
        )
        .expect("send");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_string()));
        (status, body)
    }

    /// Submits `file` (under tests/pipelines) with `extra` request fields.
    pub fn submit(&self, file: &str, extra: Value) -> (u16, Value) {
        let source = std::fs::read_to_string(pipelines().join(file)).expect("pipeline");
        let mut request = json!({ "pipeline": source, "file": file });
        if let (Some(request), Some(extra)) = (request.as_object_mut(), extra.as_object()) {
            request.extend(extra.clone());
        }
        self.call("POST", "/api/v1/runs", Some(&request))
    }

    /// Polls the run until `done` says so (at most 60 s).
    pub fn wait_for(&self, run: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, body) = self.call("GET", &format!("/api/v1/runs/{run}"), None);
            if status == 200 && done(&body) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "run {run} did not get there: {status} {body:#}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the server exited (and how), without waiting.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `sig` (e.g. `-KILL`, `-STOP`, `-CONT`).
    pub fn signal(&self, sig: &str) {
        signal(&self.child, sig);
    }

    /// What it said on stderr since the last call.
    pub fn said(&self) -> Vec<String> {
        self.stderr
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .try_iter()
            .collect()
    }

    /// SIGTERM, then the exit code and what it said on stderr.
    pub fn stop(mut self) -> (i32, String, Duration) {
        let asked = Instant::now();
        signal(&self.child, "-TERM");
        let status = self.child.wait().expect("weft serve exits");
        let took = asked.elapsed();
        let said: Vec<String> = self
            .stderr
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .try_iter()
            .collect();
        (status.code().unwrap_or(-1), said.join("\n"), took)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn status(run: &Value) -> &str {
    run["report"]["run"]["status"].as_str().unwrap_or_default()
}

fn attempts_of<'a>(run: &'a Value, task: &str) -> Vec<&'a Value> {
    run["attempts"]
        .as_array()
        .map(|a| a.iter().filter(|a| a["task"] == task).collect())
        .unwrap_or_default()
}

#[test]
fn the_api_submits_shows_lists_logs_and_cancels_runs() {
    let data = tempfile::tempdir().expect("tempdir");
    let served = Served::start(data.path(), &[]);
    assert_eq!(served.call("GET", "/healthz", None).0, 200);

    let (code, created) = served.submit("all-succeed.yaml", json!({ "name": "served-1" }));
    assert_eq!(code, 201, "{created:#}");
    assert_eq!(created["name"], "served-1");
    let done = served.wait_for("served-1", |r| !status(r).is_empty());
    assert_eq!(status(&done), "Succeeded", "{done:#}");
    assert!(done["finishedAt"].is_i64(), "{done:#}");

    // The same name again is a conflict; nothing else is created.
    let (code, body) = served.submit("all-succeed.yaml", json!({ "name": "served-1" }));
    assert_eq!(code, 409, "{body:#}");

    // An invalid pipeline: diagnostics with positions, and no run.
    let source = std::fs::read_to_string(
        crate::support::root().join("tests/malformed/19-runafter-unknown-task.yaml"),
    )
    .expect("fixture");
    let (code, body) = served.call(
        "POST",
        "/api/v1/runs",
        Some(&json!({ "pipeline": source, "file": "bad.yaml", "name": "never" })),
    );
    assert_eq!(code, 400, "{body:#}");
    assert_eq!(body["error"], "invalid");
    let first = &body["diagnostics"][0];
    assert_eq!(first["file"], "bad.yaml");
    assert!(first["line"].as_u64().unwrap_or(0) > 0, "{body:#}");
    assert_eq!(served.call("GET", "/api/v1/runs/never", None).0, 404);
    // A body that is not a submission.
    let (code, body) = served.call("POST", "/api/v1/runs", Some(&json!({ "pipe": 1 })));
    assert_eq!(code, 400, "{body:#}");

    let (code, listed) = served.call("GET", "/api/v1/runs", None);
    assert_eq!(code, 200);
    let names: Vec<&str> = listed
        .as_array()
        .map(|runs| runs.iter().filter_map(|r| r["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, vec!["served-1"], "{listed:#}");

    let (code, logs) = served.call("GET", "/api/v1/runs/served-1/logs", None);
    assert_eq!(code, 200);
    assert!(
        logs["lines"].as_array().is_some_and(|l| !l.is_empty()),
        "{logs:#}"
    );

    // Cancel a running run without its finally tasks.
    let (code, _) = served.submit("cancel.yaml", json!({ "name": "served-cancel" }));
    assert_eq!(code, 201);
    served.wait_for("served-cancel", |r| {
        attempts_of(r, "running")
            .iter()
            .any(|a| a["phase"] == "Running")
    });
    let (code, body) = served.call(
        "POST",
        "/api/v1/runs/served-cancel/cancel",
        Some(&json!({ "mode": "Cancelled" })),
    );
    assert_eq!(code, 202, "{body:#}");
    let cancelled = served.wait_for("served-cancel", |r| !status(r).is_empty());
    assert_eq!(status(&cancelled), "Cancelled", "{cancelled:#}");
    // `Cancelled` skips the finally tasks.
    assert!(
        attempts_of(&cancelled, "cleanup")
            .iter()
            .all(|a| a["outcome"] == "Skipped"),
        "{cancelled:#}"
    );
    // A cancel that lets the running task finish shows the run as Cancelling meanwhile.
    let (code, _) = served.submit(
        "cancel.yaml",
        json!({ "name": "served-stopping", "params": {"sleepMs": "2500"} }),
    );
    assert_eq!(code, 201);
    served.wait_for("served-stopping", |r| {
        attempts_of(r, "running")
            .iter()
            .any(|a| a["phase"] == "Running")
    });
    let (code, body) = served.call(
        "POST",
        "/api/v1/runs/served-stopping/cancel",
        Some(&json!({ "mode": "StoppedRunFinally" })),
    );
    assert_eq!(code, 202, "{body:#}");
    let cancelling = served.wait_for("served-stopping", |r| r["phase"] != "Running");
    assert_eq!(cancelling["phase"], "Cancelling", "{cancelling:#}");
    assert_eq!(
        cancelling["operation"],
        json!({"status": "InProgress", "operationStatus": "Cancelling"})
    );
    assert!(
        attempts_of(&cancelling, "running")
            .iter()
            .any(|a| a["phase"] == "Running"),
        "the task is still running: {cancelling:#}"
    );
    let stopped = served.wait_for("served-stopping", |r| !status(r).is_empty());
    assert_eq!(status(&stopped), "Cancelled", "{stopped:#}");
    assert_eq!(stopped["phase"], "Finished", "{stopped:#}");

    // A finished run cannot be cancelled; an unknown one is not found; a bad mode is refused.
    assert_eq!(
        served
            .call("POST", "/api/v1/runs/served-cancel/cancel", None)
            .0,
        409
    );
    assert_eq!(served.call("POST", "/api/v1/runs/nope/cancel", None).0, 404);
    let (code, _) = served.call(
        "POST",
        "/api/v1/runs/served-1/cancel",
        Some(&json!({ "mode": "Later" })),
    );
    assert_eq!(code, 400);

    let (code, said, _) = served.stop();
    assert_eq!(code, 0, "{said}");
}

#[test]
fn an_api_token_is_required_when_set() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut served = Served::start(data.path(), &["--api-token", "s3cret-api-token"]);
    assert_eq!(served.call("GET", "/api/v1/runs", None).0, 401);
    let (code, _) = served.submit("all-succeed.yaml", json!({}));
    assert_eq!(code, 401);
    served.token = Some("not-the-token-0000".into());
    assert_eq!(served.call("GET", "/api/v1/runs", None).0, 401);
    served.token = Some("s3cret-api-token".into());
    let (code, listed) = served.call("GET", "/api/v1/runs", None);
    assert_eq!(code, 200);
    assert_eq!(listed, json!([]), "the refused submission created nothing");
    let (code, _, _) = served.stop();
    assert_eq!(code, 0);
}

#[test]
fn sigterm_lets_running_tasks_finish_and_a_new_server_takes_over_the_rest() {
    let data = tempfile::tempdir().expect("tempdir");
    let served = Served::start(data.path(), &["--shutdown-grace", "20s"]);
    let (code, body) = served.submit("serve-drain.yaml", json!({ "name": "drained" }));
    assert_eq!(code, 201, "{body:#}");
    served.wait_for("drained", |r| {
        attempts_of(r, "first")
            .iter()
            .any(|a| a["phase"] == "Running")
    });
    let (code, said, took) = served.stop();
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("left to recovery"), "{said}");
    assert!(took < Duration::from_secs(15), "shutdown took {took:?}");

    // `first` finished within the grace period; `second` never started; the run is open.
    let shown = crate::support::run(&[
        "runs",
        "show",
        "drained",
        "--output",
        "json",
        "--db",
        &data.path().join("weft.db").to_string_lossy(),
    ]);
    let shown = shown.json();
    assert!(shown["report"].is_null(), "{shown:#}");
    let first = attempts_of(&shown, "first");
    assert_eq!(first.len(), 1, "{shown:#}");
    assert_eq!(first[0]["outcome"], "Succeeded", "{shown:#}");
    assert!(
        attempts_of(&shown, "second")
            .iter()
            .all(|a| a["phase"] != "Running" && a["phase"] != "Terminal"),
        "{shown:#}"
    );

    // The lease was released: the next server takes the run over at once (the default
    // recovery timeout is 30 s) and finishes it without running `first` again.
    let again = Served::start(data.path(), &[]);
    let done = again.wait_for("drained", |r| !status(r).is_empty());
    assert_eq!(status(&done), "Succeeded", "{done:#}");
    assert_eq!(attempts_of(&done, "first").len(), 1, "{done:#}");
    let second = &done["report"]["tasks"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "second").cloned())
        .unwrap_or_default();
    assert_eq!(second["results"]["got"], "abc123", "{done:#}");
    let (code, said, _) = again.stop();
    assert_eq!(code, 0, "{said}");
}

#[test]
fn a_task_still_running_after_the_grace_period_is_left_to_recovery() {
    let data = tempfile::tempdir().expect("tempdir");
    let served = Served::start(data.path(), &["--shutdown-grace", "200ms"]);
    let (code, body) = served.submit(
        "serve-drain.yaml",
        json!({ "name": "cut-short", "params": { "sleepMs": "30000" } }),
    );
    assert_eq!(code, 201, "{body:#}");
    served.wait_for("cut-short", |r| {
        attempts_of(r, "first")
            .iter()
            .any(|a| a["phase"] == "Running")
    });
    let (code, said, took) = served.stop();
    assert_eq!(code, 0, "{said}");
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");

    // `resume` does not run a non-idempotent task that was in flight again.
    let again = Served::start(data.path(), &[]);
    let done = again.wait_for("cut-short", |r| !status(r).is_empty());
    assert_eq!(status(&done), "Failed", "{done:#}");
    let first = attempts_of(&done, "first");
    assert_eq!(first.len(), 1, "{done:#}");
    assert_eq!(first[0]["reason"], "NotIdempotent", "{done:#}");
    let (code, said, _) = again.stop();
    assert_eq!(code, 0, "{said}");
}

#[test]
fn a_crashed_weft_run_is_recovered_when_the_server_starts() {
    let data = tempfile::tempdir().expect("tempdir");
    let file = pipelines().join("recoverable.yaml");
    let crashed = weft()
        .env("WEFT_DATA_DIR", data.path())
        .env("WEFT_FAULT", "task-finish-after:2")
        .args(["run", &file.to_string_lossy(), "--name", "crashed"])
        .output()
        .expect("weft runs");
    assert_eq!(crashed.status.code(), None, "expected SIGKILL");
    let served = Served::start(data.path(), &["--recover-timeout", "0s"]);
    let done = served.wait_for("crashed", |r| !status(r).is_empty());
    assert_eq!(status(&done), "Succeeded", "{done:#}");
    let (code, said, _) = served.stop();
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("recovering run crashed"), "{said}");
}

#[test]
fn a_pipelinerun_is_submitted_with_its_name_params_and_workspaces() {
    let data = tempfile::tempdir().expect("tempdir");
    let served = Served::start(data.path(), &[]);
    let root = crate::support::root();
    let read = |file: &str| std::fs::read_to_string(root.join(file)).expect("fixture");
    // Its name, params (the undeclared one dropped) and results, as `weft run` gives them.
    let (code, created) = served.call(
        "POST",
        "/api/v1/runs",
        Some(&json!({
            "pipeline": read("tests/tekton/01-pipelinerun-with-pipelinespec.yaml"),
            "file": "greetings.yaml",
        })),
    );
    assert_eq!(code, 201, "{created:#}");
    assert_eq!(created["name"], "pipelinerun-echo-greetings");
    let done = served.wait_for("pipelinerun-echo-greetings", |r| !status(r).is_empty());
    assert_eq!(status(&done), "Succeeded", "{done:#}");
    // A volume needs a host directory, which submitters never bind: refused, nothing made.
    let (code, body) = served.call(
        "POST",
        "/api/v1/runs",
        Some(&json!({
            "pipeline": read("tests/tekton/13-bad-volume-without-directory.yaml"),
            "file": "volume.yaml",
        })),
    );
    assert_eq!(code, 400, "{body:#}");
    assert!(
        body.to_string()
            .contains("submissions bind no host directory"),
        "{body:#}"
    );
    assert_eq!(
        served.call("GET", "/api/v1/runs/needs-a-volume", None).0,
        404
    );
    // `spec.status` is the cancel endpoint's job.
    let (code, body) = served.call(
        "POST",
        "/api/v1/runs",
        Some(&json!({
            "pipeline": read("tests/tekton/10-pipelinerun-pending.yaml"),
            "file": "pending.yaml",
        })),
    );
    assert_eq!(code, 400, "{body:#}");
    assert_eq!(served.call("GET", "/api/v1/runs/pending-run", None).0, 404);
    // Pipelines in pipelines through the API: the child's tasks are the run's, nested.
    let (code, created) = served.call(
        "POST",
        "/api/v1/runs",
        Some(&json!({
            "pipeline": read("tests/tekton/38-pipeline-in-pipeline-retried-as-a-whole.yaml"),
            "file": "nested.yaml",
        })),
    );
    assert_eq!(code, 201, "{created:#}");
    let done = served.wait_for("retried-child", |r| !status(r).is_empty());
    assert_eq!(status(&done), "Succeeded", "{done:#}");
    assert_eq!(attempts_of(&done, "ship").len(), 2, "{done:#}");
    assert_eq!(attempts_of(&done, "ship.flaky").len(), 2, "{done:#}");
    let tasks: Vec<&str> = done["report"]["tasks"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(tasks, ["ship", "ship.prepare", "ship.flaky"], "{done:#}");
}

/// `GET /metrics` parsed: `name{labels}` -> value (comments and `# EOF` left out).
fn scrape(served: &Served) -> (u16, std::collections::HashMap<String, f64>, String) {
    let (code, body) = served.call("GET", "/metrics", None);
    let text = body.as_str().unwrap_or_default().to_string();
    let samples = text
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect();
    (code, samples, text)
}

#[test]
fn metrics_count_runs_and_tasks_and_take_the_api_token() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut served = Served::start(data.path(), &["--api-token", "metrics-token-1234"]);
    assert_eq!(scrape(&served).0, 401, "no token, no metrics");
    served.token = Some("metrics-token-1234".into());
    let (code, created) = served.submit("all-succeed.yaml", json!({ "name": "metered-run" }));
    assert_eq!(code, 201, "{created:#}");
    let done = served.wait_for("metered-run", |r| !status(r).is_empty());
    assert_eq!(status(&done), "Succeeded", "{done:#}");
    // The observer sees the run's end just after the store does.
    let mut found = None;
    for _ in 0..50 {
        let (code, samples, text) = scrape(&served);
        assert_eq!(code, 200, "{text}");
        if samples.get("weft_runs_active") == Some(&0.0) {
            found = Some((samples, text));
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (samples, text) = found.expect("the run left weft_runs_active");
    for (name, expected) in [
        ("weft_runs_started_total", 1.0),
        ("weft_runs_finished_total{status=\"Succeeded\"}", 1.0),
        ("weft_task_attempts_total{outcome=\"Succeeded\"}", 5.0),
        ("weft_task_duration_seconds_count", 5.0),
        ("weft_tasks_running", 0.0),
    ] {
        assert_eq!(samples.get(name), Some(&expected), "{name} in\n{text}");
    }
    assert!(
        text.contains("# TYPE weft_task_duration_seconds histogram"),
        "{text}"
    );
    // Store latency: every op of the fixed vocabulary is there from the start; the run
    // committed its journal and the API read it back.
    assert!(
        text.contains("# TYPE weft_store_operation_duration_seconds histogram"),
        "{text}"
    );
    for op in ["commit", "read", "claim", "heartbeat"] {
        let count = format!("weft_store_operation_duration_seconds_count{{op=\"{op}\"}}");
        let at_least = if matches!(op, "commit" | "read") {
            1.0
        } else {
            0.0
        };
        assert!(
            samples.get(&count).is_some_and(|n| *n >= at_least),
            "{count} >= {at_least} in\n{text}"
        );
    }
    // Every task's component was instantiated once.
    assert!(
        text.contains("# TYPE weft_task_instantiation_seconds histogram"),
        "{text}"
    );
    assert!(
        samples
            .get("weft_task_instantiation_seconds_count")
            .is_some_and(|n| *n >= 5.0),
        "5 instantiations in\n{text}"
    );
    assert!(
        samples
            .get("weft_task_instantiation_seconds_sum")
            .is_some_and(|s| *s > 0.0),
        "{text}"
    );
    assert!(
        !text.contains("metered-run"),
        "no run names in metrics:\n{text}"
    );
    let (code, _, _) = served.stop();
    assert_eq!(code, 0);
}

/// Reporter deliveries are counted by forge and result: a forge that fails the first
/// request gets one retried attempt, then the statuses are delivered; nothing of the
/// reporter's config (URL, project) shows.
#[test]
fn metrics_count_reporter_deliveries_by_forge_and_result() {
    let data = tempfile::tempdir().expect("tempdir");
    let forge = crate::fake_forge::FakeForge::failing(&[503]);
    let plugins = crate::support::plugin_dir();
    let rule = forge.rule();
    let served = Served::start_with_env(
        data.path(),
        &[
            "--plugins",
            &plugins.to_string_lossy(),
            "--secret",
            "gitlab-token=env:WEFT_TEST_GITLAB",
            "--submit-secrets",
            "gitlab-token",
            "--report-allow-http",
            &rule,
        ],
        &[("WEFT_TEST_GITLAB", "glpat-metrics-test-token")],
    );
    let report = format!(
        "gitlab:url={},project=g/metered-app,sha=0123abcd,token-secret=gitlab-token",
        forge.url()
    );
    let (code, created) = served.submit(
        "all-succeed.yaml",
        json!({ "name": "reported-run", "reports": [report] }),
    );
    assert_eq!(code, 201, "{created:#}");
    let done = served.wait_for("reported-run", |r| !status(r).is_empty());
    assert_eq!(status(&done), "Succeeded", "{done:#}");
    let delivered = "weft_reporter_deliveries_total{forge=\"gitlab\",result=\"delivered\"}";
    let retried = "weft_reporter_deliveries_total{forge=\"gitlab\",result=\"retried\"}";
    // The final status may still be on its way when the run reads as finished.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (samples, text) = loop {
        let (code, samples, text) = scrape(&served);
        assert_eq!(code, 200, "{text}");
        let accepted: Vec<String> = forge
            .requests()
            .iter()
            .filter(|r| r.ok())
            .map(|r| r.field("state"))
            .collect();
        // Each accepted request is one delivered attempt, counted once the plugin returns.
        if accepted.last().is_some_and(|state| state == "success")
            && samples.get(delivered) == Some(&(accepted.len() as f64))
        {
            break (samples, text);
        }
        assert!(Instant::now() < deadline, "no delivery counted:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        text.contains("# TYPE weft_reporter_deliveries counter"),
        "{text}"
    );
    assert_eq!(
        samples.get(retried),
        Some(&1.0),
        "one 503, one retry:\n{text}"
    );
    assert!(!text.contains("failed\""), "nothing was given up:\n{text}");
    assert!(
        !text.contains("metered-app") && !text.contains(&forge.url()),
        "no reporter config in metrics:\n{text}"
    );
    let (code, _, _) = served.stop();
    assert_eq!(code, 0);
}

#[test]
fn the_servers_matrix_cap_applies_to_every_submission() {
    let data = tempfile::tempdir().expect("tempdir");
    let served = Served::start(data.path(), &["--max-matrix-combinations", "2"]);
    let pipeline = |values: &str| {
        format!(
            "apiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata: {{name: fan}}\nspec:\n  tasks:\n    - name: say\n      taskRef: {{name: echo}}\n      matrix:\n        params:\n          - name: message\n            value: [{values}]\n"
        )
    };
    let (code, body) = served.call(
        "POST",
        "/api/v1/runs",
        Some(&json!({ "pipeline": pipeline("a, b, c"), "file": "fan.yaml", "name": "too-wide" })),
    );
    assert_eq!(code, 400, "{body:#}");
    let message = body["diagnostics"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("fans out into 3 combinations, more than the 2 allowed"),
        "{body:#}"
    );
    assert_eq!(served.call("GET", "/api/v1/runs/too-wide", None).0, 404);

    let (code, body) = served.call(
        "POST",
        "/api/v1/runs",
        Some(&json!({ "pipeline": pipeline("a, b"), "file": "fan.yaml", "name": "wide-enough" })),
    );
    assert_eq!(code, 201, "{body:#}");
    let done = served.wait_for("wide-enough", |r| !status(r).is_empty());
    assert_eq!(status(&done), "Succeeded", "{done:#}");
    let tasks: Vec<&str> = done["report"]["tasks"]
        .as_array()
        .map(|tasks| tasks.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(tasks, ["say-0", "say-1"], "{done:#}");
}
