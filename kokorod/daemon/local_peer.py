"""A Session driven in-process, for front-ends that speak another protocol.

An adapter (OpenAI HTTP, Wyoming) turns its requests into kokorod protocol
messages (``Speak``, ``Cancel``, ``Config``), sends them to a ``LocalPeer`` and
reads back the same events a WebSocket client gets (``Audio``, ``WordEvent``,
``Done``, ``Error``...). Everything else is the WebSocket path's: the session's
limits, rate limiting, admission (``overloaded``, or the request queue for a
``speak`` with ``admission="queue"``), barge-in, cancellation of in-flight
synthesis, metrics and drain on SIGTERM.

Messages are validated where WebSocket frames are, by the same validators
(``kokorod.protocol.message_from_object``: the message's wire map, no JSON round
trip), so a bad field from an adapter becomes the same ``error`` event a client
would get, never a crash; ``max_message_bytes`` bounds a message's strings in
UTF-8 bytes (docs/protocol.md, "In-process peers").

Messages sent wait, unread, in a queue bounded in messages and in bytes (as
websockets bounds the frames a connection buffers); a send past either bound is
refused (``send`` returns False) and reported as a ``rate_limited`` error event,
never dropped silently.
Events wait in a small bounded queue; when the adapter stops reading (its HTTP
client is slow), the session's outbox fills and its slow-consumer rule
applies, as for a WebSocket client.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, AsyncIterator

from kokorod.protocol.codec import Codec
from kokorod.protocol.messages import Cancel, ClientMessage, Config, ErrorCode, Speak
from kokorod.protocol.validation import map_size_bytes, message_from_object
from kokorod.daemon.session import Services, Session

# Events handed over but not yet read by the adapter. Small: the session's
# outbox (bounded in seconds of audio) is where a slow reader is judged.
MAX_QUEUED_EVENTS = 16
# Messages sent but not yet read by the session. The session reads as soon as
# the loop runs it, so only a burst sent in one go waits here: the OpenAI
# adapter sends a whole request's fragments before it awaits anything (at the
# default limits, 100,000 characters in 6 messages; 1024 leaves room for a
# --max-message-bytes far smaller). Bytes, counted as max_message_bytes counts
# a message (map_size_bytes): 16 MiB holds such a request (at most 400 KB of
# UTF-8) many times over, and is below what one WebSocket connection may
# buffer (websockets' max_queue of 32 frames, each up to 4 MiB).
MAX_INCOMING_MESSAGES = 1024
MAX_INCOMING_BYTES = 16 * 1024 * 1024
_CLOSED = object()


class LocalCodec(Codec):
    """Message objects in, validated as frames are (no JSON); event objects out."""

    encoding = "local"
    subprotocol = "local"

    def decode(self, frame: Any) -> ClientMessage:
        return message_from_object(frame, self.max_message_bytes)

    def encode(self, event: Any) -> Any:
        return event


def _size_bytes(message: Any) -> int:
    """What ``message`` weighs in the incoming queue, counted as the codec
    counts it against max_message_bytes; a message that cannot be read weighs
    nothing here (the codec refuses it with an error)."""
    try:
        return map_size_bytes(message.to_dict(), MAX_INCOMING_BYTES)
    except Exception:
        return 0


class _QueueTransport:
    def __init__(self, queue: "asyncio.Queue[Any]") -> None:
        self._queue = queue

    async def send(self, frame: Any) -> None:
        await self._queue.put(frame)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        # Drain (SIGTERM) or the idle rule ends the peer: the adapter sees the
        # stream of events end.
        try:
            self._queue.put_nowait(_CLOSED)
        except asyncio.QueueFull:
            if code == 1008:  # the session's buffer limit (Session._on_outbox_full): nothing queued matters now
                while not self._queue.empty():
                    self._queue.get_nowait()
                self._queue.put_nowait(_CLOSED)


class LocalPeer:
    """One in-process session. Use as ``async with daemon.local_peer() as peer``.

    ``send`` a message; iterate ``events()`` for what the session answers. The
    first event is ``Ready``, as on a WebSocket. Leaving the block (or
    ``aclose``) is a disconnect: every utterance is cancelled, synthesis in
    flight included, and no task is left behind.
    """

    def __init__(self, services: Services, *, session_id: str | None = None,
                 max_message_bytes: int | None = None) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue(MAX_QUEUED_EVENTS)
        # send() refuses past MAX_INCOMING_MESSAGES and _BYTES; the one slot more is
        # for the end marker aclose() puts, so it always fits.
        self._incoming: asyncio.Queue[Any] = asyncio.Queue(MAX_INCOMING_MESSAGES + 1)
        self._incoming_bytes = 0
        codec = LocalCodec(max_message_bytes or services.config.limits.max_message_bytes)
        self.session = Session(services, codec, _QueueTransport(self._queue), session_id or uuid.uuid4().hex[:12])
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def __aenter__(self) -> "LocalPeer":
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.session.run(self._frames()), name=f"kokorod-local-{self.session.id}")

    async def _frames(self) -> AsyncIterator[Any]:
        while (item := await self._incoming.get()) is not _CLOSED:
            message, size_bytes = item
            self._incoming_bytes -= size_bytes
            yield message

    def send(self, message: Speak | Cancel | Config) -> bool:
        """Queue ``message`` for the session; False if refused: the peer is
        closed, or its queue is full (then an ``error`` event, ``rate_limited``,
        says so, as a WebSocket client's dropped message does)."""
        if self._closed:
            return False
        size_bytes = _size_bytes(message)
        queued = self._incoming.qsize()
        # An empty queue takes any message: the codec then holds it to max_message_bytes.
        if queued >= MAX_INCOMING_MESSAGES or (queued and self._incoming_bytes + size_bytes > MAX_INCOMING_BYTES):
            self.session.refuse(
                ErrorCode.RATE_LIMITED,
                f"{queued} messages ({self._incoming_bytes} bytes) not yet read; message dropped",
                utterance if type(utterance := getattr(message, "utterance", None)) is str else None)
            return False
        self._incoming_bytes += size_bytes
        self._incoming.put_nowait((message, size_bytes))
        return True

    async def events(self) -> AsyncIterator[Any]:
        """Events until the session ends (drain, or ``aclose``)."""
        while True:
            event = await self._queue.get()
            if event is _CLOSED:
                return
            yield event

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._incoming.put_nowait(_CLOSED)
        task = self._task
        if task is None:
            return
        # The session ends when its frames end; its writer may be blocked on a
        # full queue nobody reads any more, so drain it while we wait.
        while not task.done():
            try:
                while True:
                    self._queue.get_nowait()
            except asyncio.QueueEmpty:
                pass
            await asyncio.wait([task], timeout=0.05)
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
