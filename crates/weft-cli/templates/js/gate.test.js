// `npm test`: the plugin's logic on plain Node, with the SDK's fake host.
import assert from "node:assert/strict";
import { test } from "node:test";
import { evaluate } from "#weft-sdk/testing";
import { {{class}} } from "./{{name}}.js";

const msAgo = (seconds) => Date.now() - seconds * 1000;

test("passes once the time is up", async () => {
  const { outcome } = await evaluate({{class}}, { params: { seconds: "10" }, waitingSinceMs: msAgo(11) });
  assert.equal(outcome.kind, "passed", outcome.message);
});

test("fails until then", async () => {
  const { outcome, logs } = await evaluate({{class}}, { params: { seconds: "10" }, waitingSinceMs: msAgo(3), sample: 2 });
  assert.equal(outcome.kind, "failed", outcome.message);
  assert.equal(logs[0][0], "debug");
  assert.match(logs[0][1], /^sample 2: waited 3\.\ds$/);
});

test("a bad param is an error sample", async () => {
  const { outcome } = await evaluate({{class}}, { params: { seconds: "soon" } });
  assert.equal(outcome.kind, "error");
  assert.match(outcome.message, /param `seconds`/);
});
