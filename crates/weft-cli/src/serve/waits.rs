//! The API of runs that wait: `GET /api/v1/runs/{run}/approvals` lists a run's waits
//! (approvals, manual interventions, gates) with every decision cast;
//! `POST /api/v1/runs/{run}/approvals/{task}` votes (`{"decision": "approve"|"reject",
//! "message", "deferUntil"}`), `POST /api/v1/runs/{run}/interventions/{task}` resumes or
//! rejects (`{"decision": "resume"|"reject", "message"}`), as the caller's identity.
//! 404: no such run or wait; 403: the caller may not decide; 409: already decided, or the
//! task no longer waits; 400: a malformed body.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use weft_engine::runs::{Ballot, DecideError, DecisionKind, decide, waits_document};
use weft_store::Role;

use super::auth::Caller;
use super::{Refusal, Server, auth, error};

/// The body of a decision.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct DecisionRequest {
    /// `approve`/`resume` or `reject`.
    pub decision: String,
    /// Why.
    #[serde(default)]
    pub message: String,
    /// An approval deferred until then (RFC 3339).
    #[serde(default)]
    pub defer_until: Option<String>,
}

/// `GET /api/v1/runs/{run}/approvals`.
pub async fn list(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Path(run): Path<String>,
) -> Response {
    let caller = match auth::caller(&server, &headers) {
        Ok(caller) => caller,
        Err(denied) => return *denied,
    };
    let run = match super::run_api::resolve(&server, &caller, &run, None) {
        Ok(id) => id,
        Err(answer) => return *answer,
    };
    match waits_document(server.store.as_ref(), &run) {
        Ok(document) => {
            Json(json!({ "run": caller.show(&run), "waits": document })).into_response()
        }
        Err(err) => error(StatusCode::INTERNAL_SERVER_ERROR, "store", err.to_string()),
    }
}

/// `POST /api/v1/runs/{run}/approvals/{task}`.
pub async fn approve(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Path((run, task)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    decide_as_caller(
        &server,
        &headers,
        &run,
        &task,
        &body,
        DecisionKind::Approval,
    )
}

/// `POST /api/v1/runs/{run}/interventions/{task}`.
pub async fn intervene(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Path((run, task)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    decide_as_caller(
        &server,
        &headers,
        &run,
        &task,
        &body,
        DecisionKind::Intervention,
    )
}

fn decide_as_caller(
    server: &Server,
    headers: &HeaderMap,
    run: &str,
    task: &str,
    body: &[u8],
    kind: DecisionKind,
) -> Response {
    let caller = match auth::caller(server, headers) {
        Ok(caller) => caller,
        Err(denied) => return *denied,
    };
    let request: DecisionRequest = match super::body_as(body, "decision") {
        Ok(request) => request,
        Err(answer) => return *answer,
    };
    let decision = request.decision.clone();
    match decide_for(server, caller, run, task, kind, request) {
        Ok(decided) => (
            StatusCode::ACCEPTED,
            Json(json!({
                "run": decided.run,
                "task": decided.receipt.task,
                "attempt": decided.receipt.attempt,
                "identity": decided.identity,
                "decision": decision,
            })),
        )
            .into_response(),
        Err(refused) => refused.into_response(),
    }
}

fn request_decision(approve: bool, yes: &str) -> &str {
    if approve { yes } else { "reject" }
}

/// A decision that was cast.
pub(super) struct Decided {
    /// The attempt of the run decided on.
    pub run: String,
    /// What the store took.
    pub receipt: weft_engine::runs::Receipt,
    /// Who decided.
    pub identity: String,
}

/// Casts `request` on `task`'s wait in the latest attempt of `run` as `caller`. The one
/// path of the API and the dashboard: the rules are weft-engine's `decide`.
pub(super) fn decide_for(
    server: &Server,
    caller: Caller,
    run: &str,
    task: &str,
    kind: DecisionKind,
    request: DecisionRequest,
) -> Result<Decided, Refusal> {
    let (yes, verb) = match kind {
        DecisionKind::Approval => ("approve", "approval"),
        DecisionKind::Intervention => ("resume", "intervention"),
    };
    let approve = match request.decision.as_str() {
        d if d == yes => true,
        "reject" => false,
        other => {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "bad-request",
                format!("decision `{other}` on an {verb} is not `{yes}` or `reject`"),
            ));
        }
    };
    let defer_until_ms = match request
        .defer_until
        .as_deref()
        .map(crate::decide::parse_time)
    {
        Some(Ok(ms)) => Some(ms),
        Some(Err(failure)) => {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "bad-request",
                failure.message,
            ));
        }
        None => None,
    };
    let run = super::run_api::resolve_attempt(server, &caller, run, None)?;
    if !caller.may(Role::Approver) {
        return Err(caller.forbidden(Role::Approver, &format!("decide an {verb}")));
    }
    let ballot = Ballot {
        kind,
        identity: caller.identity.clone(),
        groups: caller.groups.clone(),
        approve,
        message: request.message,
        defer_until_ms,
    };
    // The store's messages name the run as stored; the caller knows it by its own name.
    let told = |err: &DecideError| {
        err.to_string()
            .replace(&format!("`{run}`"), &format!("`{}`", caller.show(&run)))
    };
    match decide(server.store.as_ref(), &run, task, &ballot) {
        Ok(receipt) => {
            super::audit_run(
                server,
                &caller,
                &format!("{verb}.decide"),
                &run,
                json!({"task": task, "decision": request_decision(approve, yes), "message": ballot.message}),
            );
            Ok(Decided {
                run: caller.show(&run),
                receipt,
                identity: ballot.identity,
            })
        }
        Err(err @ (DecideError::NoRun(_) | DecideError::NoWait { .. })) => {
            Err(Refusal::new(StatusCode::NOT_FOUND, "not-found", told(&err)))
        }
        Err(err) if err.is_forbidden() => {
            Err(Refusal::new(StatusCode::FORBIDDEN, "forbidden", told(&err)))
        }
        Err(err) if err.is_malformed() => Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            told(&err),
        )),
        Err(DecideError::Store(err)) => Err(Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store",
            err.to_string(),
        )),
        Err(err) => Err(Refusal::new(StatusCode::CONFLICT, "conflict", told(&err))),
    }
}
