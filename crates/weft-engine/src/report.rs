//! Status reporting: reporter plugins configured in the pipeline (`spec.reporters`, weft
//! extension) or on the command line (`--report gitlab:url=...,project=...`), driven by a
//! [`Reporters`] observer that wraps the run's own observer.
//!
//! # What is reported
//!
//! Per (reporter, run, context): `pending` when the run is submitted
//! ([`Reporters::submitted`]), `running` when the first task starts, and the final status
//! with its reason, halting task and a message naming what failed when the run finishes.
//! With `tasks: true`, every task also gets its own context (`<context>/<task>`):
//! `running` when it starts and its outcome when it ends. The context is config
//! `context`, default `weft/<pipeline>`.
//!
//! # Delivery (the outbox converges the forge to the desired state)
//!
//! - One request in flight per context (one worker per context); states are sent in order,
//!   so a healthy forge sees pending -> running -> terminal.
//! - **Coalescing:** a new desired state of the same rank replaces a queued one (task
//!   updates); after a failed attempt, the retry sends only the newest desired state
//!   (a still-undelivered `pending` or `running` is superseded, the terminal state never
//!   is). A state older than what the forge shows is never sent.
//! - **Retries:** the host's backoff is the only retry policy for reporter deliveries:
//!   exponential from 500 ms, doubling, capped at 30 s, with jitter (the wait is drawn
//!   from [b/2, b]). A plugin's `retry-after(ms)` carries the wait the *server* named
//!   (`Retry-After`, a rate-limit reset) and is honoured (the wait is at least that, and
//!   may exceed the cap); `retry-after(0)`, the server named none, gets the backoff
//!   alone. Reporters compute no backoff of their own. After [`MAX_ATTEMPTS`] failed
//!   attempts a context gives up.
//! - `permanent` (or a host refusal such as a capability the reporter was not granted)
//!   stops the context at once; a delivered terminal state is never sent again.
//! - [`Reporters::finish`] waits for every context to settle, up to a bound; what was not
//!   delivered is returned so the caller can say so.
//!
//! # Secrets and egress
//!
//! A reporter is granted the secrets it declares (`describe().capabilities.secrets`) and
//! the one its config `token-secret` names, resolved like task secrets, and the run's HTTP
//! rules (`--allow-http`). Config holds secret names only; values never leave the token
//! request they authenticate (the runtime masks revealed values in the reporter's log).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use weft_core::{RunSummary, TaskPhase, describe};
use weft_runtime::plugin::reporter;
use weft_runtime::{
    HttpRule, LogLevel, LogLine, LogSink, PluginKind, SecretValue, TaskReport, TaskRequest,
};
use weft_store::{OutboxKey, Timestamp};

use crate::observe::{RunEvent, RunObserver};
use crate::outbox::{DesiredStatus, OutboxStore, ReportStatus, now};
use crate::registry::{PluginRegistry, ResolvedPlugin};

/// Failed attempts after which a context gives up.
pub const MAX_ATTEMPTS: u32 = 10;
/// First retry wait.
const BACKOFF_BASE: Duration = Duration::from_millis(500);
/// Longest retry wait the host chooses (a plugin's `retry-after` may ask for more).
const BACKOFF_CAP: Duration = Duration::from_secs(30);

/// The `--report` forge names and their plugins.
pub const FORGES: &[(&str, &str)] = &[
    ("gitlab", "reporter-gitlab"),
    ("github", "reporter-github"),
    ("gitea", "reporter-gitea"),
    ("bitbucket", "reporter-bitbucket"),
    ("webhook", "reporter-webhook"),
];

/// One configured reporter.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReporterSpec {
    /// Stable id within the run (`<plugin>#<index>`): the outbox's reporter key.
    pub id: String,
    /// The reporter plugin.
    pub plugin: String,
    /// Its config (`url`, `project`, `sha`, `token-secret`, ...): names, never values.
    pub config: Vec<(String, String)>,
    /// Whether tasks get their own contexts.
    pub tasks: bool,
}

impl ReporterSpec {
    /// Config value `key`, trimmed, non-empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.config
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The run-level context (config `context`, default `weft/<pipeline>`).
    pub fn context(&self, pipeline: &str) -> String {
        self.get("context")
            .map_or_else(|| format!("weft/{pipeline}"), str::to_string)
    }
}

/// Parses `spec.reporters` entries: `{plugin: NAME, config: {KEY: VALUE}, tasks: BOOL}`.
/// `params` replaces `$(params.NAME)` in config values.
pub fn specs_from_pipeline(
    entries: &[serde_json::Value],
    params: &BTreeMap<String, String>,
) -> Result<Vec<ReporterSpec>, String> {
    let mut specs = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let at = format!("spec.reporters[{index}]");
        let serde_json::Value::Object(fields) = entry else {
            return Err(format!("{at}: expected a mapping"));
        };
        for name in fields.keys() {
            if !matches!(name.as_str(), "plugin" | "config" | "tasks" | "name") {
                return Err(format!(
                    "{at}: unknown field `{name}` (expected plugin, config, tasks)"
                ));
            }
        }
        let plugin = match fields.get("plugin") {
            Some(serde_json::Value::String(p)) if !p.trim().is_empty() => p.trim().to_string(),
            _ => return Err(format!("{at}.plugin: a reporter plugin name is required")),
        };
        let tasks = match fields.get("tasks") {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::Bool(b)) => *b,
            Some(_) => return Err(format!("{at}.tasks: expected true or false")),
        };
        let mut config = Vec::new();
        match fields.get("config") {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::Object(map)) => {
                for (key, value) in map {
                    let value = match value {
                        serde_json::Value::String(s) => s.clone(),
                        serde_json::Value::Number(n) => n.to_string(),
                        serde_json::Value::Bool(b) => b.to_string(),
                        _ => {
                            return Err(format!(
                                "{at}.config.{key}: expected a string, number or boolean"
                            ));
                        }
                    };
                    config.push((key.clone(), substitute(&value, params)));
                }
            }
            Some(_) => return Err(format!("{at}.config: expected a mapping")),
        }
        specs.push(ReporterSpec {
            id: String::new(),
            plugin,
            config,
            tasks,
        });
    }
    Ok(specs)
}

/// Replaces `$(params.NAME)` with string params it knows; leaves the rest.
fn substitute(value: &str, params: &BTreeMap<String, String>) -> String {
    let mut out = value.to_string();
    for (name, v) in params {
        out = out.replace(&format!("$(params.{name})"), v);
    }
    out
}

/// Parses `--report FORGE:KEY=VALUE,KEY=VALUE,...` (`FORGE` is `gitlab`, `github`,
/// `gitea`, `bitbucket`, `webhook` or a reporter plugin's name; `tasks=true` asks for
/// task contexts). Values cannot contain `,`.
pub fn spec_from_flag(flag: &str) -> Result<ReporterSpec, String> {
    let (forge, rest) = flag.split_once(':').unwrap_or((flag, ""));
    let plugin = FORGES
        .iter()
        .find(|(short, _)| *short == forge)
        .map_or_else(|| forge.to_string(), |(_, plugin)| (*plugin).to_string());
    if plugin.is_empty() {
        return Err(format!("--report {flag}: expected FORGE:KEY=VALUE,..."));
    }
    let mut config = Vec::new();
    let mut tasks = false;
    for pair in rest.split(',').filter(|p| !p.trim().is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("--report {forge}: `{pair}` is not KEY=VALUE"))?;
        let key = key.trim();
        if key == "tasks" {
            tasks = match value.trim() {
                "true" => true,
                "false" => false,
                other => {
                    return Err(format!(
                        "--report {forge}: tasks={other}: expected true or false"
                    ));
                }
            };
        } else {
            config.push((key.to_string(), value.to_string()));
        }
    }
    Ok(ReporterSpec {
        id: String::new(),
        plugin,
        config,
        tasks,
    })
}

/// Gives each spec its id (`<plugin>#<index>`), in order: pipeline reporters first, then
/// `--report` flags. The same pipeline and flags give the same ids after a restart.
pub fn assign_ids(specs: &mut [ReporterSpec]) {
    for (index, spec) in specs.iter_mut().enumerate() {
        spec.id = format!("{}#{index}", spec.plugin);
    }
}

/// Which run is reported.
#[derive(Debug, Clone, Default)]
pub struct RunIdentity {
    /// Run name.
    pub run_name: String,
    /// Run uid (the outbox's run key).
    pub run_uid: String,
    /// Pipeline name.
    pub pipeline_name: String,
}

/// A context that did not reach its desired state.
#[derive(Debug, Clone)]
pub struct Undelivered {
    /// The reporter's id.
    pub reporter: String,
    /// The context.
    pub context: String,
    /// The state it should show.
    pub desired: ReportStatus,
    /// The last error (no secrets), or why it stopped.
    pub error: String,
    /// Whether it stopped for good (`permanent`), rather than running out of time.
    pub permanent: bool,
}

struct Active {
    spec: ReporterSpec,
    plugin: ResolvedPlugin,
    secrets: BTreeMap<String, SecretValue>,
}

#[derive(Default)]
struct Worker {
    queue: Vec<DesiredStatus>,
    delivered: Option<ReportStatus>,
    attempts: u32,
    running: bool,
    stopped: bool,
    last_error: String,
}

/// What a worker does after an attempt.
enum Settled {
    /// Send the next queued state.
    Next,
    /// Wait, then retry.
    Wait(Duration),
    /// Stop (gave up, or the entry is gone).
    Stop,
}

struct Shared {
    run: RunIdentity,
    reporters: Vec<Active>,
    outbox: Arc<dyn OutboxStore>,
    http: Vec<HttpRule>,
    workers: Mutex<HashMap<OutboxKey, Worker>>,
    handle: tokio::runtime::Handle,
    /// Masks what reporter plugins hand back (errors kept in the outbox and printed).
    masker: crate::mask::RunMasker,
}

/// The reporting observer: passes every event on to the wrapped observer and turns run
/// events into desired states delivered through the outbox.
pub struct Reporters {
    inner: Arc<dyn RunObserver>,
    shared: Arc<Shared>,
    started: AtomicBool,
}

impl Reporters {
    /// Loads the reporter plugins of `specs` (ids assigned) and wraps `inner`. `secrets`
    /// is the flattened secret store (see [`crate::secrets::SecretStore::flatten`]);
    /// `http` the run's HTTP rules. Must be called inside a tokio runtime.
    pub async fn new(
        registry: &PluginRegistry,
        specs: Vec<ReporterSpec>,
        run: RunIdentity,
        secrets: &BTreeMap<String, SecretValue>,
        http: Vec<HttpRule>,
        outbox: Arc<dyn OutboxStore>,
        inner: Arc<dyn RunObserver>,
    ) -> Result<Reporters, String> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| "reporters need a tokio runtime".to_string())?;
        let mut reporters = Vec::new();
        for spec in specs {
            let plugin = registry
                .resolve(&spec.plugin)
                .await
                .map_err(|e| format!("reporter `{}`: {e}", spec.plugin))?;
            if plugin.plugin.kind() != PluginKind::Reporter {
                return Err(format!(
                    "reporter `{}`: the plugin is a {}, not a reporter",
                    spec.plugin,
                    plugin.plugin.kind().as_str()
                ));
            }
            let mut wanted: Vec<String> = plugin.info.capabilities.secrets.clone();
            if let Some(name) = spec.get("token-secret") {
                wanted.push(name.to_string());
            }
            let granted = wanted
                .into_iter()
                .filter_map(|name| secrets.get(&name).map(|v| (name, v.clone())))
                .collect();
            reporters.push(Active {
                spec,
                plugin,
                secrets: granted,
            });
        }
        Ok(Reporters {
            inner,
            shared: Arc::new(Shared {
                run,
                reporters,
                outbox,
                http,
                workers: Mutex::new(HashMap::new()),
                handle,
                masker: crate::mask::RunMasker::new(secrets.values()),
            }),
            started: AtomicBool::new(false),
        })
    }

    /// Whether any reporter is configured.
    pub fn is_empty(&self) -> bool {
        self.shared.reporters.is_empty()
    }

    /// The run was submitted: every run-level context becomes `pending`.
    pub fn submitted(&self) {
        self.shared
            .desire_run(&DesiredStatus::run(ReportStatus::Pending));
    }

    /// Re-delivers what `outbox` still holds for this run (after a restart): call before
    /// new events. Entries are resumed as stored.
    pub fn resume(&self) -> Result<usize, String> {
        let entries = self.shared.outbox.entries(&self.shared.run.run_uid)?;
        let mut count = 0;
        for mut entry in entries {
            // The run was running before the restart: it is not announced again.
            self.started
                .fetch_or(entry.desired.status.rank() >= 1, Ordering::SeqCst);
            if entry.desired.task.is_none()
                && let Some(task) = self.shared.task_of(&entry.key)
            {
                // A task context read back from the store: its task is in its context.
                entry.desired.task = Some(task);
                entry.desired.run_status = ReportStatus::Running;
            }
            if entry.is_open() {
                count += 1;
                self.shared
                    .enqueue(entry.key, entry.desired, entry.delivered);
            } else if let Some(delivered) = entry.delivered {
                // Already on the forge: a later event of the same rank is not sent again.
                let mut workers = self.shared.lock();
                let worker = workers.entry(entry.key).or_default();
                worker.delivered.get_or_insert(delivered);
            }
        }
        Ok(count)
    }

    /// Waits until every context reached its desired state or stopped, at most `timeout`.
    /// Returns the contexts that did not get there.
    pub async fn finish(&self, timeout: Duration) -> Vec<Undelivered> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let busy = self
                .shared
                .lock()
                .values()
                .any(|w| w.running || (!w.stopped && !w.queue.is_empty()));
            if !busy || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let workers = self.shared.lock();
        let mut out: Vec<Undelivered> = workers
            .iter()
            .filter(|(_, w)| w.stopped || !w.queue.is_empty())
            .filter_map(|(key, w)| {
                let desired = w.queue.last().map(|d| d.status).or(w.delivered)?;
                Some(Undelivered {
                    reporter: key.reporter.clone(),
                    context: key.context.clone(),
                    desired,
                    error: w.last_error.clone(),
                    permanent: w.stopped,
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.reporter, &a.context).cmp(&(&b.reporter, &b.context)));
        out
    }

    fn on_event(&self, event: &RunEvent<'_>) {
        match event {
            RunEvent::Transition {
                task,
                phase,
                outcome,
                reason,
                ..
            } => {
                if *phase == TaskPhase::Running && !self.started.swap(true, Ordering::SeqCst) {
                    self.shared
                        .desire_run(&DesiredStatus::run(ReportStatus::Running));
                }
                let status = match (phase, outcome) {
                    (TaskPhase::Running, _) => Some((
                        ReportStatus::Running,
                        describe::describe_progress(true).to_string(),
                    )),
                    (TaskPhase::Terminal, Some(outcome)) => Some((
                        ReportStatus::from(*outcome),
                        describe::describe_task(*outcome, reason),
                    )),
                    _ => None,
                };
                if let Some((status, description)) = status {
                    self.shared.desire_task(task, status, reason, description);
                }
            }
            RunEvent::Finished(summary) => {
                self.shared.desire_run(&final_status(summary));
            }
            RunEvent::Log { .. } | RunEvent::FinallyStarted => {}
        }
    }
}

impl RunObserver for Reporters {
    fn event(&self, event: RunEvent<'_>) {
        if !self.shared.reporters.is_empty() {
            self.on_event(&event);
        }
        self.inner.event(event);
    }
}

/// The run's final desired status: status, reason, halting task, and a message naming the
/// first task that failed (with its message) for failing statuses.
pub fn final_status(summary: &RunSummary) -> DesiredStatus {
    let status = ReportStatus::from(summary.status);
    let message = match status {
        ReportStatus::Failed | ReportStatus::TimedOut | ReportStatus::Errored => summary
            .report
            .tasks
            .iter()
            .find(|t| matches!(t.status.as_str(), "Failed" | "TimedOut" | "Errored"))
            .map(|t| {
                let what = format!("task {} {}", t.name, t.status.to_lowercase());
                if t.message.trim().is_empty() {
                    what
                } else {
                    format!("{what} ({})", t.message.trim())
                }
            })
            .unwrap_or_default(),
        ReportStatus::SucceededWithWarnings => summary
            .report
            .tasks
            .iter()
            .filter(|t| t.status == "SucceededWithWarnings")
            .map(|t| t.name.clone())
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    };
    DesiredStatus {
        status,
        run_status: status,
        reason: summary.reason.clone(),
        halted_by: summary
            .halted_by
            .as_ref()
            .map(|h| (h.task.clone(), h.message.clone())),
        message,
        description: describe::describe_run(summary.status, &summary.report),
        task: None,
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<OutboxKey, Worker>> {
        self.workers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn key(&self, spec: &ReporterSpec, task: Option<&str>) -> OutboxKey {
        let base = spec.context(&self.run.pipeline_name);
        OutboxKey {
            reporter: spec.id.clone(),
            run: self.run.run_uid.clone(),
            context: match task {
                Some(task) => format!("{base}/{task}"),
                None => base,
            },
        }
    }

    /// The task of a task-level context (`<context>/<task>`), `None` for a run-level one.
    fn task_of(&self, key: &OutboxKey) -> Option<String> {
        let active = self.active(&key.reporter)?;
        let base = active.spec.context(&self.run.pipeline_name);
        key.context
            .strip_prefix(&base)
            .and_then(|rest| rest.strip_prefix('/'))
            .map(str::to_string)
    }

    fn desire_run(self: &Arc<Self>, desired: &DesiredStatus) {
        for active in &self.reporters {
            let key = self.key(&active.spec, None);
            self.desire(key, desired.clone());
        }
    }

    fn desire_task(
        self: &Arc<Self>,
        task: &str,
        status: ReportStatus,
        reason: &str,
        description: String,
    ) {
        for active in self.reporters.iter().filter(|a| a.spec.tasks) {
            let key = self.key(&active.spec, Some(task));
            let desired = DesiredStatus {
                status,
                run_status: ReportStatus::Running,
                reason: reason.to_string(),
                halted_by: None,
                message: String::new(),
                description: description.clone(),
                task: Some(task.to_string()),
            };
            self.desire(key, desired);
        }
    }

    fn desire(self: &Arc<Self>, key: OutboxKey, desired: DesiredStatus) {
        if let Err(err) = self.outbox.desire(&key, &desired) {
            tracing::warn!(reporter = %key.reporter, context = %key.context, error = %err, "cannot record a desired status");
        }
        self.enqueue(key, desired, None);
    }

    /// Queues `desired` for `key` and makes sure a worker runs.
    fn enqueue(
        self: &Arc<Self>,
        key: OutboxKey,
        desired: DesiredStatus,
        delivered: Option<ReportStatus>,
    ) {
        let spawn = {
            let mut workers = self.lock();
            let worker = workers.entry(key.clone()).or_default();
            if delivered.is_some() && worker.delivered.is_none() {
                worker.delivered = delivered;
            }
            let known = worker.queue.last().map(|d| d.status).or(worker.delivered);
            if known.is_some_and(|k| !k.may_become(desired.status)) {
                return;
            }
            match worker.queue.last_mut() {
                // Same rank, not terminal: the newer one supersedes the queued one.
                Some(last) if last.status.rank() == desired.status.rank() => {
                    *last = desired;
                }
                _ => worker.queue.push(desired),
            }
            let spawn = !worker.running && !worker.stopped;
            worker.running |= spawn;
            spawn
        };
        if spawn {
            let shared = self.clone();
            self.handle.spawn(async move { shared.work(key).await });
        }
    }

    fn active(&self, reporter: &str) -> Option<&Active> {
        self.reporters.iter().find(|a| a.spec.id == reporter)
    }

    /// Delivers `key`'s queue, one request at a time, until it is empty or stopped.
    async fn work(self: Arc<Self>, key: OutboxKey) {
        let Some(active) = self.active(&key.reporter) else {
            let mut workers = self.lock();
            if let Some(w) = workers.get_mut(&key) {
                w.running = false;
                w.stopped = true;
                w.last_error = "no such reporter in this run".into();
            }
            return;
        };
        loop {
            let (desired, attempt) = {
                let mut workers = self.lock();
                let Some(w) = workers.get_mut(&key) else {
                    return;
                };
                if let Some(d) = w.delivered {
                    w.queue
                        .retain(|q| !d.is_terminal() && q.status.rank() > d.rank());
                }
                if w.attempts > 0 && w.queue.len() > 1 {
                    // Retrying: superseded states are dropped; send the newest.
                    let newest = w.queue.pop();
                    w.queue.clear();
                    w.queue.extend(newest);
                }
                match w.queue.first() {
                    Some(d) if !w.stopped => (d.clone(), w.attempts),
                    _ => {
                        w.running = false;
                        return;
                    }
                }
            };
            if desired.task.is_none() && desired.status.is_terminal() {
                crate::fault::point("report-final-before");
            }
            let result = active
                .plugin
                .plugin
                .report(self.request(active), self.event(active, &desired, attempt))
                .await;
            let outcome = match result {
                Ok(reporter::Delivery::Permanent(message)) => {
                    Err((self.masker.text(&message).into_owned(), None, true))
                }
                Ok(reporter::Delivery::Done) => Ok(()),
                Ok(reporter::Delivery::RetryAfter(0)) => Err((
                    "transient failure (retrying with backoff)".to_string(),
                    Some(0),
                    false,
                )),
                Ok(reporter::Delivery::RetryAfter(ms)) => Err((
                    format!("the forge asked to retry after {ms} ms"),
                    Some(ms),
                    false,
                )),
                Err(report) => {
                    let (reason, message) = ending_text(&report);
                    let message = self.masker.text(&message).into_owned();
                    let permanent = matches!(reason, "CapabilityDenied" | "WrongPluginKind");
                    Err((format!("{reason}: {message}"), None, permanent))
                }
            };
            let sleep = match self.settle(&key, &desired, outcome) {
                Settled::Next => continue,
                Settled::Stop => return,
                Settled::Wait(wait) => wait,
            };
            tokio::time::sleep(sleep).await;
        }
    }

    /// Records how one attempt went; says what the worker does next.
    fn settle(
        &self,
        key: &OutboxKey,
        desired: &DesiredStatus,
        outcome: Result<(), (String, Option<u64>, bool)>,
    ) -> Settled {
        {
            let mut workers = self.lock();
            let Some(w) = workers.get_mut(key) else {
                return Settled::Stop;
            };
            match outcome {
                Ok(()) => {
                    w.attempts = 0;
                    w.last_error.clear();
                    w.delivered = Some(desired.status);
                    if w.queue.first() == Some(desired) {
                        w.queue.remove(0);
                    }
                    drop(workers);
                    if let Err(err) = self.outbox.delivered(key, desired.status) {
                        tracing::warn!(error = %err, "cannot record a delivered status");
                    }
                    Settled::Next
                }
                Err((error, retry_after, permanent)) => {
                    w.attempts += 1;
                    w.last_error = error.clone();
                    let give_up = permanent || w.attempts >= MAX_ATTEMPTS;
                    let wait = retry_wait(w.attempts, retry_after);
                    if give_up {
                        w.stopped = true;
                        w.running = false;
                        if !permanent {
                            w.last_error =
                                format!("gave up after {} attempts: {error}", w.attempts);
                        }
                        tracing::warn!(reporter = %key.reporter, context = %key.context, error = %w.last_error, "status not delivered");
                    }
                    drop(workers);
                    let next = Timestamp(
                        now()
                            .0
                            .saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX)),
                    );
                    if let Err(err) = self.outbox.failed(key, &error, next, give_up) {
                        tracing::warn!(error = %err, "cannot record a failed delivery");
                    }
                    if give_up {
                        return Settled::Stop;
                    }
                    tracing::debug!(reporter = %key.reporter, context = %key.context, wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX), error = %error, "retrying a status");
                    Settled::Wait(wait)
                }
            }
        }
    }

    fn request(&self, active: &Active) -> TaskRequest {
        let mut request = TaskRequest::new(format!("reporter:{}", active.spec.id));
        request.context.run_name = self.run.run_name.clone();
        request.context.run_uid = self.run.run_uid.clone();
        request.context.pipeline_name = self.run.pipeline_name.clone();
        request.grants.secrets = active.secrets.clone();
        request.grants.http = self.http.clone();
        request.limits.wall_clock = Some(Duration::from_secs(60));
        request.log = self.masker.log_sink(Arc::new(ReporterLog {
            reporter: active.spec.id.clone(),
        }));
        request
    }

    fn event(&self, active: &Active, desired: &DesiredStatus, attempt: u32) -> reporter::RunEvent {
        let task = desired.task.as_ref().map(|name| reporter::TaskEvent {
            name: name.clone(),
            status: wit_status(desired.status),
            reason: desired.reason.clone(),
            message: desired.message.clone(),
        });
        let is_task = task.is_some();
        reporter::RunEvent {
            run_name: self.run.run_name.clone(),
            run_uid: self.run.run_uid.clone(),
            pipeline_name: self.run.pipeline_name.clone(),
            status: wit_status(desired.run_status),
            reason: if is_task {
                String::new()
            } else {
                desired.reason.clone()
            },
            halted_by: desired
                .halted_by
                .as_ref()
                .map(|(task, message)| reporter::Halt {
                    task: task.clone(),
                    message: message.clone(),
                }),
            message: if is_task {
                String::new()
            } else {
                desired.message.clone()
            },
            description: desired.description.clone(),
            task,
            config: active.spec.config.clone(),
            attempt,
        }
    }
}

/// The wait before retry `attempts` (1 for the first retry): exponential backoff with
/// jitter, at least what the plugin passed on from the server (`retry-after(ms)`; 0, or
/// `None` for a failure that was not a delivery, leaves the backoff alone).
pub fn retry_wait(attempts: u32, retry_after_ms: Option<u64>) -> Duration {
    let exp = BACKOFF_BASE
        .saturating_mul(1u32 << attempts.saturating_sub(1).min(16))
        .min(BACKOFF_CAP);
    let jittered = exp / 2 + exp.mul_f64(0.5 * unit_random());
    match retry_after_ms {
        Some(ms) => jittered.max(Duration::from_millis(ms)),
        None => jittered,
    }
}

/// A random number in [0, 1) (std's randomly keyed hasher; good enough for jitter).
fn unit_random() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(now().0.unsigned_abs());
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

fn ending_text(report: &TaskReport) -> (&str, String) {
    use weft_core::contract::TaskEnding;
    match &report.ending {
        TaskEnding::Errored { reason, message } => (reason.as_str(), message.clone()),
        other => ("Errored", format!("{other:?}")),
    }
}

fn wit_status(status: ReportStatus) -> reporter::Status {
    match status {
        ReportStatus::Pending => reporter::Status::Pending,
        ReportStatus::Running => reporter::Status::Running,
        ReportStatus::Succeeded => reporter::Status::Succeeded,
        ReportStatus::SucceededWithWarnings => reporter::Status::SucceededWithWarnings,
        ReportStatus::Completed => reporter::Status::Completed,
        ReportStatus::Failed => reporter::Status::Failed,
        ReportStatus::TimedOut => reporter::Status::TimedOut,
        ReportStatus::Errored => reporter::Status::Errored,
        ReportStatus::Rejected => reporter::Status::Rejected,
        ReportStatus::Cancelled => reporter::Status::Cancelled,
        ReportStatus::Skipped => reporter::Status::Skipped,
    }
}

/// A reporter's log lines go to weft's own diagnostics (already masked by the runtime).
struct ReporterLog {
    reporter: String,
}

impl LogSink for ReporterLog {
    fn line(&self, line: LogLine) {
        match line.level {
            LogLevel::Error | LogLevel::Warn => {
                tracing::warn!(reporter = %self.reporter, "{}", line.text);
            }
            _ => tracing::debug!(reporter = %self.reporter, "{}", line.text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_pipeline_specs() {
        let spec = spec_from_flag(
            "gitlab:url=http://127.0.0.1:9,project=group/app,sha=abc,token-secret=gl,tasks=true",
        )
        .expect("parses");
        assert_eq!(spec.plugin, "reporter-gitlab");
        assert!(spec.tasks);
        assert_eq!(spec.get("project"), Some("group/app"));
        assert_eq!(spec.context("p"), "weft/p");
        assert!(spec_from_flag("gitlab:novalue").is_err());
        assert_eq!(
            spec_from_flag("reporter-custom:url=x")
                .expect("parses")
                .plugin,
            "reporter-custom"
        );
        let params = BTreeMap::from([("sha".to_string(), "0123abc".to_string())]);
        let entries = vec![serde_json::json!({
            "plugin": "reporter-github",
            "config": {"sha": "$(params.sha)", "context": "ci/weft", "pr": 7},
            "tasks": false,
        })];
        let specs = specs_from_pipeline(&entries, &params).expect("parses");
        assert_eq!(specs[0].get("sha"), Some("0123abc"));
        assert_eq!(specs[0].get("pr"), Some("7"));
        assert_eq!(specs[0].context("p"), "ci/weft");
        assert!(specs_from_pipeline(&[serde_json::json!({"config": {}})], &params).is_err());
        assert!(
            specs_from_pipeline(&[serde_json::json!({"plugin": "x", "bogus": 1})], &params)
                .is_err()
        );
    }

    #[test]
    fn backoff_grows_with_jitter_and_honours_retry_after() {
        for attempts in 1..12 {
            let wait = retry_wait(attempts, None);
            let exp = BACKOFF_BASE
                .saturating_mul(1 << (attempts - 1).min(16))
                .min(BACKOFF_CAP);
            assert!(wait >= exp / 2 && wait <= exp, "{attempts}: {wait:?}");
        }
        assert!(retry_wait(1, Some(5_000)) >= Duration::from_secs(5));
    }

    /// A reporter that got no wait from the server returns `retry-after(0)`: the host's
    /// backoff applies unchanged (no floor, no second policy).
    #[test]
    fn a_plugins_zero_retry_after_gets_the_host_backoff() {
        for attempts in 1..12 {
            let exp = BACKOFF_BASE
                .saturating_mul(1 << (attempts - 1).min(16))
                .min(BACKOFF_CAP);
            for _ in 0..20 {
                let wait = retry_wait(attempts, Some(0));
                assert!(wait >= exp / 2 && wait <= exp, "{attempts}: {wait:?}");
            }
        }
        // A server-named wait beyond the host's cap is still honoured.
        assert!(retry_wait(11, Some(120_000)) >= Duration::from_secs(120));
    }
}
