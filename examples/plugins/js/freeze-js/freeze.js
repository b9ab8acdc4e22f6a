// freeze-js: a gate that holds a release while a change freeze is on, written with weft's
// JavaScript SDK. `freezes` lists the freezes as ISO 8601 intervals `START/END` (UTC
// unless an offset is given); the gate fails while the clock is inside one (saying until
// when) and passes outside all of them.
//
//   - name: no-freeze
//     taskRef: {apiVersion: weft.dev/v1, kind: Gate, name: freeze-js}
//     params:
//       - {name: freezes, value: ["2026-12-19T00:00:00Z/2027-01-04T00:00:00Z"]}
//     gate: {samplingInterval: 5m, stableFor: 0s, timeout: 72h}
//
// No network: the time is the host's wall clock.
import { GateResult, Param, ParamError, PluginInfo, exportGate, log } from "#weft-sdk";

export class Freeze {
  describe() {
    return new PluginInfo("freeze-js", "0.1.0")
      .description("Passes outside every change freeze (ISO 8601 intervals START/END)")
      .param(Param.array("freezes").description("The freezes: [\"2026-12-19T00:00:00Z/2027-01-04T00:00:00Z\", ...]").default([]))
      .resultsFixed(); // a gate produces no results
  }

  evaluate(ctx) {
    const freezes = (ctx.paramArray("freezes") ?? []).map(parseFreeze);
    const now = Date.now();
    log.debug(`sample ${ctx.sample}: ${freezes.length} freeze(s) at ${new Date(now).toISOString()}`);
    return judge(freezes, now);
  }
}

/** `START/END` as { start, end, text } in milliseconds; a ParamError (an `error` sample)
 * when it does not parse or ends before it starts. */
export function parseFreeze(text) {
  const parts = String(text).split("/");
  const [start, end] = parts.map((part) => Date.parse(part.trim()));
  if (parts.length !== 2 || Number.isNaN(start) || Number.isNaN(end)) {
    throw new ParamError(`param \`freezes\`: ${JSON.stringify(text)} is not an ISO 8601 interval START/END`);
  }
  if (end <= start) throw new ParamError(`param \`freezes\`: ${JSON.stringify(text)} ends before it starts`);
  return { start, end, text };
}

/** Whether `now` is outside every freeze. */
export function judge(freezes, now) {
  const on = freezes.filter((f) => f.start <= now && now < f.end);
  if (on.length === 0) return GateResult.passed(`no change freeze is on (${freezes.length} listed)`);
  const until = Math.max(...on.map((f) => f.end));
  return GateResult.failed(`change freeze ${on[0].text} is on until ${new Date(until).toISOString()}`);
}

// jco componentize looks for the export under this name.
export const gatePlugin = exportGate(Freeze);
