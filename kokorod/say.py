"""``kokorod say`` and ``kokorod pipe``.

Both use the running daemon when one answers at ``--url`` and otherwise
synthesize in this process through the same segment → render pipeline the daemon
uses, so the audio is the same either way.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from kokorod.engine.base import SAMPLE_RATE, CancelToken
from kokorod.errors import InputError
from kokorod.synthesizer import Synthesizer, check_speed
from kokorod.text import languages
from kokorod.text.languages import Language
from kokorod.text.per_language import segmenter_for
from kokorod.text.segmenter import Segment
from kokorod.timing import Word
from kokorod.daemon.utterance import render_segment


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


def _validate(args: argparse.Namespace) -> None:
    check_speed(args.speed)
    if args.output is not None and Path(args.output).parent and not Path(args.output).expanduser().parent.exists():
        raise InputError(f"directory {Path(args.output).parent} does not exist", "create it or pick another -o path")


def _print_words(words: Iterable[Word], out=sys.stdout) -> None:
    for w in words:
        print(f"{w.start / SAMPLE_RATE:8.3f} {w.end / SAMPLE_RATE:8.3f}  {w.text}", file=out)


def run_say(args: argparse.Namespace) -> int:
    text = args.text
    if not text or not text.strip():
        raise InputError("there is no text to speak", 'pass some text, e.g. kokorod say "Hello"')
    _validate(args)
    if not args.local:
        from kokorod.remote import try_remote_say

        handled = try_remote_say(args)
        if handled is not None:
            return handled
    return _say_local(args, text)


def _say_local(args: argparse.Namespace, text: str) -> int:
    from kokorod.audio.wav import write_wav
    from kokorod.runtime import build_synthesizer
    from kokorod.cli import _engine_options

    synth = build_synthesizer(_engine_options(args))
    voice = args.voice or "af_heart"
    synth.check_voice(voice)
    speech = speak_local(synth, text, voice=voice, speed=args.speed, lang=args.lang)
    for piece in speech.unspoken:
        print(f"not spoken: {piece}", file=sys.stderr)
    if args.output is None:
        from kokorod.playback import play_or_none

        if play_or_none(speech.audio, SAMPLE_RATE, speech.words if args.words else None):
            return 0
        args.output = "kokorod-say.wav"
        print(f"no sound device; writing {args.output}", file=sys.stderr)
    write_wav(args.output, speech.audio, SAMPLE_RATE)
    print(f"wrote {args.output} ({speech.duration_s:.2f} s, {len(speech.words)} words)")
    _print_words(speech.words)
    return 0


def run_pipe(args: argparse.Namespace) -> int:
    _validate(args)
    from kokorod.remote import run_remote_pipe

    return run_remote_pipe(args)
