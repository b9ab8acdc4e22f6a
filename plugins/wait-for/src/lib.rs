//! `wait-for`: waits for a `duration` (a sleep), or until a URL answers as expected (a
//! readiness check), or both: first the duration, then the checks. Params: `duration`
//! (a Go duration; empty: none), `url` (empty: no check), `expectStatus` (default `2xx`),
//! `interval` between checks (default `2s`) and `timeout` for the checks (default `5m`).
//! Results: `waited` (seconds, with milliseconds) and `attempts` (checks sent).
//!
//! ```yaml
//! - name: app-ready
//!   taskRef: {name: wait-for}
//!   params:
//!     - {name: url, value: "http://app.staging.internal/healthz"}
//!     - {name: timeout, value: 10m}
//! ```
//!
//! Unlike a gate, it is a task: it holds a sandbox while it waits, so keep the waits short
//! (a gate is sampled without holding anything). A URL that has not answered as expected
//! by the timeout fails the task (exit code 1) with the last thing it saw.

use std::time::{Duration, Instant};

use catalogue_common::{Expected, parse_duration};
use weft_sdk::{Context, Outcome, Param, PluginInfo, Task};

struct WaitFor;

impl Task for WaitFor {
    fn describe() -> PluginInfo {
        PluginInfo::new("wait-for", env!("CARGO_PKG_VERSION"))
            .description("Waits for a duration, or until a URL answers with an expected status")
            .param(
                Param::string("duration")
                    .description(
                        "How long to wait first (a Go duration: `30s`, `2m`); empty: not at all",
                    )
                    .default(""),
            )
            .param(
                Param::string("url")
                    .description("A URL to check until it answers as expected; empty: no check")
                    .default(""),
            )
            .param(
                Param::string("expectStatus")
                    .description(
                        "Statuses that end the wait: a code, a list (`200,204`) or a class (`2xx`)",
                    )
                    .default("2xx"),
            )
            .param(
                Param::string("interval")
                    .description("The wait between two checks")
                    .default("2s"),
            )
            .param(
                Param::string("timeout")
                    .description("How long the checks may go on")
                    .default("5m"),
            )
            .result("waited", "How long it waited, in seconds")
            .result("attempts", "How many checks it sent")
            .results_fixed(true)
    }

    fn run(ctx: Context) -> Outcome {
        let plan = match Plan::from_params(&ctx) {
            Ok(plan) => plan,
            Err(message) => return Outcome::failure(message, 2),
        };
        let started = Instant::now();
        if !plan.duration.is_zero() {
            weft_sdk::log::info!("waiting {:?}", plan.duration);
            std::thread::sleep(plan.duration);
        }
        let (attempts, failed) = match &plan.check {
            None => (0, None),
            Some(check) => check.until_ready(),
        };
        let waited = format!("{:.3}", started.elapsed().as_secs_f64());
        let outcome = match failed {
            None => Outcome::success(),
            Some(message) => Outcome::failure(message, 1),
        };
        outcome
            .result("waited", waited)
            .result("attempts", attempts.to_string())
    }
}

/// What the params ask for.
struct Plan {
    duration: Duration,
    check: Option<Check>,
}

/// Checks of a URL until it answers as expected.
struct Check {
    url: String,
    expected: Expected,
    interval: Duration,
    timeout: Duration,
}

impl Plan {
    fn from_params(ctx: &Context) -> Result<Plan, String> {
        let duration = match ctx.param_or("duration", "").trim() {
            "" => Duration::ZERO,
            text => parse_duration(text).map_err(|e| format!("param `duration`: {e}"))?,
        };
        let url = ctx.param_or("url", "").trim();
        if url.is_empty() {
            if duration.is_zero() {
                return Err("set `duration`, `url` or both: there is nothing to wait for".into());
            }
            return Ok(Plan {
                duration,
                check: None,
            });
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!(
                "param `url`: `{url}` is not an http:// or https:// URL"
            ));
        }
        let expected = Expected::parse(ctx.param_or("expectStatus", "2xx"))
            .map_err(|e| format!("param `expectStatus`: {e}"))?;
        let interval = parse_duration(ctx.param_or("interval", "2s"))
            .map_err(|e| format!("param `interval`: {e}"))?;
        if interval.is_zero() {
            return Err("param `interval`: must be more than 0s".into());
        }
        let timeout = parse_duration(ctx.param_or("timeout", "5m"))
            .map_err(|e| format!("param `timeout`: {e}"))?;
        let check = Check {
            url: url.to_string(),
            expected,
            interval,
            timeout,
        };
        Ok(Plan {
            duration,
            check: Some(check),
        })
    }
}

impl Check {
    /// Checks until the URL answers as expected or the timeout passes: how many checks
    /// were sent, and why it failed if it did.
    fn until_ready(&self) -> (u32, Option<String>) {
        let deadline = Instant::now() + self.timeout;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let seen = match weft_sdk::http::request(
                "GET",
                &self.url,
                &[("user-agent", "weft-wait-for")],
                None,
            ) {
                Ok(response) if self.expected.matches(response.status) => {
                    weft_sdk::log::info!(
                        "GET {}: HTTP {} (check {attempts})",
                        self.url,
                        response.status
                    );
                    return (attempts, None);
                }
                Ok(response) => format!("HTTP {} (expected {})", response.status, self.expected),
                // A denied destination never changes: stop at once.
                Err(weft_sdk::http::HttpError::Denied) => {
                    return (
                        attempts,
                        Some(format!(
                            "GET {}: the operator does not allow this destination (--allow-http)",
                            self.url
                        )),
                    );
                }
                Err(e) => e.to_string(),
            };
            weft_sdk::log::info!("GET {}: {seen} (check {attempts})", self.url);
            let now = Instant::now();
            if now + self.interval > deadline {
                return (
                    attempts,
                    Some(format!(
                        "GET {} did not answer {} within {:?}: {seen}",
                        self.url, self.expected, self.timeout
                    )),
                );
            }
            std::thread::sleep(self.interval);
        }
    }
}

weft_sdk::export_task!(WaitFor);
