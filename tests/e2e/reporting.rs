//! Status reporting and secrets, end to end: `weft run` against the fake forge of
//! `fake_forge.rs`, with every test secret scanned for in stdout, stderr, everything under
//! the run's data directory (logs, report.json, the run store) and every request the forge
//! received other than the header it authenticates. What a forge is told, per run ending
//! and per forge, is a table of named rows; cancellation, a flaky or unreachable forge and
//! the secret stores have their own tests.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use serde_json::json;

use crate::fake_forge::FakeForge;
use crate::support::{self, Ran, assert_contained, each_row, files};

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
    GITLAB_REPORT.replace("{url}", &forge.url())
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

/// How a case's run reports.
enum How {
    /// The seed example (`tekton-blog-seed.yaml`) with `-p build-exit=CODE`: its finally
    /// tasks set the GitLab status themselves, granted the token.
    SeedTasks(&'static str),
    /// `weft run FILE FLAGS --report SPEC` (`{url}` is the forge's), the token given as
    /// `--secret NAME=env:...`.
    Reporter {
        file: &'static str,
        flags: &'static [&'static str],
        spec: &'static str,
        secret: &'static str,
    },
}

/// How requests carry the token.
enum Auth {
    /// This header, with this value (`{token}` is the token).
    Header(&'static str, &'static str),
    /// This header, `sha256=<HMAC-SHA256 of the body keyed with the token>`.
    Signature(&'static str),
}

/// What the final description says.
enum Description {
    Is(&'static str),
    Contains(&'static [&'static str]),
    AtMostChars(usize),
    Unchecked,
}

/// A check of a case beyond its columns.
enum Also {
    /// How many requests the forge got.
    Requests(usize),
    /// A body field of the last request.
    Field(&'static str, &'static str),
    /// A body field of the last request is not empty.
    FieldSet(&'static str),
    /// A field of the last request's JSON body (a JSON pointer).
    Json(&'static str, serde_json::Value),
}

/// One run reporting to a fresh fake forge, and what the forge must have been told.
struct Reported {
    name: &'static str,
    how: How,
    /// The token the requests authenticate with; it must appear nowhere else.
    token: &'static str,
    /// Exit code.
    code: i32,
    /// `run.status` of the run's document.
    run_status: &'static str,
    /// Method and path of the last request.
    to: (&'static str, &'static str),
    /// The states the forge accepted, in order.
    states: Option<&'static [&'static str]>,
    description: Description,
    auth: Auth,
    also: Vec<Also>,
}

fn reported(case: Reported) {
    let name = case.name;
    let forge = FakeForge::start();
    let data = tempfile::tempdir().expect("tempdir");
    let rule = forge.rule();
    let out = match case.how {
        How::SeedTasks(build_exit) => {
            let host = format!("gitlab-host={}", forge.url());
            let exit = format!("build-exit={build_exit}");
            support::run_in(
                data.path(),
                &[
                    "run",
                    &example("tekton-blog-seed.yaml"),
                    "--output",
                    "json",
                    "-p",
                    &host,
                    "-p",
                    &exit,
                    "--secret",
                    "gitlab-api-secret.token=env:WEFT_TEST_TOKEN",
                    "--grant",
                    "report-failure=gitlab-api-secret.token",
                    "--grant",
                    "report-success=gitlab-api-secret.token",
                    "--allow-http",
                    &rule,
                ],
                &[("WEFT_TEST_TOKEN", case.token)],
            )
        }
        How::Reporter {
            file,
            flags,
            spec,
            secret,
        } => {
            let file = support::root().join(file).to_string_lossy().into_owned();
            let spec = spec.replace("{url}", &forge.url());
            let secret = format!("{secret}=env:WEFT_TEST_TOKEN");
            let mut args = vec![
                "run",
                &file,
                "--output",
                "json",
                "--report",
                &spec,
                "--secret",
                &secret,
                "--allow-http",
                &rule,
            ];
            args.extend_from_slice(flags);
            support::run_in(data.path(), &args, &[("WEFT_TEST_TOKEN", case.token)])
        }
    };
    assert_eq!(out.code, case.code, "{name}: {}", out.stderr);
    assert_eq!(out.json()["run"]["status"], case.run_status, "{name}");
    let requests = forge.requests();
    let last = requests
        .last()
        .unwrap_or_else(|| panic!("{name}: the forge got no request"));
    assert_eq!(
        (last.method.as_str(), last.path.as_str()),
        case.to,
        "{name}: {last:?}"
    );
    if let Some(states) = case.states {
        assert_eq!(accepted(&forge), states, "{name}: {requests:#?}");
    }
    let description = last.field("description");
    match case.description {
        Description::Is(expected) => assert_eq!(description, expected, "{name}"),
        Description::Contains(parts) => {
            for part in parts {
                assert!(description.contains(part), "{name}: {last:?}");
            }
        }
        Description::AtMostChars(most) => {
            assert!(description.chars().count() <= most, "{name}: {last:?}")
        }
        Description::Unchecked => {}
    }
    let auth_header = match case.auth {
        Auth::Header(header, value) => {
            let value = value.replace("{token}", case.token);
            for request in &requests {
                assert_eq!(
                    request.header(header),
                    Some(value.as_str()),
                    "{name}: {header}"
                );
            }
            header
        }
        Auth::Signature(header) => {
            for request in &requests {
                let signature = request.header(header).expect("signed");
                let mut mac =
                    Hmac::<Sha256>::new_from_slice(case.token.as_bytes()).expect("any key length");
                mac.update(request.body.as_bytes());
                let expected: String = mac
                    .finalize()
                    .into_bytes()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                assert_eq!(signature, format!("sha256={expected}"), "{name}");
            }
            header
        }
    };
    for also in case.also {
        match also {
            Also::Requests(count) => assert_eq!(requests.len(), count, "{name}: {requests:#?}"),
            Also::Field(field, value) => assert_eq!(last.field(field), value, "{name}: {field}"),
            Also::FieldSet(field) => assert!(!last.field(field).is_empty(), "{name}: {field}"),
            Also::Json(pointer, value) => {
                assert_eq!(
                    last.json().pointer(pointer),
                    Some(&value),
                    "{name}: {pointer}"
                )
            }
        }
    }
    assert_contained(case.token, &out, data.path(), &forge, auth_header);
}

const GITLAB_REPORT: &str = "gitlab:url={url},project=group/app,sha=0123abcd,token-secret=gitlab-token,target-url=https://ci.example.com/r/1";
const GITLAB_STATUSES: (&str, &str) = ("POST", "/api/v4/projects/group%2Fapp/statuses/0123abcd");

/// The GitLab reporter on `FILE` with `FLAGS`.
const fn gitlab_reporter(file: &'static str, flags: &'static [&'static str]) -> How {
    How::Reporter {
        file,
        flags,
        spec: GITLAB_REPORT,
        secret: "gitlab-token",
    }
}

#[test]
fn a_runs_ending_is_reported_as_a_state_and_a_description() {
    let seed_posts = ("POST", "/api/v4/projects/group%2Fapp/statuses/0123abc");
    let rows = vec![
        Reported {
            name: "seed pipeline: a failed build is reported failed by its finally task",
            how: How::SeedTasks("1"),
            token: GITLAB_TOKEN,
            code: 1,
            run_status: "Failed",
            to: seed_posts,
            states: Some(&["failed"]),
            description: Description::Contains(&["The build failed: build Failed"]),
            auth: Auth::Header("authorization", "Bearer {token}"),
            also: vec![Also::Requests(1)],
        },
        Reported {
            name: "seed pipeline: a passing build is reported success",
            how: How::SeedTasks("0"),
            token: GITLAB_TOKEN,
            code: 0,
            run_status: "Completed",
            to: seed_posts,
            states: Some(&["success"]),
            description: Description::Is("The build succeeded"),
            auth: Auth::Header("authorization", "Bearer {token}"),
            also: vec![Also::Requests(1)],
        },
        Reported {
            name: "--report: a failed run posts pending, running, then failed, naming the failed task",
            how: gitlab_reporter("examples/build-test-report.yaml", &["-p", "testExit=1"]),
            token: GITLAB_TOKEN,
            code: 1,
            run_status: "Failed",
            to: GITLAB_STATUSES,
            states: Some(&["pending", "running", "failed"]),
            description: Description::Contains(&["failed", "test"]),
            auth: Auth::Header("private-token", "{token}"),
            also: vec![Also::Field("name", "weft/build-test-report")],
        },
        Reported {
            name: "--report: a warning run is success, passed with warnings",
            how: gitlab_reporter("examples/warning.yaml", &[]),
            token: GITLAB_TOKEN,
            code: 0,
            run_status: "SucceededWithWarnings",
            to: GITLAB_STATUSES,
            states: Some(&["pending", "running", "success"]),
            description: Description::Contains(&["passed with warnings"]),
            auth: Auth::Header("private-token", "{token}"),
            also: vec![Also::Field("name", "weft/warning")],
        },
        Reported {
            name: "--report: a halted run is success, halted early",
            how: gitlab_reporter("examples/early-exit.yaml", &[]),
            token: GITLAB_TOKEN,
            code: 0,
            run_status: "Succeeded",
            to: GITLAB_STATUSES,
            states: Some(&["pending", "running", "success"]),
            description: Description::Contains(&["halted early by check"]),
            auth: Auth::Header("private-token", "{token}"),
            also: vec![Also::Field("name", "weft/early-exit")],
        },
    ];
    each_row(rows, |row| row.name, reported);
}

#[test]
fn each_forge_gets_its_own_endpoint_states_and_auth() {
    const GREEN: &str = "examples/build-test-report.yaml";
    let rows = vec![
        Reported {
            name: "github: pending then success, Bearer",
            how: How::Reporter {
                file: GREEN,
                flags: &[],
                spec: "github:url={url},project=octo/app,sha=0123abcd,token-secret=github-token",
                secret: "github-token",
            },
            token: GITHUB_TOKEN,
            code: 0,
            run_status: "Completed",
            to: ("POST", "/repos/octo/app/statuses/0123abcd"),
            states: Some(&["pending", "pending", "success"]),
            description: Description::AtMostChars(140),
            auth: Auth::Header("authorization", "Bearer {token}"),
            also: vec![],
        },
        Reported {
            name: "gitea: success, token auth",
            how: How::Reporter {
                file: GREEN,
                flags: &[],
                spec: "gitea:url={url},project=org/app,sha=0123abcd,token-secret=gitea-token",
                secret: "gitea-token",
            },
            token: GITEA_TOKEN,
            code: 0,
            run_status: "Completed",
            to: ("POST", "/api/v1/repos/org/app/statuses/0123abcd"),
            states: Some(&["pending", "pending", "success"]),
            description: Description::Unchecked,
            auth: Auth::Header("authorization", "token {token}"),
            also: vec![],
        },
        Reported {
            name: "bitbucket: INPROGRESS then SUCCESSFUL, with a key",
            how: How::Reporter {
                file: GREEN,
                flags: &[],
                spec: "bitbucket:url={url},project=ws/app,sha=0123abcd,token-secret=bitbucket-token",
                secret: "bitbucket-token",
            },
            token: BITBUCKET_TOKEN,
            code: 0,
            run_status: "Completed",
            to: (
                "POST",
                "/2.0/repositories/ws/app/commit/0123abcd/statuses/build",
            ),
            states: Some(&["INPROGRESS", "INPROGRESS", "SUCCESSFUL"]),
            description: Description::Unchecked,
            auth: Auth::Header("authorization", "Bearer {token}"),
            also: vec![Also::FieldSet("key")],
        },
        Reported {
            name: "webhook: signed JSON, the last one terminal",
            how: How::Reporter {
                file: GREEN,
                flags: &[],
                spec: "webhook:url={url}/hook,token-secret=hook-secret",
                secret: "hook-secret",
            },
            token: WEBHOOK_SECRET,
            code: 0,
            run_status: "Completed",
            to: ("POST", "/hook"),
            states: None,
            description: Description::Unchecked,
            auth: Auth::Signature("x-weft-signature"),
            also: vec![
                Also::Json("/run/status", json!("Completed")),
                Also::Json("/terminal", json!(true)),
            ],
        },
    ];
    each_row(rows, |row| row.name, reported);
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
