//! Tasks that wait for people or for the world (release-control.md sections 1-3):
//! approvals, manual interventions and gates. Every decision about a wait is made here,
//! as pure functions of what the engine gathered (the votes cast, the gate samples seen,
//! the time): who may vote, when an approval is approved, rejected, deferred or timed
//! out, when a gate has held steadily long enough, and what each ending means for the
//! task (outcome, reason, flow, results).
//!
//! The engine keeps a waiting run's state in the store (the wait with its deadline, the
//! votes) and asks these functions again whenever something changed.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use crate::contract::{
    Capabilities, ParamSpec, ParamType, ParamValue, PluginInfo, ResultSpec, TaskEnding,
};
use crate::model::{Flow, OnError};
use crate::status::Outcome;

/// Reasons of wait endings.
pub mod reasons {
    /// An approver rejected, or an intervention was rejected.
    pub const REJECTED: &str = "Rejected";
    /// Nobody decided an approval before its timeout.
    pub const APPROVAL_TIMED_OUT: &str = "ApprovalTimedOut";
    /// Nobody decided an intervention before its timeout (`onTimeout: reject`).
    pub const INTERVENTION_TIMED_OUT: &str = "InterventionTimedOut";
    /// A gate did not pass steadily before its timeout.
    pub const GATES_FAILED: &str = "GatesFailed";
}

/// The prefix of a group in an `approvers` list (`group:release-managers`).
pub const GROUP_PREFIX: &str = "group:";

/// What a waiting task waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitKind {
    /// Votes of listed approvers (`kind: ApprovalTask`).
    Approval,
    /// A person resuming or rejecting it (`kind: ManualIntervention`).
    Intervention,
    /// A gate plugin passing steadily (`kind: Gate`).
    Gate(GateTiming),
}

impl WaitKind {
    /// The task kind that waits this way.
    pub fn task_kind(self) -> crate::model::TaskKind {
        match self {
            WaitKind::Approval => crate::model::TaskKind::Approval,
            WaitKind::Intervention => crate::model::TaskKind::Intervention,
            WaitKind::Gate(_) => crate::model::TaskKind::Gate,
        }
    }

    /// The name as stored and shown (`approval`, `intervention`, `gate`).
    pub fn as_str(self) -> &'static str {
        match self {
            WaitKind::Approval => "approval",
            WaitKind::Intervention => "intervention",
            WaitKind::Gate(_) => "gate",
        }
    }
}

/// What a waiting task waits for, as views and reporters show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunWait {
    /// What kind of wait.
    pub kind: WaitKind,
    /// How far along it is ("1 of 2 approvals", "passing for 30s of 120s").
    pub progress: String,
    /// When it times out (ms since the epoch), if ever.
    pub deadline_ms: Option<i64>,
}

impl RunWait {
    /// "waiting for approval of approve-prod (1 of 2 approvals)".
    pub fn describe(&self, task: &str) -> String {
        let what = match self.kind {
            WaitKind::Approval => "approval of",
            WaitKind::Intervention => "a manual intervention on",
            WaitKind::Gate(_) => "gate",
        };
        if self.progress.is_empty() {
            format!("waiting for {what} {task}")
        } else {
            format!("waiting for {what} {task} ({})", self.progress)
        }
    }
}

/// How a gate is sampled (`gate: {samplingInterval, stableFor, timeout}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateTiming {
    /// Time between evaluations.
    pub sampling_interval: Duration,
    /// How long passing samples must hold (0: one pass).
    pub stable_for: Duration,
    /// When the gate fails.
    pub timeout: Duration,
}

impl Default for GateTiming {
    fn default() -> Self {
        GateTiming {
            sampling_interval: Duration::from_secs(5 * 60),
            stable_for: Duration::ZERO,
            timeout: Duration::from_secs(15 * 60),
        }
    }
}

/// What `describe()` would say of an approval: the params it takes and the results it
/// gives, so a pipeline's approval is validated like any plugin's task.
pub fn approval_info() -> &'static PluginInfo {
    static INFO: OnceLock<PluginInfo> = OnceLock::new();
    INFO.get_or_init(|| PluginInfo {
        name: "ApprovalTask".into(),
        version: "v1alpha1".into(),
        description: "Waits for the votes of listed approvers".into(),
        params: vec![
            param(
                "approvers",
                ParamType::Array,
                None,
                "Identities and `group:NAME`s who may vote",
            ),
            param(
                "numberOfApprovalsRequired",
                ParamType::String,
                Some("1"),
                "Approvals needed",
            ),
            param(
                "description",
                ParamType::String,
                Some(""),
                "What is being approved",
            ),
        ],
        results: vec![
            ResultSpec {
                name: "decision".into(),
                description: "`approved`".into(),
            },
            ResultSpec {
                name: "approvers".into(),
                description: "Who approved (a JSON array)".into(),
            },
        ],
        results_fixed: true,
        accepts_any_params: false,
        capabilities: Capabilities::default(),
    })
}

/// What `describe()` would say of a manual intervention.
pub fn intervention_info() -> &'static PluginInfo {
    static INFO: OnceLock<PluginInfo> = OnceLock::new();
    INFO.get_or_init(|| PluginInfo {
        name: "ManualIntervention".into(),
        version: "v1".into(),
        description: "Waits for a person to resume or reject the run".into(),
        params: vec![
            param(
                "instructions",
                ParamType::String,
                Some(""),
                "What to check before resuming",
            ),
            ParamSpec {
                allowed: vec!["reject".into(), "resume".into()],
                ..param(
                    "onTimeout",
                    ParamType::String,
                    Some("reject"),
                    "What a timeout does",
                )
            },
            ParamSpec {
                default: Some(ParamValue::Array(Vec::new())),
                ..param(
                    "approvers",
                    ParamType::Array,
                    None,
                    "Who may decide (anyone when empty)",
                )
            },
        ],
        results: vec![ResultSpec {
            name: "decision".into(),
            description: "`resumed`".into(),
        }],
        results_fixed: true,
        accepts_any_params: false,
        capabilities: Capabilities::default(),
    })
}

fn param(name: &str, param_type: ParamType, default: Option<&str>, description: &str) -> ParamSpec {
    ParamSpec {
        name: name.into(),
        param_type,
        description: description.into(),
        default: default.map(|d| ParamValue::Str(d.into())),
        allowed: Vec::new(),
    }
}

/// An approval as its rendered params ask for it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRequest {
    /// Who may vote: identities and `group:NAME`s.
    pub approvers: Vec<String>,
    /// Distinct approvals needed.
    pub required: u32,
    /// What is being approved.
    pub description: String,
}

impl ApprovalRequest {
    /// From the task's rendered params (validated before the run, so errors here name
    /// what a substituted value turned into).
    pub fn from_params(params: &BTreeMap<String, ParamValue>) -> Result<Self, String> {
        let approvers = list(params, "approvers");
        if approvers.is_empty() {
            return Err("`approvers` is empty: nobody could approve".into());
        }
        let required = match params.get("numberOfApprovalsRequired") {
            None => 1,
            Some(ParamValue::Str(text)) => text
                .trim()
                .parse::<u32>()
                .map_err(|_| format!("numberOfApprovalsRequired `{text}` is not a whole number"))?,
            Some(_) => return Err("numberOfApprovalsRequired must be a string".into()),
        };
        if required == 0 {
            return Err("numberOfApprovalsRequired must be at least 1".into());
        }
        if required as usize > approvers.len() {
            return Err(format!(
                "numberOfApprovalsRequired is {required} but only {} approvers are listed",
                approvers.len()
            ));
        }
        Ok(ApprovalRequest {
            approvers,
            required,
            description: text(params, "description"),
        })
    }
}

/// A manual intervention as its rendered params ask for it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InterventionRequest {
    /// What to check.
    pub instructions: String,
    /// Whether a timeout resumes (else it rejects).
    pub resume_on_timeout: bool,
    /// Who may decide; anyone when empty.
    pub approvers: Vec<String>,
}

impl InterventionRequest {
    /// From the task's rendered params.
    pub fn from_params(params: &BTreeMap<String, ParamValue>) -> Result<Self, String> {
        let resume_on_timeout = match text(params, "onTimeout").as_str() {
            "" | "reject" => false,
            "resume" => true,
            other => return Err(format!("onTimeout `{other}` is not reject or resume")),
        };
        Ok(InterventionRequest {
            instructions: text(params, "instructions"),
            resume_on_timeout,
            approvers: list(params, "approvers"),
        })
    }
}

fn text(params: &BTreeMap<String, ParamValue>, name: &str) -> String {
    match params.get(name) {
        Some(ParamValue::Str(text)) => text.clone(),
        _ => String::new(),
    }
}

fn list(params: &BTreeMap<String, ParamValue>, name: &str) -> Vec<String> {
    match params.get(name) {
        Some(ParamValue::Array(items)) => items
            .iter()
            .map(|item| item.trim().to_string())
            .filter(|item| !item.is_empty())
            .collect(),
        Some(ParamValue::Str(one)) if !one.trim().is_empty() => vec![one.trim().to_string()],
        _ => Vec::new(),
    }
}

/// One decision cast on a wait, as journaled.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vote {
    /// Who.
    pub identity: String,
    /// Approve (or resume) rather than reject.
    pub approve: bool,
    /// Their message.
    #[serde(default)]
    pub message: String,
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// An approval deferred until then (ms since the epoch).
    #[serde(default)]
    pub defer_until_ms: Option<i64>,
}

/// Why a vote is refused. Nothing changes when one is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoteRefusal {
    /// The identity is not listed (directly or through a group).
    #[error("`{identity}` is not one of the approvers ({approvers})")]
    NotAnApprover {
        /// Who tried.
        identity: String,
        /// Who may.
        approvers: String,
    },
    /// The identity voted already.
    #[error("`{0}` has already voted")]
    AlreadyVoted(String),
    /// A deferral on a rejection, or on an intervention.
    #[error("{0}")]
    Malformed(String),
}

/// Whether `identity` (member of `groups`) may vote on a wait listing `approvers` (an
/// empty list lets anyone decide) that already has `votes`.
pub fn check_vote(
    approvers: &[String],
    identity: &str,
    groups: &[String],
    votes: &[Vote],
) -> Result<(), VoteRefusal> {
    let listed = approvers.is_empty()
        || approvers
            .iter()
            .any(|entry| match entry.strip_prefix(GROUP_PREFIX) {
                Some(group) => groups.iter().any(|g| g == group),
                None => entry == identity,
            });
    if !listed {
        return Err(VoteRefusal::NotAnApprover {
            identity: identity.to_string(),
            approvers: approvers.join(", "),
        });
    }
    if votes.iter().any(|vote| vote.identity == identity) {
        return Err(VoteRefusal::AlreadyVoted(identity.to_string()));
    }
    Ok(())
}

/// How a wait ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum WaitEnding {
    /// Enough approvers approved (and any deferral passed).
    Approved {
        /// Who approved, in order.
        approvers: Vec<String>,
    },
    /// Someone rejected (an approval or an intervention).
    Rejected {
        /// Who.
        by: String,
        /// Their message.
        message: String,
    },
    /// An approval's timeout passed undecided.
    ApprovalTimedOut,
    /// An intervention was resumed.
    Resumed {
        /// Who (empty for a timeout with `onTimeout: resume`).
        by: String,
        /// Their message.
        message: String,
    },
    /// An intervention's timeout passed undecided with `onTimeout: reject`.
    InterventionTimedOut,
    /// A gate passed steadily.
    GatesPassed {
        /// The last sample's message.
        message: String,
    },
    /// A gate did not pass steadily before its timeout.
    GatesFailed {
        /// The last sample's message.
        message: String,
    },
}

/// Where a wait stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitState {
    /// Still waiting; `progress` says for what ("1 of 2 approvals").
    Waiting {
        /// In words.
        progress: String,
    },
    /// Approved, but deferred until then (ms since the epoch).
    Deferred {
        /// When it succeeds.
        until_ms: i64,
    },
    /// Over.
    Ended(WaitEnding),
}

/// Where an approval stands given its `votes` at `now_ms` (its deadline, if any, at
/// `deadline_ms`): any reject rejects; `required` distinct approvals approve, deferred
/// until the latest `deferUntil` among them; the deadline passing undecided times out.
/// Votes cast after the deadline do not count.
pub fn approval_state(
    request: &ApprovalRequest,
    votes: &[Vote],
    now_ms: i64,
    deadline_ms: Option<i64>,
) -> WaitState {
    let counted: Vec<&Vote> = votes
        .iter()
        .filter(|vote| deadline_ms.is_none_or(|deadline| vote.at_ms <= deadline))
        .collect();
    if let Some(reject) = counted.iter().find(|vote| !vote.approve) {
        return WaitState::Ended(WaitEnding::Rejected {
            by: reject.identity.clone(),
            message: reject.message.clone(),
        });
    }
    let approvers: Vec<String> = counted.iter().map(|vote| vote.identity.clone()).collect();
    if approvers.len() >= request.required as usize {
        let until = counted.iter().filter_map(|vote| vote.defer_until_ms).max();
        return match until {
            Some(until_ms) if until_ms > now_ms => WaitState::Deferred { until_ms },
            _ => WaitState::Ended(WaitEnding::Approved { approvers }),
        };
    }
    if deadline_ms.is_some_and(|deadline| now_ms >= deadline) {
        return WaitState::Ended(WaitEnding::ApprovalTimedOut);
    }
    WaitState::Waiting {
        progress: format!("{} of {} approvals", approvers.len(), request.required),
    }
}

/// Where a manual intervention stands: the first decision decides; a timeout resumes
/// or rejects as `onTimeout` says.
pub fn intervention_state(
    request: &InterventionRequest,
    votes: &[Vote],
    now_ms: i64,
    deadline_ms: Option<i64>,
) -> WaitState {
    let first = votes
        .iter()
        .filter(|vote| deadline_ms.is_none_or(|deadline| vote.at_ms <= deadline))
        .min_by_key(|vote| vote.at_ms);
    match first {
        Some(vote) if vote.approve => WaitState::Ended(WaitEnding::Resumed {
            by: vote.identity.clone(),
            message: vote.message.clone(),
        }),
        Some(vote) => WaitState::Ended(WaitEnding::Rejected {
            by: vote.identity.clone(),
            message: vote.message.clone(),
        }),
        None if deadline_ms.is_some_and(|deadline| now_ms >= deadline) => {
            WaitState::Ended(if request.resume_on_timeout {
                WaitEnding::Resumed {
                    by: String::new(),
                    message: "resumed at its timeout (onTimeout: resume)".into(),
                }
            } else {
                WaitEnding::InterventionTimedOut
            })
        }
        None => WaitState::Waiting {
            progress: "waiting to be resumed".into(),
        },
    }
}

/// A gate's passing streak, as this engine observed it. A restarted engine starts a new
/// streak: a stable window never counts time nobody observed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GateWindow {
    /// When the current streak of passing samples began (ms since the epoch).
    pub passing_since_ms: Option<i64>,
}

/// Where a gate stands after a sample taken at `now_ms` (`passed`, with its message),
/// for a gate that started waiting at `started_ms`: passed once passing samples have held
/// for `stableFor`; a failed (or errored) sample restarts the window; failed at the
/// timeout.
pub fn gate_sample(
    window: &mut GateWindow,
    timing: &GateTiming,
    started_ms: i64,
    now_ms: i64,
    passed: bool,
    message: &str,
) -> WaitState {
    if passed {
        let since = *window.passing_since_ms.get_or_insert(now_ms);
        if now_ms - since >= millis(timing.stable_for) {
            return WaitState::Ended(WaitEnding::GatesPassed {
                message: message.to_string(),
            });
        }
    } else {
        window.passing_since_ms = None;
    }
    if now_ms - started_ms >= millis(timing.timeout) {
        return WaitState::Ended(WaitEnding::GatesFailed {
            message: message.to_string(),
        });
    }
    WaitState::Waiting {
        progress: match window.passing_since_ms {
            Some(since) => format!(
                "passing for {}s of {}s",
                (now_ms - since) / 1000,
                timing.stable_for.as_secs()
            ),
            None => "not passing yet".into(),
        },
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// What a wait's ending means for its task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitResult {
    /// The task's outcome.
    pub outcome: Outcome,
    /// Its reason.
    pub reason: &'static str,
    /// What it does to the rest of the run.
    pub flow: Flow,
    /// Its message.
    pub message: String,
    /// Its results.
    pub results: BTreeMap<String, String>,
    /// The ending it stands for, as `$(tasks.t.status)` reads it (`Succeeded` for an
    /// approval, `Failed` for a rejection even when `onError: continue` tolerates it).
    pub raw: TaskEnding,
}

/// The task outcome of a wait's ending: approvals give results `decision` and
/// `approvers`; a rejection is `Rejected` and stops the run, a gate timeout `Failed`
/// (`GatesFailed`); `onError: continue` tolerates both as it tolerates a failure.
pub fn wait_result(ending: &WaitEnding, on_error: OnError) -> WaitResult {
    let ok = |message: String, results: BTreeMap<String, String>| WaitResult {
        outcome: Outcome::Succeeded,
        reason: "",
        flow: Flow::Continue,
        message,
        results,
        raw: TaskEnding::Success,
    };
    let raw_failure = |message: &str| TaskEnding::Failure {
        message: message.to_string(),
        exit_code: 1,
    };
    let failed = |outcome: Outcome, reason: &'static str, message: String| match on_error {
        OnError::StopAndFail => WaitResult {
            outcome,
            reason,
            flow: Flow::Stop,
            raw: raw_failure(&message),
            message,
            results: BTreeMap::new(),
        },
        OnError::Continue => WaitResult {
            outcome: Outcome::SucceededWithWarnings,
            reason: crate::status::reasons::FAILURE_IGNORED,
            flow: Flow::Continue,
            raw: raw_failure(&message),
            message,
            results: BTreeMap::new(),
        },
    };
    match ending {
        WaitEnding::Approved { approvers } => ok(
            format!("approved by {}", approvers.join(", ")),
            BTreeMap::from([
                ("decision".to_string(), "approved".to_string()),
                (
                    "approvers".to_string(),
                    serde_json::to_string(approvers).unwrap_or_default(),
                ),
            ]),
        ),
        WaitEnding::Resumed { by, message } => ok(
            decided("resumed", by, message),
            BTreeMap::from([("decision".to_string(), "resumed".to_string())]),
        ),
        WaitEnding::GatesPassed { message } => ok(message.clone(), BTreeMap::new()),
        WaitEnding::Rejected { by, message } => failed(
            Outcome::Rejected,
            reasons::REJECTED,
            decided("rejected", by, message),
        ),
        WaitEnding::ApprovalTimedOut => failed(
            Outcome::Rejected,
            reasons::APPROVAL_TIMED_OUT,
            "not approved before its timeout".into(),
        ),
        WaitEnding::InterventionTimedOut => failed(
            Outcome::Rejected,
            reasons::INTERVENTION_TIMED_OUT,
            "not resumed before its timeout".into(),
        ),
        WaitEnding::GatesFailed { message } => {
            failed(Outcome::Failed, reasons::GATES_FAILED, message.clone())
        }
    }
}

fn decided(what: &str, by: &str, message: &str) -> String {
    match (by.is_empty(), message.trim().is_empty()) {
        (true, true) => what.to_string(),
        (true, false) => format!("{what}: {message}"),
        (false, true) => format!("{what} by {by}"),
        (false, false) => format!("{what} by {by}: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (what, required, votes, now, deadline, expected)
    type ApprovalRow<'a> = (&'a str, u32, Vec<Vote>, i64, Option<i64>, &'a str);
    /// (what, identity, groups, votes so far, expected)
    type VoteRow<'a> = (
        &'a str,
        &'a str,
        &'a [String],
        Vec<Vote>,
        Result<(), &'a str>,
    );
    /// (what, request, votes, now, deadline, expected)
    type InterventionRow<'a> = (
        &'a str,
        &'a InterventionRequest,
        Vec<Vote>,
        i64,
        Option<i64>,
        &'a str,
    );

    fn vote(identity: &str, approve: bool, at_ms: i64) -> Vote {
        Vote {
            identity: identity.into(),
            approve,
            message: if approve {
                String::new()
            } else {
                "not today".into()
            },
            at_ms,
            defer_until_ms: None,
        }
    }

    fn request(required: u32) -> ApprovalRequest {
        ApprovalRequest {
            approvers: vec!["alice".into(), "bob".into(), "group:release".into()],
            required,
            description: String::new(),
        }
    }

    fn name(state: &WaitState) -> String {
        match state {
            WaitState::Waiting { progress } => format!("waiting: {progress}"),
            WaitState::Deferred { until_ms } => format!("deferred until {until_ms}"),
            WaitState::Ended(WaitEnding::Approved { approvers }) => {
                format!("approved by {}", approvers.join(","))
            }
            WaitState::Ended(WaitEnding::Rejected { by, .. }) => format!("rejected by {by}"),
            WaitState::Ended(other) => format!("{other:?}"),
        }
    }

    #[test]
    fn approvals_count_votes_defer_and_time_out() {
        let deferred = |identity: &str, until: i64| Vote {
            defer_until_ms: Some(until),
            ..vote(identity, true, 10)
        };
        // (what, required, votes, now, deadline, expected)
        let table: Vec<ApprovalRow<'_>> = vec![
            (
                "no vote yet",
                2,
                vec![],
                100,
                None,
                "waiting: 0 of 2 approvals",
            ),
            (
                "one of two",
                2,
                vec![vote("alice", true, 10)],
                100,
                None,
                "waiting: 1 of 2 approvals",
            ),
            (
                "two of two",
                2,
                vec![vote("alice", true, 10), vote("bob", true, 20)],
                100,
                None,
                "approved by alice,bob",
            ),
            (
                "one required",
                1,
                vec![vote("bob", true, 10)],
                100,
                None,
                "approved by bob",
            ),
            (
                "a reject wins over approvals",
                2,
                vec![vote("alice", true, 10), vote("bob", false, 20)],
                100,
                None,
                "rejected by bob",
            ),
            (
                "a reject alone",
                2,
                vec![vote("alice", false, 10)],
                100,
                None,
                "rejected by alice",
            ),
            (
                "the deadline passes undecided",
                2,
                vec![vote("alice", true, 10)],
                500,
                Some(400),
                "ApprovalTimedOut",
            ),
            (
                "approved before the deadline",
                1,
                vec![vote("alice", true, 10)],
                500,
                Some(400),
                "approved by alice",
            ),
            (
                "a vote after the deadline does not count",
                1,
                vec![vote("alice", true, 450)],
                500,
                Some(400),
                "ApprovalTimedOut",
            ),
            (
                "deferred",
                1,
                vec![deferred("alice", 300)],
                100,
                None,
                "deferred until 300",
            ),
            (
                "deferral over",
                1,
                vec![deferred("alice", 300)],
                300,
                None,
                "approved by alice",
            ),
            (
                "the latest deferral wins",
                2,
                vec![deferred("alice", 300), deferred("bob", 600)],
                400,
                None,
                "deferred until 600",
            ),
        ];
        for (what, required, votes, now, deadline, expected) in table {
            let got = name(&approval_state(&request(required), &votes, now, deadline));
            assert_eq!(got, expected, "{what}");
        }
    }

    #[test]
    fn only_listed_approvers_vote_and_only_once() {
        let approvers = request(2).approvers;
        let groups = vec!["release".to_string()];
        let ops = vec!["ops".to_string()];
        // (what, identity, groups, votes so far, expected)
        let table: Vec<VoteRow<'_>> = vec![
            ("listed", "alice", &[], vec![], Ok(())),
            ("through a group", "carol", &groups, vec![], Ok(())),
            (
                "not listed",
                "mallory",
                &[],
                vec![],
                Err("not one of the approvers"),
            ),
            (
                "not in the group",
                "mallory",
                &ops,
                vec![],
                Err("not one of the approvers"),
            ),
            (
                "a second vote",
                "alice",
                &[],
                vec![vote("alice", true, 1)],
                Err("already voted"),
            ),
        ];
        for (what, identity, groups, votes, expected) in table {
            let got = check_vote(&approvers, identity, groups, &votes);
            match (got, expected) {
                (Ok(()), Ok(())) => {}
                (Err(err), Err(want)) => assert!(err.to_string().contains(want), "{what}: {err}"),
                (got, want) => panic!("{what}: got {got:?}, want {want:?}"),
            }
        }
        // An intervention without approvers lets anyone decide.
        assert!(check_vote(&[], "anyone", &[], &[]).is_ok());
    }

    #[test]
    fn interventions_take_the_first_decision_or_their_timeout() {
        let reject = InterventionRequest {
            instructions: String::new(),
            resume_on_timeout: false,
            approvers: Vec::new(),
        };
        let resume = InterventionRequest {
            resume_on_timeout: true,
            ..reject.clone()
        };
        let table: Vec<InterventionRow<'_>> = vec![
            (
                "undecided",
                &reject,
                vec![],
                10,
                None,
                "waiting: waiting to be resumed",
            ),
            (
                "resumed",
                &reject,
                vec![vote("ops", true, 5)],
                10,
                None,
                "Resumed { by: \"ops\", message: \"\" }",
            ),
            (
                "rejected",
                &reject,
                vec![vote("ops", false, 5)],
                10,
                None,
                "rejected by ops",
            ),
            (
                "the first decision wins",
                &reject,
                vec![vote("a", false, 7), vote("b", true, 5)],
                10,
                None,
                "Resumed { by: \"b\", message: \"\" }",
            ),
            (
                "timeout rejects",
                &reject,
                vec![],
                100,
                Some(50),
                "InterventionTimedOut",
            ),
        ];
        for (what, request, votes, now, deadline, expected) in table {
            assert_eq!(
                name(&intervention_state(request, &votes, now, deadline)),
                expected,
                "{what}"
            );
        }
        assert!(matches!(
            intervention_state(&resume, &[], 100, Some(50)),
            WaitState::Ended(WaitEnding::Resumed { .. })
        ));
    }

    #[test]
    fn gates_pass_when_passing_samples_hold_for_stable_for() {
        let timing = GateTiming {
            sampling_interval: Duration::from_secs(30),
            stable_for: Duration::from_secs(120),
            timeout: Duration::from_secs(900),
        };
        // Samples every 30 s: fail, then pass from 60 s on; a failure at 150 s restarts
        // the window, so the gate passes at 150 + 30 + 120 = 300 s.
        let samples = [
            (0, false, "waiting: not passing yet"),
            (30, false, "waiting: not passing yet"),
            (60, true, "waiting: passing for 0s of 120s"),
            (120, true, "waiting: passing for 60s of 120s"),
            (150, false, "waiting: not passing yet"),
            (180, true, "waiting: passing for 0s of 120s"),
            (270, true, "waiting: passing for 90s of 120s"),
            (300, true, "GatesPassed { message: \"ok\" }"),
        ];
        let mut window = GateWindow::default();
        for (at, passed, expected) in samples {
            let state = gate_sample(&mut window, &timing, 0, at * 1000, passed, "ok");
            assert_eq!(name(&state), expected, "sample at {at}s");
        }
        // One pass is enough without stableFor; the timeout fails the gate.
        let once = GateTiming {
            stable_for: Duration::ZERO,
            ..timing
        };
        assert!(matches!(
            gate_sample(&mut GateWindow::default(), &once, 0, 1, true, "up"),
            WaitState::Ended(WaitEnding::GatesPassed { .. })
        ));
        assert!(matches!(
            gate_sample(
                &mut GateWindow::default(),
                &timing,
                0,
                900_000,
                false,
                "down"
            ),
            WaitState::Ended(WaitEnding::GatesFailed { .. })
        ));
    }

    #[test]
    fn endings_map_to_outcomes_reasons_and_flows() {
        let rejected = WaitEnding::Rejected {
            by: "bob".into(),
            message: "not today".into(),
        };
        // (ending, onError, outcome, reason, flow)
        let table = [
            (
                WaitEnding::Approved {
                    approvers: vec!["a".into()],
                },
                OnError::StopAndFail,
                Outcome::Succeeded,
                "",
                Flow::Continue,
            ),
            (
                rejected.clone(),
                OnError::StopAndFail,
                Outcome::Rejected,
                reasons::REJECTED,
                Flow::Stop,
            ),
            (
                rejected.clone(),
                OnError::Continue,
                Outcome::SucceededWithWarnings,
                "FailureIgnored",
                Flow::Continue,
            ),
            (
                WaitEnding::ApprovalTimedOut,
                OnError::StopAndFail,
                Outcome::Rejected,
                reasons::APPROVAL_TIMED_OUT,
                Flow::Stop,
            ),
            (
                WaitEnding::InterventionTimedOut,
                OnError::StopAndFail,
                Outcome::Rejected,
                reasons::INTERVENTION_TIMED_OUT,
                Flow::Stop,
            ),
            (
                WaitEnding::Resumed {
                    by: "ops".into(),
                    message: String::new(),
                },
                OnError::StopAndFail,
                Outcome::Succeeded,
                "",
                Flow::Continue,
            ),
            (
                WaitEnding::GatesPassed {
                    message: "up".into(),
                },
                OnError::StopAndFail,
                Outcome::Succeeded,
                "",
                Flow::Continue,
            ),
            (
                WaitEnding::GatesFailed {
                    message: "down".into(),
                },
                OnError::StopAndFail,
                Outcome::Failed,
                reasons::GATES_FAILED,
                Flow::Stop,
            ),
        ];
        for (ending, on_error, outcome, reason, flow) in table {
            let result = wait_result(&ending, on_error);
            assert_eq!(
                (result.outcome, result.reason, result.flow),
                (outcome, reason, flow),
                "{ending:?}"
            );
        }
        let approved = wait_result(
            &WaitEnding::Approved {
                approvers: vec!["alice".into(), "bob".into()],
            },
            OnError::StopAndFail,
        );
        assert_eq!(approved.results["decision"], "approved");
        assert_eq!(approved.results["approvers"], "[\"alice\",\"bob\"]");
        assert_eq!(
            wait_result(&rejected, OnError::StopAndFail).message,
            "rejected by bob: not today"
        );
    }

    #[test]
    fn requests_read_their_params() {
        let params = |pairs: &[(&str, ParamValue)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect::<BTreeMap<_, _>>()
        };
        let ok = ApprovalRequest::from_params(&params(&[
            ("approvers", ParamValue::Array(vec!["a".into(), "b".into()])),
            ("numberOfApprovalsRequired", ParamValue::Str("2".into())),
        ]))
        .expect("valid");
        assert_eq!(ok.required, 2);
        for (bad, why) in [
            (params(&[]), "empty"),
            (
                params(&[
                    ("approvers", ParamValue::Array(vec!["a".into()])),
                    ("numberOfApprovalsRequired", ParamValue::Str("2".into())),
                ]),
                "only 1 approvers",
            ),
            (
                params(&[
                    ("approvers", ParamValue::Array(vec!["a".into()])),
                    ("numberOfApprovalsRequired", ParamValue::Str("x".into())),
                ]),
                "not a whole number",
            ),
        ] {
            let err = ApprovalRequest::from_params(&bad).expect_err("refused");
            assert!(err.contains(why), "{err}");
        }
        let intervention = InterventionRequest::from_params(&params(&[(
            "onTimeout",
            ParamValue::Str("resume".into()),
        )]))
        .expect("valid");
        assert!(intervention.resume_on_timeout);
        assert!(
            InterventionRequest::from_params(&params(&[(
                "onTimeout",
                ParamValue::Str("later".into())
            )]))
            .is_err()
        );
    }
}
