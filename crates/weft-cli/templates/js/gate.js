// {{name}}: a gate that passes once the wait has lasted `seconds` (a soak time before the
// tasks after it run).
import { GateResult, Param, ParamError, PluginInfo, exportGate, log } from "#weft-sdk";

export class {{class}} {
  describe() {
    return new PluginInfo("{{name}}", "0.1.0")
      .description("Passes once the wait has lasted `seconds`")
      .param(Param.string("seconds").description("How long to wait, in seconds").default("60"))
      .resultsFixed(); // a gate produces no results
  }

  evaluate(ctx) {
    const seconds = Number(ctx.paramOr("seconds", "60"));
    // A thrown ParamError is an `error` sample, counted as failed.
    if (!Number.isFinite(seconds)) throw new ParamError(`param \`seconds\`: not a number: ${ctx.param("seconds")}`);
    const waited = (Date.now() - ctx.waitingSinceMs) / 1000;
    log.debug(`sample ${ctx.sample}: waited ${waited.toFixed(1)}s`);
    if (waited >= seconds) return GateResult.passed(`waited ${waited.toFixed(0)}s of ${seconds}s`);
    return GateResult.failed(`${(seconds - waited).toFixed(0)}s to go`);
  }
}

// jco componentize looks for the export under this name.
export const gatePlugin = exportGate({{class}});
