"""`python3 -m unittest` (after `weft plugin build` staged .weft/)."""

import pathlib
import sys
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / ".weft" / "python"))

from weft_sdk import Delivery, Event  # noqa: E402
from weft_sdk.http import Response  # noqa: E402
from weft_sdk.testing import report  # noqa: E402

from webhook_py import Webhook  # noqa: E402

CONFIG = {"url": "https://hooks.example/ci", "token-secret": "hook"}


class WebhookTest(unittest.TestCase):
    def test_posts_json_with_the_bearer_token(self):
        sent = []
        ran = report(
            Webhook,
            Event("r", "u", "p", "failed", config=CONFIG),
            secrets={"hook": "hook-token-value"},
            http=lambda request: sent.append(request) or Response(200),
        )
        self.assertEqual(ran.outcome, Delivery.done())
        self.assertIn(("authorization", "Bearer hook-token-value"), sent[0].headers)
        self.assertIn(b'"status": "failed"', sent[0].body)

    def test_rate_limits_are_retried_after_the_servers_wait(self):
        ran = report(
            Webhook,
            Event("r", "u", "p", "running", config=CONFIG),
            secrets={"hook": "hook-token-value"},
            http=lambda request: Response(429, [("retry-after", "2")]),
        )
        self.assertEqual(ran.outcome, Delivery.retry_after(2000))

    def test_an_ungranted_token_is_permanent(self):
        ran = report(Webhook, Event("r", "u", "p", "running", config=CONFIG))
        self.assertEqual(ran.outcome.kind, "permanent")
        self.assertIn("not granted", ran.outcome.message)


if __name__ == "__main__":
    unittest.main()
