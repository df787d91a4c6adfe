"""Segments spoken by the model in this process, through the one speech
pipeline ``say``, ``pipe`` and the daemon's session run (``kokorod.speech``)."""

from __future__ import annotations

import argparse

import numpy as np

from kokorod.engine.base import CancelToken
from kokorod.speech.local import LocalSpeech
from kokorod.speech.plan import Warn, plan_segment
from kokorod.speech.synthesizer import Synthesizer
from kokorod.text import languages
from kokorod.text.languages import Language
from kokorod.text.per_language import segmenter_for
from kokorod.text.segmenter import Segment, Segmenter
from kokorod.speech.chunk import Word


class LocalRenderer:
    def __init__(self, synth: Synthesizer, *, voice: str, speed: float, lang: Language) -> None:
        self.synth, self.voice, self.speed, self.lang = synth, voice, speed, lang
        self.token = CancelToken()
        # The job writes the audio as it comes: the pipeline keeps none of it.
        self.speech = LocalSpeech(synth, voice=voice, speed=speed, lang=lang, token=self.token, keep_audio=False)

    @classmethod
    def load(cls, args: argparse.Namespace) -> "LocalRenderer":
        from kokorod.speech.build import EngineOptions, build_synthesizer

        synth = build_synthesizer(EngineOptions.from_args(args))
        voice = args.voice or "af_heart"
        synth.check_voice(voice)
        lang = languages.resolve(args.lang) if args.lang else languages.for_voice(voice)
        missing = synth.g2p.unavailable(lang)
        if missing is not None:
            raise missing
        return cls(synth, voice=voice, speed=args.speed, lang=lang)

    def segmenter(self) -> Segmenter:
        return segmenter_for(self.lang)

    def render(self, segment: Segment, last: bool) -> tuple[np.ndarray, list[Word], list[str]]:
        start = self.speech.timeline.position_samples
        placed = self.speech.speak(segment, last=last)
        # A book's words and warnings go to the job's files, not into a list
        # that grows for the whole book.
        self.speech.words.clear()
        self.speech.warnings.clear()
        # The plan's own warnings come first (what the normaliser dropped, code,
        # markup notes): the job reports those from the segment itself. What
        # follows them is what the G2P could not say.
        planned = sum(isinstance(step, Warn) for step in plan_segment(segment, self.lang))
        unspoken = [w.text for w in placed.warnings[planned:] if w.unspoken]
        return placed.audio, [w.shifted(-start) for w in placed.words], unspoken

    def cancel(self) -> None:
        """Stops the synthesis running on the worker thread (between model calls)."""
        self.token.cancel()

    def close(self) -> None:
        pass
