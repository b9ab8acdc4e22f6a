//! Tenants through the real server: every route × (no token, another tenant's token, a
//! role too low, the right role), tokens that are wrong, expired, revoked or malformed,
//! names that collide across tenants, the dashboard's scoping, and the audit log.

use std::path::Path;

use serde_json::{Value, json};

use crate::dashboard::{http, login};
use crate::serve::Served;
use crate::support::{pipelines, weft_in};

const OPERATOR: &str = "operator-token-0123456789abcdef";

/// `weft tokens create` in `data`: the token.
fn token(data: &Path, tenant: &str, identity: &str, role: &str, extra: &[&str]) -> String {
    let out = weft_in(data)
        .args([
            "tokens",
            "create",
            "--tenant",
            tenant,
            "--identity",
            identity,
            "--role",
            role,
        ])
        .args(extra)
        .output()
        .expect("weft tokens create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(token.starts_with("weft_"), "{token}");
    token
}

fn tenant(data: &Path, name: &str) {
    let out = weft_in(data)
        .args(["tenants", "create", name])
        .output()
        .expect("weft tenants create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    Viewer,
    Submitter,
    Approver,
    Admin,
    /// The server's operator (`--api-token`).
    Operator,
}

/// One route of the matrix: what it needs, and the status each kind of caller gets.
struct Route {
    method: &'static str,
    path: String,
    body: Option<Value>,
    needs: Needs,
    /// With another tenant's admin token.
    wrong_tenant: u16,
    /// With the lowest role that may.
    right: u16,
}

fn route(
    method: &'static str,
    path: &str,
    body: Option<Value>,
    needs: Needs,
    wrong_tenant: u16,
    right: u16,
) -> Route {
    Route {
        method,
        path: path.to_string(),
        body,
        needs,
        wrong_tenant,
        right,
    }
}

fn pipeline(file: &str) -> String {
    std::fs::read_to_string(pipelines().join(file)).expect("pipeline")
}

fn call(served: &mut Served, token: Option<&str>, r: &Route) -> (u16, Value) {
    served.token = token.map(str::to_string);
    served.call(r.method, &r.path, r.body.as_ref())
}

#[test]
fn every_route_is_scoped_by_the_tokens_tenant_and_role() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    tenant(data, "acme");
    tenant(data, "beta");
    let viewer = token(data, "acme", "val", "viewer", &[]);
    let submitter = token(data, "acme", "sam", "submitter", &[]);
    let alice = token(data, "acme", "alice", "approver", &[]);
    let admin = token(data, "acme", "ada", "admin", &[]);
    let beta = token(data, "beta", "bob", "admin", &[]);
    let doomed = token(data, "acme", "dora", "viewer", &[]);
    let key_file = data.join("secrets.key");
    std::fs::write(&key_file, [42u8; 32]).expect("key");
    let mut served = Served::start(
        data,
        &[
            "--api-token",
            OPERATOR,
            "--secrets-key-file",
            &key_file.to_string_lossy(),
        ],
    );
    // acme's own plugin and secret, for the routes that name them.
    let echo = std::fs::read(crate::support::plugin_dir().join("echo.wasm")).expect("echo");
    assert_eq!(upload(&served, &admin, "my-echo", &echo).0, 201);
    served.token = Some(admin.clone());
    let secret = json!({"value": "acme-only-Seekrit-0001"});
    assert_eq!(
        served
            .call("PUT", "/api/v1/secrets/acme-only", Some(&secret))
            .0,
        204
    );

    // Fixtures: acme's run waiting for approval and a finished one; a name both tenants use.
    served.token = Some(submitter.clone());
    let (code, body) = served.call(
        "POST",
        "/api/v1/runs",
        Some(&json!({"pipeline": pipeline("approval.yaml"), "name": "rel"})),
    );
    assert_eq!((code, &body["name"]), (201, &json!("rel")), "{body:#}");
    let (code, body) = served.call(
        "POST",
        "/api/v1/runs",
        Some(&json!({"pipeline": pipeline("all-succeed.yaml"), "name": "done"})),
    );
    assert_eq!(code, 201, "{body:#}");
    served.wait_for("done", |r| r["finishedAt"].is_i64());
    served.wait_for("rel", |r| {
        r["waits"].as_array().is_some_and(|waits| {
            waits
                .iter()
                .any(|w| w["task"] == "approve" && w["open"] == true)
        })
    });
    for who in [&submitter, &beta] {
        served.token = Some(who.clone());
        let (code, body) = served.call(
            "POST",
            "/api/v1/runs",
            Some(&json!({"pipeline": pipeline("all-succeed.yaml"), "name": "shared"})),
        );
        assert_eq!(code, 201, "the same name in two tenants: {body:#}");
    }
    served.token = Some(submitter.clone());
    let schedule = json!({"name": "nightly", "cron": "0 2 * * *", "run": {"pipeline": pipeline("all-succeed.yaml")}});
    assert_eq!(
        served.call("POST", "/api/v1/schedules", Some(&schedule)).0,
        201
    );
    served.token = Some(admin.clone());
    let (_, tokens) = served.call("GET", "/api/v1/tokens", None);
    let doomed_id = tokens
        .as_array()
        .and_then(|all| all.iter().find(|t| t["identity"] == "dora"))
        .and_then(|t| t["id"].as_str())
        .expect("dora's token is listed")
        .to_string();
    assert!(
        !tokens.to_string().contains("weft_") && !tokens.to_string().contains("hash"),
        "a listing shows no token and no hash: {tokens}"
    );

    let routes = vec![
        route("GET", "/api/v1/runs", None, Needs::Viewer, 200, 200),
        route("GET", "/api/v1/runs/rel", None, Needs::Viewer, 404, 200),
        route(
            "GET",
            "/api/v1/runs/done/logs",
            None,
            Needs::Viewer,
            404,
            200,
        ),
        route(
            "GET",
            "/api/v1/runs/rel/approvals",
            None,
            Needs::Viewer,
            404,
            200,
        ),
        route("GET", "/api/v1/schedules", None, Needs::Viewer, 200, 200),
        route(
            "POST",
            "/api/v1/runs/rel/approvals/approve",
            Some(json!({"decision": "approve", "message": "ok"})),
            Needs::Approver,
            404,
            202,
        ),
        route(
            "POST",
            "/api/v1/runs/rel/interventions/approve",
            Some(json!({"decision": "resume"})),
            Needs::Approver,
            404,
            409,
        ),
        route(
            "POST",
            "/api/v1/runs",
            Some(json!({"pipeline": pipeline("all-succeed.yaml")})),
            Needs::Submitter,
            201,
            201,
        ),
        route(
            "POST",
            "/api/v1/runs/done/rerun",
            Some(json!({})),
            Needs::Submitter,
            404,
            201,
        ),
        route(
            "POST",
            "/api/v1/schedules",
            Some(
                json!({"name": "weekly", "cron": "0 3 * * 1", "run": {"pipeline": pipeline("all-succeed.yaml")}}),
            ),
            Needs::Submitter,
            201,
            201,
        ),
        route(
            "DELETE",
            "/api/v1/schedules/nightly",
            None,
            Needs::Submitter,
            404,
            204,
        ),
        route("GET", "/api/v1/tokens", None, Needs::Admin, 200, 200),
        route(
            "POST",
            "/api/v1/tokens",
            Some(json!({"identity": "newbie", "role": "viewer", "expires": "30d"})),
            Needs::Admin,
            201,
            201,
        ),
        route(
            "DELETE",
            &format!("/api/v1/tokens/{doomed_id}"),
            None,
            Needs::Admin,
            404,
            204,
        ),
        route("GET", "/api/v1/audit", None, Needs::Admin, 200, 200),
        route("GET", "/api/v1/plugins", None, Needs::Viewer, 200, 200),
        // Not a component: the role passes, the content is refused.
        route(
            "POST",
            "/api/v1/plugins?name=other",
            Some(json!({"not": "wasm"})),
            Needs::Admin,
            400,
            400,
        ),
        route(
            "DELETE",
            "/api/v1/plugins/my-echo",
            None,
            Needs::Admin,
            404,
            204,
        ),
        route("GET", "/api/v1/secrets", None, Needs::Admin, 200, 200),
        route(
            "PUT",
            "/api/v1/secrets/deploy",
            Some(json!({"value": "deploy-Seekrit-0002"})),
            Needs::Admin,
            204,
            204,
        ),
        route(
            "DELETE",
            "/api/v1/secrets/acme-only",
            None,
            Needs::Admin,
            404,
            204,
        ),
        route("GET", "/api/v1/tenants", None, Needs::Operator, 403, 200),
        route(
            "POST",
            "/api/v1/tenants",
            Some(json!({"name": "gamma"})),
            Needs::Operator,
            403,
            201,
        ),
        route(
            "POST",
            "/api/v1/tenants/gamma/tokens",
            Some(json!({"identity": "root", "role": "admin"})),
            Needs::Operator,
            403,
            201,
        ),
        route("GET", "/metrics", None, Needs::Operator, 403, 200),
        // Last: it ends the run the others use.
        route(
            "POST",
            "/api/v1/runs/rel/cancel",
            Some(json!({})),
            Needs::Submitter,
            404,
            202,
        ),
    ];

    // No token, a wrong or malformed one: 401 everywhere, and nothing changes.
    for r in &routes {
        for bad in [
            None,
            Some("weft_0123456789abcdef_nope"),
            Some("garbage"),
            Some(""),
        ] {
            let (code, body) = call(&mut served, bad, r);
            assert_eq!(code, 401, "{} {} with {bad:?}: {body:#}", r.method, r.path);
        }
    }
    // Another tenant's admin: acme's names are not found; collections are its own.
    for r in &routes {
        let (code, body) = call(&mut served, Some(&beta), r);
        assert_eq!(
            code, r.wrong_tenant,
            "{} {} as beta: {body:#}",
            r.method, r.path
        );
    }
    // A role too low: 403, and nothing changes.
    for r in &routes {
        let low = match r.needs {
            Needs::Viewer => continue,
            Needs::Submitter | Needs::Approver | Needs::Admin => &viewer,
            Needs::Operator => &admin,
        };
        let (code, body) = call(&mut served, Some(low), r);
        assert_eq!(code, 403, "{} {} too low: {body:#}", r.method, r.path);
    }
    // The right role.
    for r in &routes {
        let right = match r.needs {
            Needs::Viewer => &viewer,
            Needs::Submitter => &submitter,
            Needs::Approver => &alice,
            Needs::Admin => &admin,
            Needs::Operator => OPERATOR,
        };
        let (code, body) = call(&mut served, Some(right), r);
        assert_eq!(
            code, r.right,
            "{} {} right role: {body:#}",
            r.method, r.path
        );
    }

    // Each tenant lists only its own runs, under the names it gave them.
    let names = |served: &mut Served, who: &str| -> Vec<String> {
        served.token = Some(who.to_string());
        let (_, list) = served.call("GET", "/api/v1/runs?limit=100", None);
        list.as_array()
            .expect("a list")
            .iter()
            .map(|r| r["name"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let acme_runs = names(&mut served, &viewer);
    assert!(
        acme_runs.contains(&"rel".to_string()) && acme_runs.contains(&"shared".to_string()),
        "{acme_runs:?}"
    );
    assert!(acme_runs.iter().all(|n| !n.contains('_')), "{acme_runs:?}");
    let beta_runs = names(&mut served, &beta);
    assert!(beta_runs.contains(&"shared".to_string()), "{beta_runs:?}");
    assert!(!beta_runs.contains(&"rel".to_string()), "{beta_runs:?}");
    // The operator sees every tenant's runs, by their stored names, and may pick one.
    let every = names(&mut served, OPERATOR);
    assert!(
        every.contains(&"acme_rel".to_string()) && every.contains(&"beta_shared".to_string()),
        "{every:?}"
    );
    served.token = Some(OPERATOR.to_string());
    assert_eq!(served.call("GET", "/api/v1/runs/acme_rel", None).0, 200);
    let (_, only_beta) = served.call("GET", "/api/v1/runs?tenant=beta", None);
    assert!(
        only_beta.as_array().is_some_and(|all| !all.is_empty()
            && all
                .iter()
                .all(|r| r["name"].as_str().is_some_and(|n| n.starts_with("beta_")))),
        "{only_beta:#}"
    );
    // Anyone else: their own tenant only; a name holding the qualifier reaches nothing.
    served.token = Some(viewer.clone());
    assert_eq!(served.call("GET", "/api/v1/runs?tenant=beta", None).0, 403);
    served.token = Some(beta.clone());
    assert_eq!(served.call("GET", "/api/v1/runs/acme_rel", None).0, 404);
    let (code, _) = served.call(
        "POST",
        "/api/v1/runs",
        Some(&json!({"pipeline": pipeline("all-succeed.yaml"), "name": "acme_rel"})),
    );
    assert_eq!(code, 400, "a run name with `_` is refused");

    // The revoked token stops at once; an expired one too.
    served.token = Some(doomed.clone());
    assert_eq!(served.call("GET", "/api/v1/runs", None).0, 401);
    let brief = token(data, "acme", "brief", "viewer", &["--expires", "1s"]);
    served.token = Some(brief.clone());
    assert_eq!(served.call("GET", "/api/v1/runs", None).0, 200);
    std::thread::sleep(std::time::Duration::from_millis(1_200));
    assert_eq!(served.call("GET", "/api/v1/runs", None).0, 401);
    // A tenant is never named by the body.
    served.token = Some(admin.clone());
    let (code, _) = served.call(
        "POST",
        "/api/v1/tokens",
        Some(&json!({"identity": "x", "role": "admin", "tenant": "beta"})),
    );
    assert_eq!(code, 400);

    // The dashboard: another tenant's run is not found; a viewer sees no action.
    let address = served.address().to_string();
    let betas = login(&address, &beta);
    let page = http(&address, "GET", "/runs/rel", &[("Cookie", &betas)], "");
    assert_eq!(page.status, 404, "{}", page.body);
    let list = http(&address, "GET", "/", &[("Cookie", &betas)], "");
    assert!(!list.body.contains("/runs/rel"), "{}", list.body);
    let viewers = login(&address, &viewer);
    let page = http(&address, "GET", "/runs/done", &[("Cookie", &viewers)], "");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.body.contains("/rerun\"") && !page.body.contains("/new\""));
    assert!(
        !page.body.contains("acme_"),
        "names are shown as the tenant gave them"
    );

    // The audit log: acme's admin reads acme's entries only; no token in it.
    served.token = Some(admin.clone());
    let (_, audit) = served.call("GET", "/api/v1/audit?limit=1000", None);
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["action"].as_str().unwrap_or_default())
        .collect();
    for expected in [
        "token.create",
        "token.revoke",
        "approval.decide",
        "run.cancel",
    ] {
        assert!(actions.contains(&expected), "{expected}: {actions:?}");
    }
    assert!(
        audit["entries"]
            .as_array()
            .is_some_and(|all| all.iter().all(|e| e["tenant"] == "acme"))
    );
    assert!(!audit.to_string().contains("weft_"), "{audit}");
    let cli = weft_in(data)
        .args(["audit", "--tenant", "beta", "--output", "json"])
        .output()
        .expect("weft audit");
    let beta_log: Value = serde_json::from_slice(&cli.stdout).expect("json");
    assert!(
        beta_log
            .as_array()
            .is_some_and(|all| !all.is_empty() && all.iter().all(|e| e["tenant"] == "beta")),
        "{beta_log}"
    );
}

#[test]
fn a_configuration_file_creates_its_tenants_and_flags_override_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let config = data.join("weft.toml");
    std::fs::write(
        &config,
        "# kept in git\nlisten = \"127.0.0.1:1\"\nshutdown-grace = \"2s\"\n\n[tenants.acme]\n[tenants.team-b]\n",
    )
    .expect("write");
    let config = config.to_string_lossy().into_owned();
    // `--listen` on the command line wins over the file's unusable port.
    let served = Served::start(data, &["--config", &config]);
    assert_eq!(served.call("GET", "/healthz", None).0, 200);
    let listed = weft_in(data)
        .args(["tenants", "list", "--output", "json"])
        .output()
        .expect("weft tenants list");
    let names: Vec<String> = serde_json::from_slice::<Value>(&listed.stdout)
        .expect("json")
        .as_array()
        .expect("list")
        .iter()
        .map(|t| t["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(names, ["acme", "default", "team-b"]);
    drop(served);

    // A mistake says where it is, with exit code 2, and nothing starts.
    let bad = data.join("bad.toml");
    std::fs::write(
        &bad,
        "listen = \"127.0.0.1:0\"\n[tenants.acme]\nquota = 3\n",
    )
    .expect("write");
    let out = weft_in(data)
        .args(["serve", "--config"])
        .arg(&bad)
        .output()
        .expect("weft serve");
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("bad.toml:3:1") && said.contains("quota"),
        "{said}"
    );
}

const ACME_SECRET: &str = "acme-Seekrit-1122334455";
const BETA_SECRET: &str = "beta-Seekrit-5544332211";

/// A pipeline whose task reads secret `deploy` and hands it back (masked).
const SECRET_USER: &str = r#"apiVersion: weft.dev/v1
kind: Pipeline
metadata: {name: secret-user}
spec:
  tasks:
    - name: use
      taskRef: {name: hostile}
      secrets: [deploy]
      params: [{name: mode, value: secret-return}, {name: secret, value: deploy}]
"#;

#[test]
fn a_tenants_secrets_are_sealed_used_only_by_its_own_runs_and_never_shown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    tenant(data, "acme");
    tenant(data, "beta");
    let acme = token(data, "acme", "ada", "admin", &[]);
    let sam = token(data, "acme", "sam", "submitter", &[]);
    let beta = token(data, "beta", "bob", "admin", &[]);
    let key: String = (0..32)
        .map(|i| format!("{:02x}", (i * 37 + 11) % 256))
        .collect();
    let key_file = data.join("secrets.key");
    std::fs::write(&key_file, &key).expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let forge = crate::fake_forge::FakeForge::start();
    let plugins = crate::support::plugin_dir();
    // Each tenant's tasks may reach the forge (`hostile` imports outbound HTTP).
    let config = data.join("weft.toml");
    std::fs::write(
        &config,
        format!(
            "[tenants.acme]\negress = [\"{rule}\"]\n[tenants.beta]\negress = [\"{rule}\"]\n",
            rule = forge.rule()
        ),
    )
    .expect("config");
    let mut served = Served::start(
        data,
        &[
            "--config",
            &config.to_string_lossy(),
            "--plugins",
            &plugins.to_string_lossy(),
            "--secrets-key-file",
            &key_file.to_string_lossy(),
            "--report-allow-http",
            &forge.rule(),
            // `hostile` imports outbound HTTP: it needs a destination to be instantiated.
            "--allow-http",
            &forge.rule(),
        ],
    );
    let put = |served: &mut Served, who: Option<&str>, name: &str, body: Value| {
        served.token = who.map(str::to_string);
        served
            .call("PUT", &format!("/api/v1/secrets/{name}"), Some(&body))
            .0
    };
    assert_eq!(
        put(
            &mut served,
            Some(&acme),
            "deploy",
            json!({"value": ACME_SECRET})
        ),
        204
    );
    assert_eq!(
        put(
            &mut served,
            Some(&acme),
            "acme-only",
            json!({"value": ACME_SECRET})
        ),
        204
    );
    assert_eq!(
        put(
            &mut served,
            Some(&beta),
            "deploy",
            json!({"value": BETA_SECRET})
        ),
        204
    );
    // Refused, and nothing changes: no token, a role too low, empty, short, huge,
    // a bad name, a bad body.
    let huge = "x".repeat(70 * 1024);
    for (who, name, body, status) in [
        (None, "deploy", json!({"value": "z-Seekrit-000000000"}), 401),
        (
            Some(sam.as_str()),
            "deploy",
            json!({"value": "z-Seekrit-000000000"}),
            403,
        ),
        (Some(acme.as_str()), "deploy", json!({"value": ""}), 400),
        (
            Some(acme.as_str()),
            "deploy",
            json!({"value": "short"}),
            400,
        ),
        (Some(acme.as_str()), "deploy", json!({"value": huge}), 413),
        (
            Some(acme.as_str()),
            "-bad",
            json!({"value": "z-Seekrit-000000000"}),
            400,
        ),
        (Some(acme.as_str()), "deploy", json!({"value": 42}), 400),
        (
            Some(acme.as_str()),
            "deploy",
            json!({"value": "z-Seekrit-000000000", "tenant": "beta"}),
            400,
        ),
    ] {
        assert_eq!(put(&mut served, who, name, body), status, "{who:?} {name}");
    }
    served.token = Some(acme.clone());
    let (_, listed) = served.call("GET", "/api/v1/secrets", None);
    assert_eq!(
        listed
            .as_array()
            .map(|all| all.iter().map(|s| s["name"].clone()).collect::<Vec<_>>()),
        Some(vec![json!("acme-only"), json!("deploy")]),
        "{listed}"
    );
    assert!(!listed.to_string().contains("Seekrit"), "{listed}");

    // Each tenant's run gets its own `deploy`, masked; a reporter uses it as its token.
    let report = format!(
        "gitlab:url={},project=g/app,sha=0123abcd,token-secret=deploy",
        forge.url()
    );
    for (who, name) in [(&acme, "use-acme"), (&beta, "use-beta")] {
        served.token = Some(who.clone());
        let (code, body) = served.call(
            "POST",
            "/api/v1/runs",
            Some(&json!({"pipeline": SECRET_USER, "name": name, "reports": [report]})),
        );
        assert_eq!(code, 201, "{body:#}");
        let run = served.wait_for(name, |r| r["finishedAt"].is_i64());
        assert_eq!(run["report"]["run"]["status"], "Succeeded", "{run:#}");
        assert_eq!(
            run["report"]["tasks"][0]["results"]["leaked"], "***",
            "{run:#}"
        );
        let (_, logs) = served.call("GET", &format!("/api/v1/runs/{name}/logs"), None);
        assert!(!logs.to_string().contains("Seekrit"), "{logs}");
    }
    // Another tenant's secret is not there to ask for.
    served.token = Some(beta.clone());
    let (code, body) = served.call(
        "POST",
        "/api/v1/runs",
        Some(&json!({"pipeline": SECRET_USER.replace("deploy", "acme-only")})),
    );
    assert_eq!(code, 400, "{body:#}");
    // The forge got each tenant's own token, and no value in any body.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while forge
        .requests()
        .iter()
        .filter(|r| r.field("state") == "success")
        .count()
        < 2
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{:#?}",
            forge.requests()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let tokens: Vec<String> = forge
        .requests()
        .iter()
        .filter_map(|r| {
            r.headers
                .iter()
                .find(|(n, _)| n == "private-token")
                .map(|(_, v)| v.clone())
        })
        .collect();
    assert!(tokens.iter().any(|t| t == ACME_SECRET) && tokens.iter().any(|t| t == BETA_SECRET));
    for request in forge.requests() {
        assert!(!request.body.contains("Seekrit"), "{request:?}");
    }
    // The audit log names the writes, never the values.
    served.token = Some(acme.clone());
    let (_, audit) = served.call("GET", "/api/v1/audit", None);
    assert!(audit.to_string().contains("secret.write") && !audit.to_string().contains("Seekrit"));
    let (code, said, _) = served.stop();
    assert_eq!(code, 0);
    assert!(!said.contains("Seekrit"), "{said}");

    // Nothing weft wrote holds a value or the key: the store, logs, run records, events.
    let key_bytes: Vec<u8> = (0..32).map(|i| ((i * 37 + 11) % 256) as u8).collect();
    for path in crate::support::files(data) {
        if path == key_file {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap_or_default();
        for needle in [
            ACME_SECRET.as_bytes(),
            BETA_SECRET.as_bytes(),
            key.as_bytes(),
            &key_bytes,
        ] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "a secret or the key in {}",
                path.display()
            );
        }
    }

    // Without the key, the server keeps no tenants' secrets (and says so).
    let mut keyless = Served::start(data, &[]);
    keyless.token = Some(acme.clone());
    let (code, body) = keyless.call(
        "PUT",
        "/api/v1/secrets/deploy",
        Some(&json!({"value": ACME_SECRET})),
    );
    assert_eq!(code, 503, "{body:#}");
}

/// A run of one task that waits a moment.
const BRIEF: &str = r#"apiVersion: weft.dev/v1
kind: Pipeline
metadata: {name: brief}
spec:
  tasks:
    - name: wait
      taskRef: {name: wait-for}
      params: [{name: duration, value: 1500ms}]
"#;

fn hostile(mode: &str) -> String {
    format!(
        "apiVersion: weft.dev/v1\nkind: Pipeline\nmetadata: {{name: hostile-{mode}}}\nspec:\n  tasks:\n    - name: misbehave\n      taskRef: {{name: hostile}}\n      params: [{{name: mode, value: {mode}}}]\n"
    )
}

#[test]
fn quotas_hold_a_tenants_runs_back_refuse_past_the_queue_and_bound_memory_and_egress() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let config = data.join("weft.toml");
    std::fs::write(
        &config,
        "[tenants.acme]\nconcurrent-runs = 1\nqueued-runs = 1\nmemory-mib = 16\negress = [\"127.0.0.1:9\"]\n\n[tenants.beta]\n\n[tenants.gamma]\nconcurrent-tasks = 1\negress = [\"127.0.0.1:9\"]\n\n[tenants.delta]\nlog-kib-per-run = 1\n\n[tenants.epsilon]\ncpu-seconds-per-hour = 1\negress = [\"127.0.0.1:9\"]\n",
    )
    .expect("write");
    let plugins = crate::support::plugin_dir();
    let mut served = Served::start(
        data,
        &[
            "--config",
            &config.to_string_lossy(),
            "--plugins",
            &plugins.to_string_lossy(),
            "--api-token",
            OPERATOR,
        ],
    );
    let acme = token(data, "acme", "sam", "submitter", &[]);
    let beta = token(data, "beta", "bob", "submitter", &[]);
    let submit = |served: &mut Served, who: &str, name: &str, pipeline: &str| {
        served.token = Some(who.to_string());
        served.call(
            "POST",
            "/api/v1/runs",
            Some(&json!({"pipeline": pipeline, "name": name})),
        )
    };
    assert_eq!(submit(&mut served, &acme, "one", BRIEF).0, 201);
    served.token = Some(acme.clone());
    served.wait_for("one", |r| r["phase"] == "Running");
    assert_eq!(submit(&mut served, &acme, "two", BRIEF).0, 201);
    let two = served.wait_for("two", |r| r["phase"] == "Queued");
    assert!(
        two["waitingFor"].to_string().contains("quota"),
        "it says what it waits for: {two:#}"
    );
    // A third would wait past the queued-runs quota: refused, naming the quota.
    let (code, body) = submit(&mut served, &acme, "three", BRIEF);
    assert_eq!(code, 429, "{body:#}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("queued-runs")),
        "{body:#}"
    );
    served.token = Some(acme.clone());
    assert_eq!(
        served.call("GET", "/api/v1/runs/three", None).0,
        404,
        "nothing was created"
    );
    // Another tenant is not held back by acme's quota.
    assert_eq!(submit(&mut served, &beta, "other", BRIEF).0, 201);
    served.token = Some(beta.clone());
    served.wait_for("other", |r| {
        r["phase"] == "Running" || r["finishedAt"].is_i64()
    });
    // The operator's metrics show each tenant's usage against its quotas.
    served.token = Some(OPERATOR.to_string());
    let (code, scraped) = served.call("GET", "/metrics", None);
    let scraped = scraped.as_str().unwrap_or_default().to_string();
    assert_eq!(code, 200);
    for expected in [
        "weft_tenant_quota{tenant=\"acme\",quota=\"concurrent-runs\"} 1",
        "weft_tenant_quota{tenant=\"acme\",quota=\"memory-mib\"} 16",
        "weft_tenant_runs_active{tenant=\"acme\"}",
        "weft_tenant_runs_active{tenant=\"beta\"}",
        "weft_tenant_usage{tenant=\"acme\",quota=\"stored-mib\"}",
        "weft_tenant_usage{tenant=\"acme\",quota=\"cpu-seconds-per-hour\"} 0",
    ] {
        assert!(scraped.contains(expected), "{expected}: {scraped}");
    }
    served.token = Some(acme.clone());
    let two = served.wait_for("two", |r| r["finishedAt"].is_i64());
    assert_eq!(two["report"]["run"]["status"], "Succeeded", "{two:#}");

    // acme's tasks get 16 MiB of memory, and may reach only its egress list.
    assert_eq!(
        submit(&mut served, &acme, "bomb", &hostile("memory")).0,
        201
    );
    served.token = Some(acme.clone());
    let bomb = served.wait_for("bomb", |r| r["finishedAt"].is_i64());
    let task = &bomb["report"]["tasks"][0];
    assert!(
        task["reason"]
            .as_str()
            .is_some_and(|r| r.contains("Memory")),
        "{bomb:#}"
    );
    // gamma's tasks run one at a time, across its run's three parallel ones.
    let gamma = token(data, "gamma", "gus", "submitter", &[]);
    let parallel = "apiVersion: weft.dev/v1\nkind: Pipeline\nmetadata: {name: three}\nspec:\n  tasks:\n    - {name: a, taskRef: {name: wait-for}, params: [{name: duration, value: 300ms}]}\n    - {name: b, taskRef: {name: wait-for}, params: [{name: duration, value: 300ms}]}\n    - {name: c, taskRef: {name: wait-for}, params: [{name: duration, value: 300ms}]}\n";
    assert_eq!(submit(&mut served, &gamma, "three", parallel).0, 201);
    served.token = Some(gamma.clone());
    let three = served.wait_for("three", |r| r["finishedAt"].is_i64());
    assert_eq!(three["report"]["run"]["status"], "Succeeded", "{three:#}");
    let mut spans: Vec<(i64, i64)> = three["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .filter_map(|a| Some((a["startedAt"].as_i64()?, a["endedAt"].as_i64()?)))
        .collect();
    spans.sort();
    assert_eq!(spans.len(), 3, "{three:#}");
    assert!(
        spans.windows(2).all(|w| w[1].0 >= w[0].1),
        "one task at a time: {spans:?}"
    );
    // delta's runs keep 1 KiB of log lines: three tasks logging 600 bytes each go on, and
    // the log has the first line, one marker, and nothing more.
    let delta = token(data, "delta", "dee", "submitter", &[]);
    let long = "x".repeat(600);
    let chatty = format!(
        "apiVersion: weft.dev/v1\nkind: Pipeline\nmetadata: {{name: chatty}}\nspec:\n  tasks:\n    - {{name: a, taskRef: {{name: echo}}, params: [{{name: message, value: {long}}}]}}\n    - {{name: b, runAfter: [a], taskRef: {{name: echo}}, params: [{{name: message, value: {long}}}]}}\n    - {{name: c, runAfter: [b], taskRef: {{name: echo}}, params: [{{name: message, value: {long}}}]}}\n"
    );
    assert_eq!(submit(&mut served, &delta, "chatty", &chatty).0, 201);
    served.token = Some(delta.clone());
    let run = served.wait_for("chatty", |r| r["finishedAt"].is_i64());
    assert_eq!(run["report"]["run"]["status"], "Succeeded", "{run:#}");
    let (_, logs) = served.call("GET", "/api/v1/runs/chatty/logs", None);
    let texts: Vec<&str> = logs["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .filter_map(|l| l["text"].as_str())
        .collect();
    assert_eq!(texts.iter().filter(|t| **t == long).count(), 1, "{texts:?}");
    assert_eq!(
        texts
            .iter()
            .filter(|t| t.contains("log quota reached"))
            .count(),
        1,
        "{texts:?}"
    );
    // epsilon may use 1 s of guest CPU per hour: a task spinning past it uses it up, and
    // the next task waits for a slot (QueuedForAgent) instead of starting.
    let eps = token(data, "epsilon", "eve", "submitter", &[]);
    let spinner = "apiVersion: weft.dev/v1\nkind: Pipeline\nmetadata: {name: spinner}\nspec:\n  tasks:\n    - name: spin\n      timeout: 1500ms\n      taskRef: {name: hostile}\n      params: [{name: mode, value: loop}]\n";
    assert_eq!(submit(&mut served, &eps, "spinner", spinner).0, 201);
    served.token = Some(eps.clone());
    let spun = served.wait_for("spinner", |r| r["finishedAt"].is_i64());
    assert_eq!(
        spun["report"]["tasks"][0]["reason"], "TaskRunTimeout",
        "{spun:#}"
    );
    assert_eq!(submit(&mut served, &eps, "after", BRIEF).0, 201);
    served.token = Some(eps.clone());
    let after = served.wait_for("after", |r| r.to_string().contains("QueuedForAgent"));
    assert!(
        after["finishedAt"].is_null()
            && after["attempts"][0]["phase"] == "Queued"
            && after["attempts"][0]["startedAt"].is_null(),
        "it has not started: {after:#}"
    );
    assert_eq!(
        served
            .call(
                "POST",
                "/api/v1/runs/after/cancel",
                Some(&json!({"mode": "Cancelled"}))
            )
            .0,
        202
    );
    // A run narrows its tenant's egress, never widens it.
    served.token = Some(gamma.clone());
    let (code, body) = served.call(
        "POST",
        "/api/v1/runs",
        Some(&json!({"pipeline": BRIEF, "egress": ["127.0.0.1:10"]})),
    );
    assert_eq!(code, 400, "{body:#}");
    let (code, body) = served.call(
        "POST",
        "/api/v1/runs",
        Some(&json!({"pipeline": BRIEF, "name": "narrowed", "egress": []})),
    );
    assert_eq!(code, 201, "{body:#}");
    let narrowed = served.wait_for("narrowed", |r| r["finishedAt"].is_i64());
    assert_eq!(
        narrowed["report"]["tasks"][0]["reason"], "CapabilityDenied",
        "{narrowed:#}"
    );
    // beta has no egress list: a plugin that imports outbound HTTP is not instantiated.
    assert_eq!(submit(&mut served, &beta, "spin", &hostile("spin")).0, 201);
    served.token = Some(beta.clone());
    let spin = served.wait_for("spin", |r| r["finishedAt"].is_i64());
    assert_eq!(
        spin["report"]["tasks"][0]["reason"], "CapabilityDenied",
        "{spin:#}"
    );
}

/// A raw upload of `bytes` as `name`; the status and the JSON answer.
fn upload(served: &Served, who: &str, name: &str, bytes: &[u8]) -> (u16, Value) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(served.address()).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(120)))
        .expect("timeout");
    let head = format!(
        "POST /api/v1/plugins?name={name} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAuthorization: Bearer {who}\r\nContent-Type: application/wasm\r\nContent-Length: {}\r\n\r\n",
        served.address(),
        bytes.len()
    );
    stream.write_all(head.as_bytes()).expect("send");
    // A server refusing a huge body may close before it is all sent.
    let _ = stream.write_all(bytes);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (
        status,
        serde_json::from_str(body).unwrap_or(Value::String(body.to_string())),
    )
}

const USES_MY_ECHO: &str = r#"apiVersion: weft.dev/v1
kind: Pipeline
metadata: {name: uses-my-echo}
spec:
  tasks:
    - name: hello
      taskRef: {name: my-echo}
      params: [{name: message, value: hello from an upload}]
"#;

#[test]
fn a_tenants_uploaded_plugins_are_checked_kept_by_digest_and_found_only_by_its_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    tenant(data, "acme");
    tenant(data, "beta");
    let ada = token(data, "acme", "ada", "admin", &[]);
    let sam = token(data, "acme", "sam", "submitter", &[]);
    let bob = token(data, "beta", "bob", "admin", &[]);
    let plugins = crate::support::plugin_dir();
    let component =
        |name: &str| std::fs::read(plugins.join(format!("{name}.wasm"))).expect("plugin");
    let echo = component("echo");
    let config = data.join("weft.toml");
    std::fs::write(
        &config,
        "[tenants.tiny]\nstored-mib = 1\negress = [\"127.0.0.1:9\"]\n",
    )
    .expect("config");
    let mut served = Served::start(data, &["--config", &config.to_string_lossy()]);
    // A tenant keeping at most 1 MiB: a bigger component is refused, naming the quota.
    let tiny = token(data, "tiny", "tim", "admin", &[]);
    let (code, body) = upload(&served, &tiny, "window", &component("time-window"));
    assert_eq!(code, 429, "{body:#}");
    assert!(body.to_string().contains("stored-mib"), "{body:#}");
    assert_eq!(upload(&served, &tiny, "small", &echo).0, 201);

    let (code, body) = upload(&served, &ada, "my-echo", &echo);
    assert_eq!(code, 201, "{body:#}");
    assert!(
        body["digest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:")),
        "{body:#}"
    );
    // Refused, and nothing kept: a first-party name, no component, another kind, a
    // capability the tenant can never have (acme has no egress), too big, a low role,
    // no name, a bad name.
    let huge = vec![0u8; (32 << 20) + 16];
    for (who, name, bytes, status) in [
        (&ada, "echo", echo.clone(), 409),
        (&ada, "junk", b"not a component at all".to_vec(), 400),
        (&ada, "reporter", component("reporter-webhook"), 400),
        (&ada, "spinner", component("hostile"), 400),
        (&ada, "huge", huge, 413),
        (&sam, "sams", echo.clone(), 403),
        (&ada, "", echo.clone(), 400),
        (&ada, "Bad_Name", echo.clone(), 400),
    ] {
        let (code, body) = upload(&served, who, name, &bytes);
        assert_eq!(code, status, "{name}: {body:#}");
    }
    served.token = Some(ada.clone());
    let (_, listed) = served.call("GET", "/api/v1/plugins", None);
    assert_eq!(
        listed
            .as_array()
            .map(|all| all.iter().map(|p| p["name"].clone()).collect::<Vec<_>>()),
        Some(vec![json!("my-echo")]),
        "{listed}"
    );

    // acme's runs find it by name; beta's do not.
    served.token = Some(sam.clone());
    let (code, body) = served.call(
        "POST",
        "/api/v1/runs",
        Some(&json!({"pipeline": USES_MY_ECHO, "name": "up"})),
    );
    assert_eq!(code, 201, "{body:#}");
    let run = served.wait_for("up", |r| r["finishedAt"].is_i64());
    assert_eq!(run["report"]["run"]["status"], "Succeeded", "{run:#}");
    served.token = Some(bob.clone());
    let (code, body) = served.call(
        "POST",
        "/api/v1/runs",
        Some(&json!({"pipeline": USES_MY_ECHO})),
    );
    assert_eq!(code, 400, "{body:#}");
    assert!(body.to_string().contains("my-echo"), "{body:#}");
    let (_, listed) = served.call("GET", "/api/v1/plugins", None);
    assert_eq!(listed, json!([]));
    assert_eq!(
        served.call("DELETE", "/api/v1/plugins/my-echo", None).0,
        404
    );

    // The operator uploads from the command line; `push` needs a registry or a tenant.
    let cli = weft_in(data)
        .args(["plugins", "push"])
        .arg(plugins.join("echo.wasm"))
        .args(["--tenant", "beta", "--name", "beta-echo"])
        .output()
        .expect("weft plugin push");
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let (_, listed) = served.call("GET", "/api/v1/plugins", None);
    assert_eq!(listed[0]["name"], "beta-echo", "{listed}");
    let neither = weft_in(data)
        .args(["plugin", "push"])
        .arg(plugins.join("echo.wasm"))
        .output()
        .expect("weft plugin push");
    assert_eq!(neither.status.code(), Some(2));

    // Deleting it: acme's runs no longer find it; the log says who did what.
    served.token = Some(ada.clone());
    assert_eq!(
        served.call("DELETE", "/api/v1/plugins/my-echo", None).0,
        204
    );
    served.token = Some(sam.clone());
    assert_eq!(
        served
            .call(
                "POST",
                "/api/v1/runs",
                Some(&json!({"pipeline": USES_MY_ECHO}))
            )
            .0,
        400
    );
    served.token = Some(ada.clone());
    let (_, audit) = served.call("GET", "/api/v1/audit", None);
    let text = audit.to_string();
    assert!(
        text.contains("plugin.upload") && text.contains("plugin.delete"),
        "{audit:#}"
    );
}

/// A pipeline of `count` independent tasks, each waiting `duration`.
fn flood(count: usize, duration: &str) -> String {
    let mut yaml =
        "apiVersion: weft.dev/v1\nkind: Pipeline\nmetadata: {name: flood}\nspec:\n  tasks:\n"
            .to_string();
    for n in 0..count {
        yaml.push_str(&format!(
            "    - name: w{n}\n      taskRef: {{name: wait-for}}\n      params: [{{name: duration, value: {duration}}}]\n"
        ));
    }
    yaml
}

/// When each attempt of a run document started (ms), those that did.
fn attempt_starts(run: &Value) -> Vec<i64> {
    run["attempts"]
        .as_array()
        .map(|attempts| {
            attempts
                .iter()
                .filter_map(|a| a["startedAt"].as_i64())
                .collect()
        })
        .unwrap_or_default()
}

/// With one task slot, a tenant's flood of ready tasks does not hold another tenant's
/// single task behind it: the slot goes to the newcomer next. Checked by order (when
/// attempts started), never by how long anything took.
#[test]
fn fair_sharing_serves_another_tenants_single_task_before_a_flood() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let config = data.join("weft.toml");
    // `wait-for` imports outbound HTTP: it is instantiated only with an egress rule.
    std::fs::write(
        &config,
        "[tenants.acme]\negress = [\"127.0.0.1:9\"]\n\n[tenants.beta]\negress = [\"127.0.0.1:9\"]\n",
    )
    .expect("write");
    let plugins = crate::support::plugin_dir();
    let mut served = Served::start(
        data,
        &[
            "--config",
            &config.to_string_lossy(),
            "--plugins",
            &plugins.to_string_lossy(),
            "--task-slots",
            "1",
        ],
    );
    let acme = token(data, "acme", "sam", "submitter", &[]);
    let beta = token(data, "beta", "bob", "submitter", &[]);
    // Three runs of ten tasks: a tenant's runs each wait for a slot, so plain first-come
    // first-served would put beta behind all three of them.
    const RUNS: usize = 3;
    const TASKS: usize = 10;
    served.token = Some(acme.clone());
    for run in 0..RUNS {
        let (code, body) = served.call(
            "POST",
            "/api/v1/runs",
            Some(&json!({"pipeline": flood(TASKS, "200ms"), "name": format!("flood-{run}"), "parallelism": TASKS})),
        );
        assert_eq!(code, 201, "{body:#}");
    }
    // The flood holds the slot, and all its runs wait for it, before beta asks.
    served.wait_for("flood-0", |r| !attempt_starts(r).is_empty());
    for run in 0..RUNS {
        served.wait_for(&format!("flood-{run}"), |r| r["phase"] == "Running");
    }
    served.token = Some(beta.clone());
    let (code, body) = served.call(
        "POST",
        "/api/v1/runs",
        Some(&json!({"pipeline": BRIEF.replace("1500ms", "200ms"), "name": "single"})),
    );
    assert_eq!(code, 201, "{body:#}");
    let single = served.wait_for("single", |r| r["finishedAt"].is_i64());
    assert_eq!(single["report"]["run"]["status"], "Succeeded", "{single:#}");
    served.token = Some(acme.clone());
    let mut flood_starts = Vec::new();
    for run in 0..RUNS {
        let flooded = served.wait_for(&format!("flood-{run}"), |r| r["finishedAt"].is_i64());
        assert_eq!(
            flooded["report"]["run"]["status"], "Succeeded",
            "{flooded:#}"
        );
        flood_starts.extend(attempt_starts(&flooded));
    }

    let submitted = single["createdAt"].as_i64().expect("createdAt");
    let started = attempt_starts(&single);
    assert_eq!(started.len(), 1, "{single:#}");
    assert_eq!(flood_starts.len(), RUNS * TASKS, "{flood_starts:?}");
    // Ties count against the scheduler: a flood task started in the same millisecond as
    // beta's submission or its task counts as served in between.
    let in_between = flood_starts
        .iter()
        .filter(|&&at| at >= submitted && at <= started[0])
        .count();
    assert!(
        in_between <= 2,
        "{in_between} of the flood's tasks started between beta's submission and its task: {flood_starts:?} {single:#}"
    );
    let after = flood_starts.iter().filter(|&&at| at > started[0]).count();
    assert!(
        after >= RUNS * TASKS / 2,
        "the flood was still going when beta's task started ({after} after it)"
    );
}
