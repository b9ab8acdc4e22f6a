//! Validation of a task's `matrix` (see [`crate::matrix`] for how it fans out) and of the
//! names its combinations take.

use super::{Checker, Slot};
use crate::contract::{ParamType, ParamValue, PluginInfo};
use crate::diag::{codes, shown};
use crate::matrix::{Resolved, ValueProblem, combination_name, param_values};
use crate::model::{PipelineTask, TaskKind};
use std::collections::{BTreeMap, HashMap, HashSet};

impl<'p> Checker<'p> {
    /// The run's effective params (supplied, else default), as a matrix resolves them.
    pub(super) fn effective_params(&self) -> BTreeMap<String, ParamValue> {
        self.params
            .iter()
            .filter_map(|(name, (_, value))| Some((name.to_string(), value.clone()?)))
            .collect()
    }

    /// A matrixed task's combinations run as `<task>-<i>`: no other task may be called so.
    pub(super) fn combination_names(&mut self) {
        let params = self.effective_params();
        let counts: HashMap<&str, usize> = self
            .pipeline
            .all_tasks()
            .filter_map(|task| {
                let resolved = Resolved::new(task.matrix.as_ref()?, &params)?;
                let count = crate::matrix::count(&resolved, self.limits.max_matrix_combinations);
                (count <= self.limits.max_matrix_combinations)
                    .then_some((task.name.value.as_str(), count))
            })
            .collect();
        if counts.is_empty() {
            return;
        }
        for task in self.pipeline.all_tasks() {
            let name = task.name.value.as_str();
            let Some((base, index)) = name.rsplit_once('-') else {
                continue;
            };
            let Ok(index) = index.parse::<usize>() else {
                continue;
            };
            if counts.get(base).is_some_and(|count| index < *count) {
                let fanned = self.tasks.get(base).copied();
                self.error(
                    task.name.pos,
                    format!("{}.name", task.path()),
                    codes::DUPLICATE_NAME,
                    format!(
                        "task name `{name}` is taken: combination {index} of matrixed task `{base}` runs as `{}`",
                        combination_name(base, index)
                    ),
                )
                .hint = fanned.map(|_| format!("rename `{name}` or `{base}`"));
            }
        }
    }

    /// `matrix`: where it may be, that each param is a list and named once, and that it
    /// fans out into no more combinations than the operator allows.
    pub(super) fn matrix(&mut self, task: &'p PipelineTask, plugin: Option<&'p PluginInfo>) {
        let Some(matrix) = &task.matrix else {
            return;
        };
        let base = format!("{}.matrix", task.path());
        if !matches!(task.kind, TaskKind::Plugin) || task.origin.is_some() {
            self.error(
                matrix.pos,
                base,
                codes::INVALID_VALUE,
                format!(
                    "task `{}` waits (an approval, intervention or gate): only a task that runs a plugin can fan out with `matrix`",
                    task.name.value
                ),
            );
            return;
        }
        let params = self.effective_params();
        let own: HashSet<&str> = task.params.iter().map(|p| p.name.value.as_str()).collect();
        let mut seen = HashSet::new();
        for (index, param) in matrix.params.iter().enumerate() {
            let path = format!("{base}.params[{index}]");
            let name = param.name.value.as_str();
            if !seen.insert(name) {
                self.error(
                    param.name.pos,
                    format!("{path}.name"),
                    codes::DUPLICATE_NAME,
                    format!("matrix param `{name}` is given twice"),
                );
            }
            self.matrix_param_name(task, name, &own, plugin, param.name.pos, &path);
            let value_path = format!("{path}.value");
            match &param.value.value {
                ParamValue::Array(items) => {
                    for item in items {
                        self.strings(task, item, param.value.pos, &value_path, Slot::ArrayElement);
                    }
                }
                ParamValue::Str(text) => {
                    self.strings(task, text, param.value.pos, &value_path, Slot::WholeValue);
                }
                ParamValue::Object(_) => {}
            }
            match param_values(&param.value.value, &params) {
                Ok(_) => {}
                Err(ValueProblem::NotArray) => {
                    self.error(
                        param.value.pos,
                        value_path,
                        codes::WRONG_TYPE,
                        format!("matrix param `{name}` must be an array: a task fans out over its items"),
                    )
                    .hint = Some("write a list (`value: [a, b]`) or name an array param (`value: $(params.list[*])`)".into());
                }
                Err(ValueProblem::FromResults) => {
                    self.error(
                        param.value.pos,
                        value_path,
                        codes::INVALID_REFERENCE,
                        format!("matrix param `{name}` reads a task's results: weft fans a task out before the run starts, so a matrix takes literal lists and pipeline params"),
                    )
                    .hint = Some("pass the list as a pipeline param (`value: $(params.list[*])`)".into());
                }
            }
        }
        for (index, include) in matrix.include.iter().enumerate() {
            let path = format!("{base}.include[{index}]");
            let mut seen = HashSet::new();
            for (param_index, param) in include.params.iter().enumerate() {
                let param_path = format!("{path}.params[{param_index}]");
                let name = param.name.value.as_str();
                if !seen.insert(name) {
                    self.error(
                        param.name.pos,
                        format!("{param_path}.name"),
                        codes::DUPLICATE_NAME,
                        format!("param `{name}` is given twice in this `include` entry"),
                    );
                }
                if !matrix.params.iter().any(|p| p.name.value == name) {
                    self.matrix_param_name(task, name, &own, plugin, param.name.pos, &param_path);
                }
                let value_path = format!("{param_path}.value");
                let ParamValue::Str(text) = &param.value.value else {
                    self.error(
                        param.value.pos,
                        value_path,
                        codes::WRONG_TYPE,
                        format!("`include` param `{name}` must be a string"),
                    );
                    continue;
                };
                self.strings(task, text, param.value.pos, &value_path, Slot::StringOnly);
                if crate::matrix::include_value(text, &params) == Err(ValueProblem::FromResults) {
                    self.error(
                        param.value.pos,
                        value_path,
                        codes::INVALID_REFERENCE,
                        format!("`include` param `{name}` reads a task's results: a matrix takes literals and pipeline params"),
                    );
                }
            }
        }
        let Some(resolved) = Resolved::new(matrix, &params) else {
            return;
        };
        let limit = self.limits.max_matrix_combinations;
        let count = crate::matrix::count(&resolved, limit);
        if count > limit {
            let shown_count = if count == usize::MAX {
                "more combinations than can be counted".to_string()
            } else {
                format!("{count} combinations")
            };
            self.error(
                matrix.pos,
                base,
                codes::INVALID_VALUE,
                format!(
                    "the matrix of task `{}` fans out into {shown_count}, more than the {limit} allowed",
                    task.name.value
                ),
            )
            .hint = Some("fan out over fewer values, or have the operator raise the cap (`--max-matrix-combinations N`)".into());
        }
    }

    /// A param the matrix gives the task: not also in `params`, and a string param of
    /// the plugin (each combination gives it one value).
    fn matrix_param_name(
        &mut self,
        task: &PipelineTask,
        name: &str,
        own: &HashSet<&str>,
        plugin: Option<&PluginInfo>,
        pos: crate::diag::Pos,
        path: &str,
    ) {
        if own.contains(name) {
            self.error(
                pos,
                format!("{path}.name"),
                codes::DUPLICATE_NAME,
                format!(
                    "param `{name}` of task `{}` is in both `params` and `matrix`",
                    task.name.value
                ),
            )
            .hint = Some("give it in one place only".into());
            return;
        }
        let Some(info) = plugin else {
            return;
        };
        match info.params.iter().find(|spec| spec.name == name) {
            None if !info.accepts_any_params => {
                let hint = self
                    .suggester
                    .did_you_mean(name, info.params.iter().map(|spec| spec.name.as_str()));
                self.error(
                    pos,
                    format!("{path}.name"),
                    codes::UNKNOWN_PARAM,
                    format!(
                        "plugin `{}` has no param `{name}` (task `{}`)",
                        info.name,
                        shown(&task.name.value)
                    ),
                )
                .hint = hint;
            }
            Some(spec) if spec.param_type != ParamType::String => {
                self.error(
                    pos,
                    format!("{path}.name"),
                    codes::PARAM_TYPE,
                    format!(
                        "param `{name}` of plugin `{}` is {}, but a matrix gives each combination one string",
                        info.name, spec.param_type
                    ),
                );
            }
            _ => {}
        }
    }
}

impl Checker<'_> {
    /// A reference to task `target` reads it as what it is: a matrixed task's results are
    /// arrays (`[*]`, the whole value of an array slot), `matrix.*` needs a matrix. False
    /// when it was reported.
    pub(super) fn matrix_reference(
        &mut self,
        target: &PipelineTask,
        var: &crate::vars::VarRef,
        pos: crate::diag::Pos,
        path: &str,
        slot: Slot,
        alone: bool,
    ) -> bool {
        use crate::vars::VarRef;
        let task = target.name.value.as_str();
        match var {
            VarRef::TaskResult { result, .. } if target.matrix.is_some() => {
                self.error(
                    pos,
                    path,
                    codes::INVALID_REFERENCE,
                    format!("task `{task}` fans out with `matrix`: its result `{result}` is an array of every combination's"),
                )
                .hint = Some(format!("read `$(tasks.{task}.results.{result}[*])` as the whole value of an array param"));
                false
            }
            VarRef::MatrixResults { .. }
            | VarRef::MatrixLength { .. }
            | VarRef::MatrixResultLength { .. }
                if target.matrix.is_none() =>
            {
                self.error(
                    pos,
                    path,
                    codes::INVALID_REFERENCE,
                    format!("task `{task}` has no `matrix`: only a matrixed task's results are arrays and it alone has a `matrix.length`"),
                );
                false
            }
            // A pipeline result reading them is the array written as JSON.
            VarRef::MatrixResults { .. } if path.starts_with("spec.results") => true,
            VarRef::MatrixResults { result, .. } if !alone || slot == Slot::StringOnly => {
                self.error(
                    pos,
                    path,
                    codes::INVALID_REFERENCE,
                    format!("`$(tasks.{task}.results.{result}[*])` must be the whole value of an array param or element"),
                );
                false
            }
            _ => true,
        }
    }
}
