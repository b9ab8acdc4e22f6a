//! The typed pipeline model. Every node keeps the position it was written at, so later
//! checks (validation, planning) can point at the exact line and column.

use crate::contract::{ParamType, ParamValue};
use crate::diag::{Pos, Spanned};
use std::time::Duration;

/// The `apiVersion` a pipeline was written in. All three read the same schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    /// `tekton.dev/v1`.
    TektonV1,
    /// `tekton.dev/v1beta1`.
    TektonV1Beta1,
    /// `weft.dev/v1`.
    WeftV1,
}

/// A parsed pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// File name given to the parser, used in diagnostics.
    pub file: String,
    /// Which `apiVersion` it declared.
    pub api_version: ApiVersion,
    /// `metadata.name`.
    pub name: Spanned<String>,
    /// `spec.description`.
    pub description: Option<String>,
    /// `spec.params`.
    pub params: Vec<ParamDecl>,
    /// `spec.workspaces`.
    pub workspaces: Vec<WorkspaceDecl>,
    /// `spec.tasks`, in declaration order.
    pub tasks: Vec<PipelineTask>,
    /// `spec.finally`, in declaration order.
    pub finally: Vec<PipelineTask>,
    /// `spec.results`.
    pub results: Vec<PipelineResult>,
    /// `spec.reporters` (weft): kept as written; behaviour lives in the engine.
    pub reporters: Vec<Spanned<serde_json::Value>>,
    /// `spec.decorators` (weft).
    pub decorators: Vec<Decorator>,
    /// `spec.recovery.strategy` (weft).
    pub recovery: Option<Spanned<RecoveryStrategy>>,
    /// `spec.concurrency` (weft): the group runs of this pipeline share a limit in.
    pub concurrency: Option<Concurrency>,
    /// `spec.workspaceSnapshots` (weft).
    pub workspace_snapshots: bool,
    /// Where `spec` starts (diagnostics about the whole spec point here).
    pub spec_pos: Pos,
}

impl Pipeline {
    /// A pipeline called `name` with nothing in it yet, its spec at `spec_pos` of `file`.
    pub fn empty(
        file: &str,
        api_version: ApiVersion,
        name: Spanned<String>,
        spec_pos: Pos,
    ) -> Self {
        Pipeline {
            file: file.to_string(),
            api_version,
            name,
            description: None,
            params: Vec::new(),
            workspaces: Vec::new(),
            tasks: Vec::new(),
            finally: Vec::new(),
            results: Vec::new(),
            reporters: Vec::new(),
            decorators: Vec::new(),
            recovery: None,
            concurrency: None,
            workspace_snapshots: false,
            spec_pos,
        }
    }

    /// Every task, non-finally first, then finally, with its section.
    pub fn all_tasks(&self) -> impl Iterator<Item = &PipelineTask> {
        self.tasks.iter().chain(self.finally.iter())
    }

    /// Every task of this pipeline, then of the pipelines its tasks run, to any depth
    /// (see [`crate::child`]), each with the pipeline it is written in and the name the
    /// run knows it by (`deploy.build`).
    pub fn tasks_deep(&self) -> Vec<NestedTask<'_>> {
        let mut out: Vec<NestedTask<'_>> = self
            .all_tasks()
            .map(|task| NestedTask {
                pipeline: self,
                name: task.name.value.clone(),
                task,
            })
            .collect();
        for task in self.all_tasks() {
            if let Some(child) = task.child.as_ref().and_then(|c| c.pipeline.as_ref()) {
                out.extend(child.tasks_deep().into_iter().map(|inner| NestedTask {
                    name: nested_name(&task.name.value, &inner.name),
                    ..inner
                }));
            }
        }
        out
    }
}

/// The name of task `inner` of the child pipeline pipeline task `task` runs (see
/// [`crate::child`]): `<task>.<inner>`.
pub fn nested_name(task: &str, inner: &str) -> String {
    format!("{task}.{inner}")
}

/// A task of a pipeline or of a pipeline it runs ([`Pipeline::tasks_deep`]).
#[derive(Debug, Clone)]
pub struct NestedTask<'p> {
    /// The pipeline it is written in.
    pub pipeline: &'p Pipeline,
    /// The name the run knows it by.
    pub name: String,
    /// The task.
    pub task: &'p PipelineTask,
}

/// One entry of `spec.params`.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamDecl {
    /// `name`.
    pub name: Spanned<String>,
    /// `type` (inferred from `default` when omitted, as Tekton does; else string).
    pub param_type: ParamType,
    /// `default`.
    pub default: Option<Spanned<ParamValue>>,
    /// `description`.
    pub description: String,
    /// `enum`: allowed string values; empty means any.
    pub allowed: Vec<String>,
    /// `properties` keys of an object param.
    pub properties: Vec<String>,
    /// Where the entry starts.
    pub pos: Pos,
}

impl ParamDecl {
    /// The param as a plugin would declare it (a Task's or a child pipeline's params are
    /// checked as a plugin's).
    pub fn spec(&self) -> crate::contract::ParamSpec {
        crate::contract::ParamSpec {
            name: self.name.value.clone(),
            description: self.description.clone(),
            param_type: self.param_type,
            default: self.default.as_ref().map(|d| d.value.clone()),
            allowed: self.allowed.clone(),
        }
    }
}

/// One entry of `spec.workspaces`.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkspaceDecl {
    /// `name`.
    pub name: Spanned<String>,
    /// `description`.
    pub description: String,
    /// `optional`.
    pub optional: bool,
}

/// One entry of `spec.results`.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineResult {
    /// `name`.
    pub name: Spanned<String>,
    /// `value` (usually `$(tasks.t.results.r)`).
    pub value: Spanned<String>,
    /// `description`.
    pub description: String,
}

/// One entry of `spec.decorators` (weft): a form decorator run when a run is submitted.
#[derive(Debug, Clone, PartialEq)]
pub struct Decorator {
    /// `id`: the form decorator plugin.
    pub id: Spanned<String>,
    /// `input`, kept as written (`Null` when absent).
    pub input: serde_json::Value,
    /// Where `input` starts (the entry's position when absent).
    pub input_pos: Pos,
    /// `secrets`: the secrets the decorator may read.
    pub secrets: Vec<Spanned<String>>,
    /// Index within `spec.decorators`.
    pub index: usize,
    /// Where the entry starts.
    pub pos: Pos,
}

impl Decorator {
    /// Its path in the document, e.g. `spec.decorators[1]`.
    pub fn path(&self) -> String {
        format!("spec.decorators[{}]", self.index)
    }
}

/// `spec.recovery.strategy` (weft): what happens to a run whose engine died.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryStrategy {
    /// In-flight tasks become `Errored` (`EngineRestarted`).
    None,
    /// Re-run from the beginning.
    StartOver,
    /// Keep finished tasks, re-run in-flight ones.
    Resume,
}

/// `onError` of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// A failure fails the task and stops the run (default).
    #[default]
    StopAndFail,
    /// A failure is tolerated: `SucceededWithWarnings`, reason `FailureIgnored`.
    Continue,
}

/// `halt` of a task (weft): what running siblings do when this task halts the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HaltMode {
    /// Let them finish (default).
    #[default]
    Wait,
    /// Cancel them (outcome `Cancelled`, reason `RunHalted`).
    Cancel,
}

/// The outcome an `onStatus` rule maps an exit code to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyOutcome {
    /// `success`.
    Success,
    /// `warning`.
    Warning,
    /// `failure`.
    Failure,
    /// `skipped`.
    Skipped,
}

/// What a task's ending does to the rest of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Flow {
    /// Nothing changes.
    Continue,
    /// Nothing new starts; running tasks finish; then `finally`.
    Stop,
    /// Early successful exit: nothing new starts; then `finally`; the run succeeds.
    Halt,
}

/// One `onStatus` rule (weft).
#[derive(Debug, Clone, PartialEq)]
pub struct OnStatusRule {
    /// `exitCodes` this rule matches.
    pub exit_codes: Vec<i32>,
    /// `outcome`.
    pub outcome: PolicyOutcome,
    /// `flow`; `None` means the outcome's default.
    pub flow: Option<Flow>,
    /// Where the rule starts.
    pub pos: Pos,
}

/// `when` operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenOperator {
    /// `in`.
    In,
    /// `notin`.
    NotIn,
}

/// One `when` expression.
#[derive(Debug, Clone, PartialEq)]
pub struct WhenExpr {
    /// `input`.
    pub input: Spanned<String>,
    /// `operator`.
    pub operator: WhenOperator,
    /// `values`.
    pub values: Vec<Spanned<String>>,
    /// Where the expression starts.
    pub pos: Pos,
}

/// One entry of a task's `params`.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskParam {
    /// `name`.
    pub name: Spanned<String>,
    /// `value`.
    pub value: Spanned<ParamValue>,
}

/// One entry of a task's `workspaces`.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkspaceBinding {
    /// `name`: the workspace as the task knows it.
    pub name: Spanned<String>,
    /// `workspace`: the pipeline workspace bound to it (defaults to `name`).
    pub workspace: Spanned<String>,
}

/// What a pipeline task does (release-control.md): run a plugin, or wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TaskKind {
    /// Runs its plugin (`taskRef: {name}`, or `kind: Task`).
    #[default]
    Plugin,
    /// Waits for approvers' votes (`taskRef: {kind: ApprovalTask}`).
    Approval,
    /// Waits for a person to resume it (`taskRef: {kind: ManualIntervention}`).
    Intervention,
    /// Samples a gate plugin until it passes steadily (`taskRef: {kind: Gate, name}`).
    Gate,
}

impl TaskKind {
    /// Whether the task waits instead of running work.
    pub fn waits(self) -> bool {
        !matches!(self, TaskKind::Plugin)
    }
}

/// A concurrency group (release-control.md section 4): `{group, limit, policy}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Concurrency {
    /// The group's name; `$(params.NAME)` is substituted.
    pub group: Spanned<String>,
    /// How many may hold a slot at once (default 1).
    pub limit: Spanned<u32>,
    /// What a new arrival does to the others (default `queue`).
    pub policy: Spanned<crate::queue::QueuePolicy>,
    /// Where the block starts.
    pub pos: Pos,
}

/// One more gate plugin of a gate node (`gates: {before: {plugins: [{name, params}]}}`).
#[derive(Debug, Clone, PartialEq)]
pub struct GateCheck {
    /// The gate plugin.
    pub plugin: Spanned<String>,
    /// Its params.
    pub params: Vec<TaskParam>,
    /// Its path in the document (`spec.tasks[1].gates.before.plugins[1]`).
    pub path: String,
}

/// One pipeline task (in `spec.tasks` or `spec.finally`).
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineTask {
    /// `name`.
    pub name: Spanned<String>,
    /// What it does (`taskRef.kind`).
    pub kind: TaskKind,
    /// `taskRef.name`: the plugin (a gate's plugin for `kind: Gate`; empty for approvals
    /// and interventions).
    pub plugin: Spanned<String>,
    /// `gate` (weft): how a gate is sampled; `None` for the defaults.
    pub gate: Option<Box<Spanned<crate::waits::GateTiming>>>,
    /// More gate plugins sampled with this gate's own, all of which must pass in the same
    /// sample (from the `gates:` sugar, which lists several); empty otherwise.
    pub gate_checks: Vec<GateCheck>,
    /// `params`.
    pub params: Vec<TaskParam>,
    /// `workspaces`.
    pub workspaces: Vec<WorkspaceBinding>,
    /// `runAfter`.
    pub run_after: Vec<Spanned<String>>,
    /// `when`.
    pub when: Vec<WhenExpr>,
    /// `retries`.
    pub retries: u32,
    /// `timeout`; `None` for none (also for `0s`, as in Tekton).
    pub timeout: Option<Duration>,
    /// `onError`.
    pub on_error: OnError,
    /// `onStatus` (weft).
    pub on_status: Vec<OnStatusRule>,
    /// `secrets` (weft).
    pub secrets: Vec<Spanned<String>>,
    /// `halt` (weft).
    pub halt: HaltMode,
    /// `idempotent` (weft): safe to re-run on recovery.
    pub idempotent: bool,
    /// `concurrency` (weft): a group this task's attempts share a limit in, across runs
    /// (GitLab's `resource_group`); policy `queue` only.
    pub concurrency: Option<Box<Concurrency>>,
    /// True for `spec.finally` entries.
    pub is_finally: bool,
    /// Index within its section.
    pub index: usize,
    /// Where the task entry starts.
    pub pos: Pos,
    /// For a task weft wrote from a task's `approval:` or `gates:` block: that block's
    /// path (`spec.tasks[2].approval.before`).
    pub origin: Option<String>,
    /// Its steps, when it runs a Task made of plugin steps (`taskRef.name` naming a
    /// `kind: Task` document, or `taskSpec`); `None` when it runs its plugin.
    pub steps: Option<Box<TaskSteps>>,
    /// `matrix`: the task fans out into one task per combination of these params.
    pub matrix: Option<Box<Matrix>>,
    /// `pipelineRef`/`pipelineSpec`: the task runs a whole pipeline inside the run.
    pub child: Option<Box<ChildPipeline>>,
}

/// A pipeline task that runs a pipeline (Tekton's pipelines in pipelines): the child's
/// tasks run inside the parent run, its `results` are the task's results, its status is
/// the task's status, and the task's `retries` and `timeout` apply to it as a whole.
#[derive(Debug, Clone, PartialEq)]
pub struct ChildPipeline {
    /// `pipelineRef.name` (a `Pipeline` of the file, then of `--pipelines DIR`); `None`
    /// for an inline `pipelineSpec`.
    pub reference: Option<Spanned<String>>,
    /// The pipeline it runs: parsed inline, or resolved from the reference (`None` while
    /// unresolved or when the reference names nothing).
    pub pipeline: Option<Pipeline>,
    /// Where `pipelineRef`/`pipelineSpec` is.
    pub pos: Pos,
}

impl PipelineTask {
    /// Its path in the document, e.g. `spec.tasks[2]` (or the block it was written from).
    pub fn path(&self) -> String {
        if let Some(origin) = &self.origin {
            return origin.clone();
        }
        let section = if self.is_finally { "finally" } else { "tasks" };
        format!("spec.{section}[{}]", self.index)
    }

    /// The path of the field naming its plugin (`spec.tasks[2].taskRef.name`, or a
    /// written-out gate's first plugin, `spec.tasks[2].gates.before.plugins[0].name`).
    pub fn plugin_path(&self) -> String {
        match &self.origin {
            Some(origin) => format!("{origin}.plugins[0].name"),
            None => format!("{}.taskRef.name", self.path()),
        }
    }

    /// Every string that may hold `$(...)` references: param values (its gate checks'
    /// too) and `when` inputs and values.
    pub fn template_strings(&self) -> impl Iterator<Item = &str> {
        let params = self
            .params
            .iter()
            .chain(self.gate_checks.iter().flat_map(|check| &check.params));
        let values = params.flat_map(|param| -> Box<dyn Iterator<Item = &str> + '_> {
            match &param.value.value {
                ParamValue::Str(text) => Box::new(std::iter::once(text.as_str())),
                ParamValue::Array(items) => Box::new(items.iter().map(String::as_str)),
                ParamValue::Object(entries) => Box::new(entries.values().map(String::as_str)),
            }
        });
        let when = self.when.iter().flat_map(|expr| {
            std::iter::once(expr.input.value.as_str())
                .chain(expr.values.iter().map(|value| value.value.as_str()))
        });
        let matrix = self
            .matrix
            .iter()
            .flat_map(|matrix| matrix.all_params())
            .flat_map(|param| -> Box<dyn Iterator<Item = &str> + '_> {
                match &param.value.value {
                    ParamValue::Str(text) => Box::new(std::iter::once(text.as_str())),
                    ParamValue::Array(items) => Box::new(items.iter().map(String::as_str)),
                    ParamValue::Object(entries) => Box::new(entries.values().map(String::as_str)),
                }
            });
        values.chain(when).chain(matrix)
    }
}

/// A pipeline task's `matrix` (Tekton): it fans out into one task per combination.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    /// `matrix.params`: each an array; their cartesian product gives the combinations.
    pub params: Vec<TaskParam>,
    /// `matrix.include`: extra params for matching combinations, or combinations of
    /// their own.
    pub include: Vec<MatrixInclude>,
    /// Where `matrix` starts.
    pub pos: Pos,
}

impl Matrix {
    /// `params` and every `include` entry's params.
    pub fn all_params(&self) -> impl Iterator<Item = &TaskParam> {
        self.params
            .iter()
            .chain(self.include.iter().flat_map(|include| &include.params))
    }
}

/// One entry of `matrix.include`.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixInclude {
    /// `name` (informational, as in Tekton).
    pub name: Option<Spanned<String>>,
    /// `params`: strings.
    pub params: Vec<TaskParam>,
    /// Where the entry starts.
    pub pos: Pos,
}

/// A Task made of plugin steps: a `kind: Task` document a `taskRef.name` names, or a
/// pipeline task's inline `taskSpec` (Tekton's StepAction form: `steps[].ref.name`).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSteps {
    /// `metadata.name` of the Task document; empty for an inline `taskSpec`.
    pub name: String,
    /// The file it is written in (a Task document may be in a `--pipelines` file).
    pub file: String,
    /// The path of its spec (`spec` of a Task document, `spec.tasks[0].taskSpec` inline).
    pub path: String,
    /// `params`: what the pipeline task passes in.
    pub params: Vec<ParamDecl>,
    /// `steps`, in run order.
    pub steps: Vec<Step>,
    /// `results`: each taken from its `value` or from a step result of the same name.
    pub results: Vec<StepTaskResult>,
    /// Where the spec starts.
    pub pos: Pos,
}

/// One step of a Task: a plugin run over the task's workspaces.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// `name`.
    pub name: Spanned<String>,
    /// `ref.name`: the plugin.
    pub plugin: Spanned<String>,
    /// `params`: may read `$(params.NAME)` (the Task's) and earlier steps' results.
    pub params: Vec<TaskParam>,
    /// `onError`: `continue` lets the next steps run after a failure.
    pub on_error: OnError,
    /// `results` it declares (names).
    pub results: Vec<Spanned<String>>,
    /// Index among the steps.
    pub index: usize,
    /// Where it starts.
    pub pos: Pos,
}

/// A Task's result: `value` (`$(steps.NAME.results.R)`) or, without one, the step
/// result of the same name.
#[derive(Debug, Clone, PartialEq)]
pub struct StepTaskResult {
    /// `name`.
    pub name: Spanned<String>,
    /// `value`.
    pub value: Option<Spanned<String>>,
}

#[cfg(all(test, target_pointer_width = "64"))]
mod size_tests {
    /// The model of every task exists while a pipeline is planned: at 100,000 tasks each
    /// byte here is 100 KB of the peak. Rare parts (a gate's timing, a concurrency group,
    /// a matrix) are boxed.
    #[test]
    fn a_task_stays_small() {
        assert!(std::mem::size_of::<super::PipelineTask>() <= 344);
    }
}
