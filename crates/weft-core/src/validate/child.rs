//! Validation of a pipeline task that runs a pipeline (see [`crate::child`]): what such a
//! task may say, the workspaces it binds, and the child pipeline itself, checked with
//! what the task gives it.

use super::{Checker, validate_with};
use crate::child::{fixed_value, matrix_params, planned_params};
use crate::diag::{Diagnostic, Pos, codes};
use crate::model::{Pipeline, PipelineTask};
use std::collections::BTreeMap;

impl<'p> Checker<'p> {
    /// A task with `pipelineRef`/`pipelineSpec`.
    pub(super) fn child_task(&mut self, task: &'p PipelineTask) {
        let Some(child) = task.child.as_deref() else {
            return;
        };
        let base = task.path();
        self.refuse_on_child_task(task, &base);
        let Some(pipeline) = child.pipeline.as_ref() else {
            return; // Unresolved: reported where the reference is.
        };
        self.child_workspaces(task, pipeline, &base);
        self.refuse_in_child(pipeline, child.reference.is_none().then_some(&base));
        let params = self.effective_params();
        let given: BTreeMap<&str, (Option<crate::contract::ParamValue>, Pos)> = task
            .params
            .iter()
            .map(|param| {
                (
                    param.name.value.as_str(),
                    (fixed_value(&param.value.value, &params), param.value.pos),
                )
            })
            .collect();
        for name in matrix_params(pipeline) {
            if let Some((None, pos)) = given.get(name.as_str()) {
                self.error(
                    *pos,
                    format!("{base}.params"),
                    codes::INVALID_VALUE,
                    format!(
                        "pipeline `{}` fans a `matrix` out over param `{name}`: it needs a value known before the run, not a task's result or status",
                        pipeline.name.value
                    ),
                );
            }
        }
        let supplied = planned_params(pipeline, |name| given.get(name)?.0.clone());
        let mut found = validate_with(pipeline, &supplied, self.catalog, &self.limits);
        if child.reference.is_none() {
            // An inline child's paths are under the task's `pipelineSpec`.
            for diagnostic in &mut found {
                under_inline_spec(diagnostic, &base);
            }
        }
        self.diagnostics.extend(found);
    }

    /// What means nothing for a task that runs no plugin of its own.
    fn refuse_on_child_task(&mut self, task: &PipelineTask, base: &str) {
        let refused: [(bool, Pos, &str, &str); 5] = [
            (
                task.matrix.is_some(),
                task.matrix.as_ref().map_or(task.pos, |m| m.pos),
                "matrix",
                "fan the child's own tasks out instead",
            ),
            (
                !task.secrets.is_empty(),
                task.secrets.first().map_or(task.pos, |s| s.pos),
                "secrets",
                "list them on the child's tasks that use them",
            ),
            (
                task.concurrency.is_some(),
                task.concurrency.as_ref().map_or(task.pos, |c| c.pos),
                "concurrency",
                "give the child's tasks their `concurrency` groups",
            ),
            (
                !task.on_status.is_empty(),
                task.pos,
                "onStatus",
                "the child's status is Succeeded or Failed: use `onError: continue` to go on after a failed child",
            ),
            (
                task.idempotent,
                task.pos,
                "idempotent",
                "recovery replays the child's own tasks: mark those `idempotent`",
            ),
        ];
        for (present, pos, field, hint) in refused {
            if present {
                self.error(
                    pos,
                    format!("{base}.{field}"),
                    codes::UNSUPPORTED_FIELD,
                    format!("a task that runs a pipeline takes no `{field}`"),
                )
                .hint = Some(hint.into());
            }
        }
    }

    /// The task binds only the child's workspaces, and every one the child needs.
    fn child_workspaces(&mut self, task: &PipelineTask, pipeline: &Pipeline, base: &str) {
        for (index, binding) in task.workspaces.iter().enumerate() {
            if !pipeline
                .workspaces
                .iter()
                .any(|decl| decl.name.value == binding.name.value)
            {
                let hint = self.suggester.did_you_mean(
                    &binding.name.value,
                    pipeline.workspaces.iter().map(|d| d.name.value.as_str()),
                );
                self.error(
                    binding.name.pos,
                    format!("{base}.workspaces[{index}].name"),
                    codes::UNKNOWN_WORKSPACE,
                    format!(
                        "pipeline `{}` declares no workspace `{}`",
                        pipeline.name.value, binding.name.value
                    ),
                )
                .hint = hint;
            }
        }
        for decl in &pipeline.workspaces {
            let bound = task
                .workspaces
                .iter()
                .any(|binding| binding.name.value == decl.name.value);
            if !bound && !decl.optional {
                self.error(
                    task.pos,
                    format!("{base}.workspaces"),
                    codes::MISSING_FIELD,
                    format!(
                        "pipeline `{}` needs workspace `{}`: bind it to one of this pipeline's",
                        pipeline.name.value, decl.name.value
                    ),
                )
                .hint = Some(format!(
                    "add `workspaces: [{{name: {}, workspace: <a workspace of this pipeline>}}]`",
                    decl.name.value
                ));
            }
        }
    }

    /// What only the outermost pipeline of a run may say (its reporters, decorators,
    /// recovery, concurrency and snapshots are the run's).
    fn refuse_in_child(&mut self, pipeline: &Pipeline, inline_under: Option<&String>) {
        let refused: [(bool, Pos, &str); 5] = [
            (
                !pipeline.reporters.is_empty(),
                pipeline
                    .reporters
                    .first()
                    .map_or(pipeline.spec_pos, |r| r.pos),
                "reporters",
            ),
            (
                !pipeline.decorators.is_empty(),
                pipeline
                    .decorators
                    .first()
                    .map_or(pipeline.spec_pos, |d| d.pos),
                "decorators",
            ),
            (
                pipeline.recovery.is_some(),
                pipeline
                    .recovery
                    .as_ref()
                    .map_or(pipeline.spec_pos, |r| r.pos),
                "recovery",
            ),
            (
                pipeline.concurrency.is_some(),
                pipeline
                    .concurrency
                    .as_ref()
                    .map_or(pipeline.spec_pos, |c| c.pos),
                "concurrency",
            ),
            (
                pipeline.workspace_snapshots,
                pipeline.spec_pos,
                "workspaceSnapshots",
            ),
        ];
        for (present, pos, field) in refused {
            if present {
                let mut diagnostic = Diagnostic::new(
                    &pipeline.file,
                    pos,
                    format!("spec.{field}"),
                    codes::UNSUPPORTED_FIELD,
                    format!(
                        "pipeline `{}` runs inside another run: its `{field}` would be the run's, which the outermost pipeline decides",
                        pipeline.name.value
                    ),
                );
                diagnostic.hint = Some(format!("move `{field}` to the outermost pipeline"));
                if let Some(base) = inline_under {
                    under_inline_spec(&mut diagnostic, base);
                }
                self.diagnostics.push(diagnostic);
            }
        }
    }
}

/// Moves a problem of an inline child (`spec...`) under its task's `pipelineSpec`.
fn under_inline_spec(diagnostic: &mut Diagnostic, task_path: &str) {
    if let Some(rest) = diagnostic.field_path.strip_prefix("spec")
        && (rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
    {
        diagnostic.field_path = format!("{task_path}.pipelineSpec{rest}");
    }
}
