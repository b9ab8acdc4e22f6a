//! Form decorators as people see them: what they changed (recorded with a run, shown by
//! `weft runs show`) and what `weft plugin describe` says of one. They run in the
//! engine, on every submission (`weft_engine::decorate`).

use weft_engine::runs::{ResolvedPlugin, recorded_decorations};
use weft_store::RunStore;

/// What the decorators of `run` changed, as recorded: JSON for `weft runs show --output
/// json` (`null` when nothing was recorded) and one line per decorator for people.
pub fn recorded(store: &dyn RunStore, run: &str) -> (serde_json::Value, Vec<String>) {
    let Ok(Some(changes)) = recorded_decorations(store, run) else {
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
