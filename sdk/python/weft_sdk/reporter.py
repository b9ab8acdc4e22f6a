"""Status reporters: subclass :class:`Reporter` and export it with
:func:`export_reporter`. The host keeps the desired status of each run in a durable
outbox and owns retries and backoff; a reporter maps one :class:`Event` to one forge
request (see :mod:`weft_sdk.http`) and says how it went with a :class:`Delivery`."""

import traceback
from dataclasses import dataclass, field
from typing import Dict, Optional

from . import _host, log
from .http import HttpError
from .info import PluginInfo, info_to_raw

try:  # pragma: no cover - only inside a component built for the reporter world
    from wit_world.exports import reporter_plugin as _wit_reporter
except ImportError:
    _wit_reporter = None

#: Every status, in weft's vocabulary (``Event.status``).
STATUSES = (
    "pending",
    "running",
    "succeeded",
    "succeeded-with-warnings",
    "completed",
    "failed",
    "timed-out",
    "errored",
    "rejected",
    "cancelled",
    "skipped",
)


@dataclass
class TaskEvent:
    """A task-level event (only for reporters configured for task events)."""

    name: str
    status: str
    reason: str = ""
    message: str = ""


@dataclass
class Event:
    """One desired status to report: the run's, or one task's (``task`` set)."""

    run_name: str
    run_uid: str
    pipeline_name: str
    status: str
    reason: str = ""
    #: ``(task, message)`` when a task halted the run early.
    halted_by: Optional[tuple] = None
    message: str = ""
    #: A description suggested by the host; empty lets the reporter describe it.
    description: str = ""
    task: Optional[TaskEvent] = None
    #: The reporter's configuration (``url``, ``sha``, ``token-secret``, ...): secret
    #: names only, never values.
    config: Dict[str, str] = field(default_factory=dict)
    #: 0 for the first delivery attempt, 1 for the first retry, ...
    attempt: int = 0

    @property
    def terminal(self) -> bool:
        """True once the status will not change again."""
        return self.status not in ("pending", "running")


class Delivery:
    """What the reporter asks the host to do next."""

    def __init__(self, kind: str, retry_after_ms: int = 0, message: str = ""):
        self.kind = kind
        self.retry_after_ms = retry_after_ms
        self.message = message

    @classmethod
    def done(cls) -> "Delivery":
        """Delivered, or the forge already has that state."""
        return cls("done")

    @classmethod
    def retry_after(cls, ms: int = 0) -> "Delivery":
        """A transient failure: retry after the larger of the host's backoff and
        ``ms`` (the wait the server named, 0 when none)."""
        return cls("retry-after", retry_after_ms=int(ms))

    @classmethod
    def permanent(cls, message: str) -> "Delivery":
        """Will never succeed as configured; ``message`` says why."""
        return cls("permanent", message=message)

    def __repr__(self) -> str:
        return f"Delivery({self.kind!r}, retry_after_ms={self.retry_after_ms}, message={self.message!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Delivery) and vars(self) == vars(other)


class Reporter:
    """A status reporter."""

    def describe(self) -> PluginInfo:
        """Its config keys (as params) and the capabilities it needs (the token
        secret's default name, the forge's default host)."""
        raise NotImplementedError

    def report(self, event: Event) -> Delivery:
        """Sends one event to the forge (one request). An :class:`HttpError` raised
        here is retried with the host's backoff; any other exception is permanent."""
        raise NotImplementedError


def report_event(reporter: Reporter, event: Event) -> Delivery:
    """Calls ``reporter.report`` and turns what escapes it into a :class:`Delivery`."""
    try:
        delivery = reporter.report(event)
    except HttpError as err:
        log.warn(f"delivery failed, will be retried: {err}")
        return Delivery.retry_after(0)
    except Exception as err:  # noqa: BLE001 - a plugin's bug is a permanent failure
        log.error("".join(traceback.format_exception(err)).rstrip())
        return Delivery.permanent(f"{type(err).__name__}: {err}")
    if not isinstance(delivery, Delivery):
        return Delivery.permanent(f"report returned {type(delivery).__name__}, not a Delivery")
    return delivery


def _status_name(raw_status) -> str:
    return raw_status.name.lower().replace("_", "-")


def event_from_raw(raw) -> Event:
    """The WIT ``run-event`` record as an :class:`Event`."""
    task = None
    if raw.task is not None:
        task = TaskEvent(raw.task.name, _status_name(raw.task.status), raw.task.reason, raw.task.message)
    halted = None if raw.halted_by is None else (raw.halted_by.task, raw.halted_by.message)
    return Event(
        run_name=raw.run_name,
        run_uid=raw.run_uid,
        pipeline_name=raw.pipeline_name,
        status=_status_name(raw.status),
        reason=raw.reason,
        halted_by=halted,
        message=raw.message,
        description=raw.description,
        task=task,
        config=dict(raw.config),
        attempt=raw.attempt,
    )


def delivery_to_raw(delivery: Delivery):
    """A :class:`Delivery` as the WIT ``delivery`` variant."""
    if delivery.kind == "done":
        return _wit_reporter.Delivery_Done()
    if delivery.kind == "retry-after":
        return _wit_reporter.Delivery_RetryAfter(max(0, int(delivery.retry_after_ms)))
    return _wit_reporter.Delivery_Permanent(delivery.message)


def export_reporter(reporter_class):
    """Exports ``reporter_class`` as the component's ``weft:plugin/reporter-plugin``::

        ReporterPlugin = export_reporter(MyForge)
    """

    class ReporterPlugin:
        def __init__(self):
            self._reporter = reporter_class()

        def describe(self):
            return info_to_raw(_host.wit_types, self._reporter.describe())

        def report(self, event):
            return delivery_to_raw(report_event(self._reporter, event_from_raw(event)))

    ReporterPlugin.reporter_class = reporter_class
    return ReporterPlugin
