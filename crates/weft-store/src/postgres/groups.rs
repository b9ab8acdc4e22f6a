//! Concurrency groups and cron schedules on PostgreSQL (release-control.md sections 4 and
//! 5): the same rules as SQLite's. A group's decision runs in one transaction holding the
//! group's advisory lock, so engines on every machine sharing the database take turns.

use std::time::Duration;

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::{PgStore, Shared, pg_err, pool_err};
use crate::error::StoreError;
use crate::types::{Result, ScheduleRecord, SlotChange, SlotRow, Timestamp};

const SLOT_COLUMNS: &str = "s.group_name, s.holder, s.run, s.seq, s.holding, s.superseded,
    (r.finished_at IS NULL AND r.heartbeat_at IS NOT NULL AND r.heartbeat_at >= $2)";

fn slot_row(r: &Row) -> SlotRow {
    SlotRow {
        group: r.get(0),
        holder: r.get(1),
        run: r.get(2),
        seq: r.get(3),
        holding: r.get(4),
        superseded: r.get(5),
        alive: r.get(6),
    }
}

async fn group_rows<C: GenericClient>(c: &C, group: &str, cutoff: i64) -> Result<Vec<SlotRow>> {
    let sql = format!(
        "SELECT {SLOT_COLUMNS} FROM slots s JOIN runs r ON r.id = s.run
         WHERE s.group_name = $1 ORDER BY s.seq"
    );
    Ok(c.query(&sql, &[&group, &cutoff])
        .await
        .map_err(pg_err)?
        .iter()
        .map(slot_row)
        .collect())
}

async fn apply<C: GenericClient>(c: &C, group: &str, change: &SlotChange) -> Result<()> {
    let result = match change {
        SlotChange::Join { holder, run } => {
            c.execute(
                "INSERT INTO slots (group_name, holder, run, seq, holding)
                 VALUES ($1, $2, $3, (SELECT COALESCE(MAX(seq), 0) + 1 FROM slots), FALSE)
                 ON CONFLICT (group_name, holder) DO NOTHING",
                &[&group, holder, run],
            )
            .await
        }
        SlotChange::Hold(holder) | SlotChange::Wait(holder) => {
            let holding = matches!(change, SlotChange::Hold(_));
            c.execute(
                "UPDATE slots SET holding = $3 WHERE group_name = $1 AND holder = $2",
                &[&group, holder, &holding],
            )
            .await
        }
        SlotChange::Leave(holder) => {
            c.execute(
                "DELETE FROM slots WHERE group_name = $1 AND holder = $2",
                &[&group, holder],
            )
            .await
        }
        SlotChange::Supersede(holder) => {
            c.execute(
                "UPDATE slots SET superseded = TRUE WHERE group_name = $1 AND holder = $2",
                &[&group, holder],
            )
            .await
        }
        SlotChange::Fence(run) => {
            c.execute(
                "UPDATE runs SET lease_token = lease_token + 1
                 WHERE id = $1 AND finished_at IS NULL",
                &[run],
            )
            .await
        }
    };
    result.map(|_| ()).map_err(pg_err)
}

fn cutoff(now: Timestamp, stale_after: Duration) -> i64 {
    now.minus(stale_after).0
}

impl PgStore {
    /// One group decision: the rows are read under the group's lock, handed to `decide`
    /// on the caller's thread, and its changes applied in the same transaction.
    pub(super) fn group_decision(
        &self,
        group: &str,
        now: Timestamp,
        stale_after: Duration,
        decide: &mut dyn FnMut(&[SlotRow]) -> Vec<SlotChange>,
    ) -> Result<Vec<SlotRow>> {
        let Some(runtime) = &self.runtime else {
            return Err(StoreError::Closed);
        };
        let (rows_tx, rows_rx) = std::sync::mpsc::sync_channel::<Vec<SlotRow>>(1);
        let (changes_tx, changes_rx) = tokio::sync::oneshot::channel::<Vec<SlotChange>>();
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel::<Result<Vec<SlotRow>>>(1);
        let shared = self.shared.clone();
        let group = group.to_string();
        let cutoff = cutoff(now, stale_after);
        runtime.spawn(async move {
            let result = decide_in_tx(&shared, &group, cutoff, rows_tx, changes_rx).await;
            let _ = done_tx.send(result);
        });
        // The transaction waits for our answer; when it failed before asking, the rows
        // channel is closed and the error comes from `done_rx`.
        if let Ok(rows) = rows_rx.recv() {
            let _ = changes_tx.send(decide(&rows));
        }
        done_rx.recv().map_err(|_| StoreError::Closed)?
    }
}

async fn decide_in_tx(
    s: &Shared,
    group: &str,
    cutoff: i64,
    rows_tx: std::sync::mpsc::SyncSender<Vec<SlotRow>>,
    changes_rx: tokio::sync::oneshot::Receiver<Vec<SlotChange>>,
) -> Result<Vec<SlotRow>> {
    let mut client = s.pool.get().await.map_err(pool_err)?;
    let tx = client.transaction().await.map_err(pg_err)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[&format!("weft.group.{group}")],
    )
    .await
    .map_err(pg_err)?;
    // Finished runs hold nothing (an engine that died between finishing and leaving).
    tx.execute(
        "DELETE FROM slots WHERE group_name = $1
         AND run IN (SELECT id FROM runs WHERE finished_at IS NOT NULL)",
        &[&group],
    )
    .await
    .map_err(pg_err)?;
    let rows = group_rows(&tx, group, cutoff).await?;
    if rows_tx.send(rows).is_err() {
        return Err(StoreError::Closed);
    }
    let changes = changes_rx.await.map_err(|_| StoreError::Closed)?;
    for change in &changes {
        apply(&tx, group, change).await?;
    }
    let rows = group_rows(&tx, group, cutoff).await?;
    tx.commit().await.map_err(pg_err)?;
    Ok(rows)
}

pub(crate) async fn groups_of(s: &Shared, run: &str, cutoff: i64) -> Result<Vec<SlotRow>> {
    let client = s.pool.get().await.map_err(pool_err)?;
    let sql = format!(
        "SELECT {SLOT_COLUMNS} FROM slots s JOIN runs r ON r.id = s.run
         WHERE s.group_name IN (SELECT group_name FROM slots WHERE run = $1)
         ORDER BY s.group_name, s.seq"
    );
    Ok(client
        .query(&sql, &[&run, &cutoff])
        .await
        .map_err(pg_err)?
        .iter()
        .map(slot_row)
        .collect())
}

pub(crate) fn cutoff_of(now: Timestamp, stale_after: Duration) -> i64 {
    cutoff(now, stale_after)
}

pub(crate) async fn leave_groups(s: &Shared, run: &str) -> Result<()> {
    let client = s.pool.get().await.map_err(pool_err)?;
    client
        .execute("DELETE FROM slots WHERE run = $1", &[&run])
        .await
        .map_err(pg_err)?;
    Ok(())
}

pub(crate) async fn add_schedule(s: &Shared, schedule: &ScheduleRecord) -> Result<()> {
    let client = s.pool.get().await.map_err(pool_err)?;
    let n = client
        .execute(
            "INSERT INTO schedules (name, cron, zone, spec_json, next_at, firing_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING",
            &[
                &schedule.name,
                &schedule.cron,
                &schedule.zone,
                &schedule.spec_json,
                &schedule.next_at.map(|t| t.0),
                &schedule.firing_at.map(|t| t.0),
                &schedule.created_at.0,
            ],
        )
        .await
        .map_err(pg_err)?;
    if n == 0 {
        return Err(StoreError::AlreadyExists {
            what: format!("schedule `{}`", schedule.name),
        });
    }
    Ok(())
}

pub(crate) async fn schedules(s: &Shared) -> Result<Vec<ScheduleRecord>> {
    let client = s.pool.get().await.map_err(pool_err)?;
    Ok(client
        .query(
            "SELECT name, cron, zone, spec_json, next_at, firing_at, created_at
             FROM schedules ORDER BY name",
            &[],
        )
        .await
        .map_err(pg_err)?
        .iter()
        .map(|r| ScheduleRecord {
            name: r.get(0),
            cron: r.get(1),
            zone: r.get(2),
            spec_json: r.get(3),
            next_at: r.get::<_, Option<i64>>(4).map(Timestamp),
            firing_at: r.get::<_, Option<i64>>(5).map(Timestamp),
            created_at: Timestamp(r.get(6)),
        })
        .collect())
}

pub(crate) async fn remove_schedule(s: &Shared, name: &str) -> Result<bool> {
    let client = s.pool.get().await.map_err(pool_err)?;
    Ok(client
        .execute("DELETE FROM schedules WHERE name = $1", &[&name])
        .await
        .map_err(pg_err)?
        > 0)
}

pub(crate) async fn claim_tick(
    s: &Shared,
    name: &str,
    tick: i64,
    next: Option<i64>,
) -> Result<bool> {
    let client = s.pool.get().await.map_err(pool_err)?;
    Ok(client
        .execute(
            "UPDATE schedules SET next_at = $3, firing_at = $2
             WHERE name = $1 AND next_at = $2 AND firing_at IS NULL",
            &[&name, &tick, &next],
        )
        .await
        .map_err(pg_err)?
        == 1)
}

pub(crate) async fn tick_fired(s: &Shared, name: &str, tick: i64) -> Result<()> {
    let client = s.pool.get().await.map_err(pool_err)?;
    client
        .execute(
            "UPDATE schedules SET firing_at = NULL WHERE name = $1 AND firing_at = $2",
            &[&name, &tick],
        )
        .await
        .map_err(pg_err)?;
    Ok(())
}

pub(crate) async fn runs_named(s: &Shared, name: &str) -> Result<Vec<String>> {
    let client = s.pool.get().await.map_err(pool_err)?;
    Ok(client
        .query(
            "SELECT id FROM runs WHERE name = $1 ORDER BY created_at, id",
            &[&name],
        )
        .await
        .map_err(pg_err)?
        .iter()
        .map(|r| r.get(0))
        .collect())
}
