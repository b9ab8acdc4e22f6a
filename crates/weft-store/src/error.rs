//! The store's typed errors.

use std::path::PathBuf;

use crate::types::AttemptId;

/// Everything that can go wrong in the store. Rejections (`TerminalAttempt`, `StaleLease`,
/// `RunFinished`, `NotFound`, `AlreadyExists`, `TooLarge`) leave the store unchanged; the
/// others are failures of the database itself.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file is not a SQLite database, is truncated, or fails its integrity
    /// check. Nothing was read from it.
    #[error("the run database {} is corrupt or not a weft database: {detail}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        detail: String,
    },
    /// The database could not be opened or migrated.
    #[error("cannot open the run database {}: {detail}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// A stored row does not decode (a value outside its vocabulary, a negative count...).
    #[error("corrupt row in `{table}`: {detail}")]
    BadRow {
        /// Table.
        table: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// An update to an attempt that is already terminal. Terminal attempts never change; a
    /// retry is a new attempt.
    #[error("attempt {id} is terminal ({outcome}); the update was rejected")]
    TerminalAttempt {
        /// The attempt.
        id: AttemptId,
        /// Its stored outcome.
        outcome: String,
    },
    /// A write whose lease is not the run's current one (another engine claimed the run).
    #[error(
        "stale lease on run {run}: {owner} holds token {token}, the run is held by {current_owner} with token {current_token}"
    )]
    StaleLease {
        /// Run.
        run: String,
        /// The writer.
        owner: String,
        /// The writer's token.
        token: u64,
        /// The current holder (empty if none).
        current_owner: String,
        /// The current token.
        current_token: u64,
    },
    /// The lease is held by someone else whose heartbeat is still fresh.
    #[error("run {run} is owned by {owner} (heartbeat {age_ms} ms ago)")]
    LeaseHeld {
        /// Run.
        run: String,
        /// Holder.
        owner: String,
        /// Age of its last heartbeat.
        age_ms: i64,
    },
    /// A change to a run that already finished.
    #[error("run {run} is finished; {what} was rejected")]
    RunFinished {
        /// Run.
        run: String,
        /// What was attempted.
        what: String,
    },
    /// Something that must exist does not.
    #[error("{what} not found")]
    NotFound {
        /// What.
        what: String,
    },
    /// Something that must be new already exists.
    #[error("{what} already exists")]
    AlreadyExists {
        /// What.
        what: String,
    },
    /// A value above a store limit.
    #[error("{what} is {size} bytes; the limit is {limit}")]
    TooLarge {
        /// What.
        what: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A write that makes no sense (e.g. phase `Finished` without a report).
    #[error("invalid write: {detail}")]
    Invalid {
        /// What is wrong.
        detail: String,
    },
    /// Writes queued for group commit were rejected (each error is one write). Returned by
    /// `flush`; the writes that were not rejected are durable.
    #[error("{} queued write(s) rejected; first: {}", errors.len(), first_of(errors))]
    Rejected {
        /// The rejections, in order.
        errors: Vec<StoreError>,
    },
    /// The writer thread is gone (the store was closed or a batch panicked).
    #[error("the store's writer has stopped")]
    Closed,
    /// Any other database error.
    #[error("database error: {0}")]
    Backend(String),
}

fn first_of(errors: &[StoreError]) -> String {
    errors.first().map_or_else(String::new, ToString::to_string)
}

impl StoreError {
    /// A rejection of one write (the store is fine and unchanged), as opposed to a failure
    /// of the database.
    pub fn is_rejection(&self) -> bool {
        match self {
            StoreError::TerminalAttempt { .. }
            | StoreError::StaleLease { .. }
            | StoreError::LeaseHeld { .. }
            | StoreError::RunFinished { .. }
            | StoreError::NotFound { .. }
            | StoreError::AlreadyExists { .. }
            | StoreError::TooLarge { .. }
            | StoreError::Invalid { .. } => true,
            StoreError::Rejected { errors } => errors.iter().all(StoreError::is_rejection),
            _ => false,
        }
    }

    /// Whether this is (or contains) a stale-lease rejection: the engine no longer owns the
    /// run and must stop acting for it.
    pub fn is_stale_lease(&self) -> bool {
        match self {
            StoreError::StaleLease { .. } => true,
            StoreError::Rejected { errors } => errors.iter().any(StoreError::is_stale_lease),
            _ => false,
        }
    }

    /// Whether this is (or contains) a rejected update of a terminal attempt.
    pub fn is_terminal_attempt(&self) -> bool {
        match self {
            StoreError::TerminalAttempt { .. } => true,
            StoreError::Rejected { errors } => errors.iter().any(StoreError::is_terminal_attempt),
            _ => false,
        }
    }
}
