//! Tasks that run a pipeline (see [`crate::child`]): each attempt runs a [`RunState`] of
//! its own for the child, whose actions are lifted into the parent's (nodes, names and
//! attempts translated), and whose end ends the attempt.

use super::{
    Action, ChildEnding, RunContext, RunState, RunSummary, StartTask, TaskPhase, TaskReport,
};
use crate::contract::TaskEnding;
use crate::operation::TaskFacts;
use crate::plan::NodeId;
use crate::status::{CancelMode, Outcome, RunStatus};

/// The child pipeline of one attempt of a task.
#[derive(Debug, Clone)]
pub(super) struct ChildRun {
    state: Box<RunState>,
    /// The parent's node of the child's node 0.
    base: NodeId,
    /// Per child node: attempts it made in the task's earlier attempts.
    offsets: Vec<u32>,
    /// Per child node: attempts it made in this one.
    used: Vec<u32>,
    /// The task's `timeout` passed: the child was timed out.
    timed_out: bool,
}

impl ChildRun {
    fn holds(&self, node: NodeId) -> bool {
        node >= self.base && node - self.base < self.offsets.len()
    }

    /// A child's start, as the parent's: its node, its attempt after the task's earlier
    /// attempts', its names under the task's.
    fn lift_start(&mut self, task: &str, start: &mut StartTask) {
        if let Some(used) = self.used.get_mut(start.node) {
            *used = (*used).max(start.attempt + 1);
        }
        start.attempt += self.offsets.get(start.node).copied().unwrap_or(0);
        start.node += self.base;
        start.name = crate::child::nested_name(task, &start.name);
        start.pipeline_task = crate::child::nested_name(task, &start.pipeline_task);
    }

    fn lift_node(&self, node: NodeId, attempt: u32) -> (NodeId, u32) {
        let offset = self.offsets.get(node).copied().unwrap_or(0);
        (node + self.base, attempt + offset)
    }
}

impl RunState {
    /// Starts an attempt of `node`, a task that runs a pipeline: a fresh run of the child
    /// with the task's params rendered now.
    pub(super) fn start_child(&mut self, node: NodeId, reason: &str, actions: &mut Vec<Action>) {
        let Some(plan) = self.plan.nodes[node].child.clone() else {
            return;
        };
        self.set_phase(node, TaskPhase::Running, reason, actions);
        let start = self.start_of(node);
        let context = RunContext {
            run_name: format!("{}-{}", self.context.run_name, start.name),
            run_uid: self.context.run_uid.clone(),
            bound_workspaces: plan.bound_workspaces(&self.context.bound_workspaces),
        };
        let mut state = RunState::new(plan.plan_with(&start.params), context);
        state.attempt = self.attempt;
        let len = plan.nodes.len();
        let offsets = self
            .child_offsets
            .get(&node)
            .cloned()
            .unwrap_or_else(|| vec![0; len]);
        actions.push(Action::ChildStarted(Box::new(start)));
        let mut child = ChildRun {
            state: Box::new(state),
            base: plan.nodes.start,
            offsets,
            used: vec![0; len],
            timed_out: false,
        };
        let started = child.state.start();
        self.children.insert(node, child);
        self.lift(node, started, actions);
    }

    /// Carries `child_actions` of `node`'s child out as the parent's.
    pub(super) fn lift(
        &mut self,
        node: NodeId,
        child_actions: Vec<Action>,
        actions: &mut Vec<Action>,
    ) {
        let task = self.plan.nodes[node].name.clone();
        let Some(child) = self.children.get_mut(&node) else {
            return;
        };
        for action in child_actions {
            actions.push(match action {
                Action::Start(mut start) => {
                    child.lift_start(&task, &mut start);
                    Action::Start(start)
                }
                Action::Wait(mut wait) => {
                    child.lift_start(&task, &mut wait.start);
                    Action::Wait(wait)
                }
                Action::ChildStarted(mut start) => {
                    child.lift_start(&task, &mut start);
                    Action::ChildStarted(start)
                }
                Action::Cancel {
                    node: inner,
                    attempt,
                    reason,
                } => {
                    let (node, attempt) = child.lift_node(inner, attempt);
                    Action::Cancel {
                        node,
                        attempt,
                        reason,
                    }
                }
                Action::Transition {
                    node: inner,
                    name,
                    phase,
                    outcome,
                    reason,
                    attempt,
                } => {
                    let (node, attempt) = child.lift_node(inner, attempt);
                    Action::Transition {
                        node,
                        name: crate::child::nested_name(&task, &name),
                        phase,
                        outcome,
                        reason,
                        attempt,
                    }
                }
                Action::AttemptRetried {
                    node: inner,
                    name,
                    attempt,
                    outcome,
                    reason,
                } => {
                    let (node, attempt) = child.lift_node(inner, attempt);
                    Action::AttemptRetried {
                        node,
                        name: crate::child::nested_name(&task, &name),
                        attempt,
                        outcome,
                        reason,
                    }
                }
                Action::ChildEnded {
                    node: inner,
                    name,
                    attempt,
                    ending,
                    results,
                } => {
                    let (node, attempt) = child.lift_node(inner, attempt);
                    Action::ChildEnded {
                        node,
                        name: crate::child::nested_name(&task, &name),
                        attempt,
                        ending,
                        results,
                    }
                }
                // The child's `finally` is the child's business, not the run's.
                Action::FinallyStarted => continue,
                Action::Finished(summary) => {
                    self.child_ends.push_back((node, *summary));
                    continue;
                }
            });
        }
    }

    /// An input for node `node` of a child: handed to the child that holds it, in the
    /// child's terms; stale when no running child holds it.
    pub(super) fn nested(
        &mut self,
        node: NodeId,
        attempt: u32,
        input: impl FnOnce(&mut RunState, NodeId, u32) -> Vec<Action>,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        let Some((&owner, child)) = self.children.iter_mut().find(|(_, c)| c.holds(node)) else {
            return actions;
        };
        let inner = node - child.base;
        let Some(inner_attempt) = attempt.checked_sub(child.offsets[inner]) else {
            return actions;
        };
        let out = input(&mut child.state, inner, inner_attempt);
        self.lift(owner, out, &mut actions);
        self.settle(&mut actions);
        actions
    }

    /// `node`'s `timeout` passed while its child runs: the child times out as a whole.
    pub(super) fn time_out_child(&mut self, node: NodeId, attempt: u32, actions: &mut Vec<Action>) {
        if !self.is_current(node, attempt) {
            return;
        }
        let Some(child) = self.children.get_mut(&node) else {
            return;
        };
        if child.timed_out {
            return;
        }
        child.timed_out = true;
        let out = child.state.pipeline_timeout();
        self.lift(node, out, actions);
    }

    /// The run cancels `node` while its child runs: the child stops (timed out when the
    /// cancel is a timeout's).
    pub(super) fn cancel_child(
        &mut self,
        node: NodeId,
        as_outcome: Outcome,
        actions: &mut Vec<Action>,
    ) {
        let Some(child) = self.children.get_mut(&node) else {
            return;
        };
        let out = if as_outcome == Outcome::TimedOut {
            child.state.pipeline_timeout()
        } else {
            child.state.cancel(CancelMode::Cancelled)
        };
        self.lift(node, out, actions);
    }

    /// `node`'s child finished: its attempt ends as the child did.
    pub(super) fn end_child(
        &mut self,
        node: NodeId,
        summary: RunSummary,
        actions: &mut Vec<Action>,
    ) {
        let Some(child) = self.children.remove(&node) else {
            return;
        };
        let task = self.plan.nodes[node].name.clone();
        let offsets: Vec<u32> = child
            .offsets
            .iter()
            .zip(&child.used)
            .map(|(before, now)| before + now)
            .collect();
        self.child_offsets.insert(node, offsets);
        self.child_reports.insert(
            node,
            lift_reports(&task, &child, summary.report.tasks.clone()),
        );
        let attempt = self.nodes[node].attempt;
        let ending = if self.nodes[node].phase == TaskPhase::Cancelling {
            ChildEnding::Cancelled
        } else if child.timed_out {
            ChildEnding::TimedOut
        } else {
            ChildEnding::Ended(child_ending(&summary))
        };
        let results = match ending {
            ChildEnding::Ended(_) => summary.results.clone(),
            _ => Default::default(),
        };
        actions.push(Action::ChildEnded {
            node,
            name: task,
            attempt,
            ending: ending.clone(),
            results: results.clone(),
        });
        match ending {
            ChildEnding::Cancelled => self.cancelled_attempt(node, attempt, actions),
            ChildEnding::TimedOut => self.time_out_attempt(node, attempt, actions),
            ChildEnding::Ended(ending) => self.end_attempt(node, attempt, ending, results, actions),
        }
    }

    /// The tasks of the children, as the parent's report names them (the running child's
    /// now, else the last one's).
    pub(super) fn child_task_reports(&self, node: NodeId) -> Vec<TaskReport> {
        match self.children.get(&node) {
            Some(child) => {
                let task = &self.plan.nodes[node].name;
                lift_reports(task, child, child.state.report().tasks)
            }
            None => self.child_reports.get(&node).cloned().unwrap_or_default(),
        }
    }

    /// What the operation view reads of the running children's tasks.
    pub(super) fn child_facts(&self) -> Vec<TaskFacts> {
        self.children
            .values()
            .flat_map(|child| child.state.all_task_facts())
            .collect()
    }

    /// The running children's tasks not yet terminal, named as the parent's.
    pub(super) fn unfinished_child_tasks(&self) -> Vec<(String, TaskPhase)> {
        self.children
            .iter()
            .flat_map(|(&node, child)| {
                let task = &self.plan.nodes[node].name;
                child
                    .state
                    .unfinished_tasks()
                    .into_iter()
                    .map(move |(name, phase)| (crate::child::nested_name(task, &name), phase))
            })
            .collect()
    }
}

/// A child's task reports under the task's name, with the task's earlier attempts'
/// attempts counted.
fn lift_reports(task: &str, child: &ChildRun, reports: Vec<TaskReport>) -> Vec<TaskReport> {
    let ids = child.state.plan.nodes.iter().map(|node| node.name.as_str());
    let offsets: std::collections::HashMap<&str, u32> =
        ids.zip(child.offsets.iter().copied()).collect();
    reports
        .into_iter()
        .map(|mut report| {
            report.attempts += offsets.get(report.name.as_str()).copied().unwrap_or(0);
            report.name = crate::child::nested_name(task, &report.name);
            report.nested_in = Some(task.to_string());
            report
        })
        .collect()
}

/// What a child's end means for its task's attempt.
fn child_ending(summary: &RunSummary) -> TaskEnding {
    let message = if summary.reason.is_empty() {
        summary.status.as_str().to_string()
    } else {
        format!("{}: {}", summary.status.as_str(), summary.reason)
    };
    match summary.status {
        RunStatus::Succeeded | RunStatus::Completed => TaskEnding::Success,
        RunStatus::SucceededWithWarnings => TaskEnding::Warning { message },
        RunStatus::Errored => TaskEnding::Errored {
            reason: "ChildPipelineErrored".into(),
            message,
        },
        RunStatus::Failed | RunStatus::TimedOut | RunStatus::Cancelled => TaskEnding::Failure {
            message,
            exit_code: 1,
        },
    }
}
