"""Testing plugins on plain CPython, without building a component: a fake host keeps
logs, answers secrets, checkpoints and HTTP from what the test gives it, and each
helper calls the plugin as weft would (a ``ParamError`` becomes a failure with exit code
2, an exception a failure with exit code 1, and so on)::

    import unittest
    from weft_sdk.testing import run_task

    class EchoTest(unittest.TestCase):
        def test_echoes(self):
            ran = run_task(Echo, params={"message": "hi"})
            self.assertEqual(ran.outcome.results_dict(), {"message": "hi"})
            self.assertIn(("info", "hi"), ran.logs)
"""

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import _host
from .context import Context, WorkspaceBinding
from .decorator import Form, decorate_form
from .gate import GateContext, GateResult, evaluate_gate
from .info import ParamValue
from .outcome import Outcome
from .reporter import Delivery, Event, report_event
from .task import run_task as _run_task


@dataclass
class Ran:
    """What one call did: the outcome (a task's :class:`Outcome`, a reporter's
    :class:`Delivery`, a decorator's refusal message or ``None``, a gate's
    :class:`~weft_sdk.gate.GateResult`), the log lines as
    ``(level, message)`` and the checkpoints stored."""

    outcome: Any
    logs: List[Tuple[str, str]]
    checkpoints: Dict[str, bytes]
    form: Optional[Form] = None


def _install(secrets, checkpoints, http) -> "_host.FakeHost":
    if _host.IN_COMPONENT:
        raise RuntimeError("weft_sdk.testing runs on plain CPython, not inside a component")
    _host.fake = _host.FakeHost(secrets=secrets, checkpoints=checkpoints, http=http)
    return _host.fake


def run_task(
    task_class,
    params: Optional[Dict[str, ParamValue]] = None,
    workspaces: Optional[Dict[str, str]] = None,
    secrets: Optional[Dict[str, str]] = None,
    checkpoints: Optional[Dict[str, bytes]] = None,
    http: Optional[Callable] = None,
    **context,
) -> Ran:
    """Runs ``task_class`` once with ``params`` (defaults from its ``describe`` filled
    in, as the host does), ``workspaces`` (name -> directory), granted ``secrets``,
    stored ``checkpoints`` and an ``http`` handler (``Request -> Response``)."""
    fake = _install(secrets, checkpoints, http)
    task = task_class()
    merged = {p.name: p.default_value for p in task.describe().params if p.default_value is not None}
    merged.update(params or {})
    bindings = [WorkspaceBinding(name, path) for name, path in (workspaces or {}).items()]
    outcome: Outcome = _run_task(task, Context(params=merged, workspaces=bindings, **context))
    return Ran(outcome, fake.logs, fake.checkpoints)


def report(
    reporter_class,
    event: Event,
    secrets: Optional[Dict[str, str]] = None,
    http: Optional[Callable] = None,
) -> Ran:
    """Calls ``reporter_class``'s ``report`` with ``event``; ``Ran.outcome`` is the
    :class:`Delivery`."""
    fake = _install(secrets, None, http)
    delivery: Delivery = report_event(reporter_class(), event)
    return Ran(delivery, fake.logs, fake.checkpoints)


def decorate(
    decorator_class,
    params: Optional[Dict[str, ParamValue]] = None,
    input: Any = None,
    secrets: Optional[Dict[str, str]] = None,
    http: Optional[Callable] = None,
) -> Ran:
    """Calls ``decorator_class``'s ``decorate`` on a form holding ``params`` with
    ``input``; ``Ran.outcome`` is the refusal message (``None`` when accepted) and
    ``Ran.form`` the form afterwards."""
    import json

    fake = _install(secrets, None, http)
    form = Form(params)
    refusal = decorate_form(decorator_class(), form, json.dumps({} if input is None else input))
    return Ran(refusal, fake.logs, fake.checkpoints, form)


def evaluate(
    gate_class,
    params: Optional[Dict[str, ParamValue]] = None,
    secrets: Optional[Dict[str, str]] = None,
    http: Optional[Callable] = None,
    sample: int = 0,
    waiting_since_ms: int = 0,
    **context,
) -> Ran:
    """Evaluates ``gate_class`` once (one sample) with ``params`` (defaults from its
    ``describe`` filled in, as the host does), granted ``secrets``, an ``http`` handler
    (``Request -> Response``), the sample number and when the wait began (milliseconds
    since the Unix epoch); ``Ran.outcome`` is the :class:`~weft_sdk.gate.GateResult`."""
    fake = _install(secrets, None, http)
    gate = gate_class()
    merged = {p.name: p.default_value for p in gate.describe().params if p.default_value is not None}
    merged.update(params or {})
    ctx = GateContext(params=merged, sample=sample, waiting_since_ms=waiting_since_ms, **context)
    result: GateResult = evaluate_gate(gate, ctx)
    return Ran(result, fake.logs, fake.checkpoints)
