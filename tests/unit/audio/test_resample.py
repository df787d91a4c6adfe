"""Streaming resampling: piecewise == one-shot, exact lengths, no seams, and a
shared timeline with rescale_offset."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from kokorod.audio.resample import StreamResampler, rescale_offset, resample_oneshot

RATES = [8000, 16000, 22050, 44100, 48000]
IN_RATE = 24000


def _two_tones(samples: int, rate: int) -> np.ndarray:
    t = np.arange(samples) / rate
    return (0.4 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1500 * t + 0.3)).astype(np.float32)


def _random_pieces(audio: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    pieces, i = [], 0
    while i < audio.shape[0]:
        size = int(rng.choice([0, 1, 2, int(rng.integers(3, 50)), int(rng.integers(50, 5000))]))
        pieces.append(audio[i : i + size])
        i += size
    return pieces


def _stream(resampler: StreamResampler, pieces: list[np.ndarray]) -> tuple[np.ndarray, list[int]]:
    """Output and the output offsets at which each piece's output began."""
    out, boundaries, produced = [], [], 0
    for piece in pieces:
        boundaries.append(produced)
        y = resampler.process(piece)
        assert y.dtype == np.float32
        out.append(y)
        produced += y.shape[0]
    out.append(resampler.flush())
    return np.concatenate(out), boundaries


# --- rescale_offset -------------------------------------------------------------


def test_rescale_offset_values() -> None:
    assert rescale_offset(24000, 48000) == 48000
    assert rescale_offset(1, 48000) == 2
    assert rescale_offset(2, 8000) == 0  # floor of 0.67
    assert rescale_offset(3, 8000) == 1
    assert rescale_offset(1000, 22050) == 918  # 918.75 -> floor
    assert rescale_offset(12345, 24000) == 12345
    assert rescale_offset(0, 44100) == 0
    # Exact for long utterances: no float rounding at large offsets.
    hours = 24000 * 3600 * 10
    assert rescale_offset(hours + 1, 44100) == (hours + 1) * 44100 // 24000
    with pytest.raises(ValueError):
        rescale_offset(10, 0)


@pytest.mark.parametrize("rate", RATES)
def test_rescale_offset_is_monotone_floor(rate: int) -> None:
    offsets = np.arange(0, 100_000, 7)
    mapped = np.array([rescale_offset(int(n), rate) for n in offsets])
    assert np.all(np.diff(mapped) >= 0)
    for n, m in zip(offsets[:500], mapped[:500]):
        exact = Fraction(int(n) * rate, IN_RATE)
        assert m <= exact < m + 1


# --- StreamResampler --------------------------------------------------------------


def test_passthrough_at_equal_rates() -> None:
    r = StreamResampler(24000)
    assert r.passthrough
    x = _two_tones(1000, IN_RATE)
    y = r.process(x)
    assert np.array_equal(y, x) and y is not x
    assert r.flush().shape == (0,)
    assert r.in_samples == r.out_samples == 1000
    # float64 input is converted.
    assert StreamResampler(24000).process(np.ones(3)).dtype == np.float32


@pytest.mark.parametrize("rate", RATES)
def test_pieces_equal_oneshot(rate: int) -> None:
    rng = np.random.default_rng(rate)
    x = _two_tones(2 * IN_RATE + 123, IN_RATE)
    y, _ = _stream(StreamResampler(rate), _random_pieces(x, rng))
    reference = resample_oneshot(x, rate)
    assert y.shape == reference.shape
    np.testing.assert_allclose(y, reference, atol=1e-5)


@pytest.mark.parametrize("rate", RATES)
def test_total_length_after_flush(rate: int) -> None:
    rng = np.random.default_rng(rate + 1)
    for n in [0, 1, 2, 3, 599, 600, 2401, 24000, 24001, 50000, int(rng.integers(1, 100_000))]:
        r = StreamResampler(rate)
        y, _ = _stream(r, _random_pieces(np.zeros(n, np.float32), rng))
        exact = Fraction(n * rate, IN_RATE)
        # soxr rounds to nearest: never below the floor that rescale_offset uses.
        assert abs(y.shape[0] - exact) <= Fraction(1, 2), (n, y.shape[0], float(exact))
        assert y.shape[0] >= rescale_offset(n, rate)
        assert r.out_samples == y.shape[0] and r.in_samples == n


@pytest.mark.parametrize("rate", RATES)
def test_no_discontinuity_and_shared_timeline(rate: int) -> None:
    """The output must be the same two tones sampled at the output rate, at the
    same instants. A glitch at a piece boundary or any time shift between input
    and output offsets would show up as a large error."""
    rng = np.random.default_rng(rate + 2)
    x = _two_tones(IN_RATE, IN_RATE)
    y, boundaries = _stream(StreamResampler(rate), _random_pieces(x, rng))
    expected = _two_tones(y.shape[0], rate)
    edge_samples = rate // 50  # the filter sees zeros before 0 and after the end
    interior = slice(edge_samples, y.shape[0] - edge_samples)
    assert np.max(np.abs(y[interior] - expected[interior])) < 1e-4
    # And explicitly at the seams: sample-to-sample steps no larger than the
    # signal's own steepest slope.
    max_step = (0.4 * 440 + 0.2 * 1500) * 2 * np.pi / rate * 1.05
    for b in boundaries:
        if edge_samples < b < y.shape[0] - edge_samples:
            assert abs(float(y[b] - y[b - 1])) <= max_step


@pytest.mark.parametrize("rate", RATES)
def test_burst_lands_at_rescaled_offset(rate: int) -> None:
    """A word that starts at input sample s is heard at rescale_offset(s)."""
    x = np.zeros(IN_RATE, np.float32)
    start, length = 9_001, 4_800
    envelope = np.hanning(length).astype(np.float32)
    x[start : start + length] = envelope * _two_tones(length, IN_RATE)
    r = StreamResampler(rate)
    y = np.concatenate([r.process(x[:10_000]), r.process(x[10_000:]), r.flush()])
    energy_centre_out = np.sum(np.arange(y.shape[0]) * y**2) / np.sum(y**2)
    energy_centre_in = np.sum(np.arange(x.shape[0]) * x.astype(np.float64) ** 2) / np.sum(x.astype(np.float64) ** 2)
    assert abs(energy_centre_out - rescale_offset(round(energy_centre_in), rate)) < 2


def test_flush_ends_the_stream_and_reset_restarts() -> None:
    r = StreamResampler(16000)
    x = _two_tones(4800, IN_RATE)
    first = np.concatenate([r.process(x), r.flush()])
    assert r.finished
    assert r.flush().shape == (0,)
    with pytest.raises(RuntimeError):
        r.process(x)
    r.reset()
    assert not r.finished and r.in_samples == 0
    second = np.concatenate([r.process(x), r.flush()])
    np.testing.assert_array_equal(first, second)


def test_empty_pieces_and_pending() -> None:
    r = StreamResampler(48000)
    assert r.process(np.zeros(0, np.float32)).shape == (0,)
    y = r.process(_two_tones(2400, IN_RATE))
    assert r.pending_samples == 4800 - y.shape[0]
    tail = r.flush()
    assert y.shape[0] + tail.shape[0] == 4800
    assert r.pending_samples == 0


def test_invalid_rates() -> None:
    with pytest.raises(ValueError):
        StreamResampler(0)
    with pytest.raises(ValueError):
        StreamResampler(16000, in_rate=-1)
