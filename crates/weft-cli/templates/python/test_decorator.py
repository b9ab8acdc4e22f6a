"""`python3 -m unittest`: the plugin's logic on plain CPython, with the SDK's fake host."""

import pathlib
import sys
import unittest

# The SDK staged by `weft plugin build` (or `weft plugin new`).
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / ".weft" / "python"))

from weft_sdk.testing import decorate  # noqa: E402

from {{module}} import {{class}}  # noqa: E402


class {{class}}Test(unittest.TestCase):
    def test_sets_the_greeting(self):
        ran = decorate({{class}}, params={"who": "world"}, input={"prefix": "hello"})
        self.assertIsNone(ran.outcome)
        self.assertEqual(ran.form.str("greeting"), "hello, world")

    def test_refuses_without_who(self):
        ran = decorate({{class}}, params={}, input={"prefix": "hello"})
        self.assertEqual(ran.outcome, "param `who` is required")


if __name__ == "__main__":
    unittest.main()
