//! A fake forge for the reporting tests: an axum server on 127.0.0.1 (ephemeral port) in a
//! background thread with its own tokio runtime, speaking the commit-status endpoints of
//! forges.md and recording every request.
//!
//! - GitLab `POST /api/v4/projects/:id/statuses/:sha` -> 201; re-posting the state a
//!   context already has -> 400 `Cannot transition status via :run from :running`.
//! - GitHub `POST /repos/:owner/:repo/statuses/:sha` -> 201; a description over 140
//!   characters -> 422.
//! - Gitea `POST /api/v1/repos/:owner/:repo/statuses/:sha` -> 201.
//! - Bitbucket `POST /2.0/repositories/:workspace/:repo/commit/:sha/statuses/build` -> 201
//!   (a `key` is required, else 400).
//! - Webhook `POST /hook` -> 200.
//!
//! [`FakeForge::failing`] answers the first calls with given statuses instead (with
//! `Retry-After: 1` on 429 and 409).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `POST`, ...
    pub method: String,
    /// The path (no query).
    pub path: String,
    /// Headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
    /// What the fake answered.
    pub status: u16,
}

impl Recorded {
    /// Header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (or form fields as a JSON object).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| {
            Value::Object(
                self.body
                    .split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_string(), Value::String(v.replace('+', " "))))
                    .collect(),
            )
        })
    }

    /// Body field `field` as text.
    pub fn field(&self, field: &str) -> String {
        self.json()[field].as_str().unwrap_or_default().to_string()
    }

    /// Whether the fake accepted it.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

#[derive(Default)]
struct State {
    requests: Vec<Recorded>,
    failures: Vec<u16>,
    /// GitLab: (project, sha, name) -> state.
    gitlab: HashMap<(String, String, String), String>,
}

/// A running fake forge; stops when dropped.
pub struct FakeForge {
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeForge {
    /// A forge that answers every request normally.
    pub fn start() -> FakeForge {
        FakeForge::failing(&[])
    }

    /// A forge whose first `failures.len()` requests get those statuses.
    pub fn failing(failures: &[u16]) -> FakeForge {
        let state = Arc::new(Mutex::new(State {
            failures: failures.iter().rev().copied().collect(),
            ..State::default()
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("local addr").port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = state.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("fake forge runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                let app = Router::new().fallback(move |method, uri, headers, body| {
                    let state = shared.clone();
                    async move { handle(state, method, uri, headers, body) }
                });
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        FakeForge {
            port,
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The `--allow-http` rule that reaches it.
    pub fn rule(&self) -> String {
        format!("!private:127.0.0.1:{}", self.port)
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .requests
            .clone()
    }
}

impl Drop for FakeForge {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn handle(
    state: Arc<Mutex<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut state = state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let path = uri.path().to_string();
    let mut recorded = Recorded {
        method: method.to_string(),
        path: path.clone(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
        status: 0,
    };
    let (status, reply, retry_after) = match state.failures.pop() {
        Some(code) => (
            code,
            serde_json::json!({"message": "injected failure"}),
            matches!(code, 409 | 429).then_some("1"),
        ),
        None => {
            let (status, reply) = answer(&mut state, &method, &path, &recorded);
            (status, reply, None)
        }
    };
    recorded.status = status;
    state.requests.push(recorded);
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (code, axum::Json(reply)).into_response();
    if let Some(seconds) = retry_after
        && let Ok(value) = seconds.parse()
    {
        response.headers_mut().insert("retry-after", value);
    }
    response
}

fn answer(state: &mut State, method: &Method, path: &str, req: &Recorded) -> (u16, Value) {
    if method != Method::POST {
        return (405, serde_json::json!({"message": "method not allowed"}));
    }
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let body = req.json();
    let field = |name: &str| body[name].as_str().unwrap_or_default().to_string();
    match parts.as_slice() {
        ["api", "v4", "projects", project, "statuses", sha] => {
            let state_name = field("state");
            let name = body["name"]
                .as_str()
                .or_else(|| body["context"].as_str())
                .unwrap_or("default")
                .to_string();
            let key = (project.to_string(), sha.to_string(), name);
            if let Some(current) = state.gitlab.get(&key)
                && *current == state_name
            {
                return (
                    400,
                    serde_json::json!({"message": format!("Cannot transition status via :{} from :{current}", verb(&state_name))}),
                );
            }
            state.gitlab.insert(key, state_name.clone());
            (201, serde_json::json!({"id": 1, "status": state_name}))
        }
        ["repos", _, _, "statuses", _] => {
            if field("description").chars().count() > 140 {
                return (
                    422,
                    serde_json::json!({"message": "Validation Failed", "errors": [{"field": "description", "code": "custom"}]}),
                );
            }
            (201, serde_json::json!({"id": 1, "state": field("state")}))
        }
        ["api", "v1", "repos", _, _, "statuses", _] => {
            (201, serde_json::json!({"id": 1, "status": field("state")}))
        }
        [
            "2.0",
            "repositories",
            _,
            _,
            "commit",
            _,
            "statuses",
            "build",
        ] => {
            if field("key").is_empty() {
                return (
                    400,
                    serde_json::json!({"error": {"message": "key is required"}}),
                );
            }
            (
                201,
                serde_json::json!({"key": field("key"), "state": field("state")}),
            )
        }
        ["hook"] => (200, serde_json::json!({"ok": true})),
        _ => (404, serde_json::json!({"message": "404 Not Found"})),
    }
}

fn verb(state: &str) -> &'static str {
    match state {
        "pending" => "enqueue",
        "running" => "run",
        "success" => "succeed",
        "failed" => "drop",
        "canceled" => "cancel",
        _ => "skip",
    }
}
