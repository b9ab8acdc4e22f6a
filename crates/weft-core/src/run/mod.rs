//! The run state machine: pure and deterministic; an async engine drives it.
//!
//! # Contract
//!
//! 1. Build a [`Plan`] ([`crate::load`] or [`Plan::new`]), then
//!    `RunState::new(Arc<Plan>, RunContext)`.
//! 2. Call [`RunState::start`] once; carry out the [`Action`]s it returns, in order.
//! 3. Report what happens through the input methods, each returning more actions:
//!    [`RunState::task_started`] (the engine really began a queued task),
//!    [`RunState::task_ended`], [`RunState::task_timed_out`] (its own `timeout`),
//!    [`RunState::task_cancelled`] (confirmation after an [`Action::Cancel`]),
//!    [`RunState::cancel`], [`RunState::tasks_timeout`], [`RunState::finally_timeout`],
//!    [`RunState::pipeline_timeout`], [`RunState::infra_error`],
//!    [`RunState::task_launch_failed`] (an attempt the engine could not begin), and
//!    [`RunState::abandon`] (the last resort for a run that cannot progress).
//! 4. [`Action::Finished`] comes exactly once, when every task is terminal.
//!    [`RunState::report`] gives the machine-readable document at any time.
//!
//! Actions: [`Action::Start`] (run a task attempt with fully substituted params),
//! [`Action::Cancel`] (abort it, then call `task_cancelled`), [`Action::Transition`] (every
//! phase change, skips included: for the live view and persistence),
//! [`Action::FinallyStarted`], [`Action::Finished`].
//!
//! Events for an attempt that is not the current one, or for a terminal task, are
//! ignored (they are stale), so replaying events is harmless.
//!
//! Cost: readiness is tracked with in-degree counters and aggregates with a [`Tally`], so a
//! whole run is O(V+E) plus one sweep over pending tasks per run-level change (stop,
//! halt, cancel, timeout), which happens a bounded number of times.

use crate::contract::{ParamValue, TaskEnding};
use crate::model::TaskKind;

/// Reason of a task a `--failed-only` re-run kept from the previous attempt.
pub const CARRIED: &str = "Carried";
use crate::model::{Flow, HaltMode, WhenOperator};
use crate::operation::{Operation, RunStage, TaskFacts, TaskStage, WaitStage};
use crate::plan::{NodeId, Plan, RunVar, ValueTemplate};
use crate::status::{
    CancelMode, Outcome, RunFacts, RunStatus, SkipFacts, SkipReason, Tally, TaskStatusView,
    TasksOutcome, TasksStatus, apply_policy, final_status, matrix_status_view, reasons,
    skip_reason, task_status_view,
};
use crate::vars::{Piece, Template};
use crate::waits::{WaitEnding, WaitKind};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

mod nested;

/// What the run knows about itself besides the plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunContext {
    /// `$(context.pipelineRun.name)`.
    pub run_name: String,
    /// `$(context.pipelineRun.uid)`.
    pub run_uid: String,
    /// Pipeline workspaces bound for this run (`$(workspaces.w.bound)`).
    pub bound_workspaces: BTreeSet<String>,
}

/// Where a task is (semantics.md section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TaskPhase {
    /// Waiting for its parents.
    Pending,
    /// Waiting for an approval, gate or schedule.
    Blocked,
    /// Start was requested from the engine.
    Queued,
    /// The engine began it.
    Running,
    /// Cancel was requested from the engine.
    Cancelling,
    /// Done; see the outcome.
    Terminal,
}

/// Where the run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RunPhase {
    /// Waiting for a slot of its concurrency group (release-control.md section 4); the
    /// engine holds it here before [`RunState::start`].
    Queued,
    /// Waiting for the time it was scheduled for (section 5).
    Scheduled,
    /// Tasks are running.
    Running,
    /// A task failed: nothing new starts.
    Stopping,
    /// A task halted the run: nothing new starts.
    Halting,
    /// A user cancelled; waiting for tasks to end.
    Cancelling,
    /// `finally` tasks are running.
    RunningFinally,
    /// Done.
    Finished,
}

impl RunPhase {
    /// The phase name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunPhase::Queued => "Queued",
            RunPhase::Scheduled => "Scheduled",
            RunPhase::Running => "Running",
            RunPhase::Stopping => "Stopping",
            RunPhase::Halting => "Halting",
            RunPhase::Cancelling => "Cancelling",
            RunPhase::RunningFinally => "RunningFinally",
            RunPhase::Finished => "Finished",
        }
    }
}

/// Everything the engine needs to run one attempt of a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartTask {
    /// Node id.
    pub node: NodeId,
    /// Its name (a matrixed task's combination is `<task>-<index>`).
    pub name: String,
    /// The pipeline task it runs: grants and per-task rules are given to this name.
    pub pipeline_task: String,
    /// Plugin (`taskRef.name`).
    pub plugin: String,
    /// Attempt number, 0-based.
    pub attempt: u32,
    /// `retries` of the task.
    pub retries: u32,
    /// A `finally` task.
    pub is_finally: bool,
    /// Params, fully substituted.
    pub params: BTreeMap<String, ParamValue>,
    /// The task's own timeout.
    pub timeout: Option<Duration>,
    /// Secrets granted to it.
    pub secrets: Vec<String>,
    /// (task-side name, pipeline workspace).
    pub workspaces: Vec<(String, String)>,
}

/// A task that waits: its attempt as a [`StartTask`] (params rendered; a gate's plugin
/// One more plugin of a gate and its rendered params.
#[derive(Debug, Clone, PartialEq)]
pub struct GateCheck {
    /// The gate plugin.
    pub plugin: String,
    /// Its params.
    pub params: BTreeMap<String, ParamValue>,
}

/// and params) and what it waits for.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitTask {
    /// The attempt.
    pub start: StartTask,
    /// What it waits for.
    pub kind: WaitKind,
    /// A gate's further plugins (the `gates:` sugar lists several), params rendered: each
    /// sample evaluates the start's plugin and these, and passes only if all pass.
    pub checks: Vec<GateCheck>,
}

/// Reasons of `Errored` endings that are never retried: the engine records them when it
/// recovers a run, and a retry would run what the recovery strategy chose not to.
pub const NOT_RETRIED: &[&str] = &[
    crate::replay::ENGINE_RESTARTED,
    crate::replay::NOT_IDEMPOTENT,
];

/// What the engine must do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Run an attempt of a task. Boxed: a settle may queue every task at once, and the
    /// engine keeps the start queued until a slot frees, so only a pointer moves.
    Start(Box<StartTask>),
    /// Wait for people or for a gate (release-control.md): the engine keeps the wait in
    /// the store and calls [`RunState::task_waited`] when it ends (or confirms an
    /// [`Action::Cancel`] with [`RunState::task_cancelled`]). Boxed, as are
    /// [`Action::Start`] and [`Action::Finished`]: a settle may queue every task at once,
    /// and each action is as large as the largest variant.
    Wait(Box<WaitTask>),
    /// Abort an attempt, then call [`RunState::task_cancelled`]. The engine confirms every
    /// cancel, at once for an attempt it does not hold (never launched, already gone):
    /// until it does, the task stays `Cancelling` and the run cannot end.
    Cancel {
        /// Node id.
        node: NodeId,
        /// Attempt to abort.
        attempt: u32,
        /// Why (e.g. `RunCancelled`, `RunHalted`, `TasksTimeout`).
        reason: String,
    },
    /// A task changed phase (skips included).
    Transition {
        /// Node id.
        node: NodeId,
        /// Task name.
        name: String,
        /// New phase.
        phase: TaskPhase,
        /// Outcome, when terminal.
        outcome: Option<Outcome>,
        /// Reason (skip reason, failure reason, `Retrying`...).
        reason: String,
        /// Attempt, 0-based.
        attempt: u32,
    },
    /// An attempt ended in a way that is retried: the attempt itself is over (with this
    /// outcome and reason, for its own record), the task is not (its next attempt is
    /// queued by the actions that follow).
    AttemptRetried {
        /// Node id.
        node: NodeId,
        /// Task name.
        name: String,
        /// The attempt that ended, 0-based.
        attempt: u32,
        /// How that attempt ended (`Failed`, `Errored` or `TimedOut`).
        outcome: Outcome,
        /// Its reason (`Failed`, the error's reason, `TaskRunTimeout`).
        reason: String,
    },
    /// A task that runs a pipeline began an attempt (`pipelineRef`/`pipelineSpec`; see
    /// [`crate::child`]): its child's tasks come as their own actions, named `<task>.<x>`.
    /// The engine records the attempt and, when the task has a `timeout`, calls
    /// [`RunState::task_timed_out`] once it passes; it launches nothing for it.
    ChildStarted(Box<StartTask>),
    /// An attempt of a task that runs a pipeline is over (its child pipeline finished):
    /// the engine records it as any attempt's ending. What happens to the task follows.
    ChildEnded {
        /// Node id.
        node: NodeId,
        /// Task name.
        name: String,
        /// The attempt, 0-based.
        attempt: u32,
        /// How it ended.
        ending: ChildEnding,
        /// The child's `spec.results` that resolved.
        results: BTreeMap<String, String>,
    },
    /// Every non-finally task is terminal and `finally` tasks are being started.
    FinallyStarted,
    /// The run is over (emitted exactly once).
    Finished(Box<RunSummary>),
}

/// How an attempt of a task that runs a pipeline ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ChildEnding {
    /// The child finished: `Success` (`Succeeded`, `Completed`), `Warning`, `Failure`
    /// (its message the child's reason) or `Errored`.
    Ended(TaskEnding),
    /// The task's `timeout` passed.
    TimedOut,
    /// The parent cancelled it.
    Cancelled,
}

/// The task that halted the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HaltedBy {
    /// Task name.
    pub task: String,
    /// Its halt message.
    pub message: String,
}

/// The end of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    /// Final status.
    pub status: RunStatus,
    /// Its reason.
    pub reason: String,
    /// `$(tasks.status)` at the end.
    pub tasks_status: TasksStatus,
    /// `$(tasks.outcome)` at the end.
    pub tasks_outcome: TasksOutcome,
    /// Who halted the run, if anyone.
    pub halted_by: Option<HaltedBy>,
    /// `spec.results` whose references all resolved.
    pub results: BTreeMap<String, String>,
    /// The report document (per-task records).
    pub report: RunReport,
}

/// The machine-readable result of semantics.md section 8.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    /// The run.
    pub run: RunHeader,
    /// Every task in declaration order, `finally` last.
    pub tasks: Vec<TaskReport>,
}

/// The `run` object of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunHeader {
    /// Run name.
    pub name: String,
    /// Final status, or the run phase while it goes.
    pub status: String,
    /// Reason.
    pub reason: String,
    /// `$(tasks.status)`.
    pub tasks_status: String,
    /// `$(tasks.outcome)`.
    pub tasks_outcome: String,
    /// Who halted the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub halted_by: Option<HaltedBy>,
    /// Checkpoints found already stored (a recovered run skipping work), when journaled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_hits: Option<u64>,
    /// Which attempt of the run this is (release-control.md section 6); 1 for now.
    pub attempt: u32,
    /// Its `<status, operationStatus>` pair.
    pub operation: Operation,
}

/// One task of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskReport {
    /// Task name.
    pub name: String,
    /// In `spec.finally`.
    pub finally: bool,
    /// Outcome when terminal, else the phase.
    pub status: String,
    /// Reason.
    pub reason: String,
    /// Exit code of the last attempt's raw ending, if it had one.
    pub exit_code: Option<i32>,
    /// Attempts started.
    pub attempts: u32,
    /// Results of the last attempt.
    pub results: BTreeMap<String, String>,
    /// Message of the raw ending, if any.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Its `<status, operationStatus>` pair.
    pub operation: Operation,
    /// For one combination of a matrixed task: which.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matrix: Option<Box<MatrixReport>>,
    /// It runs a pipeline (`pipelineRef`/`pipelineSpec`): its tasks follow, nested.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub runs_pipeline: bool,
    /// For a task of a pipeline a task runs: that task of the run's own pipeline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nested_in: Option<String>,
}

/// Which combination of a matrixed task a task of the report is.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MatrixReport {
    /// The pipeline task.
    pub task: String,
    /// Which combination, from 0.
    pub index: usize,
    /// Its params.
    pub params: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
struct NodeState {
    phase: TaskPhase,
    attempt: u32,
    attempts: u32,
    outcome: Option<Outcome>,
    reason: String,
    message: String,
    flow: Flow,
    raw: Option<TaskEnding>,
    exit_code: Option<i32>,
    results: BTreeMap<String, String>,
    waiting_on: u32,
    parent_skipped: bool,
    /// Attempts an earlier engine made before this run state took over (recovery with
    /// `startOver`): counted in the report, never in `$(context.task.retry-count)`.
    prior_attempts: u32,
    /// What the node becomes once a requested cancel is confirmed.
    on_cancelled: Option<(Outcome, &'static str)>,
    /// An approval approved but deferred (release-control.md section 1).
    deferred: bool,
    /// When it became terminal, as the count of nodes that did before it.
    ended_order: Option<i64>,
}

/// The state of one pipeline run. See the module docs for the contract.
#[derive(Debug, Clone)]
pub struct RunState {
    plan: Arc<Plan>,
    context: RunContext,
    nodes: Vec<NodeState>,
    dag_tally: Tally,
    all_tally: Tally,
    stopping: bool,
    halted_by: Option<HaltedBy>,
    cancelled: Option<CancelMode>,
    /// A newer run of its concurrency group displaced it (the cancel's reason).
    superseded: bool,
    tasks_timed_out: bool,
    finally_timed_out: bool,
    pipeline_timed_out: bool,
    infra_error: Option<String>,
    started: bool,
    finally_started: bool,
    finished: bool,
    /// Nodes that just became terminal and whose children still need telling.
    settled: VecDeque<NodeId>,
    /// How many nodes became terminal so far (orders endings for the operation view).
    ended_count: i64,
    /// Tasks a re-run (`--failed-only`) keeps from the previous attempt, by node.
    carried: Vec<Option<Carried>>,
    /// Which attempt of its run this is (1 unless re-run).
    attempt: u32,
    /// The running child pipelines, by the task running each.
    children: BTreeMap<NodeId, nested::ChildRun>,
    /// Per task running a pipeline: attempts its child's nodes made in earlier attempts
    /// of the task (a retry's child numbers its attempts after them).
    child_offsets: BTreeMap<NodeId, Vec<u32>>,
    /// Children that finished, for `settle` to end their tasks.
    child_ends: VecDeque<(NodeId, RunSummary)>,
    /// The tasks of each child's last run, named as the parent's nodes.
    child_reports: BTreeMap<NodeId, Vec<TaskReport>>,
}

/// A task a re-run keeps from the previous attempt of its run (release-control.md section
/// 6, `--failed-only`): its outcome and results stand, and it does not run.
#[derive(Debug, Clone, PartialEq)]
pub struct Carried {
    /// `Succeeded` or `SucceededWithWarnings`.
    pub outcome: Outcome,
    /// Its results.
    pub results: BTreeMap<String, String>,
    /// Its message.
    pub message: String,
    /// Its exit code.
    pub exit_code: Option<i32>,
    /// The attempt of the run it comes from.
    pub from_attempt: u32,
}

impl Carried {
    /// Whether a task that ended with `outcome` is kept by a `--failed-only` re-run.
    pub fn keeps(outcome: Outcome) -> bool {
        matches!(outcome, Outcome::Succeeded | Outcome::SucceededWithWarnings)
    }
}

impl RunState {
    /// A run of `plan`, nothing started yet.
    pub fn new(plan: Arc<Plan>, context: RunContext) -> Self {
        let nodes = plan.nodes[..plan.own_len]
            .iter()
            .map(|node| NodeState {
                phase: TaskPhase::Pending,
                attempt: 0,
                attempts: 0,
                outcome: None,
                reason: String::new(),
                message: String::new(),
                flow: Flow::Continue,
                raw: None,
                exit_code: None,
                results: BTreeMap::new(),
                waiting_on: node.parent_count,
                parent_skipped: false,
                prior_attempts: 0,
                on_cancelled: None,
                deferred: false,
                ended_order: None,
            })
            .collect();
        let dag_len = plan.dag_len;
        let total = plan.own_len;
        RunState {
            plan,
            context,
            nodes,
            dag_tally: Tally::new(dag_len),
            all_tally: Tally::new(total),
            stopping: false,
            halted_by: None,
            cancelled: None,
            superseded: false,
            tasks_timed_out: false,
            finally_timed_out: false,
            pipeline_timed_out: false,
            infra_error: None,
            started: false,
            finally_started: false,
            finished: false,
            settled: VecDeque::new(),
            ended_count: 0,
            carried: Vec::new(),
            attempt: 1,
            children: BTreeMap::new(),
            child_offsets: BTreeMap::new(),
            child_ends: VecDeque::new(),
            child_reports: BTreeMap::new(),
        }
    }

    /// Counts `prior(task)` attempts made by an earlier engine (a run recovered with
    /// `startOver` runs each task again as new attempts) in the report's `attempts`.
    pub fn set_prior_attempts(&mut self, prior: impl Fn(&str) -> u32) {
        for (spec, state) in self.plan.nodes.iter().zip(&mut self.nodes) {
            state.prior_attempts = prior(&spec.name);
        }
    }

    /// Keeps what `kept` says of each task from the previous attempt of the run (a
    /// `--failed-only` re-run): such a task ends as it did there when it is ready, without
    /// running. `finally` tasks always run again; only successes are kept.
    pub fn set_carried(&mut self, kept: impl Fn(&str) -> Option<Carried>) {
        self.carried = self
            .plan
            .nodes
            .iter()
            .map(|node| kept(&node.name).filter(|c| !node.is_finally && Carried::keeps(c.outcome)))
            .collect();
    }

    /// This is attempt `attempt` of its run (release-control.md section 6): the report
    /// says so.
    pub fn set_attempt(&mut self, attempt: u32) {
        self.attempt = attempt.max(1);
    }

    /// The plan this run executes.
    pub fn plan(&self) -> &Arc<Plan> {
        &self.plan
    }

    /// Starts the run: every task without parents is started or skipped.
    pub fn start(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.started {
            return actions;
        }
        self.started = true;
        for node in 0..self.plan.dag_len {
            if self.nodes[node].waiting_on == 0 {
                self.consider(node, &mut actions);
            }
        }
        self.settle(&mut actions);
        actions
    }

    /// The engine began `attempt` of `node` (Queued -> Running).
    pub fn task_started(&mut self, node: NodeId, attempt: u32) -> Vec<Action> {
        if node >= self.plan.own_len {
            return self.nested(node, attempt, |child, node, attempt| {
                child.task_started(node, attempt)
            });
        }
        let mut actions = Vec::new();
        if let Some(state) = self.nodes.get(node)
            && state.phase == TaskPhase::Queued
            && state.attempt == attempt
        {
            self.set_phase(node, TaskPhase::Running, "", &mut actions);
        }
        actions
    }

    /// `attempt` of `node` ended as the plugin said, with its results.
    pub fn task_ended(
        &mut self,
        node: NodeId,
        attempt: u32,
        ending: TaskEnding,
        results: BTreeMap<String, String>,
    ) -> Vec<Action> {
        if node >= self.plan.own_len {
            return self.nested(node, attempt, |child, node, attempt| {
                child.task_ended(node, attempt, ending, results)
            });
        }
        let mut actions = Vec::new();
        self.end_attempt(node, attempt, ending, results, &mut actions);
        self.settle(&mut actions);
        actions
    }

    /// `attempt` of own `node` ended as `ending` (a plugin's, or its child pipeline's).
    fn end_attempt(
        &mut self,
        node: NodeId,
        attempt: u32,
        ending: TaskEnding,
        results: BTreeMap<String, String>,
        actions: &mut Vec<Action>,
    ) {
        if !self.is_current(node, attempt) {
            return;
        }
        let retryable = match &ending {
            TaskEnding::Failure { .. } => true,
            // Errors the engine records about recovery say nothing a retry could change.
            TaskEnding::Errored { reason, .. } => !NOT_RETRIED.contains(&reason.as_str()),
            _ => false,
        };
        let state = &mut self.nodes[node];
        state.exit_code = ending.exit_code();
        state.message = ending.message().to_string();
        state.results = results;
        state.raw = Some(ending.clone());
        if retryable && self.may_retry(node) {
            let (outcome, reason) = match &ending {
                TaskEnding::Errored { reason, .. } => (Outcome::Errored, reason.clone()),
                _ => (Outcome::Failed, reasons::FAILED.to_string()),
            };
            self.retry(node, outcome, reason, actions);
            return;
        }
        let plan = Arc::clone(&self.plan);
        let spec = &plan.nodes[node];
        let mapped = apply_policy(&ending, spec.on_error, &spec.on_status);
        self.terminate(node, mapped.outcome, mapped.reason, mapped.flow, actions);
        if !spec.is_finally {
            match mapped.flow {
                Flow::Continue => {}
                Flow::Stop => {
                    self.stopping = true;
                    self.sweep_pending(false, actions);
                }
                Flow::Halt => {
                    if self.halted_by.is_none() {
                        self.halted_by = Some(HaltedBy {
                            task: spec.name.clone(),
                            message: ending.message().to_string(),
                        });
                    }
                    if spec.halt == HaltMode::Cancel {
                        self.cancel_active(
                            0..self.plan.dag_len,
                            (Outcome::Cancelled, reasons::RUN_HALTED),
                            actions,
                        );
                    }
                    self.sweep_pending(false, actions);
                }
            }
        }
    }

    /// `attempt` of `node` ran past its own `timeout` (the engine already aborted it).
    /// Retried like a failure, as Tekton does.
    pub fn task_timed_out(&mut self, node: NodeId, attempt: u32) -> Vec<Action> {
        if node >= self.plan.own_len {
            return self.nested(node, attempt, |child, node, attempt| {
                child.task_timed_out(node, attempt)
            });
        }
        let mut actions = Vec::new();
        if self.children.contains_key(&node) {
            // Its whole child pipeline times out; the task ends when the child does.
            self.time_out_child(node, attempt, &mut actions);
        } else {
            self.time_out_attempt(node, attempt, &mut actions);
        }
        self.settle(&mut actions);
        actions
    }

    /// `attempt` of own `node` ran past its `timeout` and is over.
    fn time_out_attempt(&mut self, node: NodeId, attempt: u32, actions: &mut Vec<Action>) {
        if !self.is_current(node, attempt) {
            return;
        }
        let state = &mut self.nodes[node];
        state.raw = None;
        state.exit_code = None;
        state.results.clear();
        if self.may_retry(node) {
            let reason = reasons::TASK_TIMEOUT.to_string();
            self.retry(node, Outcome::TimedOut, reason, actions);
            return;
        }
        self.terminate(
            node,
            Outcome::TimedOut,
            reasons::TASK_TIMEOUT.into(),
            Flow::Stop,
            actions,
        );
        if !self.plan.nodes[node].is_finally {
            self.stopping = true;
            self.sweep_pending(false, actions);
        }
    }

    /// The engine could not launch `attempt` of `node` (its plugin was not prepared, the
    /// host refused it): the plugin never ran, so the attempt ends `Errored` with reason
    /// `LaunchFailed` and `message`, whatever `retries`, `onError` and `onStatus` say (they
    /// are about what a plugin did). The run goes on as after any stopping error: nothing
    /// new starts, dependents are skipped, `finally` runs. An attempt the run had already
    /// asked to cancel ends as that cancel said: it never ran, as asked.
    pub fn task_launch_failed(
        &mut self,
        node: NodeId,
        attempt: u32,
        message: impl Into<String>,
    ) -> Vec<Action> {
        if node >= self.plan.own_len {
            let message = message.into();
            return self.nested(node, attempt, |child, node, attempt| {
                child.task_launch_failed(node, attempt, message)
            });
        }
        let mut actions = Vec::new();
        if !self.is_current(node, attempt) {
            return actions;
        }
        if self.nodes[node].phase == TaskPhase::Cancelling {
            return self.task_cancelled(node, attempt);
        }
        let message = message.into();
        let state = &mut self.nodes[node];
        state.exit_code = None;
        state.results.clear();
        state.message.clone_from(&message);
        state.raw = Some(TaskEnding::Errored {
            reason: reasons::LAUNCH_FAILED.into(),
            message,
        });
        self.terminate(
            node,
            Outcome::Errored,
            reasons::LAUNCH_FAILED.into(),
            Flow::Stop,
            &mut actions,
        );
        if !self.plan.nodes[node].is_finally {
            self.stopping = true;
            self.sweep_pending(false, &mut actions);
        }
        self.settle(&mut actions);
        actions
    }

    /// `attempt` of waiting `node` was approved but deferred (`true`), or is no longer
    /// (`false`): only the operation view changes.
    pub fn task_deferred(&mut self, node: NodeId, attempt: u32, deferred: bool) {
        if node >= self.plan.own_len {
            self.nested(node, attempt, |child, node, attempt| {
                child.task_deferred(node, attempt, deferred);
                Vec::new()
            });
        } else if self.is_current(node, attempt) {
            self.nodes[node].deferred = deferred;
        }
    }

    /// `attempt` of waiting `node` ended as `ending` (a decision, a deferral passed, a
    /// gate passing or timing out, a wait's timeout): see [`crate::waits::wait_result`].
    pub fn task_waited(&mut self, node: NodeId, attempt: u32, ending: &WaitEnding) -> Vec<Action> {
        if node >= self.plan.own_len {
            return self.nested(node, attempt, |child, node, attempt| {
                child.task_waited(node, attempt, ending)
            });
        }
        let mut actions = Vec::new();
        if !self.is_current(node, attempt) || self.nodes[node].phase == TaskPhase::Cancelling {
            return actions;
        }
        let plan = Arc::clone(&self.plan);
        let spec = &plan.nodes[node];
        let result = crate::waits::wait_result(ending, spec.on_error);
        let state = &mut self.nodes[node];
        state.exit_code = None;
        state.raw = Some(result.raw);
        state.message.clone_from(&result.message);
        state.results = result.results;
        self.terminate(
            node,
            result.outcome,
            result.reason.to_string(),
            result.flow,
            &mut actions,
        );
        if !spec.is_finally && result.flow == Flow::Stop {
            self.stopping = true;
            self.sweep_pending(false, &mut actions);
        }
        self.settle(&mut actions);
        actions
    }

    /// The engine confirms `attempt` of `node` was aborted after an [`Action::Cancel`].
    pub fn task_cancelled(&mut self, node: NodeId, attempt: u32) -> Vec<Action> {
        if node >= self.plan.own_len {
            return self.nested(node, attempt, |child, node, attempt| {
                child.task_cancelled(node, attempt)
            });
        }
        let mut actions = Vec::new();
        self.cancelled_attempt(node, attempt, &mut actions);
        self.settle(&mut actions);
        actions
    }

    /// `attempt` of own `node` was aborted as asked: it ends as the cancel said.
    fn cancelled_attempt(&mut self, node: NodeId, attempt: u32, actions: &mut Vec<Action>) {
        if !self.is_current(node, attempt) {
            return;
        }
        let (outcome, reason) = self.nodes[node]
            .on_cancelled
            .unwrap_or((Outcome::Cancelled, "TaskCancelled"));
        self.terminate(node, outcome, reason.into(), Flow::Continue, actions);
    }

    /// A user cancels the run. A stronger mode may follow a weaker one (a second Ctrl-C).
    pub fn cancel(&mut self, mode: CancelMode) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.finished || self.cancelled.is_some_and(|previous| previous >= mode) {
            return actions;
        }
        self.cancelled = Some(mode);
        let user = (Outcome::Cancelled, reasons::RUN_CANCELLED);
        if mode == CancelMode::Cancelled {
            self.cancel_active(0..self.plan.own_len, user, &mut actions);
            self.sweep_pending(true, &mut actions);
        } else if !self.finally_started {
            if mode.cancels_running() {
                self.cancel_active(0..self.plan.dag_len, user, &mut actions);
            }
            self.sweep_pending(false, &mut actions);
        }
        self.settle(&mut actions);
        actions
    }

    /// Ends a run that never started (it waited in its concurrency group's queue or for
    /// its scheduled time): no task runs, `finally` included, whatever cancel was asked
    /// for; reason `Superseded` when a newer run of its group displaced it, else
    /// `Cancelled`. A run already started is cancelled as [`RunState::supersede`] or
    /// [`RunState::cancel`] would.
    pub fn withdraw(&mut self, superseded: bool) -> Vec<Action> {
        if self.started {
            return if superseded {
                self.supersede()
            } else {
                self.cancel(CancelMode::Cancelled)
            };
        }
        // Nothing may start after this.
        self.started = true;
        self.superseded |= superseded;
        self.cancel(CancelMode::Cancelled)
    }

    /// A newer run of its group displaced this running one (`cancelInProgress`): it is
    /// cancelled as `CancelledRunFinally`, with reason `Superseded`.
    pub fn supersede(&mut self) -> Vec<Action> {
        if self.finished {
            return Vec::new();
        }
        self.superseded = true;
        self.cancel(CancelMode::CancelledRunFinally)
    }

    /// The run's `tasks` timeout passed: running tasks time out, unstarted ones are
    /// skipped `RunTimedOut`, `finally` still runs.
    pub fn tasks_timeout(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.finished || self.finally_started || self.tasks_timed_out {
            return actions;
        }
        self.tasks_timed_out = true;
        self.cancel_active(
            0..self.plan.dag_len,
            (Outcome::TimedOut, reasons::TASKS_TIMEOUT),
            &mut actions,
        );
        self.sweep_pending(false, &mut actions);
        self.settle(&mut actions);
        actions
    }

    /// The run's `finally` timeout passed: running finally tasks time out.
    pub fn finally_timeout(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.finished || self.finally_timed_out {
            return actions;
        }
        self.finally_timed_out = true;
        let finally = self.plan.dag_len..self.plan.own_len;
        for node in finally.clone() {
            if self.nodes[node].phase == TaskPhase::Pending && self.finally_started {
                self.skip(node, SkipReason::RunTimedOut.as_str(), &mut actions);
            }
        }
        self.cancel_active(
            finally,
            (Outcome::TimedOut, reasons::FINALLY_TIMEOUT),
            &mut actions,
        );
        self.settle(&mut actions);
        actions
    }

    /// The run's `pipeline` timeout passed: everything running times out, nothing else
    /// (not even `finally`) starts; the run ends `TimedOut`.
    pub fn pipeline_timeout(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.finished || self.pipeline_timed_out {
            return actions;
        }
        self.pipeline_timed_out = true;
        self.cancel_active(
            0..self.plan.own_len,
            (Outcome::TimedOut, reasons::PIPELINE_RUN_TIMEOUT),
            &mut actions,
        );
        self.sweep_pending(true, &mut actions);
        self.settle(&mut actions);
        actions
    }

    /// Infrastructure broke: running tasks are cancelled, nothing else starts, the run
    /// ends `Errored` with `message` as its reason.
    pub fn infra_error(&mut self, message: impl Into<String>) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.finished || self.infra_error.is_some() {
            return actions;
        }
        self.infra_error = Some(message.into());
        self.cancel_active(
            0..self.plan.own_len,
            (Outcome::Cancelled, reasons::INFRASTRUCTURE_ERROR),
            &mut actions,
        );
        self.sweep_pending(true, &mut actions);
        self.settle(&mut actions);
        actions
    }

    /// Last resort when the engine finds the run stalled: nothing runs, nothing is queued
    /// and nothing is due, yet the run is not over (a bug somewhere). Every task not yet
    /// terminal ends now, reason `InfrastructureError`: `Skipped` if it never started,
    /// `Cancelled` otherwise. The run ends `Errored` (with the first infrastructure error,
    /// else `message`). Always ends the run: [`Action::Finished`] comes with these actions
    /// unless it already came.
    pub fn abandon(&mut self, message: impl Into<String>) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.finished {
            return actions;
        }
        if self.infra_error.is_none() {
            self.infra_error = Some(message.into());
        }
        // Children are abandoned with their tasks: nothing of them is left to wait for.
        self.children.clear();
        self.child_ends.clear();
        for node in 0..self.nodes.len() {
            match self.nodes[node].phase {
                TaskPhase::Terminal => {}
                TaskPhase::Pending | TaskPhase::Blocked => {
                    self.skip(node, reasons::INFRASTRUCTURE_ERROR, &mut actions);
                }
                TaskPhase::Queued | TaskPhase::Running | TaskPhase::Cancelling => self.terminate(
                    node,
                    Outcome::Cancelled,
                    reasons::INFRASTRUCTURE_ERROR.into(),
                    Flow::Continue,
                    &mut actions,
                ),
            }
        }
        // Every task is terminal; with the infrastructure error set, `finally` is not
        // announced and the run finishes.
        self.settle(&mut actions);
        actions
    }

    /// Tasks that are not terminal yet, with their phases, in declaration order (those
    /// of running child pipelines after), for a watchdog naming what a stalled run waits
    /// for.
    pub fn unfinished_tasks(&self) -> Vec<(String, TaskPhase)> {
        let own = self
            .plan
            .nodes
            .iter()
            .zip(&self.nodes)
            .filter(|(_, state)| state.phase != TaskPhase::Terminal)
            .map(|(spec, state)| (spec.name.clone(), state.phase));
        own.chain(self.unfinished_child_tasks()).collect()
    }

    /// Where the run is.
    pub fn phase(&self) -> RunPhase {
        if self.finished {
            RunPhase::Finished
        } else if self.cancelled.is_some() {
            RunPhase::Cancelling
        } else if self.finally_started {
            RunPhase::RunningFinally
        } else if self.stopping || self.tasks_timed_out || self.pipeline_timed_out {
            RunPhase::Stopping
        } else if self.halted_by.is_some() {
            RunPhase::Halting
        } else {
            RunPhase::Running
        }
    }

    /// True once [`Action::Finished`] was emitted.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// `$(tasks.status)` now.
    pub fn tasks_status(&self) -> TasksStatus {
        self.dag_tally.tasks_status()
    }

    /// `$(tasks.outcome)` now.
    pub fn tasks_outcome(&self) -> TasksOutcome {
        self.dag_tally.tasks_outcome()
    }

    /// The final status, once every task is terminal.
    pub fn final_status(&self) -> Option<(RunStatus, String)> {
        (self.all_tally.terminal == self.all_tally.total)
            .then(|| final_status(&self.facts(), &self.all_tally))
    }

    /// The machine-readable document (semantics.md section 8), at any point of the run.
    pub fn report(&self) -> RunReport {
        let (status, reason) = match self.final_status() {
            Some((status, reason)) if self.finished => (status.as_str().to_string(), reason),
            _ => (self.phase().as_str().to_string(), String::new()),
        };
        RunReport {
            run: RunHeader {
                name: self.context.run_name.clone(),
                status,
                reason,
                tasks_status: self.tasks_status().as_str().to_string(),
                tasks_outcome: self.tasks_outcome().as_str().to_string(),
                halted_by: self.halted_by.clone(),
                checkpoint_hits: None,
                attempt: self.attempt,
                operation: self.operation(),
            },
            // A task that runs a pipeline is followed by that pipeline's tasks, nested.
            tasks: self
                .plan
                .nodes
                .iter()
                .zip(&self.nodes)
                .enumerate()
                .flat_map(|(node, (spec, state))| {
                    let own = TaskReport {
                        name: spec.name.clone(),
                        finally: spec.is_finally,
                        status: match state.outcome {
                            Some(outcome) => outcome.as_str().to_string(),
                            None => format!("{:?}", state.phase),
                        },
                        reason: state.reason.clone(),
                        exit_code: state.exit_code,
                        attempts: state.prior_attempts + state.attempts,
                        results: state.results.clone(),
                        message: state.message.clone(),
                        operation: crate::operation::task_operation(&self.task_facts(node)),
                        matrix: spec.matrix.as_ref().map(|member| {
                            Box::new(MatrixReport {
                                task: member.task.clone(),
                                index: member.index,
                                params: member.params.clone(),
                            })
                        }),
                        runs_pipeline: spec.child.is_some(),
                        nested_in: None,
                    };
                    let nested = match spec.child {
                        Some(_) => self.child_task_reports(node),
                        None => Vec::new(),
                    };
                    std::iter::once(own).chain(nested)
                })
                .collect(),
        }
    }

    /// The run's `<status, operationStatus>` pair (release-control.md section 7).
    pub fn operation(&self) -> Operation {
        let stage = if self.finished {
            match self.final_status() {
                Some((status, _)) => RunStage::Ended(status),
                None => RunStage::Running,
            }
        } else if self.cancelled.is_some() {
            RunStage::Cancelling
        } else {
            RunStage::Running
        };
        crate::operation::run_operation(stage, &self.all_task_facts())
    }

    /// What the operation view reads of every task, running child pipelines' included.
    fn all_task_facts(&self) -> Vec<TaskFacts> {
        let mut tasks: Vec<TaskFacts> = (0..self.nodes.len())
            .map(|node| self.task_facts(node))
            .collect();
        tasks.extend(self.child_facts());
        tasks
    }

    /// What the operation view reads of one node.
    fn task_facts(&self, node: NodeId) -> TaskFacts {
        let spec = &self.plan.nodes[node];
        let state = &self.nodes[node];
        let kind = spec.wait.map_or(TaskKind::Plugin, WaitKind::task_kind);
        let stage = match state.phase {
            TaskPhase::Pending => TaskStage::NotStarted,
            TaskPhase::Queued => TaskStage::QueuedForSlot,
            TaskPhase::Running => TaskStage::Running,
            TaskPhase::Blocked => TaskStage::Waiting(WaitStage::of(kind, state.deferred)),
            TaskPhase::Cancelling => TaskStage::Cancelling,
            TaskPhase::Terminal => TaskStage::Ended {
                outcome: state.outcome.unwrap_or(Outcome::Skipped),
                reason: state.reason.clone(),
            },
        };
        TaskFacts {
            kind,
            finally: spec.is_finally,
            stage,
            started: state.prior_attempts + state.attempts > 0,
            ended_at: state.ended_order,
        }
    }

    fn facts(&self) -> RunFacts {
        RunFacts {
            timed_out: self.pipeline_timed_out || self.tasks_timed_out,
            infra_error: self.infra_error.clone(),
            cancelled: self.cancelled,
            superseded: self.superseded,
            halted_by: self.halted_by.as_ref().map(|halted| halted.task.clone()),
        }
    }

    fn is_current(&self, node: NodeId, attempt: u32) -> bool {
        self.nodes.get(node).is_some_and(|state| {
            state.attempt == attempt
                && matches!(
                    state.phase,
                    TaskPhase::Blocked
                        | TaskPhase::Queued
                        | TaskPhase::Running
                        | TaskPhase::Cancelling
                )
        })
    }

    /// Attempts left, and nothing run-level forbids another one.
    fn may_retry(&self, node: NodeId) -> bool {
        let state = &self.nodes[node];
        let spec = &self.plan.nodes[node];
        let blocked = if spec.is_finally {
            self.cancelled == Some(CancelMode::Cancelled) || self.finally_timed_out
        } else {
            self.stopping
                || self.halted_by.is_some()
                || self.cancelled.is_some()
                || self.tasks_timed_out
        };
        state.attempt < spec.retries
            && state.phase != TaskPhase::Cancelling
            && !blocked
            && !self.pipeline_timed_out
            && self.infra_error.is_none()
    }

    /// Ends the current attempt of `node` as `outcome` and queues the next one.
    fn retry(&mut self, node: NodeId, outcome: Outcome, reason: String, actions: &mut Vec<Action>) {
        let state = &mut self.nodes[node];
        actions.push(Action::AttemptRetried {
            node,
            name: self.plan.nodes[node].name.clone(),
            attempt: state.attempt,
            outcome,
            reason,
        });
        state.attempt += 1;
        state.phase = TaskPhase::Pending;
        self.queue(node, "Retrying", actions);
    }

    fn set_phase(
        &mut self,
        node: NodeId,
        phase: TaskPhase,
        reason: &str,
        actions: &mut Vec<Action>,
    ) {
        let state = &mut self.nodes[node];
        state.phase = phase;
        actions.push(Action::Transition {
            node,
            name: self.plan.nodes[node].name.clone(),
            phase,
            outcome: None,
            reason: reason.to_string(),
            attempt: state.attempt,
        });
    }

    /// Emits the Start of the node's current attempt (a wait's Wait; a child pipeline's
    /// start).
    fn queue(&mut self, node: NodeId, reason: &str, actions: &mut Vec<Action>) {
        self.nodes[node].attempts += 1;
        if self.plan.nodes[node].child.is_some() {
            self.start_child(node, reason, actions);
            return;
        }
        let wait = self.plan.nodes[node].wait;
        let phase = if wait.is_some() {
            TaskPhase::Blocked
        } else {
            TaskPhase::Queued
        };
        self.set_phase(node, phase, reason, actions);
        let start = self.start_of(node);
        actions.push(match wait {
            Some(kind) => Action::Wait(Box::new(WaitTask {
                checks: self.plan.nodes[node]
                    .gate_checks
                    .iter()
                    .map(|check| GateCheck {
                        plugin: check.plugin.clone(),
                        params: check
                            .params
                            .iter()
                            .map(|(name, value)| (name.clone(), self.render_value(value, node)))
                            .collect(),
                    })
                    .collect(),
                start,
                kind,
            })),
            None => Action::Start(Box::new(start)),
        });
    }

    /// The node's current attempt, its params rendered.
    fn start_of(&self, node: NodeId) -> StartTask {
        let attempt = self.nodes[node].attempt;
        let spec = &self.plan.nodes[node];
        let params = spec
            .params
            .iter()
            .map(|(name, value)| (name.clone(), self.render_value(value, node)))
            .collect();
        StartTask {
            node,
            name: spec.name.clone(),
            pipeline_task: spec.pipeline_task().to_string(),
            plugin: spec.plugin.clone(),
            attempt,
            retries: spec.retries,
            is_finally: spec.is_finally,
            params,
            timeout: spec.timeout,
            secrets: spec.secrets.clone(),
            workspaces: spec.workspaces.clone(),
        }
    }

    /// A pending node whose parents are all terminal: start it or skip it.
    fn consider(&mut self, node: NodeId, actions: &mut Vec<Action>) {
        if self.nodes[node].phase != TaskPhase::Pending {
            return;
        }
        if self.infra_error.is_some() {
            self.skip(node, reasons::INFRASTRUCTURE_ERROR, actions);
            return;
        }
        let mut facts = self.run_facts_for(node);
        let spec = &self.plan.nodes[node];
        facts.results_missing = spec
            .result_refs
            .iter()
            .any(|(producer, result)| !self.nodes[*producer].results.contains_key(result));
        if skip_reason(facts).is_none() {
            facts.when_false = !self.when_holds(node);
        }
        facts.matrix_empty = spec.matrix.as_ref().is_some_and(|member| member.count == 0);
        let ready = self.nodes[node].waiting_on == 0;
        if ready
            && skip_reason(facts).is_none()
            && let Some(carried) = self.carried.get(node).cloned().flatten()
        {
            self.carry(node, carried, actions);
            return;
        }
        match skip_reason(facts) {
            Some(reason) => self.skip(node, reason.as_str(), actions),
            // A sweep may look at a node whose parents are not done: only skip it then.
            None if ready => self.queue(node, "", actions),
            None => {}
        }
    }

    /// Ends `node` as the previous attempt of the run did, without running it.
    fn carry(&mut self, node: NodeId, carried: Carried, actions: &mut Vec<Action>) {
        let state = &mut self.nodes[node];
        state.results = carried.results;
        state.exit_code = carried.exit_code;
        state.message = format!("kept from attempt {}", carried.from_attempt);
        if !carried.message.is_empty() {
            state.message = format!("{}: {}", state.message, carried.message);
        }
        state.raw = Some(match carried.outcome {
            Outcome::SucceededWithWarnings => TaskEnding::Warning {
                message: carried.message,
            },
            _ => TaskEnding::Success,
        });
        self.terminate(
            node,
            carried.outcome,
            CARRIED.to_string(),
            Flow::Continue,
            actions,
        );
    }

    /// What the run's state says about starting `node` now (run-level skip reasons).
    fn run_facts_for(&self, node: NodeId) -> SkipFacts {
        let spec = &self.plan.nodes[node];
        let state = &self.nodes[node];
        if spec.is_finally {
            SkipFacts {
                run_cancelled: self.cancelled == Some(CancelMode::Cancelled),
                run_timed_out: self.pipeline_timed_out || self.finally_timed_out,
                ..SkipFacts::default()
            }
        } else {
            SkipFacts {
                run_cancelled: self.cancelled.is_some(),
                run_timed_out: self.pipeline_timed_out || self.tasks_timed_out,
                run_stopping: self.stopping,
                run_halted: self.halted_by.is_some(),
                parent_skipped: state.parent_skipped,
                ..SkipFacts::default()
            }
        }
    }

    /// A wait nobody answered when the run stopped or halted (or was stopped gracefully)
    /// ends as a task that never started would: it waits for nothing any more. Where the
    /// run cancels its running tasks (a cancel, a timeout, an infrastructure error), waits
    /// are cancelled with them first, as running tasks.
    fn end_blocked(&mut self, node: NodeId, actions: &mut Vec<Action>) {
        let Some(reason) = skip_reason(self.run_facts_for(node)) else {
            return;
        };
        let outcome = match reason {
            SkipReason::RunCancelled => Outcome::Cancelled,
            SkipReason::RunTimedOut => Outcome::TimedOut,
            _ => Outcome::Skipped,
        };
        self.nodes[node].on_cancelled = Some((outcome, reason.as_str()));
        self.set_phase(node, TaskPhase::Cancelling, reason.as_str(), actions);
        actions.push(Action::Cancel {
            node,
            attempt: self.nodes[node].attempt,
            reason: reason.as_str().to_string(),
        });
    }

    fn when_holds(&self, node: NodeId) -> bool {
        self.plan.nodes[node].when.iter().all(|expr| {
            let input = self.render(&expr.input, node);
            let found = expr
                .values
                .iter()
                .any(|value| self.render(value, node) == input);
            match expr.operator {
                WhenOperator::In => found,
                WhenOperator::NotIn => !found,
            }
        })
    }

    fn skip(&mut self, node: NodeId, reason: &str, actions: &mut Vec<Action>) {
        self.terminate(
            node,
            Outcome::Skipped,
            reason.to_string(),
            Flow::Continue,
            actions,
        );
    }

    /// Makes a node terminal (once) and queues its children for notification.
    fn terminate(
        &mut self,
        node: NodeId,
        outcome: Outcome,
        reason: String,
        flow: Flow,
        actions: &mut Vec<Action>,
    ) {
        if self.nodes[node].phase == TaskPhase::Terminal {
            return;
        }
        let order = self.ended_count;
        self.ended_count += 1;
        let state = &mut self.nodes[node];
        state.phase = TaskPhase::Terminal;
        state.outcome = Some(outcome);
        state.flow = flow;
        state.reason = reason;
        state.on_cancelled = None;
        state.ended_order = Some(order);
        actions.push(Action::Transition {
            node,
            name: self.plan.nodes[node].name.clone(),
            phase: TaskPhase::Terminal,
            outcome: Some(outcome),
            reason: state.reason.clone(),
            attempt: state.attempt,
        });
        self.all_tally.record(outcome, &state.reason, flow);
        if !self.plan.nodes[node].is_finally {
            self.dag_tally.record(outcome, &state.reason, flow);
            self.settled.push_back(node);
        }
    }

    /// Propagates terminal nodes to their children (iteratively: a 100,000-task chain of
    /// skips must not recurse), then starts `finally` and finishes when due.
    fn settle(&mut self, actions: &mut Vec<Action>) {
        loop {
            self.propagate(actions);
            if self.finally_started || self.dag_tally.terminal != self.dag_tally.total {
                break;
            }
            self.finally_started = true;
            let finally = self.plan.dag_len..self.plan.own_len;
            let finally_runs = self.cancelled != Some(CancelMode::Cancelled)
                && !self.pipeline_timed_out
                && self.infra_error.is_none();
            if !finally.is_empty() && finally_runs {
                actions.push(Action::FinallyStarted);
            }
            for node in finally {
                self.consider(node, actions);
            }
        }
        if !self.finished && self.all_tally.terminal == self.all_tally.total {
            self.finished = true;
            actions.push(Action::Finished(Box::new(self.summary())));
        }
    }

    /// Tells children of terminal nodes, and ends the tasks whose child pipelines
    /// finished, until neither is left.
    fn propagate(&mut self, actions: &mut Vec<Action>) {
        while !self.settled.is_empty() || !self.child_ends.is_empty() {
            self.tell_children(actions);
            if let Some((node, summary)) = self.child_ends.pop_front() {
                self.end_child(node, summary, actions);
            }
        }
    }

    fn tell_children(&mut self, actions: &mut Vec<Action>) {
        while let Some(node) = self.settled.pop_front() {
            let skipped_for_real = self.nodes[node].outcome == Some(Outcome::Skipped)
                && self.nodes[node].reason != SkipReason::WhenExpressionsFalse.as_str();
            let plan = Arc::clone(&self.plan);
            for &child in &plan.nodes[node].children {
                let child_state = &mut self.nodes[child];
                child_state.parent_skipped |= skipped_for_real;
                child_state.waiting_on = child_state.waiting_on.saturating_sub(1);
                if child_state.waiting_on == 0 {
                    self.consider(child, actions);
                }
            }
        }
    }

    /// Skips every pending non-finally node (and finally ones too when `with_finally`),
    /// with the skip reason the current run state gives.
    fn sweep_pending(&mut self, with_finally: bool, actions: &mut Vec<Action>) {
        let end = if with_finally {
            self.plan.own_len
        } else {
            self.plan.dag_len
        };
        for node in 0..end {
            match self.nodes[node].phase {
                // `consider` applies the precedence rules; run-level reasons win here.
                TaskPhase::Pending => self.consider(node, actions),
                TaskPhase::Blocked => self.end_blocked(node, actions),
                _ => {}
            }
        }
    }

    /// Asks the engine to abort every queued or running node in `range`.
    fn cancel_active(
        &mut self,
        range: std::ops::Range<NodeId>,
        then: (Outcome, &'static str),
        actions: &mut Vec<Action>,
    ) {
        for node in range {
            if matches!(
                self.nodes[node].phase,
                TaskPhase::Blocked | TaskPhase::Queued | TaskPhase::Running
            ) {
                self.nodes[node].on_cancelled = Some(then);
                self.set_phase(node, TaskPhase::Cancelling, then.1, actions);
                if self.children.contains_key(&node) {
                    // The child stops; the task ends when the child has.
                    self.cancel_child(node, then.0, actions);
                    continue;
                }
                actions.push(Action::Cancel {
                    node,
                    attempt: self.nodes[node].attempt,
                    reason: then.1.to_string(),
                });
            }
        }
    }

    fn render_value(&self, value: &ValueTemplate, node: NodeId) -> ParamValue {
        match value {
            ValueTemplate::Fixed(value) => value.clone(),
            ValueTemplate::Str(template) => ParamValue::Str(self.render(template, node)),
            ValueTemplate::Array(items) => {
                ParamValue::Array(items.iter().map(|item| self.render(item, node)).collect())
            }
            ValueTemplate::Object(map) => ParamValue::Object(
                map.iter()
                    .map(|(key, template)| (key.clone(), self.render(template, node)))
                    .collect(),
            ),
        }
    }

    fn render(&self, template: &Template<RunVar>, node: NodeId) -> String {
        let mut out = String::new();
        for piece in &template.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Var(var) => out.push_str(&self.var_value(var, node)),
            }
        }
        out
    }

    fn var_value(&self, var: &RunVar, consumer: NodeId) -> String {
        match var {
            RunVar::TaskResult(producer, result) => self.nodes[*producer]
                .results
                .get(result)
                .cloned()
                .unwrap_or_default(),
            RunVar::TaskStatus(task) => self.task_status(*task).as_str().to_string(),
            RunVar::TaskReason(task) => self.task_reason(*task),
            RunVar::MatrixStatus(nodes) => {
                matrix_status_view(nodes.clone().map(|node| self.task_status(node)))
                    .as_str()
                    .to_string()
            }
            RunVar::MatrixReason(nodes) => {
                // The first combination that did not succeed speaks for the task.
                let worst = nodes
                    .clone()
                    .find(|node| self.task_status(*node) != TaskStatusView::Succeeded)
                    .unwrap_or(nodes.start);
                self.task_reason(worst)
            }
            RunVar::MatrixResultCount(nodes, result) => nodes
                .clone()
                .filter(|node| self.nodes[*node].results.contains_key(result))
                .count()
                .to_string(),
            RunVar::MatrixResultsJson(nodes, result) => {
                let values: Vec<&str> = nodes
                    .clone()
                    .filter_map(|node| self.nodes[node].results.get(result).map(String::as_str))
                    .collect();
                serde_json::to_string(&values).unwrap_or_default()
            }
            RunVar::TasksStatus => self.tasks_status().as_str().to_string(),
            RunVar::TasksOutcome => self.tasks_outcome().as_str().to_string(),
            RunVar::RunName => self.context.run_name.clone(),
            RunVar::RunUid => self.context.run_uid.clone(),
            RunVar::TaskRetryCount => self.nodes[consumer].attempt.to_string(),
            RunVar::WorkspaceBound(workspace) => self
                .context
                .bound_workspaces
                .contains(workspace)
                .to_string(),
        }
    }

    /// `$(tasks.t.status)` of one node.
    fn task_status(&self, task: NodeId) -> TaskStatusView {
        let state = &self.nodes[task];
        let outcome = (state.phase == TaskPhase::Terminal)
            .then_some(state.outcome)
            .flatten();
        task_status_view(state.raw.as_ref().filter(|_| outcome.is_some()), outcome)
    }

    /// `$(tasks.t.reason)` of one node.
    fn task_reason(&self, task: NodeId) -> String {
        let state = &self.nodes[task];
        match (&state.outcome, state.reason.is_empty()) {
            (Some(outcome), true) => outcome.as_str().to_string(),
            _ => state.reason.clone(),
        }
    }

    fn summary(&self) -> RunSummary {
        let (status, reason) = final_status(&self.facts(), &self.all_tally);
        let mut results = BTreeMap::new();
        for (name, template) in &self.plan.results {
            let complete = template.vars().all(|var| match var {
                RunVar::TaskResult(producer, result) => {
                    self.nodes[*producer].results.contains_key(result)
                }
                RunVar::MatrixResultsJson(nodes, result) => nodes
                    .clone()
                    .all(|node| self.nodes[node].results.contains_key(result)),
                _ => true,
            });
            if complete {
                results.insert(name.clone(), self.render(template, 0));
            }
        }
        let mut report = self.report();
        report.run.status = status.as_str().to_string();
        report.run.reason = reason.clone();
        RunSummary {
            status,
            reason,
            tasks_status: self.tasks_status(),
            tasks_outcome: self.tasks_outcome(),
            halted_by: self.halted_by.clone(),
            results,
            report,
        }
    }
}

#[cfg(all(test, target_pointer_width = "64"))]
mod size_tests {
    /// A settle that queues every task (the root of `1 -> N -> 1` ending) gives two actions
    /// per task, held at once: at 100,000 tasks each byte here is 200 KB of the peak. The
    /// large variants (a start, a wait, the run's summary) are boxed.
    #[test]
    fn an_action_stays_small() {
        assert!(std::mem::size_of::<super::Action>() <= 112);
    }

    /// The report holds one of these per task at the end of a run, beside its JSON.
    #[test]
    fn a_task_report_stays_small() {
        assert!(std::mem::size_of::<super::TaskReport>() <= 168);
    }
}
