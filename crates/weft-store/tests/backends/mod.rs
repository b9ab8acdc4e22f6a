//! The two backends the store's cases run against: SQLite (a file in a temporary
//! directory) and PostgreSQL (a schema of its own on the test server, dropped afterwards).
//!
//! PostgreSQL is `WEFT_TEST_PG_URL`, else `postgres://postgres@127.0.0.1:5432/test`. When
//! neither answers, its cases say so loudly and pass without running, unless
//! `WEFT_TEST_PG_REQUIRED=1` makes that a failure.

#![allow(clippy::unwrap_used, dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use weft_store::{PgOptions, PgStore, RunStore, SqliteStore, StoreLimits};

/// Which backend a case runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded store.
    Sqlite,
    /// The shared store.
    Postgres,
}

/// One test's own database: a SQLite file, or a PostgreSQL schema.
pub struct Db {
    /// Its backend.
    pub backend: Backend,
    dir: tempfile::TempDir,
    pg: Option<PgSchema>,
}

/// The PostgreSQL server tests use.
pub fn pg_base_url() -> String {
    std::env::var("WEFT_TEST_PG_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

struct PgSchema {
    base: String,
    schema: String,
}

impl PgSchema {
    fn create() -> Option<PgSchema> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let base = pg_base_url();
        let mut client = match postgres::Client::connect(&base, postgres::NoTls) {
            Ok(client) => client,
            Err(err) => {
                if std::env::var("WEFT_TEST_PG_REQUIRED").is_ok_and(|v| v == "1") {
                    panic!("no PostgreSQL at {base}: {err}");
                }
                eprintln!(
                    "\n*** SKIPPED: no PostgreSQL at {base} ({err}); set WEFT_TEST_PG_URL to run the PostgreSQL cases ***\n"
                );
                return None;
            }
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let schema = format!(
            "weft_t_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        client
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .unwrap();
        Some(PgSchema { base, schema })
    }

    fn url(&self) -> String {
        let sep = if self.base.contains('?') { '&' } else { '?' };
        format!(
            "{}{sep}options=-c%20search_path%3D{}&application_name={}",
            self.base, self.schema, self.schema
        )
    }

    fn client(&self) -> postgres::Client {
        let mut client = postgres::Client::connect(&self.base, postgres::NoTls).unwrap();
        client
            .batch_execute(&format!("SET search_path TO {}", self.schema))
            .unwrap();
        client
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.base, postgres::NoTls) {
            let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
        }
    }
}

impl Db {
    /// A fresh database; `None` when the backend is not available here (said loudly).
    pub fn new(backend: Backend) -> Option<Db> {
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PgSchema::create()?),
        };
        Some(Db {
            backend,
            dir: tempfile::tempdir().unwrap(),
            pg,
        })
    }

    /// The SQLite file.
    pub fn sqlite_path(&self) -> std::path::PathBuf {
        self.dir.path().join("weft.db")
    }

    /// The PostgreSQL URL (with the test's schema).
    pub fn pg_url(&self) -> Option<String> {
        self.pg.as_ref().map(PgSchema::url)
    }

    /// Opens a store on this database.
    pub fn open(&self, limits: StoreLimits) -> Arc<dyn RunStore> {
        self.try_open(limits).unwrap()
    }

    /// Opens a store on this database, or says why not.
    pub fn try_open(&self, limits: StoreLimits) -> weft_store::Result<Arc<dyn RunStore>> {
        Ok(match &self.pg {
            None => Arc::new(SqliteStore::open(self.sqlite_path(), limits)?),
            Some(pg) => Arc::new(PgStore::open(&pg.url(), limits, PgOptions::default())?),
        })
    }

    /// Opens a store with the default limits.
    pub fn store(&self) -> Arc<dyn RunStore> {
        self.open(StoreLimits::default())
    }

    /// Runs SQL under the store (to break rows, or try what triggers forbid).
    pub fn exec(&self, sql: &str) -> Result<(), String> {
        match &self.pg {
            None => rusqlite::Connection::open(self.sqlite_path())
                .and_then(|c| c.execute_batch(sql))
                .map_err(|e| e.to_string()),
            Some(pg) => pg.client().batch_execute(sql).map_err(|e| {
                e.as_db_error()
                    .map_or_else(|| e.to_string(), |d| d.message().to_string())
            }),
        }
    }

    /// Ends the store's connections from the server side (PostgreSQL only).
    pub fn kill_connections(&self) {
        if let Some(pg) = &self.pg {
            let mut client = pg.client();
            client
                .execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE application_name = $1 AND pid <> pg_backend_pid()",
                    &[&pg.schema],
                )
                .unwrap();
        }
    }
}

/// Runs `case` against a fresh database of `backend` (or skips, loudly).
pub fn run(backend: Backend, case: fn(&Db)) {
    if let Some(db) = Db::new(backend) {
        case(&db);
    }
}

/// One `#[test]` per case and backend: `sqlite::CASE` and `postgres::CASE`.
#[macro_export]
macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $case() { $crate::backends::run($crate::backends::Backend::Sqlite, super::$case) })*
        }
        mod postgres {
            $(#[test] fn $case() { $crate::backends::run($crate::backends::Backend::Postgres, super::$case) })*
        }
    };
}
