"""The LiveKit streams of ``kokorod.integrations.livekit.TTS``: one kokorod
utterance each, its audio and word times fed to LiveKit's ``AudioEmitter``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, Protocol

from livekit.agents import tts
from livekit.agents.types import NOT_GIVEN, APIConnectOptions, TimedString
from livekit.agents.utils import aio, shortuuid

from kokorod.client import ConnectionLost, DaemonUnavailable, KokorodClient, Resumed
from kokorod.errors import KokorodError
from kokorod.integrations.livekit_errors import api_error, event_error
from kokorod.integrations.livekit_transcript import TimedPiece, TranscriptAligner
from kokorod.protocol.messages import Audio, Cancelled, Chunk, Done, Error, WarningEvent, WordEvent

__all__ = ["ChunkedStream", "SynthesizeStream"]


class _Owner(Protocol):
    """What the streams read of ``kokorod.integrations.livekit.TTS`` (which
    imports this module, so it is described here rather than imported)."""

    sample_rate: int
    _opts: Any
    _pool: Any

log = logging.getLogger("kokorod.integrations.livekit")

# Errors that reject one fragment while the utterance goes on (docs/protocol.md).
_NON_TERMINAL_CODES = frozenset({"text_too_long", "rate_limited", "message_too_large"})
# How long a stream that is closed mid-utterance waits to deliver its `cancel`;
# past it the connection is dropped instead, which stops the utterance too.
_CANCEL_SEND_TIMEOUT_S = 5.0


def _timed(pieces: list[TimedPiece]) -> list[TimedString]:
    return [TimedString(p.text, start_time=NOT_GIVEN if p.start_s is None else p.start_s,
                        end_time=NOT_GIVEN if p.end_s is None else p.end_s) for p in pieces]


class _Utterance:
    """Speaks ``text`` as utterance ``uid`` on a pooled connection and feeds the
    emitter until the utterance ends. Closed early (the task cancelled), it
    cancels the utterance on the daemon before it returns."""

    def __init__(self, owner: _Owner, emitter: tts.AudioEmitter, uid: str, *, segmented: bool) -> None:
        self._tts = owner
        self._emitter = emitter
        self._uid = uid
        self._segmented = segmented   # streaming: end the LiveKit segment on `done`
        self._ended = False           # the daemon sent the utterance's last event
        self._aligner = TranscriptAligner()
        self._last_word = -1          # index of the last word shown

    async def run(self, text: str | AsyncGenerator[str, None], timeout_s: float) -> None:
        opts = self._tts._opts
        client = await self._tts._pool.get(timeout=timeout_s)
        reusable = True
        events = client.stream(self._uid)  # registered now: nothing of the utterance is missed
        sender = asyncio.create_task(
            client.speak(text, utterance=self._uid, voice=opts.voice, speed=opts.speed, lang=opts.lang, final=True),
            name=f"kokorod-livekit-send-{self._uid}")
        receiver = asyncio.create_task(self._receive(events), name=f"kokorod-livekit-recv-{self._uid}")
        try:
            await asyncio.gather(sender, receiver)
        except (ConnectionLost, DaemonUnavailable) as exc:
            reusable = False
            raise api_error(exc) from exc
        except KokorodError as exc:
            raise api_error(exc) from exc
        finally:
            # Stop sending first, so no fragment can follow the `cancel` on the wire.
            await aio.cancel_and_wait(sender, receiver)
            if not self._ended:
                reusable = await self._cancel(client) and reusable
            await events.aclose()  # type: ignore[attr-defined]
            if isinstance(text, AsyncGenerator):
                await text.aclose()
            if reusable:
                self._tts._pool.put(client)
            else:
                self._tts._pool.remove(client)

    async def _cancel(self, client: KokorodClient) -> bool:
        """Stop the utterance on the daemon (barge-in, or a failure on our side);
        False if the connection is not fit for another utterance."""
        try:
            await asyncio.wait_for(client.cancel(self._uid), _CANCEL_SEND_TIMEOUT_S)
            return True
        except (KokorodError, asyncio.TimeoutError, OSError) as exc:
            log.info("could not cancel utterance %s (%s); dropping the connection", self._uid, exc)
            return False

    async def _receive(self, events: AsyncIterator[object]) -> None:
        emitter = self._emitter
        async for event in events:
            if isinstance(event, Audio):
                emitter.push(bytes(event.pcm))
            elif isinstance(event, WordEvent):
                if event.index <= self._last_word:
                    # Re-spoken after a resume: LiveKit cannot take a piece back.
                    self._aligner.seen_word(event.text)
                    continue
                self._last_word = event.index
                emitter.push_timed_transcript(_timed(self._aligner.word(event.text, event.start, event.end)))
            elif isinstance(event, Chunk):
                if rest := self._aligner.chunk(event.text, event.start):
                    emitter.push_timed_transcript(_timed(rest))
            elif isinstance(event, Done):
                self._ended = True
                if rest := self._aligner.finish(event.duration):
                    emitter.push_timed_transcript(_timed(rest))
                if self._segmented:
                    emitter.end_segment()
                return
            elif isinstance(event, Resumed):
                # The connection was lost and kokorod's client picked the utterance
                # up again: the rest of this chunk comes again, re-spoken.
                log.info("kokorod utterance %s resumed on %s at %.2f s (%s)", self._uid, event.url, event.at_s,
                         event.reason)
                self._aligner.drop_rest()
            elif isinstance(event, WarningEvent):
                log.info("kokorod utterance %s: %s: %r", self._uid, event.message, event.text)
            elif isinstance(event, Error) and event.code in _NON_TERMINAL_CODES:
                log.warning("kokorod rejected a fragment of %s: %s", self._uid, event.message)
            elif isinstance(event, (Error, Cancelled)):
                self._ended = True
                raise event_error(event)


class ChunkedStream(tts.ChunkedStream):
    """``TTS.synthesize(text)``: the whole text as one utterance."""

    def __init__(self, *, tts: _Owner, input_text: str, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._kokorod: _Owner = tts

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        uid = "lk-" + shortuuid()
        output_emitter.initialize(request_id=uid, sample_rate=self._kokorod.sample_rate, num_channels=1,
                                  mime_type="audio/pcm", frame_size_ms=self._kokorod._opts.emitter_frame_ms)
        if not self._input_text.strip():
            return  # nothing to say; the daemon would answer nothing_to_speak
        await _Utterance(self._kokorod, output_emitter, uid, segmented=False).run(
            self._input_text, self._conn_options.timeout)


class SynthesizeStream(tts.SynthesizeStream):
    """``TTS.stream()``: pushed text goes to the daemon as it comes."""

    def __init__(self, *, tts: _Owner, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, conn_options=conn_options)
        self._kokorod: _Owner = tts

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        uid = "lk-" + shortuuid()  # a new one per attempt: ids are not reused
        output_emitter.initialize(request_id=uid, sample_rate=self._kokorod.sample_rate, num_channels=1,
                                  mime_type="audio/pcm", frame_size_ms=self._kokorod._opts.emitter_frame_ms,
                                  stream=True)
        first = await self._first_text()
        if first is None:
            return  # the input ended before any text worth speaking
        output_emitter.start_segment(segment_id=uid)
        self._mark_started()
        await _Utterance(self._kokorod, output_emitter, uid, segmented=True).run(
            self._fragments(first), self._conn_options.timeout)
        # The segment is over. livekit-agents ignores text pushed after a flush,
        # so the rest of the input is only its end (or more flushes).
        async for _ in self._input_ch:
            pass

    async def _first_text(self) -> str | None:
        """Wait for text with something to say: the utterance is created with
        it, so a stream that only ever gets whitespace creates none (the daemon
        would answer nothing_to_speak)."""
        blank = ""
        async for item in self._input_ch:
            if isinstance(item, str):
                if item.strip():
                    return blank + item
                blank += item
        return None

    async def _fragments(self, first: str) -> AsyncGenerator[str, None]:
        """Fragments as pushed, ending at the first flush (or the end of the
        input): then the client sends `final` and the daemon speaks the rest."""
        yield first
        async for item in self._input_ch:
            if not isinstance(item, str):
                return
            yield item

