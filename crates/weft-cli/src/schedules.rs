//! `weft schedules add|list|remove`: the cron schedules `weft serve` fires, kept in the
//! run store (any process sharing it may change them; every server sees the change).

use weft_engine::runs::{NewSchedule, RunSpec, SubmitError, describe_time};
use weft_store::RunStore;

use crate::cli::{OutputFormat, SchedulesCommand};
use crate::{Failure, default_data_dir, read_pipeline_for, report_invalid, spec_flags};

/// Carries out `weft schedules ...`.
pub async fn command(command: SchedulesCommand) -> Result<u8, Failure> {
    match command {
        SchedulesCommand::Add(args) => {
            let crate::cli::ScheduleAddArgs {
                name,
                cron,
                timezone,
                file: path,
                params,
                plugins,
                store,
            } = *args;
            let output = store.output.plain();
            let file = path.display().to_string();
            let source = match read_pipeline_for(&path, output) {
                Ok(source) => source,
                Err(done) => return done,
            };
            let mut spec = RunSpec::new(source.clone(), file.clone());
            let pipeline = weft_core::parse_pipeline(&source, &file).ok();
            spec.params = spec_flags::params(pipeline.as_ref(), &params)?;
            let location =
                crate::store::store_location(store.db.as_deref(), store.data_dir.as_deref())?;
            let service = crate::service(
                &plugins,
                weft_runtime::DEFAULT_POOL_INSTANCES,
                store.data_dir.clone().unwrap_or_else(default_data_dir),
                &[],
                Box::new(move || crate::store::open_store(&location).map_err(|f| f.message)),
                crate::Leases::default(),
            )?;
            let record = match service
                .add_schedule(NewSchedule {
                    name,
                    cron,
                    zone: timezone,
                    spec,
                })
                .await
            {
                Ok(record) => record,
                Err(SubmitError::Invalid { diagnostics, .. }) => {
                    return report_invalid(&diagnostics, &source, output);
                }
                Err(SubmitError::Exists(name)) => {
                    return Err(Failure::invalid(format!(
                        "a schedule named `{name}` already exists; remove it first"
                    )));
                }
                Err(err) => return Err(spec_flags::failure(err)),
            };
            crate::close_store(&service)?;
            match output {
                OutputFormat::Json | OutputFormat::Tekton | OutputFormat::Dot => {
                    println!("{}", schedule_json(&record))
                }
                OutputFormat::Text => println!(
                    "schedule {} added: `{}` in {}, next tick {}; `weft serve` on this store fires it",
                    record.name,
                    record.cron,
                    record.zone,
                    next_text(&record)
                ),
            }
            Ok(0)
        }
        SchedulesCommand::List { store } => {
            let opened = crate::store::open_for(&store)?;
            let all = opened
                .schedules()
                .map_err(|e| Failure::environment(format!("run store: {e}")))?;
            if store.output.plain() == OutputFormat::Json {
                let rows: Vec<_> = all.iter().map(schedule_json).collect();
                println!("{}", serde_json::Value::Array(rows));
                return Ok(0);
            }
            println!(
                "{:<24} {:<20} {:<20} {:<22} PIPELINE",
                "SCHEDULE", "CRON", "ZONE", "NEXT"
            );
            for record in &all {
                let pipeline = serde_json::from_str::<RunSpec>(&record.spec_json)
                    .map(|spec| spec.pipeline.file)
                    .unwrap_or_default();
                println!(
                    "{:<24} {:<20} {:<20} {:<22} {pipeline}",
                    record.name,
                    record.cron,
                    record.zone,
                    next_text(record)
                );
            }
            Ok(0)
        }
        SchedulesCommand::Remove { name, store } => {
            let opened = crate::store::open_for(&store)?;
            let removed = opened
                .remove_schedule(&name)
                .map_err(|e| Failure::environment(format!("run store: {e}")))?;
            if !removed {
                return Err(Failure::invalid(format!("no schedule named `{name}`")));
            }
            println!("schedule {name} removed (the runs it started are kept)");
            Ok(0)
        }
    }
}

fn next_text(record: &weft_store::ScheduleRecord) -> String {
    record
        .next_at
        .and_then(|t| u64::try_from(t.0).ok())
        .map(|ms| describe_time(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)))
        .unwrap_or_else(|| "never".into())
}

/// A schedule as `weft schedules list --output json` and `GET /api/v1/schedules` give it
/// (never its spec's grants: only the pipeline's file name).
pub fn schedule_json(record: &weft_store::ScheduleRecord) -> serde_json::Value {
    let spec = serde_json::from_str::<RunSpec>(&record.spec_json).ok();
    serde_json::json!({
        "name": record.name,
        "cron": record.cron,
        "timezone": record.zone,
        "pipeline": spec.as_ref().map(|s| s.pipeline.file.clone()),
        "params": spec.as_ref().map(|s| &s.params),
        "nextAt": record.next_at.map(|t| t.0),
        "firingAt": record.firing_at.map(|t| t.0),
        "next": next_text(record),
        "createdAt": record.created_at.0,
    })
}
