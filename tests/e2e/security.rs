//! Regression tests of the security issue (#11), through the `weft` binary: secrets a task
//! hands back are masked everywhere, a `weft serve` submitter cannot reach the operator's
//! secrets, the server refuses to listen unauthenticated on a public address.

use crate::fake_forge::FakeForge;
use crate::serve::Served;
use crate::support::{self, assert_contained, files};

const LEAKED: &str = "leak-Seekrit-77665544";
const GITLAB_TOKEN: &str = "glpat-Seekrit-0123456789";

const LEAKY: &str = r#"apiVersion: weft.dev/v1
kind: Pipeline
metadata: {name: leaky}
spec:
  params:
    - {name: via, default: success}
  tasks:
    - name: leak
      taskRef: {name: hostile}
      onError: continue
      secrets: [leak-me]
      params:
        - {name: mode, value: secret-return}
        - {name: secret, value: leak-me}
        - {name: via, value: $(params.via)}
    - name: after
      taskRef: {name: echo}
      params:
        - {name: message, value: "got $(tasks.leak.results.leaked)"}
"#;

/// A task that returns a granted secret as a result and in each kind of ending message:
/// the value reaches no output, file, stored record or forge request, and a downstream
/// task sees the masked text.
#[test]
fn results_and_messages_holding_a_secret_are_masked_everywhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("leaky.yaml");
    std::fs::write(&file, LEAKY).expect("write");
    let plugins = support::plugin_dir();
    for via in ["success", "warning", "halt", "skip", "failure"] {
        let forge = FakeForge::start();
        let data = tempfile::tempdir().expect("tempdir");
        let report = format!(
            "gitlab:url={},project=g/app,sha=0123abcd,token-secret=gitlab-token,tasks=true",
            forge.url()
        );
        let rule = forge.rule();
        let via_param = format!("via={via}");
        let name = format!("leaky-{via}");
        let out = support::run_in(
            data.path(),
            &[
                "run",
                &file.to_string_lossy(),
                "--output",
                "json",
                "--name",
                &name,
                "--plugins",
                &plugins.to_string_lossy(),
                "-p",
                &via_param,
                "--secret",
                "leak-me=env:WEFT_TEST_LEAK",
                "--secret",
                "gitlab-token=env:WEFT_TEST_GITLAB",
                "--report",
                &report,
                "--allow-http",
                &rule,
            ],
            &[
                ("WEFT_TEST_LEAK", LEAKED),
                ("WEFT_TEST_GITLAB", GITLAB_TOKEN),
            ],
        );
        let doc = out.json();
        let leak = doc["tasks"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["name"] == "leak"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(leak["results"]["leaked"], "***", "{via}: {doc:#}");
        if via != "success" {
            assert_eq!(leak["message"], "the value is ***", "{via}: {doc:#}");
        }
        if matches!(via, "success" | "warning" | "failure") {
            // Downstream sees the masked text.
            let after = doc["tasks"]
                .as_array()
                .and_then(|t| t.iter().find(|t| t["name"] == "after"))
                .cloned()
                .unwrap_or_default();
            assert_eq!(after["results"]["message"], "got ***", "{via}: {doc:#}");
        }
        // The task's log says which result was masked.
        let logs: String = files(data.path())
            .iter()
            .filter(|p| p.to_string_lossy().contains("/logs/"))
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .collect();
        assert!(
            logs.contains("result `leaked` contained a secret value"),
            "{via}: {logs}"
        );
        // `weft runs show`, text and JSON, from the store.
        for output in ["text", "json"] {
            let shown = support::run_in(
                data.path(),
                &["runs", "show", &name, "--output", output],
                &[],
            );
            assert_eq!(shown.code, 0, "{}", shown.stderr);
            assert!(!shown.stdout.contains(LEAKED), "{via}: runs show {output}");
            assert!(shown.stdout.contains("***"), "{via}: {}", shown.stdout);
        }
        assert!(!forge.requests().is_empty(), "{via}: nothing was reported");
        assert_contained(LEAKED, &out, data.path(), &forge, "authorization");
        assert_contained(GITLAB_TOKEN, &out, data.path(), &forge, "private-token");
    }
}

const OPERATOR_TOKEN: &str = "op-Seekrit-1234567890";
const DEPLOY_TOKEN: &str = "deploy-Seekrit-0987654321";

/// A pipeline whose task reads secret `SECRET` and hands it back (masked).
fn secret_user(secret: &str, extra_spec: &str) -> String {
    format!(
        r#"apiVersion: weft.dev/v1
kind: Pipeline
metadata: {{name: secret-user}}
spec:
{extra_spec}  tasks:
    - name: use
      taskRef: {{name: hostile}}
      secrets: [{secret}]
      params: [{{name: mode, value: secret-return}}, {{name: secret, value: {secret}}}]
"#
    )
}

fn submit(served: &Served, pipeline: &str, extra: serde_json::Value) -> (u16, serde_json::Value) {
    let mut request = serde_json::json!({ "pipeline": pipeline, "file": "submitted.yaml" });
    if let (Some(request), Some(extra)) = (request.as_object_mut(), extra.as_object()) {
        request.extend(extra.clone());
    }
    served.call("POST", "/api/v1/runs", Some(&request))
}

/// A submitter can neither have an operator secret given to a task (to read it back) nor
/// sent as a forge token to a destination the operator did not allow for reporters.
#[test]
fn a_submission_uses_only_the_secrets_and_reporter_destinations_it_was_allowed() {
    let data = tempfile::tempdir().expect("tempdir");
    let allowed_forge = FakeForge::start();
    let other_forge = FakeForge::start();
    let plugins = support::plugin_dir();
    let served = Served::start_with_env(
        data.path(),
        &[
            "--plugins",
            &plugins.to_string_lossy(),
            "--secret",
            "op-token=env:WEFT_TEST_OP",
            "--secret",
            "deploy=env:WEFT_TEST_DEPLOY",
            "--submit-secrets",
            "deploy",
            // Tasks may reach both forges; reporters only the allowed one.
            "--allow-http",
            &allowed_forge.rule(),
            "--allow-http",
            &other_forge.rule(),
            "--report-allow-http",
            &allowed_forge.rule(),
        ],
        &[
            ("WEFT_TEST_OP", OPERATOR_TOKEN),
            ("WEFT_TEST_DEPLOY", DEPLOY_TOKEN),
        ],
    );
    let report_to = |forge: &FakeForge, secret: &str| {
        format!(
            "gitlab:url={},project=g/app,sha=0123abcd,token-secret={secret}",
            forge.url()
        )
    };
    let refused: Vec<(&str, String, serde_json::Value, &str)> = vec![
        (
            "a task's secrets list",
            secret_user("op-token", ""),
            serde_json::json!({}),
            "spec.tasks[0].secrets[0]",
        ),
        (
            "a grant in the request",
            secret_user("deploy", ""),
            serde_json::json!({"grants": ["use=op-token"]}),
            "grants[use=op-token]",
        ),
        (
            "a reporter in the request",
            secret_user("deploy", ""),
            serde_json::json!({"reports": [report_to(&other_forge, "op-token")]}),
            "reports[0].token-secret",
        ),
        (
            "a reporter in the pipeline",
            secret_user(
                "deploy",
                &format!(
                    "  reporters:\n    - {{plugin: reporter-gitlab, config: {{url: \"{}\", project: g/app, sha: abc, token-secret: op-token}}}}\n",
                    other_forge.url()
                ),
            ),
            serde_json::json!({}),
            "spec.reporters[0].config.token-secret",
        ),
    ];
    for (what, pipeline, extra, field) in refused {
        let (status, body) = submit(&served, &pipeline, extra);
        assert_eq!(status, 400, "{what}: {body:#}");
        let diagnostic = &body["diagnostics"][0];
        assert_eq!(
            diagnostic["code"], "secret-not-submittable",
            "{what}: {body:#}"
        );
        assert_eq!(diagnostic["field"], field, "{what}: {body:#}");
        assert!(
            diagnostic["message"]
                .as_str()
                .is_some_and(|m| m.contains("op-token")),
            "{what}: {body:#}"
        );
    }
    let (_, listed) = served.call("GET", "/api/v1/runs", None);
    assert_eq!(listed, serde_json::json!([]), "nothing was created");

    // An allowed secret reaches its task; reporters with it reach only the allowed forge.
    let (status, body) = submit(
        &served,
        &secret_user("deploy", ""),
        serde_json::json!({
            "name": "allowed",
            "reports": [report_to(&allowed_forge, "deploy"), report_to(&other_forge, "deploy")],
        }),
    );
    assert_eq!(status, 201, "{body:#}");
    let run = served.wait_for("allowed", |run| run["finishedAt"].is_number());
    assert_eq!(run["report"]["run"]["status"], "Succeeded", "{run:#}");
    assert_eq!(
        run["report"]["tasks"][0]["results"]["leaked"], "***",
        "{run:#}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while allowed_forge
        .requests()
        .iter()
        .all(|r| r.field("state") != "success")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the allowed forge got no final status: {:#?}",
            allowed_forge.requests()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        other_forge.requests().is_empty(),
        "a reporter reached a destination not allowed for reporters: {:#?}",
        other_forge.requests()
    );
    let (code, stderr, _) = served.stop();
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains(OPERATOR_TOKEN) && !stderr.contains(DEPLOY_TOKEN));
}

/// Without a token, the server listens only on loopback unless told a proxy authenticates.
#[test]
fn serve_refuses_an_unauthenticated_public_address() {
    let data = tempfile::tempdir().expect("tempdir");
    let refused = support::run_in(data.path(), &["serve", "--listen", "0.0.0.0:0"], &[]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("refusing to listen on 0.0.0.0")
            && refused.stderr.contains("--api-token")
            && refused.stderr.contains("--insecure-no-auth"),
        "{}",
        refused.stderr
    );
    let empty = support::run_in(
        data.path(),
        &["serve", "--listen", "0.0.0.0:0", "--api-token", ""],
        &[],
    );
    assert_eq!(
        empty.code, 2,
        "an empty token is no token: {}",
        empty.stderr
    );
    for (extra, says) in [
        (vec!["--insecure-no-auth"], "WARNING: no authentication"),
        (
            vec!["--api-token", "a-long-api-token-1234"],
            "requires a bearer token",
        ),
    ] {
        let mut args = vec!["--listen", "0.0.0.0:0"];
        args.extend(extra);
        let served = Served::start_listening(data.path(), &args);
        let (code, stderr, _) = served.stop();
        assert_eq!(code, 0, "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }
}

/// `--db` with a URL of a scheme weft does not support is refused, naming the supported
/// ones, instead of creating a directory called `postgres:`.
#[test]
fn an_unknown_store_url_scheme_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let example = support::root().join("examples/early-exit.yaml");
    for args in [
        vec![
            "run",
            &*example.to_string_lossy(),
            "--db",
            "mysql://localhost/weft",
        ],
        vec!["runs", "list", "--db", "redis://localhost/weft"],
        vec!["serve", "--db", "mysql://localhost/weft"],
    ] {
        let out = support::weft_in(dir.path())
            .current_dir(dir.path())
            .args(&args)
            .output()
            .expect("weft starts");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("unsupported store") && stderr.contains("sqlite://PATH"),
            "{args:?}: {stderr}"
        );
        let created: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(
            !created.iter().any(|n| n.to_string_lossy().contains(':')),
            "{args:?} created {created:?}"
        );
    }
}
