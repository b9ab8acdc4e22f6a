"""`python3 -m unittest` (after `weft plugin build` staged .weft/)."""

import pathlib
import sys
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / ".weft" / "python"))

from weft_sdk.testing import decorate  # noqa: E402

from stamp_py import Stamp  # noqa: E402


class StampTest(unittest.TestCase):
    def test_sets_the_build_id(self):
        ran = decorate(Stamp, params={"commit": "0123456789abcdef"}, input={"prefix": "app"})
        self.assertIsNone(ran.outcome)
        self.assertEqual(ran.form.str("buildId"), "app-0123456")

    def test_refuses_a_commit_that_is_not_hex(self):
        ran = decorate(Stamp, params={"commit": "main"}, input={"prefix": "app"})
        self.assertIn("hex commit id", ran.outcome)


if __name__ == "__main__":
    unittest.main()
