//! Response classification: status + headers + body -> [`Action`].
//!
//! | response | action |
//! |---|---|
//! | 2xx | done |
//! | GitLab 400 `Cannot transition status ...` (already in that state) | done |
//! | 408, 409 (GitLab's per-SHA lock), 5xx | retry: `Retry-After` if given, else backoff with jitter |
//! | 429 | retry: `Retry-After` (seconds or HTTP-date), else `x-ratelimit-reset`, else 60 s |
//! | GitHub 403 with `retry-after`, `x-ratelimit-remaining: 0` or "rate limit" in the body | retry as for 429 |
//! | other 403 (role, protected ref), 401, 404, 422 (e.g. GitHub "No commit found"), other 4xx | permanent |
//! | 1xx, 3xx (redirects are not followed) | permanent |
//!
//! Transport errors: policy denial, invalid request and TLS are permanent; DNS,
//! connection, timeouts and others are retried with backoff.

use crate::{Forge, from_epoch_secs, ms_until};
use std::time::SystemTime;

/// The longest wait a reporter asks for (one hour).
pub const MAX_WAIT_MS: u64 = 3_600_000;
/// The shortest wait a reporter asks for.
pub const MIN_WAIT_MS: u64 = 1_000;
/// The wait for a rate limit that names no time (GitHub: "at least one minute").
pub const RATE_LIMIT_WAIT_MS: u64 = 60_000;

/// What to do after one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Delivered, or the forge already has that state.
    Done,
    /// Transient: try again after this many milliseconds.
    RetryAfter(u64),
    /// Will never succeed as configured.
    Permanent(String),
}

/// What classification needs besides the response: the time (for HTTP-dates and
/// reset times), the attempt number and a random value for jitter.
#[derive(Debug, Clone, Copy)]
pub struct RetryContext {
    /// The current time.
    pub now: SystemTime,
    /// 0 for the first attempt.
    pub attempt: u32,
    /// Any random value; spreads retries.
    pub jitter: u64,
}

/// Exponential backoff: 1 s, 2 s, 4 s, ... capped at 5 minutes, plus up to 50% jitter.
pub fn backoff_ms(attempt: u32, jitter: u64) -> u64 {
    let base = MIN_WAIT_MS
        .saturating_mul(1u64 << attempt.min(9))
        .min(300_000);
    base + jitter % (base / 2 + 1)
}

fn clamp_wait(ms: u64) -> u64 {
    ms.clamp(MIN_WAIT_MS, MAX_WAIT_MS)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// `Retry-After` as milliseconds: delay-seconds or an HTTP-date.
pub fn retry_after_ms(value: &str, now: SystemTime) -> Option<u64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs.saturating_mul(1000));
    }
    httpdate::parse_http_date(value)
        .ok()
        .map(|t| ms_until(now, t))
}

/// The server's wait, if it named one: `Retry-After`, else `x-ratelimit-reset` (epoch
/// seconds) when the remaining quota is 0 or unknown.
fn server_wait(headers: &[(String, String)], now: SystemTime) -> Option<u64> {
    if let Some(ms) = header(headers, "retry-after").and_then(|v| retry_after_ms(v, now)) {
        return Some(clamp_wait(ms));
    }
    let remaining = header(headers, "x-ratelimit-remaining");
    if remaining.is_none_or(|r| r == "0")
        && let Some(reset) =
            header(headers, "x-ratelimit-reset").and_then(|v| v.parse::<u64>().ok())
    {
        return Some(clamp_wait(ms_until(now, from_epoch_secs(reset))));
    }
    None
}

/// The `message` of a JSON error body, else the body as one line; at most 200 chars.
pub fn body_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| match v.get("message").or_else(|| v.get("error")) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Object(o)) => o
                .get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
                .or_else(|| Some(serde_json::Value::Object(o.clone()).to_string())),
            Some(other) => Some(other.to_string()),
            None => None,
        })
        .unwrap_or_else(|| text.into_owned());
    crate::truncate(
        &message.split_whitespace().collect::<Vec<_>>().join(" "),
        200,
    )
}

/// Classifies one response from `forge`.
pub fn classify(
    forge: Forge,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    cx: RetryContext,
) -> Action {
    let message = || body_message(body);
    let permanent = |what: &str| {
        let m = message();
        Action::Permanent(if m.is_empty() {
            format!("HTTP {status}: {what}")
        } else {
            format!("HTTP {status}: {what}: {m}")
        })
    };
    let rate_limited =
        || Action::RetryAfter(server_wait(headers, cx.now).unwrap_or(RATE_LIMIT_WAIT_MS));
    match status {
        200..=299 => Action::Done,
        400 if forge == Forge::GitLab && message().contains("Cannot transition status") => {
            Action::Done
        }
        400 => permanent("bad request"),
        401 => permanent("the token was rejected (check the token secret)"),
        403 if forge == Forge::GitHub => {
            let m = message().to_ascii_lowercase();
            let limited = header(headers, "retry-after").is_some()
                || header(headers, "x-ratelimit-remaining") == Some("0")
                || m.contains("rate limit");
            if limited {
                rate_limited()
            } else {
                permanent("forbidden (the token lacks permission on the repository)")
            }
        }
        403 if header(headers, "retry-after").is_some() => rate_limited(),
        403 => permanent("forbidden (the token lacks the role, or the ref is protected)"),
        404 => {
            permanent("not found (check the project/repository, the SHA and the token's access)")
        }
        408 | 409 | 500..=599 => Action::RetryAfter(
            server_wait(headers, cx.now).unwrap_or_else(|| backoff_ms(cx.attempt, cx.jitter)),
        ),
        422 if message().contains("No commit found") => permanent("commit not found"),
        422 => permanent("rejected"),
        429 => rate_limited(),
        300..=399 => {
            let to = header(headers, "location").unwrap_or("?");
            Action::Permanent(format!(
                "HTTP {status}: redirect to {to} not followed (check the URL)"
            ))
        }
        _ => permanent("unexpected response"),
    }
}

/// The kind of a transport failure (mirrors `weft_sdk::http::HttpError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// The URL, method or a header is invalid.
    InvalidRequest,
    /// The host's egress policy denied the destination.
    Denied,
    /// Name resolution failed.
    Dns,
    /// Connection refused, reset, unreachable.
    Connection,
    /// Connect or response timeout.
    Timeout,
    /// TLS failure (certificate, protocol).
    Tls,
    /// Anything else.
    Other,
}

/// Classifies a transport failure: policy, invalid requests and TLS are permanent; the
/// rest are retried with backoff.
pub fn classify_transport(kind: TransportKind, message: &str, cx: RetryContext) -> Action {
    match kind {
        TransportKind::Denied => Action::Permanent(format!(
            "{message} (grant the forge's host to the reporter, e.g. --allow-http)"
        )),
        TransportKind::InvalidRequest | TransportKind::Tls => {
            Action::Permanent(message.to_string())
        }
        TransportKind::Dns
        | TransportKind::Connection
        | TransportKind::Timeout
        | TransportKind::Other => Action::RetryAfter(backoff_ms(cx.attempt, cx.jitter)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cx() -> RetryContext {
        RetryContext {
            now: from_epoch_secs(1_700_000_000),
            attempt: 0,
            jitter: 0,
        }
    }

    fn h(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    type Headers = Vec<(String, String)>;

    enum Want {
        Done,
        Retry(u64),
        RetryBetween(u64, u64),
        Permanent(&'static str),
    }

    #[test]
    fn classification_table() {
        let date = httpdate::fmt_http_date(from_epoch_secs(1_700_000_000 + 120));
        let reset = (1_700_000_000u64 + 30).to_string();
        let table: Vec<(Forge, u16, Headers, &str, Want)> = vec![
            (Forge::GitLab, 201, h(&[]), "{}", Want::Done),
            (Forge::GitHub, 201, h(&[]), "{}", Want::Done),
            (Forge::Bitbucket, 200, h(&[]), "{}", Want::Done),
            (
                Forge::GitLab,
                400,
                h(&[]),
                r#"{"message":"Cannot transition status via :run from :running"}"#,
                Want::Done,
            ),
            (
                Forge::GitLab,
                400,
                h(&[]),
                r#"{"message":"400 Bad request - state is missing"}"#,
                Want::Permanent("HTTP 400: bad request: 400 Bad request - state is missing"),
            ),
            (
                Forge::GitHub,
                400,
                h(&[]),
                "Cannot transition status",
                Want::Permanent("HTTP 400"),
            ),
            (
                Forge::GitLab,
                401,
                h(&[]),
                r#"{"message":"401 Unauthorized"}"#,
                Want::Permanent("token was rejected"),
            ),
            (
                Forge::GitLab,
                403,
                h(&[]),
                r#"{"message":"403 Forbidden"}"#,
                Want::Permanent("lacks the role"),
            ),
            (
                Forge::GitLab,
                404,
                h(&[]),
                r#"{"message":"404 Commit Not Found"}"#,
                Want::Permanent("not found"),
            ),
            (
                Forge::GitLab,
                409,
                h(&[]),
                "",
                Want::RetryBetween(1000, 1500),
            ),
            (
                Forge::GitLab,
                409,
                h(&[("Retry-After", "7")]),
                "",
                Want::Retry(7000),
            ),
            (
                Forge::GitLab,
                422,
                h(&[]),
                r#"{"message":"job limit"}"#,
                Want::Permanent("HTTP 422"),
            ),
            (
                Forge::GitLab,
                429,
                h(&[("Retry-After", "12")]),
                "",
                Want::Retry(12_000),
            ),
            (
                Forge::GitLab,
                429,
                h(&[("retry-after", date.as_str())]),
                "",
                Want::Retry(120_000),
            ),
            (
                Forge::GitLab,
                429,
                h(&[]),
                "",
                Want::Retry(RATE_LIMIT_WAIT_MS),
            ),
            (
                Forge::GitLab,
                429,
                h(&[("Retry-After", "0")]),
                "",
                Want::Retry(MIN_WAIT_MS),
            ),
            (
                Forge::GitLab,
                429,
                h(&[("Retry-After", "999999")]),
                "",
                Want::Retry(MAX_WAIT_MS),
            ),
            (
                Forge::GitLab,
                500,
                h(&[]),
                "",
                Want::RetryBetween(1000, 1500),
            ),
            (
                Forge::GitLab,
                503,
                h(&[("Retry-After", "3")]),
                "",
                Want::Retry(3000),
            ),
            (
                Forge::GitHub,
                502,
                h(&[]),
                "",
                Want::RetryBetween(1000, 1500),
            ),
            (
                Forge::GitHub,
                403,
                h(&[("retry-after", "42")]),
                r#"{"message":"You have exceeded a secondary rate limit"}"#,
                Want::Retry(42_000),
            ),
            (
                Forge::GitHub,
                403,
                h(&[
                    ("x-ratelimit-remaining", "0"),
                    ("x-ratelimit-reset", reset.as_str()),
                ]),
                r#"{"message":"API rate limit exceeded"}"#,
                Want::Retry(30_000),
            ),
            (
                Forge::GitHub,
                403,
                h(&[]),
                r#"{"message":"You have exceeded a secondary rate limit. Please wait a few minutes"}"#,
                Want::Retry(RATE_LIMIT_WAIT_MS),
            ),
            (
                Forge::GitHub,
                403,
                h(&[("x-ratelimit-remaining", "4999")]),
                r#"{"message":"Resource not accessible by integration"}"#,
                Want::Permanent("Resource not accessible by integration"),
            ),
            (
                Forge::GitHub,
                429,
                h(&[("x-ratelimit-reset", reset.as_str())]),
                "",
                Want::Retry(30_000),
            ),
            (
                Forge::GitHub,
                422,
                h(&[]),
                r#"{"message":"No commit found for SHA: abc","documentation_url":"x"}"#,
                Want::Permanent("commit not found: No commit found for SHA: abc"),
            ),
            (
                Forge::GitHub,
                422,
                h(&[]),
                r#"{"message":"Validation Failed","errors":[]}"#,
                Want::Permanent("HTTP 422: rejected: Validation Failed"),
            ),
            (
                Forge::Gitea,
                404,
                h(&[]),
                "not found",
                Want::Permanent("HTTP 404"),
            ),
            (
                Forge::Gitea,
                403,
                h(&[("Retry-After", "5")]),
                "",
                Want::Retry(5000),
            ),
            (
                Forge::Bitbucket,
                400,
                h(&[]),
                r#"{"type":"error","error":{"message":"key is required"}}"#,
                Want::Permanent("key is required"),
            ),
            (
                Forge::Webhook,
                301,
                h(&[("location", "https://x/")]),
                "",
                Want::Permanent("redirect to https://x/"),
            ),
            (
                Forge::Webhook,
                408,
                h(&[]),
                "",
                Want::RetryBetween(1000, 1500),
            ),
            (
                Forge::Webhook,
                418,
                h(&[]),
                "teapot",
                Want::Permanent("HTTP 418: unexpected response: teapot"),
            ),
        ];
        for (forge, status, headers, body, want) in table {
            let got = classify(forge, status, &headers, body.as_bytes(), cx());
            let ok = match (&want, &got) {
                (Want::Done, Action::Done) => true,
                (Want::Retry(ms), Action::RetryAfter(got)) => ms == got,
                (Want::RetryBetween(lo, hi), Action::RetryAfter(got)) => lo <= got && got <= hi,
                (Want::Permanent(part), Action::Permanent(msg)) => msg.contains(part),
                _ => false,
            };
            assert!(ok, "{forge:?} {status} {headers:?} {body}: got {got:?}");
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff_ms(0, 0), 1000);
        assert_eq!(backoff_ms(1, 0), 2000);
        assert_eq!(backoff_ms(3, 0), 8000);
        assert_eq!(backoff_ms(30, 0), 300_000);
        for jitter in [0, 1, 499, 500, 501, u64::MAX] {
            let ms = backoff_ms(0, jitter);
            assert!((1000..=1500).contains(&ms), "{jitter}: {ms}");
        }
        let mut seen = std::collections::BTreeSet::new();
        for j in 0..50 {
            seen.insert(backoff_ms(2, j * 37));
        }
        assert!(seen.len() > 10, "jitter spreads retries");
    }

    #[test]
    fn retry_after_forms() {
        let now = from_epoch_secs(1_700_000_000);
        assert_eq!(retry_after_ms("5", now), Some(5000));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(retry_after_ms(&later, now), Some(90_000));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(retry_after_ms(&earlier, now), Some(0));
        assert_eq!(retry_after_ms("soon", now), None);
    }

    #[test]
    fn transport_table() {
        use TransportKind as K;
        let table = [
            (K::Denied, false),
            (K::InvalidRequest, false),
            (K::Tls, false),
            (K::Dns, true),
            (K::Connection, true),
            (K::Timeout, true),
            (K::Other, true),
        ];
        for (kind, retry) in table {
            let got = classify_transport(kind, "boom", cx());
            assert_eq!(matches!(got, Action::RetryAfter(_)), retry, "{kind:?}");
            if let Action::Permanent(m) = got {
                assert!(m.starts_with("boom"));
            }
        }
    }

    #[test]
    fn body_messages() {
        assert_eq!(body_message(br#"{"message":"x"}"#), "x");
        assert_eq!(
            body_message(br#"{"message":{"a":["b"]}}"#),
            r#"{"a":["b"]}"#
        );
        assert_eq!(body_message(b"plain\n text"), "plain text");
        assert_eq!(body_message(b""), "");
        assert_eq!(
            body_message("x".repeat(500).as_bytes()).chars().count(),
            200
        );
    }
}
