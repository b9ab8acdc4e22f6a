//! Response classification: status + headers + body -> [`Action`].
//!
//! A reporter's retries belong to the host (its outbox backs off with jitter), so
//! classification never computes a backoff: a transient failure is
//! [`Action::RetryAfter`] with the wait the *server* named (`Retry-After`, a rate-limit
//! reset), clamped to [`MIN_WAIT_MS`, `MAX_WAIT_MS`] and so never 0, or
//! [`NO_SERVER_WAIT`] (0) when it named none, meaning "retry with the caller's backoff":
//! the host's for a reporter (`retry-after(0)`), [`task_retry_wait_ms`] for the
//! set-status tasks' own loop.
//!
//! | response | action |
//! |---|---|
//! | 2xx | done |
//! | GitLab 400 `Cannot transition status ...` (already in that state) | done |
//! | 408, 409 (GitLab's per-SHA lock), 5xx | retry: `Retry-After` if given, else 0 |
//! | 429 | retry: `Retry-After` (seconds or HTTP-date), else `x-ratelimit-reset`, else 0 |
//! | GitHub 403 with `retry-after`, `x-ratelimit-remaining: 0` or "rate limit" in the body | retry as for 429 |
//! | other 403 (role, protected ref), 401, 404, 422 (e.g. GitHub "No commit found"), other 4xx | permanent |
//! | 1xx, 3xx (redirects are not followed) | permanent |
//!
//! Transport errors: policy denial, invalid request and TLS are permanent; DNS,
//! connection, timeouts and others are retried (0: the caller's backoff).

use crate::{Forge, from_epoch_secs, ms_until};
use std::time::SystemTime;

/// The longest wait a server may name (one hour); longer ones are cut to this.
pub const MAX_WAIT_MS: u64 = 3_600_000;
/// The shortest wait a server may name; shorter ones (`Retry-After: 0`, a past reset)
/// are raised to this, so a server-named wait is never [`NO_SERVER_WAIT`].
pub const MIN_WAIT_MS: u64 = 1_000;
/// `RetryAfter(NO_SERVER_WAIT)`: transient, and the server named no wait; the caller
/// retries with its own backoff (the WIT's `retry-after(0)`).
pub const NO_SERVER_WAIT: u64 = 0;

/// What to do after one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Delivered, or the forge already has that state.
    Done,
    /// Transient: try again after the wait the server named, in milliseconds, or
    /// [`NO_SERVER_WAIT`] (0) to retry with the caller's backoff.
    RetryAfter(u64),
    /// Will never succeed as configured.
    Permanent(String),
}

/// The wait before the `*-set-status` tasks' next attempt (`attempt` is 0 for the
/// first): the server's wait if it named one (`server_wait_ms` from
/// [`Action::RetryAfter`]), else exponential backoff, 1 s, 2 s, 4 s, ... capped at
/// 5 minutes, plus up to 50% jitter (`jitter` is any random value).
///
/// This is the only backoff in the plugins, and only the tasks' in-task retry loop
/// (`forge-glue`'s `task::run`) uses it: a task's own HTTP calls have no host loop.
/// Reporters never back off themselves; they return the server's wait (or 0) and the
/// host's outbox applies its backoff.
pub fn task_retry_wait_ms(server_wait_ms: u64, attempt: u32, jitter: u64) -> u64 {
    if server_wait_ms != NO_SERVER_WAIT {
        return server_wait_ms;
    }
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

/// Classifies one response from `forge` received at `now` (for HTTP-dates and reset
/// times).
pub fn classify(
    forge: Forge,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    now: SystemTime,
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
    let transient = || Action::RetryAfter(server_wait(headers, now).unwrap_or(NO_SERVER_WAIT));
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
                transient()
            } else {
                permanent("forbidden (the token lacks permission on the repository)")
            }
        }
        403 if header(headers, "retry-after").is_some() => transient(),
        403 => permanent("forbidden (the token lacks the role, or the ref is protected)"),
        404 => {
            permanent("not found (check the project/repository, the SHA and the token's access)")
        }
        408 | 409 | 500..=599 => transient(),
        422 if message().contains("No commit found") => permanent("commit not found"),
        422 => permanent("rejected"),
        429 => transient(),
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
/// rest are retried with the caller's backoff ([`NO_SERVER_WAIT`]: no server named a
/// wait).
pub fn classify_transport(kind: TransportKind, message: &str) -> Action {
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
        | TransportKind::Other => Action::RetryAfter(NO_SERVER_WAIT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn now() -> SystemTime {
        from_epoch_secs(1_700_000_000)
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
            (Forge::GitLab, 409, h(&[]), "", Want::Retry(NO_SERVER_WAIT)),
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
            (Forge::GitLab, 429, h(&[]), "", Want::Retry(NO_SERVER_WAIT)),
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
            (Forge::GitLab, 500, h(&[]), "", Want::Retry(NO_SERVER_WAIT)),
            (
                Forge::GitLab,
                503,
                h(&[("Retry-After", "3")]),
                "",
                Want::Retry(3000),
            ),
            (Forge::GitHub, 502, h(&[]), "", Want::Retry(NO_SERVER_WAIT)),
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
                Want::Retry(NO_SERVER_WAIT),
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
            (Forge::Webhook, 408, h(&[]), "", Want::Retry(NO_SERVER_WAIT)),
            (
                Forge::Webhook,
                418,
                h(&[]),
                "teapot",
                Want::Permanent("HTTP 418: unexpected response: teapot"),
            ),
        ];
        for (forge, status, headers, body, want) in table {
            let got = classify(forge, status, &headers, body.as_bytes(), now());
            let ok = match (&want, &got) {
                (Want::Done, Action::Done) => true,
                (Want::Retry(ms), Action::RetryAfter(got)) => ms == got,
                (Want::Permanent(part), Action::Permanent(msg)) => msg.contains(part),
                _ => false,
            };
            assert!(ok, "{forge:?} {status} {headers:?} {body}: got {got:?}");
        }
    }

    #[test]
    fn task_backoff_grows_and_is_capped() {
        let backoff = |attempt, jitter| task_retry_wait_ms(NO_SERVER_WAIT, attempt, jitter);
        assert_eq!(backoff(0, 0), 1000);
        assert_eq!(backoff(1, 0), 2000);
        assert_eq!(backoff(3, 0), 8000);
        assert_eq!(backoff(30, 0), 300_000);
        for jitter in [0, 1, 499, 500, 501, u64::MAX] {
            let ms = backoff(0, jitter);
            assert!((1000..=1500).contains(&ms), "{jitter}: {ms}");
        }
        let mut seen = std::collections::BTreeSet::new();
        for j in 0..50 {
            seen.insert(backoff(2, j * 37));
        }
        assert!(seen.len() > 10, "jitter spreads retries");
    }

    #[test]
    fn task_wait_is_the_servers_when_it_named_one() {
        for attempt in [0, 3, 30] {
            assert_eq!(task_retry_wait_ms(7000, attempt, 12_345), 7000);
            assert_eq!(task_retry_wait_ms(MIN_WAIT_MS, attempt, 0), MIN_WAIT_MS);
        }
    }

    /// Reporters leave the backoff to the host: with no wait named by the server, a
    /// transient failure is `RetryAfter(0)` whatever the attempt; a named wait is passed
    /// through (clamped, so never 0).
    #[test]
    fn host_backoff_unless_the_server_names_a_wait() {
        let forges = [
            Forge::GitLab,
            Forge::GitHub,
            Forge::Gitea,
            Forge::Bitbucket,
            Forge::Webhook,
        ];
        for forge in forges {
            for status in [500, 502, 503, 504, 429, 408, 409] {
                assert_eq!(
                    classify(forge, status, &[], b"", now()),
                    Action::RetryAfter(0),
                    "{forge:?} {status}"
                );
            }
            assert_eq!(
                classify(forge, 429, &h(&[("Retry-After", "7")]), b"", now()),
                Action::RetryAfter(7000),
                "{forge:?}"
            );
            assert_eq!(
                classify(forge, 503, &h(&[("retry-after", "7")]), b"", now()),
                Action::RetryAfter(7000),
                "{forge:?}"
            );
        }
        for kind in [
            TransportKind::Dns,
            TransportKind::Connection,
            TransportKind::Timeout,
            TransportKind::Other,
        ] {
            assert_eq!(
                classify_transport(kind, "boom"),
                Action::RetryAfter(0),
                "{kind:?}"
            );
        }
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
            let got = classify_transport(kind, "boom");
            assert_eq!(got == Action::RetryAfter(NO_SERVER_WAIT), retry, "{kind:?}");
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
