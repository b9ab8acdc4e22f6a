// `npm test`: the plugin's logic on plain Node, with the SDK's fake host.
import assert from "node:assert/strict";
import { test } from "node:test";
import { decorate } from "#weft-sdk/testing";
import { {{class}} } from "./{{name}}.js";

test("sets the greeting", async () => {
  const { outcome, form } = await decorate({{class}}, { params: { who: "world" }, input: { prefix: "hello" } });
  assert.equal(outcome, undefined);
  assert.equal(form.str("greeting"), "hello, world");
});

test("refuses without who", async () => {
  const { outcome } = await decorate({{class}}, { input: { prefix: "hello" } });
  assert.equal(outcome, "param `who` is required");
});
