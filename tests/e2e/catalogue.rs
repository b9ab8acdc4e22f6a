//! The catalogue tasks through the `weft` binary, against servers on 127.0.0.1:
//! `http-request` (send-to-webhook: method, headers, body, a bearer token from a granted
//! secret, retries, the response as results) and `wait-for` (a duration, or until a URL
//! answers 2xx, or a timeout).

use std::time::{Duration, Instant};

use crate::fake_forge::FakeForge;
use crate::release::{self, Health};
use crate::support::{self, Run};

const TOKEN: &str = "hook-Catalogue-Token-5566";

/// `weft run catalogue-http.yaml` against `forge` with the token granted to `notify`.
fn send(forge: &FakeForge, extra: &[&str]) -> (support::Ran, Run) {
    let url = format!("url={}/hook", forge.url());
    let rule = forge.rule();
    let mut args = vec![
        "-p",
        &url,
        "--allow-http",
        &rule,
        "--secret",
        "hook-token=env:WEFT_TEST_HOOK_TOKEN",
        "--grant",
        "notify=hook-token",
    ];
    args.extend_from_slice(extra);
    let path = support::pipelines().join("catalogue-http.yaml");
    let path = path.to_string_lossy().into_owned();
    let mut all = vec!["run", path.as_str(), "--output", "json"];
    all.extend_from_slice(&args);
    let scratch = tempfile::tempdir().expect("tempdir");
    let ran = support::run_in(scratch.path(), &all, &[("WEFT_TEST_HOOK_TOKEN", TOKEN)]);
    let run = Run(ran.json());
    (ran, run)
}

#[test]
fn http_request_sends_what_its_params_say_and_retries_until_it_is_answered() {
    // A server error, then a rate limit (Retry-After: 1), then the hook answers.
    let forge = FakeForge::failing(&[503, 429]);
    let (ran, run) = send(&forge, &[]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let notify = run.task("notify");
    assert_eq!(notify["results"]["status"], "200");
    assert_eq!(notify["results"]["attempts"], "3");
    assert_eq!(notify["results"]["body"], r#"{"ok":true}"#);
    assert_eq!(notify["results"]["contentType"], "application/json");
    let requests = forge.requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    for request in &requests {
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("POST", "/hook")
        );
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.header("x-weft-pipeline"), Some("catalogue-http"));
        assert_eq!(request.json()["text"], "app deployed");
    }
    assert!(ran.stderr.contains("HTTP 503"), "{}", ran.stderr);
    assert!(!ran.stdout.contains(TOKEN) && !ran.stderr.contains(TOKEN));
}

#[test]
fn http_request_fails_on_an_unexpected_status_without_retrying_it() {
    let forge = FakeForge::start();
    // The fake answers GET /hook with 405: not worth a retry.
    let (ran, run) = send(&forge, &["-p", "method=GET"]);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let notify = run.task("notify");
    assert_eq!(notify["status"], "Failed");
    assert_eq!(notify["exitCode"], 1);
    let message = notify["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("GET http://127.0.0.1") && message.contains("HTTP 405 (expected 2xx)"),
        "{message}"
    );
    assert_eq!(forge.requests().len(), 1, "{}", ran.stderr);
}

#[test]
fn http_request_refuses_bad_params_with_exit_code_2() {
    let forge = FakeForge::start();
    let (ran, run) = send(&forge, &["-p", "retries=many"]);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert_eq!(run.task("notify")["exitCode"], 2);
    assert!(
        run.task("notify")["message"]
            .as_str()
            .is_some_and(|m| m.contains("param `retries`")),
        "{:#}",
        run.task("notify")
    );
    assert!(forge.requests().is_empty());
}

/// `weft run catalogue-wait.yaml` with `params`, allowed to reach `health`.
fn wait_for(health: &Health, params: &[&str]) -> (support::Ran, Run, Duration) {
    let rule = health.rule();
    let mut args = vec!["--allow-http", rule.as_str()];
    for param in params {
        args.push("-p");
        args.push(param);
    }
    let started = Instant::now();
    let (ran, run) = support::run_pipeline("catalogue-wait.yaml", &args);
    (ran, run, started.elapsed())
}

#[test]
fn wait_for_sleeps_for_a_duration() {
    let health = Health::start(true);
    let (ran, run, took) = wait_for(&health, &["duration=1500ms"]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(took >= Duration::from_millis(1500), "{took:?}");
    let waited: f64 = run.task("wait")["results"]["waited"]
        .as_str()
        .and_then(|w| w.parse().ok())
        .expect("waited");
    assert!(waited >= 1.5, "{waited}");
    assert_eq!(run.task("wait")["results"]["attempts"], "0");
    assert_eq!(health.hits(), 0);
    run.expect_tasks(&[("after", "Succeeded", "")]);
}

#[test]
fn wait_for_checks_a_url_until_it_answers() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let health = Health::start(false);
    let url = format!("url={}", health.url());
    let rule = health.rule();
    let child = release::spawn_run(
        scratch.path(),
        "catalogue-wait.yaml",
        "wait-url",
        &["-p", &url, "--allow-http", &rule],
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while health.hits() < 3 {
        assert!(Instant::now() < deadline, "the URL is not checked");
        std::thread::sleep(Duration::from_millis(50));
    }
    health.set(true);
    let ran = release::finish(child);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let run = Run(ran.json());
    let attempts: u32 = run.task("wait")["results"]["attempts"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .expect("attempts");
    assert!(attempts >= 4, "{attempts}");
    run.expect_tasks(&[("wait", "Succeeded", ""), ("after", "Succeeded", "")]);
}

#[test]
fn wait_for_fails_at_its_timeout_or_with_nothing_to_wait_for() {
    let health = Health::start(false);
    let url = format!("url={}", health.url());
    let (ran, run, _) = wait_for(&health, &[&url, "timeout=1s"]);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    run.expect_tasks(&[
        ("wait", "Failed", "Failed"),
        ("after", "Skipped", "RunStopping"),
    ]);
    let message = run.task("wait")["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("did not answer 2xx within 1s: HTTP 503 (expected 2xx)"),
        "{message}"
    );

    let (ran, run, _) = wait_for(&health, &[]);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert_eq!(run.task("wait")["exitCode"], 2);
    assert!(
        run.task("wait")["message"]
            .as_str()
            .is_some_and(|m| m.contains("nothing to wait for")),
        "{:#}",
        run.task("wait")
    );
}
