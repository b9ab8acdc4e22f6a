//! A run's journal in the store: attempt records, the raw endings they came from, logs,
//! checkpoints and the final report, all written under the run's lease (a fencing token:
//! a stale owner's writes are refused by the store).
//!
//! Writes are queued (the store commits them in groups); the driver calls [`Journal::flush`]
//! before it acts on what was written, so a task never starts before the terminal records
//! of what it depends on are durable. Recovery replays the `attempt-ended` events through
//! the pure `RunState`: an attempt with a journaled ending is answered from the journal and
//! never runs again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_core::contract::TaskEnding;
use weft_core::model::OnError;
use weft_core::{NodeId, Outcome, RunPhase, RunSummary, TaskPhase};
use weft_runtime::{CheckpointStore, LogLine, LogSink, LogStream};
use weft_store::{
    AttemptId, AttemptRecord, Lease, NewEvent, NewLogLine, Recovery, RunStore, StoreError,
    Timestamp, WriteOp,
};

/// Event kind of a journaled attempt ending.
pub const ATTEMPT_ENDED: &str = "attempt-ended";
/// Event kind of a queued attempt the engine never began (it let go of the run).
pub const ATTEMPT_NOT_STARTED: &str = "attempt-not-started";
/// Event kind recording the attempt-number offsets after a `startOver`.
pub const ATTEMPT_BASE: &str = "attempt-base";

/// How an attempt ended, as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum How {
    /// The plugin returned (or errored) with `ending`.
    Ended,
    /// It ran past its timeout.
    TimedOut,
    /// The engine cancelled it.
    Cancelled,
    /// A wait (approval, intervention, gate) ended as `waited` says.
    Waited,
}

/// One journaled attempt ending: enough to feed it back into `RunState`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ended {
    /// How it ended.
    pub how: How,
    /// The raw ending, for [`How::Ended`].
    pub ending: Option<TaskEnding>,
    /// Its results.
    pub results: BTreeMap<String, String>,
    /// How a wait ended, for [`How::Waited`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waited: Option<weft_core::waits::WaitEnding>,
}

/// What recovery found, for the driver to replay.
#[derive(Debug, Clone, Default)]
pub struct Replay {
    /// The run's recovery strategy.
    pub strategy: Option<Recovery>,
    /// Journaled endings by (task, attempt as the run state numbers it).
    pub ended: HashMap<(String, u32), Ended>,
    /// Attempts with a non-terminal record: running (or about to) when the engine stopped.
    pub in_flight: HashSet<(String, u32)>,
    /// Journaled endings whose terminal record was not committed: the engine stopped
    /// between the two writes. Replaying them writes the record.
    pub unrecorded: HashSet<(String, u32)>,
}

/// A run's place in the store.
#[derive(Clone)]
pub struct Durable {
    /// The store (usually a batching one).
    pub store: Arc<dyn RunStore>,
    /// The run's lease.
    pub lease: Lease,
    /// Stored attempt number = base + the run state's attempt number (non-zero after a
    /// `startOver`, so stored records stay immutable).
    pub attempt_base: HashMap<String, u32>,
    /// Set when the run is being recovered.
    pub replay: Option<Arc<Replay>>,
    /// How often to heartbeat the lease.
    pub heartbeat_every: Duration,
    /// How long the lease lasts without a heartbeat: heartbeats that fail for longer give
    /// the run up.
    pub lease_ttl: Duration,
}

impl std::fmt::Debug for Durable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Durable")
            .field("lease", &self.lease)
            .field("recovering", &self.replay.is_some())
            .finish()
    }
}

/// The driver's writer.
pub(crate) struct Journal {
    durable: Durable,
    started: HashMap<NodeId, Timestamp>,
    endings: HashMap<NodeId, (Option<i32>, String, String)>,
    dirty: bool,
    pub(crate) checkpoint_hits: Arc<AtomicU64>,
}

impl Journal {
    pub(crate) fn new(durable: Durable) -> Self {
        Journal {
            durable,
            started: HashMap::new(),
            endings: HashMap::new(),
            dirty: false,
            checkpoint_hits: Arc::new(AtomicU64::new(0)),
        }
    }

    pub(crate) fn durable(&self) -> &Durable {
        &self.durable
    }

    fn run(&self) -> &str {
        &self.durable.lease.run
    }

    /// The stored id of the run state's `attempt` of `task`.
    pub(crate) fn attempt_id(&self, task: &str, attempt: u32) -> AttemptId {
        let base = self.durable.attempt_base.get(task).copied().unwrap_or(0);
        AttemptId::new(self.run(), task, base + attempt)
    }

    fn enqueue(&mut self, op: WriteOp) {
        self.dirty = true;
        if let Err(err) = self.durable.store.enqueue(op) {
            tracing::error!(run = %self.run(), error = %err, "cannot queue a write to the run store");
        }
    }

    /// Queues a write under the run's lease (made durable by the next flush).
    pub(crate) fn write_op(&mut self, op: WriteOp) {
        self.enqueue(op);
    }

    /// Records a phase change of an attempt.
    pub(crate) fn transition(
        &mut self,
        node: NodeId,
        task: &str,
        phase: TaskPhase,
        outcome: Option<Outcome>,
        reason: &str,
        attempt: u32,
    ) {
        // A replayed attempt is already in the journal with its final record, unless the
        // engine stopped between its ending and its record: then only the terminal record
        // is written now, with what the journaled ending said (the stored start time stays).
        if let Some(replay) = self.durable.replay.as_ref() {
            let key = (task.to_string(), attempt);
            if let Some(ended) = replay.ended.get(&key) {
                if phase != TaskPhase::Terminal || !replay.unrecorded.contains(&key) {
                    return;
                }
                let details = ending_details(ended);
                self.endings.insert(node, details);
            }
        }
        let now = Timestamp::now();
        if phase == TaskPhase::Running {
            self.started.insert(node, now);
        }
        let mut record = AttemptRecord::new(self.attempt_id(task, attempt), phase.into(), now);
        record.outcome = outcome.map(Into::into);
        record.reason = reason.to_string();
        record.started_at = self.started.get(&node).copied();
        if phase == TaskPhase::Terminal {
            record.ended_at = Some(now);
            if let Some((exit_code, message, results)) = self.endings.remove(&node) {
                record.exit_code = exit_code;
                record.message = message;
                record.results_json = results;
            }
        }
        let lease = self.durable.lease.clone();
        self.enqueue(WriteOp::Attempt { lease, record });
    }

    /// Journals how an attempt ended, before the run state acts on it.
    pub(crate) fn ended(&mut self, node: NodeId, task: &str, attempt: u32, ended: &Ended) {
        self.endings.insert(node, ending_details(ended));
        let event = NewEvent {
            at: Timestamp::now(),
            kind: ATTEMPT_ENDED.to_string(),
            task: Some(task.to_string()),
            attempt: Some(self.attempt_id(task, attempt).attempt),
            data_json: serde_json::to_string(ended).unwrap_or_else(|_| "{}".into()),
        };
        let lease = self.durable.lease.clone();
        self.enqueue(WriteOp::Event { lease, event });
    }

    /// Records that a queued attempt was never begun (the engine let go of the run first):
    /// recovery starts it like any new attempt instead of treating it as in flight.
    pub(crate) fn not_started(&mut self, task: &str, attempt: u32) {
        let event = NewEvent {
            at: Timestamp::now(),
            kind: ATTEMPT_NOT_STARTED.to_string(),
            task: Some(task.to_string()),
            attempt: Some(self.attempt_id(task, attempt).attempt),
            data_json: "{}".into(),
        };
        let lease = self.durable.lease.clone();
        self.enqueue(WriteOp::Event { lease, event });
    }

    /// Records a run-level event (`kind`, with `data`): a concurrency group's admission.
    pub(crate) fn run_event(&mut self, kind: &str, data: serde_json::Value) {
        let event = NewEvent {
            at: Timestamp::now(),
            kind: kind.to_string(),
            task: None,
            attempt: None,
            data_json: data.to_string(),
        };
        let lease = self.durable.lease.clone();
        self.enqueue(WriteOp::Event { lease, event });
    }

    /// Records the run's phase.
    pub(crate) fn run_phase(&mut self, phase: RunPhase) {
        let lease = self.durable.lease.clone();
        self.enqueue(WriteOp::RunPhase {
            lease,
            phase: phase.into(),
        });
    }

    /// Records the final status and report, and makes everything durable.
    pub(crate) fn finish(&mut self, summary: &RunSummary) -> Result<(), StoreError> {
        crate::fault::point("final-status-before");
        let report_json = serde_json::to_string(&summary.report).unwrap_or_else(|_| "{}".into());
        let lease = self.durable.lease.clone();
        self.enqueue(WriteOp::FinishRun {
            lease,
            status: summary.status.as_str().to_string(),
            reason: summary.reason.clone(),
            report_json,
            finished_at: Timestamp::now(),
        });
        self.flush()
    }

    /// Whether anything was written since the last flush.
    pub(crate) fn dirty(&self) -> bool {
        self.dirty
    }

    /// Waits until everything queued is committed. Refused writes (a terminal attempt
    /// written again, a stale lease) come back here.
    pub(crate) fn flush(&mut self) -> Result<(), StoreError> {
        self.dirty = false;
        match self.durable.store.flush() {
            Err(err) if err.is_stale_lease() => Err(err),
            Err(err) if err.is_rejection() => {
                // A late write for a terminal attempt: rejected by design, worth a line.
                tracing::warn!(run = %self.run(), error = %err, "the store refused a late write");
                Ok(())
            }
            other => other,
        }
    }

    /// A log sink that keeps the attempt's lines in the store and passes them on.
    pub(crate) fn log_sink(
        &self,
        task: &str,
        attempt: u32,
        next: Arc<dyn LogSink>,
    ) -> Arc<dyn LogSink> {
        Arc::new(StoredLog {
            store: self.durable.store.clone(),
            lease: self.durable.lease.clone(),
            id: self.attempt_id(task, attempt),
            next,
        })
    }

    /// The task's checkpoints, in the store.
    pub(crate) fn checkpoints(&self, task: &str) -> Arc<dyn CheckpointStore> {
        Arc::new(StoredCheckpoints {
            store: self.durable.store.clone(),
            lease: self.durable.lease.clone(),
            task: task.to_string(),
            hits: self.checkpoint_hits.clone(),
        })
    }
}

struct StoredLog {
    store: Arc<dyn RunStore>,
    lease: Lease,
    id: AttemptId,
    next: Arc<dyn LogSink>,
}

impl LogSink for StoredLog {
    fn line(&self, line: LogLine) {
        let stream = match line.stream {
            LogStream::Log => line.level.as_str(),
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
            LogStream::Host => "host",
        };
        let op = WriteOp::Logs {
            lease: self.lease.clone(),
            id: self.id.clone(),
            lines: vec![NewLogLine {
                at: Timestamp::now(),
                stream: stream.to_string(),
                text: line.text.clone(),
            }],
        };
        if let Err(err) = self.store.enqueue(op) {
            tracing::warn!(error = %err, "cannot keep a log line");
        }
        self.next.line(line);
    }
}

struct StoredCheckpoints {
    store: Arc<dyn RunStore>,
    lease: Lease,
    task: String,
    hits: Arc<AtomicU64>,
}

impl CheckpointStore for StoredCheckpoints {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        let value = self
            .store
            .checkpoint(&self.lease.run, &self.task, key)
            .ok()
            .flatten();
        if value.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        value
    }

    fn put(&self, key: &str, value: Vec<u8>) -> Result<(), String> {
        // Written through, not queued: the plugin relies on it once put returns.
        self.store
            .write(WriteOp::Checkpoint {
                lease: self.lease.clone(),
                task: self.task.clone(),
                key: key.to_string(),
                value,
                at: Timestamp::now(),
            })
            .map(|_| ())
            .map_err(|e| format!("cannot store checkpoint `{key}`: {e}"))
    }
}

/// What an attempt's terminal record says of its ending: exit code, message and results
/// (JSON).
fn ending_details(ended: &Ended) -> (Option<i32>, String, String) {
    let exit_code = ended.ending.as_ref().and_then(TaskEnding::exit_code);
    let (message, results) = match &ended.waited {
        // A wait's record says how it was decided (who, what they said).
        Some(waited) => {
            let result = weft_core::waits::wait_result(waited, OnError::StopAndFail);
            (result.message, result.results)
        }
        None => (
            ended
                .ending
                .as_ref()
                .map(|e| e.message().to_string())
                .unwrap_or_default(),
            ended.results.clone(),
        ),
    };
    let results = serde_json::to_string(&results).unwrap_or_else(|_| "{}".into());
    (exit_code, message, results)
}

/// Reads `run`'s journal into what recovery replays (see [`Replay`]) and the attempt
/// offsets to number new attempts with. With `startOver`, nothing is replayed: every
/// attempt runs again after the stored ones, attempts the stopped engine left unfinished
/// are closed (`EngineRestarted`), and the new offsets are journaled.
pub(crate) fn read_replay(
    store: &Arc<dyn RunStore>,
    lease: &Lease,
    strategy: Recovery,
) -> Result<(Replay, HashMap<String, u32>), StoreError> {
    let run = lease.run.as_str();
    let attempts = store.attempts(run)?;
    let events = store.events(run, 0, usize::MAX)?;
    // Offsets from an earlier startOver, if any.
    let mut base: HashMap<String, u32> = events
        .iter()
        .rev()
        .find(|e| e.event.kind == ATTEMPT_BASE)
        .and_then(|e| serde_json::from_str(&e.event.data_json).ok())
        .unwrap_or_default();
    let mut replay = Replay {
        strategy: Some(strategy),
        ..Replay::default()
    };
    if strategy == Recovery::StartOver {
        // New attempts after every stored one: stored records stay as they are, except
        // that attempts the stopped engine left unfinished are closed: they never end
        // otherwise, and each attempt ends terminal in the store with its own outcome.
        base.clear();
        let now = Timestamp::now();
        for attempt in &attempts {
            let next = attempt.id.attempt + 1;
            let entry = base.entry(attempt.id.task.clone()).or_insert(0);
            *entry = (*entry).max(next);
            if !attempt.is_terminal() {
                store.write(WriteOp::Attempt {
                    lease: lease.clone(),
                    record: abandoned(attempt, now),
                })?;
                // A wait it left open takes no more decisions: the task waits again as
                // a new attempt.
                if store.wait(&attempt.id)?.is_some_and(|w| w.is_open()) {
                    store.write(WriteOp::CloseWait {
                        lease: lease.clone(),
                        id: attempt.id.clone(),
                        outcome: "Abandoned".into(),
                        at: now,
                    })?;
                }
            }
        }
        store.write(WriteOp::Event {
            lease: lease.clone(),
            event: NewEvent {
                at: Timestamp::now(),
                kind: ATTEMPT_BASE.to_string(),
                task: None,
                attempt: None,
                data_json: serde_json::to_string(&base).unwrap_or_else(|_| "{}".into()),
            },
        })?;
    } else {
        let local =
            |task: &str, stored: u32| stored.checked_sub(base.get(task).copied().unwrap_or(0));
        for event in events.iter().filter(|e| e.event.kind == ATTEMPT_ENDED) {
            let (Some(task), Some(stored)) = (&event.event.task, event.event.attempt) else {
                continue;
            };
            let (Some(attempt), Ok(ended)) = (
                local(task, stored),
                serde_json::from_str::<Ended>(&event.event.data_json),
            ) else {
                continue;
            };
            replay.ended.insert((task.clone(), attempt), ended);
        }
        let mut settled: HashSet<(String, u32)> = replay.ended.keys().cloned().collect();
        // Queued attempts the engine never began before it let go of the run start afresh.
        for event in events
            .iter()
            .filter(|e| e.event.kind == ATTEMPT_NOT_STARTED)
        {
            if let (Some(task), Some(stored)) = (&event.event.task, event.event.attempt)
                && let Some(attempt) = local(task, stored)
            {
                settled.insert((task.clone(), attempt));
            }
        }
        for attempt in attempts.iter().filter(|a| !a.is_terminal()) {
            if let Some(local) = local(&attempt.id.task, attempt.id.attempt) {
                let key = (attempt.id.task.clone(), local);
                if replay.ended.contains_key(&key) {
                    replay.unrecorded.insert(key);
                } else if !settled.contains(&key) {
                    replay.in_flight.insert(key);
                }
            }
        }
    }

    Ok((replay, base))
}

/// The terminal record of an attempt a stopped engine left unfinished, which `startOver`
/// abandons (the task runs again as a new attempt).
fn abandoned(attempt: &weft_store::AttemptRecord, now: Timestamp) -> weft_store::AttemptRecord {
    let mut record =
        weft_store::AttemptRecord::new(attempt.id.clone(), weft_store::TaskPhase::Terminal, now);
    record.outcome = Some(weft_store::Outcome::Errored);
    record.reason = weft_core::replay::ENGINE_RESTARTED.into();
    record.message =
        "the engine stopped while this attempt was unfinished; recovery (startOver) runs the task again as a new attempt"
            .into();
    record.started_at = attempt.started_at;
    record.ended_at = Some(now);
    record
}
