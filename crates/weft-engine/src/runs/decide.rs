//! Deciding what a run waits for: votes on approvals, resume or reject on manual
//! interventions (release-control.md sections 1 and 2), cast by anyone the caller
//! authenticated, from any process sharing the store. The engine that owns the run reads
//! the decision from the store and moves the run on; who may decide is weft-core's rule
//! (`waits::check_vote`), checked against what the waiting task asked for.

use weft_core::waits::{self, ApprovalRequest, InterventionRequest, VoteRefusal};
use weft_store::{RunStore, StoreError, Timestamp, VoteRecord, WaitRecord};

use crate::execute::waits::vote_of;

/// What is being decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionKind {
    /// A vote on an approval (`weft approve`).
    Approval,
    /// Resuming or rejecting a manual intervention (`weft resume`).
    Intervention,
}

impl DecisionKind {
    fn stored(self) -> &'static str {
        match self {
            DecisionKind::Approval => "approval",
            DecisionKind::Intervention => "intervention",
        }
    }
}

/// A decision someone casts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ballot {
    /// Approval or intervention.
    pub kind: DecisionKind,
    /// Who (authenticated by the caller).
    pub identity: String,
    /// The groups the identity belongs to (for `group:NAME` approvers).
    pub groups: Vec<String>,
    /// Approve (resume) rather than reject.
    pub approve: bool,
    /// Their message.
    pub message: String,
    /// An approval deferred until then (ms since the epoch).
    pub defer_until_ms: Option<i64>,
}

/// A decision that was cast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The waiting task.
    pub task: String,
    /// Its attempt.
    pub attempt: u32,
}

/// Why a decision was not cast. Nothing changes when one is refused.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    /// No run of that name.
    #[error("no run named `{0}`")]
    NoRun(String),
    /// The run has no task of that name.
    #[error("run `{run}` has no task `{task}`")]
    NoWait {
        /// The run.
        run: String,
        /// The task.
        task: String,
    },
    /// The task is not waiting now (it never did, no longer does, or waits for another
    /// kind of decision).
    #[error("{0}")]
    NotWaiting(String),
    /// The identity may not decide, or decided already.
    #[error("{0}")]
    Refused(#[from] VoteRefusal),
    /// The store failed.
    #[error("run store: {0}")]
    Store(StoreError),
}

impl DecideError {
    /// Whether the identity was not allowed (rather than the decision being late or twice).
    pub fn is_forbidden(&self) -> bool {
        matches!(
            self,
            DecideError::Refused(VoteRefusal::NotAnApprover { .. })
        )
    }

    /// Whether the decision itself is malformed (e.g. a deferred reject).
    pub fn is_malformed(&self) -> bool {
        matches!(self, DecideError::Refused(VoteRefusal::Malformed(_)))
    }
}

/// Casts `ballot` on the wait of `task` in `run`. Checks, in order: the run exists; the
/// task waits, for this kind of decision; the identity may decide and has not yet; then
/// the store journals the decision once (a second one by the same identity, or one on a
/// wait that just closed, is refused there too).
pub fn decide(
    store: &dyn RunStore,
    run: &str,
    task: &str,
    ballot: &Ballot,
) -> Result<Receipt, DecideError> {
    let Some(record) = store.run(run).map_err(DecideError::Store)? else {
        return Err(DecideError::NoRun(run.to_string()));
    };
    let waits = store.waits(run).map_err(DecideError::Store)?;
    let Some(wait) = waits
        .iter()
        .filter(|w| w.id.task == task)
        .max_by_key(|w| w.id.attempt)
    else {
        // A task of the run that never waited (a plain task, or a wait not reached yet)
        // is a conflict; a task the run does not have is not found.
        let declared = super::spec::stored_pipeline(&record)
            .is_some_and(|pipeline| pipeline.tasks_deep().iter().any(|t| t.name == task));
        if declared {
            return Err(DecideError::NotWaiting(format!(
                "task `{task}` of run `{run}` is not waiting for a decision"
            )));
        }
        return Err(DecideError::NoWait {
            run: run.to_string(),
            task: task.to_string(),
        });
    };
    if wait.kind != ballot.kind.stored() {
        let how = match wait.kind.as_str() {
            "approval" => "it is an approval: use `weft approve`",
            "intervention" => "it is a manual intervention: use `weft resume`",
            _ => "it is a gate: it decides by itself",
        };
        return Err(DecideError::NotWaiting(format!(
            "task `{task}` of run `{run}` does not take this decision; {how}"
        )));
    }
    if !wait.is_open() {
        return Err(DecideError::NotWaiting(format!(
            "task `{task}` of run `{run}` is no longer waiting ({})",
            wait.outcome.as_deref().unwrap_or("closed")
        )));
    }
    let approvers = approvers_of(wait);
    if ballot.defer_until_ms.is_some() && (ballot.kind != DecisionKind::Approval || !ballot.approve)
    {
        return Err(VoteRefusal::Malformed(
            "only an approving vote on an approval can be deferred".into(),
        )
        .into());
    }
    let votes: Vec<_> = store
        .votes(run)
        .map_err(DecideError::Store)?
        .iter()
        .filter(|v| v.id == wait.id)
        .map(vote_of)
        .collect();
    waits::check_vote(&approvers, &ballot.identity, &ballot.groups, &votes)?;
    let record = VoteRecord {
        id: wait.id.clone(),
        identity: ballot.identity.clone(),
        approve: ballot.approve,
        message: ballot.message.clone(),
        defer_until: ballot.defer_until_ms.map(Timestamp),
        at: Timestamp::now(),
    };
    match store.cast_vote(&record) {
        Ok(()) => Ok(Receipt {
            task: task.to_string(),
            attempt: wait.id.attempt,
        }),
        Err(StoreError::AlreadyExists { .. }) => {
            Err(VoteRefusal::AlreadyVoted(ballot.identity.clone()).into())
        }
        Err(StoreError::NotFound { .. }) => Err(DecideError::NotWaiting(format!(
            "task `{task}` of run `{run}` stopped waiting before the decision arrived"
        ))),
        Err(err) => Err(DecideError::Store(err)),
    }
}

/// Who may decide a wait, as its request was stored.
fn approvers_of(wait: &WaitRecord) -> Vec<String> {
    match wait.kind.as_str() {
        "approval" => serde_json::from_str::<ApprovalRequest>(&wait.request_json)
            .map(|r| r.approvers)
            .unwrap_or_default(),
        "intervention" => serde_json::from_str::<InterventionRequest>(&wait.request_json)
            .map(|r| r.approvers)
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// A run's waits and their decisions, for `weft runs show` and the API.
pub fn waits_document(store: &dyn RunStore, run: &str) -> Result<serde_json::Value, StoreError> {
    let votes = store.votes(run)?;
    let waits = store.waits(run)?;
    // Milliseconds: these are records (when a vote was cast, when a wait closed).
    let rfc = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms).map_or_else(
            || ms.to_string(),
            |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        )
    };
    Ok(serde_json::Value::Array(
        waits
            .iter()
            .map(|wait| {
                let request: serde_json::Value =
                    serde_json::from_str(&wait.request_json).unwrap_or_default();
                serde_json::json!({
                    "task": wait.id.task,
                    "attempt": wait.id.attempt,
                    "kind": wait.kind,
                    "request": request,
                    "since": rfc(wait.since.0),
                    "deadline": wait.deadline.map(|d| rfc(d.0)),
                    "open": wait.is_open(),
                    "outcome": wait.outcome,
                    "closedAt": wait.closed_at.map(|t| rfc(t.0)),
                    "votes": votes
                        .iter()
                        .filter(|v| v.id == wait.id)
                        .map(|v| serde_json::json!({
                            "identity": v.identity,
                            "decision": if v.approve { "approve" } else { "reject" },
                            "message": v.message,
                            "at": rfc(v.at.0),
                            "deferUntil": v.defer_until.map(|t| rfc(t.0)),
                        }))
                        .collect::<Vec<_>>(),
                })
            })
            .collect(),
    ))
}
