"""Text → audio with word timings: G2P, model-sized pieces, engine runs, words.

This is a synchronous, blocking API. The daemon calls it only from its engine
executor thread, never from the event loop.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Protocol, Sequence

import numpy as np

from kokorod.assets.voices import VoiceStore, voice_info
from kokorod.engine.base import SAMPLE_RATE, SPEED_MAX, SPEED_MIN, CancelToken, Engine
from kokorod.errors import InputError
from kokorod.text.g2p import G2PBank, Phonemized
from kokorod.timing import SpeechChunk, Word

# kokoro's join_timestamps counts half-frames: 80 per second, i.e. 300 samples.
_SAMPLES_PER_HALF_FRAME = SAMPLE_RATE // 80


class Replacement(Protocol):
    """A span of the spoken text that stands for different written text (a URL
    spoken as words, say). Supplied by the text normaliser."""

    spoken_start: int
    spoken_end: int
    written: str


def check_speed(speed: float) -> float:
    if not isinstance(speed, (int, float)) or isinstance(speed, bool) or not math.isfinite(speed):
        raise InputError("speed must be a number", f"use a value from {SPEED_MIN} to {SPEED_MAX}")
    if not SPEED_MIN <= speed <= SPEED_MAX:
        raise InputError(f"speed {speed} is out of range", f"use a value from {SPEED_MIN} to {SPEED_MAX}")
    return float(speed)


def _is_wordlike(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


_EDGE_PUNCT = "\"'“”‘’()[]{}<>«»,;:!?.…—–-*_`"
# Abbreviations whose period is part of the written word, not sentence punctuation.
_DOTTED = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]")  # a.m, U.S, e.g (the final "." is stripped)
_ABBREVIATIONS = frozenset(
    "dr mr mrs ms prof st jr sr vs etc inc ltd co no fig approx dept est mt ave".split()
)


def _written_form(text: str) -> str:
    """Strip punctuation glued to a word, but keep an abbreviation's final period
    ("a.m.", "U.S.", "e.g.") and currency/percent signs, which belong to the word."""
    core = text.strip(_EDGE_PUNCT)
    if not core:
        return text.strip()
    start = text.find(core)
    end = start + len(core)
    if end < len(text) and text[end] == "." and (_DOTTED.fullmatch(core) or core.lower() in _ABBREVIATIONS):
        end += 1
    return text[start:end]


@dataclass
class _TokenSpan:
    text: str
    start_ts: float | None
    end_ts: float | None
    whitespace: bool
    char_start: int | None


def _locate(tokens: Sequence[Any], spoken: str, cursor: int) -> tuple[list[_TokenSpan], int]:
    """Char offsets of misaki tokens in the spoken text (misaki keeps token text
    verbatim, so a forward search realigns them)."""
    spans: list[_TokenSpan] = []
    for tok in tokens:
        pos = spoken.find(tok.text, cursor) if tok.text else -1
        if pos >= 0:
            cursor = pos + len(tok.text)
        spans.append(_TokenSpan(tok.text, tok.start_ts, tok.end_ts, bool(tok.whitespace), pos if pos >= 0 else None))
    return spans, cursor


def words_from_tokens(
    spans: Iterable[_TokenSpan], offset_samples: int, replacements: Sequence[Replacement] = ()
) -> list[Word]:
    """Group tokens into written words; time them in samples from ``offset_samples``."""
    words: list[Word] = []
    group: list[_TokenSpan] = []
    used_replacements: dict[int, int] = {}  # replacement index → index in ``words``

    def close() -> None:
        timed = [t for t in group if t.start_ts is not None and t.end_ts is not None and _is_wordlike(t.text)]
        if not timed:
            group.clear()
            return
        start = offset_samples + round(timed[0].start_ts * 80) * _SAMPLES_PER_HALF_FRAME  # type: ignore[operator]
        end = offset_samples + round(timed[-1].end_ts * 80) * _SAMPLES_PER_HALF_FRAME  # type: ignore[operator]
        text = _written_form("".join(t.text for t in group))
        rep = _replacement_for(group, replacements)
        if rep is not None:
            if rep in used_replacements:  # another spoken word of the same written span
                i = used_replacements[rep]
                words[i] = Word(words[i].text, words[i].start, max(words[i].end, end))
                group.clear()
                return
            used_replacements[rep] = len(words)
            text = replacements[rep].written
        words.append(Word(text, start, max(start, end)))
        group.clear()

    for span in spans:
        group.append(span)
        if span.whitespace:
            close()
    close()
    return words


def _replacement_for(group: list[_TokenSpan], replacements: Sequence[Replacement]) -> int | None:
    for tok in group:
        if tok.char_start is None or not _is_wordlike(tok.text):
            continue
        for i, rep in enumerate(replacements):
            if rep.spoken_start <= tok.char_start < rep.spoken_end:
                return i
    return None


class Synthesizer:
    """Owns the G2P and voices, and drives an engine. Thread-confined: call it
    from one thread at a time (the daemon's engine thread)."""

    def __init__(self, engine: Engine, voices: VoiceStore, g2p: G2PBank | None = None) -> None:
        self.engine = engine
        self.voices = voices
        self.g2p = g2p if g2p is not None else G2PBank()

    def check_voice(self, voice: str) -> str:
        self.voices.parse(voice)
        return voice

    def synthesize(
        self,
        text: str,
        *,
        voice: str = "af_heart",
        speed: float = 1.0,
        cancel: CancelToken | None = None,
        replacements: Sequence[Replacement] = (),
    ) -> SpeechChunk:
        """Speak ``text`` (already normalised) and time its words.

        Text longer than the model window is split at natural boundaries and the
        pieces are concatenated; nothing is truncated.
        """
        if not isinstance(text, str) or not text.strip():
            raise InputError("there is no text to speak", "pass some text")
        speed = check_speed(speed)
        parts = self.voices.parse(voice)
        pack = self.voices.pack(voice)
        british = voice_info(parts[0][0]).british
        pieces = self.g2p.phonemize(text, british=british)
        audio_parts: list[np.ndarray] = []
        words: list[Word] = []
        offset = 0
        cursor = 0
        for piece in pieces:
            if cancel is not None:
                cancel.raise_if_cancelled()
            audio, piece_words, cursor = self._run_piece(piece, pack, speed, cancel, text, cursor, offset, replacements)
            audio_parts.append(audio)
            words.extend(piece_words)
            offset += audio.shape[0]
        if not audio_parts:
            return SpeechChunk(np.zeros(0, dtype=np.float32), [])
        return SpeechChunk(np.concatenate(audio_parts), words)

    def _run_piece(
        self,
        piece: Phonemized,
        pack: np.ndarray,
        speed: float,
        cancel: CancelToken | None,
        spoken: str,
        cursor: int,
        offset: int,
        replacements: Sequence[Replacement],
    ) -> tuple[np.ndarray, list[Word], int]:
        from kokoro.pipeline import KPipeline

        vocab = self.engine.vocab
        # Symbols outside the vocabulary would be dropped from the ids but not from
        # the tokens, shifting every later word's time; drop them from both.
        for tok in piece.tokens:
            if tok.phonemes:
                tok.phonemes = "".join(ch for ch in tok.phonemes if ch in vocab)
        phonemes = "".join(ch for ch in piece.phonemes if ch in vocab)
        ids = [0, *(vocab[ch] for ch in phonemes), 0]
        style = self.voices.style_for(pack, len(phonemes))
        out = self.engine.run(ids, style, speed, cancel)
        # kokoro's own word-timing logic; it only needs len/indexing/.item()/.sum(),
        # which a numpy array provides.
        KPipeline.join_timestamps(piece.tokens, out.durations)
        spans, cursor = _locate(piece.tokens, spoken, cursor)
        return out.audio, words_from_tokens(spans, offset, replacements), cursor

