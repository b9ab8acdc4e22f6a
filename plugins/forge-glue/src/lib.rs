//! Glue between the weft SDK and `forge-common`: converts events, sends requests,
//! classifies outcomes. Shared by the `reporter-*` and `*-set-status` plugins.

use forge_common::reporter::{self, EventView};
use forge_common::{Action, Desired, Forge, Request, TransportKind};
use std::time::SystemTime;
use weft_sdk::PluginInfo;
use weft_sdk::http::{self, HttpError, Response};
use weft_sdk::reporter::{Delivery, Event};

pub mod task;

/// A random value for the set-status tasks' backoff jitter.
pub fn jitter() -> u64 {
    http::wasip2::random::random::get_random_u64()
}

/// The event as plain data.
pub fn view(event: &Event) -> EventView {
    EventView {
        run_name: event.run_name().to_string(),
        run_uid: event.run_uid().to_string(),
        pipeline_name: event.pipeline_name().to_string(),
        run: Desired {
            status: event.status(),
            reason: event.reason().to_string(),
            halted_by: event
                .halted_by()
                .map(|h| (h.task.clone(), h.message.clone())),
            message: event.message().to_string(),
        },
        description: event.description().to_string(),
        task: event.task().map(|t| {
            (
                t.name.clone(),
                Desired {
                    status: t.status,
                    reason: t.reason.clone(),
                    halted_by: None,
                    message: t.message.clone(),
                },
            )
        }),
        config: event.config().to_vec(),
    }
}

/// The transport kind of an SDK error.
pub fn transport_kind(e: &HttpError) -> TransportKind {
    match e {
        HttpError::InvalidRequest(_) => TransportKind::InvalidRequest,
        HttpError::Denied => TransportKind::Denied,
        HttpError::Dns(_) => TransportKind::Dns,
        HttpError::Connection(_) => TransportKind::Connection,
        HttpError::Timeout(_) => TransportKind::Timeout,
        HttpError::Tls(_) => TransportKind::Tls,
        HttpError::Other(_) => TransportKind::Other,
    }
}

/// Sends `request` and classifies the outcome. Messages are redacted of `secret`. A
/// transient failure is `RetryAfter` the server's wait, or 0 when it named none: the
/// caller backs off (the host for a reporter, [`task::run`] for a task).
pub fn send(forge: Forge, request: &Request, secret: &str) -> Action {
    let headers = request.header_refs();
    let result: Result<Response, HttpError> =
        http::request(request.method, &request.url, &headers, Some(&request.body));
    let action = match result {
        Ok(resp) => forge_common::classify(
            forge,
            resp.status,
            &resp.headers,
            &resp.body,
            SystemTime::now(),
        ),
        Err(e) => forge_common::classify_transport(
            transport_kind(&e),
            &format!("POST {}: {e}", request.url),
        ),
    };
    match action {
        Action::Permanent(m) => Action::Permanent(forge_common::redact(&m, secret)),
        other => other,
    }
}

/// An action as the WIT delivery (`RetryAfter(0)`: retry with the host's backoff).
pub fn delivery(action: Action) -> Delivery {
    match action {
        Action::Done => Delivery::Done,
        Action::RetryAfter(ms) => Delivery::RetryAfter(ms),
        Action::Permanent(m) => Delivery::Permanent(m),
    }
}

/// Reveals the token secret `name`; a missing grant or value is permanent.
pub fn token(name: &str) -> Result<String, String> {
    let token = weft_sdk::secrets::reveal(name).map_err(|e| e.to_string())?;
    if token.trim().is_empty() {
        return Err(format!("secret `{name}` is empty"));
    }
    Ok(token.trim().to_string())
}

/// The whole reporter flow for a commit-status forge.
pub fn report(forge: Forge, event: &Event) -> Delivery {
    let view = view(event);
    let plan = match reporter::plan(forge, &view) {
        Ok(plan) => plan,
        Err(e) => return Delivery::Permanent(e),
    };
    let token = match token(&plan.token_secret) {
        Ok(t) => t,
        Err(e) => return Delivery::Permanent(e),
    };
    let request =
        match forge_common::build(forge, &plan.update, &plan.auth.with_token(token.clone())) {
            Ok(r) => r,
            Err(e) => return Delivery::Permanent(e),
        };
    let subject = view
        .task
        .as_ref()
        .map_or(view.pipeline_name.as_str(), |(t, _)| t);
    weft_sdk::log::debug!(
        "{forge:?}: {} {} -> {} ({})",
        plan.update.project,
        plan.update.context,
        plan.update.state,
        subject
    );
    delivery(send(forge, &request, &token))
}

/// `describe` for a commit-status reporter.
pub fn describe(forge: Forge, name: &str, what: &str) -> PluginInfo {
    let (host, _, secret) = reporter::defaults(forge);
    let mut info = PluginInfo::new(name, env!("CARGO_PKG_VERSION"))
        .description(format!(
            "Reports run statuses as {what} commit statuses. Config: url, api-path, project, \
             sha, ref, context, target-url, description, token-secret"
        ))
        .secret(secret);
    if !host.is_empty() {
        info = info.http_host(host);
    }
    info
}
