//! How to run one pipeline run: its name, parallelism, timeouts, what it grants, masking,
//! journal and snapshots.

use std::sync::Arc;
use std::time::Duration;

use crate::fair::TaskSlots;
use crate::grants::RunGrants;
use crate::persist::Durable;

/// The run-level timeouts of semantics.md section 7.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunTimeouts {
    /// The whole run.
    #[serde(default, with = "crate::runs::spec::optional_millis")]
    pub pipeline: Option<Duration>,
    /// The non-finally tasks.
    #[serde(default, with = "crate::runs::spec::optional_millis")]
    pub tasks: Option<Duration>,
    /// The finally tasks, from when they start.
    #[serde(default, with = "crate::runs::spec::optional_millis")]
    pub finally: Option<Duration>,
}

/// How to run one pipeline run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The run's name (`$(context.pipelineRun.name)`).
    pub run_name: String,
    /// The run's unique id.
    pub run_uid: String,
    /// How many task attempts may run at once.
    pub parallelism: usize,
    /// Run-level timeouts.
    pub timeouts: RunTimeouts,
    /// What the run's tasks are given (secrets, HTTP, workspaces, limits): the one grant
    /// builder, [`crate::grants`].
    pub grants: RunGrants,
    /// Masks every secret value the run knows in what its plugins hand back (logs,
    /// results, messages) before anything else sees it: [`crate::mask`].
    pub masker: crate::mask::RunMasker,
    /// Where the run is journaled; `None` keeps it in memory only.
    pub durable: Option<Durable>,
    /// Workspace snapshots after each task (durable runs only): [`crate::snapshot`].
    pub snapshots: Option<crate::snapshot::SnapshotConfig>,
    /// Time the run already spent before this process took it over (recovery): deadlines
    /// are computed from the run's stored start, so a restart never extends them.
    pub elapsed_before: Duration,
    /// Which attempt of its run this is (1 unless re-run).
    pub attempt: u32,
    /// When the run may start (a scheduled run): it waits in phase `Scheduled` until then.
    pub not_before: Option<std::time::SystemTime>,
    /// Tasks a `--failed-only` re-run keeps from the previous attempt, by task name.
    pub carried: std::collections::BTreeMap<String, weft_core::Carried>,
    /// The tenant that owns the run: its concurrency groups are its own.
    pub tenant: String,
    /// The tenant's quota of runs at once, if it has one: the run waits (`Queued`) for
    /// one of those slots before its own group's.
    pub tenant_runs: Option<u32>,
    /// The tenant's quota of task attempts at once, if it has one: each task takes one of
    /// those slots before its own group's (waiting aside, `QueuedForAgent`).
    pub tenant_tasks: Option<u32>,
    /// Bytes of log lines the whole run may keep (its tenant's quota); `None`: only the
    /// per-task limits.
    pub log_budget_bytes: Option<u64>,
    /// Guest CPU milliseconds the tenant's tasks may use per rolling hour; `None`: no
    /// such quota.
    pub cpu_ms_per_hour: Option<u64>,
    /// The server's task slots, shared fairly by every tenant's runs ([`crate::fair`]):
    /// an attempt launches only once it holds one. `None` (`weft run`, benchmarks): only
    /// `parallelism` bounds the run. A task waiting for a slot has not started: its own
    /// wall-clock timeout, counted by the runtime from the plugin's invocation, is not
    /// spent waiting (the run's `pipeline` and `tasks` timeouts are the run's, and do
    /// count it).
    pub task_slots: Option<Arc<TaskSlots>>,
    /// The tenant's weight in that share (1..=100): a tenant of weight 2 is given twice
    /// the slots of one of weight 1 while both have tasks waiting.
    pub weight: u32,
}

impl RunOptions {
    /// Options with defaults: parallelism of 4 per core, no timeouts, default limits,
    /// nothing granted.
    pub fn new(run_name: impl Into<String>, run_uid: impl Into<String>) -> Self {
        RunOptions {
            run_name: run_name.into(),
            run_uid: run_uid.into(),
            parallelism: default_parallelism(),
            timeouts: RunTimeouts::default(),
            grants: RunGrants::default(),
            masker: crate::mask::RunMasker::default(),
            durable: None,
            snapshots: None,
            elapsed_before: Duration::ZERO,
            not_before: None,
            attempt: 1,
            carried: Default::default(),
            tenant: weft_store::DEFAULT_TENANT.to_string(),
            tenant_runs: None,
            tenant_tasks: None,
            log_budget_bytes: None,
            cpu_ms_per_hour: None,
            task_slots: None,
            weight: 1,
        }
    }
}

/// How many task attempts run at once unless a run says otherwise: 4 per core.
pub fn default_parallelism() -> usize {
    weft_runtime::cores() * 4
}
