//! Re-running a finished run as its next attempt (release-control.md section 6): the
//! earlier attempts stay in the store unchanged; the new one is submitted like any run
//! from the latest attempt's stored spec, under the id `<run>~<n>`.

use std::collections::BTreeMap;

use weft_core::Carried;
use weft_core::contract::ParamValue;
use weft_store::RunStore;

use super::spec::{Rerun, StoredRun};
use super::{RunService, SubmitError, Submitted};

/// What a re-run changes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RerunRequest {
    /// Keep the tasks that succeeded (`--failed-only`).
    pub failed_only: bool,
    /// Params that replace the previous attempt's (`-p NAME=VALUE`).
    pub params: BTreeMap<String, ParamValue>,
    /// For a `weft serve` caller: the policy of its submissions (what it may use), which
    /// replaces the stored one so a re-run never gets more than its caller may give.
    pub policy: Option<super::SubmissionPolicy>,
}

/// The id of attempt `attempt` of run `run` (`None`: the latest), if it exists. `run` may
/// be a run's name or one attempt's id (`deploy~2`).
pub fn attempt_id(
    store: &dyn RunStore,
    run: &str,
    attempt: Option<u32>,
) -> Result<Option<String>, String> {
    let ids = store
        .runs_named(run)
        .map_err(|e| format!("run store: {e}"))?;
    if ids.is_empty() {
        // An attempt's own id, or nothing.
        let exists = store
            .run(run)
            .map_err(|e| format!("run store: {e}"))?
            .is_some();
        return Ok((exists && attempt.is_none()).then(|| run.to_string()));
    }
    Ok(match attempt {
        None => ids.last().cloned(),
        Some(n) => {
            let id = Rerun::id(run, n);
            ids.contains(&id).then_some(id)
        }
    })
}

/// What a `--failed-only` re-run keeps of attempt `previous`: its tasks that succeeded,
/// with their results, from its final report.
pub(super) fn carried(
    store: &dyn RunStore,
    previous: &str,
) -> Result<BTreeMap<String, Carried>, String> {
    let record = store
        .run(previous)
        .map_err(|e| format!("run store: {e}"))?
        .ok_or_else(|| format!("the previous attempt `{previous}` is gone from the store"))?;
    let Some(report) = record.report_json else {
        return Err(format!(
            "the previous attempt `{previous}` has no final report: re-run it whole (without --failed-only)"
        ));
    };
    let report: serde_json::Value = serde_json::from_str(&report)
        .map_err(|e| format!("the report of `{previous}` cannot be read: {e}"))?;
    let from_attempt = report["run"]["attempt"].as_u64().unwrap_or(1) as u32;
    let mut kept = BTreeMap::new();
    for task in report["tasks"].as_array().into_iter().flatten() {
        let (Some(name), Some(outcome)) = (
            task["name"].as_str(),
            task["status"]
                .as_str()
                .and_then(weft_store::Outcome::parse)
                .map(weft_core::Outcome::from),
        ) else {
            continue;
        };
        if !Carried::keeps(outcome) {
            continue;
        }
        let results = task["results"]
            .as_object()
            .map(|results| {
                results
                    .iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        // A task kept twice says where it first ran.
        let from = if task["reason"].as_str() == Some(weft_core::run::CARRIED) {
            task["message"]
                .as_str()
                .and_then(|m| m.strip_prefix("kept from attempt "))
                .and_then(|m| m.split(':').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(from_attempt)
        } else {
            from_attempt
        };
        let message = task["message"].as_str().unwrap_or_default();
        let message = message
            .strip_prefix(&format!("kept from attempt {from}"))
            .map(|rest| rest.trim_start_matches(": "))
            .unwrap_or(message);
        kept.insert(
            name.to_string(),
            Carried {
                outcome,
                results,
                message: message.to_string(),
                exit_code: task["exitCode"]
                    .as_i64()
                    .and_then(|c| i32::try_from(c).ok()),
                from_attempt: from,
            },
        );
    }
    Ok(kept)
}

impl RunService {
    /// Starts the next attempt of the finished run `run` (its name or an attempt's id):
    /// its latest attempt's spec with `request`'s changes. Only a terminal run can be
    /// re-run.
    pub async fn rerun(&self, run: &str, request: RerunRequest) -> Result<Submitted, SubmitError> {
        let store = self.store().map_err(SubmitError::Environment)?;
        // The run's name: an attempt's id names its run.
        let name = match run.split_once('~') {
            Some((name, n)) if n.parse::<u32>().is_ok() => name,
            _ => run,
        };
        let previous = attempt_id(&*store, name, None)
            .map_err(SubmitError::Environment)?
            .ok_or_else(|| SubmitError::NotFound(name.to_string()))?;
        let record = store
            .run(&previous)
            .map_err(|e| SubmitError::Environment(format!("run store: {e}")))?
            .ok_or_else(|| SubmitError::NotFound(name.to_string()))?;
        if record.finished_at.is_none() {
            return Err(SubmitError::NotTerminal(format!(
                "run `{name}` is not finished (its attempt `{previous}` is {}): only a finished run can be re-run; cancel it first",
                record.phase
            )));
        }
        let stored = StoredRun::read(&previous, &record.submitted).map_err(SubmitError::Refused)?;
        let attempts = store
            .runs_named(name)
            .map_err(|e| SubmitError::Environment(format!("run store: {e}")))?
            .len() as u32;
        let mut spec = stored.spec;
        // A server's caller re-runs only what a submission made: a run started by the
        // operator may bind host directories and HTTP rules no submission gets.
        if request.policy.is_some() && spec.policy.is_none() {
            return Err(SubmitError::Forbidden(format!(
                "run `{name}` was started by the operator, not submitted to this server: re-run it with `weft runs rerun` where it ran"
            )));
        }
        spec.params.extend(request.params);
        // The time it was scheduled for has passed; the re-run starts now.
        spec.scheduled_at_ms = None;
        if request.policy.is_some() {
            spec.policy = request.policy;
        }
        spec.data_dir = Some(stored.data_dir);
        spec.rerun = Some(Rerun {
            of: name.to_string(),
            attempt: attempts.max(1) + 1,
            previous,
            failed_only: request.failed_only,
        });
        self.submit(spec).await
    }
}
