//! `{{name}}`: greets someone and returns the greeting as the result `greeting`.

use weft_sdk::{Context, Outcome, Param, PluginInfo, Task};

struct {{class}};

impl Task for {{class}} {
    fn describe() -> PluginInfo {
        PluginInfo::new("{{name}}", env!("CARGO_PKG_VERSION"))
            .description("Greets someone and returns the greeting")
            .param(Param::string("who").description("Whom to greet"))
            .result("greeting", "The greeting")
            .results_fixed(true)
    }

    fn run(ctx: Context) -> Outcome {
        let who = match ctx.required("who") {
            Ok(who) => who,
            Err(e) => return e.into(), // a failure with exit code 2
        };
        let greeting = greeting(who);
        weft_sdk::log::info(&greeting);
        Outcome::success().result("greeting", greeting)
    }
}

/// The plugin's logic, kept apart from the host calls so `cargo test` runs it natively.
fn greeting(who: &str) -> String {
    format!("hello, {who}")
}

weft_sdk::export_task!({{class}});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greets() {
        assert_eq!(greeting("world"), "hello, world");
    }

    #[test]
    fn declares_its_param_and_result() {
        let info = {{class}}::describe().into_raw();
        assert_eq!(info.name, "{{name}}");
        assert_eq!(info.params[0].name, "who");
        assert_eq!(info.results[0].name, "greeting");
    }
}
