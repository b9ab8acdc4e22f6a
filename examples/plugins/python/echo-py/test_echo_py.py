"""`python3 -m unittest` (after `weft plugin build` staged .weft/)."""

import pathlib
import sys
import tempfile
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / ".weft" / "python"))

from weft_sdk.testing import run_task  # noqa: E402

from echo_py import Echo  # noqa: E402


class EchoTest(unittest.TestCase):
    def test_echoes(self):
        ran = run_task(Echo, params={"message": "hi"})
        self.assertEqual(ran.outcome.kind, "success")
        self.assertEqual(ran.outcome.results_dict(), {"message": "hi"})
        self.assertIn(("info", "hi"), ran.logs)
        self.assertEqual(ran.checkpoints, {"message": b"hi"})

    def test_endings(self):
        for ending in ["warning", "halt", "skip"]:
            ran = run_task(Echo, params={"message": "m", "ending": ending})
            self.assertEqual((ran.outcome.kind, ran.outcome.message), (ending, "m"))
        ran = run_task(Echo, params={"message": "m", "ending": "failure"})
        self.assertEqual((ran.outcome.kind, ran.outcome.exit_code), ("failure", 3))

    def test_missing_message_fails_with_exit_code_2(self):
        self.assertEqual(run_task(Echo).outcome.exit_code, 2)

    def test_writes_the_workspace_and_reads_the_secret(self):
        with tempfile.TemporaryDirectory() as out:
            ran = run_task(Echo, params={"message": "hi"}, workspaces={"out": out}, secrets={"echo-token": "t0ken-value"})
            self.assertEqual((pathlib.Path(out) / "message.txt").read_text(), "hi")
        self.assertIn(("info", "echo-token is t0ken-value"), ran.logs)

    def test_a_retry_gets_the_checkpoint(self):
        ran = run_task(Echo, params={"message": "second"}, checkpoints={"message": b"first"})
        self.assertEqual(ran.outcome.results_dict(), {"message": "first"})


if __name__ == "__main__":
    unittest.main()
