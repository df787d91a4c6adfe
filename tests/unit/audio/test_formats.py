"""Wire formats: exact byte layouts, G.711 against the standard's tables, and
round-trip error bounds for every format."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest

from kokorod.audio.formats import (
    FORMATS,
    alaw_to_int16,
    bytes_per_sample,
    decode_pcm,
    encode_pcm,
    float_to_int16,
    int16_to_alaw,
    int16_to_mulaw,
    mulaw_to_int16,
)
from kokorod.audio.wav import read_wav, write_wav

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)


def test_bytes_per_sample() -> None:
    assert [bytes_per_sample(f) for f in ("pcm_s16le", "pcm_f32le", "mulaw", "alaw")] == [2, 4, 1, 1]
    assert set(FORMATS) == {"pcm_s16le", "pcm_f32le", "mulaw", "alaw"}
    with pytest.raises(ValueError, match="unknown audio format"):
        bytes_per_sample("mp3")
    with pytest.raises(ValueError):
        encode_pcm(np.zeros(4, np.float32), "opus")
    with pytest.raises(ValueError):
        decode_pcm(b"\x00", "opus")


@pytest.mark.parametrize("fmt", FORMATS)
def test_encoded_length_and_empty(fmt: str) -> None:
    audio = np.linspace(-1, 1, 37, dtype=np.float32)
    data = encode_pcm(audio, fmt)
    assert isinstance(data, bytes)
    assert len(data) == 37 * bytes_per_sample(fmt)
    assert decode_pcm(data, fmt).dtype == np.float32
    assert decode_pcm(data, fmt).shape == (37,)
    assert encode_pcm(np.zeros(0, np.float32), fmt) == b""
    assert decode_pcm(b"", fmt).shape == (0,)


def test_partial_sample_is_rejected() -> None:
    with pytest.raises(ValueError, match="whole number"):
        decode_pcm(b"\x00\x00\x00", "pcm_s16le")
    with pytest.raises(ValueError):
        decode_pcm(b"\x00\x00", "pcm_f32le")


# --- pcm_s16le --------------------------------------------------------------


def test_s16le_known_values_and_byte_order() -> None:
    audio = np.array([0.0, 1 / 32768, -1 / 32768, 0.5, -0.5, 1.0, -1.0, 2.0, -3.0], np.float32)
    expected = np.array([0, 1, -1, 16384, -16384, 32767, -32768, 32767, -32768], np.int16)
    data = encode_pcm(audio, "pcm_s16le")
    assert np.array_equal(np.frombuffer(data, "<i2"), expected)
    assert encode_pcm(np.array([1 / 32768, -2 / 32768], np.float32), "pcm_s16le") == b"\x01\x00\xfe\xff"


def test_s16le_rounds_to_nearest() -> None:
    lsb = 1 / 32768
    audio = np.array([0.4 * lsb, 0.6 * lsb, -0.6 * lsb, 100.49 * lsb], np.float32)
    assert np.array_equal(float_to_int16(audio), [0, 1, -1, 100])


def test_s16le_non_finite_values_do_not_click() -> None:
    audio = np.array([np.nan, np.inf, -np.inf, 0.25], np.float32)
    assert np.array_equal(np.frombuffer(encode_pcm(audio, "pcm_s16le"), "<i2"), [0, 32767, -32768, 8192])


def test_s16le_round_trip() -> None:
    grid = ALL_INT16.astype(np.float32) / 32768
    assert np.array_equal(decode_pcm(encode_pcm(grid, "pcm_s16le"), "pcm_s16le"), grid)
    x = np.random.default_rng(1).uniform(-1, 1 - 1 / 32768, 100_000).astype(np.float32)
    err = np.abs(decode_pcm(encode_pcm(x, "pcm_s16le"), "pcm_s16le") - x)
    assert err.max() <= 0.5 / 32768 + 1e-9


# --- pcm_f32le --------------------------------------------------------------


def test_f32le_is_exact_and_little_endian() -> None:
    assert encode_pcm(np.array([1.0], np.float32), "pcm_f32le") == b"\x00\x00\x80\x3f"
    x = np.random.default_rng(2).normal(0, 0.5, 10_000).astype(np.float32)
    assert np.array_equal(decode_pcm(encode_pcm(x, "pcm_f32le"), "pcm_f32le"), x)
    # Unclipped: a float client gets exactly what the model produced.
    assert decode_pcm(encode_pcm(np.array([1.5], np.float32), "pcm_f32le"), "pcm_f32le")[0] == 1.5
    # float64 input is accepted and converted.
    assert decode_pcm(encode_pcm(np.array([0.25]), "pcm_f32le"), "pcm_f32le")[0] == 0.25
    assert decode_pcm(encode_pcm(np.array([np.nan], np.float32), "pcm_f32le"), "pcm_f32le")[0] == 0.0


# --- G.711 mu-law -------------------------------------------------------------

# G.711 mu-law segments, as 14-bit input magnitudes (the standard's table).
MULAW_SEGMENT_FIRST_14 = [0, 31, 95, 223, 479, 991, 2015, 4063]
MULAW_SEGMENT_LAST_14 = [30, 94, 222, 478, 990, 2014, 4062, 8158]


def test_mulaw_reference_values() -> None:
    cases = {0: 0xFF, -1: 0x7F, 32767: 0x80, -32768: 0x00, 4: 0xFE, 8: 0xFE, 12: 0xFD}
    for value, code in cases.items():
        assert int16_to_mulaw(np.array([value]))[0] == code, value
    assert encode_pcm(np.zeros(3, np.float32), "mulaw") == b"\xff\xff\xff"


@pytest.mark.parametrize("segment", range(8))
def test_mulaw_segment_table(segment: int) -> None:
    first, last = MULAW_SEGMENT_FIRST_14[segment], MULAW_SEGMENT_LAST_14[segment]
    # Every 16-bit value whose top 14 bits are `first` gives mantissa 0, `last` 15.
    for low_bits in range(4):
        assert int16_to_mulaw(np.array([4 * first + low_bits]))[0] == 0xFF - 16 * segment
        assert int16_to_mulaw(np.array([4 * last + low_bits]))[0] == 0xF0 - 16 * segment
        # Negatives fold with one's complement: ~x has the same magnitude code.
        assert int16_to_mulaw(np.array([~(4 * first + low_bits)]))[0] == 0x7F - 16 * segment
    # Past the last segment the code saturates.
    assert int16_to_mulaw(np.array([4 * 8159]))[0] == 0x80


def test_mulaw_decoder_table() -> None:
    # Decoder outputs (16-bit scale) at the start of each segment: ((0 + 132) << s) - 132.
    for segment, expected in enumerate([0, 132, 396, 924, 1980, 4092, 8316, 16764]):
        assert mulaw_to_int16(np.array([0xFF - 16 * segment], np.uint8))[0] == expected
        assert mulaw_to_int16(np.array([0x7F - 16 * segment], np.uint8))[0] == -expected
    assert mulaw_to_int16(np.array([0x80, 0x00, 0xF0], np.uint8)).tolist() == [32124, -32124, 120]


def test_mulaw_is_monotone_and_symmetric() -> None:
    decoded = mulaw_to_int16(int16_to_mulaw(ALL_INT16)).astype(np.int32)
    assert np.all(np.diff(decoded) >= 0)
    assert np.array_equal(int16_to_mulaw(~ALL_INT16) ^ 0x80, int16_to_mulaw(ALL_INT16))


# --- G.711 A-law --------------------------------------------------------------

# A-law segments, as 13-bit input magnitudes.
ALAW_SEGMENT_FIRST_13 = [0, 32, 64, 128, 256, 512, 1024, 2048]
ALAW_SEGMENT_LAST_13 = [31, 63, 127, 255, 511, 1023, 2047, 4095]


def test_alaw_reference_values() -> None:
    cases = {0: 0xD5, -1: 0x55, 32767: 0xAA, -32768: 0x2A, 16: 0xD4}
    for value, code in cases.items():
        assert int16_to_alaw(np.array([value]))[0] == code, value
    assert encode_pcm(np.zeros(2, np.float32), "alaw") == b"\xd5\xd5"


@pytest.mark.parametrize("segment", range(8))
def test_alaw_segment_table(segment: int) -> None:
    first, last = ALAW_SEGMENT_FIRST_13[segment], ALAW_SEGMENT_LAST_13[segment]
    for low_bits in range(8):
        assert int16_to_alaw(np.array([8 * first + low_bits]))[0] == (0x80 | segment << 4) ^ 0x55
        assert int16_to_alaw(np.array([8 * last + low_bits]))[0] == (0x8F | segment << 4) ^ 0x55
        assert int16_to_alaw(np.array([~(8 * last + low_bits)]))[0] == (0x0F | segment << 4) ^ 0x55


def test_alaw_decoder_table() -> None:
    # Middle of each segment's first step: 8, 264, 528, 1056, ... (16-bit scale).
    for segment, expected in enumerate([8, 264, 528, 1056, 2112, 4224, 8448, 16896]):
        code = (0x80 | segment << 4) ^ 0x55
        assert alaw_to_int16(np.array([code], np.uint8))[0] == expected
        assert alaw_to_int16(np.array([code & 0x7F], np.uint8))[0] == -expected
    assert alaw_to_int16(np.array([0xD5, 0x55, 0xAA, 0x2A], np.uint8)).tolist() == [8, -8, 32256, -32256]


def test_alaw_is_monotone_and_symmetric() -> None:
    decoded = alaw_to_int16(int16_to_alaw(ALL_INT16)).astype(np.int32)
    assert np.all(np.diff(decoded) >= 0)
    assert np.array_equal(int16_to_alaw(~ALL_INT16) ^ 0x80, int16_to_alaw(ALL_INT16))


def test_g711_matches_audioop_where_available() -> None:
    """Cross-check against CPython's audioop (Sun's g711 code) while it exists.

    A-law is identical. For mu-law, audioop folds negatives as -x rather than
    ~x, so its negative codes are compared through ~x (one step apart for some
    inputs, by design, see formats.py)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")
    raw = ALL_INT16.astype("<i2").tobytes()
    assert np.array_equal(np.frombuffer(audioop.lin2alaw(raw, 2), np.uint8), int16_to_alaw(ALL_INT16))
    positive = ALL_INT16 >= 0
    reference_mu = np.frombuffer(audioop.lin2ulaw(raw, 2), np.uint8)
    ours_mu = int16_to_mulaw(ALL_INT16)
    assert np.array_equal(reference_mu[positive], ours_mu[positive])
    folded = (~ALL_INT16[~positive]).astype("<i2").tobytes()
    assert np.array_equal(np.frombuffer(audioop.lin2ulaw(folded, 2), np.uint8) & 0x7F, ours_mu[~positive])
    codes = bytes(range(256))
    assert np.array_equal(np.frombuffer(audioop.ulaw2lin(codes, 2), "<i2"), mulaw_to_int16(np.arange(256)))
    assert np.array_equal(np.frombuffer(audioop.alaw2lin(codes, 2), "<i2"), alaw_to_int16(np.arange(256)))


def test_g711_round_trip_error_bounds() -> None:
    x = ALL_INT16.astype(np.int32)
    magnitude = np.abs(x)
    # mu-law: half a step is at most 1/32 of the biased magnitude (|x| + 132); +1
    # for the one's complement fold of negatives.
    mu_err = np.abs(mulaw_to_int16(int16_to_mulaw(ALL_INT16)).astype(np.int32) - x)
    assert np.all(mu_err <= (magnitude + 132) / 32 + 1)
    # A-law: 8 in the two linear bottom segments, then 1/32 of the magnitude.
    a_err = np.abs(alaw_to_int16(int16_to_alaw(ALL_INT16)).astype(np.int32) - x)
    assert np.all(a_err <= np.maximum(8, magnitude / 32) + 1)
    # Relative error of a full-scale-ish signal stays around G.711's ~3 %.
    loud = magnitude > 1024
    assert (mu_err[loud] / magnitude[loud]).max() < 0.035
    assert (a_err[loud] / magnitude[loud]).max() < 0.035


@pytest.mark.parametrize("fmt", ["mulaw", "alaw"])
def test_g711_float_round_trip(fmt: str) -> None:
    rng = np.random.default_rng(3)
    x = rng.uniform(-0.98, 0.98, 50_000).astype(np.float32)
    y = decode_pcm(encode_pcm(x, fmt), fmt)
    assert np.all(np.abs(y - x) <= np.abs(x) / 32 + 10 / 32768)
    # A sine survives with G.711's usual SNR (~38 dB).
    t = np.arange(24000) / 24000
    sine = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    noise = decode_pcm(encode_pcm(sine, fmt), fmt) - sine
    snr_db = 10 * np.log10(np.mean(sine**2) / np.mean(noise**2))
    assert snr_db > 35


# --- WAV files ------------------------------------------------------------------


def test_wav_round_trip(tmp_path: Path) -> None:
    x = np.random.default_rng(4).uniform(-1, 1, 5000).astype(np.float32)
    x[:3] = [1.5, -2.0, np.nan]  # clipped, not wrapped; NaN becomes silence
    path = tmp_path / "a.wav"
    write_wav(path, x, 16000)
    y, rate = read_wav(path)
    assert rate == 16000 and y.dtype == np.float32 and y.shape == x.shape
    # Exactly the samples a pcm_s16le client would receive.
    assert np.array_equal(y, decode_pcm(encode_pcm(x, "pcm_s16le"), "pcm_s16le"))
    assert y[:3].tolist() == [32767 / 32768, -1.0, 0.0]
    buffer = io.BytesIO()
    write_wav(buffer, x, 24000)
    buffer.seek(0)
    assert np.array_equal(read_wav(buffer)[0], y)
