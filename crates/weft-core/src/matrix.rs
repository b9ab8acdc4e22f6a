//! A pipeline task's `matrix` (Tekton's fan-out): which combinations of params it runs.
//!
//! The rules are Tekton's (`pkg/apis/pipeline/v1/matrix_types.go`), so a file written for
//! Tekton fans out the same way under weft:
//! - `matrix.params` are arrays; their cartesian product gives the combinations, the first
//!   param varying fastest;
//! - each `include` entry adds its params to every combination whose values it agrees with
//!   (it may add params the matrix does not have), and becomes a combination of its own
//!   when none of its values appears in any combination; with no `matrix.params`, every
//!   `include` entry is a combination;
//! - a combination's params are ordered by name.
//!
//! weft expands the combinations when it plans a run: matrix values come from literals and
//! pipeline params, which are known before the run starts (a matrix fed by another task's
//! results is refused by validation). Combination `i` of task `t` runs as task `t-i`, the
//! name Tekton gives its TaskRun after the run's name.

use crate::contract::ParamValue;
use crate::model::Matrix;
use crate::vars::{Piece, Selector, VarRef, parse_template};
use std::collections::BTreeMap;

/// How many combinations a task may fan out into unless the operator says otherwise
/// (Tekton's `default-max-matrix-combinations-count`).
pub const DEFAULT_MAX_COMBINATIONS: usize = 256;

/// One combination: param name -> value, ordered by name.
pub type Combination = BTreeMap<String, String>;

/// Why a matrix param's value is not a list weft can fan out over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueProblem {
    /// It is a string or an object.
    NotArray,
    /// It reads another task's results (only known while the run goes).
    FromResults,
}

/// The values of one `matrix.params` entry, pipeline params substituted.
pub fn param_values(
    value: &ParamValue,
    params: &BTreeMap<String, ParamValue>,
) -> Result<Vec<String>, ValueProblem> {
    match value {
        ParamValue::Array(items) => {
            let mut values = Vec::with_capacity(items.len());
            for item in items {
                match whole_array(item, params)? {
                    Some(expanded) => values.extend(expanded),
                    None => values.push(substitute(item, params)?),
                }
            }
            Ok(values)
        }
        ParamValue::Str(text) => whole_array(text, params)?.ok_or(ValueProblem::NotArray),
        ParamValue::Object(_) => Err(ValueProblem::NotArray),
    }
}

/// A string `include` value, pipeline params substituted.
pub fn include_value(
    text: &str,
    params: &BTreeMap<String, ParamValue>,
) -> Result<String, ValueProblem> {
    substitute(text, params)
}

/// `text` is exactly `$(params.a[*])` or `$(params.a)` of an array param: its items.
fn whole_array(
    text: &str,
    params: &BTreeMap<String, ParamValue>,
) -> Result<Option<Vec<String>>, ValueProblem> {
    let Ok(template) = parse_template(text) else {
        return Ok(None);
    };
    if template.vars().any(|var| var.depends_on().is_some()) {
        return Err(ValueProblem::FromResults);
    }
    Ok(match template.sole_var() {
        Some(VarRef::Param {
            name,
            selector: Selector::Star | Selector::Whole,
        }) => match params.get(name) {
            Some(ParamValue::Array(items)) => Some(items.clone()),
            _ => None,
        },
        _ => None,
    })
}

/// `text` with `$(params...)` substituted; other variables stay as written.
fn substitute(text: &str, params: &BTreeMap<String, ParamValue>) -> Result<String, ValueProblem> {
    let Ok(template) = parse_template(text) else {
        return Ok(text.to_string());
    };
    let mut out = String::new();
    for piece in &template.pieces {
        match piece {
            Piece::Literal(literal) => out.push_str(literal),
            Piece::Var(VarRef::Param { name, selector }) => {
                let value = params
                    .get(name)
                    .and_then(|value| crate::vars::select_string(value, selector));
                out.push_str(&value.unwrap_or_default());
            }
            Piece::Var(var) if var.depends_on().is_some() => {
                return Err(ValueProblem::FromResults);
            }
            Piece::Var(_) => return Err(ValueProblem::NotArray),
        }
    }
    Ok(out)
}

/// A matrix with its values known: what [`fan_out`] and [`count`] work on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resolved {
    /// `matrix.params`: name and values, in order.
    pub params: Vec<(String, Vec<String>)>,
    /// `matrix.include`: each entry's params.
    pub include: Vec<Combination>,
}

impl Resolved {
    /// Resolves `matrix` against the run's params (`None` when a value is not a list weft
    /// can fan out over: validation reports it).
    pub fn new(matrix: &Matrix, params: &BTreeMap<String, ParamValue>) -> Option<Resolved> {
        let mut resolved = Resolved::default();
        for param in &matrix.params {
            let values = param_values(&param.value.value, params).ok()?;
            resolved.params.push((param.name.value.clone(), values));
        }
        for include in &matrix.include {
            let mut combination = Combination::new();
            for param in &include.params {
                let ParamValue::Str(text) = &param.value.value else {
                    return None;
                };
                let value = include_value(text, params).ok()?;
                combination.insert(param.name.value.clone(), value);
            }
            resolved.include.push(combination);
        }
        Some(resolved)
    }

    /// True when a `matrix.params` array is empty: the task is skipped (Tekton's
    /// "Matrix Parameters have an empty array").
    pub fn has_empty_param(&self) -> bool {
        self.params.iter().any(|(_, values)| values.is_empty())
    }
}

/// How many combinations `matrix` makes: exact up to `limit`; above it, a number over
/// `limit` found without making the combinations (so a huge matrix costs no work).
pub fn count(matrix: &Resolved, limit: usize) -> usize {
    if matrix.params.is_empty() {
        return matrix.include.len();
    }
    let product = matrix
        .params
        .iter()
        .map(|(_, values)| values.len())
        .fold(1usize, usize::saturating_mul);
    if product > limit {
        return product;
    }
    fan_out(matrix).len()
}

/// Every combination of `matrix`, in Tekton's order.
pub fn fan_out(matrix: &Resolved) -> Vec<Combination> {
    if matrix.params.is_empty() {
        return matrix.include.clone();
    }
    let mut combinations: Vec<Combination> = Vec::new();
    for (name, values) in &matrix.params {
        if combinations.is_empty() {
            combinations = values
                .iter()
                .map(|value| Combination::from([(name.clone(), value.clone())]))
                .collect();
            continue;
        }
        let mut expanded = Vec::with_capacity(combinations.len() * values.len());
        for value in values {
            for combination in &combinations {
                let mut next = combination.clone();
                next.insert(name.clone(), value.clone());
                expanded.push(next);
            }
        }
        combinations = expanded;
    }
    for combination in &mut combinations {
        for include in &matrix.include {
            if agrees(combination, include) {
                combination.extend(include.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
    }
    for include in &matrix.include {
        if is_new(&combinations, include) {
            combinations.push(include.clone());
        }
    }
    combinations
}

/// Every value `include` has for a param `combination` has is the same.
fn agrees(combination: &Combination, include: &Combination) -> bool {
    include
        .iter()
        .all(|(name, value)| combination.get(name).is_none_or(|own| own == value))
}

/// No combination has any of `include`'s values.
fn is_new(combinations: &[Combination], include: &Combination) -> bool {
    !include.is_empty()
        && !combinations.iter().any(|combination| {
            include
                .iter()
                .any(|(name, value)| combination.get(name) == Some(value))
        })
}

/// The name combination `index` of task `task` runs as.
pub fn combination_name(task: &str, index: usize) -> String {
    format!("{task}-{index}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(params: &[(&str, &[&str])], include: &[&[(&str, &str)]]) -> Resolved {
        Resolved {
            params: params
                .iter()
                .map(|(name, values)| {
                    (
                        name.to_string(),
                        values.iter().map(|v| v.to_string()).collect(),
                    )
                })
                .collect(),
            include: include
                .iter()
                .map(|entry| {
                    entry
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect()
                })
                .collect(),
        }
    }

    fn shown(combinations: &[Combination]) -> Vec<String> {
        combinations
            .iter()
            .map(|combination| {
                combination
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect()
    }

    /// The examples of Tekton's `docs/matrix.md` (include with and without params).
    #[test]
    fn fans_out_as_tekton_does() {
        let table: Vec<(&str, Resolved, Vec<&str>)> = vec![
            (
                "product: first param varies fastest",
                resolved(
                    &[
                        ("platform", &["linux", "mac"]),
                        ("browser", &["chrome", "safari"]),
                    ],
                    &[],
                ),
                vec![
                    "browser=chrome,platform=linux",
                    "browser=chrome,platform=mac",
                    "browser=safari,platform=linux",
                    "browser=safari,platform=mac",
                ],
            ),
            (
                "include adds a param to matching combinations and makes new ones",
                resolved(
                    &[
                        ("GOARCH", &["linux/amd64", "linux/ppc64le", "linux/s390x"]),
                        ("version", &["go1.17", "go1.18.1"]),
                    ],
                    &[
                        &[("GOARCH", "linux/amd64"), ("flags", "-cover -v")],
                        &[
                            ("GOARCH", "linux/s390x"),
                            ("version", "go1.18.1"),
                            ("flags", "-race"),
                        ],
                        &[("GOARCH", "linux/arm"), ("version", "go1.17")],
                    ],
                ),
                vec![
                    "GOARCH=linux/amd64,flags=-cover -v,version=go1.17",
                    "GOARCH=linux/ppc64le,version=go1.17",
                    "GOARCH=linux/s390x,version=go1.17",
                    "GOARCH=linux/amd64,flags=-cover -v,version=go1.18.1",
                    "GOARCH=linux/ppc64le,version=go1.18.1",
                    "GOARCH=linux/s390x,flags=-race,version=go1.18.1",
                ],
            ),
            (
                "an include whose values appear nowhere is a combination of its own",
                resolved(
                    &[("GOARCH", &["linux/amd64"])],
                    &[&[("GOARCH", "linux/arm"), ("flags", "-x")]],
                ),
                vec!["GOARCH=linux/amd64", "GOARCH=linux/arm,flags=-x"],
            ),
            (
                "include only: each entry is a combination",
                resolved(
                    &[],
                    &[
                        &[("IMAGE", "image-1"), ("DOCKERFILE", "path/to/Dockerfile1")],
                        &[("IMAGE", "image-2")],
                    ],
                ),
                vec![
                    "DOCKERFILE=path/to/Dockerfile1,IMAGE=image-1",
                    "IMAGE=image-2",
                ],
            ),
        ];
        for (case, matrix, expected) in table {
            let combinations = fan_out(&matrix);
            assert_eq!(shown(&combinations), expected, "{case}");
            assert_eq!(count(&matrix, 256), expected.len(), "{case}: count");
        }
    }

    #[test]
    fn counts_huge_matrices_without_making_them() {
        let values: Vec<String> = (0..100_000).map(|i| i.to_string()).collect();
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        let matrix = resolved(
            &[
                ("a", &values),
                ("b", &values),
                ("c", &values),
                ("d", &values),
            ],
            &[],
        );
        assert_eq!(count(&matrix, 256), usize::MAX);
        let empty = resolved(&[("a", &["x"]), ("b", &[])], &[]);
        assert!(empty.has_empty_param());
        assert!(fan_out(&empty).is_empty());
    }

    #[test]
    fn values_come_from_literals_and_pipeline_params() {
        let params = BTreeMap::from([
            (
                "list".to_string(),
                ParamValue::Array(vec!["a".into(), "b".into()]),
            ),
            ("one".to_string(), ParamValue::Str("z".into())),
        ]);
        let cases = [
            (
                ParamValue::Str("$(params.list[*])".into()),
                Ok(vec!["a", "b"]),
            ),
            (ParamValue::Str("$(params.list)".into()), Ok(vec!["a", "b"])),
            (
                ParamValue::Array(vec!["x-$(params.one)".into(), "$(params.list[*])".into()]),
                Ok(vec!["x-z", "a", "b"]),
            ),
            (
                ParamValue::Str("$(params.one)".into()),
                Err(ValueProblem::NotArray),
            ),
            (ParamValue::Str("plain".into()), Err(ValueProblem::NotArray)),
            (
                ParamValue::Str("$(tasks.t.results.r[*])".into()),
                Err(ValueProblem::FromResults),
            ),
            (
                ParamValue::Array(vec!["$(tasks.t.results.r)".into()]),
                Err(ValueProblem::FromResults),
            ),
        ];
        for (value, expected) in cases {
            let expected = expected.map(|v| v.into_iter().map(String::from).collect::<Vec<_>>());
            assert_eq!(param_values(&value, &params), expected, "{value:?}");
        }
    }
}
