//! `{{name}}`: sets the param `greeting` to `<input.prefix>, <params.who>`.

use weft_sdk::decorator::{Decorator, DecoratorInfo, Form, Input};

struct {{class}};

impl Decorator for {{class}} {
    fn describe() -> DecoratorInfo {
        DecoratorInfo::new("{{name}}", env!("CARGO_PKG_VERSION"))
            .description("Sets `greeting` from the input's prefix and the param `who`")
            .input_schema(serde_json::json!({
                "type": "object",
                "required": ["prefix"],
                "properties": {"prefix": {"type": "string"}},
            }))
    }

    fn decorate(form: &mut Form, input: &Input) -> Result<(), String> {
        let prefix = input.str("prefix").ok_or("input `prefix` is required")?;
        let who = form.str("who").ok_or("param `who` is required")?;
        let greeting = greeting(prefix, who)?;
        form.set("greeting", greeting);
        Ok(()) // Err("why") refuses the submission: no run is created
    }
}

/// The plugin's logic, kept apart from the host calls so `cargo test` runs it natively.
fn greeting(prefix: &str, who: &str) -> Result<String, String> {
    if who.trim().is_empty() {
        return Err("param `who` is empty".to_string());
    }
    Ok(format!("{prefix}, {who}"))
}

weft_sdk::export_decorator!({{class}});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composes_the_greeting() {
        assert_eq!(greeting("hello", "world").as_deref(), Ok("hello, world"));
        assert!(greeting("hello", " ").is_err());
    }
}
