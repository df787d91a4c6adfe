"""An engine without a model, for sessions and daemons that need real voices
and G2P but no synthesis: tone whose length follows the phonemes."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from kokorod.engine.base import SAMPLE_RATE, SAMPLES_PER_FRAME, CancelToken, EngineOutput

FRAMES_PER_PHONEME = 2


class ToneEngine:
    """The Engine contract (kokorod.engine.base.Engine) without a model: every
    phoneme id is FRAMES_PER_PHONEME frames of tone, so the audio's length
    follows the phonemes (and so the lexicon) exactly."""

    name = "tone"
    sample_rate = SAMPLE_RATE

    def __init__(self, vocab: dict[str, int]) -> None:
        self.vocab = vocab
        self.phonemes: list[list[int]] = []

    def run(self, token_ids: list[int], style: npt.NDArray[np.float32], speed: float,
            cancel: CancelToken | None = None) -> EngineOutput:
        if cancel is not None:
            cancel.raise_if_cancelled()
        self.phonemes.append(list(token_ids))
        durations = np.full(len(token_ids), FRAMES_PER_PHONEME, dtype=np.int64)
        t = np.arange(int(durations.sum()) * SAMPLES_PER_FRAME) / SAMPLE_RATE
        return EngineOutput((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), durations)
