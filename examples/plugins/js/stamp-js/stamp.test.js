// `npm test` (after `weft plugin build` staged .weft/).
import assert from "node:assert/strict";
import { test } from "node:test";
import { decorate } from "#weft-sdk/testing";
import { Stamp } from "./stamp.js";

test("sets the build id", async () => {
  const { outcome, form, logs } = await decorate(Stamp, { params: { commit: "0123456789abcdef" }, input: { prefix: "app" } });
  assert.equal(outcome, undefined);
  assert.equal(form.str("buildId"), "app-0123456");
  assert.deepEqual(logs, [["info", "buildId = app-0123456"]]);
});

test("adds a run secret when asked", async () => {
  const { form } = await decorate(Stamp, { params: { commit: "abc" }, input: { prefix: "app", secret: "build-token" } });
  assert.deepEqual(form.secrets, [["build-token", "app-abc-token"]]);
});

test("refuses a commit that is not hex", async () => {
  const { outcome } = await decorate(Stamp, { params: { commit: "main" }, input: { prefix: "app" } });
  assert.match(outcome, /hex commit id/);
});
