//! What `http-check` expects and how it judges a response: plain Rust, tested on the host.

use std::fmt;

/// Longest part of a value quoted in a message.
const QUOTED_CHARS: usize = 120;

/// One accepted status: a code (`200`) or a class (`2xx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusPattern {
    /// Exactly this code.
    Code(u16),
    /// Any code of this hundred (`2` for `2xx`).
    Class(u16),
}

impl StatusPattern {
    fn matches(self, status: u16) -> bool {
        match self {
            StatusPattern::Code(code) => status == code,
            StatusPattern::Class(class) => status / 100 == class,
        }
    }
}

impl fmt::Display for StatusPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusPattern::Code(code) => write!(f, "{code}"),
            StatusPattern::Class(class) => write!(f, "{class}xx"),
        }
    }
}

/// What a response must look like to pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// Any of these statuses passes.
    pub statuses: Vec<StatusPattern>,
    /// Where in the JSON body to look, if anywhere.
    pub pointer: Option<String>,
    /// What the value there must read as; `None`: any value.
    pub value: Option<String>,
}

/// What a sample saw, and whether it passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// As expected; what was seen.
    Passed(String),
    /// Not as expected; what was seen, and what was expected.
    Failed(String),
}

impl Expectation {
    /// From the params: `expectStatus` (`200`, `200,204`, `2xx`), `jsonPointer` and
    /// `expectValue` (both optional; a value needs a pointer).
    pub fn parse(
        statuses: &str,
        pointer: Option<&str>,
        value: Option<&str>,
    ) -> Result<Expectation, String> {
        let statuses = statuses
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(parse_status)
            .collect::<Result<Vec<_>, _>>()?;
        if statuses.is_empty() {
            return Err("param `expectStatus` names no status".to_string());
        }
        if let Some(pointer) = pointer
            && !pointer.starts_with('/')
        {
            return Err(format!(
                "param `jsonPointer`: {pointer:?} is not a JSON pointer (it starts with `/`, as in `/status`)"
            ));
        }
        if value.is_some() && pointer.is_none() {
            return Err(
                "param `expectValue` needs `jsonPointer`: where in the body to look".into(),
            );
        }
        Ok(Expectation {
            statuses,
            pointer: pointer.map(str::to_string),
            value: value.map(str::to_string),
        })
    }

    /// Judges one response.
    pub fn judge(&self, status: u16, body: &[u8]) -> Verdict {
        if !self.statuses.iter().any(|p| p.matches(status)) {
            return Verdict::Failed(format!(
                "HTTP {status} (expected {})",
                self.statuses
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" or ")
            ));
        }
        let Some(pointer) = &self.pointer else {
            return Verdict::Passed(format!("HTTP {status}"));
        };
        let expected = match &self.value {
            Some(value) => format!("{pointer} = {}", quote(value)),
            None => format!("a value at {pointer}"),
        };
        let json: serde_json::Value = match serde_json::from_slice(body) {
            Ok(json) => json,
            Err(e) => {
                return Verdict::Failed(format!(
                    "HTTP {status}, but the body is not JSON ({e}; expected {expected})"
                ));
            }
        };
        let Some(found) = json.pointer(pointer) else {
            return Verdict::Failed(format!(
                "HTTP {status}, but the body has nothing at {pointer} (expected {expected})"
            ));
        };
        let text = as_text(found);
        match &self.value {
            Some(value) if *value != text => Verdict::Failed(format!(
                "HTTP {status}, {pointer} is {} (expected {})",
                quote(&text),
                quote(value)
            )),
            _ => Verdict::Passed(format!("HTTP {status}, {pointer} is {}", quote(&text))),
        }
    }
}

fn parse_status(s: &str) -> Result<StatusPattern, String> {
    let invalid = || {
        format!(
            "param `expectStatus`: {s:?} is not a status (a code such as `200` or a class such as `2xx`)"
        )
    };
    let lower = s.to_ascii_lowercase();
    if let Some(digits) = lower.strip_suffix("xx") {
        return match digits.parse::<u16>() {
            Ok(class @ 1..=5) if digits.len() == 1 => Ok(StatusPattern::Class(class)),
            _ => Err(invalid()),
        };
    }
    match s.parse::<u16>() {
        Ok(code @ 100..=599) => Ok(StatusPattern::Code(code)),
        _ => Err(invalid()),
    }
}

/// A JSON value as text: a string's contents, anything else as compact JSON (`42`, `true`,
/// `null`, `{"a":1}`).
pub fn as_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `"text"`, cut to [`QUOTED_CHARS`] characters.
fn quote(text: &str) -> String {
    if text.chars().count() > QUOTED_CHARS {
        let cut: String = text.chars().take(QUOTED_CHARS).collect();
        format!("{cut:?}...")
    } else {
        format!("{text:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect(statuses: &str, pointer: Option<&str>, value: Option<&str>) -> Expectation {
        Expectation::parse(statuses, pointer, value).expect("valid expectation")
    }

    #[test]
    fn statuses_parse_as_codes_lists_and_classes() {
        let e = expect("200", None, None);
        assert_eq!(e.statuses, [StatusPattern::Code(200)]);
        let e = expect(" 200, 204 ,", None, None);
        assert_eq!(
            e.statuses,
            [StatusPattern::Code(200), StatusPattern::Code(204)]
        );
        assert_eq!(
            expect("2XX", None, None).statuses,
            [StatusPattern::Class(2)]
        );
        for bad in [
            "", "ok", "99", "600", "20x", "0xx", "6xx", "22xx", "02xx", "-1",
        ] {
            assert!(Expectation::parse(bad, None, None).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pointer_and_value_rules() {
        assert!(Expectation::parse("200", Some("status"), None).is_err());
        let err = Expectation::parse("200", None, Some("ok")).expect_err("value without pointer");
        assert!(err.contains("jsonPointer"), "{err}");
        assert!(Expectation::parse("200", Some("/a/0"), Some("x")).is_ok());
    }

    #[test]
    fn the_status_alone_decides_without_a_pointer() {
        let e = expect("200,204", None, None);
        assert_eq!(
            e.judge(204, b"not json"),
            Verdict::Passed("HTTP 204".into())
        );
        assert_eq!(
            e.judge(503, b""),
            Verdict::Failed("HTTP 503 (expected 200 or 204)".into())
        );
        let classes = expect("2xx", None, None);
        assert!(matches!(classes.judge(299, b""), Verdict::Passed(_)));
        assert!(matches!(classes.judge(301, b""), Verdict::Failed(_)));
    }

    #[test]
    fn the_value_at_the_pointer_is_compared_as_text() {
        let body = br#"{"status": "ok", "checks": [{"n": 3}, {"up": true}], "v": null}"#;
        let table: [(&str, Option<&str>, bool); 9] = [
            ("/status", Some("ok"), true),
            ("/status", Some("OK"), false),
            ("/checks/0/n", Some("3"), true),
            ("/checks/1/up", Some("true"), true),
            ("/v", Some("null"), true),
            ("/checks/0", Some(r#"{"n":3}"#), true),
            ("/status", None, true),
            ("/missing", None, false),
            ("/checks/5", Some("3"), false),
        ];
        for (pointer, value, passes) in table {
            let verdict = expect("200", Some(pointer), value).judge(200, body);
            assert_eq!(
                matches!(verdict, Verdict::Passed(_)),
                passes,
                "{pointer} {value:?}: {verdict:?}"
            );
        }
    }

    #[test]
    fn failures_name_what_was_seen() {
        let e = expect("200", Some("/status"), Some("ok"));
        assert_eq!(
            e.judge(200, br#"{"status": "degraded"}"#),
            Verdict::Failed(r#"HTTP 200, /status is "degraded" (expected "ok")"#.into())
        );
        assert_eq!(
            e.judge(200, br#"{"status": "ok"}"#),
            Verdict::Passed(r#"HTTP 200, /status is "ok""#.into())
        );
        let Verdict::Failed(message) = e.judge(200, b"<html>") else {
            panic!("HTML passed");
        };
        assert!(message.contains("not JSON"), "{message}");
        let Verdict::Failed(message) = e.judge(200, b"{}") else {
            panic!("a missing value passed");
        };
        assert!(message.contains("nothing at /status"), "{message}");
        // The status is judged first.
        assert_eq!(
            e.judge(500, br#"{"status": "ok"}"#),
            Verdict::Failed("HTTP 500 (expected 200)".into())
        );
        // Long values are cut.
        let long = format!(r#"{{"status": "{}"}}"#, "y".repeat(500));
        let Verdict::Failed(message) = e.judge(200, long.as_bytes()) else {
            panic!("passed");
        };
        assert!(message.len() < 300, "{message}");
    }
}
