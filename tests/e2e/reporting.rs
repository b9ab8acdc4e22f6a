//! Status reporting and secrets, end to end: `weft run` against the fake forge of
//! `fake_forge.rs`, with every test secret scanned for in stdout, stderr, everything under
//! the run's data directory (logs, report.json, the run store) and every request the forge
//! received other than the header it authenticates.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::fake_forge::{FakeForge, Recorded};
use crate::support::{self, Ran, assert_contained, files};

const GITLAB_TOKEN: &str = "glpat-Seekrit-0123456789";
const GITHUB_TOKEN: &str = "ghp_Seekrit_abcdefghijkl";
const GITEA_TOKEN: &str = "gitea-Seekrit-98765432";
const BITBUCKET_TOKEN: &str = "bb-Seekrit-1122334455";
const WEBHOOK_SECRET: &str = "hook-Seekrit-5566778899";

fn example(name: &str) -> String {
    support::root()
        .join("examples")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn pipeline(name: &str) -> String {
    support::pipelines()
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// The states the forge accepted, in order.
fn accepted(forge: &FakeForge) -> Vec<String> {
    forge
        .requests()
        .iter()
        .filter(|r| r.ok())
        .map(|r| r.field("state"))
        .collect()
}

fn gitlab_report(forge: &FakeForge) -> String {
    format!(
        "gitlab:url={},project=group/app,sha=0123abcd,token-secret=gitlab-token,target-url=https://ci.example.com/r/1",
        forge.url()
    )
}

/// `weft run FILE --output json --report gitlab:... --secret gitlab-token=env:...`.
fn run_with_gitlab(file: &str, extra: &[&str], forge: &FakeForge, data: &Path) -> Ran {
    let report = gitlab_report(forge);
    let rule = forge.rule();
    let mut args = vec![
        "run",
        file,
        "--output",
        "json",
        "--report",
        &report,
        "--secret",
        "gitlab-token=env:WEFT_TEST_GITLAB_TOKEN",
        "--allow-http",
        &rule,
    ];
    args.extend_from_slice(extra);
    support::run_in(data, &args, &[("WEFT_TEST_GITLAB_TOKEN", GITLAB_TOKEN)])
}

fn seed(build_exit: &str) -> (Ran, FakeForge, tempfile::TempDir) {
    let forge = FakeForge::start();
    let data = tempfile::tempdir().expect("tempdir");
    let host = format!("gitlab-host={}", forge.url());
    let exit = format!("build-exit={build_exit}");
    let rule = forge.rule();
    let file = example("tekton-blog-seed.yaml");
    let out = support::run_in(
        data.path(),
        &[
            "run",
            &file,
            "--output",
            "json",
            "-p",
            &host,
            "-p",
            &exit,
            "--secret",
            "gitlab-api-secret.token=env:WEFT_TEST_GITLAB_TOKEN",
            "--grant",
            "report-failure=gitlab-api-secret.token",
            "--grant",
            "report-success=gitlab-api-secret.token",
            "--allow-http",
            &rule,
        ],
        &[("WEFT_TEST_GITLAB_TOKEN", GITLAB_TOKEN)],
    );
    (out, forge, data)
}

#[test]
fn seed_pipeline_reports_failed_when_the_build_fails() {
    let (out, forge, data) = seed("1");
    assert_eq!(out.code, 1, "{}", out.stderr);
    let requests = forge.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    let r = &requests[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/api/v4/projects/group%2Fapp/statuses/0123abc")
    );
    assert_eq!(r.field("state"), "failed");
    assert!(
        r.field("description")
            .contains("The build failed: build Failed"),
        "{r:?}"
    );
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {GITLAB_TOKEN}").as_str())
    );
    assert_eq!(out.json()["run"]["status"], "Failed");
    assert_contained(GITLAB_TOKEN, &out, data.path(), &forge, "authorization");
}

#[test]
fn seed_pipeline_reports_success_when_the_build_passes() {
    let (out, forge, data) = seed("0");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(accepted(&forge), vec!["success"]);
    assert_eq!(
        forge.requests()[0].field("description"),
        "The build succeeded"
    );
    assert_contained(GITLAB_TOKEN, &out, data.path(), &forge, "authorization");
}

#[test]
fn seed_pipeline_without_a_grant_is_denied_and_says_which_secret() {
    let forge = FakeForge::start();
    let data = tempfile::tempdir().expect("tempdir");
    let host = format!("gitlab-host={}", forge.url());
    let rule = forge.rule();
    let file = example("tekton-blog-seed.yaml");
    let out = support::run_in(
        data.path(),
        &[
            "run",
            &file,
            "--output",
            "json",
            "-p",
            &host,
            "--secret",
            "gitlab-api-secret.token=env:WEFT_TEST_GITLAB_TOKEN",
            "--allow-http",
            &rule,
        ],
        &[("WEFT_TEST_GITLAB_TOKEN", GITLAB_TOKEN)],
    );
    // The finally task fails (no token), so the run does.
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(forge.requests().is_empty());
    let log = std::fs::read_dir(data.path().join("runs"))
        .expect("runs dir")
        .flatten()
        .flat_map(|run| files(&run.path().join("logs")))
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect::<String>();
    assert!(
        log.contains("secret `gitlab-api-secret.token` was requested but is not granted"),
        "{log}"
    );
    assert_contained(GITLAB_TOKEN, &out, data.path(), &forge, "authorization");
}

#[test]
fn report_flag_posts_pending_running_then_failed() {
    let forge = FakeForge::start();
    let data = tempfile::tempdir().expect("tempdir");
    let out = run_with_gitlab(
        &example("build-test-report.yaml"),
        &["-p", "testExit=1"],
        &forge,
        data.path(),
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    let states = accepted(&forge);
    assert_eq!(
        states,
        vec!["pending", "running", "failed"],
        "{:#?}",
        forge.requests()
    );
    let last = forge.requests().pop().expect("a request");
    assert_eq!(last.path, "/api/v4/projects/group%2Fapp/statuses/0123abcd");
    assert_eq!(last.header("private-token"), Some(GITLAB_TOKEN));
    assert_eq!(last.field("name"), "weft/build-test-report");
    assert!(
        last.field("description").contains("failed") && last.field("description").contains("test"),
        "{last:?}"
    );
    assert_contained(GITLAB_TOKEN, &out, data.path(), &forge, "private-token");
}

#[test]
fn a_warning_run_reports_success_passed_with_warnings() {
    let forge = FakeForge::start();
    let data = tempfile::tempdir().expect("tempdir");
    let out = run_with_gitlab(&example("warning.yaml"), &[], &forge, data.path());
    assert_eq!(out.code, 0, "{}", out.stderr);
    let last = forge.requests().pop().expect("a request");
    assert_eq!(last.field("state"), "success");
    assert!(
        last.field("description").contains("passed with warnings"),
        "{last:?}"
    );
    assert_contained(GITLAB_TOKEN, &out, data.path(), &forge, "private-token");
}

#[test]
fn a_halted_run_reports_success_halted_early() {
    let forge = FakeForge::start();
    let data = tempfile::tempdir().expect("tempdir");
    let out = run_with_gitlab(&example("early-exit.yaml"), &[], &forge, data.path());
    assert_eq!(out.code, 0, "{}", out.stderr);
    let last = forge.requests().pop().expect("a request");
    assert_eq!(last.field("state"), "success");
    assert!(
        last.field("description").contains("halted early by check"),
        "{last:?}"
    );
}

#[test]
fn a_cancelled_run_reports_canceled() {
    let forge = FakeForge::start();
    let data = tempfile::tempdir().expect("tempdir");
    let report = gitlab_report(&forge);
    let rule = forge.rule();
    let child: Child = support::weft_in(data.path())
        .args([
            "run",
            &pipeline("cancel.yaml"),
            "--output",
            "json",
            "--report",
            &report,
            "--secret",
            "gitlab-token=env:WEFT_TEST_GITLAB_TOKEN",
            "--allow-http",
            &rule,
        ])
        .env("WEFT_TEST_GITLAB_TOKEN", GITLAB_TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weft starts");
    std::thread::sleep(Duration::from_millis(1500));
    support::signal(&child, "-INT");
    let output = child.wait_with_output().expect("weft finishes");
    let out = Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert_eq!(out.code, 1, "{}", out.stderr);
    let states = accepted(&forge);
    assert_eq!(
        states.last().map(String::as_str),
        Some("canceled"),
        "{states:?}"
    );
    assert!(states.contains(&"running".to_string()), "{states:?}");
    assert_contained(GITLAB_TOKEN, &out, data.path(), &forge, "private-token");
}

#[test]
fn a_flaky_forge_still_gets_the_final_status_in_at_most_three_writes() {
    let forge = FakeForge::failing(&[500, 429]);
    let data = tempfile::tempdir().expect("tempdir");
    let out = run_with_gitlab(&example("build-test-report.yaml"), &[], &forge, data.path());
    assert_eq!(out.code, 0, "{}", out.stderr);
    let requests = forge.requests();
    assert!(requests.len() <= 3, "{requests:#?}");
    let last = requests.last().expect("a request");
    assert!(last.ok(), "{requests:#?}");
    assert_eq!(last.field("state"), "success");
    assert!(!out.stderr.contains("was not reported"), "{}", out.stderr);
}

#[test]
fn an_unreachable_forge_is_given_up_within_the_report_timeout() {
    // A port nobody listens on (the fake is dropped at once).
    let (url, rule) = {
        let forge = FakeForge::start();
        (forge.url(), forge.rule())
    };
    let data = tempfile::tempdir().expect("tempdir");
    let report = format!("gitlab:url={url},project=g/a,sha=0123abcd,token-secret=gitlab-token");
    let started = std::time::Instant::now();
    let out = support::run_in(
        data.path(),
        &[
            "run",
            &example("build-test-report.yaml"),
            "--output",
            "json",
            "--report",
            &report,
            "--secret",
            "gitlab-token=literal:glpat-Literal-000111222",
            "--allow-http",
            &rule,
            "--report-timeout",
            "2s",
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(out.stderr.contains("was not reported"), "{}", out.stderr);
    assert!(!out.stderr.contains("glpat-Literal-000111222"));
    assert_eq!(out.json()["run"]["status"], "Completed");
}

fn run_forge(
    report: &str,
    secret_flag: &str,
    token: &str,
    forge: &FakeForge,
) -> (Ran, tempfile::TempDir) {
    let data = tempfile::tempdir().expect("tempdir");
    let rule = forge.rule();
    let out = support::run_in(
        data.path(),
        &[
            "run",
            &example("build-test-report.yaml"),
            "--output",
            "json",
            "--report",
            report,
            "--secret",
            secret_flag,
            "--allow-http",
            &rule,
        ],
        &[("WEFT_TEST_TOKEN", token)],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    (out, data)
}

#[test]
fn github_gets_pending_then_success_with_bearer() {
    let forge = FakeForge::start();
    let report = format!(
        "github:url={},project=octo/app,sha=0123abcd,token-secret=github-token",
        forge.url()
    );
    let (out, data) = run_forge(
        &report,
        "github-token=env:WEFT_TEST_TOKEN",
        GITHUB_TOKEN,
        &forge,
    );
    let requests = forge.requests();
    let last: &Recorded = requests.last().expect("a request");
    assert_eq!(last.path, "/repos/octo/app/statuses/0123abcd");
    assert_eq!(last.field("state"), "success");
    assert!(
        accepted(&forge)
            .iter()
            .all(|s| s == "pending" || s == "success")
    );
    assert_eq!(
        last.header("authorization"),
        Some(format!("Bearer {GITHUB_TOKEN}").as_str())
    );
    assert!(last.field("description").chars().count() <= 140);
    assert_contained(GITHUB_TOKEN, &out, data.path(), &forge, "authorization");
}

#[test]
fn gitea_gets_success_with_token_auth() {
    let forge = FakeForge::start();
    let report = format!(
        "gitea:url={},project=org/app,sha=0123abcd,token-secret=gitea-token",
        forge.url()
    );
    let (out, data) = run_forge(
        &report,
        "gitea-token=env:WEFT_TEST_TOKEN",
        GITEA_TOKEN,
        &forge,
    );
    let last = forge.requests().pop().expect("a request");
    assert_eq!(last.path, "/api/v1/repos/org/app/statuses/0123abcd");
    assert_eq!(last.field("state"), "success");
    assert_eq!(
        last.header("authorization"),
        Some(format!("token {GITEA_TOKEN}").as_str())
    );
    assert_contained(GITEA_TOKEN, &out, data.path(), &forge, "authorization");
}

#[test]
fn bitbucket_gets_inprogress_then_successful() {
    let forge = FakeForge::start();
    let report = format!(
        "bitbucket:url={},project=ws/app,sha=0123abcd,token-secret=bitbucket-token",
        forge.url()
    );
    let (out, data) = run_forge(
        &report,
        "bitbucket-token=env:WEFT_TEST_TOKEN",
        BITBUCKET_TOKEN,
        &forge,
    );
    let states = accepted(&forge);
    assert_eq!(
        states.last().map(String::as_str),
        Some("SUCCESSFUL"),
        "{states:?}"
    );
    assert!(states.iter().any(|s| s == "INPROGRESS"), "{states:?}");
    let last = forge.requests().pop().expect("a request");
    assert_eq!(
        last.path,
        "/2.0/repositories/ws/app/commit/0123abcd/statuses/build"
    );
    assert!(!last.field("key").is_empty());
    assert_contained(BITBUCKET_TOKEN, &out, data.path(), &forge, "authorization");
}

#[test]
fn webhook_posts_signed_json() {
    let forge = FakeForge::start();
    let report = format!("webhook:url={}/hook,token-secret=hook-secret", forge.url());
    let (out, data) = run_forge(
        &report,
        "hook-secret=env:WEFT_TEST_TOKEN",
        WEBHOOK_SECRET,
        &forge,
    );
    let requests = forge.requests();
    assert!(!requests.is_empty());
    for request in &requests {
        let signature = request.header("x-weft-signature").expect("signed");
        let mut mac =
            Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).expect("any key length");
        mac.update(request.body.as_bytes());
        let expected: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(signature, format!("sha256={expected}"));
    }
    let last = requests.last().expect("a request");
    assert_eq!(last.json()["run"]["status"], "Completed");
    assert_eq!(last.json()["terminal"], true);
    assert_contained(
        WEBHOOK_SECRET,
        &out,
        data.path(),
        &forge,
        "x-weft-signature",
    );
}

#[test]
fn short_secrets_are_refused_with_a_warning() {
    let data = tempfile::tempdir().expect("tempdir");
    let out = support::run_in(
        data.path(),
        &[
            "run",
            &example("build-test-report.yaml"),
            "--output",
            "json",
            "--secret",
            "tiny=literal:abc12",
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("secret `tiny.token`"), "{}", out.stderr);
    assert!(!out.stderr.contains("abc12"));
    // The embedded store was created private.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.path().join("secrets.json"))
            .expect("secrets.json")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn secret_workspace_values_are_masked_in_task_logs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("p.yaml");
    std::fs::write(
        &file,
        r#"apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: secret-ws
spec:
  workspaces:
    - name: creds
  tasks:
    - name: show
      taskRef: {name: echo}
      params:
        - {name: message, value: "token is glws-Seekrit-4242424242"}
"#,
    )
    .expect("write");
    let data = tempfile::tempdir().expect("tempdir");
    let out = support::run_in(
        data.path(),
        &[
            "run",
            &file.to_string_lossy(),
            "--output",
            "json",
            "--secret",
            "creds.token=env:WEFT_TEST_TOKEN",
            "--workspace",
            "creds=secret:creds",
        ],
        &[("WEFT_TEST_TOKEN", "glws-Seekrit-4242424242")],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let logs: String = files(data.path())
        .iter()
        .filter(|p| p.to_string_lossy().contains("/logs/"))
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect();
    // The task printed a value it should not have; the log has it masked.
    assert!(logs.contains("token is"), "{logs}");
    assert!(!logs.contains("glws-Seekrit-4242424242"), "{logs}");
}
