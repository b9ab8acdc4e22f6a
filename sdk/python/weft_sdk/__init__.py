"""weft_sdk: write weft plugins in Python.

A weft plugin is a WebAssembly component built against the WIT package
``weft:plugin@0.2.0`` (``wit/`` in the weft repository). This package wraps the bindings
componentize-py generates so that a plugin is one file, as with the Rust SDK::

    from weft_sdk import Context, Outcome, Param, PluginInfo, Task, export_task, log

    class Echo(Task):
        def describe(self) -> PluginInfo:
            return (
                PluginInfo("echo-py", "0.1.0")
                .description("Logs a message and returns it as a result")
                .param(Param.string("message").description("The message to echo"))
                .result("message", "The message, unchanged")
                .results_fixed()
            )

        def run(self, ctx: Context) -> Outcome:
            message = ctx.required("message")  # a ParamError ends the task: exit code 2
            log.info(message)
            return Outcome.success().result("message", message)

    TaskPlugin = export_task(Echo)

``weft plugin build`` turns it into ``echo-py.wasm``. Kinds of plugins, each exported
under the name componentize-py looks for:

- tasks: :class:`Task` + ``TaskPlugin = export_task(...)``;
- status reporters: :class:`~weft_sdk.reporter.Reporter` +
  ``ReporterPlugin = export_reporter(...)``;
- form decorators: :class:`~weft_sdk.decorator.Decorator` +
  ``FormDecoratorPlugin = export_decorator(...)``;
- gates: :class:`~weft_sdk.gate.Gate` + ``GatePlugin = export_gate(...)`` (since
  ``weft:plugin@0.2.0``): one sample of a condition a run waits for, returning a
  :class:`~weft_sdk.gate.GateResult`.

Logs: :mod:`weft_sdk.log` (``print`` works too). Secrets: :mod:`weft_sdk.secrets`.
Checkpoints (tasks): :mod:`weft_sdk.checkpoint`. Workspaces: ``ctx.workspace(name)``
and plain ``open``. HTTP: :mod:`weft_sdk.http` (``http = true``). Tests on plain
CPython: :mod:`weft_sdk.testing`.
"""

from . import checkpoint, http, log, secrets
from .context import Context, ParamError, WorkspaceBinding
from .decorator import Decorator, DecoratorInfo, Form, Input, Refuse, export_decorator
from .gate import Gate, GateContext, GateResult, export_gate
from .info import Param, PluginInfo, Workspace
from .outcome import Outcome
from .reporter import Delivery, Event, Reporter, TaskEvent, export_reporter
from .task import Task, export_task

#: The version of the ``weft:plugin`` WIT package this SDK was written against; it is
#: part of the exported interface's name (``weft:plugin/task-plugin@0.2.0``).
WIT_VERSION = "0.2.0"

__all__ = [
    "Context", "Decorator", "DecoratorInfo", "Delivery", "Event", "Form", "Gate",
    "GateContext", "GateResult", "Input", "Outcome", "Param", "ParamError", "PluginInfo",
    "Refuse", "Reporter", "Task", "TaskEvent", "Workspace", "WorkspaceBinding",
    "WIT_VERSION", "checkpoint", "export_decorator", "export_gate", "export_reporter",
    "export_task", "http", "log", "secrets",
]
