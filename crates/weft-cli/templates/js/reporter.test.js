// `npm test`: the plugin's logic on plain Node, with the SDK's fake host (and Node's own
// fetch, replaced here by a fake forge).
import assert from "node:assert/strict";
import { test } from "node:test";
import { report } from "#weft-sdk/testing";
import { {{class}}, delivery } from "./{{name}}.js";

test("posts the status with the token", async () => {
  const sent = [];
  globalThis.fetch = async (url, init) => {
    sent.push({ url, ...init });
    return { status: 201 };
  };
  const { outcome } = await report(
    {{class}},
    { status: "succeeded", config: { url: "https://forge.example/hook", "token-secret": "hook-token" } },
    { secrets: { "hook-token": "s3cret-value" } },
  );
  assert.equal(outcome.kind, "done");
  assert.equal(sent[0].headers.authorization, "Bearer s3cret-value");
  assert.equal(JSON.parse(sent[0].body).status, "succeeded");
});

test("classifies responses", () => {
  assert.equal(delivery(503).kind, "retry-after");
  assert.equal(delivery(404).kind, "permanent");
});
