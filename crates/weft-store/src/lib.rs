//! Persistence for weft runs, behind the [`RunStore`] trait so the embedded SQLite store
//! ([`SqliteStore`], the default) and the shared PostgreSQL one ([`PgStore`], several
//! `weft serve` processes on one database) serve the same engine with the same semantics
//! (one table of test cases runs against both).
//!
//! # What is stored (`src/migrations/{sqlite,postgres}/V*.sql`)
//!
//! | table | key | holds |
//! |---|---|---|
//! | `runs` | `id` | the pipeline as submitted, params and options (secrets redacted by the caller), recovery strategy, phase, final status, reason and report, lease (`lease_owner`, `lease_token`, `heartbeat_at`) |
//! | `attempts` | `(run, task, attempt)` | phase, outcome, reason, exit code, results, message, started/ended/updated times: the deterministic id `run/task/attempt` |
//! | `events` | `(run, seq)` | the run's event stream, `seq` from 1 without gaps |
//! | `logs` | `id` (the polling cursor) | log lines per (run, task, attempt) |
//! | `log_usage` | `(run, task)` | bytes kept and whether the per-task cap was hit |
//! | `checkpoints` | `(run, task, key)` | checkpoint values |
//! | `outbox` | `(reporter, run, context)` | desired state and description, delivered state, delivery attempts, next attempt, last error |
//! | `snapshots` | `id` | workspace archives per (run, task, workspace) |
//! | `signals` | `id` | messages for a run's owner (cancel; later approvals, reruns, ticks), handled under its lease |
//! | `tenants`, `members`, `tokens` | name; `(tenant, identity)`; token id | tenants and their settings, each identity's role and groups per tenant, API tokens as hashes with expiry and revocation ([`TenantStore`]) |
//! | `audit` | `seq` | the append-only audit log (triggers refuse changes) |
//!
//! Times are milliseconds since the Unix epoch ([`Timestamp`]); deadlines after a restart
//! are computed from them. Both backends are migrated by refinery ([`migrate`]): the same
//! versions, one SQL file per backend; opening an up-to-date database changes nothing.
//!
//! # Invariants the store enforces (not just the engine)
//!
//! - **Terminal attempts are immutable.** An update of a terminal attempt is rejected with
//!   [`StoreError::TerminalAttempt`] (and logged); a retry is a new attempt. A SQL trigger
//!   backs this up. A finished run's status and report are immutable likewise
//!   ([`StoreError::RunFinished`]).
//! - **Fencing.** Every [`WriteOp`] carries the writer's [`Lease`]; it is checked in the
//!   same transaction as the write. [`RunStore::claim`] increases the run's token, so a
//!   write from a previous owner fails with [`StoreError::StaleLease`].
//! - **Bounded logs.** Per (run, task), at most [`StoreLimits::log_bytes_per_task`] bytes
//!   of text are kept; the first line over the cap is replaced by one "log truncated"
//!   marker (stream [`TRUNCATED_STREAM`]) and the rest is dropped.
//! - **The outbox never regresses:** desired and delivered states only move
//!   pending -> running -> terminal, and a terminal state is final ([`ReportStatus`]).
//! - **Snapshots** above [`StoreLimits::snapshot_max_bytes`] are refused; only the last
//!   `keep` of a run's workspace (at most [`StoreLimits::snapshots_per_run`]) are kept.
//! - **Corruption is an error, never a panic or a silent reset.** Opening checks the file
//!   header (and that the file is as long as it says) and reads the schema, a fixed cost
//!   however many runs the file keeps; a bad file is [`StoreError::Corrupt`] naming it, and
//!   so is damage met by a later read. [`SqliteStore::check`] (`weft db check`) reads
//!   every page.
//!   A row that does not decode is [`StoreError::BadRow`].
//! - A rejected write changes nothing and does not affect the other writes of its batch; a
//!   database failure fails the whole batch, so nothing claims success.
//!
//! # Leases across servers
//!
//! [`RunStore::claim_stale`] hands abandoned runs (heartbeat older than the lease TTL, or
//! released) to one claimer each: on PostgreSQL in batches with `FOR UPDATE SKIP LOCKED`.
//! Signals ([`RunStore::send_signal`]) reach whichever engine owns a run through the
//! database; [`RunStore::wakeup`] (PostgreSQL `LISTEN`) only wakes pollers early.
//!
//! # Group commit
//!
//! [`BatchingStore`] wraps any store: [`RunStore::enqueue`] queues a write for a single
//! writer thread that commits many per transaction; [`RunStore::flush`] is the barrier the
//! engine calls before acting on a state change (e.g. before starting a task). SQLite runs
//! in WAL mode with `synchronous=NORMAL`: a commit survives a process crash; a power loss
//! may lose the last commits but never corrupts the file.

mod batch;
mod coalesce;
mod error;
mod inbox;
pub mod migrate;
mod postgres;
mod sqlite;
mod store;
pub mod tenants;
mod types;
mod vocab;

pub use batch::{BatchConfig, BatchStats, BatchingStore, StoreOp, StoreTimings};
pub use error::StoreError;
pub use migrate::SCHEMA_VERSION;
pub use postgres::{PgOptions, PgStore, is_postgres_url};
pub use sqlite::{BUSY_TIMEOUT, SqliteStore};
pub use store::RunStore;
pub use tenants::{
    AuditRecord, DEFAULT_TENANT, MemberRecord, NewAudit, Role, SecretRecord, TenantPluginRecord,
    TenantRecord, TenantStore, TokenRecord,
};
pub use types::{
    AttemptId, AttemptRecord, EventRecord, Lease, LogEntry, NewEvent, NewLogLine, NewRun,
    NewSignal, OutboxKey, OutboxRow, Recovery, ReportStatus, Result, RunListItem, RunRecord,
    ScheduleRecord, SignalRecord, SlotChange, SlotRow, Snapshot, StaleRun, StoreLimits,
    TRUNCATED_STREAM, Timestamp, VoteRecord, WaitRecord, WriteAck, WriteOp,
};
pub use vocab::{Outcome, RunPhase, TaskPhase};

/// The default recovery timeout: runs whose heartbeat is older are recovered on start-up.
pub const DEFAULT_RECOVERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
