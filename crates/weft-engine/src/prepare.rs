//! From pipeline text to a runnable plan: parse, resolve and describe the plugins it
//! names, then validate everything at once against what those plugins declare.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use weft_core::contract::ParamValue;
use weft_core::model::TaskKind;
use weft_core::{Diagnostic, Plan, Spanned};
use weft_runtime::PluginKind;

use crate::registry::{Catalog, PluginError, PluginRegistry, ResolvedPlugin};
use crate::source::PipelineSource;

/// A validated plan and the plugins it needs.
pub struct Prepared {
    /// The plan.
    pub plan: Plan,
    /// Every plugin the plan uses, loaded and described.
    pub plugins: BTreeMap<String, ResolvedPlugin>,
}

/// Diagnostic code for a plugin that exists but cannot be loaded or described.
pub const PLUGIN_UNUSABLE: &str = "plugin-unusable";

/// Diagnostic code for a plugin pulled from a registry that does not match its digest.
pub const PLUGIN_DIGEST_MISMATCH: &str = "plugin-digest-mismatch";

/// Parses, resolves plugins and validates. All problems come back together, sorted by
/// position.
pub async fn prepare(
    registry: &PluginRegistry,
    source: &str,
    file: &str,
    supplied: &BTreeMap<String, ParamValue>,
) -> Result<Prepared, Vec<Diagnostic>> {
    prepare_files(
        registry,
        &PipelineSource::new(source, file),
        source,
        supplied,
    )
    .await
}

/// [`prepare`] for a run's files (a `PipelineRun` and the files it references), the main
/// file's text being `source` (as the store kept it). A `PipelineRun`'s params are given
/// under `supplied`; every problem is labelled with its document. A plugin name the
/// files' pins (`weft.lock`) pin is pulled by its digest-pinned reference.
pub async fn prepare_files(
    registry: &PluginRegistry,
    files: &PipelineSource,
    source: &str,
    supplied: &BTreeMap<String, ParamValue>,
) -> Result<Prepared, Vec<Diagnostic>> {
    prepare_parsed(registry, files, &files.parse_with(source), supplied).await
}

/// [`prepare_files`] of files already parsed (`parsed` is what `files` hold). Borrowed,
/// so a caller that reads the pipeline afterwards need not keep a copy of it: at 100,000
/// tasks a copy is a large part of the run's peak memory.
pub async fn prepare_parsed(
    registry: &PluginRegistry,
    files: &PipelineSource,
    parsed: &weft_core::RunFiles,
    supplied: &BTreeMap<String, ParamValue>,
) -> Result<Prepared, Vec<Diagnostic>> {
    let file = files.file.as_str();
    let lock = files.lock().map_err(|message| {
        vec![Diagnostic::new(
            file,
            weft_core::Pos::new(0, 0),
            "",
            weft_core::plugin_ref::codes::LOCK_REFERENCE,
            message,
        )]
    })?;
    let supplied = &parsed.supplied(supplied);
    let layout = &parsed.layout;
    let pipeline = match &parsed.pipeline {
        Some(pipeline) if parsed.diagnostics.is_empty() => pipeline,
        // Structural problems: report them with whatever else validation can find.
        pipeline => {
            let mut diagnostics = parsed.diagnostics.clone();
            if let Some(pipeline) = pipeline {
                let mut found =
                    weft_core::validate::validate_with(pipeline, supplied, None, &files.limits());
                layout.label(&mut found);
                diagnostics.extend(found);
            }
            diagnostics.sort_by_key(|d| (d.line, d.column));
            return Err(diagnostics);
        }
    };
    // Every plugin named, where, and whether it must be a gate (a gate task's plugin and
    // its further checks) or a task.
    // Pipelines in pipelines: the child pipelines' tasks too, where they are written.
    let uses: Vec<PluginUse<'_>> = pipeline
        .tasks_deep()
        .into_iter()
        .flat_map(|nested| {
            let (task, file) = (nested.task, nested.pipeline.file.as_str());
            let gate = task.kind == TaskKind::Gate;
            let own = PluginUse {
                name: &task.plugin,
                file,
                gate,
                path: task.plugin_path(),
            };
            // A Task made of steps runs its steps' plugins, not one of its own.
            let steps = task.steps.as_deref().into_iter().flat_map(|spec| {
                spec.steps.iter().map(|step| PluginUse {
                    name: &step.plugin,
                    file: spec.file.as_str(),
                    gate: false,
                    path: format!("{}.steps[{}].ref.name", spec.path, step.index),
                })
            });
            let own = task.steps.is_none().then_some(own);
            own.into_iter()
                .chain(steps)
                .chain(task.gate_checks.iter().map(|check| PluginUse {
                    name: &check.plugin,
                    file,
                    gate: true,
                    path: format!("{}.name", check.path),
                }))
                .collect::<Vec<_>>()
        })
        .filter(|used| !used.name.value.is_empty())
        .collect();
    let names: BTreeSet<&str> = uses.iter().map(|used| used.name.value.as_str()).collect();
    let mut plugins = BTreeMap::new();
    let mut described = BTreeMap::new();
    let mut unusable = BTreeMap::new();
    for name in names {
        match registry.resolve(&lock.resolve(name)).await {
            Ok(resolved)
                if resolved.plugin.kind().is_task()
                    || resolved.plugin.kind() == PluginKind::Gate =>
            {
                described.insert(name.to_string(), resolved.info.clone());
                plugins.insert(name.to_string(), resolved);
            }
            Ok(resolved) => {
                unusable.insert(
                    name.to_string(),
                    (
                        format!(
                            "plugin `{name}` is a {}, not a task or a gate",
                            resolved.plugin.kind().as_str()
                        ),
                        PLUGIN_UNUSABLE,
                    ),
                );
            }
            Err(PluginError::NotFound(_)) => {}
            Err(err @ PluginError::Integrity(_)) => {
                unusable.insert(name.to_string(), (err.to_string(), PLUGIN_DIGEST_MISMATCH));
            }
            Err(err) => {
                unusable.insert(name.to_string(), (err.to_string(), PLUGIN_UNUSABLE));
            }
        }
    }
    let mut diagnostics = Vec::new();
    let mut unusable_at = HashSet::new();
    for used in &uses {
        let name = used.name.value.as_str();
        let wrong_kind = plugins.get(name).and_then(|resolved| {
            let is_gate = resolved.plugin.kind() == PluginKind::Gate;
            match (used.gate, is_gate) {
                (true, false) => Some((
                    format!("plugin `{name}` is a {}, not a gate", resolved.plugin.kind().as_str()),
                    "a gate's taskRef names a gate plugin (`weft plugin describe NAME` says its kind), e.g. `http-check` or `time-window`",
                )),
                (false, true) if used.path.ends_with(".ref.name") => Some((
                    format!("plugin `{name}` is a gate, not a task: a step runs a task plugin"),
                    "run the gate as its own pipeline task: `taskRef: {apiVersion: weft.dev/v1, kind: Gate, name: ...}`",
                )),
                (false, true) => Some((
                    format!("plugin `{name}` is a gate, not a task"),
                    "run a gate as `taskRef: {apiVersion: weft.dev/v1, kind: Gate, name: ...}`",
                )),
                _ => None,
            }
        });
        let (message, hint, code) = match (unusable.get(name), wrong_kind) {
            (Some((err, code)), _) if *code == PLUGIN_DIGEST_MISMATCH => (
                err.clone(),
                "the registry (or something between) served other bytes than the digest pins: nothing was run; check the registry, or pin the digest `weft plugin push` printed",
                *code,
            ),
            (Some((err, code)), _) => (
                err.clone(),
                "rebuild the plugin, or point --plugins at a directory with a working one",
                *code,
            ),
            (None, Some((message, hint))) => (message, hint, PLUGIN_UNUSABLE),
            (None, None) => continue,
        };
        unusable_at.insert((used.name.pos.line, used.name.pos.column));
        diagnostics.push(
            Diagnostic::new(used.file, used.name.pos, used.path.clone(), code, message)
                .with_hint(hint),
        );
    }
    // `spec.decorators`: each id a form decorator, each input matching its schema.
    diagnostics.extend(crate::decorate::check_decorators(registry, pipeline).await);
    let catalog = Catalog {
        described,
        known: registry.names(),
        searched: registry.searched(),
    };
    let result = match Plan::with_limits(pipeline, supplied, Some(&catalog), &files.limits()) {
        Ok(plan) if diagnostics.is_empty() => Ok(Prepared { plan, plugins }),
        Ok(_) => {
            diagnostics.sort_by_key(|d| (d.line, d.column));
            Err(diagnostics)
        }
        Err(found) => {
            // One error per cause: what validation says of a plugin that cannot be used
            // there (unknown, required params) is said already.
            diagnostics.extend(
                found
                    .into_iter()
                    .filter(|d| !unusable_at.contains(&(d.line, d.column))),
            );
            diagnostics.sort_by_key(|d| (d.line, d.column));
            Err(diagnostics)
        }
    };
    result.map_err(|mut diagnostics| {
        layout.label(&mut diagnostics);
        diagnostics
    })
}

/// A plugin named by a pipeline.
struct PluginUse<'p> {
    name: &'p Spanned<String>,
    /// The file naming it (a Task's steps may be in a `--pipelines` file).
    file: &'p str,
    /// Named where a gate is expected.
    gate: bool,
    /// Its path in the document.
    path: String,
}
