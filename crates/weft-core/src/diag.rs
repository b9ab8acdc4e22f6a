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

/// The closest candidate to `name`, if it is close enough to be a plausible typo.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| format!("did you mean `{candidate}`?"))
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
