//! Starting attempts: each `Start` the run state asks for is granted (the grant builder),
//! given its log sink (masked, journaled, observed) and checkpoints, and run on tokio
//! while it holds one of the server's task slots, if they are shared ([`super::share`]);
//! its ending is masked, journaled and fed back.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::time::Instant;
use weft_core::contract::TaskEnding;
use weft_core::{Action, NodeId, StartTask};
use weft_runtime::{
    LimitKind, LogLine, LogSink, MemoryCheckpoints, TaskContext, TaskReport, TaskRequest,
};

use super::{Attempt, Driver};
use crate::fault;
use crate::grants::{Allowance, Grantee};
use crate::observe::{RunEvent, RunObserver};
use crate::persist::{Ended, How, Journal};
use crate::registry::ResolvedPlugin;

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

impl Driver {
    /// Starts queued attempts while there is room.
    pub(super) fn launch(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.suspend_by.is_some() {
            self.return_task_slot();
            return actions;
        }
        while self.running.len() < self.options.parallelism.max(1) {
            if !self.queue.has_launchable() || !self.has_task_slot() {
                break;
            }
            let Some(start) = self.queue.pop_launchable() else {
                break;
            };
            if !self.task_slot(&start) {
                // Waits aside for its group (`QueuedForAgent`); asked again shortly.
                self.slot_waiting.push(*start);
                continue;
            }
            if let Some(steps) = self.state.plan().nodes[start.node].steps.clone() {
                actions.extend(self.launch_steps(&start, *steps));
                continue;
            }
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
            let slot = self.take_task_slot();
            fault::point("task-start-before");
            let abort = self.tasks.spawn(async move {
                let mut report = plugin.run(request).await;
                drop(slot);
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
        self.return_task_slot();
        actions
    }

    /// Starts an attempt of a Task made of plugin steps: one spawned job runs the steps in
    /// order as `weft_core::steps` says (each granted like a task running that step's
    /// plugin, the task's timeout shared by all of them), and hands back one ending.
    fn launch_steps(
        &mut self,
        start: &StartTask,
        steps: weft_core::model::TaskSteps,
    ) -> Vec<Action> {
        let mut prepared = Vec::with_capacity(steps.steps.len());
        for step in &steps.steps {
            let Some(resolved) = self.plugins.get(&step.plugin.value).cloned() else {
                let message = format!(
                    "plugin `{}` of step `{}` of task `{}` was not prepared",
                    step.plugin.value, step.name.value, start.name
                );
                return self.launch_failed(start, message);
            };
            let request = self.request(start, &resolved);
            prepared.push((resolved.plugin.clone(), request));
        }
        let Some((_, first)) = prepared.first() else {
            return self.launch_failed(start, format!("task `{}` has no steps", start.name));
        };
        let snapshots = crate::snapshot::AfterTask::plan(
            self.options.snapshots.as_ref(),
            self.journal.as_ref().map(Journal::durable),
            &self.options.grants.read_only_workspaces,
            start,
            first,
        );
        let (node, attempt) = (start.node, start.attempt);
        let masker = self.options.masker.clone();
        let log = first.log.clone();
        let (params, timeout) = (start.params.clone(), start.timeout);
        // One slot for all the steps: they run one after another.
        let slot = self.take_task_slot();
        fault::point("task-start-before");
        let abort = self.tasks.spawn(async move {
            let began = Instant::now();
            let mut run = weft_core::steps::StepRun::new(&steps, &params);
            let mut cut_short = None;
            while let Some(step) = run.next_step() {
                let Some((plugin, request)) = prepared.get(step.index) else {
                    break;
                };
                let mut limits = request.limits.clone();
                if let Some(total) = timeout {
                    limits.wall_clock = Some(total.saturating_sub(began.elapsed()));
                }
                let request = TaskRequest {
                    context: request.context.clone(),
                    params: step.params,
                    grants: request.grants.clone(),
                    limits,
                    log: request.log.clone(),
                    checkpoints: request.checkpoints.clone(),
                    instantiated: request.instantiated.clone(),
                    cpu_used: request.cpu_used.clone(),
                };
                let report = plugin.run(request).await;
                if matches!(&report.ending,
                    TaskEnding::Errored { reason, .. } if reason == LimitKind::WallClock.reason())
                {
                    // The task's own timeout: the attempt times out, whichever step ran.
                    cut_short = Some(report);
                    break;
                }
                run.ended(report.ending, report.results);
            }
            drop(slot);
            let mut report = cut_short.unwrap_or_else(|| {
                let (ending, results) = run.finish();
                TaskReport { ending, results }
            });
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
        let actions = self.state.task_started(node, attempt);
        fault::point("task-start-after");
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

    pub(super) fn finished(
        &mut self,
        node: NodeId,
        attempt: u32,
        report: TaskReport,
    ) -> Vec<Action> {
        if self
            .running
            .get(&node)
            .is_some_and(|r| r.attempt == attempt)
        {
            fault::point("task-finish-before");
            self.free_task_slot(node);
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
            // The ending is journaled; the attempt's terminal record is not yet.
            if fault::armed("task-ended-unrecorded") {
                let _ = self.flush();
                fault::point("task-ended-unrecorded");
            }
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

    pub(super) fn journal_ended(
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
                waited: None,
            },
        );
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
        let log = self.task_log(start);
        let (observer, task) = (self.observer.clone(), start.name.clone());
        let instantiated: weft_runtime::Instantiated = Arc::new(move |elapsed| {
            observer.event(RunEvent::Instantiated {
                task: &task,
                elapsed,
            });
        });
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
            instantiated: Some(instantiated),
            cpu_used: self.cpu_quota().map(|quota| {
                let told: weft_runtime::Instantiated = Arc::new(move |cpu| quota.used(cpu));
                told
            }),
        }
    }

    /// The log of an attempt: masked first (the store, the view and the log files see
    /// masked lines only), journaled, then passed to the observers.
    pub(super) fn task_log(&self, start: &StartTask) -> Arc<dyn LogSink> {
        let log: Arc<dyn LogSink> = Arc::new(TaskLog {
            task: start.name.clone(),
            observer: self.observer.clone(),
        });
        let log = match &self.journal {
            Some(journal) => journal.log_sink(&start.name, start.attempt, log),
            None => log,
        };
        let masked = self.options.masker.log_sink(log);
        match self.options.log_budget_bytes {
            Some(limit) => {
                let budget = self
                    .log_budget
                    .get_or_init(|| super::log_budget::LogBudget::new(limit))
                    .clone();
                Arc::new(super::log_budget::BudgetSink {
                    inner: masked,
                    budget,
                })
            }
            None => masked,
        }
    }
}
