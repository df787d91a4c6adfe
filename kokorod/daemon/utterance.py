"""One utterance's state on the daemon: its text, segments, lifecycle and wire
timeline. How a segment becomes audio is the speech pipeline's (kokorod.speech)."""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from kokorod.text.detect import Choice, PendingChoice
from kokorod.text.languages import Language
from kokorod.text.per_language import segmenter_for
from kokorod.text.segmenter import Segment, Segmenter
from kokorod.daemon.timeline import OutputFormat, UtteranceTimeline
from kokorod.speech.chunk import SpeechChunk


# A background utterance's longest chunk, as a share of its language's (English:
# 100 characters, ~6 s of audio): a live job preempts a background run, so a
# short one wastes little when it is stopped, and finishes inside the gaps a
# live stream leaves the engine.
BACKGROUND_CHUNK_SHARE = 1 / 3


class State(enum.Enum):
    QUEUED = "queued"       # waiting for the utterance before it (queue mode)
    SPEAKING = "speaking"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def ended(self) -> bool:
        return self in (State.DONE, State.CANCELLED, State.FAILED)


@dataclass(eq=False)
class Utterance:
    id: str
    voice: str
    speed: float
    fmt: OutputFormat
    created_at: float
    lang: Language
    segmenter: Segmenter = field(init=False)
    segments: deque[Segment] = field(default_factory=deque)
    final: bool = False
    state: State = State.QUEUED
    changed: asyncio.Event = field(default_factory=asyncio.Event)   # new segments or final
    finished: asyncio.Event = field(default_factory=asyncio.Event)  # ended, any way
    task: "asyncio.Task[None] | None" = None
    first_audio_at: float | None = None
    chunks: int = 0
    chars: int = 0
    warned: bool = False  # a warning (unspoken text) was sent
    synth_s: float = 0.0
    # Its place in the request queue while it waits for a stream slot
    # (kokorod.daemon.request_queue.Ticket); None once admitted.
    ticket: Any = None
    timeline: UtteranceTimeline = field(init=False)
    # lang "auto": the text waits here until its language is decided (then None);
    # on_choice hears the decision (the session counts it).
    pending: PendingChoice | None = None
    on_choice: Callable[["Utterance", Choice], None] | None = None
    # "priority": "background": not admitted as a stream, run after live work, in small chunks.
    background: bool = False

    def __post_init__(self) -> None:
        self.timeline = UtteranceTimeline(self.id, self.fmt)
        self.timeline.lang = self.lang.code
        self.segmenter = self._segmenter(self.lang)

    def _segmenter(self, lang: Language) -> Segmenter:
        return segmenter_for(lang, chunk_share=BACKGROUND_CHUNK_SHARE if self.background else 1.0)

    def add_text(self, text: str, final: bool) -> None:
        self.chars += len(text)
        if self.pending is not None:
            choice = self.pending.feed(text, final)
            if choice is None:
                return  # not enough text to tell its language yet (bounded: see kokorod.text.detect)
            text = self.pending.text
            self.pending = None
            self._choose(choice)
        self.segments.extend(self.segmenter.feed(text))
        if final:
            self.segments.extend(self.segmenter.flush())
            self.final = True
        self.changed.set()

    def _choose(self, choice: Choice) -> None:
        """Speak the decided language, with its voice. Nothing was segmented yet,
        so the language's own segmenter takes the text; ``on_choice`` (the
        session) gives it a budget from that language's speaking rate."""
        if choice.lang != self.lang:
            self.lang = choice.lang
            self.segmenter = self._segmenter(choice.lang)
            self.timeline.lang = choice.lang.code
        self.voice = choice.voice
        if self.on_choice is not None:
            self.on_choice(self, choice)

    async def render(self, text: str, chunk: SpeechChunk) -> list[Any]:
        """The timeline's events for one chunk. A compressed format's encoder
        costs ~10-20 ms per second of audio: that runs on a worker thread so the
        event loop (every connection's cancels and frames) never waits for it."""
        if not self.timeline.compressed:
            return self.timeline.render(text, chunk)
        return await asyncio.to_thread(self.timeline.render, text, chunk)

    async def silence(self, samples: int) -> list[Any]:
        """A pause on the timeline (see :meth:`render` for the thread)."""
        if not self.timeline.compressed:
            return self.timeline.silence(samples)
        return await asyncio.to_thread(self.timeline.silence, samples)

    async def finish(self) -> list[Any]:
        """The timeline's last events, ending with ``done`` (encoder flushed)."""
        if not self.timeline.compressed:
            return self.timeline.finish()
        return await asyncio.to_thread(self.timeline.finish)

    @property
    def pending_chars(self) -> int:
        waiting = len(self.pending.text) if self.pending is not None else 0
        return waiting + self.segmenter.pending_chars + sum(len(s.text) for s in self.segments)


def describe(utt: Utterance, outcome: str, now: float) -> dict[str, Any]:
    """The fields of the one log line per utterance."""
    ttfa_ms = None if utt.first_audio_at is None else round((utt.first_audio_at - utt.created_at) * 1000)
    audio_s = utt.timeline.audio_s
    return {
        "utterance": utt.id,
        "outcome": outcome,
        "chars": utt.chars,
        "chunks": utt.chunks,
        "audio_s": round(audio_s, 3),
        "ttfa_ms": ttfa_ms,
        "rtf": round(utt.synth_s / audio_s, 3) if audio_s > 0 else None,
        "wall_s": round(now - utt.created_at, 3),
        "voice": utt.voice,
        "lang": utt.lang.code,
    }
