//! YAML text -> [`Pipeline`], collecting every structural problem (unknown or unsupported
//! fields, wrong types, missing fields) instead of stopping at the first.

use crate::contract::{ParamType, ParamValue};
use crate::diag::{Diagnostic, Pos, Spanned, codes, did_you_mean, shown};
use crate::duration::parse_go_duration;
use crate::model::*;
use crate::yaml::{Node, NodeKind};
use std::collections::{BTreeMap, HashSet};

pub mod documents;
mod pipeline_run;
mod resolver;
mod sugar;
mod task;

/// The fields of a gate's sampling (`gate:` and each `gates:` block).
const GATE_TIMING_FIELDS: [&str; 3] = ["samplingInterval", "stableFor", "timeout"];

/// Parses a pipeline. `file` is only used to label diagnostics.
///
/// Returns every structural problem at once. For semantic checks (references, cycles,
/// params) call [`crate::validate`] or [`crate::load`], which does both.
pub fn parse_pipeline(source: &str, file: &str) -> Result<Pipeline, Vec<Diagnostic>> {
    let (pipeline, diagnostics) = parse_lenient(source, file);
    match pipeline {
        Some(pipeline) if diagnostics.is_empty() => Ok(pipeline),
        _ => Err(diagnostics),
    }
}

/// Parses as much as it can: a model (unless the YAML itself is broken) plus every problem
/// found. Lets [`crate::load`] report structural and semantic problems together.
pub(crate) fn parse_lenient(source: &str, file: &str) -> (Option<Pipeline>, Vec<Diagnostic>) {
    let parsed = documents::parse_single(source, file);
    (parsed.pipeline, parsed.diagnostics)
}

struct Cx<'f> {
    file: &'f str,
    diagnostics: Vec<Diagnostic>,
    /// Tasks' `approval:` and `gates:` blocks, written out once every task is parsed.
    sugar: Vec<sugar::TaskSugar>,
}

/// Fields of a mapping, looked up by name after unknown ones were reported.
struct Fields<'n> {
    entries: Vec<(&'n str, &'n Node, Pos)>,
}

impl<'n> Fields<'n> {
    fn get(&self, name: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(key, _, _)| *key == name)
            .map(|(_, value, _)| *value)
    }

    /// Where the key `name` was written (an empty value has no useful position).
    fn key_pos(&self, name: &str) -> Option<Pos> {
        self.entries
            .iter()
            .find(|(key, _, _)| *key == name)
            .map(|(_, _, pos)| *pos)
    }
}

/// Up to this many keys, a mapping's earlier keys are compared in place to find one given
/// twice, allocating nothing; a longer mapping gets a hash set, so no file makes the
/// check quadratic.
const FEW_KEYS: usize = 16;

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

impl Cx<'_> {
    /// The file holds no pipeline document: empty, only comments, or an empty document.
    fn no_pipeline(&mut self, source: &str) {
        let blank = |line: &str| line.trim().is_empty();
        let what = if source.lines().all(blank) {
            "the file is empty"
        } else if source
            .lines()
            .all(|line| blank(line) || line.trim_start().starts_with('#'))
        {
            "the file is empty but for comments"
        } else {
            "its YAML document is empty"
        };
        let message = format!("{} holds no pipeline: {what}", self.file);
        self.error(Pos::new(1, 1), "", codes::MISSING_FIELD, message)
            .hint = Some(
            "a pipeline has `apiVersion: tekton.dev/v1` (or `weft.dev/v1`), `kind: Pipeline`, `metadata.name` and `spec.tasks`".into(),
        );
    }

    fn error(
        &mut self,
        pos: Pos,
        path: &str,
        code: &'static str,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.diagnostics
            .push(Diagnostic::new(self.file, pos, path, code, message));
        let last = self.diagnostics.len() - 1;
        &mut self.diagnostics[last]
    }

    /// Checks `node` is a mapping whose keys are all `known`; reports the rest.
    /// `unsupported` lists Tekton fields weft knowingly does not implement.
    fn fields<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        known: &[&str],
        unsupported: &[&str],
    ) -> Option<Fields<'n>> {
        let NodeKind::Map(entries) = &node.kind else {
            if !node.is_null() {
                self.error(
                    node.pos,
                    path,
                    codes::WRONG_TYPE,
                    format!("expected a mapping, found {}", node.type_name()),
                );
            }
            return None;
        };
        let mut fields = Fields {
            entries: Vec::with_capacity(entries.len()),
        };
        let mut seen: Option<HashSet<&str>> =
            (entries.len() > FEW_KEYS).then(|| HashSet::with_capacity(entries.len()));
        for (index, (key, value)) in entries.iter().enumerate() {
            let Some(name) = key.as_scalar() else {
                self.error(
                    key.pos,
                    path,
                    codes::WRONG_TYPE,
                    "mapping keys must be strings",
                );
                continue;
            };
            // Paths are built only for what is reported: most fields are fine.
            let given_before = match seen.as_mut() {
                Some(seen) => !seen.insert(name),
                None => entries[..index]
                    .iter()
                    .any(|(earlier, _)| earlier.as_scalar() == Some(name)),
            };
            if given_before {
                self.error(
                    key.pos,
                    &join(path, name),
                    codes::DUPLICATE_NAME,
                    format!("field `{}` is given twice", shown(name)),
                );
                continue;
            }
            if unsupported.contains(&name) {
                self.error(
                    key.pos,
                    &join(path, name),
                    codes::UNSUPPORTED_FIELD,
                    format!("`{name}` is a Tekton field weft does not support"),
                );
            } else if known.contains(&name) {
                fields.entries.push((name, value, key.pos));
            } else {
                let hint = did_you_mean(name, known.iter().copied());
                self.error(
                    key.pos,
                    &join(path, name),
                    codes::UNKNOWN_FIELD,
                    format!("unknown field `{}`", shown(name)),
                )
                .hint = hint;
            }
        }
        Some(fields)
    }

    fn string(&mut self, node: &Node, path: &str) -> Option<Spanned<String>> {
        self.string_at(node, || path.to_string())
    }

    /// [`Cx::string`] with a path built only when the node is reported.
    fn string_at(&mut self, node: &Node, path: impl FnOnce() -> String) -> Option<Spanned<String>> {
        match &node.kind {
            NodeKind::Scalar { text, .. } if !node.is_null() => {
                Some(Spanned::new(text.clone(), node.pos))
            }
            _ => {
                self.error(
                    node.pos,
                    &path(),
                    codes::WRONG_TYPE,
                    format!("expected a string, found {}", node.type_name()),
                );
                None
            }
        }
    }

    fn required_string(
        &mut self,
        fields: &Fields<'_>,
        name: &str,
        path: &str,
        owner_pos: Pos,
    ) -> Spanned<String> {
        match fields.get(name) {
            Some(node) => self
                .string_at(node, || join(path, name))
                .unwrap_or_else(|| Spanned::new(String::new(), node.pos)),
            None => {
                self.error(
                    owner_pos,
                    path,
                    codes::MISSING_FIELD,
                    format!("missing required field `{name}`"),
                );
                Spanned::new(String::new(), owner_pos)
            }
        }
    }

    /// A required string naming a plugin (`taskRef.name`, a decorator's `id`): blank is as
    /// good as missing, and nothing could ever run it.
    fn required_plugin(
        &mut self,
        fields: &Fields<'_>,
        name: &str,
        path: &str,
        owner_pos: Pos,
    ) -> Spanned<String> {
        let value = self.required_string(fields, name, path, owner_pos);
        let given = fields.get(name).is_some_and(|node| !node.is_null());
        if given && value.value.trim().is_empty() {
            let what = if value.value.is_empty() {
                "empty"
            } else {
                "only whitespace"
            };
            self.error(
                value.pos,
                &join(path, name),
                codes::INVALID_VALUE,
                format!("`{name}` is {what}: it must name a plugin"),
            )
            .hint = Some("name a plugin, e.g. `exit`; `weft plugin list` shows them".into());
        }
        value
    }

    fn optional_string(&mut self, fields: &Fields<'_>, name: &str, path: &str) -> String {
        fields
            .get(name)
            .and_then(|node| self.string_at(node, || join(path, name)))
            .map(|spanned| spanned.value)
            .unwrap_or_default()
    }

    fn bool(&mut self, fields: &Fields<'_>, name: &str, path: &str) -> bool {
        let Some(node) = fields.get(name) else {
            return false;
        };
        match &node.kind {
            NodeKind::Scalar { text, plain: true } if text == "true" => true,
            NodeKind::Scalar { text, plain: true } if text == "false" => false,
            _ => {
                self.error(
                    node.pos,
                    &join(path, name),
                    codes::WRONG_TYPE,
                    format!("`{name}` must be true or false"),
                );
                false
            }
        }
    }

    fn seq<'n>(&mut self, node: &'n Node, path: &str) -> &'n [Node] {
        self.seq_at(node, || path.to_string())
    }

    /// [`Cx::seq`] with a path built only when the node is reported.
    fn seq_at<'n>(&mut self, node: &'n Node, path: impl FnOnce() -> String) -> &'n [Node] {
        match &node.kind {
            NodeKind::Seq(items) => items,
            _ if node.is_null() => &[],
            _ => {
                self.error(
                    node.pos,
                    &path(),
                    codes::WRONG_TYPE,
                    format!("expected a list, found {}", node.type_name()),
                );
                &[]
            }
        }
    }

    fn string_list(&mut self, fields: &Fields<'_>, name: &str, path: &str) -> Vec<Spanned<String>> {
        let Some(node) = fields.get(name) else {
            return Vec::new();
        };
        let items = self.seq_at(node, || join(path, name));
        let mut list: Vec<_> = items
            .iter()
            .enumerate()
            .filter_map(|(index, item)| {
                self.string_at(item, || format!("{}[{index}]", join(path, name)))
            })
            .collect();
        list.shrink_to_fit();
        list
    }

    /// One of a fixed set of words.
    fn keyword<T: Copy>(
        &mut self,
        fields: &Fields<'_>,
        name: &str,
        path: &str,
        choices: &[(&str, T)],
    ) -> Option<Spanned<T>> {
        let node = fields.get(name)?;
        let path = join(path, name);
        let text = self.string(node, &path)?;
        if let Some((_, value)) = choices.iter().find(|(word, _)| *word == text.value) {
            return Some(Spanned::new(*value, text.pos));
        }
        let words: Vec<&str> = choices.iter().map(|(word, _)| *word).collect();
        let hint = did_you_mean(&text.value, words.iter().copied())
            .unwrap_or_else(|| format!("use one of: {}", words.join(", ")));
        self.error(
            text.pos,
            &path,
            codes::INVALID_VALUE,
            format!("`{}` is not a valid `{name}`", shown(&text.value)),
        )
        .hint = Some(hint);
        None
    }

    fn param_value(&mut self, node: &Node, path: &str) -> Option<Spanned<ParamValue>> {
        let value = match &node.kind {
            NodeKind::Scalar { text, .. } => ParamValue::Str(text.clone()),
            NodeKind::Seq(items) => {
                let mut strings = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    strings.push(self.string(item, &format!("{path}[{index}]"))?.value);
                }
                ParamValue::Array(strings)
            }
            NodeKind::Map(entries) => {
                let mut object = BTreeMap::new();
                for (key, value) in entries {
                    let key = self.string(key, path)?.value;
                    let text = self.string(value, &join(path, &key))?.value;
                    object.insert(key, text);
                }
                ParamValue::Object(object)
            }
        };
        Some(Spanned::new(value, node.pos))
    }

    fn pipeline(&mut self, root: &Node) -> Option<Pipeline> {
        let top = self.fields(root, "", &["apiVersion", "kind", "metadata", "spec"], &[])?;
        let api_version = match top.get("apiVersion") {
            None => {
                self.error(root.pos, "", codes::MISSING_FIELD, "missing `apiVersion`")
                    .hint = Some("use `apiVersion: tekton.dev/v1` or `weft.dev/v1`".into());
                ApiVersion::WeftV1
            }
            Some(node) => {
                let text = self.string(node, "apiVersion");
                match text.as_ref().map(|text| text.value.as_str()) {
                    Some("tekton.dev/v1") => ApiVersion::TektonV1,
                    Some("tekton.dev/v1beta1") => ApiVersion::TektonV1Beta1,
                    Some("weft.dev/v1") => ApiVersion::WeftV1,
                    other => {
                        if let Some(other) = other {
                            self.error(
                                node.pos,
                                "apiVersion",
                                codes::API_VERSION,
                                format!("unsupported apiVersion `{other}`"),
                            )
                            .hint = Some(
                                "use `tekton.dev/v1`, `tekton.dev/v1beta1` or `weft.dev/v1`".into(),
                            );
                        }
                        ApiVersion::WeftV1
                    }
                }
            }
        };
        match top.get("kind") {
            None => {
                self.error(root.pos, "", codes::MISSING_FIELD, "missing `kind`")
                    .hint = Some("use `kind: Pipeline`".into());
            }
            Some(node) => {
                if let Some(kind) = self.string(node, "kind")
                    && kind.value != "Pipeline"
                {
                    self.error(
                        node.pos,
                        "kind",
                        codes::KIND,
                        format!(
                            "unsupported kind `{}`: weft runs `Pipeline` documents",
                            kind.value
                        ),
                    )
                    .hint = (kind.value == "Task").then(|| {
                        "a Task runs as a pipeline task: put it in a file with a Pipeline (after a `---` line) whose task says `taskRef: {name: <the Task's name>}`, or in a `--pipelines DIR` file".into()
                    });
                }
            }
        }
        let name = match top.get("metadata") {
            None => {
                self.error(
                    root.pos,
                    "",
                    codes::MISSING_FIELD,
                    "missing `metadata.name`",
                );
                Spanned::new(String::new(), root.pos)
            }
            Some(metadata) => {
                match self.fields(
                    metadata,
                    "metadata",
                    &["name", "labels", "annotations", "namespace"],
                    &["generateName"],
                ) {
                    Some(fields) => self.required_string(&fields, "name", "metadata", metadata.pos),
                    None => Spanned::new(String::new(), metadata.pos),
                }
            }
        };
        let pipeline = Pipeline::empty(self.file, api_version, name, root.pos);
        self.pipeline_spec(pipeline, root.pos, top.get("spec"))
    }

    /// A pipeline task's `pipelineRef` (resolved once every document is read) or inline
    /// `pipelineSpec` (parsed here, its problems' paths under the task's `pipelineSpec`).
    fn child_pipeline(
        &mut self,
        task_name: &Spanned<String>,
        path: &str,
        reference: Option<&Node>,
        inline: Option<&Node>,
    ) -> Option<Box<ChildPipeline>> {
        match (reference, inline) {
            (None, None) => None,
            (Some(_), Some(inline)) => {
                self.error(
                    inline.pos,
                    &join(path, "pipelineSpec"),
                    codes::INVALID_VALUE,
                    "a task has `pipelineRef` or `pipelineSpec`, not both",
                );
                None
            }
            (Some(reference), None) => {
                let ref_path = join(path, "pipelineRef");
                let fields = self.fields(
                    reference,
                    &ref_path,
                    &["name", "kind", "apiVersion", "resolver", "params", "bundle"],
                    &[],
                )?;
                let name = self
                    .resolved_name(reference, &ref_path, resolver::RefKind::Pipeline)
                    .unwrap_or_else(|| {
                        self.required_string(&fields, "name", &ref_path, reference.pos)
                    });
                Some(Box::new(ChildPipeline {
                    reference: Some(name),
                    pipeline: None,
                    pos: reference.pos,
                }))
            }
            (None, Some(inline)) => {
                let spec_path = join(path, "pipelineSpec");
                let shell = Pipeline::empty(
                    self.file,
                    ApiVersion::TektonV1,
                    task_name.clone(),
                    inline.pos,
                );
                // A cx of its own: the child's `approval:`/`gates:` blocks are its own.
                let mut child = Cx {
                    file: self.file,
                    diagnostics: Vec::new(),
                    sugar: Vec::new(),
                };
                let pipeline = child.pipeline_spec(shell, inline.pos, Some(inline));
                for mut diagnostic in child.diagnostics {
                    if let Some(rest) = diagnostic.field_path.strip_prefix("spec")
                        && (rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
                    {
                        diagnostic.field_path = format!("{spec_path}{rest}");
                    }
                    self.diagnostics.push(diagnostic);
                }
                Some(Box::new(ChildPipeline {
                    reference: None,
                    pipeline,
                    pos: inline.pos,
                }))
            }
        }
    }

    /// A pipeline's `spec` (or a `PipelineRun`'s `pipelineSpec`) into `pipeline`.
    fn pipeline_spec(
        &mut self,
        mut pipeline: Pipeline,
        owner: Pos,
        spec_node: Option<&Node>,
    ) -> Option<Pipeline> {
        let Some(spec_node) = spec_node else {
            self.error(owner, "", codes::MISSING_FIELD, "missing `spec`");
            return Some(pipeline);
        };
        pipeline.spec_pos = spec_node.pos;
        let Some(spec) = self.fields(
            spec_node,
            "spec",
            &[
                "params",
                "workspaces",
                "tasks",
                "finally",
                "results",
                "description",
                "displayName",
                "reporters",
                "decorators",
                "recovery",
                "workspaceSnapshots",
                "concurrency",
            ],
            &["resources"],
        ) else {
            return Some(pipeline);
        };
        let description = self.optional_string(&spec, "description", "spec");
        pipeline.description = (!description.is_empty()).then_some(description);
        if let Some(node) = spec.get("params") {
            for (index, item) in self.seq(node, "spec.params").iter().enumerate() {
                if let Some(param) = self.param_decl(item, &format!("spec.params[{index}]")) {
                    pipeline.params.push(param);
                }
            }
        }
        if let Some(node) = spec.get("workspaces") {
            for (index, item) in self.seq(node, "spec.workspaces").iter().enumerate() {
                let path = format!("spec.workspaces[{index}]");
                if let Some(fields) =
                    self.fields(item, &path, &["name", "description", "optional"], &[])
                {
                    pipeline.workspaces.push(WorkspaceDecl {
                        name: self.required_string(&fields, "name", &path, item.pos),
                        description: self.optional_string(&fields, "description", &path),
                        optional: self.bool(&fields, "optional", &path),
                    });
                }
            }
        }
        for (section, is_finally) in [("tasks", false), ("finally", true)] {
            let Some(node) = spec.get(section) else {
                continue;
            };
            let path = format!("spec.{section}");
            let items = self.seq(node, &path);
            // Sized once: a 100,000-task pipeline would otherwise grow by doubling.
            if is_finally {
                pipeline.finally.reserve_exact(items.len());
            } else {
                pipeline.tasks.reserve_exact(items.len());
            }
            for (index, item) in items.iter().enumerate() {
                if let Some(task) = self.task(item, &format!("{path}[{index}]"), is_finally, index)
                {
                    if is_finally {
                        pipeline.finally.push(task);
                    } else {
                        pipeline.tasks.push(task);
                    }
                }
            }
        }
        self.desugar(&mut pipeline);
        if let Some(node) = spec.get("results") {
            for (index, item) in self.seq(node, "spec.results").iter().enumerate() {
                let path = format!("spec.results[{index}]");
                if let Some(fields) =
                    self.fields(item, &path, &["name", "value", "description", "type"], &[])
                {
                    if let Some(kind) = fields.get("type")
                        && let Some(kind) = self.string(kind, &join(&path, "type"))
                        && kind.value != "string"
                    {
                        self.error(
                            kind.pos,
                            &join(&path, "type"),
                            codes::UNSUPPORTED_FIELD,
                            format!(
                                "pipeline results of type `{}` are not supported; only `string`",
                                kind.value
                            ),
                        );
                    }
                    pipeline.results.push(PipelineResult {
                        name: self.required_string(&fields, "name", &path, item.pos),
                        value: self.required_string(&fields, "value", &path, item.pos),
                        description: self.optional_string(&fields, "description", &path),
                    });
                }
            }
        }
        if let Some(node) = spec.get("reporters") {
            for (index, item) in self.seq(node, "spec.reporters").iter().enumerate() {
                if matches!(item.kind, NodeKind::Map(_)) {
                    pipeline
                        .reporters
                        .push(Spanned::new(item.to_json(), item.pos));
                } else {
                    self.error(
                        item.pos,
                        &format!("spec.reporters[{index}]"),
                        codes::WRONG_TYPE,
                        format!("expected a mapping, found {}", item.type_name()),
                    );
                }
            }
        }
        if let Some(node) = spec.get("decorators") {
            for (index, item) in self.seq(node, "spec.decorators").iter().enumerate() {
                let path = format!("spec.decorators[{index}]");
                if let Some(fields) = self.fields(item, &path, &["id", "input", "secrets"], &[]) {
                    let input = fields.get("input");
                    pipeline.decorators.push(Decorator {
                        id: self.required_plugin(&fields, "id", &path, item.pos),
                        input: input.map(Node::to_json).unwrap_or(serde_json::Value::Null),
                        input_pos: input.map_or(item.pos, |node| node.pos),
                        secrets: self.string_list(&fields, "secrets", &path),
                        index,
                        pos: item.pos,
                    });
                }
            }
        }
        if let Some(node) = spec.get("recovery")
            && let Some(fields) = self.fields(node, "spec.recovery", &["strategy"], &[])
        {
            pipeline.recovery = self.keyword(
                &fields,
                "strategy",
                "spec.recovery",
                &[
                    ("none", RecoveryStrategy::None),
                    ("startOver", RecoveryStrategy::StartOver),
                    ("resume", RecoveryStrategy::Resume),
                ],
            );
        }
        pipeline.workspace_snapshots = self.bool(&spec, "workspaceSnapshots", "spec");
        pipeline.concurrency = spec
            .get("concurrency")
            .and_then(|node| self.concurrency(node, "spec.concurrency", true));
        Some(pipeline)
    }

    fn param_decl(&mut self, node: &Node, path: &str) -> Option<ParamDecl> {
        let fields = self.fields(
            node,
            path,
            &[
                "name",
                "type",
                "default",
                "description",
                "enum",
                "properties",
            ],
            &[],
        )?;
        let name = self.required_string(&fields, "name", path, node.pos);
        let default = fields
            .get("default")
            .and_then(|value| self.param_value(value, &join(path, "default")));
        let declared = self.keyword(
            &fields,
            "type",
            path,
            &[
                ("string", ParamType::String),
                ("array", ParamType::Array),
                ("object", ParamType::Object),
            ],
        );
        // Tekton infers the type from the default when `type` is omitted.
        let param_type = match (&declared, &default) {
            (Some(declared), _) => declared.value,
            (None, Some(default)) => default.value.param_type(),
            (None, None) => ParamType::String,
        };
        if let (Some(declared), Some(default)) = (&declared, &default)
            && declared.value != default.value.param_type()
        {
            self.error(
                default.pos,
                &join(path, "default"),
                codes::PARAM_TYPE,
                format!(
                    "default of param `{}` is {}, but the param is declared {}",
                    name.value,
                    default.value.param_type(),
                    declared.value
                ),
            );
        }
        let allowed = self
            .string_list(&fields, "enum", path)
            .into_iter()
            .map(|value| value.value)
            .collect();
        let mut properties = Vec::new();
        if let Some(node) = fields.get("properties") {
            if let NodeKind::Map(entries) = &node.kind {
                properties = entries
                    .iter()
                    .filter_map(|(key, _)| key.as_scalar().map(str::to_string))
                    .collect();
            } else {
                self.error(
                    node.pos,
                    &join(path, "properties"),
                    codes::WRONG_TYPE,
                    format!("expected a mapping, found {}", node.type_name()),
                );
            }
        }
        Some(ParamDecl {
            name,
            param_type,
            default,
            description: self.optional_string(&fields, "description", path),
            allowed,
            properties,
            pos: node.pos,
        })
    }

    /// `taskRef.kind` (and `apiVersion`): a plugin task, or one of the waits of
    /// release-control.md (Tekton's `ApprovalTask` custom task, weft's
    /// `ManualIntervention` and `Gate`).
    /// The task's kind; `None` (reported) for a kind weft does not know.
    fn task_kind(&mut self, ref_fields: &Fields<'_>, ref_path: &str) -> Option<TaskKind> {
        const APPROVAL_APIS: &[&str] = &["openshift-pipelines.org/v1alpha1", "weft.dev/v1"];
        const WEFT_API: &[&str] = &["weft.dev/v1"];
        let kind = ref_fields
            .get("kind")
            .and_then(|kind| self.string(kind, &join(ref_path, "kind")));
        let api = ref_fields
            .get("apiVersion")
            .and_then(|api| self.string(api, &join(ref_path, "apiVersion")));
        let (found, apis) = match kind.as_ref().map(|k| k.value.as_str()) {
            None | Some("Task") => (TaskKind::Plugin, &[][..]),
            Some("ApprovalTask") => (TaskKind::Approval, APPROVAL_APIS),
            Some("ManualIntervention") => (TaskKind::Intervention, WEFT_API),
            Some("Gate") => (TaskKind::Gate, WEFT_API),
            Some(other) => {
                if let Some(kind) = &kind {
                    self.error(
                        kind.pos,
                        &join(ref_path, "kind"),
                        codes::UNSUPPORTED_FIELD,
                        format!(
                            "taskRef kind `{other}` is not supported; weft knows `Task`, `ApprovalTask`, `ManualIntervention` and `Gate`"
                        ),
                    );
                }
                return None;
            }
        };
        if let Some(api) = api
            && !apis.contains(&api.value.as_str())
        {
            let message = if apis.is_empty() {
                format!(
                    "taskRef `apiVersion: {}` names a custom task, which weft does not run",
                    api.value
                )
            } else {
                format!(
                    "taskRef kind `{}` takes apiVersion {}, not `{}`",
                    kind.as_ref().map_or("", |k| k.value.as_str()),
                    apis.iter()
                        .map(|a| format!("`{a}`"))
                        .collect::<Vec<_>>()
                        .join(" or "),
                    api.value
                )
            };
            self.error(
                api.pos,
                &join(ref_path, "apiVersion"),
                codes::UNSUPPORTED_FIELD,
                message,
            )
            .hint = Some(
                "weft's own waits are `kind: ApprovalTask`, `ManualIntervention` and `Gate`".into(),
            );
        }
        Some(found)
    }

    /// A gate's `gate: {samplingInterval, stableFor, timeout}` (Go durations).
    fn gate_timing(
        &mut self,
        node: &Node,
        path: &str,
    ) -> Option<Spanned<crate::waits::GateTiming>> {
        let fields = self.fields(node, path, &GATE_TIMING_FIELDS, &[])?;
        Some(Spanned::new(
            self.gate_timing_fields(&fields, path, node.pos),
            node.pos,
        ))
    }

    /// The sampling fields of a gate (`gate:`, or a `gates:` block) among `fields`.
    fn gate_timing_fields(
        &mut self,
        fields: &Fields<'_>,
        path: &str,
        pos: Pos,
    ) -> crate::waits::GateTiming {
        let mut timing = crate::waits::GateTiming::default();
        for (key, slot) in [
            ("samplingInterval", &mut timing.sampling_interval),
            ("stableFor", &mut timing.stable_for),
            ("timeout", &mut timing.timeout),
        ] {
            let Some(value) = fields.get(key) else {
                continue;
            };
            let field = join(path, key);
            if let Some(duration) = self.duration(value, &field, key) {
                *slot = duration;
            }
        }
        if timing.sampling_interval.is_zero() {
            self.error(
                pos,
                &join(path, "samplingInterval"),
                codes::WRONG_TYPE,
                "samplingInterval must be more than 0s",
            );
        }
        timing
    }

    /// A Go duration (`30s`, `2m`, `1h`).
    fn duration(&mut self, node: &Node, path: &str, what: &str) -> Option<std::time::Duration> {
        let text = self.string(node, path)?;
        match parse_go_duration(&text.value) {
            Ok(duration) => Some(duration),
            Err(message) => {
                self.error(
                    text.pos,
                    path,
                    codes::WRONG_TYPE,
                    format!("invalid {what}: {message}"),
                )
                .hint = Some("write a Go duration such as `30s`, `2m` or `1h`".into());
                None
            }
        }
    }

    fn task(
        &mut self,
        node: &Node,
        path: &str,
        is_finally: bool,
        index: usize,
    ) -> Option<PipelineTask> {
        let fields = self.fields(
            node,
            path,
            &[
                "name",
                "taskRef",
                "params",
                "workspaces",
                "runAfter",
                "when",
                "retries",
                "timeout",
                "onError",
                "onStatus",
                "secrets",
                "halt",
                "idempotent",
                "concurrency",
                "displayName",
                "description",
                "gate",
                "approval",
                "gates",
                "taskSpec",
                "matrix",
                "pipelineRef",
                "pipelineSpec",
            ],
            &["resources"],
        )?;
        let name = self.required_string(&fields, "name", path, node.pos);
        let mut kind = TaskKind::Plugin;
        let task_spec = fields.get("taskSpec");
        let plugin = match fields.get("taskRef") {
            None if task_spec.is_some() => Spanned::new(String::new(), node.pos),
            None => {
                // Only complain when the task is not already reported for an unsupported
                // `taskSpec`/`pipelineRef` (one error per cause).
                let has_alternative = matches!(&node.kind, NodeKind::Map(entries)
                    if entries.iter().any(|(key, _)| matches!(key.as_scalar(), Some("taskSpec" | "pipelineRef" | "pipelineSpec"))));
                if !has_alternative {
                    self.error(
                        node.pos,
                        path,
                        codes::MISSING_FIELD,
                        "missing required field `taskRef`",
                    )
                    .hint = Some("name the plugin: `taskRef: {name: <plugin>}`".into());
                }
                Spanned::new(String::new(), node.pos)
            }
            Some(task_ref) if task_ref.is_null() => {
                self.error(
                    fields.key_pos("taskRef").unwrap_or(task_ref.pos),
                    &join(path, "taskRef"),
                    codes::MISSING_FIELD,
                    "`taskRef` is empty: it must name a plugin",
                )
                .hint = Some("name the plugin: `taskRef: {name: <plugin>}`".into());
                Spanned::new(String::new(), task_ref.pos)
            }
            Some(task_ref) => {
                let ref_path = join(path, "taskRef");
                match self.fields(
                    task_ref,
                    &ref_path,
                    &["name", "kind", "apiVersion", "resolver", "params", "bundle"],
                    &[],
                ) {
                    Some(ref_fields) => {
                        let known = self.task_kind(&ref_fields, &ref_path);
                        kind = known.unwrap_or_default();
                        let resolved =
                            self.resolved_name(task_ref, &ref_path, resolver::RefKind::Task);
                        if known.is_none()
                            || matches!(kind, TaskKind::Approval | TaskKind::Intervention)
                        {
                            // Waits for people run no plugin (and an unknown kind is
                            // already reported: one error per cause).
                            if resolved.is_some_and(|name| !name.value.is_empty()) {
                                self.error(
                                    ref_fields.key_pos("resolver").unwrap_or(task_ref.pos),
                                    &join(&ref_path, "resolver"),
                                    codes::INVALID_WAIT,
                                    "a wait for people runs no plugin: it takes no `resolver`",
                                );
                            }
                            Spanned::new(String::new(), task_ref.pos)
                        } else if let Some(name) = resolved {
                            name
                        } else {
                            self.required_plugin(&ref_fields, "name", &ref_path, task_ref.pos)
                        }
                    }
                    None => Spanned::new(String::new(), task_ref.pos),
                }
            }
        };
        let gate = fields
            .get("gate")
            .and_then(|gate| self.gate_timing(gate, &join(path, "gate")));
        let mut task = PipelineTask {
            name,
            kind,
            plugin,
            gate: gate.map(Box::new),
            gate_checks: Vec::new(),
            params: Vec::new(),
            workspaces: Vec::new(),
            run_after: self.string_list(&fields, "runAfter", path),
            when: Vec::new(),
            retries: 0,
            timeout: None,
            on_error: OnError::StopAndFail,
            on_status: Vec::new(),
            secrets: self.string_list(&fields, "secrets", path),
            halt: HaltMode::Wait,
            idempotent: self.bool(&fields, "idempotent", path),
            concurrency: fields
                .get("concurrency")
                .and_then(|node| self.concurrency(node, &join(path, "concurrency"), false))
                .map(Box::new),
            is_finally,
            index,
            pos: node.pos,
            origin: None,
            steps: None,
            matrix: None,
            child: None,
        };
        if let Some(params) = fields.get("params") {
            task.params = self.task_params(params, &join(path, "params"));
        }
        if let Some(matrix) = fields.get("matrix") {
            task.matrix = self.matrix(matrix, &join(path, "matrix")).map(Box::new);
        }
        if let Some(spec) = task_spec {
            if fields.get("taskRef").is_some() {
                self.error(
                    fields.key_pos("taskSpec").unwrap_or(spec.pos),
                    &join(path, "taskSpec"),
                    codes::INVALID_VALUE,
                    "a task has `taskRef` or `taskSpec`, not both",
                );
            } else {
                task.steps = self
                    .task_spec(spec, &join(path, "taskSpec"), "")
                    .map(Box::new);
            }
        }
        let (child_ref, child_spec) = (fields.get("pipelineRef"), fields.get("pipelineSpec"));
        if child_ref.is_some() || child_spec.is_some() {
            if let Some((key, node)) = [("taskRef", fields.get("taskRef")), ("taskSpec", task_spec)]
                .into_iter()
                .find_map(|(key, node)| Some((key, node?)))
            {
                self.error(
                    fields.key_pos(key).unwrap_or(node.pos),
                    &join(path, key),
                    codes::INVALID_VALUE,
                    format!("a task runs a pipeline (`pipelineRef`/`pipelineSpec`) or a plugin (`{key}`), not both"),
                );
            } else {
                task.child = self.child_pipeline(&task.name, path, child_ref, child_spec);
            }
        }
        self.release_sugar(&fields, path, &task);
        if let Some(workspaces) = fields.get("workspaces") {
            let list_path = join(path, "workspaces");
            for (index, item) in self.seq(workspaces, &list_path).iter().enumerate() {
                let item_path = format!("{list_path}[{index}]");
                if let Some(ws) =
                    self.fields(item, &item_path, &["name", "workspace"], &["subPath"])
                {
                    let name = self.required_string(&ws, "name", &item_path, item.pos);
                    let workspace = ws
                        .get("workspace")
                        .and_then(|node| self.string(node, &join(&item_path, "workspace")))
                        .unwrap_or_else(|| name.clone());
                    task.workspaces.push(WorkspaceBinding { name, workspace });
                }
            }
        }
        if let Some(when) = fields.get("when") {
            let list_path = join(path, "when");
            for (index, item) in self.seq(when, &list_path).iter().enumerate() {
                let item_path = format!("{list_path}[{index}]");
                if let Some(expr) = self.fields(
                    item,
                    &item_path,
                    &["input", "operator", "values"],
                    &["cel", "timeout"],
                ) {
                    if expr.get("input").is_none() && expr.get("operator").is_none() {
                        // Only `cel` (already reported) or nothing at all.
                        if expr.entries.is_empty()
                            && !matches!(&item.kind, NodeKind::Map(e) if !e.is_empty())
                        {
                            self.error(
                                item.pos,
                                &item_path,
                                codes::MISSING_FIELD,
                                "empty `when` expression",
                            );
                        }
                        continue;
                    }
                    let input = self.required_string(&expr, "input", &item_path, item.pos);
                    let operator = match expr.get("operator") {
                        None => {
                            self.error(
                                item.pos,
                                &item_path,
                                codes::MISSING_FIELD,
                                "missing required field `operator`",
                            );
                            None
                        }
                        Some(_) => self.keyword(
                            &expr,
                            "operator",
                            &item_path,
                            &[("in", WhenOperator::In), ("notin", WhenOperator::NotIn)],
                        ),
                    };
                    let values = self.string_list(&expr, "values", &item_path);
                    if values.is_empty() {
                        self.error(
                            expr.get("values").map_or(item.pos, |node| node.pos),
                            &join(&item_path, "values"),
                            codes::MISSING_FIELD,
                            "`when` needs at least one value",
                        );
                    }
                    if let Some(operator) = operator {
                        task.when.push(WhenExpr {
                            input,
                            operator: operator.value,
                            values,
                            pos: item.pos,
                        });
                    }
                }
            }
        }
        if let Some(retries) = fields.get("retries") {
            let retries_path = join(path, "retries");
            match &retries.kind {
                NodeKind::Scalar { text, plain: true } => match text.parse::<i64>() {
                    Ok(count) if count < 0 => {
                        self.error(
                            retries.pos,
                            &retries_path,
                            codes::INVALID_VALUE,
                            format!("retries must not be negative, got {count}"),
                        );
                    }
                    Ok(count) => task.retries = u32::try_from(count).unwrap_or(u32::MAX),
                    Err(_) => {
                        self.error(
                            retries.pos,
                            &retries_path,
                            codes::WRONG_TYPE,
                            format!("retries must be an integer, got `{text}`"),
                        );
                    }
                },
                _ => {
                    self.error(
                        retries.pos,
                        &retries_path,
                        codes::WRONG_TYPE,
                        format!("retries must be an integer, found {}", retries.type_name()),
                    );
                }
            }
        }
        if let Some(timeout) = fields.get("timeout") {
            let timeout_path = join(path, "timeout");
            if let Some(text) = self.string(timeout, &timeout_path) {
                match parse_go_duration(&text.value) {
                    Ok(duration) if duration.is_zero() => task.timeout = None,
                    Ok(duration) => task.timeout = Some(duration),
                    Err(message) => {
                        self.error(
                            text.pos,
                            &timeout_path,
                            codes::WRONG_TYPE,
                            format!("invalid timeout: {message}"),
                        )
                        .hint = Some("write a Go duration such as `90s`, `1m30s` or `1h`".into());
                    }
                }
            }
        }
        if let Some(on_error) = self.keyword(
            &fields,
            "onError",
            path,
            &[
                ("stopAndFail", OnError::StopAndFail),
                ("continue", OnError::Continue),
            ],
        ) {
            task.on_error = on_error.value;
        }
        if let Some(halt) = self.keyword(
            &fields,
            "halt",
            path,
            &[("wait", HaltMode::Wait), ("cancel", HaltMode::Cancel)],
        ) {
            task.halt = halt.value;
        }
        if let Some(rules) = fields.get("onStatus") {
            let list_path = join(path, "onStatus");
            for (index, item) in self.seq(rules, &list_path).iter().enumerate() {
                if let Some(rule) = self.on_status_rule(item, &format!("{list_path}[{index}]")) {
                    task.on_status.push(rule);
                }
            }
        }
        Some(task)
    }

    /// A `concurrency: {group, limit, policy}` block; a task's takes no `policy` (its
    /// slots are queued, as GitLab's `resource_group`).
    fn concurrency(&mut self, node: &Node, path: &str, run_level: bool) -> Option<Concurrency> {
        let known: &[&str] = if run_level {
            &["group", "limit", "policy"]
        } else {
            &["group", "limit"]
        };
        if !run_level
            && let NodeKind::Map(entries) = &node.kind
            && let Some((key, _)) = entries
                .iter()
                .find(|(k, _)| k.as_scalar() == Some("policy"))
        {
            self.error(
                key.pos,
                &join(path, "policy"),
                codes::INVALID_VALUE,
                "a task's concurrency has no `policy`: its slots are always queued in submission order",
            )
            .hint = Some("set `policy` on `spec.concurrency` to govern whole runs".into());
        }
        let mut known = known.to_vec();
        if !run_level {
            // Reported above, once.
            known.push("policy");
        }
        let fields = self.fields(node, path, &known, &[])?;
        let group = self.required_string(&fields, "group", path, node.pos);
        if group.value.trim().is_empty() && fields.get("group").is_some() {
            self.error(
                group.pos,
                &join(path, "group"),
                codes::INVALID_VALUE,
                "`group` is empty: it must name the group that shares the limit",
            );
        }
        let mut limit = Spanned::new(1, node.pos);
        if let Some(value) = fields.get("limit") {
            let limit_path = join(path, "limit");
            if let Some(text) = self.string(value, &limit_path) {
                match text.value.trim().parse::<u32>() {
                    Ok(n) if n >= 1 => limit = Spanned::new(n, text.pos),
                    _ => {
                        self.error(
                            text.pos,
                            &limit_path,
                            codes::INVALID_VALUE,
                            format!(
                                "`limit` must be a whole number of at least 1, not `{}`",
                                text.value
                            ),
                        )
                        .hint = Some(
                            "a limit of 0 would never let anything run; remove the block for no limit"
                                .into(),
                        );
                    }
                }
            }
        }
        let policy = if run_level {
            self.keyword(
                &fields,
                "policy",
                path,
                &[
                    ("queue", crate::queue::QueuePolicy::Queue),
                    ("latestOnly", crate::queue::QueuePolicy::LatestOnly),
                    (
                        "cancelInProgress",
                        crate::queue::QueuePolicy::CancelInProgress,
                    ),
                ],
            )
        } else {
            None
        }
        .unwrap_or(Spanned::new(crate::queue::QueuePolicy::Queue, node.pos));
        Some(Concurrency {
            group,
            limit,
            policy,
            pos: node.pos,
        })
    }

    /// A `params` list of `{name, value}` entries.
    /// A task's `matrix`: `params` (arrays) and `include` (named sets of strings).
    fn matrix(&mut self, node: &Node, path: &str) -> Option<Matrix> {
        let fields = self.fields(node, path, &["params", "include"], &[])?;
        let mut matrix = Matrix {
            params: Vec::new(),
            include: Vec::new(),
            pos: node.pos,
        };
        if let Some(params) = fields.get("params") {
            matrix.params = self.task_params(params, &join(path, "params"));
        }
        if let Some(include) = fields.get("include") {
            let list_path = join(path, "include");
            for (index, item) in self.seq(include, &list_path).iter().enumerate() {
                let item_path = format!("{list_path}[{index}]");
                let Some(entry) = self.fields(item, &item_path, &["name", "params"], &[]) else {
                    continue;
                };
                let name = entry
                    .get("name")
                    .and_then(|name| self.string(name, &join(&item_path, "name")));
                let params = match entry.get("params") {
                    Some(params) => self.task_params(params, &join(&item_path, "params")),
                    None => {
                        self.error(
                            item.pos,
                            &item_path,
                            codes::MISSING_FIELD,
                            "missing required field `params`",
                        );
                        Vec::new()
                    }
                };
                matrix.include.push(MatrixInclude {
                    name,
                    params,
                    pos: item.pos,
                });
            }
        }
        if matrix.params.is_empty() && matrix.include.is_empty() {
            self.error(
                node.pos,
                path,
                codes::MISSING_FIELD,
                "an empty `matrix`: give it `params` (arrays) or `include` entries",
            );
            return None;
        }
        Some(matrix)
    }

    fn task_params(&mut self, params: &Node, params_path: &str) -> Vec<TaskParam> {
        let mut out = Vec::new();
        for (index, item) in self.seq(params, params_path).iter().enumerate() {
            let item_path = format!("{params_path}[{index}]");
            if let Some(param_fields) = self.fields(item, &item_path, &["name", "value"], &[]) {
                let name = self.required_string(&param_fields, "name", &item_path, item.pos);
                let value = match param_fields.get("value") {
                    Some(value) => self.param_value(value, &join(&item_path, "value")),
                    None => {
                        self.error(
                            item.pos,
                            &item_path,
                            codes::MISSING_FIELD,
                            "missing required field `value`",
                        );
                        None
                    }
                };
                if let Some(value) = value {
                    out.push(TaskParam { name, value });
                }
            }
        }
        out
    }

    fn on_status_rule(&mut self, node: &Node, path: &str) -> Option<OnStatusRule> {
        let fields = self.fields(node, path, &["exitCodes", "outcome", "flow"], &[])?;
        let mut exit_codes = Vec::new();
        match fields.get("exitCodes") {
            None => {
                self.error(
                    node.pos,
                    path,
                    codes::MISSING_FIELD,
                    "missing required field `exitCodes`",
                );
            }
            Some(list) => {
                let list_path = join(path, "exitCodes");
                let items = self.seq(list, &list_path);
                if items.is_empty() {
                    self.error(
                        list.pos,
                        &list_path,
                        codes::INVALID_VALUE,
                        "`exitCodes` must not be empty",
                    );
                }
                for (index, item) in items.iter().enumerate() {
                    match item.as_scalar().map(str::parse::<i32>) {
                        Some(Ok(code)) => exit_codes.push(code),
                        _ => {
                            self.error(
                                item.pos,
                                &format!("{list_path}[{index}]"),
                                codes::WRONG_TYPE,
                                "exit codes must be integers",
                            );
                        }
                    }
                }
            }
        }
        let outcome = match fields.get("outcome") {
            None => {
                self.error(
                    node.pos,
                    path,
                    codes::MISSING_FIELD,
                    "missing required field `outcome`",
                );
                None
            }
            Some(_) => self.keyword(
                &fields,
                "outcome",
                path,
                &[
                    ("success", PolicyOutcome::Success),
                    ("warning", PolicyOutcome::Warning),
                    ("failure", PolicyOutcome::Failure),
                    ("skipped", PolicyOutcome::Skipped),
                ],
            ),
        };
        let flow = self.keyword(
            &fields,
            "flow",
            path,
            &[
                ("continue", Flow::Continue),
                ("stop", Flow::Stop),
                ("halt", Flow::Halt),
            ],
        );
        let outcome = outcome?;
        if exit_codes.is_empty() {
            return None;
        }
        Some(OnStatusRule {
            exit_codes,
            outcome: outcome.value,
            flow: flow.map(|flow| flow.value),
            pos: node.pos,
        })
    }
}
