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

use weft_store::{Role, TenantStore};

use crate::tenancy::settings::TenantSettings;

use super::auth::Caller;
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
    /// Narrows the tenant's egress list for this run: each entry must be one of its
    /// rules (a run never widens what its tenant may reach).
    #[serde(default)]
    egress: Option<Vec<String>>,
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
            egress: None,
        }
    }

    /// Replaces its params.
    pub(super) fn set_params(&mut self, params: BTreeMap<String, ParamValue>) {
        self.params = params;
    }
}

/// A submission with its spec made (`run_spec`), submitted and started here as
/// `caller`'s, in its tenant: the run's name (as the caller knows it), or why not. The one
/// path of `POST /api/v1/runs` and the dashboard's form.
pub(super) async fn submit_request(
    server: &Arc<Server>,
    caller: &Caller,
    request: SubmitRequest,
) -> Result<String, Refusal> {
    if !caller.may(Role::Submitter) {
        return Err(caller.forbidden(Role::Submitter, "submit runs"));
    }
    if let Some(refused) = super::not_accepting(server) {
        return Err(refused);
    }
    let egress = request.egress.clone();
    let mut spec = run_spec(server, request)
        .map_err(|err| Refusal::new(StatusCode::BAD_REQUEST, "bad-request", err))?;
    // The tenant's settings are read once per submission.
    let settings = for_tenant(server, caller, &mut spec)?;
    if let Some(narrowed) = egress {
        narrow_egress(server, caller, &settings, &mut spec, &narrowed)?;
    }
    refuse_over_quotas(server, caller, &settings)?;
    start_submitted(server, server.service.submit(spec).await).map(|name| caller.show(&name))
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
    let caller = match auth::require(&server, &headers, Role::Submitter, "submit runs") {
        Ok(caller) => caller,
        Err(denied) => return *denied,
    };
    if let Some(answer) = shutting_down(&server) {
        return answer;
    }
    let request: SubmitRequest = match body_as(&body, "submission") {
        Ok(request) => request,
        Err(answer) => return *answer,
    };
    match submit_request(&server, &caller, request).await {
        Ok(name) => created(&name),
        Err(refused) => refused.into_response(),
    }
}

/// The settings of `tenant`.
fn tenant_settings(server: &Server, tenant: &str) -> Result<TenantSettings, Refusal> {
    let internal =
        |message: String| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "store", message);
    let stored = server
        .store
        .tenants()
        .map_err(|e| internal(e.to_string()))?
        .into_iter()
        .find(|t| t.name == tenant)
        .map(|t| t.settings_json)
        .unwrap_or_else(|| "{}".into());
    TenantSettings::from_stored(&stored).map_err(internal)
}

/// A spec made for `caller`'s tenant: owned by it, held to its quotas, its tasks reaching
/// only the tenant's egress list (another tenant's tasks: nothing unless the operator set
/// one; reporters keep the operator's `--report-allow-http`). The one rule of runs and
/// schedules; the tenant's settings, for the checks that follow.
pub(super) fn for_tenant(
    server: &Server,
    caller: &Caller,
    spec: &mut RunSpec,
) -> Result<TenantSettings, Refusal> {
    spec.tenant = Some(caller.tenant.clone());
    let settings = tenant_settings(server, &caller.tenant)?;
    spec.quota = settings.quota();
    if caller.tenant != weft_store::DEFAULT_TENANT || settings.egress.is_some() {
        let mut http = spec_flags::http_rules(settings.egress.as_deref().unwrap_or_default())
            .map_err(|f| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "settings", f.message))?;
        http.reporters = server.defaults.http.reporters.clone();
        spec.http = http;
    }
    Ok(settings)
}

/// A run's own egress list: a subset of what its tenant may reach (the operator's
/// `--allow-http` rules for `default` without an egress list), else the `400` naming the
/// rule it may not have.
fn narrow_egress(
    server: &Server,
    caller: &Caller,
    settings: &TenantSettings,
    spec: &mut RunSpec,
    narrowed: &[String],
) -> Result<(), Refusal> {
    let allowed: Vec<String> = match &settings.egress {
        Some(rules) => rules.clone(),
        None if caller.tenant == weft_store::DEFAULT_TENANT => server.args.allow_http.clone(),
        None => Vec::new(),
    };
    if let Some(wider) = narrowed.iter().find(|rule| !allowed.contains(rule)) {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            format!(
                "egress `{wider}` is not one of tenant {}'s rules: a run narrows its tenant's egress, never widens it",
                caller.tenant
            ),
        ));
    }
    let mut http = spec_flags::http_rules(narrowed)
        .map_err(|f| Refusal::new(StatusCode::BAD_REQUEST, "bad-request", f.message))?;
    http.reporters = server.defaults.http.reporters.clone();
    spec.http = http;
    Ok(())
}

/// The `429` when `caller`'s tenant already has as many runs waiting as its `queued-runs`
/// quota allows, or keeps as much as its `stored-mib` does: nothing is created, and the
/// message names the quota.
fn refuse_over_quotas(
    server: &Server,
    caller: &Caller,
    settings: &TenantSettings,
) -> Result<(), Refusal> {
    if let Some(mib) = settings.stored_mib {
        let kept = server
            .store
            .stored_bytes(&caller.tenant)
            .map_err(|e| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "store", e.to_string()))?;
        if kept >= mib.saturating_mul(1 << 20) {
            return Err(Refusal::new(
                StatusCode::TOO_MANY_REQUESTS,
                "quota",
                format!(
                    "tenant {}'s quota stored-mib ({mib}) is reached: it keeps {} MiB of plugins, logs and snapshots",
                    caller.tenant,
                    kept.div_ceil(1 << 20)
                ),
            ));
        }
    }
    let Some(max) = settings.queued_runs else {
        return Ok(());
    };
    let runs = server
        .store
        .list_runs_of(Some(&caller.tenant), 10_000)
        .map_err(|e| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "store", e.to_string()))?;
    let waiting = runs
        .iter()
        .filter(|r| r.finished_at.is_none() && r.phase == weft_store::RunPhase::Queued)
        .count();
    if waiting >= max as usize {
        return Err(Refusal::new(
            StatusCode::TOO_MANY_REQUESTS,
            "quota",
            format!(
                "tenant {}'s quota queued-runs ({max}) is reached: {waiting} runs wait already; submit again once one starts",
                caller.tenant
            ),
        ));
    }
    Ok(())
}

/// `201` with the new run's name (as its submitter knows it) and links.
pub(super) fn created(name: &str) -> Response {
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

/// The stored id of `caller`'s run `run`'s attempt `attempt` (default: the latest), or the
/// `404` (or store error) to answer with.
pub(super) fn resolve(
    server: &Server,
    caller: &Caller,
    run: &str,
    attempt: Option<u32>,
) -> Result<String, Box<Response>> {
    resolve_attempt(server, caller, run, attempt)
        .map_err(|refused| Box::new(refused.into_response()))
}

/// As [`resolve`], the refusal not yet rendered (the dashboard renders it as a page). A
/// name in another tenant is not found, as a name that exists nowhere.
pub(super) fn resolve_attempt(
    server: &Server,
    caller: &Caller,
    run: &str,
    attempt: Option<u32>,
) -> Result<String, Refusal> {
    let not_found = || {
        Refusal::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no run named `{run}`"),
        )
    };
    let stored = caller.qualify(run).ok_or_else(not_found)?;
    match weft_engine::runs::attempt_id(server.store.as_ref(), &stored, attempt) {
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

/// A listed run as `caller` knows it: its names without the tenant.
pub(super) fn as_seen_by(
    caller: &Caller,
    run: &weft_store::RunListItem,
) -> weft_store::RunListItem {
    weft_store::RunListItem {
        id: caller.show(&run.id),
        name: caller.show(&run.name),
        ..run.clone()
    }
}

/// A run document as `caller` knows it: the run's names (its id, name and attempts)
/// without the tenant. Only those fields: params and results are the run's own data.
pub(super) fn present(caller: &Caller, document: &mut Value) {
    for key in ["id", "name"] {
        if let Some(stored) = document[key].as_str() {
            document[key] = json!(caller.show(stored));
        }
    }
    if let Some(attempts) = document["runAttempts"].as_array_mut() {
        for attempt in attempts {
            if let Some(stored) = attempt.as_str() {
                *attempt = json!(caller.show(stored));
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    limit: Option<usize>,
    /// The operator's choice of tenant (all when absent); anyone else's own.
    tenant: Option<String>,
}

pub(super) async fn list(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    let caller = match auth::caller(&server, &headers) {
        Ok(caller) => caller,
        Err(denied) => return *denied,
    };
    let tenant = match caller.listing(query.tenant.as_deref()) {
        Ok(tenant) => tenant,
        Err(refused) => return refused.into_response(),
    };
    match server
        .store
        .list_runs_of(tenant.as_deref(), query.limit.unwrap_or(50).min(1000))
    {
        Ok(found) => Json(Value::Array(
            found
                .iter()
                .map(|r| {
                    let held = runs::held(server.store.as_ref(), r);
                    runs::list_item(&as_seen_by(&caller, r), held)
                })
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
    let caller = match auth::caller(&server, &headers) {
        Ok(caller) => caller,
        Err(denied) => return *denied,
    };
    let run = match resolve(&server, &caller, &run, query.attempt) {
        Ok(id) => id,
        Err(answer) => return *answer,
    };
    match runs::run_document(server.store.as_ref(), &run) {
        Ok(Some(mut document)) => {
            document["executing"] = json!(lock(&server.active).contains_key(&run));
            present(&caller, &mut document);
            Json(document).into_response()
        }
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no run named `{}`", caller.show(&run)),
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
    let caller = match auth::caller(&server, &headers) {
        Ok(caller) => caller,
        Err(denied) => return *denied,
    };
    let run = match resolve(&server, &caller, &run, query.attempt) {
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
    let caller = match auth::caller(&server, &headers) {
        Ok(caller) => caller,
        Err(denied) => return *denied,
    };
    let request: CancelRequest = match optional_body(&body, "cancel request") {
        Ok(request) => request,
        Err(answer) => return *answer,
    };
    match cancel_run(&server, &caller, &run, request.mode.as_deref()) {
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
    /// The attempt cancelled (as the caller knows it).
    pub run: String,
    /// How.
    pub mode: CancelMode,
    /// Whether another server executes it (the cancel reaches it through the store).
    pub forwarded: bool,
}

/// Cancels the latest attempt of `caller`'s run `run` in `mode` (a mode's name; default
/// `CancelledRunFinally`), and audits it. Shared by the API and the dashboard.
pub(super) fn cancel_run(
    server: &Server,
    caller: &Caller,
    run: &str,
    mode: Option<&str>,
) -> Result<Cancelled, Refusal> {
    // Whether the run exists is no secret from a viewer of its tenant: found first.
    let stored = resolve_attempt(server, caller, run, None)?;
    if !caller.may(Role::Submitter) {
        return Err(caller.forbidden(Role::Submitter, "cancel runs"));
    }
    let cancelled = send_cancel(server, &stored, mode)?;
    super::audit_run(
        server,
        caller,
        "run.cancel",
        &cancelled.run,
        json!({"mode": cancelled.mode.as_str(), "forwarded": cancelled.forwarded}),
    );
    Ok(Cancelled {
        run: caller.show(&cancelled.run),
        ..cancelled
    })
}

/// Cancels the stored attempt `run` in `mode`: here when it executes here, else through
/// the store.
fn send_cancel(server: &Server, run: &str, mode: Option<&str>) -> Result<Cancelled, Refusal> {
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
    let run = run.to_string();
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
                format!(
                    "run `{}` already finished ({status})",
                    weft_store::tenants::unqualify(&run).1
                ),
            ))
        }
        Err(StoreError::NotFound { .. }) => Err(Refusal::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no run named `{}`", weft_store::tenants::unqualify(&run).1),
        )),
        Err(err) => Err(Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store",
            err.to_string(),
        )),
    }
}
