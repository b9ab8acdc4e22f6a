//! `hostile-decorator` (test-only, never built into weft): a form decorator that
//! misbehaves in the way its input's `mode` names, so the host's handling of decorators
//! can be tested end to end.
//!
//! - `loop`: spins forever (the host must stop it with its time limit);
//! - `http`: GETs `url`, then refuses with `blocked: <error>` or `ESCAPED: HTTP <status>`;
//! - `fail`: refuses with `message`;
//! - `set-param`: sets param `name` to `value`;
//! - `set-secret`: sets run secret `name` to `value`;
//! - `reveal`: reveals granted secret `name` and logs it (the host must mask it).

use std::hint::black_box;

use weft_sdk::decorator::{Decorator, DecoratorInfo, Form, Input};

struct HostileDecorator;

impl Decorator for HostileDecorator {
    fn describe() -> DecoratorInfo {
        DecoratorInfo::new("hostile-decorator", env!("CARGO_PKG_VERSION"))
            .description("Test-only: misbehaves as its input's `mode` says")
            .input_schema(serde_json::json!({
                "type": "object",
                "required": ["mode"],
                "properties": {
                    "mode": {"enum": ["loop", "http", "fail", "set-param", "set-secret", "reveal"]},
                    "url": {"type": "string"},
                    "name": {"type": "string"},
                    "value": {"type": "string"},
                    "message": {"type": "string"},
                },
            }))
    }

    fn decorate(form: &mut Form, input: &Input) -> Result<(), String> {
        let field = |key: &str| input.str(key).unwrap_or_default().to_string();
        match input.str("mode").unwrap_or_default() {
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }
            "http" => match weft_sdk::http::get(&field("url")) {
                Ok((status, _)) => Err(format!("ESCAPED: HTTP {status}")),
                Err(e) => Err(format!("blocked: {e}")),
            },
            "fail" => Err(field("message")),
            "set-param" => {
                form.set(field("name"), field("value"));
                Ok(())
            }
            "set-secret" => {
                form.set_secret(field("name"), field("value"));
                Ok(())
            }
            "reveal" => {
                let value = weft_sdk::secrets::reveal(&field("name")).map_err(|e| e.to_string())?;
                weft_sdk::log::info!("the secret is {value}");
                Ok(())
            }
            other => Err(format!("unknown mode `{other}`")),
        }
    }
}

weft_sdk::export_decorator!(HostileDecorator);
