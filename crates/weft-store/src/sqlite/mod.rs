//! The embedded default: SQLite (bundled) in WAL mode, schema managed by refinery
//! (`migrate.rs`; SQLite's `user_version` is kept equal to the schema version).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{
    Connection, ErrorCode, OpenFlags, OptionalExtension, Row, Transaction, TransactionBehavior,
    params,
};

mod checked;
mod checkpoint;
mod groups;
mod header;
mod tenants;

use checked::Checked;
use checkpoint::Checkpointer;

use crate::error::StoreError;
use crate::store::RunStore;
use crate::types::{
    AttemptId, AttemptRecord, EventRecord, Lease, LogEntry, NewEvent, NewLogLine, NewRun,
    NewSignal, OutboxKey, OutboxRow, Outcome, Recovery, ReportStatus, Result, RunListItem,
    RunPhase, RunRecord, ScheduleRecord, SignalRecord, SlotChange, SlotRow, Snapshot, StaleRun,
    StoreLimits, TRUNCATED_STREAM, TaskPhase, Timestamp, VoteRecord, WaitRecord, WriteAck, WriteOp,
};

/// How long a connection waits for another process's lock before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const MAX_READERS: usize = 4;

/// The SQLite store. Writes go through one connection (one transaction per
/// [`RunStore::apply`]); reads use a small pool of connections, which WAL lets run beside
/// the writer. Wrap it in a [`crate::BatchingStore`] for group commit.
pub struct SqliteStore {
    path: PathBuf,
    memory: bool,
    limits: StoreLimits,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// Checkpoints the WAL beside the writer (`None`: SQLite's own, in the writer's commits).
    /// Taken (and stopped) by [`RunStore::settle_before_exit`].
    checkpointer: Mutex<Option<Checkpointer>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a transaction open: dropping a
    // `Transaction` rolls it back. So the connection is safe to reuse.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `path`: checks the file header (and
    /// that the file is as long as it says), sets WAL, `synchronous=NORMAL`, foreign keys
    /// and the busy timeout, reads the schema and applies pending migrations. A file that
    /// is not a SQLite database or is truncated is [`StoreError::Corrupt`], naming the
    /// file. Opening reads a fixed number of pages, however many runs the file keeps.
    pub fn open(path: impl AsRef<Path>, limits: StoreLimits) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::Open {
                path: path.clone(),
                detail: format!("cannot create its directory: {e}"),
            })?;
        }
        header::check(&path)?;
        // Held until the database is configured and migrated (see the function).
        let _setup =
            crate::migrate::sqlite_setup_lock(&path).map_err(|detail| StoreError::Open {
                path: path.clone(),
                detail,
            })?;
        let mut conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| open_err(&path, e))?;
        configure(&conn, &path, true)?;
        // Not `quick_check`: it reads every page, so opening would take longer the more
        // runs are kept. Damage the header check misses fails the first read that meets
        // it, as `Corrupt`; `weft db check` ([`SqliteStore::check`]) reads everything.
        conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(|e| open_err(&path, e))?;
        crate::migrate::sqlite(&mut conn).map_err(|e| migration_err(&path, e))?;
        let checkpointer = Checkpointer::start(&path);
        if checkpointer.is_some() {
            conn.pragma_update(None, "wal_autocheckpoint", 0)
                .map_err(|e| open_err(&path, e))?;
        }
        Ok(SqliteStore {
            path,
            memory: false,
            limits,
            writer: Mutex::new(conn),
            readers: Mutex::new(Vec::new()),
            checkpointer: Mutex::new(checkpointer),
        })
    }

    /// Reads every page and checks it (`PRAGMA quick_check`): [`StoreError::Corrupt`]
    /// naming the first problems found.
    pub fn check(&self) -> Result<()> {
        quick_check(&lock(&self.writer), &self.path)
    }

    /// The default database file: `$WEFT_DATA_DIR/weft.db`, else
    /// `$XDG_DATA_HOME/weft/weft.db`, else `~/.local/share/weft/weft.db` (`%APPDATA%` on
    /// Windows). `None` when no home directory is known; the CLI's `--db PATH` overrides it.
    pub fn default_path() -> Option<PathBuf> {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let dir = var("WEFT_DATA_DIR")
            .or_else(|| var("XDG_DATA_HOME").map(|d| d.join("weft")))
            .or_else(|| var("APPDATA").map(|d| d.join("weft")))
            .or_else(|| var("HOME").map(|h| h.join(".local/share/weft")))?;
        Some(dir.join("weft.db"))
    }

    /// A private in-memory database (tests, `--db :memory:`). Reads share the writer's
    /// connection.
    pub fn open_in_memory(limits: StoreLimits) -> Result<Self> {
        let path = PathBuf::from(":memory:");
        let mut conn = Connection::open_in_memory().map_err(|e| open_err(&path, e))?;
        configure(&conn, &path, false)?;
        crate::migrate::sqlite(&mut conn).map_err(|e| migration_err(&path, e))?;
        Ok(SqliteStore {
            path,
            memory: true,
            limits,
            writer: Mutex::new(conn),
            readers: Mutex::new(Vec::new()),
            checkpointer: Mutex::new(None),
        })
    }

    /// The database file (`:memory:` for an in-memory store).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The limits it enforces.
    pub fn limits(&self) -> StoreLimits {
        self.limits
    }

    /// The schema version stored in the database.
    pub fn schema_version(&self) -> Result<usize> {
        let conn = lock(&self.writer);
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        usize::try_from(v).map_err(|_| bad("pragma", format!("user_version {v}")))
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        db_err(&self.path, e)
    }

    /// Runs `f` on a reader connection (the writer's, in memory).
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        if self.memory {
            return f(&lock(&self.writer));
        }
        let pooled = lock(&self.readers).pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(|e| open_err(&self.path, e))?;
                configure(&c, &self.path, false)?;
                c
            }
        };
        let out = f(&conn);
        let mut pool = lock(&self.readers);
        if pool.len() < MAX_READERS {
            pool.push(conn);
        }
        out
    }

    fn apply_op(
        &self,
        tx: &Transaction<'_>,
        op: WriteOp,
        checked: &mut Checked,
    ) -> Result<WriteAck> {
        let e = |err| self.err(err);
        match op {
            WriteOp::RunPhase { lease, phase } => {
                checked.lease(tx, &lease.run, &lease, &self.path)?;
                checked.unfinished(tx, &lease.run, "a phase change", &self.path)?;
                if phase == RunPhase::Finished {
                    return Err(StoreError::Invalid {
                        detail: "use FinishRun to finish a run (it stores the report)".into(),
                    });
                }
                tx.prepare_cached("UPDATE runs SET phase = ?2 WHERE id = ?1")
                    .and_then(|mut s| s.execute(params![lease.run, phase.as_str()]))
                    .map_err(e)?;
                Ok(WriteAck::Done)
            }
            WriteOp::FinishRun {
                lease,
                status,
                reason,
                report_json,
                finished_at,
            } => {
                checked.lease(tx, &lease.run, &lease, &self.path)?;
                checked.unfinished(tx, &lease.run, "finishing it again", &self.path)?;
                // The report goes to a table of its own, apart from the hot row (V8).
                tx.prepare_cached("INSERT INTO run_reports (run, report_json) VALUES (?1, ?2)")
                    .and_then(|mut s| s.execute(params![lease.run, report_json]))
                    .map_err(e)?;
                tx.prepare_cached(
                    "UPDATE runs SET phase = 'Finished', status = ?2, reason = ?3,
                     finished_at = ?4 WHERE id = ?1",
                )
                .and_then(|mut s| s.execute(params![lease.run, status, reason, finished_at.0]))
                .map_err(e)?;
                checked.finished(&lease.run);
                Ok(WriteAck::Done)
            }
            WriteOp::Attempt { lease, record } => {
                checked.lease(tx, &record.id.run, &lease, &self.path)?;
                checked.unfinished(tx, &record.id.run, "an attempt update", &self.path)?;
                let id = &record.id;
                // One statement: a stored terminal attempt is left as it is (no row
                // changes), and only then is it read, to say so.
                let written = tx
                    .prepare_cached(
                        "INSERT INTO attempts (run, task, attempt, phase, outcome, reason, exit_code,
                             results_json, message, started_at, ended_at, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                         ON CONFLICT (run, task, attempt) DO UPDATE SET
                             phase = excluded.phase, outcome = excluded.outcome,
                             reason = excluded.reason, exit_code = excluded.exit_code,
                             results_json = excluded.results_json, message = excluded.message,
                             started_at = COALESCE(excluded.started_at, attempts.started_at),
                             ended_at = COALESCE(excluded.ended_at, attempts.ended_at),
                             updated_at = excluded.updated_at
                         WHERE attempts.phase <> 'Terminal'",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            id.run,
                            id.task,
                            id.attempt,
                            record.phase.as_str(),
                            record.outcome.map(Outcome::as_str),
                            record.reason,
                            record.exit_code,
                            record.results_json,
                            record.message,
                            record.started_at.map(|t| t.0),
                            record.ended_at.map(|t| t.0),
                            record.updated_at.0,
                        ])
                    })
                    .map_err(e)?;
                if written == 0 {
                    let outcome: Option<String> = tx
                        .prepare_cached(
                            "SELECT outcome FROM attempts WHERE run = ?1 AND task = ?2 AND attempt = ?3",
                        )
                        .and_then(|mut s| {
                            s.query_row(params![id.run, id.task, id.attempt], |r| r.get(0))
                        })
                        .map_err(e)?;
                    let err = StoreError::TerminalAttempt {
                        id: id.clone(),
                        outcome: outcome.unwrap_or_default(),
                    };
                    tracing::warn!(attempt = %id, "late update of a terminal attempt rejected: {err}");
                    return Err(err);
                }
                Ok(WriteAck::Done)
            }
            WriteOp::Event { lease, event } => {
                checked.lease(tx, &lease.run, &lease, &self.path)?;
                let seq = checked.next_event_seq(tx, &lease.run).map_err(e)?;
                tx.prepare_cached(
                    "INSERT INTO events (run, seq, at, kind, task, attempt, data_json)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        lease.run,
                        seq,
                        event.at.0,
                        event.kind,
                        event.task,
                        event.attempt,
                        event.data_json
                    ])
                })
                .map_err(e)?;
                Ok(WriteAck::Event(to_u64("events", "seq", seq)?))
            }
            WriteOp::Logs { lease, id, lines } => {
                checked.lease(tx, &id.run, &lease, &self.path)?;
                checked.unfinished(tx, &id.run, "appending log lines", &self.path)?;
                self.append_logs(tx, &id, lines)
            }
            WriteOp::Checkpoint {
                lease,
                task,
                key,
                value,
                at,
            } => {
                checked.lease(tx, &lease.run, &lease, &self.path)?;
                checked.unfinished(tx, &lease.run, "a checkpoint", &self.path)?;
                tx.prepare_cached(
                    "INSERT INTO checkpoints (run, task, key, value, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (run, task, key) DO UPDATE SET
                         value = excluded.value, updated_at = excluded.updated_at",
                )
                .and_then(|mut s| s.execute(params![lease.run, task, key, value, at.0]))
                .map_err(e)?;
                Ok(WriteAck::Done)
            }
            WriteOp::OutboxDesire {
                lease,
                key,
                state,
                description,
                at,
            } => {
                checked.lease(tx, &key.run, &lease, &self.path)?;
                let current = outbox_state(tx, &key, "desired", &self.path)?;
                match current {
                    None => {
                        tx.prepare_cached(
                            "INSERT INTO outbox (reporter, run, context, desired, description,
                                 delivered, attempts, next_attempt_at, last_error, updated_at)
                             VALUES (?1, ?2, ?3, ?4, ?5, NULL, 0, ?6, '', ?6)",
                        )
                        .and_then(|mut s| {
                            s.execute(params![
                                key.reporter,
                                key.run,
                                key.context,
                                state.as_str(),
                                description,
                                at.0
                            ])
                        })
                        .map_err(e)?;
                        Ok(WriteAck::Done)
                    }
                    Some(Some(cur)) if !cur.may_become(state) => Ok(WriteAck::Unchanged),
                    Some(_) => {
                        tx.prepare_cached(
                            "UPDATE outbox SET desired = ?4, description = ?5, attempts = 0,
                                 next_attempt_at = ?6, updated_at = ?6
                             WHERE reporter = ?1 AND run = ?2 AND context = ?3",
                        )
                        .and_then(|mut s| {
                            s.execute(params![
                                key.reporter,
                                key.run,
                                key.context,
                                state.as_str(),
                                description,
                                at.0
                            ])
                        })
                        .map_err(e)?;
                        Ok(WriteAck::Done)
                    }
                }
            }
            WriteOp::OutboxDelivered {
                lease,
                key,
                state,
                at,
            } => {
                checked.lease(tx, &key.run, &lease, &self.path)?;
                match outbox_state(tx, &key, "delivered", &self.path)? {
                    None => Err(outbox_missing(&key)),
                    Some(Some(cur)) if !cur.may_become(state) => Ok(WriteAck::Unchanged),
                    Some(_) => {
                        tx.prepare_cached(
                            "UPDATE outbox SET delivered = ?4, attempts = 0, last_error = '',
                                 next_attempt_at = CASE WHEN desired = ?4 THEN NULL ELSE ?5 END,
                                 updated_at = ?5
                             WHERE reporter = ?1 AND run = ?2 AND context = ?3",
                        )
                        .and_then(|mut s| {
                            s.execute(params![
                                key.reporter,
                                key.run,
                                key.context,
                                state.as_str(),
                                at.0
                            ])
                        })
                        .map_err(e)?;
                        Ok(WriteAck::Done)
                    }
                }
            }
            WriteOp::OutboxFailed {
                lease,
                key,
                error,
                next_attempt_at,
                at,
            } => {
                checked.lease(tx, &key.run, &lease, &self.path)?;
                let n = tx
                    .prepare_cached(
                        "UPDATE outbox SET attempts = attempts + 1, last_error = ?4,
                             next_attempt_at = ?5, updated_at = ?6
                         WHERE reporter = ?1 AND run = ?2 AND context = ?3",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            key.reporter,
                            key.run,
                            key.context,
                            error,
                            next_attempt_at.0,
                            at.0
                        ])
                    })
                    .map_err(e)?;
                if n == 0 {
                    return Err(outbox_missing(&key));
                }
                Ok(WriteAck::Done)
            }
            WriteOp::Snapshot {
                lease,
                task,
                workspace,
                data,
                at,
                keep,
            } => {
                checked.lease(tx, &lease.run, &lease, &self.path)?;
                checked.unfinished(tx, &lease.run, "a snapshot", &self.path)?;
                let size = data.len() as u64;
                if size > self.limits.snapshot_max_bytes {
                    return Err(StoreError::TooLarge {
                        what: format!("snapshot of workspace `{workspace}` after task `{task}`"),
                        size,
                        limit: self.limits.snapshot_max_bytes,
                    });
                }
                tx.prepare_cached(
                    "INSERT INTO snapshots (run, task, workspace, created_at, size, data)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        lease.run,
                        task,
                        workspace,
                        at.0,
                        to_i64(size),
                        data
                    ])
                })
                .map_err(e)?;
                let id = tx.last_insert_rowid();
                let keep = keep.clamp(1, self.limits.snapshots_per_run.max(1));
                tx.prepare_cached(
                    "DELETE FROM snapshots WHERE run = ?1 AND workspace = ?2 AND id NOT IN
                         (SELECT id FROM snapshots WHERE run = ?1 AND workspace = ?2
                          ORDER BY id DESC LIMIT ?3)",
                )
                .and_then(|mut s| s.execute(params![lease.run, workspace, i64::from(keep)]))
                .map_err(e)?;
                Ok(WriteAck::Snapshot(to_u64("snapshots", "id", id)?))
            }
            WriteOp::OpenWait { lease, wait } => {
                checked.lease(tx, &lease.run, &lease, &self.path)?;
                checked.unfinished(tx, &lease.run, "a wait", &self.path)?;
                if wait.id.run != lease.run {
                    return Err(StoreError::Invalid {
                        detail: format!(
                            "wait {} written under the lease of run {}",
                            wait.id, lease.run
                        ),
                    });
                }
                let n = tx
                    .prepare_cached(
                        "INSERT INTO waits (run, task, attempt, kind, request_json, since, deadline)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                         ON CONFLICT (run, task, attempt) DO NOTHING",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            wait.id.run,
                            wait.id.task,
                            wait.id.attempt,
                            wait.kind,
                            wait.request_json,
                            wait.since.0,
                            wait.deadline.map(|d| d.0),
                        ])
                    })
                    .map_err(e)?;
                Ok(if n == 0 {
                    WriteAck::Unchanged
                } else {
                    WriteAck::Done
                })
            }
            WriteOp::CloseWait {
                lease,
                id,
                outcome,
                at,
            } => {
                checked.lease(tx, &lease.run, &lease, &self.path)?;
                let n = tx
                    .prepare_cached(
                        "UPDATE waits SET closed_at = ?4, outcome = ?5
                         WHERE run = ?1 AND task = ?2 AND attempt = ?3 AND closed_at IS NULL",
                    )
                    .and_then(|mut s| {
                        s.execute(params![id.run, id.task, id.attempt, at.0, outcome])
                    })
                    .map_err(e)?;
                if n == 0 {
                    return Err(StoreError::NotFound {
                        what: format!("an open wait of {id}"),
                    });
                }
                Ok(WriteAck::Done)
            }
            WriteOp::SignalHandled { lease, id, at } => {
                checked.lease(tx, &lease.run, &lease, &self.path)?;
                let handled: Option<Option<i64>> = tx
                    .prepare_cached("SELECT handled_at FROM signals WHERE id = ?1 AND run = ?2")
                    .and_then(|mut s| {
                        s.query_row(params![to_i64(id), lease.run], |r| r.get(0))
                            .optional()
                    })
                    .map_err(e)?;
                match handled {
                    None => Err(StoreError::NotFound {
                        what: format!("signal {id} of run {}", lease.run),
                    }),
                    Some(Some(_)) => Ok(WriteAck::Unchanged),
                    Some(None) => {
                        tx.prepare_cached(
                            "UPDATE signals SET handled_at = ?2, handled_by = ?3 WHERE id = ?1",
                        )
                        .and_then(|mut s| s.execute(params![to_i64(id), at.0, lease.owner]))
                        .map_err(e)?;
                        Ok(WriteAck::Done)
                    }
                }
            }
        }
    }

    fn append_logs(
        &self,
        tx: &Transaction<'_>,
        id: &AttemptId,
        lines: Vec<NewLogLine>,
    ) -> Result<WriteAck> {
        let e = |err| self.err(err);
        let usage: Option<(i64, i64)> = tx
            .prepare_cached("SELECT bytes, truncated FROM log_usage WHERE run = ?1 AND task = ?2")
            .and_then(|mut s| {
                s.query_row(params![id.run, id.task], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(e)?;
        let (bytes, truncated) = usage.unwrap_or((0, 0));
        let mut bytes = to_u64("log_usage", "bytes", bytes)?;
        let mut truncated = truncated != 0;
        let cap = self.limits.log_bytes_per_task;
        let (mut kept, mut dropped) = (0usize, 0usize);
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO logs (run, task, attempt, at, stream, text)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(e)?;
        for line in lines {
            let len = line.text.len() as u64;
            if truncated {
                dropped += 1;
            } else if bytes.saturating_add(len) > cap {
                truncated = true;
                dropped += 1;
                let marker = format!(
                    "log truncated: task `{}` reached its limit of {cap} bytes; later lines are dropped",
                    id.task
                );
                insert
                    .execute(params![
                        id.run,
                        id.task,
                        id.attempt,
                        line.at.0,
                        TRUNCATED_STREAM,
                        marker
                    ])
                    .map_err(e)?;
            } else {
                bytes += len;
                kept += 1;
                insert
                    .execute(params![
                        id.run,
                        id.task,
                        id.attempt,
                        line.at.0,
                        line.stream,
                        line.text
                    ])
                    .map_err(e)?;
            }
        }
        tx.prepare_cached(
            "INSERT INTO log_usage (run, task, bytes, truncated) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (run, task) DO UPDATE SET
                 bytes = excluded.bytes, truncated = excluded.truncated",
        )
        .and_then(|mut s| {
            s.execute(params![
                id.run,
                id.task,
                to_i64(bytes),
                i64::from(truncated)
            ])
        })
        .map_err(e)?;
        Ok(WriteAck::Logs { kept, dropped })
    }

    fn lease_row(&self, conn: &Connection, run: &str) -> Result<Option<LeaseRow>> {
        lease_row(conn, run, &self.path)
    }
}

struct LeaseRow {
    owner: Option<String>,
    token: u64,
    heartbeat_at: Option<Timestamp>,
}

fn lease_row(conn: &Connection, run: &str, path: &Path) -> Result<Option<LeaseRow>> {
    let row: Option<(Option<String>, i64, Option<i64>)> = conn
        .prepare_cached("SELECT lease_owner, lease_token, heartbeat_at FROM runs WHERE id = ?1")
        .and_then(|mut s| {
            s.query_row([run], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
        })
        .map_err(|e| db_err(path, e))?;
    row.map(|(owner, token, hb)| {
        Ok(LeaseRow {
            owner,
            token: to_u64("runs", "lease_token", token)?,
            heartbeat_at: hb.map(Timestamp),
        })
    })
    .transpose()
}

/// Checks that `lease` is the current lease of `run`.
fn check_lease(conn: &Connection, run: &str, lease: &Lease, path: &Path) -> Result<()> {
    let Some(row) = lease_row(conn, run, path)? else {
        return Err(StoreError::NotFound {
            what: format!("run {run}"),
        });
    };
    if lease.run != run
        || row.owner.as_deref() != Some(lease.owner.as_str())
        || row.token != lease.token
    {
        let err = StoreError::StaleLease {
            run: run.to_string(),
            owner: lease.owner.clone(),
            token: lease.token,
            current_owner: row.owner.unwrap_or_default(),
            current_token: row.token,
        };
        tracing::warn!(run, "write from a stale lease rejected: {err}");
        return Err(err);
    }
    Ok(())
}

fn ensure_unfinished(conn: &Connection, run: &str, what: &str, path: &Path) -> Result<()> {
    let finished: Option<i64> = conn
        .prepare_cached("SELECT finished_at FROM runs WHERE id = ?1")
        .and_then(|mut s| s.query_row([run], |r| r.get(0)))
        .map_err(|e| db_err(path, e))?;
    if finished.is_some() {
        let err = StoreError::RunFinished {
            run: run.to_string(),
            what: what.to_string(),
        };
        tracing::warn!(run, "late write to a finished run rejected: {err}");
        return Err(err);
    }
    Ok(())
}

/// `None`: no row. `Some(None)`: row, column NULL.
fn outbox_state(
    conn: &Connection,
    key: &OutboxKey,
    column: &str,
    path: &Path,
) -> Result<Option<Option<ReportStatus>>> {
    let sql =
        format!("SELECT {column} FROM outbox WHERE reporter = ?1 AND run = ?2 AND context = ?3");
    let raw: Option<Option<String>> = conn
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_row(params![key.reporter, key.run, key.context], |r| r.get(0))
                .optional()
        })
        .map_err(|e| db_err(path, e))?;
    raw.map(|v| {
        v.map(|s| parse_or_bad("outbox", "state", &s, ReportStatus::parse))
            .transpose()
    })
    .transpose()
}

fn outbox_missing(key: &OutboxKey) -> StoreError {
    StoreError::NotFound {
        what: format!("outbox row {}/{}/{}", key.reporter, key.run, key.context),
    }
}

fn configure(conn: &Connection, path: &Path, writer: bool) -> Result<()> {
    let e = |err| open_err(path, err);
    conn.busy_timeout(BUSY_TIMEOUT).map_err(e)?;
    conn.set_prepared_statement_cache_capacity(64);
    if writer && path != Path::new(":memory:") {
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(e)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Open {
                path: path.to_path_buf(),
                detail: format!("could not switch to WAL mode (journal_mode is {mode})"),
            });
        }
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(e)?;
    conn.pragma_update(None, "foreign_keys", "ON").map_err(e)?;
    Ok(())
}

fn quick_check(conn: &Connection, path: &Path) -> Result<()> {
    let mut stmt = conn
        .prepare("PRAGMA quick_check")
        .map_err(|e| open_err(path, e))?;
    let lines: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| open_err(path, e))?;
    if lines.len() == 1 && lines[0] == "ok" {
        return Ok(());
    }
    let mut detail = lines.iter().take(5).cloned().collect::<Vec<_>>().join("; ");
    if lines.len() > 5 {
        detail.push_str(&format!("; and {} more problems", lines.len() - 5));
    }
    Err(StoreError::Corrupt {
        path: path.to_path_buf(),
        detail: format!("integrity check failed: {detail}"),
    })
}

fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

fn open_err(path: &Path, e: rusqlite::Error) -> StoreError {
    if is_corruption(&e) {
        StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }
    } else {
        StoreError::Open {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }
    }
}

fn migration_err(path: &Path, e: String) -> StoreError {
    // The header and integrity checks ran before: what is left is a schema problem.
    StoreError::Open {
        path: path.to_path_buf(),
        detail: format!("schema migration failed: {e}"),
    }
}

fn db_err(path: &Path, e: rusqlite::Error) -> StoreError {
    use rusqlite::Error as E;
    if is_corruption(&e) {
        return StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: e.to_string(),
        };
    }
    match e {
        E::FromSqlConversionFailure(..)
        | E::InvalidColumnType(..)
        | E::IntegralValueOutOfRange(..) => StoreError::BadRow {
            table: "row",
            detail: e.to_string(),
        },
        other => StoreError::Backend(other.to_string()),
    }
}

fn bad(table: &'static str, detail: String) -> StoreError {
    StoreError::BadRow { table, detail }
}

fn parse_or_bad<T>(
    table: &'static str,
    column: &str,
    value: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T> {
    parse(value).ok_or_else(|| bad(table, format!("`{column}` has unknown value `{value}`")))
}

fn to_u64(table: &'static str, column: &str, v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| bad(table, format!("`{column}` is negative ({v})")))
}

fn to_u32(table: &'static str, column: &str, v: i64) -> Result<u32> {
    u32::try_from(v).map_err(|_| bad(table, format!("`{column}` is out of range ({v})")))
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn limit_i64(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

// Raw rows: primitive columns only, decoded into records (with typed errors) afterwards.

type RawRun = (
    [String; 7],
    i64,
    String,
    Option<String>,
    String,
    Option<i64>,
    Option<String>,
    Option<String>,
    i64,
    Option<i64>,
);

/// A run's record: its hot row and its large values (`run_bodies` the source and spec
/// since V6, `run_reports` the report since V8), read with [`RUN_TABLES`].
const RUN_COLUMNS: &str = "r.id, r.name, r.pipeline_name, b.pipeline_source, r.params_json,
    b.options_json, r.recovery, r.created_at, r.phase, r.status, r.reason, r.finished_at,
    p.report_json, r.lease_owner, r.lease_token, r.heartbeat_at";

/// Where [`RUN_COLUMNS`] come from.
const RUN_TABLES: &str =
    "runs r JOIN run_bodies b ON b.run = r.id LEFT JOIN run_reports p ON p.run = r.id";

fn raw_run(r: &Row<'_>) -> rusqlite::Result<RawRun> {
    Ok((
        [
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
        ],
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
        r.get(13)?,
        r.get(14)?,
        r.get(15)?,
    ))
}

fn run_record(raw: RawRun) -> Result<RunRecord> {
    let (
        [
            id,
            name,
            pipeline_name,
            pipeline_source,
            params_json,
            options_json,
            recovery,
        ],
        created_at,
        phase,
        status,
        reason,
        finished_at,
        report_json,
        lease_owner,
        lease_token,
        heartbeat_at,
    ) = raw;
    Ok(RunRecord {
        submitted: NewRun {
            id,
            name,
            pipeline_name,
            pipeline_source,
            params_json,
            options_json,
            created_at: Timestamp(created_at),
            recovery: parse_or_bad("runs", "recovery", &recovery, Recovery::parse)?,
        },
        phase: parse_or_bad("runs", "phase", &phase, RunPhase::parse)?,
        status,
        reason,
        finished_at: finished_at.map(Timestamp),
        report_json,
        lease_owner,
        lease_token: to_u64("runs", "lease_token", lease_token)?,
        heartbeat_at: heartbeat_at.map(Timestamp),
    })
}

type RawAttempt = (
    [String; 6],
    i64,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    i64,
);

const ATTEMPT_COLUMNS: &str = "run, task, phase, reason, results_json, message, attempt, outcome,
    exit_code, started_at, ended_at, updated_at";

fn raw_attempt(r: &Row<'_>) -> rusqlite::Result<RawAttempt> {
    Ok((
        [
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        ],
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
    ))
}

fn attempt_record(raw: RawAttempt) -> Result<AttemptRecord> {
    let ([run, task, phase, reason, results_json, message], attempt, outcome, exit, st, en, up) =
        raw;
    let exit_code = exit
        .map(|c| i32::try_from(c).map_err(|_| bad("attempts", format!("exit_code {c}"))))
        .transpose()?;
    Ok(AttemptRecord {
        id: AttemptId {
            run,
            task,
            attempt: to_u32("attempts", "attempt", attempt)?,
        },
        phase: parse_or_bad("attempts", "phase", &phase, TaskPhase::parse)?,
        outcome: outcome
            .map(|o| parse_or_bad("attempts", "outcome", &o, Outcome::parse))
            .transpose()?,
        reason,
        exit_code,
        results_json,
        message,
        started_at: st.map(Timestamp),
        ended_at: en.map(Timestamp),
        updated_at: Timestamp(up),
    })
}

type RawOutbox = ([String; 6], Option<String>, i64, Option<i64>, i64);

const OUTBOX_COLUMNS: &str = "reporter, run, context, desired, description, last_error, delivered,
    attempts, next_attempt_at, updated_at";

fn raw_outbox(r: &Row<'_>) -> rusqlite::Result<RawOutbox> {
    Ok((
        [
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        ],
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
    ))
}

fn outbox_row(raw: RawOutbox) -> Result<OutboxRow> {
    let ([reporter, run, context, desired, description, last_error], delivered, attempts, next, up) =
        raw;
    Ok(OutboxRow {
        key: OutboxKey {
            reporter,
            run,
            context,
        },
        desired: parse_or_bad("outbox", "desired", &desired, ReportStatus::parse)?,
        description,
        delivered: delivered
            .map(|d| parse_or_bad("outbox", "delivered", &d, ReportStatus::parse))
            .transpose()?,
        attempts: to_u32("outbox", "attempts", attempts)?,
        next_attempt_at: next.map(Timestamp),
        last_error,
        updated_at: Timestamp(up),
    })
}

fn collect<R, T>(
    path: &Path,
    rows: rusqlite::Result<Vec<R>>,
    decode: impl Fn(R) -> Result<T>,
) -> Result<Vec<T>> {
    rows.map_err(|e| db_err(path, e))?
        .into_iter()
        .map(decode)
        .collect()
}

impl RunStore for SqliteStore {
    fn settle_before_exit(&self) -> Result<()> {
        let Some(checkpointer) = lock(&self.checkpointer).take() else {
            return Ok(());
        };
        drop(checkpointer);
        let writer = lock(&self.writer);
        Checkpointer::last(&writer, &self.path);
        // Should writes come after all, SQLite checkpoints them itself again.
        writer
            .pragma_update(None, "wal_autocheckpoint", 1000)
            .map_err(|e| open_err(&self.path, e))
    }

    fn create_run(&self, run: &NewRun, owner: &str, now: Timestamp) -> Result<Lease> {
        let mut conn = lock(&self.writer);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        if lease_row(&tx, &run.id, &self.path)?.is_some() {
            return Err(StoreError::AlreadyExists {
                what: format!("run {}", run.id),
            });
        }
        tx.prepare_cached(
            "INSERT INTO runs (id, name, pipeline_name, pipeline_source, params_json,
                 options_json, recovery, created_at, phase, lease_owner, lease_token,
                 heartbeat_at)
             VALUES (?1, ?2, ?3, '', ?4, '', ?5, ?6, 'Running', ?7, 1, ?8)",
        )
        .and_then(|mut s| {
            s.execute(params![
                run.id,
                run.name,
                run.pipeline_name,
                run.params_json,
                run.recovery.as_str(),
                run.created_at.0,
                owner,
                now.0
            ])
        })
        .map_err(|e| self.err(e))?;
        // The large values apart from the hot row every lease check reads (V6).
        tx.prepare_cached(
            "INSERT INTO run_bodies (run, pipeline_source, options_json) VALUES (?1, ?2, ?3)",
        )
        .and_then(|mut s| s.execute(params![run.id, run.pipeline_source, run.options_json]))
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(Lease {
            run: run.id.clone(),
            owner: owner.to_string(),
            token: 1,
        })
    }

    fn claim(
        &self,
        run: &str,
        owner: &str,
        now: Timestamp,
        stale_after: Duration,
    ) -> Result<Lease> {
        let mut conn = lock(&self.writer);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let Some(row) = self.lease_row(&tx, run)? else {
            return Err(StoreError::NotFound {
                what: format!("run {run}"),
            });
        };
        if let Some(holder) = &row.owner
            && holder != owner
        {
            let fresh = row
                .heartbeat_at
                .is_some_and(|hb| hb >= now.minus(stale_after));
            if fresh {
                return Err(StoreError::LeaseHeld {
                    run: run.to_string(),
                    owner: holder.clone(),
                    age_ms: row.heartbeat_at.map_or(0, |hb| now.0 - hb.0),
                });
            }
        }
        let token = row.token + 1;
        let n = tx
            .prepare_cached(
                "UPDATE runs SET lease_owner = ?2, lease_token = ?3, heartbeat_at = ?4
                 WHERE id = ?1 AND lease_token = ?5",
            )
            .and_then(|mut s| {
                s.execute(params![run, owner, to_i64(token), now.0, to_i64(row.token)])
            })
            .map_err(|e| self.err(e))?;
        if n != 1 {
            return Err(StoreError::Backend(format!(
                "run {run} changed hands while being claimed"
            )));
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(Lease {
            run: run.to_string(),
            owner: owner.to_string(),
            token,
        })
    }

    fn heartbeat(&self, lease: &Lease, now: Timestamp) -> Result<()> {
        let conn = lock(&self.writer);
        let n = conn
            .prepare_cached(
                "UPDATE runs SET heartbeat_at = ?4
                 WHERE id = ?1 AND lease_owner = ?2 AND lease_token = ?3",
            )
            .and_then(|mut s| {
                s.execute(params![lease.run, lease.owner, to_i64(lease.token), now.0])
            })
            .map_err(|e| self.err(e))?;
        if n == 1 {
            return Ok(());
        }
        // Not current: say why.
        check_lease(&conn, &lease.run, lease, &self.path)?;
        Err(StoreError::Backend(format!(
            "heartbeat of run {} updated nothing",
            lease.run
        )))
    }

    fn stale_runs(&self, now: Timestamp, older_than: Duration) -> Result<Vec<StaleRun>> {
        let cutoff = now.minus(older_than);
        self.read(|conn| {
            let rows = conn
                .prepare_cached(
                    "SELECT id, lease_owner, lease_token, heartbeat_at, recovery FROM runs
                     WHERE finished_at IS NULL AND (heartbeat_at IS NULL OR heartbeat_at < ?1)
                     ORDER BY heartbeat_at, id",
                )
                .and_then(|mut s| {
                    s.query_map([cutoff.0], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, Option<String>>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, Option<i64>>(3)?,
                            r.get::<_, String>(4)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()
                });
            collect(&self.path, rows, |(id, owner, token, hb, recovery)| {
                Ok(StaleRun {
                    id,
                    owner,
                    token: to_u64("runs", "lease_token", token)?,
                    heartbeat_at: hb.map(Timestamp),
                    recovery: parse_or_bad("runs", "recovery", &recovery, Recovery::parse)?,
                })
            })
        })
    }

    fn send_signal(&self, signal: &NewSignal) -> Result<u64> {
        let conn = lock(&self.writer);
        let finished: Option<Option<i64>> = conn
            .prepare_cached("SELECT finished_at FROM runs WHERE id = ?1")
            .and_then(|mut s| s.query_row([&signal.run], |r| r.get(0)).optional())
            .map_err(|e| self.err(e))?;
        match finished {
            None => {
                return Err(StoreError::NotFound {
                    what: format!("run {}", signal.run),
                });
            }
            Some(Some(_)) => {
                return Err(StoreError::RunFinished {
                    run: signal.run.clone(),
                    what: format!("a `{}` signal", signal.kind),
                });
            }
            Some(None) => {}
        }
        conn.prepare_cached(
            "INSERT INTO signals (run, kind, payload_json, sent_at) VALUES (?1, ?2, ?3, ?4)",
        )
        .and_then(|mut s| {
            s.execute(params![
                signal.run,
                signal.kind,
                signal.payload_json,
                signal.sent_at.0
            ])
        })
        .map_err(|e| self.err(e))?;
        to_u64("signals", "id", conn.last_insert_rowid())
    }

    fn pending_signals(&self, owner: &str, limit: usize) -> Result<Vec<SignalRecord>> {
        self.read(|conn| {
            let rows = conn
                .prepare_cached(
                    "SELECT s.id, s.run, s.kind, s.payload_json, s.sent_at
                     FROM signals s JOIN runs r ON r.id = s.run
                     WHERE s.handled_at IS NULL AND r.lease_owner = ?1 AND r.finished_at IS NULL
                     ORDER BY s.id LIMIT ?2",
                )
                .and_then(|mut s| {
                    s.query_map(params![owner, limit_i64(limit)], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            [r.get::<_, String>(1)?, r.get(2)?, r.get(3)?],
                            r.get::<_, i64>(4)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()
                });
            collect(&self.path, rows, |(id, [run, kind, payload_json], at)| {
                Ok(SignalRecord {
                    id: to_u64("signals", "id", id)?,
                    signal: NewSignal {
                        run,
                        kind,
                        payload_json,
                        sent_at: Timestamp(at),
                    },
                })
            })
        })
    }

    fn apply(&self, ops: Vec<WriteOp>) -> Result<Vec<Result<WriteAck>>> {
        let mut conn = lock(&self.writer);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let mut results = Vec::with_capacity(ops.len());
        let mut checked = Checked::default();
        for op in ops {
            match self.apply_op(&tx, op, &mut checked) {
                Ok(ack) => results.push(Ok(ack)),
                Err(err) if err.is_rejection() => results.push(Err(err)),
                // A database failure: the transaction rolls back on drop.
                Err(err) => return Err(err),
            }
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(results)
    }

    fn run(&self, id: &str) -> Result<Option<RunRecord>> {
        self.read(|conn| {
            let raw = conn
                .prepare_cached(&format!(
                    "SELECT {RUN_COLUMNS} FROM {RUN_TABLES}
                     WHERE r.id = ?1"
                ))
                .and_then(|mut s| s.query_row([id], raw_run).optional())
                .map_err(|e| self.err(e))?;
            raw.map(run_record).transpose()
        })
    }

    fn list_runs_of(&self, tenant: Option<&str>, limit: usize) -> Result<Vec<RunListItem>> {
        let prefix = tenant.map(crate::tenants::stored_prefix);
        self.read(|conn| {
            let rows = conn
                .prepare_cached(
                    "SELECT id, name, pipeline_name, phase, status, created_at, finished_at
                     FROM runs
                     WHERE ?2 IS NULL OR (?2 = '' AND instr(name, '_') = 0)
                        OR (?2 <> '' AND substr(name, 1, length(?2)) = ?2)
                     ORDER BY created_at DESC, id DESC LIMIT ?1",
                )
                .and_then(|mut s| {
                    s.query_map(params![limit_i64(limit), prefix], |r| {
                        Ok((
                            [
                                r.get::<_, String>(0)?,
                                r.get::<_, String>(1)?,
                                r.get::<_, String>(2)?,
                                r.get::<_, String>(3)?,
                            ],
                            r.get::<_, Option<String>>(4)?,
                            r.get::<_, i64>(5)?,
                            r.get::<_, Option<i64>>(6)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()
                });
            collect(
                &self.path,
                rows,
                |([id, name, pipeline_name, phase], status, created, finished)| {
                    Ok(RunListItem {
                        id,
                        name,
                        pipeline_name,
                        phase: parse_or_bad("runs", "phase", &phase, RunPhase::parse)?,
                        status,
                        created_at: Timestamp(created),
                        finished_at: finished.map(Timestamp),
                    })
                },
            )
        })
    }

    fn attempts(&self, run: &str) -> Result<Vec<AttemptRecord>> {
        self.read(|conn| {
            let rows = conn
                .prepare_cached(&format!(
                    "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE run = ?1 ORDER BY task, attempt"
                ))
                .and_then(|mut s| {
                    s.query_map([run], raw_attempt)?
                        .collect::<rusqlite::Result<Vec<_>>>()
                });
            collect(&self.path, rows, attempt_record)
        })
    }

    fn attempt(&self, id: &AttemptId) -> Result<Option<AttemptRecord>> {
        self.read(|conn| {
            let raw = conn
                .prepare_cached(&format!(
                    "SELECT {ATTEMPT_COLUMNS} FROM attempts
                     WHERE run = ?1 AND task = ?2 AND attempt = ?3"
                ))
                .and_then(|mut s| {
                    s.query_row(params![id.run, id.task, id.attempt], raw_attempt)
                        .optional()
                })
                .map_err(|e| self.err(e))?;
            raw.map(attempt_record).transpose()
        })
    }

    fn events(&self, run: &str, after_seq: u64, limit: usize) -> Result<Vec<EventRecord>> {
        self.read(|conn| {
            let rows = conn
                .prepare_cached(
                    "SELECT seq, at, kind, task, attempt, data_json FROM events
                     WHERE run = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                )
                .and_then(|mut s| {
                    s.query_map(params![run, to_i64(after_seq), limit_i64(limit)], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, Option<String>>(3)?,
                            r.get::<_, Option<i64>>(4)?,
                            r.get::<_, String>(5)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()
                });
            collect(
                &self.path,
                rows,
                |(seq, at, kind, task, attempt, data_json)| {
                    Ok(EventRecord {
                        run: run.to_string(),
                        seq: to_u64("events", "seq", seq)?,
                        event: NewEvent {
                            at: Timestamp(at),
                            kind,
                            task,
                            attempt: attempt
                                .map(|a| to_u32("events", "attempt", a))
                                .transpose()?,
                            data_json,
                        },
                    })
                },
            )
        })
    }

    fn logs(
        &self,
        run: &str,
        task: Option<&str>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>> {
        self.read(|conn| {
            let sql = if task.is_some() {
                "SELECT id, task, attempt, at, stream, text FROM logs
                 WHERE run = ?1 AND task = ?2 AND id > ?3 ORDER BY id LIMIT ?4"
            } else {
                "SELECT id, task, attempt, at, stream, text FROM logs
                 WHERE run = ?1 AND ?2 IS NULL AND id > ?3 ORDER BY id LIMIT ?4"
            };
            let rows = conn.prepare_cached(sql).and_then(|mut s| {
                s.query_map(params![run, task, to_i64(after), limit_i64(limit)], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            });
            collect(
                &self.path,
                rows,
                |(cursor, task, attempt, at, stream, text)| {
                    Ok(LogEntry {
                        cursor: to_u64("logs", "id", cursor)?,
                        id: AttemptId {
                            run: run.to_string(),
                            task,
                            attempt: to_u32("logs", "attempt", attempt)?,
                        },
                        line: NewLogLine {
                            at: Timestamp(at),
                            stream,
                            text,
                        },
                    })
                },
            )
        })
    }

    fn checkpoint(&self, run: &str, task: &str, key: &str) -> Result<Option<Vec<u8>>> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT value FROM checkpoints WHERE run = ?1 AND task = ?2 AND key = ?3",
            )
            .and_then(|mut s| {
                s.query_row(params![run, task, key], |r| r.get(0))
                    .optional()
            })
            .map_err(|e| self.err(e))
        })
    }

    fn outbox(&self, run: &str) -> Result<Vec<OutboxRow>> {
        self.read(|conn| {
            let rows = conn
                .prepare_cached(&format!(
                    "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE run = ?1 ORDER BY reporter, context"
                ))
                .and_then(|mut s| {
                    s.query_map([run], raw_outbox)?
                        .collect::<rusqlite::Result<Vec<_>>>()
                });
            collect(&self.path, rows, outbox_row)
        })
    }

    fn due_outbox(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxRow>> {
        self.read(|conn| {
            let rows = conn
                .prepare_cached(&format!(
                    "SELECT {OUTBOX_COLUMNS} FROM outbox
                     WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= ?1
                       AND (delivered IS NULL OR (delivered <> desired
                            AND delivered NOT IN ('Succeeded', 'SucceededWithWarnings', 'Completed', 'Failed',
                                                'TimedOut', 'Errored', 'Rejected', 'Cancelled', 'Skipped')))
                     ORDER BY next_attempt_at, reporter, run, context LIMIT ?2"
                ))
                .and_then(|mut s| {
                    s.query_map(params![now.0, limit_i64(limit)], raw_outbox)?
                        .collect::<rusqlite::Result<Vec<_>>>()
                });
            collect(&self.path, rows, outbox_row)
        })
    }

    fn snapshots(&self, run: &str) -> Result<Vec<Snapshot>> {
        self.read(|conn| {
            let rows = conn
                .prepare_cached(
                    "SELECT id, task, workspace, created_at, size FROM snapshots
                     WHERE run = ?1 ORDER BY id",
                )
                .and_then(|mut s| {
                    s.query_map([run], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, i64>(4)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()
                });
            collect(&self.path, rows, |(id, task, workspace, at, size)| {
                Ok(Snapshot {
                    id: to_u64("snapshots", "id", id)?,
                    run: run.to_string(),
                    task,
                    workspace,
                    created_at: Timestamp(at),
                    data: Vec::new(),
                    size: to_u64("snapshots", "size", size)?,
                })
            })
        })
    }

    fn latest_snapshot(&self, run: &str, workspace: &str) -> Result<Option<Snapshot>> {
        self.read(|conn| {
            let raw = conn
                .prepare_cached(
                    "SELECT id, task, created_at, size, data FROM snapshots
                     WHERE run = ?1 AND workspace = ?2 ORDER BY id DESC LIMIT 1",
                )
                .and_then(|mut s| {
                    s.query_row(params![run, workspace], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, Vec<u8>>(4)?,
                        ))
                    })
                    .optional()
                })
                .map_err(|e| self.err(e))?;
            raw.map(|(id, task, at, size, data)| {
                let size = to_u64("snapshots", "size", size)?;
                if size != data.len() as u64 {
                    return Err(bad(
                        "snapshots",
                        format!("snapshot {id} should be {size} bytes but is {}", data.len()),
                    ));
                }
                Ok(Snapshot {
                    id: to_u64("snapshots", "id", id)?,
                    run: run.to_string(),
                    task,
                    workspace: workspace.to_string(),
                    created_at: Timestamp(at),
                    data,
                    size,
                })
            })
            .transpose()
        })
    }

    fn waits(&self, run: &str) -> Result<Vec<WaitRecord>> {
        self.read(|conn| {
            let rows = conn
                .prepare_cached(&format!(
                    "SELECT {WAIT_COLUMNS} FROM waits WHERE run = ?1 ORDER BY task, attempt"
                ))
                .and_then(|mut s| {
                    s.query_map([run], raw_wait)?
                        .collect::<rusqlite::Result<Vec<_>>>()
                });
            collect(&self.path, rows, wait_record)
        })
    }

    fn wait(&self, id: &AttemptId) -> Result<Option<WaitRecord>> {
        self.read(|conn| {
            let raw = conn
                .prepare_cached(&format!(
                    "SELECT {WAIT_COLUMNS} FROM waits WHERE run = ?1 AND task = ?2 AND attempt = ?3"
                ))
                .and_then(|mut s| {
                    s.query_row(params![id.run, id.task, id.attempt], raw_wait)
                        .optional()
                })
                .map_err(|e| self.err(e))?;
            raw.map(wait_record).transpose()
        })
    }

    fn cast_vote(&self, vote: &VoteRecord) -> Result<()> {
        let mut conn = lock(&self.writer);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let open: bool = tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM waits
                 WHERE run = ?1 AND task = ?2 AND attempt = ?3 AND closed_at IS NULL)",
            )
            .and_then(|mut s| {
                s.query_row(params![vote.id.run, vote.id.task, vote.id.attempt], |r| {
                    r.get(0)
                })
            })
            .map_err(|e| self.err(e))?;
        if !open {
            return Err(StoreError::NotFound {
                what: format!("an open wait of {}", vote.id),
            });
        }
        let inserted = tx
            .prepare_cached(
                "INSERT INTO votes (run, task, attempt, identity, approve, message, defer_until, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (run, task, attempt, identity) DO NOTHING",
            )
            .and_then(|mut s| {
                s.execute(params![
                    vote.id.run,
                    vote.id.task,
                    vote.id.attempt,
                    vote.identity,
                    vote.approve,
                    vote.message,
                    vote.defer_until.map(|t| t.0),
                    vote.at.0,
                ])
            })
            .map_err(|e| self.err(e))?;
        if inserted == 0 {
            return Err(StoreError::AlreadyExists {
                what: format!("a decision by `{}` on {}", vote.identity, vote.id),
            });
        }
        tx.commit().map_err(|e| self.err(e))
    }

    fn votes(&self, run: &str) -> Result<Vec<VoteRecord>> {
        self.read(|conn| {
            let rows = conn
                .prepare_cached(
                    "SELECT task, attempt, identity, approve, message, defer_until, at FROM votes
                     WHERE run = ?1 ORDER BY at, task, attempt, identity",
                )
                .and_then(|mut s| {
                    s.query_map([run], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, bool>(3)?,
                            r.get::<_, String>(4)?,
                            r.get::<_, Option<i64>>(5)?,
                            r.get::<_, i64>(6)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()
                });
            collect(
                &self.path,
                rows,
                |(task, attempt, identity, approve, message, defer_until, at)| {
                    Ok(VoteRecord {
                        id: AttemptId::new(run, &task, to_u32("votes", "attempt", attempt)?),
                        identity,
                        approve,
                        message,
                        defer_until: defer_until.map(Timestamp),
                        at: Timestamp(at),
                    })
                },
            )
        })
    }

    fn in_group(
        &self,
        group: &str,
        now: Timestamp,
        stale_after: Duration,
        decide: &mut dyn FnMut(&[SlotRow]) -> Vec<SlotChange>,
    ) -> Result<Vec<SlotRow>> {
        self.group_decision(group, now, stale_after, decide)
    }

    fn groups_of(&self, run: &str, now: Timestamp, stale_after: Duration) -> Result<Vec<SlotRow>> {
        self.groups_of_run(run, now, stale_after)
    }

    fn leave_groups(&self, run: &str) -> Result<()> {
        self.leave_all_groups(run)
    }

    fn add_schedule(&self, schedule: &ScheduleRecord) -> Result<()> {
        self.insert_schedule(schedule)
    }

    fn schedules(&self) -> Result<Vec<ScheduleRecord>> {
        self.all_schedules()
    }

    fn remove_schedule(&self, name: &str) -> Result<bool> {
        self.delete_schedule(name)
    }

    fn claim_tick(&self, name: &str, tick: Timestamp, next: Option<Timestamp>) -> Result<bool> {
        self.claim_schedule_tick(name, tick, next)
    }

    fn tick_fired(&self, name: &str, tick: Timestamp) -> Result<()> {
        self.schedule_tick_fired(name, tick)
    }

    fn runs_named(&self, name: &str) -> Result<Vec<String>> {
        self.ids_named(name)
    }
}

const WAIT_COLUMNS: &str =
    "run, task, attempt, kind, request_json, since, deadline, closed_at, outcome";

type RawWait = (
    String,
    String,
    i64,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
);

fn raw_wait(r: &Row<'_>) -> rusqlite::Result<RawWait> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
    ))
}

fn wait_record(raw: RawWait) -> Result<WaitRecord> {
    let (run, task, attempt, kind, request_json, since, deadline, closed_at, outcome) = raw;
    Ok(WaitRecord {
        id: AttemptId::new(&run, &task, to_u32("waits", "attempt", attempt)?),
        kind,
        request_json,
        since: Timestamp(since),
        deadline: deadline.map(Timestamp),
        closed_at: closed_at.map(Timestamp),
        outcome,
    })
}
