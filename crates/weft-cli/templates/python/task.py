"""{{name}}: greets someone and returns the greeting as the result `greeting`."""

from weft_sdk import Context, Outcome, Param, PluginInfo, Task, export_task, log


class {{class}}(Task):
    def describe(self) -> PluginInfo:
        return (
            PluginInfo("{{name}}", "0.1.0")
            .description("Greets someone and returns the greeting")
            .param(Param.string("who").description("Whom to greet"))
            .result("greeting", "The greeting")
            .results_fixed()
        )

    def run(self, ctx: Context) -> Outcome:
        who = ctx.required("who")  # a missing param fails the task with exit code 2
        greeting = f"hello, {who}"
        log.info(greeting)
        return Outcome.success().result("greeting", greeting)


# componentize-py looks for the export under this name.
TaskPlugin = export_task({{class}})
