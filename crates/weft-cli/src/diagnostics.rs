//! Rendering validation problems for people (miette, with the source snippet) and for
//! tools (JSON).
//!
//! Rendering is linear in the file and the number of problems: line starts are indexed
//! once, positions are found in one forward walk, and miette only ever sees a small
//! excerpt (the problem's line and its neighbours, long lines cut to a window), never the
//! whole file, which it would rescan for every problem.

use miette::{
    GraphicalReportHandler, GraphicalTheme, MietteError, MietteSpanContents, SourceCode,
    SourceSpan, SpanContents,
};
use weft_core::Diagnostic;

/// Problems drawn with their source snippet; later ones get only their one-line form.
const MAX_SNIPPETS: usize = 100;

/// Bytes of a long line shown on each side of the problem.
const HALF_WINDOW: usize = 60;

/// Longest underline, in bytes.
const MAX_UNDERLINE: usize = 40;

/// One weft diagnostic as miette sees it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct Rendered {
    message: String,
    code: String,
    help: Option<String>,
    src: Excerpt,
    span: SourceSpan,
}

impl miette::Diagnostic for Rendered {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(&self.code))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.src)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        Some(Box::new(std::iter::once(
            miette::LabeledSpan::new_with_span(Some("here".to_string()), self.span),
        )))
    }
}

/// A few lines of the file around one problem, as miette reads them: spans are offsets in
/// `text`; line numbers and the problem line's columns are shifted back to the file's.
#[derive(Debug)]
struct Excerpt {
    name: String,
    text: String,
    /// The file's line (0-based) of the excerpt's first line.
    first_line: usize,
    /// The problem's line within the excerpt (0-based).
    problem_line: usize,
    /// Bytes the problem line lost at its start when it was cut (minus the `…` marker).
    column_shift: usize,
}

impl SourceCode for Excerpt {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let inner = self
            .text
            .read_span(span, context_lines_before, context_lines_after)?;
        let column = if inner.line() == self.problem_line {
            inner.column() + self.column_shift
        } else {
            inner.column()
        };
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            *inner.span(),
            inner.line() + self.first_line,
            column,
            inner.line_count(),
        )))
    }
}

/// Where each line of a file starts.
struct LineIndex<'s> {
    source: &'s str,
    starts: Vec<usize>,
}

impl<'s> LineIndex<'s> {
    fn new(source: &'s str) -> Self {
        let starts = std::iter::once(0)
            .chain(source.match_indices('\n').map(|(at, _)| at + 1))
            .collect();
        LineIndex { source, starts }
    }

    /// The text of a 0-based line, without its line break.
    fn line(&self, index: usize) -> &'s str {
        let start = self.starts[index];
        let end = self
            .starts
            .get(index + 1)
            .map_or(self.source.len(), |next| next - 1);
        self.source[start..end].trim_end_matches('\r')
    }

    /// Byte offsets of 1-based (line, column) positions, columns counting characters; a
    /// position past its line's end clamps to the end, past the file's to its end. One
    /// forward walk over the positions in order: linear, however many share a long line.
    fn offsets(&self, positions: &[(u32, u32)]) -> Vec<usize> {
        let mut order: Vec<usize> = (0..positions.len()).collect();
        order.sort_by_key(|&i| positions[i]);
        let mut offsets = vec![0; positions.len()];
        // Where the walk is: line (0-based), column (0-based, in characters), byte offset.
        let (mut line_at, mut column_at, mut byte_at) = (usize::MAX, 0usize, 0usize);
        for i in order {
            let (line, column) = positions[i];
            let line = (line.max(1) - 1) as usize;
            if line >= self.starts.len() {
                offsets[i] = self.source.len();
                continue;
            }
            if line_at != line {
                (line_at, column_at, byte_at) = (line, 0, self.starts[line]);
            }
            let end = self.starts[line] + self.line(line).len();
            let want = column.saturating_sub(1) as usize;
            let mut chars = self.source[byte_at..end].chars();
            while column_at < want {
                let Some(c) = chars.next() else { break };
                column_at += 1;
                byte_at += c.len_utf8();
            }
            offsets[i] = byte_at;
        }
        offsets
    }

    /// The excerpt miette draws for a problem at byte `offset`: its line and one on each
    /// side, each cut to the same window of bytes around the problem when long.
    fn excerpt(&self, name: &str, offset: usize) -> (Excerpt, SourceSpan) {
        let line = self.starts.partition_point(|start| *start <= offset) - 1;
        let first = line.saturating_sub(1);
        let last = (line + 1).min(self.starts.len() - 1);
        let column = offset - self.starts[line];
        let from = column.saturating_sub(HALF_WINDOW);
        let to = column + HALF_WINDOW;
        let mut text = String::new();
        let (mut span_start, mut column_shift) = (0, 0);
        for index in first..=last {
            let whole = self.line(index);
            // Short lines are shown whole; long ones cut to the window.
            let (start, end) = if whole.len() <= 2 * HALF_WINDOW {
                (0, whole.len())
            } else {
                (
                    whole.floor_char_boundary(from.min(whole.len())),
                    whole.ceil_char_boundary(to.min(whole.len())),
                )
            };
            if index > first {
                text.push('\n');
            }
            if start > 0 {
                text.push('…');
            }
            if index == line {
                span_start = text.len() + (column.min(whole.len()) - start);
                column_shift = start.saturating_sub('…'.len_utf8());
            }
            text.push_str(&whole[start..end]);
            if end < whole.len() {
                text.push('…');
            }
        }
        // Underline the token at the problem: up to a delimiter, the window's end, or a cap.
        let rest = &text[span_start..];
        let token = rest
            .find(['\n', ' ', ':', ',', '…'])
            .unwrap_or(rest.len())
            .min(MAX_UNDERLINE);
        let token = rest.floor_char_boundary(token).max(1).min(rest.len());
        let excerpt = Excerpt {
            name: name.to_string(),
            text,
            first_line: first,
            problem_line: line - first,
            column_shift,
        };
        (excerpt, (span_start, token).into())
    }
}

/// Renders every diagnostic (the first [`MAX_SNIPPETS`] with a snippet); `color` when
/// writing to a terminal.
pub fn render(diagnostics: &[Diagnostic], source: &str, color: bool) -> String {
    render_in(diagnostics, None, source, color)
}

/// [`render`] for problems that may be in several files: only those in `main` (the file
/// `source` is the text of) are drawn with their snippet; `None` draws them all.
pub fn render_in(
    diagnostics: &[Diagnostic],
    main: Option<&str>,
    source: &str,
    color: bool,
) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme);
    let index = LineIndex::new(source);
    let drawn = diagnostics.len().min(MAX_SNIPPETS);
    let positions: Vec<(u32, u32)> = diagnostics[..drawn]
        .iter()
        .map(|d| (d.line, d.column))
        .collect();
    let offsets = index.offsets(&positions);
    let mut out = String::new();
    for (at, diagnostic) in diagnostics.iter().enumerate() {
        // The plain one-line form first: greppable and exact.
        out.push_str(&format!(
            "{}:{}:{}: error[{}]: ",
            diagnostic.file, diagnostic.line, diagnostic.column, diagnostic.code
        ));
        if let Some(document) = &diagnostic.document {
            out.push_str(&format!("{document}: "));
        }
        if !diagnostic.field_path.is_empty() {
            out.push_str(&format!("{}: ", diagnostic.field_path));
        }
        out.push_str(&diagnostic.message);
        out.push('\n');
        let Some(offset) = offsets.get(at) else {
            continue;
        };
        if main.is_some_and(|main| main != diagnostic.file) {
            if let Some(hint) = &diagnostic.hint {
                out.push_str(&format!("  help: {hint}\n"));
            }
            out.push('\n');
            continue;
        }
        let (src, span) = index.excerpt(&diagnostic.file, *offset);
        let rendered = Rendered {
            message: diagnostic.message.clone(),
            code: diagnostic.code.to_string(),
            help: diagnostic.hint.clone(),
            src,
            span,
        };
        if handler.render_report(&mut out, &rendered).is_err() {
            out.push_str(&format!("{diagnostic}\n"));
        }
        out.push('\n');
    }
    let count = diagnostics.len();
    if count > drawn {
        out.push_str(&format!(
            "(source shown for the first {drawn} problems; `--output json` lists every one)\n"
        ));
    }
    out.push_str(&format!(
        "{count} problem{} found; nothing was run\n",
        if count == 1 { "" } else { "s" }
    ));
    out
}

/// The JSON document of `weft validate --output json`, borrowed from the diagnostics
/// (fields in alphabetical order, as the document has always been printed).
#[derive(serde::Serialize)]
struct JsonDocument<'d> {
    diagnostics: Vec<JsonDiagnostic<'d>>,
    valid: bool,
}

#[derive(serde::Serialize)]
struct JsonDiagnostic<'d> {
    code: &'d str,
    column: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    document: Option<&'d str>,
    field: &'d str,
    file: &'d str,
    hint: Option<&'d str>,
    line: u32,
    message: &'d str,
}

fn document(diagnostics: &[Diagnostic]) -> JsonDocument<'_> {
    JsonDocument {
        diagnostics: diagnostics
            .iter()
            .map(|d| JsonDiagnostic {
                code: d.code,
                column: d.column,
                field: &d.field_path,
                file: &d.file,
                hint: d.hint.as_deref(),
                line: d.line,
                message: &d.message,
                document: d.document.as_deref().map(String::as_str),
            })
            .collect(),
        valid: diagnostics.is_empty(),
    }
}

/// The JSON form: `{"valid": false, "diagnostics": [...]}`.
pub fn to_json(diagnostics: &[Diagnostic]) -> serde_json::Value {
    serde_json::to_value(document(diagnostics)).unwrap_or(serde_json::Value::Null)
}

/// The JSON form as text, written straight from the diagnostics (no intermediate value:
/// a file with 100,000 problems prints in linear time and memory).
pub fn to_json_text(diagnostics: &[Diagnostic]) -> String {
    serde_json::to_string(&document(diagnostics)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_core::Pos;

    fn offset_of(source: &str, line: u32, column: u32) -> usize {
        LineIndex::new(source).offsets(&[(line, column)])[0]
    }

    #[test]
    fn offsets_count_lines_and_characters() {
        let source = "a: 1\nbé: 2\nc: 3";
        assert_eq!(offset_of(source, 1, 1), 0);
        assert_eq!(offset_of(source, 2, 1), 5);
        assert_eq!(offset_of(source, 2, 3), 8);
        assert_eq!(offset_of(source, 3, 4), 15);
        assert_eq!(offset_of(source, 9, 1), source.len());
        // Past a line's end: its end.
        assert_eq!(offset_of(source, 1, 40), 4);
        // Many positions at once, in any order, walk forward once.
        let index = LineIndex::new(source);
        assert_eq!(
            index.offsets(&[(3, 4), (2, 3), (2, 1), (1, 1)]),
            [15, 8, 5, 0]
        );
    }

    fn diagnostic(line: u32, column: u32) -> Diagnostic {
        Diagnostic::new(
            "p.yaml",
            Pos::new(line, column),
            "spec.tasks[0].runAfter[0]",
            "unknown-task",
            "`runAfter` names unknown task `x`",
        )
    }

    #[test]
    fn snippets_show_the_right_line_numbers_and_cut_long_lines() {
        let long = format!(
            "  runAfter: [{}x{}]\n",
            "a".repeat(5_000),
            "b".repeat(5_000)
        );
        let source = format!("apiVersion: v1\nspec:\n{long}end: 1\n");
        let out = render(&[diagnostic(3, 5_014)], &source, false);
        assert!(
            out.starts_with("p.yaml:3:5014: error[unknown-task]"),
            "{out}"
        );
        assert!(out.contains("[p.yaml:3:5014]"), "{out}");
        assert!(out.contains(" 2 │ spec:"), "{out}");
        assert!(out.contains(" 3 │ …aaaa"), "{out}");
        assert!(out.contains("axbbb"), "{out}");
        assert!(out.contains(" 4 │ end: 1"), "{out}");
        assert!(out.len() < 2_000, "{} bytes:\n{out}", out.len());
    }

    #[test]
    fn json_text_and_value_agree() {
        let mut hinted = diagnostic(2, 3);
        hinted.hint = Some("did you mean `b`?".into());
        let all = [diagnostic(1, 1), hinted];
        let text = to_json_text(&all);
        assert_eq!(text, to_json(&all).to_string());
        assert!(
            text.starts_with(r#"{"diagnostics":[{"code":"unknown-task","column":1,"#),
            "{text}"
        );
        assert_eq!(to_json_text(&[]), r#"{"diagnostics":[],"valid":true}"#);
    }

    #[test]
    fn only_the_first_problems_get_snippets() {
        let source = "a: 1\n".repeat(500);
        let many: Vec<Diagnostic> = (1..=500).map(|line| diagnostic(line, 1)).collect();
        let out = render(&many, &source, false);
        assert_eq!(out.matches("error[unknown-task]").count(), 500);
        assert_eq!(out.matches("╰── here").count(), MAX_SNIPPETS);
        assert!(
            out.ends_with("500 problems found; nothing was run\n"),
            "{out}"
        );
    }
}
