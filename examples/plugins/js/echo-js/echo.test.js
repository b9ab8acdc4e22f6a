// `npm test`: the plugin's logic on plain Node, with the SDK's fake host.
import assert from "node:assert/strict";
import { test } from "node:test";
import { runTask } from "#weft-sdk/testing";
import { Echo } from "./echo.js";

test("echoes the message as a log line and a result", async () => {
  const { outcome, logs } = await runTask(Echo, { params: { message: "hi" } });
  assert.equal(outcome.kind, "success");
  assert.deepEqual(outcome.resultsObject(), { message: "hi" });
  assert.deepEqual(logs, [["info", "hi"]]);
});

test("a missing message fails with exit code 2", async () => {
  const { outcome } = await runTask(Echo);
  assert.equal(outcome.kind, "failure");
  assert.equal(outcome.exitCode, 2);
});

test("ending picks a halt", async () => {
  const { outcome } = await runTask(Echo, { params: { message: "done", ending: "halt" } });
  assert.equal(outcome.kind, "halt");
  assert.equal(outcome.message, "done");
});
