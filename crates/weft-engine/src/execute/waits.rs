//! Tasks that wait (approvals, manual interventions, gates) as the driver carries them:
//! the wait is opened in the store (its `since` and deadline survive restarts), the
//! decisions people cast are read from the store, gates are sampled in the sandbox, and
//! weft-core's `waits` decides when each wait ends and what that means. A waiting run
//! holds no thread and no wasm instance: between polls and samples it is only this state.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;
use weft_core::contract::{GateContext, GateResult};
use weft_core::waits::{
    self, ApprovalRequest, GateTiming, GateWindow, InterventionRequest, Vote, WaitEnding, WaitKind,
    WaitState,
};
use weft_core::{Action, GateCheck, NodeId, RunWait, StartTask};
use weft_runtime::{LogLevel, LogLine, LogStream, TaskContext, TaskRequest};
use weft_store::{AttemptId, Timestamp, VoteRecord, WaitRecord, WriteOp};

use super::Driver;
use crate::grants::{Allowance, Grantee};
use crate::observe::RunEvent;
use crate::persist::{Ended, How};
use crate::registry::ResolvedPlugin;

/// How often open approvals and interventions look for new decisions in the store.
const DECISION_POLL: Duration = Duration::from_millis(250);

/// One task waiting.
pub(super) struct Waiting {
    start: StartTask,
    kind: WaitKind,
    /// A gate's further plugins, sampled with its own.
    checks: Vec<GateCheck>,
    id: AttemptId,
    since_ms: i64,
    deadline_ms: Option<i64>,
    request: Request,
    /// What was last said about it (to say it again only when it changes).
    progress: String,
}

enum Request {
    Approval(ApprovalRequest),
    Intervention(InterventionRequest),
    Gate {
        timing: GateTiming,
        window: GateWindow,
        /// Samples taken.
        samples: u32,
        /// When the next sample is due (ms since the epoch); `None` while one runs.
        next_ms: Option<i64>,
        /// What the last sample said.
        last_message: String,
    },
}

/// A gate sample's ending, from the sandbox.
pub(super) type Sampled = (NodeId, u32, Result<GateResult, String>);

fn now_ms() -> i64 {
    Timestamp::now().0
}

impl Driver {
    /// Starts waiting (or, for a run taken over, waits again with what the journal and
    /// the store kept: a decided wait is answered from the journal, an open one keeps its
    /// first `since`, deadline and votes).
    pub(super) fn wait(&mut self, task: weft_core::WaitTask) -> Vec<Action> {
        let (node, attempt) = (task.start.node, task.start.attempt);
        if let Some(replayed) = self.replayed_wait(node, attempt, &task.start.name) {
            return replayed;
        }
        let Some(journal) = self.journal.as_ref() else {
            return self.state.task_launch_failed(
                node,
                attempt,
                "a wait needs a run store: its decisions are cast there",
            );
        };
        let request = match task.kind {
            WaitKind::Approval => {
                ApprovalRequest::from_params(&task.start.params).map(Request::Approval)
            }
            WaitKind::Intervention => {
                InterventionRequest::from_params(&task.start.params).map(Request::Intervention)
            }
            WaitKind::Gate(timing) => Ok(Request::Gate {
                timing,
                window: GateWindow::default(),
                samples: 0,
                next_ms: Some(now_ms()),
                last_message: String::new(),
            }),
        };
        let request = match request {
            Ok(request) => request,
            Err(why) => return self.state.task_launch_failed(node, attempt, why),
        };
        let id = journal.attempt_id(&task.start.name, attempt);
        let durable = journal.durable().clone();
        let now = now_ms();
        let deadline = |since: i64| match task.kind {
            WaitKind::Gate(timing) => Some(since.saturating_add(millis(timing.timeout))),
            _ => task.start.timeout.map(|t| since.saturating_add(millis(t))),
        };
        let stored = durable.store.wait(&id).ok().flatten();
        let (since_ms, deadline_ms) = match &stored {
            // Taken over: the first engine's clock holds.
            Some(wait) => (wait.since.0, wait.deadline.map(|d| d.0)),
            None => (now, deadline(now)),
        };
        if stored.is_none() {
            let record = WaitRecord {
                id: id.clone(),
                kind: task.kind.as_str().to_string(),
                request_json: request_json(&request),
                since: Timestamp(since_ms),
                deadline: deadline_ms.map(Timestamp),
                closed_at: None,
                outcome: None,
            };
            if let Some(journal) = self.journal.as_mut() {
                journal.write_op(WriteOp::OpenWait {
                    lease: durable.lease.clone(),
                    wait: record,
                });
            }
            // Durable before anyone is told: a decision needs the open wait.
            let lost = self.flush();
            if !lost.is_empty() {
                return lost;
            }
            crate::fault::point("wait-opened");
        }
        self.waits.insert(
            node,
            Waiting {
                start: task.start,
                kind: task.kind,
                checks: task.checks,
                id,
                since_ms,
                deadline_ms,
                request,
                progress: String::new(),
            },
        );
        // Decisions already cast (a run taken over) count at once.
        self.poll_wait(node, now)
    }

    /// A wait the journal says was decided (or cancelled) before this engine took over.
    fn replayed_wait(&mut self, node: NodeId, attempt: u32, task: &str) -> Option<Vec<Action>> {
        let replay = self.journal.as_ref()?.durable().replay.clone()?;
        let ended = replay.ended.get(&(task.to_string(), attempt))?;
        Some(match (&ended.how, &ended.waited) {
            (How::Waited, Some(waited)) => self.state.task_waited(node, attempt, waited),
            _ => self.state.task_cancelled(node, attempt),
        })
    }

    /// Whether anything waits.
    pub(super) fn waiting(&self) -> bool {
        !self.waits.is_empty()
    }

    /// When the driver must look at its waits again.
    pub(super) fn next_wait_wakeup(&self) -> Option<Instant> {
        let now = now_ms();
        self.waits
            .values()
            .filter_map(|waiting| match &waiting.request {
                Request::Approval(_) | Request::Intervention(_) => {
                    Some(now + millis(DECISION_POLL))
                }
                // The next sample, or the timeout (also while a sample runs).
                Request::Gate { next_ms, .. } => match (*next_ms, waiting.deadline_ms) {
                    (Some(next), Some(deadline)) => Some(next.min(deadline)),
                    (next, deadline) => next.or(deadline),
                },
            })
            .min()
            .map(|at_ms| {
                let wait = u64::try_from(at_ms.saturating_sub(now)).unwrap_or(0);
                Instant::now() + Duration::from_millis(wait)
            })
    }

    /// Looks at every wait: new decisions, deadlines, deferrals, gate samples due.
    pub(super) fn poll_waits(&mut self) -> Vec<Action> {
        let now = now_ms();
        let nodes: Vec<NodeId> = self.waits.keys().copied().collect();
        let mut actions = Vec::new();
        for node in nodes {
            actions.extend(self.poll_wait(node, now));
        }
        actions
    }

    fn poll_wait(&mut self, node: NodeId, now: i64) -> Vec<Action> {
        let Some(waiting) = self.waits.get(&node) else {
            return Vec::new();
        };
        let state = match &waiting.request {
            Request::Approval(request) => {
                let votes = self.votes_of(&waiting.id);
                waits::approval_state(request, &votes, now, waiting.deadline_ms)
            }
            Request::Intervention(request) => {
                let votes = self.votes_of(&waiting.id);
                waits::intervention_state(request, &votes, now, waiting.deadline_ms)
            }
            Request::Gate {
                next_ms,
                last_message,
                ..
            } => {
                if waiting.deadline_ms.is_some_and(|deadline| now >= deadline) {
                    // Out of time, even with a sample still running (it is dropped).
                    if next_ms.is_none() {
                        self.task_log(&waiting.start).line(LogLine {
                            stream: LogStream::Host,
                            level: LogLevel::Warn,
                            text: "gate sample still running at the gate's timeout: stopped".into(),
                        });
                    }
                    let message = match (next_ms.is_none(), last_message.is_empty()) {
                        (true, true) => "a sample was still running at the timeout".to_string(),
                        (true, false) => {
                            format!("{last_message} (a sample was still running at the timeout)")
                        }
                        (false, _) => last_message.clone(),
                    };
                    WaitState::Ended(WaitEnding::GatesFailed { message })
                } else {
                    if next_ms.is_some_and(|next| next <= now) {
                        self.sample_gate(node);
                    }
                    return Vec::new();
                }
            }
        };
        self.settle_wait(node, state)
    }

    /// Acts on where a wait stands: ends it, or says what it waits for when that changed.
    fn settle_wait(&mut self, node: NodeId, state: WaitState) -> Vec<Action> {
        if let Some(waiting) = self.waits.get(&node) {
            let deferred = matches!(state, WaitState::Deferred { .. });
            self.state
                .task_deferred(node, waiting.start.attempt, deferred);
        }
        let progress = match state {
            WaitState::Ended(ending) => return self.end_wait(node, ending),
            WaitState::Waiting { progress } => progress,
            WaitState::Deferred { until_ms } => {
                format!("approved, deferred until {}", rfc3339(until_ms))
            }
        };
        let Some(waiting) = self.waits.get_mut(&node) else {
            return Vec::new();
        };
        if waiting.progress != progress {
            waiting.progress.clone_from(&progress);
            let is_finally = self.state.plan().nodes[node].is_finally;
            let wait = RunWait {
                kind: waiting.kind,
                progress: progress.clone(),
                deadline_ms: waiting.deadline_ms,
            };
            self.observer.event(RunEvent::Waiting {
                task: &waiting.start.name,
                is_finally,
                wait: &wait,
            });
            crate::fault::point("wait-progress");
        }
        Vec::new()
    }

    /// A wait ended: closed in the store, its ending journaled, fed to the run state.
    fn end_wait(&mut self, node: NodeId, ending: WaitEnding) -> Vec<Action> {
        let Some(waiting) = self.waits.remove(&node) else {
            return Vec::new();
        };
        let attempt = waiting.start.attempt;
        if let Some(journal) = self.journal.as_mut() {
            journal.write_op(WriteOp::CloseWait {
                lease: journal.durable().lease.clone(),
                id: waiting.id.clone(),
                outcome: outcome_name(&ending).to_string(),
                at: Timestamp::now(),
            });
            journal.ended(
                node,
                &waiting.start.name,
                attempt,
                &Ended {
                    how: How::Waited,
                    ending: None,
                    results: BTreeMap::new(),
                    waited: Some(ending.clone()),
                },
            );
        }
        self.state.task_waited(node, attempt, &ending)
    }

    /// The run state cancelled a waiting task (the run stopped, halted, was cancelled or
    /// timed out): its wait closes; a gate sample still running is dropped.
    pub(super) fn cancel_wait(&mut self, node: NodeId, attempt: u32) -> Option<Vec<Action>> {
        let waiting = self.waits.remove(&node)?;
        if let Some(journal) = self.journal.as_mut() {
            journal.write_op(WriteOp::CloseWait {
                lease: journal.durable().lease.clone(),
                id: waiting.id.clone(),
                outcome: "Cancelled".to_string(),
                at: Timestamp::now(),
            });
        }
        self.journal_ended(node, attempt, How::Cancelled, None, BTreeMap::new());
        Some(self.state.task_cancelled(node, attempt))
    }

    fn votes_of(&self, id: &AttemptId) -> Vec<Vote> {
        let Some(journal) = self.journal.as_ref() else {
            return Vec::new();
        };
        match journal.durable().store.votes(&id.run) {
            Ok(votes) => votes
                .into_iter()
                .filter(|vote| vote.id == *id)
                .map(|vote| vote_of(&vote))
                .collect(),
            Err(err) => {
                tracing::warn!(wait = %id, error = %err, "cannot read the decisions of a wait");
                Vec::new()
            }
        }
    }

    /// Evaluates a gate once, in a fresh sandbox with the task's grants and limits.
    fn sample_gate(&mut self, node: NodeId) {
        let Some(waiting) = self.waits.get_mut(&node) else {
            return;
        };
        let Request::Gate {
            samples, next_ms, ..
        } = &mut waiting.request
        else {
            return;
        };
        *next_ms = None;
        let sample = *samples;
        *samples += 1;
        let start = waiting.start.clone();
        let since_ms = waiting.since_ms;
        let deadline_ms = waiting.deadline_ms;
        let attempt = start.attempt;
        // The gate's own plugin first, then the further ones: all must pass.
        let mut checks = vec![(start.plugin.clone(), start.params.clone())];
        checks.extend(
            waiting
                .checks
                .iter()
                .map(|check| (check.plugin.clone(), check.params.clone())),
        );
        let resolved: Vec<(
            String,
            BTreeMap<_, _>,
            Option<std::sync::Arc<ResolvedPlugin>>,
        )> = checks
            .into_iter()
            .map(|(plugin, params)| {
                let found = self.plugins.get(&plugin).cloned();
                (plugin, params, found)
            })
            .collect();
        // A sample may not outlast the gate's timeout.
        let time_left = deadline_ms.map(|deadline| {
            Duration::from_millis(u64::try_from(deadline.saturating_sub(now_ms())).unwrap_or(0))
        });
        let Allowance { grants, limits } = self.options.grants.grant(Grantee::Gate {
            start: &start,
            time_left,
        });
        let log = self.task_log(&start);
        let context = GateContext {
            run_name: self.options.run_name.clone(),
            run_uid: self.options.run_uid.clone(),
            pipeline_name: self.state.plan().pipeline_name.clone(),
            task_name: start.name.clone(),
            sample,
            waiting_since_ms: u64::try_from(since_ms).unwrap_or(0),
        };
        let task_context = TaskContext {
            run_name: self.options.run_name.clone(),
            run_uid: self.options.run_uid.clone(),
            pipeline_name: self.state.plan().pipeline_name.clone(),
            task_name: start.name.clone(),
            retry_count: 0,
            retries: 0,
        };
        let masker = self.options.masker.clone();
        self.gate_samples.spawn(async move {
            crate::fault::point("gate-sampling");
            let several = resolved.len() > 1;
            let mut messages = Vec::new();
            let mut passed = true;
            for (plugin, params, found) in resolved {
                let request = TaskRequest {
                    context: task_context.clone(),
                    params,
                    grants: grants.clone(),
                    limits: limits.clone(),
                    log: log.clone(),
                    checkpoints: std::sync::Arc::new(weft_runtime::MemoryCheckpoints::default()),
                    // Gates are not tasks: their instantiations are not timed, nor
                    // their CPU counted.
                    instantiated: None,
                    cpu_used: None,
                };
                let result = match found {
                    Some(gate) => evaluate(&gate, request, context.clone()).await,
                    None => Err(format!("gate plugin `{plugin}` was not prepared")),
                };
                // Masked before anything else sees it, like a task's ending.
                let (ok, text) = match result {
                    Ok(GateResult::Passed(m)) => (true, format!("passed: {}", masker.text(&m))),
                    Ok(GateResult::Failed(m)) => (false, format!("not yet: {}", masker.text(&m))),
                    Ok(GateResult::Error(m)) | Err(m) => {
                        (false, format!("error: {}", masker.text(&m)))
                    }
                };
                let text = if several {
                    format!("{plugin} {text}")
                } else {
                    text
                };
                log.line(LogLine {
                    stream: LogStream::Host,
                    level: if ok { LogLevel::Info } else { LogLevel::Warn },
                    text: format!("gate sample {sample}: {text}"),
                });
                passed &= ok;
                messages.push(text);
            }
            let message = messages.join("; ");
            let result = if passed {
                GateResult::Passed(message)
            } else {
                GateResult::Failed(message)
            };
            (node, attempt, Ok(result))
        });
    }

    /// A gate sample came back: the window moves, the gate passes, fails or samples again.
    pub(super) fn gate_sampled(&mut self, sampled: Sampled) -> Vec<Action> {
        let (node, attempt, result) = sampled;
        let now = now_ms();
        let Some(waiting) = self.waits.get_mut(&node) else {
            return Vec::new();
        };
        if waiting.start.attempt != attempt {
            return Vec::new();
        }
        let since_ms = waiting.since_ms;
        let Request::Gate {
            timing,
            window,
            next_ms,
            last_message,
            ..
        } = &mut waiting.request
        else {
            return Vec::new();
        };
        // An error counts as a failed sample (and is in the task's log).
        let (passed, message) = match result {
            Ok(GateResult::Passed(message)) => (true, message),
            Ok(GateResult::Failed(message)) | Ok(GateResult::Error(message)) | Err(message) => {
                (false, message)
            }
        };
        let state = waits::gate_sample(window, timing, since_ms, now, passed, &message);
        last_message.clone_from(&message);
        *next_ms = Some(now.saturating_add(millis(timing.sampling_interval)));
        self.settle_wait(node, state)
    }
}

/// The stored name of how a wait ended.
fn outcome_name(ending: &WaitEnding) -> &'static str {
    match ending {
        WaitEnding::Approved { .. } => "Approved",
        WaitEnding::Rejected { .. } => "Rejected",
        WaitEnding::ApprovalTimedOut => "ApprovalTimedOut",
        WaitEnding::Resumed { .. } => "Resumed",
        WaitEnding::InterventionTimedOut => "InterventionTimedOut",
        WaitEnding::GatesPassed { .. } => "GatesPassed",
        WaitEnding::GatesFailed { .. } => "GatesFailed",
    }
}

fn request_json(request: &Request) -> String {
    let value = match request {
        Request::Approval(request) => serde_json::to_value(request),
        Request::Intervention(request) => serde_json::to_value(request),
        Request::Gate { timing, .. } => Ok(serde_json::json!({
            "samplingIntervalMs": millis(timing.sampling_interval),
            "stableForMs": millis(timing.stable_for),
            "timeoutMs": millis(timing.timeout),
        })),
    };
    value.map(|v| v.to_string()).unwrap_or_else(|_| "{}".into())
}

/// A stored decision as weft-core counts it.
pub(crate) fn vote_of(vote: &VoteRecord) -> Vote {
    Vote {
        identity: vote.identity.clone(),
        approve: vote.approve,
        message: vote.message.clone(),
        at_ms: vote.at.0,
        defer_until_ms: vote.defer_until.map(|t| t.0),
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// One evaluation of a gate plugin in a fresh sandbox; a trap, a limit or a refused
/// capability comes back as the error it is (a failed sample).
async fn evaluate(
    gate: &ResolvedPlugin,
    request: TaskRequest,
    context: GateContext,
) -> Result<GateResult, String> {
    gate.plugin
        .evaluate(request, context)
        .await
        .map_err(|report| match &report.ending {
            weft_core::contract::TaskEnding::Errored { reason, message } => {
                format!("{reason}: {message}")
            }
            ending => ending.message().to_string(),
        })
}

/// `ms` since the epoch as RFC 3339 (UTC).
pub(crate) fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}
