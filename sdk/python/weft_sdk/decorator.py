"""Form decorators: subclass :class:`Decorator` and export it with
:func:`export_decorator`. A decorator shapes a submission (its params and run-scoped
secrets) before the run exists; raising refuses the submission."""

import json
import traceback
from typing import Any, Dict, List, Optional, Tuple

from . import _host, log
from .info import ParamValue, PluginInfo, info_to_raw, param_value_from_raw, param_value_to_raw

try:  # pragma: no cover - only inside a component built for the form-decorator world
    from wit_world.exports import form_decorator_plugin as _wit_decorator
except ImportError:
    _wit_decorator = None


class Refuse(Exception):
    """Raised from ``decorate``: refuses the submission with this message (no run is
    created). Any other exception refuses it too, naming the exception."""


class DecoratorInfo:
    """A decorator's id (what ``spec.decorators[].id`` names), version, description,
    the JSON Schema its ``input`` must match, and the secrets and hosts it may use."""

    def __init__(self, name: str, version: str):
        self.info = PluginInfo(name, version)
        self.schema: Optional[Dict[str, Any]] = None

    def description(self, text: str) -> "DecoratorInfo":
        """One line saying what it does."""
        self.info.description(text)
        return self

    def secret(self, name: str) -> "DecoratorInfo":
        """A secret it may read (when the pipeline entry's ``secrets:`` grants it)."""
        self.info.secret(name)
        return self

    def http_host(self, host: str) -> "DecoratorInfo":
        """A host it may call."""
        self.info.http_host(host)
        return self

    def input_schema(self, schema: Dict[str, Any]) -> "DecoratorInfo":
        """The JSON Schema (as a dict) the host validates ``input`` against before
        ``decorate`` runs. Without one any input is accepted."""
        self.schema = schema
        return self


class Form:
    """The form state: the run's params so far, and run-scoped secrets to add."""

    def __init__(self, params: Optional[Dict[str, ParamValue]] = None):
        self.params: Dict[str, ParamValue] = dict(params or {})
        self.secrets: List[Tuple[str, str]] = []

    def get(self, name: str) -> Optional[ParamValue]:
        """The param ``name`` (a str, list or dict), or ``None``."""
        return self.params.get(name)

    def str(self, name: str) -> Optional[str]:
        """The string param ``name``, or ``None``."""
        value = self.params.get(name)
        return value if isinstance(value, str) else None

    def set(self, name: str, value: ParamValue) -> None:
        """Sets the param ``name`` (the pipeline must declare it with that type)."""
        self.params[name] = value

    def remove(self, name: str) -> Optional[ParamValue]:
        """Removes the param ``name`` (its default then applies)."""
        return self.params.pop(name, None)

    def set_secret(self, name: str, value: str) -> None:
        """Adds a run-scoped secret ``NAME`` or ``NAME.KEY``: masked like any secret,
        reaching a task only through a grant."""
        self.secrets.append((name, value))


class Input:
    """The decorator's ``input`` from the pipeline, as JSON (``{}`` when absent)."""

    def __init__(self, value: Any):
        self.value = value

    @classmethod
    def parse_text(cls, text: str) -> "Input":
        """Parses the input's JSON text."""
        return cls(json.loads(text or "{}"))

    def get(self, key: str) -> Any:
        """The top-level field ``key``, or ``None``."""
        return self.value.get(key) if isinstance(self.value, dict) else None

    def str(self, key: str) -> Optional[str]:
        """The top-level string field ``key``, or ``None``."""
        value = self.get(key)
        return value if isinstance(value, str) else None


class Decorator:
    """A form decorator."""

    def describe(self) -> DecoratorInfo:
        """Its id, version, input schema and capabilities."""
        raise NotImplementedError

    def decorate(self, form: Form, input: Input) -> None:
        """Changes ``form`` in place; raise :class:`Refuse` to refuse the submission."""
        raise NotImplementedError


def decorate_form(decorator: Decorator, form: Form, input_text: str) -> Optional[str]:
    """Runs ``decorator`` on ``form``; returns the refusal message, or ``None``."""
    try:
        decorator.decorate(form, Input.parse_text(input_text))
    except Refuse as refusal:
        return str(refusal)
    except Exception as err:  # noqa: BLE001 - a plugin's bug refuses the submission
        log.error("".join(traceback.format_exception(err)).rstrip())
        return f"{type(err).__name__}: {err}"
    return None


def export_decorator(decorator_class):
    """Exports ``decorator_class`` as the component's
    ``weft:plugin/form-decorator-plugin``::

        FormDecoratorPlugin = export_decorator(Stamp)
    """

    class FormDecoratorPlugin:
        def __init__(self):
            self._decorator = decorator_class()

        def describe(self):
            described = self._decorator.describe()
            schema = "" if described.schema is None else json.dumps(described.schema)
            return _wit_decorator.DecoratorInfo(info_to_raw(_host.wit_types, described.info), schema)

        def decorate(self, form_state, input):
            from componentize_py_types import Err

            form = Form({name: param_value_from_raw(value) for name, value in form_state})
            refusal = decorate_form(self._decorator, form, input)
            if refusal is not None:
                raise Err(refusal)
            params = [(name, param_value_to_raw(_host.wit_types, value)) for name, value in form.params.items()]
            return _wit_decorator.Decoration(params, list(form.secrets))

    FormDecoratorPlugin.decorator_class = decorator_class
    return FormDecoratorPlugin
