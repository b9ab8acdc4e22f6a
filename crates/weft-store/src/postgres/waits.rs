//! Waits (approvals, manual interventions, gates) and the votes cast on them, on
//! PostgreSQL: the same rules as SQLite's (a vote only on an open wait, one per identity,
//! journaled once; the first `since` and deadline of a wait kept across restarts).

use tokio_postgres::Row;

use super::conv::to_u32;
use super::{Shared, pg_err, pool_err};
use crate::error::StoreError;
use crate::types::{AttemptId, Result, Timestamp, VoteRecord, WaitRecord};

const WAIT_COLUMNS: &str =
    "run, task, attempt, kind, request_json, since, deadline, closed_at, outcome";

fn wait_record(r: &Row) -> Result<WaitRecord> {
    let run: String = r.get(0);
    let task: String = r.get(1);
    Ok(WaitRecord {
        id: AttemptId::new(&run, &task, to_u32("waits", "attempt", r.get(2))?),
        kind: r.get(3),
        request_json: r.get(4),
        since: Timestamp(r.get(5)),
        deadline: r.get::<_, Option<i64>>(6).map(Timestamp),
        closed_at: r.get::<_, Option<i64>>(7).map(Timestamp),
        outcome: r.get(8),
    })
}

pub(crate) async fn waits(s: &Shared, run: &str) -> Result<Vec<WaitRecord>> {
    let client = s.pool.get().await.map_err(pool_err)?;
    let sql = format!("SELECT {WAIT_COLUMNS} FROM waits WHERE run = $1 ORDER BY task, attempt");
    client
        .query(&sql, &[&run])
        .await
        .map_err(pg_err)?
        .iter()
        .map(wait_record)
        .collect()
}

pub(crate) async fn wait(s: &Shared, id: &AttemptId) -> Result<Option<WaitRecord>> {
    let client = s.pool.get().await.map_err(pool_err)?;
    let sql =
        format!("SELECT {WAIT_COLUMNS} FROM waits WHERE run = $1 AND task = $2 AND attempt = $3");
    client
        .query_opt(&sql, &[&id.run, &id.task, &i64::from(id.attempt)])
        .await
        .map_err(pg_err)?
        .as_ref()
        .map(wait_record)
        .transpose()
}

/// Casts `vote` on its wait, if that wait is open and the identity has not voted: the
/// wait's row is locked so that a closing engine and a vote cannot cross.
pub(crate) async fn cast_vote(s: &Shared, vote: &VoteRecord) -> Result<()> {
    // Not retried: a lost answer to a landed insert would come back as "already voted".
    let mut client = s.pool.get().await.map_err(pool_err)?;
    let tx = client.transaction().await.map_err(pg_err)?;
    let attempt = i64::from(vote.id.attempt);
    let open = tx
        .query_opt(
            "SELECT 1 FROM waits WHERE run = $1 AND task = $2 AND attempt = $3
             AND closed_at IS NULL FOR UPDATE",
            &[&vote.id.run, &vote.id.task, &attempt],
        )
        .await
        .map_err(pg_err)?
        .is_some();
    if !open {
        return Err(StoreError::NotFound {
            what: format!("an open wait of {}", vote.id),
        });
    }
    let inserted = tx
        .execute(
            "INSERT INTO votes (run, task, attempt, identity, approve, message, defer_until, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (run, task, attempt, identity) DO NOTHING",
            &[
                &vote.id.run,
                &vote.id.task,
                &attempt,
                &vote.identity,
                &vote.approve,
                &vote.message,
                &vote.defer_until.map(|t| t.0),
                &vote.at.0,
            ],
        )
        .await
        .map_err(pg_err)?;
    if inserted == 0 {
        return Err(StoreError::AlreadyExists {
            what: format!("a decision by `{}` on {}", vote.identity, vote.id),
        });
    }
    tx.commit().await.map_err(pg_err)
}

pub(crate) async fn votes(s: &Shared, run: &str) -> Result<Vec<VoteRecord>> {
    let client = s.pool.get().await.map_err(pool_err)?;
    client
        .query(
            "SELECT task, attempt, identity, approve, message, defer_until, at FROM votes
             WHERE run = $1 ORDER BY at, task, attempt, identity",
            &[&run],
        )
        .await
        .map_err(pg_err)?
        .iter()
        .map(|r| {
            let task: String = r.get(0);
            Ok(VoteRecord {
                id: AttemptId::new(run, &task, to_u32("votes", "attempt", r.get(1))?),
                identity: r.get(2),
                approve: r.get(3),
                message: r.get(4),
                defer_until: r.get::<_, Option<i64>>(5).map(Timestamp),
                at: Timestamp(r.get(6)),
            })
        })
        .collect()
}

/// Inside a batch: opens a wait (a wait opened again after a restart keeps its first
/// `since` and deadline). Returns whether a row was written.
pub(crate) async fn open_wait(
    tx: &tokio_postgres::Transaction<'_>,
    wait: &WaitRecord,
) -> std::result::Result<bool, tokio_postgres::Error> {
    let n = tx
        .execute(
            "INSERT INTO waits (run, task, attempt, kind, request_json, since, deadline)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (run, task, attempt) DO NOTHING",
            &[
                &wait.id.run,
                &wait.id.task,
                &i64::from(wait.id.attempt),
                &wait.kind,
                &wait.request_json,
                &wait.since.0,
                &wait.deadline.map(|d| d.0),
            ],
        )
        .await?;
    Ok(n > 0)
}

/// Inside a batch: closes an open wait. Returns whether one was open.
pub(crate) async fn close_wait(
    tx: &tokio_postgres::Transaction<'_>,
    id: &AttemptId,
    outcome: &str,
    at: Timestamp,
) -> std::result::Result<bool, tokio_postgres::Error> {
    let n = tx
        .execute(
            "UPDATE waits SET closed_at = $4, outcome = $5
             WHERE run = $1 AND task = $2 AND attempt = $3 AND closed_at IS NULL",
            &[&id.run, &id.task, &i64::from(id.attempt), &at.0, &outcome],
        )
        .await?;
    Ok(n > 0)
}
