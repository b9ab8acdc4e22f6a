//! The Tekton-catalog-compatible `*-set-status` tasks: one status, retried in-task.
//!
//! Unlike a reporter (whose retries are the host outbox's), a task's own HTTP calls have
//! no host loop, so the task retries itself: it waits the server's wait when it named
//! one, else [`forge_common::task_retry_wait_ms`]'s backoff.

use crate::{jitter, send, token};
use forge_common::request::Auth;
use forge_common::{Action, Forge, StatusUpdate, base_url, path_prefix};
use std::time::{Duration, Instant};
use weft_sdk::{Context, Outcome};

/// At most this many attempts.
pub const MAX_ATTEMPTS: u32 = 6;
/// At most this much time spent waiting between attempts.
pub const MAX_TOTAL_WAIT: Duration = Duration::from_secs(120);

/// The state to send: a forge state as is (case-insensitive), or a weft status mapped.
pub fn state(forge: Forge, raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if let Some(s) = forge.states().iter().find(|s| s.eq_ignore_ascii_case(raw)) {
        return Ok((*s).to_string());
    }
    if let Ok(status) = forge_common::parse_status(raw) {
        return Ok(forge_common::forge_state(forge, status).to_string());
    }
    Err(format!(
        "STATE {raw:?} is not one of {} (or a weft status)",
        forge.states().join(", ")
    ))
}

/// What the task needs besides the forge.
pub struct SetStatus<'a> {
    /// The forge.
    pub forge: Forge,
    /// The host param's value.
    pub host: &'a str,
    /// The update (base URL and prefix filled in here from `host` and `api_prefix`).
    pub update: StatusUpdate,
    /// `API_PATH_PREFIX`.
    pub api_prefix: &'a str,
    /// `NAME.KEY`.
    pub secret: String,
    /// Builds the auth from the token.
    pub auth: &'a dyn Fn(String) -> Auth,
}

/// Sends the status with bounded retries; fails (exit code 1) on a permanent error.
pub fn run(ctx: &Context, mut s: SetStatus<'_>) -> Outcome {
    s.update.base_url = base_url(s.host);
    s.update.api_prefix = path_prefix(s.api_prefix);
    let token = match token(&s.secret) {
        Ok(t) => t,
        Err(e) => return Outcome::failure(e, 1),
    };
    let request = match forge_common::build(s.forge, &s.update, &(s.auth)(token.clone())) {
        Ok(r) => r,
        Err(e) => return Outcome::failure(e, 1),
    };
    let started = Instant::now();
    let mut waited = Duration::ZERO;
    for attempt in 0..MAX_ATTEMPTS {
        match send(s.forge, &request, &token) {
            Action::Done => {
                weft_sdk::log::info!(
                    "set {} status of {} to {} ({} attempt(s), {:?})",
                    s.update.context,
                    s.update.sha,
                    s.update.state,
                    attempt + 1,
                    started.elapsed()
                );
                return Outcome::success();
            }
            Action::Permanent(m) => return Outcome::failure(m, 1),
            Action::RetryAfter(server_wait) => {
                let ms = forge_common::task_retry_wait_ms(server_wait, attempt, jitter());
                let wait = Duration::from_millis(ms);
                if attempt + 1 == MAX_ATTEMPTS || waited + wait > MAX_TOTAL_WAIT {
                    let why = if server_wait == 0 {
                        "the next retry would wait"
                    } else {
                        "the forge asked to wait"
                    };
                    return Outcome::failure(
                        format!(
                            "gave up after {} attempt(s): {why} {ms} ms more",
                            attempt + 1
                        ),
                        1,
                    );
                }
                weft_sdk::log::warn!(
                    "attempt {} of {}: transient failure, retrying in {ms} ms",
                    attempt + 1,
                    MAX_ATTEMPTS
                );
                std::thread::sleep(wait);
                waited += wait;
            }
        }
    }
    let _ = ctx;
    Outcome::failure("gave up", 1)
}
