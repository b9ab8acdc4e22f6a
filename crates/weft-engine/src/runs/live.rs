//! A run this process holds: its plan, options, secret workspaces and reporters, until it
//! ends or the engine lets go of it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use weft_core::Plan;

use super::setup::RunSecrets;
use crate::execute::{ControlReceiver, RunEnd, RunOptions, execute, execute_until};
use crate::observe::{Fanout, RunObserver};
use crate::prepare::Prepared;
use crate::report::{Reporters, Undelivered};

/// A run set up and ready to execute (see [`super::RunService`]).
pub struct LiveRun {
    name: String,
    run_dir: PathBuf,
    prepared: Prepared,
    options: RunOptions,
    reporters: Option<Arc<Reporters>>,
    /// Held for the run's lifetime: secret workspaces are removed when it is dropped.
    secrets: RunSecrets,
    report_timeout: Duration,
}

/// How a run's execution ended.
pub struct Finished {
    /// The run ended, or the engine let go of it.
    pub end: RunEnd,
    /// Statuses the reporters could not deliver in time (or were refused).
    pub undelivered: Vec<Undelivered>,
    /// How long statuses were waited for.
    pub report_timeout: Duration,
}

impl LiveRun {
    pub(super) fn new(
        name: String,
        run_dir: PathBuf,
        prepared: Prepared,
        options: RunOptions,
        reporters: Option<Arc<Reporters>>,
        secrets: RunSecrets,
        report_timeout: Duration,
    ) -> Self {
        LiveRun {
            name,
            run_dir,
            prepared,
            options,
            reporters,
            secrets,
            report_timeout,
        }
    }

    /// The run's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where its logs (`logs/`), report and default workspaces are.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// Its task log directory.
    pub fn log_dir(&self) -> PathBuf {
        self.run_dir.join("logs")
    }

    /// What it runs.
    pub fn plan(&self) -> &Plan {
        &self.prepared.plan
    }

    /// Re-delivers what the run's outbox still holds (a run taken over, or one that
    /// finished before its statuses were delivered); returns how many statuses.
    pub(super) fn resume_reporting(&self) -> Result<usize, String> {
        match &self.reporters {
            Some(reporters) => reporters.resume(),
            None => Ok(0),
        }
    }

    /// Hands the run to the store without running anything: its lease is released at
    /// once, so `weft runs recover` or `weft serve` on the same store takes it over and
    /// runs it (its secret workspaces are mounted again there).
    pub fn detach(self) -> Result<(), String> {
        if let Some(durable) = &self.options.durable {
            // A run for later says so from the start, not once an engine takes it.
            if self
                .options
                .not_before
                .is_some_and(|at| at > std::time::SystemTime::now())
            {
                let phase = weft_store::WriteOp::RunPhase {
                    lease: durable.lease.clone(),
                    phase: weft_store::RunPhase::Scheduled,
                };
                durable
                    .store
                    .apply(vec![phase])
                    .map_err(|e| format!("run store: {e}"))?;
            }
            durable
                .store
                .flush()
                .and_then(|()| durable.store.release(&durable.lease))
                .map_err(|e| format!("run store: {e}"))?;
        }
        Ok(())
    }

    /// Keeps the run created and unstarted (a `PipelineRun` created with `spec.status:
    /// PipelineRunPending`): its lease is held with a heartbeat that never goes stale, so
    /// no engine takes it over until `weft runs start` releases it
    /// ([`super::RunService::start_pending`]).
    pub fn hold(self) -> Result<(), String> {
        if let Some(durable) = &self.options.durable {
            durable
                .store
                .flush()
                .and_then(|()| {
                    durable
                        .store
                        .heartbeat(&durable.lease, super::PENDING_HEARTBEAT)
                })
                .and_then(|()| durable.store.flush())
                .map_err(|e| format!("run store: {e}"))?;
        }
        Ok(())
    }

    /// Runs it until it ends (or, with `suspendable`, until the engine lets go of it),
    /// telling `observer` (after the reporters) what happens; then waits for its statuses
    /// to be delivered and keeps its report (`report.json`) in the run directory.
    pub async fn execute(
        self,
        observer: Arc<dyn RunObserver>,
        control: ControlReceiver,
        suspendable: bool,
    ) -> Finished {
        let observer: Arc<dyn RunObserver> = match &self.reporters {
            Some(reporters) => Arc::new(Fanout(vec![reporters.clone(), observer])),
            None => observer,
        };
        let end = if suspendable {
            execute_until(self.prepared, self.options, observer, control).await
        } else {
            RunEnd::Finished(Box::new(
                execute(self.prepared, self.options, observer, control).await,
            ))
        };
        let mut undelivered = Vec::new();
        if let RunEnd::Finished(summary) = &end {
            if let Some(reporters) = &self.reporters {
                undelivered = reporters.finish(self.report_timeout).await;
            }
            match serde_json::to_string_pretty(&summary.report) {
                Ok(json) => {
                    if let Err(err) = std::fs::write(self.run_dir.join("report.json"), json) {
                        tracing::warn!(error = %err, "cannot keep the run's report");
                    }
                }
                Err(err) => tracing::warn!(error = %err, "cannot encode the run's report"),
            }
        }
        // Secret workspaces are removed with the secrets, after the run.
        drop(self.secrets);
        Finished {
            end,
            undelivered,
            report_timeout: self.report_timeout,
        }
    }
}
