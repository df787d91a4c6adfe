"""asyncio client for the kokorod daemon (wire protocol v1, docs/protocol.md).

One API, usable two ways::

    async with kokorod.client.connect("ws://127.0.0.1:8765/v1/stream") as client:
        uid = await client.speak("Hello there.")
        async for event in client.stream(uid):        # Chunk, WordEvent, Audio, then Done
            ...

    client = await KokorodClient.connect(url, token="secret")   # same thing, closed by you
    audio, sample_rate, words = await client.synthesize("Hello.")
    await client.close()

``connect()`` (also ``KokorodClient.connect``) returns an object that can be
awaited or used in ``async with``. After it, ``client.ready`` holds the Ready event.

Events:
- ``client.stream(uid)`` yields the events of one utterance and ends after its
  ``Done``, ``Cancelled`` or ``Error``. Events of an utterance started with
  ``speak()`` are buffered from the moment it is sent, so nothing is missed when
  ``stream()`` is called afterwards (the buffers of the 32 most recent ended
  utterances nobody streamed are kept, older ones are dropped).
- ``client.events()`` yields every event received after the call, of any
  utterance, plus ``Configured`` and session-level ``Error``s; it ends on close().

Speaking: ``speak(text)`` sends one message; ``speak(async_iterable)`` sends each
fragment as it arrives (an LLM's tokens) and ``final`` after the last. Fragments
are throttled below the daemon's message rate and its unspoken-text limit, so a
fast producer is slowed down instead of having fragments dropped.

Failures are ``KokorodError`` subclasses (one printable line plus a fix):
``DaemonUnavailable`` (nothing listens), ``AuthenticationFailed`` (HTTP 401),
``ConnectionLost`` (the socket dropped mid-stream), ``KokorodServerError`` (an
``error`` event, raised by ``synthesize()`` and ``configure()``).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from typing import Any, AsyncIterable, AsyncIterator, Generator, Iterable, NamedTuple

import numpy as np
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from kokorod.audio.formats import decode_pcm
from kokorod.errors import InputError, KokorodError
from kokorod.protocol.codec import SUBPROTOCOLS, Codec, ProtocolError, codec_for_subprotocol, message_from_map
from kokorod.protocol.messages import (
    Audio, Cancel, Cancelled, Chunk, ClientMessage, Config, Configured, Done, Error, ErrorCode, Ready,
    ServerEvent, Speak, Warning, WordEvent,
)

__all__ = ["DEFAULT_URL", "KokorodClient", "connect", "Synthesis", "audio_of", "KokorodServerError",
           "DaemonUnavailable", "AuthenticationFailed", "ConnectionLost", "Audio", "Chunk", "WordEvent", "Done",
           "Cancelled", "Error", "Configured", "Ready"]

log = logging.getLogger("kokorod.client")
DEFAULT_URL = "ws://127.0.0.1:8765/v1/stream"
UtteranceEvent = Chunk | WordEvent | Audio | Warning | Done | Cancelled | Error
Fragments = str | AsyncIterable[str] | Iterable[str]

# These errors reject one fragment; the utterance goes on. Every other error that
# names an utterance ends it (it was refused, or synthesis failed).
_NON_TERMINAL = frozenset({ErrorCode.TEXT_TOO_LONG, ErrorCode.RATE_LIMITED, ErrorCode.MESSAGE_TOO_LARGE})
_UNCLAIMED_KEPT = 32
_CLOSED = object()  # queue sentinel: the connection is gone
_FIXES = {
    ErrorCode.UNKNOWN_VOICE: "run `kokorod voices` to list the voices",
    ErrorCode.OVERLOADED: "the daemon is busy; try again shortly",
    ErrorCode.TOO_MANY_UTTERANCES: "wait for queued utterances to finish, or cancel them",
    ErrorCode.ENGINE_ERROR: "see the daemon's log",
    ErrorCode.TEXT_TOO_LONG: "send the text in smaller pieces",
}


class DaemonUnavailable(KokorodError):
    """Nothing answers at the URL (refused, unreachable, timed out)."""


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


class Synthesis(NamedTuple):
    audio: np.ndarray          # float32 mono in [-1, 1)
    sample_rate: int
    words: list[WordEvent]     # times in seconds from the first sample


def audio_of(event: Audio) -> np.ndarray:
    """An audio frame's PCM as float32, whatever the session's format."""
    return decode_pcm(event.pcm, event.format)


def _is_terminal(event: Any) -> bool:
    return isinstance(event, (Done, Cancelled)) or (
        isinstance(event, Error) and event.utterance is not None and event.code not in _NON_TERMINAL
    )


def _visible_chars(text: str) -> int:
    # Chunk texts may not carry the whitespace between segments; counting only
    # the rest keeps "sent minus spoken" from drifting over a long stream.
    return len(text) - sum(1 for c in text if c.isspace())


def _connect_error(url: str, exc: BaseException) -> KokorodError:
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        detail = exc.response.body.decode("utf-8", "replace").strip() if exc.response.body else ""
        if status == 401:
            return AuthenticationFailed(f"the daemon at {url} refused the token ({detail or 'HTTP 401'})",
                                        "pass --token TOKEN or set KOKOROD_TOKEN to the daemon's token")
        if status == 503:
            return KokorodError(f"the daemon at {url} is busy ({detail or 'HTTP 503'})", "try again shortly")
        return KokorodError(f"{url} answered HTTP {status}: {detail[:200]}", "check the URL (endpoint: /v1/stream)")
    if isinstance(exc, InvalidURI):
        return InputError(f"invalid daemon URL {url!r}", "use e.g. ws://127.0.0.1:8765/v1/stream")
    if isinstance(exc, InvalidHandshake):
        return KokorodError(f"{url} does not answer like a kokorod daemon ({exc})", "check --url")
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return DaemonUnavailable(f"no kokorod daemon answers at {url} ({reason})",
                             "start one with `kokorod serve` (or `make run`)")


class KokorodClient:
    """One WebSocket session with the daemon. Create it with ``connect()``."""

    def __init__(self, ws: ClientConnection, codec: Codec, ready: Ready, url: str) -> None:
        self.url = url
        self.ready = ready
        self.codec = codec
        self._ws = ws
        self._streams: dict[str, asyncio.Queue[Any]] = {}       # per-utterance buffers
        self._attached: set[str] = set()                         # those a stream() reads
        self._unclaimed: OrderedDict[str, None] = OrderedDict()  # ended, never streamed
        self._ended: OrderedDict[str, UtteranceEvent] = OrderedDict()
        self._final_sent: set[str] = set()
        self._listeners: set[asyncio.Queue[Any]] = set()
        self._config_waiters: list[asyncio.Future[Configured]] = []
        # Per open utterance: visible chars [sent, chunked by the daemon], to stay
        # under its unspoken-text limit.
        self._text: dict[str, list[int]] = {}
        self._progress = asyncio.Event()
        self._closing = False
        self._lost: ConnectionLost | None = None
        self._bucket = float(max(1, ready.limits.messages_per_s))
        self._bucket_at = time.monotonic()
        self._reader = asyncio.create_task(self._read_loop(), name="kokorod-client-reader")

    # -- connecting ----------------------------------------------------------

    @staticmethod
    def connect(url: str = DEFAULT_URL, token: str | None = None, encoding: str = "msgpack",
                open_timeout: float = 5.0) -> "_Connecting":
        """Await it, or use it with ``async with``."""
        return _Connecting(url, token, encoding, open_timeout)

    @classmethod
    async def _open(cls, url: str, token: str | None, encoding: str, open_timeout: float) -> "KokorodClient":
        subprotocol = f"kokorod.v1.{encoding}"
        if subprotocol not in SUBPROTOCOLS:
            raise InputError(f"unknown encoding {encoding!r}", "use msgpack or json")
        codec = codec_for_subprotocol(subprotocol)
        headers = {"Authorization": f"Bearer {token}"} if token else None
        try:
            ws = await ws_connect(url, additional_headers=headers, subprotocols=[subprotocol],  # type: ignore[list-item]
                                  compression=None, open_timeout=open_timeout, max_size=16 * 2**20)
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            raise _connect_error(url, exc) from None
        try:
            ready = codec.decode_event(await asyncio.wait_for(ws.recv(), open_timeout))
        except (ConnectionClosed, TimeoutError, ProtocolError) as exc:
            await ws.close()
            raise KokorodError(f"{url} did not send a ready event ({exc})", "is it a kokorod daemon?") from None
        if not isinstance(ready, Ready):
            await ws.close()
            raise KokorodError(f"{url} sent {type(ready).__name__} instead of ready", "is it a kokorod daemon?")
        return cls(ws, codec, ready, url)

    async def __aenter__(self) -> "KokorodClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._closing = True
        await self._ws.close()
        await asyncio.gather(self._reader, return_exceptions=True)

    # -- sending -------------------------------------------------------------

    async def _send(self, message: ClientMessage) -> None:
        try:  # the codec's own checks: a bad field fails here, not as a server error later
            message_from_map(message.to_dict())
        except ProtocolError as exc:
            raise InputError(exc.message) from None
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
        if self._lost is not None:
            raise self._lost
        try:
            await self._ws.send(self.codec.encode_message(message))
        except ConnectionClosed:
            raise self._lost or ConnectionLost(f"the connection to {self.url} is closed") from None

    async def configure(self, **fields: Any) -> Configured:
        """Set session defaults (voice, speed, format, sample_rate, frame_ms,
        on_new_utterance); returns the effective configuration."""
        waiter: asyncio.Future[Configured] = asyncio.get_running_loop().create_future()
        self._config_waiters.append(waiter)
        try:
            await self._send(Config(**fields))
        except BaseException:
            self._config_waiters.remove(waiter)
            raise
        return await waiter

    async def speak(self, text: Fragments, utterance: str | None = None, voice: str | None = None,
                    speed: float | None = None, final: bool = True, mode: str | None = None,
                    lang: str | None = None) -> str:
        """Speak ``text`` (a string, or an (async) iterable of fragments sent as they
        come); returns the utterance id. With ``final=False`` more text may follow
        in later ``speak`` calls with the same id. ``lang`` (e.g. "es") overrides
        the voice's language."""
        uid = utterance or "u-" + uuid.uuid4().hex[:12]
        if uid in self._final_sent or uid in self._ended:
            raise InputError(f"utterance {uid!r} is finished; use a new id")
        if uid not in self._streams and uid not in self._ended:
            self._streams[uid] = asyncio.Queue()  # buffer from the first event on
        first = uid not in self._text
        counts = self._text.setdefault(uid, [0, 0])
        step = max(1, (self.ready.limits.max_message_bytes - 2048) // 4)  # worst case 4 UTF-8 bytes a char

        async def send(piece: str, last: bool) -> None:
            nonlocal first
            for i in range(0, max(len(piece), 1), step):
                part = piece[i:i + step]
                end = last and i + step >= len(piece)
                if first:
                    await self._send(Speak(uid, part, voice, speed, end, mode, lang))  # type: ignore[arg-type]
                    first = False
                else:
                    await self._send(Speak(uid, part, final=end))
                counts[0] += _visible_chars(part)
                await self._hold_back(uid, counts)

        if isinstance(text, str):
            await send(text, final)
        else:
            async for piece in _aiter(text):
                if uid in self._ended:  # cancelled or barged in: stop consuming the producer
                    return uid
                if piece:
                    await send(piece, False)
            if final and uid not in self._ended:
                await send("", True)
        if final:
            self._final_sent.add(uid)
        return uid

    async def _hold_back(self, uid: str, counts: list[int]) -> None:
        """Wait while this utterance's unspoken text is near the daemon's limit."""
        window = self.ready.limits.max_text_chars // 2
        while counts[0] - counts[1] > window and uid not in self._ended and self._lost is None:
            self._progress.clear()
            await self._progress.wait()

    async def cancel(self, utterance: str | None = None, all: bool = False) -> None:
        """Stop ``utterance``, or what is speaking now, or (``all=True``) everything."""
        await self._send(Cancel(utterance, all))

    # -- receiving -----------------------------------------------------------

    def stream(self, utterance: str) -> AsyncIterator[UtteranceEvent]:
        """Events of one utterance, ending with its Done, Cancelled or Error."""
        if utterance in self._attached:
            raise RuntimeError(f"utterance {utterance!r} is already being streamed")
        queue = self._streams.get(utterance)
        if queue is None:
            queue = self._streams[utterance] = asyncio.Queue()
            if utterance in self._ended:
                queue.put_nowait(self._ended[utterance])
            elif self._reader.done():
                queue.put_nowait(_CLOSED)
        self._attached.add(utterance)
        self._unclaimed.pop(utterance, None)
        return self._drain(utterance, queue)

    async def _drain(self, utterance: str, queue: asyncio.Queue[Any]) -> AsyncIterator[UtteranceEvent]:
        try:
            while True:
                event = await queue.get()
                if event is _CLOSED:
                    raise self._lost or ConnectionLost(f"the connection closed before utterance {utterance!r} ended")
                yield event
                if _is_terminal(event):
                    return
        finally:
            self._attached.discard(utterance)
            if utterance in self._ended or self._reader.done():
                self._streams.pop(utterance, None)

    def events(self) -> AsyncIterator[ServerEvent]:
        """Every event received from now on; ends when the client is closed."""
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._listeners.add(queue)
        if self._reader.done():
            queue.put_nowait(_CLOSED)
        return self._listen(queue)

    async def _listen(self, queue: asyncio.Queue[Any]) -> AsyncIterator[ServerEvent]:
        try:
            while (event := await queue.get()) is not _CLOSED:
                yield event
            if self._lost is not None:
                raise self._lost
        finally:
            self._listeners.discard(queue)

    async def synthesize(self, text: Fragments, **speak_args: Any) -> Synthesis:
        """Speak one utterance and collect it; raises KokorodServerError on an error
        event and ConnectionLost if it was cancelled (e.g. barged in)."""
        uid = await self.speak(text, **speak_args)
        parts: list[np.ndarray] = []
        words: list[WordEvent] = []
        sample_rate = self.ready.sample_rate
        async for event in self.stream(uid):
            if isinstance(event, Audio):
                parts.append(audio_of(event))
                sample_rate = event.sample_rate
            elif isinstance(event, WordEvent):
                words.append(event)
            elif isinstance(event, Error):
                raise KokorodServerError(event)
            elif isinstance(event, Cancelled):
                raise KokorodError(f"utterance {uid!r} was cancelled ({event.reason})")
        audio = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        return Synthesis(audio, sample_rate, words)

    async def _read_loop(self) -> None:
        try:
            async for frame in self._ws:
                try:
                    event = self.codec.decode_event(frame)
                except ProtocolError as exc:
                    if exc.code != ErrorCode.UNKNOWN_TYPE:  # unknown types are for newer clients
                        log.warning("ignoring a malformed event: %s", exc.message)
                    continue
                self._dispatch(event)
        except ConnectionClosed:
            pass
        finally:
            if not self._closing:
                close = self._ws.close_code, self._ws.close_reason
                why = f"code {close[0]}" + (f": {close[1]}" if close[1] else "") if close[0] else "no close frame"
                self._lost = ConnectionLost(f"the connection to {self.url} was lost ({why})",
                                            "is the daemon still running? reconnect and retry")
            for queue in (*self._streams.values(), *self._listeners):
                queue.put_nowait(_CLOSED)
            for waiter in self._config_waiters:
                if not waiter.done():
                    waiter.set_exception(self._lost or ConnectionLost("the client was closed"))
            self._config_waiters.clear()
            self._progress.set()

    def _dispatch(self, event: ServerEvent) -> None:
        for queue in self._listeners:
            queue.put_nowait(event)
        if isinstance(event, Configured) or (isinstance(event, Error) and event.utterance is None):
            if self._config_waiters:
                waiter = self._config_waiters.pop(0)
                if isinstance(event, Error):
                    waiter.set_exception(KokorodServerError(event))
                else:
                    waiter.set_result(event)
            return
        uid: str | None = getattr(event, "utterance", None)
        if uid is None:
            return
        stream_queue = self._streams.get(uid)
        if stream_queue is not None:
            stream_queue.put_nowait(event)
        if isinstance(event, Chunk) and uid in self._text:
            self._text[uid][1] += _visible_chars(event.text)
            self._progress.set()
        if _is_terminal(event):
            self._ended[uid] = event  # type: ignore[assignment]
            self._text.pop(uid, None)
            self._final_sent.discard(uid)
            self._progress.set()
            while len(self._ended) > 4096:
                self._ended.popitem(last=False)
            if stream_queue is not None and uid not in self._attached:
                self._unclaimed[uid] = None
                while len(self._unclaimed) > _UNCLAIMED_KEPT:
                    self._streams.pop(self._unclaimed.popitem(last=False)[0], None)


class _Connecting:
    """What ``connect()`` returns: awaitable, and an async context manager."""

    def __init__(self, url: str, token: str | None, encoding: str, open_timeout: float) -> None:
        self._args = (url, token, encoding, open_timeout)
        self._client: KokorodClient | None = None

    def __await__(self) -> Generator[Any, None, KokorodClient]:
        return KokorodClient._open(*self._args).__await__()

    async def __aenter__(self) -> KokorodClient:
        self._client = await self
        return self._client

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.close()


connect = KokorodClient.connect


async def _aiter(fragments: AsyncIterable[str] | Iterable[str]) -> AsyncIterator[str]:
    if hasattr(fragments, "__aiter__"):
        async for piece in fragments:
            yield piece
    else:
        for piece in fragments:
            yield piece
