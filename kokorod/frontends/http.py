"""Plain HTTP/1.1 on the daemon's own port, beside websockets.

:class:`HttpProtocol` is a small HTTP/1.1 server on ``h11`` (sans-I/O):
keep-alive and pipelining, bounded head (431) and body (413), ``Expect:
100-continue``, chunked streaming responses with write flow control
(``pause_writing``/``resume_writing``), and deadlines for slow clients. A client
that closes its side (EOF) or whose socket fails is gone: the request's task is
cancelled at once, which is how synthesis stops when nobody listens.

Connections reach it through ``kokorod.frontends.http_sniff``, which decides
from a connection's first bytes whether it is this module's or websockets'.
"""

from __future__ import annotations

import asyncio
import logging
from http import HTTPStatus
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, cast
from urllib.parse import urlsplit

import h11

log = logging.getLogger("kokorod.http")

# Every time-out bounds a total duration, never the gap between bytes: a client
# sending one byte every few seconds (slowloris) is cut at the deadline.
MAX_HEAD_BYTES = 16 * 1024         # request line + headers, however they arrive (431 beyond)
HEAD_TIMEOUT_S = 15.0              # the whole head, from its first byte (from accept for the first): else 408
BODY_TIMEOUT_S = 30.0              # the whole body, from the end of the head: else 408
KEEPALIVE_IDLE_S = 15.0            # idle keep-alive connection (no byte of a next request): closed
WRITE_STALL_S = 60.0               # response bytes not taken by the client for this long: gone
READ_BUFFER_BYTES = 256 * 1024     # unprocessed input (pipelining) before reading pauses
WRITE_HIGH_WATER = 64 * 1024       # transport buffer above which we wait for the client

# -- the application side ----------------------------------------------------


@dataclass
class HttpRequest:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    http_version: str = "1.1"
    slot: Any = None  # the connection's kokorod.daemon.connection_slots.Slot (None: not counted)

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    def header(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return default


@dataclass
class HttpResponse:
    """A whole response (``Content-Length`` framed)."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


class ClientGone(Exception):
    """The client closed the connection or stopped reading."""


class App(Protocol):
    def max_body_bytes(self) -> int: ...
    def precheck(self, request: HttpRequest) -> HttpResponse | None:
        """Before the body is read (and ``100 Continue`` sent): a response to
        refuse the request with (auth, not found, not ready), or None."""
    def error(self, status: int, message: str) -> HttpResponse:
        """A protocol-level error (400, 408, 413, 431) in the app's shape."""
    async def handle(self, request: HttpRequest, responder: "Responder") -> None: ...


class Responder:
    """How a handler answers one request: either ``respond`` once, or
    ``start`` + ``send``... + ``end`` for a streamed (chunked) body."""

    def __init__(self, proto: "HttpProtocol", request: HttpRequest) -> None:
        self._proto = proto
        self._request = request
        self.status: int | None = None
        self.sent_bytes = 0
        self.ended = False

    @property
    def started(self) -> bool:
        return self.status is not None

    async def respond(self, response: HttpResponse) -> None:
        headers = [*response.headers, ("Content-Length", str(len(response.body)))]
        await self.start(response.status, headers)
        if self._request.method != "HEAD":
            await self.send(response.body)
        await self.end()

    async def start(self, status: int, headers: list[tuple[str, str]]) -> None:
        assert self.status is None, "response already started"
        self.status = status
        if self._proto.draining or not self._proto.body_complete:
            headers = [*headers, ("Connection", "close")]
        try:
            reason = HTTPStatus(status).phrase.encode()
        except ValueError:
            reason = b""
        self._proto.send_event(h11.Response(status_code=status, headers=[("Server", "kokorod"), *headers], reason=reason))
        await self._proto.drain()

    async def send(self, data: bytes) -> None:
        if data:
            self.sent_bytes += len(data)
            self._proto.send_event(h11.Data(data=data))
            await self._proto.drain()

    async def end(self) -> None:
        self.ended = True
        self._proto.send_event(h11.EndOfMessage())
        await self._proto.drain()

    def abort(self) -> None:
        """Cut the connection: a streamed body ends without its last chunk, so
        the client sees a truncated response rather than a complete one."""
        self._proto.abort()


# -- the protocol ------------------------------------------------------------


class HttpProtocol(asyncio.Protocol):
    """One HTTP/1.1 connection, requests served one after another."""

    def __init__(self, app: App, *, slot: Any = None,
                 on_close: Callable[["HttpProtocol"], None] | None = None,
                 on_timeout: Callable[[str], None] = lambda phase: None,
                 head_timeout_s: float | None = None, body_timeout_s: float | None = None) -> None:
        self.app = app
        self.slot = slot  # released when the connection closes
        self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        self._transport: asyncio.Transport | None = None
        self._readable = asyncio.Event()
        self._writable: asyncio.Future[None] | None = None
        self._paused_reading = False
        self._paused_writing = False
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._on_close = on_close
        self.draining = False
        self.idle = True  # between requests (a drain may close it)
        self.body_complete = True
        self._on_timeout = on_timeout  # counts a deadline's cut (metrics), by phase
        # None: the module's defaults, read when used (tests patch them).
        self._head_timeout_s, self._body_timeout_s = head_timeout_s, body_timeout_s
        self._head_deadline: float | None = None  # loop time; set by a request's first byte

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        self._task = asyncio.get_running_loop().create_task(self._serve(), name="kokorod-http")

    @property
    def head_timeout_s(self) -> float:
        return HEAD_TIMEOUT_S if self._head_timeout_s is None else self._head_timeout_s

    @property
    def body_timeout_s(self) -> float:
        return BODY_TIMEOUT_S if self._body_timeout_s is None else self._body_timeout_s

    def head_started_at(self, when: float) -> None:
        """The first head's first byte arrived at ``when`` (loop time), before
        this protocol had the connection (kokorod.frontends.http_sniff)."""
        self._head_deadline = when + self.head_timeout_s

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        if self._head_deadline is None and data:  # a next request's first byte: its head is due from now
            self._head_deadline = asyncio.get_running_loop().time() + self.head_timeout_s
        try:
            self._conn.receive_data(data)
        except RuntimeError:  # after EOF: ignore
            return
        if len(self._conn.trailing_data[0]) > READ_BUFFER_BYTES and not self._paused_reading:
            assert self._transport is not None
            self._transport.pause_reading()
            self._paused_reading = True
        self._readable.set()

    def eof_received(self) -> bool | None:
        # A client that closes its side is gone: its response (if any) is
        # abandoned at once. Returning None lets the transport close.
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self.slot is not None:
            self.slot.release()
            self.slot = None
        self._readable.set()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        if self._task is not None and not self._task.done() and asyncio.current_task() is not self._task:
            self._task.cancel()
        if self._on_close is not None:
            self._on_close(self)

    def pause_writing(self) -> None:
        self._paused_writing = True

    def resume_writing(self) -> None:
        self._paused_writing = False
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    # writing

    @property
    def closed(self) -> bool:
        return self._closed

    def send_event(self, event: Any) -> None:
        if self._closed:
            raise ClientGone()
        data = self._conn.send(event)
        if data:
            assert self._transport is not None
            self._transport.write(data)

    async def drain(self) -> None:
        """Wait until the client has taken enough of what was written."""
        if self._closed:
            raise ClientGone()
        if not self._paused_writing:
            return
        self._writable = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(self._writable, WRITE_STALL_S)
        except asyncio.TimeoutError:
            self.abort()
            raise ClientGone() from None
        finally:
            self._writable = None
        if self._closed:
            raise ClientGone()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def close_if_idle(self) -> None:
        """Shutdown: an idle keep-alive connection is closed now, a busy one
        after its response."""
        self.draining = True
        if self.idle and self._transport is not None:
            self._transport.close()

    # reading

    async def _next_event(self, deadline: Callable[[], float]) -> Any:
        """The next h11 event; ``asyncio.TimeoutError`` past ``deadline()`` (loop
        time, read again after each wake-up: a head's first byte moves it)."""
        loop = asyncio.get_running_loop()
        while True:
            event = self._conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            if self._closed:
                return h11.ConnectionClosed()
            if self._paused_reading and self._transport is not None:
                self._paused_reading = False
                self._transport.resume_reading()
            self._readable.clear()
            remaining = deadline() - loop.time()
            if remaining <= 0:
                raise asyncio.TimeoutError()
            await asyncio.wait_for(self._readable.wait(), remaining)

    async def _serve(self) -> None:
        try:
            while not self._closed:
                if not await self._one_request():
                    break
        except ClientGone:
            pass
        except asyncio.CancelledError:
            pass  # connection_lost: the client is gone
        except Exception:
            log.exception("HTTP connection failed")
        finally:
            if self._transport is not None and not self._closed:
                self._transport.close()

    async def _one_request(self) -> bool:
        """Serve one request; False when the connection should close."""
        self.idle = True
        if self.draining:
            return False
        loop = asyncio.get_running_loop()
        idle_until = loop.time() + KEEPALIVE_IDLE_S
        phase = "head"
        try:
            event = await self._next_event(lambda: self._head_deadline if self._head_deadline is not None
                                           else idle_until)
            self.idle = False
            if not isinstance(event, h11.Request):
                return False  # ConnectionClosed
            if _head_bytes(event) > MAX_HEAD_BYTES:
                # h11 bounds only a head that arrives in pieces; one sent whole is measured here.
                self.body_complete = False
                await Responder(self, HttpRequest("GET", "/", [])).respond(self.app.error(431, "request head too large"))
                return False
            request = HttpRequest(
                event.method.decode("ascii", "replace"), event.target.decode("latin-1"),
                [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in event.headers],
                http_version=event.http_version.decode("ascii", "replace"), slot=self.slot)
            responder = Responder(self, request)
            length = request.header("content-length")
            has_body = request.header("transfer-encoding") is not None or (length is not None and length != "0")
            early = self.app.precheck(request)
            limit = self.app.max_body_bytes()
            if early is None and length is not None and length.isdigit() and int(length) > limit:
                early = self.app.error(413, f"request body over {limit} bytes")
            if early is not None and has_body:
                # Refused before its body was read: answer and close, rather
                # than read (or ask for, with 100 Continue) what is not wanted.
                self.body_complete = False
                await responder.respond(early)
                return False
            if has_body and self._conn.they_are_waiting_for_100_continue:
                self.send_event(h11.InformationalResponse(status_code=100, headers=[]))
            body = bytearray()
            phase, body_until = "body", loop.time() + self.body_timeout_s
            while True:
                part = await self._next_event(lambda: body_until)
                if isinstance(part, h11.Data):
                    body += part.data
                    if len(body) > limit:
                        self.body_complete = False
                        await responder.respond(self.app.error(413, f"request body over {limit} bytes"))
                        return False
                elif isinstance(part, h11.EndOfMessage):
                    break
                else:
                    return False
            self.body_complete = True
            request.body = bytes(body)
            if early is not None:
                await responder.respond(early)
            else:
                await self.app.handle(request, responder)
            if not responder.ended:
                return False
            return self._next_cycle()
        except asyncio.TimeoutError:
            started = not self.idle or self._head_deadline is not None
            if started:
                self._on_timeout(phase)
            if started and self._conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                self.body_complete = False
                await Responder(self, HttpRequest("GET", "/", [])).respond(self.app.error(
                    408, f"request {phase} not complete within "
                    f"{self.head_timeout_s if phase == 'head' else self.body_timeout_s:g} s"))
            return False
        except h11.RemoteProtocolError as exc:
            if self._conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                self.body_complete = False
                status = exc.error_status_hint
                await Responder(self, HttpRequest("GET", "/", [])).respond(
                    self.app.error(status, "request head too large" if status == 431 else f"bad request: {exc}"))
            return False

    def _next_cycle(self) -> bool:
        if self._conn.our_state is h11.DONE and self._conn.their_state is h11.DONE and not self.draining:
            self._conn.start_next_cycle()
            # The next head is due from its first byte (pipelined bytes already here count as one).
            self._head_deadline = None
            if self._conn.trailing_data[0]:
                self._head_deadline = asyncio.get_running_loop().time() + self.head_timeout_s
            return True
        return False


def _head_bytes(request: h11.Request) -> int:
    """About what ``request``'s head took on the wire (its line and headers)."""
    return (len(request.method) + len(request.target) + 12
            + sum(len(name) + len(value) + 4 for name, value in request.headers.raw_items()))
