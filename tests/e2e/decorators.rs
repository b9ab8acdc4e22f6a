//! Form decorators, end to end through the `weft` binary: decorators change the params
//! tasks see; a decorator's secret reaches only the granted task and is masked; a schema
//! violation, a refusing decorator, a decorator calling a host it was not granted, one
//! that never returns, and one replacing an operator secret each stop the submission with
//! a clear error (exit code 2) and create no run.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

use crate::serve::Served;
use crate::support::{self, Ran};

const CREDENTIAL: &str = "ci-Cred-Seekrit-0011223344";
const TOKEN: &str = "tok-Seekrit-short-lived-5566778899";

/// One request the fake token endpoint received.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    authorization: String,
    body: String,
}

/// A token endpoint on 127.0.0.1: `POST /token` with `Authorization: Bearer CREDENTIAL`
/// answers `{"access_token": TOKEN}`, anything else 401. Records every request.
struct TokenEndpoint {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TokenEndpoint {
    fn start() -> TokenEndpoint {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("local addr").port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = seen.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("token endpoint runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app = Router::new().fallback(
                    move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
                        let seen = shared.clone();
                        async move { answer(&seen, uri.path(), &headers, &body) }
                    },
                );
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        TokenEndpoint {
            port,
            seen,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// The `--allow-http` rule that reaches it.
    fn rule(&self) -> String {
        format!("!private:127.0.0.1:{}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for TokenEndpoint {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn answer(
    seen: &Mutex<Vec<Seen>>,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (StatusCode, axum::Json<Value>) {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let ok = path == "/token" && authorization == format!("Bearer {CREDENTIAL}");
    seen.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(Seen {
            path: path.to_string(),
            authorization,
            body: String::from_utf8_lossy(body).into_owned(),
        });
    if ok {
        (
            StatusCode::OK,
            axum::Json(serde_json::json!({"access_token": TOKEN, "expires_in": 300})),
        )
    } else {
        (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({"error": "invalid_client"})),
        )
    }
}

fn pipeline(name: &str) -> String {
    support::pipelines()
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// `tests/pipelines/NAME` with its placeholder URL pointed at `url`, written into `dir`.
fn pointed_at(name: &str, url: &str, dir: &Path) -> String {
    let text = std::fs::read_to_string(support::pipelines().join(name)).expect("pipeline");
    assert!(
        text.contains("http://token.invalid/token"),
        "{name} has no placeholder"
    );
    let path = dir.join(name);
    std::fs::write(&path, text.replace("http://token.invalid/token", url)).expect("write");
    path.to_string_lossy().into_owned()
}

fn plugin_dir() -> String {
    support::plugin_dir().to_string_lossy().into_owned()
}

/// The names of the runs in the store of `data` (none when there is no store yet).
fn run_names(data: &Path) -> Vec<String> {
    let ran = support::run_in(data, &["runs", "list", "--output", "json"], &[]);
    if ran.code != 0 {
        assert!(ran.stderr.contains("no run store"), "{}", ran.stderr);
        return Vec::new();
    }
    ran.json()
        .as_array()
        .map(|runs| {
            runs.iter()
                .filter_map(|r| r["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts the submission was refused as invalid, naming `decorator`, and that no run
/// named `name` exists, nor any run directory for it.
#[track_caller]
fn assert_refused(ran: &Ran, data: &Path, name: &str, decorator: &str, code: &str) {
    assert_eq!(
        ran.code, 2,
        "stdout:\n{}\nstderr:\n{}",
        ran.stdout, ran.stderr
    );
    assert!(
        ran.stderr
            .contains(&format!("form decorator `{decorator}`")),
        "the error names the decorator: {}",
        ran.stderr
    );
    assert!(ran.stderr.contains(code), "{}", ran.stderr);
    assert!(ran.stderr.contains("spec.decorators[0]"), "{}", ran.stderr);
    assert!(
        !run_names(data).iter().any(|n| n == name),
        "a run `{name}` was created"
    );
    assert!(
        !data.join("runs").join(name).exists(),
        "a run directory was created"
    );
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Asserts `secret` is nowhere in the output or under `data` (logs, report.json, the
/// run store and its WAL).
#[track_caller]
fn assert_nowhere(secret: &str, ran: &Ran, data: &Path) {
    assert!(!ran.stdout.contains(secret), "secret in stdout");
    assert!(!ran.stderr.contains(secret), "secret in stderr");
    let scanned = files(data);
    assert!(
        scanned.iter().any(|p| p.ends_with("report.json")),
        "the scan must cover report.json: {scanned:?}"
    );
    assert!(
        scanned.iter().any(|p| p.ends_with("weft.db")),
        "the scan must cover the run store: {scanned:?}"
    );
    for path in scanned {
        let bytes = std::fs::read(&path).unwrap_or_default();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "secret found in {}",
            path.display()
        );
    }
}

#[test]
fn derive_params_change_the_params_tasks_see_and_are_recorded() {
    let data = tempfile::tempdir().expect("tempdir");
    let ran = support::run_in(
        data.path(),
        &[
            "run",
            &pipeline("decorators-derive.yaml"),
            "--output",
            "json",
            "--name",
            "derived-1",
            "-p",
            "commit=abcdef1234567890",
            "-p",
            "branch=release/1.2",
        ],
        &[],
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let report = ran.json();
    let show = report["tasks"]
        .as_array()
        .and_then(|tasks| tasks.iter().find(|t| t["name"] == "show"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        show["results"]["message"], "tag=release-1-2-abcdef1",
        "{report:#}"
    );
    // The decorator's own log line, on stderr.
    assert!(
        ran.stderr
            .contains("decorator derive-params [info] derived param `imageTag`"),
        "{}",
        ran.stderr
    );
    // What changed is recorded with the run: names, never values.
    let shown = support::run_in(
        data.path(),
        &["runs", "show", "derived-1", "--output", "json"],
        &[],
    );
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    let decorations = &shown.json()["decorations"];
    assert_eq!(
        decorations,
        &serde_json::json!([
            {"decorator": "require-params", "index": 0, "params": [], "secrets": []},
            {"decorator": "derive-params", "index": 1, "params": ["imageTag"], "secrets": []},
        ])
    );
    let text = support::run_in(data.path(), &["runs", "show", "derived-1"], &[]);
    assert!(
        text.stdout
            .contains("derive-params (spec.decorators[1]): params imageTag; secrets -"),
        "{}",
        text.stdout
    );
}

#[test]
fn require_params_refuses_a_branch_outside_the_allow_list_and_creates_no_run() {
    let data = tempfile::tempdir().expect("tempdir");
    // One run first, so the store exists and "no new run" is meaningful.
    let ok = support::run_in(
        data.path(),
        &[
            "run",
            &pipeline("decorators-derive.yaml"),
            "--name",
            "allowed-main",
        ],
        &[],
    );
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let ran = support::run_in(
        data.path(),
        &[
            "run",
            &pipeline("decorators-derive.yaml"),
            "--name",
            "refused-branch",
            "-p",
            "branch=feature/x",
        ],
        &[],
    );
    assert_refused(
        &ran,
        data.path(),
        "refused-branch",
        "require-params",
        "decorator-refused",
    );
    assert!(
        ran.stderr.contains(
            "param `branch` is `feature/x`, which matches none of: main, release/* (builds run from main or a release branch)"
        ),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("decorators-derive.yaml:13:7"),
        "{}",
        ran.stderr
    );
    assert_eq!(run_names(data.path()), ["allowed-main"]);
    // JSON mode: the same diagnostic as one document on stdout.
    let json = support::run_in(
        data.path(),
        &[
            "run",
            &pipeline("decorators-derive.yaml"),
            "--output",
            "json",
            "-p",
            "branch=feature/x",
        ],
        &[],
    );
    assert_eq!(json.code, 2);
    let doc = json.json();
    assert_eq!(doc["valid"], false);
    assert_eq!(doc["diagnostics"][0]["code"], "decorator-refused");
    assert_eq!(doc["diagnostics"][0]["field"], "spec.decorators[0]");
    assert_eq!(run_names(data.path()), ["allowed-main"]);
}

#[test]
fn an_http_token_reaches_only_the_granted_task_and_is_masked() {
    let endpoint = TokenEndpoint::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let file = pointed_at("decorators-token.yaml", &endpoint.url(), dir.path());
    let ran = support::run_in(
        data.path(),
        &[
            "run",
            &file,
            "--output",
            "json",
            "--name",
            "token-1",
            "--plugins",
            &plugin_dir(),
            "--allow-http",
            &endpoint.rule(),
            "--secret",
            "ci-credential=env:WEFT_TEST_CREDENTIAL",
        ],
        &[("WEFT_TEST_CREDENTIAL", CREDENTIAL)],
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    // One request, authenticated with the credential, with the templated body.
    let seen = endpoint.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].path, "/token");
    assert_eq!(seen[0].authorization, format!("Bearer {CREDENTIAL}"));
    let body: Value = serde_json::from_str(&seen[0].body).expect("JSON body");
    assert_eq!(
        body,
        serde_json::json!({"audience": "deploy", "repo": "group/app"})
    );

    let report = ran.json();
    let task = |name: &str| {
        report["tasks"]
            .as_array()
            .and_then(|tasks| tasks.iter().find(|t| t["name"] == name))
            .cloned()
            .unwrap_or_default()
    };
    // The granted task got the token (its length proves it is the one the endpoint gave).
    let granted = task("granted");
    assert_eq!(granted["status"], "Succeeded", "{report:#}");
    assert_eq!(granted["results"]["length"], TOKEN.len().to_string());
    // The other asked for it and was refused.
    let ungranted = task("ungranted");
    assert_eq!(ungranted["exitCode"], 3, "{report:#}");
    assert!(
        ungranted["message"]
            .as_str()
            .unwrap_or_default()
            .contains("blocked: secret `deploy-token` is not granted"),
        "{report:#}"
    );
    // The granted task printed the token: its log has it masked.
    let log = std::fs::read_to_string(data.path().join("runs/token-1/logs/granted.log"))
        .unwrap_or_default();
    assert!(log.contains("the value of `deploy-token` is ***"), "{log}");
    // Neither the token nor the credential is anywhere: output, logs, report, store.
    assert_nowhere(TOKEN, &ran, data.path());
    assert_nowhere(CREDENTIAL, &ran, data.path());
    // The run records that http-token set the secret, by name.
    let shown = support::run_in(
        data.path(),
        &["runs", "show", "token-1", "--output", "json"],
        &[],
    );
    assert_eq!(
        shown.json()["decorations"][0]["secrets"],
        serde_json::json!(["deploy-token"])
    );
}

#[test]
fn a_schema_violation_stops_the_submission_with_the_field_and_position() {
    let data = tempfile::tempdir().expect("tempdir");
    let ran = support::run_in(
        data.path(),
        &[
            "run",
            &pipeline("decorators-bad-input.yaml"),
            "--name",
            "bad-input",
        ],
        &[],
    );
    assert_refused(
        &ran,
        data.path(),
        "bad-input",
        "derive-params",
        "decorator-input",
    );
    assert!(
        ran.stderr.contains("at `/params/imageTag`"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("7 is not of type \"string\""),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("decorators-bad-input.yaml:13:9"),
        "{}",
        ran.stderr
    );
    // `weft validate` finds the same problem without running anything.
    let validated = support::run_in(
        data.path(),
        &[
            "validate",
            &pipeline("decorators-bad-input.yaml"),
            "--output",
            "json",
        ],
        &[],
    );
    assert_eq!(validated.code, 2);
    let doc = validated.json();
    assert_eq!(doc["diagnostics"][0]["code"], "decorator-input");
    assert_eq!(
        doc["diagnostics"][0]["field"],
        "spec.decorators[0].input.params.imageTag"
    );
    assert_eq!(doc["diagnostics"][0]["line"], 13);
}

#[test]
fn a_failing_decorator_stops_the_submission() {
    let data = tempfile::tempdir().expect("tempdir");
    let ran = support::run_in(
        data.path(),
        &[
            "run",
            &pipeline("decorators-fail.yaml"),
            "--name",
            "failed-1",
            "--plugins",
            &plugin_dir(),
            // hostile-decorator imports wasi:http: any rule lets it be instantiated.
            "--allow-http",
            "example.com",
        ],
        &[],
    );
    assert_refused(
        &ran,
        data.path(),
        "failed-1",
        "hostile-decorator",
        "decorator-refused",
    );
    assert!(
        ran.stderr.contains(
            "form decorator `hostile-decorator` refused the submission: no deploys on Fridays"
        ),
        "{}",
        ran.stderr
    );
}

#[test]
fn a_decorator_calling_a_host_it_was_not_granted_reaches_nothing() {
    let endpoint = TokenEndpoint::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let file = pointed_at("decorators-http.yaml", &endpoint.url(), dir.path());
    let plugins = plugin_dir();
    // No rule at all: the decorator imports wasi:http, so it is not even instantiated.
    let ran = support::run_in(
        data.path(),
        &["run", &file, "--name", "http-1", "--plugins", &plugins],
        &[],
    );
    assert_refused(
        &ran,
        data.path(),
        "http-1",
        "hostile-decorator",
        "decorator-failed",
    );
    assert!(ran.stderr.contains("CapabilityDenied"), "{}", ran.stderr);
    // A rule for another host, and a task-scoped rule for the endpoint (task rules never
    // apply to decorators): the request is denied by the egress policy.
    let task_rule = format!("never={}", endpoint.rule());
    let ran = support::run_in(
        data.path(),
        &[
            "run",
            &file,
            "--name",
            "http-2",
            "--plugins",
            &plugins,
            "--allow-http",
            "example.com",
            "--allow-http",
            &task_rule,
        ],
        &[],
    );
    assert_refused(
        &ran,
        data.path(),
        "http-2",
        "hostile-decorator",
        "decorator-refused",
    );
    assert!(
        ran.stderr.contains("blocked: destination not allowed"),
        "{}",
        ran.stderr
    );
    assert!(endpoint.seen().is_empty(), "{:?}", endpoint.seen());
    // The decorator-scoped rule is the one that lets it through.
    let scoped = format!("decorator:hostile-decorator={}", endpoint.rule());
    let ran = support::run_in(
        data.path(),
        &[
            "run",
            &file,
            "--name",
            "http-3",
            "--plugins",
            &plugins,
            "--allow-http",
            &scoped,
        ],
        &[],
    );
    assert_refused(
        &ran,
        data.path(),
        "http-3",
        "hostile-decorator",
        "decorator-refused",
    );
    assert!(ran.stderr.contains("ESCAPED: HTTP 401"), "{}", ran.stderr);
    assert_eq!(endpoint.seen().len(), 1);
}

#[test]
fn a_decorator_that_never_returns_is_stopped_by_its_timeout() {
    let data = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let ran = support::run_in(
        data.path(),
        &[
            "run",
            &pipeline("decorators-loop.yaml"),
            "--name",
            "loop-1",
            "--plugins",
            &plugin_dir(),
            // hostile-decorator imports wasi:http: any rule lets it be instantiated.
            "--allow-http",
            "example.com",
            "--decorator-timeout",
            "1s",
        ],
        &[],
    );
    let took = started.elapsed();
    assert_refused(
        &ran,
        data.path(),
        "loop-1",
        "hostile-decorator",
        "decorator-failed",
    );
    assert!(
        ran.stderr
            .contains("TimedOut: it ran longer than the decorator timeout of 1s")
            || ran
                .stderr
                .contains("CpuBudgetExceeded: it used its CPU budget of 1s"),
        "{}",
        ran.stderr
    );
    // Compiling the component is part of the time; the limit itself is 1 s.
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

#[test]
fn a_decorator_never_replaces_an_operator_secret() {
    let data = tempfile::tempdir().expect("tempdir");
    let ran = support::run_in(
        data.path(),
        &[
            "run",
            &pipeline("decorators-set-secret.yaml"),
            "--name",
            "overwrite-1",
            "--plugins",
            &plugin_dir(),
            // hostile-decorator imports wasi:http: any rule lets it be instantiated.
            "--allow-http",
            "example.com",
            "--secret",
            "ci-credential=env:WEFT_TEST_CREDENTIAL",
        ],
        &[("WEFT_TEST_CREDENTIAL", CREDENTIAL)],
    );
    assert_refused(
        &ran,
        data.path(),
        "overwrite-1",
        "hostile-decorator",
        "decorator-secret",
    );
    assert!(
        ran.stderr
            .contains("the operator already has a secret `ci-credential`"),
        "{}",
        ran.stderr
    );
    assert!(
        !ran.stderr.contains("decorator-value-123 "),
        "{}",
        ran.stderr
    );
}

#[test]
fn the_server_runs_decorators_on_every_submission() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Served::start(data.path(), &[]);
    let source = std::fs::read_to_string(support::pipelines().join("decorators-derive.yaml"))
        .expect("pipeline");
    let submit = |name: &str, branch: &str| {
        let request = serde_json::json!({
            "pipeline": source,
            "file": "decorators-derive.yaml",
            "name": name,
            "params": {"commit": "abcdef1234567890", "branch": branch},
        });
        server.call("POST", "/api/v1/runs", Some(&request))
    };
    // Refused by require-params: 400 with the diagnostic, and no run.
    let (status, body) = submit("served-refused", "feature/x");
    assert_eq!(status, 400, "{body:#}");
    assert_eq!(
        body["diagnostics"][0]["code"], "decorator-refused",
        "{body:#}"
    );
    assert_eq!(body["diagnostics"][0]["field"], "spec.decorators[0]");
    let (status, _) = server.call("GET", "/api/v1/runs/served-refused", None);
    assert_eq!(status, 404);
    // Accepted: derive-params set the tag the task sees, and the run records it.
    let (status, body) = submit("served-ok", "main");
    assert_eq!(status, 201, "{body:#}");
    let run = server.wait_for("served-ok", |run| !run["finishedAt"].is_null());
    assert_eq!(
        run["attempts"][0]["results"]["message"], "tag=main-abcdef1",
        "{run:#}"
    );
    assert_eq!(
        run["decorations"][1],
        serde_json::json!({"decorator": "derive-params", "index": 1, "params": ["imageTag"], "secrets": []})
    );
}
