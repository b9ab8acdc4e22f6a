//! Finished runs whose statuses were not all delivered (the engine stopped between the
//! final status and the forge's answer): each is claimed, its reporters set up again from
//! its stored spec, and its outbox delivered.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use weft_core::contract::ParamValue;
use weft_store::{RunStore, StoreError, Timestamp};

use super::RunService;
use super::setup;
use super::spec::StoredRun;
use crate::outbox::RunStoreOutbox;
use crate::prepare::prepare_files;
use crate::report::{RunIdentity, Undelivered};

/// A finished run whose owed statuses were delivered (or given up on).
#[derive(Debug)]
pub struct Leftover {
    /// The run.
    pub run: String,
    /// What was still not delivered afterwards.
    pub undelivered: Vec<Undelivered>,
}

impl RunService {
    /// Delivers what finished runs still owe their forges; runs whose outbox another
    /// engine holds are left to it. A run that cannot be set up again is skipped with a
    /// warning (its statuses stay owed).
    pub async fn deliver_leftovers(&self, stale_after: Duration) -> Result<Vec<Leftover>, String> {
        let store: Arc<dyn RunStore> = self.store()?;
        let store_error = |e: StoreError| format!("run store: {e}");
        let due = store
            .due_outbox(Timestamp::now(), 10_000)
            .map_err(store_error)?;
        let mut runs: Vec<String> = due.into_iter().map(|row| row.key.run).collect();
        runs.sort();
        runs.dedup();
        let mut done = Vec::new();
        for run in runs {
            let Some(record) = store.run(&run).map_err(store_error)? else {
                continue;
            };
            // Unfinished runs are taken over whole, reporters included.
            if record.finished_at.is_none() {
                continue;
            }
            let lease = match store.claim(&run, &self.config.owner, Timestamp::now(), stale_after) {
                Ok(lease) => lease,
                Err(StoreError::LeaseHeld { .. }) => continue,
                Err(e) => return Err(store_error(e)),
            };
            match self.leftover(&store, &run, &record, lease).await {
                Ok(undelivered) => done.push(Leftover { run, undelivered }),
                Err(why) => self.warn(&format!("run `{run}`: {why}; its statuses stay owed")),
            }
        }
        Ok(done)
    }

    async fn leftover(
        &self,
        store: &Arc<dyn RunStore>,
        run: &str,
        record: &weft_store::RunRecord,
        lease: weft_store::Lease,
    ) -> Result<Vec<Undelivered>, String> {
        let submitted = &record.submitted;
        let stored = StoredRun::read(run, submitted)?;
        let spec = &stored.spec;
        let registry = self.registry_for(spec.tenant())?;
        let params: BTreeMap<String, ParamValue> = serde_json::from_str(&submitted.params_json)
            .map_err(|e| format!("its stored params cannot be read: {e}"))?;
        let parsed = spec.pipeline.parse_with(&submitted.pipeline_source);
        let pipeline = parsed
            .pipeline
            .clone()
            .filter(|_| parsed.diagnostics.is_empty())
            .ok_or(())
            .map_err(|_| "its stored pipeline no longer parses".to_string())?;
        let prepared = prepare_files(
            &registry,
            &spec.pipeline,
            &submitted.pipeline_source,
            &params,
        )
        .await
        .map_err(|_| "its pipeline no longer validates".to_string())?;
        let secrets = self.run_secrets(&stored.data_dir, spec.policy.as_ref(), spec.tenant())?;
        let grants = setup::run_grants(spec, &secrets, BTreeMap::new(), Default::default());
        let identity = RunIdentity {
            run_name: submitted.name.clone(),
            run_uid: stored.uid.clone(),
            pipeline_name: prepared.plan.pipeline_name.clone(),
        };
        let specs = setup::reporter_specs(&pipeline, spec, &prepared.plan.params)?;
        let Some(reporters) = setup::reporters(
            &registry,
            self.deliveries.get(),
            specs,
            identity,
            &grants,
            secrets.masker(),
            RunStoreOutbox::new(store.clone(), lease),
        )
        .await?
        else {
            return Ok(Vec::new());
        };
        reporters.resume()?;
        Ok(reporters.finish(spec.report_timeout).await)
    }
}
