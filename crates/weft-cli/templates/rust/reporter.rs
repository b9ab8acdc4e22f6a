//! `{{name}}`: posts each run status as JSON to the config `url`, with
//! `Authorization: Bearer <token>` when the config `token-secret` names a granted secret.

use weft_sdk::PluginInfo;
use weft_sdk::reporter::{Delivery, Event, Reporter};

struct {{class}};

impl Reporter for {{class}} {
    fn describe() -> PluginInfo {
        PluginInfo::new("{{name}}", env!("CARGO_PKG_VERSION"))
            .description("Posts run statuses as JSON. Config: url, token-secret")
    }

    fn report(event: Event) -> Delivery {
        let Some(url) = event.get("url") else {
            return Delivery::Permanent("reporter config `url` is required".into());
        };
        let token = match event.get("token-secret") {
            Some(name) => match weft_sdk::secrets::reveal(name) {
                Ok(token) => Some(token),
                Err(e) => return Delivery::Permanent(e.to_string()),
            },
            None => None,
        };
        let body = body(&event);
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(auth) = &auth {
            headers.push(("authorization", auth.as_str()));
        }
        match weft_sdk::http::request("POST", url, &headers, Some(body.as_bytes())) {
            Ok(response) => delivery(response.status),
            Err(e) if e.is_transient() => Delivery::RetryAfter(0),
            Err(e) => Delivery::Permanent(e.to_string()),
        }
    }
}

/// The JSON document sent for `event`.
fn body(event: &Event) -> String {
    serde_json::json!({
        "run": event.run_name(),
        "pipeline": event.pipeline_name(),
        "status": event.status().as_str(),
        "terminal": event.status().is_terminal(),
    })
    .to_string()
}

/// What a response status means for the delivery.
fn delivery(status: u16) -> Delivery {
    match status {
        200..=299 => Delivery::Done,
        408 | 429 | 500..=599 => Delivery::RetryAfter(0),
        other => Delivery::Permanent(format!("the server answered {other}")),
    }
}

weft_sdk::export_reporter!({{class}});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_responses() {
        assert_eq!(delivery(201), Delivery::Done);
        assert_eq!(delivery(503), Delivery::RetryAfter(0));
        assert!(matches!(delivery(404), Delivery::Permanent(_)));
    }
}
