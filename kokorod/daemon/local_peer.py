"""A Session driven in-process, for front-ends that speak another protocol.

An adapter (OpenAI HTTP, Wyoming) turns its requests into kokorod protocol
messages (``Speak``, ``Cancel``, ``Config``), sends them to a ``LocalPeer`` and
reads back the same events a WebSocket client gets (``Audio``, ``WordEvent``,
``Done``, ``Error``...). Everything else is the WebSocket path's: the session's
limits, rate limiting, admission (``overloaded``, or the request queue for a
``speak`` with ``admission="queue"``), barge-in, cancellation of in-flight
synthesis, metrics and drain on SIGTERM.

Messages are validated exactly where WebSocket frames are: ``LocalCodec``
encodes each one with the JSON codec and decodes it again, so a bad field from
an adapter becomes the same ``error`` event a client would get, never a crash.

Back-pressure: events wait in a small bounded queue; when the adapter stops
reading (its HTTP client is slow), the session's outbox fills and its
slow-consumer rule applies, as for a WebSocket client.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, AsyncIterator

from kokorod.protocol.codec import JsonCodec, ProtocolError
from kokorod.protocol.messages import Cancel, Config, ErrorCode, Speak
from kokorod.daemon.session import Services, Session

# Events handed over but not yet read by the adapter. Small: the session's
# outbox (bounded in seconds of audio) is where a slow reader is judged.
MAX_QUEUED_EVENTS = 16
_CLOSED = object()


class LocalCodec(JsonCodec):
    """Message objects in, event objects out, validated by the JSON codec."""

    encoding = "local"

    def decode(self, frame: Any) -> Any:
        if not isinstance(frame, (Speak, Cancel, Config)):
            raise ProtocolError(ErrorCode.BAD_MESSAGE, f"not a client message: {type(frame).__name__}")
        return super().decode(super().encode_message(frame))

    def encode(self, event: Any) -> Any:
        return event


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
        self._incoming: asyncio.Queue[Any] = asyncio.Queue()
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
        while (message := await self._incoming.get()) is not _CLOSED:
            yield message

    def send(self, message: Speak | Cancel | Config) -> None:
        if not self._closed:
            self._incoming.put_nowait(message)

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
