//! Setting a run up from its spec: what a new run and a run taken over share (secrets,
//! workspaces, grants, options, reporters, snapshots), so both are set up by the same code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use weft_core::contract::ParamValue;
use weft_core::model::Pipeline;

use super::RunService;
use super::spec::{RunSpec, SnapshotRequest, WorkspaceSource};
use crate::execute::{RunOptions, default_parallelism};
use crate::grants::RunGrants;
use crate::mask::RunMasker;
use crate::outbox::OutboxStore;
use crate::policy::SubmissionPolicy;
use crate::registry::PluginRegistry;
use crate::report::{self, ReporterSpec, Reporters, RunIdentity};
use crate::secrets::{SecretMount, SecretStore};
use crate::snapshot::{DEFAULT_KEEP, DEFAULT_MAX_BYTES, SnapshotConfig, SnapshotTarget};

/// One run's secrets: the operator's (those the run may use), the run-scoped ones form
/// decorators set, and its secret workspaces' private directories (removed on drop).
pub(super) struct RunSecrets {
    /// What the run may use.
    pub(super) store: SecretStore,
    /// Operator secrets the run may not use (a submission's policy): still masked.
    withheld: SecretStore,
    mounts: Vec<SecretMount>,
}

impl RunSecrets {
    /// Masks every value the run knows, withheld ones included.
    pub(super) fn masker(&self) -> RunMasker {
        RunMasker::new(self.store.values().chain(self.withheld.values()))
    }
}

impl RunService {
    /// The operator's secrets for a run keeping its files in `data_dir` (`secrets.json`
    /// there, then this process's own), restricted to what `policy` lets a submission use.
    /// What a submission of `tenant` may use: a tenant's own secrets always, the
    /// operator's (those `policy` allows) only in the `default` tenant.
    pub(super) fn tenant_policy(
        &self,
        policy: &SubmissionPolicy,
        tenant: &str,
    ) -> Result<SubmissionPolicy, String> {
        let own: Vec<String> = match &self.config.tenant_secrets {
            Some(source) => source
                .secrets_of(tenant)?
                .names()
                .map(str::to_string)
                .collect(),
            None => Vec::new(),
        };
        let mut allowed = policy.clone();
        if tenant != weft_store::DEFAULT_TENANT {
            allowed.secrets.clear();
        }
        allowed.secrets.extend(own);
        Ok(allowed)
    }

    pub(super) fn run_secrets(
        &self,
        data_dir: &Path,
        policy: Option<&SubmissionPolicy>,
        tenant: &str,
    ) -> Result<RunSecrets, String> {
        // A tenant's secrets are its own, whatever the submission policy; another
        // tenant's run never sees the operator's.
        let own = match &self.config.tenant_secrets {
            Some(source) => source.secrets_of(tenant)?,
            None => SecretStore::new(),
        };
        if tenant != weft_store::DEFAULT_TENANT {
            return Ok(RunSecrets {
                store: own,
                withheld: SecretStore::new(),
                mounts: Vec::new(),
            });
        }
        let (mut store, warnings) = SecretStore::read_file(data_dir)?;
        for warning in warnings {
            self.warn(&warning);
        }
        store.extend(&self.config.secrets);
        let withheld = match policy {
            Some(policy) => {
                store.retain(|name, key| policy.allows_secret(&format!("{name}.{key}")))
            }
            None => SecretStore::new(),
        };
        store.extend(&own);
        Ok(RunSecrets {
            store,
            withheld,
            mounts: Vec::new(),
        })
    }
}

/// The directory of a run's files.
pub(super) fn run_dir(data_dir: &Path, run: &str) -> PathBuf {
    data_dir.join("runs").join(run)
}

/// The run's bound workspaces and those every task mounts read-only: directories as the
/// spec binds them, secret workspaces mounted into private directories, and each
/// required one left unbound a directory under the run's directory.
pub(super) fn bind_workspaces(
    spec: &RunSpec,
    pipeline: &Pipeline,
    run_dir: &Path,
    secrets: &mut RunSecrets,
) -> Result<(BTreeMap<String, PathBuf>, BTreeSet<String>), String> {
    let mut bound = BTreeMap::new();
    let mut read_only = BTreeSet::new();
    for (name, source) in &spec.workspaces {
        if !pipeline.workspaces.iter().any(|w| &w.name.value == name) {
            return Err(format!(
                "workspace `{name}`: the pipeline declares no workspace `{name}`"
            ));
        }
        let dir = match source {
            WorkspaceSource::Directory(dir) => dir.clone(),
            WorkspaceSource::Secret(secret) => {
                let mount = SecretMount::create(&secrets.store, secret, None)
                    .map_err(|e| format!("workspace `{name}` (secret `{secret}`): {e}"))?;
                let dir = mount.path().to_path_buf();
                secrets.mounts.push(mount);
                read_only.insert(name.clone());
                dir
            }
        };
        bound.insert(name.clone(), dir);
    }
    for declared in &pipeline.workspaces {
        let name = &declared.name.value;
        if !bound.contains_key(name) && !declared.optional {
            let dir = run_dir.join("workspaces").join(name);
            create_dir(&dir)?;
            bound.insert(name.clone(), dir);
        }
    }
    for (name, dir) in &bound {
        if !dir.is_dir() {
            return Err(format!(
                "workspace `{name}` ({}): not a directory",
                dir.display()
            ));
        }
    }
    Ok((bound, read_only))
}

/// Creates `dir` and its parents.
pub(super) fn create_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

/// What the run grants its plugins.
pub(super) fn run_grants(
    spec: &RunSpec,
    secrets: &RunSecrets,
    workspaces: BTreeMap<String, PathBuf>,
    read_only_workspaces: BTreeSet<String>,
) -> RunGrants {
    let mut task_limits = weft_runtime::Limits::default();
    // A tenant's memory quota lowers the ceiling, never raises it.
    if let Some(bytes) = spec.quota.as_ref().and_then(|q| q.memory_bytes) {
        task_limits.memory_bytes = task_limits
            .memory_bytes
            .min(usize::try_from(bytes).unwrap_or(usize::MAX));
    }
    RunGrants {
        secrets: secrets.store.flatten(),
        secret_grants: spec.secret_grants.clone(),
        http: spec.http.clone(),
        workspaces,
        read_only_workspaces,
        decorator_timeout: spec.decorator_timeout,
        task_limits,
    }
}

/// The driver's options for the run.
pub(super) fn options(
    spec: &RunSpec,
    name: &str,
    uid: &str,
    grants: RunGrants,
    masker: RunMasker,
    task_slots: Option<std::sync::Arc<crate::fair::TaskSlots>>,
) -> RunOptions {
    RunOptions {
        parallelism: spec.parallelism.unwrap_or_else(default_parallelism).max(1),
        timeouts: spec.timeouts,
        not_before: spec
            .scheduled_at_ms
            .and_then(|ms| u64::try_from(ms).ok())
            .map(|ms| std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)),
        attempt: spec.rerun.as_ref().map_or(1, |rerun| rerun.attempt),
        grants,
        masker,
        tenant: spec.tenant().to_string(),
        tenant_runs: spec.quota.as_ref().and_then(|q| q.concurrent_runs),
        tenant_tasks: spec.quota.as_ref().and_then(|q| q.concurrent_tasks),
        log_budget_bytes: spec.quota.as_ref().and_then(|q| q.log_bytes_per_run),
        cpu_ms_per_hour: spec.quota.as_ref().and_then(|q| q.cpu_ms_per_hour),
        task_slots,
        weight: spec.quota.as_ref().and_then(|q| q.weight).unwrap_or(1),
        ..RunOptions::new(name, uid)
    }
}

/// The run's reporters, ids assigned: the pipeline's `spec.reporters` (config values may
/// use `$(params.NAME)`), then the spec's.
pub(super) fn reporter_specs(
    pipeline: &Pipeline,
    spec: &RunSpec,
    params: &BTreeMap<String, ParamValue>,
) -> Result<Vec<ReporterSpec>, String> {
    let strings: BTreeMap<String, String> = params
        .iter()
        .filter_map(|(name, value)| match value {
            ParamValue::Str(s) => Some((name.clone(), s.clone())),
            _ => None,
        })
        .collect();
    let entries: Vec<serde_json::Value> =
        pipeline.reporters.iter().map(|r| r.value.clone()).collect();
    let mut specs = report::specs_from_pipeline(&entries, &strings)?;
    specs.extend(spec.reporters.iter().cloned());
    report::assign_ids(&mut specs);
    Ok(specs)
}

/// Checks that every reporter names a reporter plugin, before anything is created.
pub(super) async fn check_reporters(
    registry: &PluginRegistry,
    specs: &[ReporterSpec],
) -> Result<(), String> {
    for spec in specs {
        Reporters::check(registry, spec).await?;
    }
    Ok(())
}

/// The run's reporters, or `None` when it has none; `deliveries` is told how each
/// delivery attempt goes.
pub(super) async fn reporters(
    registry: &PluginRegistry,
    deliveries: Option<&Arc<dyn crate::observe::DeliveryObserver>>,
    specs: Vec<ReporterSpec>,
    run: RunIdentity,
    grants: &RunGrants,
    masker: RunMasker,
    outbox: Arc<dyn OutboxStore>,
) -> Result<Option<Arc<Reporters>>, String> {
    if specs.is_empty() {
        return Ok(None);
    }
    let reporters = Reporters::new(registry, specs, run, grants, masker, outbox).await?;
    if let Some(deliveries) = deliveries {
        reporters.observe_deliveries(deliveries.clone());
    }
    Ok(Some(Arc::new(reporters)))
}

/// The run's snapshot configuration, or `None` when snapshots are off: on when the
/// pipeline sets `spec.workspaceSnapshots: true` or the request turns them on (a request
/// turning them off wins). Bound, writable, non-secret workspaces are archived.
pub(super) fn snapshot_config(
    request: &SnapshotRequest,
    pipeline: &Pipeline,
    workspaces: &BTreeMap<String, PathBuf>,
    read_only: &BTreeSet<String>,
) -> Result<Option<SnapshotConfig>, String> {
    let enabled = request.enabled.unwrap_or(pipeline.workspace_snapshots);
    if !enabled {
        if request.max_bytes.is_some() || request.keep.is_some() {
            return Err(
                "a snapshot limit (size or count) needs workspace snapshots: set `spec.workspaceSnapshots: true` in the pipeline or turn snapshots on (--workspace-snapshots)"
                    .into(),
            );
        }
        return Ok(None);
    }
    let target = SnapshotTarget::parse(request.target.as_deref().unwrap_or("db"))
        .map_err(|e| format!("workspace snapshots: {e}"))?;
    let max_bytes = request.max_bytes.unwrap_or(DEFAULT_MAX_BYTES);
    if max_bytes == 0 {
        return Err("the snapshot size limit must be more than 0 bytes".into());
    }
    let keep = request.keep.unwrap_or(DEFAULT_KEEP);
    if keep == 0 {
        return Err("snapshots kept per workspace must be at least 1".into());
    }
    if matches!(target, SnapshotTarget::Database) {
        let limits = weft_store::StoreLimits::default();
        if max_bytes > limits.snapshot_max_bytes {
            return Err(format!(
                "snapshots of {max_bytes} bytes: the run store takes snapshots of at most {} bytes; use a directory target for larger ones",
                limits.snapshot_max_bytes
            ));
        }
        if keep > limits.snapshots_per_run {
            return Err(format!(
                "{keep} snapshots per workspace: the run store keeps at most {}",
                limits.snapshots_per_run
            ));
        }
    }
    Ok(Some(SnapshotConfig {
        target,
        max_bytes,
        keep,
        workspaces: workspaces
            .keys()
            .filter(|name| !read_only.contains(*name))
            .cloned()
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn pipeline(snapshots: bool) -> Pipeline {
        let source = format!(
            "apiVersion: weft.dev/v1\nkind: Pipeline\nmetadata: {{name: p}}\nspec:\n  \
             workspaceSnapshots: {snapshots}\n  workspaces: [{{name: src}}, {{name: creds}}]\n  \
             tasks:\n    - {{name: a, taskRef: {{name: echo}}}}\n"
        );
        weft_core::parse_pipeline(&source, "p.yaml").unwrap()
    }

    fn bound() -> BTreeMap<String, PathBuf> {
        [("src", "/tmp/src"), ("creds", "/tmp/creds")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), PathBuf::from(v)))
            .collect()
    }

    fn request(
        enabled: Option<bool>,
        target: Option<&str>,
        max_bytes: Option<u64>,
        keep: Option<u32>,
    ) -> SnapshotRequest {
        SnapshotRequest {
            enabled,
            target: target.map(str::to_string),
            max_bytes,
            keep,
        }
    }

    #[test]
    fn the_pipeline_or_the_request_turns_snapshots_on() {
        let secret: BTreeSet<String> = ["creds".to_string()].into();
        // (what, request, pipeline sets workspaceSnapshots, expected (max_bytes, keep) or off)
        let table = [
            (
                "off by default",
                request(None, None, None, None),
                false,
                None,
            ),
            (
                "the pipeline turns them on",
                request(None, None, None, None),
                true,
                Some((DEFAULT_MAX_BYTES, DEFAULT_KEEP)),
            ),
            (
                "the request turns them on with limits",
                request(Some(true), Some("db"), Some(1 << 20), Some(2)),
                false,
                Some((1 << 20, 2)),
            ),
            (
                "the request turns them off",
                request(Some(false), None, None, None),
                true,
                None,
            ),
        ];
        for (what, request, in_pipeline, expected) in table {
            let got = snapshot_config(&request, &pipeline(in_pipeline), &bound(), &secret).unwrap();
            assert_eq!(
                got.as_ref().map(|c| (c.max_bytes, c.keep)),
                expected,
                "{what}"
            );
            if let Some(config) = got {
                assert!(matches!(config.target, SnapshotTarget::Database), "{what}");
                assert_eq!(
                    config.workspaces.iter().collect::<Vec<_>>(),
                    ["src"],
                    "{what}: secret workspaces are never archived"
                );
            }
        }
    }

    #[test]
    fn impossible_requests_are_refused() {
        let none = BTreeSet::new();
        let p = pipeline(false);
        for (request, why) in [
            (
                request(None, None, None, Some(2)),
                "needs workspace snapshots",
            ),
            (
                request(Some(true), Some("db"), Some(0), None),
                "more than 0",
            ),
            (
                request(Some(true), Some("db"), Some(1 << 30), None),
                "at most",
            ),
            (request(Some(true), Some("db"), None, Some(0)), "at least 1"),
            (
                request(Some(true), Some("db"), None, Some(100)),
                "at most 16",
            ),
            (
                request(Some(true), Some("s3://bucket/x"), None, None),
                "s3://bucket/x",
            ),
        ] {
            let err = snapshot_config(&request, &p, &bound(), &none).unwrap_err();
            assert!(err.contains(why), "{request:?}: {err}");
        }
    }
}
