//! `GET /metrics`: the server's runs and tasks in Prometheus' text format
//! (prometheus-client), fed by an observer on every run this server executes (task
//! instantiations included), by the service's reporter deliveries ([`DeliveryObserver`])
//! and by the run store's timings ([`StoreTimings`]). Labels are fixed vocabularies
//! (outcomes, statuses, wait kinds, store operations, forges), never run names, params or
//! anything a plugin wrote, so a scrape reveals counts, not content; the route takes the
//! same bearer token as the API.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use weft_core::TaskPhase;
use weft_engine::runs::{DeliveryObserver, DeliveryResult, Held, RunEvent, RunObserver};
use weft_store::{StoreOp, StoreTimings};

use super::Server;

/// One label value from a fixed vocabulary.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Status {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WaitKind {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Op {
    op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Delivery {
    forge: &'static str,
    result: &'static str,
}

/// The forges of the reporter plugins weft ships (`reporter-<forge>`): the `forge` label.
const FORGES: [&str; 5] = ["gitlab", "github", "gitea", "bitbucket", "webhook"];

/// The `forge` label of a reporter plugin as configured, which is user input (a name, a
/// file, an `oci://` reference): a forge weft ships a reporter for, else `other`.
fn forge_of(plugin: &str) -> &'static str {
    // The last path segment, without a tag, digest or `.wasm`.
    let name = plugin.rsplit(['/', '\\']).next().unwrap_or(plugin);
    let name = name.split([':', '@']).next().unwrap_or(name);
    let name = name.strip_suffix(".wasm").unwrap_or(name);
    let name = name.strip_prefix("reporter-").unwrap_or(name);
    FORGES
        .into_iter()
        .find(|forge| forge.eq_ignore_ascii_case(name))
        .unwrap_or("other")
}

/// Store latencies span tens of microseconds (a cached read) to seconds (a commit behind
/// a busy PostgreSQL): 50 µs to 13 s.
fn store_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 4.0, 10))
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    runs_started: Counter,
    runs_finished: Family<Status, Counter>,
    runs_active: Gauge,
    runs_held: Family<WaitKind, Gauge>,
    task_attempts: Family<Outcome, Counter>,
    task_duration: Histogram,
    tasks_running: Gauge,
    waits_open: Family<WaitKind, Gauge>,
    log_lines: Counter,
    /// One histogram per [`StoreOp`] (in [`StoreOp::ALL`]'s order), taken out of their
    /// family once so that timing an operation looks nothing up.
    store_ops: [Histogram; StoreOp::ALL.len()],
    reporter_deliveries: Family<Delivery, Counter>,
    task_instantiation: Histogram,
    tenant_runs_active: Family<TenantLabel, Gauge>,
    tenant_tasks_running: Family<TenantLabel, Gauge>,
    tenant_quota: Family<QuotaLabel, Gauge>,
    tenant_usage: Family<QuotaLabel, Gauge>,
}

/// A tenant (operator-made names: DNS labels, never anything a submitter wrote).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantLabel {
    tenant: String,
}

/// One of a tenant's quotas.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QuotaLabel {
    tenant: String,
    quota: &'static str,
}

impl Metrics {
    /// Every metric, registered.
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("weft");
        let runs_started = Counter::default();
        registry.register(
            "runs_started",
            "Runs this server began executing (submitted, re-run, recovered or fired by a schedule)",
            runs_started.clone(),
        );
        let runs_finished = Family::<Status, Counter>::default();
        registry.register(
            "runs_finished",
            "Runs that ended here, by final status",
            runs_finished.clone(),
        );
        let runs_active = Gauge::default();
        registry.register(
            "runs_active",
            "Runs this server executes now (waiting ones included)",
            runs_active.clone(),
        );
        let runs_held = Family::<WaitKind, Gauge>::default();
        registry.register(
            "runs_held",
            "Runs waiting before their first task: `queued` for a concurrency slot (the queue depth), `scheduled` for their time",
            runs_held.clone(),
        );
        let task_attempts = Family::<Outcome, Counter>::default();
        registry.register(
            "task_attempts",
            "Tasks that ended, by outcome (the last attempt of each; one retried is not counted)",
            task_attempts.clone(),
        );
        let task_duration = Histogram::new(exponential_buckets(0.000_1, 4.0, 12));
        registry.register(
            "task_duration_seconds",
            "How long tasks' last attempts ran",
            task_duration.clone(),
        );
        let tasks_running = Gauge::default();
        registry.register(
            "tasks_running",
            "Task attempts running now",
            tasks_running.clone(),
        );
        let waits_open = Family::<WaitKind, Gauge>::default();
        registry.register(
            "waits_open",
            "Tasks waiting now, by kind (approval, intervention, gate)",
            waits_open.clone(),
        );
        let log_lines = Counter::default();
        registry.register("log_lines", "Log lines tasks wrote", log_lines.clone());
        let store_family =
            Family::<Op, Histogram, fn() -> Histogram>::new_with_constructor(store_histogram);
        registry.register(
            "store_operation_duration_seconds",
            "How long run store operations took, by op: `commit` (one transaction of journal writes), `read` (the wait for queued writes included), `claim` (taking a run's lease), `heartbeat`",
            store_family.clone(),
        );
        let store_ops =
            StoreOp::ALL.map(|op| store_family.get_or_create(&Op { op: op.as_str() }).clone());
        let reporter_deliveries = Family::<Delivery, Counter>::default();
        registry.register(
            "reporter_deliveries",
            "Attempts to deliver a status to a forge, by forge and result: `delivered`, `retried` (failed, tried again after a backoff), `failed` (given up)",
            reporter_deliveries.clone(),
        );
        // Instantiating a component takes from tens of microseconds (pooled, small) to
        // tenths of seconds: 50 µs to 13 s.
        let task_instantiation = Histogram::new(exponential_buckets(0.000_05, 4.0, 10));
        registry.register(
            "task_instantiation_seconds",
            "How long instantiating tasks' components took (each attempt; each step of a task of steps)",
            task_instantiation.clone(),
        );
        let tenant_runs_active = Family::<TenantLabel, Gauge>::default();
        registry.register(
            "tenant_runs_active",
            "Runs this server executes now, by tenant (against its concurrent-runs quota)",
            tenant_runs_active.clone(),
        );
        let tenant_tasks_running = Family::<TenantLabel, Gauge>::default();
        registry.register(
            "tenant_tasks_running",
            "Task attempts running now, by tenant",
            tenant_tasks_running.clone(),
        );
        let tenant_usage = Family::<QuotaLabel, Gauge>::default();
        registry.register(
            "tenant_usage",
            "Each tenant's use of what its quotas bound, as the store has it at the scrape: cpu-seconds-per-hour (guest CPU seconds in the last hour), stored-mib (MiB of plugins, logs and snapshots)",
            tenant_usage.clone(),
        );
        let tenant_quota = Family::<QuotaLabel, Gauge>::default();
        registry.register(
            "tenant_quota",
            "Each tenant's quotas as the operator set them (concurrent-runs, queued-runs, memory-mib)",
            tenant_quota.clone(),
        );
        Arc::new(Metrics {
            registry,
            runs_started,
            runs_finished,
            runs_active,
            runs_held,
            task_attempts,
            task_duration,
            tasks_running,
            waits_open,
            log_lines,
            store_ops,
            reporter_deliveries,
            task_instantiation,
            tenant_runs_active,
            tenant_tasks_running,
            tenant_quota,
            tenant_usage,
        })
    }

    /// The observer of one run of `tenant`: counts what it does, and undoes its gauges
    /// when it ends.
    pub fn observer(self: &Arc<Metrics>, tenant: &str) -> Arc<RunMetrics> {
        self.runs_started.inc();
        self.runs_active.inc();
        let tenant = TenantLabel {
            tenant: tenant.to_string(),
        };
        self.tenant_runs_active.get_or_create(&tenant).inc();
        Arc::new(RunMetrics {
            metrics: self.clone(),
            tenant,
            state: Mutex::new(RunGauges::default()),
        })
    }

    /// Sets each tenant's use of what its quotas bound: guest CPU seconds in the last hour
    /// and MiB kept, read from the store.
    pub fn usage(&self, store: &dyn weft_store::TenantStore, tenants: &[weft_store::TenantRecord]) {
        let minute = weft_store::Timestamp::now().millis() / 60_000;
        for tenant in tenants {
            let label = |quota| QuotaLabel {
                tenant: tenant.name.clone(),
                quota,
            };
            if let Ok(ms) = store.cpu_since(&tenant.name, minute - 59) {
                self.tenant_usage
                    .get_or_create(&label("cpu-seconds-per-hour"))
                    .set(i64::try_from(ms / 1000).unwrap_or(i64::MAX));
            }
            if let Ok(bytes) = store.stored_bytes(&tenant.name) {
                self.tenant_usage
                    .get_or_create(&label("stored-mib"))
                    .set(i64::try_from(bytes.div_ceil(1 << 20)).unwrap_or(i64::MAX));
            }
        }
    }

    /// Sets each tenant's quotas (what its usage is measured against) from their
    /// settings, as the store has them now.
    pub fn quotas(&self, tenants: &[weft_store::TenantRecord]) {
        for tenant in tenants {
            let Ok(settings) =
                crate::tenancy::settings::TenantSettings::from_stored(&tenant.settings_json)
            else {
                continue;
            };
            for (quota, value) in [
                ("concurrent-runs", settings.concurrent_runs.map(u64::from)),
                ("concurrent-tasks", settings.concurrent_tasks.map(u64::from)),
                ("queued-runs", settings.queued_runs.map(u64::from)),
                ("memory-mib", settings.memory_mib),
                ("stored-mib", settings.stored_mib),
                ("log-kib-per-run", settings.log_kib_per_run),
                ("cpu-seconds-per-hour", settings.cpu_seconds_per_hour),
            ] {
                let label = QuotaLabel {
                    tenant: tenant.name.clone(),
                    quota,
                };
                match value {
                    Some(value) => {
                        self.tenant_quota
                            .get_or_create(&label)
                            .set(i64::try_from(value).unwrap_or(i64::MAX));
                    }
                    None => {
                        self.tenant_quota.remove(&label);
                    }
                }
            }
        }
    }

    fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

impl StoreTimings for Metrics {
    fn observe(&self, op: StoreOp, elapsed: Duration) {
        let index = StoreOp::ALL.iter().position(|o| *o == op);
        if let Some(histogram) = index.and_then(|i| self.store_ops.get(i)) {
            histogram.observe(elapsed.as_secs_f64());
        }
    }
}

impl DeliveryObserver for Metrics {
    fn delivery(&self, plugin: &str, result: DeliveryResult) {
        self.reporter_deliveries
            .get_or_create(&Delivery {
                forge: forge_of(plugin),
                result: result.as_str(),
            })
            .inc();
    }
}

/// What one run holds of the gauges, so they come back down however it ends.
#[derive(Default)]
struct RunGauges {
    held: Option<&'static str>,
    running: HashMap<String, ()>,
    waiting: HashMap<String, &'static str>,
    finished: bool,
}

/// Feeds [`Metrics`] from one run's events.
pub struct RunMetrics {
    metrics: Arc<Metrics>,
    tenant: TenantLabel,
    state: Mutex<RunGauges>,
}

impl RunMetrics {
    fn release(&self, state: &mut RunGauges) {
        if let Some(kind) = state.held.take() {
            self.metrics
                .runs_held
                .get_or_create(&kind_label(kind))
                .dec();
        }
        for _ in state.running.drain() {
            self.metrics.tasks_running.dec();
            self.metrics
                .tenant_tasks_running
                .get_or_create(&self.tenant)
                .dec();
        }
        for (_, kind) in state.waiting.drain() {
            self.metrics
                .waits_open
                .get_or_create(&kind_label(kind))
                .dec();
        }
    }
}

fn kind_label(kind: &str) -> WaitKind {
    WaitKind {
        kind: kind.to_string(),
    }
}

impl RunObserver for RunMetrics {
    fn event(&self, event: RunEvent<'_>) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let metrics = &self.metrics;
        match event {
            RunEvent::Held(held) => {
                let kind = match held {
                    Held::Scheduled { .. } => "scheduled",
                    Held::Queued { .. } => "queued",
                };
                if state.held != Some(kind) {
                    if let Some(previous) = state.held.replace(kind) {
                        metrics.runs_held.get_or_create(&kind_label(previous)).dec();
                    }
                    metrics.runs_held.get_or_create(&kind_label(kind)).inc();
                }
            }
            RunEvent::Transition {
                task,
                phase,
                outcome,
                elapsed,
                ..
            } => {
                if let Some(kind) = state.held.take() {
                    metrics.runs_held.get_or_create(&kind_label(kind)).dec();
                }
                if let Some(kind) = state.waiting.remove(task) {
                    metrics.waits_open.get_or_create(&kind_label(kind)).dec();
                }
                let was_running = state.running.remove(task).is_some();
                if was_running {
                    metrics.tasks_running.dec();
                    metrics
                        .tenant_tasks_running
                        .get_or_create(&self.tenant)
                        .dec();
                }
                match phase {
                    TaskPhase::Running => {
                        state.running.insert(task.to_string(), ());
                        metrics.tasks_running.inc();
                        metrics
                            .tenant_tasks_running
                            .get_or_create(&self.tenant)
                            .inc();
                    }
                    TaskPhase::Terminal => {
                        let outcome = outcome.map_or("Unknown", |o| o.as_str());
                        metrics
                            .task_attempts
                            .get_or_create(&Outcome {
                                outcome: outcome.to_string(),
                            })
                            .inc();
                        if let Some(elapsed) = elapsed {
                            metrics.task_duration.observe(elapsed.as_secs_f64());
                        }
                    }
                    _ => {}
                }
            }
            RunEvent::Waiting { task, wait, .. } => {
                let kind = wait.kind.as_str();
                if !state.waiting.contains_key(task) {
                    state.waiting.insert(task.to_string(), kind);
                    metrics.waits_open.get_or_create(&kind_label(kind)).inc();
                }
            }
            RunEvent::Log { .. } => {
                metrics.log_lines.inc();
            }
            RunEvent::Instantiated { elapsed, .. } => {
                metrics.task_instantiation.observe(elapsed.as_secs_f64());
            }
            RunEvent::FinallyStarted => {}
            RunEvent::Finished(summary) => {
                if !state.finished {
                    state.finished = true;
                    self.release(&mut state);
                    metrics.runs_active.dec();
                    metrics.tenant_runs_active.get_or_create(&self.tenant).dec();
                    metrics
                        .runs_finished
                        .get_or_create(&Status {
                            status: summary.status.as_str().to_string(),
                        })
                        .inc();
                }
            }
        }
    }
}

impl Drop for RunMetrics {
    /// A run let go of (shutdown, suspension) gives its gauges back too.
    fn drop(&mut self) {
        let mut state = std::mem::take(
            self.state
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if !state.finished {
            self.release(&mut state);
            self.metrics.runs_active.dec();
            self.metrics
                .tenant_runs_active
                .get_or_create(&self.tenant)
                .dec();
        }
    }
}

/// `GET /metrics`.
pub(super) async fn scrape(State(server): State<Arc<Server>>, headers: HeaderMap) -> Response {
    // The server's counts span tenants: the operator's tenant reads them.
    match super::auth::caller(&server, &headers) {
        Ok(caller) if caller.operator || caller.tenant == weft_store::DEFAULT_TENANT => {}
        Ok(caller) => {
            return super::error(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "the server's metrics span tenants; {} of tenant {} may not read them",
                    caller.identity, caller.tenant
                ),
            );
        }
        Err(refused) => return *refused,
    }
    // Quotas change with the configuration, usage with the runs: read them as they are.
    let shared = server.clone();
    let _ = tokio::task::spawn_blocking(move || {
        if let Ok(tenants) = weft_store::TenantStore::tenants(shared.store.as_ref()) {
            shared.metrics.quotas(&tenants);
            shared.metrics.usage(shared.store.as_ref(), &tenants);
        }
    })
    .await;
    match server.metrics.encode() {
        Ok(text) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reporter_plugin_names_a_known_forge_or_other() {
        for (plugin, forge) in [
            ("reporter-gitlab", "gitlab"),
            ("reporter-GitHub", "github"),
            ("oci://ghcr.io/acme/reporter-gitea:1.2", "gitea"),
            (
                "oci://registry:5000/x/reporter-bitbucket@sha256:abc",
                "bitbucket",
            ),
            ("/opt/plugins/reporter-webhook.wasm", "webhook"),
            ("reporter-custom", "other"),
            ("https://evil.example/$(params.x)", "other"),
            ("", "other"),
        ] {
            assert_eq!(forge_of(plugin), forge, "{plugin}");
        }
    }
}
