//! `echo`: logs its `message` param and returns it as the result `message`.

use weft_sdk::{Context, Outcome, Param, PluginInfo, Task};

struct Echo;

impl Task for Echo {
    fn describe() -> PluginInfo {
        PluginInfo::new("echo", env!("CARGO_PKG_VERSION"))
            .description("Logs a message and returns it as a result")
            .param(Param::string("message").description("The message to echo"))
            .result("message", "The message, unchanged")
            .results_fixed(true)
    }

    fn run(ctx: Context) -> Outcome {
        let message = match ctx.required("message") {
            Ok(message) => message,
            Err(e) => return e.into(),
        };
        weft_sdk::log::info(message);
        Outcome::success().result("message", message)
    }
}

weft_sdk::export_task!(Echo);
