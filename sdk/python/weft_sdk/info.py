"""What a plugin says about itself: :class:`PluginInfo` with its :class:`Param` s,
results, :class:`Workspace` s, secrets and HTTP hosts. Builders return ``self`` so a
description reads as one expression, as in the Rust SDK."""

from typing import Dict, Iterable, List, Optional, Tuple, Union

ParamValue = Union[str, List[str], Dict[str, str]]


class Param:
    """One parameter a plugin accepts: a string, an array of strings or an object with
    string values. Without a default it is required."""

    def __init__(self, name: str, type_: str):
        self.name = name
        self.type = type_
        self.description_text = ""
        self.default_value: Optional[ParamValue] = None
        self.allowed: List[str] = []

    @classmethod
    def string(cls, name: str) -> "Param":
        """A string param."""
        return cls(name, "str")

    @classmethod
    def array(cls, name: str) -> "Param":
        """An array-of-strings param (``$(params.p[*])``)."""
        return cls(name, "array")

    @classmethod
    def object(cls, name: str) -> "Param":
        """An object param with string values (``$(params.p.key)``)."""
        return cls(name, "object")

    def description(self, text: str) -> "Param":
        """What the param means."""
        self.description_text = text
        return self

    def default(self, value: ParamValue) -> "Param":
        """The value used when the pipeline does not set it (which makes it optional)."""
        self.default_value = value
        return self

    def one_of(self, values: Iterable[str]) -> "Param":
        """The only string values allowed."""
        self.allowed = list(values)
        return self


class Workspace:
    """A workspace the plugin wants mounted."""

    def __init__(self, name: str):
        self.name = name
        self.description_text = ""
        self.is_read_only = False
        self.is_optional = False

    def description(self, text: str) -> "Workspace":
        """What the workspace holds."""
        self.description_text = text
        return self

    def read_only(self) -> "Workspace":
        """The plugin only reads it."""
        self.is_read_only = True
        return self

    def optional(self) -> "Workspace":
        """The plugin runs without it."""
        self.is_optional = True
        return self


class PluginInfo:
    """A plugin's name, version, description, params, results and the capabilities it
    needs (secrets it may ask for, hosts it may call, workspaces). The host grants the
    intersection of these and the operator's policy."""

    def __init__(self, name: str, version: str):
        self.name = name
        self.version = version
        self.description_text = ""
        self.params: List[Param] = []
        self.results: List[Tuple[str, str]] = []
        self.is_results_fixed = False
        self.secrets: List[str] = []
        self.http_hosts: List[str] = []
        self.workspaces: List[Workspace] = []

    def description(self, text: str) -> "PluginInfo":
        """One line saying what the plugin does."""
        self.description_text = text
        return self

    def param(self, param: Param) -> "PluginInfo":
        """Adds a param."""
        self.params.append(param)
        return self

    def result(self, name: str, description: str = "") -> "PluginInfo":
        """Adds a result the plugin may produce."""
        self.results.append((name, description))
        return self

    def results_fixed(self, fixed: bool = True) -> "PluginInfo":
        """Says the results listed are all there are: references to others are
        validation errors."""
        self.is_results_fixed = fixed
        return self

    def secret(self, name: str) -> "PluginInfo":
        """A secret the plugin may ask for (``NAME`` or ``NAME.KEY``)."""
        self.secrets.append(name)
        return self

    def http_host(self, host: str) -> "PluginInfo":
        """A host (``host``, ``host:port`` or ``*.suffix``) the plugin may call."""
        self.http_hosts.append(host)
        return self

    def workspace(self, workspace: Workspace) -> "PluginInfo":
        """A workspace the plugin reads or writes."""
        self.workspaces.append(workspace)
        return self


def param_value_to_raw(types, value: ParamValue):
    """A Python param value as the WIT ``param-value`` variant."""
    if isinstance(value, str):
        return types.ParamValue_Str(value)
    if isinstance(value, dict):
        return types.ParamValue_Object([(str(k), str(v)) for k, v in value.items()])
    return types.ParamValue_Array([str(v) for v in value])


def param_value_from_raw(raw) -> ParamValue:
    """The WIT ``param-value`` variant as a Python value (str, list or dict)."""
    value = raw.value
    if isinstance(value, str):
        return value
    if value and isinstance(value[0], tuple):
        return dict(value)
    # An empty list is ambiguous between array and object: the class name says which.
    return {} if type(raw).__name__.endswith("Object") else list(value)


def info_to_raw(types, info: PluginInfo):
    """A :class:`PluginInfo` as the WIT ``plugin-info`` record."""
    kinds = {"str": types.ParamType.STR, "array": types.ParamType.ARRAY, "object": types.ParamType.OBJECT}
    params = [
        types.ParamSpec(
            p.name,
            p.description_text,
            kinds[p.type],
            None if p.default_value is None else param_value_to_raw(types, p.default_value),
            list(p.allowed),
        )
        for p in info.params
    ]
    return types.PluginInfo(
        info.name,
        info.version,
        info.description_text,
        params,
        [types.ResultSpec(name, description) for name, description in info.results],
        info.is_results_fixed,
        types.Capabilities(
            list(info.secrets),
            list(info.http_hosts),
            [
                types.WorkspaceSpec(w.name, w.description_text, w.is_read_only, w.is_optional)
                for w in info.workspaces
            ],
        ),
    )
