//! `http-token`: a form decorator that fetches a short-lived token and stores it as a
//! run-scoped secret. It POSTs `body` as JSON to `url`, authenticated with the granted
//! secret `credential`, and stores the response's `tokenField` (default `access_token`,
//! else `token`) as the run secret `secret`:
//!
//! ```yaml
//! decorators:
//!   - id: http-token
//!     secrets: [ci-credential]           # what the decorator may read
//!     input:
//!       url: https://auth.example.com/token
//!       credential: ci-credential         # sent as `Authorization: Bearer <value>`
//!       secret: deploy-token              # the run secret to create
//!       body: {audience: deploy, repo: "$(params.repo)"}
//! ```
//!
//! The host must allow the endpoint (`--allow-http auth.example.com` or
//! `--allow-http decorator:http-token=auth.example.com`); a task gets the token only when
//! its `secrets:` list (or `--grant`) names it.

use std::collections::BTreeMap;

use decorator_common::{Lookup, render};
use weft_sdk::decorator::{Decorator, DecoratorInfo, Form, Input, Value};

struct HttpToken;

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    url: String,
    credential: String,
    secret: String,
    #[serde(default = "default_header")]
    header: String,
    #[serde(default = "default_scheme")]
    scheme: String,
    #[serde(default)]
    body: BTreeMap<String, String>,
    #[serde(default)]
    token_field: Option<String>,
}

fn default_header() -> String {
    "authorization".to_string()
}

fn default_scheme() -> String {
    "Bearer".to_string()
}

/// Longest part of an error response quoted in a refusal.
const QUOTED_BYTES: usize = 200;

impl Decorator for HttpToken {
    fn describe() -> DecoratorInfo {
        DecoratorInfo::new("http-token", env!("CARGO_PKG_VERSION"))
            .description(
                "POSTs to a token endpoint with a granted credential and stores the returned token as a run secret",
            )
            .input_schema(serde_json::json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["url", "credential", "secret"],
                "properties": {
                    "url": {
                        "description": "The token endpoint (http:// or https://); the host must allow it",
                        "type": "string",
                        "pattern": "^https?://[^/?#]+",
                    },
                    "credential": {
                        "description": "The granted secret (`NAME` or `NAME.KEY`) to authenticate with",
                        "type": "string",
                        "minLength": 1,
                    },
                    "secret": {
                        "description": "The run secret to store the token as (`NAME` or `NAME.KEY`)",
                        "type": "string",
                        "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$",
                    },
                    "header": {
                        "description": "The header carrying the credential (default `authorization`)",
                        "type": "string",
                        "minLength": 1,
                    },
                    "scheme": {
                        "description": "Put before the credential in the header (default `Bearer`; empty for the bare value)",
                        "type": "string",
                    },
                    "body": {
                        "description": "JSON fields to send; values may use `$(params.NAME)`",
                        "type": "object",
                        "additionalProperties": {"type": "string"},
                    },
                    "tokenField": {
                        "description": "The response field holding the token (default `access_token`, else `token`)",
                        "type": "string",
                        "minLength": 1,
                    },
                },
            }))
    }

    fn decorate(form: &mut Form, input: &Input) -> Result<(), String> {
        let config: Config = input.parse()?;
        let body = request_body(form.params(), &config)?;
        let credential =
            weft_sdk::secrets::reveal(&config.credential).map_err(|e| e.to_string())?;
        let auth = if config.scheme.is_empty() {
            credential
        } else {
            format!("{} {credential}", config.scheme)
        };
        // An explicit length: some token endpoints do not take chunked bodies.
        let length = body.len().to_string();
        let response = weft_sdk::http::request(
            "POST",
            &config.url,
            &[
                (config.header.as_str(), auth.as_str()),
                ("content-type", "application/json"),
                ("content-length", length.as_str()),
                ("accept", "application/json"),
            ],
            Some(body.as_bytes()),
        )
        .map_err(|e| format!("token endpoint {}: {e}", config.url))?;
        let token = token_from(
            response.status,
            &response.body,
            config.token_field.as_deref(),
        )
        .map_err(|e| format!("token endpoint {}: {e}", config.url))?;
        weft_sdk::log::info!(
            "stored a token from {} as run secret `{}`",
            config.url,
            config.secret
        );
        form.set_secret(config.secret, token);
        Ok(())
    }
}

/// The JSON body, with `$(params.NAME)` rendered in each value.
fn request_body(params: &BTreeMap<String, Value>, config: &Config) -> Result<String, String> {
    let lookup = |name: &str| match params.get(name) {
        Some(Value::Str(s)) => Lookup::Str(s.clone()),
        Some(_) => Lookup::NotString,
        None => Lookup::Missing,
    };
    let mut fields = serde_json::Map::new();
    for (key, template) in &config.body {
        let value = render(template, &lookup).map_err(|e| format!("body field `{key}`: {e}"))?;
        fields.insert(key.clone(), serde_json::Value::String(value));
    }
    Ok(serde_json::Value::Object(fields).to_string())
}

/// The token in a response, or why there is none.
fn token_from(status: u16, body: &[u8], field: Option<&str>) -> Result<String, String> {
    if !(200..300).contains(&status) {
        let text = String::from_utf8_lossy(body);
        let mut end = text.len().min(QUOTED_BYTES);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        return Err(format!("answered HTTP {status}: {}", text[..end].trim()));
    }
    let doc: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| "the response is not JSON".to_string())?;
    let fields: Vec<&str> = match field {
        Some(field) => vec![field],
        None => vec!["access_token", "token"],
    };
    fields
        .iter()
        .find_map(|f| doc.get(f).and_then(serde_json::Value::as_str))
        .filter(|token| !token.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            format!(
                "the response has no string field `{}`",
                fields.join("` or `")
            )
        })
}

weft_sdk::export_decorator!(HttpToken);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_token() {
        let ok = br#"{"access_token":"tok-123456789","expires_in":60}"#;
        assert_eq!(token_from(200, ok, None).as_deref(), Ok("tok-123456789"));
        let alt = br#"{"token":"tok-abcdefghi"}"#;
        assert_eq!(token_from(201, alt, None).as_deref(), Ok("tok-abcdefghi"));
        let custom = br#"{"jwt":"tok-custom-000"}"#;
        assert_eq!(
            token_from(200, custom, Some("jwt")).as_deref(),
            Ok("tok-custom-000")
        );
        assert!(token_from(200, alt, Some("jwt")).is_err_and(|e| e.contains("`jwt`")));
        assert!(token_from(200, b"<html>", None).is_err_and(|e| e.contains("not JSON")));
        assert!(token_from(200, br#"{"token":""}"#, None).is_err());
        let denied = token_from(401, "bad credential é".repeat(50).as_bytes(), None);
        assert!(denied.is_err_and(|e| e.starts_with("answered HTTP 401") && e.len() < 240));
    }

    #[test]
    fn renders_the_body() {
        let config = Config {
            url: "http://x".into(),
            credential: "c".into(),
            secret: "s".into(),
            header: default_header(),
            scheme: default_scheme(),
            body: BTreeMap::from([("repo".to_string(), "$(params.repo)".to_string())]),
            token_field: None,
        };
        let params = BTreeMap::from([("repo".to_string(), Value::from("group/app"))]);
        assert_eq!(
            request_body(&params, &config).as_deref(),
            Ok(r#"{"repo":"group/app"}"#)
        );
        assert!(request_body(&BTreeMap::new(), &config).is_err_and(|e| e.contains("`repo`")));
    }
}
