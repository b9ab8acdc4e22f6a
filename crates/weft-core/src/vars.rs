//! `$(...)` variables: parsing a string into literal pieces and variable references, and
//! substituting values into it.
//!
//! Content that cannot be a variable (it holds spaces or shell punctuation, like
//! `$(date +%s)`) is left as literal text, so shell snippets passed as params survive.
//! Anything that looks like a variable must be one weft knows.

use std::fmt;

/// How a param reference selects from the param's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// `$(params.p)`: the whole (string) value.
    Whole,
    /// `$(params.p[*])`: the whole array or object, only valid as a slot's entire value.
    Star,
    /// `$(params.p[2])`: one array element.
    Index(usize),
    /// `$(params.p.key)`: one object key.
    Key(String),
}

/// A variable reference, with task names still as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarRef {
    /// `$(params.p...)`.
    Param {
        /// Param name.
        name: String,
        /// What part of it.
        selector: Selector,
    },
    /// `$(tasks.t.results.r)`.
    TaskResult {
        /// Producing task.
        task: String,
        /// Result name.
        result: String,
    },
    /// `$(tasks.t.results.r[*])`: the results of a matrixed task's combinations, as an
    /// array in combination order.
    MatrixResults {
        /// Producing (matrixed) task.
        task: String,
        /// Result name.
        result: String,
    },
    /// `$(tasks.t.matrix.length)`: how many combinations a matrixed task has.
    MatrixLength {
        /// Matrixed task.
        task: String,
    },
    /// `$(tasks.t.matrix.r.length)`: how many of a matrixed task's combinations produced
    /// result `r`.
    MatrixResultLength {
        /// Matrixed task.
        task: String,
        /// Result name.
        result: String,
    },
    /// `$(tasks.t.status)`.
    TaskStatus {
        /// Task name.
        task: String,
    },
    /// `$(tasks.t.reason)`.
    TaskReason {
        /// Task name.
        task: String,
    },
    /// `$(tasks.status)`.
    TasksStatus,
    /// `$(tasks.outcome)`.
    TasksOutcome,
    /// `$(context.pipelineRun.name)`.
    RunName,
    /// `$(context.pipelineRun.uid)`.
    RunUid,
    /// `$(context.pipeline.name)`.
    PipelineName,
    /// `$(context.pipelineTask.retries)`.
    TaskRetries,
    /// `$(context.task.retry-count)`.
    TaskRetryCount,
    /// `$(workspaces.w.bound)`.
    WorkspaceBound {
        /// Workspace name.
        workspace: String,
    },
}

impl VarRef {
    /// The task this reference makes the consumer depend on, if any.
    pub fn depends_on(&self) -> Option<&str> {
        match self {
            VarRef::TaskResult { task, .. }
            | VarRef::MatrixResults { task, .. }
            | VarRef::MatrixLength { task }
            | VarRef::MatrixResultLength { task, .. }
            | VarRef::TaskStatus { task }
            | VarRef::TaskReason { task } => Some(task),
            _ => None,
        }
    }
}

/// One piece of a parsed string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<V> {
    /// Text copied as is.
    Literal(String),
    /// A variable.
    Var(V),
}

/// A parsed string: literal text and variables in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template<V> {
    /// The pieces.
    pub pieces: Vec<Piece<V>>,
}

impl<V> Template<V> {
    /// The variable, when the whole string is exactly one variable.
    pub fn sole_var(&self) -> Option<&V> {
        match self.pieces.as_slice() {
            [Piece::Var(var)] => Some(var),
            _ => None,
        }
    }

    /// Every variable in order.
    pub fn vars(&self) -> impl Iterator<Item = &V> {
        self.pieces.iter().filter_map(|piece| match piece {
            Piece::Var(var) => Some(var),
            Piece::Literal(_) => None,
        })
    }
}

/// Why a `$(...)` is not a variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarError {
    /// Syntax problem (unterminated, empty, bad brackets).
    Malformed(String),
    /// Well-formed but names nothing weft knows.
    Unknown(String),
}

impl fmt::Display for VarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VarError::Malformed(message) | VarError::Unknown(message) => f.write_str(message),
        }
    }
}

fn looks_like_variable(content: &str) -> bool {
    content.chars().all(|c| {
        c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '[' | ']' | '*' | '"' | '\'')
    })
}

/// Parses `text` into pieces. Reports the first bad variable.
pub fn parse_template(text: &str) -> Result<Template<VarRef>, VarError> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("$(") {
        literal.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find(')') else {
            return Err(VarError::Malformed(format!(
                "unterminated variable `{}`: missing `)`",
                &rest[start..]
            )));
        };
        let content = &after[..end];
        if !content.is_empty() && !looks_like_variable(content) {
            // Shell command substitution or similar: not ours, keep it verbatim.
            literal.push_str(&rest[start..start + 2 + end + 1]);
            rest = &after[end + 1..];
            continue;
        }
        let var = parse_var(content)?;
        if !literal.is_empty() {
            pieces.push(Piece::Literal(std::mem::take(&mut literal)));
        }
        pieces.push(Piece::Var(var));
        rest = &after[end + 1..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    Ok(Template { pieces })
}

/// Splits `params.x`, `params["x"]`, `params['x'].key` style names.
fn split_param(rest: &str) -> Result<(String, &str), VarError> {
    if let Some(quoted) = rest.strip_prefix('[') {
        let quote = quoted.chars().next().filter(|c| *c == '"' || *c == '\'');
        let Some(quote) = quote else {
            return Err(VarError::Malformed(format!(
                "bad param reference `params{rest}`: use `params.name` or `params[\"name\"]`"
            )));
        };
        let inner = &quoted[1..];
        let Some(close) = inner.find(quote) else {
            return Err(VarError::Malformed(format!(
                "unterminated quote in `params{rest}`"
            )));
        };
        let name = &inner[..close];
        let after = inner[close + 1..]
            .strip_prefix(']')
            .ok_or_else(|| VarError::Malformed(format!("missing `]` in `params{rest}`")))?;
        return Ok((name.to_string(), after));
    }
    let Some(dotted) = rest.strip_prefix('.') else {
        return Err(VarError::Malformed(
            "`$(params)` needs a param name: `$(params.name)`".to_string(),
        ));
    };
    let end = dotted.find(['.', '[']).unwrap_or(dotted.len());
    Ok((dotted[..end].to_string(), &dotted[end..]))
}

fn parse_var(content: &str) -> Result<VarRef, VarError> {
    if content.is_empty() {
        return Err(VarError::Malformed("empty variable `$()`".to_string()));
    }
    if let Some(rest) = content.strip_prefix("params") {
        let (name, rest) = split_param(rest)?;
        if name.is_empty() {
            return Err(VarError::Malformed(format!(
                "`$({content})` needs a param name"
            )));
        }
        let selector =
            if rest.is_empty() {
                Selector::Whole
            } else if rest == "[*]" {
                Selector::Star
            } else if let Some(index) = rest.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
                Selector::Index(index.parse().map_err(|_| {
                    VarError::Malformed(format!("bad array index in `$({content})`"))
                })?)
            } else if let Some(key) = rest.strip_prefix('.') {
                if key.is_empty() || key.contains(['.', '[', ']']) {
                    return Err(VarError::Malformed(format!(
                        "bad object key in `$({content})`"
                    )));
                }
                Selector::Key(key.to_string())
            } else {
                return Err(VarError::Malformed(format!(
                    "bad param reference `$({content})`"
                )));
            };
        return Ok(VarRef::Param { name, selector });
    }
    let parts: Vec<&str> = content.split('.').collect();
    if parts.iter().any(|part| part.is_empty()) {
        return Err(VarError::Malformed(format!(
            "`$({content})` has an empty name part"
        )));
    }
    let unknown = || VarError::Unknown(format!("unknown variable `$({content})`"));
    Ok(match parts.as_slice() {
        ["tasks", "status"] => VarRef::TasksStatus,
        ["tasks", "outcome"] => VarRef::TasksOutcome,
        ["tasks", task, "status"] => VarRef::TaskStatus {
            task: task.to_string(),
        },
        ["tasks", task, "reason"] => VarRef::TaskReason {
            task: task.to_string(),
        },
        ["tasks", task, "results", result] => match result.strip_suffix("[*]") {
            Some(result) if !result.is_empty() => VarRef::MatrixResults {
                task: task.to_string(),
                result: result.to_string(),
            },
            _ => VarRef::TaskResult {
                task: task.to_string(),
                result: result.to_string(),
            },
        },
        ["tasks", task, "matrix", "length"] => VarRef::MatrixLength {
            task: task.to_string(),
        },
        ["tasks", task, "matrix", result, "length"] => VarRef::MatrixResultLength {
            task: task.to_string(),
            result: result.to_string(),
        },
        ["context", "pipelineRun", "name"] => VarRef::RunName,
        ["context", "pipelineRun", "uid"] => VarRef::RunUid,
        ["context", "pipeline", "name"] => VarRef::PipelineName,
        ["context", "pipelineTask", "retries"] => VarRef::TaskRetries,
        ["context", "task", "retry-count"] => VarRef::TaskRetryCount,
        ["workspaces", workspace, "bound"] => VarRef::WorkspaceBound {
            workspace: workspace.to_string(),
        },
        ["tasks", ..] | ["context", ..] | ["workspaces", ..] => {
            return Err(unknown());
        }
        _ => return Err(unknown()),
    })
}

/// A string taken from a param value by `selector`, if it selects a string.
pub(crate) fn select_string(
    value: &crate::contract::ParamValue,
    selector: &Selector,
) -> Option<String> {
    use crate::contract::ParamValue;
    match (value, selector) {
        (ParamValue::Str(text), Selector::Whole) => Some(text.clone()),
        (ParamValue::Array(items), Selector::Index(index)) => items.get(*index).cloned(),
        (ParamValue::Object(map), Selector::Key(key)) => map.get(key).cloned(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(text: &str) -> VarRef {
        match parse_template(text) {
            Ok(template) => match template.sole_var() {
                Some(var) => var.clone(),
                None => panic!("not a sole var: {text}"),
            },
            Err(error) => panic!("{text}: {error}"),
        }
    }

    #[test]
    fn parses_every_documented_variable() {
        let table = [
            (
                "$(params.p)",
                VarRef::Param {
                    name: "p".into(),
                    selector: Selector::Whole,
                },
            ),
            (
                "$(params.arr[*])",
                VarRef::Param {
                    name: "arr".into(),
                    selector: Selector::Star,
                },
            ),
            (
                "$(params.arr[1])",
                VarRef::Param {
                    name: "arr".into(),
                    selector: Selector::Index(1),
                },
            ),
            (
                "$(params.obj.key)",
                VarRef::Param {
                    name: "obj".into(),
                    selector: Selector::Key("key".into()),
                },
            ),
            (
                "$(params[\"p.x\"])",
                VarRef::Param {
                    name: "p.x".into(),
                    selector: Selector::Whole,
                },
            ),
            (
                "$(params['p'])",
                VarRef::Param {
                    name: "p".into(),
                    selector: Selector::Whole,
                },
            ),
            (
                "$(tasks.t.results.r)",
                VarRef::TaskResult {
                    task: "t".into(),
                    result: "r".into(),
                },
            ),
            (
                "$(tasks.t.results.r[*])",
                VarRef::MatrixResults {
                    task: "t".into(),
                    result: "r".into(),
                },
            ),
            (
                "$(tasks.t.matrix.length)",
                VarRef::MatrixLength { task: "t".into() },
            ),
            (
                "$(tasks.t.matrix.r.length)",
                VarRef::MatrixResultLength {
                    task: "t".into(),
                    result: "r".into(),
                },
            ),
            ("$(tasks.t.status)", VarRef::TaskStatus { task: "t".into() }),
            ("$(tasks.t.reason)", VarRef::TaskReason { task: "t".into() }),
            ("$(tasks.status)", VarRef::TasksStatus),
            ("$(tasks.outcome)", VarRef::TasksOutcome),
            ("$(context.pipelineRun.name)", VarRef::RunName),
            ("$(context.pipelineRun.uid)", VarRef::RunUid),
            ("$(context.pipeline.name)", VarRef::PipelineName),
            ("$(context.pipelineTask.retries)", VarRef::TaskRetries),
            ("$(context.task.retry-count)", VarRef::TaskRetryCount),
            (
                "$(workspaces.src.bound)",
                VarRef::WorkspaceBound {
                    workspace: "src".into(),
                },
            ),
        ];
        for (text, expected) in table {
            assert_eq!(var(text), expected, "{text}");
        }
    }

    #[test]
    fn keeps_literals_and_shell_substitutions() {
        let Ok(template) = parse_template("a $(params.x) b $(date +%s) c") else {
            panic!("parse failed")
        };
        assert_eq!(
            template.pieces,
            vec![
                Piece::Literal("a ".into()),
                Piece::Var(VarRef::Param {
                    name: "x".into(),
                    selector: Selector::Whole
                }),
                Piece::Literal(" b $(date +%s) c".into()),
            ]
        );
    }

    #[test]
    fn refuses_malformed_and_unknown_variables() {
        assert!(matches!(
            parse_template("$(params.x"),
            Err(VarError::Malformed(_))
        ));
        assert!(matches!(parse_template("$()"), Err(VarError::Malformed(_))));
        assert!(matches!(
            parse_template("$(params)"),
            Err(VarError::Malformed(_))
        ));
        assert!(matches!(
            parse_template("$(tasks..status)"),
            Err(VarError::Malformed(_))
        ));
        assert!(matches!(
            parse_template("$(foo.bar)"),
            Err(VarError::Unknown(_))
        ));
        assert!(matches!(
            parse_template("$(tasks.t.results)"),
            Err(VarError::Unknown(_))
        ));
        assert!(matches!(
            parse_template("$(context.nope)"),
            Err(VarError::Unknown(_))
        ));
    }
}
