//! Delivery: one worker per (reporter, run, context) converges the forge to the desired
//! status through the outbox, one request at a time, with the host's backoff (see the
//! parent module's docs for the rules).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use weft_core::contract::{Delivery, ReportEvent, ReportHalt, ReportTask};
use weft_runtime::{LogLevel, LogLine, LogSink, TaskReport, TaskRequest};
use weft_store::{OutboxKey, Timestamp};

use super::config::{ReporterSpec, RunIdentity};
use crate::grants::Allowance;
use crate::mask::RunMasker;
use crate::observe::{DeliveryObserver, DeliveryResult};
use crate::outbox::{DesiredStatus, OutboxStore, ReportStatus, now};
use crate::registry::ResolvedPlugin;

/// Failed attempts after which a context gives up.
pub const MAX_ATTEMPTS: u32 = 10;
/// First retry wait.
const BACKOFF_BASE: Duration = Duration::from_millis(500);
/// Longest retry wait the host chooses (a plugin's `retry-after` may ask for more).
const BACKOFF_CAP: Duration = Duration::from_secs(30);

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

/// A reporter of the run, with what it is given.
pub(super) struct Active {
    pub(super) spec: ReporterSpec,
    pub(super) plugin: ResolvedPlugin,
    pub(super) allowance: Allowance,
}

/// One context's delivery state.
#[derive(Default)]
pub(super) struct Worker {
    pub(super) queue: Vec<DesiredStatus>,
    pub(super) delivered: Option<ReportStatus>,
    pub(super) attempts: u32,
    pub(super) running: bool,
    pub(super) stopped: bool,
    pub(super) last_error: String,
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

/// What the reporters of one run share: the outbox, and one worker per context.
pub(super) struct Shared {
    pub(super) run: RunIdentity,
    pub(super) reporters: Vec<Active>,
    pub(super) outbox: Arc<dyn OutboxStore>,
    pub(super) workers: Mutex<HashMap<OutboxKey, Worker>>,
    pub(super) handle: tokio::runtime::Handle,
    /// Masks what reporter plugins hand back (errors kept in the outbox and printed).
    pub(super) masker: RunMasker,
    /// Told how each attempt went (metrics), when someone listens.
    pub(super) deliveries: OnceLock<Arc<dyn DeliveryObserver>>,
}

impl Shared {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<OutboxKey, Worker>> {
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
    pub(super) fn task_of(&self, key: &OutboxKey) -> Option<String> {
        let active = self.active(&key.reporter)?;
        let base = active.spec.context(&self.run.pipeline_name);
        key.context
            .strip_prefix(&base)
            .and_then(|rest| rest.strip_prefix('/'))
            .map(str::to_string)
    }

    pub(super) fn desire_run(self: &Arc<Self>, desired: &DesiredStatus) {
        for active in &self.reporters {
            let key = self.key(&active.spec, None);
            self.desire(key, desired.clone());
        }
    }

    pub(super) fn desire_task(
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

    pub(super) fn desire(self: &Arc<Self>, key: OutboxKey, desired: DesiredStatus) {
        match self.outbox.desire(&key, &desired) {
            // Nothing new: already desired (or it would go backwards).
            Ok(false) => return,
            Ok(true) => {}
            // Not recorded, so not sent: the outbox is what a forge is told from. An
            // engine cut off from its store may have lost the run to another, which
            // reports from the store (a `failed` sent from here would then contradict its
            // `success`); the next desire recorded, or the engine recovering the run,
            // sends what is due.
            Err(err) => {
                tracing::warn!(reporter = %key.reporter, context = %key.context, error = %err, "cannot record a desired status; it is not sent");
                return;
            }
        }
        // Another engine owns the run now: it reports, not this one.
        if self.outbox.fenced() {
            return;
        }
        self.enqueue(key, desired, None);
    }

    /// Queues `desired` for `key` and makes sure a worker runs.
    pub(super) fn enqueue(
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

    pub(super) fn active(&self, reporter: &str) -> Option<&Active> {
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
                        // Newer desires of the delivered rank stay: they say something new
                        // (what the run now waits for).
                        .retain(|q| !d.is_terminal() && q.status.rank() >= d.rank());
                }
                if w.attempts > 0 && w.queue.len() > 1 {
                    // Retrying: superseded states are dropped; send the newest.
                    let newest = w.queue.pop();
                    w.queue.clear();
                    w.queue.extend(newest);
                }
                match w.queue.first() {
                    Some(d) if !w.stopped && !self.outbox.fenced() => (d.clone(), w.attempts),
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
                Ok(Delivery::Permanent(message)) => {
                    Err((self.masker.text(&message).into_owned(), None, true))
                }
                Ok(Delivery::Done) => Ok(()),
                Ok(Delivery::RetryAfter(0)) => Err((
                    "transient failure (retrying with backoff)".to_string(),
                    Some(0),
                    false,
                )),
                Ok(Delivery::RetryAfter(ms)) => Err((
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
            let delivered = outcome.is_ok();
            let settled = self.settle(&key, &desired, outcome);
            self.attempted(
                &active.spec.plugin,
                match (delivered, &settled) {
                    (true, _) => DeliveryResult::Delivered,
                    (false, Settled::Wait(_)) => DeliveryResult::Retrying,
                    (false, _) => DeliveryResult::GaveUp,
                },
            );
            let sleep = match settled {
                Settled::Next => continue,
                Settled::Stop => return,
                Settled::Wait(wait) => wait,
            };
            tokio::time::sleep(sleep).await;
        }
    }

    /// Tells the delivery observer, if any, how an attempt went.
    fn attempted(&self, plugin: &str, result: DeliveryResult) {
        if let Some(observer) = self.deliveries.get() {
            observer.delivery(plugin, result);
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
        request.grants = active.allowance.grants.clone();
        request.limits = active.allowance.limits.clone();
        request.log = self.masker.log_sink(Arc::new(ReporterLog {
            reporter: active.spec.id.clone(),
        }));
        request
    }

    fn event(&self, active: &Active, desired: &DesiredStatus, attempt: u32) -> ReportEvent {
        let task = desired.task.as_ref().map(|name| ReportTask {
            name: name.clone(),
            status: desired.status,
            reason: desired.reason.clone(),
            message: desired.message.clone(),
        });
        let is_task = task.is_some();
        ReportEvent {
            run_name: self.run.run_name.clone(),
            run_uid: self.run.run_uid.clone(),
            pipeline_name: self.run.pipeline_name.clone(),
            status: desired.run_status,
            reason: if is_task {
                String::new()
            } else {
                desired.reason.clone()
            },
            halted_by: desired
                .halted_by
                .as_ref()
                .map(|(task, message)| ReportHalt {
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
