"""Words on a timeline counted in integer samples (never float seconds, so
offsets added across many chunks cannot drift)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kokorod.model_facts import SAMPLE_RATE, FloatAudio


@dataclass(frozen=True)
class Word:
    """A word as the user wrote it, with its span in samples (24 kHz) relative to
    the start of the audio it belongs to."""

    text: str
    start: int
    end: int

    def shifted(self, samples: int) -> "Word":
        return Word(self.text, self.start + samples, self.end + samples)


@dataclass
class SpeechChunk:
    """Synthesized audio for one piece of text, with its words."""

    audio: FloatAudio
    words: list[Word] = field(default_factory=list)
    sample_rate: int = SAMPLE_RATE
    # Written words the G2P gave no phonemes the model knows (reported, not spoken).
    unspeakable: list[str] = field(default_factory=list)

    @property
    def samples(self) -> int:
        return int(self.audio.shape[0])

    @staticmethod
    def silence(samples: int) -> "SpeechChunk":
        return SpeechChunk(np.zeros(samples, dtype=np.float32), [])
