//! `POST /api/v1/runs/{run}/rerun` (`{failedOnly?, params?}`): the next attempt of a
//! finished run (release-control.md section 6), executed here. It gets the server's
//! submission policy, never the one stored with an earlier attempt: a re-run may use no
//! more than a new submission could.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use weft_core::contract::ParamValue;
use weft_engine::runs::RerunRequest;

use axum::response::IntoResponse;
use weft_store::Role;

use super::auth::Caller;
use super::run_api::{created, start_submitted};
use super::{Refusal, Server, auth, optional_body};

/// The body of a re-run.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RerunBody {
    #[serde(default)]
    failed_only: bool,
    #[serde(default)]
    params: BTreeMap<String, ParamValue>,
}

/// `POST /api/v1/runs/{run}/rerun`.
pub async fn rerun(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Path(run): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let caller = match auth::caller(&server, &headers) {
        Ok(caller) => caller,
        Err(denied) => return *denied,
    };
    let body: RerunBody = match optional_body(&body, "re-run") {
        Ok(body) => body,
        Err(answer) => return *answer,
    };
    match rerun_as(&server, &caller, &run, body).await {
        Ok(name) => created(&name),
        Err(refused) => refused.into_response(),
    }
}

/// What a re-run is given: the body's choices and the server's submission policy.
fn request(server: &Server, body: RerunBody) -> RerunRequest {
    RerunRequest {
        failed_only: body.failed_only,
        params: body.params,
        policy: Some(server.defaults.policy.clone()),
    }
}

/// Re-runs `caller`'s run `run` (all of it, or `failed_only`) with its params, executed
/// here; the new attempt's id. Shared by the dashboard with the API's rules.
pub(super) async fn rerun_run(
    server: &Arc<Server>,
    caller: &Caller,
    run: &str,
    failed_only: bool,
) -> Result<String, Refusal> {
    let body = RerunBody {
        failed_only,
        params: BTreeMap::new(),
    };
    rerun_as(server, caller, run, body).await
}

/// The one path of a re-run: found in the caller's tenant (404), allowed by its role
/// (403), started here; the new attempt's id as the caller knows it.
async fn rerun_as(
    server: &Arc<Server>,
    caller: &Caller,
    run: &str,
    body: RerunBody,
) -> Result<String, Refusal> {
    let latest = super::run_api::resolve_attempt(server, caller, run, None)?;
    if !caller.may(Role::Submitter) {
        return Err(caller.forbidden(Role::Submitter, "re-run runs"));
    }
    if let Some(refused) = super::not_accepting(server) {
        return Err(refused);
    }
    let stored = caller.qualify(run).unwrap_or(latest);
    let result = server.service.rerun(&stored, request(server, body)).await;
    start_submitted(server, result).map(|id| caller.show(&id))
}
