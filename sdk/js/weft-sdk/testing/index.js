// Testing plugins on plain Node, without building a component: run the tests with
// `node --import ./.weft/js/weft-sdk/testing/register.js --test` (the generated
// package.json's `npm test`). Each helper calls the plugin as weft would and returns what
// it did: a promise of { outcome, logs: [[level, message]], checkpoints, form }.
import { Context, Form, GateContext, decorateForm, evaluateGate, reportEvent, runTask as run } from "../index.js";
import { host, reset } from "./fake/host.js";

function checkpointsAsText() {
  const decoder = new TextDecoder();
  return Object.fromEntries([...host.checkpoints].map(([k, v]) => [k, decoder.decode(v)]));
}

/** Runs `TaskClass` once with `params` (its declared defaults filled in, as the host
 * does), `workspaces` ({name: directory}), granted `secrets` and stored `checkpoints`. */
export async function runTask(TaskClass, { params = {}, workspaces = {}, secrets = {}, checkpoints = {}, ...context } = {}) {
  reset({ secrets, checkpoints });
  const task = new TaskClass();
  const defaults = Object.fromEntries(
    task.describe().params.filter((p) => p.defaultValue !== undefined).map((p) => [p.name, p.defaultValue]),
  );
  const bindings = Object.entries(workspaces).map(([name, path]) => ({ name, path, readOnly: false }));
  const outcome = await run(task, new Context({ params: { ...defaults, ...params }, workspaces: bindings, ...context }));
  return { outcome, logs: host.logs, checkpoints: checkpointsAsText() };
}

/** Calls `ReporterClass`'s `report` with `event` ({status, config, ...}). */
export async function report(ReporterClass, event, { secrets = {} } = {}) {
  reset({ secrets });
  const full = {
    runName: "run", runUid: "00000000-0000-0000-0000-000000000000", pipelineName: "pipeline",
    reason: "", message: "", description: "", config: {}, attempt: 0, ...event,
  };
  full.terminal = full.status !== "pending" && full.status !== "running";
  return { outcome: await reportEvent(new ReporterClass(), full), logs: host.logs };
}

/** Calls `DecoratorClass`'s `decorate` on a form holding `params` with `input`;
 * `outcome` is the refusal message (undefined when accepted). */
export async function decorate(DecoratorClass, { params = {}, input = {}, secrets = {} } = {}) {
  reset({ secrets });
  const form = new Form(params);
  const outcome = await decorateForm(new DecoratorClass(), form, JSON.stringify(input));
  return { outcome, form, logs: host.logs };
}

/** Evaluates `GateClass` once (one sample) with `params` (its declared defaults filled
 * in, as the host does), granted `secrets`, the `sample` number and `waitingSinceMs`;
 * `outcome` is the GateResult. */
export async function evaluate(GateClass, { params = {}, secrets = {}, ...context } = {}) {
  reset({ secrets });
  const gate = new GateClass();
  const defaults = Object.fromEntries(
    gate.describe().params.filter((p) => p.defaultValue !== undefined).map((p) => [p.name, p.defaultValue]),
  );
  const outcome = await evaluateGate(gate, new GateContext({ params: { ...defaults, ...params }, ...context }));
  return { outcome, logs: host.logs };
}
