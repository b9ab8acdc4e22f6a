//! The [`RunStore`] trait: what the engine and the CLI need from persistence.

use std::sync::Arc;
use std::time::Duration;

use crate::error::StoreError;
use crate::types::{
    AttemptId, AttemptRecord, EventRecord, Lease, LogEntry, NewRun, NewSignal, OutboxRow, Result,
    RunListItem, RunRecord, ScheduleRecord, SignalRecord, SlotChange, SlotRow, Snapshot, StaleRun,
    Timestamp, VoteRecord, WaitRecord, WriteAck, WriteOp,
};

/// Persistence of runs. Object-safe, `Send + Sync`, synchronous: the engine calls it from a
/// dedicated writer thread ([`crate::BatchingStore`]) or `spawn_blocking`.
///
/// Writes are [`WriteOp`]s. Each carries the writer's [`Lease`], checked in the same
/// transaction as the write, so a stale owner's write is rejected with
/// [`StoreError::StaleLease`]. A backend implements [`RunStore::apply`] (a batch in one
/// transaction); [`RunStore::write`], [`RunStore::enqueue`] and [`RunStore::flush`] have
/// defaults that a batching wrapper overrides.
///
/// Rejections (see [`StoreError::is_rejection`]) leave the store unchanged and do not affect
/// the other writes of a batch; a database failure fails the whole batch.
pub trait RunStore: crate::tenants::TenantStore + Send + Sync {
    /// Stores a new run and gives `owner` its first lease (token 1, heartbeat `now`).
    /// [`StoreError::AlreadyExists`] if the id is taken. Durable on return.
    fn create_run(&self, run: &NewRun, owner: &str, now: Timestamp) -> Result<Lease>;

    /// Takes the lease of a run: allowed when nobody holds it, `owner` already holds it, or
    /// the holder's heartbeat is older than `stale_after`; otherwise
    /// [`StoreError::LeaseHeld`]. The token increases, so every write with an older lease
    /// is rejected from now on. Durable on return.
    fn claim(&self, run: &str, owner: &str, now: Timestamp, stale_after: Duration)
    -> Result<Lease>;

    /// Renews a lease (sets the heartbeat to `now`). [`StoreError::StaleLease`] if the
    /// lease is no longer current. Durable on return.
    fn heartbeat(&self, lease: &Lease, now: Timestamp) -> Result<()>;

    /// Gives a lease up (graceful shutdown): the run counts as abandoned at once, so the
    /// next engine recovers it without waiting for the recovery timeout. The holder keeps
    /// its token until someone claims the run.
    fn release(&self, lease: &Lease) -> Result<()> {
        self.heartbeat(lease, Timestamp(0))
    }

    /// Unfinished runs whose heartbeat is older than `now - older_than` (or missing), oldest
    /// first: the runs to recover on start-up.
    fn stale_runs(&self, now: Timestamp, older_than: Duration) -> Result<Vec<StaleRun>>;

    /// Claims up to `limit` of the [`RunStore::stale_runs`] for `owner`, oldest heartbeat
    /// first, as [`RunStore::claim`] would one by one: each gets a new token and a fresh
    /// heartbeat. Runs another caller claims at the same time are skipped, never claimed
    /// twice, so each abandoned run is recovered by exactly one engine. Durable on return.
    fn claim_stale(
        &self,
        owner: &str,
        now: Timestamp,
        stale_after: Duration,
        limit: usize,
    ) -> Result<Vec<Lease>> {
        let mut claimed = Vec::new();
        for run in self.stale_runs(now, stale_after)?.into_iter().take(limit) {
            match self.claim(&run.id, owner, now, stale_after) {
                Ok(lease) => claimed.push(lease),
                Err(StoreError::LeaseHeld { .. } | StoreError::NotFound { .. }) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(claimed)
    }

    /// Sends a signal to whichever engine owns the run; its id. [`StoreError::NotFound`]
    /// for an unknown run, [`StoreError::RunFinished`] for a finished one. Durable on
    /// return.
    fn send_signal(&self, signal: &NewSignal) -> Result<u64>;

    /// Signals not yet handled of the unfinished runs `owner` holds, oldest first, at most
    /// `limit`. The owner acts on each and marks it [`WriteOp::SignalHandled`].
    fn pending_signals(&self, owner: &str, limit: usize) -> Result<Vec<SignalRecord>>;

    /// Woken when another process may have changed something this one waits for (a signal
    /// sent, a lease released), where the backend can tell (PostgreSQL `LISTEN`). Only an
    /// early wake-up: callers poll anyway, so nothing depends on it.
    fn wakeup(&self) -> Option<Arc<tokio::sync::Notify>> {
        None
    }

    /// Applies `ops` in order in one transaction. The outer error is a database failure
    /// (nothing was applied); otherwise one result per op, `Err` for a rejected op.
    fn apply(&self, ops: Vec<WriteOp>) -> Result<Vec<Result<WriteAck>>>;

    /// Applies one op and waits until it is durable.
    fn write(&self, op: WriteOp) -> Result<WriteAck> {
        self.apply(vec![op])?
            .pop()
            .unwrap_or_else(|| Err(StoreError::Backend("a write returned no result".into())))
    }

    /// Hands one op to the store. Unbatched stores apply it at once (its rejection is
    /// returned here); a batching store queues it, and its failure or rejection is reported
    /// by the next [`RunStore::flush`] (and logged).
    fn enqueue(&self, op: WriteOp) -> Result<()> {
        self.write(op).map(drop)
    }

    /// Barrier: returns once everything enqueued before is durable. Errors with
    /// [`StoreError::Rejected`] listing the enqueued writes that failed since the last
    /// flush. Call it before acting on a state change (e.g. before starting a task).
    fn flush(&self) -> Result<()> {
        Ok(())
    }

    /// Called once nothing more will be written (the process is about to end, perhaps
    /// without dropping the store): puts what only this process holds in order. SQLite
    /// stops its checkpointer and copies a grown WAL back into the database, since a
    /// store that is never dropped never checkpoints on close.
    fn settle_before_exit(&self) -> Result<()> {
        Ok(())
    }

    /// One run.
    fn run(&self, id: &str) -> Result<Option<RunRecord>>;

    /// The most recent runs, newest first.
    fn list_runs(&self, limit: usize) -> Result<Vec<RunListItem>> {
        self.list_runs_of(None, limit)
    }

    /// The most recent runs of `tenant` (of all: `None`), newest first.
    fn list_runs_of(&self, tenant: Option<&str>, limit: usize) -> Result<Vec<RunListItem>>;

    /// Every attempt of a run, by task then attempt.
    fn attempts(&self, run: &str) -> Result<Vec<AttemptRecord>>;

    /// One attempt.
    fn attempt(&self, id: &AttemptId) -> Result<Option<AttemptRecord>>;

    /// Events of a run with a sequence number above `after_seq`, in order, at most `limit`.
    fn events(&self, run: &str, after_seq: u64, limit: usize) -> Result<Vec<EventRecord>>;

    /// Log lines of a run (of one task if given) with a cursor above `after`, in order, at
    /// most `limit`. Poll with the last cursor seen to follow a live run.
    fn logs(
        &self,
        run: &str,
        task: Option<&str>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>>;

    /// A checkpoint value.
    fn checkpoint(&self, run: &str, task: &str, key: &str) -> Result<Option<Vec<u8>>>;

    /// The outbox rows of a run.
    fn outbox(&self, run: &str) -> Result<Vec<OutboxRow>>;

    /// Outbox rows whose desired state is not yet delivered and whose next attempt is due,
    /// earliest first. Rows with a terminal delivered state are never due.
    fn due_outbox(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxRow>>;

    /// The snapshots of a run, oldest first, without their data.
    fn snapshots(&self, run: &str) -> Result<Vec<Snapshot>>;

    /// The newest snapshot of a run's workspace, with its data.
    fn latest_snapshot(&self, run: &str, workspace: &str) -> Result<Option<Snapshot>>;

    /// The waits of a run (every attempt that waited), by task then attempt.
    fn waits(&self, run: &str) -> Result<Vec<WaitRecord>>;

    /// One attempt's wait.
    fn wait(&self, id: &AttemptId) -> Result<Option<WaitRecord>>;

    /// Casts a decision on an open wait, durable on return. Not under a lease: anyone the
    /// engine allowed may decide. [`StoreError::NotFound`] when the attempt has no open
    /// wait; [`StoreError::AlreadyExists`] when the identity already decided (one decision
    /// per identity, journaled once).
    fn cast_vote(&self, vote: &VoteRecord) -> Result<()>;

    /// Every decision cast on a run's waits, in the order they were cast.
    fn votes(&self, run: &str) -> Result<Vec<VoteRecord>>;
    /// Runs `decide` on the rows of concurrency group `group` inside one transaction that
    /// no other engine sharing the store can interleave with, applies the changes it
    /// returns, and gives the rows as they are then. A row is `alive` when its run is
    /// unfinished and was heartbeaten within `stale_after` of `now`.
    fn in_group(
        &self,
        group: &str,
        now: Timestamp,
        stale_after: Duration,
        decide: &mut dyn FnMut(&[SlotRow]) -> Vec<SlotChange>,
    ) -> Result<Vec<SlotRow>>;

    /// Every row of every group `run` (or one of its tasks) is in, with the others of
    /// those groups, for views ("queued: deploy group, 2 ahead").
    fn groups_of(&self, run: &str, now: Timestamp, stale_after: Duration) -> Result<Vec<SlotRow>>;

    /// `run` (and its tasks) leave every group: its slots free at once.
    fn leave_groups(&self, run: &str) -> Result<()>;

    /// Adds a cron schedule; [`StoreError::AlreadyExists`] when the name is taken.
    fn add_schedule(&self, schedule: &ScheduleRecord) -> Result<()>;

    /// Every schedule, by name.
    fn schedules(&self) -> Result<Vec<ScheduleRecord>>;

    /// Removes a schedule; whether there was one.
    fn remove_schedule(&self, name: &str) -> Result<bool>;

    /// Claims the tick `tick` of schedule `name` for this engine: only if it is still the
    /// schedule's next tick and no tick is being fired; the next becomes `next` and `tick`
    /// is marked firing. Whether this caller won (exactly one caller wins a tick).
    fn claim_tick(&self, name: &str, tick: Timestamp, next: Option<Timestamp>) -> Result<bool>;

    /// The run of tick `tick` of schedule `name` exists: the tick is fired.
    fn tick_fired(&self, name: &str, tick: Timestamp) -> Result<()>;

    /// The ids of the runs named `name` (its attempts), oldest first.
    fn runs_named(&self, name: &str) -> Result<Vec<String>>;
}
