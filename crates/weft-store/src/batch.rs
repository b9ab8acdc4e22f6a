//! Group commit: a [`RunStore`] wrapper whose writes go to one writer thread that commits
//! many of them per transaction.
//!
//! - [`RunStore::enqueue`] only queues the op ([`crate::inbox`]: no wake-up per write) and returns; the writer takes
//!   the first queued op, keeps collecting until `max_batch` ops are queued, `max_delay`
//!   has passed since the first, or a barrier arrives, then applies them all with one
//!   [`RunStore::apply`] (one transaction, one WAL commit).
//! - [`RunStore::flush`] is a barrier: it returns once everything queued before it is
//!   committed, with the failures and rejections of queued writes since the last flush.
//! - [`RunStore::write`] queues the op with a reply slot and waits for its own result, so
//!   concurrent writers share commits.
//! - Before a batch is applied, an attempt's update that a later one in the batch
//!   overwrites is folded into it ([`crate::coalesce`]): one row write per attempt.
//! - Reads wait for the queue to drain first (read-your-writes), then go to the inner store.
//!   Leases (`create_run`, `claim`, `heartbeat`) go straight to the inner store: they must
//!   not wait behind queued work, and a queued write with a superseded lease is rejected
//!   when it is applied, which is the fencing we want.
//! - [`BatchingStore::set_timings`] has commits, reads, claims and heartbeats timed
//!   ([`StoreTimings`], e.g. `weft serve`'s metrics): one pair of `Instant::now()` per
//!   operation, none when nothing listens.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::StoreError;
use crate::inbox::{Inbox, Urgency};
use crate::store::RunStore;
use crate::types::{
    AttemptId, AttemptRecord, EventRecord, Lease, LogEntry, NewRun, NewSignal, OutboxRow, Result,
    RunListItem, RunRecord, ScheduleRecord, SignalRecord, SlotChange, SlotRow, Snapshot, StaleRun,
    Timestamp, VoteRecord, WaitRecord, WriteAck, WriteOp,
};

/// When the writer commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// Commit once this many ops are collected.
    pub max_batch: usize,
    /// Commit at most this long after the first op of a batch was taken.
    pub max_delay: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_batch: 1024,
            max_delay: Duration::from_millis(2),
        }
    }
}

/// Counters of the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatchStats {
    /// Transactions committed (or failed).
    pub batches: u64,
    /// Ops applied in them.
    pub ops: u64,
    /// Largest batch.
    pub largest: u64,
}

/// A store operation that is timed ([`StoreTimings`]): a fixed vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreOp {
    /// One transaction of journal writes (a batch of the writer, or [`RunStore::apply`]).
    Commit,
    /// A read, as its caller sees it: the wait for queued writes included.
    Read,
    /// Taking a run's lease ([`RunStore::claim`], [`RunStore::claim_stale`]).
    Claim,
    /// Renewing a lease ([`RunStore::heartbeat`]).
    Heartbeat,
}

impl StoreOp {
    /// Every operation, in order.
    pub const ALL: [StoreOp; 4] = [
        StoreOp::Commit,
        StoreOp::Read,
        StoreOp::Claim,
        StoreOp::Heartbeat,
    ];

    /// `commit`, `read`, `claim` or `heartbeat`.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreOp::Commit => "commit",
            StoreOp::Read => "read",
            StoreOp::Claim => "claim",
            StoreOp::Heartbeat => "heartbeat",
        }
    }
}

/// Told how long store operations took. Called on the writer thread after each commit and
/// on the caller's thread after each read, claim or heartbeat, so it must be quick and
/// must not call the store.
pub trait StoreTimings: Send + Sync {
    /// `op` took `elapsed` (whether it succeeded or failed).
    fn observe(&self, op: StoreOp, elapsed: Duration);
}

type Reply = SyncSender<Result<WriteAck>>;

// Nearly every message is an `Op`; boxing it would add an allocation per write.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Op(WriteOp, Option<Reply>),
    Barrier(SyncSender<Result<()>>),
}

impl Urgency for Msg {
    fn is_urgent(&self) -> bool {
        matches!(self, Msg::Barrier(_) | Msg::Op(_, Some(_)))
    }
}

#[derive(Default)]
struct Shared {
    /// Failures and rejections of queued ops nobody waited for, until the next flush.
    failures: Mutex<Vec<StoreError>>,
    batches: AtomicU64,
    ops: AtomicU64,
    largest: AtomicU64,
    /// Who is told how long operations take, once set.
    timings: OnceLock<Arc<dyn StoreTimings>>,
}

impl Shared {
    /// Runs `f`, telling the timings (if any) how long it took as `op`.
    fn timed<T>(&self, op: StoreOp, f: impl FnOnce() -> T) -> T {
        let Some(timings) = self.timings.get() else {
            return f();
        };
        let began = Instant::now();
        let out = f();
        timings.observe(op, began.elapsed());
        out
    }
}

/// A [`RunStore`] with group commit in front of another one. See the module docs.
pub struct BatchingStore {
    inner: Arc<dyn RunStore>,
    inbox: Arc<Inbox<Msg>>,
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for BatchingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchingStore")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl BatchingStore {
    /// Starts the writer thread in front of `inner`.
    pub fn new(inner: Arc<dyn RunStore>, config: BatchConfig) -> Result<Self> {
        let inbox = Arc::new(Inbox::new(config.max_batch));
        let shared = Arc::new(Shared::default());
        let writer = std::thread::Builder::new()
            .name("weft-store-writer".into())
            .spawn({
                let inner = inner.clone();
                let shared = shared.clone();
                let inbox = inbox.clone();
                move || writer_loop(&*inner, &inbox, config, &shared)
            })
            .map_err(|e| StoreError::Backend(format!("cannot start the store writer: {e}")))?;
        Ok(BatchingStore {
            inner,
            inbox,
            shared,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn RunStore> {
        &self.inner
    }

    /// Has commits, reads, claims and heartbeats timed by `timings` from now on. Only the
    /// first call counts (returns `false` after it).
    pub fn set_timings(&self, timings: Arc<dyn StoreTimings>) -> bool {
        self.shared.timings.set(timings).is_ok()
    }

    /// Runs `f` as a timed `op`.
    fn timed<T>(&self, op: StoreOp, f: impl FnOnce() -> T) -> T {
        self.shared.timed(op, f)
    }

    /// Writer counters so far.
    pub fn stats(&self) -> BatchStats {
        BatchStats {
            batches: self.shared.batches.load(Ordering::Relaxed),
            ops: self.shared.ops.load(Ordering::Relaxed),
            largest: self.shared.largest.load(Ordering::Relaxed),
        }
    }

    /// Commits what is queued, stops the writer and reports like [`RunStore::flush`].
    /// Later writes fail with [`StoreError::Closed`].
    pub fn close(&self) -> Result<()> {
        self.inbox.close();
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = writer
            && handle.join().is_err()
        {
            return Err(StoreError::Closed);
        }
        let failures = self.take_failures();
        self.inner.settle_before_exit()?;
        failures
    }

    fn send(&self, msg: Msg) -> Result<()> {
        self.inbox.send(msg).map_err(|_| StoreError::Closed)
    }

    /// Waits until everything queued so far is committed; the error is only that of the
    /// barrier's own batch (earlier failures stay for [`RunStore::flush`]).
    fn barrier(&self) -> Result<()> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(Msg::Barrier(tx))?;
        rx.recv().map_err(|_| StoreError::Closed)?
    }

    fn take_failures(&self) -> Result<()> {
        let errors = std::mem::take(
            &mut *self
                .shared
                .failures
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        if errors.is_empty() {
            Ok(())
        } else {
            Err(StoreError::Rejected { errors })
        }
    }
}

impl Drop for BatchingStore {
    fn drop(&mut self) {
        if let Err(err) = self.close() {
            tracing::error!("queued store writes failed at shutdown: {err}");
        }
    }
}

fn writer_loop(inner: &dyn RunStore, inbox: &Inbox<Msg>, config: BatchConfig, shared: &Shared) {
    while let Some(messages) = inbox.next_batch(config.max_delay) {
        let mut ops = Vec::with_capacity(messages.len());
        let mut replies: Vec<Option<Reply>> = Vec::with_capacity(messages.len());
        let mut barriers = Vec::new();
        for message in messages {
            match message {
                Msg::Op(op, reply) => {
                    ops.push(op);
                    replies.push(reply);
                }
                Msg::Barrier(reply) => barriers.push(reply),
            }
        }
        commit(inner, ops, replies, barriers, shared);
    }
}

fn commit(
    inner: &dyn RunStore,
    ops: Vec<WriteOp>,
    replies: Vec<Option<Reply>>,
    barriers: Vec<SyncSender<Result<()>>>,
    shared: &Shared,
) {
    let (ops, replies) = fold(ops, replies);
    let count = ops.len() as u64;
    let mut outcome = Ok(());
    if count > 0 {
        shared.batches.fetch_add(1, Ordering::Relaxed);
        shared.ops.fetch_add(count, Ordering::Relaxed);
        shared.largest.fetch_max(count, Ordering::Relaxed);
        match shared.timed(StoreOp::Commit, || inner.apply(ops)) {
            Ok(results) => {
                for (result, reply) in results.into_iter().zip(replies) {
                    match reply {
                        Some(reply) => {
                            let _ = reply.send(result);
                        }
                        None => {
                            if let Err(err) = result {
                                tracing::warn!("queued store write rejected: {err}");
                                push_failure(shared, err);
                            }
                        }
                    }
                }
            }
            Err(err) => {
                tracing::error!("a batch of {count} store writes failed: {err}");
                let text = err.to_string();
                let mut unreported = false;
                for reply in replies {
                    match reply {
                        Some(reply) => {
                            let _ = reply.send(Err(StoreError::Backend(text.clone())));
                        }
                        None => unreported = true,
                    }
                }
                if unreported {
                    push_failure(shared, err);
                }
                outcome = Err(text);
            }
        }
    }
    for barrier in barriers {
        let _ = barrier.send(outcome.clone().map_err(StoreError::Backend));
    }
}

/// The batch without the attempt updates a later one overwrites
/// ([`crate::coalesce`]); nobody waits for those.
fn fold(mut ops: Vec<WriteOp>, replies: Vec<Option<Reply>>) -> (Vec<WriteOp>, Vec<Option<Reply>>) {
    let keep = crate::coalesce::fold_attempt_updates(&mut ops, |i| replies[i].is_some());
    if keep.iter().all(|&k| k) {
        return (ops, replies);
    }
    ops.into_iter()
        .zip(replies)
        .zip(keep)
        .filter_map(|(pair, keep)| keep.then_some(pair))
        .unzip()
}

fn push_failure(shared: &Shared, err: StoreError) {
    shared
        .failures
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(err);
}

impl RunStore for BatchingStore {
    fn create_run(&self, run: &NewRun, owner: &str, now: Timestamp) -> Result<Lease> {
        self.inner.create_run(run, owner, now)
    }

    fn claim(
        &self,
        run: &str,
        owner: &str,
        now: Timestamp,
        stale_after: Duration,
    ) -> Result<Lease> {
        self.timed(StoreOp::Claim, || {
            self.inner.claim(run, owner, now, stale_after)
        })
    }

    fn heartbeat(&self, lease: &Lease, now: Timestamp) -> Result<()> {
        self.timed(StoreOp::Heartbeat, || self.inner.heartbeat(lease, now))
    }

    fn release(&self, lease: &Lease) -> Result<()> {
        self.inner.release(lease)
    }

    fn stale_runs(&self, now: Timestamp, older_than: Duration) -> Result<Vec<StaleRun>> {
        self.inner.stale_runs(now, older_than)
    }

    fn claim_stale(
        &self,
        owner: &str,
        now: Timestamp,
        stale_after: Duration,
        limit: usize,
    ) -> Result<Vec<Lease>> {
        self.timed(StoreOp::Claim, || {
            self.inner.claim_stale(owner, now, stale_after, limit)
        })
    }

    fn send_signal(&self, signal: &NewSignal) -> Result<u64> {
        self.inner.send_signal(signal)
    }

    /// After queued writes, so a signal marked handled is not seen again.
    fn pending_signals(&self, owner: &str, limit: usize) -> Result<Vec<SignalRecord>> {
        self.timed(StoreOp::Read, || {
            self.barrier()?;
            self.inner.pending_signals(owner, limit)
        })
    }

    fn wakeup(&self) -> Option<Arc<tokio::sync::Notify>> {
        self.inner.wakeup()
    }

    /// Applies `ops` in one transaction, after everything queued before.
    fn apply(&self, ops: Vec<WriteOp>) -> Result<Vec<Result<WriteAck>>> {
        self.barrier()?;
        self.timed(StoreOp::Commit, || self.inner.apply(ops))
    }

    fn write(&self, op: WriteOp) -> Result<WriteAck> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(Msg::Op(op, Some(tx)))?;
        rx.recv().map_err(|_| StoreError::Closed)?
    }

    fn enqueue(&self, op: WriteOp) -> Result<()> {
        self.send(Msg::Op(op, None))
    }

    fn flush(&self) -> Result<()> {
        let barrier = self.barrier();
        let failures = self.take_failures();
        barrier.and(failures)
    }

    fn run(&self, id: &str) -> Result<Option<RunRecord>> {
        self.timed(StoreOp::Read, || {
            self.barrier()?;
            self.inner.run(id)
        })
    }

    fn list_runs_of(&self, tenant: Option<&str>, limit: usize) -> Result<Vec<RunListItem>> {
        self.timed(StoreOp::Read, || {
            self.barrier()?;
            self.inner.list_runs_of(tenant, limit)
        })
    }

    fn attempts(&self, run: &str) -> Result<Vec<AttemptRecord>> {
        self.timed(StoreOp::Read, || {
            self.barrier()?;
            self.inner.attempts(run)
        })
    }

    fn attempt(&self, id: &AttemptId) -> Result<Option<AttemptRecord>> {
        self.timed(StoreOp::Read, || {
            self.barrier()?;
            self.inner.attempt(id)
        })
    }

    fn events(&self, run: &str, after_seq: u64, limit: usize) -> Result<Vec<EventRecord>> {
        self.timed(StoreOp::Read, || {
            self.barrier()?;
            self.inner.events(run, after_seq, limit)
        })
    }

    fn logs(
        &self,
        run: &str,
        task: Option<&str>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>> {
        self.timed(StoreOp::Read, || {
            self.barrier()?;
            self.inner.logs(run, task, after, limit)
        })
    }

    fn checkpoint(&self, run: &str, task: &str, key: &str) -> Result<Option<Vec<u8>>> {
        self.timed(StoreOp::Read, || {
            self.barrier()?;
            self.inner.checkpoint(run, task, key)
        })
    }

    fn outbox(&self, run: &str) -> Result<Vec<OutboxRow>> {
        self.timed(StoreOp::Read, || {
            self.barrier()?;
            self.inner.outbox(run)
        })
    }

    fn due_outbox(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxRow>> {
        self.timed(StoreOp::Read, || {
            self.barrier()?;
            self.inner.due_outbox(now, limit)
        })
    }

    fn snapshots(&self, run: &str) -> Result<Vec<Snapshot>> {
        self.timed(StoreOp::Read, || {
            self.barrier()?;
            self.inner.snapshots(run)
        })
    }

    fn latest_snapshot(&self, run: &str, workspace: &str) -> Result<Option<Snapshot>> {
        self.timed(StoreOp::Read, || {
            self.barrier()?;
            self.inner.latest_snapshot(run, workspace)
        })
    }

    fn waits(&self, run: &str) -> Result<Vec<WaitRecord>> {
        self.timed(StoreOp::Read, || {
            self.barrier()?;
            self.inner.waits(run)
        })
    }

    fn wait(&self, id: &AttemptId) -> Result<Option<WaitRecord>> {
        self.timed(StoreOp::Read, || {
            self.barrier()?;
            self.inner.wait(id)
        })
    }

    /// Straight to the inner store: a decision is durable on return and does not wait
    /// behind the owner's queued work (the wait it needs was flushed when it opened).
    fn cast_vote(&self, vote: &VoteRecord) -> Result<()> {
        self.inner.cast_vote(vote)
    }

    fn votes(&self, run: &str) -> Result<Vec<VoteRecord>> {
        self.timed(StoreOp::Read, || self.inner.votes(run))
    }

    fn in_group(
        &self,
        group: &str,
        now: Timestamp,
        stale_after: Duration,
        decide: &mut dyn FnMut(&[SlotRow]) -> Vec<SlotChange>,
    ) -> Result<Vec<SlotRow>> {
        self.inner.in_group(group, now, stale_after, decide)
    }

    fn groups_of(&self, run: &str, now: Timestamp, stale_after: Duration) -> Result<Vec<SlotRow>> {
        self.inner.groups_of(run, now, stale_after)
    }

    fn leave_groups(&self, run: &str) -> Result<()> {
        self.inner.leave_groups(run)
    }

    fn add_schedule(&self, schedule: &ScheduleRecord) -> Result<()> {
        self.inner.add_schedule(schedule)
    }

    fn schedules(&self) -> Result<Vec<ScheduleRecord>> {
        self.inner.schedules()
    }

    fn remove_schedule(&self, name: &str) -> Result<bool> {
        self.inner.remove_schedule(name)
    }

    fn claim_tick(&self, name: &str, tick: Timestamp, next: Option<Timestamp>) -> Result<bool> {
        self.inner.claim_tick(name, tick, next)
    }

    fn tick_fired(&self, name: &str, tick: Timestamp) -> Result<()> {
        self.inner.tick_fired(name, tick)
    }

    fn runs_named(&self, name: &str) -> Result<Vec<String>> {
        self.inner.runs_named(name)
    }
}

/// Tenants are not journal writes: straight to the inner store.
impl crate::tenants::TenantStore for BatchingStore {
    fn create_tenant(&self, tenant: &crate::tenants::TenantRecord) -> Result<()> {
        self.inner.create_tenant(tenant)
    }

    fn tenants(&self) -> Result<Vec<crate::tenants::TenantRecord>> {
        self.inner.tenants()
    }

    fn set_tenant_settings(&self, tenant: &str, settings_json: &str) -> Result<()> {
        self.inner.set_tenant_settings(tenant, settings_json)
    }

    fn put_member(&self, member: &crate::tenants::MemberRecord) -> Result<()> {
        self.inner.put_member(member)
    }

    fn member(&self, tenant: &str, identity: &str) -> Result<Option<crate::tenants::MemberRecord>> {
        self.inner.member(tenant, identity)
    }

    fn add_token(&self, token: &crate::tenants::TokenRecord) -> Result<()> {
        self.inner.add_token(token)
    }

    fn token(&self, id: &str) -> Result<Option<crate::tenants::TokenRecord>> {
        self.inner.token(id)
    }

    fn tokens(&self, tenant: Option<&str>) -> Result<Vec<crate::tenants::TokenRecord>> {
        self.inner.tokens(tenant)
    }

    fn revoke_token(&self, tenant: Option<&str>, id: &str, at: Timestamp) -> Result<bool> {
        self.inner.revoke_token(tenant, id, at)
    }

    fn has_tokens(&self) -> Result<bool> {
        self.inner.has_tokens()
    }

    fn put_secret(&self, secret: &crate::tenants::SecretRecord) -> Result<()> {
        self.inner.put_secret(secret)
    }

    fn secrets(&self, tenant: Option<&str>) -> Result<Vec<crate::tenants::SecretRecord>> {
        self.inner.secrets(tenant)
    }

    fn delete_secret(&self, tenant: &str, name: &str) -> Result<usize> {
        self.inner.delete_secret(tenant, name)
    }

    fn put_plugin(&self, plugin: &crate::tenants::TenantPluginRecord, bytes: &[u8]) -> Result<()> {
        self.inner.put_plugin(plugin, bytes)
    }

    fn tenant_plugins(
        &self,
        tenant: Option<&str>,
    ) -> Result<Vec<crate::tenants::TenantPluginRecord>> {
        self.inner.tenant_plugins(tenant)
    }

    fn plugin_bytes(&self, digest: &str) -> Result<Option<Vec<u8>>> {
        self.inner.plugin_bytes(digest)
    }

    fn delete_plugin(&self, tenant: &str, name: &str) -> Result<bool> {
        self.inner.delete_plugin(tenant, name)
    }

    fn add_cpu(&self, tenant: &str, minute: i64, cpu_ms: u64) -> Result<()> {
        self.inner.add_cpu(tenant, minute, cpu_ms)
    }

    fn cpu_since(&self, tenant: &str, since: i64) -> Result<u64> {
        self.inner.cpu_since(tenant, since)
    }

    fn stored_bytes(&self, tenant: &str) -> Result<u64> {
        self.barrier()?;
        self.inner.stored_bytes(tenant)
    }

    fn append_audit(&self, entry: &crate::tenants::NewAudit) -> Result<u64> {
        self.inner.append_audit(entry)
    }

    fn audit(
        &self,
        tenant: Option<&str>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<crate::tenants::AuditRecord>> {
        self.inner.audit(tenant, after, limit)
    }
}
