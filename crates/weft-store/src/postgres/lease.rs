//! Runs' leases on PostgreSQL: creating a run, claiming (one, or abandoned ones in
//! batches with `FOR UPDATE SKIP LOCKED`), heartbeats and releases; and sending signals.

use std::time::Duration;

use super::conv::{limit, parse, to_i64, to_u64};
use super::listen::CHANNEL;
use super::{Failure, Shared, pg_err, pool_err, with_retry};
use crate::error::StoreError;
use crate::types::{Lease, NewRun, NewSignal, Recovery, Result, StaleRun, Timestamp};

/// How long reads and idempotent lease calls retry on a broken connection: long enough to
/// get past a connection the pool handed out dead, short enough not to hide an outage.
pub(crate) const QUICK_RETRY: Duration = Duration::from_secs(2);

pub(crate) async fn create_run(
    s: &Shared,
    run: &NewRun,
    owner: &str,
    now: Timestamp,
) -> Result<Lease> {
    // Not retried: a lost answer to a landed insert would come back as "already exists".
    let client = s.pool.get().await.map_err(pool_err)?;
    let stmt = client
        .prepare_cached(
            "INSERT INTO runs (id, name, pipeline_name, pipeline_source, params_json,
                 options_json, recovery, created_at, phase, lease_owner, lease_token,
                 heartbeat_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'Running', $9, 1, $10)
             ON CONFLICT (id) DO NOTHING",
        )
        .await
        .map_err(pg_err)?;
    let n = client
        .execute(
            &stmt,
            &[
                &run.id,
                &run.name,
                &run.pipeline_name,
                &run.pipeline_source,
                &run.params_json,
                &run.options_json,
                &run.recovery.as_str(),
                &run.created_at.0,
                &owner,
                &now.0,
            ],
        )
        .await
        .map_err(pg_err)?;
    if n == 0 {
        return Err(StoreError::AlreadyExists {
            what: format!("run {}", run.id),
        });
    }
    Ok(Lease {
        run: run.id.clone(),
        owner: owner.to_string(),
        token: 1,
    })
}

pub(crate) async fn claim(
    s: &Shared,
    run: &str,
    owner: &str,
    now: Timestamp,
    stale_after: Duration,
) -> Result<Lease> {
    with_retry(QUICK_RETRY, || claim_once(s, run, owner, now, stale_after)).await
}

async fn claim_once(
    s: &Shared,
    run: &str,
    owner: &str,
    now: Timestamp,
    stale_after: Duration,
) -> std::result::Result<Lease, Failure> {
    let mut client = s.pool.get().await?;
    let tx = client.transaction().await.map_err(Failure::before_commit)?;
    let row = tx
        .query_opt(
            "SELECT lease_owner, lease_token, heartbeat_at FROM runs WHERE id = $1 FOR UPDATE",
            &[&run],
        )
        .await
        .map_err(Failure::before_commit)?;
    let Some(row) = row else {
        return Err(Failure::Final(StoreError::NotFound {
            what: format!("run {run}"),
        }));
    };
    let holder: Option<String> = row.get(0);
    let token = to_u64("runs", "lease_token", row.get(1))?;
    let heartbeat: Option<i64> = row.get(2);
    if let Some(holder) = &holder
        && holder != owner
        && heartbeat.is_some_and(|hb| hb >= now.minus(stale_after).0)
    {
        return Err(Failure::Final(StoreError::LeaseHeld {
            run: run.to_string(),
            owner: holder.clone(),
            age_ms: heartbeat.map_or(0, |hb| now.0 - hb),
        }));
    }
    let token = token + 1;
    tx.execute(
        "UPDATE runs SET lease_owner = $2, lease_token = $3, heartbeat_at = $4 WHERE id = $1",
        &[&run, &owner, &to_i64(token), &now.0],
    )
    .await
    .map_err(Failure::before_commit)?;
    // A claim that may have landed is safe to repeat: it only takes a newer token.
    tx.commit().await.map_err(Failure::before_commit)?;
    Ok(Lease {
        run: run.to_string(),
        owner: owner.to_string(),
        token,
    })
}

/// Renews `lease` (or, with `release`, sets its heartbeat to 0 and notifies the other
/// servers that the run may be taken over at once).
pub(crate) async fn heartbeat(
    s: &Shared,
    lease: &Lease,
    now: Timestamp,
    release: bool,
) -> Result<()> {
    with_retry(QUICK_RETRY, || async {
        let client = s.pool.get().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE runs SET heartbeat_at = $4
                 WHERE id = $1 AND lease_owner = $2 AND lease_token = $3",
            )
            .await
            .map_err(Failure::before_commit)?;
        let n = client
            .execute(
                &stmt,
                &[&lease.run, &lease.owner, &to_i64(lease.token), &now.0],
            )
            .await
            .map_err(Failure::before_commit)?;
        if n == 1 {
            if release {
                let _ = client
                    .execute(
                        "SELECT pg_notify($1, $2)",
                        &[&CHANNEL, &format!("released:{}", lease.run)],
                    )
                    .await;
            }
            return Ok(());
        }
        // Not current: say why.
        let row = client
            .query_opt(
                "SELECT lease_owner, lease_token FROM runs WHERE id = $1",
                &[&lease.run],
            )
            .await
            .map_err(Failure::before_commit)?;
        Err(Failure::Final(match row {
            None => StoreError::NotFound {
                what: format!("run {}", lease.run),
            },
            Some(row) => StoreError::StaleLease {
                run: lease.run.clone(),
                owner: lease.owner.clone(),
                token: lease.token,
                current_owner: row.get::<_, Option<String>>(0).unwrap_or_default(),
                current_token: to_u64("runs", "lease_token", row.get(1))?,
            },
        }))
    })
    .await
}

pub(crate) async fn stale_runs(
    s: &Shared,
    now: Timestamp,
    older_than: Duration,
) -> Result<Vec<StaleRun>> {
    let cutoff = now.minus(older_than).0;
    let rows = with_retry(QUICK_RETRY, || async {
        let client = s.pool.get().await?;
        client
            .query(
                "SELECT id, lease_owner, lease_token, heartbeat_at, recovery FROM runs
                 WHERE finished_at IS NULL AND (heartbeat_at IS NULL OR heartbeat_at < $1)
                 ORDER BY heartbeat_at NULLS FIRST, id",
                &[&cutoff],
            )
            .await
            .map_err(Failure::before_commit)
    })
    .await?;
    rows.iter()
        .map(|r| {
            Ok(StaleRun {
                id: r.get(0),
                owner: r.get(1),
                token: to_u64("runs", "lease_token", r.get(2))?,
                heartbeat_at: r.get::<_, Option<i64>>(3).map(Timestamp),
                recovery: parse("runs", "recovery", r.get(4), Recovery::parse)?,
            })
        })
        .collect()
}

/// One statement: the abandoned runs no other transaction has locked are picked, oldest
/// heartbeat first, and given to `owner` with a new token. Two servers sweeping at once
/// get disjoint runs.
pub(crate) async fn claim_stale(
    s: &Shared,
    owner: &str,
    now: Timestamp,
    stale_after: Duration,
    max: usize,
) -> Result<Vec<Lease>> {
    let cutoff = now.minus(stale_after).0;
    let client = s.pool.get().await.map_err(pool_err)?;
    let rows = client
        .query(
            "WITH picked AS (
                 SELECT id FROM runs
                 WHERE finished_at IS NULL AND (heartbeat_at IS NULL OR heartbeat_at < $1)
                 ORDER BY heartbeat_at NULLS FIRST, id
                 LIMIT $2
                 FOR UPDATE SKIP LOCKED)
             UPDATE runs SET lease_owner = $3, lease_token = runs.lease_token + 1,
                 heartbeat_at = $4
             FROM picked WHERE runs.id = picked.id
             RETURNING runs.id, runs.lease_token",
            &[&cutoff, &limit(max), &owner, &now.0],
        )
        .await
        .map_err(pg_err)?;
    let mut leases = rows
        .iter()
        .map(|r| {
            Ok(Lease {
                run: r.get(0),
                owner: owner.to_string(),
                token: to_u64("runs", "lease_token", r.get(1))?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    leases.sort_by(|a, b| a.run.cmp(&b.run));
    Ok(leases)
}

pub(crate) async fn send_signal(s: &Shared, signal: &NewSignal) -> Result<u64> {
    let client = s.pool.get().await.map_err(pool_err)?;
    let row = client
        .query_opt(
            "INSERT INTO signals (run, kind, payload_json, sent_at)
             SELECT id, $2, $3, $4 FROM runs WHERE id = $1 AND finished_at IS NULL
             RETURNING id",
            &[
                &signal.run,
                &signal.kind,
                &signal.payload_json,
                &signal.sent_at.0,
            ],
        )
        .await
        .map_err(pg_err)?;
    if let Some(row) = row {
        return to_u64("signals", "id", row.get(0));
    }
    let exists = client
        .query_opt("SELECT 1 FROM runs WHERE id = $1", &[&signal.run])
        .await
        .map_err(pg_err)?
        .is_some();
    Err(if exists {
        StoreError::RunFinished {
            run: signal.run.clone(),
            what: format!("a `{}` signal", signal.kind),
        }
    } else {
        StoreError::NotFound {
            what: format!("run {}", signal.run),
        }
    })
}
