//! Reads on PostgreSQL, decoded into the store's records with typed errors.

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::conv::{bad, limit, parse, to_i64, to_u32, to_u64};
use super::lease::QUICK_RETRY;
use super::{Failure, Shared, with_retry};
use crate::types::{
    AttemptId, AttemptRecord, EventRecord, LogEntry, NewEvent, NewLogLine, NewRun, NewSignal,
    OutboxKey, OutboxRow, Outcome, Recovery, ReportStatus, Result, RunListItem, RunPhase,
    RunRecord, SignalRecord, Snapshot, TaskPhase, Timestamp,
};

/// One query, retried briefly on a broken connection.
async fn query(s: &Shared, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
    with_retry(QUICK_RETRY, || async {
        let client = s.pool.get().await?;
        let stmt = client
            .prepare_cached(sql)
            .await
            .map_err(Failure::before_commit)?;
        client
            .query(&stmt, params)
            .await
            .map_err(Failure::before_commit)
    })
    .await
}

const RUN_COLUMNS: &str = "id, name, pipeline_name, pipeline_source, params_json, options_json,
    recovery, created_at, phase, status, reason, finished_at, report_json, lease_owner,
    lease_token, heartbeat_at";

fn run_record(r: &Row) -> Result<RunRecord> {
    Ok(RunRecord {
        submitted: NewRun {
            id: r.get(0),
            name: r.get(1),
            pipeline_name: r.get(2),
            pipeline_source: r.get(3),
            params_json: r.get(4),
            options_json: r.get(5),
            recovery: parse("runs", "recovery", r.get(6), Recovery::parse)?,
            created_at: Timestamp(r.get(7)),
        },
        phase: parse("runs", "phase", r.get(8), RunPhase::parse)?,
        status: r.get(9),
        reason: r.get(10),
        finished_at: r.get::<_, Option<i64>>(11).map(Timestamp),
        report_json: r.get(12),
        lease_owner: r.get(13),
        lease_token: to_u64("runs", "lease_token", r.get(14))?,
        heartbeat_at: r.get::<_, Option<i64>>(15).map(Timestamp),
    })
}

pub(crate) async fn run(s: &Shared, id: &str) -> Result<Option<RunRecord>> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1");
    query(s, &sql, &[&id])
        .await?
        .first()
        .map(run_record)
        .transpose()
}

pub(crate) async fn list_runs(
    s: &Shared,
    prefix: Option<String>,
    max: usize,
) -> Result<Vec<RunListItem>> {
    let rows = query(
        s,
        "SELECT id, name, pipeline_name, phase, status, created_at, finished_at
         FROM runs
         WHERE $2::TEXT IS NULL OR ($2 = '' AND strpos(name, '_') = 0)
            OR ($2 <> '' AND left(name, length($2)) = $2)
         ORDER BY created_at DESC, id DESC LIMIT $1",
        &[&limit(max), &prefix],
    )
    .await?;
    rows.iter()
        .map(|r| {
            Ok(RunListItem {
                id: r.get(0),
                name: r.get(1),
                pipeline_name: r.get(2),
                phase: parse("runs", "phase", r.get(3), RunPhase::parse)?,
                status: r.get(4),
                created_at: Timestamp(r.get(5)),
                finished_at: r.get::<_, Option<i64>>(6).map(Timestamp),
            })
        })
        .collect()
}

const ATTEMPT_COLUMNS: &str = "run, task, attempt, phase, outcome, reason, exit_code,
    results_json, message, started_at, ended_at, updated_at";

fn attempt_record(r: &Row) -> Result<AttemptRecord> {
    let exit_code = r
        .get::<_, Option<i64>>(6)
        .map(|c| i32::try_from(c).map_err(|_| bad("attempts", format!("exit_code {c}"))))
        .transpose()?;
    Ok(AttemptRecord {
        id: AttemptId {
            run: r.get(0),
            task: r.get(1),
            attempt: to_u32("attempts", "attempt", r.get(2))?,
        },
        phase: parse("attempts", "phase", r.get(3), TaskPhase::parse)?,
        outcome: r
            .get::<_, Option<&str>>(4)
            .map(|o| parse("attempts", "outcome", o, Outcome::parse))
            .transpose()?,
        reason: r.get(5),
        exit_code,
        results_json: r.get(7),
        message: r.get(8),
        started_at: r.get::<_, Option<i64>>(9).map(Timestamp),
        ended_at: r.get::<_, Option<i64>>(10).map(Timestamp),
        updated_at: Timestamp(r.get(11)),
    })
}

pub(crate) async fn attempts(s: &Shared, run: &str) -> Result<Vec<AttemptRecord>> {
    let sql =
        format!("SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE run = $1 ORDER BY task, attempt");
    query(s, &sql, &[&run])
        .await?
        .iter()
        .map(attempt_record)
        .collect()
}

pub(crate) async fn attempt(s: &Shared, id: &AttemptId) -> Result<Option<AttemptRecord>> {
    let sql = format!(
        "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE run = $1 AND task = $2 AND attempt = $3"
    );
    query(s, &sql, &[&id.run, &id.task, &i64::from(id.attempt)])
        .await?
        .first()
        .map(attempt_record)
        .transpose()
}

pub(crate) async fn events(
    s: &Shared,
    run: &str,
    after_seq: u64,
    max: usize,
) -> Result<Vec<EventRecord>> {
    let rows = query(
        s,
        "SELECT seq, at, kind, task, attempt, data_json FROM events
         WHERE run = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        &[&run, &to_i64(after_seq), &limit(max)],
    )
    .await?;
    rows.iter()
        .map(|r| {
            Ok(EventRecord {
                run: run.to_string(),
                seq: to_u64("events", "seq", r.get(0))?,
                event: NewEvent {
                    at: Timestamp(r.get(1)),
                    kind: r.get(2),
                    task: r.get(3),
                    attempt: r
                        .get::<_, Option<i64>>(4)
                        .map(|a| to_u32("events", "attempt", a))
                        .transpose()?,
                    data_json: r.get(5),
                },
            })
        })
        .collect()
}

pub(crate) async fn logs(
    s: &Shared,
    run: &str,
    task: Option<&str>,
    after: u64,
    max: usize,
) -> Result<Vec<LogEntry>> {
    let rows = query(
        s,
        "SELECT id, task, attempt, at, stream, text FROM logs
         WHERE run = $1 AND ($2::text IS NULL OR task = $2) AND id > $3
         ORDER BY id LIMIT $4",
        &[&run, &task, &to_i64(after), &limit(max)],
    )
    .await?;
    rows.iter()
        .map(|r| {
            Ok(LogEntry {
                cursor: to_u64("logs", "id", r.get(0))?,
                id: AttemptId {
                    run: run.to_string(),
                    task: r.get(1),
                    attempt: to_u32("logs", "attempt", r.get(2))?,
                },
                line: NewLogLine {
                    at: Timestamp(r.get(3)),
                    stream: r.get(4),
                    text: r.get(5),
                },
            })
        })
        .collect()
}

pub(crate) async fn checkpoint(
    s: &Shared,
    run: &str,
    task: &str,
    key: &str,
) -> Result<Option<Vec<u8>>> {
    Ok(query(
        s,
        "SELECT value FROM checkpoints WHERE run = $1 AND task = $2 AND key = $3",
        &[&run, &task, &key],
    )
    .await?
    .first()
    .map(|r| r.get(0)))
}

const OUTBOX_COLUMNS: &str = "reporter, run, context, desired, description, delivered,
    attempts, next_attempt_at, last_error, updated_at";

fn outbox_row(r: &Row) -> Result<OutboxRow> {
    Ok(OutboxRow {
        key: OutboxKey {
            reporter: r.get(0),
            run: r.get(1),
            context: r.get(2),
        },
        desired: parse("outbox", "desired", r.get(3), ReportStatus::parse)?,
        description: r.get(4),
        delivered: r
            .get::<_, Option<&str>>(5)
            .map(|d| parse("outbox", "delivered", d, ReportStatus::parse))
            .transpose()?,
        attempts: to_u32("outbox", "attempts", r.get(6))?,
        next_attempt_at: r.get::<_, Option<i64>>(7).map(Timestamp),
        last_error: r.get(8),
        updated_at: Timestamp(r.get(9)),
    })
}

pub(crate) async fn outbox(s: &Shared, run: &str) -> Result<Vec<OutboxRow>> {
    let sql =
        format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE run = $1 ORDER BY reporter, context");
    query(s, &sql, &[&run])
        .await?
        .iter()
        .map(outbox_row)
        .collect()
}

pub(crate) async fn due_outbox(s: &Shared, now: Timestamp, max: usize) -> Result<Vec<OutboxRow>> {
    // The terminal states of `ReportStatus`, as stored.
    let sql = format!(
        "SELECT {OUTBOX_COLUMNS} FROM outbox
         WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= $1
           AND (delivered IS NULL OR (delivered <> desired
                AND delivered NOT IN ('success', 'failure', 'error', 'canceled')))
         ORDER BY next_attempt_at, reporter, run, context LIMIT $2"
    );
    query(s, &sql, &[&now.0, &limit(max)])
        .await?
        .iter()
        .map(outbox_row)
        .collect()
}

pub(crate) async fn snapshots(s: &Shared, run: &str) -> Result<Vec<Snapshot>> {
    let rows = query(
        s,
        "SELECT id, task, workspace, created_at, size FROM snapshots
         WHERE run = $1 ORDER BY id",
        &[&run],
    )
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Snapshot {
                id: to_u64("snapshots", "id", r.get(0))?,
                run: run.to_string(),
                task: r.get(1),
                workspace: r.get(2),
                created_at: Timestamp(r.get(3)),
                data: Vec::new(),
                size: to_u64("snapshots", "size", r.get(4))?,
            })
        })
        .collect()
}

pub(crate) async fn latest_snapshot(
    s: &Shared,
    run: &str,
    workspace: &str,
) -> Result<Option<Snapshot>> {
    let rows = query(
        s,
        "SELECT id, task, created_at, size, data FROM snapshots
         WHERE run = $1 AND workspace = $2 ORDER BY id DESC LIMIT 1",
        &[&run, &workspace],
    )
    .await?;
    let Some(r) = rows.first() else {
        return Ok(None);
    };
    let id: i64 = r.get(0);
    let size = to_u64("snapshots", "size", r.get(3))?;
    let data: Vec<u8> = r.get(4);
    if size != data.len() as u64 {
        return Err(bad(
            "snapshots",
            format!("snapshot {id} should be {size} bytes but is {}", data.len()),
        ));
    }
    Ok(Some(Snapshot {
        id: to_u64("snapshots", "id", id)?,
        run: run.to_string(),
        task: r.get(1),
        workspace: workspace.to_string(),
        created_at: Timestamp(r.get(2)),
        data,
        size,
    }))
}

pub(crate) async fn pending_signals(
    s: &Shared,
    owner: &str,
    max: usize,
) -> Result<Vec<SignalRecord>> {
    let rows = query(
        s,
        "SELECT s.id, s.run, s.kind, s.payload_json, s.sent_at
         FROM signals s JOIN runs r ON r.id = s.run
         WHERE s.handled_at IS NULL AND r.lease_owner = $1 AND r.finished_at IS NULL
         ORDER BY s.id LIMIT $2",
        &[&owner, &limit(max)],
    )
    .await?;
    rows.iter()
        .map(|r| {
            Ok(SignalRecord {
                id: to_u64("signals", "id", r.get(0))?,
                signal: NewSignal {
                    run: r.get(1),
                    kind: r.get(2),
                    payload_json: r.get(3),
                    sent_at: Timestamp(r.get(4)),
                },
            })
        })
        .collect()
}
