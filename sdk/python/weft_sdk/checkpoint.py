"""Checkpoints (``weft:plugin/checkpoint``, tasks only): durable values per (run, task,
key), so a retry or a re-run skips work already done."""

from typing import Callable, Optional

from . import _host


class CheckpointError(Exception):
    """The host could not store a checkpoint."""


def _require():
    if _host.IN_COMPONENT and _host.wit_checkpoint is None:
        raise CheckpointError("checkpoints are only available to tasks")


def get(key: str) -> Optional[bytes]:
    """The stored value for ``key``, if any."""
    _require()
    if _host.IN_COMPONENT:
        return _host.wit_checkpoint.get(key)
    return _host.fake.checkpoints.get(key)


def get_string(key: str) -> Optional[str]:
    """The stored value for ``key`` as text, if any."""
    value = get(key)
    return None if value is None else value.decode("utf-8", "replace")


def put(key: str, value) -> None:
    """Stores ``value`` (``bytes`` or ``str``) under ``key``."""
    _require()
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if _host.IN_COMPONENT:
        from componentize_py_types import Err

        try:
            _host.wit_checkpoint.put(key, data)
        except Err as err:
            raise CheckpointError(str(err.value)) from None
    else:
        _host.fake.checkpoints[key] = data


def checkpoint(key: str, work: Callable[[], str]) -> str:
    """Runs ``work`` once per run: the first time its result (text) is stored under
    ``key``; later attempts get the stored value without calling ``work``."""
    stored = get_string(key)
    if stored is not None:
        return stored
    value = work()
    put(key, value)
    return value
