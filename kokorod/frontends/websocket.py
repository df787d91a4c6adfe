"""kokorod's own WebSocket protocol on the daemon's port: an adapter onto the
core's ``FrontDoor`` (kokorod.daemon.front_door), on websockets' asyncio server.

The same port carries the OpenAI HTTP API (a connection is sniffed first,
kokorod.frontends.http_sniff) and the core's plain routes (``/healthz``,
``/readyz``, ``/metrics``, the page), answered through websockets'
``process_request`` hook. Every accepted socket is counted by the core
(``door.admit``) before it is read.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from http import HTTPStatus
from typing import Any, AsyncIterator

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from kokorod.daemon.front_door import FrontDoor, PlainResponse, Refusal
from kokorod.daemon.idle import wait_until_idle
from kokorod.daemon.routes import deny
from kokorod.errors import KokorodError
from kokorod.frontends.guarded_connection import REASON_BUFFER, ConnectionBudget, GuardedConnection, guarded_connection
from kokorod.frontends.http_sniff import MakeProtocol
from kokorod.frontends.sockets import bound_send_buffer
from kokorod.protocol.codec import SUBPROTOCOLS, Codec, codec_for_subprotocol
from kokorod.protocol.messages import Ready

log = logging.getLogger("kokorod.websocket")
STREAM_PATH = "/v1/stream"


def to_response(plain: PlainResponse) -> Response:
    headers = Headers({"Content-Type": plain.content_type, "Content-Length": str(len(plain.body)),
                       "Cache-Control": "no-store"})
    for key, value in plain.headers:
        headers[key] = value
    return Response(plain.status, HTTPStatus(plain.status).phrase, headers, plain.body)


def refusal_response(refusal: Refusal) -> Response:
    return to_response(PlainResponse(refusal.status, refusal.message.encode() + b"\n",
                                     headers=(("Retry-After", str(refusal.retry_after_s)),)))


class WebSocketFrontend:
    """The daemon's port: WebSocket sessions, plain routes, and the hand-off of
    HTTP API connections to ``http_protocol(slot)``."""

    def __init__(self, door: FrontDoor, http_protocol: MakeProtocol) -> None:
        self.door = door
        self._http_protocol = http_protocol
        self.server: Server | None = None

    async def listen(self) -> None:
        config = self.door.config
        limits = config.limits
        try:
            self.server = await serve(
                self._handle,
                config.host,
                config.port,
                process_request=self._process_request,
                select_subprotocol=_select_subprotocol,
                compression=None,  # PCM does not compress; deflate would only cost CPU
                max_size=limits.hard_max_message_bytes,
                ping_interval=config.ping_interval_s or None,
                ping_timeout=config.ping_timeout_s or None,
                max_queue=32,
                create_connection=guarded_connection(self._http_protocol, self._connection_budget(),
                                                     admit=lambda peer: self.door.admit(peer, "tcp")),
            )
        except OSError as exc:
            raise KokorodError(f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}",
                               "is another kokorod running? pick another --port") from None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def aclose(self) -> None:
        """Stop listening (after the core drained its sessions: until then
        ``/readyz`` keeps answering 503) and wait for the handlers."""
        if self.server is not None:
            self.server.close(close_connections=False)
            await self.server.wait_closed()

    def _connection_budget(self) -> ConnectionBudget:
        config = self.door.config
        interval, timeout = config.ping_interval_s, config.ping_timeout_s
        return ConnectionBudget(config.limits.max_connection_buffer_bytes,
                                interval + timeout if interval and timeout else None,
                                on_cut=lambda reason: self.door.metrics.connections_cut.labels(reason=reason).inc())

    # -- HTTP on the WebSocket path ------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        try:
            return self._route(connection, request)
        except Exception as exc:
            # Not websockets' own handler: its log line would carry the request,
            # and a request can carry a token.
            log.error("HTTP request failed: %s", type(exc).__name__)
            return to_response(PlainResponse(500, b"internal error\n"))

    def _route(self, connection: ServerConnection | None, request: Request) -> Response | None:
        plain = self.door.plain_route("GET", request)
        if plain is not None:
            return to_response(plain)
        if request.path.partition("?")[0] != STREAM_PATH:
            return to_response(PlainResponse(404, f"not found; the WebSocket endpoint is {STREAM_PATH}\n".encode()))
        denied = deny(self.door.auth, request, origin=True)
        if denied is not None:
            self.door.metrics.connections_refused.labels(reason="auth").inc()
            return to_response(denied)
        refusal = self.door.refusal(getattr(connection, "slot", None))
        if refusal is not None:
            if refusal.reason == "not_ready":  # a slot's refusal was counted when it was taken
                self.door.metrics.connections_refused.labels(reason="not_ready").inc()
            return refusal_response(refusal)
        return None

    # -- WebSocket -----------------------------------------------------------

    async def _handle(self, connection: ServerConnection) -> None:
        bound_send_buffer(connection.transport.get_extra_info("socket"))
        codec = _WithCapacity(codec_for_subprotocol(connection.subprotocol, self.door.limits.max_message_bytes),
                              self.door)
        loop = asyncio.get_running_loop()
        last_message = [loop.time()]
        async with self.door.session(codec, _Transport(connection), uuid.uuid4().hex[:12]) as session:
            if isinstance(connection, GuardedConnection):  # its budget counts the session's queued events too
                connection.held_elsewhere_bytes = lambda: session.outbox.nbytes
            self.door.metrics.connections_total.inc()
            idle = asyncio.create_task(self._close_when_idle(connection, session, last_message),
                                       name=f"kokorod-idle-{session.id}")
            try:
                await session.run(_frames(connection, last_message))
            finally:
                idle.cancel()
                await asyncio.wait([idle])  # unlike `await idle`, never swallows our own cancellation

    async def _close_when_idle(self, connection: ServerConnection, session: Any, last_message: list[float]) -> None:
        timeout = self.door.config.idle_timeout_s
        await wait_until_idle(session, lambda: last_message[0], timeout)
        self.door.metrics.idle_closed.inc()
        log.info("session %s: idle for %g s, closing", session.id, timeout)
        await connection.close(1000, f"idle for {timeout:g} s")


def _select_subprotocol(connection: ServerConnection, offered: list[str]) -> str | None:
    for name in offered:
        if name in SUBPROTOCOLS:
            return name
    # No subprotocol (or only a token entry): msgpack, the default. Answering
    # with none is allowed, and a token entry must never be echoed back.
    return None


async def _frames(connection: ServerConnection, last_message: list[float]) -> AsyncIterator[Any]:
    loop = asyncio.get_running_loop()
    try:
        async for frame in connection:
            last_message[0] = loop.time()
            yield frame
    except ConnectionClosed:
        return


class _WithCapacity:
    """A connection's codec that adds the daemon's capacity (measured by the
    core, not known to the session) to the ``ready`` event it encodes."""

    def __init__(self, codec: Codec, door: FrontDoor) -> None:
        self._codec, self._door = codec, door

    def __getattr__(self, name: str) -> Any:
        return getattr(self._codec, name)

    def encode(self, event: Any) -> bytes | str:
        if isinstance(event, Ready) and event.capacity is None:
            event = dataclasses.replace(event, capacity=self._door.capacity_info())
        return self._codec.encode(event)


class _Transport:
    def __init__(self, connection: ServerConnection) -> None:
        self._connection = connection

    async def send(self, frame: bytes | str) -> None:
        await self._connection.send(frame)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._connection.close(code, reason)

    def cut(self, why: str) -> None:
        """Drop the connection at once (a close frame would queue behind what the client does not read)."""
        if isinstance(self._connection, GuardedConnection):
            self._connection.cut(REASON_BUFFER, why)
        else:
            self._connection.transport.abort()
