//! Gates in the sandbox, with the real plugins: a gate is detected by its export, described,
//! and evaluated with its context; every misbehaviour of `hostile-gate` (a loop, a memory
//! bomb, HTTP to a host not allowed, a file outside any grant, an oversized message) is
//! contained with the limit's reason, revealed secrets are masked in its log, and the
//! first-party `http-check` and `time-window` pass and fail as their params say.
//!
//! Needs the plugins built (`cargo xtask test` does it; or `cargo xtask build-plugins`).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use weft_core::contract::{GateContext, GateResult, ParamValue, TaskEnding};
use weft_runtime::{
    HttpRule, MemorySink, PluginKind, SecretValue, TaskReport, TaskRequest, WorkspaceMount,
};

mod common;

use common::plugin;

/// A request for a gate with `params`, HTTP granted to `rules`, and tight limits.
fn request(params: &[(&str, &str)], rules: &[&str]) -> (TaskRequest, Arc<MemorySink>) {
    let sink = Arc::new(MemorySink::default());
    let mut request = TaskRequest::new("gate:test");
    request.log = sink.clone();
    for (name, value) in params {
        request
            .params
            .insert(name.to_string(), ParamValue::Str(value.to_string()));
    }
    request.grants.http = rules
        .iter()
        .map(|rule| HttpRule::parse(rule).expect("rule"))
        .collect();
    request.limits.cpu_budget = Duration::from_millis(500);
    request.limits.wall_clock = Some(Duration::from_secs(20));
    request.limits.memory_bytes = 64 << 20;
    request.limits.log_bytes = 1 << 20;
    (request, sink)
}

/// `hostile-gate` in `mode`, granted HTTP to `allowed.invalid` (it imports `wasi:http`).
fn hostile(mode: &str, extra: &[(&str, &str)]) -> (TaskRequest, Arc<MemorySink>) {
    let mut params = vec![("mode", mode)];
    params.extend_from_slice(extra);
    request(&params, &["allowed.invalid"])
}

fn context(sample: u32) -> GateContext {
    GateContext {
        run_name: "release-42".into(),
        run_uid: "uid-42".into(),
        pipeline_name: "release".into(),
        task_name: "healthy".into(),
        sample,
        waiting_since_ms: 1_700_000_000_000,
    }
}

fn errored_reason(report: &TaskReport) -> &str {
    match &report.ending {
        TaskEnding::Errored { reason, .. } => reason,
        other => panic!("expected an Errored ending, got {other:?}"),
    }
}

fn blocked(result: &GateResult) -> &str {
    match result {
        GateResult::Error(message) if message.starts_with("blocked:") => message,
        other => panic!("expected the hostile action to be blocked, got {other:?}"),
    }
}

#[tokio::test]
async fn gates_are_detected_and_describe_their_params() {
    for (name, params) in [
        (
            "http-check",
            &[
                "url",
                "expectStatus",
                "jsonPointer",
                "expectValue",
                "method",
            ][..],
        ),
        ("time-window", &["weekdays", "hours", "timezone"][..]),
    ] {
        let gate = plugin(name);
        assert_eq!(gate.kind(), PluginKind::Gate, "{name}");
        assert!(!gate.kind().is_task());
        assert_eq!(gate.kind().as_str(), "gate");
        assert_eq!(
            gate.wit_version().map(ToString::to_string).as_deref(),
            Some(weft_runtime::WIT_VERSION)
        );
        let info = gate.describe().await.expect("describes");
        assert_eq!(info.name, name);
        let names: Vec<&str> = info.params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, params, "{name}");
    }
    // Only `url` is required.
    let info = plugin("http-check").describe().await.expect("describes");
    let required: Vec<&str> = info
        .params
        .iter()
        .filter(|p| p.default.is_none())
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(required, ["url"]);
}

#[tokio::test]
async fn the_gate_context_and_params_reach_the_guest() {
    let (request, _) = hostile("context", &[("url", "http://x.invalid/")]);
    let result = plugin("hostile-gate")
        .evaluate(request, context(3))
        .await
        .expect("evaluates");
    assert_eq!(
        result,
        GateResult::Passed(
            "run=release-42 uid=uid-42 pipeline=release task=healthy sample=3 since=1700000000000 params=mode,url"
                .into()
        )
    );
}

#[tokio::test]
async fn passed_failed_and_error_come_back_as_the_gate_said() {
    for (mode, expected) in [
        ("passed", GateResult::Passed("m".into())),
        ("failed", GateResult::Failed("m".into())),
        ("error", GateResult::Error("m".into())),
    ] {
        let (request, _) = hostile(mode, &[("message", "m")]);
        let result = plugin("hostile-gate")
            .evaluate(request, context(0))
            .await
            .expect("evaluates");
        assert_eq!(result, expected);
    }
}

#[tokio::test]
async fn a_looping_gate_is_stopped_by_its_cpu_budget_and_its_wall_clock() {
    let started = Instant::now();
    let (request, _) = hostile("loop", &[]);
    let report = plugin("hostile-gate")
        .evaluate(request, context(0))
        .await
        .expect_err("stopped");
    assert_eq!(errored_reason(&report), "CpuBudgetExceeded");
    assert!(started.elapsed() < Duration::from_secs(10));

    let (mut request, _) = hostile("loop", &[]);
    request.limits.cpu_budget = Duration::from_secs(600);
    request.limits.wall_clock = Some(Duration::from_millis(300));
    let report = plugin("hostile-gate")
        .evaluate(request, context(0))
        .await
        .expect_err("stopped");
    assert_eq!(errored_reason(&report), "TimedOut");
}

#[tokio::test]
async fn a_memory_bomb_hits_the_memory_limit() {
    let (request, _) = hostile("memory", &[]);
    let report = plugin("hostile-gate")
        .evaluate(request, context(0))
        .await
        .expect_err("stopped");
    assert_eq!(errored_reason(&report), "MemoryLimitExceeded");
}

#[tokio::test]
async fn http_to_a_host_not_allowed_is_denied() {
    let (request, sink) = hostile("http", &[("url", "http://example.com/")]);
    let result = plugin("hostile-gate")
        .evaluate(request, context(0))
        .await
        .expect("evaluates");
    blocked(&result);
    assert!(sink.text().contains("denied"), "log: {}", sink.text());

    // Without any HTTP rule, a gate importing `wasi:http` is never instantiated.
    let (mut request, sink) = hostile("passed", &[]);
    request.grants.http.clear();
    let report = plugin("hostile-gate")
        .evaluate(request, context(0))
        .await
        .expect_err("refused");
    assert_eq!(errored_reason(&report), "CapabilityDenied");
    assert!(sink.text().contains("wasi:http/"), "log: {}", sink.text());
}

#[tokio::test]
async fn gates_get_no_files_not_even_granted_workspaces() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("inside.txt"), "workspace data").expect("write");
    for path in ["/workspace/ws/inside.txt", "/etc/passwd"] {
        let (mut request, _) = hostile("read", &[("path", path)]);
        request.grants.workspaces.push(WorkspaceMount {
            name: "ws".into(),
            host_path: dir.path().to_path_buf(),
            guest_path: "/workspace/ws".into(),
            read_only: true,
        });
        let result = plugin("hostile-gate")
            .evaluate(request, context(0))
            .await
            .expect("evaluates");
        blocked(&result);
    }
}

#[tokio::test]
async fn an_oversized_message_hits_the_result_budget() {
    let (mut request, _) = hostile("huge", &[("bytes", "4096")]);
    request.limits.result_bytes = 1024;
    let report = plugin("hostile-gate")
        .evaluate(request, context(0))
        .await
        .expect_err("too big");
    assert_eq!(errored_reason(&report), "ResultSizeExceeded");
}

#[tokio::test]
async fn revealed_secrets_are_masked_in_the_gate_log() {
    let (mut request, sink) = hostile("reveal", &[("secret", "probe-token")]);
    request.grants.secrets.insert(
        "probe-token".into(),
        SecretValue::new("g4te-s3cret-value-7"),
    );
    let result = plugin("hostile-gate")
        .evaluate(request, context(0))
        .await
        .expect("evaluates");
    assert_eq!(result, GateResult::Passed("revealed 19 characters".into()));
    let log = sink.text();
    assert!(log.contains("the secret is"), "log: {log}");
    assert!(log.contains("stdout says"), "log: {log}");
    assert!(!log.contains("g4te-s3cret-value-7"), "secret leaked: {log}");

    // Not granted: an ordinary error, named in the log.
    let (request, sink) = hostile("reveal", &[("secret", "probe-token")]);
    let result = plugin("hostile-gate")
        .evaluate(request, context(0))
        .await
        .expect("evaluates");
    blocked(&result);
    assert!(sink.text().contains("not granted"), "log: {}", sink.text());
}

#[tokio::test]
async fn gates_and_tasks_are_not_interchangeable() {
    let report = plugin("echo")
        .evaluate(TaskRequest::new("echo"), context(0))
        .await
        .expect_err("a task is not a gate");
    assert_eq!(errored_reason(&report), "WrongPluginKind");
    let (request, _) = hostile("passed", &[]);
    let report = plugin("hostile-gate").run(request).await;
    assert_eq!(errored_reason(&report), "WrongPluginKind");
    assert!(plugin("time-window").describe_decorator().await.is_err());
}

// ---- the first-party gates ----

/// A loopback HTTP server: `/ok` answers 200 `{"status":"ok"}`, `/degraded` 200
/// `{"status":"degraded"}`, `/html` 200 with HTML, anything else 503.
async fn health_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let path = head.split_whitespace().nth(1).unwrap_or("/");
                let (status, body) = match path {
                    "/ok" => ("200 OK", r#"{"status":"ok","checks":{"db":true}}"#),
                    "/degraded" => ("200 OK", r#"{"status":"degraded"}"#),
                    "/html" => ("200 OK", "<html>fine</html>"),
                    _ => ("503 Service Unavailable", "down"),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    port
}

async fn http_check(port: u16, params: &[(&str, &str)]) -> GateResult {
    let (mut request, _) = request(params, &[&format!("!private:127.0.0.1:{port}")]);
    request.limits.cpu_budget = Duration::from_secs(2);
    plugin("http-check")
        .evaluate(request, context(0))
        .await
        .expect("evaluates")
}

#[tokio::test]
async fn http_check_passes_on_the_expected_status_and_value() {
    let port = health_server().await;
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let ok = url("/ok");
    let result = http_check(port, &[("url", &ok)]).await;
    assert_eq!(result, GateResult::Passed(format!("GET {ok}: HTTP 200")));
    let result = http_check(
        port,
        &[
            ("url", &ok),
            ("jsonPointer", "/status"),
            ("expectValue", "ok"),
        ],
    )
    .await;
    assert_eq!(
        result,
        GateResult::Passed(format!(r#"GET {ok}: HTTP 200, /status is "ok""#))
    );
    let result = http_check(
        port,
        &[
            ("url", &ok),
            ("jsonPointer", "/checks/db"),
            ("expectValue", "true"),
        ],
    )
    .await;
    assert!(matches!(result, GateResult::Passed(_)), "{result:?}");

    // Not yet: the message names what was seen.
    let degraded = url("/degraded");
    let result = http_check(
        port,
        &[
            ("url", &degraded),
            ("jsonPointer", "/status"),
            ("expectValue", "ok"),
        ],
    )
    .await;
    assert_eq!(
        result,
        GateResult::Failed(format!(
            r#"GET {degraded}: HTTP 200, /status is "degraded" (expected "ok")"#
        ))
    );
    let down = url("/down");
    let result = http_check(port, &[("url", &down)]).await;
    assert_eq!(
        result,
        GateResult::Failed(format!("GET {down}: HTTP 503 (expected 200)"))
    );
    let result = http_check(port, &[("url", &down), ("expectStatus", "5xx")]).await;
    assert!(matches!(result, GateResult::Passed(_)), "{result:?}");
    let result = http_check(port, &[("url", &url("/html")), ("jsonPointer", "/status")]).await;
    assert!(
        matches!(&result, GateResult::Failed(m) if m.contains("not JSON")),
        "{result:?}"
    );
    let result = http_check(port, &[("url", &ok), ("method", "HEAD")]).await;
    assert!(matches!(result, GateResult::Passed(_)), "{result:?}");
}

#[tokio::test]
async fn http_check_errors_on_transport_failures_and_bad_params() {
    let port = health_server().await;
    // A host the operator does not allow.
    let result = http_check(port, &[("url", "http://example.com/health")]).await;
    assert!(
        matches!(&result, GateResult::Error(m) if m.contains("not allowed")),
        "{result:?}"
    );
    // Nothing listens there.
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let closed_port = closed.local_addr().expect("addr").port();
    drop(closed);
    let (mut request, _) = request(
        &[("url", &format!("http://127.0.0.1:{closed_port}/"))],
        &[&format!("!private:127.0.0.1:{closed_port}")],
    );
    request.limits.cpu_budget = Duration::from_secs(2);
    let result = plugin("http-check")
        .evaluate(request, context(0))
        .await
        .expect("evaluates");
    assert!(matches!(result, GateResult::Error(_)), "{result:?}");
    // Bad params are errors, not failed samples.
    let ok = format!("http://127.0.0.1:{port}/ok");
    for params in [
        vec![("url", ok.as_str()), ("expectStatus", "fine")],
        vec![("url", ok.as_str()), ("expectValue", "ok")],
        vec![("expectStatus", "200")],
    ] {
        let result = http_check(port, &params).await;
        assert!(
            matches!(result, GateResult::Error(_)),
            "{params:?}: {result:?}"
        );
    }
}

/// `HH:MM` of the UTC minute `offset` minutes from now.
fn utc_clock(offset: i64) -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
        / 60;
    let minute = (now + offset).rem_euclid(24 * 60);
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

async fn time_window(params: &[(&str, &str)]) -> GateResult {
    // No HTTP rule: time-window imports no `wasi:http`.
    let (request, _) = request(params, &[]);
    plugin("time-window")
        .evaluate(request, context(0))
        .await
        .expect("evaluates")
}

#[tokio::test]
async fn time_window_passes_inside_its_window_only() {
    let around_now = format!("{}-{}", utc_clock(-90), utc_clock(90));
    let result = time_window(&[("hours", &around_now)]).await;
    assert!(
        matches!(&result, GateResult::Passed(m) if m.contains("inside") && m.contains("UTC")),
        "{result:?}"
    );
    let later = format!("{}-{}", utc_clock(180), utc_clock(240));
    let result = time_window(&[("weekdays", "Mon-Sun"), ("hours", &later)]).await;
    assert!(
        matches!(&result, GateResult::Failed(m) if m.contains("outside") && m.contains("opens")),
        "{result:?}"
    );
    // The whole week, by default, in another zone.
    let result = time_window(&[("timezone", "Europe/Paris")]).await;
    assert!(
        matches!(&result, GateResult::Passed(m) if m.contains("Europe/Paris")),
        "{result:?}"
    );
    for params in [
        [("timezone", "Mars/Olympus")],
        [("weekdays", "Funday")],
        [("hours", "9-5")],
    ] {
        let result = time_window(&params).await;
        assert!(
            matches!(result, GateResult::Error(_)),
            "{params:?}: {result:?}"
        );
    }
}
