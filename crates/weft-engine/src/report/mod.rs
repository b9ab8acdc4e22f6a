//! Status reporting: reporter plugins configured in the pipeline (`spec.reporters`, weft
//! extension) or in the run's spec (`weft run --report ...`, a submission's `reports`),
//! driven by the [`Reporters`] observer. Three jobs, one file each: [`config`] (which
//! reporters, with which ids and contexts), [`events`] (run events to desired statuses,
//! with their descriptions) and [`delivery`] (one worker per context converging the forge
//! through the outbox).
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
//! What a reporter is given is decided by the grant builder ([`crate::grants`]): the
//! secrets it declares and the one its config `token-secret` names, and the reporters'
//! HTTP rules. Config holds secret names only; values never leave the token request they
//! authenticate, and what a reporter hands back is masked ([`crate::mask`]).

pub mod config;
mod delivery;
pub mod events;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use weft_runtime::PluginKind;

pub use config::{ReporterSpec, RunIdentity, assign_ids, specs_from_pipeline};
pub use delivery::Undelivered;

use crate::grants::{Grantee, RunGrants};
use crate::mask::RunMasker;
use crate::observe::{DeliveryObserver, RunEvent, RunObserver};
use crate::outbox::{DesiredStatus, OutboxStore, ReportStatus};
use crate::registry::PluginRegistry;
use delivery::{Active, Shared};

/// The reporting observer: turns run events into desired states delivered through the
/// outbox.
pub struct Reporters {
    shared: Arc<Shared>,
    started: AtomicBool,
    /// The run context shows a wait: the next task to run says "running" again.
    showing_wait: AtomicBool,
}

impl Reporters {
    /// Loads the reporter plugins of `specs` (ids assigned). `grants` decides what each is
    /// given ([`crate::grants`]); `masker` masks what they hand back. Must be called inside
    /// a tokio runtime.
    pub async fn new(
        registry: &PluginRegistry,
        specs: Vec<ReporterSpec>,
        run: RunIdentity,
        grants: &RunGrants,
        masker: RunMasker,
        outbox: Arc<dyn OutboxStore>,
    ) -> Result<Reporters, String> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| "reporters need a tokio runtime".to_string())?;
        let mut reporters = Vec::new();
        for spec in specs {
            let plugin = Reporters::check(registry, &spec).await?;
            let allowance = grants.grant(Grantee::Reporter {
                token_secret: spec.get("token-secret"),
                info: &plugin.info,
            });
            reporters.push(Active {
                spec,
                plugin,
                allowance,
            });
        }
        Ok(Reporters {
            shared: Arc::new(Shared {
                run,
                reporters,
                outbox,
                workers: Mutex::new(HashMap::new()),
                handle,
                masker,
                deliveries: OnceLock::new(),
            }),
            started: AtomicBool::new(false),
            showing_wait: AtomicBool::new(false),
        })
    }

    /// The plugin of `spec`, or why it cannot report.
    pub async fn check(
        registry: &PluginRegistry,
        spec: &ReporterSpec,
    ) -> Result<crate::registry::ResolvedPlugin, String> {
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
        Ok(plugin)
    }

    /// Tells `observer` how each delivery attempt goes; call before [`Self::submitted`]
    /// or [`Self::resume`] so that none is missed. Only the first call counts.
    pub fn observe_deliveries(&self, observer: Arc<dyn DeliveryObserver>) {
        let _ = self.shared.deliveries.set(observer);
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
}

impl RunObserver for Reporters {
    fn event(&self, event: RunEvent<'_>) {
        if !self.shared.reporters.is_empty() {
            self.on_event(&event);
        }
    }
}
