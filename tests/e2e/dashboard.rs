//! The web dashboard of `weft serve`: over plain HTTP (login, the session cookie's flags,
//! the Content-Security-Policy, CSRF refusals, a viewer's page, approving from a form, no
//! secret and no unescaped markup in any page), and in a real browser (Debian's
//! `chromium` driven through `chromedriver`'s W3C WebDriver protocol): log in, the runs
//! list, the graph's colours, live updates of the graph and of a log, approving from the
//! page, a viewer's page and a forged POST. Screenshots go to `target/screenshots/`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::serve::Served;
use crate::support;

const ALICE: &str = "alice-token-0123456789abcdef";
const VIEWER: &str = "viewer-token-0123456789abcdef";
const OPS: &str = "ops-token-0123456789abcdef0123";
/// The secret the `token` task prints: masked in the store, never in a page.
const SECRET: &str = "s3cr3t-deploy-value-7f1c2a";

/// The CSP every dashboard response carries.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// An HTTP answer.
pub(crate) struct Reply {
    pub(crate) status: u16,
    headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Undoes `Transfer-Encoding: chunked`.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// One HTTP/1.1 request to `address`.
pub(crate) fn http(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).expect("send");
    // Read the head, then as much body as it announces: chromedriver keeps the
    // connection open whatever `Connection: close` says.
    let mut response = Vec::new();
    let mut buffer = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = response.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = stream.read(&mut buffer).expect("read");
        assert!(n > 0, "the connection closed before the head ended");
        response.extend_from_slice(&buffer[..n]);
    };
    let head = String::from_utf8_lossy(&response[..head_end]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let chunked = header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let length: Option<usize> = header("content-length").and_then(|v| v.parse().ok());
    let mut body = response[head_end + 4..].to_vec();
    loop {
        let done = match (length, chunked) {
            (Some(length), _) => body.len() >= length,
            (None, true) => body.ends_with(b"0\r\n\r\n"),
            (None, false) => false,
        };
        if done {
            break;
        }
        let n = stream.read(&mut buffer).expect("read");
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buffer[..n]);
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    let body = if chunked { dechunk(&body) } else { body };
    Reply {
        status,
        headers,
        body,
    }
}

pub(crate) const FORM: &str = "application/x-www-form-urlencoded";

/// `application/x-www-form-urlencoded` of `fields`.
pub(crate) fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Logs in with `token`; the `Cookie` header of the session.
pub(crate) fn login(address: &str, token: &str) -> String {
    let reply = http(
        address,
        "POST",
        "/login",
        &[("Content-Type", FORM)],
        &form(&[("token", token)]),
    );
    assert_eq!(reply.status, 303, "{}", reply.body);
    let cookie = reply.header("set-cookie").expect("a session cookie");
    cookie
        .split(';')
        .next()
        .expect("name=value")
        .trim()
        .to_string()
}

/// The CSRF token in a page's forms.
fn csrf_of(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).expect("a form with a CSRF token") + marker.len();
    page[start..].split('"').next().expect("token").to_string()
}

/// The identities file: alice approves, viewer only looks.
fn identities(data: &Path) -> String {
    std::fs::create_dir_all(data).expect("data dir");
    let path = data.join("ids.json");
    let ids = json!({
        "alice": {"token": ALICE},
        "viewer": {"token": VIEWER, "role": "viewer"},
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

/// A server with alice and viewer, the `deploy` secret submissions may use, the test
/// plugins.
fn start(data: &Path) -> Served {
    let ids = identities(data);
    let plugins = support::plugin_dir();
    let mut served = Served::start_with_env(
        data,
        &[
            "--identities",
            &ids,
            "--plugins",
            &plugins.to_string_lossy(),
            "--secret",
            "deploy=env:WEFT_TEST_DASHBOARD_DEPLOY",
            "--submit-secrets",
            "deploy",
            // `hostile` imports `wasi:http`: a grant (to nowhere it calls) lets it start.
            "--allow-http",
            "example.invalid",
        ],
        &[("WEFT_TEST_DASHBOARD_DEPLOY", SECRET)],
    );
    served.token = Some(ALICE.to_string());
    served
}

fn submit(served: &Served, file: &str, extra: Value) -> String {
    let (status, body) = served.submit(file, extra);
    assert_eq!(status, 201, "{body:#}");
    body["name"].as_str().expect("run name").to_string()
}

fn waiting(run: &Value, task: &str) -> bool {
    run["waits"]
        .as_array()
        .is_some_and(|waits| waits.iter().any(|w| w["task"] == task && w["open"] == true))
}

fn finished(run: &Value) -> bool {
    !run["finishedAt"].is_null()
}

/// A forged request: what it is, its headers, its body.
type Forged<'a> = (&'a str, Vec<(&'a str, &'a str)>, String);

#[test]
fn http_login_cookie_csp_csrf_viewer_approval_and_no_secret() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let served = start(scratch.path());
    let address = served.address().to_string();

    // Not logged in: to the login form; every answer has the security headers.
    let home = http(&address, "GET", "/", &[], "");
    assert_eq!(home.status, 303);
    assert_eq!(home.header("location"), Some("/login"));
    for reply in [&home, &http(&address, "GET", "/login", &[], "")] {
        assert_eq!(reply.header("content-security-policy"), Some(CSP));
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(reply.header("referrer-policy"), Some("no-referrer"));
    }
    let wrong = http(
        &address,
        "POST",
        "/login",
        &[("Content-Type", FORM)],
        &form(&[("token", "not-a-token-at-all-0000")]),
    );
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("set-cookie").is_none());
    // A login posted from another site is refused.
    let cross = http(
        &address,
        "POST",
        "/login",
        &[("Content-Type", FORM), ("Origin", "http://evil.example")],
        &form(&[("token", ALICE)]),
    );
    assert_eq!(cross.status, 403);

    let right = http(
        &address,
        "POST",
        "/login",
        &[("Content-Type", FORM)],
        &form(&[("token", ALICE)]),
    );
    assert_eq!(right.status, 303);
    let set_cookie = right.header("set-cookie").expect("cookie");
    for flag in ["weft_session=", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(flag), "{set_cookie}");
    }
    assert!(
        !set_cookie.contains(ALICE),
        "the cookie is a session id, not the token"
    );
    let alice = login(&address, ALICE);
    assert_ne!(
        alice,
        set_cookie.split(';').next().unwrap_or_default(),
        "every login gets a fresh session id"
    );
    let viewer = login(&address, VIEWER);

    let run = submit(&served, "dashboard-release.yaml", json!({}));
    served.wait_for(&run, |r| waiting(r, "approve"));
    let page = |cookie: &str, path: &str| {
        let reply = http(&address, "GET", path, &[("Cookie", cookie)], "");
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        assert_eq!(reply.header("content-security-policy"), Some(CSP));
        reply.body
    };
    let list = page(&alice, "/");
    assert!(list.contains(&format!("/runs/{run}")), "{list}");
    let approve_action = format!("action=\"/runs/{run}/approvals/approve\"");
    let alices = page(&alice, &format!("/runs/{run}"));
    assert!(alices.contains(&approve_action), "{alices}");
    assert!(alices.contains("<svg class=\"dag\""), "{alices}");
    assert!(!alices.contains("<script>") && !alices.contains(" style="));
    let viewers = page(&viewer, &format!("/runs/{run}"));
    assert!(!viewers.contains(&approve_action), "{viewers}");
    // A viewer's role shows no action at all: no cancel, re-run or new run.
    for action in ["/cancel\"", "/rerun\"", "/new\""] {
        assert!(!viewers.contains(action), "{action}: {viewers}");
        assert!(alices.contains(action) || action != "/cancel\"", "{alices}");
    }
    let viewer_csrf = csrf_of(&viewers);
    let alice_csrf = csrf_of(&alices);
    assert_ne!(viewer_csrf, alice_csrf);

    // Forged posts: no token, another session's token, no session, another site.
    let vote = format!("/runs/{run}/approvals/approve");
    let forged: Vec<Forged> = vec![
        (
            "no CSRF token",
            vec![("Cookie", alice.as_str()), ("Content-Type", FORM)],
            form(&[("decision", "approve")]),
        ),
        (
            "another session's token",
            vec![("Cookie", alice.as_str()), ("Content-Type", FORM)],
            form(&[("decision", "approve"), ("csrf", &viewer_csrf)]),
        ),
        (
            "no session",
            vec![("Content-Type", FORM)],
            form(&[("decision", "approve"), ("csrf", &alice_csrf)]),
        ),
        (
            "from another site",
            vec![
                ("Cookie", alice.as_str()),
                ("Content-Type", FORM),
                ("Origin", "http://evil.example"),
            ],
            form(&[("decision", "approve"), ("csrf", &alice_csrf)]),
        ),
        (
            "a viewer, who may not approve",
            vec![("Cookie", viewer.as_str()), ("Content-Type", FORM)],
            form(&[("decision", "approve"), ("csrf", &viewer_csrf)]),
        ),
    ];
    for (what, headers, body) in &forged {
        let reply = http(&address, "POST", &vote, headers, body);
        assert_eq!(reply.status, 403, "{what}: {}", reply.body);
    }
    let still = served.wait_for(&run, |_| true);
    assert!(waiting(&still, "approve"), "nothing was decided: {still:#}");

    // No secret, and markup from a log only as text.
    let token_log = page(&alice, &format!("/runs/{run}/tasks/token"));
    let build_log = page(&alice, &format!("/runs/{run}/tasks/build"));
    for html in [&alices, &viewers, &token_log, &build_log, &list] {
        assert!(!html.contains(SECRET), "a secret in a page");
    }
    assert!(
        token_log.contains("the value of `deploy` is"),
        "{token_log}"
    );
    assert!(
        build_log.contains("built &lt;script&gt;alert(1)&lt;/script&gt;"),
        "{build_log}"
    );
    assert!(!build_log.contains("<script>alert"));

    // Alice approves from the form; the run goes on.
    let approved = http(
        &address,
        "POST",
        &vote,
        &[("Cookie", alice.as_str()), ("Content-Type", FORM)],
        &form(&[
            ("decision", "approve"),
            ("message", "ship <it>"),
            ("csrf", &alice_csrf),
        ]),
    );
    assert_eq!(approved.status, 303, "{}", approved.body);
    let done = served.wait_for(&run, finished);
    assert_eq!(done["status"], "Succeeded", "{done:#}");
    let after = page(&alice, &format!("/runs/{run}"));
    assert!(after.contains("alice approve: ship &lt;it&gt;"), "{after}");
    assert!(!after.contains(&approve_action));

    // A re-run of the failed tasks only, from the page, by the API's rules.
    let rerun = http(
        &address,
        "POST",
        &format!("/runs/{run}/rerun"),
        &[("Cookie", alice.as_str()), ("Content-Type", FORM)],
        &form(&[("scope", "bogus"), ("csrf", &alice_csrf)]),
    );
    assert_eq!(rerun.status, 400, "{}", rerun.body);

    // Logging out forgets the session.
    let out = http(
        &address,
        "POST",
        "/logout",
        &[("Cookie", alice.as_str()), ("Content-Type", FORM)],
        &form(&[("csrf", &alice_csrf)]),
    );
    assert_eq!(out.status, 303);
    assert!(
        out.header("set-cookie")
            .is_some_and(|c| c.contains("Max-Age=0"))
    );
    let gone = http(&address, "GET", "/", &[("Cookie", alice.as_str())], "");
    assert_eq!(gone.status, 303);
}

#[test]
fn http_intervention_rerun_and_cancel_from_the_forms() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let served = start(scratch.path());
    let address = served.address().to_string();
    let alice = login(&address, ALICE);
    let ops = login(&address, OPS);
    let page = |cookie: &str, path: &str| {
        let reply = http(&address, "GET", path, &[("Cookie", cookie)], "");
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        reply.body
    };
    let post = |cookie: &str, path: &str, fields: &[(&str, &str)]| {
        http(
            &address,
            "POST",
            path,
            &[("Cookie", cookie), ("Content-Type", FORM)],
            &form(fields),
        )
    };

    // A manual intervention only ops may resume: only ops sees its form.
    let run = submit(&served, "intervention.yaml", json!({}));
    served.wait_for(&run, |r| waiting(r, "check"));
    let resume = format!("/runs/{run}/interventions/check");
    let alices = page(&alice, &format!("/runs/{run}"));
    assert!(
        !alices.contains(&format!("action=\"{resume}\"")),
        "{alices}"
    );
    let opss = page(&ops, &format!("/runs/{run}"));
    assert!(opss.contains(&format!("action=\"{resume}\"")), "{opss}");
    assert!(opss.contains("ManualInterventionPending"), "{opss}");
    let refused = post(
        &alice,
        &resume,
        &[("decision", "resume"), ("csrf", &csrf_of(&alices))],
    );
    assert_eq!(refused.status, 403, "{}", refused.body);
    let resumed = post(
        &ops,
        &resume,
        &[
            ("decision", "resume"),
            ("message", "checked"),
            ("csrf", &csrf_of(&opss)),
        ],
    );
    assert_eq!(resumed.status, 303, "{}", resumed.body);
    let done = served.wait_for(&run, finished);
    assert_eq!(done["status"], "Succeeded", "{done:#}");

    // A re-run of the failed tasks only: attempt 2.
    let rerun = post(
        &alice,
        &format!("/runs/{run}/rerun"),
        &[("scope", "failed"), ("csrf", &csrf_of(&alices))],
    );
    assert_eq!(rerun.status, 303, "{}", rerun.body);
    assert_eq!(
        rerun.header("location"),
        Some(format!("/runs/{run}~2").as_str())
    );
    served.wait_for(&format!("{run}~2"), |_| true);
    let second = page(&alice, &format!("/runs/{run}"));
    assert!(second.contains("attempt 2 of 2"), "{second}");

    // Cancel a running run; a finished one cannot be.
    let slow = submit(
        &served,
        "dashboard-slow.yaml",
        json!({"params": {"first": "60s"}}),
    );
    let cancel = post(
        &alice,
        &format!("/runs/{slow}/cancel"),
        &[("mode", "Cancelled"), ("csrf", &csrf_of(&alices))],
    );
    assert_eq!(cancel.status, 303, "{}", cancel.body);
    let cancelled = served.wait_for(&slow, finished);
    assert_eq!(cancelled["status"], "Cancelled", "{cancelled:#}");
    let again = post(
        &alice,
        &format!("/runs/{slow}/cancel"),
        &[("mode", "Cancelled"), ("csrf", &csrf_of(&alices))],
    );
    assert_eq!(again.status, 409, "{}", again.body);
    let bad_mode = post(
        &alice,
        &format!("/runs/{slow}/cancel"),
        &[("mode", "<b>"), ("csrf", &csrf_of(&alices))],
    );
    assert_eq!(bad_mode.status, 400, "{}", bad_mode.body);
    assert!(bad_mode.body.contains("&lt;b&gt;") && !bad_mode.body.contains("<b>"));
}

#[test]
fn http_without_a_token_pages_work_and_posts_still_need_the_csrf_token() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let served = Served::start(scratch.path(), &[]);
    let address = served.address().to_string();
    let home = http(&address, "GET", "/", &[], "");
    assert_eq!(home.status, 200, "{}", home.body);
    assert_eq!(home.header("content-security-policy"), Some(CSP));
    let cookie = home.header("set-cookie").expect("an anonymous session");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let refused = http(
        &address,
        "POST",
        "/runs/nope/cancel",
        &[("Content-Type", FORM)],
        "mode=Cancelled",
    );
    assert_eq!(refused.status, 403);
    let css = http(&address, "GET", "/assets/dashboard.css", &[], "");
    assert_eq!(css.status, 200);
    assert!(
        css.header("content-type")
            .is_some_and(|t| t.starts_with("text/css"))
    );
    let js = http(&address, "GET", "/assets/dashboard.js", &[], "");
    assert!(js.body.contains("EventSource"));

    // A new run of a run's pipeline, from the form its params make.
    let cookie = cookie.split(';').next().unwrap_or_default().to_string();
    let run = submit(
        &served,
        "dashboard-slow.yaml",
        json!({"params": {"first": "1s"}}),
    );
    let new = http(
        &address,
        "GET",
        &format!("/runs/{run}/new"),
        &[("Cookie", &cookie)],
        "",
    );
    assert_eq!(new.status, 200, "{}", new.body);
    assert!(
        new.body.contains("name=\"p.first\" value=\"3s\""),
        "the default is filled in: {}",
        new.body
    );
    let action = format!("/runs/{run}/new");
    let forged = http(
        &address,
        "POST",
        &action,
        &[("Cookie", &cookie), ("Content-Type", FORM)],
        &form(&[("p.first", "1s")]),
    );
    assert_eq!(forged.status, 403);
    let started = http(
        &address,
        "POST",
        &action,
        &[("Cookie", &cookie), ("Content-Type", FORM)],
        &form(&[("p.first", "1s"), ("csrf", &csrf_of(&new.body))]),
    );
    assert_eq!(started.status, 303, "{}", started.body);
    let location = started.header("location").unwrap_or_default();
    assert!(
        location.starts_with("/runs/dashboard-slow-") && !location.ends_with(&run),
        "{location}"
    );
    let new_run = location.trim_start_matches("/runs/");
    let shown = served.wait_for(new_run, |_| true);
    assert_eq!(shown["pipeline"], "dashboard-slow", "{shown:#}");

    // A pasted pipeline: its params' form (an enum as a choice, an array one item per
    // line, defaults filled in), then the run with the params given.
    let paste = http(&address, "GET", "/new", &[("Cookie", &cookie)], "");
    assert_eq!(paste.status, 200, "{}", paste.body);
    let csrf = csrf_of(&paste.body);
    let pipeline = "apiVersion: weft.dev/v1\nkind: Pipeline\nmetadata: {name: pasted}\nspec:\n  params:\n    - {name: env, type: string, enum: [dev, prod], default: dev}\n    - {name: tags, type: array, default: [a, b]}\n  tasks:\n    - name: say\n      taskRef: {name: echo}\n      params: [{name: message, value: \"to $(params.env)\"}]\n";
    let post = |fields: &[(&str, &str)]| {
        http(
            &address,
            "POST",
            "/new",
            &[("Cookie", &cookie), ("Content-Type", FORM)],
            &form(fields),
        )
    };
    let step = post(&[("pipeline", pipeline), ("csrf", &csrf)]);
    assert_eq!(step.status, 200, "{}", step.body);
    assert!(step.body.contains("<select name=\"p.env\"><option value=\"dev\" selected>dev</option><option value=\"prod\">prod</option></select>"), "{}", step.body);
    assert!(
        step.body
            .contains("<textarea name=\"p.tags\" rows=\"3\" cols=\"50\">a\nb</textarea>"),
        "{}",
        step.body
    );
    let started = post(&[
        ("pipeline", pipeline),
        ("start", "1"),
        ("p.env", "prod"),
        ("p.tags", "x\r\ny"),
        ("csrf", &csrf),
    ]);
    assert_eq!(started.status, 303, "{}", started.body);
    let pasted_run = started
        .header("location")
        .unwrap_or_default()
        .trim_start_matches("/runs/")
        .to_string();
    let done = served.wait_for(&pasted_run, finished);
    assert_eq!(done["status"], "Succeeded", "{done:#}");
    let said = done["attempts"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["task"] == "say"))
        .map(|a| a["results"]["message"].clone());
    assert_eq!(said, Some(json!("to prod")), "{done:#}");
    let broken = post(&[("pipeline", "kind: Pipeline\nspec: [<b>"), ("csrf", &csrf)]);
    assert_eq!(broken.status, 400, "{}", broken.body);
    assert!(!broken.body.contains("<b>"), "{}", broken.body);
    let forged = post(&[("pipeline", pipeline), ("start", "1")]);
    assert_eq!(forged.status, 403);
}

// ---------------------------------------------------------------------------------
// In a browser.

/// Where screenshots go.
fn screenshots() -> PathBuf {
    let dir = support::root().join("target/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

/// Chromium and chromedriver, installed from Debian when missing (as root).
fn browser_binaries() -> (PathBuf, PathBuf) {
    let found = || {
        let browser = on_path("chromium").or_else(|| on_path("chromium-browser"));
        Some((browser?, on_path("chromedriver")?))
    };
    if let Some(found) = found() {
        return found;
    }
    let _ = Command::new("apt-get")
        .args(["install", "-y", "chromium", "chromium-driver"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status();
    found().unwrap_or_else(|| {
        panic!(
            "the dashboard's browser tests need Debian's `chromium` and `chromium-driver` (apt-get install -y chromium chromium-driver): not installed and could not be installed"
        )
    })
}

/// A chromedriver process and one headless Chromium session, spoken to in the W3C
/// WebDriver protocol (JSON over HTTP).
struct Browser {
    driver: Child,
    address: String,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        let (chromium, chromedriver) = browser_binaries();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        // Its own process group: Chromium is in it too, so a test that fails half-way
        // leaves no browser behind (Drop kills the group).
        let driver = Command::new(chromedriver)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let address = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(&address).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--window-size=1400,1000".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut browser = Browser {
            driver,
            address,
            session: String::new(),
            _profile: profile,
        };
        let created = browser.command(
            "POST",
            "/session",
            Some(json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": chromium.to_string_lossy(), "args": args},
            }}})),
        );
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created:#}"))
            .to_string();
        browser
    }

    /// One WebDriver command; its `value`.
    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let reply = http(
            &self.address,
            method,
            path,
            &[("Content-Type", "application/json")],
            &body,
        );
        let value: Value = serde_json::from_str(&reply.body)
            .unwrap_or_else(|_| panic!("WebDriver {path}: {} {}", reply.status, reply.body));
        value.get("value").cloned().unwrap_or(value)
    }

    fn at(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    fn go(&self, url: &str) {
        self.command("POST", &self.at("/url"), Some(json!({ "url": url })));
    }

    fn source(&self) -> String {
        self.command("GET", &self.at("/source"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn run(&self, script: &str) -> Value {
        self.command(
            "POST",
            &self.at("/execute/sync"),
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Runs `script` with a callback (`arguments[0]`) and returns what it is called with.
    fn run_async(&self, script: &str) -> Value {
        self.command(
            "POST",
            &self.at("/execute/async"),
            Some(json!({"script": script, "args": []})),
        )
    }

    /// The element `css` selects, if any.
    fn find(&self, css: &str) -> Option<String> {
        let found = self.command(
            "POST",
            &self.at("/element"),
            Some(json!({"using": "css selector", "value": css})),
        );
        // The W3C web element reference.
        found
            .as_object()
            .and_then(|o| o.get("element-6066-11e4-a52e-4f735466cecf"))
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    fn click(&self, css: &str) {
        let element = self
            .find(css)
            .unwrap_or_else(|| panic!("no `{css}` on the page:\n{}", self.source()));
        self.command(
            "POST",
            &self.at(&format!("/element/{element}/click")),
            Some(json!({})),
        );
    }

    fn type_into(&self, css: &str, text: &str) {
        let element = self
            .find(css)
            .unwrap_or_else(|| panic!("no `{css}` on the page:\n{}", self.source()));
        self.command(
            "POST",
            &self.at(&format!("/element/{element}/value")),
            Some(json!({ "text": text })),
        );
    }

    /// Waits (at most `secs`) until `script` returns true.
    fn until(&self, what: &str, secs: u64, script: &str) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if self.run(script) == Value::Bool(true) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {secs}s; the page:\n{}",
                self.source()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn screenshot(&self, name: &str) {
        let encoded = self.command("GET", &self.at("/screenshot"), None);
        let png = base64_decode(encoded.as_str().unwrap_or_default());
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        std::fs::write(screenshots().join(name), png).expect("write screenshot");
    }

    /// The class of the graph node of `task`.
    fn node_class(&self, task: &str) -> String {
        let script = format!(
            "var n = Array.prototype.find.call(document.querySelectorAll('g.node'), function (g) {{ return g.getAttribute('data-task') === {}; }}); return n ? n.getAttribute('class') : null;",
            json!(task)
        );
        self.run(&script).as_str().unwrap_or_default().to_string()
    }

    fn log_in(&self, base: &str, token: &str) {
        self.go(&format!("{base}/login"));
        self.type_into("#token", token);
        self.click("form[action='/login'] button[type=submit]");
        self.until(
            "logged in",
            20,
            "return document.readyState === 'complete' && location.pathname === '/';",
        );
    }

    fn log_out(&self) {
        self.click("form[action='/logout'] button");
        self.until("logged out", 20, "return location.pathname === '/login';");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = http(
                &self.address,
                "DELETE",
                &format!("/session/{}", self.session),
                &[],
                "",
            );
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter_map(value) {
        acc = (acc << 6) | u32::from(c);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// The tone the dashboard gives a task's latest state (as `graph_output::tone`).
fn tone(status: &str) -> &'static str {
    match status {
        "Succeeded" => "ok",
        "SucceededWithWarnings" => "warn",
        "Failed" | "Errored" | "TimedOut" | "Rejected" => "fail",
        "Skipped" => "skip",
        "Cancelled" => "cancel",
        "Running" | "Cancelling" => "run",
        "Blocked" => "wait",
        "Queued" => "queue",
        _ => "pending",
    }
}

/// Each task's latest status in a run document.
fn latest(run: &Value) -> BTreeMap<String, String> {
    let mut by_task: BTreeMap<String, (u64, String)> = BTreeMap::new();
    for attempt in run["attempts"].as_array().into_iter().flatten() {
        let task = attempt["task"].as_str().unwrap_or_default().to_string();
        let n = attempt["attempt"].as_u64().unwrap_or(0);
        let status = attempt["outcome"]
            .as_str()
            .or_else(|| attempt["phase"].as_str())
            .unwrap_or_default()
            .to_string();
        let slot = by_task.entry(task).or_insert((n, status.clone()));
        if n >= slot.0 {
            *slot = (n, status);
        }
    }
    by_task.into_iter().map(|(t, (_, s))| (t, s)).collect()
}

#[test]
fn in_chromium_login_list_graph_live_updates_approval_and_a_viewer() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let served = start(scratch.path());
    let base = format!("http://{}", served.address());

    // A finished run with a halted branch, a running one, one waiting for approval.
    let halted = submit(&served, "halt-wait.yaml", json!({}));
    let halted_doc = served.wait_for(&halted, finished);
    let running = submit(
        &served,
        "dashboard-slow.yaml",
        json!({"params": {"first": "60s"}}),
    );
    let release = submit(&served, "dashboard-release.yaml", json!({}));
    served.wait_for(&release, |r| waiting(r, "approve"));

    let browser = Browser::start();
    browser.log_in(&base, ALICE);
    let list = browser.source();
    for run in [&halted, &running, &release] {
        assert!(
            list.contains(&format!("/runs/{run}\"")),
            "{run} listed: {list}"
        );
    }
    browser.until(
        "the running run shows as running",
        10,
        &format!(
            "var r = Array.prototype.find.call(document.querySelectorAll('tr.run'), function (t) {{ return t.getAttribute('data-run') === {}; }}); return !!r && r.textContent.indexOf('Running') >= 0;",
            json!(running)
        ),
    );
    browser.screenshot("runs-list.png");

    // Every node of the halted run, in its colour.
    browser.go(&format!("{base}/runs/{halted}"));
    let states = latest(&halted_doc);
    let nodes = browser.run("return document.querySelectorAll('g.node').length;");
    let expected_nodes = ["gate", "long-sibling", "release", "notify"];
    assert_eq!(nodes, json!(expected_nodes.len()), "{}", browser.source());
    for task in expected_nodes {
        let status = states.get(task).map_or("Pending", String::as_str);
        assert_eq!(
            browser.node_class(task),
            format!("node tone-{}", tone(status)),
            "{task} is {status}"
        );
    }
    browser.screenshot("run-halted-branch.png");

    // Live: a log line appears while its task runs, and the graph follows a task's end,
    // with no reload (a mark set on the page stays).
    let live = submit(
        &served,
        "dashboard-slow.yaml",
        json!({"params": {"first": "6s"}}),
    );
    browser.go(&format!("{base}/runs/{live}/tasks/second"));
    browser.run("window.weftMark = 1; return true;");
    assert_eq!(
        browser.run("return document.getElementById('log').textContent;"),
        json!(""),
        "second has not started yet"
    );
    browser.until(
        "second's first log line, live",
        30,
        "return window.weftMark === 1 && document.getElementById('log').textContent.indexOf('waiting') >= 0;",
    );
    let live2 = submit(
        &served,
        "dashboard-slow.yaml",
        json!({"params": {"first": "6s"}}),
    );
    browser.go(&format!("{base}/runs/{live2}"));
    browser.run("window.weftMark = 2; return true;");
    assert_eq!(browser.node_class("second"), "node tone-pending");
    browser.until(
        "first ends and second starts, live",
        30,
        "var find = function (t) { return Array.prototype.find.call(document.querySelectorAll('g.node'), function (g) { return g.getAttribute('data-task') === t; }); }; return window.weftMark === 2 && find('first').getAttribute('class') === 'node tone-ok' && find('second').getAttribute('class') === 'node tone-run';"
    );

    // A viewer sees no approve button, and a forged POST (no CSRF token) is refused.
    browser.log_out();
    browser.log_in(&base, VIEWER);
    browser.go(&format!("{base}/runs/{release}"));
    assert!(
        browser.find("button.approve").is_none(),
        "{}",
        browser.source()
    );
    let forged = browser.run_async(&format!(
        "var done = arguments[0]; fetch('/runs/' + {} + '/approvals/approve', {{method: 'POST', headers: {{'Content-Type': 'application/x-www-form-urlencoded'}}, body: 'decision=approve'}}).then(function (r) {{ done(r.status); }}, function (e) {{ done(String(e)); }});",
        json!(release)
    ));
    assert_eq!(forged, json!(403));
    assert!(waiting(&served.wait_for(&release, |_| true), "approve"));

    // Alice approves from the page; the run goes on and the page follows it.
    browser.log_out();
    browser.log_in(&base, ALICE);
    browser.go(&format!("{base}/runs/{release}"));
    assert_eq!(browser.node_class("approve"), "node tone-wait");
    let page = browser.source();
    assert!(!page.contains(SECRET), "no secret in the page");
    browser.screenshot("run-waiting-for-approval.png");
    browser.type_into("form.decide input[name=message]", "looks good");
    browser.click("form.decide button.approve");
    browser.until(
        "the run goes on after the approval",
        60,
        "return !!document.getElementById('run-status') && document.getElementById('run-status').textContent === 'Succeeded';",
    );
    browser.until(
        "forms that no longer apply go",
        10,
        "return document.querySelector('form.cancel') === null && document.querySelector('form.decide') === null;",
    );
    let done = served.wait_for(&release, finished);
    assert_eq!(done["status"], "Succeeded", "{done:#}");
    browser.go(&format!("{base}/runs/{release}/tasks/token"));
    assert!(
        !browser.source().contains(SECRET),
        "no secret in the log page"
    );
}
