"""{{name}}: a gate that passes once the wait has lasted `seconds` (a soak time before
the tasks after it run)."""

import time

from weft_sdk import Param, PluginInfo, log
from weft_sdk.gate import Gate, GateContext, GateResult, export_gate


class {{class}}(Gate):
    def describe(self) -> PluginInfo:
        return (
            PluginInfo("{{name}}", "0.1.0")
            .description("Passes once the wait has lasted `seconds`")
            .param(Param.string("seconds").description("How long to wait, in seconds").default("60"))
            .results_fixed()  # a gate produces no results
        )

    def evaluate(self, ctx: GateContext) -> GateResult:
        seconds = ctx.parse_or("seconds", 60, float)  # a bad value is an `error` sample
        waited = time.time() - ctx.waiting_since_ms / 1000
        log.debug(f"sample {ctx.sample}: waited {waited:.1f}s")
        if waited >= seconds:
            return GateResult.passed(f"waited {waited:.0f}s of {seconds:g}s")
        return GateResult.failed(f"{seconds - waited:.0f}s to go")


# componentize-py looks for the export under this name.
GatePlugin = export_gate({{class}})
