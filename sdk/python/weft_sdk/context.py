"""Everything a task invocation knows about where it runs: :class:`Context`."""

from typing import Callable, Dict, List, Optional, TypeVar

from .info import ParamValue
from .outcome import Outcome

T = TypeVar("T")


class ParamError(Exception):
    """A param that is missing or does not parse. Raised from ``run``, it ends the task
    as a failure with exit code 2 (as the Rust SDK's ``ParamError`` does)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def outcome(self) -> Outcome:
        """The failure this error stands for."""
        return Outcome.failure(self.message, 2)


class WorkspaceBinding:
    """A workspace as the task sees it: its name, the path where it is preopened, and
    whether it is read-only. Use plain ``open`` / ``pathlib`` under ``path``."""

    def __init__(self, name: str, path: str, read_only: bool = False):
        self.name = name
        self.path = path
        self.read_only = read_only

    def __repr__(self) -> str:
        return f"WorkspaceBinding({self.name!r}, {self.path!r}, read_only={self.read_only})"


class ParamAccess:
    """Reading params (``self.params``, name -> value) as a plugin expects them; shared
    by a task's :class:`Context` and a gate's ``GateContext``."""

    params: Dict[str, ParamValue]

    def param(self, name: str) -> Optional[str]:
        """The string param ``name``, or ``None`` when absent or not a string."""
        value = self.params.get(name)
        return value if isinstance(value, str) else None

    def param_or(self, name: str, default: str) -> str:
        """The string param ``name``, or ``default``."""
        value = self.param(name)
        return default if value is None else value

    def param_array(self, name: str) -> Optional[List[str]]:
        """The array param ``name``, or ``None``."""
        value = self.params.get(name)
        return value if isinstance(value, list) else None

    def param_object(self, name: str) -> Optional[Dict[str, str]]:
        """The object param ``name``, or ``None``."""
        value = self.params.get(name)
        return value if isinstance(value, dict) else None

    def required(self, name: str) -> str:
        """The string param ``name``; raises :class:`ParamError` when it is missing."""
        value = self.param(name)
        if value is None:
            raise ParamError(f"param `{name}` is required")
        return value

    def parse_or(self, name: str, default: T, parse: Callable[[str], T] = int) -> T:
        """The param ``name`` parsed with ``parse`` (``int`` by default), or
        ``default`` when absent; raises :class:`ParamError` when it does not parse."""
        value = self.param(name)
        if value is None:
            return default
        try:
            return parse(value)
        except (TypeError, ValueError) as err:
            raise ParamError(f"param `{name}`: invalid value {value!r}: {err}") from None


class Context(ParamAccess):
    """One task invocation: the run, the task, the attempt, the params and the
    workspaces."""

    def __init__(
        self,
        params: Optional[Dict[str, ParamValue]] = None,
        workspaces: Optional[List[WorkspaceBinding]] = None,
        run_name: str = "run",
        run_uid: str = "00000000-0000-0000-0000-000000000000",
        pipeline_name: str = "pipeline",
        task_name: str = "task",
        retry_count: int = 0,
        retries: int = 0,
    ):
        self.params: Dict[str, ParamValue] = dict(params or {})
        self.workspaces: List[WorkspaceBinding] = list(workspaces or [])
        self.run_name = run_name
        self.run_uid = run_uid
        self.pipeline_name = pipeline_name
        self.task_name = task_name
        #: 0 for the first attempt, 1 for the first retry, ...
        self.retry_count = retry_count
        #: How many retries the pipeline allows this task.
        self.retries = retries

    def workspace(self, name: str) -> Optional[str]:
        """The guest path of the workspace ``name``, or ``None`` when not bound."""
        binding = self.workspace_binding(name)
        return binding.path if binding else None

    def workspace_binding(self, name: str) -> Optional[WorkspaceBinding]:
        """The binding of the workspace ``name``, or ``None``."""
        return next((w for w in self.workspaces if w.name == name), None)


def context_from_raw(raw) -> Context:
    """The WIT ``task-context`` record as a :class:`Context`."""
    from .info import param_value_from_raw

    return Context(
        params={name: param_value_from_raw(value) for name, value in raw.params},
        workspaces=[WorkspaceBinding(w.name, w.path, w.read_only) for w in raw.workspaces],
        run_name=raw.run_name,
        run_uid=raw.run_uid,
        pipeline_name=raw.pipeline_name,
        task_name=raw.task_name,
        retry_count=raw.retry_count,
        retries=raw.retries,
    )
