//! Masking a value split across consecutive `weft:plugin/log` calls.
//!
//! Each log call is emitted as lines, so a plugin that streams text through the log in
//! chunks can cut a secret in two: `log("token: s3cr")`, `log("3t-value")`. Masking each
//! call alone would show both halves. The calls are therefore masked as one text, joined
//! without a separator at each call boundary (a newline *inside* a call ends its line for
//! good, as for stdout):
//!
//! - when the end of a call's last line could be the start of a secret still to come
//!   (`Masker::open_match_start`) and that start is at least [`HOLD_MIN`] bytes long,
//!   the line is **held back**, not emitted, until the next call shows whether the value
//!   completes; then both parts are masked. A held line is emitted, masked, as soon as
//!   it can no longer be part of a secret, or before any other line of the task (so the
//!   log keeps its order), or at the end of the task;
//! - when that start is shorter than [`HOLD_MIN`] bytes, the line is emitted at once (a
//!   line ending in a letter that happens to begin a secret is common, and holding every
//!   one would delay most of the log) and those few bytes are kept: if the next call
//!   completes the value, the rest of it is masked there.
//!
//! So no secret is ever visible across two (or more) consecutive log calls: at most the
//! first `HOLD_MIN - 1` bytes of one of its forms can end a line, followed by `***`.
//! A held line is delayed, never lost or changed otherwise; nothing is held when no
//! secret was revealed.

use std::borrow::Cow;
use std::ops::Range;

use super::{MASK, Masker};

/// The length from which the possible start of a secret at the end of a log call holds
/// the line back. Shorter starts are emitted (see the module docs).
pub const HOLD_MIN: usize = 4;

/// The log calls of one task, joined at their boundaries for masking. `T` tags each
/// line (its level).
#[derive(Debug)]
pub(crate) struct CallJoiner<T> {
    /// The end of the last emitted line when it may begin a secret: fewer than
    /// [`HOLD_MIN`] bytes, already shown. Only kept when nothing is held.
    tail: String,
    /// Lines not emitted yet, oldest first.
    held: Vec<(T, String)>,
    /// How many leading bytes of the held text belong to a match already decided.
    carry: usize,
}

impl<T> Default for CallJoiner<T> {
    fn default() -> Self {
        CallJoiner {
            tail: String::new(),
            held: Vec::new(),
            carry: 0,
        }
    }
}

impl<T> CallJoiner<T> {
    /// Takes one line of a log call; `last` when it is the call's last line (the next
    /// call may continue it). Returns the lines that can be emitted now, masked.
    pub(crate) fn push(
        &mut self,
        masker: &Masker,
        tag: T,
        line: &str,
        last: bool,
    ) -> Vec<(T, String)> {
        if masker.is_empty() && self.held.is_empty() {
            self.tail.clear();
            return vec![(tag, line.to_string())];
        }
        self.held.push((tag, line.to_string()));
        self.settle(masker, last)
    }

    /// Emits everything held, masked, and forgets the tail: what comes next is not the
    /// continuation of the last call (other output came between, or the task ended).
    pub(crate) fn flush(&mut self, masker: &Masker) -> Vec<(T, String)> {
        let lines = if self.held.is_empty() {
            Vec::new()
        } else {
            self.settle(masker, false)
        };
        self.tail.clear();
        lines
    }

    /// Decides which held lines can go, and what in them is masked. `open`: the text may
    /// continue in the next call.
    fn settle(&mut self, masker: &Masker, open: bool) -> Vec<(T, String)> {
        // The tail and a carried match never coexist: a carry means lines are held, and
        // the tail is only kept when none are.
        debug_assert!(self.tail.is_empty() || self.carry == 0);
        let base = self.tail.len();
        // Most of the time one line is looked at alone: no copy then.
        let joined: Cow<'_, str> = match self.held.as_slice() {
            [(_, line)] if base == 0 => Cow::Borrowed(line),
            held => {
                let mut joined = self.tail.clone();
                for (_, line) in held {
                    joined.push_str(line);
                }
                Cow::Owned(joined)
            }
        };
        let len = joined.len();
        let decided = base + self.carry;
        // Past a carried match, or from the tail on: a secret may begin in the tail.
        let from = if self.carry > 0 { decided } else { 0 };
        let open_at = if open {
            masker.open_match_start(joined.as_bytes(), from)
        } else {
            None
        };
        // Hold from where a secret may begin, unless that is only a few bytes.
        let (cut, new_tail) = match open_at {
            Some(start) if len - start >= HOLD_MIN => (start, None),
            Some(start) => (len, joined.get(start..).map(str::to_string)),
            None => (len, None),
        };
        // Matches starting before the cut are final: a longer or earlier one would need
        // the text from its start to be the beginning of a pattern, which only holds
        // from the cut on.
        let mut masked: Vec<Range<usize>> = Vec::new();
        if self.carry > 0 {
            masked.push(base..decided);
        }
        masked.extend(
            masker
                .find_matches(&joined, from)
                .take_while(|m| m.start < cut),
        );

        let mut out = Vec::new();
        let mut start = base;
        let mut emitted = 0;
        for (_, line) in &self.held {
            let end = start + line.len();
            if end > cut {
                break;
            }
            emitted += 1;
            start = end;
        }
        if emitted == 0 {
            return out;
        }
        drop(joined);
        let mut line_start = base;
        for (tag, line) in self.held.drain(..emitted) {
            let end = line_start + line.len();
            let text = if masked.iter().any(|m| m.start < end && m.end > line_start) {
                mask_ranges(&line, line_start, &masked)
            } else {
                line
            };
            line_start = end;
            out.push((tag, text));
        }
        // A final match running on into the lines still held is masked there too.
        self.carry = masked
            .iter()
            .filter(|m| m.start < start)
            .map(|m| m.end.saturating_sub(start))
            .max()
            .unwrap_or(0);
        self.tail = new_tail.unwrap_or_default();
        out
    }
}

/// `line`, which starts at `offset` in the joined text, with the parts of it inside
/// `ranges` (offsets in the joined text, in order) replaced by [`MASK`].
fn mask_ranges(line: &str, offset: usize, ranges: &[Range<usize>]) -> String {
    let end = offset + line.len();
    let mut out = String::with_capacity(line.len());
    let mut last = 0;
    for range in ranges {
        let from = range.start.max(offset).saturating_sub(offset);
        let to = range.end.min(end).saturating_sub(offset);
        if from >= to || from < last {
            continue;
        }
        // Matches and line ends fall on character boundaries; be lenient anyway.
        out.push_str(line.get(last..from).unwrap_or_default());
        out.push_str(MASK);
        last = to;
    }
    out.push_str(line.get(last..).unwrap_or_default());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cr3t-T0ken/with+chars";

    fn masker() -> Masker {
        Masker::with_secrets([SECRET]).expect("long enough")
    }

    /// Runs whole calls (each may hold newlines) through a joiner, then flushes.
    fn run(masker: &Masker, calls: &[&str]) -> Vec<String> {
        let mut joiner = CallJoiner::default();
        let mut out = Vec::new();
        for call in calls {
            let lines: Vec<&str> = call.split('\n').collect();
            for (i, line) in lines.iter().enumerate() {
                out.extend(joiner.push(masker, (), line, i + 1 == lines.len()));
            }
        }
        out.extend(joiner.flush(masker));
        out.into_iter().map(|(_, text)| text).collect()
    }

    /// No run of `HOLD_MIN` bytes of the secret shows in `lines`, even read as one
    /// text (the way the value was cut).
    fn assert_hidden(lines: &[String], context: &str) {
        let joined = lines.concat();
        for window in SECRET.as_bytes().windows(HOLD_MIN) {
            let window = std::str::from_utf8(window).expect("ascii");
            assert!(
                !joined.contains(window),
                "{context}: {window:?} in {lines:?}"
            );
        }
    }

    #[test]
    fn a_secret_split_across_two_calls_is_masked_at_every_cut() {
        let masker = masker();
        for cut in 1..SECRET.len() {
            let (a, b) = SECRET.split_at(cut);
            let first = format!("token: {a}");
            let second = format!("{b} done");
            let lines = run(&masker, &[&first, &second]);
            assert_eq!(lines.len(), 2, "cut {cut}: {lines:?}");
            assert_hidden(&lines, &format!("cut {cut}"));
            assert!(lines[1].starts_with(MASK), "cut {cut}: {lines:?}");
            assert!(lines[1].ends_with(" done"), "cut {cut}: {lines:?}");
            if cut >= HOLD_MIN {
                assert_eq!(lines[0], "token: ***", "cut {cut}");
            } else {
                assert_eq!(lines[0], first, "cut {cut}: a short start is shown");
            }
        }
    }

    #[test]
    fn a_secret_split_across_many_calls_is_masked() {
        let masker = masker();
        for size in 1..6 {
            let mut calls: Vec<String> = vec!["begin ".into()];
            calls.extend(
                SECRET
                    .as_bytes()
                    .chunks(size)
                    .map(|c| String::from_utf8_lossy(c).into_owned()),
            );
            calls.push(" end".into());
            let calls: Vec<&str> = calls.iter().map(String::as_str).collect();
            let lines = run(&masker, &calls);
            assert_eq!(lines.len(), calls.len(), "one line per call");
            assert_hidden(&lines, &format!("chunks of {size}"));
        }
    }

    #[test]
    fn a_newline_inside_a_call_ends_the_line() {
        let masker = masker();
        let (a, b) = SECRET.split_at(10);
        // The halves are on two lines of one call: not a split value, left alone.
        let text = format!("{a}\n{b}");
        assert_eq!(run(&masker, &[&text]), [a, b]);
        // The first line of a call continues the previous call's last line.
        let lines = run(&masker, &[&format!("x\n{a}"), &format!("{b}\ny")]);
        assert_eq!(lines, ["x", "***", "***", "y"]);
    }

    #[test]
    fn whole_secrets_and_unrelated_lines_pass_at_once() {
        let masker = masker();
        let mut joiner = CallJoiner::default();
        let out = joiner.push(&masker, 1, &format!("a {SECRET} b"), true);
        assert_eq!(out, [(1, "a *** b".to_string())]);
        let out = joiner.push(&masker, 2, "nothing here", true);
        assert_eq!(out, [(2, "nothing here".to_string())]);
        // A held line keeps its tag and order, and goes at the next call.
        assert!(joiner.push(&masker, 3, "s3cr3t", true).is_empty());
        let out = joiner.push(&masker, 4, "unrelated", true);
        assert_eq!(
            out,
            [(3, "s3cr3t".to_string()), (4, "unrelated".to_string())]
        );
        // Or at a flush.
        assert!(joiner.push(&masker, 5, "x s3cr3t-T0", true).is_empty());
        assert_eq!(joiner.flush(&masker), [(5, "x s3cr3t-T0".to_string())]);
        assert!(joiner.flush(&masker).is_empty());
    }

    #[test]
    fn a_flush_between_calls_ends_the_value() {
        let masker = masker();
        let mut joiner = CallJoiner::default();
        let (a, b) = SECRET.split_at(2);
        assert_eq!(joiner.push(&masker, (), a, true), [((), a.to_string())]);
        assert!(joiner.flush(&masker).is_empty());
        assert_eq!(joiner.push(&masker, (), b, true), [((), b.to_string())]);
    }

    #[test]
    fn nothing_is_held_without_secrets() {
        let masker = Masker::new();
        let mut joiner = CallJoiner::default();
        assert_eq!(
            joiner.push(&masker, (), "s3cr", true),
            [((), "s3cr".into())]
        );
    }

    #[test]
    fn mask_ranges_cuts_on_the_line() {
        assert_eq!(mask_ranges("abcdef", 10, &[8..12, 14..20]), "***cd***");
        assert_eq!(mask_ranges("abcdef", 10, &[0..5, 20..30]), "abcdef");
        let all = 0..50;
        assert_eq!(mask_ranges("", 10, std::slice::from_ref(&all)), "");
    }
}
