//! A spec becomes a run: checked, decorated, validated, recorded with its spec under a
//! fresh lease, and set up. Nothing is created when any step refuses it.

use std::sync::Arc;

use weft_store::{NewRun, RunStore, StoreError, Timestamp};

use super::live::LiveRun;
use super::setup;
use super::spec::{RUN_SPEC_VERSION, Rerun, RunSpec, StoredRun};
use super::{RunService, SubmitError};
use crate::decorate::{self, DecoratorLog};
use crate::outbox::RunStoreOutbox;
use crate::persist::Durable;
use crate::prepare::prepare_parsed;
use crate::report::RunIdentity;

/// A new run, ready to execute.
pub struct Submitted {
    /// The run.
    pub run: LiveRun,
    /// What its form decorators logged (masked).
    pub decorator_log: Vec<DecoratorLog>,
}

impl RunService {
    /// Validates `spec` (form decorators first), records the run in the store with its
    /// spec and sets it up. Nothing is created when this fails.
    pub async fn submit(&self, spec: RunSpec) -> Result<Submitted, SubmitError> {
        let parsed = spec.pipeline.parse();
        self.submit_parsed(spec, parsed).await
    }

    /// [`RunService::submit`] of a spec whose files the caller already parsed: `parsed`
    /// must be what `spec.pipeline.parse()` returns (the CLI parses them to read a
    /// `PipelineRun`; a large pipeline is then parsed once, not twice).
    pub async fn submit_parsed(
        &self,
        spec: RunSpec,
        parsed: weft_core::RunFiles,
    ) -> Result<Submitted, SubmitError> {
        let invalid = |diagnostics, decorator_log| SubmitError::Invalid {
            diagnostics,
            decorator_log,
        };
        let source = &spec.pipeline;
        // The checks below read the pipeline; `prepare_parsed` plans it.
        let pipeline = match &parsed.pipeline {
            Some(pipeline) if parsed.diagnostics.is_empty() => pipeline,
            _ => return Err(invalid(parsed.diagnostics, Vec::new())),
        };
        if let Some(name) = &spec.name
            && !weft_core::validate::is_dns1123_subdomain(name)
        {
            return Err(SubmitError::Refused(format!(
                "run name `{name}`: run names are DNS-1123 subdomains (lowercase letters, digits, `-`, `.`)"
            )));
        }
        if let Some(at) = spec.scheduled_at_ms
            && spec.rerun.is_none()
            && at < Timestamp::now().0
        {
            return Err(SubmitError::Refused(format!(
                "the run is scheduled for {}, which is in the past",
                crate::observe::describe_time(
                    std::time::UNIX_EPOCH + std::time::Duration::from_millis(at.max(0) as u64)
                )
            )));
        }
        if spec.parallelism == Some(0) {
            return Err(SubmitError::Refused(
                "parallelism must be at least 1".into(),
            ));
        }
        if let Some(policy) = &spec.policy {
            let policy = self
                .tenant_policy(policy, spec.tenant())
                .map_err(SubmitError::Environment)?;
            let refused = policy.check(pipeline, &spec.secret_grants, &spec.reporters);
            if !refused.is_empty() {
                return Err(invalid(refused, Vec::new()));
            }
        }
        let data_dir = spec
            .data_dir
            .clone()
            .unwrap_or_else(|| self.config.data_dir.clone());
        // A tenant's runs find its own uploaded plugins too.
        let registry = self
            .registry_for(spec.tenant())
            .map_err(SubmitError::Environment)?;
        let mut secrets = self
            .run_secrets(&data_dir, spec.policy.as_ref(), spec.tenant())
            .map_err(SubmitError::Environment)?;

        // Form decorators shape the params and add run secrets, before validation.
        let mut params = spec.params.clone();
        let mut decorator_log = Vec::new();
        let mut changes = Vec::new();
        if !pipeline.decorators.is_empty() {
            let grants = setup::run_grants(&spec, &secrets, Default::default(), Default::default());
            match decorate::decorate_submission(
                &registry,
                pipeline,
                params,
                &secrets.store,
                &grants,
            )
            .await
            {
                Ok(decorated) => {
                    secrets.store.extend(&decorated.run_secrets);
                    params = decorated.params;
                    decorator_log = decorated.log;
                    changes = decorated.changes;
                }
                Err(err) => return Err(invalid(vec![err.diagnostic], err.log)),
            }
        }
        let prepared = prepare_parsed(&registry, source, &parsed, &params)
            .await
            .map_err(|found| invalid(found, decorator_log.clone()))?;
        for task in spec.http.tasks.keys() {
            if prepared.plan.task_nodes(task).is_none() {
                return Err(SubmitError::Refused(format!(
                    "HTTP rules for task `{task}`: the pipeline has no task `{task}`"
                )));
            }
        }
        for task in spec.secret_grants.tasks.keys() {
            if prepared.plan.task_nodes(task).is_none() {
                return Err(SubmitError::Refused(format!(
                    "secrets granted to task `{task}`: the pipeline has no task `{task}`"
                )));
            }
        }

        let reporter_specs = setup::reporter_specs(pipeline, &spec, &prepared.plan.params)
            .map_err(SubmitError::Refused)?;
        setup::check_reporters(&registry, &reporter_specs)
            .await
            .map_err(SubmitError::Refused)?;

        let uid = uuid::Uuid::new_v4().to_string();
        let name = spec
            .name
            .clone()
            .unwrap_or_else(|| format!("{}-{}", prepared.plan.pipeline_name, &uid[..8]));
        // A re-run is another attempt of the same run (already stored under its tenant's
        // qualified name): its own id, the run's name.
        let (id, name) = match &spec.rerun {
            Some(rerun) => (Rerun::id(&rerun.of, rerun.attempt), rerun.of.clone()),
            None => {
                let stored =
                    weft_store::tenants::qualify(spec.tenant(), &name).ok_or_else(|| {
                        SubmitError::Refused(format!("run name `{name}`: `_` is in no run name"))
                    })?;
                (stored.clone(), stored)
            }
        };
        let store = self.store().map_err(SubmitError::Environment)?;
        let journal: Arc<dyn RunStore> = store;
        let carried = match &spec.rerun {
            Some(rerun) if rerun.failed_only => super::rerun::carried(&*journal, &rerun.previous)
                .map_err(SubmitError::Environment)?,
            _ => Default::default(),
        };
        if journal
            .run(&id)
            .map_err(|e| SubmitError::Environment(format!("run store: {e}")))?
            .is_some()
        {
            return Err(SubmitError::Exists(id));
        }
        let run_dir = setup::run_dir(&data_dir, &id);
        setup::create_dir(&run_dir).map_err(SubmitError::Environment)?;
        // The embedded secret store is created (empty, private) on first use, for
        // operators to fill in.
        crate::secrets::SecretStore::ensure_file(&data_dir).map_err(SubmitError::Environment)?;
        let (workspaces, read_only) =
            setup::bind_workspaces(&spec, pipeline, &run_dir, &mut secrets)
                .map_err(SubmitError::Refused)?;
        let snapshots = setup::snapshot_config(&spec.snapshots, pipeline, &workspaces, &read_only)
            .map_err(SubmitError::Refused)?;
        let masker = secrets.masker();
        let grants = setup::run_grants(&spec, &secrets, workspaces, read_only);
        let mut options = setup::options(
            &spec,
            &name,
            &uid,
            grants,
            masker.clone(),
            self.config.task_slots.clone(),
        );
        options.snapshots = snapshots;
        options.carried = carried;

        // Recorded before anything runs; secret values never are. The pipeline's text is
        // kept once, in the run's column: the stored spec leaves it out (version 2).
        let recovery = pipeline
            .recovery
            .as_ref()
            .map_or(weft_store::Recovery::None, |r| r.value.into());
        // Planned and read: the parsed pipeline goes before the run is recorded and runs.
        drop(parsed);
        let mut spec = spec;
        let pipeline_source = std::mem::take(&mut spec.pipeline.source);
        let options_json = StoredRun {
            version: RUN_SPEC_VERSION,
            uid: uid.clone(),
            data_dir: data_dir.clone(),
            spec: spec.clone(),
        }
        .to_json();
        let new_run = NewRun {
            id: id.clone(),
            name: name.clone(),
            pipeline_name: prepared.plan.pipeline_name.clone(),
            pipeline_source,
            params_json: serde_json::to_string(&params).unwrap_or_else(|_| "{}".into()),
            options_json,
            created_at: Timestamp::now(),
            recovery,
        };
        let lease = journal
            .create_run(&new_run, &self.config.owner, Timestamp::now())
            .map_err(|e| match e {
                StoreError::AlreadyExists { .. } => SubmitError::Exists(id.clone()),
                e => SubmitError::Environment(format!("run store: {e}")),
            })?;
        if !changes.is_empty()
            && let Err(err) = decorate::record_decorations(&*journal, &lease, &changes)
        {
            self.warn(&format!(
                "cannot record what the form decorators changed: {err}"
            ));
        }
        options.durable = Some(Durable {
            store: journal.clone(),
            lease: lease.clone(),
            attempt_base: Default::default(),
            replay: None,
            heartbeat_every: self.config.heartbeat_every,
            lease_ttl: self.config.lease_ttl,
        });
        let identity = RunIdentity {
            run_name: name.clone(),
            run_uid: uid,
            pipeline_name: prepared.plan.pipeline_name.clone(),
        };
        let reporters = setup::reporters(
            &registry,
            self.deliveries.get(),
            reporter_specs,
            identity,
            &options.grants,
            masker,
            RunStoreOutbox::new(journal, lease),
        )
        .await
        .map_err(SubmitError::Environment)?;
        if let Some(reporters) = &reporters {
            reporters.submitted();
        }
        Ok(Submitted {
            run: LiveRun::new(
                id,
                run_dir,
                prepared,
                options,
                reporters,
                secrets,
                spec.report_timeout,
            ),
            decorator_log,
        })
    }
}
