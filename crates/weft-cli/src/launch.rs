//! Starting a run, new or taken over: what `weft run`, `weft runs recover` and
//! `weft serve` share. A new run is validated, recorded in the store under a fresh lease,
//! and given its secrets, grants and reporters; a recovered run gets the same from what
//! the store kept of how it was asked for (names only: secret values come from this
//! engine's secret store).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use weft_core::Diagnostic;
use weft_core::contract::ParamValue;
use weft_engine::outbox::{OutboxStore, RunStoreOutbox};
use weft_engine::policy::SubmissionPolicy;
use weft_engine::report::{Reporters, RunIdentity};
use weft_engine::{
    ControlReceiver, PluginRegistry, Prepared, RunEnd, RunObserver, RunOptions, StoredOptions,
    execute, execute_until, prepare,
};
use weft_runtime::HttpRule;
use weft_store::{BatchingStore, RunStore, Timestamp};

use crate::access::{self, RunSecrets, SECRET_WORKSPACE};
use crate::cli::RunArgs;
use crate::{Failure, duration_flag, view};

/// How long a run's statuses may take to be delivered when nothing says otherwise.
const DEFAULT_REPORT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a run could not start.
pub enum LaunchError {
    /// The pipeline (or its params) is invalid: nothing ran and no run was created.
    Invalid(Vec<Diagnostic>),
    /// Anything else, with its exit code.
    Failed(Failure),
}

impl From<Failure> for LaunchError {
    fn from(failure: Failure) -> Self {
        LaunchError::Failed(failure)
    }
}

/// What is printed while a run goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// Transitions and log lines on stdout (`weft run`).
    Text,
    /// Log lines on stderr, the JSON report at the end (`--output json`).
    Json,
    /// Nothing: logs go to files and the store only (`weft serve`).
    Silent,
}

/// A pipeline as submitted.
pub struct Submission {
    /// The YAML text.
    pub source: String,
    /// Its file name, for diagnostics.
    pub file: String,
    /// The params given with it.
    pub params: BTreeMap<String, ParamValue>,
}

/// A run recorded in the store and ready to execute.
pub struct Started {
    /// The run's name.
    pub run_name: String,
    /// Where its logs (`logs/`), report and default workspaces are.
    pub run_dir: PathBuf,
    /// Whether the text output is coloured.
    pub color: bool,
    prepared: Prepared,
    options: RunOptions,
    /// The masked view; the reporters (when any) wrap it.
    observer: Arc<dyn RunObserver>,
    reporters: Option<Arc<Reporters>>,
    secrets: RunSecrets,
    report_timeout: Duration,
}

impl Started {
    /// The run's task log directory.
    pub fn log_dir(&self) -> PathBuf {
        self.run_dir.join("logs")
    }

    /// Runs it until it ends (or, with `suspendable`, until the engine lets go of it),
    /// waits for its statuses to be delivered and keeps its report in the run directory.
    pub async fn execute(self, control: ControlReceiver, suspendable: bool) -> RunEnd {
        // Reporters see every event first, then pass it on to the view.
        let observer: Arc<dyn RunObserver> = match &self.reporters {
            Some(reporters) => reporters.clone(),
            None => self.observer,
        };
        let end = if suspendable {
            execute_until(self.prepared, self.options, observer, control).await
        } else {
            RunEnd::Finished(Box::new(
                execute(self.prepared, self.options, observer, control).await,
            ))
        };
        if let RunEnd::Finished(summary) = &end {
            access::finish_reporting(self.reporters.as_ref(), self.report_timeout).await;
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
        end
    }
}

/// HTTP rules by task name (`--allow-http TASK=RULE`).
pub type TaskHttpRules = BTreeMap<String, Vec<HttpRule>>;

/// Parses `--allow-http` flags: global rules and `TASK=RULE` rules.
pub fn http_rules(flags: &[String]) -> Result<(Vec<HttpRule>, TaskHttpRules), Failure> {
    let mut global = Vec::new();
    let mut by_task = TaskHttpRules::new();
    for flag in flags {
        // Rules never contain `=`, so `TASK=RULE` is unambiguous.
        let (task, rule) = match flag.split_once('=') {
            Some((task, rule)) => (Some(task), rule),
            None => (None, flag.as_str()),
        };
        let rule = HttpRule::parse(rule)
            .map_err(|e| Failure::invalid(format!("--allow-http {flag}: {e}")))?;
        match task {
            Some(task) => by_task.entry(task.to_string()).or_default().push(rule),
            None => global.push(rule),
        }
    }
    Ok((global, by_task))
}

/// Validates `submission` with `args`' flags, records the run in `store` and sets up its
/// secrets, workspaces and reporters. Nothing is created when this fails. `policy` is what
/// a `weft serve` submission may use (`None` for `weft run`, whose user is the operator).
pub async fn start(
    args: &RunArgs,
    submission: Submission,
    registry: &PluginRegistry,
    store: impl FnOnce() -> Result<Arc<BatchingStore>, Failure>,
    display: Display,
    policy: Option<&SubmissionPolicy>,
) -> Result<Started, LaunchError> {
    let Submission {
        source,
        file,
        params: mut supplied,
    } = submission;
    let timeouts = weft_engine::RunTimeouts {
        pipeline: duration_flag("timeout", &args.timeout)?,
        tasks: duration_flag("tasks-timeout", &args.tasks_timeout)?,
        finally: duration_flag("finally-timeout", &args.finally_timeout)?,
    };
    let (http_allow, mut http_allow_by_task) = http_rules(&args.allow_http)?;
    // `decorator:ID=RULE` rules are for form decorators only (decorators.rs).
    http_allow_by_task.retain(|task, _| !crate::decorators::is_decorator_flag(task));
    let mut bound: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut secret_workspaces = Vec::new();
    for flag in &args.workspaces {
        let (name, dir) = flag
            .split_once('=')
            .ok_or_else(|| Failure::invalid(format!("--workspace {flag}: expected NAME=DIR")))?;
        // `NAME=secret:SECRET`: mounted once the secrets are loaded (access.rs).
        if let Some(secret) = dir.strip_prefix(SECRET_WORKSPACE) {
            secret_workspaces.push((name.to_string(), secret.to_string()));
        }
        bound.insert(name.to_string(), PathBuf::from(dir));
    }
    let report_timeout = duration_flag("report-timeout", &Some(args.report_timeout.clone()))?
        .unwrap_or(DEFAULT_REPORT_TIMEOUT);
    if args.parallelism == Some(0) {
        return Err(Failure::invalid("--parallelism must be at least 1").into());
    }

    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(crate::default_data_dir);
    let pipeline = weft_core::parse_pipeline(&source, &file).map_err(LaunchError::Invalid)?;
    // Secrets (secrets.json, --secret, --grant) and secret workspaces: access.rs.
    let mut secrets = RunSecrets::load(&args.secrets, &args.grants, &data_dir)?;
    let reporter_http = match policy {
        Some(policy) => {
            let refused = policy.check(&pipeline, &args.grants, &args.reports);
            if !refused.is_empty() {
                return Err(LaunchError::Invalid(refused));
            }
            secrets.restrict(policy);
            Some(policy.reporter_rules().map_err(Failure::invalid)?)
        }
        None => None,
    };
    // Form decorators shape the params and add run secrets here, before validation.
    let decorations = crate::decorators::apply(
        registry,
        &pipeline,
        args,
        &mut supplied,
        &mut secrets,
        display,
    )
    .await?;
    let prepared = prepare(registry, &source, &file, &supplied)
        .await
        .map_err(LaunchError::Invalid)?;
    for name in bound.keys() {
        if !pipeline.workspaces.iter().any(|w| &w.name.value == name) {
            return Err(Failure::invalid(format!(
                "--workspace {name}: the pipeline declares no workspace `{name}`"
            ))
            .into());
        }
    }
    for task in http_allow_by_task.keys() {
        if prepared.plan.node_id(task).is_none() {
            return Err(Failure::invalid(format!(
                "--allow-http {task}=...: the pipeline has no task `{task}`"
            ))
            .into());
        }
    }

    let uid = uuid::Uuid::new_v4().to_string();
    let run_name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-{}", prepared.plan.pipeline_name, &uid[..8]));
    // The run name becomes a directory name: it must be a DNS-1123 subdomain (no `/`,
    // no `..`), which validation guarantees for pipeline names and we check for --name.
    if !weft_core::validate::is_dns1123_subdomain(&run_name) {
        return Err(Failure::invalid(format!(
            "--name {run_name}: run names are DNS-1123 subdomains (lowercase letters, digits, `-`, `.`)"
        ))
        .into());
    }
    let store = store()?;
    let journal: Arc<dyn RunStore> = store.clone();
    if journal
        .run(&run_name)
        .map_err(|e| Failure::environment(format!("run store: {e}")))?
        .is_some()
    {
        return Err(already_exists(&run_name).into());
    }
    let run_dir = data_dir.join("runs").join(&run_name);
    create_dir(&run_dir)?;
    // The embedded secret store is created (empty, private) on first use, for operators
    // to fill in.
    weft_engine::secrets::SecretStore::ensure_file(&data_dir).map_err(Failure::environment)?;
    for declared in &pipeline.workspaces {
        let name = &declared.name.value;
        if !bound.contains_key(name) && !declared.optional {
            let dir = run_dir.join("workspaces").join(name);
            create_dir(&dir)?;
            bound.insert(name.clone(), dir);
        }
    }
    secrets.mount_workspaces(&secret_workspaces, &mut bound)?;
    for (name, dir) in &bound {
        if !dir.is_dir() {
            return Err(Failure::invalid(format!(
                "--workspace {name}={}: not a directory",
                dir.display()
            ))
            .into());
        }
    }

    let mut options = RunOptions::new(&run_name, &uid);
    options.workspaces = bound;
    options.timeouts = timeouts;
    options.http_allow = http_allow;
    options.http_allow_by_task = http_allow_by_task;
    options.secrets = secrets.store.flatten();
    options.masker = secrets.masker();
    options.access = secrets.access.clone();
    if let Some(parallelism) = args.parallelism {
        options.parallelism = parallelism;
    }
    options.snapshots = crate::snapshots::snapshot_config(
        &args.snapshots,
        &pipeline,
        &options.workspaces,
        &options.access.read_only_workspaces,
    )
    .map_err(Failure::invalid)?;

    // Journal the run in the store before anything runs. Secret workspaces are stored
    // by name: their directories are private to this process.
    let mut stored = StoredOptions::of(&options, &file);
    for (workspace, _) in &secret_workspaces {
        stored.workspaces.remove(workspace);
    }
    stored.grants = args.grants.clone();
    stored.secret_workspaces = secret_workspaces;
    stored.reports = args.reports.clone();
    stored.report_timeout_ms = Some(report_timeout.as_millis() as u64);
    stored.data_dir = Some(data_dir.clone());
    stored.policy = policy.cloned();
    let lease = weft_engine::submit(
        &journal,
        &options,
        &stored,
        &prepared.plan.pipeline_name,
        &source,
        &file,
        &supplied,
        &crate::runs::owner(),
    )
    .map_err(|e| match e {
        weft_store::StoreError::AlreadyExists { .. } => already_exists(&run_name),
        e => Failure::environment(format!("run store: {e}")),
    })?;
    crate::decorators::record(&*journal, &lease, &pipeline, &decorations);
    options.durable = Some(weft_engine::Durable {
        store: journal.clone(),
        lease: lease.clone(),
        attempt_base: Default::default(),
        replay: None,
        heartbeat_every: crate::runs::heartbeat_every(),
    });

    let (observer, color) = observer(&prepared, display, &run_dir);
    let reporters = reporters(
        registry,
        &pipeline,
        &args.reports,
        &prepared,
        &options,
        reporter_http.as_deref(),
        &secrets,
        RunStoreOutbox::new(journal, lease.clone()),
        observer.clone(),
    )
    .await?;
    if let Some(reporters) = &reporters {
        reporters.submitted();
    }
    Ok(Started {
        run_name,
        run_dir,
        color,
        observer,
        prepared,
        options,
        reporters,
        secrets,
        report_timeout,
    })
}

/// Takes over `run` (stale for `stale_after`) and sets it up again from the store: the
/// replay by its strategy, its grants, secret workspaces and reporters (which first
/// re-deliver what the outbox still holds). `secret_flags` add to `secrets.json`.
pub async fn recover(
    store: &Arc<BatchingStore>,
    registry: &PluginRegistry,
    run: &str,
    stale_after: Duration,
    default_data_dir: &Path,
    secret_flags: &[String],
    display: Display,
) -> Result<(Started, weft_store::Recovery), Failure> {
    let journal: Arc<dyn RunStore> = store.clone();
    let mut recovered = weft_engine::take_over(
        &journal,
        registry,
        run,
        &crate::runs::owner(),
        stale_after,
        crate::runs::heartbeat_every(),
    )
    .await
    .map_err(|e| Failure::environment(format!("cannot recover `{run}`: {e}")))?;
    let stored = &recovered.stored;
    let data_dir = stored
        .data_dir
        .clone()
        .unwrap_or_else(|| default_data_dir.to_path_buf());
    let run_name = recovered.options.run_name.clone();
    let run_dir = data_dir.join("runs").join(&run_name);
    create_dir(&run_dir)?;
    let mut secrets = RunSecrets::load(secret_flags, &stored.grants, &data_dir)?;
    let reporter_http = restrict(&mut secrets, stored.policy.as_ref(), run)?;
    secrets.mount_workspaces(&stored.secret_workspaces, &mut recovered.options.workspaces)?;
    recovered.options.secrets = secrets.store.flatten();
    recovered.options.masker = secrets.masker();
    recovered.options.access = secrets.access.clone();
    let lease = recovered
        .options
        .durable
        .as_ref()
        .map(|d| d.lease.clone())
        .ok_or_else(|| Failure::environment("a recovered run has no lease"))?;
    let pipeline = weft_core::parse_pipeline(&recovered.source, &stored.file).map_err(|_| {
        Failure::environment(format!("run `{run}`: the stored pipeline does not parse"))
    })?;
    let (observer, color) = observer(&recovered.prepared, display, &run_dir);
    let reporters = reporters(
        registry,
        &pipeline,
        &stored.reports,
        &recovered.prepared,
        &recovered.options,
        reporter_http.as_deref(),
        &secrets,
        RunStoreOutbox::new(journal, lease.clone()),
        observer.clone(),
    )
    .await?;
    if let Some(reporters) = &reporters {
        resume(reporters, &run_name);
    }
    let report_timeout = stored
        .report_timeout_ms
        .map_or(DEFAULT_REPORT_TIMEOUT, Duration::from_millis);
    let strategy = recovered.strategy;
    Ok((
        Started {
            run_name,
            run_dir,
            color,
            observer,
            prepared: recovered.prepared,
            options: recovered.options,
            reporters,
            secrets,
            report_timeout,
        },
        strategy,
    ))
}

/// Finished runs whose statuses were not all delivered (the engine stopped between the
/// final status and the forge's answer): each is claimed and its outbox delivered.
/// Returns the runs it delivered for, with what was still missing afterwards.
pub async fn deliver_leftovers(
    store: &Arc<BatchingStore>,
    registry: &PluginRegistry,
    stale_after: Duration,
    default_data_dir: &Path,
    secret_flags: &[String],
) -> Result<Vec<(String, Vec<weft_engine::report::Undelivered>)>, Failure> {
    let journal: Arc<dyn RunStore> = store.clone();
    let store_error = |e: weft_store::StoreError| Failure::environment(format!("run store: {e}"));
    let due = journal
        .due_outbox(Timestamp::now(), 10_000)
        .map_err(store_error)?;
    let mut runs: Vec<String> = due.into_iter().map(|row| row.key.run).collect();
    runs.sort();
    runs.dedup();
    let mut done = Vec::new();
    for run in runs {
        let Some(record) = journal.run(&run).map_err(store_error)? else {
            continue;
        };
        // Unfinished runs are recovered whole, reporters included.
        if record.finished_at.is_none() {
            continue;
        }
        let lease = match journal.claim(&run, &crate::runs::owner(), Timestamp::now(), stale_after)
        {
            Ok(lease) => lease,
            Err(weft_store::StoreError::LeaseHeld { .. }) => continue,
            Err(e) => return Err(store_error(e)),
        };
        let submitted = &record.submitted;
        let stored: StoredOptions =
            serde_json::from_str(&submitted.options_json).unwrap_or_default();
        let params: BTreeMap<String, ParamValue> =
            serde_json::from_str(&submitted.params_json).unwrap_or_default();
        let data_dir = stored
            .data_dir
            .clone()
            .unwrap_or_else(|| default_data_dir.to_path_buf());
        let Ok(prepared) =
            prepare(registry, &submitted.pipeline_source, &stored.file, &params).await
        else {
            eprintln!(
                "weft: run `{run}`: its pipeline no longer validates; statuses left undelivered"
            );
            continue;
        };
        let Ok(pipeline) = weft_core::parse_pipeline(&submitted.pipeline_source, &stored.file)
        else {
            continue;
        };
        let mut secrets = RunSecrets::load(secret_flags, &stored.grants, &data_dir)?;
        let reporter_http = restrict(&mut secrets, stored.policy.as_ref(), &run)?;
        let mut options = RunOptions::new(&submitted.name, &stored.run_uid);
        let (http_allow, _) = http_rules(&stored.http_allow)?;
        options.http_allow = http_allow;
        let reporters = reporters(
            registry,
            &pipeline,
            &stored.reports,
            &prepared,
            &options,
            reporter_http.as_deref(),
            &secrets,
            RunStoreOutbox::new(journal.clone(), lease),
            Arc::new(weft_engine::Quiet),
        )
        .await?;
        let Some(reporters) = reporters else {
            continue;
        };
        resume(&reporters, &run);
        let timeout = stored
            .report_timeout_ms
            .map_or(DEFAULT_REPORT_TIMEOUT, Duration::from_millis);
        let missed = reporters.finish(timeout).await;
        done.push((run, missed));
    }
    Ok(done)
}

fn resume(reporters: &Reporters, run: &str) {
    match reporters.resume() {
        Ok(0) => {}
        Ok(n) => tracing::info!(run, statuses = n, "re-delivering statuses from the outbox"),
        Err(err) => eprintln!("weft: run `{run}`: cannot read the reporter outbox: {err}"),
    }
}

/// The run's view and whether it is coloured. Log lines reach it masked (the engine masks
/// what plugins hand back before anything sees it: `weft_engine::mask`).
fn observer(prepared: &Prepared, display: Display, run_dir: &Path) -> (Arc<dyn RunObserver>, bool) {
    let log_dir = run_dir.join("logs");
    let (view, color) = match display {
        Display::Text => view::LiveView::for_plan(&prepared.plan, true, log_dir),
        Display::Json => view::LiveView::for_plan(&prepared.plan, false, log_dir),
        Display::Silent => (view::LiveView::files_only(log_dir), false),
    };
    (Arc::new(view), color)
}

/// Applies a submitted run's policy (see `weft_engine::policy`) to its secrets again, and
/// returns the HTTP rules its reporters get (`None`: the run's own rules).
fn restrict(
    secrets: &mut RunSecrets,
    policy: Option<&SubmissionPolicy>,
    run: &str,
) -> Result<Option<Vec<HttpRule>>, Failure> {
    let Some(policy) = policy else {
        return Ok(None);
    };
    secrets.restrict(policy);
    policy
        .reporter_rules()
        .map(Some)
        .map_err(|e| Failure::environment(format!("run `{run}`: its stored policy: {e}")))
}

/// The run's reporters; `reporter_http` replaces the run's HTTP rules for them (a
/// submission's reporters reach only what the operator allowed for reporters).
#[allow(clippy::too_many_arguments)]
async fn reporters(
    registry: &PluginRegistry,
    pipeline: &weft_core::model::Pipeline,
    report_flags: &[String],
    prepared: &Prepared,
    options: &RunOptions,
    reporter_http: Option<&[HttpRule]>,
    secrets: &RunSecrets,
    outbox: Arc<dyn OutboxStore>,
    inner: Arc<dyn RunObserver>,
) -> Result<Option<Arc<Reporters>>, Failure> {
    let identity = RunIdentity {
        run_name: options.run_name.clone(),
        run_uid: options.run_uid.clone(),
        pipeline_name: prepared.plan.pipeline_name.clone(),
    };
    access::reporters(
        registry,
        pipeline,
        report_flags,
        &prepared.plan.params,
        identity,
        secrets,
        reporter_http.unwrap_or(&options.http_allow),
        outbox,
        inner,
    )
    .await
}

fn create_dir(dir: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::environment(format!("cannot create {}: {e}", dir.display())))
}

fn already_exists(run_name: &str) -> Failure {
    Failure::invalid(format!(
        "a run named `{run_name}` already exists; pick another --name"
    ))
}
