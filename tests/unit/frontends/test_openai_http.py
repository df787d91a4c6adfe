"""The HTTP plumbing under the OpenAI API: sniffing which requests are
websockets' and which are ours, and the h11 server (keep-alive, limits,
streaming, flow control, a vanished client), all over fake transports."""

from __future__ import annotations

import asyncio
from typing import Any

import h11
import pytest
from websockets.server import ServerProtocol

from kokorod.frontends import http, http_sniff
from kokorod.frontends.http import HttpProtocol, HttpRequest, HttpResponse, Responder
from kokorod.frontends.http_sniff import HTTP, WEBSOCKETS, sniff


@pytest.mark.parametrize("head,route", [
    (b"POST /v1/audio/speech HTTP/1.1\r\n", HTTP),                   # decided on the request line
    (b"OPTIONS /v1/audio/speech HTTP/1.1\r\n", HTTP),
    (b"PUT /anything HTTP/1.1\r\n", HTTP),
    (b"GET /v1/stream HTTP/1.1\r\n", WEBSOCKETS),
    (b"GET /healthz HTTP/1.1\r\n", WEBSOCKETS),
    (b"GET / HTTP/1.1\r\n", WEBSOCKETS),
    (b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n", HTTP),
    (b"GET /v1/models/tts-1 HTTP/1.1\r\nHost: x\r\n\r\n", HTTP),
    (b"GET /v1/audio/voices?x=1 HTTP/1.1\r\nHost: x\r\n\r\n", HTTP),
    (b"GET /v1/models HTTP/1.1\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n\r\n", WEBSOCKETS),
    (b"\x16\x03\x01\x02\x00 garbage\n", WEBSOCKETS),                # not HTTP: websockets rejects it as before
])
def test_sniff_routes(head: bytes, route: str) -> None:
    assert sniff(head) == route


@pytest.mark.parametrize("head", [b"", b"POST /v1/audio/sp", b"GET /v1/models HTTP/1.1\r\nHost: x\r\n"])
def test_sniff_waits_for_enough(head: bytes) -> None:
    assert sniff(head) is None


def test_sniff_is_bounded() -> None:
    assert sniff(b"G" * (http.MAX_HEAD_BYTES + 1)) == WEBSOCKETS
    big = b"GET /v1/models HTTP/1.1\r\nX: " + b"a" * http.MAX_HEAD_BYTES
    assert sniff(big) == HTTP  # h11 answers 431


class FakeTransport:
    def __init__(self) -> None:
        self.out = bytearray()
        self.protocol: Any = None
        self.closed = False
        self.aborted = False
        self.reading = True

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.out += data

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self._lose()

    def abort(self) -> None:
        self.aborted = True
        self._lose()

    def _lose(self) -> None:
        if not self.closed:
            self.closed = True
            if self.protocol is not None:
                asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)


class EchoApp:
    """Answers with the body; /stream streams until released; /slow never ends."""

    def __init__(self, limit: int = 1000) -> None:
        self.limit = limit
        self.handled: list[HttpRequest] = []
        self.release = asyncio.Event()
        self.cancelled = asyncio.Event()

    def max_body_bytes(self) -> int:
        return self.limit

    def precheck(self, request: HttpRequest) -> HttpResponse | None:
        if request.path == "/deny":
            return HttpResponse(401, b"no")
        return None

    def error(self, status: int, message: str) -> HttpResponse:
        return HttpResponse(status, message.encode())

    async def handle(self, request: HttpRequest, responder: Responder) -> None:
        self.handled.append(request)
        if request.path == "/stream":
            await responder.start(200, [("Content-Type", "application/octet-stream")])
            await responder.send(b"first")
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
            await responder.send(b"second")
            await responder.end()
            return
        await responder.respond(HttpResponse(200, b"got:" + request.body))


def client_events(data: bytes, method: str = "POST") -> list[Any]:
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
    if method == "POST":
        conn.send(h11.Data(data=b""))
    conn.receive_data(data)
    events = []
    while True:
        ev = conn.next_event()
        if ev is h11.NEED_DATA or isinstance(ev, h11.ConnectionClosed):
            break
        events.append(ev)
        if isinstance(ev, h11.EndOfMessage):
            if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                conn.start_next_cycle()
                conn.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
                if method == "POST":
                    conn.send(h11.Data(data=b""))
            else:
                break
    return events


def responses(data: bytes) -> list[tuple[int, bytes]]:
    """Parse pipelined responses (status, body) out of raw server output."""
    out = []
    rest = bytes(data)
    while rest:
        conn = h11.Connection(h11.CLIENT)
        conn.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
        conn.send(h11.EndOfMessage())
        conn.receive_data(rest)
        status, body = 0, b""
        while True:
            ev = conn.next_event()
            if isinstance(ev, h11.InformationalResponse):
                continue
            if isinstance(ev, h11.Response):
                status = ev.status_code
            elif isinstance(ev, h11.Data):
                body += ev.data
            elif isinstance(ev, h11.EndOfMessage):
                break
            elif ev is h11.NEED_DATA:
                return out + [(status, body + b"<truncated>")]
        out.append((status, body))
        rest = conn.trailing_data[0]
    return out


async def open_http(app: Any) -> tuple[HttpProtocol, FakeTransport]:
    transport = FakeTransport()
    proto = HttpProtocol(app)
    transport.protocol = proto
    proto.connection_made(transport)  # type: ignore[arg-type]
    return proto, transport


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_keep_alive_and_pipelined_requests() -> None:
    app = EchoApp()
    proto, transport = await open_http(app)
    proto.data_received(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                        b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nde")
    await settle()
    assert responses(transport.out) == [(200, b"got:abc"), (200, b"got:de")]
    assert not transport.closed
    proto.data_received(b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nfg\r\n0\r\n\r\n")
    await settle()
    assert responses(transport.out)[-1] == (200, b"got:fg")
    transport.close()
    await settle()


async def test_body_over_the_limit_is_413_and_closes() -> None:
    app = EchoApp(limit=10)
    proto, transport = await open_http(app)
    proto.data_received(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n")
    await settle()
    assert responses(transport.out) == [(413, b"request body over 10 bytes")]
    assert b"connection: close" in transport.out.lower()
    assert transport.closed and not app.handled


async def test_chunked_body_over_the_limit_is_413() -> None:
    app = EchoApp(limit=10)
    proto, transport = await open_http(app)
    proto.data_received(b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n")
    await settle()
    assert responses(transport.out)[0][0] == 413 and transport.closed and not app.handled


async def test_expect_100_continue() -> None:
    app = EchoApp()
    proto, transport = await open_http(app)
    proto.data_received(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
    await settle()
    assert transport.out.startswith(b"HTTP/1.1 100 ")
    proto.data_received(b"hi")
    await settle()
    assert responses(transport.out) == [(200, b"got:hi")]
    transport.close()
    await settle()


async def test_precheck_refuses_before_the_body() -> None:
    app = EchoApp()
    proto, transport = await open_http(app)
    proto.data_received(b"POST /deny HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    await settle()
    assert responses(transport.out) == [(401, b"no")]  # no 100 Continue: the body is not wanted
    assert transport.closed and not app.handled


async def test_precheck_on_a_bodiless_request_keeps_the_connection() -> None:
    app = EchoApp()
    proto, transport = await open_http(app)
    proto.data_received(b"GET /deny HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
    await settle()
    assert responses(transport.out) == [(401, b"no"), (200, b"got:")]
    assert not transport.closed
    transport.close()
    await settle()


async def test_malformed_and_oversized_heads() -> None:
    app = EchoApp()
    proto, transport = await open_http(app)
    proto.data_received(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n")
    await settle()
    assert responses(transport.out)[0][0] == 400 and transport.closed
    proto, transport = await open_http(app)
    proto.data_received(b"POST /a HTTP/1.1\r\nHost: x\r\nX: " + b"a" * (http.MAX_HEAD_BYTES + 10))
    await settle()
    assert responses(transport.out)[0][0] == 431 and transport.closed


async def test_streamed_body_is_chunked_and_a_vanished_client_cancels_the_handler() -> None:
    app = EchoApp()
    proto, transport = await open_http(app)
    proto.data_received(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    await settle()
    assert b"transfer-encoding: chunked" in transport.out.lower() and transport.out.endswith(b"5\r\nfirst\r\n")
    proto.eof_received()  # the client closed its side: gone
    transport.close()
    await asyncio.wait_for(app.cancelled.wait(), 1)
    assert proto.closed


async def test_writes_wait_for_a_slow_client(monkeypatch: pytest.MonkeyPatch) -> None:
    app = EchoApp()
    proto, transport = await open_http(app)
    proto.pause_writing()  # the transport's buffer is full
    proto.data_received(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    await settle()
    assert b"first" not in transport.out  # head written, then waiting before the body
    proto.resume_writing()
    await settle()
    assert transport.out.endswith(b"5\r\nfirst\r\n")
    app.release.set()
    await settle()
    assert responses(transport.out) == [(200, b"firstsecond")]
    # A client that stops reading for good is dropped after WRITE_STALL_S.
    monkeypatch.setattr(http, "WRITE_STALL_S", 0.05)
    proto.pause_writing()
    app.release.clear()
    proto.data_received(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.sleep(0.2)
    assert transport.aborted


async def test_idle_keep_alive_connection_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "KEEPALIVE_IDLE_S", 0.05)
    proto, transport = await open_http(EchoApp())
    await asyncio.sleep(0.2)
    assert transport.closed


async def test_close_if_idle_for_shutdown() -> None:
    proto, transport = await open_http(EchoApp())
    proto.close_if_idle()
    await settle()
    assert transport.closed


# -- the sniffing websockets connection ---------------------------------------


class FakeServer:
    def __init__(self) -> None:
        self.handled: list[Any] = []
        self.handler_tasks: set[asyncio.Task[None]] = set()

    async def handler(self, connection: Any) -> None:
        self.handled.append(connection)


async def sniffing(app: Any) -> tuple[Any, FakeTransport, FakeServer, list[HttpProtocol]]:
    server = FakeServer()
    made: list[HttpProtocol] = []

    def make(slot: Any) -> HttpProtocol:
        made.append(HttpProtocol(app, slot=slot))
        return made[-1]

    conn = http_sniff.sniffing_connection(make)(ServerProtocol(), server)
    transport = FakeTransport()
    transport.protocol = conn
    conn.connection_made(transport)
    return conn, transport, server, made


async def test_api_requests_are_diverted_with_their_bytes_replayed() -> None:
    app = EchoApp()
    conn, transport, server, made = await sniffing(app)
    conn.data_received(b"POST /v1/audio/spe")  # split anywhere
    await settle()
    assert not made and not server.handler_tasks
    conn.data_received(b"ech HTTP/1.1\r\nHo")  # the request line decides
    assert len(made) == 1
    conn_bytes = b"st: x\r\nContent-Length: 2\r\n\r\nok"
    transport.protocol.data_received(conn_bytes)  # later bytes go to the new protocol
    await settle()
    assert len(made) == 1 and transport.protocol is made[0]
    assert not server.handler_tasks  # websockets never saw it
    assert responses(transport.out) == [(200, b"got:ok")]
    transport.close()
    await settle()


async def test_websocket_requests_reach_websockets_unchanged() -> None:
    conn, transport, server, made = await sniffing(EchoApp())
    conn.data_received(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    await settle()
    assert not made and transport.protocol is conn
    assert len(server.handler_tasks) == 1  # connection_made ran: the handler task is registered
    assert conn.request is not None and conn.request.path == "/healthz"  # the sans-I/O protocol got the bytes


async def test_a_connection_lost_while_sniffing_is_quiet() -> None:
    conn, transport, server, made = await sniffing(EchoApp())
    conn.data_received(b"POST /v1/au")
    conn.connection_lost(None)
    await settle()
    assert not made and not server.handler_tasks


async def test_sniffing_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_sniff, "SNIFF_TIMEOUT_S", 0.05)
    conn, transport, server, made = await sniffing(EchoApp())
    await asyncio.sleep(0.2)
    assert transport.aborted and not made


# -- deadlines: totals, not gaps between bytes (issue 18, slowloris) ------------


async def trickle(proto: HttpProtocol, data: bytes, every_s: float, for_s: float) -> None:
    """Send ``data`` a byte at a time, one every ``every_s``, for at most ``for_s``."""
    loop = asyncio.get_running_loop()
    end = loop.time() + for_s
    for i in range(len(data)):
        if loop.time() > end or proto.closed:
            return
        proto.data_received(data[i:i + 1])
        await asyncio.sleep(every_s)


async def test_a_head_sent_a_byte_at_a_time_is_cut_at_its_total_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "HEAD_TIMEOUT_S", 0.3)
    monkeypatch.setattr(http, "KEEPALIVE_IDLE_S", 0.2)  # longer than the gaps: only a total bound stops it
    timeouts: list[str] = []
    transport = FakeTransport()
    proto = HttpProtocol(EchoApp(), on_timeout=timeouts.append)
    transport.protocol = proto
    proto.connection_made(transport)  # type: ignore[arg-type]
    await trickle(proto, b"POST /a HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100, 0.02, 1.5)
    assert transport.closed and responses(transport.out)[0][0] == 408 and timeouts == ["head"]


async def test_a_body_sent_a_byte_at_a_time_is_cut_at_its_total_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "BODY_TIMEOUT_S", 0.3)
    app = EchoApp()
    timeouts: list[str] = []
    transport = FakeTransport()
    proto = HttpProtocol(app, on_timeout=timeouts.append)
    transport.protocol = proto
    proto.connection_made(transport)  # type: ignore[arg-type]
    proto.data_received(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n")
    await trickle(proto, b"b" * 500, 0.02, 1.5)
    assert transport.closed and not app.handled and responses(transport.out)[0][0] == 408
    assert timeouts == ["body"]


async def test_a_big_head_sent_in_one_write_is_431() -> None:
    app = EchoApp()
    proto, transport = await open_http(app)
    proto.data_received(b"GET /a HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 120_000 + b"\r\n\r\n")
    await settle()
    assert responses(transport.out)[0][0] == 431 and transport.closed and not app.handled


async def test_a_refused_head_is_answered_before_its_body_arrives() -> None:
    app = EchoApp()
    proto, transport = await open_http(app)
    proto.data_received(b"POST /deny HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")  # no body yet
    await settle()
    assert responses(transport.out) == [(401, b"no")] and transport.closed
