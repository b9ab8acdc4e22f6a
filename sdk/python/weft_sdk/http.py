"""Outbound HTTP over ``wasi:http``, to granted hosts only.

Build the plugin with ``http = true`` in ``weft-plugin.toml`` (so the component imports
``wasi:http/outgoing-handler``) and declare the hosts with ``PluginInfo.http_host``; the
operator allows destinations with ``--allow-http``. Python's ``socket``, ``urllib`` and
``http.client`` do not work: weft never grants ``wasi:sockets``."""

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

from . import _host


class HttpError(Exception):
    """The request could not be made or the response not read (a denied destination,
    DNS, a refused connection, a timeout, ...)."""


@dataclass
class Request:
    """An outbound request (what the fake host of :mod:`weft_sdk.testing` sees)."""

    method: str
    url: str
    headers: List[Tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


@dataclass
class Response:
    """A response: status, headers (names lower-case) and body."""

    status: int
    headers: List[Tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> Optional[str]:
        """The first header ``name`` (case-insensitive), or ``None``."""
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)

    @property
    def text(self) -> str:
        """The body as UTF-8 text."""
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body or b"null")


def request(
    method: str,
    url: str,
    headers: Optional[Dict[str, str]] = None,
    body: bytes = b"",
    json_body: Any = None,
) -> Response:
    """Sends one request and reads the whole response. ``json_body`` sends JSON (and
    sets ``content-type``). Raises :class:`HttpError` when no response arrives; a
    response with any status is returned."""
    header_list = [(k.lower(), str(v)) for k, v in (headers or {}).items()]
    if json_body is not None:
        body = json.dumps(json_body).encode("utf-8")
        if not any(k == "content-type" for k, _ in header_list):
            header_list.append(("content-type", "application/json"))
    if isinstance(body, str):
        body = body.encode("utf-8")
    # Without a length wasi:http sends the body chunked, which some servers do not read.
    if body and not any(k == "content-length" for k, _ in header_list):
        header_list.append(("content-length", str(len(body))))
    req = Request(method.upper(), url, header_list, bytes(body))
    if not _host.IN_COMPONENT:
        if _host.fake.http is None:
            raise HttpError(f"no fake HTTP handler for {req.method} {url}")
        return _host.fake.http(req)
    if _host.wit_outgoing_handler is None:
        raise HttpError("this plugin was built without HTTP: set `http = true` in weft-plugin.toml")
    return _send(req)


def get(url: str, headers: Optional[Dict[str, str]] = None) -> Response:
    """``GET url``."""
    return request("GET", url, headers)


def post(url: str, headers: Optional[Dict[str, str]] = None, body: bytes = b"", json_body: Any = None) -> Response:
    """``POST url`` with ``body`` or ``json_body``."""
    return request("POST", url, headers, body, json_body)


def _method(types, name: str):
    known = {
        "GET": types.Method_Get, "HEAD": types.Method_Head, "POST": types.Method_Post,
        "PUT": types.Method_Put, "DELETE": types.Method_Delete, "OPTIONS": types.Method_Options,
        "PATCH": types.Method_Patch,
    }
    return known[name]() if name in known else types.Method_Other(name)


def _send(req: Request) -> Response:  # pragma: no cover - only inside a component
    from componentize_py_types import Err

    types = _host.wit_http_types
    streams = _host.wit_streams
    parts = urlsplit(req.url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise HttpError(f"not an http(s) URL: {req.url}")
    try:
        fields = types.Fields.from_list([(k, v.encode("utf-8")) for k, v in req.headers])
        outgoing = types.OutgoingRequest(fields)
        outgoing.set_method(_method(types, req.method))
        outgoing.set_scheme(types.Scheme_Https() if parts.scheme == "https" else types.Scheme_Http())
        outgoing.set_authority(parts.netloc)
        outgoing.set_path_with_query((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
        body = outgoing.body()
        future = _host.wit_outgoing_handler.handle(outgoing, None)
        # The host may stop taking the body once it sent all of a body of known length (or
        # the request failed): the response says which, so a closed stream is not a failure.
        closed = False
        with body.write() as stream:
            for start in range(0, len(req.body), 4096):
                try:
                    stream.blocking_write_and_flush(req.body[start : start + 4096])
                except Err as err:
                    if not isinstance(err.value, streams.StreamError_Closed):
                        raise
                    closed = True
                    break
        try:
            types.OutgoingBody.finish(body, None)
        except Err:
            if not closed:
                raise
        with future:
            while (result := future.get()) is None:
                with future.subscribe() as ready:
                    ready.block()
        if isinstance(result, Err):
            raise HttpError("the response was already taken")
        inner = result.value
        if isinstance(inner, Err):
            raise HttpError(f"request failed: {inner.value}")
        response = inner.value
        with response:
            status = response.status()
            with response.headers() as header_fields:
                headers = [(k.lower(), v.decode("utf-8", "replace")) for k, v in header_fields.entries()]
            incoming = response.consume()
            chunks = []
            with incoming.stream() as stream:
                while True:
                    try:
                        chunks.append(stream.blocking_read(65536))
                    except Err as err:
                        if isinstance(err.value, streams.StreamError_Closed):
                            break
                        raise HttpError(f"reading the response failed: {err.value}") from None
            types.IncomingBody.finish(incoming).__exit__(None, None, None)
        return Response(status, headers, b"".join(chunks))
    except Err as err:
        raise HttpError(f"request failed: {err.value}") from None
