//! What a transaction of writes has already checked, so it checks each run once.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use rusqlite::Connection;

use super::{check_lease, ensure_unfinished};
use crate::types::{Lease, Result};

/// What one transaction of writes has already checked: runs' leases, and that runs are
/// not finished. While the transaction holds the write lock nobody else writes, and no
/// write moves a lease; only `FinishRun` finishes a run, and it forgets that run here. So
/// a batch of a run's journal writes reads its `runs` row once, not twice per write.
#[derive(Default)]
pub(super) struct Checked {
    /// Run -> (owner, token) found current.
    leases: HashMap<String, (String, u64)>,
    /// Runs found not finished.
    unfinished: HashSet<String>,
    /// Run -> the last event sequence number, once read or written in this transaction
    /// (only this transaction appends events meanwhile).
    last_event: HashMap<String, i64>,
}

impl Checked {
    /// [`check_lease`], once per run and lease.
    pub(super) fn lease(
        &mut self,
        conn: &Connection,
        run: &str,
        lease: &Lease,
        path: &Path,
    ) -> Result<()> {
        if lease.run == run
            && self
                .leases
                .get(run)
                .is_some_and(|(owner, token)| *owner == lease.owner && *token == lease.token)
        {
            return Ok(());
        }
        check_lease(conn, run, lease, path)?;
        self.leases
            .insert(run.to_string(), (lease.owner.clone(), lease.token));
        Ok(())
    }

    /// [`ensure_unfinished`], once per run until it is finished.
    pub(super) fn unfinished(
        &mut self,
        conn: &Connection,
        run: &str,
        what: &str,
        path: &Path,
    ) -> Result<()> {
        if self.unfinished.contains(run) {
            return Ok(());
        }
        ensure_unfinished(conn, run, what, path)?;
        self.unfinished.insert(run.to_string());
        Ok(())
    }

    /// The sequence number of `run`'s next event: read once per transaction, then counted.
    pub(super) fn next_event_seq(&mut self, conn: &Connection, run: &str) -> rusqlite::Result<i64> {
        if let Some(last) = self.last_event.get_mut(run) {
            *last += 1;
            return Ok(*last);
        }
        let last: i64 = conn
            .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM events WHERE run = ?1")?
            .query_row([run], |r| r.get(0))?;
        self.last_event.insert(run.to_string(), last + 1);
        Ok(last + 1)
    }

    /// `run` was finished by this transaction.
    pub(super) fn finished(&mut self, run: &str) {
        self.unfinished.remove(run);
    }
}
