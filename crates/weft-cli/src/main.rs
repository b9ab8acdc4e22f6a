//! The `weft` binary. Exit codes: 0 the run succeeded (also with warnings, or completed
//! with skips); 1 it failed, timed out, errored or was cancelled; 2 the pipeline or the
//! command line is invalid (nothing ran); 3 weft itself could not work (e.g. an unwritable
//! data directory); 4 a plugin pulled from a registry did not match its digest (nothing
//! ran); 5 the run's state does not allow it (re-running an unfinished run).

mod ahead;
mod cli;
mod decide;
mod decorators;
mod graph_output;
mod identities;
mod memory;
mod oci;
mod pipeline_run;
mod runs;
mod schedules;
mod serve;
mod snapshots;
mod spec_flags;
mod store;
mod tekton_output;
mod tenancy;
mod traces;
mod view;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use weft_core::pipeline_run::SpecStatus;
use weft_core::{CancelMode, Diagnostic};
use weft_engine::runs::{
    CancelHandle, DecisionKind, PluginRegistry, RunEnd, RunService, ServiceConfig, StoreOpener,
    SubmitError, cancel_channel, validate as validate_pipeline, validate_parsed,
};
use weft_runtime::{Runtime, RuntimeConfig};

use cli::{
    Cli, Command, DbCommand, OutputFormat, PipelineArgs, PluginArgs, PluginCommand, RunArgs,
};
use weft_cli::diagnostics;

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin_plugins.rs"));
}

/// Exit code: the pipeline or command line is invalid; nothing ran.
pub(crate) const EXIT_INVALID: u8 = 2;
/// Exit code: weft could not do its own work.
const EXIT_ENVIRONMENT: u8 = 3;
/// Exit code: a plugin pulled from a registry did not match its digest; nothing ran.
pub(crate) const EXIT_INTEGRITY: u8 = 4;
/// Exit code: the run is not in a state that allows this (re-running an unfinished run).
pub(crate) const EXIT_CONFLICT: u8 = 5;

/// A failure that ends the command with a message and an exit code.
#[derive(Debug)]
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn invalid(message: impl Into<String>) -> Self {
        Failure {
            code: EXIT_INVALID,
            message: message.into(),
        }
    }

    fn environment(message: impl Into<String>) -> Self {
        Failure {
            code: EXIT_ENVIRONMENT,
            message: message.into(),
        }
    }
}

fn main() -> ExitCode {
    memory::give_large_blocks_back();
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    let mut cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    // Which of `weft serve`'s flags were given: those win over its configuration file.
    if let (Command::Serve(args), Some(("serve", given))) = (&mut cli.command, matches.subcommand())
    {
        args.explicit = given
            .ids()
            .filter(|id| {
                matches!(
                    given.value_source(id.as_str()),
                    Some(
                        clap::parser::ValueSource::CommandLine
                            | clap::parser::ValueSource::EnvVariable
                    )
                )
            })
            .map(|id| id.as_str().to_string())
            .collect();
    }
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(weft_runtime::cores())
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("weft: cannot start the async runtime: {err}");
            return ExitCode::from(EXIT_ENVIRONMENT);
        }
    };
    end_quietly_on_closed_stdout();
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run(*args).await,
            Command::Validate(args) => validate(args).await,
            Command::Plugin(command) => plugin(command).await,
            Command::Runs(command) => runs::command(command).await,
            Command::Serve(args) => serve::serve(*args).await,
            Command::Approve(args) => decide::command(&args, DecisionKind::Approval),
            Command::Resume(args) => decide::command(&args, DecisionKind::Intervention),
            Command::Db(DbCommand::Migrate { store }) => crate::store::migrate(&store),
            Command::Db(DbCommand::Check { store }) => crate::store::check(&store),
            Command::Schedules(command) => schedules::command(command).await,
            Command::Tenants(command) => tenancy::command::tenants(command),
            Command::Tokens(command) => tenancy::command::tokens(command),
            Command::Audit(args) => tenancy::command::audit(&args),
            Command::Secrets(command) => tenancy::command::secrets(command),
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("weft: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// Room beside a run's tasks for its reporters, gates and form decorators.
const POOL_HEADROOM: usize = 32;

/// Instance slots for a process that runs at most one pipeline (`weft run`, `weft
/// validate`, `weft plugin ...`): as many tasks as may run at once (`--parallelism`, else
/// the default) plus [`POOL_HEADROOM`]. Each slot costs set-up time, which a short
/// `weft run` would otherwise pay for the server's thousand (about 4 ms of its 13).
/// Beyond its slots an instance waits for one; it never fails for want of one.
pub(crate) fn one_run_pool(parallelism: Option<usize>) -> u32 {
    let tasks = parallelism.unwrap_or_else(weft_engine::default_parallelism);
    u32::try_from(tasks.saturating_add(POOL_HEADROOM))
        .unwrap_or(u32::MAX)
        .min(weft_runtime::DEFAULT_POOL_INSTANCES)
}

/// The plugins `args` name, run by a runtime whose pool has `instances` slots.
pub(crate) fn registry(args: &PluginArgs, instances: u32) -> Result<PluginRegistry, Failure> {
    let cache_dir = args.cache_dir.clone().or_else(default_cache_dir);
    let defaults = RuntimeConfig::default();
    let allocator = match defaults.allocator {
        weft_runtime::Allocator::Pooling {
            max_memory_bytes, ..
        } => weft_runtime::Allocator::Pooling {
            instances,
            max_memory_bytes,
        },
        other => other,
    };
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir,
        allocator,
        ..defaults
    })
    .map_err(|e| Failure::environment(e.to_string()))?;
    let mut registry = PluginRegistry::new(runtime, builtin::BUILTIN_PLUGINS);
    registry.set_oci(oci::registry(&args.registry)?);
    for dir in &args.plugin_dirs {
        registry.add_dir(dir).map_err(|e| {
            Failure::invalid(format!(
                "cannot read plugin directory {}: {e}",
                dir.display()
            ))
        })?;
    }
    Ok(registry)
}

pub(crate) fn home_dir(var: &str, fallback: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(fallback)))
}

fn default_cache_dir() -> Option<PathBuf> {
    home_dir("XDG_CACHE_HOME", ".cache").map(|dir| dir.join("weft/components"))
}

fn default_data_dir() -> PathBuf {
    home_dir("XDG_DATA_HOME", ".local/share")
        .map(|dir| dir.join("weft"))
        .unwrap_or_else(|| PathBuf::from(".weft"))
}

/// Why a pipeline file gave no text.
enum Unreadable {
    /// It could not be read (missing, too large).
    Failed(Failure),
    /// It is not UTF-8: a diagnostic at the first bad byte, and the text as far as it can
    /// be shown (bad bytes replaced) for the snippet.
    NotText(Box<Diagnostic>, String),
}

fn read_pipeline(file: &Path) -> Result<String, Unreadable> {
    const MAX_PIPELINE_BYTES: u64 = 8 << 20;
    let unreadable = |e: std::io::Error| {
        Unreadable::Failed(Failure::invalid(format!(
            "cannot read {}: {e}",
            file.display()
        )))
    };
    let meta = std::fs::metadata(file).map_err(unreadable)?;
    if meta.len() > MAX_PIPELINE_BYTES {
        return Err(Unreadable::Failed(Failure::invalid(format!(
            "{} is {} bytes; pipeline files are limited to {MAX_PIPELINE_BYTES} bytes",
            file.display(),
            meta.len()
        ))));
    }
    let bytes = std::fs::read(file).map_err(unreadable)?;
    match weft_core::source::decode(&bytes, &file.display().to_string()) {
        Ok(text) => Ok(text.to_string()),
        Err(diagnostic) => Err(Unreadable::NotText(
            diagnostic,
            String::from_utf8_lossy(&bytes).into_owned(),
        )),
    }
}

pub(crate) fn report_invalid(
    diagnostics: &[Diagnostic],
    source: &str,
    output: OutputFormat,
) -> Result<u8, Failure> {
    report_invalid_in(diagnostics, None, source, output)
}

/// [`report_invalid`] for problems that may be in several files: snippets are drawn for
/// those in `main` (whose text is `source`).
fn report_invalid_in(
    diagnostics: &[Diagnostic],
    main: Option<&str>,
    source: &str,
    output: OutputFormat,
) -> Result<u8, Failure> {
    match output {
        OutputFormat::Json | OutputFormat::Tekton | OutputFormat::Dot => {
            println!("{}", diagnostics::to_json_text(diagnostics))
        }
        OutputFormat::Text => eprint!(
            "{}",
            diagnostics::render_in(diagnostics, main, source, std::io::stderr().is_terminal())
        ),
    }
    let tampered = diagnostics
        .iter()
        .any(|d| d.code == weft_engine::runs::PLUGIN_DIGEST_MISMATCH);
    Ok(if tampered {
        EXIT_INTEGRITY
    } else {
        EXIT_INVALID
    })
}

/// Reads the pipeline; in JSON mode an unreadable file is still reported as a document.
/// `Err` holds the command's result: a file that is not UTF-8 is reported like any invalid
/// pipeline (file:line:column, exit 2).
pub(crate) fn read_pipeline_for(
    file: &Path,
    output: OutputFormat,
) -> Result<String, Result<u8, Failure>> {
    match read_pipeline(file) {
        Ok(source) => Ok(source),
        Err(Unreadable::NotText(diagnostic, shown)) => {
            Err(report_invalid(&[*diagnostic], &shown, output))
        }
        Err(Unreadable::Failed(failure)) => {
            if output.plain() == OutputFormat::Json {
                let document = serde_json::json!({
                    "valid": false,
                    "diagnostics": [{
                        "file": file.display().to_string(),
                        "line": 0,
                        "column": 0,
                        "field": "",
                        "code": "unreadable-file",
                        "message": failure.message,
                        "hint": null,
                    }],
                });
                println!("{document}");
            }
            Err(Err(failure))
        }
    }
}

async fn validate(args: PipelineArgs) -> Result<u8, Failure> {
    let file = args.file.display().to_string();
    let source = match read_pipeline_for(&args.file, args.output) {
        Ok(source) => source,
        Err(done) => return done,
    };
    let library = pipeline_run::library(&args.pipeline_dirs)?;
    let (mut pipeline, parsed) = pipeline_run::files(source.clone(), file.clone(), library);
    pipeline.max_matrix_combinations = Some(args.max_matrix_combinations);
    let supplied = spec_flags::params(parsed.pipeline.as_ref(), &args.params)?;
    let supplied = parsed.supplied(&supplied);
    pipeline.plugins = match oci::lock_pins(args.lock.as_deref(), &args.file, args.output) {
        Ok(pins) => pins,
        Err(done) => return done,
    };
    let registry = registry(&args.plugins, one_run_pool(None))?;
    match validate_parsed(&registry, &pipeline, &parsed, &supplied).await {
        Ok(prepared) => {
            match args.output {
                OutputFormat::Json | OutputFormat::Tekton | OutputFormat::Dot => {
                    println!("{}", diagnostics::to_json_text(&[]))
                }
                OutputFormat::Text => println!(
                    "{file}: valid ({} tasks, {} finally)",
                    prepared.plan.dag_len,
                    prepared.plan.nodes.len() - prepared.plan.dag_len
                ),
            }
            Ok(0)
        }
        Err(diagnostics) => report_invalid_in(&diagnostics, Some(&file), &source, args.output),
    }
}

async fn run(args: RunArgs) -> Result<u8, Failure> {
    let signals = Signals::install()?;
    // A bad collector URL is refused before anything is created.
    let traces = traces::Traces::configure(args.otlp_endpoint.as_deref())?;
    let pipeline_args = &args.pipeline;
    let tekton = pipeline_args.output == OutputFormat::Tekton;
    let output = pipeline_args.output.plain();
    let file = pipeline_args.file.display().to_string();
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    // A bad `--db` is reported after the pipeline's own problems, as before.
    let location = crate::store::store_location(args.db.as_deref(), Some(&data_dir));
    let pool = one_run_pool(args.parallelism);
    let mut ahead = ahead::Ahead::start(&pipeline_args.plugins, pool, location.as_ref().ok());
    let source = match read_pipeline_for(&pipeline_args.file, output) {
        Ok(source) => source,
        Err(done) => return done,
    };
    let library = pipeline_run::library(&pipeline_args.pipeline_dirs)?;
    let (mut pipeline, parsed) = pipeline_run::files(source.clone(), file.clone(), library);
    pipeline.max_matrix_combinations = Some(pipeline_args.max_matrix_combinations);
    let params = spec_flags::params(parsed.pipeline.as_ref(), &pipeline_args.params)?;
    let mut spec = spec_flags::run_spec(&args, pipeline, params)?;
    spec.pipeline.plugins =
        match oci::lock_pins(pipeline_args.lock.as_deref(), &pipeline_args.file, output) {
            Ok(pins) => pins,
            Err(done) => return done,
        };
    let volumes = pipeline_run::volumes(&args.volumes)?;
    let applied = pipeline_run::apply(&parsed, &mut spec, Some(&volumes));
    if !applied.problems.is_empty() || !parsed.diagnostics.is_empty() {
        // Everything else validation finds, reported with them at once.
        let registry = ahead.registry(&pipeline_args.plugins, pool)?;
        let mut all = validate_pipeline(&registry, &spec.pipeline, &spec.params)
            .await
            .err()
            .unwrap_or_default();
        all.extend(applied.problems);
        all.sort_by_key(|d| (d.line, d.column));
        return report_invalid_in(&all, Some(&file), &source, output);
    }
    for dir in &applied.sub_dirs {
        std::fs::create_dir_all(dir).map_err(|e| {
            Failure::environment(format!("cannot create subPath {}: {e}", dir.display()))
        })?;
    }
    let status = applied.status;
    let timeouts = spec.timeouts;
    let opener = ahead.opener(location?);
    let service = service_from(
        || ahead.registry(&pipeline_args.plugins, pool),
        data_dir,
        &args.secrets,
        opener,
        Leases::default(),
        ServerParts::default(),
    )?;
    let display = match output {
        OutputFormat::Text => view::Display::Text,
        OutputFormat::Json | OutputFormat::Tekton | OutputFormat::Dot => view::Display::Json,
    };
    let submitted = match service.submit_parsed(spec, parsed).await {
        Ok(submitted) => submitted,
        Err(SubmitError::Invalid {
            diagnostics,
            decorator_log,
        }) => {
            view::decorator_log(&decorator_log, display);
            return report_invalid_in(&diagnostics, Some(&file), &source, output);
        }
        Err(err) => return Err(spec_flags::failure(err)),
    };
    view::decorator_log(&submitted.decorator_log, display);
    // What only submission needed (the text, the parsed model) is gone: give its pages
    // back before the run grows around them.
    drop(source);
    memory::give_free_pages_back();
    let live = submitted.run;
    if status == Some(SpecStatus::Pending) {
        let name = live.name().to_string();
        live.hold().map_err(Failure::environment)?;
        let object = service
            .opened_store()
            .and_then(|store| tekton_output::from_store(&*store, &name).ok().flatten())
            .unwrap_or_default();
        close_store(&service)?;
        match output {
            OutputFormat::Json | OutputFormat::Tekton | OutputFormat::Dot if tekton => {
                println!("{object:#}")
            }
            OutputFormat::Json | OutputFormat::Tekton | OutputFormat::Dot => println!(
                "{}",
                serde_json::json!({ "name": name, "status": "PipelineRunPending" })
            ),
            OutputFormat::Text => println!(
                "{name}: created pending (spec.status: PipelineRunPending); `weft runs start {name}` starts it"
            ),
        }
        return Ok(0);
    }
    let how = Foreground {
        output,
        tekton,
        detach: args.detach,
        cancel_first: status.and_then(SpecStatus::cancel_mode),
        timeouts,
        traces,
    };
    let code = foreground(&service, live, how, signals, &file).await;
    // The process is about to end: once the store is closed (it usually is by now), the
    // kernel takes back the wasm engine's memory pool at once, rather than this process
    // unmapping it piece by piece.
    if close_store(&service).is_ok() {
        std::mem::forget(service);
    }
    code
}

/// How [`foreground`] runs a submitted run and what it prints.
pub(crate) struct Foreground {
    /// Text or JSON (`tekton` says which JSON).
    pub(crate) output: OutputFormat,
    /// Print the run as a Tekton `PipelineRun` object.
    pub(crate) tekton: bool,
    /// Hand the run to the store instead.
    pub(crate) detach: bool,
    /// Cancelled before it starts (a `PipelineRun` created with `spec.status: Cancelled`).
    pub(crate) cancel_first: Option<CancelMode>,
    /// The run's timeouts (for the Tekton form).
    pub(crate) timeouts: weft_engine::runs::RunTimeouts,
    /// Where its spans go (`--otlp-endpoint`), if anywhere.
    pub(crate) traces: Option<traces::Traces>,
}

/// Runs a submitted run in the foreground with the live view (or hands it to the store
/// with `detach`): `weft run` and `weft runs rerun`. The exit code is the run's.
pub(crate) async fn foreground(
    service: &RunService,
    live: weft_engine::runs::LiveRun,
    how: Foreground,
    signals: Signals,
    file: &str,
) -> Result<u8, Failure> {
    let Foreground {
        output,
        tekton,
        detach,
        cancel_first,
        timeouts,
        traces,
    } = how;
    let display = match output {
        OutputFormat::Text => view::Display::Text,
        OutputFormat::Json | OutputFormat::Tekton | OutputFormat::Dot => view::Display::Json,
    };
    if detach {
        let name = live.name().to_string();
        live.detach().map_err(Failure::environment)?;
        close_store(service)?;
        match output {
            OutputFormat::Json | OutputFormat::Tekton | OutputFormat::Dot => {
                println!("{}", serde_json::json!({ "name": name, "detached": true }))
            }
            OutputFormat::Text => println!(
                "{name}: handed to the run store; `weft runs recover` or `weft serve` on this store runs it"
            ),
        }
        return Ok(0);
    }
    if output == OutputFormat::Text {
        println!("Run {} of {file}", live.name());
    }
    let log_dir = live.log_dir();
    let pipeline_name = live.plan().pipeline_name.clone();
    let (observer, color) = view::observer(live.plan(), live.name(), display, live.run_dir());
    let observer: Arc<dyn weft_engine::runs::RunObserver> = match &traces {
        Some(traces) => Arc::new(weft_engine::runs::Fanout(vec![
            traces.observer(live.name()),
            observer,
        ])),
        None => observer,
    };
    let (cancel, control) = cancel_channel();
    if let Some(mode) = cancel_first {
        // Created cancelled (`spec.status: Cancelled`, ...): cancelled before it starts.
        cancel.cancel(mode);
    }
    let signals = tokio::spawn(forward_signals(signals, cancel));
    let clock = Instant::now();
    let finished = live.execute(observer, control, false).await;
    signals.abort();
    if let Some(traces) = &traces {
        traces.shutdown();
    }
    view::undelivered(&finished.undelivered, finished.report_timeout);
    if let Some(store) = service.opened_store()
        && let Err(err) = store.close()
    {
        eprintln!("weft: the run store did not close cleanly: {err}");
    }
    let RunEnd::Finished(summary) = finished.end else {
        return Err(Failure::environment(
            "the run was let go of before it ended",
        ));
    };
    match output {
        OutputFormat::Json | OutputFormat::Tekton | OutputFormat::Dot if tekton => println!(
            "{:#}",
            tekton_output::from_summary(&summary, &pipeline_name, &timeouts)
        ),
        // Streamed: at 100,000 tasks the whole document as one string would be the
        // largest thing the run ever held.
        OutputFormat::Json | OutputFormat::Tekton | OutputFormat::Dot => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            serde_json::to_writer_pretty(&mut out, &summary.report)
                .map_err(std::io::Error::from)
                .and_then(|()| {
                    use std::io::Write;
                    writeln!(out)?;
                    out.flush()
                })
                .map_err(|e| Failure::environment(format!("cannot write the report: {e}")))?;
        }
        OutputFormat::Text => print!(
            "{}",
            view::summary(&summary, clock.elapsed(), color, &log_dir)
        ),
    }
    Ok(summary.status.exit_code().clamp(0, 255) as u8)
}

/// Closes the run store `service` opened, if it opened one (everything written is
/// durable when this returns).
pub(crate) fn close_store(service: &RunService) -> Result<(), Failure> {
    match service.opened_store() {
        Some(store) => store
            .close()
            .map_err(|e| Failure::environment(format!("run store: {e}"))),
        None => Ok(()),
    }
}

/// How this process holds its runs' leases.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Leases {
    /// A lease lasts this long without a heartbeat (the recovery timeout).
    pub(crate) ttl: std::time::Duration,
    /// Runs taken over keep their files in this process's data directory (a server on a
    /// shared database) rather than where they were submitted.
    pub(crate) take_over_here: bool,
}

impl Default for Leases {
    /// The recovery timeout, or `WEFT_LEASE_TTL_MS` (how long a crashed `weft run` keeps
    /// its run, and its concurrency slot, before another engine may take them).
    fn default() -> Self {
        Leases {
            ttl: std::env::var("WEFT_LEASE_TTL_MS")
                .ok()
                .and_then(|ms| ms.parse().ok())
                .filter(|ms| *ms > 0)
                .map_or(
                    weft_store::DEFAULT_RECOVERY_TIMEOUT,
                    std::time::Duration::from_millis,
                ),
            take_over_here: false,
        }
    }
}

/// The run lifecycle service of this process: its plugins, its data directory, the
/// secrets its flags give (`--secret`), how it opens the run store and holds leases.
pub(crate) fn service(
    plugins: &PluginArgs,
    pool: u32,
    data_dir: PathBuf,
    secret_flags: &[String],
    open: StoreOpener,
    leases: Leases,
) -> Result<RunService, Failure> {
    service_with(
        plugins,
        pool,
        data_dir,
        secret_flags,
        open,
        leases,
        ServerParts::default(),
    )
}

/// What only `weft serve` gives its service: tenants' secrets and plugins, and the task
/// slots every tenant shares.
#[derive(Default)]
pub(crate) struct ServerParts {
    /// Tenants' own secrets.
    pub tenant_secrets: Option<Arc<dyn weft_engine::runs::TenantSecrets>>,
    /// Tenants' uploaded plugins.
    pub tenant_plugins: Option<Arc<dyn weft_engine::runs::TenantPlugins>>,
    /// The server's task slots, shared fairly.
    pub task_slots: Option<Arc<weft_engine::fair::TaskSlots>>,
}

/// As [`service`], with tenants' own secrets (`weft serve` with a secrets key) and the
/// server's task slots shared fairly by tenants (`weft serve`).
pub(crate) fn service_with(
    plugins: &PluginArgs,
    pool: u32,
    data_dir: PathBuf,
    secret_flags: &[String],
    open: StoreOpener,
    leases: Leases,
    parts: ServerParts,
) -> Result<RunService, Failure> {
    service_from(
        || registry(plugins, pool),
        data_dir,
        secret_flags,
        open,
        leases,
        parts,
    )
}

/// As [`service_with`], with the plugin registry from `registry` (built ahead by `weft
/// run`, see [`ahead`]), asked for after the secret flags are read, so a bad `--secret` is
/// reported first either way.
pub(crate) fn service_from(
    registry: impl FnOnce() -> Result<PluginRegistry, Failure>,
    data_dir: PathBuf,
    secret_flags: &[String],
    open: StoreOpener,
    leases: Leases,
    parts: ServerParts,
) -> Result<RunService, Failure> {
    let ServerParts {
        tenant_secrets,
        tenant_plugins,
        task_slots,
    } = parts;
    let config = ServiceConfig {
        data_dir,
        secrets: spec_flags::secrets(secret_flags)?,
        owner: crate::store::owner(),
        // A third of the TTL at most: two heartbeats may fail before the lease lapses.
        heartbeat_every: crate::store::heartbeat_every().min(leases.ttl / 3),
        lease_ttl: leases.ttl,
        take_over_here: leases.take_over_here,
        warn: Arc::new(|message: &str| eprintln!("weft: warning: {message}")),
        tenant_secrets,
        task_slots,
    };
    let mut registry = registry()?;
    if let Some(source) = tenant_plugins {
        registry.set_tenant_plugins(source);
    }
    Ok(RunService::new(registry, config, open))
}

/// Signals a run listens to. Installed before anything slow happens, so an early Ctrl-C
/// is never lost to the default handler.
pub(crate) struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    pub(crate) fn install() -> Result<Signals, Failure> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let failed =
                |e: std::io::Error| Failure::environment(format!("cannot handle signals: {e}"));
            Ok(Signals {
                interrupt: signal(SignalKind::interrupt()).map_err(failed)?,
                terminate: signal(SignalKind::terminate()).map_err(failed)?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// The cancel mode the next signal asks for: Ctrl-C is `CancelledRunFinally`, a second
    /// Ctrl-C `Cancelled`; SIGTERM asks for a graceful stop (`StoppedRunFinally`).
    pub(crate) async fn next(&mut self, interrupts: &mut u32) -> Option<CancelMode> {
        #[cfg(unix)]
        {
            tokio::select! {
                got = self.interrupt.recv() => {
                    got?;
                    *interrupts += 1;
                    Some(if *interrupts == 1 { CancelMode::CancelledRunFinally } else { CancelMode::Cancelled })
                }
                got = self.terminate.recv() => got.map(|()| CancelMode::StoppedRunFinally),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.ok()?;
            *interrupts += 1;
            Some(if *interrupts == 1 {
                CancelMode::CancelledRunFinally
            } else {
                CancelMode::Cancelled
            })
        }
    }
}

async fn forward_signals(mut signals: Signals, cancel: CancelHandle) {
    let mut interrupts = 0;
    while let Some(mode) = signals.next(&mut interrupts).await {
        eprintln!(
            "weft: {}",
            match mode {
                CancelMode::CancelledRunFinally =>
                    "cancelling; finally tasks will run (press Ctrl-C again to skip them)",
                CancelMode::Cancelled => "cancelling without finally tasks",
                CancelMode::StoppedRunFinally =>
                    "stopping: running tasks finish, nothing new starts, then finally tasks run",
            }
        );
        cancel.cancel(mode);
    }
}

async fn plugin(command: PluginCommand) -> Result<u8, Failure> {
    match command {
        PluginCommand::New {
            kind,
            name,
            lang,
            dir,
        } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            let written =
                weft_cli::plugin_new::create(&dir, kind, &name, lang).map_err(Failure::invalid)?;
            println!("{}", written.summary());
            Ok(0)
        }
        PluginCommand::Push {
            file,
            reference,
            tenant,
            name,
            plugins,
            store,
        } => match (reference, tenant) {
            (Some(reference), None) => oci::push(&file, &reference, &plugins.registry).await,
            (None, Some(tenant)) => {
                tenancy::command::upload_plugin(&file, &tenant, name.as_deref(), &plugins, &store)
            }
            _ => Err(Failure::invalid(
                "push to a registry (`weft plugin push FILE oci://...`) or to a tenant of this weft (`weft plugin push FILE --tenant T`): one of the two",
            )),
        },
        PluginCommand::Pull {
            reference,
            output,
            registry,
        } => oci::pull(&reference, output.as_deref(), &registry).await,
        PluginCommand::Build { dir } => {
            let out = weft_cli::plugin_build::build(&dir).map_err(Failure::environment)?;
            println!("built {}", out.display());
            Ok(0)
        }
        PluginCommand::List { plugins } => {
            let registry = registry(&plugins, one_run_pool(None))?;
            for name in registry.names() {
                let origin = registry.origin(&name).unwrap_or_default();
                match registry.resolve(&name).await {
                    Ok(resolved) => println!(
                        "{name:<20} {:<10} {origin}  {}",
                        resolved.info.version, resolved.info.description
                    ),
                    Err(err) => println!("{name:<20} {:<10} {origin}  unusable: {err}", "-"),
                }
            }
            Ok(0)
        }
        PluginCommand::Describe {
            name,
            plugins,
            output,
        } => {
            let mut plugins = plugins;
            let path = Path::new(&name);
            let lookup = if name.ends_with(".wasm") {
                if let Some(dir) = path.parent() {
                    plugins.plugin_dirs.insert(0, dir.to_path_buf());
                }
                path.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| name.clone())
            } else {
                name.clone()
            };
            let registry = registry(&plugins, one_run_pool(None))?;
            let resolved = registry.resolve(&lookup).await.map_err(|e| match e {
                weft_engine::runs::PluginError::NotFound(_) => Failure::invalid(format!(
                    "{e}: weft looked in {}\n  hint: {}",
                    registry.searched().join(", then "),
                    PluginRegistry::how_to_add(&lookup)
                )),
                other => Failure::invalid(other.to_string()),
            })?;
            let info = &resolved.info;
            match output {
                OutputFormat::Json | OutputFormat::Tekton | OutputFormat::Dot => println!(
                    "{}",
                    serde_json::to_string_pretty(&decorators::describe_json(&resolved))
                        .map_err(|e| Failure::environment(e.to_string()))?
                ),
                OutputFormat::Text => {
                    println!("{} {}: {}", info.name, info.version, info.description);
                    println!("  kind: {}", resolved.plugin.kind().as_str());
                    if let Some(version) = resolved.plugin.wit_version() {
                        println!("  built for weft:plugin@{version}");
                    }
                    println!("  params:");
                    for p in &info.params {
                        let default = match &p.default {
                            Some(v) => format!(
                                " (default {})",
                                serde_json::to_string(v).unwrap_or_default()
                            ),
                            None => " (required)".to_string(),
                        };
                        println!(
                            "    {:<12} {:<7}{default} {}",
                            p.name, p.param_type, p.description
                        );
                    }
                    println!(
                        "  results{}:",
                        if info.results_fixed {
                            ""
                        } else {
                            " (may add others)"
                        }
                    );
                    for r in &info.results {
                        println!("    {:<12} {}", r.name, r.description);
                    }
                    println!("  imports: {}", resolved.plugin.imports().join(", "));
                    if let Some(decorator) = decorators::describe_text(&resolved) {
                        println!("{decorator}");
                    }
                }
            }
            Ok(0)
        }
        PluginCommand::Compile { file, cache_dir } => {
            let cache_dir = cache_dir
                .or_else(default_cache_dir)
                .ok_or_else(|| Failure::invalid("no cache directory: pass --cache-dir"))?;
            let runtime = Runtime::new(RuntimeConfig {
                cache_dir: Some(cache_dir.clone()),
                ..RuntimeConfig::default()
            })
            .map_err(|e| Failure::environment(e.to_string()))?;
            let plugin = runtime
                .load_file(&file)
                .map_err(|e| Failure::invalid(e.to_string()))?;
            println!("compiled {} into {}", plugin.name(), cache_dir.display());
            Ok(0)
        }
    }
}

/// Exit code when stdout's reader went away (`weft runs show RUN | head`): 128 + SIGPIPE,
/// as a shell reports a command a closed pipe stopped.
const EXIT_CLOSED_STDOUT: i32 = 141;

/// When stdout's reader goes away (`weft runs show RUN | head`), weft ends quietly with
/// [`EXIT_CLOSED_STDOUT`], as `cat` does, instead of reporting a crash: Rust's `println!`
/// panics on a closed pipe, and this hook tells that panic from real ones.
fn end_quietly_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(EXIT_CLOSED_STDOUT);
        }
        default(info);
    }));
}
