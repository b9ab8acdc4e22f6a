"""The host's imports, or a stand-in for plain CPython.

Inside a component, componentize-py generates the ``wit_world`` package from the world
the plugin was built for (``task``, ``reporter``, ``form-decorator`` or ``gate``, with or without
``wasi:http``). Its modules must be imported now, at module import: componentize-py
snapshots the interpreter after importing the app, and a module imported later does not
exist. Outside a component (unit tests on plain CPython) there is no ``wit_world``: the
SDK then talks to :mod:`weft_sdk.testing`'s fake host, so plugin logic can be tested with
``python -m unittest``.
"""

try:  # pragma: no cover - only inside a component
    from wit_world.imports import log as wit_log
    from wit_world.imports import secrets as wit_secrets

    IN_COMPONENT = True
except ImportError:
    wit_log = wit_secrets = None
    IN_COMPONENT = False

# `weft:plugin/types` is `types`, unless the world also imports `wasi:http/types`: then
# componentize-py qualifies both names (`weft_plugin_types`, `wasi_http_types`).
try:  # pragma: no cover - only inside a component
    from wit_world.imports import weft_plugin_types as wit_types
except ImportError:
    try:
        from wit_world.imports import types as wit_types
    except ImportError:
        wit_types = None

try:  # pragma: no cover - only the task world imports checkpoints
    from wit_world.imports import checkpoint as wit_checkpoint
except ImportError:
    wit_checkpoint = None

try:  # pragma: no cover - only worlds built with `http = true`
    from wit_world.imports import outgoing_handler as wit_outgoing_handler
    from wit_world.imports import streams as wit_streams
    from wit_world.imports import wasi_http_types as wit_http_types
except ImportError:
    wit_outgoing_handler = wit_streams = wit_http_types = None


class FakeHost:
    """What the host would do, for unit tests: logs are kept, secrets and checkpoints
    come from dictionaries. :mod:`weft_sdk.testing` installs one per test call."""

    def __init__(self, secrets=None, checkpoints=None, granted=None, http=None):
        self.logs = []
        #: Answers outbound requests: ``http(Request) -> Response``.
        self.http = http
        self.secrets = dict(secrets or {})
        self.granted = set(self.secrets) if granted is None else set(granted)
        self.checkpoints = dict(checkpoints or {})


#: The fake host in use outside a component (``None`` inside one).
fake = None if IN_COMPONENT else FakeHost()
