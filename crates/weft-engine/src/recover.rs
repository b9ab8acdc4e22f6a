//! Submitting a run to the store, and taking over a run whose engine stopped: what the
//! store keeps of how the run was asked for, the claim (a new fencing token), and the
//! replay built from the run's journal according to its recovery strategy.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_core::contract::ParamValue;
use weft_runtime::HttpRule;
use weft_store::{Lease, NewEvent, NewRun, Recovery, RunStore, StoreError, Timestamp, WriteOp};

use crate::execute::{RunOptions, RunTimeouts};
use crate::persist::{ATTEMPT_BASE, ATTEMPT_ENDED, ATTEMPT_NOT_STARTED, Durable, Ended, Replay};
use crate::prepare::{Prepared, prepare};
use crate::registry::PluginRegistry;

/// How the run was asked for, kept with it so another process can continue it. Secrets
/// are not kept: a recovering engine takes them from its own secret store.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredOptions {
    /// The pipeline file's name, for diagnostics.
    pub file: String,
    /// Bound workspaces.
    pub workspaces: BTreeMap<String, PathBuf>,
    /// Parallelism.
    pub parallelism: usize,
    /// Run timeouts in milliseconds.
    pub pipeline_timeout_ms: Option<u64>,
    /// `tasks` timeout in milliseconds.
    pub tasks_timeout_ms: Option<u64>,
    /// `finally` timeout in milliseconds.
    pub finally_timeout_ms: Option<u64>,
    /// `--allow-http` rules as written.
    pub http_allow: Vec<String>,
    /// Per-task `--allow-http TASK=RULE` rules as written.
    #[serde(default)]
    pub http_allow_by_task: BTreeMap<String, Vec<String>>,
    /// Workspace snapshots (`spec.workspaceSnapshots`, `--workspace-snapshots`).
    #[serde(default)]
    pub snapshots: Option<crate::snapshot::StoredSnapshotConfig>,
    /// The run's unique id (`$(context.pipelineRun.uid)`, the reporter outbox's run key).
    #[serde(default)]
    pub run_uid: String,
    /// `--grant TASK=SECRET` flags as written (names only).
    #[serde(default)]
    pub grants: Vec<String>,
    /// `--workspace NAME=secret:SECRET` bindings: workspace and secret names.
    #[serde(default)]
    pub secret_workspaces: Vec<(String, String)>,
    /// `--report FORGE:CONFIG` flags as written (they name secrets, never hold them).
    #[serde(default)]
    pub reports: Vec<String>,
    /// How long to wait for statuses to be delivered after the run, in milliseconds.
    #[serde(default)]
    pub report_timeout_ms: Option<u64>,
    /// The data directory the run's logs and report go to.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// For a `weft serve` submission: what it may use (recovery applies it again).
    #[serde(default)]
    pub policy: Option<crate::policy::SubmissionPolicy>,
}

impl StoredOptions {
    /// What to keep of `options`.
    pub fn of(options: &RunOptions, file: &str) -> Self {
        let ms = |d: Option<Duration>| d.map(|d| d.as_millis() as u64);
        StoredOptions {
            file: file.to_string(),
            workspaces: options.workspaces.clone(),
            parallelism: options.parallelism,
            pipeline_timeout_ms: ms(options.timeouts.pipeline),
            tasks_timeout_ms: ms(options.timeouts.tasks),
            finally_timeout_ms: ms(options.timeouts.finally),
            http_allow: options.http_allow.iter().map(ToString::to_string).collect(),
            http_allow_by_task: options
                .http_allow_by_task
                .iter()
                .map(|(task, rules)| {
                    (
                        task.clone(),
                        rules.iter().map(ToString::to_string).collect(),
                    )
                })
                .collect(),
            run_uid: options.run_uid.clone(),
            snapshots: options
                .snapshots
                .as_ref()
                .map(crate::snapshot::SnapshotConfig::stored),
            ..StoredOptions::default()
        }
    }
}

/// The run's recovery strategy as the store spells it (`none` when the pipeline says nothing).
pub fn recovery_of(source: &str, file: &str) -> Recovery {
    weft_core::parse_pipeline(source, file)
        .ok()
        .and_then(|p| p.recovery.map(|r| r.value))
        .map_or(Recovery::None, Into::into)
}

/// Records a new run and takes its lease. `stored` is what another engine needs to
/// continue it (see [`StoredOptions::of`]).
#[allow(clippy::too_many_arguments)]
pub fn submit(
    store: &Arc<dyn RunStore>,
    options: &RunOptions,
    stored: &StoredOptions,
    pipeline_name: &str,
    source: &str,
    file: &str,
    params: &BTreeMap<String, ParamValue>,
    owner: &str,
) -> Result<Lease, StoreError> {
    let run = NewRun {
        id: options.run_name.clone(),
        name: options.run_name.clone(),
        pipeline_name: pipeline_name.to_string(),
        pipeline_source: source.to_string(),
        params_json: serde_json::to_string(params).unwrap_or_else(|_| "{}".into()),
        options_json: serde_json::to_string(stored).unwrap_or_else(|_| "{}".into()),
        created_at: Timestamp::now(),
        recovery: recovery_of(source, file),
    };
    store.create_run(&run, owner, Timestamp::now())
}

/// Why a run could not be taken over.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// The store refused (lease held, not found, corrupt...).
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The stored pipeline no longer validates (a plugin changed or disappeared).
    #[error("run `{run}` cannot be planned again: {detail}")]
    Invalid {
        /// The run.
        run: String,
        /// The first problems.
        detail: String,
    },
    /// A workspace snapshot could not be restored (nothing ran).
    #[error("run `{run}`: cannot restore its workspace snapshots: {detail}")]
    Snapshot {
        /// The run.
        run: String,
        /// What failed.
        detail: String,
    },
}

/// A run taken over from a stopped engine, ready for [`crate::execute`].
pub struct Recovered {
    /// The plan and its plugins.
    pub prepared: Prepared,
    /// Options rebuilt from the store, with the new lease and the replay.
    pub options: RunOptions,
    /// The strategy applied.
    pub strategy: Recovery,
    /// Workspaces restored from their latest snapshot before anything re-runs.
    pub restored: Vec<crate::snapshot::Restored>,
    /// How the run was asked for (grants, reporters, secret workspaces to set up again).
    pub stored: StoredOptions,
    /// The pipeline as submitted.
    pub source: String,
    /// The run's params as submitted.
    pub params: BTreeMap<String, ParamValue>,
}

/// Claims `run` and rebuilds it for execution.
pub async fn take_over(
    store: &Arc<dyn RunStore>,
    registry: &PluginRegistry,
    run: &str,
    owner: &str,
    stale_after: Duration,
    heartbeat_every: Duration,
) -> Result<Recovered, RecoverError> {
    let lease = store.claim(run, owner, Timestamp::now(), stale_after)?;
    let record = store.run(run)?.ok_or_else(|| StoreError::NotFound {
        what: format!("run `{run}`"),
    })?;
    let submitted = &record.submitted;
    let stored: StoredOptions = serde_json::from_str(&submitted.options_json).unwrap_or_default();
    let params: BTreeMap<String, ParamValue> =
        serde_json::from_str(&submitted.params_json).unwrap_or_default();
    let prepared = prepare(registry, &submitted.pipeline_source, &stored.file, &params)
        .await
        .map_err(|diagnostics| RecoverError::Invalid {
            run: run.to_string(),
            detail: diagnostics
                .iter()
                .take(3)
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        })?;

    let strategy = submitted.recovery;
    let attempts = store.attempts(run)?;
    let events = store.events(run, 0, usize::MAX)?;
    // Offsets from an earlier startOver, if any.
    let mut base: HashMap<String, u32> = events
        .iter()
        .rev()
        .find(|e| e.event.kind == ATTEMPT_BASE)
        .and_then(|e| serde_json::from_str(&e.event.data_json).ok())
        .unwrap_or_default();
    let mut replay = Replay {
        strategy: Some(strategy),
        ..Replay::default()
    };
    if strategy == Recovery::StartOver {
        // New attempts after every stored one: stored records stay as they are, except
        // that attempts the stopped engine left unfinished are closed: they never end
        // otherwise, and each attempt ends terminal in the store with its own outcome.
        base.clear();
        let now = Timestamp::now();
        for attempt in &attempts {
            let next = attempt.id.attempt + 1;
            let entry = base.entry(attempt.id.task.clone()).or_insert(0);
            *entry = (*entry).max(next);
            if !attempt.is_terminal() {
                store.write(WriteOp::Attempt {
                    lease: lease.clone(),
                    record: abandoned(attempt, now),
                })?;
            }
        }
        store.write(WriteOp::Event {
            lease: lease.clone(),
            event: NewEvent {
                at: Timestamp::now(),
                kind: ATTEMPT_BASE.to_string(),
                task: None,
                attempt: None,
                data_json: serde_json::to_string(&base).unwrap_or_else(|_| "{}".into()),
            },
        })?;
    } else {
        let local =
            |task: &str, stored: u32| stored.checked_sub(base.get(task).copied().unwrap_or(0));
        for event in events.iter().filter(|e| e.event.kind == ATTEMPT_ENDED) {
            let (Some(task), Some(stored)) = (&event.event.task, event.event.attempt) else {
                continue;
            };
            let (Some(attempt), Ok(ended)) = (
                local(task, stored),
                serde_json::from_str::<Ended>(&event.event.data_json),
            ) else {
                continue;
            };
            replay.ended.insert((task.clone(), attempt), ended);
        }
        let mut settled: HashSet<(String, u32)> = replay.ended.keys().cloned().collect();
        // Queued attempts the engine never began before it let go of the run start afresh.
        for event in events
            .iter()
            .filter(|e| e.event.kind == ATTEMPT_NOT_STARTED)
        {
            if let (Some(task), Some(stored)) = (&event.event.task, event.event.attempt)
                && let Some(attempt) = local(task, stored)
            {
                settled.insert((task.clone(), attempt));
            }
        }
        for attempt in attempts.iter().filter(|a| !a.is_terminal()) {
            if let Some(local) = local(&attempt.id.task, attempt.id.attempt) {
                let key = (attempt.id.task.clone(), local);
                if !settled.contains(&key) {
                    replay.in_flight.insert(key);
                }
            }
        }
    }

    let uid = if stored.run_uid.is_empty() {
        submitted.id.clone()
    } else {
        stored.run_uid.clone()
    };
    let mut options = RunOptions::new(&submitted.name, uid);
    options.workspaces = stored.workspaces.clone();
    if stored.parallelism > 0 {
        options.parallelism = stored.parallelism;
    }
    options.timeouts = RunTimeouts {
        pipeline: stored.pipeline_timeout_ms.map(Duration::from_millis),
        tasks: stored.tasks_timeout_ms.map(Duration::from_millis),
        finally: stored.finally_timeout_ms.map(Duration::from_millis),
    };
    options.http_allow = stored
        .http_allow
        .iter()
        .filter_map(|rule| HttpRule::parse(rule).ok())
        .collect();
    options.http_allow_by_task = stored
        .http_allow_by_task
        .iter()
        .map(|(task, rules)| {
            let parsed = rules
                .iter()
                .filter_map(|r| HttpRule::parse(r).ok())
                .collect();
            (task.clone(), parsed)
        })
        .collect();
    options.elapsed_before = Timestamp::now().since(submitted.created_at);
    options.durable = Some(Durable {
        store: store.clone(),
        lease,
        attempt_base: base,
        replay: Some(Arc::new(replay)),
        heartbeat_every,
    });
    // Workspace snapshots: every strategy re-runs something (finally tasks at least), so
    // each workspace gets the files the last finished task left (snapshot/restore.rs).
    let mut restored = Vec::new();
    if let (Some(config), Some(durable)) = (&stored.snapshots, &options.durable) {
        let failed = |detail: String| RecoverError::Snapshot {
            run: run.to_string(),
            detail,
        };
        let config = crate::snapshot::SnapshotConfig::from_stored(config).map_err(failed)?;
        restored =
            crate::snapshot::restore_run(store, &durable.lease, &config, &options.workspaces)
                .await
                .map_err(|e| failed(e.to_string()))?;
        options.snapshots = Some(config);
    }
    Ok(Recovered {
        prepared,
        options,
        strategy,
        restored,
        stored,
        source: submitted.pipeline_source.clone(),
        params,
    })
}

/// The terminal record of an attempt a stopped engine left unfinished, which `startOver`
/// abandons (the task runs again as a new attempt).
fn abandoned(attempt: &weft_store::AttemptRecord, now: Timestamp) -> weft_store::AttemptRecord {
    let mut record =
        weft_store::AttemptRecord::new(attempt.id.clone(), weft_store::TaskPhase::Terminal, now);
    record.outcome = Some(weft_store::Outcome::Errored);
    record.reason = weft_core::replay::ENGINE_RESTARTED.into();
    record.message =
        "the engine stopped while this attempt was unfinished; recovery (startOver) runs the task again as a new attempt"
            .into();
    record.started_at = attempt.started_at;
    record.ended_at = Some(now);
    record
}
