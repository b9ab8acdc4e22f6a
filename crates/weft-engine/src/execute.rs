//! The driver: carries out the actions of the pure [`RunState`] on tokio. It starts task
//! attempts (at most `parallelism` at once), aborts them when told, applies the run's
//! deadlines and cancellation, and feeds every outcome back. All decisions about what
//! runs next live in weft-core; this file only does what it is told, promptly.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;
use weft_core::contract::TaskEnding;
use weft_core::{
    Action, CancelMode, NodeId, Outcome, RunContext, RunState, RunSummary, StartTask, TaskPhase,
};
use weft_runtime::{
    CheckpointStore, Grants, HttpRule, LimitKind, Limits, LogLine, LogSink, MemoryCheckpoints,
    SecretValue, TaskContext, TaskReport, TaskRequest, WorkspaceMount,
};

use crate::prepare::Prepared;
use crate::registry::ResolvedPlugin;

/// The run-level timeouts of semantics.md section 7.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunTimeouts {
    /// The whole run.
    pub pipeline: Option<Duration>,
    /// The non-finally tasks.
    pub tasks: Option<Duration>,
    /// The finally tasks, from when they start.
    pub finally: Option<Duration>,
}

/// How to run one pipeline run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The run's name (`$(context.pipelineRun.name)`).
    pub run_name: String,
    /// The run's unique id.
    pub run_uid: String,
    /// Bound pipeline workspaces: name -> host directory.
    pub workspaces: BTreeMap<String, PathBuf>,
    /// How many task attempts may run at once.
    pub parallelism: usize,
    /// Run-level timeouts.
    pub timeouts: RunTimeouts,
    /// Limits for each task attempt (the wall clock comes from the task's `timeout`).
    pub limits: Limits,
    /// Secret values by name; a task gets those its `secrets:` list names.
    pub secrets: BTreeMap<String, SecretValue>,
    /// HTTP destinations the operator allows tasks to reach.
    pub http_allow: Vec<HttpRule>,
}

impl RunOptions {
    /// Options with defaults: parallelism of 4 per core, no timeouts, default limits.
    pub fn new(run_name: impl Into<String>, run_uid: impl Into<String>) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        RunOptions {
            run_name: run_name.into(),
            run_uid: run_uid.into(),
            workspaces: BTreeMap::new(),
            parallelism: cores * 4,
            timeouts: RunTimeouts::default(),
            limits: Limits::default(),
            secrets: BTreeMap::new(),
            http_allow: Vec::new(),
        }
    }
}

/// Something that happened in a run, for live views and logs.
#[derive(Debug)]
pub enum RunEvent<'a> {
    /// A task changed phase.
    Transition {
        /// Task name.
        task: &'a str,
        /// Whether it is a `finally` task.
        is_finally: bool,
        /// New phase.
        phase: TaskPhase,
        /// Outcome, when terminal.
        outcome: Option<Outcome>,
        /// Reason (skip reason, failure reason, ...).
        reason: &'a str,
        /// Attempt, 0-based.
        attempt: u32,
        /// How long the attempt ran, when it just ended.
        elapsed: Option<Duration>,
    },
    /// A task wrote a log line.
    Log {
        /// Task name.
        task: &'a str,
        /// The line (already masked).
        line: &'a LogLine,
    },
    /// `finally` tasks are starting.
    FinallyStarted,
    /// The run is over.
    Finished(&'a RunSummary),
}

/// Receives a run's events. Called from several threads (log lines come from tasks).
pub trait RunObserver: Send + Sync {
    /// Takes one event.
    fn event(&self, event: RunEvent<'_>);
}

/// An observer that ignores everything.
pub struct Quiet;

impl RunObserver for Quiet {
    fn event(&self, _event: RunEvent<'_>) {}
}

/// A handle to cancel a run from elsewhere (Ctrl-C, an API call).
#[derive(Clone)]
pub struct CancelHandle(mpsc::UnboundedSender<CancelMode>);

impl CancelHandle {
    /// Asks the run to cancel in `mode`. Ignored once the run is over.
    pub fn cancel(&self, mode: CancelMode) {
        let _ = self.0.send(mode);
    }
}

/// A new cancel handle and the receiving end `execute` listens on.
pub fn cancel_channel() -> (CancelHandle, mpsc::UnboundedReceiver<CancelMode>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (CancelHandle(tx), rx)
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

/// Runs a prepared pipeline to its end and returns the summary.
pub async fn execute(
    prepared: Prepared,
    options: RunOptions,
    observer: Arc<dyn RunObserver>,
    cancel: mpsc::UnboundedReceiver<CancelMode>,
) -> RunSummary {
    Driver::new(prepared, options, observer).run(cancel).await
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
    summary: Option<RunSummary>,
}

impl Driver {
    fn new(prepared: Prepared, options: RunOptions, observer: Arc<dyn RunObserver>) -> Self {
        let context = RunContext {
            run_name: options.run_name.clone(),
            run_uid: options.run_uid.clone(),
            bound_workspaces: options.workspaces.keys().cloned().collect(),
        };
        Driver {
            state: RunState::new(Arc::new(prepared.plan), context),
            plugins: prepared.plugins,
            options,
            observer,
            queue: VecDeque::new(),
            running: HashMap::new(),
            tasks: JoinSet::new(),
            checkpoints: HashMap::new(),
            finally_deadline: None,
            summary: None,
        }
    }

    async fn run(mut self, mut cancel: mpsc::UnboundedReceiver<CancelMode>) -> RunSummary {
        let started = Instant::now();
        let mut pipeline_deadline = self.options.timeouts.pipeline.map(|d| started + d);
        let mut tasks_deadline = self.options.timeouts.tasks.map(|d| started + d);
        let mut cancel_open = true;
        let mut pending: VecDeque<Action> = self.state.start().into();
        loop {
            while let Some(action) = pending.pop_front() {
                pending.extend(self.apply(action));
            }
            pending.extend(self.launch());
            if !pending.is_empty() {
                continue;
            }
            if let Some(summary) = self.summary.take() {
                self.observer.event(RunEvent::Finished(&summary));
                return summary;
            }
            let actions = tokio::select! {
                Some(joined) = self.tasks.join_next(), if !self.tasks.is_empty() => match joined {
                    Ok((node, attempt, report)) => self.finished(node, attempt, report),
                    // Aborted attempts were already reported as cancelled.
                    Err(err) if err.is_cancelled() => Vec::new(),
                    Err(err) => self.state.infra_error(format!("a task's host thread failed: {err}")),
                },
                mode = cancel.recv(), if cancel_open => match mode {
                    Some(mode) => self.state.cancel(mode),
                    None => { cancel_open = false; Vec::new() }
                },
                () = sleep_until(pipeline_deadline) => {
                    pipeline_deadline = None;
                    self.state.pipeline_timeout()
                },
                () = sleep_until(tasks_deadline) => {
                    tasks_deadline = None;
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

    /// Carries out one action; returns the actions that follow from it.
    fn apply(&mut self, action: Action) -> Vec<Action> {
        match action {
            Action::Start(start) => {
                self.queue.push_back(start);
                Vec::new()
            }
            Action::Cancel { node, attempt, .. } => {
                if let Some(at) = self
                    .queue
                    .iter()
                    .position(|s| s.node == node && s.attempt == attempt)
                {
                    self.queue.remove(at);
                    return self.state.task_cancelled(node, attempt);
                }
                match self.running.get(&node) {
                    Some(running) if running.attempt == attempt => {
                        running.abort.abort();
                        self.running.remove(&node);
                        self.state.task_cancelled(node, attempt)
                    }
                    _ => Vec::new(),
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
            Action::FinallyStarted => {
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

    /// Starts queued attempts while there is room.
    fn launch(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        while self.running.len() < self.options.parallelism.max(1) {
            let Some(start) = self.queue.pop_front() else {
                break;
            };
            let Some(resolved) = self.plugins.get(&start.plugin).cloned() else {
                actions.extend(self.state.infra_error(format!(
                    "plugin `{}` of task `{}` was not prepared",
                    start.plugin, start.name
                )));
                continue;
            };
            let plugin = resolved.plugin.clone();
            let request = self.request(&start, &resolved);
            let (node, attempt) = (start.node, start.attempt);
            let abort = self
                .tasks
                .spawn(async move { (node, attempt, plugin.run(request).await) });
            self.running.insert(
                node,
                Attempt {
                    attempt,
                    abort,
                    started: Instant::now(),
                },
            );
            actions.extend(self.state.task_started(node, attempt));
        }
        actions
    }

    fn finished(&mut self, node: NodeId, attempt: u32, report: TaskReport) -> Vec<Action> {
        if self
            .running
            .get(&node)
            .is_some_and(|r| r.attempt == attempt)
        {
            // Keep the entry until the terminal transition has read its start time.
            let actions = match &report.ending {
                TaskEnding::Errored { reason, .. } if reason == LimitKind::WallClock.reason() => {
                    self.state.task_timed_out(node, attempt)
                }
                _ => self
                    .state
                    .task_ended(node, attempt, report.ending, report.results),
            };
            let mut follow = Vec::new();
            for action in actions {
                follow.extend(self.apply(action));
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

    fn request(&mut self, start: &StartTask, resolved: &ResolvedPlugin) -> TaskRequest {
        let mut limits = self.options.limits.clone();
        limits.wall_clock = start.timeout;
        let mut grants = Grants::default();
        for name in &start.secrets {
            if let Some(value) = self.options.secrets.get(name) {
                grants.secrets.insert(name.clone(), value.clone());
            }
        }
        grants.http = self.options.http_allow.clone();
        for (task_side, pipeline_side) in &start.workspaces {
            if let Some(host_path) = self.options.workspaces.get(pipeline_side) {
                let read_only = resolved
                    .info
                    .capabilities
                    .workspaces
                    .iter()
                    .any(|w| &w.name == task_side && w.read_only);
                grants.workspaces.push(WorkspaceMount {
                    name: task_side.clone(),
                    host_path: host_path.clone(),
                    guest_path: format!("/workspace/{task_side}"),
                    read_only,
                });
            }
        }
        let checkpoints = self
            .checkpoints
            .entry(start.node)
            .or_insert_with(|| Arc::new(MemoryCheckpoints::default()))
            .clone();
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
            log: Arc::new(TaskLog {
                task: start.name.clone(),
                observer: self.observer.clone(),
            }),
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
