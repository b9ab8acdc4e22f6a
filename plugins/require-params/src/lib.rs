//! `require-params`: a form decorator that refuses a submission unless params match glob
//! patterns, e.g. a branch allow-list. Input:
//!
//! ```yaml
//! decorators:
//!   - id: require-params
//!     input:
//!       params:
//!         branch: [main, "release/*"]   # one pattern or a list; `*`, `?`, `\` escapes
//!         environment: "prod-?"
//!       message: "deploys run from main or a release branch only"   # optional
//! ```
//!
//! A param must be set (or have a default) and match at least one of its patterns; for an
//! array param every item must. It changes nothing.

use std::collections::BTreeMap;

use decorator_common::glob;
use weft_sdk::decorator::{Decorator, DecoratorInfo, Form, Input, Value};

struct RequireParams;

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Patterns {
    One(String),
    Many(Vec<String>),
}

impl Patterns {
    fn list(&self) -> Vec<&str> {
        match self {
            Patterns::One(p) => vec![p.as_str()],
            Patterns::Many(ps) => ps.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(serde::Deserialize)]
struct Config {
    params: BTreeMap<String, Patterns>,
    #[serde(default)]
    message: Option<String>,
}

impl Decorator for RequireParams {
    fn describe() -> DecoratorInfo {
        DecoratorInfo::new("require-params", env!("CARGO_PKG_VERSION"))
            .description(
                "Refuses a submission unless each listed param matches one of its glob patterns",
            )
            .input_schema(serde_json::json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["params"],
                "properties": {
                    "params": {
                        "description": "Param name -> a glob pattern or a list of them (`*`, `?`)",
                        "type": "object",
                        "minProperties": 1,
                        "additionalProperties": {
                            "anyOf": [
                                {"type": "string"},
                                {"type": "array", "minItems": 1, "items": {"type": "string"}},
                            ],
                        },
                    },
                    "message": {
                        "description": "Added to the refusal, e.g. who to ask",
                        "type": "string",
                    },
                },
            }))
    }

    fn decorate(form: &mut Form, input: &Input) -> Result<(), String> {
        let config: Config = input.parse()?;
        check(form.params(), &config).map_err(|problem| match &config.message {
            Some(message) => format!("{problem} ({message})"),
            None => problem,
        })
    }
}

/// The first param that does not match, as a refusal message.
fn check(params: &BTreeMap<String, Value>, config: &Config) -> Result<(), String> {
    for (name, patterns) in &config.params {
        let patterns = patterns.list();
        let matches = |text: &str| patterns.iter().any(|p| glob(p, text));
        let allowed = || patterns.join(", ");
        match params.get(name) {
            None => {
                return Err(format!(
                    "param `{name}` is required (allowed: {})",
                    allowed()
                ));
            }
            Some(Value::Str(value)) if !matches(value) => {
                return Err(format!(
                    "param `{name}` is `{value}`, which matches none of: {}",
                    allowed()
                ));
            }
            Some(Value::Array(items)) => {
                if let Some(item) = items.iter().find(|item| !matches(item)) {
                    return Err(format!(
                        "param `{name}` has `{item}`, which matches none of: {}",
                        allowed()
                    ));
                }
            }
            Some(Value::Object(_)) => {
                return Err(format!(
                    "param `{name}` is an object; require-params checks strings and arrays"
                ));
            }
            Some(Value::Str(_)) => {}
        }
    }
    Ok(())
}

weft_sdk::export_decorator!(RequireParams);

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            params: BTreeMap::from([
                (
                    "branch".to_string(),
                    Patterns::Many(vec!["main".into(), "release/*".into()]),
                ),
                ("envs".to_string(), Patterns::One("prod-?".into())),
            ]),
            message: None,
        }
    }

    fn params(branch: &str, envs: &[&str]) -> BTreeMap<String, Value> {
        BTreeMap::from([
            ("branch".to_string(), Value::from(branch)),
            (
                "envs".to_string(),
                Value::Array(envs.iter().map(|s| s.to_string()).collect()),
            ),
        ])
    }

    #[test]
    fn allows_matching_params() {
        assert_eq!(check(&params("main", &["prod-1"]), &config()), Ok(()));
        assert_eq!(check(&params("release/2.0", &[]), &config()), Ok(()));
    }

    #[test]
    fn refuses_with_the_param_and_the_allow_list() {
        let err = check(&params("feature/x", &[]), &config())
            .err()
            .unwrap_or_default();
        assert_eq!(
            err,
            "param `branch` is `feature/x`, which matches none of: main, release/*"
        );
        let err = check(&params("main", &["prod-1", "dev"]), &config())
            .err()
            .unwrap_or_default();
        assert!(err.contains("`envs` has `dev`"), "{err}");
        let err = check(&BTreeMap::new(), &config()).err().unwrap_or_default();
        assert!(err.contains("`branch` is required"), "{err}");
    }
}
