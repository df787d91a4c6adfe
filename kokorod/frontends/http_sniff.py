"""Which connections are the HTTP API's and which are websockets'.

websockets' server answers only GETs without a body (``process_request``
cannot see a POST body: it refuses it as "unsupported request body"), so the
connection is sniffed first. ``sniffing_connection`` builds websockets'
``ServerConnection`` subclass for ``serve(create_connection=...)``: it holds
back ``connection_made`` (which is where websockets registers its handler
task) and buffers the first bytes until the request line, plus the headers for
the few GETs that may be either (``Upgrade: websocket`` or not), tell who it is
for. An API request gets the transport (``set_protocol``) and the buffered
bytes are replayed into ``kokorod.frontends.http.HttpProtocol``; anything else
is handed to websockets, exactly as if it had seen it first (WebSocket
upgrades, ``/healthz``, ``/readyz``, ``/metrics``, the static page).

It is also where a connection is counted (``admit``: the daemon's one count
of connections, kokorod.daemon.connection_slots): before its first byte is
read. Its slot goes with it to whichever side takes it, and is released when
it closes. A connection over a limit gets ``RESERVE_HEAD_S`` in all to ask for
health or hear why it is refused, then it is cut.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Callable, cast
from urllib.parse import urlsplit

from websockets.asyncio.server import ServerConnection

from kokorod.daemon.connection_slots import RESERVE_HEAD_S, Slot
from kokorod.frontends.http import MAX_HEAD_BYTES, HttpProtocol

# Makes the HTTP API's protocol for a connection, which then owns its slot.
MakeProtocol = Callable[[Slot | None], asyncio.Protocol]
Admit = Callable[[Any], Slot | None]

SNIFF_TIMEOUT_S = 10.0             # first request line (websockets' own open_timeout is 10 s)

# GETs that belong to the HTTP API unless they ask for a WebSocket upgrade.
API_GET_PATHS = ("/v1/models", "/v1/audio/voices")
API_GET_PREFIXES = ("/v1/models/",)
_REQUEST_LINE = re.compile(rb"^\s*([A-Za-z]{1,16}) (\S{1,8192}) HTTP/1\.[01]\r?$")
_HEADERS_END = re.compile(rb"\r?\n\r?\n")

WEBSOCKETS = "websockets"
HTTP = "http"


def sniff(buffer: bytes, max_head: int = MAX_HEAD_BYTES) -> str | None:
    """Who the connection whose first bytes are ``buffer`` is for: ``HTTP``
    (``kokorod.frontends.http``), ``WEBSOCKETS`` (as before), or None: not known yet.

    Any method but GET is HTTP's (websockets only does GET). A GET is HTTP's
    only for the API's paths and without ``Upgrade: websocket``, which needs
    the headers. Whatever is not a request line goes to websockets, which
    rejects it as it always did.
    """
    line_end = buffer.find(b"\n")
    if line_end < 0:
        return WEBSOCKETS if len(buffer) > max_head else None
    match = _REQUEST_LINE.match(buffer[:line_end])
    if match is None:
        return WEBSOCKETS
    method, target = match.group(1), match.group(2)
    if method != b"GET":
        return HTTP
    path = urlsplit(target.decode("latin-1")).path
    if path not in API_GET_PATHS and not path.startswith(API_GET_PREFIXES):
        return WEBSOCKETS
    end = _HEADERS_END.search(buffer, line_end)
    if end is None:
        # h11 answers 431 for a head past its bound.
        return HTTP if len(buffer) > max_head else None
    for raw in buffer[line_end + 1:end.start()].split(b"\n"):
        name, _, value = raw.partition(b":")
        if name.strip().lower() == b"upgrade" and b"websocket" in value.lower():
            return WEBSOCKETS
    return HTTP


def sniffing_connection(make_protocol: MakeProtocol, admit: Admit | None = None) -> Callable[..., ServerConnection]:
    """A ``create_connection`` factory for ``websockets.asyncio.server.serve``
    that sends HTTP API requests to ``make_protocol(slot)`` instead."""

    def create(protocol: Any, server: Any, **kwargs: Any) -> ServerConnection:
        return SniffingConnection(protocol, server, make_protocol=make_protocol, admit=admit, **kwargs)

    return create


class SniffingConnection(ServerConnection):
    """websockets' connection, told about its transport only once the first
    request turns out to be websockets' (see module doc)."""

    def __init__(self, protocol: Any, server: Any, *, make_protocol: MakeProtocol, admit: Admit | None = None,
                 **kwargs: Any) -> None:
        super().__init__(protocol, server, **kwargs)
        self._make_protocol = make_protocol
        self._admit = admit
        self.slot: Slot | None = None  # this connection's place in the daemon's count, while websockets' or sniffing
        self._sniffing = True
        self._sniffed = bytearray()
        self._sniff_transport: asyncio.Transport | None = None
        self._sniff_timer: asyncio.TimerHandle | None = None
        self._first_byte_at = 0.0  # loop time: the HTTP API's head deadline counts from it

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)
        self._sniff_transport = transport
        if self._admit is not None:
            slot = self._admit(transport.get_extra_info("peername"))
            if slot is None:  # no room even to say why (still "sniffing": websockets never hears of it)
                transport.abort()
                return
            self.slot = slot
            slot.on_evict = transport.abort
            if slot.refusal is not None:  # health or a refusal only: a short life, whoever takes it
                self.loop.call_later(RESERVE_HEAD_S, transport.abort)
        self._sniff_timer = self.loop.call_later(SNIFF_TIMEOUT_S, transport.abort)

    def data_received(self, data: bytes) -> None:
        if not self._sniffing:
            super().data_received(data)
            return
        if not self._sniffed:
            self._first_byte_at = self.loop.time()
        self._sniffed += data
        route = sniff(bytes(self._sniffed))
        if route is None:
            return
        self._sniffing = False
        if self._sniff_timer is not None:
            self._sniff_timer.cancel()
        transport, buffered = self._sniff_transport, bytes(self._sniffed)
        assert transport is not None
        self._sniffed.clear()
        if route == HTTP:
            slot, self.slot = self.slot, None  # the HTTP protocol releases it
            proto = self._make_protocol(slot)
            transport.set_protocol(proto)
            proto.connection_made(transport)
            if isinstance(proto, HttpProtocol):
                proto.head_started_at(self._first_byte_at)
            proto.data_received(buffered)
        else:
            super().connection_made(transport)
            super().data_received(buffered)

    def eof_received(self) -> bool | None:
        if self._sniffing:
            return None  # closed before saying what it wanted: nothing to answer
        return super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.slot is not None:
            self.slot.release()
            self.slot = None
        if self._sniffing:
            # websockets never saw this connection: nothing of it to clean up.
            self._sniffing = False
            if self._sniff_timer is not None:
                self._sniff_timer.cancel()
            return
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        if not self._sniffing:
            super().pause_writing()

    def resume_writing(self) -> None:
        if not self._sniffing:
            super().resume_writing()
