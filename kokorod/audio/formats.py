"""Wire sample formats: float32 model audio <-> the bytes a client receives.

Formats (see docs/protocol.md): ``pcm_s16le``, ``pcm_f32le``, ``mulaw``, ``alaw``.
All are mono, little-endian where that matters. The compressed wire formats
(``opus``, ``mp3``) are not sample formats: they go through a stateful encoder
per utterance (kokorod/audio/compressed.py); only their names live here.

Every format goes through the same 16-bit quantisation first (except
``pcm_f32le``), so a G.711 client hears exactly what a 16-bit client would hear,
minus G.711's companding. G.711 is done with two lookup tables built once at
import: 65536 entries (int16 -> code) and 256 entries (code -> int16). Encoding
is then a single gather, which is cheaper per frame than recomputing segments,
and keeps the bit-level rules in one small function that tests can check
against the standard's tables.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from kokorod.model_facts import SAMPLE_RATE, FloatAudio

PCM_S16LE: Final = "pcm_s16le"
PCM_F32LE: Final = "pcm_f32le"
MULAW: Final = "mulaw"
ALAW: Final = "alaw"

FORMATS: Final[tuple[str, ...]] = (PCM_S16LE, PCM_F32LE, MULAW, ALAW)

OPUS: Final = "opus"
MP3: Final = "mp3"
# Wire formats made by an encoder per utterance; both carry 24 kHz only (Opus
# encodes 24 kHz natively, and the model's rate needs no resampling for MP3).
COMPRESSED_FORMATS: Final[tuple[str, ...]] = (OPUS, MP3)
COMPRESSED_SAMPLE_RATE: Final = SAMPLE_RATE


def is_compressed(fmt: str) -> bool:
    return fmt in COMPRESSED_FORMATS


# Consumers need this to size frames and to check `samples` against `pcm`. The
# compressed formats have no fixed size per sample, so they are not here.
BYTES_PER_SAMPLE: Final[dict[str, int]] = {PCM_S16LE: 2, PCM_F32LE: 4, MULAW: 1, ALAW: 1}

# Full scale of int16. Scaling by 32768 (not 32767) makes decode an exact inverse
# on the int16 grid and matches what WebAudio / most clients do (Int16 / 32768);
# the price is that +1.0 clips to 32767, one LSB short.
_INT16_SCALE: Final = 32768.0

Int16Array = npt.NDArray[np.int16]
UInt8Array = npt.NDArray[np.uint8]


def bytes_per_sample(fmt: str) -> int:
    """Size of one mono sample in ``fmt``; ValueError for an unknown format."""
    try:
        return BYTES_PER_SAMPLE[fmt]
    except KeyError:
        raise ValueError(f"unknown audio format {fmt!r}; expected one of {FORMATS}") from None


def float_to_int16(audio: FloatAudio) -> Int16Array:
    """Quantise to int16: NaN -> 0, clip to [-1, 1], round half to even."""
    x = np.asarray(audio, dtype=np.float32)
    # A NaN from the model would otherwise turn into an arbitrary int16 (the cast
    # is undefined for NaN), i.e. a full-scale click.
    x = np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)
    scaled = np.rint(np.clip(x, -1.0, 1.0) * _INT16_SCALE)
    return np.clip(scaled, -32768, 32767).astype(np.int16)


def int16_to_float(samples: Int16Array) -> FloatAudio:
    return (np.asarray(samples, dtype=np.int16).astype(np.float32) / np.float32(_INT16_SCALE))


# --- G.711 -----------------------------------------------------------------
#
# Both laws are piecewise-linear with 8 segments per sign, each segment twice
# as coarse as the previous one; a code is sign | 3-bit segment | 4-bit mantissa.
# Negative int16 inputs are folded with one's complement (~x), as the ITU-T G.191
# reference does, so that x and ~x (= -x-1) get the same magnitude code and
# silence dithering around 0 does not toggle between two different levels.
#
# mu-law works on the top 14 bits with a bias of 33 (132 at 16-bit scale) added so
# the segment boundaries fall on powers of two; codes are transmitted inverted.
# A-law works on the top 13 bits, has two equal-width segments at the bottom (no
# bias), and is transmitted with even bits inverted (xor 0x55).

_MULAW_BIAS_14: Final = 33
_MULAW_MAX_BIASED_14: Final = 0x1FFF


def _mulaw_encode_int16(x: npt.NDArray[np.int32]) -> UInt8Array:
    negative = x < 0
    magnitude_14 = np.where(negative, ~x, x) >> 2
    biased = np.minimum(magnitude_14 + _MULAW_BIAS_14, _MULAW_MAX_BIASED_14)
    # Segment = position of the highest set bit above bit 5 (biased >= 32 always).
    segment = np.floor(np.log2(biased)).astype(np.int32) - 5
    mantissa = (biased >> (segment + 1)) & 0x0F
    code = (segment << 4) | mantissa
    # The sign bit marks negatives *before* the inversion, so +0 goes out as 0xFF.
    code = np.where(negative, code | 0x80, code)
    return (~code & 0xFF).astype(np.uint8)


def _mulaw_decode_to_int16(code: npt.NDArray[np.int32]) -> npt.NDArray[np.int32]:
    u = ~code & 0xFF
    segment = (u >> 4) & 0x07
    mantissa = u & 0x0F
    # Reconstruct at the middle of the quantisation step, at 16-bit scale.
    magnitude = (((mantissa << 3) + 4 * _MULAW_BIAS_14) << segment) - 4 * _MULAW_BIAS_14
    return np.where(u & 0x80, -magnitude, magnitude)


def _alaw_encode_int16(x: npt.NDArray[np.int32]) -> UInt8Array:
    negative = x < 0
    magnitude_13 = np.where(negative, ~x, x) >> 3
    # Segment 0 and 1 share a step of 2 (in 13-bit units); above, each doubles.
    top_bit = np.floor(np.log2(np.maximum(magnitude_13, 1))).astype(np.int32)
    segment = np.clip(top_bit - 4, 0, 7)
    shift = np.maximum(segment, 1)
    mantissa = (magnitude_13 >> shift) & 0x0F
    # No saturation case: the largest int16 magnitude, 32767 >> 3, is 0xFFF, the
    # top of segment 7.
    code = (segment << 4) | mantissa
    code = np.where(negative, code, code | 0x80)
    return ((code ^ 0x55) & 0xFF).astype(np.uint8)


def _alaw_decode_to_int16(code: npt.NDArray[np.int32]) -> npt.NDArray[np.int32]:
    a = (code ^ 0x55) & 0xFF
    segment = (a >> 4) & 0x07
    mantissa = a & 0x0F
    # Middle of the step at 16-bit scale: step is 16 << max(segment - 1, 0).
    linear = (mantissa << 4) + 8
    magnitude = np.where(segment == 0, linear, (linear + 0x100) << np.maximum(segment - 1, 0))
    return np.where(a & 0x80, magnitude, -magnitude)


def _build_tables() -> tuple[UInt8Array, UInt8Array, Int16Array, Int16Array]:
    all_int16 = np.arange(-32768, 32768, dtype=np.int32)
    all_codes = np.arange(256, dtype=np.int32)
    return (
        _mulaw_encode_int16(all_int16),
        _alaw_encode_int16(all_int16),
        _mulaw_decode_to_int16(all_codes).astype(np.int16),
        _alaw_decode_to_int16(all_codes).astype(np.int16),
    )


# Indexed by int16 value + 32768, and by code byte.
_MULAW_ENCODE, _ALAW_ENCODE, _MULAW_DECODE, _ALAW_DECODE = _build_tables()


def int16_to_mulaw(samples: Int16Array) -> UInt8Array:
    return _MULAW_ENCODE[np.asarray(samples, dtype=np.int32) + 32768]


def int16_to_alaw(samples: Int16Array) -> UInt8Array:
    return _ALAW_ENCODE[np.asarray(samples, dtype=np.int32) + 32768]


def mulaw_to_int16(codes: UInt8Array) -> Int16Array:
    return _MULAW_DECODE[np.asarray(codes, dtype=np.uint8)]


def alaw_to_int16(codes: UInt8Array) -> Int16Array:
    return _ALAW_DECODE[np.asarray(codes, dtype=np.uint8)]


# --- public byte-level API --------------------------------------------------


def encode_pcm(audio: FloatAudio, fmt: str) -> bytes:
    """Encode mono float audio (nominally in [-1, 1]) as ``fmt`` bytes.

    ``pcm_f32le`` is passed through unclipped (only NaN/inf are made finite), so
    a float client gets the model's output as is; the integer formats clip.
    """
    if fmt == PCM_S16LE:
        return float_to_int16(audio).astype("<i2", copy=False).tobytes()
    if fmt == PCM_F32LE:
        x = np.asarray(audio, dtype=np.float32)
        if not np.isfinite(x).all():
            x = np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)
        return x.astype("<f4", copy=False).tobytes()
    if fmt == MULAW:
        return int16_to_mulaw(float_to_int16(audio)).tobytes()
    if fmt == ALAW:
        return int16_to_alaw(float_to_int16(audio)).tobytes()
    bytes_per_sample(fmt)  # raises the uniform unknown-format error
    raise AssertionError("unreachable")


def decode_pcm(data: bytes | bytearray | memoryview, fmt: str) -> FloatAudio:
    """Inverse of :func:`encode_pcm` (up to quantisation), as float32 in [-1, 1)."""
    width_bytes = bytes_per_sample(fmt)
    if len(data) % width_bytes:
        raise ValueError(f"{len(data)} bytes is not a whole number of {fmt} samples")
    if fmt == PCM_S16LE:
        return int16_to_float(np.frombuffer(data, dtype="<i2").astype(np.int16))
    if fmt == PCM_F32LE:
        return np.frombuffer(data, dtype="<f4").astype(np.float32)
    codes = np.frombuffer(data, dtype=np.uint8)
    if fmt == MULAW:
        return int16_to_float(mulaw_to_int16(codes))
    return int16_to_float(alaw_to_int16(codes))
