//! Cron schedules (release-control.md section 5): when a schedule fires. A schedule keeps
//! the time of its next tick; a server that finds that time passed fires the tick once and
//! moves on to the first occurrence after now, so a server that was down over several
//! ticks fires once when it comes back, not once per missed tick.

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;

/// A parsed cron expression in a time zone.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    cron: Cron,
    zone: Tz,
}

/// Why a cron expression or time zone was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The expression is not a cron expression.
    #[error("`{expression}` is not a cron expression: {reason}")]
    Cron {
        /// As given.
        expression: String,
        /// What is wrong.
        reason: String,
    },
    /// The time zone is not an IANA name.
    #[error("`{0}` is not a time zone: use an IANA name such as `Europe/Paris` or `UTC`")]
    Zone(String),
    /// The expression never matches (e.g. February 30th).
    #[error("`{0}` never fires")]
    Never(String),
}

impl CronSchedule {
    /// Parses `expression` (5 fields, or 6 with seconds first; `@daily` and friends) in
    /// the IANA time zone `zone`.
    pub fn parse(expression: &str, zone: &str) -> Result<CronSchedule, ScheduleError> {
        let cron = Cron::from_str(expression.trim()).map_err(|err| ScheduleError::Cron {
            expression: expression.to_string(),
            reason: err.to_string(),
        })?;
        let zone = Tz::from_str(zone.trim()).map_err(|_| ScheduleError::Zone(zone.to_string()))?;
        let schedule = CronSchedule { cron, zone };
        if schedule.next_after(0).is_none() {
            return Err(ScheduleError::Never(expression.to_string()));
        }
        Ok(schedule)
    }

    /// The first occurrence strictly after `after_ms` (ms since the epoch), if any.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        let after: DateTime<Utc> = Utc.timestamp_millis_opt(after_ms).single()?;
        let local = after.with_timezone(&self.zone);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|next| next.with_timezone(&Utc).timestamp_millis())
    }
}

/// What a schedule does at `now_ms`, its next tick being `next_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// Not yet.
    NotYet,
    /// Fire the tick of `tick_ms` once; the next is `next_ms` (`None`: it never fires again).
    Fire {
        /// The tick being fired (names its run, so it fires once).
        tick_ms: i64,
        /// The first occurrence after now.
        next_ms: Option<i64>,
    },
}

/// Whether the tick at `next_ms` is due at `now_ms`, and what comes after it: missed ticks
/// are fired once, as one.
pub fn due(schedule: &CronSchedule, next_ms: i64, now_ms: i64) -> Tick {
    if next_ms > now_ms {
        return Tick::NotYet;
    }
    Tick::Fire {
        tick_ms: next_ms,
        next_ms: schedule.next_after(now_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.timestamp_millis())
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn next_occurrences_follow_the_time_zone() {
        let rows = [
            // (expression, zone, after, next)
            (
                "0 2 * * 1-5",
                "UTC",
                "2026-12-04T10:00:00Z",
                "2026-12-07T02:00:00Z",
            ),
            (
                "0 2 * * 1-5",
                "Europe/Paris",
                "2026-12-04T10:00:00Z",
                "2026-12-07T01:00:00Z",
            ),
            // Summer time in Paris: UTC+2.
            (
                "0 2 * * *",
                "Europe/Paris",
                "2026-07-01T12:00:00Z",
                "2026-07-02T00:00:00Z",
            ),
            // Seconds first, six fields.
            (
                "*/5 * * * * *",
                "UTC",
                "2026-12-04T10:00:01Z",
                "2026-12-04T10:00:05Z",
            ),
            (
                "@daily",
                "UTC",
                "2026-12-04T10:00:00Z",
                "2026-12-05T00:00:00Z",
            ),
        ];
        for (expression, zone, after, want) in rows {
            let schedule = CronSchedule::parse(expression, zone).expect(expression);
            assert_eq!(
                schedule.next_after(ms(after)),
                Some(ms(want)),
                "{expression} in {zone} after {after}"
            );
        }
    }

    #[test]
    fn a_missed_tick_fires_once_and_moves_past_now() {
        let schedule = CronSchedule::parse("0 * * * *", "UTC").expect("hourly");
        let next = ms("2026-12-04T10:00:00Z");
        assert_eq!(
            due(&schedule, next, ms("2026-12-04T09:59:59Z")),
            Tick::NotYet
        );
        assert_eq!(
            due(&schedule, next, ms("2026-12-04T10:00:00Z")),
            Tick::Fire {
                tick_ms: next,
                next_ms: Some(ms("2026-12-04T11:00:00Z"))
            }
        );
        // Down from 10:00 to 13:30: one tick (10:00), then 14:00.
        assert_eq!(
            due(&schedule, next, ms("2026-12-04T13:30:00Z")),
            Tick::Fire {
                tick_ms: next,
                next_ms: Some(ms("2026-12-04T14:00:00Z"))
            }
        );
    }

    #[test]
    fn bad_expressions_and_zones_are_refused_saying_why() {
        let cases = [
            ("0 2 * *", "UTC", "is not a cron expression"),
            ("61 * * * *", "UTC", "is not a cron expression"),
            ("0 2 * * 1-5", "Mars/Olympus", "is not a time zone"),
            ("0 0 30 2 *", "UTC", "never fires"),
        ];
        for (expression, zone, says) in cases {
            let err = CronSchedule::parse(expression, zone).expect_err(expression);
            assert!(err.to_string().contains(says), "{expression} {zone}: {err}");
        }
    }
}
