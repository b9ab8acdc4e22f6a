//! Which reporters a run has: `spec.reporters` entries of the pipeline (config values may
//! use `$(params.NAME)`), then those of the run's spec, each with a stable id and the
//! context it reports to.

use std::collections::BTreeMap;

/// One configured reporter.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReporterSpec {
    /// Stable id within the run (`<plugin>#<index>`): the outbox's reporter key.
    pub id: String,
    /// The reporter plugin.
    pub plugin: String,
    /// Its config (`url`, `project`, `sha`, `token-secret`, ...): names, never values.
    pub config: Vec<(String, String)>,
    /// Whether tasks get their own contexts.
    pub tasks: bool,
}

impl ReporterSpec {
    /// Config value `key`, trimmed, non-empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.config
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The run-level context (config `context`, default `weft/<pipeline>`).
    pub fn context(&self, pipeline: &str) -> String {
        self.get("context")
            .map_or_else(|| format!("weft/{pipeline}"), str::to_string)
    }
}

/// Parses `spec.reporters` entries: `{plugin: NAME, config: {KEY: VALUE}, tasks: BOOL}`.
/// `params` replaces `$(params.NAME)` in config values.
pub fn specs_from_pipeline(
    entries: &[serde_json::Value],
    params: &BTreeMap<String, String>,
) -> Result<Vec<ReporterSpec>, String> {
    let mut specs = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let at = format!("spec.reporters[{index}]");
        let serde_json::Value::Object(fields) = entry else {
            return Err(format!("{at}: expected a mapping"));
        };
        for name in fields.keys() {
            if !matches!(name.as_str(), "plugin" | "config" | "tasks" | "name") {
                return Err(format!(
                    "{at}: unknown field `{name}` (expected plugin, config, tasks)"
                ));
            }
        }
        let plugin = match fields.get("plugin") {
            Some(serde_json::Value::String(p)) if !p.trim().is_empty() => p.trim().to_string(),
            _ => return Err(format!("{at}.plugin: a reporter plugin name is required")),
        };
        let tasks = match fields.get("tasks") {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::Bool(b)) => *b,
            Some(_) => return Err(format!("{at}.tasks: expected true or false")),
        };
        let mut config = Vec::new();
        match fields.get("config") {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::Object(map)) => {
                for (key, value) in map {
                    let value = match value {
                        serde_json::Value::String(s) => s.clone(),
                        serde_json::Value::Number(n) => n.to_string(),
                        serde_json::Value::Bool(b) => b.to_string(),
                        _ => {
                            return Err(format!(
                                "{at}.config.{key}: expected a string, number or boolean"
                            ));
                        }
                    };
                    config.push((key.clone(), substitute(&value, params)));
                }
            }
            Some(_) => return Err(format!("{at}.config: expected a mapping")),
        }
        specs.push(ReporterSpec {
            id: String::new(),
            plugin,
            config,
            tasks,
        });
    }
    Ok(specs)
}

/// Replaces `$(params.NAME)` with string params it knows; leaves the rest.
fn substitute(value: &str, params: &BTreeMap<String, String>) -> String {
    let mut out = value.to_string();
    for (name, v) in params {
        out = out.replace(&format!("$(params.{name})"), v);
    }
    out
}

/// Gives each spec its id (`<plugin>#<index>`), in order: pipeline reporters first, then
/// `--report` flags. The same pipeline and flags give the same ids after a restart.
pub fn assign_ids(specs: &mut [ReporterSpec]) {
    for (index, spec) in specs.iter_mut().enumerate() {
        spec.id = format!("{}#{index}", spec.plugin);
    }
}

/// Which run is reported.
#[derive(Debug, Clone, Default)]
pub struct RunIdentity {
    /// Run name.
    pub run_name: String,
    /// Run uid (the outbox's run key).
    pub run_uid: String,
    /// Pipeline name.
    pub pipeline_name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_specs_substitute_params_and_refuse_unknown_fields() {
        let params = BTreeMap::from([("sha".to_string(), "0123abc".to_string())]);
        let entries = vec![serde_json::json!({
            "plugin": "reporter-github",
            "config": {"sha": "$(params.sha)", "context": "ci/weft", "pr": 7},
            "tasks": false,
        })];
        let specs = specs_from_pipeline(&entries, &params).expect("parses");
        assert_eq!(specs[0].get("sha"), Some("0123abc"));
        assert_eq!(specs[0].get("pr"), Some("7"));
        assert_eq!(specs[0].context("p"), "ci/weft");
        assert!(specs_from_pipeline(&[serde_json::json!({"config": {}})], &params).is_err());
        assert!(
            specs_from_pipeline(&[serde_json::json!({"plugin": "x", "bogus": 1})], &params)
                .is_err()
        );
    }
}
