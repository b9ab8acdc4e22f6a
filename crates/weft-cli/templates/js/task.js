// {{name}}: greets someone and returns the greeting as the result `greeting`.
import { Outcome, Param, PluginInfo, exportTask, log } from "#weft-sdk";

export class {{class}} {
  describe() {
    return new PluginInfo("{{name}}", "0.1.0")
      .description("Greets someone and returns the greeting")
      .param(Param.string("who").description("Whom to greet"))
      .result("greeting", "The greeting")
      .resultsFixed();
  }

  run(ctx) {
    const who = ctx.required("who"); // a missing param fails the task with exit code 2
    const greeting = `hello, ${who}`;
    log.info(greeting);
    return Outcome.success().result("greeting", greeting);
  }
}

// jco componentize looks for the export under this name.
export const taskPlugin = exportTask({{class}});
