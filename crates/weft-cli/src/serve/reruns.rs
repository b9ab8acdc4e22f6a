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

use super::run_api::{start_submitted, submitted};
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
    if let Err(denied) = auth::caller(&server, &headers) {
        return *denied;
    }
    if let Some(answer) = super::shutting_down(&server) {
        return answer;
    }
    let body: RerunBody = match optional_body(&body, "re-run") {
        Ok(body) => body,
        Err(answer) => return *answer,
    };
    submitted(
        &server,
        server.service.rerun(&run, request(&server, body)).await,
    )
}

/// What a re-run is given: the body's choices and the server's submission policy.
fn request(server: &Server, body: RerunBody) -> RerunRequest {
    RerunRequest {
        failed_only: body.failed_only,
        params: body.params,
        policy: Some(server.defaults.policy.clone()),
    }
}

/// Re-runs `run` (all of it, or `failed_only`) with its params, executed here; the new
/// attempt's id. Shared by the dashboard with the API's rules.
pub(super) async fn rerun_run(
    server: &Arc<Server>,
    run: &str,
    failed_only: bool,
) -> Result<String, Refusal> {
    if let Some(refused) = super::not_accepting(server) {
        return Err(refused);
    }
    let body = RerunBody {
        failed_only,
        params: BTreeMap::new(),
    };
    let result = server.service.rerun(run, request(server, body)).await;
    start_submitted(server, result)
}
