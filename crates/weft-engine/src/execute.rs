//! The driver: carries out the actions of the pure [`RunState`] on tokio. It starts task
//! attempts (at most `parallelism` at once), aborts them when told, applies the run's
//! deadlines and cancellation, and feeds every outcome back. All decisions about what
//! runs next live in weft-core; this file only does what it is told, promptly.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;
use weft_core::contract::TaskEnding;
use weft_core::model::RecoveryStrategy;
use weft_core::replay::{self, AttemptFacts, ReplayDecision};
use weft_core::{
    Action, CancelMode, NodeId, RunContext, RunState, RunSummary, StartTask, TaskPhase,
};
use weft_runtime::{
    CheckpointStore, LimitKind, LogLine, LogSink, MemoryCheckpoints, TaskContext, TaskReport,
    TaskRequest,
};

use crate::fault;
use crate::grants::{Allowance, Grantee, RunGrants};
use crate::observe::{RunEvent, RunObserver};
use crate::persist::{Durable, Ended, How, Journal};
use crate::prepare::Prepared;
use crate::registry::ResolvedPlugin;

/// The run-level timeouts of semantics.md section 7.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunTimeouts {
    /// The whole run.
    #[serde(default, with = "crate::runs::spec::optional_millis")]
    pub pipeline: Option<Duration>,
    /// The non-finally tasks.
    #[serde(default, with = "crate::runs::spec::optional_millis")]
    pub tasks: Option<Duration>,
    /// The finally tasks, from when they start.
    #[serde(default, with = "crate::runs::spec::optional_millis")]
    pub finally: Option<Duration>,
}

/// How to run one pipeline run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The run's name (`$(context.pipelineRun.name)`).
    pub run_name: String,
    /// The run's unique id.
    pub run_uid: String,
    /// How many task attempts may run at once.
    pub parallelism: usize,
    /// Run-level timeouts.
    pub timeouts: RunTimeouts,
    /// What the run's tasks are given (secrets, HTTP, workspaces, limits): the one grant
    /// builder, [`crate::grants`].
    pub grants: RunGrants,
    /// Masks every secret value the run knows in what its plugins hand back (logs,
    /// results, messages) before anything else sees it: [`crate::mask`].
    pub masker: crate::mask::RunMasker,
    /// Where the run is journaled; `None` keeps it in memory only.
    pub durable: Option<Durable>,
    /// Workspace snapshots after each task (durable runs only): [`crate::snapshot`].
    pub snapshots: Option<crate::snapshot::SnapshotConfig>,
    /// Time the run already spent before this process took it over (recovery): deadlines
    /// are computed from the run's stored start, so a restart never extends them.
    pub elapsed_before: Duration,
}

impl RunOptions {
    /// Options with defaults: parallelism of 4 per core, no timeouts, default limits,
    /// nothing granted.
    pub fn new(run_name: impl Into<String>, run_uid: impl Into<String>) -> Self {
        RunOptions {
            run_name: run_name.into(),
            run_uid: run_uid.into(),
            parallelism: default_parallelism(),
            timeouts: RunTimeouts::default(),
            grants: RunGrants::default(),
            masker: crate::mask::RunMasker::default(),
            durable: None,
            snapshots: None,
            elapsed_before: Duration::ZERO,
        }
    }
}

/// How many task attempts run at once unless a run says otherwise: 4 per core.
pub fn default_parallelism() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()) * 4
}

/// What a run can be told from outside while it runs.
#[derive(Debug, Clone, Copy)]
enum Control {
    /// Cancel the run in this mode (semantics.md section 6).
    Cancel(CancelMode),
    /// Stop this engine's work on the run without ending it (graceful shutdown): nothing
    /// new starts, running attempts get `grace` to finish, and what is left stays in the
    /// journal for another engine to recover.
    Suspend(Duration),
}

/// A handle to cancel a run from elsewhere (Ctrl-C, an API call) or to suspend it.
#[derive(Clone)]
pub struct CancelHandle(mpsc::UnboundedSender<Control>);

impl CancelHandle {
    /// Asks the run to cancel in `mode`. Ignored once the run is over.
    pub fn cancel(&self, mode: CancelMode) {
        let _ = self.0.send(Control::Cancel(mode));
    }

    /// Asks the engine to let go of the run (shutdown): no new attempt starts, running
    /// ones may finish within `grace`, then the rest is left to recovery. Only durable runs
    /// can be suspended; an in-memory run treats this as `StoppedRunFinally`.
    pub fn suspend(&self, grace: Duration) {
        let _ = self.0.send(Control::Suspend(grace));
    }
}

/// The receiving end of a [`CancelHandle`], which `execute` listens on.
pub struct ControlReceiver(mpsc::UnboundedReceiver<Control>);

/// A new cancel handle and the receiving end `execute` listens on.
pub fn cancel_channel() -> (CancelHandle, ControlReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    (CancelHandle(tx), ControlReceiver(rx))
}

/// How [`execute_until`] left a run.
#[derive(Debug)]
pub enum RunEnd {
    /// The run is over.
    Finished(Box<RunSummary>),
    /// The engine let go of the run (see [`CancelHandle::suspend`]); it is still open in
    /// the store, for recovery.
    Suspended,
}

struct TaskLog {
    task: String,
    observer: Arc<dyn RunObserver>,
}

impl LogSink for TaskLog {
    fn line(&self, line: LogLine) {
        self.observer.event(RunEvent::Log {
            task: &self.task,
            line: &line,
        });
    }
}

struct Attempt {
    attempt: u32,
    abort: AbortHandle,
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
    plugins: BTreeMap<String, ResolvedPlugin>,
    options: RunOptions,
    observer: Arc<dyn RunObserver>,
    queue: VecDeque<StartTask>,
    running: HashMap<NodeId, Attempt>,
    tasks: JoinSet<(NodeId, u32, TaskReport)>,
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
        Driver {
            state,
            plugins: prepared.plugins,
            options,
            observer,
            queue: VecDeque::new(),
            running: HashMap::new(),
            tasks: JoinSet::new(),
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
                loop {
                    tick.tick().await;
                    if let Err(err) = durable
                        .store
                        .heartbeat(&durable.lease, weft_store::Timestamp::now())
                    {
                        let _ = lost_tx.send(err.to_string());
                        return;
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
        self.pipeline_deadline = self.options.timeouts.pipeline.map(|d| started + d);
        self.tasks_deadline = self.options.timeouts.tasks.map(|d| started + d);
        let mut cancel_open = true;
        let mut pending: VecDeque<Action> = self.state.start().into();
        loop {
            while let Some(action) = pending.pop_front() {
                pending.extend(self.apply(action));
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
            // Durable before acted on: what new tasks depend on is committed first.
            if !self.queue.is_empty() && self.journal.as_ref().is_some_and(Journal::dirty) {
                pending.extend(self.flush());
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
            let actions = tokio::select! {
                Some(joined) = self.tasks.join_next(), if !self.tasks.is_empty() => match joined {
                    Ok((node, attempt, report)) => self.finished(node, attempt, report),
                    // Aborted attempts were already reported as cancelled.
                    Err(err) if err.is_cancelled() => Vec::new(),
                    Err(err) => self.state.infra_error(format!("a task's host thread failed: {err}")),
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
            };
            pending.extend(actions);
        }
    }

    /// Whether the run can make no progress by itself: nothing runs, nothing is queued,
    /// no deadline or grace period is pending, and yet the run is not over. Only a user's
    /// cancel could still arrive, and it cannot finish tasks nobody holds.
    fn stalled(&self) -> bool {
        self.summary.is_none()
            && !self.state.is_finished()
            && self.tasks.is_empty()
            && self.running.is_empty()
            && self.queue.is_empty()
            && self.phantoms.is_empty()
            && self.pipeline_deadline.is_none()
            && self.tasks_deadline.is_none()
            && self.finally_deadline.is_none()
            && self.suspend_by.is_none()
    }

    /// A stalled run is a bug: debug builds stop at once, naming the stuck tasks; release
    /// builds end the run `Errored` rather than hang (and keep a lease) forever.
    fn unstall(&mut self) -> Vec<Action> {
        let stuck: Vec<String> = self
            .state
            .unfinished_tasks()
            .into_iter()
            .map(|(task, phase)| format!("{task} ({phase:?})"))
            .collect();
        let message = format!(
            "the run stalled: nothing runs or is due, yet these tasks are not done: {}",
            stuck.join(", ")
        );
        if cfg!(debug_assertions) {
            panic!("weft watchdog: run `{}`: {message}", self.options.run_name);
        }
        tracing::error!(run = %self.options.run_name, "{message}");
        self.state.abandon(message)
    }

    /// Carries out one action; returns the actions that follow from it.
    fn apply(&mut self, action: Action) -> Vec<Action> {
        match action {
            Action::Start(start) => self.start_or_replay(start),
            Action::Cancel { node, attempt, .. } => {
                if let Some(at) = self
                    .queue
                    .iter()
                    .position(|s| s.node == node && s.attempt == attempt)
                {
                    self.queue.remove(at);
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
                        self.journal_ended(node, attempt, How::Cancelled, None, BTreeMap::new());
                        let actions = self.state.task_cancelled(node, attempt);
                        let follow = self.apply_all(actions);
                        self.running.remove(&node);
                        follow
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
                let is_finally = self.state.plan().nodes[node].is_finally;
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
            Action::FinallyStarted => {
                fault::point("finally");
                self.finally_deadline = self.options.timeouts.finally.map(|d| Instant::now() + d);
                self.observer.event(RunEvent::FinallyStarted);
                Vec::new()
            }
            Action::Finished(summary) => {
                self.summary = Some(summary);
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
            for start in &self.queue {
                journal.not_started(&start.name, start.attempt);
            }
            if let Err(err) = journal.flush() {
                tracing::error!(error = %err, "cannot make the suspended run's journal durable");
            }
        }
        RunEnd::Suspended
    }

    /// Starts queued attempts while there is room.
    fn launch(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.suspend_by.is_some() {
            return actions;
        }
        while self.running.len() < self.options.parallelism.max(1) {
            let Some(start) = self.queue.pop_front() else {
                break;
            };
            let resolved = match self.plugins.get(&start.plugin) {
                _ if fault::fails("task-launch-fail") => {
                    Err("the launch failed at a test fault point (WEFT_FAULT)".to_string())
                }
                Some(resolved) => Ok(resolved.clone()),
                None => Err(format!(
                    "plugin `{}` of task `{}` was not prepared",
                    start.plugin, start.name
                )),
            };
            let resolved = match resolved {
                Ok(resolved) => resolved,
                Err(message) => {
                    actions.extend(self.launch_failed(&start, message));
                    continue;
                }
            };
            let plugin = resolved.plugin.clone();
            let request = self.request(&start, &resolved);
            // Workspace snapshots, taken before the driver hears of the ending (snapshot/after_task.rs).
            let snapshots = crate::snapshot::AfterTask::plan(
                self.options.snapshots.as_ref(),
                self.journal.as_ref().map(Journal::durable),
                &self.options.grants.read_only_workspaces,
                &start,
                &request,
            );
            let (node, attempt) = (start.node, start.attempt);
            let (masker, log) = (self.options.masker.clone(), request.log.clone());
            fault::point("task-start-before");
            let abort = self.tasks.spawn(async move {
                let mut report = plugin.run(request).await;
                // Before anything sees it: the journal, dependents, reports, forges.
                masker.task_report_logged(&mut report, &*log);
                if let Some(snapshots) = snapshots {
                    snapshots.run().await;
                }
                (node, attempt, report)
            });
            self.running.insert(
                node,
                Attempt {
                    attempt,
                    abort,
                    started: Instant::now(),
                },
            );
            actions.extend(self.state.task_started(node, attempt));
            fault::point("task-start-after");
        }
        actions
    }

    /// An attempt that could not be launched ends `Errored` (`LaunchFailed`), journaled like
    /// any ending so that recovery never launches it again; the run goes on.
    fn launch_failed(&mut self, start: &StartTask, message: String) -> Vec<Action> {
        tracing::error!(task = %start.name, attempt = start.attempt, %message, "cannot launch a task");
        let ending = TaskEnding::Errored {
            reason: weft_core::status::reasons::LAUNCH_FAILED.into(),
            message: message.clone(),
        };
        self.journal_ended(
            start.node,
            start.attempt,
            How::Ended,
            Some(ending),
            BTreeMap::new(),
        );
        self.state
            .task_launch_failed(start.node, start.attempt, message)
    }

    fn finished(&mut self, node: NodeId, attempt: u32, report: TaskReport) -> Vec<Action> {
        if self
            .running
            .get(&node)
            .is_some_and(|r| r.attempt == attempt)
        {
            fault::point("task-finish-before");
            // Keep the entry until the terminal transition has read its start time.
            let timed_out = matches!(&report.ending,
                TaskEnding::Errored { reason, .. } if reason == LimitKind::WallClock.reason());
            let actions = if timed_out {
                self.journal_ended(node, attempt, How::TimedOut, None, BTreeMap::new());
                self.state.task_timed_out(node, attempt)
            } else {
                // The journal keeps its own copy; without one, nothing is cloned.
                if self.journal.is_some() {
                    self.journal_ended(
                        node,
                        attempt,
                        How::Ended,
                        Some(report.ending.clone()),
                        report.results.clone(),
                    );
                }
                self.state
                    .task_ended(node, attempt, report.ending, report.results)
            };
            let mut follow = self.apply_all(actions);
            if fault::armed("task-finish-after") {
                follow.extend(self.flush());
                fault::point("task-finish-after");
            }
            if self
                .running
                .get(&node)
                .is_some_and(|r| r.attempt == attempt)
            {
                self.running.remove(&node);
            }
            follow
        } else {
            Vec::new()
        }
    }

    fn apply_all(&mut self, actions: Vec<Action>) -> Vec<Action> {
        let mut follow = Vec::new();
        for action in actions {
            follow.extend(self.apply(action));
        }
        follow
    }

    fn journal_ended(
        &mut self,
        node: NodeId,
        attempt: u32,
        how: How,
        ending: Option<TaskEnding>,
        results: BTreeMap<String, String>,
    ) {
        let Some(journal) = self.journal.as_mut() else {
            return;
        };
        // Disjoint fields: the journal is written while the plan is read.
        let name = &self.state.plan().nodes[node].name;
        journal.ended(
            node,
            name,
            attempt,
            &Ended {
                how,
                ending,
                results,
            },
        );
    }

    /// Queues a start, unless recovery knows better (weft-core's `replay::decide`): an
    /// attempt with a journaled ending is answered from the journal (it never runs
    /// twice); an in-flight one follows the run's recovery strategy.
    fn start_or_replay(&mut self, start: StartTask) -> Vec<Action> {
        let replay = self
            .journal
            .as_ref()
            .and_then(|j| j.durable().replay.clone());
        let Some(replay) = replay else {
            self.queue.push_back(start);
            return Vec::new();
        };
        let key = (start.name.clone(), start.attempt);
        let (node, attempt) = (start.node, start.attempt);
        let spec = &self.state.plan().nodes[node];
        let now = Instant::now();
        let facts = AttemptFacts {
            ended: replay.ended.contains_key(&key),
            in_flight: replay.in_flight.contains(&key),
            idempotent: spec.idempotent,
            deadline_passed: self.pipeline_deadline.is_some_and(|d| d <= now)
                || (!spec.is_finally && self.tasks_deadline.is_some_and(|d| d <= now)),
        };
        let strategy = replay.strategy.map_or(RecoveryStrategy::None, Into::into);
        match replay::decide(strategy, facts) {
            ReplayDecision::Run => {
                self.queue.push_back(start);
                Vec::new()
            }
            ReplayDecision::Replay => {
                let Some(ended) = replay.ended.get(&key) else {
                    return Vec::new();
                };
                let mut actions = self.state.task_started(node, attempt);
                actions.extend(match ended.how {
                    How::TimedOut => self.state.task_timed_out(node, attempt),
                    How::Cancelled => self.state.task_cancelled(node, attempt),
                    How::Ended => {
                        let ending = ended.ending.clone().unwrap_or(TaskEnding::Errored {
                            reason: replay::ENGINE_RESTARTED.into(),
                            message: "the journaled ending was unreadable".into(),
                        });
                        self.state
                            .task_ended(node, attempt, ending, ended.results.clone())
                    }
                });
                actions
            }
            ReplayDecision::Expire => {
                // It was running when its deadline passed: the deadline, not the restart,
                // decides its outcome.
                self.phantoms.push((node, attempt));
                self.state.task_started(node, attempt)
            }
            ReplayDecision::Refuse { reason, message } => {
                let ending = TaskEnding::Errored {
                    reason: reason.into(),
                    message: message.into(),
                };
                self.journal_ended(
                    node,
                    attempt,
                    How::Ended,
                    Some(ending.clone()),
                    BTreeMap::new(),
                );
                let mut actions = self.state.task_started(node, attempt);
                actions.extend(
                    self.state
                        .task_ended(node, attempt, ending, BTreeMap::new()),
                );
                actions
            }
        }
    }

    fn request(&mut self, start: &StartTask, resolved: &ResolvedPlugin) -> TaskRequest {
        let Allowance { grants, limits } = self.options.grants.grant(Grantee::Task {
            start,
            info: &resolved.info,
        });
        let checkpoints = match &self.journal {
            Some(journal) => journal.checkpoints(&start.name),
            None => self
                .checkpoints
                .entry(start.node)
                .or_insert_with(|| Arc::new(MemoryCheckpoints::default()))
                .clone(),
        };
        let log: Arc<dyn LogSink> = Arc::new(TaskLog {
            task: start.name.clone(),
            observer: self.observer.clone(),
        });
        let log = match &self.journal {
            Some(journal) => journal.log_sink(&start.name, start.attempt, log),
            None => log,
        };
        // Masked first: the store, the view and the log files see masked lines only.
        let log = self.options.masker.log_sink(log);
        TaskRequest {
            context: TaskContext {
                run_name: self.options.run_name.clone(),
                run_uid: self.options.run_uid.clone(),
                pipeline_name: self.state.plan().pipeline_name.clone(),
                task_name: start.name.clone(),
                retry_count: start.attempt,
                retries: start.retries,
            },
            params: start.params.clone(),
            grants,
            limits,
            log,
            checkpoints,
        }
    }
}

/// Sleeps until `deadline`, or forever when there is none.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
