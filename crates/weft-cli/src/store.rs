//! Where the run store is and opening it: `--db` (a SQLite file, `sqlite://PATH` or a
//! `postgres://` URL), `weft db migrate`, who owns runs and how often they heartbeat.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use weft_store::{
    BatchConfig, BatchingStore, PgOptions, PgStore, RunStore, SqliteStore, StoreLimits,
};

use crate::cli::{OutputFormat, StoreArgs};
use crate::{Failure, default_data_dir};

/// Where the run store is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// The embedded default: a SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database shared by several servers (`postgres://...`).
    Postgres(String),
}

impl std::fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::Sqlite(path) => write!(f, "{}", path.display()),
            // Never the password.
            StoreLocation::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => match url[scheme + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
            None => url.to_string(),
        },
        _ => url.to_string(),
    }
}

/// The store: `--db` (or `WEFT_DB`): a SQLite file's path, `sqlite://PATH`, or a
/// `postgres://` / `postgresql://` URL; else `weft.db` in the data directory. A URL of any
/// other scheme is refused, naming those supported, rather than taken for a file name.
pub fn store_location(
    db: Option<&Path>,
    data_dir: Option<&Path>,
) -> Result<StoreLocation, Failure> {
    let Some(db) = db else {
        return Ok(StoreLocation::Sqlite(
            data_dir
                .map(Path::to_path_buf)
                .unwrap_or_else(default_data_dir)
                .join("weft.db"),
        ));
    };
    let text = db.to_string_lossy();
    if weft_store::is_postgres_url(&text) {
        return Ok(StoreLocation::Postgres(text.into_owned()));
    }
    let Some((scheme, rest)) = text.split_once("://") else {
        return Ok(StoreLocation::Sqlite(db.to_path_buf()));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "sqlite" | "file" if !rest.is_empty() => Ok(StoreLocation::Sqlite(PathBuf::from(rest))),
        "sqlite" | "file" => Err(Failure::invalid(format!(
            "--db {text}: the URL names no file (e.g. sqlite:///var/lib/weft/weft.db)"
        ))),
        other => Err(Failure::invalid(format!(
            "--db {}: unsupported store `{other}://`; supported: a SQLite file path, sqlite://PATH, or postgres://USER@HOST:PORT/DATABASE",
            redact(&text)
        ))),
    }
}

/// Whether stores apply pending migrations when opened (`WEFT_DB_MIGRATE=off` leaves that
/// to `weft db migrate`, for operators who migrate separately).
fn migrate_on_open() -> bool {
    !std::env::var("WEFT_DB_MIGRATE").is_ok_and(|v| {
        matches!(
            v.to_ascii_lowercase().as_str(),
            "off" | "0" | "false" | "no"
        )
    })
}

/// Opens the store for writing, with group commit. On PostgreSQL, a batch whose
/// connection broke is retried for up to `retry_for` (a server's lease TTL).
pub fn open_store_with(
    location: &StoreLocation,
    retry_for: Duration,
) -> Result<Arc<BatchingStore>, Failure> {
    let inner: Arc<dyn RunStore> = match location {
        StoreLocation::Sqlite(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    Failure::environment(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            Arc::new(
                SqliteStore::open(path, StoreLimits::default())
                    .map_err(|e| Failure::environment(format!("run store {location}: {e}")))?,
            )
        }
        StoreLocation::Postgres(url) => Arc::new(
            PgStore::open(
                url,
                StoreLimits::default(),
                PgOptions {
                    retry_for,
                    migrate: migrate_on_open(),
                    ..PgOptions::default()
                },
            )
            .map_err(|e| Failure::environment(format!("run store {location}: {e}")))?,
        ),
    };
    BatchingStore::new(inner, BatchConfig::default())
        .map(Arc::new)
        .map_err(|e| Failure::environment(format!("run store {location}: {e}")))
}

/// Opens the store for writing, with group commit.
pub fn open_store(location: &StoreLocation) -> Result<Arc<BatchingStore>, Failure> {
    open_store_with(location, weft_store::DEFAULT_RECOVERY_TIMEOUT)
}

/// Opens an existing store (`weft runs`, `weft approve`): nothing is created.
pub fn open_for(args: &StoreArgs) -> Result<Arc<BatchingStore>, Failure> {
    let location = store_location(args.db.as_deref(), args.data_dir.as_deref())?;
    if let StoreLocation::Sqlite(path) = &location
        && !path.exists()
    {
        return Err(Failure::invalid(format!(
            "no run store at {} (nothing has run with this data directory yet)",
            path.display()
        )));
    }
    open_store(&location)
}

/// `weft db migrate`: brings the store's schema up to date and says from which version.
pub fn migrate(args: &StoreArgs) -> Result<u8, Failure> {
    let location = store_location(args.db.as_deref(), args.data_dir.as_deref())?;
    let (from, to) = match &location {
        StoreLocation::Postgres(url) => PgStore::migrate(url, Duration::from_secs(10))
            .map_err(|e| Failure::environment(format!("run store {location}: {e}")))?,
        StoreLocation::Sqlite(path) => {
            let existed = path.exists();
            let store = SqliteStore::open(path, StoreLimits::default())
                .map_err(|e| Failure::environment(format!("run store {location}: {e}")))?;
            let to = store.schema_version().map_err(store_failure)?;
            (if existed { to } else { 0 }, to)
        }
    };
    if args.output.plain() == OutputFormat::Json {
        println!(
            "{}",
            serde_json::json!({"store": location.to_string(), "from": from, "to": to})
        );
    } else if from == to {
        println!("{location}: schema version {to}, up to date");
    } else {
        println!("{location}: migrated from schema version {from} to {to}");
    }
    Ok(0)
}

/// `weft db check`: every page of a SQLite store read and checked.
pub fn check(args: &StoreArgs) -> Result<u8, Failure> {
    let location = store_location(args.db.as_deref(), args.data_dir.as_deref())?;
    let StoreLocation::Sqlite(path) = &location else {
        return Err(Failure::invalid(format!(
            "{location}: `weft db check` checks SQLite files; PostgreSQL checks its own pages (amcheck)"
        )));
    };
    if !path.exists() {
        return Err(Failure::environment(format!("{location}: no such file")));
    }
    SqliteStore::open(path, StoreLimits::default())
        .and_then(|store| store.check())
        .map_err(|e| Failure::environment(format!("run store {location}: {e}")))?;
    if args.output.plain() == OutputFormat::Json {
        println!(
            "{}",
            serde_json::json!({"store": location.to_string(), "ok": true})
        );
    } else {
        println!("{location}: ok");
    }
    Ok(0)
}

/// Who owns runs this process starts: host and process id.
pub fn owner() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string());
    format!("{host}:{}", std::process::id())
}

/// How often a running engine renews its lease (`WEFT_HEARTBEAT_MS`, default 5 s).
pub fn heartbeat_every() -> Duration {
    std::env::var("WEFT_HEARTBEAT_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(Duration::from_secs(5), Duration::from_millis)
}

/// A store error as a failure of weft itself (exit 3).
pub fn store_failure(e: weft_store::StoreError) -> Failure {
    Failure::environment(format!("run store: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_flags_name_a_sqlite_file_or_a_postgres_database() {
        let data = Path::new("/data");
        let sqlite = |p: &str| Some(StoreLocation::Sqlite(PathBuf::from(p)));
        let pg = |u: &str| Some(StoreLocation::Postgres(u.to_string()));
        let table: [(Option<&str>, Option<StoreLocation>); 7] = [
            (None, sqlite("/data/weft.db")),
            (Some("/var/weft.db"), sqlite("/var/weft.db")),
            (Some("sqlite:///var/weft.db"), sqlite("/var/weft.db")),
            (
                Some("postgres://weft@db:5432/weft"),
                pg("postgres://weft@db:5432/weft"),
            ),
            (Some("PostgreSQL://db/weft"), pg("PostgreSQL://db/weft")),
            (Some("sqlite://"), None),
            (Some("mysql://db/weft"), None),
        ];
        for (db, expected) in table {
            let got = store_location(db.map(Path::new), Some(data)).ok();
            assert_eq!(got, expected, "{db:?}");
        }
    }

    #[test]
    fn a_database_url_is_shown_without_its_password() {
        let table = [
            (
                "postgres://weft:secret@db/weft",
                "postgres://weft:***@db/weft",
            ),
            ("postgres://weft@db/weft", "postgres://weft@db/weft"),
            ("postgres://db/weft", "postgres://db/weft"),
        ];
        for (url, shown) in table {
            assert_eq!(
                StoreLocation::Postgres(url.into()).to_string(),
                shown,
                "{url}"
            );
        }
    }
}
