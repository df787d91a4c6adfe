"""The whole pipeline in-process, for ``kokorod say`` and ``kokorod pipe``.

Each segment is planned (``kokorod.speech.plan``), its text rendered
(``kokorod.speech.render``) and placed on one timeline, exactly as the daemon's
session does it, so a <break/> is the same silence and text not spoken is
reported the same way. No I/O: the command-line modules feed segments in and
play or write what comes out. Blocking (it runs the model): call it from a
worker thread when an event loop is running.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kokorod.engine.base import CancelToken, FloatAudio
from kokorod.errors import InputError
from kokorod.speech.backend import SpeechBackend
from kokorod.speech.chunk import Word
from kokorod.speech.plan import MARKUP, Pause, Synthesize, Warn, makes_sound, plan_segment, unspeakable_warning
from kokorod.speech.render import render_segment
from kokorod.speech.timeline import Timeline
from kokorod.text import languages
from kokorod.text.languages import Language
from kokorod.text.per_language import segmenter_for
from kokorod.text.segmenter import Segment


@dataclass
class Placed:
    """What one segment put on the timeline."""

    audio: FloatAudio              # its speech, then its pause
    words: list[Word]              # on the utterance's timeline
    warnings: list[Warn] = field(default_factory=list)


class LocalSpeech:
    """One utterance spoken in-process, segment by segment, on one timeline."""

    def __init__(self, synth: SpeechBackend, *, voice: str, speed: float, lang: Language,
                 token: CancelToken | None = None, lexicon: Any = None, keep_audio: bool = True) -> None:
        self.synth, self.voice, self.speed, self.lang = synth, voice, speed, lang
        self.token = token or CancelToken()
        self.lexicon = lexicon
        self.timeline = Timeline(keep_audio=keep_audio)
        self.words: list[Word] = []
        self.warnings: list[Warn] = []

    def speak(self, segment: Segment, *, last: bool) -> Placed:
        """Run ``segment``'s plan; ``last``: nothing after it makes sound
        (``kokorod.speech.plan.is_last``)."""
        start = self.timeline.position_samples
        parts: list[FloatAudio] = []
        placed = Placed(audio=np.zeros(0, dtype=np.float32), words=[])
        for step in plan_segment(segment, self.lang):
            if isinstance(step, Warn):
                placed.warnings.append(step)
            elif isinstance(step, Synthesize):
                rendered = render_segment(self.synth, step.segment, voice=self.voice, speed=self.speed,
                                          lang=self.lang, last=last, token=self.token, lexicon=self.lexicon)
                warn = unspeakable_warning(rendered.unspeakable, self.lang)
                if warn is not None:
                    placed.warnings.append(warn)
                placed.words.extend(self.timeline.place(rendered.chunk))
                parts.append(rendered.chunk.audio)
            elif isinstance(step, Pause):
                parts.append(self.timeline.pause(step.samples))
        if parts:
            placed.audio = np.concatenate(parts)
        assert self.timeline.position_samples - start == placed.audio.shape[0]
        self.words.extend(placed.words)
        self.warnings.extend(placed.warnings)
        return placed

    def speak_all(self, segments: list[Segment]) -> None:
        """Every segment of a complete text, the last sound without a seam pause."""
        last_sound = max((i for i, s in enumerate(segments) if makes_sound(s)), default=-1)
        for i, segment in enumerate(segments):
            self.speak(segment, last=i >= last_sound)

    @property
    def audio(self) -> FloatAudio:
        return self.timeline.audio

    @property
    def duration_s(self) -> float:
        return self.timeline.duration_s


def language_for(synth: SpeechBackend, voice: str, lang: str | None) -> Language:
    """The language an in-process utterance speaks: ``--lang``, else the voice's;
    refused (with how to install it) when its G2P is not here."""
    language = languages.resolve(lang) if lang else languages.for_voice(voice)
    missing = synth.g2p.unavailable(language)
    if missing is not None:
        raise missing
    return language


def speak_local(synth: SpeechBackend, text: str, *, voice: str, speed: float, lang: str | None = None,
                lexicon: Any = None) -> LocalSpeech:
    """``kokorod say`` in-process: the whole text, spoken."""
    if not text.strip():
        raise InputError("there is no text to speak", 'pass some text, e.g. kokorod say "Hello"')
    language = language_for(synth, voice, lang)
    segmenter = segmenter_for(language)
    speech = LocalSpeech(synth, voice=voice, speed=speed, lang=language, lexicon=lexicon)
    speech.speak_all(segmenter.feed(text) + segmenter.flush())
    if not speech.audio.size:
        raise InputError(f"nothing in this text can be spoken as {language.name}",
                         "check the text, or pick its language with --lang")
    return speech


def warning_line(code: str, text: str, message: str) -> str:
    """A warning as the command line prints it, daemon or not."""
    if code == MARKUP:
        return f"note: {message}: {text}"
    return f"not spoken: {text}"
