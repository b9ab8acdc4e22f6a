//! Tasks made of plugin steps: a `kind: Task` document's `spec`, or a pipeline task's
//! inline `taskSpec` (Tekton's StepAction form, `steps[].ref.name` naming a plugin).
//! A step that runs a container (`image`, `script`, `command`) is refused with a hint to
//! the closest first-party plugin: weft runs plugins, not containers.

use super::resolver::RefKind;
use super::{Cx, join};
use crate::diag::{Pos, Spanned, codes};
use crate::model::{OnError, Step, StepTaskResult, TaskSteps};
use crate::yaml::{Node, NodeKind};

/// Step fields that describe a container; each is refused with [`container_hint`].
const CONTAINER_FIELDS: [&str; 3] = ["image", "script", "command"];

/// The first-party plugin closest to what a container step's `script`/`command` does.
pub(crate) fn container_hint(text: &str) -> &'static str {
    let text = text.to_ascii_lowercase();
    if text.contains("curl") || text.contains("wget") || text.contains("http") {
        "http-request"
    } else if text.contains("sleep") || text.contains("until") {
        "wait-for"
    } else if text.contains("exit ") {
        "exit"
    } else {
        "echo"
    }
}

/// The text of a scalar or a list of scalars (a step's `script` or `command`).
fn text_of(node: &Node) -> String {
    match &node.kind {
        NodeKind::Scalar { text, .. } => text.clone(),
        NodeKind::Seq(items) => items
            .iter()
            .filter_map(Node::as_scalar)
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

impl Cx<'_> {
    /// A Task's `spec` (or an inline `taskSpec`) at `path`; `name` is the Task's
    /// `metadata.name` (empty inline).
    pub(super) fn task_spec(&mut self, node: &Node, path: &str, name: &str) -> Option<TaskSteps> {
        let fields = self.fields(
            node,
            path,
            &[
                "params",
                "steps",
                "results",
                "workspaces",
                "description",
                "displayName",
            ],
            &["sidecars", "stepTemplate", "volumes", "resources"],
        )?;
        let mut spec = TaskSteps {
            name: name.to_string(),
            file: self.file.to_string(),
            path: path.to_string(),
            params: Vec::new(),
            steps: Vec::new(),
            results: Vec::new(),
            pos: node.pos,
        };
        if let Some(params) = fields.get("params") {
            let list_path = join(path, "params");
            for (index, item) in self.seq(params, &list_path).iter().enumerate() {
                if let Some(decl) = self.param_decl(item, &format!("{list_path}[{index}]")) {
                    spec.params.push(decl);
                }
            }
        }
        if let Some(workspaces) = fields.get("workspaces") {
            let list_path = join(path, "workspaces");
            for (index, item) in self.seq(workspaces, &list_path).iter().enumerate() {
                let item_path = format!("{list_path}[{index}]");
                if let Some(ws) = self.fields(
                    item,
                    &item_path,
                    &["name", "description", "optional", "readOnly", "mountPath"],
                    &[],
                ) {
                    self.required_string(&ws, "name", &item_path, item.pos);
                }
            }
        }
        if let Some(results) = fields.get("results") {
            let list_path = join(path, "results");
            for (index, item) in self.seq(results, &list_path).iter().enumerate() {
                let item_path = format!("{list_path}[{index}]");
                if let Some(result) = self.fields(
                    item,
                    &item_path,
                    &["name", "value", "description", "type"],
                    &["properties"],
                ) {
                    let name = self.required_string(&result, "name", &item_path, item.pos);
                    let value = result
                        .get("value")
                        .and_then(|value| self.string(value, &join(&item_path, "value")));
                    if let Some(kind) = result.get("type")
                        && let Some(kind) = self.string(kind, &join(&item_path, "type"))
                        && kind.value != "string"
                    {
                        self.error(
                            kind.pos,
                            &join(&item_path, "type"),
                            codes::UNSUPPORTED_FIELD,
                            format!(
                                "result type `{}` is not supported: plugin results are strings",
                                kind.value
                            ),
                        );
                    }
                    spec.results.push(StepTaskResult { name, value });
                }
            }
        }
        let steps_path = join(path, "steps");
        match fields.get("steps") {
            None => {
                self.error(
                    node.pos,
                    path,
                    codes::MISSING_FIELD,
                    "missing required field `steps`",
                )
                .hint = Some(
                    "list the plugins to run: `steps: [{name: build, ref: {name: <plugin>}}]`"
                        .into(),
                );
            }
            Some(steps) => {
                let items = self.seq(steps, &steps_path);
                if items.is_empty() && !steps.is_null() {
                    self.error(
                        steps.pos,
                        &steps_path,
                        codes::MISSING_FIELD,
                        "`steps` is empty",
                    );
                }
                for (index, item) in items.iter().enumerate() {
                    if let Some(step) = self.step(item, &format!("{steps_path}[{index}]"), index) {
                        spec.steps.push(step);
                    }
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        for step in &spec.steps {
            if !step.name.value.is_empty() && !seen.insert(step.name.value.as_str()) {
                self.error(
                    step.name.pos,
                    &format!("{steps_path}[{}].name", step.index),
                    codes::DUPLICATE_NAME,
                    format!("two steps are called `{}`", step.name.value),
                );
            }
        }
        Some(spec)
    }

    fn step(&mut self, node: &Node, path: &str, index: usize) -> Option<Step> {
        let fields = self.fields(
            node,
            path,
            &[
                "name",
                "ref",
                "params",
                "results",
                "onError",
                "image",
                "script",
                "command",
                "args",
                "displayName",
            ],
            &[
                "env",
                "envFrom",
                "workingDir",
                "volumeMounts",
                "computeResources",
                "securityContext",
                "timeout",
                "stdoutConfig",
                "stderrConfig",
                "when",
                "imagePullPolicy",
            ],
        )?;
        let name = self.required_string(&fields, "name", path, node.pos);
        for field in CONTAINER_FIELDS {
            if let Some(value) = fields.get(field) {
                let pos = fields.key_pos(field).unwrap_or(value.pos);
                let said = ["script", "command", "args"]
                    .iter()
                    .filter_map(|f| fields.get(f))
                    .map(text_of)
                    .collect::<Vec<_>>()
                    .join(" ");
                let plugin = container_hint(&said);
                self.error(
                    pos,
                    &join(path, field),
                    codes::UNSUPPORTED_FIELD,
                    if name.value.is_empty() {
                        format!(
                            "a step with no name has `{field}`: weft runs plugins, not containers"
                        )
                    } else {
                        format!(
                            "step `{}` has `{field}`: weft runs plugins, not containers",
                            name.value
                        )
                    },
                )
                .hint = Some(format!(
                    "name a plugin instead: `ref: {{name: {plugin}}}` with its `params` (`weft plugin describe {plugin}` lists them; `weft plugin list` shows every plugin)"
                ));
                break;
            }
        }
        let is_container = CONTAINER_FIELDS.iter().any(|f| fields.get(f).is_some());
        if let Some(args) = fields.get("args")
            && !is_container
        {
            self.error(
                fields.key_pos("args").unwrap_or(args.pos),
                &join(path, "args"),
                codes::UNSUPPORTED_FIELD,
                format!("step `{}` has `args`: a plugin takes `params`", name.value),
            );
        }
        let plugin = match fields.get("ref") {
            Some(step_ref) => {
                let ref_path = join(path, "ref");
                match self.fields(step_ref, &ref_path, &["name", "resolver", "params"], &[]) {
                    Some(ref_fields) => self
                        .resolved_name(step_ref, &ref_path, RefKind::StepAction)
                        .unwrap_or_else(|| {
                            self.required_plugin(&ref_fields, "name", &ref_path, step_ref.pos)
                        }),
                    None => Spanned::new(String::new(), step_ref.pos),
                }
            }
            None if is_container => Spanned::new(String::new(), node.pos),
            None => {
                self.error(
                    node.pos,
                    path,
                    codes::MISSING_FIELD,
                    format!("step `{}` has no `ref`", name.value),
                )
                .hint = Some("name the plugin it runs: `ref: {name: <plugin>}`".into());
                Spanned::new(String::new(), node.pos)
            }
        };
        let params = fields
            .get("params")
            .map(|params| self.task_params(params, &join(path, "params")))
            .unwrap_or_default();
        let mut results = Vec::new();
        if let Some(list) = fields.get("results") {
            let list_path = join(path, "results");
            for (i, item) in self.seq(list, &list_path).iter().enumerate() {
                let item_path = format!("{list_path}[{i}]");
                if let Some(result) =
                    self.fields(item, &item_path, &["name", "description", "type"], &[])
                {
                    results.push(self.required_string(&result, "name", &item_path, item.pos));
                }
            }
        }
        let on_error = self
            .keyword(
                &fields,
                "onError",
                path,
                &[
                    ("stopAndFail", OnError::StopAndFail),
                    ("continue", OnError::Continue),
                ],
            )
            .map_or(OnError::StopAndFail, |kw| kw.value);
        Some(Step {
            name,
            plugin,
            params,
            on_error,
            results,
            index,
            pos: node.pos,
        })
    }
}

/// Where a Task document's `spec` is, or the document itself when it has none.
pub(super) fn spec_node(root: &Node) -> Option<(&Node, Pos)> {
    let NodeKind::Map(entries) = &root.kind else {
        return None;
    };
    entries
        .iter()
        .find(|(k, _)| k.as_scalar() == Some("spec"))
        .map(|(k, v)| (v, k.pos))
}

impl Cx<'_> {
    /// A `kind: Task` document: its `metadata.name` and `spec`.
    pub(super) fn task_document(&mut self, root: &Node, name: Option<&str>) -> Option<TaskSteps> {
        let Some(name) = name.filter(|name| !name.is_empty()) else {
            self.error(
                root.pos,
                "metadata.name",
                codes::MISSING_FIELD,
                "a Task needs `metadata.name`: pipeline tasks name it in `taskRef.name`",
            );
            return None;
        };
        let Some((spec, _)) = spec_node(root) else {
            self.error(
                root.pos,
                "spec",
                codes::MISSING_FIELD,
                "missing required field `spec`",
            );
            return None;
        };
        self.task_spec(spec, "spec", name)
    }
}

/// Tekton's propagated params into an inline `taskSpec`: a step's `$(params.X)` that the
/// spec does not declare but the pipeline does is declared for the spec and passed in by
/// the pipeline task (`X: $(params.X)`), as if written out.
pub(crate) fn propagate_into_task_specs(pipeline: &mut crate::model::Pipeline) {
    let declared: Vec<crate::model::ParamDecl> = pipeline.params.clone();
    for task in pipeline.tasks.iter_mut().chain(pipeline.finally.iter_mut()) {
        let Some(spec) = task.steps.as_deref_mut() else {
            continue;
        };
        if !spec.name.is_empty() {
            continue;
        }
        let mut wanted: Vec<String> = Vec::new();
        let texts = spec
            .steps
            .iter()
            .flat_map(|step| step.params.iter())
            .flat_map(|param| match &param.value.value {
                crate::contract::ParamValue::Str(text) => vec![text.clone()],
                crate::contract::ParamValue::Array(items) => items.clone(),
                crate::contract::ParamValue::Object(entries) => entries.values().cloned().collect(),
            })
            .chain(
                spec.results
                    .iter()
                    .filter_map(|r| Some(r.value.as_ref()?.value.clone())),
            );
        for text in texts {
            let mut rest = text.as_str();
            while let Some(at) = rest.find("$(params.") {
                rest = &rest[at + "$(params.".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                    .collect();
                if !name.is_empty() && !wanted.contains(&name) {
                    wanted.push(name);
                }
            }
        }
        for name in wanted {
            if spec.params.iter().any(|p| p.name.value == name) {
                continue;
            }
            let Some(decl) = declared.iter().find(|p| p.name.value == name) else {
                continue;
            };
            let mut own = decl.clone();
            own.default = None;
            spec.params.push(own);
            if !task.params.iter().any(|p| p.name.value == name) {
                let whole = match decl.param_type {
                    crate::contract::ParamType::String => format!("$(params.{name})"),
                    _ => format!("$(params.{name}[*])"),
                };
                task.params.push(crate::model::TaskParam {
                    name: Spanned::new(name.clone(), decl.pos),
                    value: Spanned::new(crate::contract::ParamValue::Str(whole), decl.pos),
                });
            }
        }
    }
}
