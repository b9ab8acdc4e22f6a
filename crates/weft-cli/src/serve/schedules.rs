//! Cron schedules through the API, and the loop that fires them:
//!
//! | method and path | does |
//! |---|---|
//! | `GET /api/v1/schedules` | every schedule with its next tick |
//! | `POST /api/v1/schedules` | `{name, cron, timezone?, run: {pipeline, params?, ...}}` (`run` as `POST /api/v1/runs`, without `name` and `scheduledAt`); `201`, `400`, `409` when the name is taken |
//! | `DELETE /api/v1/schedules/{name}` | `204`, `404` |
//!
//! A schedule added through the API keeps the server's submission policy with its spec,
//! so its runs may use no more than a submission could. Every server sharing the store
//! fires due ticks ([`ticks`]); the store gives each tick to one of them.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use weft_engine::runs::{Fired, NewSchedule};
use weft_store::{Role, RunStore};

use super::run_api::{SubmitRequest, refusal, run_spec};
use super::{Server, auth, body_as, error, spawn_run};
use crate::schedules::schedule_json;

/// How often a server looks for due ticks.
const TICK_POLL: Duration = Duration::from_millis(250);

/// The body of `POST /api/v1/schedules`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct ScheduleRequest {
    name: String,
    cron: String,
    #[serde(default = "utc")]
    timezone: String,
    run: SubmitRequest,
}

fn utc() -> String {
    "UTC".into()
}

/// `GET /api/v1/schedules`.
pub async fn list(State(server): State<Arc<Server>>, headers: HeaderMap) -> Response {
    let caller = match auth::caller(&server, &headers) {
        Ok(caller) => caller,
        Err(denied) => return *denied,
    };
    match server.store.schedules() {
        Ok(all) => Json(Value::Array(
            all.iter()
                .filter_map(|record| {
                    let name = caller.public(&record.name)?;
                    let mut listed = schedule_json(record);
                    listed["name"] = serde_json::json!(name);
                    Some(listed)
                })
                .collect(),
        ))
        .into_response(),
        Err(err) => error(StatusCode::INTERNAL_SERVER_ERROR, "store", err.to_string()),
    }
}

/// `POST /api/v1/schedules`.
pub async fn add(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let caller = match auth::require(&server, &headers, Role::Submitter, "keep schedules") {
        Ok(caller) => caller,
        Err(denied) => return *denied,
    };
    let request: ScheduleRequest = match body_as(&body, "schedule") {
        Ok(request) => request,
        Err(answer) => return *answer,
    };
    let mut spec = match run_spec(&server, request.run) {
        Ok(spec) => spec,
        Err(err) => return error(StatusCode::BAD_REQUEST, "bad-request", err),
    };
    if let Err(refused) = super::run_api::for_tenant(&server, &caller, &mut spec) {
        return refused.into_response();
    }
    let new = NewSchedule {
        name: request.name,
        cron: request.cron,
        zone: request.timezone,
        spec,
    };
    match server.service.add_schedule(new).await {
        Ok(record) => {
            let mut created = schedule_json(&record);
            created["name"] = serde_json::json!(caller.show(&record.name));
            (StatusCode::CREATED, Json(created)).into_response()
        }
        Err(err) => refusal(err).into_response(),
    }
}

/// `DELETE /api/v1/schedules/{name}`.
pub async fn remove(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let caller = match auth::caller(&server, &headers) {
        Ok(caller) => caller,
        Err(denied) => return *denied,
    };
    let stored = caller.qualify(&name);
    let exists = match (&stored, server.store.schedules()) {
        (Some(stored), Ok(all)) => all.iter().any(|s| &s.name == stored),
        (None, _) => false,
        (_, Err(err)) => {
            return error(StatusCode::INTERNAL_SERVER_ERROR, "store", err.to_string());
        }
    };
    if exists && !caller.may(Role::Submitter) {
        return caller
            .forbidden(Role::Submitter, "keep schedules")
            .into_response();
    }
    let removed = match stored.filter(|_| exists) {
        Some(stored) => server.store.remove_schedule(&stored),
        None => Ok(false),
    };
    match removed {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => error(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no schedule named `{name}`"),
        ),
        Err(err) => error(StatusCode::INTERNAL_SERVER_ERROR, "store", err.to_string()),
    }
}

/// Fires due ticks while the server accepts work; each tick's run executes here.
pub async fn ticks(server: Arc<Server>) {
    let mut every = tokio::time::interval(TICK_POLL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if !server.accepting.load(Ordering::SeqCst) {
            return;
        }
        // The store answers off the runtime's threads (over the network, it may hang while
        // the database is unreachable); most of the time nothing is due.
        let store = server.store.clone();
        let due = tokio::task::spawn_blocking(move || {
            let now = weft_store::Timestamp::now().0;
            store.schedules().map(|all| {
                all.iter()
                    .any(|s| s.firing_at.is_some() || s.next_at.is_some_and(|next| next.0 <= now))
            })
        })
        .await;
        match due {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => continue,
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "cannot read the schedules");
                continue;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the schedules");
                continue;
            }
        }
        let fired = match server.service.fire_due_ticks().await {
            Ok(fired) => fired,
            Err(err) => {
                tracing::warn!(error = %err, "cannot look for due schedule ticks");
                continue;
            }
        };
        for fired in fired {
            match fired {
                Fired::Run(submitted) => {
                    tracing::info!(
                        run = submitted.run.name(),
                        "a schedule's tick started a run"
                    );
                    spawn_run(&server, submitted.run);
                }
                Fired::Failed {
                    schedule,
                    run,
                    error,
                } => eprintln!(
                    "weft serve: schedule {schedule}: the tick's run {run} could not start: {error}"
                ),
            }
        }
    }
}
