"""kokorod.speech.render: what a run decoded, for the pacing's per-run overhead."""

from __future__ import annotations

import numpy as np

from kokorod.speech.render import decoded_span


def test_the_decoded_span_excludes_the_exact_zeros_a_trimming_engine_put_back() -> None:
    audio = np.zeros(10_000, dtype=np.float32)
    audio[1_200:7_800] = np.linspace(-1e-4, 0.3, 6_600, dtype=np.float32) + 1e-5
    assert decoded_span(audio) == 6_600


def test_an_engine_that_decodes_everything_gives_the_whole_timeline() -> None:
    audio = np.full(4_800, 1e-6, dtype=np.float32)  # near-silence, not exact zeros
    assert decoded_span(audio) == 4_800


def test_silence_inside_the_decoded_span_counts_as_decoded() -> None:
    audio = np.zeros(3_000, dtype=np.float32)
    audio[100], audio[2_899] = 0.1, -0.1
    assert decoded_span(audio) == 2_800
    assert decoded_span(np.zeros(500, dtype=np.float32)) == 0
