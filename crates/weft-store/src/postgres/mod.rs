//! The shared store: PostgreSQL, for several `weft serve` processes on one database.
//!
//! # Why a synchronous store over an async client
//!
//! [`RunStore`] is synchronous: the engine calls it from the group-commit writer thread
//! ([`crate::BatchingStore`]) and, for reads and leases, straight from its tasks. The
//! blocking `postgres` crate cannot be used there: it runs its own runtime per call and
//! panics inside a tokio context. So the store owns a small tokio runtime of its own
//! (`weft-pg` threads) driving `tokio-postgres` through a `deadpool-postgres` pool; each
//! call hands its future to that runtime and waits on a plain channel. A caller never
//! blocks the runtime that serves it, and the engine stays unaware of the backend: group
//! commit on top works exactly as with SQLite (one transaction per batch).
//!
//! # Semantics
//!
//! Those of the SQLite store, checked by the same test cases: every write carries its
//! lease, checked in the transaction that writes, with the run rows of the batch locked
//! (`FOR UPDATE`, in id order, so batches never deadlock one another) so that a claim
//! cannot slip between the check and the write. Terminal attempts and finished runs are
//! immutable (also by triggers), logs are capped per task, the outbox never regresses.
//! [`RunStore::claim_stale`] claims in batches with `FOR UPDATE SKIP LOCKED`.
//!
//! # Failures
//!
//! A lost connection is replaced (the pool makes a new one). A batch whose connection
//! failed before `COMMIT` was sent is retried on a new connection for up to
//! [`PgOptions::retry_for`]; one that failed during `COMMIT` is not (it may have landed)
//! and fails as a database error. Leases stay the fence: a write retried after another
//! engine claimed the run is refused as stale.

mod groups;
mod lease;
mod listen;
mod read;
mod tenants;
mod waits;
mod write;

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use crate::error::StoreError;
use crate::migrate::{self, Migrated};
use crate::store::RunStore;
use crate::types::{
    AttemptId, AttemptRecord, EventRecord, Lease, LogEntry, NewRun, NewSignal, OutboxRow, Result,
    RunListItem, RunRecord, ScheduleRecord, SignalRecord, SlotChange, SlotRow, Snapshot, StaleRun,
    StoreLimits, Timestamp, VoteRecord, WaitRecord, WriteAck, WriteOp,
};

/// How the PostgreSQL store connects and migrates.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Connections in the pool (the writer, leases and reads share them).
    pub pool_size: usize,
    /// How long to wait to connect, or for a free connection.
    pub connect_timeout: Duration,
    /// How long a batch whose connection failed before `COMMIT` is retried on new
    /// connections before it fails (a server keeps its runs only while its lease is
    /// valid, so the lease TTL is a good value).
    pub retry_for: Duration,
    /// Apply pending migrations on open (otherwise only check the schema version and
    /// refuse an out-of-date database: operators who run `weft db migrate` themselves).
    pub migrate: bool,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            pool_size: 8,
            connect_timeout: Duration::from_secs(5),
            retry_for: crate::DEFAULT_RECOVERY_TIMEOUT,
            migrate: true,
        }
    }
}

/// What the store's tasks share.
pub(crate) struct Shared {
    pub(crate) pool: Pool,
    pub(crate) limits: StoreLimits,
    pub(crate) retry_for: Duration,
}

/// The PostgreSQL store (see the module docs).
pub struct PgStore {
    shared: Arc<Shared>,
    /// Where (the URL without its password), for messages.
    target: String,
    runtime: Option<tokio::runtime::Runtime>,
    wakeup: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.target)
            .field("limits", &self.shared.limits)
            .finish_non_exhaustive()
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Dropping a runtime waits for its threads, which tokio forbids inside another
        // runtime (where the last `Arc` of a store may well be dropped).
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Whether `text` names a PostgreSQL database (`postgres://` or `postgresql://`).
pub fn is_postgres_url(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user@host:port/db`, libpq's URL
    /// syntax; `?options=-c%20search_path%3Dweft` picks a schema), applies pending
    /// migrations (or checks them, see [`PgOptions::migrate`]) and starts listening for
    /// wake-ups. [`StoreError::Open`] says why it could not.
    pub fn open(url: &str, limits: StoreLimits, options: PgOptions) -> Result<Self> {
        let target = redact(url);
        let open_err = |detail: String| StoreError::Open {
            path: target.clone().into(),
            detail,
        };
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|e| open_err(format!("not a PostgreSQL URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        // A peer that vanished without closing (a partition) is noticed within seconds.
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(5));
        if config.get_application_name().is_none() {
            config.application_name("weft");
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("weft-pg")
            .enable_all()
            .build()
            .map_err(|e| open_err(format!("cannot start its runtime: {e}")))?;
        match Self::start(&runtime, config, limits, &options, &open_err) {
            Ok((shared, wakeup)) => Ok(PgStore {
                shared,
                target,
                runtime: Some(runtime),
                wakeup,
            }),
            Err(err) => {
                // Not dropped: the caller may be inside another runtime.
                runtime.shutdown_background();
                Err(err)
            }
        }
    }

    /// The pool, the schema and the listener, on `runtime`.
    fn start(
        runtime: &tokio::runtime::Runtime,
        config: tokio_postgres::Config,
        limits: StoreLimits,
        options: &PgOptions,
        open_err: &dyn Fn(String) -> StoreError,
    ) -> Result<(Arc<Shared>, Arc<tokio::sync::Notify>)> {
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(2))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.connect_timeout))
            .create_timeout(Some(options.connect_timeout))
            .recycle_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|e| open_err(format!("cannot make its connection pool: {e}")))?;
        let migrated = {
            let config = config.clone();
            let apply = options.migrate;
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            runtime.spawn(async move {
                let _ = tx.send(migrate_with(&config, apply).await);
            });
            rx.recv()
                .map_err(|_| open_err("its runtime stopped".into()))?
                .map_err(open_err)?
        };
        tracing::debug!(from = migrated.from, to = migrated.to, "PostgreSQL schema");
        let wakeup = Arc::new(tokio::sync::Notify::new());
        runtime.spawn(listen::run(config, wakeup.clone()));
        Ok((
            Arc::new(Shared {
                pool,
                limits,
                retry_for: options.retry_for,
            }),
            wakeup,
        ))
    }

    /// Applies pending migrations to the database at `url` (`weft db migrate`): the
    /// schema version before and after.
    pub fn migrate(url: &str, connect_timeout: Duration) -> Result<(usize, usize)> {
        let target = redact(url);
        let open_err = |detail: String| StoreError::Open {
            path: target.clone().into(),
            detail,
        };
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|e| open_err(format!("not a PostgreSQL URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(connect_timeout);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| open_err(format!("cannot start its runtime: {e}")))?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let _ = tx.send(migrate_with(&config, true).await);
        });
        let migrated = rx.recv();
        // Not dropped: the caller may be inside another runtime.
        runtime.shutdown_background();
        let migrated = migrated
            .map_err(|_| open_err("its runtime stopped".into()))?
            .map_err(open_err)?;
        Ok((migrated.from, migrated.to))
    }

    /// The database, without its password.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The limits it enforces.
    pub fn limits(&self) -> StoreLimits {
        self.shared.limits
    }

    /// The schema version stored in the database.
    pub fn schema_version(&self) -> Result<usize> {
        self.block(|shared| async move {
            let client = shared.pool.get().await.map_err(pool_err)?;
            migrate::pg_version(&client)
                .await
                .map_err(StoreError::Backend)
        })
    }

    /// Runs `f` on the store's runtime and waits for it. Callers may be anywhere: a plain
    /// thread, or a task of another runtime (the wait is a channel, not a `block_on`).
    fn block<T, F, Fut>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Shared>) -> Fut,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        let Some(runtime) = &self.runtime else {
            return Err(StoreError::Closed);
        };
        let future = f(self.shared.clone());
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let _ = tx.send(future.await);
        });
        rx.recv().map_err(|_| StoreError::Closed)?
    }
}

async fn migrate_with(
    config: &tokio_postgres::Config,
    apply: bool,
) -> std::result::Result<Migrated, String> {
    let (mut client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| format!("cannot connect: {}", describe(&e)))?;
    let driver = tokio::spawn(connection);
    let result = migrate::postgres(&mut client, apply).await;
    drop(client);
    let _ = driver.await;
    result
}

/// A URL without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// A client error as text: the server's message and SQLSTATE when there is one.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

pub(crate) fn pg_err(e: tokio_postgres::Error) -> StoreError {
    StoreError::Backend(describe(&e))
}

pub(crate) fn pool_err(e: deadpool_postgres::PoolError) -> StoreError {
    StoreError::Backend(format!("no database connection: {e}"))
}

/// Whether a failed transaction may simply run again: the connection broke, or the
/// database picked it as a deadlock or serialization victim.
pub(crate) fn retryable(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        Some(code) => {
            *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW
        }
        None => true,
    }
}

/// Runs `attempt` until it succeeds, fails for good, or `retry_for` has passed since the
/// first try; backs off a little between tries.
pub(crate) async fn with_retry<T, Fut>(
    retry_for: Duration,
    mut attempt: impl FnMut() -> Fut,
) -> Result<T>
where
    Fut: Future<Output = std::result::Result<T, Failure>>,
{
    let started = Instant::now();
    let mut pause = Duration::from_millis(20);
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(Failure::Retry(err)) if started.elapsed() < retry_for => {
                tracing::warn!(error = %err, "database unavailable; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            Err(Failure::Retry(err) | Failure::Final(err)) => return Err(err),
        }
    }
}

/// How one try of a transaction failed.
pub(crate) enum Failure {
    /// It may run again (nothing was committed).
    Retry(StoreError),
    /// It must not.
    Final(StoreError),
}

impl Failure {
    /// A client error before `COMMIT` was sent.
    pub(crate) fn before_commit(e: tokio_postgres::Error) -> Failure {
        if retryable(&e) {
            Failure::Retry(pg_err(e))
        } else {
            Failure::Final(pg_err(e))
        }
    }
}

impl From<deadpool_postgres::PoolError> for Failure {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Failure::Retry(pool_err(e))
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Final(e)
    }
}

impl RunStore for PgStore {
    fn create_run(&self, run: &NewRun, owner: &str, now: Timestamp) -> Result<Lease> {
        let (run, owner) = (run.clone(), owner.to_string());
        self.block(|s| async move { lease::create_run(&s, &run, &owner, now).await })
    }

    fn claim(
        &self,
        run: &str,
        owner: &str,
        now: Timestamp,
        stale_after: Duration,
    ) -> Result<Lease> {
        let (run, owner) = (run.to_string(), owner.to_string());
        self.block(|s| async move { lease::claim(&s, &run, &owner, now, stale_after).await })
    }

    fn heartbeat(&self, lease: &Lease, now: Timestamp) -> Result<()> {
        let lease = lease.clone();
        self.block(|s| async move { lease::heartbeat(&s, &lease, now, false).await })
    }

    fn release(&self, lease: &Lease) -> Result<()> {
        let lease = lease.clone();
        self.block(|s| async move { lease::heartbeat(&s, &lease, Timestamp(0), true).await })
    }

    fn stale_runs(&self, now: Timestamp, older_than: Duration) -> Result<Vec<StaleRun>> {
        self.block(|s| async move { lease::stale_runs(&s, now, older_than).await })
    }

    fn claim_stale(
        &self,
        owner: &str,
        now: Timestamp,
        stale_after: Duration,
        limit: usize,
    ) -> Result<Vec<Lease>> {
        let owner = owner.to_string();
        self.block(|s| async move { lease::claim_stale(&s, &owner, now, stale_after, limit).await })
    }

    fn send_signal(&self, signal: &NewSignal) -> Result<u64> {
        let signal = signal.clone();
        self.block(|s| async move { lease::send_signal(&s, &signal).await })
    }

    fn pending_signals(&self, owner: &str, limit: usize) -> Result<Vec<SignalRecord>> {
        let owner = owner.to_string();
        self.block(|s| async move { read::pending_signals(&s, &owner, limit).await })
    }

    fn wakeup(&self) -> Option<Arc<tokio::sync::Notify>> {
        Some(self.wakeup.clone())
    }

    fn apply(&self, ops: Vec<WriteOp>) -> Result<Vec<Result<WriteAck>>> {
        self.block(|s| async move { write::apply(&s, ops).await })
    }

    fn run(&self, id: &str) -> Result<Option<RunRecord>> {
        let id = id.to_string();
        self.block(|s| async move { read::run(&s, &id).await })
    }

    fn list_runs_of(&self, tenant: Option<&str>, limit: usize) -> Result<Vec<RunListItem>> {
        let prefix = tenant.map(crate::tenants::stored_prefix);
        self.block(move |s| async move { read::list_runs(&s, prefix, limit).await })
    }

    fn attempts(&self, run: &str) -> Result<Vec<AttemptRecord>> {
        let run = run.to_string();
        self.block(|s| async move { read::attempts(&s, &run).await })
    }

    fn attempt(&self, id: &AttemptId) -> Result<Option<AttemptRecord>> {
        let id = id.clone();
        self.block(|s| async move { read::attempt(&s, &id).await })
    }

    fn events(&self, run: &str, after_seq: u64, limit: usize) -> Result<Vec<EventRecord>> {
        let run = run.to_string();
        self.block(|s| async move { read::events(&s, &run, after_seq, limit).await })
    }

    fn logs(
        &self,
        run: &str,
        task: Option<&str>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>> {
        let (run, task) = (run.to_string(), task.map(str::to_string));
        self.block(|s| async move { read::logs(&s, &run, task.as_deref(), after, limit).await })
    }

    fn checkpoint(&self, run: &str, task: &str, key: &str) -> Result<Option<Vec<u8>>> {
        let (run, task, key) = (run.to_string(), task.to_string(), key.to_string());
        self.block(|s| async move { read::checkpoint(&s, &run, &task, &key).await })
    }

    fn outbox(&self, run: &str) -> Result<Vec<OutboxRow>> {
        let run = run.to_string();
        self.block(|s| async move { read::outbox(&s, &run).await })
    }

    fn due_outbox(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxRow>> {
        self.block(|s| async move { read::due_outbox(&s, now, limit).await })
    }

    fn snapshots(&self, run: &str) -> Result<Vec<Snapshot>> {
        let run = run.to_string();
        self.block(|s| async move { read::snapshots(&s, &run).await })
    }

    fn latest_snapshot(&self, run: &str, workspace: &str) -> Result<Option<Snapshot>> {
        let (run, workspace) = (run.to_string(), workspace.to_string());
        self.block(|s| async move { read::latest_snapshot(&s, &run, &workspace).await })
    }

    fn waits(&self, run: &str) -> Result<Vec<WaitRecord>> {
        let run = run.to_string();
        self.block(|s| async move { waits::waits(&s, &run).await })
    }

    fn wait(&self, id: &AttemptId) -> Result<Option<WaitRecord>> {
        let id = id.clone();
        self.block(|s| async move { waits::wait(&s, &id).await })
    }

    fn cast_vote(&self, vote: &VoteRecord) -> Result<()> {
        let vote = vote.clone();
        self.block(|s| async move { waits::cast_vote(&s, &vote).await })
    }

    fn votes(&self, run: &str) -> Result<Vec<VoteRecord>> {
        let run = run.to_string();
        self.block(|s| async move { waits::votes(&s, &run).await })
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
        let (run, cutoff) = (run.to_string(), groups::cutoff_of(now, stale_after));
        self.block(|s| async move { groups::groups_of(&s, &run, cutoff).await })
    }

    fn leave_groups(&self, run: &str) -> Result<()> {
        let run = run.to_string();
        self.block(|s| async move { groups::leave_groups(&s, &run).await })
    }

    fn add_schedule(&self, schedule: &ScheduleRecord) -> Result<()> {
        let schedule = schedule.clone();
        self.block(|s| async move { groups::add_schedule(&s, &schedule).await })
    }

    fn schedules(&self) -> Result<Vec<ScheduleRecord>> {
        self.block(|s| async move { groups::schedules(&s).await })
    }

    fn remove_schedule(&self, name: &str) -> Result<bool> {
        let name = name.to_string();
        self.block(|s| async move { groups::remove_schedule(&s, &name).await })
    }

    fn claim_tick(&self, name: &str, tick: Timestamp, next: Option<Timestamp>) -> Result<bool> {
        let name = name.to_string();
        self.block(
            |s| async move { groups::claim_tick(&s, &name, tick.0, next.map(|t| t.0)).await },
        )
    }

    fn tick_fired(&self, name: &str, tick: Timestamp) -> Result<()> {
        let name = name.to_string();
        self.block(|s| async move { groups::tick_fired(&s, &name, tick.0).await })
    }

    fn runs_named(&self, name: &str) -> Result<Vec<String>> {
        let name = name.to_string();
        self.block(|s| async move { groups::runs_named(&s, &name).await })
    }
}

/// Conversions between stored integers and the store's types, with typed errors.
pub(crate) mod conv {
    use crate::error::StoreError;
    use crate::types::Result;

    pub(crate) fn bad(table: &'static str, detail: String) -> StoreError {
        StoreError::BadRow { table, detail }
    }

    pub(crate) fn parse<T>(
        table: &'static str,
        column: &str,
        value: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T> {
        parse(value).ok_or_else(|| bad(table, format!("`{column}` has unknown value `{value}`")))
    }

    pub(crate) fn to_u64(table: &'static str, column: &str, v: i64) -> Result<u64> {
        u64::try_from(v).map_err(|_| bad(table, format!("`{column}` is negative ({v})")))
    }

    pub(crate) fn to_u32(table: &'static str, column: &str, v: i64) -> Result<u32> {
        u32::try_from(v).map_err(|_| bad(table, format!("`{column}` is out of range ({v})")))
    }

    pub(crate) fn to_i64(v: u64) -> i64 {
        i64::try_from(v).unwrap_or(i64::MAX)
    }

    pub(crate) fn limit(limit: usize) -> i64 {
        i64::try_from(limit).unwrap_or(i64::MAX)
    }
}
