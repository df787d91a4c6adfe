"""Chunks and pauses placed one after another, counted in integer samples.

The in-process form of the timeline (``say`` and ``pipe`` without a daemon):
each placed chunk's words are shifted by the samples before it, so times added
across many chunks never drift. The daemon's wire timeline
(kokorod/daemon/timeline.py) places chunks the same way and adds framing,
resampling and encoding.
"""

from __future__ import annotations

import numpy as np

from kokorod.engine.base import SAMPLE_RATE, FloatAudio
from kokorod.speech.chunk import SpeechChunk, Word


class Timeline:
    """Where the next chunk starts; optionally keeps the audio (``keep_audio``)."""

    def __init__(self, *, keep_audio: bool = True) -> None:
        self.position_samples = 0  # at the model's rate (24 kHz)
        self.keep_audio = keep_audio
        self._parts: list[FloatAudio] = []

    def place(self, chunk: SpeechChunk) -> list[Word]:
        """Append ``chunk``; its words on this timeline."""
        words = [w.shifted(self.position_samples) for w in chunk.words]
        self._append(chunk.audio)
        return words

    def pause(self, samples: int) -> FloatAudio:
        """Append ``samples`` of silence (a <break/>); the silence itself."""
        silence = np.zeros(max(0, samples), dtype=np.float32)
        self._append(silence)
        return silence

    def _append(self, audio: FloatAudio) -> None:
        self.position_samples += int(audio.shape[0])
        if self.keep_audio and audio.shape[0]:
            self._parts.append(audio)

    @property
    def audio(self) -> FloatAudio:
        return np.concatenate(self._parts) if self._parts else np.zeros(0, dtype=np.float32)

    @property
    def duration_s(self) -> float:
        return self.position_samples / SAMPLE_RATE
