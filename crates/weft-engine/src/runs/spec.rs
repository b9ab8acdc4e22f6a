//! [`RunSpec`]: everything about how a run was asked for, as plain, versioned data. Only
//! weft-cli (flags) and `weft serve` (JSON) turn user syntax into it; the engine takes it,
//! the store keeps it (never flags), and a recovering engine reads it back to set the run
//! up again.
//!
//! # Versions
//!
//! [`RUN_SPEC_VERSION`] is written with every stored run ([`StoredRun`]). Reading a stored
//! run checks it: a run stored by a weft from before run specs (its record holds the
//! command-line flags as written) is refused with a message saying so, never guessed at.
//! Version 2 keeps the pipeline's text once, in the run's `pipeline_source` column: the
//! stored spec's `pipeline.source` is written empty and filled from the column when read
//! ([`StoredRun::read`]). Version 1 records, which hold the text themselves, are read as
//! they are.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_core::contract::ParamValue;

pub use crate::source::{PipelineSource, ReferencedFile};

use crate::execute::RunTimeouts;
use crate::grants::{HttpGrants, SecretGrants};
use crate::policy::SubmissionPolicy;
use crate::report::ReporterSpec;

/// The version of [`RunSpec`] this build writes (it reads this one and the one before).
pub const RUN_SPEC_VERSION: u32 = 2;

/// The first version whose stored spec leaves the pipeline's text to the run's column.
const SOURCE_IN_COLUMN_SINCE: u32 = 2;

/// How a run was asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunSpec {
    /// The pipeline, as submitted.
    pub pipeline: PipelineSource,
    /// The run's name; `None` gives `<pipeline>-<8 hex digits>`.
    #[serde(default)]
    pub name: Option<String>,
    /// Params as submitted (the pipeline's defaults apply to the rest).
    #[serde(default)]
    pub params: BTreeMap<String, ParamValue>,
    /// Pipeline workspaces bound by the submitter; unbound required ones get a fresh
    /// directory under the run's directory.
    #[serde(default)]
    pub workspaces: BTreeMap<String, WorkspaceSource>,
    /// Secrets granted by name (on top of each entry's `secrets:`).
    #[serde(default)]
    pub secret_grants: SecretGrants,
    /// Outbound HTTP the run's plugins may use.
    #[serde(default)]
    pub http: HttpGrants,
    /// Status reporters besides the pipeline's `spec.reporters` (e.g. `--report`).
    #[serde(default)]
    pub reporters: Vec<ReporterSpec>,
    /// Run timeouts.
    #[serde(default)]
    pub timeouts: RunTimeouts,
    /// How many task attempts run at once; `None`: 4 per core.
    #[serde(default)]
    pub parallelism: Option<usize>,
    /// How long statuses may take to be delivered after the run.
    #[serde(default = "default_report_timeout", with = "millis")]
    pub report_timeout: Duration,
    /// How long each form decorator may run.
    #[serde(default = "default_decorator_timeout", with = "millis")]
    pub decorator_timeout: Duration,
    /// Workspace snapshots.
    #[serde(default)]
    pub snapshots: SnapshotRequest,
    /// Where the run keeps its logs, report and default workspaces; `None`: the engine's
    /// data directory.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// For a `weft serve` submission: what it may use.
    #[serde(default)]
    pub policy: Option<SubmissionPolicy>,
    /// When the run starts, in milliseconds since the Unix epoch (`weft run --at/--in`,
    /// the API's `scheduledAt`): until then it waits in phase `Scheduled`.
    #[serde(default)]
    pub scheduled_at_ms: Option<i64>,
    /// Set on a re-run: which attempt of which run it is.
    #[serde(default)]
    pub rerun: Option<Rerun>,
    /// The tenant that owns the run (`weft serve` with tenants); `None`: `default`. Its
    /// name is stored qualified by the tenant (`weft_store::tenants::qualify`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The tenant's quotas the run is held to (kept with it, so a run taken over keeps
    /// the ones it was accepted under).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<RunQuota>,
}

/// A tenant's quotas as a run is held to them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunQuota {
    /// How many of the tenant's runs go at once; the rest wait in phase `Queued`.
    #[serde(default)]
    pub concurrent_runs: Option<u32>,
    /// Linear memory per task attempt, at most the server's ceiling.
    #[serde(default)]
    pub memory_bytes: Option<u64>,
    /// How many of the tenant's task attempts run at once (across its runs and servers).
    #[serde(default)]
    pub concurrent_tasks: Option<u32>,
    /// Bytes of log lines the whole run keeps; past it one marker, then nothing.
    #[serde(default)]
    pub log_bytes_per_run: Option<u64>,
    /// Guest CPU milliseconds the tenant's tasks may use per rolling hour.
    #[serde(default)]
    pub cpu_ms_per_hour: Option<u64>,
    /// The tenant's weight in the fair share of the server's task slots (1..=100; `None`:
    /// 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
}

/// A re-run of a finished run (release-control.md section 6): attempt `attempt` of the
/// run named `of`, stored under the id `<of>~<attempt>` beside the earlier attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rerun {
    /// The run's name (its first attempt's id).
    pub of: String,
    /// This attempt's number (2 and up).
    pub attempt: u32,
    /// The id of the attempt it follows.
    pub previous: String,
    /// Tasks that succeeded in the previous attempt keep their outcome and results and do
    /// not run.
    pub failed_only: bool,
}

impl Rerun {
    /// The store id of attempt `attempt` of run `name`: the name itself for the first.
    pub fn id(name: &str, attempt: u32) -> String {
        if attempt <= 1 {
            name.to_string()
        } else {
            format!("{name}~{attempt}")
        }
    }
}

/// The default of [`RunSpec::report_timeout`].
pub const DEFAULT_REPORT_TIMEOUT: Duration = Duration::from_secs(30);

fn default_report_timeout() -> Duration {
    DEFAULT_REPORT_TIMEOUT
}

fn default_decorator_timeout() -> Duration {
    crate::grants::DEFAULT_DECORATOR_TIMEOUT
}

impl RunSpec {
    /// A run of `source` (its file name for diagnostics: `file`) with every default.
    pub fn new(source: impl Into<String>, file: impl Into<String>) -> Self {
        RunSpec {
            pipeline: PipelineSource::new(source, file),
            name: None,
            params: BTreeMap::new(),
            workspaces: BTreeMap::new(),
            secret_grants: SecretGrants::default(),
            http: HttpGrants::default(),
            reporters: Vec::new(),
            timeouts: RunTimeouts::default(),
            parallelism: None,
            report_timeout: DEFAULT_REPORT_TIMEOUT,
            decorator_timeout: crate::grants::DEFAULT_DECORATOR_TIMEOUT,
            snapshots: SnapshotRequest::default(),
            data_dir: None,
            policy: None,
            scheduled_at_ms: None,
            rerun: None,
            tenant: None,
            quota: None,
        }
    }

    /// The tenant that owns the run.
    pub fn tenant(&self) -> &str {
        self.tenant.as_deref().unwrap_or(weft_store::DEFAULT_TENANT)
    }

    /// Every secret name the spec grants by name (tasks and decorators).
    pub fn granted_secret_names(&self) -> BTreeSet<&str> {
        self.secret_grants
            .tasks
            .values()
            .chain(self.secret_grants.decorators.values())
            .flatten()
            .map(String::as_str)
            .collect()
    }
}

/// The pipeline a stored run runs, read from its stored spec (its referenced files too);
/// `None` when it no longer parses.
pub fn stored_pipeline(record: &weft_store::RunRecord) -> Option<weft_core::Pipeline> {
    let submitted = &record.submitted;
    match StoredRun::read(&submitted.id, submitted) {
        Ok(stored) => {
            let parsed = stored.spec.pipeline.parse_with(&submitted.pipeline_source);
            parsed.pipeline.filter(|_| parsed.diagnostics.is_empty())
        }
        Err(_) => {
            weft_core::parse_pipeline(&submitted.pipeline_source, &submitted.pipeline_name).ok()
        }
    }
}

/// The plan of a stored run, for drawing it (`weft runs show --graph`): planned with its
/// stored params and limits, no plugin looked up; `None` when it no longer plans.
pub fn stored_plan(record: &weft_store::RunRecord) -> Option<weft_core::Plan> {
    let submitted = &record.submitted;
    let pipeline = stored_pipeline(record)?;
    let params: BTreeMap<String, weft_core::contract::ParamValue> =
        serde_json::from_str(&submitted.params_json).ok()?;
    let limits = StoredRun::read(&submitted.id, submitted)
        .map(|stored| stored.spec.pipeline.limits())
        .unwrap_or_default();
    weft_core::Plan::with_limits(&pipeline, &params, None, &limits).ok()
}

/// What a bound workspace is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum WorkspaceSource {
    /// A host directory (the operator's: `weft serve` submissions never bind one).
    Directory(PathBuf),
    /// A secret's keys as read-only files in a private directory removed after the run
    /// (`--workspace NAME=secret:SECRET`).
    Secret(String),
}

/// Workspace snapshots as asked for; the pipeline's `spec.workspaceSnapshots` decides
/// what is left open.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SnapshotRequest {
    /// `Some(false)` turns snapshots off even when the pipeline asks for them;
    /// `Some(true)` turns them on; `None`: as the pipeline says.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Where: `db` (the run store, the default), a directory or a `file:///DIR` URL.
    #[serde(default)]
    pub target: Option<String>,
    /// Largest compressed archive, in bytes.
    #[serde(default)]
    pub max_bytes: Option<u64>,
    /// Snapshots kept per workspace.
    #[serde(default)]
    pub keep: Option<u32>,
}

/// What the store keeps of a run besides its journal: its spec, and the facts fixed when
/// it was created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredRun {
    /// [`RUN_SPEC_VERSION`] when written.
    pub version: u32,
    /// The run's unique id (`$(context.pipelineRun.uid)`, the outbox's run key).
    pub uid: String,
    /// Where its logs, report and default workspaces are.
    pub data_dir: PathBuf,
    /// How it was asked for.
    pub spec: RunSpec,
}

impl StoredRun {
    /// Reads what the store keeps of `run` (its `options_json`, with the pipeline's text
    /// from its `pipeline_source` column), refusing a record this build cannot read.
    pub fn read(run: &str, submitted: &weft_store::NewRun) -> Result<StoredRun, String> {
        let mut stored = StoredRun::from_json(run, &submitted.options_json)?;
        if stored.version >= SOURCE_IN_COLUMN_SINCE {
            stored.spec.pipeline.source = submitted.pipeline_source.clone();
        }
        Ok(stored)
    }

    /// Reads a stored run's record as written (a version 2 record without the pipeline's
    /// text: see [`StoredRun::read`]), refusing one this build cannot read (say why).
    pub fn from_json(run: &str, text: &str) -> Result<StoredRun, String> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| format!("run `{run}`: its stored spec is not JSON: {e}"))?;
        match value.get("version").and_then(serde_json::Value::as_u64) {
            None => {
                return Err(format!(
                    "run `{run}` was stored by a weft from before run specs (it kept command-line flags); finish it with that version, or start it again"
                ));
            }
            Some(v) if v == 0 || v > u64::from(RUN_SPEC_VERSION) => {
                return Err(format!(
                    "run `{run}` was stored with run spec version {v}; this weft reads version {RUN_SPEC_VERSION}"
                ));
            }
            Some(_) => {}
        }
        serde_json::from_value(value)
            .map_err(|e| format!("run `{run}`: its stored spec cannot be read: {e}"))
    }

    /// The record as JSON, whole (the caller leaves `spec.pipeline.source` empty when
    /// the text goes to the run's column, as a version 2 record does).
    pub fn to_json(&self) -> String {
        // Plain data (strings, maps, numbers): encoding cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

/// `Duration` as milliseconds.
pub(crate) mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// `Option<Duration>` as milliseconds.
pub(crate) mod optional_millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|ms| ms.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_runtime::HttpRule;

    fn full() -> RunSpec {
        let mut spec = RunSpec::new("apiVersion: weft.dev/v1\n", "p.yaml");
        spec.name = Some("r1".into());
        spec.params
            .insert("branch".into(), ParamValue::Str("main".into()));
        spec.workspaces
            .insert("src".into(), WorkspaceSource::Directory("/w/src".into()));
        spec.workspaces
            .insert("creds".into(), WorkspaceSource::Secret("deploy".into()));
        spec.secret_grants
            .tasks
            .insert("report".into(), BTreeSet::from(["gitlab-token".into()]));
        spec.http
            .all
            .push(HttpRule::parse("!private:127.0.0.1:8080").expect("rule"));
        spec.http.reporters = Some(vec![HttpRule::parse("gitlab.example.com").expect("rule")]);
        spec.timeouts.tasks = Some(Duration::from_millis(1500));
        spec.snapshots.enabled = Some(true);
        spec.snapshots.keep = Some(2);
        spec.pipeline.referenced.push(ReferencedFile {
            file: "lib/build.yaml".into(),
            source: "apiVersion: tekton.dev/v1\n".into(),
        });
        spec
    }

    #[test]
    fn a_stored_run_reads_back_as_written() {
        let stored = StoredRun {
            version: RUN_SPEC_VERSION,
            uid: "u".into(),
            data_dir: "/data".into(),
            spec: full(),
        };
        let back = StoredRun::from_json("r1", &stored.to_json()).expect("reads");
        assert_eq!(back, stored);
    }

    /// Version 2 keeps the pipeline's text in the run's column only; a version 1 record,
    /// which holds it itself, still reads.
    #[test]
    fn the_source_is_stored_once_and_version_1_records_still_read() {
        let spec = full();
        let text = spec.pipeline.source.clone();
        let mut written = StoredRun {
            version: RUN_SPEC_VERSION,
            uid: "u".into(),
            data_dir: "/data".into(),
            spec,
        };
        written.spec.pipeline.source = String::new();
        let record = |options_json: String| weft_store::NewRun {
            id: "r1".into(),
            name: "r1".into(),
            pipeline_name: "p".into(),
            pipeline_source: text.clone(),
            params_json: "{}".into(),
            options_json,
            created_at: weft_store::Timestamp(0),
            recovery: weft_store::Recovery::None,
        };
        let json = written.to_json();
        assert!(!json.contains("weft.dev/v1"), "{json}");
        let back = StoredRun::read("r1", &record(json)).expect("reads");
        assert_eq!(back.spec.pipeline.source, text);
        // Version 1: the text in the record, the column ignored.
        let mut old = serde_json::to_value(StoredRun {
            version: 1,
            uid: "u".into(),
            data_dir: "/data".into(),
            spec: full(),
        })
        .expect("json");
        old["spec"]["pipeline"]["source"] = serde_json::json!("kept in the record\n");
        let back = StoredRun::read("r1", &record(old.to_string())).expect("reads");
        assert_eq!(back.spec.pipeline.source, "kept in the record\n");
    }

    #[test]
    fn old_and_unreadable_records_are_refused_with_a_reason() {
        // What weft stored before run specs: the flags as written.
        let legacy = r#"{"file":"p.yaml","httpAllow":["example.com"],"grants":["t=s"]}"#;
        let err = StoredRun::from_json("old", legacy).expect_err("refused");
        assert!(err.contains("before run specs"), "{err}");
        let future = r#"{"version":99,"uid":"u","dataDir":"/d","spec":{}}"#;
        let err = StoredRun::from_json("new", future).expect_err("refused");
        assert!(err.contains("version 99"), "{err}");
        // A stored HTTP rule that no longer parses is an error, never dropped.
        let mut stored = serde_json::to_value(StoredRun {
            version: RUN_SPEC_VERSION,
            uid: "u".into(),
            data_dir: "/data".into(),
            spec: full(),
        })
        .expect("json");
        stored["spec"]["http"]["all"][0] = serde_json::json!("ftp://example.com");
        let err = StoredRun::from_json("bad", &stored.to_string()).expect_err("refused");
        assert!(err.contains("HTTP rule"), "{err}");
    }
}
