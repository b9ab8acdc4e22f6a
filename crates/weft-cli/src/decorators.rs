//! Form decorators on submission (`weft run` and `weft serve`): the command-line side of
//! `weft_engine::decorate`. The pipeline's `spec.decorators` run in order before the run
//! is validated and created; they may change its params and add run-scoped secrets, and
//! any failure stops the submission (exit code 2, no run created) with a diagnostic
//! naming the decorator.
//!
//! What a decorator may use:
//! - secrets: its entry's `secrets:` list and `--grant decorator:ID=SECRET`;
//! - HTTP: the global `--allow-http RULE` rules and `--allow-http decorator:ID=RULE`;
//! - time: `--decorator-timeout` (wall clock and CPU, default 10s) per decorator.

use std::collections::BTreeMap;

use weft_core::contract::ParamValue;
use weft_engine::decorate::{
    self, DecorateOptions, DecoratorChange, DecoratorLog, FLAG_PREFIX, decorator_limits,
};
use weft_engine::{PluginRegistry, ResolvedPlugin};
use weft_runtime::HttpRule;
use weft_store::{Lease, RunStore};

use crate::Failure;
use crate::access::RunSecrets;
use crate::cli::RunArgs;
use crate::launch::{Display, LaunchError};

/// Runs the decorators of `pipeline` on `params`: on success `params` is the decorated
/// form state and `secrets` holds the run-scoped secrets too; returns what each decorator
/// changed (names only). A pipeline without decorators is left alone.
#[allow(clippy::too_many_arguments)]
pub async fn apply(
    registry: &PluginRegistry,
    pipeline: &weft_core::model::Pipeline,
    args: &RunArgs,
    params: &mut BTreeMap<String, ParamValue>,
    secrets: &mut RunSecrets,
    display: Display,
) -> Result<Vec<DecoratorChange>, LaunchError> {
    if pipeline.decorators.is_empty() {
        return Ok(Vec::new());
    }
    let options = options(args, secrets)?;
    match decorate::decorate_submission(
        registry,
        pipeline,
        params.clone(),
        &secrets.store,
        &options,
    )
    .await
    {
        Ok(decorated) => {
            show(&decorated.log, display);
            secrets.store.extend(&decorated.run_secrets);
            *params = decorated.params;
            Ok(decorated.changes)
        }
        Err(err) => {
            show(&err.log, display);
            Err(LaunchError::Invalid(vec![err.diagnostic]))
        }
    }
}

/// Journals what the decorators changed with the run (names only). A pipeline without
/// decorators records nothing. The run exists already: a failure is a warning.
pub fn record(
    store: &dyn RunStore,
    lease: &Lease,
    pipeline: &weft_core::model::Pipeline,
    changes: &[DecoratorChange],
) {
    if pipeline.decorators.is_empty() {
        return;
    }
    if let Err(err) = decorate::record_decorations(store, lease, changes) {
        eprintln!("weft: warning: cannot record what the form decorators changed: {err}");
    }
}

/// Whether an `--allow-http` flag is decorator-scoped (`decorator:ID=RULE`): such rules
/// are for decorators, never for tasks.
pub fn is_decorator_flag(flag: &str) -> bool {
    flag.starts_with(FLAG_PREFIX)
}

/// The decorators' grants and limits from the command line.
fn options(args: &RunArgs, secrets: &RunSecrets) -> Result<DecorateOptions, Failure> {
    let timeout = crate::duration_flag("decorator-timeout", &Some(args.decorator_timeout.clone()))?
        .unwrap_or(decorate::DEFAULT_TIMEOUT);
    if timeout.is_zero() {
        return Err(Failure::invalid("--decorator-timeout must be more than 0s"));
    }
    let mut options = DecorateOptions {
        limits: decorator_limits(timeout),
        ..DecorateOptions::default()
    };
    for flag in &args.allow_http {
        match flag.strip_prefix(FLAG_PREFIX) {
            Some(scoped) => {
                let Some((id, rule)) = scoped.split_once('=').filter(|(id, _)| !id.is_empty())
                else {
                    return Err(Failure::invalid(format!(
                        "--allow-http {flag}: expected {FLAG_PREFIX}ID=RULE"
                    )));
                };
                let rule = HttpRule::parse(rule)
                    .map_err(|e| Failure::invalid(format!("--allow-http {flag}: {e}")))?;
                options
                    .http_allow_by_decorator
                    .entry(id.to_string())
                    .or_default()
                    .push(rule);
            }
            None if !flag.contains('=') => {
                let rule = HttpRule::parse(flag)
                    .map_err(|e| Failure::invalid(format!("--allow-http {flag}: {e}")))?;
                options.http_allow.push(rule);
            }
            None => {} // `TASK=RULE`: for that task only
        }
    }
    for (grantee, names) in &secrets.access.task_grants {
        if let Some(id) = grantee.strip_prefix(FLAG_PREFIX) {
            options
                .secrets_by_decorator
                .entry(id.to_string())
                .or_default()
                .extend(names.iter().cloned());
        }
    }
    Ok(options)
}

/// Shows what the decorators logged (already masked): on stderr for `weft run`, as
/// tracing events for the server.
fn show(lines: &[DecoratorLog], display: Display) {
    for line in lines {
        match display {
            Display::Text | Display::Json => {
                eprintln!(
                    "decorator {} [{}] {}",
                    line.decorator, line.level, line.text
                );
            }
            Display::Silent => {
                tracing::info!(decorator = %line.decorator, level = line.level, "{}", line.text);
            }
        }
    }
}

/// What the decorators of `run` changed, as recorded: JSON for `weft runs show --output
/// json` (`null` when nothing was recorded) and one line per decorator for people.
pub fn recorded(store: &dyn RunStore, run: &str) -> (serde_json::Value, Vec<String>) {
    let Ok(Some(changes)) = decorate::recorded_decorations(store, run) else {
        return (serde_json::Value::Null, Vec::new());
    };
    let lines = changes
        .iter()
        .map(|change| {
            let list = |names: &[String]| {
                if names.is_empty() {
                    "-".to_string()
                } else {
                    names.join(", ")
                }
            };
            format!(
                "  {} (spec.decorators[{}]): params {}; secrets {}",
                change.decorator,
                change.index,
                list(&change.params),
                list(&change.secrets)
            )
        })
        .collect();
    (serde_json::to_value(&changes).unwrap_or_default(), lines)
}

/// `weft plugin describe --output json` of a plugin: its description, plus `inputSchema`
/// for a form decorator.
pub fn describe_json(resolved: &ResolvedPlugin) -> serde_json::Value {
    let mut doc = serde_json::to_value(&resolved.info).unwrap_or_default();
    if let (Some(schema), Some(object)) = (&resolved.input_schema, doc.as_object_mut()) {
        let schema = serde_json::from_str(schema)
            .unwrap_or_else(|_| serde_json::Value::String(schema.clone()));
        object.insert("inputSchema".to_string(), schema);
    }
    doc
}

/// For a form decorator, the lines `weft plugin describe` adds: its input schema.
pub fn describe_text(resolved: &ResolvedPlugin) -> Option<String> {
    let schema = resolved.input_schema.as_deref()?;
    let pretty = serde_json::from_str::<serde_json::Value>(schema)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| schema.to_string());
    let pretty = if pretty.trim().is_empty() {
        "(any input)".to_string()
    } else {
        pretty.replace('\n', "\n    ")
    };
    Some(format!(
        "  form decorator: `spec.decorators: [{{id: {}, input: ...}}]`\n  input schema:\n    {pretty}",
        resolved.info.name
    ))
}
