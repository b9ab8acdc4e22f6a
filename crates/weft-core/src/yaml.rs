//! A small YAML tree that remembers where every node was written.
//!
//! Built from `saphyr-parser`'s event stream. saphyr is the maintained continuation of
//! yaml-rust (YAML 1.2, regular releases); serde_yaml is unmaintained. Consuming events
//! rather than saphyr's DOM keeps our exposure to its API to one small function.

use crate::diag::Pos;
use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use std::collections::HashMap;

/// One YAML node and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub kind: NodeKind,
    pub pos: Pos,
}

/// The shape of a node. Scalars keep their text; `plain` tells `true` from `"true"`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NodeKind {
    Scalar { text: String, plain: bool },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// A YAML syntax error with the parser's location.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

/// Deep documents are refused rather than risking the stack (the parser is fuzzed). The
/// depth counts what aliases paste in, not just the collections open in the text.
const MAX_DEPTH: usize = 256;

/// Nodes a document may hold (an 8 MiB file has fewer; 100,000-task pipelines fit).
const MAX_NODES: usize = 5_000_000;

/// Nodes aliases may paste in, in total ("billion laughs" is refused early).
const MAX_ALIAS_NODES: usize = 100_000;

fn pos_of(span: &Span) -> Pos {
    Pos::new(
        u32::try_from(span.start.line()).unwrap_or(u32::MAX),
        u32::try_from(span.start.col() + 1).unwrap_or(u32::MAX),
    )
}

enum Frame {
    Seq(Vec<Node>, Pos, usize, Extent),
    Map(Vec<(Node, Node)>, Option<Node>, Pos, usize, Extent),
}

/// How tall and how large a subtree is, aliases expanded.
#[derive(Debug, Clone, Copy, Default)]
struct Extent {
    height: usize,
    nodes: usize,
}

impl Extent {
    fn add_child(&mut self, child: Extent) {
        self.height = self.height.max(child.height + 1);
        self.nodes = self.nodes.saturating_add(child.nodes);
    }
}

/// The first tab used as indentation at or after `from`'s line.
fn indentation_tab_after(source: &str, from: Pos) -> Option<Pos> {
    source
        .lines()
        .enumerate()
        .skip(from.line.saturating_sub(1) as usize)
        .find_map(|(index, line)| {
            let indent = &line[..line.len() - line.trim_start().len()];
            let column = indent.chars().position(|c| c == '\t')?;
            Some(Pos::new(
                u32::try_from(index + 1).ok()?,
                u32::try_from(column + 1).ok()?,
            ))
        })
}

/// `text` in a buffer of its own length. A document's nodes are kept while it is read
/// into the model, so at 100,000 tasks spare capacity is a large part of the peak: the
/// scanner reserves at least 129 bytes for every plain scalar. The text is copied rather
/// than shrunk in place: shrinking leaves the freed tail as a hole right after the kept
/// text, too small for the next scalar's buffer, and those holes (about 800 bytes per
/// task) could never be given back. Copied, each scalar's buffer is freed whole and
/// reused by the next.
fn exact(text: std::borrow::Cow<'_, str>) -> String {
    match text {
        std::borrow::Cow::Owned(text) if text.len() == text.capacity() => text,
        text => text.as_ref().to_owned(),
    }
}

/// `items` in a buffer of its own length, copied for the reason [`exact`] gives.
fn exact_vec<T>(items: Vec<T>) -> Vec<T> {
    if items.len() == items.capacity() {
        return items;
    }
    let mut copy = Vec::with_capacity(items.len());
    copy.extend(items);
    copy
}

/// One document of a YAML stream: its root (`None` when empty) and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Document {
    pub root: Option<Node>,
    /// Where the document starts (its `---`, or its first node).
    pub start: Pos,
}

/// Parses the only document of `source`. An empty document gives `None`; a second
/// document is a syntax error.
pub(crate) fn parse(source: &str) -> Result<Option<Node>, SyntaxError> {
    let mut documents = parse_documents(source)?;
    if documents.len() > 1 {
        return Err(SyntaxError {
            pos: documents[1].start,
            message: "more than one YAML document".to_string(),
        });
    }
    Ok(documents.pop().and_then(|document| document.root))
}

/// Parses every document of `source` (`---`-separated), in order. Anchors belong to
/// their document; the node and alias budgets are the whole file's.
pub(crate) fn parse_documents(source: &str) -> Result<Vec<Document>, SyntaxError> {
    let mut parser = Parser::new_from_str(source);
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, (Node, Extent)> = HashMap::new();
    let mut total_nodes = 0usize;
    let mut alias_nodes = 0usize;
    let mut root: Option<Node> = None;
    let mut documents: Vec<Document> = Vec::new();
    let mut start = Pos::new(1, 1);
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|error| {
            let reported = Pos::new(
                u32::try_from(error.marker().line()).unwrap_or(u32::MAX),
                u32::try_from(error.marker().col() + 1).unwrap_or(u32::MAX),
            );
            let message = error.info().to_string();
            // The scanner reports a tab error where the enclosing token starts; point at
            // the offending tab in the indentation instead.
            let pos = if message.contains("tab") {
                indentation_tab_after(source, reported).unwrap_or(reported)
            } else {
                reported
            };
            SyntaxError { pos, message }
        })?;
        let pos = pos_of(&span);
        if matches!(
            event,
            Event::Scalar(..) | Event::SequenceStart(..) | Event::MappingStart(..)
        ) {
            total_nodes += 1;
            if total_nodes > MAX_NODES {
                return Err(SyntaxError {
                    pos,
                    message: format!("the document has more than {MAX_NODES} nodes"),
                });
            }
        }
        let finished: Option<(Node, usize, Extent)> = match event {
            Event::DocumentStart(_) => {
                anchors.clear();
                start = pos;
                None
            }
            Event::DocumentEnd => {
                documents.push(Document {
                    root: root.take(),
                    start,
                });
                None
            }
            Event::Scalar(text, style, anchor, _tag) => Some((
                Node {
                    kind: NodeKind::Scalar {
                        text: exact(text),
                        plain: style == ScalarStyle::Plain,
                    },
                    pos,
                },
                anchor,
                Extent {
                    height: 0,
                    nodes: 1,
                },
            )),
            Event::Alias(anchor) => match anchors.get(&anchor) {
                Some((node, extent)) => {
                    // Check before cloning: the clone is what could blow up.
                    if stack.len() + extent.height >= MAX_DEPTH {
                        return Err(SyntaxError {
                            pos,
                            message: "document nested too deeply (through aliases)".to_string(),
                        });
                    }
                    alias_nodes = alias_nodes.saturating_add(extent.nodes);
                    if alias_nodes > MAX_ALIAS_NODES {
                        return Err(SyntaxError {
                            pos,
                            message: format!(
                                "aliases expand the document by more than {MAX_ALIAS_NODES} nodes"
                            ),
                        });
                    }
                    Some((node.clone(), 0, *extent))
                }
                None => {
                    return Err(SyntaxError {
                        pos,
                        message: "alias to an unknown anchor".to_string(),
                    });
                }
            },
            Event::SequenceStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(SyntaxError {
                        pos,
                        message: "document nested too deeply".to_string(),
                    });
                }
                stack.push(Frame::Seq(Vec::new(), pos, anchor, Extent::default()));
                None
            }
            Event::MappingStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(SyntaxError {
                        pos,
                        message: "document nested too deeply".to_string(),
                    });
                }
                stack.push(Frame::Map(Vec::new(), None, pos, anchor, Extent::default()));
                None
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq(items, start, anchor, extent)) => Some((
                    Node {
                        // Spare capacity is dropped for the reason `exact` gives.
                        kind: NodeKind::Seq(exact_vec(items)),
                        pos: start,
                    },
                    anchor,
                    Extent {
                        height: extent.height,
                        nodes: extent.nodes.saturating_add(1),
                    },
                )),
                _ => None,
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map(entries, _, start, anchor, extent)) => Some((
                    Node {
                        kind: NodeKind::Map(exact_vec(entries)),
                        pos: start,
                    },
                    anchor,
                    Extent {
                        height: extent.height,
                        nodes: extent.nodes.saturating_add(1),
                    },
                )),
                _ => None,
            },
            Event::StreamStart | Event::StreamEnd | Event::Nothing => None,
        };
        if let Some((node, anchor, extent)) = finished {
            if anchor != 0 {
                anchors.insert(anchor, (node.clone(), extent));
            }
            match stack.last_mut() {
                Some(Frame::Seq(items, _, _, parent)) => {
                    parent.add_child(extent);
                    items.push(node);
                }
                Some(Frame::Map(entries, pending_key, _, _, parent)) => {
                    parent.add_child(extent);
                    match pending_key.take() {
                        Some(key) => entries.push((key, node)),
                        None => *pending_key = Some(node),
                    }
                }
                None => root = Some(node),
            }
        }
    }
    if let Some(root) = root {
        documents.push(Document {
            root: Some(root),
            start,
        });
    }
    Ok(documents)
}

impl Node {
    /// The scalar text, if this is a scalar.
    pub fn as_scalar(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// True for `~`, `null` and an empty value.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { text, plain: true }
            if text.is_empty() || text == "~" || text == "null" || text == "Null" || text == "NULL")
    }

    /// A short word for error messages: what this node is.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Scalar { .. } if self.is_null() => "null",
            NodeKind::Scalar { .. } => "a scalar",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }

    /// Converts to JSON, typing plain scalars like YAML 1.2's core schema.
    pub fn to_json(&self) -> serde_json::Value {
        match &self.kind {
            NodeKind::Scalar { text, plain } => {
                if !*plain {
                    return serde_json::Value::String(text.clone());
                }
                if self.is_null() {
                    return serde_json::Value::Null;
                }
                match text.as_str() {
                    "true" | "True" | "TRUE" => return serde_json::Value::Bool(true),
                    "false" | "False" | "FALSE" => return serde_json::Value::Bool(false),
                    _ => {}
                }
                if let Ok(int) = text.parse::<i64>() {
                    return serde_json::Value::from(int);
                }
                if let Ok(float) = text.parse::<f64>()
                    && let Some(number) = serde_json::Number::from_f64(float)
                {
                    return serde_json::Value::Number(number);
                }
                serde_json::Value::String(text.clone())
            }
            NodeKind::Seq(items) => {
                serde_json::Value::Array(items.iter().map(Node::to_json).collect())
            }
            NodeKind::Map(entries) => serde_json::Value::Object(
                entries
                    .iter()
                    .map(|(key, value)| {
                        (
                            key.as_scalar().unwrap_or_default().to_string(),
                            value.to_json(),
                        )
                    })
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_one_based_positions() {
        let Ok(Some(root)) = parse("a: 1\nb:\n  - x\n") else {
            panic!("parse failed")
        };
        let NodeKind::Map(entries) = &root.kind else {
            panic!("not a map")
        };
        assert_eq!(entries[0].0.pos, Pos::new(1, 1));
        assert_eq!(entries[0].1.pos, Pos::new(1, 4));
        let NodeKind::Seq(items) = &entries[1].1.kind else {
            panic!("not a seq")
        };
        assert_eq!(items[0].pos, Pos::new(3, 5));
    }

    #[test]
    fn reports_syntax_errors_with_location() {
        let Err(error) = parse("a: [1, 2\nb: c\n") else {
            panic!("should fail")
        };
        assert_eq!(error.pos.line, 2);
    }

    #[test]
    fn resolves_aliases() {
        let Ok(Some(root)) = parse("a: &x [1]\nb: *x\n") else {
            panic!("parse failed")
        };
        assert_eq!(root.to_json(), serde_json::json!({"a": [1], "b": [1]}));
    }
}
