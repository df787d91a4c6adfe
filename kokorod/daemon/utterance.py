"""One utterance's state, and the synthesis job the engine thread runs for a segment."""

from __future__ import annotations

import asyncio
import enum
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from kokorod.audio.seams import pause_for_boundary, shape_chunk, speech_bounds
from kokorod.engine.base import CancelToken
from kokorod.synthesizer import Synthesizer
from kokorod.text.detect import Choice, PendingChoice
from kokorod.text.languages import Language
from kokorod.text.per_language import segmenter_for
from kokorod.text.segmenter import Segment, Segmenter
from kokorod.daemon.timeline import OutputFormat, UtteranceTimeline
from kokorod.timing import SpeechChunk


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


# Segment boundaries → the seams module's pause kinds. ``final`` is text cut only
# because the utterance ended; if more follows after all, treat it as a sentence.
_PAUSE_KIND = {"clause": "clause", "sentence": "sentence", "paragraph": "paragraph", "forced": "forced", "final": "sentence"}


def seam_kind(segment: Segment, last: bool) -> str | None:
    """The natural pause after a segment's audio (a seams pause kind), or None.

    The last chunk of an utterance gets none, so ``done`` is not delayed by
    silence; before a <break/> the tag's pause replaces it (the session adds
    it). Part of the chunk cache's key: the only way the seam changes a chunk."""
    if last or segment.boundary == "break":
        return None
    return _PAUSE_KIND.get(segment.boundary, "sentence")


@dataclass
class Rendered:
    chunk: SpeechChunk
    synth_s: float
    unspeakable: list[str]
    # What the engine decoded, before the seams: all of it, and the span of its
    # speech (kokorod.daemon.pacing learns the per-run overhead from the gap).
    decoded_samples: int = 0
    speech_samples: int = 0


def render_segment(
    synth: Synthesizer, segment: Segment, *, voice: str, speed: float, lang: Language, last: bool, token: CancelToken,
    lexicon: Any = None,
) -> Rendered:
    """Runs on the engine thread: speak one segment and shape its edges.

    The pause after a chunk depends on why the text was cut there (comma,
    sentence, paragraph); the last chunk of an utterance gets none, so ``done``
    is not delayed by silence.
    """
    started = time.perf_counter()
    extra = {} if lexicon is None else {"lexicon": lexicon}  # the session's pronunciation lexicon
    chunk = synth.synthesize(segment.spoken, voice=voice, speed=speed, cancel=token, replacements=segment.spans,
                             lang=lang, **extra)
    if not chunk.samples:  # nothing in it the voice could say (reported by the caller)
        return Rendered(chunk, time.perf_counter() - started, chunk.unspeakable)
    kind = seam_kind(segment, last)
    pause = pause_for_boundary(kind, speed) if kind is not None else 0
    shaped = shape_chunk(chunk, lead_in_samples=0, pause_samples=pause)
    bounds = speech_bounds(chunk.audio)
    speech = 0 if bounds is None else bounds[1] - bounds[0]
    return Rendered(shaped, time.perf_counter() - started, chunk.unspeakable, chunk.samples, speech)


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
