//! `--output tekton`: a run as a Tekton `PipelineRun` object, from a finished run's summary
//! (`weft run`) or from the run store (`weft runs show`, `weft runs start`). What it says
//! is decided in `weft_core::tekton_status`; this gathers the facts.

use std::collections::BTreeMap;

use serde_json::Value;
use weft_core::RunSummary;
use weft_core::tekton_status::{RunFacts, TaskFacts, pipeline_results, pipeline_run};
use weft_engine::runs::{RunTimeouts, StoredRun, is_pending, stored_pipeline};
use weft_store::{RunStore, StoreError};

/// The tasks of a run report (`weft run --output json`'s `tasks`). The tasks of a pipeline
/// a task runs belong to that task's child `PipelineRun`, not to this one.
fn report_tasks(tasks: &Value) -> Vec<TaskFacts> {
    tasks
        .as_array()
        .map(|tasks| {
            tasks
                .iter()
                .filter(|task| task["nestedIn"].is_null())
                .map(|task| TaskFacts {
                    name: task["name"].as_str().unwrap_or_default().to_string(),
                    pipeline_task: task["matrix"]["task"]
                        .as_str()
                        .or(task["name"].as_str())
                        .unwrap_or_default()
                        .to_string(),
                    finally: task["finally"].as_bool().unwrap_or_default(),
                    status: task["status"].as_str().unwrap_or_default().to_string(),
                    reason: task["reason"].as_str().unwrap_or_default().to_string(),
                    attempts: task["attempts"]
                        .as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .unwrap_or_default(),
                    results: serde_json::from_value(task["results"].clone()).unwrap_or_default(),
                    runs_pipeline: task["runsPipeline"].as_bool().unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A finished run, from its summary.
pub fn from_summary(summary: &RunSummary, pipeline: &str, timeouts: &RunTimeouts) -> Value {
    let report = serde_json::to_value(&summary.report).unwrap_or_default();
    let facts = RunFacts {
        name: summary.report.run.name.clone(),
        pipeline: pipeline.to_string(),
        status: Some(summary.report.run.status.clone()),
        reason: summary.reason.clone(),
        phase: "Finished".into(),
        pending: false,
        pipeline_timeout: timeouts.pipeline,
        tasks_timeout: timeouts.tasks,
        tasks: report_tasks(&report["tasks"]),
        results: summary.results.clone(),
    };
    pipeline_run(&facts)
}

/// A stored run (pending, running or finished); `None` when there is no such run.
pub fn from_store(store: &dyn RunStore, run: &str) -> Result<Option<Value>, StoreError> {
    let Some(record) = store.run(run)? else {
        return Ok(None);
    };
    let pipeline = stored_pipeline(&record);
    let report: Value = record
        .report_json
        .as_deref()
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or(Value::Null);
    let tasks = if report["tasks"].is_array() {
        report_tasks(&report["tasks"])
    } else {
        // Still going (or pending): each declared task and its latest attempt.
        let attempts = store.attempts(run)?;
        let mut latest: BTreeMap<&str, &weft_store::AttemptRecord> = BTreeMap::new();
        for attempt in &attempts {
            let slot = latest.entry(attempt.id.task.as_str()).or_insert(attempt);
            if attempt.id.attempt > slot.id.attempt {
                *slot = attempt;
            }
        }
        // A matrixed task's combinations (`<task>-<i>`) are listed once they have begun.
        let names = |task: &weft_core::model::PipelineTask| -> Vec<String> {
            let name = task.name.value.as_str();
            if task.matrix.is_none() || latest.contains_key(name) {
                return vec![name.to_string()];
            }
            let prefix = format!("{name}-");
            let mut combinations: Vec<(usize, String)> = latest
                .keys()
                .filter_map(|key| Some((key.strip_prefix(&prefix)?.parse().ok()?, key.to_string())))
                .collect();
            combinations.sort();
            if combinations.is_empty() {
                vec![name.to_string()]
            } else {
                combinations.into_iter().map(|(_, key)| key).collect()
            }
        };
        pipeline
            .iter()
            .flat_map(|p| p.all_tasks())
            .flat_map(|task| names(task).into_iter().map(move |name| (task, name)))
            .map(|(task, name)| {
                let name = name.as_str();
                let attempt = latest.get(name);
                TaskFacts {
                    name: name.to_string(),
                    pipeline_task: task.name.value.clone(),
                    finally: task.is_finally,
                    status: attempt.map_or("Pending".to_string(), |a| match a.outcome {
                        Some(outcome) => format!("{outcome:?}"),
                        None => format!("{:?}", a.phase),
                    }),
                    reason: attempt.map(|a| a.reason.clone()).unwrap_or_default(),
                    attempts: u32::try_from(attempts.iter().filter(|a| a.id.task == name).count())
                        .unwrap_or(u32::MAX),
                    results: attempt
                        .and_then(|a| serde_json::from_str(&a.results_json).ok())
                        .unwrap_or_default(),
                    runs_pipeline: task.child.is_some(),
                }
            })
            .collect()
    };
    let timeouts = StoredRun::read(run, &record.submitted)
        .map(|stored| stored.spec.timeouts)
        .unwrap_or_default();
    let results = pipeline
        .as_ref()
        .map(|p| pipeline_results(p, &tasks))
        .unwrap_or_default();
    let facts = RunFacts {
        name: record.submitted.name.clone(),
        pipeline: record.submitted.pipeline_name.clone(),
        status: record.status.clone(),
        reason: record.reason.clone(),
        phase: format!("{:?}", record.phase),
        pending: is_pending(&record),
        pipeline_timeout: timeouts.pipeline,
        tasks_timeout: timeouts.tasks,
        tasks,
        results,
    };
    Ok(Some(pipeline_run(&facts)))
}
