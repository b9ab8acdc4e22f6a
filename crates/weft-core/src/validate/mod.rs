//! Semantic checks on a parsed pipeline: names, references, variables, params, cycles and,
//! given a plugin catalog, what each plugin declares. Every problem is reported at once.

use crate::contract::{ParamType, ParamValue, PluginInfo};
use crate::dag::Graph;
use crate::diag::{Diagnostic, Pos, Spanned, Suggester, codes, shown};
use crate::model::{ParamDecl, Pipeline, PipelineTask, TaskKind, TaskParam};
use crate::vars::{Piece, Selector, Template, VarError, VarRef, parse_template, select_string};
use std::collections::{BTreeMap, HashMap, HashSet};

mod child;
mod matrix;

/// Where plugins are looked up by `taskRef.name`.
pub trait PluginCatalog {
    /// The plugin called `name`, if known.
    fn lookup(&self, name: &str) -> Option<&PluginInfo>;
    /// Every known plugin name (for "did you mean" hints).
    fn names(&self) -> Vec<&str>;
    /// Where plugins were looked for, in search order, for people (e.g. "the 14 built-in
    /// plugins", a directory): an unknown plugin's diagnostic lists them.
    fn searched(&self) -> Vec<String> {
        Vec::new()
    }
    /// How to make plugin `name` known (the hint of an unknown plugin's diagnostic).
    fn how_to_add(&self, _name: &str) -> Option<String> {
        None
    }
}

impl PluginCatalog for BTreeMap<String, PluginInfo> {
    fn lookup(&self, name: &str) -> Option<&PluginInfo> {
        self.get(name)
    }
    fn names(&self) -> Vec<&str> {
        self.keys().map(String::as_str).collect()
    }
}

/// Validates `pipeline` with the run's supplied params and, optionally, a plugin catalog.
/// Returns every problem found, sorted by position; empty means valid.
pub fn validate(
    pipeline: &Pipeline,
    supplied: &BTreeMap<String, ParamValue>,
    catalog: Option<&dyn PluginCatalog>,
) -> Vec<Diagnostic> {
    validate_with(pipeline, supplied, catalog, &Limits::default())
}

/// What the operator allows a pipeline (not the pipeline's to choose).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most combinations one task's `matrix` may fan out into.
    pub max_matrix_combinations: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_matrix_combinations: crate::matrix::DEFAULT_MAX_COMBINATIONS,
        }
    }
}

/// [`validate`] under the operator's `limits`.
pub fn validate_with(
    pipeline: &Pipeline,
    supplied: &BTreeMap<String, ParamValue>,
    catalog: Option<&dyn PluginCatalog>,
    limits: &Limits,
) -> Vec<Diagnostic> {
    // A Task made of steps is validated, where the pipeline uses it, like a plugin.
    // So is a child pipeline (`pipelineRef`/`pipelineSpec`), by its params and results.
    let step_infos: HashMap<&str, PluginInfo> = pipeline
        .all_tasks()
        .filter_map(|task| {
            let info = match (task.steps.as_deref(), task.child.as_deref()) {
                (Some(steps), _) => crate::steps::task_info(steps),
                (None, Some(child)) => crate::child::info(child.pipeline.as_ref()?),
                (None, None) => return None,
            };
            Some((task.name.value.as_str(), info))
        })
        .collect();
    let mut checker = Checker {
        step_infos: &step_infos,
        pipeline,
        diagnostics: Vec::new(),
        params: HashMap::new(),
        tasks: HashMap::new(),
        workspaces: HashSet::new(),
        catalog,
        suggester: Suggester::new(),
        limits: *limits,
    };
    checker.pipeline_name();
    checker.params(supplied);
    checker.workspaces();
    checker.task_names();
    checker.combination_names();
    for task in pipeline.all_tasks() {
        checker.task(task);
        checker.child_task(task);
    }
    checker.pipeline_results();
    let mut seen_specs = HashSet::new();
    for task in pipeline.all_tasks() {
        if let Some(steps) = task.steps.as_deref() {
            // A Task document used by several pipeline tasks is checked once.
            if seen_specs.insert((steps.file.as_str(), steps.pos)) {
                checker
                    .diagnostics
                    .extend(crate::steps::check(steps, catalog));
            }
        }
    }
    if let Some(concurrency) = &pipeline.concurrency {
        checker.concurrency(concurrency, "spec.concurrency");
    }
    checker.cycles();
    let mut diagnostics = checker.diagnostics;
    diagnostics.sort_by_key(|d| (d.line, d.column));
    diagnostics
}

/// What a task runs, for messages: a `pipeline` (`pipelineRef`/`pipelineSpec`) or a
/// `plugin` (a Task made of steps is checked as its plugin would be).
fn what_runs(task: &PipelineTask) -> &'static str {
    if task.child.is_some() {
        "pipeline"
    } else {
        "plugin"
    }
}

/// Longest task name: a DNS-1123 label, as Tekton requires of pipeline task names.
pub const MAX_TASK_NAME_CHARS: usize = 63;

/// Longest pipeline name (a DNS-1123 subdomain, as Kubernetes requires) and weft's bound on
/// the names a pipeline declares (params, workspaces, results), which Tekton leaves open.
pub const MAX_NAME_CHARS: usize = 253;

/// True for a Kubernetes DNS-1123 label, as Tekton requires of pipeline task names.
pub fn is_dns1123_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first().is_some_and(|b| *b != b'-')
        && bytes.last().is_some_and(|b| *b != b'-')
}

/// True for a Kubernetes DNS-1123 subdomain (at most 253 characters of dot-separated
/// labels), as Kubernetes requires of object names such as `metadata.name`. Run names,
/// which become directory names, must be one too: no `/`, no `..`.
pub fn is_dns1123_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_dns1123_label_unbounded)
}

fn is_dns1123_label_unbounded(label: &str) -> bool {
    let bytes = label.as_bytes();
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first().is_some_and(|b| *b != b'-')
        && bytes.last().is_some_and(|b| *b != b'-')
}

/// Tekton's rule for param names: letters, digits, `_`, `-`, `.`; starts with a letter or `_`.
fn is_valid_param_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

struct Checker<'p> {
    /// The interface of each pipeline task that runs a Task made of steps.
    step_infos: &'p HashMap<&'p str, PluginInfo>,
    pipeline: &'p Pipeline,
    diagnostics: Vec<Diagnostic>,
    /// Declared params and their effective value (supplied, else default).
    params: HashMap<&'p str, (&'p ParamDecl, Option<ParamValue>)>,
    /// Task name -> the task (first declaration wins).
    tasks: HashMap<&'p str, &'p PipelineTask>,
    workspaces: HashSet<&'p str>,
    catalog: Option<&'p dyn PluginCatalog>,
    /// Did-you-mean hints, under one work budget for the whole validation.
    suggester: Suggester,
    limits: Limits,
}

/// Where a string sits, which decides how `[*]` may be used in it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// A string value of a param or `when` input: `[*]` allowed only as the whole value.
    WholeValue,
    /// An element of an array (or a `when` value): `[*]` allowed as the whole element.
    ArrayElement,
    /// An object value or pipeline result: `[*]` never allowed.
    StringOnly,
}

impl<'p> Checker<'p> {
    fn error(
        &mut self,
        pos: Pos,
        path: impl Into<String>,
        code: &'static str,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.diagnostics.push(Diagnostic::new(
            &self.pipeline.file,
            pos,
            path,
            code,
            message,
        ));
        let last = self.diagnostics.len() - 1;
        &mut self.diagnostics[last]
    }

    /// Reports `name` when it is longer than `max` characters (`rule` says why it may not
    /// be); true when it was.
    fn too_long(
        &mut self,
        what: &str,
        name: &crate::diag::Spanned<String>,
        path: impl FnOnce() -> String,
        max: usize,
        rule: &str,
    ) -> bool {
        // Bytes first: counting characters of a huge name is itself work.
        if name.value.len() <= max {
            return false;
        }
        let count = name.value.chars().count();
        if count <= max {
            return false;
        }
        self.error(
            name.pos,
            path(),
            codes::INVALID_NAME,
            format!(
                "{what} `{}` is {count} characters long; {rule}",
                shown(&name.value)
            ),
        )
        .hint = Some(format!("use a name of at most {max} characters"));
        true
    }

    fn params(&mut self, supplied: &BTreeMap<String, ParamValue>) {
        for (index, decl) in self.pipeline.params.iter().enumerate() {
            let path = format!("spec.params[{index}]");
            let name = decl.name.value.as_str();
            let long = self.too_long(
                "param name",
                &decl.name,
                || format!("{path}.name"),
                MAX_NAME_CHARS,
                "weft allows names of at most 253 characters",
            );
            if !long && !is_valid_param_name(name) {
                if name.is_empty() {
                    continue; // Already reported as a missing field.
                }
                self.error(
                    decl.name.pos,
                    format!("{path}.name"),
                    codes::INVALID_NAME,
                    format!("invalid param name `{}`", shown(name)),
                )
                .hint = Some(
                    "use letters, digits, `_`, `-` and `.`, starting with a letter or `_`".into(),
                );
            }
            if self.params.contains_key(name) {
                self.error(
                    decl.name.pos,
                    format!("{path}.name"),
                    codes::DUPLICATE_NAME,
                    format!("param `{}` is declared twice", shown(name)),
                );
                continue;
            }
            if let Some(default) = &decl.default {
                self.check_enum(
                    &decl.allowed,
                    &default.value,
                    default.pos,
                    &format!("{path}.default"),
                    name,
                );
            }
            let effective = match supplied.get(name) {
                Some(value) => {
                    if value.param_type() != decl.param_type {
                        self.error(
                            decl.name.pos,
                            format!("params.{name}"),
                            codes::PARAM_TYPE,
                            format!(
                                "param `{name}` is declared {} but was given {}",
                                decl.param_type,
                                value.param_type()
                            ),
                        );
                    } else {
                        self.check_enum(
                            &decl.allowed,
                            value,
                            decl.name.pos,
                            &format!("params.{name}"),
                            name,
                        );
                    }
                    Some(value.clone())
                }
                None => decl.default.as_ref().map(|default| default.value.clone()),
            };
            if effective.is_none() {
                self.error(
                    decl.name.pos,
                    path.clone(),
                    codes::MISSING_PARAM,
                    format!("param `{name}` has no value"),
                )
                .hint = Some(format!("give it a `default`, or pass `-p {name}=...`"));
            }
            self.params.insert(name, (decl, effective));
        }
        for name in supplied.keys() {
            if !self.params.contains_key(name.as_str()) {
                let hint = self.suggester.did_you_mean(name, self.param_names());
                self.error(
                    Pos::default(),
                    format!("params.{name}"),
                    codes::UNKNOWN_PARAM,
                    format!("param `{name}` is not declared by the pipeline"),
                )
                .hint = hint;
            }
        }
    }

    fn check_enum(
        &mut self,
        allowed: &[String],
        value: &ParamValue,
        pos: Pos,
        path: &str,
        name: &str,
    ) {
        if allowed.is_empty() {
            return;
        }
        let values: Vec<&str> = match value {
            ParamValue::Str(text) => vec![text.as_str()],
            ParamValue::Array(items) => items.iter().map(String::as_str).collect(),
            ParamValue::Object(_) => Vec::new(),
        };
        for text in values {
            if !allowed.iter().any(|allowed| allowed == text) {
                self.error(
                    pos,
                    path,
                    codes::PARAM_ENUM,
                    format!("`{text}` is not an allowed value of param `{name}`"),
                )
                .hint = Some(format!("allowed: {}", allowed.join(", ")));
            }
        }
    }

    fn workspaces(&mut self) {
        for (index, decl) in self.pipeline.workspaces.iter().enumerate() {
            self.too_long(
                "workspace name",
                &decl.name,
                || format!("spec.workspaces[{index}].name"),
                MAX_NAME_CHARS,
                "weft allows names of at most 253 characters",
            );
            if !self.workspaces.insert(decl.name.value.as_str()) {
                self.error(
                    decl.name.pos,
                    format!("spec.workspaces[{index}].name"),
                    codes::DUPLICATE_NAME,
                    format!("workspace `{}` is declared twice", shown(&decl.name.value)),
                );
            }
        }
    }

    fn pipeline_name(&mut self) {
        let name = &self.pipeline.name;
        let long = self.too_long(
            "pipeline name",
            name,
            || "metadata.name".to_string(),
            MAX_NAME_CHARS,
            "a pipeline name is a DNS-1123 subdomain of at most 253 characters (as in Kubernetes)",
        );
        // A missing name is reported by the parser.
        if !long && !name.value.is_empty() && !is_dns1123_subdomain(&name.value) {
            self.error(
                name.pos,
                "metadata.name".to_string(),
                codes::INVALID_NAME,
                format!(
                    "pipeline name `{}` is not a valid DNS-1123 subdomain",
                    shown(&name.value)
                ),
            )
            .hint = Some("use lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit".into());
        }
    }

    fn task_names(&mut self) {
        for task in self.pipeline.all_tasks() {
            let name = task.name.value.as_str();
            // Built only for what is reported: most names are fine.
            let path = || format!("{}.name", task.path());
            if name.is_empty() {
                if task.name.pos != task.pos {
                    self.error(
                        task.name.pos,
                        path(),
                        codes::INVALID_NAME,
                        "task name must not be empty",
                    );
                }
                continue;
            }
            let long = self.too_long(
                "task name",
                &task.name,
                path,
                MAX_TASK_NAME_CHARS,
                "a task name is a DNS-1123 label of at most 63 characters (as in Tekton)",
            );
            // Tasks written from `approval:`/`gates:` blocks are named `<task>.<what>`.
            if !long && task.origin.is_none() && !is_dns1123_label(name) {
                self.error(task.name.pos, path(), codes::INVALID_NAME, format!("task name `{name}` is not a valid DNS-1123 label"))
                    .hint = Some("use at most 63 lowercase letters, digits and `-`, starting and ending with a letter or digit".into());
            }
            if self.tasks.contains_key(name) {
                self.error(task.name.pos, path(), codes::DUPLICATE_NAME, format!("task name `{}` is used twice (names are unique across `tasks` and `finally`)", shown(name)));
            } else {
                self.tasks.insert(name, task);
            }
        }
    }

    /// Declared task names, in declaration order (so hints do not depend on hashing).
    fn task_hint(&mut self, name: &str) -> Option<String> {
        let names = self
            .pipeline
            .all_tasks()
            .map(|task| task.name.value.as_str());
        self.suggester.did_you_mean(name, names)
    }

    /// Declared param names, in declaration order.
    fn param_names(&self) -> impl Iterator<Item = &'p str> + use<'p> {
        self.pipeline
            .params
            .iter()
            .map(|decl| decl.name.value.as_str())
    }

    /// Declared workspace names, in declaration order.
    fn workspace_names(&self) -> impl Iterator<Item = &'p str> + use<'p> {
        self.pipeline
            .workspaces
            .iter()
            .map(|decl| decl.name.value.as_str())
    }

    fn task(&mut self, task: &'p PipelineTask) {
        let base = task.path();
        for (index, target) in task.run_after.iter().enumerate() {
            let path = || format!("{base}.runAfter[{index}]");
            if task.is_finally {
                self.error(
                    target.pos,
                    path(),
                    codes::FINALLY_RUN_AFTER,
                    "`finally` tasks cannot use `runAfter`; they run after all tasks",
                );
                continue;
            }
            match self.tasks.get(target.value.as_str()) {
                None => {
                    let hint = self.task_hint(&target.value);
                    self.error(
                        target.pos,
                        path(),
                        codes::UNKNOWN_TASK,
                        format!("`runAfter` names unknown task `{}`", shown(&target.value)),
                    )
                    .hint = hint;
                }
                Some(other) if other.is_finally => {
                    self.error(target.pos, path(), codes::RUN_AFTER_FINALLY, format!("`runAfter` names `finally` task `{}`", shown(&target.value)))
                        .hint = Some("finally tasks run after every task; move it to `tasks` or drop it from `runAfter`".into());
                }
                Some(_) => {}
            }
        }
        self.wait(task);
        if let Some(concurrency) = &task.concurrency {
            self.concurrency(concurrency, &format!("{base}.concurrency"));
        }
        let plugin = self.plugin(task);
        self.task_params(task, &task.params, plugin, &base, task.plugin.pos);
        if task.child.is_none() {
            // A child task's matrix is refused as such (`child_task`).
            self.matrix(task, plugin);
        }
        for check in &task.gate_checks {
            let info = self.lookup_plugin(&check.plugin, || format!("{}.name", check.path));
            self.task_params(task, &check.params, info, &check.path, check.plugin.pos);
        }
        for (index, binding) in task.workspaces.iter().enumerate() {
            if !self.workspaces.contains(binding.workspace.value.as_str()) {
                let hint = self
                    .suggester
                    .did_you_mean(&binding.workspace.value, self.workspace_names());
                self.error(
                    binding.workspace.pos,
                    format!("{base}.workspaces[{index}].workspace"),
                    codes::UNKNOWN_WORKSPACE,
                    format!(
                        "pipeline workspace `{}` is not declared",
                        binding.workspace.value
                    ),
                )
                .hint = hint;
            }
        }
        for (index, expr) in task.when.iter().enumerate() {
            let path = format!("{base}.when[{index}]");
            self.strings(
                task,
                &expr.input.value,
                expr.input.pos,
                &format!("{path}.input"),
                Slot::StringOnly,
            );
            for (value_index, value) in expr.values.iter().enumerate() {
                self.strings(
                    task,
                    &value.value,
                    value.pos,
                    &format!("{path}.values[{value_index}]"),
                    Slot::ArrayElement,
                );
            }
        }
    }

    /// A plugin's `params` (a task's own, or a gate check's): names unique, references
    /// valid, and what the plugin declares (types, allowed values, required params).
    fn task_params(
        &mut self,
        task: &'p PipelineTask,
        params: &'p [TaskParam],
        plugin: Option<&'p PluginInfo>,
        base: &str,
        plugin_pos: Pos,
    ) {
        let mut seen_params = HashSet::new();
        for (index, param) in params.iter().enumerate() {
            let path = format!("{base}.params[{index}]");
            if !seen_params.insert(param.name.value.as_str()) {
                self.error(
                    param.name.pos,
                    format!("{path}.name"),
                    codes::DUPLICATE_NAME,
                    format!("param `{}` is given twice", param.name.value),
                );
            }
            let value_path = format!("{path}.value");
            let static_type = match &param.value.value {
                ParamValue::Str(text) => {
                    let template =
                        self.strings(task, text, param.value.pos, &value_path, Slot::WholeValue);
                    match template.as_ref().and_then(Template::sole_var) {
                        Some(VarRef::Param {
                            name,
                            selector: Selector::Star,
                        }) => self
                            .params
                            .get(name.as_str())
                            .map_or(ParamType::String, |(decl, _)| decl.param_type),
                        Some(VarRef::MatrixResults { .. }) => ParamType::Array,
                        _ => ParamType::String,
                    }
                }
                ParamValue::Array(items) => {
                    for item in items {
                        self.strings(task, item, param.value.pos, &value_path, Slot::ArrayElement);
                    }
                    ParamType::Array
                }
                ParamValue::Object(entries) => {
                    for value in entries.values() {
                        self.strings(task, value, param.value.pos, &value_path, Slot::StringOnly);
                    }
                    ParamType::Object
                }
            };
            if let Some(info) = plugin {
                self.plugin_param(task, info, param, static_type, &path);
            }
        }
        if let Some(info) = plugin {
            for spec in &info.params {
                let from_matrix = task.matrix.as_ref().is_some_and(|matrix| {
                    matrix
                        .all_params()
                        .any(|param| param.name.value == spec.name)
                });
                if spec.default.is_none()
                    && !from_matrix
                    && !params.iter().any(|param| param.name.value == spec.name)
                {
                    self.error(
                        plugin_pos,
                        format!("{base}.params"),
                        codes::MISSING_PARAM,
                        format!(
                            "{} `{}` requires param `{}`, which task `{}` does not set",
                            what_runs(task),
                            info.name,
                            spec.name,
                            task.name.value
                        ),
                    );
                }
            }
        }
    }

    /// What a wait (approval, intervention, gate) may not have, and what an approval's
    /// literal params must agree on.
    fn wait(&mut self, task: &PipelineTask) {
        let base = task.path();
        if task.kind != TaskKind::Gate
            && let Some(gate) = &task.gate
        {
            self.error(
                gate.pos,
                format!("{base}.gate"),
                codes::INVALID_WAIT,
                "`gate` applies to gates only (`taskRef: {kind: Gate, name: ...}`)",
            );
        }
        let what = match task.kind {
            TaskKind::Plugin => return,
            TaskKind::Approval => "an approval",
            TaskKind::Intervention => "a manual intervention",
            TaskKind::Gate => "a gate",
        };
        if task.retries > 0 {
            self.error(
                task.pos,
                format!("{base}.retries"),
                codes::INVALID_WAIT,
                format!("`retries` on {what}: a decision is never retried"),
            );
        }
        if !task.on_status.is_empty() {
            self.error(
                task.pos,
                format!("{base}.onStatus"),
                codes::INVALID_WAIT,
                format!("`onStatus` on {what}: it has no exit code (use `onError: continue` to tolerate a rejection)"),
            );
        }
        if task.kind != TaskKind::Gate {
            if let Some(binding) = task.workspaces.first() {
                self.error(
                    binding.name.pos,
                    format!("{base}.workspaces"),
                    codes::INVALID_WAIT,
                    format!("{what} takes no workspaces: it runs no plugin"),
                );
            }
            if let Some(secret) = task.secrets.first() {
                self.error(
                    secret.pos,
                    format!("{base}.secrets"),
                    codes::INVALID_WAIT,
                    format!("{what} takes no secrets: it runs no plugin"),
                );
            }
        }
        if task.kind == TaskKind::Approval {
            let param = |name: &str| task.params.iter().find(|p| p.name.value == name);
            let approvers = match param("approvers").map(|p| &p.value.value) {
                Some(ParamValue::Array(items)) if !items.iter().any(|i| i.contains("$(")) => {
                    Some(items.len())
                }
                _ => None,
            };
            if let Some(required) = param("numberOfApprovalsRequired") {
                let text = match &required.value.value {
                    ParamValue::Str(text) => self.resolve_params_only(text),
                    _ => None,
                };
                match text.as_deref().map(|t| t.trim().parse::<u32>()) {
                    Some(Ok(0)) | Some(Err(_)) => {
                        self.error(
                            required.value.pos,
                            format!("{base}.params.numberOfApprovalsRequired"),
                            codes::INVALID_VALUE,
                            format!(
                                "numberOfApprovalsRequired must be a whole number of at least 1, not `{}`",
                                text.unwrap_or_default()
                            ),
                        );
                    }
                    Some(Ok(n)) if approvers.is_some_and(|listed| n as usize > listed) => {
                        self.error(
                            required.value.pos,
                            format!("{base}.params.numberOfApprovalsRequired"),
                            codes::INVALID_VALUE,
                            format!(
                                "{n} approvals are required but only {} approvers are listed",
                                approvers.unwrap_or_default()
                            ),
                        );
                    }
                    _ => {}
                }
            }
        }
    }

    fn plugin(&mut self, task: &PipelineTask) -> Option<&'p PluginInfo> {
        if let Some(info) = wait_info(task.kind) {
            return Some(info);
        }
        if task.steps.is_some() || task.child.is_some() {
            return self.step_infos.get(task.name.value.as_str());
        }
        self.lookup_plugin(&task.plugin, || task.plugin_path())
    }

    /// The catalog's plugin `plugin` names; an unknown one is reported at `path`.
    fn lookup_plugin(
        &mut self,
        plugin: &Spanned<String>,
        path: impl FnOnce() -> String,
    ) -> Option<&'p PluginInfo> {
        let catalog = self.catalog?;
        let name = plugin.value.as_str();
        if name.is_empty() {
            return None;
        }
        let found = catalog.lookup(name);
        if found.is_none() {
            let searched = catalog.searched();
            let message = if searched.is_empty() {
                format!("unknown plugin `{}`", shown(name))
            } else {
                format!(
                    "unknown plugin `{}`: weft looked in {}",
                    shown(name),
                    searched.join(", then ")
                )
            };
            let hint = match (
                self.suggester.did_you_mean(name, catalog.names()),
                catalog.how_to_add(name),
            ) {
                (Some(typo), Some(add)) => Some(format!("{typo} If not, {add}")),
                (typo, add) => typo.or(add),
            };
            self.error(plugin.pos, path(), codes::UNKNOWN_PLUGIN, message)
                .hint = hint;
        }
        found
    }

    fn plugin_param(
        &mut self,
        task: &PipelineTask,
        info: &PluginInfo,
        param: &crate::model::TaskParam,
        static_type: ParamType,
        path: &str,
    ) {
        let Some(spec) = info
            .params
            .iter()
            .find(|spec| spec.name == param.name.value)
        else {
            if !info.accepts_any_params {
                let hint = self.suggester.did_you_mean(
                    &param.name.value,
                    info.params.iter().map(|spec| spec.name.as_str()),
                );
                self.error(
                    param.name.pos,
                    format!("{path}.name"),
                    codes::UNKNOWN_PARAM,
                    format!(
                        "{} `{}` has no param `{}` (task `{}`)",
                        what_runs(task),
                        info.name,
                        param.name.value,
                        task.name.value
                    ),
                )
                .hint = hint;
            }
            return;
        };
        if spec.param_type != static_type {
            self.error(
                param.value.pos,
                format!("{path}.value"),
                codes::PARAM_TYPE,
                format!(
                    "param `{}` of plugin `{}` is {}, but the value is {static_type}",
                    spec.name, info.name, spec.param_type
                ),
            );
            return;
        }
        // Pipeline params are known before the run, so enum checks can see through them.
        if !spec.allowed.is_empty()
            && let ParamValue::Str(text) = &param.value.value
            && let Some(resolved) = self.resolve_params_only(text)
            && !spec.allowed.contains(&resolved)
        {
            self.error(
                param.value.pos,
                format!("{path}.value"),
                codes::PARAM_ENUM,
                format!(
                    "`{resolved}` is not an allowed value of param `{}` of plugin `{}`",
                    spec.name, info.name
                ),
            )
            .hint = Some(format!("allowed: {}", spec.allowed.join(", ")));
        }
    }

    /// The string with pipeline params substituted, if nothing else is referenced.
    fn resolve_params_only(&self, text: &str) -> Option<String> {
        let template = parse_template(text).ok()?;
        let mut out = String::new();
        for piece in &template.pieces {
            match piece {
                Piece::Literal(literal) => out.push_str(literal),
                Piece::Var(VarRef::Param { name, selector }) => {
                    let (_, value) = self.params.get(name.as_str())?;
                    out.push_str(&select_string(value.as_ref()?, selector)?);
                }
                Piece::Var(_) => return None,
            }
        }
        Some(out)
    }

    /// Checks every variable in `text`; returns the parsed template when it parses.
    fn strings(
        &mut self,
        task: &PipelineTask,
        text: &str,
        pos: Pos,
        path: &str,
        slot: Slot,
    ) -> Option<Template<VarRef>> {
        let template = match parse_template(text) {
            Ok(template) => template,
            Err(VarError::Malformed(message)) => {
                self.error(pos, path, codes::MALFORMED_VARIABLE, message);
                return None;
            }
            Err(VarError::Unknown(message)) => {
                self.error(pos, path, codes::UNKNOWN_VARIABLE, message)
                    .hint = Some("variables are `params.*`, `tasks.<task>.results.<name>`, `tasks.<task>.status`, `tasks.status`, `context.*` and `workspaces.<name>.bound`".into());
                return None;
            }
        };
        let alone = template.pieces.len() == 1;
        for var in template.vars() {
            self.var(Some(task), var, pos, path, slot, alone);
        }
        Some(template)
    }

    fn var(
        &mut self,
        consumer: Option<&PipelineTask>,
        var: &VarRef,
        pos: Pos,
        path: &str,
        slot: Slot,
        alone: bool,
    ) {
        match var {
            VarRef::Param { name, selector } => {
                let Some((decl, _)) = self.params.get(name.as_str()) else {
                    let hint = self.suggester.did_you_mean(name, self.param_names());
                    self.error(
                        pos,
                        path,
                        codes::UNKNOWN_VARIABLE,
                        format!(
                            "unknown param `{}` in `$(params.{}...)`",
                            shown(name),
                            shown(name)
                        ),
                    )
                    .hint = hint;
                    return;
                };
                let (param_type, properties, default) = (
                    decl.param_type,
                    decl.properties.clone(),
                    decl.default.clone(),
                );
                match (selector, param_type) {
                    (Selector::Whole, ParamType::String) => {}
                    (Selector::Whole, other) => {
                        self.error(
                            pos,
                            path,
                            codes::INVALID_REFERENCE,
                            format!("{other} param `{name}` used as a string"),
                        )
                        .hint = Some(format!(
                            "use `$(params.{name}[*])` as the whole value, or select one element"
                        ));
                    }
                    (Selector::Star, ParamType::String) => {
                        self.error(
                            pos,
                            path,
                            codes::INVALID_REFERENCE,
                            format!("`[*]` used on string param `{name}`"),
                        );
                    }
                    (Selector::Star, _) => {
                        if !alone || slot == Slot::StringOnly {
                            self.error(pos, path, codes::INVALID_REFERENCE, format!("`$(params.{name}[*])` must be the whole value of an array or object slot"));
                        }
                    }
                    (Selector::Index(_), ParamType::Array) => {}
                    (Selector::Index(_), other) => {
                        self.error(
                            pos,
                            path,
                            codes::INVALID_REFERENCE,
                            format!("index used on {other} param `{name}`"),
                        );
                    }
                    (Selector::Key(key), ParamType::Object) => {
                        let known_keys: Vec<String> = if !properties.is_empty() {
                            properties
                        } else if let Some(default) = default
                            && let ParamValue::Object(map) = default.value
                        {
                            map.into_keys().collect()
                        } else {
                            Vec::new()
                        };
                        if !known_keys.is_empty() && !known_keys.contains(key) {
                            self.error(
                                pos,
                                path,
                                codes::UNKNOWN_VARIABLE,
                                format!("object param `{name}` has no key `{key}`"),
                            )
                            .hint = self
                                .suggester
                                .did_you_mean(key, known_keys.iter().map(String::as_str));
                        }
                    }
                    (Selector::Key(_), other) => {
                        self.error(
                            pos,
                            path,
                            codes::INVALID_REFERENCE,
                            format!("key used on {other} param `{name}`"),
                        );
                    }
                }
            }
            VarRef::TaskResult { task, .. }
            | VarRef::MatrixResults { task, .. }
            | VarRef::MatrixLength { task }
            | VarRef::MatrixResultLength { task, .. }
            | VarRef::TaskStatus { task }
            | VarRef::TaskReason { task } => {
                let Some(target) = self.tasks.get(task.as_str()).copied() else {
                    let hint = self.task_hint(task);
                    self.error(
                        pos,
                        path,
                        codes::UNKNOWN_VARIABLE,
                        format!(
                            "unknown task `{}` in a `$(tasks.{}...)` variable",
                            shown(task),
                            shown(task)
                        ),
                    )
                    .hint = hint;
                    return;
                };
                if !self.matrix_reference(target, var, pos, path, slot, alone) {
                    return;
                }
                let Some(consumer) = consumer else {
                    // Pipeline results may read any task, finally included (as Tekton).
                    self.result_exists(target, var, pos, path);
                    return;
                };
                let what = match var {
                    VarRef::TaskResult { .. } | VarRef::MatrixResults { .. } => "results",
                    VarRef::MatrixLength { .. } | VarRef::MatrixResultLength { .. } => "matrix",
                    VarRef::TaskStatus { .. } => "status",
                    _ => "reason",
                };
                if target.is_finally {
                    let message = if consumer.is_finally {
                        format!(
                            "finally task `{}` cannot read the {what} of finally task `{task}`",
                            consumer.name.value
                        )
                    } else {
                        format!(
                            "task `{}` cannot read the {what} of finally task `{task}`, which runs after it",
                            consumer.name.value
                        )
                    };
                    self.error(pos, path, codes::INVALID_REFERENCE, message);
                    return;
                }
                // A task reading itself is reported once, as a cycle `t -> t`.
                self.result_exists(target, var, pos, path);
            }
            VarRef::WorkspaceBound { workspace } => {
                if !self.workspaces.contains(workspace.as_str()) {
                    let hint = self
                        .suggester
                        .did_you_mean(workspace, self.workspace_names());
                    self.error(
                        pos,
                        path,
                        codes::UNKNOWN_VARIABLE,
                        format!(
                            "unknown workspace `{workspace}` in `$(workspaces.{workspace}.bound)`"
                        ),
                    )
                    .hint = hint;
                }
            }
            VarRef::TasksStatus
            | VarRef::TasksOutcome
            | VarRef::RunName
            | VarRef::RunUid
            | VarRef::PipelineName
            | VarRef::TaskRetries
            | VarRef::TaskRetryCount => {}
        }
    }

    fn result_exists(&mut self, target: &PipelineTask, var: &VarRef, pos: Pos, path: &str) {
        let (VarRef::TaskResult { task, result }
        | VarRef::MatrixResults { task, result }
        | VarRef::MatrixResultLength { task, result }) = var
        else {
            return;
        };
        let info = match wait_info(target.kind) {
            Some(info) => info,
            None if target.steps.is_some() || target.child.is_some() => {
                let Some(info) = self.step_infos.get(target.name.value.as_str()) else {
                    return;
                };
                info
            }
            None => {
                let Some(catalog) = self.catalog else {
                    return;
                };
                let Some(info) = catalog.lookup(&target.plugin.value) else {
                    return;
                };
                info
            }
        };
        if info.results_fixed && !info.results.iter().any(|spec| &spec.name == result) {
            let hint = self
                .suggester
                .did_you_mean(result, info.results.iter().map(|spec| spec.name.as_str()));
            self.error(
                pos,
                path,
                codes::UNKNOWN_RESULT,
                format!(
                    "task `{task}` ({} `{}`) produces no result `{result}`",
                    what_runs(target),
                    info.name
                ),
            )
            .hint = hint;
        }
    }

    fn pipeline_results(&mut self) {
        let mut seen = HashSet::new();
        for (index, result) in self.pipeline.results.iter().enumerate() {
            let path = format!("spec.results[{index}]");
            self.too_long(
                "result name",
                &result.name,
                || format!("{path}.name"),
                MAX_NAME_CHARS,
                "weft allows names of at most 253 characters",
            );
            if !seen.insert(result.name.value.as_str()) {
                self.error(
                    result.name.pos,
                    format!("{path}.name"),
                    codes::DUPLICATE_NAME,
                    format!("result `{}` is declared twice", shown(&result.name.value)),
                );
            }
            let value_path = format!("{path}.value");
            match parse_template(&result.value.value) {
                Ok(template) => {
                    for var in template.vars() {
                        self.var(
                            None,
                            var,
                            result.value.pos,
                            &value_path,
                            Slot::StringOnly,
                            false,
                        );
                    }
                }
                Err(VarError::Malformed(message)) => {
                    self.error(
                        result.value.pos,
                        value_path,
                        codes::MALFORMED_VARIABLE,
                        message,
                    );
                }
                Err(VarError::Unknown(message)) => {
                    self.error(
                        result.value.pos,
                        value_path,
                        codes::UNKNOWN_VARIABLE,
                        message,
                    );
                }
            }
        }
    }

    /// A concurrency group names its group from pipeline params only: it is decided before
    /// anything runs.
    fn concurrency(&mut self, concurrency: &crate::model::Concurrency, path: &str) {
        let group = &concurrency.group;
        let group_path = format!("{path}.group");
        match parse_template(&group.value) {
            Ok(template) => {
                for var in template.vars() {
                    if matches!(var, VarRef::Param { .. }) {
                        self.var(None, var, group.pos, &group_path, Slot::StringOnly, false);
                    } else {
                        self.error(
                            group.pos,
                            group_path.clone(),
                            codes::INVALID_VALUE,
                            "a concurrency group may use only `$(params.NAME)`: it is decided before anything runs",
                        );
                    }
                }
            }
            Err(VarError::Malformed(message)) => {
                self.error(group.pos, group_path, codes::MALFORMED_VARIABLE, message);
            }
            Err(VarError::Unknown(message)) => {
                self.error(group.pos, group_path, codes::UNKNOWN_VARIABLE, message);
            }
        }
    }

    fn cycles(&mut self) {
        let tasks = &self.pipeline.tasks;
        let index: HashMap<&str, usize> = tasks
            .iter()
            .enumerate()
            .map(|(i, task)| (task.name.value.as_str(), i))
            .collect();
        let parents: Vec<Vec<usize>> = tasks.iter().map(|task| dag_parents(task, &index)).collect();
        let graph = Graph::from_parents(&parents);
        if graph.topological_order().is_some() {
            return;
        }
        for cycle in graph.cycles() {
            let mut names: Vec<&str> = cycle
                .iter()
                .map(|&i| tasks[i].name.value.as_str())
                .collect();
            names.push(names[0]);
            let first = &tasks[cycle[0]];
            let (pos, path) = (first.name.pos, format!("{}.name", first.path()));
            self.error(
                pos,
                path,
                codes::CYCLE,
                format!("dependency cycle: {}", names.join(" -> ")),
            )
            .hint = Some("remove one `runAfter` entry or result reference along the cycle".into());
        }
    }
}

/// The non-finally parents of `task`: `runAfter` targets and tasks whose results, status
/// or reason it reads (in params and `when`). Unknown names are skipped (reported elsewhere).
pub(crate) fn dag_parents(task: &PipelineTask, index: &HashMap<&str, usize>) -> Vec<usize> {
    let mut parents: Vec<usize> = task
        .run_after
        .iter()
        .filter_map(|name| index.get(name.value.as_str()).copied())
        .collect();
    for text in task.template_strings() {
        if let Ok(template) = parse_template(text) {
            for var in template.vars() {
                if let Some(target) = var.depends_on().and_then(|name| index.get(name)) {
                    parents.push(*target);
                }
            }
        }
    }
    parents
}

/// The description of a wait that runs no plugin (approvals, interventions): their params
/// and results are validated like a plugin's.
fn wait_info(kind: TaskKind) -> Option<&'static PluginInfo> {
    match kind {
        TaskKind::Approval => Some(crate::waits::approval_info()),
        TaskKind::Intervention => Some(crate::waits::intervention_info()),
        TaskKind::Plugin | TaskKind::Gate => None,
    }
}
