//! The reporter outbox: the desired status of each (reporter, run, context), and what the
//! forge is known to show, behind [`OutboxStore`] so it can live in memory
//! ([`MemoryOutbox`]) or in the run store ([`RunStoreOutbox`], `weft_store` outbox rows),
//! so that a crash between "run finished" and "status posted" still delivers.
//!
//! # Rules (forges.md, "Rules every reporter follows")
//!
//! - A context only moves pending -> running -> terminal; an older or equal-rank desired
//!   state never replaces a newer one, and a terminal state is final.
//! - A terminal state, once delivered, is never sent again; a `permanent` answer stops the
//!   context.
//! - Coalescing happens on the delivery side ([`crate::report`]): each desired state is
//!   sent in order while the forge answers, so a healthy forge sees
//!   pending -> running -> terminal; after a failed attempt, the retry sends only the
//!   newest desired state (superseded states are dropped, the terminal one never is).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use weft_store::{Lease, OutboxKey, RunStore, Timestamp, WriteOp};

pub use weft_core::contract::ReportStatus;

/// The desired status of one context: what the reporter is asked to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredStatus {
    /// The status (the task's for a task-level context).
    pub status: ReportStatus,
    /// The run's status (equal to `status` for run-level contexts).
    pub run_status: ReportStatus,
    /// weft's reason; may be empty.
    pub reason: String,
    /// The task that halted the run and its message.
    pub halted_by: Option<(String, String)>,
    /// The run's (or task's) message; may be empty.
    pub message: String,
    /// A description suggested by the host; empty lets the reporter describe it.
    pub description: String,
    /// For a task-level context: the task's name.
    pub task: Option<String>,
}

impl DesiredStatus {
    /// A run-level status with nothing else; pending and running ones get their
    /// description ("waiting to start", "running").
    pub fn run(status: ReportStatus) -> Self {
        let description = match status.rank() {
            0 => weft_core::describe::describe_progress(false).to_string(),
            1 => weft_core::describe::describe_progress(true).to_string(),
            _ => String::new(),
        };
        DesiredStatus {
            status,
            run_status: status,
            reason: String::new(),
            halted_by: None,
            message: String::new(),
            description,
            task: None,
        }
    }
}

/// One outbox entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// (reporter, run, context).
    pub key: OutboxKey,
    /// What the forge should show.
    pub desired: DesiredStatus,
    /// What the forge is known to show.
    pub delivered: Option<ReportStatus>,
    /// Failed attempts since the last delivery.
    pub attempts: u32,
    /// Earliest next attempt.
    pub next_attempt_at: Option<Timestamp>,
    /// Last error (never a token).
    pub last_error: String,
    /// A reporter answered `permanent`: nothing more is sent.
    pub permanent: bool,
}

impl OutboxEntry {
    /// Whether the desired state still has to be sent.
    pub fn is_open(&self) -> bool {
        !self.permanent
            && match self.delivered {
                Some(d) => !d.is_terminal() && d.rank() < self.desired.status.rank(),
                None => true,
            }
    }
}

/// The error type of outbox stores: a message without secrets.
pub type OutboxError = String;

/// Where the outbox lives. Implementations enforce the never-regress rules.
pub trait OutboxStore: Send + Sync {
    /// Sets the desired state of `key` (created if missing). Returns `false` (and changes
    /// nothing) when it would move backwards or away from a terminal state.
    fn desire(&self, key: &OutboxKey, desired: &DesiredStatus) -> Result<bool, OutboxError>;
    /// Records that the forge now shows `status`; resets the attempts.
    fn delivered(&self, key: &OutboxKey, status: ReportStatus) -> Result<(), OutboxError>;
    /// Records a failed attempt; retry not before `next_attempt_at`. `permanent`: never.
    fn failed(
        &self,
        key: &OutboxKey,
        error: &str,
        next_attempt_at: Timestamp,
        permanent: bool,
    ) -> Result<(), OutboxError>;
    /// Every entry of `run`: on restart, the open ones ([`OutboxEntry::is_open`]) are
    /// what is left to deliver.
    fn entries(&self, run: &str) -> Result<Vec<OutboxEntry>, OutboxError>;
    /// Whether the run's lease was lost (another engine claimed the run): nothing more is
    /// sent from here, the new owner reports.
    fn fenced(&self) -> bool {
        false
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now() -> Timestamp {
    Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
    )
}

/// The outbox in memory: the rules' reference, exercised by the same tests as the store's.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct MemoryOutbox {
    entries: Mutex<BTreeMap<OutboxKey, OutboxEntry>>,
}

#[cfg(test)]
impl MemoryOutbox {
    /// An empty outbox.
    pub fn new() -> Arc<Self> {
        Arc::new(MemoryOutbox::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<OutboxKey, OutboxEntry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
impl OutboxStore for MemoryOutbox {
    fn desire(&self, key: &OutboxKey, desired: &DesiredStatus) -> Result<bool, OutboxError> {
        let mut entries = self.lock();
        match entries.get_mut(key) {
            Some(entry) => {
                if !entry.desired.status.may_become(desired.status) {
                    return Ok(false);
                }
                if *desired == entry.desired {
                    return Ok(false);
                }
                entry.desired = desired.clone();
                entry.attempts = 0;
                entry.next_attempt_at = None;
                Ok(true)
            }
            None => {
                entries.insert(
                    key.clone(),
                    OutboxEntry {
                        key: key.clone(),
                        desired: desired.clone(),
                        delivered: None,
                        attempts: 0,
                        next_attempt_at: None,
                        last_error: String::new(),
                        permanent: false,
                    },
                );
                Ok(true)
            }
        }
    }

    fn delivered(&self, key: &OutboxKey, status: ReportStatus) -> Result<(), OutboxError> {
        let mut entries = self.lock();
        let entry = entries
            .get_mut(key)
            .ok_or_else(|| format!("no outbox entry {}/{}", key.reporter, key.context))?;
        if entry.delivered.is_none_or(|d| !d.is_terminal()) {
            entry.delivered = Some(status);
            entry.attempts = 0;
            entry.last_error.clear();
            entry.next_attempt_at = None;
        }
        Ok(())
    }

    fn failed(
        &self,
        key: &OutboxKey,
        error: &str,
        next_attempt_at: Timestamp,
        permanent: bool,
    ) -> Result<(), OutboxError> {
        let mut entries = self.lock();
        let entry = entries
            .get_mut(key)
            .ok_or_else(|| format!("no outbox entry {}/{}", key.reporter, key.context))?;
        entry.attempts += 1;
        entry.last_error = error.to_string();
        entry.next_attempt_at = Some(next_attempt_at);
        entry.permanent |= permanent;
        Ok(())
    }

    fn entries(&self, run: &str) -> Result<Vec<OutboxEntry>, OutboxError> {
        Ok(self
            .lock()
            .values()
            .filter(|e| e.key.run == run)
            .cloned()
            .collect())
    }
}

/// Marks a permanent failure in the store's `last_error` (the store has no such column).
const PERMANENT_PREFIX: &str = "permanent: ";

/// The outbox in a [`RunStore`] (its `outbox` rows), written with the run's lease.
///
/// The store keeps the exact [`ReportStatus`] and the host's description (composed once
/// from the run report), so an entry read back after a restart is re-delivered as it was
/// first desired. A permanent failure is kept as `last_error` starting with `permanent: `
/// and a next attempt that is never due.
pub struct RunStoreOutbox {
    store: Arc<dyn RunStore>,
    lease: Lease,
    /// Set once a write was refused for a stale lease.
    fenced: std::sync::atomic::AtomicBool,
    /// Details the store cannot hold, for entries written by this process.
    detail: Mutex<BTreeMap<OutboxKey, DesiredStatus>>,
}

impl RunStoreOutbox {
    /// An outbox writing `store`'s rows with `lease` (the run's current lease).
    pub fn new(store: Arc<dyn RunStore>, lease: Lease) -> Arc<Self> {
        Arc::new(RunStoreOutbox {
            store,
            lease,
            fenced: std::sync::atomic::AtomicBool::new(false),
            detail: Mutex::new(BTreeMap::new()),
        })
    }

    fn write(&self, op: WriteOp) -> Result<weft_store::WriteAck, OutboxError> {
        self.store.write(op).map_err(|e| {
            if e.is_stale_lease() {
                self.fenced.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            e.to_string()
        })
    }

    /// The row key of `key`: rows are kept under the store's run id (the lease's run), so
    /// an engine recovering the run finds them from the run alone.
    fn row_key(&self, key: &OutboxKey) -> OutboxKey {
        OutboxKey {
            run: self.lease.run.clone(),
            ..key.clone()
        }
    }

    fn details(&self) -> std::sync::MutexGuard<'_, BTreeMap<OutboxKey, DesiredStatus>> {
        self.detail
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl OutboxStore for RunStoreOutbox {
    fn fenced(&self) -> bool {
        self.fenced.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn desire(&self, key: &OutboxKey, desired: &DesiredStatus) -> Result<bool, OutboxError> {
        let ack = self.write(WriteOp::OutboxDesire {
            lease: self.lease.clone(),
            key: self.row_key(key),
            state: desired.status,
            // The host's description, composed once from the run report (weft-core
            // `describe`): a re-delivery after a restart sends exactly the same text.
            description: desired.description.clone(),
            at: now(),
        })?;
        let mut details = self.details();
        let changed = match details.get(key) {
            Some(old) if !old.status.may_become(desired.status) => false,
            Some(old) => old != desired,
            None => ack != weft_store::WriteAck::Unchanged,
        };
        if changed {
            details.insert(key.clone(), desired.clone());
        }
        Ok(changed)
    }

    fn delivered(&self, key: &OutboxKey, status: ReportStatus) -> Result<(), OutboxError> {
        self.write(WriteOp::OutboxDelivered {
            lease: self.lease.clone(),
            key: self.row_key(key),
            state: status,
            at: now(),
        })
        .map(drop)
    }

    fn failed(
        &self,
        key: &OutboxKey,
        error: &str,
        next_attempt_at: Timestamp,
        permanent: bool,
    ) -> Result<(), OutboxError> {
        let (error, next) = if permanent {
            (format!("{PERMANENT_PREFIX}{error}"), Timestamp(i64::MAX))
        } else {
            (error.to_string(), next_attempt_at)
        };
        self.write(WriteOp::OutboxFailed {
            lease: self.lease.clone(),
            key: self.row_key(key),
            error,
            next_attempt_at: next,
            at: now(),
        })
        .map(drop)
    }

    fn entries(&self, run: &str) -> Result<Vec<OutboxEntry>, OutboxError> {
        let rows = self
            .store
            .outbox(&self.lease.run)
            .map_err(|e| e.to_string())?;
        let details = self.details();
        Ok(rows
            .into_iter()
            .map(|mut row| {
                // Back to the caller's run key (the run's uid).
                row.key.run = run.to_string();
                let desired = details
                    .get(&row.key)
                    .filter(|d| d.status == row.desired)
                    .cloned()
                    .unwrap_or_else(|| DesiredStatus {
                        description: row.description.clone(),
                        ..DesiredStatus::run(row.desired)
                    });
                OutboxEntry {
                    permanent: row.last_error.starts_with(PERMANENT_PREFIX),
                    key: row.key,
                    desired,
                    delivered: row.delivered,
                    attempts: row.attempts,
                    next_attempt_at: row.next_attempt_at,
                    last_error: row.last_error,
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(context: &str) -> OutboxKey {
        OutboxKey {
            reporter: "reporter-gitlab#0".into(),
            run: "run-1".into(),
            context: context.into(),
        }
    }

    fn open_only(entries: Vec<OutboxEntry>) -> Vec<OutboxEntry> {
        entries.into_iter().filter(OutboxEntry::is_open).collect()
    }

    fn exercise(outbox: &dyn OutboxStore) {
        let k = key("weft/p");
        assert!(
            outbox
                .desire(&k, &DesiredStatus::run(ReportStatus::Pending))
                .expect("ok")
        );
        assert!(
            outbox
                .desire(&k, &DesiredStatus::run(ReportStatus::Running))
                .expect("ok")
        );
        assert!(
            !outbox
                .desire(&k, &DesiredStatus::run(ReportStatus::Pending))
                .expect("ok"),
            "never backwards"
        );
        outbox.delivered(&k, ReportStatus::Running).expect("ok");
        assert_eq!(
            outbox.entries("run-1").map(open_only).expect("ok"),
            Vec::new()
        );
        let failed = DesiredStatus {
            message: "task `build` failed: boom".into(),
            ..DesiredStatus::run(ReportStatus::Failed)
        };
        assert!(outbox.desire(&k, &failed).expect("ok"));
        assert!(
            !outbox
                .desire(&k, &DesiredStatus::run(ReportStatus::Succeeded))
                .expect("ok"),
            "terminal is final"
        );
        outbox
            .failed(&k, "HTTP 500", Timestamp(5), false)
            .expect("ok");
        let open = outbox.entries("run-1").map(open_only).expect("ok");
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].desired.status, ReportStatus::Failed);
        assert_eq!(open[0].attempts, 1);
        outbox.delivered(&k, ReportStatus::Failed).expect("ok");
        assert!(
            outbox
                .entries("run-1")
                .map(open_only)
                .expect("ok")
                .is_empty()
        );
        let k2 = key("weft/p/build");
        outbox
            .desire(&k2, &DesiredStatus::run(ReportStatus::Running))
            .expect("ok");
        outbox.failed(&k2, "401", Timestamp(5), true).expect("ok");
        assert!(
            outbox
                .entries("run-1")
                .map(open_only)
                .expect("ok")
                .is_empty()
        );
        assert!(
            outbox
                .entries("run-1")
                .expect("ok")
                .iter()
                .any(|e| e.permanent)
        );
    }

    #[test]
    fn memory_outbox_follows_the_rules() {
        exercise(&*MemoryOutbox::new());
    }

    #[test]
    fn store_outbox_follows_the_rules_and_resumes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn RunStore> = Arc::new(
            weft_store::SqliteStore::open(
                dir.path().join("runs.db"),
                weft_store::StoreLimits::default(),
            )
            .expect("store opens"),
        );
        let lease = store
            .create_run(&new_run("run-1"), "test", now())
            .expect("run created");
        let outbox = RunStoreOutbox::new(store.clone(), lease.clone());
        exercise(&*outbox);
        // A fresh process (no in-memory detail) sees the same open entries.
        let k = key("weft/q");
        let warn = DesiredStatus {
            description: "p passed with warnings".into(),
            ..DesiredStatus::run(ReportStatus::SucceededWithWarnings)
        };
        outbox.desire(&k, &warn).expect("ok");
        let resumed = RunStoreOutbox::new(store, lease);
        let open = resumed.entries("run-1").map(open_only).expect("ok");
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].desired.status, ReportStatus::SucceededWithWarnings);
        assert_eq!(open[0].desired.description, "p passed with warnings");
    }

    fn new_run(id: &str) -> weft_store::NewRun {
        weft_store::NewRun {
            id: id.into(),
            name: id.into(),
            pipeline_name: "p".into(),
            pipeline_source: String::new(),
            params_json: "{}".into(),
            options_json: "{}".into(),
            created_at: now(),
            recovery: weft_store::Recovery::default(),
        }
    }
}
