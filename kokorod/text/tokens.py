"""The token every G2P returns: written text, its phonemes, and how it joins the next.

misaki's English G2P has its own ``MToken``; the other languages' G2Ps (espeak,
Chinese, Japanese) return these. Both have the attributes the rest of the
pipeline reads (``text``, ``phonemes``, ``whitespace``, ``start_ts``,
``end_ts``), so word timing and splitting treat them alike.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Token:
    text: str                    # verbatim substring of the spoken (normalised) text
    phonemes: str                # in Kokoro's phoneme alphabet; '' = says nothing
    whitespace: bool = False     # a space phoneme follows (Kokoro's word separator)
    # A word ends after this token even without whitespace (Chinese and Japanese
    # words are not separated by spaces in the text, but are words all the same).
    word_break: bool = False
    start_ts: float | None = None  # seconds, set by word timing
    end_ts: float | None = None
