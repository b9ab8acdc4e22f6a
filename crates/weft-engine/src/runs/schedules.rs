//! Cron schedules (release-control.md section 5): kept in the store, fired by `weft serve`.
//! Each tick starts one run named `<schedule>-<YYYYMMDD-HHMMSS>` (UTC): the store claims
//! the tick for one server (`RunStore::claim_tick`), and the run's unique name makes a tick
//! whose server died between claiming it and creating its run fire once, by whichever
//! server finds it next. Missed ticks fire once, as one (`weft_core::schedule::due`).

use weft_core::schedule::{self, CronSchedule, Tick};
use weft_store::{RunStore, ScheduleRecord, StoreError, Timestamp};

use super::spec::RunSpec;
use super::{RunService, SubmitError, Submitted};

/// A schedule as asked for.
#[derive(Debug, Clone)]
pub struct NewSchedule {
    /// Its name: a DNS-1123 label of at most 47 characters (its runs add 16).
    pub name: String,
    /// The cron expression (5 fields, or 6 with seconds first).
    pub cron: String,
    /// The IANA time zone the expression is read in.
    pub zone: String,
    /// What each tick runs (its `name` and `scheduledAt` are set per tick).
    pub spec: RunSpec,
}

/// What a firing did.
pub enum Fired {
    /// A tick's run, to execute.
    Run(Box<Submitted>),
    /// A tick that could not start its run (the pipeline no longer validates, ...): the
    /// tick is spent, the next one will try again.
    Failed {
        /// The schedule.
        schedule: String,
        /// The tick's run name.
        run: String,
        /// Why.
        error: SubmitError,
    },
}

/// The run name of `schedule`'s tick at `tick_ms`.
pub fn tick_run_name(schedule: &str, tick_ms: i64) -> String {
    let at = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(tick_ms)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::UNIX_EPOCH);
    format!("{schedule}-{}", at.format("%Y%m%d-%H%M%S"))
}

impl RunService {
    /// Validates and keeps a schedule; its first tick is the first occurrence after now.
    pub async fn add_schedule(&self, new: NewSchedule) -> Result<ScheduleRecord, SubmitError> {
        if new.name.len() > 47 || !weft_core::validate::is_dns1123_label(&new.name) {
            return Err(SubmitError::Refused(format!(
                "schedule name `{}`: a DNS-1123 label (lowercase letters, digits, `-`) of at most 47 characters",
                new.name
            )));
        }
        let parsed = CronSchedule::parse(&new.cron, &new.zone)
            .map_err(|e| SubmitError::Refused(e.to_string()))?;
        if new.spec.name.is_some() || new.spec.scheduled_at_ms.is_some() || new.spec.rerun.is_some()
        {
            return Err(SubmitError::Refused(
                "a schedule names its runs and starts them at its ticks: no run name, start time or re-run".into(),
            ));
        }
        // Refused now rather than at every tick.
        let registry = self
            .registry_for(new.spec.tenant())
            .map_err(SubmitError::Environment)?;
        super::validate(&registry, &new.spec.pipeline, &new.spec.params)
            .await
            .map_err(|diagnostics| SubmitError::Invalid {
                diagnostics,
                decorator_log: Vec::new(),
            })?;
        let now = Timestamp::now();
        // Stored under its tenant's qualified name: its ticks' runs are the tenant's too.
        let name = weft_store::tenants::qualify(new.spec.tenant(), &new.name)
            .ok_or_else(|| SubmitError::Refused(format!("schedule name `{}`", new.name)))?;
        let record = ScheduleRecord {
            name,
            cron: new.cron.trim().to_string(),
            zone: new.zone.trim().to_string(),
            spec_json: serde_json::to_string(&new.spec)
                .map_err(|e| SubmitError::Environment(format!("cannot encode the spec: {e}")))?,
            next_at: parsed.next_after(now.0).map(Timestamp),
            firing_at: None,
            created_at: now,
        };
        let store = self.store().map_err(SubmitError::Environment)?;
        store.add_schedule(&record).map_err(|e| match e {
            StoreError::AlreadyExists { .. } => SubmitError::Exists(new.name.clone()),
            e => SubmitError::Environment(format!("run store: {e}")),
        })?;
        Ok(record)
    }

    /// Fires every tick that is due now and not yet fired, returning the runs to execute.
    /// Several servers may call this at once: each tick starts one run.
    pub async fn fire_due_ticks(&self) -> Result<Vec<Fired>, String> {
        let store = self.store()?;
        let schedules = store.schedules().map_err(|e| format!("run store: {e}"))?;
        let mut fired = Vec::new();
        for record in schedules {
            // A tick claimed by a server that did not get to create its run.
            if let Some(tick) = record.firing_at {
                fired.extend(self.fire(&*store, &record, tick.0).await);
                continue;
            }
            let (Some(next), Ok(parsed)) = (
                record.next_at,
                CronSchedule::parse(&record.cron, &record.zone),
            ) else {
                continue;
            };
            let Tick::Fire { tick_ms, next_ms } =
                schedule::due(&parsed, next.0, Timestamp::now().0)
            else {
                continue;
            };
            let won = store
                .claim_tick(&record.name, Timestamp(tick_ms), next_ms.map(Timestamp))
                .map_err(|e| format!("run store: {e}"))?;
            if won {
                crate::fault::point("tick-claimed");
                fired.extend(self.fire(&*store, &record, tick_ms).await);
            }
        }
        Ok(fired)
    }

    /// Creates the run of `record`'s tick `tick_ms` (once: its name is the tick's) and
    /// marks the tick fired.
    async fn fire(
        &self,
        store: &dyn RunStore,
        record: &ScheduleRecord,
        tick_ms: i64,
    ) -> Option<Fired> {
        let run = tick_run_name(&record.name, tick_ms);
        let result = match serde_json::from_str::<RunSpec>(&record.spec_json) {
            Ok(mut spec) => {
                // The run's name as its tenant knows it: the submission qualifies it.
                let (_, schedule) = weft_store::tenants::unqualify(&record.name);
                spec.name = Some(tick_run_name(schedule, tick_ms));
                self.submit(spec).await
            }
            Err(e) => Err(SubmitError::Refused(format!(
                "the schedule's stored spec cannot be read: {e}"
            ))),
        };
        let fired = match result {
            Ok(submitted) => Some(Fired::Run(Box::new(submitted))),
            // Another server created it first: the tick fired once.
            Err(SubmitError::Exists(_)) => None,
            // The store is unreachable: the tick stays claimed, fired by the next sweep.
            Err(SubmitError::Environment(e)) => {
                tracing::warn!(schedule = %record.name, error = %e, "cannot fire a tick yet");
                return None;
            }
            Err(error) => Some(Fired::Failed {
                schedule: record.name.clone(),
                run,
                error,
            }),
        };
        if let Err(e) = store.tick_fired(&record.name, Timestamp(tick_ms)) {
            tracing::warn!(schedule = %record.name, error = %e, "cannot mark a tick fired");
        }
        fired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_runs_are_named_by_their_utc_time() {
        // 2026-12-24T01:00:00Z
        assert_eq!(
            tick_run_name("nightly", 1_798_074_000_000),
            "nightly-20261224-010000"
        );
    }
}
