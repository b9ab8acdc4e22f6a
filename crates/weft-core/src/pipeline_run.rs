//! The typed model of a Tekton `PipelineRun` (`tekton.dev/v1` and `v1beta1`) and the pure
//! decisions made from it: which params reach the pipeline, what each workspace binding
//! becomes, the run's timeouts, its name from `generateName`.
//!
//! Parsing is in `parse/pipeline_run.rs`; which pipeline a run runs is decided in
//! `parse/documents.rs`. Turning a `PipelineRun` into a submission (host directories for
//! volumes, the run store) is the front door's (weft-cli).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::contract::ParamValue;
use crate::diag::{Diagnostic, Pos, Spanned, codes};
use crate::model::{ApiVersion, Pipeline};

/// A parsed `PipelineRun`.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineRun {
    /// The file it is in.
    pub file: String,
    /// Its `apiVersion`.
    pub api_version: ApiVersion,
    /// `metadata.name`.
    pub name: Option<Spanned<String>>,
    /// `metadata.generateName`: the run is called this plus five random characters.
    pub generate_name: Option<Spanned<String>>,
    /// Which pipeline it runs.
    pub pipeline: PipelineChoice,
    /// `spec.params`.
    pub params: Vec<RunParam>,
    /// `spec.workspaces`.
    pub workspaces: Vec<RunWorkspace>,
    /// `spec.timeouts` (and v1beta1's `spec.timeout`).
    pub timeouts: RunTimeouts,
    /// Where the timeouts are written (the document's start when they are not).
    pub timeouts_pos: Pos,
    /// `spec.taskRunSpecs`: the per-task timeouts they set.
    pub task_run_specs: Vec<TaskRunSpec>,
    /// `spec.status`.
    pub status: Option<Spanned<SpecStatus>>,
    /// Where the document starts.
    pub pos: Pos,
}

/// `spec.pipelineRef` or `spec.pipelineSpec`.
#[derive(Debug, Clone, PartialEq)]
pub enum PipelineChoice {
    /// `pipelineRef.name`: a `Pipeline` document of the same file or of `--pipelines DIR`.
    Ref(Spanned<String>),
    /// `pipelineSpec`: the pipeline is written in the run (where it starts).
    Inline(Pos),
}

/// One entry of `spec.params`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunParam {
    /// `name`.
    pub name: Spanned<String>,
    /// `value`: a string, an array or an object.
    pub value: Spanned<ParamValue>,
}

/// One entry of `spec.workspaces`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunWorkspace {
    /// `name`: the pipeline workspace it binds.
    pub name: Spanned<String>,
    /// What backs it.
    pub source: VolumeSource,
    /// `subPath`: a directory inside the volume.
    pub sub_path: Option<Spanned<String>>,
    /// Where the entry starts.
    pub pos: Pos,
}

/// What backs a workspace binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeSource {
    /// `emptyDir: {}`: a fresh directory for the run.
    EmptyDir,
    /// `volumeClaimTemplate`: a fresh volume for the run, which weft makes a fresh
    /// directory.
    VolumeClaimTemplate,
    /// `persistentVolumeClaim.claimName`: a host directory given by `--volume NAME=DIR`.
    PersistentVolumeClaim(Spanned<String>),
    /// `configMap.name`: a host directory given by `--volume NAME=DIR`.
    ConfigMap(Spanned<String>),
    /// `secret.secretName`: the secret's keys as read-only files.
    Secret(Spanned<String>),
}

impl VolumeSource {
    /// The name `--volume NAME=DIR` binds, for the sources that need a host directory.
    pub fn volume_name(&self) -> Option<&Spanned<String>> {
        match self {
            VolumeSource::PersistentVolumeClaim(name) | VolumeSource::ConfigMap(name) => Some(name),
            _ => None,
        }
    }

    /// The field naming it, e.g. `persistentVolumeClaim.claimName`.
    pub fn field(&self) -> &'static str {
        match self {
            VolumeSource::EmptyDir => "emptyDir",
            VolumeSource::VolumeClaimTemplate => "volumeClaimTemplate",
            VolumeSource::PersistentVolumeClaim(_) => "persistentVolumeClaim.claimName",
            VolumeSource::ConfigMap(_) => "configMap.name",
            VolumeSource::Secret(_) => "secret.secretName",
        }
    }
}

/// `spec.timeouts`; `None` where not given. `0s` means "no timeout", as in Tekton.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunTimeouts {
    /// `pipeline`: the whole run.
    pub pipeline: Option<Duration>,
    /// `tasks`: the non-finally tasks.
    pub tasks: Option<Duration>,
    /// `finally`: the finally tasks.
    pub finally: Option<Duration>,
}

/// One entry of `spec.taskRunSpecs`: what weft maps of it (the task's timeout).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRunSpec {
    /// `pipelineTaskName`.
    pub task: Spanned<String>,
    /// `timeout`; `None` for none given.
    pub timeout: Option<Option<Duration>>,
    /// Where the entry starts.
    pub pos: Pos,
}

/// `spec.status`: what the run is asked to be when created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecStatus {
    /// `PipelineRunPending`: created, not started until released (`weft runs start`).
    Pending,
    /// `Cancelled` (v1beta1 also `PipelineRunCancelled`): cancelled before anything runs.
    Cancelled,
    /// `CancelledRunFinally`: cancelled, `finally` tasks still run.
    CancelledRunFinally,
    /// `StoppedRunFinally`: stopped, `finally` tasks still run.
    StoppedRunFinally,
}

impl SpecStatus {
    /// The cancel mode a run created with this status is cancelled with.
    pub fn cancel_mode(self) -> Option<crate::status::CancelMode> {
        use crate::status::CancelMode;
        match self {
            SpecStatus::Pending => None,
            SpecStatus::Cancelled => Some(CancelMode::Cancelled),
            SpecStatus::CancelledRunFinally => Some(CancelMode::CancelledRunFinally),
            SpecStatus::StoppedRunFinally => Some(CancelMode::StoppedRunFinally),
        }
    }
}

impl PipelineRun {
    /// The params the run gives its pipeline. Tekton passes a run's params the pipeline
    /// does not declare to nobody (`pipelinerun-with-extra-params.yaml`), so they are left
    /// out here; an inline `pipelineSpec` has them declared already (propagated params,
    /// [`propagate_params`]).
    pub fn params_for(&self, pipeline: &Pipeline) -> BTreeMap<String, ParamValue> {
        self.params
            .iter()
            .filter(|param| {
                pipeline
                    .params
                    .iter()
                    .any(|decl| decl.name.value == param.name.value)
            })
            .map(|param| (param.name.value.clone(), param.value.value.clone()))
            .collect()
    }

    /// The run's name: `metadata.name`, or `generateName` followed by `suffix` (Kubernetes
    /// appends five random lower-case letters and digits).
    pub fn run_name(&self, suffix: &str) -> Option<String> {
        if let Some(name) = &self.name {
            return Some(name.value.clone());
        }
        self.generate_name
            .as_ref()
            .map(|prefix| format!("{}{suffix}", prefix.value))
    }

    /// Checks the run against its pipeline: every workspace binding names a workspace of
    /// the pipeline, every required workspace is bound or can be made fresh, every
    /// `taskRunSpecs` entry names a task, and the timeouts add up (Tekton's rule:
    /// `tasks` and `finally` each, and together, within `pipeline`).
    pub fn check(&self, pipeline: &Pipeline) -> Vec<Diagnostic> {
        let mut found = Vec::new();
        for (index, binding) in self.workspaces.iter().enumerate() {
            if !pipeline
                .workspaces
                .iter()
                .any(|decl| decl.name.value == binding.name.value)
            {
                let declared: Vec<&str> = pipeline
                    .workspaces
                    .iter()
                    .map(|decl| decl.name.value.as_str())
                    .collect();
                found.push(
                    Diagnostic::new(
                        &self.file,
                        binding.name.pos,
                        format!("spec.workspaces[{index}].name"),
                        codes::UNKNOWN_WORKSPACE,
                        format!(
                            "workspace binding `{}` names no workspace of pipeline `{}`",
                            binding.name.value, pipeline.name.value
                        ),
                    )
                    .with_optional_hint(crate::diag::did_you_mean(
                        &binding.name.value,
                        declared.iter().copied(),
                    )),
                );
            }
        }
        for (index, spec) in self.task_run_specs.iter().enumerate() {
            if !pipeline
                .all_tasks()
                .any(|task| task.name.value == spec.task.value)
            {
                found.push(
                    Diagnostic::new(
                        &self.file,
                        spec.task.pos,
                        format!("spec.taskRunSpecs[{index}].pipelineTaskName"),
                        codes::UNKNOWN_TASK,
                        format!(
                            "taskRunSpecs names task `{}`, which pipeline `{}` does not have",
                            spec.task.value, pipeline.name.value
                        ),
                    )
                    .with_optional_hint(crate::diag::did_you_mean(
                        &spec.task.value,
                        pipeline.all_tasks().map(|task| task.name.value.as_str()),
                    )),
                );
            }
        }
        let RunTimeouts {
            pipeline: whole,
            tasks,
            finally,
        } = self.timeouts;
        if let Some(whole) = whole.filter(|d| !d.is_zero()) {
            let over = |part: Option<Duration>| part.is_some_and(|d| d.is_zero() || d > whole);
            let sum = tasks.unwrap_or_default() + finally.unwrap_or_default();
            let message = if over(tasks) {
                Some((
                    "tasks",
                    "`timeouts.tasks` must not be longer than `timeouts.pipeline` (nor 0s, \"no timeout\", when the pipeline has one)",
                ))
            } else if over(finally) {
                Some((
                    "finally",
                    "`timeouts.finally` must not be longer than `timeouts.pipeline` (nor 0s, \"no timeout\", when the pipeline has one)",
                ))
            } else if tasks.is_some() && finally.is_some() && sum > whole {
                Some((
                    "tasks",
                    "`timeouts.tasks` and `timeouts.finally` together must not be longer than `timeouts.pipeline`",
                ))
            } else {
                None
            };
            if let Some((field, message)) = message {
                found.push(Diagnostic::new(
                    &self.file,
                    self.timeouts_pos,
                    format!("spec.timeouts.{field}"),
                    codes::INVALID_VALUE,
                    message,
                ));
            }
        }
        found
    }
}

/// Tekton's propagated params: a run's params reach an inline `pipelineSpec` without
/// being declared there. Each one the spec does not declare is declared for it, its type
/// that of its value.
pub fn propagate_params(pipeline: &mut Pipeline, run: &PipelineRun) {
    for param in &run.params {
        if pipeline
            .params
            .iter()
            .any(|decl| decl.name.value == param.name.value)
        {
            continue;
        }
        pipeline.params.push(crate::model::ParamDecl {
            name: param.name.clone(),
            param_type: param.value.value.param_type(),
            default: None,
            description: String::new(),
            allowed: Vec::new(),
            properties: match &param.value.value {
                ParamValue::Object(entries) => entries.keys().cloned().collect(),
                _ => Vec::new(),
            },
            pos: param.name.pos,
        });
    }
}

/// `taskRunSpecs` timeouts replace their tasks' `timeout` (Tekton: the TaskRun's timeout).
pub fn apply_task_run_specs(pipeline: &mut Pipeline, run: &PipelineRun) {
    for spec in &run.task_run_specs {
        let Some(timeout) = spec.timeout else {
            continue;
        };
        for task in pipeline.tasks.iter_mut().chain(pipeline.finally.iter_mut()) {
            if task.name.value == spec.task.value {
                task.timeout = timeout;
            }
        }
    }
}
