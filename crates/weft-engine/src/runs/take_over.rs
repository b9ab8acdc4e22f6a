//! A run whose engine stopped is claimed (a new fencing token) and set up again from its
//! stored spec; its journal is replayed per its recovery strategy (weft-core's
//! `replay::decide`), its workspaces restored from their latest snapshots, and its
//! reporters first re-deliver what the outbox still holds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use weft_core::contract::ParamValue;
use weft_store::{Recovery, RunStore, StoreError, Timestamp};

use super::RunService;
use super::live::LiveRun;
use super::setup;
use super::spec::StoredRun;
use crate::outbox::RunStoreOutbox;
use crate::persist::{Durable, read_replay};
use crate::prepare::prepare_files;
use crate::report::RunIdentity;
use crate::snapshot::{self, Restored};

/// A run taken over, ready to execute.
pub struct TakenOver {
    /// The run.
    pub run: LiveRun,
    /// The strategy its journal was replayed with.
    pub strategy: Recovery,
    /// Workspaces restored from their latest snapshot before anything runs again.
    pub restored: Vec<Restored>,
    /// Statuses its outbox still held, re-delivered first.
    pub redelivering: usize,
}

/// Why a run could not be taken over.
#[derive(Debug, thiserror::Error)]
pub enum TakeOverError {
    /// The store refused (the lease is held, no such run, ...).
    #[error("{0}")]
    Store(#[from] StoreError),
    /// Its stored spec cannot be read, or no longer plans (a plugin changed or
    /// disappeared), or its set-up failed.
    #[error("run `{run}` cannot be taken over: {detail}")]
    Unusable {
        /// The run.
        run: String,
        /// Why.
        detail: String,
    },
}

impl RunService {
    /// Claims `run` (its heartbeat older than `stale_after`) and sets it up again.
    pub async fn take_over(
        &self,
        run: &str,
        stale_after: Duration,
    ) -> Result<TakenOver, TakeOverError> {
        let store: Arc<dyn RunStore> = self.store().map_err(|detail| TakeOverError::Unusable {
            run: run.to_string(),
            detail,
        })?;
        let lease = store.claim(run, &self.config.owner, Timestamp::now(), stale_after)?;
        self.take_over_claimed(lease).await
    }

    /// Claims up to `limit` abandoned runs (heartbeat older than `stale_after`, or
    /// released) at once; another engine sweeping at the same time gets other ones. Each is
    /// then set up with [`RunService::take_over_claimed`].
    pub fn claim_stale(
        &self,
        stale_after: Duration,
        limit: usize,
    ) -> Result<Vec<weft_store::Lease>, String> {
        self.store()?
            .claim_stale(&self.config.owner, Timestamp::now(), stale_after, limit)
            .map_err(|e| format!("run store: {e}"))
    }

    /// Sets a run this service just claimed (`lease`) up again.
    pub async fn take_over_claimed(
        &self,
        lease: weft_store::Lease,
    ) -> Result<TakenOver, TakeOverError> {
        let run = lease.run.clone();
        let run = run.as_str();
        let unusable = |detail: String| TakeOverError::Unusable {
            run: run.to_string(),
            detail,
        };
        let store: Arc<dyn RunStore> = self.store().map_err(unusable)?;
        let record = store.run(run)?.ok_or_else(|| StoreError::NotFound {
            what: format!("run `{run}`"),
        })?;
        let submitted = &record.submitted;
        let stored = StoredRun::read(run, submitted).map_err(unusable)?;
        let spec = &stored.spec;
        let registry = self.registry_for(spec.tenant()).map_err(unusable)?;
        let params: BTreeMap<String, ParamValue> = serde_json::from_str(&submitted.params_json)
            .map_err(|e| unusable(format!("its stored params cannot be read: {e}")))?;
        let parsed = spec.pipeline.parse_with(&submitted.pipeline_source);
        let pipeline = parsed
            .pipeline
            .clone()
            .filter(|_| parsed.diagnostics.is_empty())
            .ok_or(())
            .map_err(|_| unusable("its stored pipeline no longer parses".into()))?;
        let prepared = prepare_files(
            &registry,
            &spec.pipeline,
            &submitted.pipeline_source,
            &params,
        )
        .await
        .map_err(|found| {
            unusable(
                found
                    .iter()
                    .take(3)
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        let strategy = submitted.recovery;
        let (replay, attempt_base) = read_replay(&store, &lease, strategy)?;

        let data_dir = if self.config.take_over_here {
            &self.config.data_dir
        } else {
            &stored.data_dir
        };
        let run_dir = setup::run_dir(data_dir, run);
        setup::create_dir(&run_dir).map_err(unusable)?;
        // Decorator-set secrets are never stored: a run taken over does not have them.
        let mut secrets = self
            .run_secrets(data_dir, spec.policy.as_ref(), spec.tenant())
            .map_err(unusable)?;
        let (workspaces, read_only) =
            setup::bind_workspaces(spec, &pipeline, &run_dir, &mut secrets).map_err(unusable)?;
        let snapshots = setup::snapshot_config(&spec.snapshots, &pipeline, &workspaces, &read_only)
            .map_err(unusable)?;
        let masker = secrets.masker();
        let grants = setup::run_grants(spec, &secrets, workspaces, read_only);
        let mut options = setup::options(
            spec,
            &submitted.name,
            &stored.uid,
            grants,
            masker.clone(),
            self.config.task_slots.clone(),
        );
        // Deadlines count from the run's start: a restart never extends them. A run that
        // starts when it is created counts from then; one that waited for its scheduled
        // time or its group's slot counts from its first task (the wait does not count),
        // or, for a scheduled run none of whose tasks is on record, from its time.
        let first_start = store
            .attempts(&lease.run)?
            .iter()
            .filter_map(|attempt| attempt.started_at)
            .min();
        let held_back = prepared.plan.concurrency.is_some() || spec.scheduled_at_ms.is_some();
        let first_start = if held_back {
            first_start.or_else(|| {
                spec.scheduled_at_ms
                    .map(|at| Timestamp(at.max(submitted.created_at.0)))
                    .filter(|at| at.0 <= Timestamp::now().0)
            })
        } else {
            Some(submitted.created_at)
        };
        if let Some(rerun) = spec.rerun.as_ref().filter(|rerun| rerun.failed_only) {
            options.carried = super::rerun::carried(&*store, &rerun.previous).map_err(unusable)?;
        }
        options.elapsed_before =
            first_start.map_or(Duration::ZERO, |at| Timestamp::now().since(at));
        options.durable = Some(Durable {
            store: store.clone(),
            lease: lease.clone(),
            attempt_base,
            replay: Some(Arc::new(replay)),
            heartbeat_every: self.config.heartbeat_every,
            lease_ttl: self.config.lease_ttl,
        });
        // Every strategy re-runs something (finally tasks at least), so each workspace
        // gets the files the last finished task left.
        let mut restored = Vec::new();
        if let Some(config) = &snapshots {
            restored = snapshot::restore_run(&store, &lease, config, &options.grants.workspaces)
                .await
                .map_err(|e| unusable(format!("cannot restore its workspace snapshots: {e}")))?;
        }
        options.snapshots = snapshots;
        let identity = RunIdentity {
            run_name: submitted.name.clone(),
            run_uid: stored.uid.clone(),
            pipeline_name: prepared.plan.pipeline_name.clone(),
        };
        let reporter_specs =
            setup::reporter_specs(&pipeline, spec, &prepared.plan.params).map_err(unusable)?;
        let reporters = setup::reporters(
            &registry,
            self.deliveries.get(),
            reporter_specs,
            identity,
            &options.grants,
            masker,
            RunStoreOutbox::new(store, lease),
        )
        .await
        .map_err(unusable)?;
        let live = LiveRun::new(
            run.to_string(),
            run_dir,
            prepared,
            options,
            reporters,
            secrets,
            spec.report_timeout,
        );
        let redelivering = live
            .resume_reporting()
            .map_err(|e| unusable(format!("cannot read its reporter outbox: {e}")))?;
        Ok(TakenOver {
            run: live,
            strategy,
            restored,
            redelivering,
        })
    }
}
