"""The in-process speech pipeline of ``kokorod say`` and ``kokorod pipe``:
segments rendered one by one on one timeline, exactly as the daemon's session
renders them (``kokorod.daemon.utterance.render_segment``), with <break/>
pauses as silence and every piece of text not spoken reported. No I/O: the
command-line modules (``say``, ``remote``) feed it and play or write what it
returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np

from kokorod.daemon.utterance import render_segment
from kokorod.engine.base import SAMPLE_RATE, CancelToken
from kokorod.errors import InputError
from kokorod.synthesizer import Synthesizer
from kokorod.text import languages
from kokorod.text.languages import Language
from kokorod.text.per_language import segmenter_for
from kokorod.text.segmenter import Segment
from kokorod.timing import Word


@dataclass
class Speech:
    """A whole utterance rendered in-process, on one timeline."""

    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    words: list[Word] = field(default_factory=list)
    unspoken: list[str] = field(default_factory=list)  # written text not spoken (unspeakable, code)

    @property
    def duration_s(self) -> float:
        return self.audio.shape[0] / SAMPLE_RATE


def unspoken_text(segment: Segment) -> list[str]:
    """Written text of a segment that will not be spoken: what the normaliser
    dropped as unspeakable, and a code block (skipped on purpose)."""
    return [*segment.dropped, *([segment.text.strip()] if segment.code and segment.text.strip() else [])]


def render_step(synth: Synthesizer, segment: Segment, *, voice: str, speed: float, lang: Language, last: bool,
                token: CancelToken) -> tuple[np.ndarray, list[Word], list[str]]:
    """One segment on an in-process timeline, as the daemon's session renders it:
    its audio (with a <break/> pause as silence at the end), its words relative
    to the segment's start, and the written words the G2P could not say. Both
    ``say`` and ``pipe`` run every segment through this."""
    audio, words, unspeakable = np.zeros(0, dtype=np.float32), [], []
    if segment.spoken.strip():
        rendered = render_segment(synth, segment, voice=voice, speed=speed, lang=lang, last=last, token=token)
        audio, words, unspeakable = rendered.chunk.audio, rendered.chunk.words, rendered.unspeakable
    if segment.pause_after_ms:
        audio = np.concatenate([audio, np.zeros(segment.pause_after_ms * SAMPLE_RATE // 1000, dtype=np.float32)])
    return audio, list(words), list(unspeakable)


def render_segments(synth: Synthesizer, segments: Iterable[Segment], *, voice: str, speed: float, lang: Language,
                    token: CancelToken | None = None) -> Iterator[tuple[Segment, np.ndarray, list[Word], list[str]]]:
    """Yield each segment's audio, words (shifted onto the utterance timeline) and
    the written words the G2P could not say (``render_step``)."""
    token = token or CancelToken()
    todo = [s for s in segments if s.spoken.strip() or s.pause_after_ms]
    last_spoken = max((i for i, s in enumerate(todo) if s.spoken.strip()), default=-1)
    position = 0
    for i, segment in enumerate(todo):
        audio, words, unspeakable = render_step(synth, segment, voice=voice, speed=speed, lang=lang,
                                                last=i == last_spoken, token=token)
        yield segment, audio, [w.shifted(position) for w in words], unspeakable
        position += audio.shape[0]


def speak_local(synth: Synthesizer, text: str, *, voice: str, speed: float, lang: str | None = None) -> Speech:
    if not text.strip():
        raise InputError("there is no text to speak", 'pass some text, e.g. kokorod say "Hello"')
    language = languages.resolve(lang) if lang else languages.for_voice(voice)
    missing = synth.g2p.unavailable(language)
    if missing is not None:
        raise missing
    segmenter = segmenter_for(language)
    segments = segmenter.feed(text) + segmenter.flush()
    speech = Speech(unspoken=[u for s in segments for u in unspoken_text(s)])
    parts: list[np.ndarray] = []
    for _segment, audio, words, unspeakable in render_segments(synth, segments, voice=voice, speed=speed,
                                                               lang=language):
        parts.append(audio)
        speech.words.extend(words)
        speech.unspoken.extend(unspeakable)
    if parts:
        speech.audio = np.concatenate(parts)
    if not speech.audio.size:
        raise InputError(f"nothing in this text can be spoken as {language.name}",
                         "check the text, or pick its language with --lang")
    return speech
