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
//! | `POST /api/v1/runs/{run}/rerun` | `{failedOnly?, params?}`: the next attempt of a finished run; `201`, `404`, `409` when it is not finished |
//! | `GET/POST /api/v1/schedules`, `DELETE /api/v1/schedules/{name}` | cron schedules (`schedules.rs`) |
//! | `/api/v1/tenants`, `/api/v1/tokens`, `/api/v1/audit` | tenants, tokens and the audit log (`admin.rs`) |
//!
//! Every route is scoped by the caller's token (`auth.rs`): its tenant's runs and
//! schedules only (another tenant's answer `404`), and what its role allows (else `403`).
//!
//! `{run}` is a run's name (its latest attempt) or an attempt's id (`deploy~2`); `GET`s
//! take `?attempt=N`. A submission may carry `scheduledAt` (RFC 3339): the run waits in
//! phase `Scheduled` until then.
//! | `GET /healthz` | `ok`, or `503` while shutting down |
//!
//! The web dashboard (`dashboard/`) is served under `/` beside the API.
//!
//! On start-up it takes over runs whose heartbeat is older than `--recover-timeout` (the
//! lease TTL; and keeps looking, see `cluster.rs`), and delivers statuses finished runs
//! still owe. On SIGTERM or Ctrl-C it stops taking work, gives running tasks
//! `--shutdown-grace` to finish, and leaves the rest in the store for the next engine (its
//! lease released, so no wait).
//!
//! Several servers may share one PostgreSQL store (`--db postgres://...`): each executes
//! the runs submitted to it; abandoned runs are claimed in batches by whichever live
//! server sweeps first; a cancel sent to any server reaches the owner through the store.

mod cluster;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::task::JoinSet;
use weft_engine::runs::{
    CancelHandle, HttpGrants, LiveRun, RunEnd, RunService, SnapshotRequest, SubmissionPolicy,
    cancel_channel,
};
use weft_store::BatchingStore;

mod admin;
mod auth;
mod config;
mod dashboard;
mod metrics;
mod reruns;
mod run_api;
mod schedules;
mod waits;

use crate::cli::ServeArgs;
use crate::identities::Identities;
use crate::view::{self, Display};
use crate::{Failure, default_data_dir, spec_flags};

/// The server's shared state.
struct Server {
    service: RunService,
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
    /// What every submission gets and may use: the operator's HTTP rules (reporters
    /// get only `--report-allow-http`), `--submit-secrets`, the report timeout.
    defaults: SubmissionDefaults,
    /// Who callers are (`--identities`): their tokens and groups.
    identities: Identities,
    /// What `GET /metrics` reports.
    metrics: Arc<metrics::Metrics>,
    /// Where runs' spans go (`--otlp-endpoint`), if anywhere.
    traces: Option<crate::traces::Traces>,
    /// The web dashboard's sessions and live wake-ups.
    dashboard: dashboard::Dashboard,
    /// The key tenants' secrets are sealed with (`--secrets-key-file`); `None`: off.
    secrets_keys: Option<crate::tenancy::secrets::SecretsKeys>,
}

/// What the operator's flags give every submission.
struct SubmissionDefaults {
    http: HttpGrants,
    policy: SubmissionPolicy,
    report_timeout: Duration,
    /// Where snapshots go when a pipeline asks for them (`--workspace-snapshots`).
    snapshots: SnapshotRequest,
    /// `--max-matrix-combinations`.
    max_matrix_combinations: usize,
}

/// Carries out `weft serve`.
pub async fn serve(mut args: ServeArgs) -> Result<u8, Failure> {
    let config = match &args.config_file {
        Some(path) => {
            let config = config::load(path)?;
            let explicit = std::mem::take(&mut args.explicit);
            config.apply(&mut args, &explicit);
            Some(config)
        }
        None => None,
    };
    // An empty token would let every caller in: it is no token.
    args.api_token = args.api_token.take().filter(|t| !t.trim().is_empty());
    let recover_timeout = spec_flags::duration("recover-timeout", Some(&args.recover_timeout))?
        .unwrap_or(weft_store::DEFAULT_RECOVERY_TIMEOUT);
    let grace = spec_flags::duration("shutdown-grace", Some(&args.shutdown_grace))?
        .unwrap_or(Duration::from_secs(30));
    // Parsed once here: every submission gets these.
    let mut http = spec_flags::http_rules(&args.allow_http)?;
    http.reporters = Some(spec_flags::plain_rules(
        "report-allow-http",
        &args.report_allow_http,
    )?);
    let defaults = SubmissionDefaults {
        max_matrix_combinations: args.max_matrix_combinations,
        http,
        policy: SubmissionPolicy {
            secrets: args
                .submit_secrets
                .iter()
                .map(|name| name.trim().to_string())
                .filter(|name| !name.is_empty())
                .collect(),
        },
        report_timeout: spec_flags::duration("report-timeout", Some(&args.report_timeout))?
            .unwrap_or(weft_engine::runs::spec::DEFAULT_REPORT_TIMEOUT),
        snapshots: snapshot_defaults(args.workspace_snapshots.as_deref())?,
    };
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    let identities = Identities::load(args.identities.as_deref(), &data_dir)?;
    let location = crate::store::store_location(args.db.as_deref(), Some(&data_dir))?;
    // A batch that cannot reach the database is retried while the lease may be valid.
    let store = crate::store::open_store_with(&location, recover_timeout)?;
    if let Some(config) = &config {
        config.ensure_tenants(store.as_ref())?;
    }
    let opened = store.clone();
    // Submissions pull `oci://` plugins only from the registries the operator names.
    args.plugins.registry.allowed = Some(
        args.allow_registries
            .iter()
            .map(|host| host.trim().to_string())
            .filter(|host| !host.is_empty())
            .collect(),
    );
    let secrets_keys = crate::tenancy::secrets::SecretsKeys::load(
        args.secrets_key.key_file.as_deref(),
        &args.secrets_key.old_key_files,
    )
    .map_err(Failure::invalid)?;
    let tenant_secrets = secrets_keys.clone().map(|keys| {
        Arc::new(crate::tenancy::secrets::StoredSecrets {
            store: store.clone(),
            keys,
        }) as Arc<dyn weft_engine::runs::TenantSecrets>
    });
    let service = crate::service_with(
        &args.plugins,
        weft_runtime::DEFAULT_POOL_INSTANCES,
        data_dir.clone(),
        &args.secrets,
        Box::new(move || Ok(opened.clone())),
        crate::Leases {
            ttl: recover_timeout,
            take_over_here: true,
        },
        crate::ServerParts {
            tenant_secrets,
            tenant_plugins: Some(Arc::new(crate::tenancy::plugins::StoredPlugins {
                store: store.clone(),
            })),
            task_slots: Some(weft_engine::fair::TaskSlots::new(task_slots(
                args.task_slots,
            ))),
        },
    )?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| Failure::environment(format!("cannot listen on {}: {e}", args.listen)))?;
    let address = listener
        .local_addr()
        .map_err(|e| Failure::environment(format!("cannot listen on {}: {e}", args.listen)))?;
    authentication_check(&args, &identities, address)?;
    let traces = crate::traces::Traces::configure(args.otlp_endpoint.as_deref())?;
    let metrics = metrics::Metrics::new();
    // From here on the store's commits, reads and leases, and every reporter delivery
    // attempt (leftovers and take-overs included), count in `GET /metrics`.
    store.set_timings(metrics.clone());
    service.observe_deliveries(metrics.clone());
    let mut signals = crate::Signals::install()?;
    let server = Arc::new(Server {
        service,
        store,
        args,
        data_dir,
        recover_timeout,
        active: Mutex::new(HashMap::new()),
        tasks: Mutex::new(JoinSet::new()),
        accepting: AtomicBool::new(true),
        defaults,
        identities,
        metrics,
        traces,
        dashboard: dashboard::Dashboard::default(),
        secrets_keys,
    });

    // Recover what a stopped engine left, then keep looking (another engine may stop);
    // deliver signals other servers forward to the runs executing here.
    cluster::recover_stale(&server).await;
    let sweeper = tokio::spawn(cluster::sweep(server.clone()));
    let signals_loop = tokio::spawn(cluster::signals(server.clone()));
    let ticks = tokio::spawn(schedules::ticks(server.clone()));

    let app = axum::Router::new()
        .route("/healthz", get(health))
        .route("/metrics", get(metrics::scrape))
        .route("/api/v1/runs", post(run_api::submit).get(run_api::list))
        .route("/api/v1/runs/{run}", get(run_api::show))
        .route("/api/v1/runs/{run}/logs", get(run_api::logs))
        .route("/api/v1/runs/{run}/cancel", post(run_api::cancel))
        .route("/api/v1/runs/{run}/rerun", post(reruns::rerun))
        .route(
            "/api/v1/schedules",
            get(schedules::list).post(schedules::add),
        )
        .route(
            "/api/v1/schedules/{name}",
            axum::routing::delete(schedules::remove),
        )
        .route("/api/v1/runs/{run}/approvals", get(waits::list))
        .route("/api/v1/runs/{run}/approvals/{task}", post(waits::approve))
        .route(
            "/api/v1/runs/{run}/interventions/{task}",
            post(waits::intervene),
        )
        .route(
            "/api/v1/tenants",
            get(admin::tenants).post(admin::create_tenant),
        )
        .route(
            "/api/v1/tenants/{tenant}/tokens",
            post(admin::create_tenant_token),
        )
        .route(
            "/api/v1/tokens",
            get(admin::tokens).post(admin::create_token),
        )
        .route(
            "/api/v1/tokens/{id}",
            axum::routing::delete(admin::revoke_token),
        )
        .route("/api/v1/audit", get(admin::audit))
        .route(
            "/api/v1/plugins",
            get(admin::plugins).post(admin::upload_plugin).layer(
                axum::extract::DefaultBodyLimit::max(crate::tenancy::plugins::MAX_PLUGIN_BYTES + 1),
            ),
        )
        .route(
            "/api/v1/plugins/{name}",
            axum::routing::delete(admin::delete_plugin),
        )
        .route("/api/v1/secrets", get(admin::secrets))
        .route(
            "/api/v1/secrets/{name}",
            axum::routing::put(admin::put_secret).delete(admin::delete_secret),
        )
        .merge(dashboard::routes())
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
    signals_loop.abort();
    ticks.abort();
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
    if let Some(traces) = &server.traces {
        traces.shutdown();
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
fn authentication_check(
    args: &ServeArgs,
    identities: &Identities,
    address: std::net::SocketAddr,
) -> Result<(), Failure> {
    if args.api_token.is_some() || identities.has_tokens() {
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

/// Executes `run` in the background until it ends or the server lets go of it.
fn spawn_run(server: &Arc<Server>, run: LiveRun) {
    let (handle, control) = cancel_channel();
    let name = run.name().to_string();
    lock(&server.active).insert(name.clone(), handle);
    let mut tasks = lock(&server.tasks);
    // Finished runs' entries are dropped here, so a long-lived server does not pile them up.
    while tasks.try_join_next().is_some() {}
    let shared = server.clone();
    tasks.spawn(async move {
        let server = shared;
        let (view, _) = view::observer(run.plan(), run.name(), Display::Silent, run.run_dir());
        let mut observers: Vec<Arc<dyn weft_engine::runs::RunObserver>> = vec![
            server
                .metrics
                .observer(weft_store::tenants::unqualify(&name).0),
        ];
        if let Some(traces) = &server.traces {
            observers.push(traces.observer(run.name()));
        }
        // Wakes the dashboard's live streams of this run.
        observers.push(server.dashboard.hub.observer(run.name()));
        observers.push(view);
        let observer: Arc<dyn weft_engine::runs::RunObserver> =
            Arc::new(weft_engine::runs::Fanout(observers));
        let finished = run.execute(observer, control, true).await;
        lock(&server.active).remove(&name);
        view::undelivered(&finished.undelivered, finished.report_timeout);
        match finished.end {
            RunEnd::Finished(summary) => {
                tracing::info!(run = %name, status = summary.status.as_str(), "run finished");
            }
            RunEnd::Suspended => eprintln!("weft serve: run {name} left to recovery"),
        }
    });
}

/// The answer while the server shuts down: it starts no new run (`503`).
fn shutting_down(server: &Server) -> Option<Response> {
    not_accepting(server).map(IntoResponse::into_response)
}

/// As [`shutting_down`], not yet rendered.
fn not_accepting(server: &Server) -> Option<Refusal> {
    (!server.accepting.load(Ordering::SeqCst)).then(|| {
        Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting-down",
            "the server is shutting down; ask another one",
        )
    })
}

/// A request body as `T` (`what` names it in the `400`).
fn body_as<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, Box<Response>> {
    serde_json::from_slice(body).map_err(|err| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "bad-request",
            format!("the request body is not a valid {what}: {err}"),
        ))
    })
}

/// As [`body_as`], an empty body being `T`'s default.
fn optional_body<T: serde::de::DeserializeOwned + Default>(
    body: &[u8],
    what: &str,
) -> Result<T, Box<Response>> {
    if body.is_empty() {
        Ok(T::default())
    } else {
        body_as(body, what)
    }
}

/// Why a request was refused, before it is rendered: the JSON API answers it as JSON
/// ([`IntoResponse`]), the dashboard as a page, so both say the same thing.
#[derive(Debug)]
pub(crate) struct Refusal {
    /// The HTTP status.
    pub status: StatusCode,
    /// The API's error code (`not-found`, `forbidden`, ...).
    pub code: &'static str,
    /// For people.
    pub message: String,
    /// The whole JSON document, when it says more than code and message (diagnostics).
    pub document: Option<serde_json::Value>,
}

impl Refusal {
    /// A refusal with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            code,
            message: message.into(),
            document: None,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self.document {
            Some(document) => (self.status, Json(document)).into_response(),
            None => error(self.status, self.code, self.message),
        }
    }
}

/// Appends an action on the stored run `run` to the audit log of the run's tenant (so its
/// admins see what the operator did too), as `caller`; a failure is logged, not answered
/// (the action it records already happened).
fn audit_run(
    server: &Server,
    caller: &auth::Caller,
    action: &str,
    run: &str,
    detail: serde_json::Value,
) {
    let (tenant, name) = weft_store::tenants::unqualify(run);
    let actor = if tenant == caller.tenant {
        caller.identity.clone()
    } else {
        format!("{}@{}", caller.identity, caller.tenant)
    };
    if let Err(err) =
        crate::tenancy::record(server.store.as_ref(), tenant, &actor, action, name, detail)
    {
        tracing::error!(action, run, error = %err, "cannot write the audit log");
    }
}

/// An API error: status, code and message as JSON.
fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "error": code, "message": message.into() })),
    )
        .into_response()
}

async fn health(State(server): State<Arc<Server>>) -> Response {
    if server.accepting.load(Ordering::SeqCst) {
        (StatusCode::OK, "ok").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response()
    }
}

/// `--workspace-snapshots TARGET`: where snapshots go; whether a run takes them is its
/// pipeline's choice (`spec.workspaceSnapshots`), unless the target is `off`.
fn snapshot_defaults(target: Option<&str>) -> Result<SnapshotRequest, Failure> {
    let mut request = spec_flags::snapshots(&crate::cli::SnapshotArgs {
        target: target.map(str::to_string),
        ..Default::default()
    })?;
    if request.enabled == Some(true) {
        request.enabled = None;
    }
    Ok(request)
}

/// How many task attempts the server runs at once (`--task-slots`): by default as many as
/// one run may (4 per CPU, `default_parallelism`): tasks that wait (a timer, an HTTP
/// answer) hold a slot too, and a server of one CPU's worth of slots would run a single
/// run's waiting tasks one at a time.
fn task_slots(flag: Option<u32>) -> usize {
    flag.map_or_else(weft_engine::default_parallelism, |n| {
        usize::try_from(n).unwrap_or(usize::MAX)
    })
    .max(1)
}
