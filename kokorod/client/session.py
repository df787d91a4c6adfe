"""The client's event side, independent of connections: per-utterance buffers
that ``stream(uid)`` reads, the ``events()`` listeners, and how they end."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any, AsyncIterable, AsyncIterator, Iterable, NamedTuple

import numpy as np

from kokorod.audio.formats import decode_pcm
from kokorod.client.connection import ConnectionLost, KokorodServerError
from kokorod.client.failover import Resumed
from kokorod.errors import KokorodError
from kokorod.protocol.messages import (
    Audio, Cancelled, Chunk, Done, Error, ErrorCode, ServerEvent, WarningEvent, WordEvent,
)

Fragments = str | AsyncIterable[str] | Iterable[str]
UtteranceEvent = Chunk | WordEvent | Audio | WarningEvent | Done | Cancelled | Error | Resumed

# These errors reject one fragment; the utterance goes on. Every other error that
# names an utterance ends it (it was refused, or synthesis failed).
_NON_TERMINAL = frozenset({ErrorCode.TEXT_TOO_LONG, ErrorCode.RATE_LIMITED, ErrorCode.MESSAGE_TOO_LARGE})
_UNCLAIMED_KEPT = 32     # buffers of ended utterances nobody streamed
_ENDED_KEPT = 4096       # ids remembered as ended (so they are not reused)
_CLOSED = object()       # queue sentinel: the client is done


class Synthesis(NamedTuple):
    audio: np.ndarray          # float32 mono in [-1, 1)
    sample_rate: int
    words: list[WordEvent]     # times in seconds from the first sample


def audio_of(event: Audio) -> np.ndarray:
    """An audio frame's PCM as float32, whatever the session's format."""
    return decode_pcm(event.pcm, event.format)


def is_terminal(event: Any) -> bool:
    return isinstance(event, (Done, Cancelled)) or (
        isinstance(event, Error) and event.utterance is not None and event.code not in _NON_TERMINAL
    )


class ClientSession:
    """The client's side of one daemon session: events routed to the streams
    of their utterances (kokorod.daemon.session.Session is the daemon's side)."""

    def __init__(self) -> None:
        self._streams: dict[str, asyncio.Queue[Any]] = {}       # per-utterance buffers
        self._attached: set[str] = set()                         # those a stream() reads
        self._unclaimed: OrderedDict[str, None] = OrderedDict()  # ended, never streamed
        self._ended: OrderedDict[str, Any] = OrderedDict()       # id -> its last event
        self._listeners: set[asyncio.Queue[Any]] = set()
        self._closing = False
        self._finished = False
        self._lost: ConnectionLost | None = None
        self._progress = asyncio.Event()       # text was chunked, or an utterance ended
        self._changed = asyncio.Event()        # a connection became usable, or the client gave up

    async def speak(self, text: Fragments, utterance: str | None = None, **options: Any) -> str:
        raise NotImplementedError

    def _on_ended(self, uid: str) -> None:
        """Subclass hook: ``uid`` just ended."""

    def _broadcast(self, event: Any) -> None:
        for queue in self._listeners:
            queue.put_nowait(event)

    def _deliver(self, uid: str | None, event: Any) -> None:
        self._broadcast(event)
        if uid is None:
            return
        stream_queue = self._streams.get(uid)
        if stream_queue is not None:
            stream_queue.put_nowait(event)
        if is_terminal(event):
            self._ended[uid] = event
            while len(self._ended) > _ENDED_KEPT:
                self._ended.popitem(last=False)
            self._on_ended(uid)
            if stream_queue is not None and uid not in self._attached:
                self._unclaimed[uid] = None
                while len(self._unclaimed) > _UNCLAIMED_KEPT:
                    self._streams.pop(self._unclaimed.popitem(last=False)[0], None)

    def _finish(self) -> None:
        """No more events will come: end every stream and listener."""
        if self._finished:
            return
        self._finished = True
        for queue in (*self._streams.values(), *self._listeners):
            queue.put_nowait(_CLOSED)
        self._changed.set()
        self._progress.set()

    def _give_up(self, lost: ConnectionLost) -> None:
        self._lost = lost
        self._finish()

    def stream(self, utterance: str) -> AsyncIterator[UtteranceEvent]:
        """Events of one utterance, ending with its Done, Cancelled or Error."""
        if utterance in self._attached:
            raise RuntimeError(f"utterance {utterance!r} is already being streamed")
        queue = self._streams.get(utterance)
        if queue is None:
            queue = self._streams[utterance] = asyncio.Queue()
            if utterance in self._ended:
                queue.put_nowait(self._ended[utterance])
            elif self._finished:
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
                if is_terminal(event):
                    return
        finally:
            self._attached.discard(utterance)
            if utterance in self._ended or self._finished:
                self._streams.pop(utterance, None)

    def events(self) -> AsyncIterator[ServerEvent | Resumed]:
        """Every event received from now on (remapped like stream()'s, plus
        Configured and session-level Errors); ends when the client is closed."""
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._listeners.add(queue)
        if self._finished:
            queue.put_nowait(_CLOSED)
        return self._listen(queue)

    async def _listen(self, queue: asyncio.Queue[Any]) -> AsyncIterator[ServerEvent | Resumed]:
        try:
            while (event := await queue.get()) is not _CLOSED:
                yield event
            if self._lost is not None:
                raise self._lost
        finally:
            self._listeners.discard(queue)

    async def synthesize(self, text: Fragments, **speak_args: Any) -> Synthesis:
        """Speak one utterance and collect it; raises KokorodServerError on an error
        event and KokorodError if it was cancelled (e.g. barged in)."""
        uid = await self.speak(text, **speak_args)
        parts: list[Any] = []
        words: list[WordEvent] = []
        sample_rate = self.ready.sample_rate
        async for event in self.stream(uid):
            if isinstance(event, Audio):
                parts.append(audio_of(event))
                sample_rate = event.sample_rate
            elif isinstance(event, WordEvent):
                while words and words[-1].index >= event.index:  # re-spoken after a resume
                    words.pop()
                words.append(event)
            elif isinstance(event, Error):
                raise KokorodServerError(event)
            elif isinstance(event, Cancelled):
                raise KokorodError(f"utterance {uid!r} was cancelled ({event.reason})")
        audio = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        return Synthesis(audio, sample_rate, words)


Session = ClientSession  # its old name (the daemon has a class Session too)
