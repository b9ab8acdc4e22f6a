//! Masking of revealed secrets in a task's output.
//!
//! Once a task reveals a secret, every later line of its log — `weft:plugin/log` lines,
//! stdout and stderr, and the host's own lines about the task — has each of these forms
//! of the value replaced by [`MASK`]:
//!
//! - the raw value;
//! - base64, standard and URL-safe alphabets, with and without padding; and because the
//!   base64 of a secret embedded in a longer base64 stream depends on its alignment (its
//!   offset modulo 3), the *stable inner substrings* of the three alignments, as GitHub
//!   Actions does: the characters that encode only bytes of the secret;
//! - hex of its UTF-8 bytes, lower and upper case (`c3a9` and `C3A9` for `é`), inside
//!   a longer hex dump too, since a byte is always two digits;
//! - URL-encoded (percent-encoding), in the strict RFC 3986 form (everything but
//!   unreserved characters), the JavaScript `encodeURIComponent` form and the Python
//!   `quote` form (keeps `/`), each with upper- and lower-case hex (`%2F`, `%2f`), and
//!   with `+` for spaces (form encoding) when the value has spaces;
//! - JSON-escaped, without the quotes, as the common encoders write it by default:
//!   serde_json, `JSON.stringify`, Jackson and Ruby (only `"`, `\` and control
//!   characters escaped); PHP (`/` as `\/`, and everything past ASCII as `\uXXXX`),
//!   PHP with `JSON_UNESCAPED_UNICODE` (`\/` only); Python `json.dumps` (past ASCII as
//!   `\uXXXX`); Go `encoding/json` (`<`, `>`, `&`, U+2028, U+2029 as `\u003c`...);
//!   Gson (`<`, `>`, `&`, `=`, `'`); .NET `System.Text.Json` (past ASCII, `<`, `>`,
//!   `&`, `'`, `"`, `+` and the backtick, in upper-case hex: `\u003C`...). `\uXXXX`
//!   is UTF-16, a surrogate pair past U+FFFF. For a plain alphanumeric secret most of
//!   these forms equal the raw value, and are kept once;
//! - for a value containing newlines: each of its lines (of at least
//!   [`MIN_SECRET_CHARS`] characters), since output is masked line by line.
//!
//! All forms go into one Aho-Corasick automaton (leftmost-longest: when secrets overlap,
//! the longest match wins), rebuilt when a new secret is revealed; masking a line is one
//! pass over it.
//!
//! **Values split across writes.** stdout/stderr are buffered until a newline, so a value
//! split across several `write` calls inside one line is masked whole. A line longer than
//! the partial-line limit is emitted in pieces, and the cut is placed so that no possible
//! match spans it ([`Masker::safe_prefix_len`]). A value cannot span a newline of the
//! output unless it contains one itself, in which case each of its lines is masked.
//! Consecutive `weft:plugin/log` calls are masked as one text joined at the call
//! boundaries, holding back a line whose end may begin a secret until the next call
//! ([`across_calls`]): a value split across two or more calls is masked, with at most
//! its first [`across_calls::HOLD_MIN`]` - 1` bytes shown at the end of a line.
//!
//! **Short values.** Values under [`MIN_SECRET_CHARS`] characters are refused: masking
//! them would blank out ordinary text and still leak them by elimination.
//!
//! **Values a plugin hands back** (results, messages) are masked with
//! [`Masker::mask_values`] and [`Masker::mask_in_place`], which say whether anything
//! was masked.
//!
//! **Not covered**, because no finite list of forms can be (GitHub Actions documents the
//! same limit): a value transformed in any other way — reversed, upper- or lower-cased,
//! split by other text or by a newline of the output, hex with separators (`de:ad`) or
//! mixed case, base32 or another alphabet, MIME base64 with line breaks, encoded twice
//! (base64 of the hex, URL-encoded JSON), JSON escaping every character as `\uXXXX`,
//! compressed or encrypted; and the parts of a value split across a log call and output
//! on another stream (stdout, stderr) between them. The automaton keeps its own copy of
//! the patterns, which is not zeroized.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

pub mod across_calls;
pub mod corpus;

/// What replaces a secret.
pub const MASK: &str = "***";

/// The shortest secret weft accepts, in characters.
pub const MIN_SECRET_CHARS: usize = 8;

/// Up to this many pattern bytes in all, the masker is a DFA (its table takes about
/// 400 bytes per pattern byte for random secrets, so 10 MiB at most); beyond, a
/// contiguous NFA, about half as fast. 50 secrets of 16 to 48 characters, in all their
/// forms, take some 17 KiB.
const DFA_PATTERN_BYTES: usize = 24 * 1024;

/// A value too short to be a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "a value of {chars} characters is too short to be masked reliably; secrets must have at least {MIN_SECRET_CHARS}"
)]
pub struct TooShort {
    /// Its length in characters.
    pub chars: usize,
}

/// Checks that `value` is long enough to be a secret.
pub fn check_secret(value: &str) -> Result<(), TooShort> {
    let chars = value.chars().count();
    if chars < MIN_SECRET_CHARS {
        Err(TooShort { chars })
    } else {
        Ok(())
    }
}

/// Masks a set of secrets, in all the forms listed in the [module docs](self).
pub struct Masker {
    secrets: Vec<Zeroizing<String>>,
    patterns: Vec<Zeroizing<String>>,
    automaton: Option<AhoCorasick>,
    longest: usize,
    /// Indices of `patterns` in byte order, to tell with a binary search whether a text
    /// is the start of a pattern (see [`Masker::open_match_start`]).
    sorted: Vec<usize>,
    /// The bytes a pattern starts with.
    first_bytes: [bool; 256],
    /// The pairs of bytes a pattern starts with, a bit set indexed by
    /// `first << 8 | second`: most places in a text are ruled out with one look.
    first_pairs: Vec<u64>,
}

impl Default for Masker {
    fn default() -> Masker {
        Masker {
            secrets: Vec::new(),
            patterns: Vec::new(),
            automaton: None,
            longest: 0,
            sorted: Vec::new(),
            first_bytes: [false; 256],
            first_pairs: Vec::new(),
        }
    }
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masker")
            .field("secrets", &self.secrets.len())
            .field("patterns", &self.patterns.len())
            .finish()
    }
}

impl Masker {
    /// A masker with no secrets: masks nothing.
    pub fn new() -> Masker {
        Masker::default()
    }

    /// A masker for all of `secrets`, built once.
    pub fn with_secrets<'a>(
        secrets: impl IntoIterator<Item = &'a str>,
    ) -> Result<Masker, TooShort> {
        let mut masker = Masker::new();
        for secret in secrets {
            masker.insert(secret)?;
        }
        masker.rebuild();
        Ok(masker)
    }

    /// Adds a secret and rebuilds the automaton. `Ok(false)`: it was already there.
    pub fn add(&mut self, secret: &str) -> Result<bool, TooShort> {
        let added = self.insert(secret)?;
        if added {
            self.rebuild();
        }
        Ok(added)
    }

    fn insert(&mut self, secret: &str) -> Result<bool, TooShort> {
        check_secret(secret)?;
        if self.secrets.iter().any(|s| s.as_str() == secret) {
            return Ok(false);
        }
        self.secrets.push(Zeroizing::new(secret.to_string()));
        for variant in variants(secret) {
            if !self.patterns.iter().any(|p| p.as_str() == variant.as_str()) {
                self.patterns.push(variant);
            }
        }
        Ok(true)
    }

    fn rebuild(&mut self) {
        self.longest = self.patterns.iter().map(|p| p.len()).max().unwrap_or(0);
        let mut sorted: Vec<usize> = (0..self.patterns.len()).collect();
        sorted.sort_unstable_by(|&a, &b| {
            self.patterns[a].as_bytes().cmp(self.patterns[b].as_bytes())
        });
        self.sorted = sorted;
        self.first_bytes = [false; 256];
        self.first_pairs = vec![0; (1 << 16) / 64];
        for pattern in &self.patterns {
            if let [first, second, ..] = *pattern.as_bytes() {
                self.first_bytes[usize::from(first)] = true;
                let pair = usize::from(first) << 8 | usize::from(second);
                self.first_pairs[pair / 64] |= 1 << (pair % 64);
            }
        }
        self.automaton = if self.patterns.is_empty() {
            None
        } else {
            let total: usize = self.patterns.iter().map(|p| p.len()).sum();
            // A DFA is the fastest scan but its table grows with the pattern bytes;
            // past the bound, let the crate pick (a contiguous NFA).
            let kind = (total <= DFA_PATTERN_BYTES).then_some(AhoCorasickKind::DFA);
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::LeftmostLongest)
                .kind(kind)
                .build(self.patterns.iter().map(|p| p.as_bytes()))
                .map_err(|err| tracing::error!(error = %err, "cannot build the secret masker"))
                .ok()
        };
    }

    /// Whether no secret was added.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// How many secrets are masked.
    pub fn secret_count(&self) -> usize {
        self.secrets.len()
    }

    /// How many patterns (all forms of all secrets) the automaton holds.
    pub fn pattern_count(&self) -> usize {
        self.patterns.len()
    }

    /// The length in bytes of the longest pattern.
    pub fn longest_pattern(&self) -> usize {
        self.longest
    }

    /// `text` with every form of every secret replaced by [`MASK`]; borrowed when nothing
    /// matched.
    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let Some(automaton) = &self.automaton else {
            return Cow::Borrowed(text);
        };
        let mut matches = automaton.find_iter(text.as_bytes()).peekable();
        if matches.peek().is_none() {
            return Cow::Borrowed(text);
        }
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(text.len());
        let mut last = 0;
        for m in matches {
            out.extend_from_slice(&bytes[last..m.start()]);
            out.extend_from_slice(MASK.as_bytes());
            last = m.end();
        }
        out.extend_from_slice(&bytes[last..]);
        // Patterns are whole UTF-8 strings, so cuts fall on character boundaries; be
        // lenient anyway rather than panic.
        Cow::Owned(
            String::from_utf8(out)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        )
    }

    /// Masks `text` in place; `true` when something was masked.
    pub fn mask_in_place(&self, text: &mut String) -> bool {
        match self.mask(text) {
            Cow::Borrowed(_) => false,
            Cow::Owned(masked) => {
                *text = masked;
                true
            }
        }
    }

    /// Masks every value of `values` in place (results, messages a plugin hands back)
    /// and returns the keys whose value contained a secret, in key order, themselves
    /// masked so they can be logged: a key is the plugin's choice too. The keys of
    /// `values` are left as they are.
    pub fn mask_values(&self, values: &mut BTreeMap<String, String>) -> Vec<String> {
        let mut masked = Vec::new();
        if self.automaton.is_none() {
            return masked;
        }
        for (key, value) in values.iter_mut() {
            if self.mask_in_place(value) {
                masked.push(self.mask(key).into_owned());
            }
        }
        masked
    }

    /// The matches in `text[from..]`, leftmost-longest, in order.
    pub(crate) fn find_matches<'a>(
        &'a self,
        text: &'a str,
        from: usize,
    ) -> impl Iterator<Item = Range<usize>> + 'a {
        let from = from.min(text.len());
        self.automaton.iter().flat_map(move |automaton| {
            automaton
                .find_iter(aho_corasick::Input::new(text).span(from..text.len()))
                .map(|m| m.range())
        })
    }

    /// The first offset `s >= from` such that `text[s..]` is a proper prefix of a
    /// pattern: a match that text still to come could complete. `None` when the end
    /// of `text` cannot be the start of a secret.
    pub(crate) fn open_match_start(&self, text: &[u8], from: usize) -> Option<usize> {
        if self.longest == 0 {
            return None;
        }
        let from = from.max(text.len().saturating_sub(self.longest - 1));
        (from..text.len()).find(|&start| {
            let first = text[start];
            let may_start = match text.get(start + 1) {
                Some(&second) => {
                    let pair = usize::from(first) << 8 | usize::from(second);
                    self.first_pairs
                        .get(pair / 64)
                        .is_some_and(|bits| bits >> (pair % 64) & 1 == 1)
                }
                None => self.first_bytes[usize::from(first)],
            };
            may_start && self.is_proper_prefix(&text[start..])
        })
    }

    /// Whether a pattern longer than `text` starts with it.
    fn is_proper_prefix(&self, text: &[u8]) -> bool {
        let pattern = |i: usize| self.patterns[self.sorted[i]].as_bytes();
        // Patterns starting with `text` sort together, from the first one not below it;
        // `text` itself, if it is a pattern, comes first.
        let mut at = self
            .sorted
            .partition_point(|&p| self.patterns[p].as_bytes() < text);
        if at < self.sorted.len() && pattern(at) == text {
            at += 1;
        }
        at < self.sorted.len() && pattern(at).starts_with(text)
    }

    /// How many leading bytes of `pending` (unterminated output that must be emitted
    /// before its newline arrives) can be masked and emitted now, leaving the rest for
    /// later, so that no secret is cut in two: no match that might still complete
    /// starts in the prefix, no complete match spans the cut, and the cut is on a UTF-8
    /// character boundary. It is `pending.len()` when there are no secrets.
    pub fn safe_prefix_len(&self, pending: &[u8]) -> usize {
        let Some(automaton) = &self.automaton else {
            return pending.len();
        };
        // A match that is not complete yet starts after `len - longest`.
        let mut cut = pending.len().saturating_sub(self.longest.saturating_sub(1));
        while cut > 0 && cut < pending.len() && (pending[cut] & 0xC0) == 0x80 {
            cut -= 1;
        }
        for m in automaton.find_iter(pending) {
            if m.start() >= cut {
                break;
            }
            if m.end() > cut {
                // A complete match spanning the cut: emit it whole.
                cut = m.end();
            }
        }
        cut
    }
}

/// Every form of `secret` that is masked (see the [module docs](self)), longest first,
/// without duplicates. Forms shorter than [`MIN_SECRET_CHARS`] bytes are left out.
pub fn variants(secret: &str) -> Vec<Zeroizing<String>> {
    let mut out: Vec<Zeroizing<String>> = Vec::new();
    let mut push = |form: String| {
        let form = Zeroizing::new(form);
        if form.len() >= MIN_SECRET_CHARS && !out.iter().any(|f| f.as_str() == form.as_str()) {
            out.push(form);
        }
    };
    push(secret.to_string());
    if secret.contains('\n') {
        for line in secret.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.chars().count() >= MIN_SECRET_CHARS {
                push(line.to_string());
            }
        }
    }
    let bytes = secret.as_bytes();
    for engine in [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        push(engine.encode(bytes));
    }
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        for offset in 0..3usize {
            push(aligned_base64(engine, bytes, offset));
        }
    }
    for keep in [
        unreserved as fn(u8) -> bool,
        js_component_keeps,
        python_quote_keeps,
    ] {
        for upper in [true, false] {
            push(percent_encode(bytes, keep, upper, false));
            if bytes.contains(&b' ') {
                push(percent_encode(bytes, keep, upper, true));
            }
        }
    }
    push(hex::encode(bytes));
    push(hex::encode_upper(bytes));
    for style in &JSON_STYLES {
        push(json_escape(secret, style));
    }
    out.sort_by_key(|f| std::cmp::Reverse(f.len()));
    out
}

/// How one JSON encoder writes a string's characters (see the [module docs](self)).
struct JsonStyle {
    /// `/` as `\/`.
    slash: bool,
    /// Every character from U+0080 on as `\uXXXX` (UTF-16, so a surrogate pair past
    /// U+FFFF).
    non_ascii: bool,
    /// Further characters always written as `\uXXXX`, before any shorter escape.
    extra: &'static [char],
    /// Upper-case hex digits in `\uXXXX`.
    upper: bool,
}

/// The encoders whose output is masked, by their default settings.
const JSON_STYLES: [JsonStyle; 7] = [
    // serde_json, JavaScript's JSON.stringify, Jackson, Ruby.
    JsonStyle {
        slash: false,
        non_ascii: false,
        extra: &[],
        upper: false,
    },
    // PHP json_encode with JSON_UNESCAPED_UNICODE, json-simple.
    JsonStyle {
        slash: true,
        non_ascii: false,
        extra: &[],
        upper: false,
    },
    // PHP json_encode.
    JsonStyle {
        slash: true,
        non_ascii: true,
        extra: &[],
        upper: false,
    },
    // Python json.dumps.
    JsonStyle {
        slash: false,
        non_ascii: true,
        extra: &[],
        upper: false,
    },
    // Go encoding/json (HTML-safe).
    JsonStyle {
        slash: false,
        non_ascii: false,
        extra: &['<', '>', '&', '\u{2028}', '\u{2029}'],
        upper: false,
    },
    // Gson (HTML-safe).
    JsonStyle {
        slash: false,
        non_ascii: false,
        extra: &['<', '>', '&', '=', '\''],
        upper: false,
    },
    // .NET System.Text.Json (its default encoder).
    JsonStyle {
        slash: false,
        non_ascii: true,
        extra: &['<', '>', '&', '\'', '"', '+', '`'],
        upper: true,
    },
];

/// `text` as the inside of a JSON string written in `style`.
fn json_escape(text: &str, style: &JsonStyle) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if style.extra.contains(&c) => push_unicode_escape(&mut out, c, style.upper),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' if style.slash => out.push_str("\\/"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c < ' ' || (style.non_ascii && !c.is_ascii()) => {
                push_unicode_escape(&mut out, c, style.upper);
            }
            c => out.push(c),
        }
    }
    out
}

/// Appends `c` as `\uXXXX` (two of them, a surrogate pair, past U+FFFF).
fn push_unicode_escape(out: &mut String, c: char, upper: bool) {
    const UPPER: &[u8; 16] = b"0123456789ABCDEF";
    const LOWER: &[u8; 16] = b"0123456789abcdef";
    let hex = if upper { UPPER } else { LOWER };
    let mut units = [0u16; 2];
    for unit in c.encode_utf16(&mut units) {
        out.push_str("\\u");
        for shift in [12, 8, 4, 0] {
            out.push(char::from(hex[usize::from((*unit >> shift) & 0xf)]));
        }
    }
}

/// The characters of the base64 of `bytes` placed `offset` bytes (0..3) into a longer
/// stream that depend only on `bytes`.
fn aligned_base64(engine: &base64::engine::GeneralPurpose, bytes: &[u8], offset: usize) -> String {
    let mut shifted = vec![0u8; offset];
    shifted.extend_from_slice(bytes);
    let encoded = Zeroizing::new(engine.encode(&shifted));
    // Character i covers bits [6i, 6i + 6); the prefix covers bits [0, 8 * offset).
    let start = (8 * offset).div_ceil(6);
    // Characters past the last whole 6 bits also depend on what follows.
    let end = (8 * shifted.len()) / 6;
    shifted.fill(0);
    encoded.get(start..end).unwrap_or_default().to_string()
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn js_component_keeps(b: u8) -> bool {
    unreserved(b) || matches!(b, b'!' | b'*' | b'\'' | b'(' | b')')
}

fn python_quote_keeps(b: u8) -> bool {
    unreserved(b) || b == b'/'
}

fn percent_encode(bytes: &[u8], keep: fn(u8) -> bool, upper: bool, plus: bool) -> String {
    const UPPER: &[u8; 16] = b"0123456789ABCDEF";
    const LOWER: &[u8; 16] = b"0123456789abcdef";
    let hex = if upper { UPPER } else { LOWER };
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if keep(b) {
            out.push(char::from(b));
        } else if plus && b == b' ' {
            out.push('+');
        } else {
            out.push('%');
            out.push(char::from(hex[usize::from(b >> 4)]));
            out.push(char::from(hex[usize::from(b & 0x0f)]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::capabilities::log::{LogLevel, LogStream, MemorySink, SharedOutput};

    const SECRET: &str = "s3cr3t-T0ken/with+chars";

    fn output() -> (SharedOutput, Arc<MemorySink>) {
        let sink = Arc::new(MemorySink::default());
        (SharedOutput::new(sink.clone(), 64 << 20), sink)
    }

    fn texts(sink: &MemorySink) -> Vec<String> {
        sink.lines().into_iter().map(|l| l.text).collect()
    }

    #[test]
    fn a_secret_split_across_writes_in_one_line_is_masked() {
        let (out, sink) = output();
        out.add_mask(SECRET).expect("long enough");
        let bytes = format!("token={SECRET} done\nnext line\n");
        // Every split point, one write each side.
        for cut in 0..bytes.len() {
            let (a, b) = bytes.as_bytes().split_at(cut);
            out.write_stream(LogStream::Stdout, a).expect("budget");
            out.write_stream(LogStream::Stdout, b).expect("budget");
        }
        let lines = texts(&sink);
        assert_eq!(lines.len(), 2 * bytes.len());
        for pair in lines.chunks(2) {
            assert_eq!(pair, ["token=*** done", "next line"]);
        }
    }

    #[test]
    fn a_secret_written_byte_by_byte_is_masked() {
        let (out, sink) = output();
        out.add_mask(SECRET).expect("long enough");
        for b in format!("<{SECRET}>\n").bytes() {
            out.write_stream(LogStream::Stderr, &[b]).expect("budget");
        }
        assert_eq!(texts(&sink), ["<***>"]);
        assert_eq!(sink.lines()[0].level, LogLevel::Warn);
    }

    #[test]
    fn a_secret_over_4_kib_is_masked_through_the_capture() {
        let (out, sink) = output();
        let secret: String = (0..6000)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        out.add_mask(&secret).expect("long enough");
        let text = format!("begin {secret} end\n");
        for chunk in text.as_bytes().chunks(1000) {
            out.write_stream(LogStream::Stdout, chunk).expect("budget");
        }
        assert_eq!(texts(&sink), ["begin *** end"]);
    }

    #[test]
    fn an_overlong_line_is_cut_outside_secrets() {
        let (out, sink) = output();
        out.add_mask(SECRET).expect("long enough");
        // Unterminated output far over the partial-line limit, with the secret at every
        // alignment relative to the write boundaries.
        let mut text = String::new();
        for i in 0..2000 {
            text.push_str(&"x".repeat(i % 37));
            text.push_str(SECRET);
        }
        for chunk in text.as_bytes().chunks(1531) {
            out.write_stream(LogStream::Stdout, chunk).expect("budget");
        }
        out.flush_partials();
        let joined = texts(&sink).concat();
        assert!(!joined.contains(SECRET));
        assert_eq!(joined.matches(MASK).count(), 2000);
        assert!(sink.lines().len() > 1, "the line was cut");
    }

    #[test]
    fn log_interface_and_host_lines_are_masked() {
        let (out, sink) = output();
        out.add_mask(SECRET).expect("long enough");
        out.log_call(LogLevel::Info, &format!("a {SECRET} b"))
            .expect("budget");
        out.host_line(
            LogLevel::Error,
            format!("HTTP request to http://{SECRET}.example:80 denied"),
        );
        assert_eq!(
            texts(&sink),
            ["a *** b", "HTTP request to http://***.example:80 denied"]
        );
    }

    #[test]
    fn a_secret_split_across_log_calls_is_masked() {
        let (out, sink) = output();
        out.add_mask(SECRET).expect("long enough");
        let (a, b) = SECRET.split_at(9);
        out.log_call(LogLevel::Info, &format!("token: {a}"))
            .expect("budget");
        assert!(sink.lines().is_empty(), "the possible start is held back");
        out.log_call(LogLevel::Warn, &format!("{b} done\nnext"))
            .expect("budget");
        out.flush_partials();
        let lines = sink.lines();
        let got: Vec<(LogLevel, &str)> = lines.iter().map(|l| (l.level, l.text.as_str())).collect();
        assert_eq!(
            got,
            [
                (LogLevel::Info, "token: ***"),
                (LogLevel::Warn, "*** done"),
                (LogLevel::Warn, "next")
            ]
        );
    }

    #[test]
    fn held_log_lines_keep_their_place_before_other_output() {
        let (out, sink) = output();
        out.add_mask(SECRET).expect("long enough");
        out.log_call(LogLevel::Info, "starts like s3cr3t")
            .expect("budget");
        out.write_stream(LogStream::Stdout, b"from stdout\n")
            .expect("budget");
        out.log_call(LogLevel::Info, "again s3cr3t")
            .expect("budget");
        out.host_line(LogLevel::Warn, "from the host".into());
        assert_eq!(
            texts(&sink),
            [
                "starts like s3cr3t",
                "from stdout",
                "again s3cr3t",
                "from the host"
            ]
        );
    }

    #[test]
    fn open_match_start_finds_where_a_secret_may_begin() {
        let masker = Masker::with_secrets([SECRET]).expect("long enough");
        let at = |text: &str| masker.open_match_start(text.as_bytes(), 0);
        assert_eq!(at("abc s3cr3t-T0"), Some(4));
        assert_eq!(at("abc s"), Some(4));
        assert_eq!(at("ab!"), None);
        assert_eq!(at("abc"), Some(2), "the base64 form starts with `c`");
        // A whole secret is not open, nothing longer starts with it; but its last `s`
        // may begin it again.
        assert_eq!(at(SECRET), Some(SECRET.len() - 1));
        assert_eq!(masker.open_match_start(b"s3cr3t", 1), None, "from 1 on");
        assert_eq!(Masker::new().open_match_start(b"s3cr3t", 0), None);
        // The hex form is a pattern too.
        assert_eq!(at(&format!("x {}", &hex::encode(SECRET)[..7])), Some(2));
    }

    #[test]
    fn short_values_are_refused_and_not_masked() {
        let (out, sink) = output();
        assert_eq!(out.add_mask("1234567"), Err(TooShort { chars: 7 }));
        out.log_call(LogLevel::Info, "1234567").expect("budget");
        assert_eq!(texts(&sink), ["1234567"]);
        // Characters, not bytes.
        assert!(check_secret("ééééééé").is_err());
        assert!(check_secret("éééééééé").is_ok());
    }

    #[test]
    fn safe_prefix_keeps_a_possible_secret_start() {
        let masker = Masker::with_secrets([SECRET]).expect("long enough");
        let longest = masker.longest_pattern();
        let pending = format!("{}{}", "y".repeat(100), &SECRET[..5]);
        let cut = masker.safe_prefix_len(pending.as_bytes());
        assert!(cut <= 100, "{cut}");
        assert_eq!(cut, pending.len() + 1 - longest);
        // A complete match across the naive cut is emitted whole.
        let pending = format!("{}{SECRET}", "y".repeat(100));
        let cut = masker.safe_prefix_len(pending.as_bytes());
        assert!(cut == pending.len() || cut <= 100, "{cut}");
        assert_eq!(Masker::new().safe_prefix_len(b"abc"), 3);
    }
}
