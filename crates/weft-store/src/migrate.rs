//! Schema migrations of both backends with one tool (refinery): the same versions, one SQL
//! file per backend and version (`migrations/sqlite/`, `migrations/postgres/`), history in
//! `weft_schema_history`. All pending migrations apply in one transaction; applying them
//! to an up-to-date database changes nothing.

use refinery::{Migration, Runner, Target};

use crate::error::StoreError;

/// The migrations of one backend: refinery names (`V{version}__{name}`) and SQL.
type Sources = [(&'static str, &'static str)];

const SQLITE: &Sources = &[
    (
        "V1__initial",
        include_str!("migrations/sqlite/V1__initial.sql"),
    ),
    (
        "V2__report_status",
        include_str!("migrations/sqlite/V2__report_status.sql"),
    ),
    (
        "V3__signals",
        include_str!("migrations/sqlite/V3__signals.sql"),
    ),
    ("V4__waits", include_str!("migrations/sqlite/V4__waits.sql")),
    (
        "V5__groups_and_schedules",
        include_str!("migrations/sqlite/V5__groups_and_schedules.sql"),
    ),
    (
        "V6__run_bodies",
        include_str!("migrations/sqlite/V6__run_bodies.sql"),
    ),
    (
        "V7__tenants",
        include_str!("migrations/sqlite/V7__tenants.sql"),
    ),
    (
        "V8__run_reports",
        include_str!("migrations/sqlite/V8__run_reports.sql"),
    ),
];

const POSTGRES: &Sources = &[
    (
        "V1__initial",
        include_str!("migrations/postgres/V1__initial.sql"),
    ),
    (
        "V2__report_status",
        include_str!("migrations/postgres/V2__report_status.sql"),
    ),
    (
        "V3__signals",
        include_str!("migrations/postgres/V3__signals.sql"),
    ),
    (
        "V4__waits",
        include_str!("migrations/postgres/V4__waits.sql"),
    ),
    (
        "V5__groups_and_schedules",
        include_str!("migrations/postgres/V5__groups_and_schedules.sql"),
    ),
    (
        "V6__run_bodies",
        include_str!("migrations/postgres/V6__run_bodies.sql"),
    ),
    (
        "V7__tenants",
        include_str!("migrations/postgres/V7__tenants.sql"),
    ),
    (
        "V8__run_reports",
        include_str!("migrations/postgres/V8__run_reports.sql"),
    ),
];

/// The schema version this build writes (the same on both backends).
pub const SCHEMA_VERSION: usize = SQLITE.len();

/// Where refinery keeps which migrations were applied.
pub(crate) const HISTORY_TABLE: &str = "weft_schema_history";

/// A key for `pg_advisory_lock`: servers starting together migrate one at a time.
pub(crate) const PG_MIGRATION_LOCK: i64 = 0x7765_6674_6462; // "weftdb"

/// Checks that both backends have the same versions, in order, with valid names.
pub fn validate() -> Result<(), String> {
    if SQLITE.len() != POSTGRES.len() {
        return Err(format!(
            "{} SQLite migrations but {} PostgreSQL ones",
            SQLITE.len(),
            POSTGRES.len()
        ));
    }
    for (i, ((a, _), (b, _))) in SQLITE.iter().zip(POSTGRES).enumerate() {
        if a != b {
            return Err(format!(
                "migration {} is `{a}` on SQLite but `{b}` on PostgreSQL",
                i + 1
            ));
        }
        let expected = format!("V{}__", i + 1);
        if !a.starts_with(&expected) {
            return Err(format!("migration `{a}` should start with `{expected}`"));
        }
    }
    migrations(SQLITE)
        .and_then(|_| migrations(POSTGRES))
        .map(drop)
        .map_err(|e| e.to_string())
}

fn migrations(sources: &Sources) -> Result<Vec<Migration>, StoreError> {
    sources
        .iter()
        .map(|(name, sql)| {
            Migration::unapplied(name, sql).map_err(|e| StoreError::Backend(format!("{name}: {e}")))
        })
        .collect()
}

fn runner(sources: &Sources, target: Target) -> Result<Runner, StoreError> {
    let mut runner = Runner::new(&migrations(sources)?)
        .set_grouped(true)
        .set_target(target);
    runner.set_migration_table_name(HISTORY_TABLE);
    Ok(runner)
}

/// Brings a SQLite database to [`SCHEMA_VERSION`]. A database written before weft used
/// refinery (only SQLite's `user_version` says how far it is) has its history recorded
/// first, without running those migrations again; `user_version` is kept in step, so an
/// older weft sees a schema it does not know and refuses it.
pub(crate) fn sqlite(conn: &mut rusqlite::Connection) -> Result<(), String> {
    let has_history: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [HISTORY_TABLE],
            |r| r.get(0),
        )
        .map_err(|e| e.to_string())?;
    let user_version: i32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    if user_version > SCHEMA_VERSION as i32 {
        return Err(format!(
            "the database has schema version {user_version}; this weft knows up to {SCHEMA_VERSION} (upgrade weft)"
        ));
    }
    if has_history && user_version == SCHEMA_VERSION as i32 && sqlite_history_is_latest(conn)? {
        // Up to date: every open of a current database (each `weft run`) stops here,
        // without building refinery's runner (it compiles its name pattern per process).
        // Its check that applied migrations' files are unchanged is skipped too: a released
        // migration is never edited (a new version is added instead).
        return Ok(());
    }
    if !has_history && user_version > 0 {
        runner(SQLITE, Target::FakeVersion(user_version))
            .map_err(|e| e.to_string())?
            .run(conn)
            .map_err(|e| e.to_string())?;
    }
    runner(SQLITE, Target::Latest)
        .map_err(|e| e.to_string())?
        .run(conn)
        .map_err(|e| e.to_string())?;
    conn.pragma_update(None, "user_version", SCHEMA_VERSION as i64)
        .map_err(|e| e.to_string())
}

/// Whether refinery's history records [`SCHEMA_VERSION`] as the last migration applied.
fn sqlite_history_is_latest(conn: &rusqlite::Connection) -> Result<bool, String> {
    let latest: Option<i64> = conn
        .query_row(
            &format!("SELECT max(version) FROM {HISTORY_TABLE}"),
            [],
            |r| r.get(0),
        )
        .map_err(|e| e.to_string())?;
    Ok(latest == Some(SCHEMA_VERSION as i64))
}

/// Processes opening one new database at once (`weft run` beside `weft approve`) set it
/// up one at a time: both would otherwise find no history and the second would apply V1
/// again ("table runs already exists"), and switching a new database to WAL or upgrading
/// a read to a write while another does may fail at once ("database is locked") without
/// waiting. SQLite has no lock that spans refinery's own transaction, so a lock file
/// beside the database (as `-wal` and `-shm` are) is held from opening to migrated.
pub(crate) fn sqlite_setup_lock(db: &std::path::Path) -> Result<std::fs::File, String> {
    let db = db.display();
    let path = format!("{db}-migrate.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open {path}: {e}"))?;
    file.lock()
        .map_err(|e| format!("cannot lock {path}: {e}"))?;
    Ok(file)
}

/// What [`postgres`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    /// The schema version before.
    pub from: usize,
    /// The schema version now.
    pub to: usize,
}

/// Brings a PostgreSQL database to [`SCHEMA_VERSION`] under an advisory lock (several
/// servers may start at once), or with `apply: false` only checks that it is there.
pub(crate) async fn postgres(
    client: &mut tokio_postgres::Client,
    apply: bool,
) -> Result<Migrated, String> {
    let err = |e: tokio_postgres::Error| crate::postgres::describe(&e);
    client
        .execute("SELECT pg_advisory_lock($1)", &[&PG_MIGRATION_LOCK])
        .await
        .map_err(err)?;
    let result = postgres_locked(client, apply).await;
    // Unlocked even when migrating failed; a lost connection unlocks by itself.
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&PG_MIGRATION_LOCK])
        .await;
    result
}

async fn postgres_locked(
    client: &mut tokio_postgres::Client,
    apply: bool,
) -> Result<Migrated, String> {
    let from = pg_version(client).await?;
    if from > SCHEMA_VERSION {
        return Err(format!(
            "the database has schema version {from}; this weft knows up to {SCHEMA_VERSION} (upgrade weft)"
        ));
    }
    if from < SCHEMA_VERSION {
        if !apply {
            return Err(format!(
                "the database has schema version {from}, this weft needs {SCHEMA_VERSION}: run `weft db migrate --db URL` first"
            ));
        }
        runner(POSTGRES, Target::Latest)
            .map_err(|e| e.to_string())?
            .run_async(client)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(Migrated {
        from,
        to: pg_version(client).await?,
    })
}

/// The newest applied version (0 on an empty database).
pub(crate) async fn pg_version(client: &tokio_postgres::Client) -> Result<usize, String> {
    let exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&HISTORY_TABLE])
        .await
        .map_err(|e| crate::postgres::describe(&e))?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let version: Option<i32> = client
        .query_one(&format!("SELECT max(version) FROM {HISTORY_TABLE}"), &[])
        .await
        .map_err(|e| crate::postgres::describe(&e))?
        .get(0);
    Ok(version.map_or(0, |v| usize::try_from(v).unwrap_or(0)))
}
