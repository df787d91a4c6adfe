"""The quality gate a candidate engine must pass against the int8 reference.

Two checks, both cheap and dependency-free (numpy only), run at warm-up on the
measuring sentences:

- durations: the per-phoneme frame counts must be equal, so word timing, the
  chunk planner's predictions and everything downstream stay the same;
- audio: the log-mel spectral distance to the reference's audio (dB, RMS over
  mel bands, mean over the frames where the reference speaks) must stay under
  ``MAX_LOG_MEL_DB``.

Why log-mel distance and not SNR of the waveform: the engines' outputs differ
in phase from the first convolution on (fp32 against int8 rounding), so a
waveform SNR calls two equally good renderings different, while the mel
envelope is what a listener (and DNSMOS) hears.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from kokorod.model_facts import SAMPLE_RATE

N_FFT = 1024
HOP = 256
N_MELS = 64
# Frames quieter than this below the reference's loudest frame are silence,
# whose log spectrum is noise floor against noise floor: not compared.
SPEECH_FLOOR_DB = -40.0
# Measured on the measuring sentences (kokorod.engine.measure) on an AMD EPYC
# with AVX-512 VNNI/BF16: int8 against fp32 convolutions 1.39-1.55 dB (1.71 on
# a 5 s sentence; equal durations; DNSMOS in bench/engine_choice.py), the int8
# audio against itself with white noise added at 30 dB SNR 4.40-4.56 dB, at
# 20 dB SNR 8.57-8.79 dB.
# The bound is about twice the int8/fp32 gap (room for other CPUs' kernels)
# and below audible added noise.
MAX_LOG_MEL_DB = 3.0


@dataclass(frozen=True)
class GateResult:
    durations_equal: bool
    log_mel_db: float  # the worst sentence's distance

    @property
    def passed(self) -> bool:
        return self.durations_equal and self.log_mel_db <= MAX_LOG_MEL_DB

    def why(self) -> str:
        if not self.durations_equal:
            return "durations differ from int8"
        if self.log_mel_db > MAX_LOG_MEL_DB:
            return f"audio {self.log_mel_db:.2f} dB from int8 (bound {MAX_LOG_MEL_DB})"
        return f"passed ({self.log_mel_db:.2f} dB from int8)"


@functools.lru_cache(maxsize=2)
def mel_filters(n_mels: int = N_MELS, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE) -> npt.NDArray[np.float64]:
    """Triangular filters on the HTK mel scale, (n_mels, n_fft // 2 + 1)."""
    def to_mel(hz: npt.ArrayLike) -> npt.NDArray[np.float64]:
        return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)

    edges_hz = 700.0 * (10 ** (np.linspace(to_mel(50.0), to_mel(sample_rate / 2), n_mels + 2) / 2595.0) - 1.0)
    bins = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    lo, mid, hi = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rising = (bins[None, :] - lo) / (mid - lo)
    falling = (hi - bins[None, :]) / (hi - mid)
    return np.maximum(0.0, np.minimum(rising, falling))


def log_mel_db(audio: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """(frames, N_MELS) log-mel power in dB."""
    x = np.asarray(audio, dtype=np.float64).reshape(-1)
    if x.size < N_FFT:
        x = np.pad(x, (0, N_FFT - x.size))
    count = 1 + (x.size - N_FFT) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(x, N_FFT)[::HOP][:count] * np.hanning(N_FFT)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    return 10.0 * np.log10(np.maximum(power @ mel_filters().T, 1e-10))


def log_mel_distance(reference: npt.ArrayLike, candidate: npt.ArrayLike) -> float:
    """Mean over the reference's speech frames of the RMS (over mel bands) dB
    difference. Both are cut to the shorter length (equal durations give equal
    lengths; a length mismatch is the durations check's to catch)."""
    ref, cand = log_mel_db(reference), log_mel_db(candidate)
    n = min(len(ref), len(cand))
    if n == 0:
        return 0.0
    ref, cand = ref[:n], cand[:n]
    loudness = 10.0 * np.log10(np.maximum(10 ** (ref / 10.0), 1e-10).sum(axis=1))
    speech = loudness >= loudness.max() + SPEECH_FLOOR_DB
    # A floor relative to the loudest band keeps near-silent bands from
    # weighing as much as the formants.
    floor = ref.max() - 80.0
    diff = np.maximum(ref[speech], floor) - np.maximum(cand[speech], floor)
    return float(np.sqrt((diff ** 2).mean(axis=1)).mean())


def judge(references: list[tuple[npt.ArrayLike, npt.ArrayLike]],
          candidates: list[tuple[npt.ArrayLike, npt.ArrayLike]]) -> GateResult:
    """``references`` / ``candidates``: (audio, durations) per sentence, same order."""
    equal = all(np.array_equal(np.asarray(rd).reshape(-1), np.asarray(cd).reshape(-1))
                for (_, rd), (_, cd) in zip(references, candidates, strict=True))
    worst = max((log_mel_distance(ra, ca) for (ra, _), (ca, _) in zip(references, candidates, strict=True)),
                default=0.0)
    return GateResult(equal, worst)
