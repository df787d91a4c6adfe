"""WAV files for debugging, tests and offline rendering (16-bit PCM, mono)."""

from __future__ import annotations

import os
from typing import BinaryIO

import numpy as np
import soundfile as sf

from kokorod.audio.formats import float_to_int16
from kokorod.model_facts import FloatAudio

WavTarget = str | os.PathLike[str] | BinaryIO


def write_wav(path: WavTarget, audio: FloatAudio, sample_rate: int) -> None:
    """Write mono 16-bit PCM.

    Quantised by our own ``float_to_int16`` (clip + round) rather than
    libsndfile's float conversion, which does not clip by default (a sample past
    full scale would wrap around), and so that a WAV holds exactly the samples a
    ``pcm_s16le`` client receives.
    """
    samples = float_to_int16(np.asarray(audio, dtype=np.float32).reshape(-1))
    sf.write(path, samples, int(sample_rate), subtype="PCM_16", format="WAV")


def read_wav(path: WavTarget) -> tuple[FloatAudio, int]:
    """Read any WAV libsndfile understands as mono float32 in [-1, 1) plus its
    sample rate. Multi-channel files are averaged down to mono."""
    data, sample_rate = sf.read(path, dtype="float32", always_2d=True)
    audio = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1)
    return np.ascontiguousarray(audio, dtype=np.float32), int(sample_rate)
