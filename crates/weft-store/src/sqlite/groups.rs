//! Concurrency groups and cron schedules on SQLite (release-control.md sections 4 and 5).
//! A group's decision runs inside one `IMMEDIATE` transaction: SQLite's file lock keeps
//! every other process sharing the file out until it commits.

use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior, params};

use super::{SqliteStore, lock};
use crate::error::StoreError;
use crate::types::{Result, ScheduleRecord, SlotChange, SlotRow, Timestamp};

const SLOT_COLUMNS: &str = "s.group_name, s.holder, s.run, s.seq, s.holding, s.superseded,
    (r.finished_at IS NULL AND r.heartbeat_at IS NOT NULL AND r.heartbeat_at >= ?2)";

fn slot_rows(
    conn: &Connection,
    sql: &str,
    key: &str,
    cutoff: i64,
) -> rusqlite::Result<Vec<SlotRow>> {
    conn.prepare_cached(sql)?
        .query_map(params![key, cutoff], |r| {
            Ok(SlotRow {
                group: r.get(0)?,
                holder: r.get(1)?,
                run: r.get(2)?,
                seq: r.get(3)?,
                holding: r.get(4)?,
                superseded: r.get(5)?,
                alive: r.get(6)?,
            })
        })?
        .collect()
}

fn group_rows(conn: &Connection, group: &str, cutoff: i64) -> rusqlite::Result<Vec<SlotRow>> {
    slot_rows(
        conn,
        &format!(
            "SELECT {SLOT_COLUMNS} FROM slots s JOIN runs r ON r.id = s.run
             WHERE s.group_name = ?1 ORDER BY s.seq"
        ),
        group,
        cutoff,
    )
}

fn apply(conn: &Connection, group: &str, change: &SlotChange) -> rusqlite::Result<()> {
    match change {
        SlotChange::Join { holder, run } => {
            conn.prepare_cached(
                "INSERT INTO slots (group_name, holder, run, seq, holding)
                 VALUES (?1, ?2, ?3, (SELECT COALESCE(MAX(seq), 0) + 1 FROM slots), 0)
                 ON CONFLICT (group_name, holder) DO NOTHING",
            )?
            .execute(params![group, holder, run])?;
        }
        SlotChange::Hold(holder) | SlotChange::Wait(holder) => {
            let holding = matches!(change, SlotChange::Hold(_));
            conn.prepare_cached(
                "UPDATE slots SET holding = ?3 WHERE group_name = ?1 AND holder = ?2",
            )?
            .execute(params![group, holder, holding])?;
        }
        SlotChange::Leave(holder) => {
            conn.prepare_cached("DELETE FROM slots WHERE group_name = ?1 AND holder = ?2")?
                .execute(params![group, holder])?;
        }
        SlotChange::Supersede(holder) => {
            conn.prepare_cached(
                "UPDATE slots SET superseded = 1 WHERE group_name = ?1 AND holder = ?2",
            )?
            .execute(params![group, holder])?;
        }
        SlotChange::Fence(run) => {
            conn.prepare_cached(
                "UPDATE runs SET lease_token = lease_token + 1
                 WHERE id = ?1 AND finished_at IS NULL",
            )?
            .execute(params![run])?;
        }
    }
    Ok(())
}

fn cutoff(now: Timestamp, stale_after: Duration) -> i64 {
    now.minus(stale_after).0
}

impl SqliteStore {
    pub(super) fn group_decision(
        &self,
        group: &str,
        now: Timestamp,
        stale_after: Duration,
        decide: &mut dyn FnMut(&[SlotRow]) -> Vec<SlotChange>,
    ) -> Result<Vec<SlotRow>> {
        let mut conn = lock(&self.writer);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let cutoff = cutoff(now, stale_after);
        // Finished runs hold nothing (an engine that died between finishing and leaving).
        tx.prepare_cached(
            "DELETE FROM slots WHERE group_name = ?1
             AND run IN (SELECT id FROM runs WHERE finished_at IS NOT NULL)",
        )
        .and_then(|mut s| s.execute([group]))
        .map_err(|e| self.err(e))?;
        let rows = group_rows(&tx, group, cutoff).map_err(|e| self.err(e))?;
        for change in decide(&rows) {
            apply(&tx, group, &change).map_err(|e| self.err(e))?;
        }
        let rows = group_rows(&tx, group, cutoff).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(rows)
    }

    pub(super) fn groups_of_run(
        &self,
        run: &str,
        now: Timestamp,
        stale_after: Duration,
    ) -> Result<Vec<SlotRow>> {
        self.read(|conn| {
            slot_rows(
                conn,
                &format!(
                    "SELECT {SLOT_COLUMNS} FROM slots s JOIN runs r ON r.id = s.run
                     WHERE s.group_name IN (SELECT group_name FROM slots WHERE run = ?1)
                     ORDER BY s.group_name, s.seq"
                ),
                run,
                cutoff(now, stale_after),
            )
            .map_err(|e| self.err(e))
        })
    }

    pub(super) fn leave_all_groups(&self, run: &str) -> Result<()> {
        let conn = lock(&self.writer);
        conn.prepare_cached("DELETE FROM slots WHERE run = ?1")
            .and_then(|mut s| s.execute([run]))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub(super) fn insert_schedule(&self, schedule: &ScheduleRecord) -> Result<()> {
        let conn = lock(&self.writer);
        let n = conn
            .prepare_cached(
                "INSERT INTO schedules (name, cron, zone, spec_json, next_at, firing_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (name) DO NOTHING",
            )
            .and_then(|mut s| {
                s.execute(params![
                    schedule.name,
                    schedule.cron,
                    schedule.zone,
                    schedule.spec_json,
                    schedule.next_at.map(|t| t.0),
                    schedule.firing_at.map(|t| t.0),
                    schedule.created_at.0,
                ])
            })
            .map_err(|e| self.err(e))?;
        if n == 0 {
            return Err(StoreError::AlreadyExists {
                what: format!("schedule `{}`", schedule.name),
            });
        }
        Ok(())
    }

    pub(super) fn all_schedules(&self) -> Result<Vec<ScheduleRecord>> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT name, cron, zone, spec_json, next_at, firing_at, created_at
                 FROM schedules ORDER BY name",
            )
            .and_then(|mut s| {
                s.query_map([], |r| {
                    Ok(ScheduleRecord {
                        name: r.get(0)?,
                        cron: r.get(1)?,
                        zone: r.get(2)?,
                        spec_json: r.get(3)?,
                        next_at: r.get::<_, Option<i64>>(4)?.map(Timestamp),
                        firing_at: r.get::<_, Option<i64>>(5)?.map(Timestamp),
                        created_at: Timestamp(r.get(6)?),
                    })
                })?
                .collect()
            })
            .map_err(|e| self.err(e))
        })
    }

    pub(super) fn delete_schedule(&self, name: &str) -> Result<bool> {
        let conn = lock(&self.writer);
        conn.prepare_cached("DELETE FROM schedules WHERE name = ?1")
            .and_then(|mut s| s.execute([name]))
            .map(|n| n > 0)
            .map_err(|e| self.err(e))
    }

    pub(super) fn claim_schedule_tick(
        &self,
        name: &str,
        tick: Timestamp,
        next: Option<Timestamp>,
    ) -> Result<bool> {
        let conn = lock(&self.writer);
        conn.prepare_cached(
            "UPDATE schedules SET next_at = ?3, firing_at = ?2
             WHERE name = ?1 AND next_at = ?2 AND firing_at IS NULL",
        )
        .and_then(|mut s| s.execute(params![name, tick.0, next.map(|t| t.0)]))
        .map(|n| n == 1)
        .map_err(|e| self.err(e))
    }

    pub(super) fn schedule_tick_fired(&self, name: &str, tick: Timestamp) -> Result<()> {
        let conn = lock(&self.writer);
        conn.prepare_cached(
            "UPDATE schedules SET firing_at = NULL WHERE name = ?1 AND firing_at = ?2",
        )
        .and_then(|mut s| s.execute(params![name, tick.0]))
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub(super) fn ids_named(&self, name: &str) -> Result<Vec<String>> {
        self.read(|conn| {
            conn.prepare_cached("SELECT id FROM runs WHERE name = ?1 ORDER BY created_at, id")
                .and_then(|mut s| s.query_map([name], |r| r.get(0))?.collect())
                .map_err(|e| self.err(e))
        })
    }
}
