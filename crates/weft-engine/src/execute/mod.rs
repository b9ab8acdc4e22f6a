//! The driver: carries out the actions of the pure [`RunState`] on tokio. It starts task
//! attempts (at most `parallelism` at once), aborts them when told, applies the run's
//! deadlines and cancellation, and feeds every outcome back. All decisions about what
//! runs next live in weft-core; this file only does what it is told, promptly.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use weft_core::run::ChildEnding;
use weft_core::{
    Action, CancelMode, NodeId, RunContext, RunState, RunSummary, StartTask, TaskPhase,
};
use weft_runtime::CheckpointStore;

mod admission;
mod attempts;
mod control;
mod cpu_quota;
mod launch;
mod launch_queue;
mod log_budget;
mod options;
mod replay;
mod share;
pub(crate) mod waits;
mod watchdog;

use control::Control;
pub use control::{CancelHandle, ControlReceiver, RunEnd, cancel_channel};
pub use options::{RunOptions, RunTimeouts, default_parallelism};

use crate::fault;

use crate::observe::{RunEvent, RunObserver};
use crate::persist::{How, Journal};
use crate::prepare::Prepared;
use crate::registry::ResolvedPlugin;

struct Attempt {
    attempt: u32,
    abort: futures::future::AbortHandle,
    started: Instant,
}

/// Runs a prepared pipeline to its end and returns the summary. A suspend request is
/// treated as `StoppedRunFinally` here, so the run always ends.
pub async fn execute(
    prepared: Prepared,
    options: RunOptions,
    observer: Arc<dyn RunObserver>,
    cancel: ControlReceiver,
) -> RunSummary {
    match Driver::new(prepared, options, observer, false)
        .run(cancel)
        .await
    {
        RunEnd::Finished(summary) => *summary,
        RunEnd::Suspended => unreachable!("a run that cannot be suspended was suspended"),
    }
}

/// Runs a prepared pipeline until it ends or, for a durable run, until the engine is told
/// to let go of it ([`CancelHandle::suspend`]).
pub async fn execute_until(
    prepared: Prepared,
    options: RunOptions,
    observer: Arc<dyn RunObserver>,
    cancel: ControlReceiver,
) -> RunEnd {
    Driver::new(prepared, options, observer, true)
        .run(cancel)
        .await
}

struct Driver {
    state: RunState,
    /// Shared, so a launch takes a pointer, not a copy of the plugin's description.
    plugins: BTreeMap<String, Arc<ResolvedPlugin>>,
    options: RunOptions,
    observer: Arc<dyn RunObserver>,
    queue: launch_queue::LaunchQueue,
    running: HashMap<NodeId, Attempt>,
    tasks: attempts::AttemptSet,
    checkpoints: HashMap<NodeId, Arc<dyn CheckpointStore>>,
    finally_deadline: Option<Instant>,
    pipeline_deadline: Option<Instant>,
    tasks_deadline: Option<Instant>,
    /// In-flight attempts of a recovered run whose deadline passed during the downtime:
    /// started as far as the run state knows, never launched; the deadline ends them.
    phantoms: Vec<(NodeId, u32)>,
    summary: Option<RunSummary>,
    journal: Option<Journal>,
    /// Set once the engine was told to let go of the run: when running attempts must be
    /// done. Nothing new launches meanwhile.
    suspend_by: Option<Instant>,
    /// Whether a suspend request lets go of the run (see [`execute_until`]).
    suspendable: bool,
    /// The run phase last written to the journal.
    journaled_phase: Option<weft_core::RunPhase>,
    /// Tasks waiting for people or gates: [`waits`].
    waits: HashMap<NodeId, waits::Waiting>,
    /// Gate samples being evaluated.
    gate_samples: JoinSet<waits::Sampled>,
    /// Starts of tasks waiting for a slot of their concurrency group ([`admission`]).
    slot_waiting: Vec<StartTask>,
    /// When slots were last looked at.
    slot_checked: Instant,
    /// Deadlines of tasks that run a pipeline (their `timeout`), by node and attempt.
    child_deadlines: Vec<(Instant, NodeId, u32)>,
    /// The run's log budget (its tenant's `log-kib-per-run`), shared by its attempts.
    log_budget: std::sync::OnceLock<std::sync::Arc<log_budget::LogBudget>>,
    /// The tenant's CPU quota as this run sees it (made once the journal is there).
    cpu_quota: std::sync::OnceLock<Option<std::sync::Arc<cpu_quota::CpuQuota>>>,
    /// A shared task slot granted for the next attempt ([`share`]).
    spare_slot: Option<crate::fair::Permit>,
    /// The run's request for a shared task slot, while it waits for one.
    acquiring: Option<crate::fair::Acquire>,
}

impl Driver {
    /// `suspendable`: a suspend request lets go of the run (only a durable one can be
    /// let go of) instead of stopping it.
    fn new(
        prepared: Prepared,
        options: RunOptions,
        observer: Arc<dyn RunObserver>,
        suspendable: bool,
    ) -> Self {
        let journal = options.durable.clone().map(Journal::new);
        let context = RunContext {
            run_name: options.run_name.clone(),
            run_uid: options.run_uid.clone(),
            bound_workspaces: options.grants.workspaces.keys().cloned().collect(),
        };
        let mut state = RunState::new(Arc::new(prepared.plan), context);
        if let Some(durable) = &options.durable {
            // After a `startOver`, earlier engines' attempts count in the report.
            let base = &durable.attempt_base;
            state.set_prior_attempts(|task| base.get(task).copied().unwrap_or(0));
        }
        state.set_attempt(options.attempt);
        if !options.carried.is_empty() {
            state.set_carried(|task| options.carried.get(task).cloned());
        }
        Driver {
            state,
            plugins: prepared
                .plugins
                .into_iter()
                .map(|(name, plugin)| (name, Arc::new(plugin)))
                .collect(),
            options,
            observer,
            queue: launch_queue::LaunchQueue::default(),
            running: HashMap::new(),
            tasks: attempts::AttemptSet::default(),
            checkpoints: HashMap::new(),
            finally_deadline: None,
            pipeline_deadline: None,
            tasks_deadline: None,
            phantoms: Vec::new(),
            summary: None,
            journal,
            suspend_by: None,
            suspendable,
            journaled_phase: None,
            waits: HashMap::new(),
            gate_samples: JoinSet::new(),
            slot_waiting: Vec::new(),
            slot_checked: Instant::now(),
            child_deadlines: Vec::new(),
            log_budget: std::sync::OnceLock::new(),
            cpu_quota: std::sync::OnceLock::new(),
            spare_slot: None,
            acquiring: None,
        }
    }

    /// Makes queued writes durable; a lost lease ends the run here (another engine owns it).
    fn flush(&mut self) -> Vec<Action> {
        let Some(journal) = self.journal.as_mut() else {
            return Vec::new();
        };
        match journal.flush() {
            Ok(()) => Vec::new(),
            Err(err) => {
                tracing::error!(error = %err, "the run's journal refused our writes; stopping");
                self.journal = None;
                self.state
                    .infra_error(format!("lost the run's lease or store: {err}"))
            }
        }
    }

    async fn run(mut self, mut cancel: ControlReceiver) -> RunEnd {
        // Deadlines count from the run's first start, not this process's.
        let started = Instant::now()
            .checked_sub(self.options.elapsed_before)
            .unwrap_or_else(Instant::now);
        let (lost_tx, mut lost_lease) = mpsc::unbounded_channel::<String>();
        let heartbeat = self.journal.as_ref().map(|journal| {
            let durable = journal.durable().clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(durable.heartbeat_every);
                let mut renewed = Instant::now();
                loop {
                    tick.tick().await;
                    let (store, lease) = (durable.store.clone(), durable.lease.clone());
                    // Off the runtime's threads: a shared store answers over the network.
                    let beat = tokio::task::spawn_blocking(move || {
                        store.heartbeat(&lease, weft_store::Timestamp::now())
                    })
                    .await
                    .unwrap_or_else(|e| Err(weft_store::StoreError::Backend(e.to_string())));
                    match beat {
                        Ok(()) => renewed = Instant::now(),
                        // Refused: another engine claimed the run.
                        Err(err) if err.is_rejection() => {
                            let _ = lost_tx.send(err.to_string());
                            return;
                        }
                        // The database is unreachable: the run is ours while the lease
                        // may still be valid, not a moment longer.
                        Err(err) if renewed.elapsed() >= durable.lease_ttl => {
                            let _ = lost_tx.send(format!(
                                "no heartbeat for {:?}, the lease may have expired: {err}",
                                durable.lease_ttl
                            ));
                            return;
                        }
                        Err(err) => {
                            tracing::warn!(error = %err, "cannot renew the run's lease; retrying");
                        }
                    }
                }
            })
        });
        let end = self.drive(started, &mut cancel, &mut lost_lease).await;
        if let Some(heartbeat) = heartbeat {
            heartbeat.abort();
            let _ = heartbeat.await;
        }
        if let (RunEnd::Suspended, Some(journal)) = (&end, &self.journal) {
            // Another engine may take the run over at once, not after the recovery timeout.
            let durable = journal.durable();
            if let Err(err) = durable.store.release(&durable.lease) {
                tracing::warn!(error = %err, "cannot release the suspended run's lease");
            }
        }
        end
    }

    async fn drive(
        &mut self,
        started: Instant,
        cancel: &mut ControlReceiver,
        lost_lease: &mut mpsc::UnboundedReceiver<String>,
    ) -> RunEnd {
        let held_since = Instant::now();
        let mut pending: VecDeque<Action> = match self.hold_back(cancel, lost_lease).await {
            admission::HeldBack::Go => self.start(cancel),
            admission::HeldBack::Withdrawn { superseded } => self.state.withdraw(superseded).into(),
            admission::HeldBack::Ended(end) => return end,
            admission::HeldBack::Lost(why) => self
                .state
                .infra_error(format!("lost the run's lease: {why}"))
                .into(),
        };
        // Time spent waiting for the schedule or a slot does not count against deadlines.
        let started = started + held_since.elapsed();
        self.pipeline_deadline = self.options.timeouts.pipeline.map(|d| started + d);
        self.tasks_deadline = self.options.timeouts.tasks.map(|d| started + d);
        let mut cancel_open = true;
        loop {
            while let Some(action) = pending.pop_front() {
                give_back_room(&mut pending);
                let follow = self.apply(action);
                enqueue(&mut pending, follow);
            }
            // Deadlines that passed while no engine ran (recovery) fire before anything new
            // starts: a restart never extends them.
            let now = Instant::now();
            if self.pipeline_deadline.is_some_and(|d| d <= now) {
                self.pipeline_deadline = None;
                pending.extend(self.state.pipeline_timeout());
            }
            if self.tasks_deadline.is_some_and(|d| d <= now) {
                self.tasks_deadline = None;
                pending.extend(self.state.tasks_timeout());
            }
            if !pending.is_empty() {
                continue;
            }
            // Durable before acted on (`launch_queue`): what the next start depends on is
            // committed first; one commit covers every start queued so far.
            if self.queue.needs_commit() {
                if self.journal.as_ref().is_some_and(Journal::dirty) {
                    let refused = self.flush();
                    if !refused.is_empty() {
                        // The lease is lost: nothing launches; the run stops first.
                        pending.extend(refused);
                        continue;
                    }
                }
                self.queue.committed();
            }
            pending.extend(self.launch());
            if !pending.is_empty() {
                continue;
            }
            if let Some(mut summary) = self.summary.take() {
                if let Some(journal) = self.journal.as_mut() {
                    summary.report.run.checkpoint_hits = Some(
                        journal
                            .checkpoint_hits
                            .load(std::sync::atomic::Ordering::Relaxed),
                    );
                    if let Err(err) = journal.finish(&summary) {
                        tracing::error!(error = %err, "cannot store the run's final status");
                    }
                }
                self.leave_groups();
                self.observer.event(RunEvent::Finished(&summary));
                return RunEnd::Finished(Box::new(summary));
            }
            if self.suspend_by.is_some() && self.running.is_empty() {
                return self.let_go();
            }
            if self.stalled() {
                pending.extend(self.unstall());
                continue;
            }
            self.journal_run_phase();
            let wait_wakeup = self.next_wait_wakeup();
            let slot_check = self.next_slot_check();
            let child_deadline = self.next_child_deadline();
            let actions = tokio::select! {
                joined = self.tasks.next(), if !self.tasks.is_empty() => match joined {
                    attempts::Joined::Done(node, attempt, report) => self.finished(node, attempt, report),
                    // Aborted attempts were already reported as cancelled.
                    attempts::Joined::Aborted => Vec::new(),
                    attempts::Joined::Panicked(why) => self.state.infra_error(format!("a task's host side failed: {why}")),
                },
                Some(sampled) = self.gate_samples.join_next(), if !self.gate_samples.is_empty() => match sampled {
                    Ok(sampled) => self.gate_sampled(sampled),
                    Err(err) if err.is_cancelled() => Vec::new(),
                    Err(err) => self.state.infra_error(format!("a gate's host thread failed: {err}")),
                },
                () = sleep_until(wait_wakeup) => self.poll_waits(),
                () = sleep_until(slot_check) => self.check_slots(),
                permit = share::next_slot(&mut self.acquiring) => {
                    self.acquiring = None;
                    self.spare_slot = Some(permit);
                    Vec::new()
                },
                Some(why) = lost_lease.recv() => {
                    tracing::error!(reason = %why, "lost the run's lease; stopping without further writes");
                    self.journal = None;
                    self.state.infra_error(format!("lost the run's lease: {why}"))
                },
                control = cancel.0.recv(), if cancel_open => match control {
                    Some(Control::Cancel(mode)) => self.state.cancel(mode),
                    Some(Control::Suspend(grace)) if self.suspendable && self.journal.is_some() => {
                        tracing::info!(run = %self.options.run_name, grace_ms = grace.as_millis() as u64, "letting go of the run");
                        let by = Instant::now() + grace;
                        self.suspend_by = Some(self.suspend_by.map_or(by, |b| b.min(by)));
                        Vec::new()
                    }
                    Some(Control::Suspend(_)) => self.state.cancel(CancelMode::StoppedRunFinally),
                    None => { cancel_open = false; Vec::new() }
                },
                () = sleep_until(self.suspend_by) => {
                    // Grace is over: what still runs is left to recovery.
                    return self.let_go();
                },
                () = sleep_until(self.pipeline_deadline) => {
                    self.pipeline_deadline = None;
                    self.state.pipeline_timeout()
                },
                () = sleep_until(self.tasks_deadline) => {
                    self.tasks_deadline = None;
                    self.state.tasks_timeout()
                },
                () = sleep_until(self.finally_deadline) => {
                    self.finally_deadline = None;
                    self.state.finally_timeout()
                },
                () = sleep_until(child_deadline) => self.child_deadlines_passed(),
            };
            enqueue(&mut pending, actions);
        }
    }

    /// Starts the run. A control sent before it started is taken first: a run created
    /// cancelled (a `PipelineRun`'s `spec.status`) starts nothing.
    fn start(&mut self, cancel: &mut ControlReceiver) -> VecDeque<Action> {
        let mut pending: VecDeque<Action> = VecDeque::new();
        match cancel.0.try_recv() {
            Ok(Control::Cancel(mode)) => pending.extend(self.state.cancel(mode)),
            Ok(Control::Suspend(grace)) if self.suspendable && self.journal.is_some() => {
                let by = Instant::now() + grace;
                self.suspend_by = Some(self.suspend_by.map_or(by, |b| b.min(by)));
            }
            Ok(Control::Suspend(_)) => {
                pending.extend(self.state.cancel(CancelMode::StoppedRunFinally));
            }
            Err(_) => {}
        }
        pending.extend(self.state.start());
        pending
    }

    /// Carries out one action; returns the actions that follow from it.
    fn apply(&mut self, action: Action) -> Vec<Action> {
        match action {
            Action::Start(start) => self.start_or_replay(start),
            Action::Wait(wait) => self.wait(*wait),
            Action::Cancel { node, attempt, .. } => {
                if let Some(follow) = self.cancel_wait(node, attempt) {
                    return follow;
                }
                if self.queue.remove(node, attempt) {
                    return self.state.task_cancelled(node, attempt);
                }
                if let Some(at) = self.phantoms.iter().position(|p| *p == (node, attempt)) {
                    self.phantoms.remove(at);
                    self.journal_ended(node, attempt, How::Cancelled, None, BTreeMap::new());
                    return self.state.task_cancelled(node, attempt);
                }
                match self.running.get(&node) {
                    Some(running) if running.attempt == attempt => {
                        running.abort.abort();
                        self.free_task_slot(node);
                        self.journal_ended(node, attempt, How::Cancelled, None, BTreeMap::new());
                        let actions = self.state.task_cancelled(node, attempt);
                        let follow = self.apply_all(actions);
                        self.running.remove(&node);
                        follow
                    }
                    _ if self
                        .slot_waiting
                        .iter()
                        .any(|s| s.node == node && s.attempt == attempt) =>
                    {
                        self.slot_waiting
                            .retain(|s| !(s.node == node && s.attempt == attempt));
                        self.state.task_cancelled(node, attempt)
                    }
                    // Not queued, not running: nothing to abort, so the cancel is done
                    // (the run state ignores it if the attempt is stale). Left unconfirmed,
                    // the task would stay `Cancelling` and the run would never end.
                    _ => self.state.task_cancelled(node, attempt),
                }
            }
            Action::Transition {
                node,
                name,
                phase,
                outcome,
                reason,
                attempt,
            } => {
                let elapsed = (phase == TaskPhase::Terminal)
                    .then(|| self.running.get(&node).map(|r| r.started.elapsed()))
                    .flatten();
                // A child pipeline's `finally` is its own, not the run's.
                let plan = self.state.plan();
                let is_finally = node < plan.own_len && plan.nodes[node].is_finally;
                if let Some(journal) = self.journal.as_mut() {
                    journal.transition(node, &name, phase, outcome, &reason, attempt);
                }
                self.observer.event(RunEvent::Transition {
                    task: &name,
                    is_finally,
                    phase,
                    outcome,
                    reason: &reason,
                    attempt,
                    elapsed,
                });
                Vec::new()
            }
            Action::AttemptRetried {
                node,
                name,
                attempt,
                outcome,
                reason,
            } => {
                // The attempt is over (its own record, with its exit code and message);
                // the task goes on with the next attempt.
                if let Some(journal) = self.journal.as_mut() {
                    journal.transition(
                        node,
                        &name,
                        TaskPhase::Terminal,
                        Some(outcome),
                        &reason,
                        attempt,
                    );
                }
                Vec::new()
            }
            Action::ChildStarted(start) => {
                // Its child's tasks come as their own actions; only its timeout is ours.
                if let Some(timeout) = start.timeout {
                    self.child_deadlines.push((
                        Instant::now() + timeout,
                        start.node,
                        start.attempt,
                    ));
                }
                Vec::new()
            }
            Action::ChildEnded {
                node,
                attempt,
                ending,
                results,
                ..
            } => {
                self.child_deadlines
                    .retain(|&(_, n, a)| (n, a) != (node, attempt));
                let (how, ending) = match ending {
                    ChildEnding::Ended(ending) => (How::Ended, Some(ending)),
                    ChildEnding::TimedOut => (How::TimedOut, None),
                    ChildEnding::Cancelled => (How::Cancelled, None),
                };
                if !self.replayed(node, attempt) {
                    self.journal_ended(node, attempt, how, ending, results);
                }
                Vec::new()
            }
            Action::FinallyStarted => {
                fault::point("finally");
                self.finally_deadline = self.options.timeouts.finally.map(|d| Instant::now() + d);
                self.observer.event(RunEvent::FinallyStarted);
                Vec::new()
            }
            Action::Finished(summary) => {
                self.summary = Some(*summary);
                Vec::new()
            }
        }
    }

    /// Records the run's phase (`Running`, `Cancelling`, `Stopping`, `RunningFinally`...)
    /// when it changed, so `weft runs show` and the API see what the run is doing while it
    /// waits for its tasks. `Finished` is recorded with the final status instead.
    fn journal_run_phase(&mut self) {
        let phase = self.state.phase();
        if phase == weft_core::RunPhase::Finished || self.journaled_phase == Some(phase) {
            return;
        }
        if let Some(journal) = self.journal.as_mut() {
            journal.run_phase(phase);
        }
        self.journaled_phase = Some(phase);
    }

    /// Lets go of a suspended run: running attempts are stopped without a record (they
    /// stay in flight for recovery), queued ones are marked as never started, and
    /// everything written so far is made durable.
    fn let_go(&mut self) -> RunEnd {
        for (_, attempt) in self.running.drain() {
            attempt.abort.abort();
        }
        self.tasks.abort_all();
        if let Some(journal) = self.journal.as_mut() {
            for start in self.queue.iter().chain(&self.slot_waiting) {
                journal.not_started(&start.name, start.attempt);
            }
            if let Err(err) = journal.flush() {
                tracing::error!(error = %err, "cannot make the suspended run's journal durable");
            }
        }
        RunEnd::Suspended
    }

    /// When the next task running a pipeline passes its `timeout`.
    fn next_child_deadline(&self) -> Option<Instant> {
        self.child_deadlines.iter().map(|(at, _, _)| *at).min()
    }

    /// Times out the tasks running pipelines whose `timeout` passed.
    fn child_deadlines_passed(&mut self) -> Vec<Action> {
        let now = Instant::now();
        let (passed, left): (Vec<_>, Vec<_>) = self
            .child_deadlines
            .drain(..)
            .partition(|(at, _, _)| *at <= now);
        self.child_deadlines = left;
        passed
            .into_iter()
            .flat_map(|(_, node, attempt)| self.state.task_timed_out(node, attempt))
            .collect()
    }

    /// Whether the journal already holds how `attempt` of `node` ended (a recovered run
    /// going through it again).
    fn replayed(&self, node: NodeId, attempt: u32) -> bool {
        let name = &self.state.plan().nodes[node].name;
        self.journal
            .as_ref()
            .and_then(|j| j.durable().replay.as_ref())
            .is_some_and(|replay| replay.ended.contains_key(&(name.clone(), attempt)))
    }

    fn apply_all(&mut self, actions: Vec<Action>) -> Vec<Action> {
        let mut follow = Vec::new();
        for action in actions {
            follow.extend(self.apply(action));
        }
        follow
    }
}

/// Sleeps until `deadline`, or forever when there is none.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Shrinks a queue of the driver once it holds a quarter of its room. A settle may queue
/// every task at once (two actions each, then a start each), and the drained part of that
/// buffer would otherwise stay resident to the end of the run. Halving each time keeps
/// the copying to a constant per item; small queues keep their room.
fn give_back_room<T>(queue: &mut VecDeque<T>) {
    const SMALL: usize = 1024;
    let room = queue.capacity();
    if room > SMALL && queue.len() < room / 4 {
        queue.shrink_to(queue.len() * 2);
    }
}

/// Adds `actions` to `pending`. An empty queue takes the vector's buffer as it is: a settle
/// may queue every task at once (two actions each), and copying them would hold both.
fn enqueue(pending: &mut VecDeque<Action>, actions: Vec<Action>) {
    if pending.is_empty() {
        *pending = VecDeque::from(actions);
    } else {
        pending.extend(actions);
    }
}
