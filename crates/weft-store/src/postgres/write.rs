//! Writes on PostgreSQL: a batch of [`WriteOp`]s in one transaction, each checked against
//! its lease with the batch's run rows locked, so no claim lands between check and write.

use std::collections::{BTreeSet, HashMap};

use deadpool_postgres::Transaction;

use super::conv::{to_i64, to_u64};
use super::{Failure, Shared, pg_err, with_retry};
use crate::error::StoreError;
use crate::types::{
    AttemptId, Lease, NewLogLine, OutboxKey, Outcome, ReportStatus, Result, TRUNCATED_STREAM,
    WriteAck, WriteOp,
};

/// A run row as the batch locked it.
struct Locked {
    owner: Option<String>,
    token: u64,
    finished: bool,
}

/// Bytes of log kept per (run, task) and whether the cap was hit, as the batch changes
/// them; written back once at the end.
type Usage = HashMap<(String, String), (u64, bool)>;

/// Applies `ops` in one transaction (see [`crate::RunStore::apply`]). A try whose
/// connection broke before `COMMIT` runs again on a new connection.
pub(crate) async fn apply(s: &Shared, ops: Vec<WriteOp>) -> Result<Vec<Result<WriteAck>>> {
    if ops.is_empty() {
        return Ok(Vec::new());
    }
    with_retry(s.retry_for, || apply_once(s, &ops)).await
}

async fn apply_once(
    s: &Shared,
    ops: &[WriteOp],
) -> std::result::Result<Vec<Result<WriteAck>>, Failure> {
    let mut client = s.pool.get().await?;
    let tx = client.transaction().await.map_err(Failure::before_commit)?;
    // Every run the batch touches, locked in id order: batches never deadlock each other,
    // and a claim (which updates the row) waits until this transaction ends.
    let runs: Vec<&str> = ops
        .iter()
        .map(WriteOp::target_run)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let rows = tx
        .query(
            "SELECT id, lease_owner, lease_token, finished_at IS NOT NULL FROM runs
             WHERE id = ANY($1) ORDER BY id FOR UPDATE",
            &[&runs],
        )
        .await
        .map_err(Failure::before_commit)?;
    let mut locked = HashMap::new();
    for row in rows {
        locked.insert(
            row.get::<_, String>(0),
            Locked {
                owner: row.get(1),
                token: to_u64("runs", "lease_token", row.get(2))?,
                finished: row.get(3),
            },
        );
    }
    let mut usage = Usage::new();
    let mut results = Vec::with_capacity(ops.len());
    for op in ops {
        match apply_op(s, &tx, &mut locked, &mut usage, op).await {
            Ok(ack) => results.push(Ok(ack)),
            Err(OpError::Rejected(err)) => results.push(Err(err)),
            Err(OpError::Database(e)) => return Err(Failure::before_commit(e)),
            Err(OpError::Store(err)) => return Err(Failure::Final(err)),
        }
    }
    write_usage(&tx, &usage)
        .await
        .map_err(Failure::before_commit)?;
    // Not retried from here: a commit whose answer was lost may have landed.
    tx.commit().await.map_err(|e| Failure::Final(pg_err(e)))?;
    Ok(results)
}

/// How one op failed.
enum OpError {
    /// Refused (the store is unchanged by it); the batch goes on.
    Rejected(StoreError),
    /// The database failed: the whole batch fails.
    Database(tokio_postgres::Error),
    /// A stored value does not decode: the whole batch fails.
    Store(StoreError),
}

impl From<tokio_postgres::Error> for OpError {
    fn from(e: tokio_postgres::Error) -> Self {
        OpError::Database(e)
    }
}

fn reject<T>(err: StoreError) -> std::result::Result<T, OpError> {
    Err(OpError::Rejected(err))
}

/// Checks that `lease` is the current lease of `run` (and that the run exists).
fn check_lease(
    locked: &HashMap<String, Locked>,
    run: &str,
    lease: &Lease,
) -> std::result::Result<(), OpError> {
    let Some(row) = locked.get(run) else {
        return reject(StoreError::NotFound {
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
            current_owner: row.owner.clone().unwrap_or_default(),
            current_token: row.token,
        };
        tracing::warn!(run, "write from a stale lease rejected: {err}");
        return reject(err);
    }
    Ok(())
}

fn ensure_unfinished(
    locked: &HashMap<String, Locked>,
    run: &str,
    what: &str,
) -> std::result::Result<(), OpError> {
    if locked.get(run).is_some_and(|r| r.finished) {
        let err = StoreError::RunFinished {
            run: run.to_string(),
            what: what.to_string(),
        };
        tracing::warn!(run, "late write to a finished run rejected: {err}");
        return reject(err);
    }
    Ok(())
}

async fn apply_op(
    s: &Shared,
    tx: &Transaction<'_>,
    locked: &mut HashMap<String, Locked>,
    usage: &mut Usage,
    op: &WriteOp,
) -> std::result::Result<WriteAck, OpError> {
    let run = op.target_run();
    check_lease(locked, run, op.lease())?;
    match op {
        WriteOp::RunPhase { lease, phase } => {
            ensure_unfinished(locked, run, "a phase change")?;
            if *phase == crate::types::RunPhase::Finished {
                return reject(StoreError::Invalid {
                    detail: "use FinishRun to finish a run (it stores the report)".into(),
                });
            }
            let stmt = tx
                .prepare_cached("UPDATE runs SET phase = $2 WHERE id = $1")
                .await?;
            tx.execute(&stmt, &[&lease.run, &phase.as_str()]).await?;
            Ok(WriteAck::Done)
        }
        WriteOp::FinishRun {
            lease,
            status,
            reason,
            report_json,
            finished_at,
        } => {
            ensure_unfinished(locked, run, "finishing it again")?;
            let stmt = tx
                .prepare_cached(
                    "UPDATE runs SET phase = 'Finished', status = $2, reason = $3,
                     report_json = $4, finished_at = $5 WHERE id = $1",
                )
                .await?;
            tx.execute(
                &stmt,
                &[&lease.run, status, reason, report_json, &finished_at.0],
            )
            .await?;
            if let Some(row) = locked.get_mut(run) {
                row.finished = true;
            }
            Ok(WriteAck::Done)
        }
        WriteOp::Attempt { record, .. } => {
            ensure_unfinished(locked, run, "an attempt update")?;
            let id = &record.id;
            // The update is skipped for a terminal attempt (no row comes back): never
            // overwritten, which the trigger backs up.
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO attempts (run, task, attempt, phase, outcome, reason, exit_code,
                         results_json, message, started_at, ended_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                     ON CONFLICT (run, task, attempt) DO UPDATE SET
                         phase = excluded.phase, outcome = excluded.outcome,
                         reason = excluded.reason, exit_code = excluded.exit_code,
                         results_json = excluded.results_json, message = excluded.message,
                         started_at = COALESCE(excluded.started_at, attempts.started_at),
                         ended_at = COALESCE(excluded.ended_at, attempts.ended_at),
                         updated_at = excluded.updated_at
                     WHERE attempts.phase <> 'Terminal'
                     RETURNING 1",
                )
                .await?;
            let written = tx
                .query_opt(
                    &stmt,
                    &[
                        &id.run,
                        &id.task,
                        &i64::from(id.attempt),
                        &record.phase.as_str(),
                        &record.outcome.map(Outcome::as_str),
                        &record.reason,
                        &record.exit_code.map(i64::from),
                        &record.results_json,
                        &record.message,
                        &record.started_at.map(|t| t.0),
                        &record.ended_at.map(|t| t.0),
                        &record.updated_at.0,
                    ],
                )
                .await?;
            if written.is_some() {
                return Ok(WriteAck::Done);
            }
            let outcome: Option<String> = tx
                .query_opt(
                    "SELECT outcome FROM attempts WHERE run = $1 AND task = $2 AND attempt = $3",
                    &[&id.run, &id.task, &i64::from(id.attempt)],
                )
                .await?
                .and_then(|r| r.get(0));
            let err = StoreError::TerminalAttempt {
                id: id.clone(),
                outcome: outcome.unwrap_or_default(),
            };
            tracing::warn!(attempt = %id, "late update of a terminal attempt rejected: {err}");
            reject(err)
        }
        WriteOp::Event { lease, event } => {
            // The run row is locked: nobody else appends to its events meanwhile.
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO events (run, seq, at, kind, task, attempt, data_json)
                     SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6
                     FROM events WHERE run = $1
                     RETURNING seq",
                )
                .await?;
            let row = tx
                .query_one(
                    &stmt,
                    &[
                        &lease.run,
                        &event.at.0,
                        &event.kind,
                        &event.task,
                        &event.attempt.map(i64::from),
                        &event.data_json,
                    ],
                )
                .await?;
            let seq = to_u64("events", "seq", row.get(0)).map_err(OpError::Store)?;
            Ok(WriteAck::Event(seq))
        }
        WriteOp::Logs { id, lines, .. } => {
            ensure_unfinished(locked, run, "appending log lines")?;
            append_logs(s, tx, usage, id, lines).await
        }
        WriteOp::Checkpoint {
            lease,
            task,
            key,
            value,
            at,
        } => {
            ensure_unfinished(locked, run, "a checkpoint")?;
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO checkpoints (run, task, key, value, updated_at)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (run, task, key) DO UPDATE SET
                         value = excluded.value, updated_at = excluded.updated_at",
                )
                .await?;
            tx.execute(&stmt, &[&lease.run, task, key, value, &at.0])
                .await?;
            Ok(WriteAck::Done)
        }
        WriteOp::OutboxDesire {
            key,
            state,
            description,
            at,
            ..
        } => match outbox_state(tx, key, "desired").await? {
            None => {
                let stmt = tx
                    .prepare_cached(
                        "INSERT INTO outbox (reporter, run, context, desired, description,
                             delivered, attempts, next_attempt_at, last_error, updated_at)
                         VALUES ($1, $2, $3, $4, $5, NULL, 0, $6, '', $6)",
                    )
                    .await?;
                tx.execute(
                    &stmt,
                    &[
                        &key.reporter,
                        &key.run,
                        &key.context,
                        &state.as_str(),
                        description,
                        &at.0,
                    ],
                )
                .await?;
                Ok(WriteAck::Done)
            }
            Some(Some(current)) if !current.may_become(*state) => Ok(WriteAck::Unchanged),
            Some(_) => {
                let stmt = tx
                    .prepare_cached(
                        "UPDATE outbox SET desired = $4, description = $5, attempts = 0,
                             next_attempt_at = $6, updated_at = $6
                         WHERE reporter = $1 AND run = $2 AND context = $3",
                    )
                    .await?;
                tx.execute(
                    &stmt,
                    &[
                        &key.reporter,
                        &key.run,
                        &key.context,
                        &state.as_str(),
                        description,
                        &at.0,
                    ],
                )
                .await?;
                Ok(WriteAck::Done)
            }
        },
        WriteOp::OutboxDelivered { key, state, at, .. } => {
            match outbox_state(tx, key, "delivered").await? {
                None => reject(outbox_missing(key)),
                Some(Some(current)) if !current.may_become(*state) => Ok(WriteAck::Unchanged),
                Some(_) => {
                    let stmt = tx
                        .prepare_cached(
                            "UPDATE outbox SET delivered = $4, attempts = 0, last_error = '',
                                 next_attempt_at = CASE WHEN desired = $4 THEN NULL ELSE $5::bigint END,
                                 updated_at = $5
                             WHERE reporter = $1 AND run = $2 AND context = $3",
                        )
                        .await?;
                    tx.execute(
                        &stmt,
                        &[
                            &key.reporter,
                            &key.run,
                            &key.context,
                            &state.as_str(),
                            &at.0,
                        ],
                    )
                    .await?;
                    Ok(WriteAck::Done)
                }
            }
        }
        WriteOp::OutboxFailed {
            key,
            error,
            next_attempt_at,
            at,
            ..
        } => {
            let stmt = tx
                .prepare_cached(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = $4,
                         next_attempt_at = $5, updated_at = $6
                     WHERE reporter = $1 AND run = $2 AND context = $3",
                )
                .await?;
            let n = tx
                .execute(
                    &stmt,
                    &[
                        &key.reporter,
                        &key.run,
                        &key.context,
                        error,
                        &next_attempt_at.0,
                        &at.0,
                    ],
                )
                .await?;
            if n == 0 {
                return reject(outbox_missing(key));
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
            ensure_unfinished(locked, run, "a snapshot")?;
            let size = data.len() as u64;
            if size > s.limits.snapshot_max_bytes {
                return reject(StoreError::TooLarge {
                    what: format!("snapshot of workspace `{workspace}` after task `{task}`"),
                    size,
                    limit: s.limits.snapshot_max_bytes,
                });
            }
            let row = tx
                .query_one(
                    "INSERT INTO snapshots (run, task, workspace, created_at, size, data)
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                    &[&lease.run, task, workspace, &at.0, &to_i64(size), data],
                )
                .await?;
            let id: i64 = row.get(0);
            let keep = (*keep).clamp(1, s.limits.snapshots_per_run.max(1));
            tx.execute(
                "DELETE FROM snapshots WHERE run = $1 AND workspace = $2 AND id NOT IN
                     (SELECT id FROM snapshots WHERE run = $1 AND workspace = $2
                      ORDER BY id DESC LIMIT $3)",
                &[&lease.run, workspace, &i64::from(keep)],
            )
            .await?;
            Ok(WriteAck::Snapshot(
                to_u64("snapshots", "id", id).map_err(OpError::Store)?,
            ))
        }
        WriteOp::OpenWait { wait, .. } => {
            ensure_unfinished(locked, run, "a wait")?;
            if wait.id.run != run {
                return reject(StoreError::Invalid {
                    detail: format!("wait {} written under the lease of run {run}", wait.id),
                });
            }
            Ok(if super::waits::open_wait(tx, wait).await? {
                WriteAck::Done
            } else {
                WriteAck::Unchanged
            })
        }
        WriteOp::CloseWait {
            id, outcome, at, ..
        } => {
            if super::waits::close_wait(tx, id, outcome, *at).await? {
                Ok(WriteAck::Done)
            } else {
                reject(StoreError::NotFound {
                    what: format!("an open wait of {id}"),
                })
            }
        }
        WriteOp::SignalHandled { lease, id, at } => {
            let row = tx
                .query_opt(
                    "SELECT handled_at IS NOT NULL FROM signals WHERE id = $1 AND run = $2",
                    &[&to_i64(*id), &lease.run],
                )
                .await?;
            match row.map(|r| r.get::<_, bool>(0)) {
                None => reject(StoreError::NotFound {
                    what: format!("signal {id} of run {}", lease.run),
                }),
                Some(true) => Ok(WriteAck::Unchanged),
                Some(false) => {
                    tx.execute(
                        "UPDATE signals SET handled_at = $2, handled_by = $3 WHERE id = $1",
                        &[&to_i64(*id), &at.0, &lease.owner],
                    )
                    .await?;
                    Ok(WriteAck::Done)
                }
            }
        }
    }
}

/// `None`: no row. `Some(None)`: row, column NULL.
async fn outbox_state(
    tx: &Transaction<'_>,
    key: &OutboxKey,
    column: &str,
) -> std::result::Result<Option<Option<ReportStatus>>, OpError> {
    let sql =
        format!("SELECT {column} FROM outbox WHERE reporter = $1 AND run = $2 AND context = $3");
    let stmt = tx.prepare_cached(&sql).await?;
    let row = tx
        .query_opt(&stmt, &[&key.reporter, &key.run, &key.context])
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let value: Option<String> = row.get(0);
    value
        .map(|v| super::conv::parse("outbox", "state", &v, ReportStatus::parse))
        .transpose()
        .map(Some)
        .map_err(OpError::Store)
}

fn outbox_missing(key: &OutboxKey) -> StoreError {
    StoreError::NotFound {
        what: format!("outbox row {}/{}/{}", key.reporter, key.run, key.context),
    }
}

/// Appends an attempt's lines within its task's cap: one insert for all of them (in
/// order, so cursors follow the lines), usage read once per task per batch.
async fn append_logs(
    s: &Shared,
    tx: &Transaction<'_>,
    usage: &mut Usage,
    id: &AttemptId,
    lines: &[NewLogLine],
) -> std::result::Result<WriteAck, OpError> {
    let usage_key = (id.run.clone(), id.task.clone());
    if !usage.contains_key(&usage_key) {
        let stmt = tx
            .prepare_cached("SELECT bytes, truncated FROM log_usage WHERE run = $1 AND task = $2")
            .await?;
        let row = tx.query_opt(&stmt, &[&id.run, &id.task]).await?;
        let (bytes, truncated) = match row {
            Some(row) => (
                to_u64("log_usage", "bytes", row.get(0)).map_err(OpError::Store)?,
                row.get::<_, i64>(1) != 0,
            ),
            None => (0, false),
        };
        usage.insert(usage_key.clone(), (bytes, truncated));
    }
    let (bytes, truncated) = usage
        .get_mut(&usage_key)
        .ok_or_else(|| OpError::Store(StoreError::Backend("log usage went missing".into())))?;
    let cap = s.limits.log_bytes_per_task;
    let (mut kept, mut dropped) = (0usize, 0usize);
    let (mut ats, mut streams, mut texts) = (Vec::new(), Vec::new(), Vec::new());
    for line in lines {
        let len = line.text.len() as u64;
        if *truncated {
            dropped += 1;
        } else if bytes.saturating_add(len) > cap {
            *truncated = true;
            dropped += 1;
            ats.push(line.at.0);
            streams.push(TRUNCATED_STREAM.to_string());
            texts.push(format!(
                "log truncated: task `{}` reached its limit of {cap} bytes; later lines are dropped",
                id.task
            ));
        } else {
            *bytes += len;
            kept += 1;
            ats.push(line.at.0);
            streams.push(line.stream.clone());
            texts.push(line.text.clone());
        }
    }
    if !texts.is_empty() {
        let stmt = tx
            .prepare_cached(
                "INSERT INTO logs (run, task, attempt, at, stream, text)
                 SELECT $1, $2, $3, l.at, l.stream, l.text
                 FROM UNNEST($4::bigint[], $5::text[], $6::text[]) WITH ORDINALITY
                     AS l(at, stream, text, n)
                 ORDER BY l.n",
            )
            .await?;
        tx.execute(
            &stmt,
            &[
                &id.run,
                &id.task,
                &i64::from(id.attempt),
                &ats,
                &streams,
                &texts,
            ],
        )
        .await?;
    }
    Ok(WriteAck::Logs { kept, dropped })
}

async fn write_usage(
    tx: &Transaction<'_>,
    usage: &Usage,
) -> std::result::Result<(), tokio_postgres::Error> {
    for ((run, task), (bytes, truncated)) in usage {
        let stmt = tx
            .prepare_cached(
                "INSERT INTO log_usage (run, task, bytes, truncated) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (run, task) DO UPDATE SET
                     bytes = excluded.bytes, truncated = excluded.truncated",
            )
            .await?;
        tx.execute(&stmt, &[run, task, &to_i64(*bytes), &i64::from(*truncated)])
            .await?;
    }
    Ok(())
}
