"""Tasks: subclass :class:`Task` and export it with :func:`export_task`."""

import traceback

from . import _host, log
from .context import Context, ParamError, context_from_raw
from .info import PluginInfo, info_to_raw
from .outcome import Outcome, outcome_to_raw


class Task:
    """A task plugin: what it declares (:meth:`describe`) and what it does when the
    pipeline runs it (:meth:`run`)."""

    def describe(self) -> PluginInfo:
        """The task's params, results and the capabilities it needs. The host calls it
        when it loads the plugin, not per run: keep it cheap and constant."""
        raise NotImplementedError

    def run(self, ctx: Context) -> Outcome:
        """Runs the task once (one attempt). A :class:`ParamError` raised here ends the
        task as a failure with exit code 2, any other exception with exit code 1."""
        raise NotImplementedError


def run_task(task: Task, ctx: Context) -> Outcome:
    """Calls ``task.run`` and turns what escapes it into an :class:`Outcome`, as the
    host sees it. :mod:`weft_sdk.testing` uses it too, so tests see the same."""
    try:
        outcome = task.run(ctx)
    except ParamError as err:
        return err.outcome()
    except Exception as err:  # noqa: BLE001 - a plugin's bug is its task's failure
        log.error("".join(traceback.format_exception(err)).rstrip())
        return Outcome.failure(f"{type(err).__name__}: {err}", 1)
    if not isinstance(outcome, Outcome):
        return Outcome.failure(f"run returned {type(outcome).__name__}, not an Outcome", 1)
    return outcome


def export_task(task_class):
    """Exports ``task_class`` as the component's ``weft:plugin/task-plugin``. Assign the
    result to ``TaskPlugin`` at the top level of the plugin's module (componentize-py
    looks the export up by that name)::

        TaskPlugin = export_task(Echo)
    """

    class TaskPlugin:
        def __init__(self):
            self._task = task_class()

        def describe(self):
            return info_to_raw(_host.wit_types, self._task.describe())

        def run(self, ctx):
            outcome = run_task(self._task, context_from_raw(ctx))
            return outcome_to_raw(_host.wit_types, outcome)

    TaskPlugin.__qualname__ = f"TaskPlugin[{task_class.__name__}]"
    TaskPlugin.task_class = task_class
    return TaskPlugin
