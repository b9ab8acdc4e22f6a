"""`python3 -m unittest`: the plugin's logic on plain CPython, with the SDK's fake host."""

import pathlib
import sys
import time
import unittest

# The SDK staged by `weft plugin build` (or `weft plugin new`).
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / ".weft" / "python"))

from weft_sdk.testing import evaluate  # noqa: E402

from {{module}} import {{class}}  # noqa: E402


def ms_ago(seconds: float) -> int:
    return int((time.time() - seconds) * 1000)


class {{class}}Test(unittest.TestCase):
    def test_passes_once_the_time_is_up(self):
        ran = evaluate({{class}}, params={"seconds": "10"}, waiting_since_ms=ms_ago(11))
        self.assertEqual(ran.outcome.kind, "passed", ran.outcome)

    def test_fails_until_then(self):
        ran = evaluate({{class}}, params={"seconds": "10"}, waiting_since_ms=ms_ago(3), sample=2)
        self.assertEqual(ran.outcome.kind, "failed", ran.outcome)
        self.assertEqual(ran.logs[0][0], "debug")
        self.assertTrue(ran.logs[0][1].startswith("sample 2: waited 3."), ran.logs)

    def test_a_bad_param_is_an_error_sample(self):
        ran = evaluate({{class}}, params={"seconds": "soon"})
        self.assertEqual(ran.outcome.kind, "error")
        self.assertIn("param `seconds`", ran.outcome.message)


if __name__ == "__main__":
    unittest.main()
