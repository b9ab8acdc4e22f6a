//! What a run looks like now, for the dashboard's pages and its live updates: read from
//! the store through the same functions as the API's run document (`runs.rs`), so the
//! page and `GET /api/v1/runs/{run}` never disagree.

use std::collections::BTreeMap;

use serde::Serialize;
use weft_core::graph::GraphNode;
use weft_store::{RunStore, StoreError};

use crate::graph_output::{self, TaskState};
use crate::serve::auth::Caller;

/// One task of a run, as its latest attempt stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRow {
    /// The task (a matrix combination is a task of its own).
    pub task: String,
    /// Its outcome when it ended, else its phase; `Pending` before it started.
    pub status: String,
    /// Its colour family ([`graph_output::tone`]); `wait` while a wait is open.
    pub tone: &'static str,
    /// Why (a skip's reason, a failure's).
    pub reason: String,
    /// In words, as the hover says it.
    pub summary: String,
    /// How many attempts it had.
    pub attempts: u32,
    /// Its exit code, when it had one.
    pub exit_code: Option<i32>,
    /// What it waits for now (`approval`, `intervention`, `gate`).
    pub waiting: Option<String>,
    /// Whether it is a `finally` task.
    pub finally: bool,
}

/// One vote cast on a wait.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VoteView {
    /// Who.
    pub identity: String,
    /// `approve` or `reject`.
    pub decision: String,
    /// Their message.
    pub message: String,
}

/// One wait of the run (an approval, an intervention, a gate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WaitView {
    /// The waiting task.
    pub task: String,
    /// `approval`, `intervention` or `gate`.
    pub kind: String,
    /// Whether it still waits.
    pub open: bool,
    /// How it ended.
    pub outcome: Option<String>,
    /// Who may decide (empty: anyone).
    pub approvers: Vec<String>,
    /// The votes cast.
    pub votes: Vec<VoteView>,
}

impl RunView {
    /// The view with the run's names as `caller` knows them (without its tenant).
    pub fn seen_by(mut self, caller: &Caller) -> RunView {
        self.id = caller.show(&self.id);
        self.name = caller.show(&self.name);
        for attempt in &mut self.attempts {
            *attempt = caller.show(attempt);
        }
        self
    }
}

impl WaitView {
    /// Whether `caller` may decide it now: it is open, it takes people's decisions, the
    /// caller's role decides, it is listed (weft-core's rule) and has not decided yet. Only
    /// whether buttons show: the action is checked again when it arrives.
    pub fn may_decide(&self, caller: &Caller) -> bool {
        let votes: Vec<weft_core::waits::Vote> = Vec::new();
        self.open
            && caller.may(weft_store::Role::Approver)
            && matches!(self.kind.as_str(), "approval" | "intervention")
            && weft_core::waits::check_vote(
                &self.approvers,
                &caller.identity,
                &caller.groups,
                &votes,
            )
            .is_ok()
            && !self.votes.iter().any(|v| v.identity == caller.identity)
    }
}

/// A run (one attempt) as the dashboard shows it; its names as its viewer knows them
/// ([`RunView::seen_by`]).
#[derive(Debug, Clone)]
pub struct RunView {
    /// The attempt's id (`deploy~2`).
    pub id: String,
    /// The run's name.
    pub name: String,
    /// Its pipeline.
    pub pipeline: String,
    /// Which attempt.
    pub attempt: u32,
    /// Every attempt's id, oldest first.
    pub attempts: Vec<String>,
    /// Its final status, else its phase.
    pub status: String,
    /// Why.
    pub reason: String,
    /// The `<status, operationStatus>` pair, as the store has it now.
    pub operation: Option<String>,
    /// What it waits for before its first task.
    pub waiting_for: Option<String>,
    /// Whether it ended.
    pub finished: bool,
    /// Its DAG (empty when its stored pipeline no longer plans).
    pub nodes: Vec<GraphNode>,
    /// Its tasks, in the DAG's order.
    pub tasks: Vec<TaskRow>,
    /// Its waits.
    pub waits: Vec<WaitView>,
}

/// What the live updates send: what changes while a run goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveState {
    /// Final status or phase.
    pub status: String,
    /// Why.
    pub reason: String,
    /// The `<status, operationStatus>` pair.
    pub operation: Option<String>,
    /// What it waits for before its first task.
    pub waiting_for: Option<String>,
    /// Whether it ended.
    pub finished: bool,
    /// Its tasks.
    pub tasks: Vec<TaskRow>,
}

impl RunView {
    /// What the live updates send of it.
    pub fn live(&self) -> LiveState {
        LiveState {
            status: self.status.clone(),
            reason: self.reason.clone(),
            operation: self.operation.clone(),
            waiting_for: self.waiting_for.clone(),
            finished: self.finished,
            tasks: self.tasks.clone(),
        }
    }
}

fn text(value: &serde_json::Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

/// The waits of `run`, from the API's waits document.
fn waits(store: &dyn RunStore, run: &str) -> Result<Vec<WaitView>, StoreError> {
    let document = weft_engine::runs::waits_document(store, run)?;
    Ok(document
        .as_array()
        .into_iter()
        .flatten()
        .map(|wait| WaitView {
            task: text(&wait["task"]),
            kind: text(&wait["kind"]),
            open: wait["open"] == true,
            outcome: wait["outcome"].as_str().map(str::to_string),
            approvers: wait["request"]["approvers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_string))
                .collect(),
            votes: wait["votes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|vote| VoteView {
                    identity: text(&vote["identity"]),
                    decision: text(&vote["decision"]),
                    message: text(&vote["message"]),
                })
                .collect(),
        })
        .collect())
}

/// The `<status, operationStatus>` pair of run `id` as the store has it now.
fn operation_pair(store: &dyn RunStore, id: &str) -> Result<Option<String>, StoreError> {
    Ok(weft_engine::runs::operation_view(store, id)?
        .map(|view| format!("<{:?}, {:?}>", view.run.status, view.run.operation_status)))
}

/// As [`operation_pair`], for a list (a store error shows as no pair).
pub fn operation(store: &dyn RunStore, id: &str) -> Option<String> {
    operation_pair(store, id).ok().flatten()
}

/// The attempt `id` of a run as it stands in the store; `None` when there is none.
pub fn run_view(store: &dyn RunStore, id: &str) -> Result<Option<RunView>, StoreError> {
    read(store, id, true)
}

/// What the live updates send of run `id`: as [`run_view`] without planning the
/// pipeline again (only tasks that started change, and the page has the rest).
pub fn live_state(store: &dyn RunStore, id: &str) -> Result<Option<LiveState>, StoreError> {
    Ok(read(store, id, false)?.map(|view| view.live()))
}

/// The run, its DAG laid out when `with_graph`.
fn read(store: &dyn RunStore, id: &str, with_graph: bool) -> Result<Option<RunView>, StoreError> {
    let Some(record) = store.run(id)? else {
        return Ok(None);
    };
    let attempts = store.attempts(id)?;
    let waits = waits(store, id)?;
    let operation = operation_pair(store, id)?;
    let nodes = if with_graph {
        weft_engine::runs::stored_plan(&record)
            .map(|plan| weft_core::graph::layout(&plan))
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let states = graph_output::states(&attempts);
    let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
    for attempt in &attempts {
        *counts.entry(attempt.id.task.as_str()).or_default() += 1;
    }
    let open: BTreeMap<&str, &str> = waits
        .iter()
        .filter(|w| w.open)
        .map(|w| (w.task.as_str(), w.kind.as_str()))
        .collect();
    let row = |task: &str, finally: bool| {
        let state: Option<&TaskState> = states.get(task);
        let status = state.map_or_else(|| "Pending".to_string(), |s| s.status.clone());
        let waiting = open.get(task).map(|kind| kind.to_string());
        TaskRow {
            task: task.to_string(),
            tone: if waiting.is_some() {
                "wait"
            } else {
                graph_output::tone(&status)
            },
            status,
            reason: state.map(|s| s.reason.clone()).unwrap_or_default(),
            summary: graph_output::describe(state),
            attempts: counts.get(task).copied().unwrap_or(0),
            exit_code: state.and_then(|s| s.exit_code),
            waiting,
            finally,
        }
    };
    let mut tasks: Vec<TaskRow> = nodes.iter().map(|n| row(&n.name, n.finally)).collect();
    // Tasks the plan no longer has (or all of them, when it does not plan) still show.
    for task in states.keys() {
        if !nodes.iter().any(|n| &n.name == task) {
            tasks.push(row(task, false));
        }
    }
    let finished = record.finished_at.is_some();
    Ok(Some(RunView {
        id: id.to_string(),
        name: record.submitted.name.clone(),
        pipeline: record.submitted.pipeline_name.clone(),
        attempt: crate::runs::attempt_number(id),
        attempts: store.runs_named(&record.submitted.name)?,
        status: record
            .status
            .clone()
            .unwrap_or_else(|| format!("{:?}", record.phase)),
        reason: record.reason.clone(),
        operation,
        waiting_for: weft_engine::runs::held_view(store, id, weft_store::DEFAULT_RECOVERY_TIMEOUT)?,
        finished,
        nodes,
        tasks,
        waits,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(identity: &str, groups: &[&str]) -> Caller {
        Caller {
            identity: identity.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..crate::serve::auth::anonymous()
        }
    }

    #[test]
    fn only_listed_approvers_who_have_not_voted_may_decide_an_open_wait() {
        let mut wait = WaitView {
            task: "approve".into(),
            kind: "approval".into(),
            open: true,
            outcome: None,
            approvers: vec!["alice".into(), "group:release".into()],
            votes: Vec::new(),
        };
        assert!(wait.may_decide(&caller("alice", &[])));
        assert!(wait.may_decide(&caller("carol", &["release"])));
        assert!(!wait.may_decide(&caller("viewer", &[])));
        wait.votes.push(VoteView {
            identity: "alice".into(),
            decision: "approve".into(),
            message: String::new(),
        });
        assert!(!wait.may_decide(&caller("alice", &[])), "once only");
        wait.open = false;
        assert!(!wait.may_decide(&caller("carol", &["release"])), "closed");
        let gate = WaitView {
            kind: "gate".into(),
            open: true,
            approvers: Vec::new(),
            votes: Vec::new(),
            ..wait
        };
        assert!(
            !gate.may_decide(&caller("alice", &[])),
            "a gate decides by itself"
        );
    }
}
