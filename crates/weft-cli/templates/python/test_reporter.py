"""`python3 -m unittest`: the plugin's logic on plain CPython, with the SDK's fake host."""

import pathlib
import sys
import unittest

# The SDK staged by `weft plugin build` (or `weft plugin new`).
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / ".weft" / "python"))

from weft_sdk import Delivery, Event  # noqa: E402
from weft_sdk.http import Response  # noqa: E402
from weft_sdk.testing import report  # noqa: E402

from {{module}} import {{class}}  # noqa: E402


def event(status="succeeded", **config):
    return Event("run-1", "uid", "pipeline", status, config=config)


class {{class}}Test(unittest.TestCase):
    def test_posts_the_status_with_the_token(self):
        sent = []

        def forge(request):
            sent.append(request)
            return Response(201)

        ran = report(
            {{class}},
            event(url="https://forge.example/hook", **{"token-secret": "hook-token"}),
            secrets={"hook-token": "s3cret-value"},
            http=forge,
        )
        self.assertEqual(ran.outcome, Delivery.done())
        self.assertEqual(sent[0].method, "POST")
        self.assertIn(("authorization", "Bearer s3cret-value"), sent[0].headers)

    def test_a_busy_server_is_retried(self):
        ran = report({{class}}, event(url="https://forge.example/hook"), http=lambda r: Response(503))
        self.assertEqual(ran.outcome, Delivery.retry_after(0))

    def test_no_url_is_permanent(self):
        self.assertEqual(report({{class}}, event()).outcome.kind, "permanent")


if __name__ == "__main__":
    unittest.main()
