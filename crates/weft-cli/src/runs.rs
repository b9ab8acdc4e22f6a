//! `weft runs list|show|logs|rerun|start|recover`: runs in the store, for people and as
//! JSON (the documents the API serves too).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use weft_engine::runs::{RunEnd, cancel_channel};
use weft_store::{BatchingStore, RunStore, Timestamp};

use crate::cli::{OutputFormat, RunsCommand, StoreArgs};
use crate::store::{open_for, store_failure};
use crate::view::{self, Display};
use crate::{Failure, default_data_dir};

fn millis_to_text(duration: Option<Duration>) -> String {
    duration
        .map(view::human_duration)
        .unwrap_or_else(|| "-".into())
}

/// A run service of this process over an open store.
fn service_on(
    store: &Arc<BatchingStore>,
    plugins: &crate::cli::PluginArgs,
    data_dir: PathBuf,
    secrets: &[String],
    leases: crate::Leases,
) -> Result<weft_engine::runs::RunService, Failure> {
    let opened = store.clone();
    crate::service(
        plugins,
        // A re-run or a pending run keeps its stored parallelism: the server's pool.
        weft_runtime::DEFAULT_POOL_INSTANCES,
        data_dir,
        secrets,
        Box::new(move || Ok(opened.clone())),
        leases,
    )
}

/// Carries out `weft runs ...`.
pub async fn command(command: RunsCommand) -> Result<u8, Failure> {
    match command {
        RunsCommand::List { store, limit } => list(&store, limit),
        RunsCommand::Show {
            run,
            attempt,
            graph,
            store,
        } => show(&store, &run, attempt, graph),
        RunsCommand::Logs {
            run,
            task,
            attempt,
            follow,
            store,
        } => logs(&store, &run, task.as_deref(), attempt, follow).await,
        RunsCommand::Rerun(args) => rerun(*args).await,
        RunsCommand::Recover {
            store,
            recover_timeout,
            secrets,
            plugins,
        } => recover(&store, &recover_timeout, &secrets, &plugins).await,
        RunsCommand::Start {
            run,
            store,
            secrets,
            plugins,
        } => start(&store, &run, &secrets, &plugins).await,
    }
}

/// The attempt number of the stored run `id` (`deploy~3` is attempt 3).
pub fn attempt_number(id: &str) -> u32 {
    id.rsplit_once('~')
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(1)
}

/// The stored id of `run`'s attempt `attempt` (default: its latest).
pub fn resolve(store: &dyn RunStore, run: &str, attempt: Option<u32>) -> Result<String, Failure> {
    weft_engine::runs::attempt_id(store, run, attempt)
        .map_err(Failure::environment)?
        .ok_or_else(|| match attempt {
            Some(n) => Failure::invalid(format!("run `{run}` has no attempt {n}")),
            None => Failure::invalid(format!("no run named `{run}`")),
        })
}

/// Why a run waits before its first task, if it does ("queued: deploy group, 2 ahead").
pub fn held(store: &dyn RunStore, r: &weft_store::RunListItem) -> Option<String> {
    matches!(
        r.phase,
        weft_store::RunPhase::Queued | weft_store::RunPhase::Scheduled
    )
    .then(|| weft_engine::runs::held_view(store, &r.id, weft_store::DEFAULT_RECOVERY_TIMEOUT).ok())
    .flatten()
    .flatten()
}

/// `weft runs start RUN`: a run held pending is released and run here to its end.
async fn start(
    args: &StoreArgs,
    run: &str,
    secrets: &[String],
    plugins: &crate::cli::PluginArgs,
) -> Result<u8, Failure> {
    let store = open_for(args)?;
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    let service = service_on(&store, plugins, data_dir, secrets, crate::Leases::default())?;
    let taken = match service.start_pending(run).await {
        Ok(taken) => taken,
        Err(weft_engine::runs::TakeOverError::Store(weft_store::StoreError::NotFound {
            ..
        })) => {
            return Err(Failure::invalid(format!("no run `{run}` in the store")));
        }
        Err(err) => return Err(Failure::invalid(format!("cannot start `{run}`: {err}"))),
    };
    let live = taken.run;
    let display = match args.output {
        OutputFormat::Text => Display::Text,
        OutputFormat::Json | OutputFormat::Tekton | OutputFormat::Dot => Display::Json,
    };
    if args.output == OutputFormat::Text {
        println!("Run {}", live.name());
    }
    let log_dir = live.log_dir();
    let (observer, color) = view::observer(live.plan(), live.name(), display, live.run_dir());
    let (_cancel, control) = cancel_channel();
    let clock = Instant::now();
    let finished = live.execute(observer, control, false).await;
    view::undelivered(&finished.undelivered, finished.report_timeout);
    store.flush().map_err(store_failure)?;
    let RunEnd::Finished(summary) = finished.end else {
        return Err(Failure::environment(
            "the run was let go of before it ended",
        ));
    };
    match args.output {
        OutputFormat::Tekton => {
            let object = crate::tekton_output::from_store(store.as_ref(), run)
                .map_err(store_failure)?
                .unwrap_or_default();
            println!("{object:#}");
        }
        OutputFormat::Json | OutputFormat::Dot => println!(
            "{}",
            serde_json::to_string_pretty(&summary.report).unwrap_or_default()
        ),
        OutputFormat::Text => print!(
            "{}",
            view::summary(&summary, clock.elapsed(), color, &log_dir)
        ),
    }
    store.close().map_err(store_failure)?;
    Ok(summary.status.exit_code().clamp(0, 255) as u8)
}

/// One row of `weft runs list --output json` and `GET /api/v1/runs`.
pub fn list_item(r: &weft_store::RunListItem, held: Option<String>) -> serde_json::Value {
    serde_json::json!({
        "id": r.id,
        "attempt": attempt_number(&r.id),
        "waitingFor": held,
        "name": r.name,
        "pipeline": r.pipeline_name,
        "phase": format!("{:?}", r.phase),
        "status": r.status,
        "createdAt": r.created_at.millis(),
        "finishedAt": r.finished_at.map(Timestamp::millis),
        "durationMs": r.duration().map(|d| d.as_millis() as u64),
    })
}

fn list(args: &StoreArgs, limit: usize) -> Result<u8, Failure> {
    let store = open_for(args)?;
    let runs = store.list_runs(limit).map_err(store_failure)?;
    if args.output.plain() == OutputFormat::Json {
        let rows: Vec<_> = runs
            .iter()
            .map(|r| list_item(r, held(&*store, r)))
            .collect();
        println!("{}", serde_json::Value::Array(rows));
        return Ok(0);
    }
    println!(
        "{:<36} {:<24} {:<22} {:>9}",
        "RUN", "PIPELINE", "STATUS", "DURATION"
    );
    for run in runs {
        let status = run
            .status
            .clone()
            .unwrap_or_else(|| format!("{:?}", run.phase));
        let status = match held(&*store, &run) {
            Some(why) => format!("{status} ({why})"),
            None => status,
        };
        println!(
            "{:<36} {:<24} {:<22} {:>9}",
            run.id,
            run.pipeline_name,
            status,
            millis_to_text(run.duration())
        );
    }
    Ok(0)
}

/// A run as `weft runs show --output json` and `GET /api/v1/runs/{run}` give it; `None`
/// when there is no such run.
pub fn run_document(
    store: &dyn RunStore,
    run: &str,
) -> Result<Option<serde_json::Value>, weft_store::StoreError> {
    let Some(record) = store.run(run)? else {
        return Ok(None);
    };
    let attempts = store.attempts(run)?;
    // Workspace snapshots: those kept in the store, and what happened to them (events).
    let snapshots = crate::snapshots::Listing::of(store, run)?;
    let report: serde_json::Value = record
        .report_json
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or(serde_json::Value::Null);
    // Approvals, manual interventions and gates, with every decision cast; read before
    // the operation view so that a wait shown open is also open in that view.
    let waits = weft_engine::runs::waits_document(store, run)?;
    // The `<status, operationStatus>` pairs as the store has them now (the report's are
    // those at the end).
    let operation = weft_engine::runs::operation_view(store, run)?;
    let run_attempts = store.runs_named(&record.submitted.name)?;
    Ok(Some(serde_json::json!({
        "id": run,
        "name": record.submitted.name,
        "attempt": attempt_number(run),
        "runAttempts": run_attempts,
        "waitingFor": weft_engine::runs::held_view(store, run, weft_store::DEFAULT_RECOVERY_TIMEOUT)?,
        "operation": operation.as_ref().map(|view| view.run),
        "taskOperations": operation.as_ref().map(|view| &view.tasks),
        "pipeline": record.submitted.pipeline_name,
        "phase": format!("{:?}", record.phase),
        "status": record.status,
        "reason": record.reason,
        "recovery": record.submitted.recovery.as_str(),
        "createdAt": record.submitted.created_at.millis(),
        "finishedAt": record.finished_at.map(Timestamp::millis),
        "report": report,
        "attempts": attempts.iter().map(|a| serde_json::json!({
            "id": a.id.to_string(),
            "task": a.id.task,
            "attempt": a.id.attempt,
            "phase": format!("{:?}", a.phase),
            "outcome": a.outcome.map(|o| format!("{o:?}")),
            "reason": a.reason,
            "startedAt": a.started_at.map(Timestamp::millis),
            "endedAt": a.ended_at.map(Timestamp::millis),
            "exitCode": a.exit_code,
            "message": a.message,
            "results": serde_json::from_str::<serde_json::Value>(&a.results_json).unwrap_or_default(),
        })).collect::<Vec<_>>(),
        "snapshots": snapshots.stored,
        "snapshotEvents": snapshots.events,
        // What the form decorators changed at submission (names only): decorators.rs.
        "decorations": crate::decorators::recorded(store, run).0,
        "waits": waits,
    })))
}

fn show(args: &StoreArgs, run: &str, attempt: Option<u32>, graph: bool) -> Result<u8, Failure> {
    let store = open_for(args)?;
    let id = resolve(&*store, run, attempt)?;
    let run = id.as_str();
    if graph || args.output == OutputFormat::Dot {
        return show_graph(&*store, run, args.output == OutputFormat::Dot);
    }
    if args.output == OutputFormat::Tekton {
        let object = crate::tekton_output::from_store(store.as_ref(), run)
            .map_err(store_failure)?
            .ok_or_else(|| Failure::invalid(format!("no run named `{run}`")))?;
        println!("{object:#}");
        return Ok(0);
    }
    if args.output == OutputFormat::Json {
        let doc = run_document(store.as_ref(), run)
            .map_err(store_failure)?
            .ok_or_else(|| Failure::invalid(format!("no run named `{run}`")))?;
        println!("{doc:#}");
        return Ok(0);
    }
    let record = store
        .run(run)
        .map_err(store_failure)?
        .ok_or_else(|| Failure::invalid(format!("no run named `{run}`")))?;
    let attempts = store.attempts(run).map_err(store_failure)?;
    println!(
        "Run {} (attempt {}) of {}: {} {}",
        record.submitted.name,
        attempt_number(run),
        record.submitted.pipeline_name,
        record.status.clone().unwrap_or_else(|| {
            if weft_engine::runs::is_pending(&record) {
                format!(
                    "PipelineRunPending (not started: `weft runs start {}`)",
                    record.submitted.name
                )
            } else {
                format!("{:?}", record.phase)
            }
        }),
        record.reason
    );
    if let Some(why) =
        weft_engine::runs::held_view(&*store, run, weft_store::DEFAULT_RECOVERY_TIMEOUT)
            .map_err(store_failure)?
    {
        println!("Waiting: {why}");
    }
    if let Some(view) = weft_engine::runs::operation_view(&*store, run).map_err(store_failure)? {
        println!(
            "Operation: <{:?}, {:?}>",
            view.run.status, view.run.operation_status
        );
    }
    let (_, decorations) = crate::decorators::recorded(&*store, run);
    if !decorations.is_empty() {
        println!("Decorated at submission:\n{}", decorations.join("\n"));
    }
    println!(
        "{:<28} {:<10} {:<22} {:<20} {:>4}  RESULTS",
        "ATTEMPT", "PHASE", "OUTCOME", "REASON", "EXIT"
    );
    for a in &attempts {
        let exit = a.exit_code.map_or("-".to_string(), |c| c.to_string());
        let outcome = a.outcome.map(|o| format!("{o:?}")).unwrap_or_default();
        println!(
            "{:<28} {:<10} {:<22} {:<20} {:>4}  {}",
            a.id.to_string(),
            format!("{:?}", a.phase),
            outcome,
            a.reason,
            exit,
            a.results_json
        );
    }
    print_waits(&*store, run)?;
    crate::snapshots::Listing::of(&*store, run)
        .map_err(store_failure)?
        .print();
    Ok(0)
}

/// The run's waits and their decisions, for people.
fn print_waits(store: &dyn RunStore, run: &str) -> Result<(), Failure> {
    let waits = weft_engine::runs::waits_document(store, run).map_err(store_failure)?;
    let Some(waits) = waits.as_array().filter(|w| !w.is_empty()) else {
        return Ok(());
    };
    println!("Waits:");
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_string();
    for wait in waits {
        let state = if wait["open"] == true {
            "waiting".to_string()
        } else {
            text(&wait["outcome"])
        };
        println!(
            "  {:<24} {:<13} {:<20} since {}{}",
            format!("{}/{}", text(&wait["task"]), wait["attempt"]),
            text(&wait["kind"]),
            state,
            text(&wait["since"]),
            wait["deadline"]
                .as_str()
                .map(|d| format!(", times out {d}"))
                .unwrap_or_default()
        );
        for vote in wait["votes"].as_array().into_iter().flatten() {
            let message = text(&vote["message"]);
            println!(
                "    {} {} at {}{}",
                text(&vote["identity"]),
                text(&vote["decision"]),
                text(&vote["at"]),
                if message.is_empty() || message == "-" {
                    String::new()
                } else {
                    format!(": {message}")
                }
            );
        }
    }
    Ok(())
}

async fn logs(
    args: &StoreArgs,
    run: &str,
    task: Option<&str>,
    attempt: Option<u32>,
    follow: bool,
) -> Result<u8, Failure> {
    let store = open_for(args)?;
    let id = resolve(&*store, run, attempt)?;
    let run = id.as_str();
    let mut cursor = 0;
    loop {
        let lines = store.logs(run, task, cursor, 1000).map_err(store_failure)?;
        for entry in &lines {
            cursor = cursor.max(entry.cursor);
            if args.output.plain() == OutputFormat::Json {
                println!(
                    "{}",
                    serde_json::json!({
                        "task": entry.id.task,
                        "attempt": entry.id.attempt,
                        "stream": entry.line.stream,
                        "at": entry.line.at.millis(),
                        "text": entry.line.text,
                    })
                );
            } else {
                println!("[{}] {}", entry.id.task, entry.line.text);
            }
        }
        if !lines.is_empty() {
            continue;
        }
        let finished = store
            .run(run)
            .map_err(store_failure)?
            .is_some_and(|r| r.finished_at.is_some());
        if !follow || finished {
            return Ok(0);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `weft runs show RUN --graph` and `--output dot`.
fn show_graph(store: &dyn RunStore, run: &str, dot: bool) -> Result<u8, Failure> {
    let record = store
        .run(run)
        .map_err(store_failure)?
        .ok_or_else(|| Failure::invalid(format!("no run named `{run}`")))?;
    let plan = weft_engine::runs::stored_plan(&record).ok_or_else(|| {
        Failure::environment(format!(
            "run `{run}`: its stored pipeline no longer plans with this weft, so its graph cannot be drawn"
        ))
    })?;
    let nodes = weft_core::graph::layout(&plan);
    let states = crate::graph_output::states(&store.attempts(run).map_err(store_failure)?);
    if dot {
        print!("{}", crate::graph_output::dot(run, &nodes, &states));
    } else {
        println!(
            "Run {} of {}: {}",
            record.submitted.name,
            record.submitted.pipeline_name,
            record
                .status
                .clone()
                .unwrap_or_else(|| format!("{:?}", record.phase))
        );
        print!("{}", crate::graph_output::text(&nodes, &states));
    }
    Ok(0)
}

/// The timeouts a stored run was asked for (for its Tekton form).
fn pipeline_timeouts(record: &weft_store::RunRecord) -> weft_engine::runs::RunTimeouts {
    weft_engine::runs::StoredRun::read(&record.submitted.id, &record.submitted)
        .map(|stored| stored.spec.timeouts)
        .unwrap_or_default()
}

/// `weft runs rerun`: the next attempt of a finished run, in the foreground.
async fn rerun(args: crate::cli::RerunArgs) -> Result<u8, Failure> {
    let signals = crate::Signals::install()?;
    let store = open_for(&args.store)?;
    let latest = resolve(&*store, &args.run, None)?;
    let record = store
        .run(&latest)
        .map_err(store_failure)?
        .ok_or_else(|| Failure::invalid(format!("no run named `{}`", args.run)))?;
    let file = record.submitted.pipeline_name.clone();
    let pipeline = weft_engine::runs::stored_pipeline(&record);
    let params = crate::spec_flags::params(pipeline.as_ref(), &args.params)?;
    let data_dir = args.store.data_dir.clone().unwrap_or_else(default_data_dir);
    let service = service_on(
        &store,
        &args.plugins,
        data_dir,
        &args.secrets,
        crate::Leases::default(),
    )?;
    let request = weft_engine::runs::RerunRequest {
        failed_only: args.failed_only,
        params,
        policy: None,
    };
    let submitted = match service.rerun(&args.run, request).await {
        Ok(submitted) => submitted,
        Err(weft_engine::runs::SubmitError::Invalid { diagnostics, .. }) => {
            return crate::report_invalid(
                &diagnostics,
                &record.submitted.pipeline_source,
                args.store.output,
            );
        }
        Err(err) => return Err(crate::spec_flags::failure(err)),
    };
    let how = crate::Foreground {
        output: args.store.output,
        tekton: args.store.output == OutputFormat::Tekton,
        detach: args.detach,
        cancel_first: None,
        timeouts: pipeline_timeouts(&record),
        // Re-runs trace where OpenTelemetry's environment says, if anywhere.
        traces: crate::traces::Traces::configure(None)?,
    };
    crate::foreground(&service, submitted.run, how, signals, &file).await
}

async fn recover(
    args: &StoreArgs,
    timeout: &str,
    secrets: &[String],
    plugins: &crate::cli::PluginArgs,
) -> Result<u8, Failure> {
    let older_than = weft_core::duration::parse_go_duration(timeout)
        .map_err(|e| Failure::invalid(format!("--recover-timeout {timeout}: {e}")))?;
    let store = open_for(args)?;
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    let stale = store
        .stale_runs(Timestamp::now(), older_than)
        .map_err(store_failure)?;
    let service = service_on(
        &store,
        plugins,
        data_dir,
        secrets,
        crate::Leases {
            ttl: older_than,
            take_over_here: false,
        },
    )?;
    let display = match args.output {
        OutputFormat::Text => Display::Text,
        OutputFormat::Json | OutputFormat::Tekton | OutputFormat::Dot => Display::Json,
    };
    let mut worst = 0;
    let mut recovered_any = false;
    for run in stale {
        let taken = match service.take_over(&run.id, older_than).await {
            Ok(taken) => taken,
            Err(err) => {
                eprintln!("weft: cannot recover `{}`: {err}", run.id);
                worst = worst.max(1);
                continue;
            }
        };
        recovered_any = true;
        let live = taken.run;
        if args.output == OutputFormat::Text {
            println!(
                "Recovering {} (strategy {})",
                live.name(),
                taken.strategy.as_str()
            );
        }
        if taken.redelivering > 0 {
            tracing::info!(
                run = live.name(),
                statuses = taken.redelivering,
                "re-delivering statuses from the outbox"
            );
        }
        let log_dir = live.log_dir();
        let (observer, color) = view::observer(live.plan(), live.name(), display, live.run_dir());
        let (_cancel, control) = cancel_channel();
        let clock = Instant::now();
        let finished = live.execute(observer, control, false).await;
        view::undelivered(&finished.undelivered, finished.report_timeout);
        let RunEnd::Finished(summary) = finished.end else {
            continue;
        };
        match args.output {
            OutputFormat::Json | OutputFormat::Tekton | OutputFormat::Dot => println!(
                "{}",
                serde_json::to_string(&summary.report).unwrap_or_default()
            ),
            OutputFormat::Text => {
                print!(
                    "{}",
                    view::summary(&summary, clock.elapsed(), color, &log_dir)
                );
                if let Some(hits) = summary.report.run.checkpoint_hits {
                    println!("  checkpoints hit: {hits}");
                }
            }
        }
        worst = worst.max(summary.status.exit_code().clamp(0, 255) as u8);
    }
    // Finished runs whose final statuses never reached their forges.
    for leftover in service
        .deliver_leftovers(older_than)
        .await
        .map_err(Failure::environment)?
    {
        recovered_any = true;
        let run = &leftover.run;
        if args.output == OutputFormat::Text {
            println!("Delivered the statuses run {run} still owed");
        }
        for missed in &leftover.undelivered {
            eprintln!(
                "weft: warning: run {run}: status `{:?}` for `{}` still not reported by {}: {}",
                missed.desired, missed.context, missed.reporter, missed.error
            );
            worst = worst.max(1);
        }
    }
    if !recovered_any && args.output == OutputFormat::Text {
        println!("no run to recover");
    }
    store.close().map_err(store_failure)?;
    Ok(worst)
}
