//! Secret masking: every encoded form, alignment inside base64 streams, long and
//! overlapping secrets, no false masking, and a throughput check (B12's shape; the
//! release figure comes from the bench, this only guards against a collapse).
//!
//! The stdout/stderr capture path (split writes, overlong lines, host lines) is tested
//! next to it, in `weft_runtime::masking`'s unit tests. The tests through the `hostile`
//! plugin (a value split across log calls, hex and JSON forms) need the plugins built
//! (`cargo xtask build-plugins`).

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use weft_core::contract::{ParamValue, TaskEnding};
use weft_runtime::masking::across_calls::HOLD_MIN;
use weft_runtime::masking::{MASK, MIN_SECRET_CHARS, Masker, TooShort, variants};
use weft_runtime::{HttpRule, MemorySink, SecretError, SecretValue, TaskRequest};

mod common;

const SECRET: &str = "p@ss w0rd/with+every&kind=of\"chars\\é?";

fn percent(bytes: &[u8], keep: &str, upper: bool) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || keep.as_bytes().contains(&b) {
                char::from(b).to_string()
            } else if upper {
                format!("%{b:02X}")
            } else {
                format!("%{b:02x}")
            }
        })
        .collect()
}

#[test]
fn every_encoded_form_is_masked() {
    let masker = Masker::with_secrets([SECRET]).expect("long enough");
    let b = SECRET.as_bytes();
    let json = serde_json::to_string(SECRET).expect("json");
    let cases: Vec<(&str, String)> = vec![
        ("raw", SECRET.to_string()),
        ("base64", STANDARD.encode(b)),
        ("base64 no padding", STANDARD_NO_PAD.encode(b)),
        ("base64url", URL_SAFE.encode(b)),
        ("base64url no padding", URL_SAFE_NO_PAD.encode(b)),
        ("percent strict upper", percent(b, "-._~", true)),
        ("percent strict lower", percent(b, "-._~", false)),
        ("encodeURIComponent", percent(b, "-._~!*'()", true)),
        ("python quote", percent(b, "-._~/", true)),
        ("python quote lower", percent(b, "-._~/", false)),
        ("form encoding", percent(b, "-._~ ", true).replace(' ', "+")),
        ("json escaped", json[1..json.len() - 1].to_string()),
    ];
    for (what, form) in &cases {
        assert_ne!(form.as_str(), "", "{what}");
        let text = format!("before {form} after");
        let masked = masker.mask(&text);
        assert_eq!(masked, "before *** after", "{what}: {form}");
    }
    // The forms really differ from each other (the table is not testing one thing).
    let mut distinct: Vec<&String> = cases.iter().map(|(_, f)| f).collect();
    distinct.sort();
    distinct.dedup();
    assert!(distinct.len() >= 8, "{distinct:?}");
}

/// `text` JSON-escaped with `/` as `\/` and, unless `unicode`, everything past ASCII as
/// `\uXXXX` in the given case.
fn json_escaped(text: &str, unicode: bool, upper: bool) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            c if !c.is_ascii() && !unicode => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    if upper {
                        out.push_str(&format!("\\u{unit:04X}"));
                    } else {
                        out.push_str(&format!("\\u{unit:04x}"));
                    }
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[test]
fn hex_and_json_forms_are_masked() {
    let masker = Masker::with_secrets([SECRET]).expect("long enough");
    let b = SECRET.as_bytes();
    let hex: String = b.iter().map(|b| format!("{b:02x}")).collect();
    let cases: Vec<(&str, String)> = vec![
        ("hex lower", hex.clone()),
        ("hex upper", hex.to_uppercase()),
        ("hex inside a dump", format!("00ff{hex}ff00")),
        (
            "json \\/ (PHP unescaped unicode)",
            json_escaped(SECRET, true, false),
        ),
        ("json \\/ and \\u (PHP)", json_escaped(SECRET, false, false)),
        (
            "json \\u (Python)",
            json_escaped(SECRET, false, false).replace("\\/", "/"),
        ),
        (
            ".NET",
            json_escaped(SECRET, false, true)
                .replace("\\/", "/")
                .replace("\\\"", "\\u0022")
                .replace('&', "\\u0026")
                .replace('+', "\\u002B"),
        ),
        ("Gson", {
            let json = serde_json::to_string(SECRET).expect("json");
            json[1..json.len() - 1]
                .replace('&', "\\u0026")
                .replace('=', "\\u003d")
        }),
    ];
    for (what, form) in &cases {
        assert_ne!(form.as_str(), SECRET, "{what} differs from the raw value");
        let masked = masker.mask(&format!("<{form}>")).into_owned();
        assert!(
            masked == "<***>" || (what.contains("dump") && masked == "<00ff***ff00>"),
            "{what}: {form} -> {masked}"
        );
    }
    // Past U+FFFF, `\\u` is a surrogate pair.
    let emoji = "key-\u{1F511}-0123456789";
    let masker = Masker::with_secrets([emoji]).expect("long enough");
    assert_eq!(masker.mask("[key-\\ud83d\\udd11-0123456789]"), "[***]");
}

#[test]
fn mask_values_masks_results_and_says_which() {
    let masker = Masker::with_secrets([SECRET]).expect("long enough");
    let mut results = BTreeMap::from([
        ("clean".to_string(), "nothing here".to_string()),
        ("token".to_string(), format!("Bearer {SECRET}")),
        ("encoded".to_string(), STANDARD.encode(SECRET)),
        (format!("name-{SECRET}"), SECRET.to_string()),
    ]);
    let masked = masker.mask_values(&mut results);
    assert_eq!(masked, ["encoded", "name-***", "token"]);
    assert_eq!(results["clean"], "nothing here");
    assert_eq!(results["token"], "Bearer ***");
    assert_eq!(results["encoded"], "***");
    assert_eq!(
        results[&format!("name-{SECRET}")],
        "***",
        "keys stay as they are"
    );
    assert!(Masker::new().mask_values(&mut results).is_empty());

    let mut message = format!("failed with {SECRET}");
    assert!(masker.mask_in_place(&mut message));
    assert_eq!(message, "failed with ***");
    assert!(!masker.mask_in_place(&mut message), "nothing left to mask");
}

/// Runs the hostile plugin in `mode` with `value` granted as secret `token`.
async fn hostile_with_secret(mode: &str, value: &str) -> (TaskEnding, Arc<MemorySink>) {
    let sink = Arc::new(MemorySink::default());
    let mut request = TaskRequest::new(format!("hostile-{mode}"));
    request.log = sink.clone();
    // hostile imports wasi:http; a rule no test reaches lets it instantiate.
    request.grants.http = vec![HttpRule::parse("allowed.invalid").expect("rule")];
    for (name, param) in [("mode", mode), ("secret", "token")] {
        request
            .params
            .insert(name.into(), ParamValue::Str(param.into()));
    }
    request.grants.secrets.insert(
        "token".into(),
        SecretValue::checked("token", value).expect("long"),
    );
    let report = common::plugin("hostile").run(request).await;
    (report.ending, sink)
}

#[tokio::test]
async fn a_secret_split_across_two_log_calls_by_a_plugin_is_masked() {
    let value = "s3cr3t/välue-42";
    let (ending, sink) = hostile_with_secret("secret-split", value).await;
    assert_eq!(ending, TaskEnding::Success);
    let lines: Vec<String> = sink.lines().into_iter().map(|l| l.text).collect();
    let cuts = value.chars().count() - 1;
    assert_eq!(lines.len(), 2 * cuts, "{lines:#?}");
    // No run of HOLD_MIN bytes of the value shows, on a line or across a pair of them.
    for pair in lines.chunks(2) {
        let joined = pair.concat();
        for window in value.as_bytes().windows(HOLD_MIN) {
            assert!(
                !joined.as_bytes().windows(HOLD_MIN).any(|w| w == window),
                "{:?} shows in {pair:?}",
                String::from_utf8_lossy(window)
            );
        }
        assert!(
            pair[1].starts_with(MASK) && pair[1].ends_with(" :end"),
            "{pair:?}"
        );
    }
}

#[tokio::test]
async fn hex_and_json_forms_printed_by_a_plugin_are_masked() {
    let value = "s3cr3t/välue-42";
    let (ending, sink) = hostile_with_secret("secret-encoded", value).await;
    assert_eq!(ending, TaskEnding::Success);
    let text = sink.text();
    let hex: String = value.bytes().map(|b| format!("{b:02x}")).collect();
    for form in [
        hex.clone(),
        hex.to_uppercase(),
        json_escaped(value, true, false),
        json_escaped(value, false, false),
    ] {
        assert!(!text.contains(&form), "{form} leaked: {text}");
    }
    assert_eq!(sink.lines().len(), 12, "{text}");
    assert_eq!(text.matches(MASK).count(), 12, "{text}");
}

#[test]
fn base64_inside_a_longer_stream_is_masked_at_every_alignment() {
    let secret = "ghp_0123456789abcdefABCDEF";
    let masker = Masker::with_secrets([secret]).expect("long enough");
    for engine in [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        for before in 0..7usize {
            for after in 0..7usize {
                let mut data = vec![0xA5u8; before];
                data.extend_from_slice(secret.as_bytes());
                data.extend(std::iter::repeat_n(0x5Au8, after));
                let encoded = engine.encode(&data);
                let masked = masker.mask(&encoded);
                assert!(
                    masked.contains(MASK),
                    "offset {before}+{after}: {encoded} -> {masked}"
                );
                // What is left cannot be more than a few characters around the mask
                // (the ones mixing secret and neighbouring bits).
                let left = masked.len() - MASK.len();
                let around = (before * 8).div_ceil(6) + (after * 8).div_ceil(6) + 4;
                assert!(left <= around, "{before}+{after}: {masked}");
            }
        }
    }
}

#[test]
fn a_secret_over_4_kib_is_masked() {
    let secret: String = (0..5000)
        .map(|i| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[i % 36]))
        .collect();
    let masker = Masker::with_secrets([secret.as_str()]).expect("long enough");
    assert_eq!(masker.mask(&format!("[{secret}]")), "[***]");
    assert_eq!(
        masker.mask(&format!("[{}]", STANDARD.encode(&secret))),
        "[***]"
    );
}

#[test]
fn overlapping_secrets_longest_wins() {
    let short = "abcdefgh12";
    let long = "xxabcdefgh12yy";
    let masker = Masker::with_secrets([short, long]).expect("long enough");
    let cases = [
        ("a xxabcdefgh12yy b", "a *** b"),
        ("a abcdefgh12 b", "a *** b"),
        ("xxabcdefgh12 abcdefgh12yy", "xx*** ***yy"),
        ("abcdefgh12abcdefgh12", "******"),
    ];
    for (text, want) in cases {
        assert_eq!(masker.mask(text), want, "{text}");
    }
    // Same in the other order of adding.
    let mut masker = Masker::new();
    assert_eq!(masker.add(long), Ok(true));
    assert_eq!(masker.add(short), Ok(true));
    assert_eq!(masker.add(short), Ok(false), "added once");
    assert_eq!(masker.mask("a xxabcdefgh12yy b"), "a *** b");
    assert_eq!(masker.secret_count(), 2);
}

#[test]
fn unrelated_text_is_left_alone() {
    let masker = Masker::with_secrets([SECRET, "hunter2-hunter2"]).expect("long enough");
    for text in [
        "",
        "nothing to see here",
        "p@ss w0rd/with+every&kind=of",
        "hunter2-hunter",
        "unter2-hunter2",
        "{\"json\": [1, 2, 3]}",
        "%20%2F%2f+++///",
        "aGVsbG8gd29ybGQ=",
    ] {
        let masked = masker.mask(text);
        assert_eq!(masked, text);
        assert!(
            matches!(masked, std::borrow::Cow::Borrowed(_)),
            "no copy when nothing matched"
        );
    }
}

#[test]
fn multi_line_secrets_are_masked_line_by_line() {
    let key = "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf\r\n9Cnzj4p4WGeKLs1Pt8Qu\nend\n-----END KEY-----\n";
    let masker = Masker::with_secrets([key]).expect("long enough");
    // Output is masked line by line; each long line of the secret is masked.
    let lines: Vec<String> = key
        .lines()
        .map(|line| masker.mask(line).into_owned())
        .collect();
    assert_eq!(lines, ["***", "***", "***", "end", "***"]);
    // The whole value, JSON-escaped on one line.
    let json = serde_json::to_string(key).expect("json");
    assert_eq!(masker.mask(&json), "\"***\"");
}

#[test]
fn short_values_are_refused() {
    assert_eq!(Masker::new().add("1234567"), Err(TooShort { chars: 7 }));
    assert!(Masker::with_secrets(["long enough", "short"]).is_err());
    assert_eq!(MIN_SECRET_CHARS, 8);
    let err = SecretValue::checked("API_TOKEN", "abc").expect_err("too short");
    assert_eq!(
        err,
        SecretError::TooShort {
            name: "API_TOKEN".into(),
            chars: 3
        }
    );
    let message = err.to_string();
    assert!(
        message.contains("API_TOKEN") && message.contains('8'),
        "{message}"
    );
    assert!(
        !message.contains("abc"),
        "the value is never in the message"
    );
    let ok = SecretValue::checked("API_TOKEN", "abcdefgh").expect("eight is enough");
    assert_eq!(ok.expose(), "abcdefgh");
    assert!(ok.is_maskable());
    assert!(!SecretValue::new("abc").is_maskable());
}

#[test]
fn variants_are_deduplicated_and_long_enough() {
    let forms = variants("plainalnum123");
    let mut seen: Vec<&str> = forms.iter().map(|f| f.as_str()).collect();
    let total = seen.len();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), total, "no duplicates");
    assert!(forms.iter().all(|f| f.len() >= MIN_SECRET_CHARS));
    // Raw, no JSON/URL variants for plain alphanumerics (they equal the raw value),
    // base64 full forms and the alignment substrings.
    assert!(seen.contains(&"plainalnum123"));
    assert!(seen.contains(&STANDARD.encode("plainalnum123").as_str()));
}

/// 50 secrets in 4 MiB of log lines, raw and encoded: every one is masked, nothing else
/// is. (Throughput is measured by B12 in `cargo xtask bench`, not here.)
#[test]
fn fifty_secrets_are_all_masked_and_nothing_else() {
    let corpus = weft_runtime::masking::corpus::corpus(0x9E37_79B9_7F4A_7C15, 50, 4 << 20);
    let masker =
        Masker::with_secrets(corpus.secrets.iter().map(String::as_str)).expect("long enough");
    let mut masks = 0;
    for line in &corpus.lines {
        let masked = masker.mask(line);
        masks += masked.matches(MASK).count();
        assert!(
            !corpus.secrets.iter().any(|s| masked.contains(s.as_str())),
            "a secret leaked: {masked}"
        );
    }
    assert_eq!(
        masks, corpus.embedded,
        "every embedded secret masked once, nothing else"
    );
}
