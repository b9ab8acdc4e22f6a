//! Diagnostics: every problem found in a pipeline file, with where it is and how to fix it.

use serde::Serialize;
use std::fmt;

/// A position in a source file, both numbers 1-based. `line == 0` means "no position"
/// (used for problems with command-line input, which has no line in the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct Pos {
    /// Line, 1-based.
    pub line: u32,
    /// Column, 1-based, in characters.
    pub column: u32,
}

impl Pos {
    /// A position at `line`, `column` (both 1-based).
    pub fn new(line: u32, column: u32) -> Pos {
        Pos { line, column }
    }
}

/// A value together with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where it starts in the source.
    pub pos: Pos,
}

impl<T> Spanned<T> {
    /// Wraps `value` found at `pos`.
    pub fn new(value: T, pos: Pos) -> Self {
        Spanned { value, pos }
    }
}

/// One problem with a pipeline, reported before anything runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// File name as given to the parser.
    pub file: String,
    /// Line, 1-based (0 when the problem is not in the file, e.g. a `-p` param).
    pub line: u32,
    /// Column, 1-based.
    pub column: u32,
    /// Where in the document, e.g. `spec.tasks[2].runAfter[0]`.
    pub field_path: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when we can tell.
    pub hint: Option<String>,
    /// Stable machine-readable code, e.g. `unknown-field`, `cycle`.
    pub code: &'static str,
    /// In a file of several YAML documents, the one it is in: `document 2 (PipelineRun
    /// build-run)`. `None` for a file of one document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<Box<String>>,
}

impl Diagnostic {
    /// A diagnostic without a hint.
    pub fn new(
        file: &str,
        pos: Pos,
        field_path: impl Into<String>,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            file: file.to_string(),
            line: pos.line,
            column: pos.column,
            field_path: field_path.into(),
            message: message.into(),
            hint: None,
            code,
            document: None,
        }
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds a hint when there is one.
    pub fn with_optional_hint(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: error[{}]: ", self.file, self.code)?;
        } else {
            write!(
                f,
                "{}:{}:{}: error[{}]: ",
                self.file, self.line, self.column, self.code
            )?;
        }
        if let Some(document) = &self.document {
            write!(f, "{document}: ")?;
        }
        if !self.field_path.is_empty() {
            write!(f, "{}: ", self.field_path)?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

/// Stable diagnostic codes. Tools may match on these strings; never rename one.
pub mod codes {
    /// The file is not UTF-8 text.
    pub const ENCODING: &str = "encoding";
    /// The YAML itself does not parse.
    pub const YAML_SYNTAX: &str = "yaml-syntax";
    /// `apiVersion` is not one weft reads.
    pub const API_VERSION: &str = "api-version";
    /// `kind` is not `Pipeline`.
    pub const KIND: &str = "kind";
    /// A field weft does not know.
    pub const UNKNOWN_FIELD: &str = "unknown-field";
    /// A known Tekton field weft does not support.
    pub const UNSUPPORTED_FIELD: &str = "unsupported-field";
    /// A required field is absent.
    pub const MISSING_FIELD: &str = "missing-field";
    /// A value of the wrong type or shape.
    pub const WRONG_TYPE: &str = "wrong-type";
    /// A value outside its allowed set.
    pub const INVALID_VALUE: &str = "invalid-value";
    /// A name that is not allowed (DNS-1123 label for tasks).
    pub const INVALID_NAME: &str = "invalid-name";
    /// Two things with the same name.
    pub const DUPLICATE_NAME: &str = "duplicate-name";
    /// `runAfter` names no task.
    pub const UNKNOWN_TASK: &str = "unknown-task";
    /// `runAfter` names a `finally` task.
    pub const RUN_AFTER_FINALLY: &str = "run-after-finally";
    /// `runAfter` on a `finally` task.
    pub const FINALLY_RUN_AFTER: &str = "finally-run-after";
    /// A dependency cycle.
    pub const CYCLE: &str = "cycle";
    /// `$(...)` that names nothing known.
    pub const UNKNOWN_VARIABLE: &str = "unknown-variable";
    /// `$(` that does not form a variable.
    pub const MALFORMED_VARIABLE: &str = "malformed-variable";
    /// A variable used where it is not allowed (e.g. a finally task's result from a task).
    pub const INVALID_REFERENCE: &str = "invalid-reference";
    /// A param with no value.
    pub const MISSING_PARAM: &str = "missing-param";
    /// A param nobody declared.
    pub const UNKNOWN_PARAM: &str = "unknown-param";
    /// A param value of the wrong type.
    pub const PARAM_TYPE: &str = "param-type";
    /// A param value outside its `enum`.
    pub const PARAM_ENUM: &str = "param-enum";
    /// `taskRef.name` names no known plugin.
    pub const UNKNOWN_PLUGIN: &str = "unknown-plugin";
    /// A result the plugin never produces.
    pub const UNKNOWN_RESULT: &str = "unknown-result";
    /// A workspace nobody declared.
    pub const UNKNOWN_WORKSPACE: &str = "unknown-workspace";
    /// A wait (approval, intervention, gate) asks for something a wait cannot have.
    pub const INVALID_WAIT: &str = "invalid-wait";
    /// A `pipelineRef` (or other reference between documents) names nothing there is.
    pub const UNRESOLVED_REFERENCE: &str = "unresolved-reference";
    /// The documents of a file do not say which one to run (none, or several).
    pub const DOCUMENTS: &str = "documents";
}

/// Edit distance with adjacent transpositions counting as one edit (optimal string
/// alignment), for "did you mean" hints: `biuld` is one typo away from `build`.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows: two back (for transpositions), previous, current.
    let mut before_previous = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (previous[j - 1] + cost)
                .min(previous[j] + 1)
                .min(current[j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before_previous[j - 2] + 1);
            }
            current[j] = best;
        }
        std::mem::swap(&mut before_previous, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// The edit distance of `a` and `b` (as [`edit_distance`]) when it is at most `limit`.
/// Only a band of `2 * limit + 1` cells per row is computed and it stops as soon as no
/// cell of a row is within `limit`, so the cost is O(len(a) * limit), never
/// O(len(a) * len(b)). `cells` counts the cells computed.
fn distance_within(a: &[char], b: &[char], limit: usize, cells: &mut usize) -> Option<usize> {
    if a.len().abs_diff(b.len()) > limit {
        return None;
    }
    // Out-of-band cells read as `limit + 1`: too far whatever follows.
    let far = limit + 1;
    let mut before_previous = vec![far; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).map(|j| j.min(far)).collect();
    let mut current = vec![far; b.len() + 1];
    for i in 1..=a.len() {
        let low = i.saturating_sub(limit).max(1);
        let high = (i + limit).min(b.len());
        current[low - 1] = if low == 1 { i.min(far) } else { far };
        let mut row_best = current[low - 1];
        for j in low..=high {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (previous[j - 1] + cost)
                .min(previous[j] + 1)
                .min(current[j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before_previous[j - 2] + 1);
            }
            current[j] = best.min(far);
            row_best = row_best.min(current[j]);
        }
        if high < b.len() {
            current[high + 1] = far;
        }
        *cells += high + 2 - low;
        if row_best > limit {
            return None;
        }
        std::mem::swap(&mut before_previous, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    Some(previous[b.len()]).filter(|distance| *distance <= limit)
}

/// Did-you-mean hints under a work budget, so that no input makes validation slow: a name
/// longer than [`Suggester::MAX_NAME_CHARS`] gets none (typos are made in short names),
/// one lookup compares at most [`Suggester::MAX_CANDIDATES`] candidates with a bounded
/// edit distance, and once [`Suggester::BUDGET`] cells of that work are spent, later
/// problems get no hint. Use one per validation.
#[derive(Debug, Default)]
pub struct Suggester {
    spent: usize,
}

impl Suggester {
    /// Longest name that gets a hint, in characters.
    pub const MAX_NAME_CHARS: usize = 64;
    /// Candidates one lookup compares, at most (the first ones given).
    pub const MAX_CANDIDATES: usize = 1_000;
    /// Edit-distance cells all lookups of one suggester may compute.
    pub const BUDGET: usize = 8_000_000;

    /// A suggester with its whole budget.
    pub fn new() -> Self {
        Suggester::default()
    }

    /// The closest candidate to `name`, if it is close enough to be a plausible typo (ties
    /// go to the earlier candidate).
    pub fn did_you_mean<'a>(
        &mut self,
        name: &str,
        candidates: impl IntoIterator<Item = &'a str>,
    ) -> Option<String> {
        if self.spent >= Self::BUDGET || name.len() > 4 * Self::MAX_NAME_CHARS {
            return None;
        }
        let name: Vec<char> = name.chars().collect();
        if name.len() > Self::MAX_NAME_CHARS {
            return None;
        }
        let limit = (name.len() / 3).clamp(1, 3);
        let mut best: Option<(usize, &str)> = None;
        let mut candidate_chars = Vec::new();
        for candidate in candidates.into_iter().take(Self::MAX_CANDIDATES) {
            if self.spent >= Self::BUDGET {
                break;
            }
            // A candidate far longer than the name is never within the limit: skip it
            // without reading all of it.
            candidate_chars.clear();
            candidate_chars.extend(candidate.chars().take(name.len() + limit + 1));
            let limit = best.map_or(limit, |(distance, _)| distance.saturating_sub(1));
            if let Some(distance) = distance_within(&name, &candidate_chars, limit, &mut self.spent)
            {
                best = Some((distance, candidate));
                if distance == 0 {
                    break;
                }
            }
        }
        best.map(|(_, candidate)| format!("did you mean `{candidate}`?"))
    }
}

/// The closest candidate to `name`, if it is close enough to be a plausible typo. A
/// one-off [`Suggester`]: bounded work, whatever the input.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    Suggester::new().did_you_mean(name, candidates)
}

/// Longest name quoted whole in a message, in characters.
const SHOWN_MAX_CHARS: usize = 64;

/// `name` as a message quotes it: whole when short, else its start and its length, so
/// that a diagnostic stays readable (and its size bounded) whatever was written.
pub fn shown(name: &str) -> std::borrow::Cow<'_, str> {
    let count = name.chars().count();
    if count <= SHOWN_MAX_CHARS {
        return std::borrow::Cow::Borrowed(name);
    }
    let start: String = name.chars().take(SHOWN_MAX_CHARS / 2).collect();
    std::borrow::Cow::Owned(format!("{start}… ({count} characters)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("runAfter", "runafter"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("retries", "retires"), 1);
        assert_eq!(edit_distance("biuld", "build"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn did_you_mean_finds_close_names_only() {
        assert_eq!(
            did_you_mean("runafter", ["runAfter", "retries"]).as_deref(),
            Some("did you mean `runAfter`?")
        );
        assert_eq!(did_you_mean("zzzzzz", ["runAfter"]), None);
    }

    #[test]
    fn bounded_distance_agrees_with_the_full_one_within_the_limit() {
        let words = [
            "",
            "a",
            "ab",
            "ba",
            "abc",
            "acb",
            "build",
            "biuld",
            "bulid",
            "buidl",
            "rebuild",
            "kitten",
            "sitting",
            "runAfter",
            "runafter",
            "retries",
            "retires",
            "é",
            "éa",
            "aé",
            "abcdef",
            "badcfe",
            "xyz",
            "build-and-test",
            "build-and-tset",
        ];
        for a in words {
            for b in words {
                let full = edit_distance(a, b);
                let (a_chars, b_chars): (Vec<char>, Vec<char>) =
                    (a.chars().collect(), b.chars().collect());
                for limit in 0..=4 {
                    let mut cells = 0;
                    let bounded = distance_within(&a_chars, &b_chars, limit, &mut cells);
                    let expected = (full <= limit).then_some(full);
                    assert_eq!(bounded, expected, "{a:?} {b:?} limit {limit}");
                    assert!(cells <= (a.len() + 1) * (2 * limit + 2), "{a:?} {b:?}");
                }
            }
        }
    }

    #[test]
    fn suggestions_are_bounded_whatever_the_input() {
        let long = "a".repeat(100_000);
        // A long name gets no hint, and computes nothing.
        let mut suggester = Suggester::new();
        assert_eq!(suggester.did_you_mean(&long, [long.as_str()]), None);
        assert_eq!(suggester.spent, 0);
        // A long candidate is read only as far as it could match.
        assert_eq!(suggester.did_you_mean("aaaa", [long.as_str()]), None);
        assert!(suggester.spent < 100, "{}", suggester.spent);
        // At most MAX_CANDIDATES are compared: the match beyond them is not found.
        let far = vec!["zzzzzzzz"; Suggester::MAX_CANDIDATES];
        let mut suggester = Suggester::new();
        assert_eq!(
            suggester.did_you_mean("biuld", far.iter().copied().chain(["build"])),
            None
        );
        assert_eq!(
            suggester.did_you_mean("biuld", far[..10].iter().copied().chain(["build"])),
            Some("did you mean `build`?".into())
        );
        // Once the budget is spent, no more hints.
        let mut suggester = Suggester {
            spent: Suggester::BUDGET,
        };
        assert_eq!(suggester.did_you_mean("biuld", ["build"]), None);
    }

    #[test]
    fn suggestions_prefer_the_closest_then_the_first() {
        assert_eq!(
            did_you_mean("biuld", ["bxild", "build", "biuldx"]).as_deref(),
            Some("did you mean `build`?")
        );
        assert_eq!(
            did_you_mean("abcd", ["abce", "abcf"]).as_deref(),
            Some("did you mean `abce`?")
        );
    }

    #[test]
    fn long_names_are_shown_shortened() {
        assert_eq!(shown("build"), "build");
        let long = "b".repeat(20_000);
        assert_eq!(
            shown(&long),
            format!("{}… (20000 characters)", "b".repeat(32))
        );
    }

    #[test]
    fn display_matches_the_documented_shape() {
        let diagnostic = Diagnostic::new(
            "pipeline.yaml",
            Pos::new(12, 7),
            "spec.tasks[1]",
            codes::CYCLE,
            "cycle a -> b -> a",
        )
        .with_hint("remove one runAfter");
        assert_eq!(
            diagnostic.to_string(),
            "pipeline.yaml:12:7: error[cycle]: spec.tasks[1]: cycle a -> b -> a\n  hint: remove one runAfter"
        );
    }
}
