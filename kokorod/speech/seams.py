"""Chunk seams: consistent silences and no clicks where chunks meet.

Kokoro renders each chunk with a variable amount of near-silence before and
after the speech, and its first/last sample is not necessarily zero. Played
back to back, that gives uneven pauses (a comma can sound longer than a full
stop) and a step discontinuity at each seam, heard as a click. ``shape_chunk``
normalises every chunk to::

    [lead-in zeros][margin][ speech ][margin][pause zeros]

where each margin is exactly ``margin_samples`` long (original near-silence when
there was enough, zero padding otherwise), the kept audio is faded in and out
with a raised cosine so the chunk starts and ends at exactly 0, and the pause is
chosen by the caller from the boundary that ended the chunk (``pause_for_boundary``).
The audible gap between two chunks is therefore ``pause + 2 * margin``,
independent of how much silence the model happened to produce.

Words move with the audio: each is shifted by exactly the samples removed or
inserted before it, so word times stay on the same timeline as the audio.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from kokorod.model_facts import SAMPLE_RATE, FloatAudio
from kokorod.speech.chunk import SpeechChunk, Word

# 5 ms: long enough that a step at full scale becomes a smooth ramp well below
# the slope of normal speech, short enough not to audibly soften an onset.
DEFAULT_FADE_SAMPLES: Final = 120
# 15 ms of context kept around detected speech, so soft onsets and decays that sit
# just under the threshold (breathy starts, final fricatives) are not clipped.
DEFAULT_MARGIN_SAMPLES: Final = 360
# 5 ms RMS window. Only the first and last loud windows matter, so energy dips
# inside speech are harmless; 5 ms places the edges within a few ms while
# averaging away lone near-silent noise samples.
DEFAULT_RMS_WINDOW_SAMPLES: Final = 120
# -50 dBFS RMS. Kokoro's inter-chunk near-silence sits well below this, while even
# quiet fricatives are around -40 dBFS, so this errs on the side of keeping sound:
# a too-low threshold costs a few ms of extra pause, a too-high one cuts a word.
DEFAULT_SILENCE_THRESHOLD: Final = 10.0 ** (-50.0 / 20.0)

# Pauses appended after a chunk, by what ended it, in ms at speed 1.0. They come on
# top of the two margins (30 ms in all), so the gaps heard are ~30 ms longer.
PAUSE_MS: Final[dict[str, int]] = {
    # End of the utterance or a chunk the caller glues on directly.
    "none": 0,
    # Text cut mid-clause because it was too long for one model run: only a hint
    # of a break, or the cut would sound like a hesitation.
    "forced": 40,
    # Comma, semicolon, colon, dash: a short breath.
    "clause": 120,
    # . ! ? : a clear stop, as a reader would make it.
    "sentence": 300,
    # Blank line: a topic change, noticeably longer than a sentence.
    "paragraph": 550,
}


def pause_for_boundary(kind: str, speed: float = 1.0, sample_rate: int = SAMPLE_RATE) -> int:
    """Samples of silence to append after a chunk that ended at a ``kind`` boundary.

    ``kind`` is one of ``PAUSE_MS`` ("none", "forced", "clause", "sentence",
    "paragraph"). Pauses scale with 1/speed, like the speech itself, so a faster
    voice does not get oddly long gaps.
    """
    try:
        pause_ms = PAUSE_MS[kind]
    except KeyError:
        raise ValueError(f"unknown boundary kind {kind!r}; expected one of {sorted(PAUSE_MS)}") from None
    if not speed > 0:
        raise ValueError(f"speed must be positive, got {speed}")
    return int(round(pause_ms * sample_rate / (1000.0 * speed)))


def speech_bounds(
    audio: FloatAudio,
    *,
    silence_threshold: float = DEFAULT_SILENCE_THRESHOLD,
    window_samples: int = DEFAULT_RMS_WINDOW_SAMPLES,
) -> tuple[int, int] | None:
    """``(start, end)`` (end exclusive) of the span from the first to the last
    window whose RMS exceeds ``silence_threshold``; None if there is none.

    The span covers every above-threshold window entirely, so it errs towards
    keeping up to one window of quiet at each end rather than cutting sound.
    """
    x = np.asarray(audio, dtype=np.float64).reshape(-1)
    n = x.shape[0]
    if n == 0:
        return None
    w = max(1, min(int(window_samples), n))
    energy = np.concatenate(([0.0], np.cumsum(x * x)))
    window_mean_square = (energy[w:] - energy[:-w]) / w
    # Compare energies, not RMS: saves a sqrt per sample.
    loud = np.flatnonzero(window_mean_square > float(silence_threshold) ** 2)
    if loud.size == 0:
        return None
    return int(loud[0]), int(loud[-1]) + w


def _raised_cosine_ramp(length_samples: int) -> FloatAudio:
    """0 -> ~1 over ``length_samples``; the first value is exactly 0."""
    k = np.arange(length_samples, dtype=np.float64)
    return (0.5 - 0.5 * np.cos(np.pi * k / length_samples)).astype(np.float32)


def apply_fades(audio: FloatAudio, fade_samples: int) -> FloatAudio:
    """Copy of ``audio`` faded in at the start and out at the end, so its first
    and last samples are exactly 0. Short audio gets shorter fades (half each);
    ``fade_samples=0`` disables fading."""
    out = np.array(audio, dtype=np.float32, copy=True).reshape(-1)
    if fade_samples <= 0:
        return out
    fade = min(int(fade_samples), out.shape[0] // 2)
    if fade <= 0:
        out[:] = 0.0  # 0 or 1 sample: the only way to start and end at 0
        return out
    ramp = _raised_cosine_ramp(fade)
    out[:fade] *= ramp
    out[-fade:] *= ramp[::-1]
    return out


def _shift_words(words: list[Word], shift_samples: int, lo: int, hi: int) -> list[Word]:
    """Shift by ``shift_samples`` and clamp into ``[lo, hi]``, keeping starts
    monotone and every end >= its start."""
    shifted: list[Word] = []
    previous_start = lo
    for word in words:
        start = min(max(word.start + shift_samples, lo), hi)
        end = min(max(word.end + shift_samples, lo), hi)
        start = max(start, previous_start)
        end = max(end, start)
        shifted.append(Word(word.text, start, end))
        previous_start = start
    return shifted


def shape_chunk(
    chunk: SpeechChunk,
    *,
    lead_in_samples: int,
    pause_samples: int,
    fade_samples: int = DEFAULT_FADE_SAMPLES,
    silence_threshold: float = DEFAULT_SILENCE_THRESHOLD,
    margin_samples: int = DEFAULT_MARGIN_SAMPLES,
    rms_window_samples: int = DEFAULT_RMS_WINDOW_SAMPLES,
) -> SpeechChunk:
    """Trim, fade and pad one chunk (see the module docstring for the layout).

    Output length is exactly ``lead_in + 2 * margin + (end - start) + pause``
    where ``(start, end) = speech_bounds(...)``, or ``lead_in + pause`` if the
    chunk holds no sound above the threshold (its words then collapse to the
    point ``lead_in``). Words are shifted by the net number of samples removed or
    inserted before them and clamped to the chunk's own audio (between the
    lead-in and the pause), since a word cannot sound in inserted silence.
    """
    if lead_in_samples < 0 or pause_samples < 0 or margin_samples < 0 or fade_samples < 0:
        raise ValueError("lead-in, pause, margin and fade must be >= 0 samples")
    audio = np.asarray(chunk.audio, dtype=np.float32).reshape(-1)
    bounds = speech_bounds(audio, silence_threshold=silence_threshold, window_samples=rms_window_samples)

    if bounds is None:
        out = np.zeros(lead_in_samples + pause_samples, dtype=np.float32)
        words = _shift_words(chunk.words, 0, lead_in_samples, lead_in_samples)
        return SpeechChunk(out, words, chunk.sample_rate)

    speech_start, speech_end = bounds
    keep_start = max(0, speech_start - margin_samples)
    keep_end = min(audio.shape[0], speech_end + margin_samples)
    # Fade the model's own samples, not the padding: if speech runs right up to
    # an edge, the step must be smoothed inside the audio, and zeros need no fade.
    kept = apply_fades(audio[keep_start:keep_end], fade_samples)
    pad_before_samples = margin_samples - (speech_start - keep_start)
    pad_after_samples = margin_samples - (keep_end - speech_end)

    out = np.concatenate(
        (
            np.zeros(lead_in_samples + pad_before_samples, dtype=np.float32),
            kept,
            np.zeros(pad_after_samples + pause_samples, dtype=np.float32),
        )
    )
    body_start = lead_in_samples
    body_end = out.shape[0] - pause_samples
    shift_samples = lead_in_samples + pad_before_samples - keep_start
    words = _shift_words(chunk.words, shift_samples, body_start, body_end)
    return SpeechChunk(out, words, chunk.sample_rate)
