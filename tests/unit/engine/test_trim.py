"""The frame arithmetic of a trimmed run (kokorod/engine/trim.py): which frames
are decoded, how the cut's tensors are sliced, and where the audio lands."""

from __future__ import annotations

import numpy as np
import pytest

from kokorod.engine.base import SAMPLES_PER_FRAME
from kokorod.engine.trim import (CUTS, TRAIL_CONTEXT_FRAMES, TrimPlan, edge_frames, place, plan_trim, silent_ids,
                                slice_inputs, trail_context)

VOCAB = {";": 1, ":": 2, ",": 3, ".": 4, "!": 5, "?": 6, " ": 16, "h": 50, "i": 51}
SILENT = silent_ids(VOCAB)
# BOS, h, i, ".", EOS: "Hi." as Kokoro times it (the pads get the long edges).
IDS = [0, 50, 51, 4, 0]
DURATIONS = [14, 3, 4, 7, 1]


def test_silent_ids_are_the_pad_and_the_pause_symbols() -> None:
    assert SILENT == {0, 1, 2, 3, 4, 5, 6, 16}


def test_edges_are_the_leading_and_trailing_runs_of_silent_tokens() -> None:
    assert edge_frames(IDS, DURATIONS, SILENT) == (14, 8)
    # A leading quote or space belongs to the leading edge; an inner pause does not.
    assert edge_frames([0, 16, 50, 3, 51, 6, 0], [10, 2, 3, 5, 3, 6, 1], SILENT) == (12, 7)


def test_a_chunk_without_sound_has_no_edges() -> None:
    assert edge_frames([0, 4, 0], [9, 5, 2], SILENT) == (0, 0)
    assert plan_trim([0, 4, 0], [9, 5, 2], SILENT, 4) == TrimPlan(0, 16, 16)


def test_edge_frames_checks_lengths() -> None:
    with pytest.raises(ValueError):
        edge_frames(IDS, DURATIONS[:-1], SILENT)


@pytest.mark.parametrize("k, trail, start, end", [(0, 0, 14, 21), (4, 4, 10, 25), (8, 8, 6, 29), (20, 20, 0, 29),
                                                  (8, 2, 6, 23), (4, 0, 10, 21)])
def test_plan_keeps_k_frames_of_context_before_and_trail_frames_after(k: int, trail: int, start: int, end: int) -> None:
    plan = plan_trim(IDS, DURATIONS, SILENT, k, trail)
    assert (plan.start_frame, plan.end_frame, plan.total_frames) == (start, end, 29)
    assert plan.lead_samples == start * SAMPLES_PER_FRAME
    assert plan.decoded_frames == end - start


def test_the_trailing_context_is_at_most_two_frames_by_default() -> None:
    # Measured: a shorter trail holds quality, a shorter lead does not (trim.py).
    assert trail_context(8) == TRAIL_CONTEXT_FRAMES == 2 and trail_context(1) == 1 and trail_context(0) == 0
    assert plan_trim(IDS, DURATIONS, SILENT, 8) == plan_trim(IDS, DURATIONS, SILENT, 8, 2) == TrimPlan(6, 23, 29)
    with pytest.raises(ValueError):
        plan_trim(IDS, DURATIONS, SILENT, 8, -1)


def test_a_trim_too_small_to_pay_is_no_trim() -> None:
    plan = plan_trim([0, 50, 0], [2, 5, 1], SILENT, 1)  # would save 1 frame
    assert plan == TrimPlan(0, 8, 8) and not plan.trimmed
    with pytest.raises(ValueError):
        plan_trim(IDS, DURATIONS, SILENT, -1)


def test_slice_inputs_cuts_each_tensor_at_its_rate() -> None:
    plan = TrimPlan(10, 25, 29)
    frames = 29
    tensors = {}
    for name, (per_frame, extra) in CUTS["decoder"].items():
        tensors[name] = np.arange(per_frame * frames + extra, dtype=np.float32).reshape(1, -1)
    sliced = slice_inputs("decoder", tensors, plan)
    for name, (per_frame, _extra) in CUTS["decoder"].items():
        assert sliced[name].shape[-1] == per_frame * 15
        assert sliced[name][0, 0] == per_frame * 10
    source, (per_frame, extra) = next((n, r) for n, r in CUTS["generator"].items() if r[1])
    padded = np.arange(per_frame * frames + extra, dtype=np.float32).reshape(1, 1, -1)
    got = slice_inputs("generator", {**{n: np.zeros((1, 512, 2 * frames)) for n in CUTS["generator"]},
                                     source: padded}, plan)[source]
    # The decoded frames' samples plus the reflection pad's 2 * 10 extra samples.
    assert got.shape[-1] == per_frame * 15 + extra and got[0, 0, 0] == per_frame * 10


def test_place_puts_the_decoded_audio_on_the_full_timeline_with_exact_zeros() -> None:
    plan = TrimPlan(10, 25, 29)
    decoded = np.full(15 * SAMPLES_PER_FRAME, 0.5, dtype=np.float32)
    audio = place(plan, decoded)
    assert audio.shape[0] == 29 * SAMPLES_PER_FRAME
    assert not audio[:10 * SAMPLES_PER_FRAME].any() and not audio[25 * SAMPLES_PER_FRAME:].any()
    assert (audio[10 * SAMPLES_PER_FRAME:25 * SAMPLES_PER_FRAME] == 0.5).all()
    with pytest.raises(ValueError):
        place(plan, decoded[:-1])
    untrimmed = np.ones(29 * SAMPLES_PER_FRAME, dtype=np.float32)
    assert place(TrimPlan(0, 29, 29), untrimmed) is not None


def test_the_trim_silence_setting() -> None:
    from kokorod.engine import trim_context
    from kokorod.engine.trim import DEFAULT_CONTEXT_FRAMES
    from kokorod.errors import InputError

    assert trim_context(None) == trim_context("") == DEFAULT_CONTEXT_FRAMES
    assert trim_context("off") is None and trim_context("OFF") is None
    assert trim_context("6") == 6
    for bad in ("-1", "lots"):
        with pytest.raises(InputError):
            trim_context(bad)
