//! A tenant's settings: its quotas and its egress allow-list, set by the operator (the
//! configuration file's `[tenants.NAME]`), stored as versioned JSON with the tenant.

use serde::{Deserialize, Serialize};
use weft_engine::runs::RunQuota;

/// The version of [`TenantSettings`] this build writes.
pub const SETTINGS_VERSION: u32 = 1;

/// Largest memory quota a tenant's task may be given, in MiB (the server's own ceiling
/// still applies).
const MAX_MEMORY_MIB: u64 = 64 * 1024;

/// What the operator sets for a tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TenantSettings {
    /// The settings' version ([`SETTINGS_VERSION`]); absent in the configuration file.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub version: u32,
    /// How many of its runs go at once; the rest wait in phase `Queued`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent_runs: Option<u32>,
    /// How many of its task attempts run at once, across its runs; the rest wait for a
    /// slot (`QueuedForAgent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent_tasks: Option<u32>,
    /// How many of its runs may wait at once; a submission beyond is refused (`429`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_runs: Option<u32>,
    /// What it may keep, in MiB: its plugins, its runs' logs and snapshots; past it a
    /// submission or an upload is refused (`429`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_mib: Option<u64>,
    /// Guest CPU seconds its tasks may use per rolling hour (measured from wasm execution);
    /// past it its next tasks wait (`QueuedForAgent`) until the hour's use drops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_seconds_per_hour: Option<u64>,
    /// Log lines one run keeps, in KiB; past it one marker line, then nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_kib_per_run: Option<u64>,
    /// Linear memory per task attempt, in MiB (never above the server's ceiling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
    /// Where its tasks may reach over HTTP (`--allow-http` rules); none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<Vec<String>>,
    /// Its weight in the fair share of the server's task slots (1..=100, default 1): while
    /// tenants have tasks waiting, one of weight 2 is given twice the slots of one of 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl TenantSettings {
    /// The settings stored as `json` (`{}` for none); a version this build does not know
    /// is an error, never guessed at.
    pub fn from_stored(json: &str) -> Result<TenantSettings, String> {
        let settings: TenantSettings = serde_json::from_str(json)
            .map_err(|e| format!("a tenant's stored settings do not read: {e}"))?;
        if settings.version > SETTINGS_VERSION {
            return Err(format!(
                "a tenant's settings are of version {}; this weft reads up to {SETTINGS_VERSION}",
                settings.version
            ));
        }
        Ok(settings)
    }

    /// As stored.
    pub fn to_stored(&self) -> String {
        let versioned = TenantSettings {
            version: SETTINGS_VERSION,
            ..self.clone()
        };
        serde_json::to_string(&versioned).unwrap_or_else(|_| "{}".into())
    }

    /// What is wrong with them, if anything.
    pub fn check(&self) -> Result<(), String> {
        if self.concurrent_runs == Some(0) {
            return Err("concurrent-runs must be at least 1".into());
        }
        if self.concurrent_tasks == Some(0) {
            return Err("concurrent-tasks must be at least 1".into());
        }
        if let Some(mib) = self.memory_mib
            && !(1..=MAX_MEMORY_MIB).contains(&mib)
        {
            return Err(format!("memory-mib must be between 1 and {MAX_MEMORY_MIB}"));
        }
        if let Some(weight) = self.weight
            && !(1..=weft_engine::fair::MAX_WEIGHT).contains(&weight)
        {
            return Err(format!(
                "weight must be between 1 and {}",
                weft_engine::fair::MAX_WEIGHT
            ));
        }
        if let Some(rules) = &self.egress {
            crate::spec_flags::http_rules(rules).map_err(|f| format!("egress: {}", f.message))?;
        }
        Ok(())
    }

    /// The quotas a run of the tenant is held to.
    pub fn quota(&self) -> Option<RunQuota> {
        (self.concurrent_runs.is_some()
            || self.concurrent_tasks.is_some()
            || self.memory_mib.is_some()
            || self.log_kib_per_run.is_some()
            || self.cpu_seconds_per_hour.is_some()
            || self.weight.is_some())
        .then(|| RunQuota {
            concurrent_runs: self.concurrent_runs,
            concurrent_tasks: self.concurrent_tasks,
            memory_bytes: self.memory_mib.map(|mib| mib.saturating_mul(1 << 20)),
            log_bytes_per_run: self.log_kib_per_run.map(|kib| kib.saturating_mul(1024)),
            cpu_ms_per_hour: self.cpu_seconds_per_hour.map(|s| s.saturating_mul(1000)),
            weight: self.weight,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn settings_round_trip_versioned_and_bad_ones_are_refused() {
        let settings = TenantSettings {
            concurrent_runs: Some(2),
            memory_mib: Some(64),
            egress: Some(vec!["api.example.com".into()]),
            weight: Some(3),
            ..TenantSettings::default()
        };
        settings.check().unwrap();
        let stored = settings.to_stored();
        assert!(stored.contains("\"version\":1"), "{stored}");
        let read = TenantSettings::from_stored(&stored).unwrap();
        assert_eq!(read.concurrent_runs, Some(2));
        assert_eq!(read.quota().unwrap().memory_bytes, Some(64 << 20));
        assert_eq!(read.quota().unwrap().weight, Some(3));
        assert_eq!(
            TenantSettings::from_stored("{}").unwrap(),
            TenantSettings::default()
        );
        assert!(TenantSettings::from_stored(r#"{"version": 9}"#).is_err());
        assert!(TenantSettings::from_stored(r#"{"quota": 1}"#).is_err());
        for bad in [
            TenantSettings {
                concurrent_runs: Some(0),
                ..TenantSettings::default()
            },
            TenantSettings {
                memory_mib: Some(0),
                ..TenantSettings::default()
            },
            TenantSettings {
                egress: Some(vec!["ftp://nope".into()]),
                ..TenantSettings::default()
            },
            TenantSettings {
                weight: Some(0),
                ..TenantSettings::default()
            },
            TenantSettings {
                weight: Some(101),
                ..TenantSettings::default()
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }
}
