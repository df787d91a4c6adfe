"""Tokens → written words timed in samples.

``join_timestamps`` is our own equivalent of ``kokoro.KPipeline.join_timestamps``
(kokoro imports torch, which the ONNX path must not load): it walks the model's
per-phoneme durations token by token, in half-frames, splitting each space's
duration between the words on either side. tests/unit/text/test_words.py checks it
against kokoro's on the same tokens and durations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Protocol, Sequence

from kokorod.model_facts import SAMPLE_RATE
from kokorod.speech.chunk import Word

# Durations count frames of 600 samples (40 per second); we time in half-frames.
HALF_FRAMES_PER_S = 80
_SAMPLES_PER_HALF_FRAME = SAMPLE_RATE // HALF_FRAMES_PER_S
# The model's BOS duration includes a few frames of lead-in before the first sound.
_BOS_LEAD_FRAMES = 3


class Replacement(Protocol):
    """A span of the spoken text that stands for different written text (a URL
    spoken as words, say). Supplied by the text normaliser."""

    spoken_start: int
    spoken_end: int
    written: str


def join_timestamps(tokens: Sequence[Any], durations: Sequence[int]) -> None:
    """Set ``start_ts``/``end_ts`` (seconds) on tokens from per-id durations.

    ``durations`` has one entry per model input id: BOS, one per phoneme
    character of the tokens (a space between tokens with ``whitespace`` set),
    EOS. Tokens without phonemes are not timed; a whitespace after one still
    consumes its (one) id.
    """
    n = len(durations)
    if not tokens or n < 3:
        return
    left = right = 2 * max(0, int(durations[0]) - _BOS_LEAD_FRAMES)
    i = 1
    for tok in tokens:
        if i >= n - 1:
            break
        if not tok.phonemes:
            if tok.whitespace:
                # Its space is one id. (kokoro's version steps over two ids here,
                # which shifts every later word of the piece by one phoneme.)
                left = right + int(durations[i])
                right = left + int(durations[i])
                i += 1
            continue
        j = i + len(tok.phonemes)
        if j >= n:
            break
        tok.start_ts = left / HALF_FRAMES_PER_S
        token_dur = int(sum(int(d) for d in durations[i:j]))
        space_dur = int(durations[j]) if tok.whitespace else 0
        left = right + 2 * token_dur + space_dur
        tok.end_ts = left / HALF_FRAMES_PER_S
        right = left + space_dur
        i = j + (1 if tok.whitespace else 0)


def is_wordlike(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


_EDGE_PUNCT = "\"'“”‘’„()[]{}<>«»‹›,;:!?¿¡.…—–-*_`।॥。、，！？；：「」『』（）【】《》"
# Abbreviations whose period is part of the written word, not sentence punctuation.
_DOTTED = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]")  # a.m, U.S, e.g (the final "." is stripped)
_ABBREVIATIONS = frozenset(
    "dr mr mrs ms prof st jr sr vs etc inc ltd co no fig approx dept est mt ave".split()
)


# misaki's inline pronunciation, "[Kokoro](/kˈOkəɹO/)": the G2P reads it whole, a
# reader sees the word in the brackets.
_INLINE_PHONEMES = re.compile(r"\[([^\]\[]+)\]\(/[^)]*/\)")


def reader_text(text: str) -> str:
    """Written text as a reader sees it: inline phoneme markup reduced to its word."""
    return _INLINE_PHONEMES.sub(r"\1", text) if "](/" in text else text


def written_form(text: str) -> str:
    """Strip punctuation glued to a word, but keep an abbreviation's final period
    ("a.m.", "U.S.", "e.g.") and currency/percent signs, which belong to the word.
    Inline phoneme markup shows as its word."""
    text = reader_text(text)
    core = text.strip(_EDGE_PUNCT)
    if not core:
        return text.strip()
    start = text.find(core)
    end = start + len(core)
    if end < len(text) and text[end] == "." and (_DOTTED.fullmatch(core) or core.lower() in _ABBREVIATIONS):
        end += 1
    return text[start:end]


@dataclass
class TokenSpan:
    text: str
    start_ts: float | None
    end_ts: float | None
    whitespace: bool
    char_start: int | None
    word_break: bool = False


def locate(tokens: Sequence[Any], spoken: str, cursor: int) -> tuple[list[TokenSpan], int]:
    """Char offsets of G2P tokens in the spoken text (every G2P keeps token text
    verbatim, so a forward search realigns them)."""
    spans: list[TokenSpan] = []
    for tok in tokens:
        pos = spoken.find(tok.text, cursor) if tok.text else -1
        if pos >= 0:
            cursor = pos + len(tok.text)
        spans.append(TokenSpan(tok.text, tok.start_ts, tok.end_ts, bool(tok.whitespace),
                               pos if pos >= 0 else None, bool(getattr(tok, "word_break", False))))
    return spans, cursor


def words_from_tokens(
    spans: Iterable[TokenSpan], offset_samples: int, replacements: Sequence[Replacement] = ()
) -> list[Word]:
    """Group tokens into written words; time them in samples from ``offset_samples``.

    A word ends at whitespace, or after a token marked ``word_break`` (Chinese
    and Japanese words, which the text does not separate with spaces).
    """
    words: list[Word] = []
    group: list[TokenSpan] = []
    used_replacements: dict[int, int] = {}  # replacement index → index in ``words``

    def close() -> None:
        timed = [t for t in group if t.start_ts is not None and t.end_ts is not None and is_wordlike(t.text)]
        if not timed:
            group.clear()
            return
        start = offset_samples + round(timed[0].start_ts * HALF_FRAMES_PER_S) * _SAMPLES_PER_HALF_FRAME  # type: ignore[operator]
        end = offset_samples + round(timed[-1].end_ts * HALF_FRAMES_PER_S) * _SAMPLES_PER_HALF_FRAME  # type: ignore[operator]
        text = written_form("".join(t.text for t in group))
        rep = _replacement_for(group, replacements)
        if rep is not None:
            if rep in used_replacements:  # another spoken word of the same written span
                i = used_replacements[rep]
                words[i] = Word(words[i].text, words[i].start, max(words[i].end, end))
                group.clear()
                return
            used_replacements[rep] = len(words)
            text = reader_text(replacements[rep].written)
        words.append(Word(text, start, max(start, end)))
        group.clear()

    for span in spans:
        group.append(span)
        if span.whitespace or span.word_break:
            close()
    close()
    return words


def _replacement_for(group: list[TokenSpan], replacements: Sequence[Replacement]) -> int | None:
    for tok in group:
        if tok.char_start is None or not is_wordlike(tok.text):
            continue
        for i, rep in enumerate(replacements):
            if rep.spoken_start <= tok.char_start < rep.spoken_end:
                return i
    return None
