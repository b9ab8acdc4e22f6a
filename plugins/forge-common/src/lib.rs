//! Pure forge logic shared by weft's status reporters and `*-set-status` tasks: mapping
//! weft statuses to forge states, descriptions, truncation, request building, response
//! classification and webhook signing. No I/O: unit-tested on the host. Statuses are the
//! WIT's own type, [`weft_sdk::reporter::Status`] (the SDK builds on the host too).

#![forbid(unsafe_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};
use weft_sdk::reporter::Status;

pub mod classify;
pub mod reporter;
pub mod request;
pub mod webhook;

pub use classify::{Action, TransportKind, classify, classify_transport, task_retry_wait_ms};
pub use request::{Auth, Request, StatusUpdate, build};

/// A forge (or the generic webhook).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forge {
    /// GitLab (gitlab.com or self-managed).
    GitLab,
    /// GitHub (github.com or Enterprise).
    GitHub,
    /// Gitea or Forgejo.
    Gitea,
    /// Bitbucket Cloud.
    Bitbucket,
    /// A generic JSON webhook.
    Webhook,
}

impl Forge {
    /// The longest description the forge accepts, in characters.
    pub fn description_limit(self) -> usize {
        match self {
            Forge::GitHub => 140,
            Forge::GitLab | Forge::Gitea | Forge::Bitbucket => 255,
            Forge::Webhook => 1024,
        }
    }

    /// The longest target URL the forge accepts, in characters (`None`: no known limit).
    pub fn target_url_limit(self) -> Option<usize> {
        match self {
            Forge::GitLab => Some(255),
            _ => None,
        }
    }

    /// The states the forge accepts (for pass-through states such as the tasks' `STATE`).
    pub fn states(self) -> &'static [&'static str] {
        match self {
            Forge::GitLab => &[
                "pending", "running", "success", "failed", "canceled", "skipped",
            ],
            Forge::GitHub => &["error", "failure", "pending", "success"],
            Forge::Gitea => &[
                "pending", "success", "error", "failure", "warning", "skipped",
            ],
            Forge::Bitbucket => &["INPROGRESS", "SUCCESSFUL", "FAILED", "STOPPED"],
            Forge::Webhook => &[],
        }
    }
}

/// Parses a status given as text by a task param (the set-status tasks' `STATE`):
/// weft's status names and run/task phase names, case-insensitively, with or without
/// dashes, underscores or spaces (`Succeeded`, `succeeded-with-warnings`, `Queued`,
/// `WaitingApproval`, `timed_out`, ...). A phase maps to the status a reporter would show
/// for it (`Queued` -> `Pending`, `RunningFinally` -> `Running`, `Halted` ->
/// `Succeeded`). For exact status names only, see [`Status::parse`].
pub fn parse_status(s: &str) -> Result<Status, String> {
    let key: String = s
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | ' '))
        .flat_map(char::to_lowercase)
        .collect();
    Ok(match key.as_str() {
        "pending" | "queued" | "scheduled" | "waiting" | "waitingapproval" | "evaluatinggates"
        | "blocked" => Status::Pending,
        "running" | "started" | "stopping" | "halting" | "runningfinally" | "cancelling" => {
            Status::Running
        }
        "succeeded" | "halted" => Status::Succeeded,
        "succeededwithwarnings" => Status::SucceededWithWarnings,
        "completed" => Status::Completed,
        "failed" => Status::Failed,
        "timedout" => Status::TimedOut,
        "errored" => Status::Errored,
        "rejected" => Status::Rejected,
        "cancelled" | "canceled" => Status::Cancelled,
        "skipped" => Status::Skipped,
        _ => return Err(format!("unknown weft status {s:?}")),
    })
}

/// What a reporter should converge the forge to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// The status.
    pub status: Status,
    /// weft's reason (`Halted`, a skip reason, ...); may be empty.
    pub reason: String,
    /// The task that halted the run early and its message.
    pub halted_by: Option<(String, String)>,
    /// The run's or task's message; may be empty.
    pub message: String,
}

impl Desired {
    /// A status with no reason, halt or message.
    pub fn new(status: Status) -> Self {
        Desired {
            status,
            reason: String::new(),
            halted_by: None,
            message: String::new(),
        }
    }

    /// True when the run ended early through a halt.
    pub fn is_halt(&self) -> bool {
        self.status == Status::Succeeded
            && (self.halted_by.is_some() || self.reason.eq_ignore_ascii_case("halted"))
    }
}

/// The forge state for a weft status (forges.md, "Mapping from weft outcomes"). For the
/// webhook, weft's own name.
pub fn forge_state(forge: Forge, status: Status) -> &'static str {
    use Status as W;
    match forge {
        Forge::GitLab => match status {
            W::Pending => "pending",
            W::Running => "running",
            W::Succeeded | W::Completed | W::SucceededWithWarnings => "success",
            W::Failed | W::TimedOut | W::Rejected | W::Errored => "failed",
            W::Cancelled => "canceled",
            W::Skipped => "skipped",
        },
        Forge::GitHub => match status {
            W::Pending | W::Running => "pending",
            W::Succeeded | W::Completed | W::SucceededWithWarnings | W::Skipped => "success",
            W::Failed | W::TimedOut | W::Rejected => "failure",
            W::Errored | W::Cancelled => "error",
        },
        Forge::Gitea => match status {
            W::Pending | W::Running => "pending",
            W::Succeeded | W::Completed => "success",
            W::SucceededWithWarnings => "warning",
            W::Failed | W::TimedOut | W::Rejected | W::Cancelled => "failure",
            W::Errored => "error",
            W::Skipped => "skipped",
        },
        Forge::Bitbucket => match status {
            W::Pending | W::Running => "INPROGRESS",
            W::Succeeded | W::Completed | W::SucceededWithWarnings => "SUCCESSFUL",
            W::Failed | W::TimedOut | W::Rejected | W::Errored => "FAILED",
            W::Cancelled | W::Skipped => "STOPPED",
        },
        Forge::Webhook => status.as_str(),
    }
}

/// A one-line human description of `desired` for `subject` (the pipeline or task name).
pub fn describe(subject: &str, desired: &Desired) -> String {
    let with_message = |base: String| {
        if desired.message.trim().is_empty() {
            base
        } else {
            format!("{base}: {}", one_line(&desired.message))
        }
    };
    match desired.status {
        Status::Pending => format!("{subject} is waiting to start"),
        Status::Running => format!("{subject} is running"),
        Status::Succeeded if desired.is_halt() => match &desired.halted_by {
            Some((task, msg)) if !msg.trim().is_empty() => {
                format!("{subject} halted early by {task}: {}", one_line(msg))
            }
            Some((task, _)) => format!("{subject} halted early by {task}"),
            None => with_message(format!("{subject} halted early")),
        },
        Status::Succeeded => format!("{subject} passed"),
        Status::SucceededWithWarnings => with_message(format!("{subject} passed with warnings")),
        Status::Completed => {
            format!("{subject} completed (some tasks failed or were skipped as allowed)")
        }
        Status::Failed => with_message(format!("{subject} failed")),
        Status::TimedOut => with_message(format!("{subject} timed out")),
        Status::Errored => {
            let reason = if desired.reason.is_empty() {
                String::new()
            } else {
                format!(" ({})", desired.reason)
            };
            with_message(format!("{subject} errored{reason}"))
        }
        Status::Rejected => with_message(format!("{subject} was rejected")),
        Status::Cancelled => {
            let reason = if desired.reason.is_empty() || desired.reason == "Cancelled" {
                String::new()
            } else {
                format!(" ({})", desired.reason)
            };
            format!("{subject} was cancelled{reason}")
        }
        Status::Skipped => with_message(format!("{subject} was skipped")),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `s` cut to at most `max` characters (not bytes), ending with `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// The target URL if it is an absolute `http://` or `https://` URL with a host (after
/// trimming), else `None`: forges refuse other schemes, so they are dropped.
pub fn target_url(url: &str) -> Option<String> {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || url.chars().any(char::is_whitespace) {
        return None;
    }
    Some(url.to_string())
}

/// A base URL from a host with or without a scheme (`gitlab.com` -> `https://gitlab.com`,
/// `http://127.0.0.1:8080/` -> `http://127.0.0.1:8080`).
pub fn base_url(host: &str) -> String {
    let host = host.trim().trim_end_matches('/');
    if host.starts_with("http://") || host.starts_with("https://") {
        host.to_string()
    } else {
        format!("https://{host}")
    }
}

/// A path prefix as `/x/y` (empty stays empty; slashes normalised).
pub fn path_prefix(prefix: &str) -> String {
    let p = prefix.trim().trim_matches('/');
    if p.is_empty() {
        String::new()
    } else {
        format!("/{p}")
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters (`group/project` ->
/// `group%2Fproject`), as GitLab wants for `:id`.
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Splits `owner/repo` (exactly two non-empty segments).
pub fn owner_repo(full: &str) -> Result<(&str, &str), String> {
    match full.trim().trim_matches('/').split_once('/') {
        Some((o, r)) if !o.is_empty() && !r.is_empty() && !r.contains('/') => Ok((o, r)),
        _ => Err(format!("repository {full:?} is not of the form owner/repo")),
    }
}

/// Checks that a commit SHA is 7 to 64 hex digits.
pub fn check_sha(sha: &str) -> Result<&str, String> {
    let sha = sha.trim();
    if (7..=64).contains(&sha.len()) && sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(sha)
    } else {
        Err(format!("{sha:?} is not a commit SHA"))
    }
}

/// `msg` with every occurrence of `secret` replaced by `***` (a no-op for an empty
/// secret). Use on anything that may end up in a log or a delivery message.
pub fn redact(msg: &str, secret: &str) -> String {
    if secret.is_empty() {
        msg.to_string()
    } else {
        msg.replace(secret, "***")
    }
}

/// Milliseconds from `now` until `t` (0 if past).
pub(crate) fn ms_until(now: SystemTime, t: SystemTime) -> u64 {
    t.duration_since(now)
        .unwrap_or(Duration::ZERO)
        .as_millis()
        .try_into()
        .unwrap_or(u64::MAX)
}

/// Seconds since the epoch as a time.
pub(crate) fn from_epoch_secs(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status as W;

    #[test]
    fn mapping_table() {
        // status, GitLab, GitHub, Gitea, Bitbucket (forges.md)
        let table = [
            (W::Pending, "pending", "pending", "pending", "INPROGRESS"),
            (W::Running, "running", "pending", "pending", "INPROGRESS"),
            (W::Succeeded, "success", "success", "success", "SUCCESSFUL"),
            (W::Completed, "success", "success", "success", "SUCCESSFUL"),
            (
                W::SucceededWithWarnings,
                "success",
                "success",
                "warning",
                "SUCCESSFUL",
            ),
            (W::Failed, "failed", "failure", "failure", "FAILED"),
            (W::TimedOut, "failed", "failure", "failure", "FAILED"),
            (W::Rejected, "failed", "failure", "failure", "FAILED"),
            (W::Errored, "failed", "error", "error", "FAILED"),
            (W::Cancelled, "canceled", "error", "failure", "STOPPED"),
            (W::Skipped, "skipped", "success", "skipped", "STOPPED"),
        ];
        assert_eq!(table.len(), W::ALL.len());
        for (s, gl, gh, gt, bb) in table {
            assert_eq!(forge_state(Forge::GitLab, s), gl, "{s} gitlab");
            assert_eq!(forge_state(Forge::GitHub, s), gh, "{s} github");
            assert_eq!(forge_state(Forge::Gitea, s), gt, "{s} gitea");
            assert_eq!(forge_state(Forge::Bitbucket, s), bb, "{s} bitbucket");
            assert_eq!(forge_state(Forge::Webhook, s), s.as_str());
            for forge in [Forge::GitLab, Forge::GitHub, Forge::Gitea, Forge::Bitbucket] {
                assert!(
                    forge.states().contains(&forge_state(forge, s)),
                    "{forge:?} {s}"
                );
            }
        }
    }

    #[test]
    fn parse_statuses() {
        let table = [
            ("Queued", W::Pending),
            ("WaitingApproval", W::Pending),
            ("pending", W::Pending),
            ("Running", W::Running),
            ("RunningFinally", W::Running),
            ("Succeeded", W::Succeeded),
            ("succeeded-with-warnings", W::SucceededWithWarnings),
            ("SucceededWithWarnings", W::SucceededWithWarnings),
            ("Completed", W::Completed),
            ("Failed", W::Failed),
            ("TimedOut", W::TimedOut),
            ("timed_out", W::TimedOut),
            ("Errored", W::Errored),
            ("Rejected", W::Rejected),
            ("Cancelled", W::Cancelled),
            ("Skipped", W::Skipped),
        ];
        for (text, want) in table {
            assert_eq!(parse_status(text), Ok(want), "{text}");
        }
        for s in W::ALL {
            assert_eq!(parse_status(s.as_str()), Ok(s));
        }
        assert!(parse_status("bogus").is_err());
        assert!(!W::Running.is_terminal() && W::Skipped.is_terminal());
    }

    #[test]
    fn descriptions() {
        let d = |status, reason: &str, halt: Option<(&str, &str)>, msg: &str| Desired {
            status,
            reason: reason.into(),
            halted_by: halt.map(|(t, m)| (t.into(), m.into())),
            message: msg.into(),
        };
        let table = [
            (d(W::Pending, "", None, ""), "ci is waiting to start"),
            (d(W::Running, "", None, ""), "ci is running"),
            (d(W::Succeeded, "", None, ""), "ci passed"),
            (
                d(W::Succeeded, "Halted", Some(("check", "nothing to do")), ""),
                "ci halted early by check: nothing to do",
            ),
            (
                d(W::Succeeded, "Halted", Some(("check", "")), ""),
                "ci halted early by check",
            ),
            (d(W::Succeeded, "Halted", None, ""), "ci halted early"),
            (
                d(W::SucceededWithWarnings, "", None, ""),
                "ci passed with warnings",
            ),
            (
                d(W::SucceededWithWarnings, "", None, "lint:\n 3 warnings"),
                "ci passed with warnings: lint: 3 warnings",
            ),
            (
                d(W::Failed, "", None, "build failed"),
                "ci failed: build failed",
            ),
            (d(W::TimedOut, "", None, ""), "ci timed out"),
            (
                d(W::Errored, "CpuBudgetExceeded", None, "task build"),
                "ci errored (CpuBudgetExceeded): task build",
            ),
            (d(W::Rejected, "", None, ""), "ci was rejected"),
            (d(W::Cancelled, "", None, ""), "ci was cancelled"),
            (
                d(W::Cancelled, "CancelledRunFinally", None, ""),
                "ci was cancelled (CancelledRunFinally)",
            ),
            (
                d(W::Skipped, "WhenExpressionsFalse", None, ""),
                "ci was skipped",
            ),
        ];
        for (desired, want) in table {
            assert_eq!(describe("ci", &desired), want);
        }
        assert!(describe("ci", &d(W::Completed, "", None, "")).starts_with("ci completed"));
    }

    #[test]
    fn truncation() {
        let table: [(&str, usize, &str); 6] = [
            ("short", 10, "short"),
            ("exactly10!", 10, "exactly10!"),
            ("eleven char", 10, "eleven ch…"),
            ("ééééé", 3, "éé…"),
            ("日本語テキスト", 4, "日本語…"),
            ("x", 0, ""),
        ];
        for (s, max, want) in table {
            let got = truncate(s, max);
            assert_eq!(got, want, "{s} {max}");
            assert!(got.chars().count() <= max);
        }
        let long = "é".repeat(300);
        assert_eq!(
            truncate(&long, Forge::GitHub.description_limit())
                .chars()
                .count(),
            140
        );
        assert_eq!(
            truncate(&long, Forge::GitLab.description_limit())
                .chars()
                .count(),
            255
        );
    }

    #[test]
    fn target_urls() {
        let table = [
            (
                "https://ci.example/runs/1",
                Some("https://ci.example/runs/1"),
            ),
            (
                "  http://127.0.0.1:8080/x ",
                Some("http://127.0.0.1:8080/x"),
            ),
            ("HTTPS://CI.EXAMPLE", Some("HTTPS://CI.EXAMPLE")),
            ("javascript:alert(1)", None),
            ("ftp://example.com/", None),
            ("file:///etc/passwd", None),
            ("https://", None),
            ("https:///path", None),
            ("ci.example/runs", None),
            ("https://a b", None),
            ("", None),
        ];
        for (url, want) in table {
            assert_eq!(target_url(url).as_deref(), want, "{url}");
        }
    }

    #[test]
    fn urls_and_names() {
        assert_eq!(base_url("gitlab.com"), "https://gitlab.com");
        assert_eq!(
            base_url("https://gitlab.example/"),
            "https://gitlab.example"
        );
        assert_eq!(base_url("http://127.0.0.1:9000"), "http://127.0.0.1:9000");
        assert_eq!(path_prefix("/api/v4"), "/api/v4");
        assert_eq!(path_prefix("api/v3/"), "/api/v3");
        assert_eq!(path_prefix(""), "");
        assert_eq!(encode_component("group/project"), "group%2Fproject");
        assert_eq!(encode_component("g/sub group/p.x"), "g%2Fsub%20group%2Fp.x");
        assert_eq!(encode_component("1234"), "1234");
        assert_eq!(owner_repo("a/b"), Ok(("a", "b")));
        assert!(owner_repo("a").is_err());
        assert!(owner_repo("a/b/c").is_err());
        assert!(owner_repo("/b").is_err());
        assert!(check_sha("deadbeef").is_ok());
        assert!(check_sha("xyz").is_err());
        assert!(check_sha("abc").is_err());
        assert_eq!(redact("token abc in abc", "abc"), "token *** in ***");
        assert_eq!(redact("x", ""), "x");
    }
}
