"""How a task ended, with its results: :class:`Outcome`."""

from typing import Dict, List, Tuple


class Outcome:
    """A task's ending (``success``, ``warning``, ``halt``, ``skip`` or ``failure``)
    and the results it produced. Build one with the class methods, then add results:
    ``Outcome.success().result("digest", digest)``."""

    def __init__(self, kind: str, message: str = "", exit_code: int = 0):
        self.kind = kind
        self.message = message
        self.exit_code = exit_code
        self.results: List[Tuple[str, str]] = []

    @classmethod
    def success(cls) -> "Outcome":
        """Done."""
        return cls("success")

    @classmethod
    def warning(cls, message: str) -> "Outcome":
        """Done, but worth a look (the run passes with warnings)."""
        return cls("warning", message)

    @classmethod
    def halt(cls, message: str) -> "Outcome":
        """Done, and the rest of the run is not needed (an early successful exit)."""
        return cls("halt", message)

    @classmethod
    def skip(cls, message: str) -> "Outcome":
        """The task decided it does not apply."""
        return cls("skip", message)

    @classmethod
    def failure(cls, message: str, exit_code: int = 1) -> "Outcome":
        """It failed, with an exit code (``onStatus`` may map exit codes)."""
        return cls("failure", message, exit_code)

    def result(self, name: str, value: str) -> "Outcome":
        """Adds the result ``name``."""
        self.results.append((name, str(value)))
        return self

    def results_dict(self) -> Dict[str, str]:
        """The results as a dictionary."""
        return dict(self.results)

    @property
    def is_ok(self) -> bool:
        """True unless the outcome is a failure."""
        return self.kind != "failure"

    def __repr__(self) -> str:
        detail = f" {self.message!r}" if self.message else ""
        code = f" exit {self.exit_code}" if self.kind == "failure" else ""
        return f"Outcome.{self.kind}{detail}{code} results={self.results!r}"

    def __eq__(self, other) -> bool:
        return isinstance(other, Outcome) and vars(self) == vars(other)


def outcome_to_raw(types, outcome: Outcome):
    """An :class:`Outcome` as the WIT ``task-outcome`` record."""
    if outcome.kind == "success":
        ending = types.Ending_Success()
    elif outcome.kind == "warning":
        ending = types.Ending_Warning(outcome.message)
    elif outcome.kind == "halt":
        ending = types.Ending_Halt(outcome.message)
    elif outcome.kind == "skip":
        ending = types.Ending_Skip(outcome.message)
    else:
        ending = types.Ending_Failure(types.Failure(outcome.message, int(outcome.exit_code)))
    return types.TaskOutcome(ending, list(outcome.results))

