//! Files of several YAML documents (`---`-separated): `Pipeline`s and `PipelineRun`s in
//! one file, as Tekton's own examples keep them. Which pipeline a run runs is decided
//! here, and every diagnostic is labelled with the document it is in.
//!
//! The rules (Tekton's where it has one):
//!
//! - A file with one `PipelineRun` runs it: its `pipelineSpec`, or the `Pipeline` its
//!   `pipelineRef.name` names, looked up among the file's documents first, then among the
//!   referenced files (`weft run --pipelines DIR`). Two `PipelineRun`s in one file are an
//!   error: a file is one run.
//! - A file without a `PipelineRun` runs its only `Pipeline`; several are an error that
//!   asks for a `PipelineRun` to say which.
//! - Every document of the run's own file is checked; a referenced file's documents only
//!   when the run uses them (a directory of pipelines may hold broken ones).
//! - Empty documents (a stray `---`) are skipped, as `kubectl` does.
//! - In a file of more than one document, each diagnostic names its document
//!   (`document 2 (Pipeline build)`); problems inside an inline `pipelineSpec` have paths
//!   under `spec.pipelineSpec`.

use super::Cx;
use crate::diag::{Diagnostic, Pos, Spanned, codes};
use crate::model::{ApiVersion, Pipeline, TaskKind, TaskSteps};
use crate::pipeline_run::{PipelineChoice, PipelineRun, apply_task_run_specs, propagate_params};
use crate::yaml::{self, Node, NodeKind};

/// A file given to the parser: its name (for diagnostics) and its text.
#[derive(Debug, Clone, Copy)]
pub struct SourceFile<'a> {
    /// The name diagnostics use.
    pub file: &'a str,
    /// The YAML text.
    pub text: &'a str,
}

/// What a run's files hold: the pipeline to run and the `PipelineRun` that asked for it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunFiles {
    /// The pipeline to run (`None` when no pipeline could be found or parsed).
    pub pipeline: Option<Pipeline>,
    /// The `PipelineRun`, when the file has one.
    pub run: Option<PipelineRun>,
    /// Indices of the referenced files the run uses.
    pub used: Vec<usize>,
    /// Every problem found, labelled.
    pub diagnostics: Vec<Diagnostic>,
    /// Where each document is, to label problems found later (validation).
    pub layout: Layout,
}

/// Where the documents of the parsed files are, to say which one a problem is in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Layout {
    spans: Vec<DocumentSpan>,
}

#[derive(Debug, Clone, PartialEq)]
struct DocumentSpan {
    file: String,
    first_line: u32,
    /// Inclusive; `u32::MAX` for a file's last document.
    last_line: u32,
    /// `document 2 (Pipeline build)`; `None` in a file of one document.
    label: Option<String>,
    /// Lines of an inline `pipelineSpec`: its problems' paths are under it.
    inline_spec: Option<(u32, u32)>,
}

impl RunFiles {
    /// The params the run is given: its `PipelineRun`'s (those its pipeline declares),
    /// overridden by `flags` (`weft run -p`).
    pub fn supplied(
        &self,
        flags: &std::collections::BTreeMap<String, crate::contract::ParamValue>,
    ) -> std::collections::BTreeMap<String, crate::contract::ParamValue> {
        let mut params = match (&self.run, &self.pipeline) {
            (Some(run), Some(pipeline)) => run.params_for(pipeline),
            _ => Default::default(),
        };
        params.extend(flags.iter().map(|(k, v)| (k.clone(), v.clone())));
        params
    }
}

impl Layout {
    /// Labels each problem with its document, and moves the paths of problems inside an
    /// inline `pipelineSpec` under `spec.pipelineSpec`.
    pub fn label(&self, diagnostics: &mut [Diagnostic]) {
        // Spans of one file are in line order: a binary search per problem, so a file of
        // many documents with many problems is labelled in O(P log D).
        let mut spans: Vec<&DocumentSpan> = self.spans.iter().collect();
        spans.sort_by(|a, b| (&a.file, a.first_line).cmp(&(&b.file, b.first_line)));
        for diagnostic in diagnostics {
            let after = spans.partition_point(|span| {
                (span.file.as_str(), span.first_line) <= (diagnostic.file.as_str(), diagnostic.line)
            });
            let Some(span) = after
                .checked_sub(1)
                .and_then(|at| spans.get(at))
                .filter(|span| span.file == diagnostic.file && diagnostic.line <= span.last_line)
            else {
                continue;
            };
            if diagnostic.document.is_none() {
                diagnostic.document = span.label.clone().map(Box::new);
            }
            if let Some((first, last)) = span.inline_spec
                && diagnostic.line >= first
                && diagnostic.line <= last
                && (diagnostic.field_path == "spec" || diagnostic.field_path.starts_with("spec."))
                && !diagnostic.field_path.starts_with("spec.pipelineSpec")
            {
                diagnostic.field_path = format!(
                    "spec.pipelineSpec{}",
                    &diagnostic.field_path["spec".len()..]
                );
            }
        }
    }
}

/// One non-empty document of a file.
struct Doc<'n> {
    /// 1-based among the file's documents.
    number: usize,
    root: &'n Node,
    kind: Option<String>,
    name: Option<String>,
}

/// The scalar at `key` of a mapping node.
fn scalar<'n>(node: &'n Node, key: &str) -> Option<&'n str> {
    let NodeKind::Map(entries) = &node.kind else {
        return None;
    };
    entries
        .iter()
        .find(|(k, _)| k.as_scalar() == Some(key))
        .and_then(|(_, v)| v.as_scalar())
}

/// `metadata.name`.
fn metadata_name(node: &Node) -> Option<String> {
    let NodeKind::Map(entries) = &node.kind else {
        return None;
    };
    let (_, metadata) = entries
        .iter()
        .find(|(k, _)| k.as_scalar() == Some("metadata"))?;
    scalar(metadata, "name").map(str::to_string)
}

/// A file's documents, or the diagnostic of its broken YAML.
fn split(source: SourceFile<'_>) -> Result<Vec<yaml::Document>, Box<Diagnostic>> {
    yaml::parse_documents(source.text).map_err(|error| {
        Box::new(Diagnostic::new(
            source.file,
            error.pos,
            "",
            codes::YAML_SYNTAX,
            format!("invalid YAML: {}", error.message),
        ))
    })
}

fn docs(documents: &[yaml::Document]) -> Vec<Doc<'_>> {
    documents
        .iter()
        .enumerate()
        .filter_map(|(index, document)| {
            let root = document.root.as_ref().filter(|root| !root.is_null())?;
            Some(Doc {
                number: index + 1,
                root,
                kind: scalar(root, "kind").map(str::to_string),
                name: metadata_name(root),
            })
        })
        .collect()
}

fn spans(file: &str, documents: &[yaml::Document], labelled: bool) -> Vec<DocumentSpan> {
    let all: std::collections::HashMap<usize, Doc<'_>> = docs(documents)
        .into_iter()
        .map(|doc| (doc.number, doc))
        .collect();
    documents
        .iter()
        .enumerate()
        .map(|(index, document)| {
            let doc = all.get(&(index + 1));
            let label = match (labelled, doc) {
                (true, Some(doc)) => Some(match (&doc.kind, &doc.name) {
                    (Some(kind), Some(name)) => format!("document {} ({kind} {name})", doc.number),
                    (Some(kind), None) => format!("document {} ({kind})", doc.number),
                    _ => format!("document {}", doc.number),
                }),
                _ => None,
            };
            DocumentSpan {
                file: file.to_string(),
                first_line: document.start.line,
                last_line: documents
                    .get(index + 1)
                    .map_or(u32::MAX, |next| next.start.line.saturating_sub(1)),
                label,
                inline_spec: None,
            }
        })
        .collect()
}

/// The `apiVersion` of a document of a kind weft reads; reported when it is not one.
fn api_version(cx: &mut Cx<'_>, root: &Node) -> ApiVersion {
    match scalar(root, "apiVersion") {
        Some("tekton.dev/v1") => ApiVersion::TektonV1,
        Some("tekton.dev/v1beta1") => ApiVersion::TektonV1Beta1,
        Some("weft.dev/v1") => ApiVersion::WeftV1,
        Some(other) => {
            let pos = match &root.kind {
                NodeKind::Map(entries) => entries
                    .iter()
                    .find(|(k, _)| k.as_scalar() == Some("apiVersion"))
                    .map_or(root.pos, |(_, v)| v.pos),
                _ => root.pos,
            };
            cx.error(
                pos,
                "apiVersion",
                codes::API_VERSION,
                format!("unsupported apiVersion `{other}`"),
            )
            .hint = Some("use `tekton.dev/v1`, `tekton.dev/v1beta1` or `weft.dev/v1`".into());
            ApiVersion::WeftV1
        }
        None => {
            cx.error(root.pos, "", codes::MISSING_FIELD, "missing `apiVersion`")
                .hint = Some("use `apiVersion: tekton.dev/v1` or `weft.dev/v1`".into());
            ApiVersion::WeftV1
        }
    }
}

/// Parses a single file (with no referenced files): what [`crate::parse_pipeline`] and
/// [`crate::load`] read.
pub(crate) fn parse_single(source: &str, file: &str) -> RunFiles {
    parse_run(SourceFile { file, text: source }, &[])
}

/// Parses a run's file and what it references: the pipeline it runs, its `PipelineRun`,
/// and every problem (labelled with its document).
pub fn parse_run(main: SourceFile<'_>, referenced: &[SourceFile<'_>]) -> RunFiles {
    let mut out = RunFiles {
        pipeline: None,
        run: None,
        used: Vec::new(),
        diagnostics: Vec::new(),
        layout: Layout::default(),
    };
    let mut cx = Cx {
        file: main.file,
        diagnostics: Vec::new(),
        sugar: Vec::new(),
    };
    let mut tasks: Vec<TaskSteps> = Vec::new();
    let mut local_pipelines: Vec<Pipeline> = Vec::new();
    let documents = match split(main) {
        Ok(documents) => documents,
        Err(diagnostic) => {
            out.diagnostics.push(*diagnostic);
            return out;
        }
    };
    let found = docs(&documents);
    if found.is_empty() {
        cx.no_pipeline(main.text);
        out.diagnostics = cx.diagnostics;
        return out;
    }
    let labelled = found.len() > 1;
    out.layout.spans = spans(main.file, &documents, labelled);
    if !labelled {
        // One document: exactly what weft always read, or a PipelineRun.
        let root = found[0].root;
        if found[0].kind.as_deref() == Some("PipelineRun") {
            let api = api_version(&mut cx, root);
            if let Some((run, inline)) = cx.pipeline_run(root, api) {
                out.run = Some(run);
                out.pipeline = inline;
            }
        } else {
            out.pipeline = cx.pipeline(root);
            if out.pipeline.is_none() && cx.diagnostics.is_empty() {
                cx.no_pipeline(main.text);
            }
        }
    } else {
        let mut pipelines: Vec<(usize, Pipeline)> = Vec::new();
        let mut pipeline_names: std::collections::HashMap<String, usize> =
            std::collections::HashMap::new();
        let mut task_names: std::collections::HashMap<String, usize> =
            std::collections::HashMap::new();
        let mut runs: Vec<(usize, PipelineRun, Option<Pipeline>)> = Vec::new();
        for doc in &found {
            match doc.kind.as_deref() {
                Some("Task") => {
                    api_version(&mut cx, doc.root);
                    if let Some(task) = cx.task_document(doc.root, doc.name.as_deref()) {
                        if let Some(number) = task_names.insert(task.name.clone(), doc.number) {
                            cx.error(
                                task.pos,
                                "metadata.name",
                                codes::DUPLICATE_NAME,
                                format!(
                                    "a Task named `{}` is document {number} already",
                                    task.name
                                ),
                            );
                        }
                        tasks.push(task);
                    }
                }
                Some("Pipeline") => {
                    if let Some(pipeline) = cx.pipeline(doc.root) {
                        if let Some(number) =
                            pipeline_names.insert(pipeline.name.value.clone(), doc.number)
                        {
                            cx.error(
                                pipeline.name.pos,
                                "metadata.name",
                                codes::DUPLICATE_NAME,
                                format!(
                                    "a Pipeline named `{}` is document {number} already",
                                    pipeline.name.value
                                ),
                            );
                        }
                        pipelines.push((doc.number, pipeline));
                    }
                }
                Some("PipelineRun") => {
                    let api = api_version(&mut cx, doc.root);
                    if let Some((run, inline)) = cx.pipeline_run(doc.root, api) {
                        runs.push((doc.number, run, inline));
                    }
                }
                other => {
                    let pos = match &doc.root.kind {
                        NodeKind::Map(entries) => entries
                            .iter()
                            .find(|(k, _)| k.as_scalar() == Some("kind"))
                            .map_or(doc.root.pos, |(_, v)| v.pos),
                        _ => doc.root.pos,
                    };
                    let message = match other {
                        Some(kind) => format!(
                            "unsupported kind `{kind}`: weft reads `Pipeline`, `PipelineRun` and `Task` documents"
                        ),
                        None => "missing `kind`: weft reads `Pipeline`, `PipelineRun` and `Task` documents"
                            .to_string(),
                    };
                    let code = if other.is_some() {
                        codes::KIND
                    } else {
                        codes::MISSING_FIELD
                    };
                    cx.error(pos, "kind", code, message).hint = Some(match other {
                        Some("ClusterTask") => {
                            "write it as a `kind: Task` whose steps name plugins (`ref: {name: <plugin>}`)".into()
                        }
                        Some("StepAction") => {
                            "weft runs plugins, not containers: a step's `ref.name` names a plugin (`weft plugin list` shows them); remove this document".into()
                        }
                        Some("PersistentVolumeClaim" | "ConfigMap" | "Secret") => {
                            "remove it: volumes are host directories (`weft run --volume NAME=DIR`) and secrets come from weft's secret store".into()
                        }
                        _ => "keep Pipelines and PipelineRuns in the file, one PipelineRun at most".into(),
                    });
                }
            }
        }
        // Pipeline tasks' `pipelineRef`s may name any of them.
        local_pipelines = pipelines.iter().map(|(_, p)| p.clone()).collect();
        match runs.len() {
            0 => match pipelines.len() {
                0 => {
                    cx.error(
                        Pos::new(1, 1),
                        "",
                        codes::DOCUMENTS,
                        format!("{} holds no Pipeline or PipelineRun to run", main.file),
                    );
                }
                1 => out.pipeline = pipelines.pop().map(|(_, p)| p),
                n => {
                    let second = &pipelines[1].1;
                    cx.error(
                        second.name.pos,
                        "",
                        codes::DOCUMENTS,
                        format!(
                            "{} holds {n} Pipelines and no PipelineRun: weft cannot tell which to run",
                            main.file
                        ),
                    )
                    .hint = Some(
                        "add a PipelineRun with `pipelineRef: {name: ...}`, or keep one Pipeline in the file".into(),
                    );
                }
            },
            1 => {
                let (_, run, inline) = runs.remove(0);
                if let Some(inline) = inline {
                    out.pipeline = Some(inline);
                } else if let PipelineChoice::Ref(name) = &run.pipeline
                    && let Some(index) = pipelines
                        .iter()
                        .position(|(_, p)| p.name.value == name.value)
                {
                    out.pipeline = Some(pipelines.swap_remove(index).1);
                }
                out.run = Some(run);
            }
            n => {
                let (second, run, _) = &runs[1];
                cx.error(
                    run.pos,
                    "",
                    codes::DOCUMENTS,
                    format!(
                        "{} holds {n} PipelineRuns (documents {} and {second}{}): a file is one run",
                        main.file,
                        runs[0].0,
                        if n > 2 { ", ..." } else { "" }
                    ),
                )
                .hint = Some("keep one PipelineRun per file".into());
            }
        }
    }
    out.diagnostics = std::mem::take(&mut cx.diagnostics);
    // A pipelineRef the file does not hold: the referenced files.
    if let Some(run) = &out.run
        && out.pipeline.is_none()
        && let PipelineChoice::Ref(name) = &run.pipeline
        && !name.value.is_empty()
    {
        match find_referenced(referenced, &name.value) {
            Some((index, pipeline, diagnostics, spans)) => {
                out.used.push(index);
                out.diagnostics.extend(diagnostics);
                out.layout.spans.extend(spans);
                out.pipeline = pipeline;
            }
            None => out.diagnostics.push(unresolved_pipeline(
                main.file,
                name,
                "spec.pipelineRef.name",
                referenced,
            )),
        }
    }
    // Pipeline tasks running pipelines (`pipelineRef`, `pipelineSpec`), to any depth.
    if let Some(pipeline) = &mut out.pipeline {
        let mut children = Children {
            local: &local_pipelines,
            tasks: &tasks,
            referenced,
            stack: vec![pipeline.name.value.clone()],
            budget: MAX_NESTED_TASKS,
            found: ResolvedTasks::default(),
        };
        children.resolve(pipeline);
        for index in children.found.used {
            if !out.used.contains(&index) {
                out.used.push(index);
            }
        }
        out.diagnostics.extend(children.found.diagnostics);
        out.layout.spans.extend(children.found.spans);
    }
    // `taskRef.name` naming a Task document (the file's, then the referenced files')
    // before a plugin of that name.
    if let Some(pipeline) = &mut out.pipeline {
        let found = resolve_tasks(pipeline, &tasks, referenced);
        for index in found.used {
            if !out.used.contains(&index) {
                out.used.push(index);
            }
        }
        out.diagnostics.extend(found.diagnostics);
        out.layout.spans.extend(found.spans);
    }
    // The run shapes its pipeline: propagated params, taskRunSpecs timeouts.
    if let (Some(run), Some(pipeline)) = (&out.run, &mut out.pipeline) {
        if matches!(run.pipeline, PipelineChoice::Inline(_)) {
            propagate_params(pipeline, run);
        }
        apply_task_run_specs(pipeline, run);
        out.diagnostics.extend(run.check(pipeline));
    }
    if let Some(pipeline) = &mut out.pipeline {
        super::task::propagate_into_task_specs(pipeline);
    }
    if let Some(run) = &out.run
        && let PipelineChoice::Inline(pos) = run.pipeline
        && let Some(span) = out.layout.spans.iter_mut().find(|span| {
            span.file == main.file && pos.line >= span.first_line && pos.line <= span.last_line
        })
    {
        let last = out
            .pipeline
            .as_ref()
            .map_or(pos.line, |pipeline| last_line_of(pipeline).max(pos.line));
        span.inline_spec = Some((pos.line, last));
    }
    out.layout.label(&mut out.diagnostics);
    out
}

/// The last line a pipeline's parts start on (an inline spec's extent).
fn last_line_of(pipeline: &Pipeline) -> u32 {
    let tasks = pipeline.all_tasks().map(|task| {
        task.params
            .iter()
            .map(|p| p.value.pos.line)
            .chain(task.when.iter().map(|w| w.pos.line))
            .chain(task.workspaces.iter().map(|w| w.workspace.pos.line))
            .chain(task.run_after.iter().map(|r| r.pos.line))
            .fold(task.pos.line, u32::max)
    });
    let params = pipeline
        .params
        .iter()
        .map(|p| p.default.as_ref().map_or(p.pos.line, |d| d.pos.line));
    let results = pipeline.results.iter().map(|r| r.value.pos.line);
    let workspaces = pipeline.workspaces.iter().map(|w| w.name.pos.line);
    tasks
        .chain(params)
        .chain(results)
        .chain(workspaces)
        .fold(pipeline.spec_pos.line, u32::max)
}

/// The `Pipeline` called `name` among the referenced files: its file's index, the
/// pipeline, its problems and its file's document spans.
#[allow(clippy::type_complexity)]
fn find_referenced(
    referenced: &[SourceFile<'_>],
    name: &str,
) -> Option<(usize, Option<Pipeline>, Vec<Diagnostic>, Vec<DocumentSpan>)> {
    for (index, source) in referenced.iter().enumerate() {
        let Ok(documents) = yaml::parse_documents(source.text) else {
            continue;
        };
        let found = docs(&documents);
        let Some(doc) = found.iter().find(|doc| {
            doc.kind.as_deref() == Some("Pipeline") && doc.name.as_deref() == Some(name)
        }) else {
            continue;
        };
        let mut cx = Cx {
            file: source.file,
            diagnostics: Vec::new(),
            sugar: Vec::new(),
        };
        let pipeline = cx.pipeline(doc.root);
        let spans = spans(source.file, &documents, found.len() > 1);
        return Some((index, pipeline, cx.diagnostics, spans));
    }
    None
}

/// Most tasks pipelines in pipelines may add up to, every level counted: references
/// that fan out at each level would otherwise grow a plan exponentially.
pub const MAX_NESTED_TASKS: usize = 100_000;

/// Resolving pipeline tasks' `pipelineRef`s (the run's file first, then the referenced
/// files), each resolved child's own children and Task references in turn.
struct Children<'a, 's> {
    local: &'a [Pipeline],
    tasks: &'a [TaskSteps],
    referenced: &'a [SourceFile<'s>],
    /// The pipelines being resolved, outermost first: one named again is recursion.
    stack: Vec<String>,
    /// Tasks the children may still add.
    budget: usize,
    found: ResolvedTasks,
}

impl Children<'_, '_> {
    fn resolve(&mut self, pipeline: &mut Pipeline) {
        for task in pipeline.tasks.iter_mut().chain(pipeline.finally.iter_mut()) {
            let task_path = task.path();
            let Some(child) = task.child.as_deref_mut() else {
                continue;
            };
            if child.pipeline.is_none()
                && let Some(name) = &child.reference
                && !name.value.is_empty()
            {
                let file = pipeline.file.as_str();
                if self.stack.contains(&name.value) {
                    let chain = self.stack.join(" -> ");
                    self.found.diagnostics.push(Diagnostic::new(
                        file,
                        name.pos,
                        format!("{task_path}.pipelineRef.name"),
                        codes::CYCLE,
                        format!(
                            "pipeline `{}` would run itself: {chain} -> {}",
                            name.value, name.value
                        ),
                    ));
                    continue;
                }
                child.pipeline = self.find(file, name, &task_path);
            }
            let Some(inner) = child.pipeline.as_mut() else {
                continue;
            };
            let size = inner.tasks.len() + inner.finally.len();
            if size > self.budget {
                self.found.diagnostics.push(Diagnostic::new(
                    pipeline.file.as_str(),
                    child.pos,
                    task_path,
                    codes::INVALID_VALUE,
                    format!(
                        "pipelines in pipelines add up to more than {MAX_NESTED_TASKS} tasks here"
                    ),
                ));
                child.pipeline = None;
                continue;
            }
            self.budget -= size;
            self.stack.push(inner.name.value.clone());
            self.resolve(inner);
            self.stack.pop();
            let found = resolve_tasks(inner, self.tasks, self.referenced);
            self.found.absorb(found);
            super::task::propagate_into_task_specs(inner);
        }
    }

    /// The `Pipeline` called `name`: the run's file's, else a referenced file's.
    fn find(&mut self, file: &str, name: &Spanned<String>, task_path: &str) -> Option<Pipeline> {
        if let Some(found) = self.local.iter().find(|p| p.name.value == name.value) {
            return Some(found.clone());
        }
        match find_referenced(self.referenced, &name.value) {
            Some((index, pipeline, diagnostics, spans)) => {
                self.found.absorb(ResolvedTasks {
                    used: vec![index],
                    diagnostics,
                    spans,
                });
                pipeline
            }
            None => {
                self.found.diagnostics.push(unresolved_pipeline(
                    file,
                    name,
                    &format!("{task_path}.pipelineRef.name"),
                    self.referenced,
                ));
                None
            }
        }
    }
}

/// A `pipelineRef` at `path` of `file` that names no Pipeline.
fn unresolved_pipeline(
    file: &str,
    name: &Spanned<String>,
    path: &str,
    referenced: &[SourceFile<'_>],
) -> Diagnostic {
    let mut diagnostic = Diagnostic::new(
        file,
        name.pos,
        path,
        codes::UNRESOLVED_REFERENCE,
        format!(
            "pipelineRef `{}` names no Pipeline: none is called that in {file}{}",
            name.value,
            if referenced.is_empty() {
                ""
            } else {
                " nor in the --pipelines files"
            }
        ),
    );
    diagnostic.hint = Some(
        "add the Pipeline to this file (after a `---` line), or pass `--pipelines DIR` for a directory holding it".into(),
    );
    diagnostic
}

/// What resolving `taskRef`s to Task documents found in the referenced files.
#[derive(Default)]
struct ResolvedTasks {
    used: Vec<usize>,
    diagnostics: Vec<Diagnostic>,
    spans: Vec<DocumentSpan>,
}

impl ResolvedTasks {
    fn absorb(&mut self, other: ResolvedTasks) {
        for index in other.used {
            if !self.used.contains(&index) {
                self.used.push(index);
            }
        }
        self.diagnostics.extend(other.diagnostics);
        self.spans.extend(other.spans);
    }
}

/// Gives every pipeline task whose `taskRef.name` names a Task document (in `local`, the
/// run's own file, then in the referenced files) that Task's steps.
fn resolve_tasks(
    pipeline: &mut Pipeline,
    local: &[TaskSteps],
    referenced: &[SourceFile<'_>],
) -> ResolvedTasks {
    let mut out = ResolvedTasks {
        used: Vec::new(),
        diagnostics: Vec::new(),
        spans: Vec::new(),
    };
    let local: std::collections::HashMap<&str, &TaskSteps> = local
        .iter()
        .map(|task| (task.name.as_str(), task))
        .collect();
    // Referenced files' Tasks, parsed once each when first needed.
    let mut parsed: std::collections::HashMap<usize, Vec<TaskSteps>> =
        std::collections::HashMap::new();
    // Each referenced Task's problems, reported only when the run uses it.
    let mut parked: std::collections::HashMap<(usize, String), Vec<Diagnostic>> =
        std::collections::HashMap::new();
    for task in pipeline.tasks.iter_mut().chain(pipeline.finally.iter_mut()) {
        if task.kind != TaskKind::Plugin || task.steps.is_some() || task.plugin.value.is_empty() {
            continue;
        }
        let name = task.plugin.value.as_str();
        if let Some(found) = local.get(name) {
            task.steps = Some(Box::new((*found).clone()));
            continue;
        }
        for (index, source) in referenced.iter().enumerate() {
            if !parsed.contains_key(&index) {
                let Ok(documents) = yaml::parse_documents(source.text) else {
                    parsed.insert(index, Vec::new());
                    continue;
                };
                let found = docs(&documents);
                let mut cx = Cx {
                    file: source.file,
                    diagnostics: Vec::new(),
                    sugar: Vec::new(),
                };
                let tasks: Vec<TaskSteps> = found
                    .iter()
                    .filter(|doc| doc.kind.as_deref() == Some("Task"))
                    .filter_map(|doc| cx.task_document(doc.root, doc.name.as_deref()))
                    .collect();
                if !tasks.is_empty() {
                    out.spans
                        .extend(spans(source.file, &documents, found.len() > 1));
                }
                // A referenced file's problems count only for the Tasks the run uses.
                let mut problems = cx.diagnostics;
                for task in &tasks {
                    let (first, last) = task_lines(task);
                    let mine: Vec<Diagnostic> = problems
                        .iter()
                        .filter(|d| d.line >= first && d.line <= last)
                        .cloned()
                        .collect();
                    problems.retain(|d| d.line < first || d.line > last);
                    parked.insert((index, task.name.clone()), mine);
                }
                parsed.insert(index, tasks);
            }
            if let Some(found) = parsed
                .get(&index)
                .and_then(|tasks| tasks.iter().find(|t| t.name == name))
            {
                task.steps = Some(Box::new(found.clone()));
                if !out.used.contains(&index) {
                    out.used.push(index);
                    out.diagnostics.extend(
                        parked
                            .remove(&(index, found.name.clone()))
                            .unwrap_or_default(),
                    );
                }
                break;
            }
        }
    }
    out
}

/// The lines a Task's parts start on.
fn task_lines(task: &TaskSteps) -> (u32, u32) {
    let last = task
        .steps
        .iter()
        .flat_map(|step| {
            std::iter::once(step.pos.line).chain(step.params.iter().map(|p| p.value.pos.line))
        })
        .chain(task.results.iter().map(|r| r.name.pos.line))
        .chain(task.params.iter().map(|p| p.pos.line))
        .fold(task.pos.line, u32::max);
    (task.pos.line.saturating_sub(4), last)
}
