//! Tasks made of plugin steps (issue #18): what each step is given and how the task ends.
//!
//! One pipeline task attempt runs its steps in order over the task's workspaces
//! (SEMANTICS-NOTES.md): a step's params read the Task's params (`$(params.NAME)`) and
//! earlier steps' results (`$(steps.NAME.results.R)`); the first step that fails or errors
//! ends the attempt with its ending unless it has `onError: continue`; a `halt` or `skip`
//! ends it too; a warning is kept and the steps go on. A retry runs every step again.
//! The task's results are its declared `results`, each from its `value` or from the step
//! result of the same name (the last step that produced it).

use std::collections::{BTreeMap, HashMap};

use crate::contract::{ParamValue, PluginInfo, ResultSpec, TaskEnding};
use crate::diag::{Diagnostic, codes};
use crate::model::{OnError, TaskSteps};

/// A `$(...)` reference a step may hold.
#[derive(Debug, Clone, PartialEq, Eq)]
enum StepVar<'a> {
    /// `$(params.NAME)`, `$(params.NAME[*])`, `$(params.NAME[INDEX])` (an array's item).
    Param(&'a str, Option<usize>),
    /// `$(steps.STEP.results.R)`.
    StepResult(&'a str, &'a str),
}

/// Every `$(...)` in `text`: (byte range, inner text).
fn references(text: &str) -> Vec<(std::ops::Range<usize>, &str)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(start) = text[from..].find("$(").map(|at| at + from) {
        let Some(end) = text[start..].find(')').map(|at| at + start) else {
            break;
        };
        out.push((start..end + 1, &text[start + 2..end]));
        from = end + 1;
    }
    out
}

/// Whether `inner` is shaped like a variable (else it is literal text, as in pipelines).
fn variable_shaped(inner: &str) -> bool {
    !inner.is_empty()
        && inner
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-[]*\"'".contains(c))
}

fn parse_var(inner: &str) -> Option<StepVar<'_>> {
    if let Some(name) = inner.strip_prefix("params.") {
        let name = name.strip_suffix("[*]").unwrap_or(name);
        let (name, index) = match name.strip_suffix(']').and_then(|n| n.split_once('[')) {
            Some((name, index)) => (name, Some(index.parse().ok()?)),
            None => (name, None),
        };
        return (!name.is_empty() && !name.contains(['.', '[']))
            .then_some(StepVar::Param(name, index));
    }
    let rest = inner.strip_prefix("steps.")?;
    let (step, result) = rest.split_once(".results.")?;
    (!step.is_empty() && !result.is_empty()).then_some(StepVar::StepResult(step, result))
}

/// The Task's interface as validation sees a plugin's: its params and (fixed) results.
pub fn task_info(task: &TaskSteps) -> PluginInfo {
    PluginInfo {
        name: if task.name.is_empty() {
            "taskSpec".into()
        } else {
            task.name.clone()
        },
        version: String::new(),
        description: String::new(),
        params: task
            .params
            .iter()
            .map(crate::model::ParamDecl::spec)
            .collect(),
        results: task
            .results
            .iter()
            .map(|r| ResultSpec {
                name: r.name.value.clone(),
                description: String::new(),
            })
            .collect(),
        results_fixed: true,
        accepts_any_params: false,
        capabilities: Default::default(),
    }
}

/// Checks a Task's steps: each plugin known, its params those it declares, every
/// `$(params.X)` a Task param, every `$(steps.S.results.R)` a step that runs earlier and
/// a result its plugin produces, every task result found.
pub fn check(task: &TaskSteps, catalog: Option<&dyn crate::PluginCatalog>) -> Vec<Diagnostic> {
    let Some(catalog) = catalog else {
        return check_with(task, &|_| None, &|_| None, false);
    };
    let hint = |name: &str| {
        crate::diag::did_you_mean(name, catalog.names()).or_else(|| catalog.how_to_add(name))
    };
    check_with(task, &|name| catalog.lookup(name).cloned(), &hint, true)
}

fn check_with(
    task: &TaskSteps,
    lookup: &dyn Fn(&str) -> Option<PluginInfo>,
    hint: &dyn Fn(&str) -> Option<String>,
    known: bool,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let order: HashMap<&str, usize> = task
        .steps
        .iter()
        .map(|step| (step.name.value.as_str(), step.index))
        .collect();
    let infos: Vec<Option<PluginInfo>> = task
        .steps
        .iter()
        .map(|step| lookup(&step.plugin.value))
        .collect();
    let params: HashMap<&str, _> = task
        .params
        .iter()
        .map(|p| (p.name.value.as_str(), p))
        .collect();
    let step_path = |index: usize| format!("{}.steps[{index}]", task.path);
    let check_text = |out: &mut Vec<Diagnostic>,
                      text: &str,
                      pos: crate::diag::Pos,
                      path: &str,
                      reader: Option<usize>| {
        for (_, inner) in references(text) {
            if !variable_shaped(inner) {
                continue;
            }
            match parse_var(inner) {
                Some(StepVar::Param(name, _)) => {
                    if !params.contains_key(name) {
                        out.push(Diagnostic::new(
                            &task.file,
                            pos,
                            path,
                            codes::UNKNOWN_VARIABLE,
                            format!("`$({inner})`: the Task declares no param `{name}`"),
                        ));
                    }
                }
                Some(StepVar::StepResult(step, result)) => match order.get(step) {
                    None => out.push(Diagnostic::new(
                        &task.file,
                        pos,
                        path,
                        codes::UNKNOWN_VARIABLE,
                        format!("`$({inner})`: the Task has no step `{step}`"),
                    )),
                    Some(&at) if reader.is_some_and(|reader| at >= reader) => {
                        let mut d = Diagnostic::new(
                            &task.file,
                            pos,
                            path,
                            codes::INVALID_REFERENCE,
                            format!(
                                "`$({inner})` is read before step `{step}` runs: steps run in order"
                            ),
                        );
                        d.hint = Some(format!("move step `{step}` before the step reading it"));
                        out.push(d);
                    }
                    Some(&at) => {
                        if let Some(Some(info)) = infos.get(at)
                            && info.results_fixed
                            && !info.results.iter().any(|r| r.name == result)
                        {
                            out.push(Diagnostic::new(
                                &task.file,
                                pos,
                                path,
                                codes::UNKNOWN_RESULT,
                                format!(
                                    "step `{step}` (plugin `{}`) produces no result `{result}`",
                                    info.name
                                ),
                            ));
                        }
                    }
                },
                None => {
                    let mut d = Diagnostic::new(
                        &task.file,
                        pos,
                        path,
                        codes::UNKNOWN_VARIABLE,
                        format!("unknown variable `$({inner})` in a Task"),
                    );
                    d.hint = Some(
                        "a step reads `$(params.NAME)` and `$(steps.STEP.results.NAME)`".into(),
                    );
                    out.push(d);
                }
            }
        }
    };
    for step in &task.steps {
        let base = step_path(step.index);
        if step.plugin.value.is_empty() {
            continue;
        }
        let info = infos.get(step.index).cloned().flatten();
        if info.is_none() && known {
            let mut unknown = Diagnostic::new(
                &task.file,
                step.plugin.pos,
                format!("{base}.ref.name"),
                codes::UNKNOWN_PLUGIN,
                format!(
                    "step `{}` names unknown plugin `{}`",
                    step.name.value, step.plugin.value
                ),
            );
            unknown.hint = hint(&step.plugin.value);
            out.push(unknown);
        }
        for (index, param) in step.params.iter().enumerate() {
            let path = format!("{base}.params[{index}]");
            if let Some(info) = &info
                && !info.accepts_any_params
                && !info.params.iter().any(|p| p.name == param.name.value)
            {
                out.push(Diagnostic::new(
                    &task.file,
                    param.name.pos,
                    format!("{path}.name"),
                    codes::UNKNOWN_PARAM,
                    format!(
                        "plugin `{}` of step `{}` takes no param `{}`",
                        info.name, step.name.value, param.name.value
                    ),
                ));
            }
            for text in values(&param.value.value) {
                check_text(
                    &mut out,
                    text,
                    param.value.pos,
                    &format!("{path}.value"),
                    Some(step.index),
                );
            }
        }
        if let Some(info) = &info {
            for spec in info.params.iter().filter(|p| p.default.is_none()) {
                if !step.params.iter().any(|p| p.name.value == spec.name) {
                    out.push(Diagnostic::new(
                        &task.file,
                        step.pos,
                        &base,
                        codes::MISSING_PARAM,
                        format!(
                            "step `{}`: plugin `{}` needs param `{}`",
                            step.name.value, info.name, spec.name
                        ),
                    ));
                }
            }
        }
    }
    for (index, result) in task.results.iter().enumerate() {
        let path = format!("{}.results[{index}]", task.path);
        match &result.value {
            Some(value) => check_text(
                &mut out,
                &value.value,
                value.pos,
                &format!("{path}.value"),
                None,
            ),
            None => {
                let produced = !known
                    || task.steps.iter().any(|step| {
                        step.results.iter().any(|r| r.value == result.name.value)
                            || infos
                                .get(step.index)
                                .cloned()
                                .flatten()
                                .is_some_and(|info| {
                                    !info.results_fixed
                                        || info.results.iter().any(|r| r.name == result.name.value)
                                })
                    });
                if !produced {
                    let mut d = Diagnostic::new(
                        &task.file,
                        result.name.pos,
                        &path,
                        codes::UNKNOWN_RESULT,
                        format!("no step produces result `{}`", result.name.value),
                    );
                    d.hint = Some("give it a `value: $(steps.STEP.results.NAME)`".into());
                    out.push(d);
                }
            }
        }
    }
    out
}

fn values(value: &ParamValue) -> Vec<&str> {
    match value {
        ParamValue::Str(text) => vec![text.as_str()],
        ParamValue::Array(items) => items.iter().map(String::as_str).collect(),
        ParamValue::Object(entries) => entries.values().map(String::as_str).collect(),
    }
}

/// A step to run: its plugin and rendered params.
#[derive(Debug, Clone, PartialEq)]
pub struct StepStart {
    /// Index among the steps.
    pub index: usize,
    /// `name`.
    pub name: String,
    /// The plugin.
    pub plugin: String,
    /// Params, every reference rendered.
    pub params: BTreeMap<String, ParamValue>,
}

/// One attempt of a Task's steps: which step runs next, and how the attempt ends.
#[derive(Debug)]
pub struct StepRun<'t> {
    task: &'t TaskSteps,
    params: BTreeMap<String, ParamValue>,
    next: usize,
    results: HashMap<String, BTreeMap<String, String>>,
    ending: Option<TaskEnding>,
    stopped: bool,
}

impl<'t> StepRun<'t> {
    /// A fresh attempt with the pipeline task's params (the Task's defaults fill the rest).
    pub fn new(task: &'t TaskSteps, supplied: &BTreeMap<String, ParamValue>) -> Self {
        let mut params: BTreeMap<String, ParamValue> = task
            .params
            .iter()
            .filter_map(|p| Some((p.name.value.clone(), p.default.as_ref()?.value.clone())))
            .collect();
        params.extend(supplied.iter().map(|(k, v)| (k.clone(), v.clone())));
        StepRun {
            task,
            params,
            next: 0,
            results: HashMap::new(),
            ending: None,
            stopped: false,
        }
    }

    /// The next step to run, `None` when the attempt is over.
    pub fn next_step(&mut self) -> Option<StepStart> {
        if self.stopped {
            return None;
        }
        let step = self.task.steps.get(self.next)?;
        let params = step
            .params
            .iter()
            .map(|p| (p.name.value.clone(), self.render_value(&p.value.value)))
            .collect();
        Some(StepStart {
            index: step.index,
            name: step.name.value.clone(),
            plugin: step.plugin.value.clone(),
            params,
        })
    }

    /// The step `next_step` gave ended so.
    pub fn ended(&mut self, ending: TaskEnding, results: BTreeMap<String, String>) {
        let Some(step) = self.task.steps.get(self.next) else {
            return;
        };
        self.next += 1;
        self.results.insert(step.name.value.clone(), results);
        match &ending {
            TaskEnding::Success => {}
            TaskEnding::Warning { .. } => {
                if self.ending.is_none() {
                    self.ending = Some(ending);
                }
            }
            TaskEnding::Halt { .. } | TaskEnding::Skip { .. } => {
                self.ending = Some(ending);
                self.stopped = true;
            }
            TaskEnding::Failure { .. } | TaskEnding::Errored { .. } => {
                if step.on_error == OnError::Continue {
                    return;
                }
                self.ending = Some(ending);
                self.stopped = true;
            }
        }
    }

    /// How the attempt ended and the task's results.
    pub fn finish(self) -> (TaskEnding, BTreeMap<String, String>) {
        let mut results = BTreeMap::new();
        for result in &self.task.results {
            let value = match &result.value {
                Some(value) => self.render_complete(&value.value),
                None => self
                    .task
                    .steps
                    .iter()
                    .rev()
                    .find_map(|step| self.results.get(&step.name.value)?.get(&result.name.value))
                    .cloned(),
            };
            if let Some(value) = value {
                results.insert(result.name.value.clone(), value);
            }
        }
        (self.ending.unwrap_or(TaskEnding::Success), results)
    }

    fn lookup(&self, inner: &str) -> Option<ParamValue> {
        match parse_var(inner)? {
            StepVar::Param(name, None) => self.params.get(name).cloned(),
            StepVar::Param(name, Some(index)) => match self.params.get(name)? {
                ParamValue::Array(items) => items.get(index).cloned().map(ParamValue::Str),
                _ => None,
            },
            StepVar::StepResult(step, result) => self
                .results
                .get(step)?
                .get(result)
                .map(|v| ParamValue::Str(v.clone())),
        }
    }

    fn render_value(&self, value: &ParamValue) -> ParamValue {
        match value {
            ParamValue::Str(text) => {
                // A whole-value array param stays an array (`$(params.a[*])`).
                if let [(range, inner)] = references(text).as_slice()
                    && range.start == 0
                    && range.end == text.len()
                    && let Some(found @ (ParamValue::Array(_) | ParamValue::Object(_))) =
                        self.lookup(inner)
                {
                    return found;
                }
                ParamValue::Str(self.render(text))
            }
            ParamValue::Array(items) => {
                ParamValue::Array(items.iter().map(|item| self.render(item)).collect())
            }
            ParamValue::Object(entries) => ParamValue::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), self.render(v)))
                    .collect(),
            ),
        }
    }

    /// `text` with every known reference replaced (a missing step result is empty).
    fn render(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for (range, inner) in references(text) {
            if !variable_shaped(inner) || parse_var(inner).is_none() {
                continue;
            }
            out.push_str(&text[last..range.start]);
            match self.lookup(inner) {
                Some(ParamValue::Str(value)) => out.push_str(&value),
                Some(ParamValue::Array(items)) => out.push_str(&items.join(" ")),
                Some(ParamValue::Object(_)) | None => {}
            }
            last = range.end;
        }
        out.push_str(&text[last..]);
        out
    }

    /// `text` rendered, or `None` when a step result it reads was not produced.
    fn render_complete(&self, text: &str) -> Option<String> {
        let complete = references(text)
            .iter()
            .all(|(_, inner)| parse_var(inner).is_none() || self.lookup(inner).is_some());
        complete.then(|| self.render(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::{Pos, Spanned};
    use crate::model::{Step, StepTaskResult, TaskParam};

    fn s(text: &str) -> Spanned<String> {
        Spanned::new(text.to_string(), Pos::new(1, 1))
    }

    fn step(
        index: usize,
        name: &str,
        plugin: &str,
        params: &[(&str, &str)],
        on_error: OnError,
    ) -> Step {
        Step {
            name: s(name),
            plugin: s(plugin),
            params: params
                .iter()
                .map(|(k, v)| TaskParam {
                    name: s(k),
                    value: Spanned::new(ParamValue::Str(v.to_string()), Pos::new(1, 1)),
                })
                .collect(),
            on_error,
            results: Vec::new(),
            index,
            pos: Pos::new(1, 1),
        }
    }

    fn task(steps: Vec<Step>, results: &[(&str, Option<&str>)]) -> TaskSteps {
        TaskSteps {
            name: "t".into(),
            file: "f.yaml".into(),
            path: "spec".into(),
            params: Vec::new(),
            steps,
            results: results
                .iter()
                .map(|(name, value)| StepTaskResult {
                    name: s(name),
                    value: value.map(s),
                })
                .collect(),
            pos: Pos::new(1, 1),
        }
    }

    fn fail(code: i32) -> TaskEnding {
        TaskEnding::Failure {
            message: "no".into(),
            exit_code: code,
        }
    }

    /// Runs the steps with the given endings (one per step started); returns the names of
    /// the steps started and how the attempt ended.
    fn drive(
        task: &TaskSteps,
        endings: &[(TaskEnding, &[(&str, &str)])],
    ) -> (Vec<String>, TaskEnding, BTreeMap<String, String>) {
        let mut run = StepRun::new(
            task,
            &BTreeMap::from([("who".to_string(), ParamValue::Str("weft".into()))]),
        );
        let mut started = Vec::new();
        let mut endings = endings.iter();
        while let Some(next) = run.next_step() {
            started.push(format!("{}:{:?}", next.name, next.params.values().next()));
            let Some((ending, results)) = endings.next() else {
                break;
            };
            run.ended(
                ending.clone(),
                results
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            );
        }
        let (ending, results) = run.finish();
        (started, ending, results)
    }

    #[test]
    fn steps_run_in_order_and_the_first_stopping_failure_ends_the_attempt() {
        let two = |on_error| {
            task(
                vec![
                    step(0, "a", "exit", &[("code", "1")], on_error),
                    step(
                        1,
                        "b",
                        "echo",
                        &[("message", "after $(steps.a.results.x)")],
                        OnError::StopAndFail,
                    ),
                ],
                &[
                    ("x", None),
                    ("y", Some("b said $(steps.b.results.message)")),
                ],
            )
        };
        type Case = (
            &'static str,
            OnError,
            Vec<(TaskEnding, &'static [(&'static str, &'static str)])>,
            usize,
            TaskEnding,
            &'static [(&'static str, &'static str)],
        );
        let cases: Vec<Case> = vec![
            (
                "both succeed",
                OnError::StopAndFail,
                vec![
                    (TaskEnding::Success, &[("x", "1")]),
                    (TaskEnding::Success, &[("message", "m")]),
                ],
                2,
                TaskEnding::Success,
                &[("x", "1"), ("y", "b said m")],
            ),
            (
                "first fails: second never runs",
                OnError::StopAndFail,
                vec![(fail(3), &[("x", "1")])],
                1,
                fail(3),
                &[("x", "1")],
            ),
            (
                "first fails, onError continue",
                OnError::Continue,
                vec![(fail(3), &[]), (TaskEnding::Success, &[("message", "m")])],
                2,
                TaskEnding::Success,
                &[("y", "b said m")],
            ),
            (
                "a warning is kept",
                OnError::StopAndFail,
                vec![
                    (
                        TaskEnding::Warning {
                            message: "w".into(),
                        },
                        &[],
                    ),
                    (TaskEnding::Success, &[]),
                ],
                2,
                TaskEnding::Warning {
                    message: "w".into(),
                },
                &[],
            ),
            (
                "a halt stops the steps",
                OnError::StopAndFail,
                vec![(
                    TaskEnding::Halt {
                        message: "h".into(),
                    },
                    &[],
                )],
                1,
                TaskEnding::Halt {
                    message: "h".into(),
                },
                &[],
            ),
            (
                "second fails after a continue",
                OnError::Continue,
                vec![(fail(1), &[]), (fail(7), &[])],
                2,
                fail(7),
                &[],
            ),
        ];
        for (name, on_error, endings, steps_run, ending, results) in cases {
            let task = two(on_error);
            let (started, got, got_results) = drive(&task, &endings);
            assert_eq!(started.len(), steps_run, "{name}: {started:?}");
            assert_eq!(got, ending, "{name}");
            let want: BTreeMap<String, String> = results
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_eq!(got_results, want, "{name}");
        }
    }

    #[test]
    fn a_step_reads_the_tasks_params_and_earlier_results() {
        let mut t = task(
            vec![
                step(
                    0,
                    "a",
                    "echo",
                    &[("message", "hi $(params.who)")],
                    OnError::StopAndFail,
                ),
                step(
                    1,
                    "b",
                    "echo",
                    &[("message", "<$(steps.a.results.message)> $(date +%s)")],
                    OnError::StopAndFail,
                ),
            ],
            &[],
        );
        t.params.clear();
        let (started, _, _) = drive(
            &t,
            &[
                (TaskEnding::Success, &[("message", "hi weft")]),
                (TaskEnding::Success, &[]),
            ],
        );
        assert_eq!(
            started,
            vec![
                "a:Some(Str(\"hi weft\"))".to_string(),
                "b:Some(Str(\"<hi weft> $(date +%s)\"))".to_string()
            ]
        );
    }

    #[test]
    fn check_reports_reads_before_the_step_unknown_params_and_missing_results() {
        let t = task(
            vec![
                step(
                    0,
                    "a",
                    "echo",
                    &[("message", "$(steps.b.results.message)")],
                    OnError::StopAndFail,
                ),
                step(
                    1,
                    "b",
                    "echo",
                    &[
                        ("message", "$(params.nope) $(steps.zz.results.q)"),
                        ("extra", "1"),
                    ],
                    OnError::StopAndFail,
                ),
            ],
            &[("gone", None)],
        );
        let echo = PluginInfo {
            name: "echo".into(),
            version: String::new(),
            description: String::new(),
            params: vec![crate::contract::ParamSpec {
                name: "message".into(),
                description: String::new(),
                param_type: crate::contract::ParamType::String,
                default: None,
                allowed: Vec::new(),
            }],
            results: vec![ResultSpec {
                name: "message".into(),
                description: String::new(),
            }],
            results_fixed: true,
            accepts_any_params: false,
            capabilities: Default::default(),
        };
        let catalog = BTreeMap::from([("echo".to_string(), echo)]);
        let codes: Vec<(&str, String)> = check(&t, Some(&catalog))
            .iter()
            .map(|d| (d.code, d.field_path.clone()))
            .collect();
        assert_eq!(
            codes,
            vec![
                (
                    codes::INVALID_REFERENCE,
                    "spec.steps[0].params[0].value".to_string()
                ),
                (
                    codes::UNKNOWN_VARIABLE,
                    "spec.steps[1].params[0].value".to_string()
                ),
                (
                    codes::UNKNOWN_VARIABLE,
                    "spec.steps[1].params[0].value".to_string()
                ),
                (
                    codes::UNKNOWN_PARAM,
                    "spec.steps[1].params[1].name".to_string()
                ),
                (codes::UNKNOWN_RESULT, "spec.results[0]".to_string()),
            ]
        );
    }
}
