//! `reporter-webhook`: posts the whole event as JSON to config `url`, signed with
//! `X-Weft-Signature: sha256=<hex HMAC-SHA256>` when config `token-secret` names a
//! granted secret (default `webhook-secret`; set `sign` to `false` to send unsigned).

use forge_common::{Forge, reporter, webhook};
use weft_sdk::PluginInfo;
use weft_sdk::reporter::{Delivery, Event, Reporter};

struct Webhook;

impl Reporter for Webhook {
    fn describe() -> PluginInfo {
        PluginInfo::new("reporter-webhook", env!("CARGO_PKG_VERSION"))
            .description(
                "Posts run statuses as signed JSON to a URL. Config: url, token-secret, sign",
            )
            .secret("webhook-secret")
    }

    fn report(event: Event) -> Delivery {
        let view = forge_glue::view(&event);
        let Some(url) = view.get("url") else {
            return Delivery::Permanent("reporter config `url` is required".into());
        };
        let secret = if view.get("sign") == Some("false") {
            None
        } else {
            let name = view.get("token-secret").unwrap_or("webhook-secret");
            match forge_glue::token(name) {
                Ok(s) => Some(s),
                Err(e) => return Delivery::Permanent(e),
            }
        };
        let doc = reporter::webhook_json(&view);
        let request = match webhook::build(url, &doc, secret.as_deref().map(str::as_bytes)) {
            Ok(r) => r,
            Err(e) => return Delivery::Permanent(e),
        };
        let secret = secret.unwrap_or_default();
        forge_glue::delivery(forge_glue::send(Forge::Webhook, &request, &secret))
    }
}

weft_sdk::export_reporter!(Webhook);
