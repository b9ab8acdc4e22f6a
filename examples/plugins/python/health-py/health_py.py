"""health-py: a gate that passes while a health endpoint answers as expected, written
with weft's Python SDK. Each sample sends one ``GET url`` and passes when the status is
``expectStatus`` (default ``200``) and, when ``expectBody`` is set, the body contains it.

```yaml
- name: healthy
  taskRef: {apiVersion: weft.dev/v1, kind: Gate, name: health-py}
  params:
    - {name: url, value: "https://staging.example.com/health"}
    - {name: expectBody, value: ok}
  gate: {samplingInterval: 10s, stableFor: 1m, timeout: 15m}
```

The operator allows the host (``--allow-http staging.example.com``); a request the host
refuses or that gets no answer is an ``error`` sample (counted as failed).
"""

from weft_sdk import Param, ParamError, PluginInfo, http, log
from weft_sdk.gate import Gate, GateContext, GateResult, export_gate


class Health(Gate):
    def describe(self) -> PluginInfo:
        return (
            PluginInfo("health-py", "0.1.0")
            .description("Passes while a URL answers with the expected status (and body text)")
            .param(Param.string("url").description("The health endpoint (http:// or https://)"))
            .param(Param.string("expectStatus").description("The status that passes").default("200"))
            .param(Param.string("expectBody").description("Text the body must contain; empty: any").default(""))
            .results_fixed()  # a gate produces no results
        )

    def evaluate(self, ctx: GateContext) -> GateResult:
        url = ctx.required("url")
        expected = ctx.parse_or("expectStatus", 200)
        if not 100 <= expected <= 599:
            raise ParamError(f"param `expectStatus`: {expected} is not an HTTP status")
        needle = ctx.param_or("expectBody", "")
        log.debug(f"sample {ctx.sample}: GET {url}")
        # An HttpError (refused, unreachable) escapes: the SDK makes it an error sample.
        response = http.get(url, {"user-agent": "weft-health-py"})
        return judge(url, response.status, response.text, expected, needle)


def judge(url: str, status: int, body: str, expected: int, needle: str) -> GateResult:
    """What a response means: passed, or failed saying what was seen."""
    if status != expected:
        return GateResult.failed(f"GET {url}: HTTP {status} (expected {expected})")
    if needle and needle not in body:
        return GateResult.failed(f"GET {url}: HTTP {status} without {needle!r} in the body")
    return GateResult.passed(f"GET {url}: HTTP {status}")


GatePlugin = export_gate(Health)
