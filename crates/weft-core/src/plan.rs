//! A validated pipeline lowered for execution: task indices instead of names, the DAG as
//! adjacency lists with in-degrees, and every `$(...)` pre-parsed with pipeline params
//! already substituted (they are fixed before the run starts).

use crate::contract::ParamValue;
use crate::dag::Graph;
use crate::diag::Diagnostic;
use crate::matrix::{Combination, Resolved, combination_name};
use crate::model::{
    HaltMode, OnError, OnStatusRule, Pipeline, PipelineTask, TaskKind, WhenOperator,
};
use crate::validate::{Limits, PluginCatalog, dag_parents, validate_with};
use crate::vars::{Piece, Selector, Template, VarRef, parse_template, select_string};
use crate::waits::WaitKind;
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::Arc;
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
    /// A matrixed task's status: its combinations' together.
    MatrixStatus(Range<NodeId>),
    /// A matrixed task's reason: its worst combination's.
    MatrixReason(Range<NodeId>),
    /// `$(tasks.t.matrix.r.length)`: how many combinations produced result `r`.
    MatrixResultCount(Range<NodeId>, String),
    /// `$(tasks.t.results.r[*])` in a pipeline result: the array as JSON.
    MatrixResultsJson(Range<NodeId>, String),
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
    pub concurrency: Option<Box<(String, u32)>>,
    /// For one combination of a matrixed task: which (`name` is `<task>-<index>`).
    pub matrix: Option<Box<MatrixMember>>,
    /// For a task that runs a pipeline (`pipelineRef`/`pipelineSpec`): that pipeline,
    /// planned, and where its tasks are among the parent's nodes.
    pub child: Option<Arc<ChildPlan>>,
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

/// One combination of a matrixed pipeline task (see [`crate::matrix`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatrixMember {
    /// The pipeline task's name.
    pub task: String,
    /// Which combination, from 0.
    pub index: usize,
    /// How many combinations the task has; 0 when a matrix param is an empty array (the
    /// task's one node is then skipped, Tekton's "Matrix Parameters have an empty array").
    pub count: usize,
    /// The params this combination gives the task.
    pub params: Combination,
}

impl PlanNode {
    /// The pipeline task it runs: its own name, or its matrixed task's.
    pub fn pipeline_task(&self) -> &str {
        self.matrix
            .as_ref()
            .map_or(&self.name, |member| &member.task)
    }
}

/// A pipeline a pipeline task runs (see [`crate::child`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ChildPlan {
    /// The child pipeline, to plan again when the task gives it a value known only once
    /// the task starts.
    pipeline: Arc<Pipeline>,
    /// The child planned with the values known before the run (stand-ins for the others).
    pub plan: Arc<Plan>,
    /// Whether some param is known only once the task starts.
    dynamic: bool,
    /// The task's `workspaces`: (the child's workspace, the parent's).
    pub bindings: Vec<(String, String)>,
    /// The parent's nodes for the child's (every level of it): the child's node `i` is
    /// the parent's node `nodes.start + i`, called `<task>.<name>`.
    pub nodes: Range<NodeId>,
}

impl ChildPlan {
    /// The plan the child runs with `params` (the task's, rendered when it starts): the
    /// plan made before the run when every param was known then.
    pub fn plan_with(&self, params: &BTreeMap<String, ParamValue>) -> Arc<Plan> {
        if !self.dynamic {
            return Arc::clone(&self.plan);
        }
        let supplied =
            crate::child::planned_params(&self.pipeline, |name| params.get(name).cloned());
        let plan = Plan::build(&self.pipeline, &supplied).bound_to(&self.bindings);
        // Validation keeps the plan's shape fixed (no matrix over a late param); should
        // it differ anyway, the shape made before the run stands.
        if plan.nodes.len() == self.plan.nodes.len() {
            Arc::new(plan)
        } else {
            Arc::clone(&self.plan)
        }
    }

    /// The child's workspaces bound, given the parent's bound ones.
    pub fn bound_workspaces(
        &self,
        parent: &std::collections::BTreeSet<String>,
    ) -> std::collections::BTreeSet<String> {
        self.bindings
            .iter()
            .filter(|(_, outer)| parent.contains(outer))
            .map(|(inner, _)| inner.clone())
            .collect()
    }
}

/// The nodes of one pipeline task: one, or one per combination of its matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TaskNodes {
    nodes: Range<NodeId>,
    /// Its combinations: `None` without a matrix.
    matrix: Option<usize>,
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
    /// How many of `nodes` are the pipeline's own tasks (non-finally, then finally); the
    /// rest are the tasks of the pipelines some of them run ([`PlanNode::child`]).
    pub own_len: usize,
    /// Effective pipeline params (supplied, else default).
    pub params: BTreeMap<String, ParamValue>,
    /// `spec.results`: name and value template.
    pub(crate) results: Vec<(String, Template<RunVar>)>,
    /// `spec.concurrency`, its group rendered with the run's params.
    pub concurrency: Option<RunConcurrency>,
    index: HashMap<String, NodeId>,
    /// Pipeline task name -> its nodes.
    tasks: HashMap<String, TaskNodes>,
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
    let mut found = validate_with(&pipeline, supplied, catalog, &Limits::default());
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
        Plan::with_limits(pipeline, supplied, catalog, &Limits::default())
    }

    /// [`Plan::new`] under the operator's `limits`.
    pub fn with_limits(
        pipeline: &Pipeline,
        supplied: &BTreeMap<String, ParamValue>,
        catalog: Option<&dyn PluginCatalog>,
        limits: &Limits,
    ) -> Result<Plan, Vec<Diagnostic>> {
        let diagnostics = validate_with(pipeline, supplied, catalog, limits);
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

    /// The nodes pipeline task `task` runs as: one, or one per matrix combination.
    pub fn task_nodes(&self, task: &str) -> Option<Range<NodeId>> {
        self.tasks.get(task).map(|nodes| nodes.nodes.clone())
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
        // Each pipeline task's nodes: consecutive ids, one per matrix combination.
        let fan_outs: Vec<Option<Vec<Combination>>> = tasks
            .iter()
            .map(|task| {
                let resolved = Resolved::new(task.matrix.as_ref()?, &params)?;
                Some(if resolved.has_empty_param() {
                    Vec::new()
                } else {
                    crate::matrix::fan_out(&resolved)
                })
            })
            .collect();
        let mut task_nodes: HashMap<String, TaskNodes> = HashMap::with_capacity(tasks.len());
        let mut ranges = Vec::with_capacity(tasks.len());
        let mut next = 0;
        for (task, fan_out) in tasks.iter().zip(&fan_outs) {
            let len = fan_out
                .as_ref()
                .map_or(1, |combinations| combinations.len().max(1));
            ranges.push(next..next + len);
            task_nodes
                .entry(task.name.value.clone())
                .or_insert_with(|| TaskNodes {
                    nodes: next..next + len,
                    matrix: fan_out.as_ref().map(Vec::len),
                });
            next += len;
        }
        let dag_len = ranges
            .get(..pipeline.tasks.len())
            .and_then(|dag| dag.last())
            .map_or(0, |range| range.end);
        let dag_index: HashMap<&str, usize> = pipeline
            .tasks
            .iter()
            .enumerate()
            .map(|(i, task)| (task.name.value.as_str(), i))
            .collect();
        let mut parents: Vec<Vec<usize>> = Vec::with_capacity(dag_len);
        for (task, range) in pipeline.tasks.iter().zip(&ranges) {
            let task_parents: Vec<NodeId> = dag_parents(task, &dag_index)
                .into_iter()
                .flat_map(|parent| ranges[parent].clone())
                .collect();
            for _ in range.clone() {
                parents.push(task_parents.clone());
            }
        }
        let graph = Graph::from_parents(&parents);
        let lowering = Lowering {
            params: &params,
            tasks: &task_nodes,
            pipeline_name: &pipeline.name.value,
        };
        let mut index = HashMap::with_capacity(next);
        let mut nodes = Vec::with_capacity(next);
        for ((task, fan_out), range) in tasks.iter().zip(&fan_outs).zip(&ranges) {
            let node = lowering.node(task);
            match fan_out {
                None => {
                    index.entry(task.name.value.clone()).or_insert(range.start);
                    nodes.push(node);
                }
                Some(combinations) if combinations.is_empty() => {
                    index.entry(task.name.value.clone()).or_insert(range.start);
                    nodes.push(PlanNode {
                        matrix: Some(Box::new(MatrixMember {
                            task: task.name.value.clone(),
                            index: 0,
                            count: 0,
                            params: Combination::new(),
                        })),
                        ..node
                    });
                }
                Some(combinations) => {
                    for (i, combination) in combinations.iter().enumerate() {
                        let name = combination_name(&task.name.value, i);
                        index.entry(name.clone()).or_insert(range.start + i);
                        let mut member = node.clone();
                        member.name = name;
                        member
                            .params
                            .extend(combination.iter().map(|(param, value)| {
                                (
                                    param.clone(),
                                    ValueTemplate::Fixed(ParamValue::Str(value.clone())),
                                )
                            }));
                        member.matrix = Some(Box::new(MatrixMember {
                            task: task.name.value.clone(),
                            index: i,
                            count: combinations.len(),
                            params: combination.clone(),
                        }));
                        nodes.push(member);
                    }
                }
            }
        }
        for (id, node) in nodes.iter_mut().enumerate() {
            node.children = graph.children.get(id).cloned().unwrap_or_default();
            node.parent_count = graph.parent_count.get(id).copied().unwrap_or(0);
        }
        let own_len = nodes.len();
        // Pipelines in pipelines: each child's nodes follow the pipeline's own.
        for (task, range) in tasks.iter().zip(&ranges) {
            let Some(pipeline) = task.child.as_ref().and_then(|c| c.pipeline.as_ref()) else {
                continue;
            };
            let known: BTreeMap<&str, Option<ParamValue>> = task
                .params
                .iter()
                .map(|param| {
                    let value = crate::child::fixed_value(&param.value.value, &params);
                    (param.name.value.as_str(), value)
                })
                .collect();
            let supplied = crate::child::planned_params(pipeline, |name| known.get(name)?.clone());
            let bindings: Vec<(String, String)> = task
                .workspaces
                .iter()
                .map(|b| (b.name.value.clone(), b.workspace.value.clone()))
                .collect();
            let plan = Plan::build(pipeline, &supplied).bound_to(&bindings);
            let base = nodes.len();
            for (inner_id, inner) in plan.nodes.iter().enumerate() {
                let name = crate::child::nested_name(&task.name.value, &inner.name);
                index.entry(name.clone()).or_insert(base + inner_id);
                nodes.push(PlanNode {
                    name,
                    children: inner.children.iter().map(|c| c + base).collect(),
                    // The child's run state runs its children; here they are only named.
                    child: None,
                    ..inner.clone()
                });
            }
            nodes[range.start].child = Some(Arc::new(ChildPlan {
                pipeline: Arc::new(pipeline.clone()),
                plan: Arc::new(plan),
                dynamic: known.values().any(Option::is_none),
                bindings,
                nodes: base..nodes.len(),
            }));
        }
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
            own_len,
            params,
            results,
            index,
            tasks: task_nodes,
        }
    }

    /// This plan with its tasks' workspaces renamed by `bindings` (a child's workspace ->
    /// the parent's); a workspace the parent does not bind (an optional one) is dropped.
    fn bound_to(mut self, bindings: &[(String, String)]) -> Plan {
        for node in &mut self.nodes {
            node.workspaces.retain_mut(|(_, workspace)| {
                match bindings.iter().find(|(inner, _)| inner == workspace) {
                    Some((_, outer)) => {
                        workspace.clone_from(outer);
                        true
                    }
                    None => false,
                }
            });
        }
        self
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
                .and_then(|value| crate::vars::select_string(value, selector))
                .unwrap_or_default(),
            crate::vars::Piece::Var(_) => String::new(),
        })
        .collect()
}

struct Lowering<'a> {
    params: &'a BTreeMap<String, ParamValue>,
    tasks: &'a HashMap<String, TaskNodes>,
    pipeline_name: &'a str,
}

impl Lowering<'_> {
    /// `task` as one node (a matrixed task's combinations are copies of it with their
    /// params added); its place in the DAG is filled in by the caller.
    fn node(&self, task: &PipelineTask) -> PlanNode {
        let mut result_refs = Vec::new();
        let params = task
            .params
            .iter()
            .map(|param| {
                let value = self.value(&param.value.value, task, &mut result_refs);
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
                        let value = self.value(&param.value.value, task, &mut result_refs);
                        (param.name.value.clone(), value)
                    })
                    .collect(),
            })
            .collect();
        let when = task
            .when
            .iter()
            .map(|expr| WhenTemplate {
                input: self.string(&expr.input.value, task, &mut result_refs),
                operator: expr.operator,
                values: expr
                    .values
                    .iter()
                    .flat_map(|value| self.elements(&value.value, task, &mut result_refs))
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
                .map(|c| Box::new((params_only(&c.group.value, self.params), c.limit.value))),
            matrix: None,
            child: None,
            children: Vec::new(),
            parent_count: 0,
            params,
            gate_checks,
            when,
            result_refs,
        }
    }

    /// The whole-value `$(tasks.t.results.r[*])` of a matrixed task, if `text` is exactly
    /// that: one element per combination.
    fn matrix_results(
        &self,
        text: &str,
        refs: &mut Vec<(NodeId, String)>,
    ) -> Option<Vec<Template<RunVar>>> {
        let template = parse_template(text).ok()?;
        let VarRef::MatrixResults { task, result } = template.sole_var()? else {
            return None;
        };
        let nodes = self.tasks.get(task)?.nodes.clone();
        Some(
            nodes
                .map(|id| {
                    refs.push((id, result.clone()));
                    Template {
                        pieces: vec![Piece::Var(RunVar::TaskResult(id, result.clone()))],
                    }
                })
                .collect(),
        )
    }

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
                None => match self.matrix_results(text, refs) {
                    Some(items) => ValueTemplate::Array(items),
                    None => ValueTemplate::Str(self.string(text, task, refs)),
                },
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
            _ => match self.matrix_results(text, refs) {
                Some(items) => items,
                None => vec![self.string(text, task, refs)],
            },
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
            let node = |name: &str| self.tasks.get(name).map(|nodes| nodes.nodes.start);
            let matrixed = |name: &str| {
                self.tasks
                    .get(name)
                    .and_then(|nodes| Some((nodes.nodes.clone(), nodes.matrix?)))
            };
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
                VarRef::TaskStatus { task } => match (matrixed(&task), node(&task)) {
                    (Some((nodes, _)), _) => RunVar::MatrixStatus(nodes),
                    (None, Some(id)) => RunVar::TaskStatus(id),
                    (None, None) => continue,
                },
                VarRef::TaskReason { task } => match (matrixed(&task), node(&task)) {
                    (Some((nodes, _)), _) => RunVar::MatrixReason(nodes),
                    (None, Some(id)) => RunVar::TaskReason(id),
                    (None, None) => continue,
                },
                VarRef::MatrixLength { task } => {
                    let count = matrixed(&task).map_or(0, |(_, count)| count);
                    push_literal(&mut pieces, count.to_string());
                    continue;
                }
                VarRef::MatrixResultLength { task, result } => match matrixed(&task) {
                    Some((nodes, _)) => RunVar::MatrixResultCount(nodes, result),
                    None => continue,
                },
                VarRef::MatrixResults { task, result } => match matrixed(&task) {
                    Some((nodes, _)) => {
                        refs.extend(nodes.clone().map(|id| (id, result.clone())));
                        RunVar::MatrixResultsJson(nodes, result)
                    }
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

#[cfg(all(test, target_pointer_width = "64"))]
mod size_tests {
    /// A plan's nodes live for the whole run: at 100,000 tasks each byte here is 100 KB.
    /// Rare parts (a concurrency group, a matrix combination) are boxed.
    #[test]
    fn a_plan_node_stays_small() {
        assert!(std::mem::size_of::<super::PlanNode>() <= 352);
    }
}
