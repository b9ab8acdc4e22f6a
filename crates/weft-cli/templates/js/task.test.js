// `npm test`: the plugin's logic on plain Node, with the SDK's fake host.
import assert from "node:assert/strict";
import { test } from "node:test";
import { runTask } from "#weft-sdk/testing";
import { {{class}} } from "./{{name}}.js";

test("greets", async () => {
  const { outcome, logs } = await runTask({{class}}, { params: { who: "world" } });
  assert.equal(outcome.kind, "success");
  assert.deepEqual(outcome.resultsObject(), { greeting: "hello, world" });
  assert.deepEqual(logs, [["info", "hello, world"]]);
});

test("a missing param fails with exit code 2", async () => {
  const { outcome } = await runTask({{class}});
  assert.equal(outcome.kind, "failure");
  assert.equal(outcome.exitCode, 2);
});
