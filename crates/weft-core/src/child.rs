//! Pipelines in pipelines (Tekton's `pipelineRef`/`pipelineSpec` in a pipeline task): how a
//! child pipeline looks from its parent, and what it is given.
//!
//! The choices, beyond Tekton's known limitations (TEP-0056):
//!
//! - The child runs inside the parent run: its tasks are the parent's nodes `T.x` (task
//!   `x` of the child run by pipeline task `T`), journaled, recovered and shown as any
//!   other; a child of a child is `T.x.y`.
//! - To its parent the child is one task: its `spec.results` are `$(tasks.T.results.R)`,
//!   its status is `$(tasks.T.status)` (`Succeeded`, `Failed`, `None`), and `T`'s
//!   `retries` run the whole child again (every task of it a new attempt), `T`'s `timeout`
//!   bounds the whole child (its running tasks time out, nothing else of it starts, its
//!   `finally` included, as a `pipeline` timeout does), `T`'s `when` and `onError` apply.
//! - `T`'s `params` are the child's params (a param the child does not declare, or a
//!   required one not given, is an error, as for a plugin); they may use the parent's
//!   task results, but a child's `matrix` may not fan out over such a param (the plan's
//!   size is fixed before the run starts). `T`'s `workspaces` bind the child's
//!   workspaces to the parent's.
//! - A pipeline that runs itself, however indirectly, is a validation error.

use crate::contract::{ParamType, ParamValue, PluginInfo, ResultSpec};
use crate::model::Pipeline;
use crate::vars::{Piece, Selector, VarRef, parse_template, select_string};
use std::collections::BTreeMap;

/// A child pipeline's interface as its parent task sees it: params as a plugin's, results
/// its `spec.results` (the complete set).
pub fn info(pipeline: &Pipeline) -> PluginInfo {
    PluginInfo {
        name: pipeline.name.value.clone(),
        version: String::new(),
        description: pipeline.description.clone().unwrap_or_default(),
        params: pipeline
            .params
            .iter()
            .map(crate::model::ParamDecl::spec)
            .collect(),
        results: pipeline
            .results
            .iter()
            .map(|result| ResultSpec {
                name: result.name.value.clone(),
                description: result.description.clone(),
            })
            .collect(),
        results_fixed: true,
        accepts_any_params: false,
        capabilities: Default::default(),
    }
}

/// The params a child pipeline is planned with: `known(name)` where the parent task gives
/// a value fixed before the run, else the param's default, else a stand-in of its type
/// (its first allowed value, or empty). Stand-ins only shape the plan: a value known only
/// while the run goes replaces them when the child starts, and a matrix may not depend
/// on one (validation).
pub fn planned_params(
    pipeline: &Pipeline,
    known: impl Fn(&str) -> Option<ParamValue>,
) -> BTreeMap<String, ParamValue> {
    pipeline
        .params
        .iter()
        .map(|decl| {
            let name = decl.name.value.as_str();
            let value = known(name)
                .or_else(|| decl.default.as_ref().map(|d| d.value.clone()))
                .unwrap_or_else(|| match decl.param_type {
                    ParamType::String => {
                        ParamValue::Str(decl.allowed.first().cloned().unwrap_or_default())
                    }
                    ParamType::Array => ParamValue::Array(Vec::new()),
                    ParamType::Object => ParamValue::Object(BTreeMap::new()),
                });
            (name.to_string(), value)
        })
        .collect()
}

pub use crate::model::nested_name;

/// `value` as given to a child with the parent's `params` substituted, when that makes it
/// fixed before the run (no task result, status or context in it); `None` otherwise.
pub fn fixed_value(
    value: &ParamValue,
    params: &BTreeMap<String, ParamValue>,
) -> Option<ParamValue> {
    match value {
        ParamValue::Str(text) => match whole_param(text, params) {
            Some(whole) => Some(whole),
            None => fixed_string(text, params).map(ParamValue::Str),
        },
        ParamValue::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match whole_param(item, params) {
                    Some(ParamValue::Array(more)) => out.extend(more),
                    Some(_) => return None,
                    None => out.push(fixed_string(item, params)?),
                }
            }
            Some(ParamValue::Array(out))
        }
        ParamValue::Object(map) => map
            .iter()
            .map(|(key, text)| Some((key.clone(), fixed_string(text, params)?)))
            .collect::<Option<BTreeMap<_, _>>>()
            .map(ParamValue::Object),
    }
}

/// `$(params.x[*])` as the whole of `text`: the param's value.
fn whole_param(text: &str, params: &BTreeMap<String, ParamValue>) -> Option<ParamValue> {
    let template = parse_template(text).ok()?;
    match template.sole_var()? {
        VarRef::Param {
            name,
            selector: Selector::Star,
        } => params.get(name).cloned(),
        _ => None,
    }
}

/// `text` with its `$(params...)` substituted, if it holds no other reference.
fn fixed_string(text: &str, params: &BTreeMap<String, ParamValue>) -> Option<String> {
    let template = parse_template(text).ok()?;
    let mut out = String::with_capacity(text.len());
    for piece in &template.pieces {
        match piece {
            Piece::Literal(literal) => out.push_str(literal),
            Piece::Var(VarRef::Param { name, selector }) => {
                out.push_str(&select_string(params.get(name)?, selector)?);
            }
            Piece::Var(_) => return None,
        }
    }
    Some(out)
}

/// The params of `pipeline` its `matrix`es read (`$(params.p...)` in matrix values).
pub fn matrix_params(pipeline: &Pipeline) -> Vec<String> {
    let mut names = Vec::new();
    for matrix in pipeline.all_tasks().filter_map(|task| task.matrix.as_ref()) {
        let values = matrix
            .params
            .iter()
            .chain(matrix.include.iter().flat_map(|include| &include.params))
            .flat_map(|param| match &param.value.value {
                ParamValue::Str(text) => vec![text.as_str()],
                ParamValue::Array(items) => items.iter().map(String::as_str).collect(),
                ParamValue::Object(map) => map.values().map(String::as_str).collect(),
            });
        for text in values {
            let Ok(template) = parse_template(text) else {
                continue;
            };
            for var in template.vars() {
                if let VarRef::Param { name, .. } = var
                    && !names.contains(name)
                {
                    names.push(name.clone());
                }
            }
        }
    }
    names
}
