//! Pure logic shared by the catalogue tasks `http-request` and `wait-for`, tested on the
//! host: Go durations (`500ms`, `1m30s`), the statuses a response must have (`200`,
//! `200,204`, `2xx`), the retry backoff, and which statuses are worth retrying.

use std::fmt;
use std::time::Duration;

/// Parses a Go duration (`90s`, `1m30s`, `1.5h`, `250ms`, `0`), as pipelines write them.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err("empty duration".to_string());
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("`{text}` is not a duration like `90s`, `1m30s` or `500ms`"))?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after_unit) = after.split_at(unit_len);
        let seconds = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("`{text}` is missing a unit (ms, s, m, h)")),
            other => {
                return Err(format!(
                    "`{text}` has an unknown unit `{other}` (use ms, s, m, h)"
                ));
            }
        };
        total += value * seconds;
        rest = after_unit;
    }
    // A week is far beyond any task's timeout; anything longer is a typo.
    if total > 7.0 * 86_400.0 {
        return Err(format!("`{text}` is longer than a week"));
    }
    Ok(Duration::from_secs_f64(total))
}

/// One accepted status: a code (`200`) or a class (`2xx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusPattern {
    /// Exactly this code.
    Code(u16),
    /// Any code of this hundred (`2` for `2xx`).
    Class(u16),
}

/// The statuses a response must have, from a param such as `200`, `200,204` or `2xx`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected(Vec<StatusPattern>);

impl Expected {
    /// Parses a comma-separated list of codes (`100`-`599`) and classes (`1xx`-`5xx`).
    pub fn parse(text: &str) -> Result<Expected, String> {
        let mut patterns = Vec::new();
        for part in text.split(',').map(str::trim) {
            let lower = part.to_ascii_lowercase();
            let pattern = if let Some(class) = lower.strip_suffix("xx") {
                match class.parse::<u16>() {
                    Ok(class @ 1..=5) => StatusPattern::Class(class),
                    _ => return Err(format!("`{part}` is not a status class (1xx to 5xx)")),
                }
            } else {
                match part.parse::<u16>() {
                    Ok(code @ 100..=599) => StatusPattern::Code(code),
                    _ => return Err(format!("`{part}` is not an HTTP status (100 to 599)")),
                }
            };
            patterns.push(pattern);
        }
        Ok(Expected(patterns))
    }

    /// Whether `status` is one of them.
    pub fn matches(&self, status: u16) -> bool {
        self.0.iter().any(|pattern| match *pattern {
            StatusPattern::Code(code) => status == code,
            StatusPattern::Class(class) => status / 100 == class,
        })
    }
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, pattern) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match pattern {
                StatusPattern::Code(code) => write!(f, "{code}")?,
                StatusPattern::Class(class) => write!(f, "{class}xx")?,
            }
        }
        Ok(())
    }
}

/// Whether an unexpected status is worth another try: timeouts, rate limits and server
/// errors are; anything else (a 404, a 401) will answer the same again.
pub fn is_retryable(status: u16) -> bool {
    matches!(status, 408 | 425 | 429) || (500..600).contains(&status)
}

/// The wait before retry `retry` (0 for the first): `base` doubled each time, at most
/// `cap`, and at least what the server asked for with `Retry-After` (seconds), still
/// within `cap`.
pub fn backoff(base: Duration, retry: u32, retry_after: Option<&str>, cap: Duration) -> Duration {
    let doubled = base.saturating_mul(1u32 << retry.min(16));
    let asked = retry_after
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or_default();
    doubled.max(asked).min(cap)
}

/// At most `max` bytes of `text`, cut at a character boundary, with how much was left out.
pub fn truncate(text: &str, max: usize) -> (String, usize) {
    if text.len() <= max {
        return (text.to_string(), 0);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (text[..end].to_string(), text.len() - end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = [
            ("0", 0),
            ("250ms", 250),
            ("2s", 2_000),
            ("1m30s", 90_000),
            ("1.5h", 5_400_000),
            (" 10s ", 10_000),
        ];
        for (text, ms) in ok {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(ms)),
                "{text}"
            );
        }
        for (text, why) in [
            ("", "empty"),
            ("10", "missing a unit"),
            ("10d", "unknown unit"),
            ("s", "not a duration"),
            ("-1s", "not a duration"),
            ("200h", "longer than a week"),
        ] {
            let err = parse_duration(text).expect_err(text);
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn expected_statuses() {
        let expected = Expected::parse("200, 204,3xx").expect("parses");
        assert!(expected.matches(200) && expected.matches(204) && expected.matches(301));
        assert!(!expected.matches(201) && !expected.matches(404));
        assert_eq!(expected.to_string(), "200,204,3xx");
        for text in ["", "2xxx", "6xx", "99", "600", "ok"] {
            assert!(Expected::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn retries_and_backoff() {
        assert!(is_retryable(503) && is_retryable(429) && is_retryable(408));
        assert!(!is_retryable(404) && !is_retryable(401) && !is_retryable(200));
        let (base, cap) = (Duration::from_millis(500), Duration::from_secs(30));
        assert_eq!(backoff(base, 0, None, cap), Duration::from_millis(500));
        assert_eq!(backoff(base, 2, None, cap), Duration::from_secs(2));
        assert_eq!(backoff(base, 40, None, cap), cap);
        assert_eq!(backoff(base, 0, Some("3"), cap), Duration::from_secs(3));
        assert_eq!(backoff(base, 0, Some("3600"), cap), cap);
        assert_eq!(backoff(base, 0, Some("soon"), cap), base);
    }

    #[test]
    fn truncates_at_a_character_boundary() {
        assert_eq!(truncate("hello", 10), ("hello".to_string(), 0));
        assert_eq!(truncate("héllo", 2), ("h".to_string(), 5));
    }
}
