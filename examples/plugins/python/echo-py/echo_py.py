"""echo-py: logs its `message` param and returns it as the result `message`.

The rest shows what a Python task can do: `ending` picks how it ends (success, warning,
halt, skip or failure), the optional workspace `out` gets the message in `message.txt`,
the secret `echo-token`, when granted, is revealed (and masked in the log), and the
message is checkpointed so a retry returns what the first attempt wrote.
"""

import os

from weft_sdk import Context, Outcome, Param, PluginInfo, Task, Workspace, checkpoint, export_task, log, secrets

ENDINGS = ["success", "warning", "halt", "skip", "failure"]


class Echo(Task):
    def describe(self) -> PluginInfo:
        return (
            PluginInfo("echo-py", "0.1.0")
            .description("Logs a message and returns it as a result")
            .param(Param.string("message").description("The message to echo"))
            .param(Param.string("ending").description("How the task ends").one_of(ENDINGS).default("success"))
            .workspace(Workspace("out").description("Gets message.txt").optional())
            .secret("echo-token")
            .result("message", "The message, unchanged")
            .results_fixed()
        )

    def run(self, ctx: Context) -> Outcome:
        message = ctx.required("message")
        log.info(message)
        try:
            token = secrets.reveal("echo-token")
            log.info(f"echo-token is {token}")  # the host masks it: `***`
        except secrets.SecretError as err:
            log.debug(str(err))
        out = ctx.workspace("out")
        if out is not None:
            with open(os.path.join(out, "message.txt"), "w") as file:
                file.write(message)
        message = checkpoint.checkpoint("message", lambda: message)
        ending = ctx.param_or("ending", "success")
        if ending == "success":
            outcome = Outcome.success()
        elif ending == "failure":
            outcome = Outcome.failure(message, 3)
        else:
            outcome = getattr(Outcome, ending)(message)
        return outcome.result("message", message)


TaskPlugin = export_task(Echo)
