//! Rendering validation problems for people (miette, with the source snippet) and for
//! tools (JSON).

use miette::{GraphicalReportHandler, GraphicalTheme, NamedSource, SourceSpan};
use weft_core::Diagnostic;

/// One weft diagnostic as miette sees it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct Rendered {
    message: String,
    code: String,
    help: Option<String>,
    src: NamedSource<String>,
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

/// Byte offset of a 1-based line and column (columns count characters).
fn offset_of(source: &str, line: u32, column: u32) -> usize {
    let mut offset = 0;
    for (index, text) in source.split_inclusive('\n').enumerate() {
        if index + 1 == line as usize {
            let col = column.saturating_sub(1) as usize;
            return offset
                + text
                    .char_indices()
                    .nth(col)
                    .map_or(text.trim_end_matches('\n').len(), |(i, _)| i);
        }
        offset += text.len();
    }
    source.len()
}

/// Renders every diagnostic with its snippet; `color` when writing to a terminal.
pub fn render(diagnostics: &[Diagnostic], source: &str, color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme);
    let mut out = String::new();
    for diagnostic in diagnostics {
        // The plain one-line form first: greppable and exact.
        out.push_str(&format!(
            "{}:{}:{}: error[{}]: {}: {}\n",
            diagnostic.file,
            diagnostic.line,
            diagnostic.column,
            diagnostic.code,
            diagnostic.field_path,
            diagnostic.message
        ));
        let start = offset_of(source, diagnostic.line, diagnostic.column);
        let len = source[start..]
            .find(['\n', ' ', ':', ','])
            .unwrap_or(source.len() - start)
            .max(1)
            .min(source.len().saturating_sub(start));
        let rendered = Rendered {
            message: diagnostic.message.clone(),
            code: diagnostic.code.to_string(),
            help: diagnostic.hint.clone(),
            src: NamedSource::new(&diagnostic.file, source.to_string()),
            span: (start, len).into(),
        };
        if handler.render_report(&mut out, &rendered).is_err() {
            out.push_str(&format!("{diagnostic}\n"));
        }
        out.push('\n');
    }
    let count = diagnostics.len();
    out.push_str(&format!(
        "{count} problem{} found; nothing was run\n",
        if count == 1 { "" } else { "s" }
    ));
    out
}

/// The JSON form: `{"valid": false, "diagnostics": [...]}`.
pub fn to_json(diagnostics: &[Diagnostic]) -> serde_json::Value {
    serde_json::json!({
        "valid": diagnostics.is_empty(),
        "diagnostics": diagnostics.iter().map(|d| serde_json::json!({
            "file": d.file,
            "line": d.line,
            "column": d.column,
            "field": d.field_path,
            "code": d.code,
            "message": d.message,
            "hint": d.hint,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_count_lines_and_characters() {
        let source = "a: 1\nbé: 2\nc: 3";
        assert_eq!(offset_of(source, 1, 1), 0);
        assert_eq!(offset_of(source, 2, 1), 5);
        assert_eq!(offset_of(source, 2, 3), 8);
        assert_eq!(offset_of(source, 3, 4), 15);
        assert_eq!(offset_of(source, 9, 1), source.len());
    }
}
