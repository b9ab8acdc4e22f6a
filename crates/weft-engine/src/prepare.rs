//! From pipeline text to a runnable plan: parse, resolve and describe the plugins it
//! names, then validate everything at once against what those plugins declare.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use weft_core::contract::ParamValue;
use weft_core::{Diagnostic, Plan, parse_pipeline};

use crate::registry::{Catalog, PluginError, PluginRegistry, ResolvedPlugin};

/// A validated plan and the plugins it needs.
pub struct Prepared {
    /// The plan.
    pub plan: Plan,
    /// Every plugin the plan uses, loaded and described.
    pub plugins: BTreeMap<String, ResolvedPlugin>,
}

/// Diagnostic code for a plugin that exists but cannot be loaded or described.
pub const PLUGIN_UNUSABLE: &str = "plugin-unusable";

/// Parses, resolves plugins and validates. All problems come back together, sorted by
/// position.
pub async fn prepare(
    registry: &PluginRegistry,
    source: &str,
    file: &str,
    supplied: &BTreeMap<String, ParamValue>,
) -> Result<Prepared, Vec<Diagnostic>> {
    let pipeline = match parse_pipeline(source, file) {
        Ok(pipeline) => pipeline,
        // Structural problems: report them with whatever else validation can find.
        Err(diagnostics) => {
            return Err(weft_core::load(source, file, supplied, None)
                .err()
                .unwrap_or(diagnostics));
        }
    };
    let names: BTreeSet<&str> = pipeline
        .all_tasks()
        .map(|task| task.plugin.value.as_str())
        .filter(|name| !name.is_empty())
        .collect();
    let mut plugins = BTreeMap::new();
    let mut described = BTreeMap::new();
    let mut unusable = BTreeMap::new();
    for name in names {
        match registry.resolve(name).await {
            Ok(resolved) if !resolved.plugin.kind().is_task() => {
                unusable.insert(
                    name.to_string(),
                    format!(
                        "plugin `{name}` is a {}, not a task",
                        resolved.plugin.kind().as_str()
                    ),
                );
            }
            Ok(resolved) => {
                described.insert(name.to_string(), resolved.info.clone());
                plugins.insert(name.to_string(), resolved);
            }
            Err(PluginError::NotFound(_)) => {}
            Err(err) => {
                unusable.insert(name.to_string(), err.to_string());
            }
        }
    }
    let mut diagnostics = Vec::new();
    let mut unusable_at = HashSet::new();
    for task in pipeline.all_tasks() {
        if let Some(err) = unusable.get(&task.plugin.value) {
            unusable_at.insert((task.plugin.pos.line, task.plugin.pos.column));
            diagnostics.push(
                Diagnostic::new(
                    file,
                    task.plugin.pos,
                    format!("{}.taskRef.name", task.path()),
                    PLUGIN_UNUSABLE,
                    err.clone(),
                )
                .with_hint(
                    "rebuild the plugin, or point --plugins at a directory with a working one",
                ),
            );
        }
    }
    // `spec.decorators`: each id a form decorator, each input matching its schema.
    diagnostics.extend(crate::decorate::check_decorators(registry, &pipeline).await);
    let catalog = Catalog {
        described,
        known: registry.names(),
        searched: registry.searched(),
    };
    match Plan::new(&pipeline, supplied, Some(&catalog)) {
        Ok(plan) if diagnostics.is_empty() => Ok(Prepared { plan, plugins }),
        Ok(_) => {
            diagnostics.sort_by_key(|d| (d.line, d.column));
            Err(diagnostics)
        }
        Err(found) => {
            diagnostics.extend(found.into_iter().filter(|d| {
                !(d.code == weft_core::diag::codes::UNKNOWN_PLUGIN
                    && unusable_at.contains(&(d.line, d.column)))
            }));
            diagnostics.sort_by_key(|d| (d.line, d.column));
            Err(diagnostics)
        }
    }
}
