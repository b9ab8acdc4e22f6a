//! `weft run`'s secrets, grants, secret workspaces and status reporters: the command-line
//! side of `weft_engine::secrets` and `weft_engine::report`, kept apart from `main.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use weft_core::contract::ParamValue;
use weft_engine::mask::RunMasker;
use weft_engine::report::{self, Reporters, RunIdentity};
use weft_engine::secrets::{RunAccess, SecretMount, SecretStore};
use weft_engine::{PluginRegistry, RunObserver};
use weft_runtime::HttpRule;

use crate::Failure;
use weft_engine::policy::SubmissionPolicy;

/// The prefix of a `--workspace NAME=secret:SECRET` binding.
pub const SECRET_WORKSPACE: &str = "secret:";

/// Secrets and grants of one run. Holds the secret workspaces' directories: they are
/// removed when this is dropped (after the run).
pub struct RunSecrets {
    /// Every secret: the embedded file, then `--secret` flags.
    pub store: SecretStore,
    /// `--grant` and read-only secret workspaces.
    pub access: RunAccess,
    mounts: Vec<SecretMount>,
    /// Secrets this run may not use (a submission's policy), still masked everywhere.
    withheld: SecretStore,
}

impl RunSecrets {
    /// Reads `secrets.json` from `data_dir` (creating nothing) and applies `--secret` and
    /// `--grant`. Warnings
    /// (short values, loose permissions) go to stderr; they never contain values.
    pub fn load(
        secret_flags: &[String],
        grant_flags: &[String],
        data_dir: &Path,
    ) -> Result<RunSecrets, Failure> {
        let (mut store, warnings) =
            SecretStore::read_file(data_dir).map_err(Failure::environment)?;
        for warning in warnings {
            eprintln!("weft: warning: {warning}");
        }
        for flag in secret_flags {
            if let Some(warning) = store.add_flag(flag).map_err(Failure::invalid)? {
                eprintln!("weft: warning: {warning}");
            }
        }
        let mut access = RunAccess::default();
        for flag in grant_flags {
            access.add_grant_flag(flag).map_err(Failure::invalid)?;
        }
        Ok(RunSecrets {
            store,
            access,
            mounts: Vec::new(),
            withheld: SecretStore::new(),
        })
    }

    /// Keeps only the secrets `policy` lets a submission use; the others stay masked in
    /// everything the run's plugins hand back, but nothing can be granted them.
    pub fn restrict(&mut self, policy: &SubmissionPolicy) {
        let withheld = self
            .store
            .retain(|name, key| policy.allows_secret(&format!("{name}.{key}")));
        self.withheld.extend(&withheld);
    }

    /// Mounts `--workspace NAME=secret:SECRET` bindings into private directories and binds
    /// them in `bound` (read-only for every task).
    pub fn mount_workspaces(
        &mut self,
        secret_workspaces: &[(String, String)],
        bound: &mut BTreeMap<String, PathBuf>,
    ) -> Result<(), Failure> {
        for (workspace, secret) in secret_workspaces {
            let mount = SecretMount::create(&self.store, secret, None).map_err(|e| {
                Failure::invalid(format!(
                    "--workspace {workspace}={SECRET_WORKSPACE}{secret}: {e}"
                ))
            })?;
            bound.insert(workspace.clone(), mount.path().to_path_buf());
            self.access.read_only_workspaces.insert(workspace.clone());
            self.mounts.push(mount);
        }
        Ok(())
    }

    /// Masks every secret value the run knows (the operator's, the decorators', secret
    /// workspaces' files) in what its plugins hand back.
    pub fn masker(&self) -> RunMasker {
        RunMasker::new(self.store.values().chain(self.withheld.values()))
    }
}

/// The reporters of a run: `spec.reporters` of the pipeline, then `--report` flags.
/// Returns `None` when there are none. New runs then call [`Reporters::submitted`],
/// recovered ones [`Reporters::resume`].
#[allow(clippy::too_many_arguments)]
pub async fn reporters(
    registry: &PluginRegistry,
    pipeline: &weft_core::model::Pipeline,
    report_flags: &[String],
    params: &BTreeMap<String, ParamValue>,
    run: RunIdentity,
    secrets: &RunSecrets,
    http: &[HttpRule],
    outbox: Arc<dyn weft_engine::outbox::OutboxStore>,
    inner: Arc<dyn RunObserver>,
) -> Result<Option<Arc<Reporters>>, Failure> {
    let strings: BTreeMap<String, String> = params
        .iter()
        .filter_map(|(name, value)| match value {
            ParamValue::Str(s) => Some((name.clone(), s.clone())),
            _ => None,
        })
        .collect();
    let entries: Vec<serde_json::Value> =
        pipeline.reporters.iter().map(|r| r.value.clone()).collect();
    let mut specs = report::specs_from_pipeline(&entries, &strings).map_err(Failure::invalid)?;
    for flag in report_flags {
        specs.push(report::spec_from_flag(flag).map_err(Failure::invalid)?);
    }
    if specs.is_empty() {
        return Ok(None);
    }
    report::assign_ids(&mut specs);
    let reporters = Reporters::new(
        registry,
        specs,
        run,
        &secrets.store.flatten(),
        http.to_vec(),
        outbox,
        inner,
    )
    .await
    .map_err(Failure::invalid)?;
    Ok(Some(Arc::new(reporters)))
}

/// Waits (at most `--report-timeout`) for the statuses to be delivered and says on stderr
/// which were not.
pub async fn finish_reporting(reporters: Option<&Arc<Reporters>>, timeout: Duration) {
    let Some(reporters) = reporters else {
        return;
    };
    for missed in reporters.finish(timeout).await {
        let why = if missed.permanent {
            format!("it was refused: {}", missed.error)
        } else if missed.error.is_empty() {
            format!("gave up waiting after {}s", timeout.as_secs())
        } else {
            format!(
                "gave up waiting after {}s (last error: {})",
                timeout.as_secs(),
                missed.error
            )
        };
        eprintln!(
            "weft: warning: status `{:?}` for `{}` was not reported by {}: {why}",
            missed.desired, missed.context, missed.reporter
        );
    }
}
