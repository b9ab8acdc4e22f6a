// `npm test` (after `weft plugin build` staged .weft/).
import assert from "node:assert/strict";
import { test } from "node:test";
import { evaluate } from "#weft-sdk/testing";
import { Freeze, judge, parseFreeze } from "./freeze.js";

const NOW = Date.parse("2026-12-24T12:00:00Z");
const XMAS = "2026-12-19T00:00:00Z/2027-01-04T00:00:00Z";

test("fails inside a freeze, saying until when", () => {
  const result = judge([parseFreeze(XMAS)], NOW);
  assert.equal(result.kind, "failed");
  assert.equal(result.message, `change freeze ${XMAS} is on until 2027-01-04T00:00:00.000Z`);
});

test("passes outside every freeze (the end is open)", () => {
  const freezes = [parseFreeze(XMAS), parseFreeze("2026-06-01T00:00:00+02:00/2026-06-02T00:00:00+02:00")];
  assert.equal(judge(freezes, Date.parse("2027-01-04T00:00:00Z")).kind, "passed");
  assert.equal(judge([], NOW).message, "no change freeze is on (0 listed)");
});

test("evaluates against the clock, logging the sample", async () => {
  const { outcome, logs } = await evaluate(Freeze, { params: { freezes: ["2000-01-01T00:00:00Z/2999-01-01T00:00:00Z"] }, sample: 3 });
  assert.equal(outcome.kind, "failed");
  assert.match(logs[0][1], /^sample 3: 1 freeze\(s\) at /);
  assert.equal((await evaluate(Freeze)).outcome.kind, "passed");
});

test("a malformed freeze is an error sample", async () => {
  for (const [freeze, why] of [["next week", "not an ISO 8601 interval"], ["2027-01-04T00:00:00Z/2026-12-19T00:00:00Z", "ends before it starts"]]) {
    const { outcome } = await evaluate(Freeze, { params: { freezes: [freeze] } });
    assert.equal(outcome.kind, "error");
    assert.ok(outcome.message.includes(why), outcome.message);
  }
});
