//! A tenant's guest CPU time per rolling hour (its `cpu-seconds-per-hour` quota): each
//! task attempt adds what its wasm used (in the store, per minute, so every server sharing
//! it sees the tenant's whole use), and while the last 60 minutes add up to the quota the
//! tenant's next tasks wait for a slot (`QueuedForAgent`) instead of starting.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use weft_store::RunStore;

/// How long a look at the tenant's use stays good: the store is not asked per task.
const RECHECK: Duration = Duration::from_secs(1);

/// One run's view of its tenant's CPU quota.
pub(super) struct CpuQuota {
    store: Arc<dyn RunStore>,
    tenant: String,
    limit_ms: u64,
    looked: Mutex<Option<(Instant, bool)>>,
}

/// Minutes since the epoch, now.
fn minute_now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    i64::try_from(secs / 60).unwrap_or(i64::MAX)
}

impl CpuQuota {
    /// `tenant`'s quota of `limit_ms` per rolling hour, counted in `store`.
    pub(super) fn new(store: Arc<dyn RunStore>, tenant: String, limit_ms: u64) -> Arc<CpuQuota> {
        Arc::new(CpuQuota {
            store,
            tenant,
            limit_ms,
            looked: Mutex::new(None),
        })
    }

    /// An attempt used `cpu` of guest time. Called on the guest's own thread, as the
    /// invocation ends: a failed write is logged, never the task's failure.
    pub(super) fn used(&self, cpu: Duration) {
        let ms = u64::try_from(cpu.as_millis()).unwrap_or(u64::MAX);
        if ms == 0 {
            return;
        }
        if let Err(err) = self.store.add_cpu(&self.tenant, minute_now(), ms) {
            tracing::warn!(tenant = %self.tenant, error = %err, "cannot count a task's CPU time");
        }
        // The next look asks the store again.
        *self.looked.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Whether the tenant used its quota in the last hour (looked up at most every
    /// [`RECHECK`]; a store that cannot say lets tasks go).
    pub(super) fn over(&self) -> bool {
        let mut looked = self.looked.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, over)) = *looked
            && at.elapsed() < RECHECK
        {
            return over;
        }
        let over = match self.store.cpu_since(&self.tenant, minute_now() - 59) {
            Ok(used) => used >= self.limit_ms,
            Err(err) => {
                tracing::warn!(tenant = %self.tenant, error = %err, "cannot read a tenant's CPU time");
                false
            }
        };
        *looked = Some((Instant::now(), over));
        over
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_tenant_is_over_once_its_last_hour_adds_up_to_the_quota() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn RunStore> = Arc::new(
            weft_store::SqliteStore::open(dir.path().join("weft.db"), Default::default()).unwrap(),
        );
        weft_store::TenantStore::create_tenant(
            store.as_ref(),
            &weft_store::TenantRecord {
                name: "acme".into(),
                created_at: weft_store::Timestamp(0),
                settings_json: "{}".into(),
            },
        )
        .unwrap();
        let quota = CpuQuota::new(store.clone(), "acme".into(), 1_000);
        assert!(!quota.over());
        quota.used(Duration::from_millis(600));
        assert!(!quota.over());
        quota.used(Duration::from_millis(400));
        assert!(quota.over(), "1 s of 1 s used");
        // Another tenant's use is its own.
        let other = CpuQuota::new(store, "beta".into(), 1_000);
        assert!(!other.over());
    }
}
