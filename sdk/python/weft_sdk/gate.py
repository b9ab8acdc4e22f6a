"""Gates: subclass :class:`Gate` and export it with :func:`export_gate`.

A gate is a condition of the world a run waits for (a health endpoint answering, a time
window being open, a change freeze being lifted). While a gate waits, the host samples
it: every sampling interval it calls :meth:`Gate.evaluate` once, each time in a fresh
sandbox, and the gate holds when its samples keep passing for the pipeline's
``stableFor``. Each evaluation says what it saw with a :class:`GateResult`:

- :meth:`GateResult.passed`: the condition holds now;
- :meth:`GateResult.failed`: not yet; the host samples again at the next interval;
- :meth:`GateResult.error`: the condition could not be checked (a transport failure, a
  bad param); the host logs it and counts it as a failed sample.

A gate keeps nothing between samples (no checkpoints, no workspaces): what it needs is in
its :class:`GateContext`. It may read granted secrets (:mod:`weft_sdk.secrets`), write
log lines (:mod:`weft_sdk.log`) and, built with ``http = true``, call the hosts the
operator allows (:mod:`weft_sdk.http`)::

    from weft_sdk import Param, PluginInfo, http
    from weft_sdk.gate import Gate, GateContext, GateResult, export_gate

    class Ready(Gate):
        def describe(self) -> PluginInfo:
            return PluginInfo("ready", "0.1.0").param(Param.string("url"))

        def evaluate(self, ctx: GateContext) -> GateResult:
            status = http.get(ctx.required("url")).status  # HttpError: an error sample
            if status == 200:
                return GateResult.passed(f"answered {status}")
            return GateResult.failed(f"answered {status}, not 200")

    GatePlugin = export_gate(Ready)
"""

import datetime
import traceback
from typing import Dict, Optional

from . import _host, log
from .context import ParamAccess, ParamError
from .http import HttpError
from .info import ParamValue, PluginInfo, info_to_raw, param_value_from_raw

try:  # pragma: no cover - only inside a component built for the gate world
    from wit_world.exports import gate_plugin as _wit_gate
except ImportError:
    _wit_gate = None

#: The kinds of :class:`GateResult`, as the WIT ``gate-result`` variant names them.
KINDS = ("passed", "failed", "error")


class GateResult:
    """What one sample found, with a message saying what was seen (the host logs it and
    shows it with the gate's status, masked like any plugin output)."""

    def __init__(self, kind: str, message: str = ""):
        if kind not in KINDS:
            raise ValueError(f"unknown gate result {kind!r}; use one of {', '.join(KINDS)}")
        self.kind = kind
        self.message = str(message)

    @classmethod
    def passed(cls, message: str) -> "GateResult":
        """The condition holds now."""
        return cls("passed", message)

    @classmethod
    def failed(cls, message: str) -> "GateResult":
        """The condition does not hold yet: the host samples again at the next interval."""
        return cls("failed", message)

    @classmethod
    def error(cls, message: str) -> "GateResult":
        """The condition could not be checked; counted as a failed sample, logged as an
        error."""
        return cls("error", message)

    @property
    def is_passed(self) -> bool:
        """Whether the condition held."""
        return self.kind == "passed"

    def __repr__(self) -> str:
        return f"GateResult({self.kind!r}, {self.message!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, GateResult) and (self.kind, self.message) == (other.kind, other.message)


class GateContext(ParamAccess):
    """One evaluation of a gate: the run, the gate's name in the pipeline, its params
    (defaults applied by the host), which sample this is and when the wait began."""

    def __init__(
        self,
        params: Optional[Dict[str, ParamValue]] = None,
        run_name: str = "run",
        run_uid: str = "00000000-0000-0000-0000-000000000000",
        pipeline_name: str = "pipeline",
        task_name: str = "gate",
        sample: int = 0,
        waiting_since_ms: int = 0,
    ):
        self.params: Dict[str, ParamValue] = dict(params or {})
        self.run_name = run_name
        self.run_uid = run_uid
        self.pipeline_name = pipeline_name
        #: The gate's name in the pipeline (the name of the task that refers to it).
        self.task_name = task_name
        #: 0 for the first evaluation of this wait, 1 for the second, ...
        self.sample = sample
        #: When the gate started waiting, in milliseconds since the Unix epoch (UTC); the
        #: same for every sample of one wait.
        self.waiting_since_ms = waiting_since_ms

    @property
    def waiting_since(self) -> datetime.datetime:
        """When the gate started waiting, as an aware UTC datetime."""
        return datetime.datetime.fromtimestamp(self.waiting_since_ms / 1000, tz=datetime.timezone.utc)


class Gate:
    """A gate plugin: what it declares (:meth:`describe`) and one sample of its
    condition (:meth:`evaluate`)."""

    def describe(self) -> PluginInfo:
        """The gate's params and the capabilities it needs (secrets, hosts). Its results
        are not used: declare none and call ``results_fixed()``."""
        raise NotImplementedError

    def evaluate(self, ctx: GateContext) -> GateResult:
        """Evaluates the condition once. A :class:`~weft_sdk.ParamError` or an
        :class:`~weft_sdk.http.HttpError` raised here is an ``error`` sample with its
        message; any other exception too, with its traceback in the log."""
        raise NotImplementedError


def evaluate_gate(gate: Gate, ctx: GateContext) -> GateResult:
    """Calls ``gate.evaluate`` and turns what escapes it into a :class:`GateResult`, as
    the host sees it. :mod:`weft_sdk.testing` uses it too, so tests see the same."""
    try:
        result = gate.evaluate(ctx)
    except ParamError as err:
        return GateResult.error(err.message)
    except HttpError as err:
        return GateResult.error(str(err))
    except Exception as err:  # noqa: BLE001 - a plugin's bug is an error sample
        log.error("".join(traceback.format_exception(err)).rstrip())
        return GateResult.error(f"{type(err).__name__}: {err}")
    if not isinstance(result, GateResult):
        return GateResult.error(f"evaluate returned {type(result).__name__}, not a GateResult")
    return result


def gate_context_from_raw(raw) -> GateContext:
    """The WIT ``gate-context`` record as a :class:`GateContext`."""
    return GateContext(
        params={name: param_value_from_raw(value) for name, value in raw.params},
        run_name=raw.run_name,
        run_uid=raw.run_uid,
        pipeline_name=raw.pipeline_name,
        task_name=raw.task_name,
        sample=raw.sample,
        waiting_since_ms=raw.waiting_since_ms,
    )


def gate_result_to_raw(result: GateResult):
    """A :class:`GateResult` as the WIT ``gate-result`` variant."""
    if result.kind == "passed":
        return _wit_gate.GateResult_Passed(result.message)
    if result.kind == "failed":
        return _wit_gate.GateResult_Failed(result.message)
    return _wit_gate.GateResult_Error(result.message)


def export_gate(gate_class):
    """Exports ``gate_class`` as the component's ``weft:plugin/gate-plugin``. Assign the
    result to ``GatePlugin`` at the top level of the plugin's module (componentize-py
    looks the export up by that name)::

        GatePlugin = export_gate(Ready)
    """

    class GatePlugin:
        def __init__(self):
            self._gate = gate_class()

        def describe(self):
            return info_to_raw(_host.wit_types, self._gate.describe())

        def evaluate(self, ctx):
            return gate_result_to_raw(evaluate_gate(self._gate, gate_context_from_raw(ctx)))

    GatePlugin.__qualname__ = f"GatePlugin[{gate_class.__name__}]"
    GatePlugin.gate_class = gate_class
    return GatePlugin
