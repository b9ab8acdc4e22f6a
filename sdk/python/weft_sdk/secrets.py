"""Secrets (``weft:plugin/secrets``), default deny: only names granted to this plugin
resolve. Declare the ones a plugin may ask for with ``PluginInfo.secret``; the operator
grants them (``--grant``, a task's ``secrets:``)."""

from . import _host


class SecretError(Exception):
    """A secret could not be had: ``reason`` is ``"not-granted"`` (this plugin was not
    granted the name) or ``"not-found"`` (granted, but no value is configured)."""

    def __init__(self, name: str, reason: str):
        self.name = name
        self.reason = reason
        why = "was not granted" if reason == "not-granted" else "has no value configured"
        super().__init__(f"secret `{name}` {why}")


class Secret:
    """A granted secret. Its value stays in the host until :meth:`reveal`; revealed
    values are masked in everything the plugin hands back."""

    def __init__(self, name: str, handle=None, value=None):
        self._name = name
        self._handle = handle
        self._value = value

    @property
    def name(self) -> str:
        """The secret's name (``NAME`` or ``NAME.KEY``)."""
        return self._name

    def reveal(self) -> str:
        """The secret's value."""
        if self._handle is not None:
            return self._handle.reveal()
        return self._value


def get(name: str) -> Secret:
    """A handle to the secret ``name`` (``NAME`` or ``NAME.KEY``); raises
    :class:`SecretError` when it cannot be had."""
    if _host.IN_COMPONENT:
        from componentize_py_types import Err

        try:
            return Secret(name, handle=_host.wit_secrets.get(name))
        except Err as err:
            reason = "not-granted" if err.value == _host.wit_secrets.SecretError.NOT_GRANTED else "not-found"
            raise SecretError(name, reason) from None
    fake = _host.fake
    if name not in fake.granted:
        raise SecretError(name, "not-granted")
    if name not in fake.secrets:
        raise SecretError(name, "not-found")
    return Secret(name, value=fake.secrets[name])


def reveal(name: str) -> str:
    """The value of the secret ``name``; raises :class:`SecretError`."""
    return get(name).reveal()
