"""Segments spoken by the model in this process, exactly as ``say`` and the
daemon's session render them (``kokorod.local_speech.render_step``)."""

from __future__ import annotations

import argparse

import numpy as np

from kokorod.engine.base import CancelToken
from kokorod.local_speech import render_step
from kokorod.synthesizer import Synthesizer
from kokorod.text import languages
from kokorod.text.languages import Language
from kokorod.text.per_language import segmenter_for
from kokorod.text.segmenter import Segment, Segmenter
from kokorod.timing import Word


class LocalRenderer:
    def __init__(self, synth: Synthesizer, *, voice: str, speed: float, lang: Language) -> None:
        self.synth, self.voice, self.speed, self.lang = synth, voice, speed, lang
        self.token = CancelToken()

    @classmethod
    def load(cls, args: argparse.Namespace) -> "LocalRenderer":
        from kokorod.runtime import EngineOptions, build_synthesizer

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
        return render_step(self.synth, segment, voice=self.voice, speed=self.speed, lang=self.lang, last=last,
                           token=self.token)

    def cancel(self) -> None:
        """Stops the synthesis running on the worker thread (between model calls)."""
        self.token.cancel()

    def close(self) -> None:
        pass
