"""Levelled log lines (``weft:plugin/log``), attributed by the host to the plugin and
masked like everything else a plugin hands back. ``print`` works too: stdout and stderr
become log lines."""

from . import _host

_LEVELS = ("trace", "debug", "info", "warn", "error")


def write(level: str, message: str) -> None:
    """Writes one log line at ``level`` (``trace``, ``debug``, ``info``, ``warn``,
    ``error``). Lines past the task's log budget end the task as errored."""
    if level not in _LEVELS:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(_LEVELS)}")
    message = str(message)
    if _host.IN_COMPONENT:
        _host.wit_log.write(getattr(_host.wit_log.Level, level.upper()), message)
    else:
        _host.fake.logs.append((level, message))


def trace(message: str) -> None:
    """Writes a ``trace`` line."""
    write("trace", message)


def debug(message: str) -> None:
    """Writes a ``debug`` line."""
    write("debug", message)


def info(message: str) -> None:
    """Writes an ``info`` line."""
    write("info", message)


def warn(message: str) -> None:
    """Writes a ``warn`` line."""
    write("warn", message)


def error(message: str) -> None:
    """Writes an ``error`` line."""
    write("error", message)
