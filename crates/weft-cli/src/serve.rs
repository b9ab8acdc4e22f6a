//! `weft serve`: the engine as a long-running process over the run store, with a small
//! HTTP API (JSON):
//!
//! | method and path | does |
//! |---|---|
//! | `POST /api/v1/runs` | submit a run: `{pipeline, file?, params?, name?, parallelism?, timeout?, tasksTimeout?, finallyTimeout?, grants?, reports?}`; `201` with its name, `400` with diagnostics, `409` when the name is taken |
//! | `GET /api/v1/runs?limit=N` | recent runs |
//! | `GET /api/v1/runs/{run}` | one run: status, report, attempts |
//! | `GET /api/v1/runs/{run}/logs?task=T&after=CURSOR` | log lines |
//! | `POST /api/v1/runs/{run}/cancel` | `{mode: Cancelled or CancelledRunFinally or StoppedRunFinally}` (default `CancelledRunFinally`) |
//! | `GET /healthz` | `ok`, or `503` while shutting down |
//!
//! On start-up it takes over runs whose heartbeat is older than `--recover-timeout` (and
//! looks again every so often), and delivers statuses finished runs still owe. On SIGTERM
//! or Ctrl-C it stops taking work, gives running tasks `--shutdown-grace` to finish, and
//! leaves the rest in the store for the next engine (its lease released, so no wait).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clap::Parser;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::task::JoinSet;
use weft_core::CancelMode;
use weft_core::contract::ParamValue;
use weft_engine::policy::SubmissionPolicy;
use weft_engine::{CancelHandle, PluginRegistry, RunEnd, cancel_channel};
use weft_store::{BatchingStore, RunStore, Timestamp};

use crate::cli::{RunArgs, ServeArgs};
use crate::launch::{self, Display, LaunchError, Started, Submission};
use crate::{Failure, default_data_dir, diagnostics, duration_flag, registry, runs};

/// The server's shared state.
struct Server {
    registry: PluginRegistry,
    store: Arc<BatchingStore>,
    args: ServeArgs,
    data_dir: PathBuf,
    recover_timeout: Duration,
    /// Runs this process executes, by name.
    active: Mutex<HashMap<String, CancelHandle>>,
    /// Their tasks, awaited on shutdown.
    tasks: Mutex<JoinSet<()>>,
    /// Cleared on shutdown: submissions are refused from then on.
    accepting: AtomicBool,
    /// What submissions may use (`--submit-secrets`, `--report-allow-http`).
    policy: SubmissionPolicy,
}

/// Carries out `weft serve`.
pub async fn serve(mut args: ServeArgs) -> Result<u8, Failure> {
    // An empty token would let every caller in: it is no token.
    args.api_token = args.api_token.take().filter(|t| !t.trim().is_empty());
    let recover_timeout = duration_flag("recover-timeout", &Some(args.recover_timeout.clone()))?
        .unwrap_or(weft_store::DEFAULT_RECOVERY_TIMEOUT);
    let grace = duration_flag("shutdown-grace", &Some(args.shutdown_grace.clone()))?
        .unwrap_or(Duration::from_secs(30));
    // Checked once here, so each submission's flags are known to parse.
    launch::http_rules(&args.allow_http)?;
    let policy = SubmissionPolicy {
        secrets: args
            .submit_secrets
            .iter()
            .map(|name| name.trim().to_string())
            .filter(|name| !name.is_empty())
            .collect(),
        reporter_http: args.report_allow_http.clone(),
    };
    policy.reporter_rules().map_err(Failure::invalid)?;
    duration_flag("report-timeout", &Some(args.report_timeout.clone()))?;
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    let store = runs::open_store(&runs::store_path(args.db.as_deref(), Some(&data_dir))?)?;
    let registry = registry(&args.plugins)?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| Failure::environment(format!("cannot listen on {}: {e}", args.listen)))?;
    let address = listener
        .local_addr()
        .map_err(|e| Failure::environment(format!("cannot listen on {}: {e}", args.listen)))?;
    authentication_check(&args, address)?;
    let mut signals = crate::Signals::install()?;
    let server = Arc::new(Server {
        registry,
        store,
        args,
        data_dir,
        recover_timeout,
        active: Mutex::new(HashMap::new()),
        tasks: Mutex::new(JoinSet::new()),
        accepting: AtomicBool::new(true),
        policy,
    });

    // Recover what a stopped engine left, then keep looking (another engine may stop).
    recover_stale(&server).await;
    let sweeper = {
        let server = server.clone();
        tokio::spawn(async move {
            let every = server
                .recover_timeout
                .clamp(Duration::from_secs(1), Duration::from_secs(60));
            loop {
                tokio::time::sleep(every).await;
                if !server.accepting.load(Ordering::SeqCst) {
                    return;
                }
                recover_stale(&server).await;
            }
        })
    };

    let app = axum::Router::new()
        .route("/healthz", get(health))
        .route("/api/v1/runs", post(submit).get(list))
        .route("/api/v1/runs/{run}", get(show))
        .route("/api/v1/runs/{run}/logs", get(logs))
        .route("/api/v1/runs/{run}/cancel", post(cancel))
        .with_state(server.clone());
    // The address line is what scripts wait for.
    println!("weft serve: listening on http://{address}");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await
    });
    let mut interrupts = 0;
    let _ = signals.next(&mut interrupts).await;
    eprintln!(
        "weft serve: shutting down: no new runs; running tasks get {} to finish",
        crate::view::human_duration(grace)
    );
    server.accepting.store(false, Ordering::SeqCst);
    sweeper.abort();
    let _ = stop_tx.send(());
    let handles: Vec<CancelHandle> = lock(&server.active).values().cloned().collect();
    for handle in &handles {
        handle.suspend(grace);
    }
    let mut tasks = std::mem::take(&mut *lock(&server.tasks));
    // A second signal stops waiting.
    let waited = tokio::select! {
        () = async { while tasks.join_next().await.is_some() {} } => true,
        _ = signals.next(&mut interrupts) => false,
    };
    if !waited {
        eprintln!("weft serve: stopping now; unfinished runs are left to recovery");
        tasks.abort_all();
    }
    match tokio::time::timeout(Duration::from_secs(5), http).await {
        Ok(Ok(Err(err))) => eprintln!("weft serve: the HTTP server failed: {err}"),
        Err(_) => eprintln!("weft serve: open connections did not close in time"),
        _ => {}
    }
    server
        .store
        .close()
        .map_err(|e| Failure::environment(format!("the run store did not close cleanly: {e}")))?;
    eprintln!("weft serve: stopped");
    Ok(0)
}

/// Refuses an unauthenticated API on an address other machines can reach (unless the
/// operator says a proxy in front authenticates callers), and says at start-up how the
/// API is protected.
fn authentication_check(args: &ServeArgs, address: std::net::SocketAddr) -> Result<(), Failure> {
    if args.api_token.is_some() {
        eprintln!("weft serve: the API requires a bearer token");
        return Ok(());
    }
    if address.ip().is_loopback() {
        eprintln!(
            "weft serve: no API token: only processes on this machine can reach {address}; set --api-token (or WEFT_API_TOKEN) before listening elsewhere"
        );
        return Ok(());
    }
    if args.insecure_no_auth {
        eprintln!(
            "weft serve: WARNING: no authentication on {address} (--insecure-no-auth): anyone who can reach it can submit, read and cancel runs"
        );
        return Ok(());
    }
    Err(Failure::invalid(format!(
        "refusing to listen on {address} without an API token: anyone who can reach it could submit, read and cancel runs; set --api-token (or WEFT_API_TOKEN), listen on a loopback address, or pass --insecure-no-auth when a proxy in front authenticates every caller"
    )))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Takes over stale runs and starts them; delivers statuses finished runs still owe.
async fn recover_stale(server: &Arc<Server>) {
    let stale = match server
        .store
        .stale_runs(Timestamp::now(), server.recover_timeout)
    {
        Ok(stale) => stale,
        Err(err) => {
            eprintln!("weft serve: cannot look for runs to recover: {err}");
            return;
        }
    };
    for run in stale {
        if lock(&server.active).contains_key(&run.id) {
            continue;
        }
        match launch::recover(
            &server.store,
            &server.registry,
            &run.id,
            server.recover_timeout,
            &server.data_dir,
            &server.args.secrets,
            Display::Silent,
        )
        .await
        {
            Ok((started, strategy)) => {
                eprintln!(
                    "weft serve: recovering run {} (strategy {})",
                    started.run_name,
                    strategy.as_str()
                );
                spawn_run(server, started);
            }
            Err(failure) => eprintln!("weft serve: {}", failure.message),
        }
    }
    let shared = server.clone();
    lock(&server.tasks).spawn(async move {
        let server = shared;
        match launch::deliver_leftovers(
            &server.store,
            &server.registry,
            server.recover_timeout,
            &server.data_dir,
            &server.args.secrets,
        )
        .await
        {
            Ok(delivered) => {
                for (run, missed) in delivered {
                    eprintln!(
                        "weft serve: delivered the statuses run {run} still owed ({} not delivered)",
                        missed.len()
                    );
                }
            }
            Err(failure) => eprintln!("weft serve: {}", failure.message),
        }
    });
}

/// Executes `started` in the background until it ends or the server lets go of it.
fn spawn_run(server: &Arc<Server>, started: Started) {
    let (handle, control) = cancel_channel();
    let name = started.run_name.clone();
    lock(&server.active).insert(name.clone(), handle);
    let mut tasks = lock(&server.tasks);
    // Finished runs' entries are dropped here, so a long-lived server does not pile them up.
    while tasks.try_join_next().is_some() {}
    let shared = server.clone();
    tasks.spawn(async move {
        let server = shared;
        let end = started.execute(control, true).await;
        lock(&server.active).remove(&name);
        match end {
            RunEnd::Finished(summary) => {
                tracing::info!(run = %name, status = summary.status.as_str(), "run finished");
            }
            RunEnd::Suspended => eprintln!("weft serve: run {name} left to recovery"),
        }
    });
}

/// An API error: status, code and message as JSON.
fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "error": code, "message": message.into() })),
    )
        .into_response()
}

/// Checks the bearer token when the server has one; the refusal is boxed (it is large).
fn authorized(server: &Server, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let Some(expected) = &server.args.api_token else {
        return Ok(());
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Compared in constant time: the token must not leak through timing.
    let same = given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid `Authorization: Bearer` token is required",
        )))
    }
}

async fn health(State(server): State<Arc<Server>>) -> Response {
    if server.accepting.load(Ordering::SeqCst) {
        (StatusCode::OK, "ok").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response()
    }
}

/// The body of `POST /api/v1/runs`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SubmitRequest {
    /// The pipeline's YAML text.
    pipeline: String,
    /// A file name for diagnostics.
    #[serde(default)]
    file: Option<String>,
    /// Params: strings, arrays of strings, objects of strings.
    #[serde(default)]
    params: BTreeMap<String, ParamValue>,
    name: Option<String>,
    parallelism: Option<usize>,
    timeout: Option<String>,
    tasks_timeout: Option<String>,
    finally_timeout: Option<String>,
    /// `TASK=SECRET` grants.
    #[serde(default)]
    grants: Vec<String>,
    /// `FORGE:CONFIG` reporters.
    #[serde(default)]
    reports: Vec<String>,
}

/// `weft run`'s flags for one submission: the request's, on top of the server's.
fn run_args(server: &Server, request: &SubmitRequest, file: &str) -> Result<RunArgs, String> {
    #[derive(Parser)]
    struct Defaults {
        #[command(flatten)]
        run: RunArgs,
    }
    let mut args = Defaults::try_parse_from(["weft", file])
        .map_err(|e| e.to_string())?
        .run;
    args.pipeline.plugins = server.args.plugins.clone();
    args.pipeline.output = crate::cli::OutputFormat::Json;
    args.name = request.name.clone();
    args.parallelism = request.parallelism;
    args.timeout = request.timeout.clone();
    args.tasks_timeout = request.tasks_timeout.clone();
    args.finally_timeout = request.finally_timeout.clone();
    args.grants = request.grants.clone();
    args.reports = request.reports.clone();
    args.allow_http = server.args.allow_http.clone();
    args.secrets = server.args.secrets.clone();
    args.report_timeout = server.args.report_timeout.clone();
    args.data_dir = Some(server.data_dir.clone());
    args.db = server.args.db.clone();
    // Host directories are the operator's: a submission never binds them.
    args.workspaces = Vec::new();
    Ok(args)
}

async fn submit(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(denied) = authorized(&server, &headers) {
        return *denied;
    }
    if !server.accepting.load(Ordering::SeqCst) {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting-down",
            "the server is shutting down; submit to another one",
        );
    }
    let request: SubmitRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(err) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad-request",
                format!("the request body is not a valid submission: {err}"),
            );
        }
    };
    let file = request
        .file
        .clone()
        .unwrap_or_else(|| "submitted.yaml".to_string());
    let args = match run_args(&server, &request, &file) {
        Ok(args) => args,
        Err(err) => return error(StatusCode::BAD_REQUEST, "bad-request", err),
    };
    let submission = Submission {
        source: request.pipeline,
        file,
        params: request.params,
    };
    let store = server.store.clone();
    match launch::start(
        &args,
        submission,
        &server.registry,
        move || Ok(store),
        Display::Silent,
        Some(&server.policy),
    )
    .await
    {
        Ok(started) => {
            let name = started.run_name.clone();
            spawn_run(&server, started);
            (
                StatusCode::CREATED,
                Json(json!({
                    "name": name,
                    "links": {
                        "self": format!("/api/v1/runs/{name}"),
                        "logs": format!("/api/v1/runs/{name}/logs"),
                        "cancel": format!("/api/v1/runs/{name}/cancel"),
                    },
                })),
            )
                .into_response()
        }
        Err(LaunchError::Invalid(found)) => {
            let mut document = diagnostics::to_json(&found);
            document["error"] = json!("invalid");
            document["message"] = json!(format!(
                "the pipeline is invalid ({} problem{})",
                found.len(),
                if found.len() == 1 { "" } else { "s" }
            ));
            (StatusCode::BAD_REQUEST, Json(document)).into_response()
        }
        Err(LaunchError::Failed(failure)) if failure.message.contains("already exists") => {
            error(StatusCode::CONFLICT, "exists", failure.message)
        }
        Err(LaunchError::Failed(failure)) if failure.code == crate::EXIT_INVALID => {
            error(StatusCode::BAD_REQUEST, "invalid", failure.message)
        }
        Err(LaunchError::Failed(failure)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            failure.message,
        ),
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    limit: Option<usize>,
}

async fn list(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    if let Err(denied) = authorized(&server, &headers) {
        return *denied;
    }
    match server.store.list_runs(query.limit.unwrap_or(50).min(1000)) {
        Ok(found) => {
            Json(Value::Array(found.iter().map(runs::list_item).collect())).into_response()
        }
        Err(err) => error(StatusCode::INTERNAL_SERVER_ERROR, "store", err.to_string()),
    }
}

async fn show(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Path(run): Path<String>,
) -> Response {
    if let Err(denied) = authorized(&server, &headers) {
        return *denied;
    }
    match runs::run_document(server.store.as_ref(), &run) {
        Ok(Some(mut document)) => {
            document["executing"] = json!(lock(&server.active).contains_key(&run));
            Json(document).into_response()
        }
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no run named `{run}`"),
        ),
        Err(err) => error(StatusCode::INTERNAL_SERVER_ERROR, "store", err.to_string()),
    }
}

#[derive(Debug, Deserialize)]
struct LogsQuery {
    task: Option<String>,
    after: Option<u64>,
    limit: Option<usize>,
}

async fn logs(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Path(run): Path<String>,
    Query(query): Query<LogsQuery>,
) -> Response {
    if let Err(denied) = authorized(&server, &headers) {
        return *denied;
    }
    match server.store.run(&run) {
        Ok(Some(_)) => {}
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                "not-found",
                format!("no run named `{run}`"),
            );
        }
        Err(err) => return error(StatusCode::INTERNAL_SERVER_ERROR, "store", err.to_string()),
    }
    let lines = server.store.logs(
        &run,
        query.task.as_deref(),
        query.after.unwrap_or(0),
        query.limit.unwrap_or(1000).min(10_000),
    );
    match lines {
        Ok(lines) => Json(json!({
            "lines": lines.iter().map(|entry| json!({
                "cursor": entry.cursor,
                "task": entry.id.task,
                "attempt": entry.id.attempt,
                "stream": entry.line.stream,
                "at": entry.line.at.millis(),
                "text": entry.line.text,
            })).collect::<Vec<_>>(),
            "next": lines.iter().map(|entry| entry.cursor).max().or(query.after).unwrap_or(0),
        }))
        .into_response(),
        Err(err) => error(StatusCode::INTERNAL_SERVER_ERROR, "store", err.to_string()),
    }
}

#[derive(Debug, Default, Deserialize)]
struct CancelRequest {
    mode: Option<String>,
}

async fn cancel(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Path(run): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(denied) = authorized(&server, &headers) {
        return *denied;
    }
    let request: CancelRequest = if body.is_empty() {
        CancelRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(request) => request,
            Err(err) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad-request",
                    format!("the request body is not a valid cancel request: {err}"),
                );
            }
        }
    };
    let mode = match request.mode.as_deref() {
        None | Some("CancelledRunFinally") => CancelMode::CancelledRunFinally,
        Some("Cancelled") => CancelMode::Cancelled,
        Some("StoppedRunFinally") => CancelMode::StoppedRunFinally,
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad-request",
                format!(
                    "mode `{other}` is not one of Cancelled, CancelledRunFinally, StoppedRunFinally"
                ),
            );
        }
    };
    if let Some(handle) = lock(&server.active).get(&run) {
        handle.cancel(mode);
        return (
            StatusCode::ACCEPTED,
            Json(json!({ "name": run, "mode": mode.as_str() })),
        )
            .into_response();
    }
    match server.store.run(&run) {
        Ok(Some(record)) if record.finished_at.is_some() => error(
            StatusCode::CONFLICT,
            "finished",
            format!(
                "run `{run}` already finished ({})",
                record.status.unwrap_or_default()
            ),
        ),
        Ok(Some(_)) => error(
            StatusCode::CONFLICT,
            "not-here",
            format!(
                "run `{run}` is not executing in this engine (another engine owns it, or it awaits recovery)"
            ),
        ),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no run named `{run}`"),
        ),
        Err(err) => error(StatusCode::INTERNAL_SERVER_ERROR, "store", err.to_string()),
    }
}
