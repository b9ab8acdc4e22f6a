"""`python3 -m unittest`: the plugin's logic on plain CPython, with the SDK's fake host."""

import pathlib
import sys
import unittest

# The SDK staged by `weft plugin build` (or `weft plugin new`).
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / ".weft" / "python"))

from weft_sdk.testing import run_task  # noqa: E402

from {{module}} import {{class}}  # noqa: E402


class {{class}}Test(unittest.TestCase):
    def test_greets(self):
        ran = run_task({{class}}, params={"who": "world"})
        self.assertEqual(ran.outcome.kind, "success")
        self.assertEqual(ran.outcome.results_dict(), {"greeting": "hello, world"})
        self.assertIn(("info", "hello, world"), ran.logs)

    def test_a_missing_param_fails_with_exit_code_2(self):
        ran = run_task({{class}})
        self.assertEqual((ran.outcome.kind, ran.outcome.exit_code), ("failure", 2))


if __name__ == "__main__":
    unittest.main()
