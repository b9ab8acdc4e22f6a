//! A validated pipeline lowered for execution: task indices instead of names, the DAG as
//! adjacency lists with in-degrees, and every `$(...)` pre-parsed with pipeline params
//! already substituted (they are fixed before the run starts).

use crate::contract::ParamValue;
use crate::dag::Graph;
use crate::diag::Diagnostic;
use crate::model::{
    HaltMode, OnError, OnStatusRule, Pipeline, PipelineTask, TaskKind, WhenOperator,
};
use crate::validate::{PluginCatalog, dag_parents, select_string, validate};
use crate::vars::{Piece, Selector, Template, VarRef, parse_template};
use crate::waits::WaitKind;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Index of a task in [`Plan::nodes`]: non-finally tasks first (declaration order), then
/// finally tasks.
pub type NodeId = usize;

/// A variable only known while the run goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RunVar {
    TaskResult(NodeId, String),
    TaskStatus(NodeId),
    TaskReason(NodeId),
    TasksStatus,
    TasksOutcome,
    RunName,
    RunUid,
    TaskRetryCount,
    WorkspaceBound(String),
}

/// A param value with its run-time variables still to fill in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ValueTemplate {
    Str(Template<RunVar>),
    Array(Vec<Template<RunVar>>),
    Object(BTreeMap<String, Template<RunVar>>),
    /// Fully known at plan time (e.g. `$(params.arr[*])`).
    Fixed(ParamValue),
}

/// A `when` expression ready to evaluate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WhenTemplate {
    pub input: Template<RunVar>,
    pub operator: WhenOperator,
    pub values: Vec<Template<RunVar>>,
}

/// A run's concurrency group, rendered (release-control.md section 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunConcurrency {
    /// The group, params substituted.
    pub group: String,
    /// Slots in the group.
    pub limit: u32,
    /// What an arrival does to the others.
    pub policy: crate::queue::QueuePolicy,
}

/// One more plugin of a gate, its params still to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GateCheckPlan {
    pub plugin: String,
    pub params: Vec<(String, ValueTemplate)>,
}

/// One task of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanNode {
    /// Pipeline task name.
    pub name: String,
    /// Plugin (`taskRef.name`; a gate's plugin; empty for approvals and interventions).
    pub plugin: String,
    /// The steps it runs instead of `plugin` (a Task made of plugin steps), in order.
    pub steps: Option<Box<crate::model::TaskSteps>>,
    /// What the task waits for, if it is a wait (release-control.md).
    pub wait: Option<WaitKind>,
    /// In `spec.finally`.
    pub is_finally: bool,
    /// `retries`.
    pub retries: u32,
    /// `timeout`.
    pub timeout: Option<Duration>,
    /// `secrets`.
    pub secrets: Vec<String>,
    /// `workspaces`: (task-side name, pipeline workspace).
    pub workspaces: Vec<(String, String)>,
    /// `onError`.
    pub on_error: OnError,
    /// `onStatus`.
    pub on_status: Vec<OnStatusRule>,
    /// `halt`.
    pub halt: HaltMode,
    /// `idempotent`.
    pub idempotent: bool,
    /// `concurrency`: the group (params substituted) and its limit; slots are queued.
    pub concurrency: Option<(String, u32)>,
    /// Tasks that wait for this one (non-finally only).
    pub children: Vec<NodeId>,
    /// How many distinct tasks this one waits for.
    pub parent_count: u32,
    pub(crate) params: Vec<(String, ValueTemplate)>,
    /// A gate's further plugins (from the `gates:` sugar), all sampled with its own.
    pub(crate) gate_checks: Vec<GateCheckPlan>,
    pub(crate) when: Vec<WhenTemplate>,
    /// Results this task consumes: if one is missing, it is skipped `ResultsMissing`.
    pub(crate) result_refs: Vec<(NodeId, String)>,
}

/// A validated, lowered pipeline. Immutable; share it with `Arc`.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// `metadata.name`.
    pub pipeline_name: String,
    /// Every task: non-finally first, then finally.
    pub nodes: Vec<PlanNode>,
    /// How many of `nodes` are non-finally (they come first).
    pub dag_len: usize,
    /// Effective pipeline params (supplied, else default).
    pub params: BTreeMap<String, ParamValue>,
    /// `spec.results`: name and value template.
    pub(crate) results: Vec<(String, Template<RunVar>)>,
    /// `spec.concurrency`, its group rendered with the run's params.
    pub concurrency: Option<RunConcurrency>,
    index: HashMap<String, NodeId>,
}

/// Parses, validates and plans in one go; all problems (structural and semantic) are
/// returned together, sorted by position.
pub fn load(
    source: &str,
    file: &str,
    supplied: &BTreeMap<String, ParamValue>,
    catalog: Option<&dyn PluginCatalog>,
) -> Result<Plan, Vec<Diagnostic>> {
    let parsed = crate::parse::documents::parse_single(source, file);
    let supplied = &parsed.supplied(supplied);
    let mut diagnostics = parsed.diagnostics;
    let Some(pipeline) = parsed.pipeline else {
        return Err(diagnostics);
    };
    let mut found = validate(&pipeline, supplied, catalog);
    parsed.layout.label(&mut found);
    diagnostics.extend(found);
    if !diagnostics.is_empty() {
        diagnostics.sort_by_key(|d| (d.line, d.column));
        return Err(diagnostics);
    }
    Ok(Plan::build(&pipeline, supplied))
}

impl Plan {
    /// Validates `pipeline` (see [`validate`]) and lowers it.
    pub fn new(
        pipeline: &Pipeline,
        supplied: &BTreeMap<String, ParamValue>,
        catalog: Option<&dyn PluginCatalog>,
    ) -> Result<Plan, Vec<Diagnostic>> {
        let diagnostics = validate(pipeline, supplied, catalog);
        if diagnostics.is_empty() {
            Ok(Plan::build(pipeline, supplied))
        } else {
            Err(diagnostics)
        }
    }

    /// The node called `name`.
    pub fn node_id(&self, name: &str) -> Option<NodeId> {
        self.index.get(name).copied()
    }

    /// Lowers a pipeline that passed validation (never panics on one that did not: bad
    /// references become literal text).
    fn build(pipeline: &Pipeline, supplied: &BTreeMap<String, ParamValue>) -> Plan {
        let mut params = BTreeMap::new();
        for decl in &pipeline.params {
            if let Some(value) = supplied
                .get(&decl.name.value)
                .cloned()
                .or_else(|| decl.default.as_ref().map(|default| default.value.clone()))
            {
                params.insert(decl.name.value.clone(), value);
            }
        }
        let tasks: Vec<&PipelineTask> = pipeline.all_tasks().collect();
        let mut index = HashMap::with_capacity(tasks.len());
        for (id, task) in tasks.iter().enumerate() {
            index.entry(task.name.value.clone()).or_insert(id);
        }
        let dag_len = pipeline.tasks.len();
        let dag_index: HashMap<&str, usize> = pipeline
            .tasks
            .iter()
            .enumerate()
            .map(|(i, task)| (task.name.value.as_str(), i))
            .collect();
        let parents: Vec<Vec<usize>> = pipeline
            .tasks
            .iter()
            .map(|task| dag_parents(task, &dag_index))
            .collect();
        let graph = Graph::from_parents(&parents);
        let lowering = Lowering {
            params: &params,
            index: &index,
            pipeline_name: &pipeline.name.value,
        };
        let nodes = tasks
            .iter()
            .enumerate()
            .map(|(id, task)| {
                let mut result_refs = Vec::new();
                let node_params = task
                    .params
                    .iter()
                    .map(|param| {
                        let value = lowering.value(&param.value.value, task, &mut result_refs);
                        (param.name.value.clone(), value)
                    })
                    .collect();
                let gate_checks = task
                    .gate_checks
                    .iter()
                    .map(|check| GateCheckPlan {
                        plugin: check.plugin.value.clone(),
                        params: check
                            .params
                            .iter()
                            .map(|param| {
                                let value =
                                    lowering.value(&param.value.value, task, &mut result_refs);
                                (param.name.value.clone(), value)
                            })
                            .collect(),
                    })
                    .collect();
                let when = task
                    .when
                    .iter()
                    .map(|expr| WhenTemplate {
                        input: lowering.string(&expr.input.value, task, &mut result_refs),
                        operator: expr.operator,
                        values: expr
                            .values
                            .iter()
                            .flat_map(|value| {
                                lowering.elements(&value.value, task, &mut result_refs)
                            })
                            .collect(),
                    })
                    .collect();
                PlanNode {
                    name: task.name.value.clone(),
                    plugin: task.plugin.value.clone(),
                    wait: match task.kind {
                        TaskKind::Plugin => None,
                        TaskKind::Approval => Some(WaitKind::Approval),
                        TaskKind::Intervention => Some(WaitKind::Intervention),
                        TaskKind::Gate => Some(WaitKind::Gate(
                            task.gate.as_ref().map(|g| g.value).unwrap_or_default(),
                        )),
                    },
                    steps: task.steps.clone(),
                    is_finally: task.is_finally,
                    retries: task.retries,
                    timeout: task.timeout,
                    secrets: task.secrets.iter().map(|s| s.value.clone()).collect(),
                    workspaces: task
                        .workspaces
                        .iter()
                        .map(|w| (w.name.value.clone(), w.workspace.value.clone()))
                        .collect(),
                    on_error: task.on_error,
                    on_status: task.on_status.clone(),
                    halt: task.halt,
                    idempotent: task.idempotent,
                    concurrency: task
                        .concurrency
                        .as_ref()
                        .map(|c| (params_only(&c.group.value, &params), c.limit.value)),
                    children: graph.children.get(id).cloned().unwrap_or_default(),
                    parent_count: graph.parent_count.get(id).copied().unwrap_or(0),
                    params: node_params,
                    gate_checks,
                    when,
                    result_refs,
                }
            })
            .collect();
        let results = pipeline
            .results
            .iter()
            .map(|result| {
                let mut ignored = Vec::new();
                let template = lowering.template(&result.value.value, 0, &mut ignored);
                (result.name.value.clone(), template)
            })
            .collect();
        Plan {
            pipeline_name: pipeline.name.value.clone(),
            concurrency: pipeline.concurrency.as_ref().map(|c| RunConcurrency {
                group: params_only(&c.group.value, &params),
                limit: c.limit.value,
                policy: c.policy.value,
            }),
            nodes,
            dag_len,
            params,
            results,
            index,
        }
    }
}

/// `text` with its `$(params.NAME)` references substituted (validation allowed no others).
fn params_only(text: &str, params: &BTreeMap<String, ParamValue>) -> String {
    let Ok(template) = parse_template(text) else {
        return text.to_string();
    };
    template
        .pieces
        .iter()
        .map(|piece| match piece {
            crate::vars::Piece::Literal(literal) => literal.clone(),
            crate::vars::Piece::Var(VarRef::Param { name, selector }) => params
                .get(name)
                .and_then(|value| crate::validate::select_string(value, selector))
                .unwrap_or_default(),
            crate::vars::Piece::Var(_) => String::new(),
        })
        .collect()
}

struct Lowering<'a> {
    params: &'a BTreeMap<String, ParamValue>,
    index: &'a HashMap<String, NodeId>,
    pipeline_name: &'a str,
}

impl Lowering<'_> {
    /// The whole-value `$(params.x[*])`, if `text` is exactly that.
    fn star(&self, text: &str) -> Option<ParamValue> {
        let template = parse_template(text).ok()?;
        match template.sole_var()? {
            VarRef::Param {
                name,
                selector: Selector::Star,
            } => self.params.get(name).cloned(),
            _ => None,
        }
    }

    fn value(
        &self,
        value: &ParamValue,
        task: &PipelineTask,
        refs: &mut Vec<(NodeId, String)>,
    ) -> ValueTemplate {
        match value {
            ParamValue::Str(text) => match self.star(text) {
                Some(fixed) => ValueTemplate::Fixed(fixed),
                None => ValueTemplate::Str(self.string(text, task, refs)),
            },
            ParamValue::Array(items) => ValueTemplate::Array(
                items
                    .iter()
                    .flat_map(|item| self.elements(item, task, refs))
                    .collect(),
            ),
            ParamValue::Object(map) => ValueTemplate::Object(
                map.iter()
                    .map(|(key, text)| (key.clone(), self.string(text, task, refs)))
                    .collect(),
            ),
        }
    }

    /// An array element: `$(params.arr[*])` expands into several.
    fn elements(
        &self,
        text: &str,
        task: &PipelineTask,
        refs: &mut Vec<(NodeId, String)>,
    ) -> Vec<Template<RunVar>> {
        match self.star(text) {
            Some(ParamValue::Array(items)) => items
                .into_iter()
                .map(|item| Template {
                    pieces: vec![Piece::Literal(item)],
                })
                .collect(),
            _ => vec![self.string(text, task, refs)],
        }
    }

    fn string(
        &self,
        text: &str,
        task: &PipelineTask,
        refs: &mut Vec<(NodeId, String)>,
    ) -> Template<RunVar> {
        self.template(text, task.retries, refs)
    }

    fn template(
        &self,
        text: &str,
        retries: u32,
        refs: &mut Vec<(NodeId, String)>,
    ) -> Template<RunVar> {
        let Ok(parsed) = parse_template(text) else {
            return Template {
                pieces: vec![Piece::Literal(text.to_string())],
            };
        };
        let mut pieces: Vec<Piece<RunVar>> = Vec::with_capacity(parsed.pieces.len());
        let push_literal = |pieces: &mut Vec<Piece<RunVar>>, text: String| {
            if let Some(Piece::Literal(last)) = pieces.last_mut() {
                last.push_str(&text);
            } else {
                pieces.push(Piece::Literal(text));
            }
        };
        for piece in parsed.pieces {
            let var = match piece {
                Piece::Literal(literal) => {
                    push_literal(&mut pieces, literal);
                    continue;
                }
                Piece::Var(var) => var,
            };
            let node = |name: &str| self.index.get(name).copied();
            let run_var = match var {
                VarRef::Param { name, selector } => {
                    let text = self
                        .params
                        .get(&name)
                        .and_then(|value| select_string(value, &selector))
                        .unwrap_or_default();
                    push_literal(&mut pieces, text);
                    continue;
                }
                VarRef::PipelineName => {
                    push_literal(&mut pieces, self.pipeline_name.to_string());
                    continue;
                }
                VarRef::TaskRetries => {
                    push_literal(&mut pieces, retries.to_string());
                    continue;
                }
                VarRef::TaskResult { task, result } => match node(&task) {
                    Some(id) => {
                        refs.push((id, result.clone()));
                        RunVar::TaskResult(id, result)
                    }
                    None => continue,
                },
                VarRef::TaskStatus { task } => match node(&task) {
                    Some(id) => RunVar::TaskStatus(id),
                    None => continue,
                },
                VarRef::TaskReason { task } => match node(&task) {
                    Some(id) => RunVar::TaskReason(id),
                    None => continue,
                },
                VarRef::TasksStatus => RunVar::TasksStatus,
                VarRef::TasksOutcome => RunVar::TasksOutcome,
                VarRef::RunName => RunVar::RunName,
                VarRef::RunUid => RunVar::RunUid,
                VarRef::TaskRetryCount => RunVar::TaskRetryCount,
                VarRef::WorkspaceBound { workspace } => RunVar::WorkspaceBound(workspace),
            };
            pieces.push(Piece::Var(run_var));
        }
        Template { pieces }
    }
}
