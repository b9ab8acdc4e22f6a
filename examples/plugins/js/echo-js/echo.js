// echo-js: logs its `message` param and returns it as the result `message`; `ending`
// picks how it ends (to try warnings, halts, skips and failures).
import { Outcome, Param, PluginInfo, exportTask, log } from "#weft-sdk";

class Echo {
  describe() {
    return new PluginInfo("echo-js", "0.1.0")
      .description("Logs a message and returns it as a result")
      .param(Param.string("message").description("The message to echo"))
      .param(Param.string("ending").description("How to end").oneOf(["success", "warning", "halt", "skip", "failure"]).default("success"))
      .result("message", "The message, unchanged")
      .resultsFixed(true);
  }

  run(ctx) {
    const message = ctx.required("message"); // a ParamError fails the task: exit code 2
    log.info(message);
    const ending = ctx.paramOr("ending", "success");
    const outcome = ending === "success" ? Outcome.success()
      : ending === "failure" ? Outcome.failure(message, 1)
      : Outcome[ending](message);
    return outcome.result("message", message);
  }
}

export const taskPlugin = exportTask(Echo);
export { Echo };
