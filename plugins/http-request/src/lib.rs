//! `http-request`: sends one HTTP request built from params and returns the response as
//! results, retrying transport failures, rate limits and server errors (the catalogue's
//! `send-to-webhook` is this task with `method: POST`). Params: `url`, `method` (default
//! `POST`), `headers` (an object param), `body`, `bearerSecret` (a granted secret sent as
//! `Authorization: Bearer ...`), `expectStatus` (default `2xx`), `retries` (default `2`)
//! and `retryDelay` (default `1s`, doubled after each retry, at least the server's
//! `Retry-After`, at most 30s). Results: `status`, `body` (the first 64 KiB, as text),
//! `contentType` and `attempts`.
//!
//! ```yaml
//! - name: notify
//!   taskRef: {name: http-request}
//!   params:
//!     - {name: url, value: "https://hooks.example.com/ci"}
//!     - {name: headers, value: {content-type: application/json}}
//!     - {name: body, value: '{"text": "$(params.app) deployed"}'}
//! ```
//!
//! The operator allows the destination (`--allow-http hooks.example.com`). A response
//! whose status is not expected fails the task (exit code 1) with the status and the start
//! of the body in the message; a bad param fails it with exit code 2.

use std::time::Duration;

use catalogue_common::{Expected, backoff, is_retryable, parse_duration, truncate};
use weft_sdk::http::{HttpError, Response};
use weft_sdk::{Context, Outcome, Param, PluginInfo, Task};

/// Methods the task may use.
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
/// How much of the body becomes the `body` result.
const BODY_RESULT_BYTES: usize = 64 * 1024;
/// How much of the body an unexpected status's message quotes.
const BODY_MESSAGE_BYTES: usize = 200;
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The most retries a pipeline may ask for.
const MAX_RETRIES: u32 = 10;

struct HttpRequest;

impl Task for HttpRequest {
    fn describe() -> PluginInfo {
        PluginInfo::new("http-request", env!("CARGO_PKG_VERSION"))
            .description("Sends an HTTP request built from params and returns the response")
            .param(Param::string("url").description("The URL (http:// or https://); the operator must allow its host"))
            .param(
                Param::string("method")
                    .description("The request method")
                    .one_of(METHODS.iter().copied())
                    .default("POST"),
            )
            .param(
                Param::object("headers")
                    .description("Request headers, name: value")
                    .default_object(Vec::<(String, String)>::new()),
            )
            .param(Param::string("body").description("The request body, sent as is").default(""))
            .param(
                Param::string("bearerSecret")
                    .description("A granted secret (NAME or NAME.KEY) sent as `Authorization: Bearer <value>`; empty: none")
                    .default(""),
            )
            .param(
                Param::string("expectStatus")
                    .description("Statuses that succeed: a code, a list (`200,204`) or a class (`2xx`)")
                    .default("2xx"),
            )
            .param(
                Param::string("retries")
                    .description("Retries after a transport failure, 408, 425, 429 or 5xx (at most 10)")
                    .default("2"),
            )
            .param(
                Param::string("retryDelay")
                    .description("The wait before the first retry (a Go duration), doubled after each")
                    .default("1s"),
            )
            .result("status", "The response's status code")
            .result("body", "The response body as text (its first 64 KiB)")
            .result("contentType", "The response's content-type header (empty when none)")
            .result("attempts", "How many requests were sent")
            .results_fixed(true)
    }

    fn run(ctx: Context) -> Outcome {
        match Request::from_params(&ctx) {
            Ok(request) => request.send(),
            Err(message) => Outcome::failure(message, 2),
        }
    }
}

/// The request the params describe.
struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: String,
    expected: Expected,
    retries: u32,
    delay: Duration,
}

impl Request {
    fn from_params(ctx: &Context) -> Result<Request, String> {
        let url = ctx.required("url").map_err(|e| e.to_string())?.to_string();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!(
                "param `url`: `{url}` is not an http:// or https:// URL"
            ));
        }
        let method = ctx.param_or("method", "POST").to_ascii_uppercase();
        if !METHODS.contains(&method.as_str()) {
            return Err(format!(
                "param `method`: `{method}` is not one of {}",
                METHODS.join(", ")
            ));
        }
        let mut headers: Vec<(String, String)> = ctx
            .param_object("headers")
            .map(<[(String, String)]>::to_vec)
            .unwrap_or_default();
        if let Some(secret) = ctx.param("bearerSecret").filter(|s| !s.is_empty()) {
            let token = weft_sdk::secrets::reveal(secret)
                .map_err(|e| format!("param `bearerSecret`: {e}"))?;
            headers.retain(|(name, _)| !name.eq_ignore_ascii_case("authorization"));
            headers.push(("authorization".into(), format!("Bearer {token}")));
        }
        let body = ctx.param_or("body", "").to_string();
        let expected = Expected::parse(ctx.param_or("expectStatus", "2xx"))
            .map_err(|e| format!("param `expectStatus`: {e}"))?;
        let retries: u32 = ctx.parse_or("retries", 2).map_err(|e| e.to_string())?;
        if retries > MAX_RETRIES {
            return Err(format!(
                "param `retries`: {retries} is more than {MAX_RETRIES}"
            ));
        }
        let delay = parse_duration(ctx.param_or("retryDelay", "1s"))
            .map_err(|e| format!("param `retryDelay`: {e}"))?;
        Ok(Request {
            method,
            url,
            headers,
            body,
            expected,
            retries,
            delay,
        })
    }

    /// Sends it, retrying what may succeed later, and says how it went.
    fn send(&self) -> Outcome {
        let what = format!("{} {}", self.method, self.url);
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let body = (!self.body.is_empty()).then_some(self.body.as_bytes());
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let sent = weft_sdk::http::request(&self.method, &self.url, &headers, body);
            let (retryable, retry_after, seen) = match &sent {
                Ok(response) if self.expected.matches(response.status) => {
                    weft_sdk::log::info!("{what}: HTTP {} (attempt {attempt})", response.status);
                    return success(response, attempt);
                }
                Ok(response) => (
                    is_retryable(response.status),
                    response.header("retry-after").map(str::to_string),
                    unexpected(response, &self.expected),
                ),
                Err(e) => (e.is_transient(), None, transport(e)),
            };
            if !retryable || attempt > self.retries {
                let tries = if attempt == 1 {
                    String::new()
                } else {
                    format!(" after {attempt} attempts")
                };
                return Outcome::failure(format!("{what}: {seen}{tries}"), 1)
                    .result("attempts", attempt.to_string());
            }
            let wait = backoff(self.delay, attempt - 1, retry_after.as_deref(), MAX_BACKOFF);
            weft_sdk::log::warn!("{what}: {seen}; retrying in {wait:?}");
            std::thread::sleep(wait);
        }
    }
}

/// The results of an expected response.
fn success(response: &Response, attempts: u32) -> Outcome {
    let (body, left_out) = truncate(&response.text(), BODY_RESULT_BYTES);
    if left_out > 0 {
        weft_sdk::log::warn!(
            "the body result keeps its first {BODY_RESULT_BYTES} bytes ({left_out} left out)"
        );
    }
    Outcome::success()
        .result("status", response.status.to_string())
        .result("body", body)
        .result(
            "contentType",
            response.header("content-type").unwrap_or_default(),
        )
        .result("attempts", attempts.to_string())
}

/// What an unexpected response was.
fn unexpected(response: &Response, expected: &Expected) -> String {
    let (start, left_out) = truncate(response.text().trim(), BODY_MESSAGE_BYTES);
    let more = if left_out > 0 { "..." } else { "" };
    format!(
        "HTTP {} (expected {expected}): {start}{more}",
        response.status
    )
}

/// What a transport failure was.
fn transport(error: &HttpError) -> String {
    match error {
        HttpError::Denied => {
            "the operator does not allow this destination (--allow-http)".to_string()
        }
        other => other.to_string(),
    }
}

weft_sdk::export_task!(HttpRequest);
