"""One WebSocket session with one daemon: the handshake, a reader task, rate-limited
sends. ``KokorodClient`` owns one at a time and replaces it on failover."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable, Generator, Generic, TypeVar

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from kokorod.errors import InputError, KokorodError
from kokorod.protocol.codec import SUBPROTOCOLS, Codec, ProtocolError, codec_for_subprotocol, message_from_map
from kokorod.protocol.messages import ClientMessage, Config, Configured, Error, ErrorCode, Ready, ServerEvent

__all__ = ["Connection", "DaemonUnavailable", "AuthenticationFailed", "ConnectionLost", "KokorodServerError",
           "DaemonBusy", "check_message", "Connecting"]

log = logging.getLogger("kokorod.client")
T = TypeVar("T")
_MAX_FRAME_BYTES = 16 * 2**20
_FIXES = {
    ErrorCode.UNKNOWN_VOICE: "run `kokorod voices` to list the voices",
    ErrorCode.OVERLOADED: "the daemon is busy; try again shortly",
    ErrorCode.TOO_MANY_UTTERANCES: "wait for queued utterances to finish, or cancel them",
    ErrorCode.ENGINE_ERROR: "see the daemon's log",
    ErrorCode.TEXT_TOO_LONG: "send the text in smaller pieces",
}


class DaemonUnavailable(KokorodError):
    """Nothing answers at the URL (refused, unreachable, timed out)."""


class DaemonBusy(KokorodError):
    """The daemon refused the connection with HTTP 503 (at capacity, draining)."""

    retry_after_s: float | None = None  # its Retry-After header, when it sent one


class AuthenticationFailed(KokorodError):
    """The daemon wants a (different) token."""


class ConnectionLost(KokorodError):
    """The connection ended while events were still expected."""


class KokorodServerError(KokorodError):
    """An ``error`` event from the daemon."""

    def __init__(self, event: Error) -> None:
        super().__init__(f"the daemon refused: {event.message} ({event.code})", _FIXES.get(event.code))  # type: ignore[call-overload]
        self.code = event.code
        self.utterance = event.utterance


def connect_error(url: str, exc: BaseException) -> KokorodError:
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        detail = exc.response.body.decode("utf-8", "replace").strip() if exc.response.body else ""
        if status == 401:
            return AuthenticationFailed(f"the daemon at {url} refused the token ({detail or 'HTTP 401'})",
                                        "pass --token TOKEN or set KOKOROD_TOKEN to the daemon's token")
        if status == 503:
            busy = DaemonBusy(f"the daemon at {url} is busy ({detail or 'HTTP 503'})", "try again shortly")
            try:
                busy.retry_after_s = float(exc.response.headers.get("Retry-After", ""))
            except ValueError:
                pass
            return busy
        return KokorodError(f"{url} answered HTTP {status}: {detail[:200]}", "check the URL (endpoint: /v1/stream)")
    if isinstance(exc, InvalidURI):
        return InputError(f"invalid daemon URL {url!r}", "use e.g. ws://127.0.0.1:8765/v1/stream")
    if isinstance(exc, InvalidHandshake):
        return KokorodError(f"{url} does not answer like a kokorod daemon ({exc})", "check --url")
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return DaemonUnavailable(f"no kokorod daemon answers at {url} ({reason})",
                             "start one with `kokorod serve` (or `make run`)")


def check_message(message: ClientMessage) -> None:
    """The codec's own checks: a bad field fails here, not as a server error later."""
    try:
        message_from_map(message.to_dict())
    except ProtocolError as exc:
        raise InputError(exc.message) from None


OnEvent = Callable[["Connection", ServerEvent], None]
OnClosed = Callable[["Connection", "ConnectionLost | None"], None]


class Connection:
    """A session: ``ready``, ``send()``, and a reader that hands every event to
    ``on_event`` and, once, the end to ``on_closed`` (None: closed by us)."""

    def __init__(self, ws: ClientConnection, codec: Codec, ready: Ready, url: str,
                 on_event: OnEvent, on_closed: OnClosed) -> None:
        self.url = url
        self.ready = ready
        self.codec = codec
        self.lost: ConnectionLost | None = None
        self._ws = ws
        self._on_event = on_event
        self._on_closed = on_closed
        self._closing = False
        self._config_waiters: list[asyncio.Future[Configured]] = []
        self._bucket = float(max(1, ready.limits.messages_per_s))
        self._bucket_at = time.monotonic()
        self._reader = asyncio.create_task(self._read_loop(), name="kokorod-client-reader")

    @classmethod
    async def open(cls, url: str, token: str | None, encoding: str, open_timeout: float,
                   on_event: OnEvent, on_closed: OnClosed) -> "Connection":
        subprotocol = f"kokorod.v1.{encoding}"
        if subprotocol not in SUBPROTOCOLS:
            raise InputError(f"unknown encoding {encoding!r}", "use msgpack or json")
        codec = codec_for_subprotocol(subprotocol)
        headers = {"Authorization": f"Bearer {token}"} if token else None
        try:
            ws = await ws_connect(url, additional_headers=headers, subprotocols=[subprotocol],  # type: ignore[list-item]
                                  compression=None, open_timeout=open_timeout, max_size=_MAX_FRAME_BYTES)
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            raise connect_error(url, exc) from None
        try:
            ready = codec.decode_event(await asyncio.wait_for(ws.recv(), open_timeout))
        except (ConnectionClosed, TimeoutError, ProtocolError) as exc:
            await ws.close()
            raise KokorodError(f"{url} did not send a ready event ({exc})", "is it a kokorod daemon?") from None
        except BaseException:
            await ws.close()
            raise
        if not isinstance(ready, Ready):
            await ws.close()
            raise KokorodError(f"{url} sent {type(ready).__name__} instead of ready", "is it a kokorod daemon?")
        return cls(ws, codec, ready, url, on_event, on_closed)

    @property
    def done(self) -> bool:
        return self._reader.done()

    async def wait_done(self) -> None:
        """Until the reader has ended (and ``on_closed`` has run)."""
        await asyncio.gather(asyncio.shield(self._reader), return_exceptions=True)

    def abandon(self) -> None:
        """Stop handing events on (a replacement takes over); close() still needed."""
        self._closing = True
        self._on_event = lambda conn, event: None

    async def close(self) -> None:
        self._closing = True
        await self._ws.close()
        await asyncio.gather(self._reader, return_exceptions=True)

    async def send(self, message: ClientMessage) -> None:
        check_message(message)
        # Stay under the daemon's message rate: excess messages would be dropped.
        rate = max(1.0, self.ready.limits.messages_per_s * 0.9)
        while True:
            now = time.monotonic()
            self._bucket = min(rate, self._bucket + (now - self._bucket_at) * rate)
            self._bucket_at = now
            if self._bucket >= 1:
                self._bucket -= 1
                break
            await asyncio.sleep((1 - self._bucket) / rate)
        if self.lost is not None:
            raise self.lost
        if self._closing:
            raise ConnectionLost(f"the connection to {self.url} is closed")
        try:
            await self._ws.send(self.codec.encode_message(message))
        except ConnectionClosed:
            raise self.lost or ConnectionLost(f"the connection to {self.url} is closed") from None

    async def configure(self, config: Config) -> Configured:
        waiter: asyncio.Future[Configured] = asyncio.get_running_loop().create_future()
        self._config_waiters.append(waiter)
        try:
            await self.send(config)
        except BaseException:
            self._config_waiters.remove(waiter)
            raise
        return await waiter

    async def _read_loop(self) -> None:
        try:
            async for frame in self._ws:
                try:
                    event = self.codec.decode_event(frame)
                except ProtocolError as exc:
                    if exc.code != ErrorCode.UNKNOWN_TYPE:  # unknown types are for newer clients
                        log.warning("ignoring a malformed event: %s", exc.message)
                    continue
                self._answer_config(event)
                try:
                    self._on_event(self, event)
                except Exception:  # a bug in handling one event must not end the session
                    log.exception("handling %s failed", type(event).__name__)
        except ConnectionClosed:
            pass
        finally:
            if not self._closing:
                code, reason = self._ws.close_code, self._ws.close_reason
                why = f"code {code}" + (f": {reason}" if reason else "") if code else "no close frame"
                self.lost = ConnectionLost(f"the connection to {self.url} was lost ({why})",
                                           "is the daemon still running? reconnect and retry")
            for waiter in self._config_waiters:
                if not waiter.done():
                    waiter.set_exception(self.lost or ConnectionLost("the client was closed"))
            self._config_waiters.clear()
            self._on_closed(self, self.lost)

    def _answer_config(self, event: ServerEvent) -> None:
        if not self._config_waiters:
            return
        if isinstance(event, Configured):
            waiter = self._config_waiters.pop(0)
            if not waiter.done():  # its caller may have given up
                waiter.set_result(event)
        elif isinstance(event, Error) and event.utterance is None and event.id is None:
            waiter = self._config_waiters.pop(0)
            if not waiter.done():
                waiter.set_exception(KokorodServerError(event))


class Connecting(Generic[T]):
    """What ``connect()`` returns: awaitable, and an async context manager."""

    def __init__(self, open_client: Callable[[], Awaitable[T]]) -> None:
        self._open = open_client
        self._client: T | None = None

    def __await__(self) -> Generator[Any, None, T]:
        return self._open().__await__()  # type: ignore[attr-defined, no-any-return]

    async def __aenter__(self) -> T:
        self._client = await self
        return self._client

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.close()  # type: ignore[attr-defined]
