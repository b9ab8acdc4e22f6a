"""`python3 -m unittest` (after `weft plugin build` staged .weft/)."""

import pathlib
import sys
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / ".weft" / "python"))

from weft_sdk.http import HttpError, Response  # noqa: E402
from weft_sdk.testing import evaluate  # noqa: E402

from health_py import Health  # noqa: E402

URL = "https://staging.example/health"


def answering(status, body=b""):
    sent = []

    def handler(request):
        sent.append(request)
        return Response(status, [], body)

    return handler, sent


class HealthTest(unittest.TestCase):
    def test_passes_on_the_expected_status(self):
        handler, sent = answering(200, b"ok")
        ran = evaluate(Health, params={"url": URL}, http=handler, sample=4)
        self.assertEqual((ran.outcome.kind, ran.outcome.message), ("passed", f"GET {URL}: HTTP 200"))
        self.assertEqual((sent[0].method, sent[0].url), ("GET", URL))
        self.assertIn(("debug", f"sample 4: GET {URL}"), ran.logs)

    def test_fails_saying_what_it_saw(self):
        handler, _ = answering(503, b"down")
        ran = evaluate(Health, params={"url": URL}, http=handler)
        self.assertEqual(ran.outcome.kind, "failed")
        self.assertIn("HTTP 503 (expected 200)", ran.outcome.message)

    def test_checks_the_body_when_asked(self):
        handler, _ = answering(200, b"degraded")
        ran = evaluate(Health, params={"url": URL, "expectBody": "ok"}, http=handler)
        self.assertEqual(ran.outcome.kind, "failed")
        self.assertIn("without 'ok'", ran.outcome.message)

    def test_no_answer_is_an_error_sample(self):
        def refused(request):
            raise HttpError("destination not allowed")

        ran = evaluate(Health, params={"url": URL}, http=refused)
        self.assertEqual((ran.outcome.kind, ran.outcome.message), ("error", "destination not allowed"))

    def test_bad_params_are_error_samples(self):
        self.assertEqual(evaluate(Health).outcome.message, "param `url` is required")
        ran = evaluate(Health, params={"url": URL, "expectStatus": "2xx"})
        self.assertEqual(ran.outcome.kind, "error")
        self.assertIn("param `expectStatus`", ran.outcome.message)
        ran = evaluate(Health, params={"url": URL, "expectStatus": "42"})
        self.assertIn("not an HTTP status", ran.outcome.message)


if __name__ == "__main__":
    unittest.main()
