//! The run routes of the API: submit, list, show, logs, cancel (and what re-runs and
//! schedules share with them: a submission's spec, the answer to one, which attempt a
//! `{run}` names).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use weft_core::CancelMode;
use weft_core::contract::ParamValue;
use weft_engine::runs::{RunSignal, RunSpec, RunTimeouts, SubmitError, cancel_mode};
use weft_store::{RunStore, StoreError, Timestamp};

use super::{Refusal, Server, auth, body_as, error, lock, optional_body, shutting_down, spawn_run};
use crate::view::{self, Display};
use crate::{diagnostics, runs, spec_flags};

/// The body of `POST /api/v1/runs`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct SubmitRequest {
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
    /// When the run starts (RFC 3339): it waits in phase `Scheduled` until then.
    #[serde(default)]
    scheduled_at: Option<String>,
    /// Plugin names pinned to registry references, as a `weft.lock`'s `plugins`
    /// (`{"git-clone": "oci://HOST/NAME@sha256:..."}`); pulled only from the registries
    /// `--allow-registry` names.
    #[serde(default)]
    plugins: BTreeMap<String, String>,
}

impl SubmitRequest {
    /// A submission of `pipeline` (its text, its file name for diagnostics) with
    /// `params` and `plugins` pins, nothing else: what the dashboard's form submits.
    pub(super) fn of_pipeline(
        pipeline: String,
        file: String,
        params: BTreeMap<String, ParamValue>,
        plugins: BTreeMap<String, String>,
    ) -> SubmitRequest {
        SubmitRequest {
            pipeline,
            file: Some(file),
            params,
            name: None,
            parallelism: None,
            timeout: None,
            tasks_timeout: None,
            finally_timeout: None,
            grants: Vec::new(),
            reports: Vec::new(),
            scheduled_at: None,
            plugins,
        }
    }

    /// Replaces its params.
    pub(super) fn set_params(&mut self, params: BTreeMap<String, ParamValue>) {
        self.params = params;
    }
}

/// A submission with its spec made (`run_spec`), submitted and started here: the run's
/// name, or why not. The one path of `POST /api/v1/runs` and the dashboard's form.
pub(super) async fn submit_request(
    server: &Arc<Server>,
    request: SubmitRequest,
) -> Result<String, Refusal> {
    if let Some(refused) = super::not_accepting(server) {
        return Err(refused);
    }
    let spec = run_spec(server, request)
        .map_err(|err| Refusal::new(StatusCode::BAD_REQUEST, "bad-request", err))?;
    start_submitted(server, server.service.submit(spec).await)
}

/// The run a submission asks for: the request's fields (in the same grammar as `weft
/// run`'s flags: `TASK=SECRET` grants, `FORGE:CONFIG` reports, Go durations) on top of what
/// the operator gives every submission. Host directories are the operator's: a
/// submission never binds one.
pub(super) fn run_spec(server: &Server, request: SubmitRequest) -> Result<RunSpec, String> {
    let file = request
        .file
        .clone()
        .unwrap_or_else(|| "submitted.yaml".to_string());
    let mut spec = RunSpec::new(request.pipeline, file);
    spec.pipeline.plugins = request.plugins;
    spec.pipeline.max_matrix_combinations = Some(server.defaults.max_matrix_combinations);
    spec.name = request.name;
    spec.params = request.params;
    spec.parallelism = request.parallelism;
    let duration = |field: &str, value: Option<&str>| {
        spec_flags::duration(field, value).map_err(|failure| failure.message)
    };
    spec.timeouts = RunTimeouts {
        pipeline: duration("timeout", request.timeout.as_deref())?,
        tasks: duration("tasksTimeout", request.tasks_timeout.as_deref())?,
        finally: duration("finallyTimeout", request.finally_timeout.as_deref())?,
    };
    spec.secret_grants = spec_flags::grants(&request.grants).map_err(|f| f.message)?;
    spec.reporters = request
        .reports
        .iter()
        .map(|flag| spec_flags::reporter(flag))
        .collect::<Result<_, _>>()?;
    // A PipelineRun's name, params, workspaces and timeouts, under the request's own.
    let parsed = spec.pipeline.parse();
    let applied = crate::pipeline_run::apply(&parsed, &mut spec, None);
    if let Some(problem) = applied.problems.first() {
        return Err(problem.to_string());
    }
    if let Some(status) = applied.status {
        return Err(format!(
            "the PipelineRun's `spec.status: {status:?}` is not taken through the API: submit it without `spec.status` (cancel with POST /api/v1/runs/RUN/cancel)"
        ));
    }
    spec.http = server.defaults.http.clone();
    spec.report_timeout = server.defaults.report_timeout;
    spec.data_dir = Some(server.data_dir.clone());
    spec.policy = Some(server.defaults.policy.clone());
    spec.snapshots = server.defaults.snapshots.clone();
    if let Some(at) = &request.scheduled_at {
        let ms = crate::decide::parse_time(at)
            .map_err(|failure| format!("scheduledAt: {}", failure.message))?;
        if ms < Timestamp::now().0 {
            return Err(format!("scheduledAt `{at}` is in the past"));
        }
        spec.scheduled_at_ms = Some(ms);
    }
    Ok(spec)
}

pub(super) async fn submit(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(denied) = auth::caller(&server, &headers) {
        return *denied;
    }
    if let Some(answer) = shutting_down(&server) {
        return answer;
    }
    let request: SubmitRequest = match body_as(&body, "submission") {
        Ok(request) => request,
        Err(answer) => return *answer,
    };
    match submit_request(&server, request).await {
        Ok(name) => created(&name),
        Err(refused) => refused.into_response(),
    }
}

/// The answer to a submission (a run or a re-run): `201` with the run's links (and the
/// run executing here), or the refusal with its status.
pub(super) fn submitted(
    server: &Arc<Server>,
    result: Result<weft_engine::runs::Submitted, SubmitError>,
) -> Response {
    match start_submitted(server, result) {
        Ok(name) => created(&name),
        Err(refused) => refused.into_response(),
    }
}

/// `201` with the new run's name and links.
fn created(name: &str) -> Response {
    (
        StatusCode::CREATED,
        Json(json!({
            "name": name,
            "attempt": runs::attempt_number(name),
            "links": {
                "self": format!("/api/v1/runs/{name}"),
                "logs": format!("/api/v1/runs/{name}/logs"),
                "cancel": format!("/api/v1/runs/{name}/cancel"),
            },
        })),
    )
        .into_response()
}

/// A submission (a run or a re-run) that went through starts executing here; its name,
/// or why it was refused. Shared by the API and the dashboard.
pub(super) fn start_submitted(
    server: &Arc<Server>,
    result: Result<weft_engine::runs::Submitted, SubmitError>,
) -> Result<String, Refusal> {
    let submitted = result.map_err(refusal)?;
    view::decorator_log(&submitted.decorator_log, Display::Silent);
    let name = submitted.run.name().to_string();
    spawn_run(server, submitted.run);
    Ok(name)
}

/// A refused submission as an API error.
pub(super) fn refusal(err: SubmitError) -> Refusal {
    match err {
        SubmitError::Invalid {
            diagnostics: found,
            decorator_log,
        } => {
            view::decorator_log(&decorator_log, Display::Silent);
            let mut document = diagnostics::to_json(&found);
            let message = format!(
                "the pipeline is invalid ({} problem{})",
                found.len(),
                if found.len() == 1 { "" } else { "s" }
            );
            document["error"] = json!("invalid");
            document["message"] = json!(message);
            Refusal {
                status: StatusCode::BAD_REQUEST,
                code: "invalid",
                message,
                document: Some(document),
            }
        }
        SubmitError::Exists(name) => Refusal::new(
            StatusCode::CONFLICT,
            "exists",
            format!("`{name}` already exists; pick another name"),
        ),
        SubmitError::Refused(message) => Refusal::new(StatusCode::BAD_REQUEST, "invalid", message),
        SubmitError::NotFound(run) => Refusal::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no run named `{run}`"),
        ),
        SubmitError::NotTerminal(message) => {
            Refusal::new(StatusCode::CONFLICT, "not-finished", message)
        }
        SubmitError::Forbidden(message) => {
            Refusal::new(StatusCode::FORBIDDEN, "forbidden", message)
        }
        SubmitError::Environment(message) => {
            Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
        }
    }
}

/// `?attempt=N` of the run routes.
#[derive(Debug, Default, Deserialize)]
pub(super) struct AttemptQuery {
    attempt: Option<u32>,
}

/// The stored id of `run`'s attempt `attempt` (default: the latest), or the `404` (or
/// store error) to answer with.
pub(super) fn resolve(
    server: &Server,
    run: &str,
    attempt: Option<u32>,
) -> Result<String, Box<Response>> {
    resolve_attempt(server, run, attempt).map_err(|refused| Box::new(refused.into_response()))
}

/// As [`resolve`], the refusal not yet rendered (the dashboard renders it as a page).
pub(super) fn resolve_attempt(
    server: &Server,
    run: &str,
    attempt: Option<u32>,
) -> Result<String, Refusal> {
    match weft_engine::runs::attempt_id(server.store.as_ref(), run, attempt) {
        Ok(Some(id)) => Ok(id),
        Ok(None) => Err(Refusal::new(
            StatusCode::NOT_FOUND,
            "not-found",
            match attempt {
                Some(n) => format!("run `{run}` has no attempt {n}"),
                None => format!("no run named `{run}`"),
            },
        )),
        Err(err) => Err(Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store",
            err,
        )),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    limit: Option<usize>,
}

pub(super) async fn list(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    if let Err(denied) = auth::caller(&server, &headers) {
        return *denied;
    }
    match server.store.list_runs(query.limit.unwrap_or(50).min(1000)) {
        Ok(found) => Json(Value::Array(
            found
                .iter()
                .map(|r| runs::list_item(r, runs::held(server.store.as_ref(), r)))
                .collect(),
        ))
        .into_response(),
        Err(err) => error(StatusCode::INTERNAL_SERVER_ERROR, "store", err.to_string()),
    }
}

pub(super) async fn show(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Path(run): Path<String>,
    Query(query): Query<AttemptQuery>,
) -> Response {
    if let Err(denied) = auth::caller(&server, &headers) {
        return *denied;
    }
    let run = match resolve(&server, &run, query.attempt) {
        Ok(id) => id,
        Err(answer) => return *answer,
    };
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
pub(super) struct LogsQuery {
    task: Option<String>,
    attempt: Option<u32>,
    after: Option<u64>,
    limit: Option<usize>,
}

pub(super) async fn logs(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Path(run): Path<String>,
    Query(query): Query<LogsQuery>,
) -> Response {
    if let Err(denied) = auth::caller(&server, &headers) {
        return *denied;
    }
    let run = match resolve(&server, &run, query.attempt) {
        Ok(id) => id,
        Err(answer) => return *answer,
    };
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
pub(super) struct CancelRequest {
    mode: Option<String>,
}

pub(super) async fn cancel(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Path(run): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(denied) = auth::caller(&server, &headers) {
        return *denied;
    }
    let request: CancelRequest = match optional_body(&body, "cancel request") {
        Ok(request) => request,
        Err(answer) => return *answer,
    };
    match cancel_run(&server, &run, request.mode.as_deref()) {
        Ok(cancelled) => {
            let mut answer = json!({ "name": cancelled.run, "mode": cancelled.mode.as_str() });
            if cancelled.forwarded {
                answer["forwarded"] = json!(true);
            }
            (StatusCode::ACCEPTED, Json(answer)).into_response()
        }
        Err(refused) => refused.into_response(),
    }
}

/// A cancel that was sent.
pub(super) struct Cancelled {
    /// The attempt cancelled.
    pub run: String,
    /// How.
    pub mode: CancelMode,
    /// Whether another server executes it (the cancel reaches it through the store).
    pub forwarded: bool,
}

/// Cancels the latest attempt of `run` in `mode` (a mode's name; default
/// `CancelledRunFinally`). Shared by the API and the dashboard.
pub(super) fn cancel_run(
    server: &Server,
    run: &str,
    mode: Option<&str>,
) -> Result<Cancelled, Refusal> {
    let mode = match mode.map(|name| (name, cancel_mode(name))) {
        None => CancelMode::CancelledRunFinally,
        Some((_, Some(mode))) => mode,
        Some((other, None)) => {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "bad-request",
                format!(
                    "mode `{other}` is not one of Cancelled, CancelledRunFinally, StoppedRunFinally"
                ),
            ));
        }
    };
    // The latest attempt (or the one named).
    let run = resolve_attempt(server, run, None)?;
    if let Some(handle) = lock(&server.active).get(&run) {
        handle.cancel(mode);
        return Ok(Cancelled {
            run,
            mode,
            forwarded: false,
        });
    }
    // Another server executes it (or will, once it takes it over): the cancel reaches the
    // owner through the store.
    let signal = RunSignal::Cancel(mode).to_stored(&run, Timestamp::now());
    match server.store.send_signal(&signal) {
        Ok(_) => Ok(Cancelled {
            run,
            mode,
            forwarded: true,
        }),
        Err(StoreError::RunFinished { .. }) => {
            let status = server
                .store
                .run(&run)
                .ok()
                .flatten()
                .and_then(|r| r.status)
                .unwrap_or_default();
            Err(Refusal::new(
                StatusCode::CONFLICT,
                "finished",
                format!("run `{run}` already finished ({status})"),
            ))
        }
        Err(StoreError::NotFound { .. }) => Err(Refusal::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no run named `{run}`"),
        )),
        Err(err) => Err(Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store",
            err.to_string(),
        )),
    }
}
