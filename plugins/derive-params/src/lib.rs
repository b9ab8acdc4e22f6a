//! `derive-params`: a form decorator that sets params from templates over other params,
//! e.g. an image tag from a commit SHA. Input:
//!
//! ```yaml
//! decorators:
//!   - id: derive-params
//!     input:
//!       params:
//!         imageTag: "$(params.commit | head:7)"
//!         image: "registry.example.com/app:$(params.branch | slug)-$(params.commit | head:7)"
//!       overwrite: false   # keep values the submitter gave (default: true)
//! ```
//!
//! Templates see the params as they were before this decorator (not each other's
//! results); see `decorator-common` for the filters.

use std::collections::BTreeMap;

use decorator_common::{Lookup, render};
use weft_sdk::decorator::{Decorator, DecoratorInfo, Form, Input, Value};

struct DeriveParams;

#[derive(serde::Deserialize)]
struct Config {
    params: BTreeMap<String, String>,
    #[serde(default = "yes")]
    overwrite: bool,
}

fn yes() -> bool {
    true
}

impl Decorator for DeriveParams {
    fn describe() -> DecoratorInfo {
        DecoratorInfo::new("derive-params", env!("CARGO_PKG_VERSION"))
            .description(
                "Sets params from templates over other params: `$(params.NAME | filter ...)` with lower, upper, trim, slug, head:N, tail:N, replace:FROM:TO, default:TEXT",
            )
            .input_schema(serde_json::json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["params"],
                "properties": {
                    "params": {
                        "description": "Param name -> template, e.g. `$(params.commit | head:7)`",
                        "type": "object",
                        "minProperties": 1,
                        "additionalProperties": {"type": "string"},
                    },
                    "overwrite": {
                        "description": "Replace params the submitter already set to a non-empty value (default true)",
                        "type": "boolean",
                    },
                },
            }))
    }

    fn decorate(form: &mut Form, input: &Input) -> Result<(), String> {
        let config: Config = input.parse()?;
        for (name, value) in derive(form.params(), &config)? {
            weft_sdk::log::info!("derived param `{name}`");
            form.set(name, value);
        }
        Ok(())
    }
}

/// The params to set: each template rendered over `params` (before any is set).
fn derive(
    params: &BTreeMap<String, Value>,
    config: &Config,
) -> Result<Vec<(String, String)>, String> {
    let lookup = |name: &str| match params.get(name) {
        Some(Value::Str(s)) => Lookup::Str(s.clone()),
        Some(_) => Lookup::NotString,
        None => Lookup::Missing,
    };
    let mut out = Vec::new();
    for (name, template) in &config.params {
        let given = params
            .get(name)
            .and_then(Value::as_str)
            .is_some_and(|v| !v.is_empty());
        if given && !config.overwrite {
            continue;
        }
        let value = render(template, &lookup).map_err(|e| format!("param `{name}`: {e}"))?;
        out.push((name.clone(), value));
    }
    Ok(out)
}

weft_sdk::export_decorator!(DeriveParams);

#[cfg(test)]
mod tests {
    use super::*;

    fn config(overwrite: bool) -> Config {
        Config {
            params: BTreeMap::from([
                ("tag".to_string(), "$(params.sha | head:7)".to_string()),
                ("sha".to_string(), "$(params.sha | upper)".to_string()),
            ]),
            overwrite,
        }
    }

    #[test]
    fn derives_from_the_params_before_the_decorator() {
        let params = BTreeMap::from([
            ("sha".to_string(), Value::from("abcdef0123")),
            ("tag".to_string(), Value::from("given")),
        ]);
        assert_eq!(
            derive(&params, &config(true)),
            Ok(vec![
                ("sha".to_string(), "ABCDEF0123".to_string()),
                ("tag".to_string(), "abcdef0".to_string()),
            ])
        );
        assert_eq!(derive(&params, &config(false)), Ok(Vec::new()));
    }

    #[test]
    fn errors_name_the_param() {
        let err = derive(&BTreeMap::new(), &config(true))
            .err()
            .unwrap_or_default();
        assert!(
            err.starts_with("param `sha`:") && err.contains("not set"),
            "{err}"
        );
    }
}
