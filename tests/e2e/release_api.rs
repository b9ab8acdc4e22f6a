//! Release control through `weft serve`'s API: each caller's token names who they are
//! (`--identities`), approvals and interventions are decided with
//! `POST /api/v1/runs/RUN/approvals/TASK` and `/interventions/TASK`, listed with
//! `GET /api/v1/runs/RUN/approvals`, and every refused decision has its status (403 not an
//! approver, 409 twice or not waiting, 404 no such run or task, 400 a malformed body)
//! and changes nothing.

use std::path::Path;

use serde_json::{Value, json};

use crate::release::Health;
use crate::serve::Served;

const ALICE: &str = "alice-token-0123456789abcdef";
const BOB: &str = "bob-token-0123456789abcdef01";
const CAROL: &str = "carol-token-0123456789abcdef0";
const MALLORY: &str = "mallory-token-0123456789abcd";
const OPS: &str = "ops-token-0123456789abcdef012";

fn identities(data: &Path) -> String {
    std::fs::create_dir_all(data).expect("data dir");
    let path = data.join("ids.json");
    let ids = json!({
        "alice": {"token": ALICE},
        "bob": {"token": BOB},
        "carol": {"token": CAROL, "groups": ["release-managers"]},
        "mallory": {"token": MALLORY},
        "ops": {"token": OPS},
    });
    std::fs::write(&path, ids.to_string()).expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    path.to_string_lossy().into_owned()
}

/// Calls as the holder of `token`.
fn call_as(
    server: &mut Served,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    server.token = Some(token.to_string());
    server.call(method, path, body.as_ref())
}

fn waiting(run: &Value, task: &str) -> bool {
    run["waits"]
        .as_array()
        .is_some_and(|waits| waits.iter().any(|w| w["task"] == task && w["open"] == true))
}

fn submit(server: &mut Served, file: &str, extra: Value) -> String {
    server.token = Some(ALICE.to_string());
    let (status, body) = server.submit(file, extra);
    assert_eq!(status, 201, "{body:#}");
    body["name"].as_str().expect("run name").to_string()
}

#[test]
fn approvals_through_the_api_two_people_and_every_refusal() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let data = scratch.path();
    let ids = identities(data);
    let mut server = Served::start(data, &["--identities", &ids]);
    let run = submit(&mut server, "approval.yaml", json!({}));
    server.token = Some(ALICE.into());
    let shown = server.wait_for(&run, |r| waiting(r, "approve"));
    assert_eq!(
        shown["operation"],
        json!({"status": "InProgress", "operationStatus": "Pending"}),
        "{shown:#}"
    );
    let approvals = format!("/api/v1/runs/{run}/approvals");
    let vote = format!("{approvals}/approve");

    // Without a token: 401. Refusals: each with its status, nothing stored.
    server.token = None;
    let (status, _) = server.call("POST", &vote, Some(&json!({"decision": "approve"})));
    assert_eq!(status, 401);
    let refusals: Vec<(&str, &str, String, Value, u16)> = vec![
        (
            "not an approver",
            MALLORY,
            vote.clone(),
            json!({"decision": "approve"}),
            403,
        ),
        (
            "unknown run",
            ALICE,
            "/api/v1/runs/nope/approvals/approve".into(),
            json!({"decision": "approve"}),
            404,
        ),
        (
            "unknown task",
            ALICE,
            format!("{approvals}/nope"),
            json!({"decision": "approve"}),
            404,
        ),
        (
            "a task that is not waiting",
            ALICE,
            format!("{approvals}/deploy"),
            json!({"decision": "approve"}),
            409,
        ),
        (
            "an intervention's route",
            ALICE,
            format!("/api/v1/runs/{run}/interventions/approve"),
            json!({"decision": "resume"}),
            409,
        ),
        (
            "a decision that is not one",
            ALICE,
            vote.clone(),
            json!({"decision": "maybe"}),
            400,
        ),
        (
            "an unknown field",
            ALICE,
            vote.clone(),
            json!({"decision": "approve", "by": "bob"}),
            400,
        ),
        (
            "a deferred reject",
            ALICE,
            vote.clone(),
            json!({"decision": "reject", "deferUntil": "2030-01-01T00:00:00Z"}),
            400,
        ),
        (
            "a bad time",
            ALICE,
            vote.clone(),
            json!({"decision": "approve", "deferUntil": "soon"}),
            400,
        ),
    ];
    for (what, token, path, body, want) in refusals {
        let (status, answer) = call_as(&mut server, token, "POST", &path, Some(body));
        assert_eq!(status, want, "{what}: {answer:#}");
        assert!(
            answer["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {answer:#}"
        );
    }
    let (status, listed) = call_as(&mut server, BOB, "GET", &approvals, None);
    assert_eq!(status, 200, "{listed:#}");
    let wait = &listed["waits"][0];
    assert_eq!(wait["task"], "approve");
    assert_eq!(
        wait["votes"],
        json!([]),
        "refused votes were stored: {listed:#}"
    );
    assert_eq!(wait["request"]["required"], 2);

    // alice approves; again is a conflict.
    let (status, body) = call_as(
        &mut server,
        ALICE,
        "POST",
        &vote,
        Some(json!({"decision": "approve", "message": "lgtm"})),
    );
    assert_eq!(status, 202, "{body:#}");
    assert_eq!(body["identity"], "alice");
    let (status, body) = call_as(
        &mut server,
        ALICE,
        "POST",
        &vote,
        Some(json!({"decision": "approve"})),
    );
    assert_eq!(status, 409, "{body:#}");
    // carol, a release manager, approves through her group: the run goes on.
    let (status, body) = call_as(
        &mut server,
        CAROL,
        "POST",
        &vote,
        Some(json!({"decision": "approve"})),
    );
    assert_eq!(status, 202, "{body:#}");
    let done = server.wait_for(&run, |r| r["status"].is_string());
    assert_eq!(done["status"], "Succeeded", "{done:#}");
    assert_eq!(
        done["operation"],
        json!({"status": "Succeeded", "operationStatus": "PhaseSucceeded"})
    );
    let (_, listed) = call_as(&mut server, BOB, "GET", &approvals, None);
    let votes: Vec<&str> = listed["waits"][0]["votes"]
        .as_array()
        .expect("votes")
        .iter()
        .filter_map(|v| v["identity"].as_str())
        .collect();
    assert_eq!(votes, ["alice", "carol"]);
    // Too late now: the wait is closed.
    let (status, _) = call_as(
        &mut server,
        BOB,
        "POST",
        &vote,
        Some(json!({"decision": "approve"})),
    );
    assert_eq!(status, 409);
}

#[test]
fn rejects_timeouts_deferrals_and_interventions_through_the_api() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let data = scratch.path();
    let ids = identities(data);
    let mut server = Served::start(data, &["--identities", &ids]);

    // A reject, with its message.
    let rejected = submit(&mut server, "approval.yaml", json!({}));
    server.wait_for(&rejected, |r| waiting(r, "approve"));
    let path = format!("/api/v1/runs/{rejected}/approvals/approve");
    let (status, body) = call_as(
        &mut server,
        BOB,
        "POST",
        &path,
        Some(json!({"decision": "reject", "message": "freeze"})),
    );
    assert_eq!(status, 202, "{body:#}");
    let done = server.wait_for(&rejected, |r| r["status"].is_string());
    assert_eq!(done["status"], "Failed");
    assert_eq!(done["operation"]["operationStatus"], "Rejected");
    let task = done["report"]["tasks"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "approve"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(task["status"], "Rejected");
    assert_eq!(task["message"], "rejected by bob: freeze");

    // A timeout.
    let timed_out = submit(&mut server, "approval-timeout.yaml", json!({}));
    let done = server.wait_for(&timed_out, |r| r["status"].is_string());
    assert_eq!(done["status"], "Failed");
    assert_eq!(done["report"]["tasks"][0]["reason"], "ApprovalTimedOut");

    // A deferral: approved now, succeeds at its time.
    let deferred = submit(&mut server, "approval.yaml", json!({}));
    server.wait_for(&deferred, |r| waiting(r, "approve"));
    let at = chrono::Utc::now() + chrono::Duration::seconds(2);
    let at_text = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let path = format!("/api/v1/runs/{deferred}/approvals/approve");
    for token in [ALICE, BOB] {
        let (status, body) = call_as(
            &mut server,
            token,
            "POST",
            &path,
            Some(json!({"decision": "approve", "deferUntil": at_text})),
        );
        assert_eq!(status, 202, "{body:#}");
    }
    let seen = server.wait_for(&deferred, |r| {
        r["operation"]["operationStatus"] == "Deferred" || r["status"].is_string()
    });
    assert_eq!(seen["operation"]["operationStatus"], "Deferred", "{seen:#}");
    let done = server.wait_for(&deferred, |r| r["status"].is_string());
    assert_eq!(done["status"], "Succeeded");
    let at = chrono::DateTime::parse_from_rfc3339(&at_text).expect("time");
    assert!(chrono::Utc::now() >= at);

    // Interventions: only ops may decide; resume and reject.
    for (decision, want) in [("resume", "Succeeded"), ("reject", "Failed")] {
        let run = submit(&mut server, "intervention.yaml", json!({}));
        let seen = server.wait_for(&run, |r| waiting(r, "check"));
        assert_eq!(
            seen["operation"]["operationStatus"],
            "ManualInterventionPending"
        );
        let path = format!("/api/v1/runs/{run}/interventions/check");
        let (status, _) = call_as(
            &mut server,
            ALICE,
            "POST",
            &path,
            Some(json!({"decision": decision})),
        );
        assert_eq!(status, 403, "alice is not ops");
        let (status, _) = call_as(
            &mut server,
            OPS,
            "POST",
            &format!("/api/v1/runs/{run}/approvals/check"),
            Some(json!({"decision": "approve"})),
        );
        assert_eq!(status, 409, "an intervention is not voted on");
        let (status, body) = call_as(
            &mut server,
            OPS,
            "POST",
            &path,
            Some(json!({"decision": decision, "message": "checked"})),
        );
        assert_eq!(status, 202, "{body:#}");
        let done = server.wait_for(&run, |r| r["status"].is_string());
        assert_eq!(done["status"], want, "{decision}: {done:#}");
    }
}

#[test]
fn gates_through_the_api_pass_when_the_condition_holds() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let data = scratch.path();
    let ids = identities(data);
    let health = Health::start(false);
    let rule = health.rule();
    // The operator allows the health endpoint for submissions' plugins.
    let mut server = Served::start(data, &["--identities", &ids, "--allow-http", &rule]);
    let run = submit(
        &mut server,
        "gate.yaml",
        json!({"params": {"url": health.url()}}),
    );
    let seen = server.wait_for(&run, |r| waiting(r, "healthy"));
    assert_eq!(
        seen["operation"]["operationStatus"], "EvaluatingGates",
        "{seen:#}"
    );
    // A gate decides by itself: nobody votes on it.
    let (status, _) = call_as(
        &mut server,
        ALICE,
        "POST",
        &format!("/api/v1/runs/{run}/approvals/healthy"),
        Some(json!({"decision": "approve"})),
    );
    assert_eq!(status, 409);
    health.set(true);
    let done = server.wait_for(&run, |r| r["status"].is_string());
    assert_eq!(done["status"], "Succeeded", "{done:#}");
}
