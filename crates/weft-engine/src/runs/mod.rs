//! The engine's front door: a run's lifecycle around its [`RunSpec`]. `weft run`,
//! `weft runs recover` and `weft serve` (and, next, approvals, schedules and workers on a
//! shared store) all go through [`RunService`]:
//!
//! - [`RunService::submit`]: a spec becomes a run: validated (form decorators first),
//!   recorded in the store under a fresh lease with its spec, and set up (secrets, secret
//!   workspaces, reporters);
//! - [`RunService::take_over`]: a run whose engine stopped is claimed and set up again from
//!   its stored spec, its journal replayed per its recovery strategy;
//! - [`RunService::deliver_leftovers`]: finished runs whose statuses were not all
//!   delivered get their outbox delivered.
//!
//! Each gives a [`LiveRun`], which owns everything the run holds while it goes (its plan,
//! options, secret workspaces, reporters) and is executed with the caller's observer.
//! Nothing here parses user syntax: that is weft-cli's and the server's job.

mod decide;
mod leftovers;
mod live;
mod rerun;
mod schedules;
mod setup;
mod signal;
pub mod spec;
mod submit;
mod take_over;
mod view;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use weft_core::Diagnostic;
use weft_store::BatchingStore;

// The types the service's API names, so that its callers need nothing else of the
// engine.
pub use crate::decorate::{DecoratorChange, DecoratorLog, recorded_decorations};
pub use crate::execute::{CancelHandle, ControlReceiver, RunEnd, RunTimeouts, cancel_channel};
pub use crate::grants::{DEFAULT_DECORATOR_TIMEOUT, HttpGrants, SecretGrants};
pub use crate::observe::{
    DeliveryObserver, DeliveryResult, Fanout, Held, Quiet, RunEvent, RunObserver, describe_time,
};
pub use crate::policy::SubmissionPolicy;
pub use crate::prepare::PLUGIN_DIGEST_MISMATCH;
pub use crate::prepare::Prepared;
pub use crate::registry::{PluginError, PluginRegistry, ResolvedPlugin, TenantPlugins};
pub use crate::report::{ReporterSpec, Undelivered};
pub use crate::secrets::{
    DEFAULT_KEY as DEFAULT_SECRET_KEY, SecretStore, TenantSecrets, split_name,
};
pub use crate::snapshot::history as snapshot_history;
pub use decide::{Ballot, DecideError, DecisionKind, Receipt, decide, waits_document};
pub use leftovers::Leftover;
pub use live::{Finished, LiveRun};
pub use rerun::RerunRequest;
pub use rerun::attempt_id;
pub use schedules::{Fired, NewSchedule, tick_run_name};
pub use signal::{RunSignal, cancel_mode};
pub use spec::{
    PipelineSource, RUN_SPEC_VERSION, ReferencedFile, Rerun, RunQuota, RunSpec, SnapshotRequest,
    StoredRun, WorkspaceSource, stored_pipeline, stored_plan,
};
pub use submit::Submitted;
pub use take_over::{TakeOverError, TakenOver};
pub use view::{OperationView, TaskOperation, held_view, operation_view};

/// Opens the run store when the service first needs it (so a submission refused before
/// any run exists creates no store file).
pub type StoreOpener = Box<dyn Fn() -> Result<Arc<BatchingStore>, String> + Send + Sync>;

/// Receives warnings meant for the operator (secrets too short to mask, loose file
/// permissions); never values.
pub type Warn = Arc<dyn Fn(&str) + Send + Sync>;

/// How a [`RunService`] is set up.
pub struct ServiceConfig {
    /// Where runs keep their logs, reports and default workspaces unless their spec says
    /// otherwise; its `secrets.json` is the operator's secret store.
    pub data_dir: PathBuf,
    /// Secrets the operator gave this process (e.g. `--secret`), on top of `secrets.json`.
    pub secrets: SecretStore,
    /// Who owns the runs this process executes (`host:pid`).
    pub owner: String,
    /// How often a running engine renews a run's lease.
    pub heartbeat_every: Duration,
    /// How long a lease lasts without a heartbeat (the recovery timeout): a run whose
    /// heartbeats fail (the database is unreachable) is given up once its lease may have
    /// expired, since another engine may own it by then.
    pub lease_ttl: Duration,
    /// Runs taken over keep their files under this service's data directory rather than
    /// the one they were submitted with: servers sharing a database run on different
    /// machines.
    pub take_over_here: bool,
    /// Where warnings go.
    pub warn: Warn,
    /// Tenants' own secrets (`weft serve` with a secrets key), decrypted when a run of
    /// the tenant is set up.
    pub tenant_secrets: Option<Arc<dyn crate::secrets::TenantSecrets>>,
    /// The server's task slots, shared fairly by all tenants' runs (`weft serve`); `None`:
    /// each run is bounded by its own parallelism only.
    pub task_slots: Option<Arc<crate::fair::TaskSlots>>,
}

/// Runs' lifecycle (see the module docs).
pub struct RunService {
    registry: PluginRegistry,
    config: ServiceConfig,
    open: StoreOpener,
    store: Mutex<Option<Arc<BatchingStore>>>,
    /// Told how every reporter delivery attempt goes, once set.
    deliveries: std::sync::OnceLock<Arc<dyn DeliveryObserver>>,
}

/// Why a submission did not become a run. Nothing was created.
#[derive(Debug)]
pub enum SubmitError {
    /// The pipeline, its params or a decorator refused it: diagnostics with positions.
    Invalid {
        /// What is wrong.
        diagnostics: Vec<Diagnostic>,
        /// What the form decorators logged before one refused (masked).
        decorator_log: Vec<DecoratorLog>,
    },
    /// The spec asks for something impossible (a bad name, an undeclared workspace...).
    Refused(String),
    /// A run of that name exists.
    Exists(String),
    /// The run to re-run does not exist.
    NotFound(String),
    /// The run to re-run is not finished (only a terminal run can be re-run).
    NotTerminal(String),
    /// The caller may not do this (a server's caller re-running an operator's run).
    Forbidden(String),
    /// weft could not do its own work (the store, the data directory...).
    Environment(String),
}

impl std::fmt::Display for SubmitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubmitError::Invalid { diagnostics, .. } => write!(
                f,
                "the pipeline is invalid ({} problem{})",
                diagnostics.len(),
                if diagnostics.len() == 1 { "" } else { "s" }
            ),
            SubmitError::Refused(message) | SubmitError::Environment(message) => {
                f.write_str(message)
            }
            SubmitError::Exists(name) => {
                write!(f, "a run named `{name}` already exists; pick another name")
            }
            SubmitError::NotFound(run) => write!(f, "no run named `{run}`"),
            SubmitError::NotTerminal(message) | SubmitError::Forbidden(message) => {
                f.write_str(message)
            }
        }
    }
}

/// Validates a pipeline against `registry`'s plugins as a submission would be (without
/// running its decorators or creating anything): its plan, or every problem found.
pub async fn validate(
    registry: &PluginRegistry,
    pipeline: &PipelineSource,
    params: &std::collections::BTreeMap<String, weft_core::contract::ParamValue>,
) -> Result<Prepared, Vec<Diagnostic>> {
    crate::prepare::prepare_files(registry, pipeline, &pipeline.source, params).await
}

/// [`validate`] of files already parsed (`parsed` is what `pipeline` holds), so they are
/// not parsed twice.
pub async fn validate_parsed(
    registry: &PluginRegistry,
    pipeline: &PipelineSource,
    parsed: &weft_core::RunFiles,
    params: &std::collections::BTreeMap<String, weft_core::contract::ParamValue>,
) -> Result<Prepared, Vec<Diagnostic>> {
    crate::prepare::prepare_parsed(registry, pipeline, parsed, params).await
}

/// The heartbeat a run held pending carries (the last millisecond of year 9999): never
/// stale, so nothing takes the run over until [`RunService::start_pending`] releases it.
pub const PENDING_HEARTBEAT: weft_store::Timestamp = weft_store::Timestamp(253_402_300_799_999);

/// Whether a stored run is held pending (created with `spec.status: PipelineRunPending`
/// and not started yet).
pub fn is_pending(record: &weft_store::RunRecord) -> bool {
    record.finished_at.is_none() && record.heartbeat_at == Some(PENDING_HEARTBEAT)
}

impl RunService {
    /// Releases a run held pending and takes it over here, ready to execute. A run that is
    /// not pending is refused.
    pub async fn start_pending(&self, run: &str) -> Result<TakenOver, TakeOverError> {
        let unusable = |detail: String| TakeOverError::Unusable {
            run: run.to_string(),
            detail,
        };
        let store: Arc<dyn weft_store::RunStore> = self.store().map_err(unusable)?;
        let record = store
            .run(run)?
            .ok_or_else(|| weft_store::StoreError::NotFound {
                what: format!("run `{run}`"),
            })?;
        if !is_pending(&record) {
            return Err(unusable(
                "it is not pending: only a run created with `spec.status: PipelineRunPending` and not started yet can be started".into(),
            ));
        }
        let lease = weft_store::Lease {
            run: run.to_string(),
            owner: record.lease_owner.clone().unwrap_or_default(),
            token: record.lease_token,
        };
        store.release(&lease)?;
        self.take_over(run, Duration::ZERO).await
    }

    /// A service over `registry`, opening its store with `open` on first use.
    pub fn new(registry: PluginRegistry, config: ServiceConfig, open: StoreOpener) -> Self {
        RunService {
            registry,
            config,
            open,
            store: Mutex::new(None),
            deliveries: std::sync::OnceLock::new(),
        }
    }

    /// Tells `observer` how each reporter delivery attempt of the runs set up from now on
    /// goes (e.g. `weft serve`'s metrics). Only the first call counts.
    pub fn observe_deliveries(&self, observer: Arc<dyn DeliveryObserver>) {
        let _ = self.deliveries.set(observer);
    }

    /// The plugins this service runs.
    pub fn registry(&self) -> &PluginRegistry {
        &self.registry
    }

    /// The plugins a run of `tenant` may use: the service's, and the tenant's uploads.
    pub fn registry_for(
        &self,
        tenant: &str,
    ) -> Result<std::borrow::Cow<'_, PluginRegistry>, String> {
        self.registry.for_tenant(tenant)
    }

    /// Where runs keep their files unless their spec says otherwise.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.config.data_dir
    }

    /// The store, opened now if it was not yet.
    pub fn store(&self) -> Result<Arc<BatchingStore>, String> {
        let mut slot = self
            .store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(store) = slot.as_ref() {
            return Ok(store.clone());
        }
        let store = (self.open)()?;
        *slot = Some(store.clone());
        Ok(store)
    }

    /// The store if it was opened (to close it cleanly).
    pub fn opened_store(&self) -> Option<Arc<BatchingStore>> {
        self.store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn warn(&self, message: &str) {
        (self.config.warn)(message);
    }
}
