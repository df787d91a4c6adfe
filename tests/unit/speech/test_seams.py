"""Chunk seams: trimming to a fixed margin, fades, pauses, word bookkeeping and
a click detector over concatenated chunks."""

from __future__ import annotations

import numpy as np
import pytest

from kokorod.audio.resample import StreamResampler
from kokorod.speech.seams import (
    DEFAULT_FADE_SAMPLES,
    DEFAULT_MARGIN_SAMPLES,
    DEFAULT_RMS_WINDOW_SAMPLES,
    DEFAULT_SILENCE_THRESHOLD,
    PAUSE_MS,
    apply_fades,
    pause_for_boundary,
    shape_chunk,
    speech_bounds,
)
from kokorod.speech.chunk import SpeechChunk, Word

MARGIN = DEFAULT_MARGIN_SAMPLES
WINDOW = DEFAULT_RMS_WINDOW_SAMPLES
TONE_HZ = 220.0
TONE_AMPLITUDE = 0.5
# Steepest sample-to-sample step of the test tone: what "inside speech" looks like.
TONE_MAX_STEP = TONE_AMPLITUDE * 2 * np.pi * TONE_HZ / 24000


def _tone(samples: int, amplitude: float = TONE_AMPLITUDE, phase: float = np.pi / 2) -> np.ndarray:
    # Default phase pi/2 starts (and usually ends) away from zero: a hard edge.
    t = np.arange(samples) / 24000
    return (amplitude * np.sin(2 * np.pi * TONE_HZ * t + phase)).astype(np.float32)


def _synthetic(
    total_samples: int,
    bursts: list[tuple[str, int, int, float]],
    noise_amplitude: float = 1e-4,
    seed: int = 0,
) -> SpeechChunk:
    """Near-silent noise with tone bursts ``(word, start, end, amplitude)``, each
    carrying a Word on exactly its span."""
    rng = np.random.default_rng(seed)
    audio = rng.uniform(-noise_amplitude, noise_amplitude, total_samples).astype(np.float32)
    words = []
    for text, start, end, amplitude in bursts:
        audio[start:end] = _tone(end - start, amplitude)
        words.append(Word(text, start, end))
    return SpeechChunk(audio, words)


def _max_step(audio: np.ndarray) -> float:
    return float(np.max(np.abs(np.diff(audio.astype(np.float64))))) if audio.shape[0] > 1 else 0.0


# --- pause_for_boundary -------------------------------------------------------------


def test_pause_defaults() -> None:
    assert pause_for_boundary("none") == 0
    assert pause_for_boundary("forced") == 960  # 40 ms
    assert pause_for_boundary("clause") == 2880  # 120 ms
    assert pause_for_boundary("sentence") == 7200  # 300 ms
    assert pause_for_boundary("paragraph") == 13200  # 550 ms
    ordered = [pause_for_boundary(k) for k in ("none", "forced", "clause", "sentence", "paragraph")]
    assert ordered == sorted(ordered)
    assert set(PAUSE_MS) == {"none", "forced", "clause", "sentence", "paragraph"}


def test_pause_scales_with_speed_and_rate() -> None:
    assert pause_for_boundary("sentence", speed=2.0) == 3600
    assert pause_for_boundary("sentence", speed=0.5) == 14400
    assert pause_for_boundary("clause", speed=1.5) == 1920
    assert pause_for_boundary("sentence", sample_rate=16000) == 4800
    with pytest.raises(ValueError, match="unknown boundary"):
        pause_for_boundary("semicolon")
    with pytest.raises(ValueError):
        pause_for_boundary("sentence", speed=0)


# --- speech_bounds / fades --------------------------------------------------------------


def test_speech_bounds_brackets_the_burst() -> None:
    chunk = _synthetic(10_000, [("a", 3000, 6000, 0.5)])
    start, end = speech_bounds(chunk.audio)  # type: ignore[misc]
    assert 3000 - WINDOW < start <= 3000
    assert 6000 <= end < 6000 + WINDOW
    assert speech_bounds(np.zeros(500, np.float32)) is None
    assert speech_bounds(np.zeros(0, np.float32)) is None
    # Shorter than one window: judged as a whole.
    assert speech_bounds(np.full(10, 0.5, np.float32)) == (0, 10)


def test_fades_start_and_end_at_zero() -> None:
    out = apply_fades(np.ones(1000, np.float32), DEFAULT_FADE_SAMPLES)
    assert out[0] == 0.0 and out[-1] == 0.0
    assert np.all(out[DEFAULT_FADE_SAMPLES:-DEFAULT_FADE_SAMPLES] == 1.0)
    assert np.all(np.diff(out[:DEFAULT_FADE_SAMPLES]) > 0)
    # Raised cosine: half-way through the ramp it is at 0.5.
    assert out[DEFAULT_FADE_SAMPLES // 2] == pytest.approx(0.5)
    short = apply_fades(np.ones(5, np.float32), DEFAULT_FADE_SAMPLES)
    assert short[0] == 0.0 and short[-1] == 0.0
    assert apply_fades(np.ones(1, np.float32), 10).tolist() == [0.0]
    assert apply_fades(np.ones(4, np.float32), 0).tolist() == [1.0] * 4


# --- shape_chunk: layout and bookkeeping ---------------------------------------------


@pytest.mark.parametrize("leading_silence", [0, 50, MARGIN, 5000])
@pytest.mark.parametrize("trailing_silence", [0, 200, 4000])
@pytest.mark.parametrize(("lead_in", "pause"), [(0, 0), (1200, 7200), (0, 2880)])
def test_exact_integer_bookkeeping(leading_silence: int, trailing_silence: int, lead_in: int, pause: int) -> None:
    speech = 6000
    chunk = _synthetic(leading_silence + speech + trailing_silence, [("w", leading_silence, leading_silence + speech, 0.5)])
    start, end = speech_bounds(chunk.audio)  # type: ignore[misc]
    shaped = shape_chunk(chunk, lead_in_samples=lead_in, pause_samples=pause)
    assert shaped.samples == lead_in + MARGIN + (end - start) + MARGIN + pause
    assert shaped.audio.dtype == np.float32
    assert shaped.sample_rate == chunk.sample_rate
    assert shaped.audio[0] == 0.0 and shaped.audio[-1] == 0.0
    assert np.all(shaped.audio[:lead_in] == 0.0)
    if pause:
        assert np.all(shaped.audio[-pause:] == 0.0)
    # The word is shifted by exactly what was removed/inserted before it.
    shift = lead_in + MARGIN - start
    assert shaped.words == [Word("w", leading_silence + shift, leading_silence + speech + shift)]
    # And the audio under the word is the original audio (fades aside).
    w = shaped.words[0]
    inner = slice(DEFAULT_FADE_SAMPLES, -DEFAULT_FADE_SAMPLES)
    np.testing.assert_array_equal(shaped.audio[w.start : w.end][inner], chunk.audio[leading_silence : leading_silence + speech][inner])


def test_consistent_gaps_whatever_the_model_left() -> None:
    """Chunks with very different leading/trailing silence end up with the same
    silence around their speech."""
    gaps = set()
    for lead, tail in [(100, 100), (4000, 9000), (0, 0), (12_000, 30)]:
        chunk = _synthetic(lead + 4800 + tail, [("x", lead, lead + 4800, 0.5)])
        shaped = shape_chunk(chunk, lead_in_samples=0, pause_samples=2880)
        loud = np.flatnonzero(np.abs(shaped.audio) > 0.01)
        gaps.add((int(loud[0]), shaped.samples - int(loud[-1])))
    # Identical up to where the tone first/last crosses 0.01 (within one window).
    assert max(g[0] for g in gaps) - min(g[0] for g in gaps) <= WINDOW
    assert max(g[1] for g in gaps) - min(g[1] for g in gaps) <= WINDOW


def test_words_shift_with_trim_and_insertion() -> None:
    bursts = [("one", 4000, 7000, 0.5), ("two", 8000, 11_000, 0.3), ("three", 12_500, 15_000, 0.6)]
    chunk = _synthetic(20_000, bursts)
    start, _ = speech_bounds(chunk.audio)  # type: ignore[misc]
    lead_in = 2400
    shaped = shape_chunk(chunk, lead_in_samples=lead_in, pause_samples=7200)
    shift = lead_in + MARGIN - start
    assert [(w.text, w.start, w.end) for w in shaped.words] == [(t, s + shift, e + shift) for t, s, e, _ in bursts]
    for word, (_, s, e, amplitude) in zip(shaped.words, bursts):
        peak = float(np.max(np.abs(shaped.audio[word.start : word.end])))
        assert peak == pytest.approx(amplitude, rel=1e-3)


def test_words_are_clamped_monotone_and_non_negative() -> None:
    chunk = _synthetic(
        20_000,
        [("speech", 6000, 12_000, 0.5)],
    )
    chunk.words = [
        Word("in-leading-silence", 100, 900),
        Word("overlapping", 500, 7000),
        Word("speech", 6000, 12_000),
        Word("backwards", 11_000, 10_000),
        Word("in-trailing-silence", 18_000, 19_500),
        Word("past-the-end", 25_000, 26_000),
    ]
    lead_in, pause = 1000, 3000
    shaped = shape_chunk(chunk, lead_in_samples=lead_in, pause_samples=pause)
    body_end = shaped.samples - pause
    starts = [w.start for w in shaped.words]
    assert starts == sorted(starts)
    for w in shaped.words:
        assert lead_in <= w.start <= w.end <= body_end
    assert shaped.words[0].start == shaped.words[0].end == lead_in
    assert shaped.words[-1].start == shaped.words[-1].end == body_end
    assert shaped.words[3].end == shaped.words[3].start
    assert [w.text for w in shaped.words] == [w.text for w in chunk.words]


def test_quiet_word_is_never_trimmed() -> None:
    """A soft word (-40 dBFS peak, above the -50 dBFS RMS threshold) after a long
    gap stays, together with its margin."""
    quiet_amplitude = 0.01
    assert quiet_amplitude / np.sqrt(2) > DEFAULT_SILENCE_THRESHOLD
    chunk = _synthetic(30_000, [("loud", 2000, 8000, 0.5), ("soft", 20_000, 23_000, quiet_amplitude)])
    shaped = shape_chunk(chunk, lead_in_samples=0, pause_samples=0)
    soft = shaped.words[1]
    assert soft.end - soft.start == 3000
    np.testing.assert_array_equal(shaped.audio[soft.start : soft.end], chunk.audio[20_000:23_000])
    assert shaped.samples - soft.end >= MARGIN
    # Leading soft word too: trimming stops before it.
    chunk = _synthetic(30_000, [("soft", 3000, 6000, quiet_amplitude), ("loud", 10_000, 16_000, 0.5)])
    shaped = shape_chunk(chunk, lead_in_samples=0, pause_samples=0)
    assert shaped.words[0].start >= MARGIN
    np.testing.assert_array_equal(
        shaped.audio[shaped.words[0].start : shaped.words[0].end], chunk.audio[3000:6000]
    )


def test_sub_threshold_noise_is_trimmed() -> None:
    chunk = _synthetic(48_000, [("w", 20_000, 26_000, 0.5)], noise_amplitude=1e-3)
    shaped = shape_chunk(chunk, lead_in_samples=0, pause_samples=0)
    assert shaped.samples < 6000 + 2 * MARGIN + 2 * WINDOW


def test_silent_chunk_becomes_lead_in_plus_pause() -> None:
    chunk = _synthetic(10_000, [])
    chunk.words = [Word("mumble", 2000, 4000)]
    shaped = shape_chunk(chunk, lead_in_samples=480, pause_samples=2880)
    assert shaped.samples == 480 + 2880
    assert not shaped.audio.any()
    assert shaped.words == [Word("mumble", 480, 480)]
    empty = shape_chunk(SpeechChunk.silence(0), lead_in_samples=0, pause_samples=0)
    assert empty.samples == 0


def test_negative_sizes_are_rejected() -> None:
    with pytest.raises(ValueError):
        shape_chunk(SpeechChunk.silence(10), lead_in_samples=-1, pause_samples=0)


# --- clicks ----------------------------------------------------------------------------


def _hard_edged_chunks() -> list[SpeechChunk]:
    """Chunks whose tone starts/ends abruptly at the very first/last sample (the
    worst case), with a DC offset in one, and one shaped like normal speech
    (soft attack and release, silence around)."""
    rng = np.random.default_rng(7)
    chunks = []
    for i in range(6):
        audio = _tone(int(rng.integers(3000, 9000)), phase=float(rng.uniform(0, 2 * np.pi)))
        if i == 2:
            audio = audio + np.float32(0.1)
        if i == 4:
            audio = apply_fades(audio, 480)
            audio = np.concatenate([np.zeros(3000, np.float32), audio, np.zeros(2000, np.float32)])
        chunks.append(SpeechChunk(audio, [Word(f"w{i}", 0, audio.shape[0])]))
    return chunks


@pytest.mark.parametrize("pause_kind", ["none", "forced", "sentence"])
def test_concatenated_chunks_have_no_clicks(pause_kind: str) -> None:
    chunks = _hard_edged_chunks()
    raw = np.concatenate([c.audio for c in chunks])
    seams_raw = np.cumsum([c.samples for c in chunks])[:-1]
    # Sanity check of the detector: the raw concatenation does click.
    assert max(abs(float(raw[s] - raw[s - 1])) for s in seams_raw) > 3 * TONE_MAX_STEP

    shaped = [
        shape_chunk(c, lead_in_samples=2400 if i == 0 else 0, pause_samples=pause_for_boundary(pause_kind))
        for i, c in enumerate(chunks)
    ]
    joined = np.concatenate([c.audio for c in shaped])
    assert joined[0] == 0.0 and joined[-1] == 0.0
    seams = np.cumsum([c.samples for c in shaped])[:-1]
    # Sample steps inside speech set the scale; near each seam (whole margin and
    # fade on both sides) nothing may be steeper than speech itself plus the
    # fade's own slope.
    inside = _max_step(shaped[0].audio[shaped[0].words[0].start + 500 : shaped[0].words[0].end - 500])
    assert inside == pytest.approx(TONE_MAX_STEP, rel=0.05)
    fade_slope = TONE_AMPLITUDE * 1.2 * np.pi / (2 * DEFAULT_FADE_SAMPLES)
    reach = MARGIN + DEFAULT_FADE_SAMPLES + 1
    for s in seams:
        around = joined[max(0, s - reach) : s + reach]
        assert _max_step(around) <= inside + fade_slope
    assert _max_step(joined) <= inside + fade_slope


@pytest.mark.parametrize("rate", [8000, 22050, 48000])
def test_no_clicks_after_streaming_resample(rate: int) -> None:
    shaped = [shape_chunk(c, lead_in_samples=0, pause_samples=0) for c in _hard_edged_chunks()]
    resampler = StreamResampler(rate)
    out = np.concatenate([resampler.process(c.audio) for c in shaped] + [resampler.flush()])
    # The resampler adds no step steeper than the tone at the output rate plus
    # the fades' slope, rescaled.
    scale = 24000 / rate
    limit = (TONE_MAX_STEP + TONE_AMPLITUDE * 1.2 * np.pi / (2 * DEFAULT_FADE_SAMPLES)) * scale * 1.1
    assert _max_step(out) <= limit
