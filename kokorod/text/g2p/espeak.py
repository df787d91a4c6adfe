"""Spanish, French, Italian, Brazilian Portuguese and Hindi: misaki's espeak-ng
G2P (what Kokoro's own pipeline uses for them), split into word tokens.

misaki's ``EspeakG2P`` returns one phoneme string per call, with no tokens, so
on its own it cannot time words. espeak separates the words it speaks with
spaces, so we phonemise the whole text once (keeping cross-word effects such as
French liaison, "les amis" → "lez ami") and map its phoneme words back onto the
text's words:

- the usual case: as many phoneme words as text words, one to one;
- otherwise (espeak split "peut-être" or read an abbreviation as two words), we
  phonemise each text word alone to learn how many phoneme words it yields, and
  group the whole-text output by those counts;
- if even that does not add up, each word keeps its phonemes from alone.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

from kokorod.errors import AssetError
from kokorod.text.tokens import Token

_WORD = re.compile(r"\S+")


class _BenignMismatch(logging.Filter):
    """phonemizer warns "words count mismatch" whenever espeak reads one word as
    several ("7:29" -> "seven twenty-nine", "vingt-cinq"). Both callers expect
    it: misaki's English fallback phonemises one token at a time and keeps the
    whole output as that token's phonemes, and EspeakWordG2P below maps the
    output back onto the words itself. The speech is right, so the warning
    (one per clock time in English) is noise; other phonemizer warnings pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("words count mismatch")


_FILTER = _BenignMismatch()


def quiet_word_count_mismatch() -> None:
    """Install the filter on phonemizer's logger (idempotent; phonemizer resets
    the logger's handlers per backend, not its filters)."""
    logger = logging.getLogger("phonemizer")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)


class EspeakWordG2P:
    def __init__(self, espeak_language: str) -> None:
        try:
            from misaki import espeak
        except ImportError as exc:  # phonemizer / espeakng-loader missing
            raise AssetError(f"espeak-ng G2P unavailable ({exc.name or exc})",
                             "pip install phonemizer-fork espeakng-loader (or reinstall kokorod)") from exc
        # version=None: the phoneme mapping Kokoro v1.0 was trained with.
        quiet_word_count_mismatch()
        self._g2p: Any = espeak.EspeakG2P(language=espeak_language)
        self.language = espeak_language
        self._lock = threading.Lock()  # phonemizer's espeak wrapper holds global C state

    def _phonemize(self, text: str) -> str:
        phonemes, _ = self._g2p(text)
        return " ".join(phonemes.split())

    def __call__(self, text: str) -> list[Token]:
        words = _WORD.findall(text)
        if not words:
            return []
        with self._lock:
            whole = self._phonemize(text).split(" ")
            if len(whole) == len(words):
                per_word = whole
            else:
                alone = [self._phonemize(w) for w in words]
                counts = [len(p.split()) for p in alone]
                if sum(counts) == len(whole):
                    per_word, k = [], 0
                    for c in counts:
                        per_word.append(" ".join(whole[k:k + c]))
                        k += c
                else:
                    per_word = alone
        last = len(words) - 1
        # A word whose phonemes contain spaces ("vingt-cinq" → two phoneme
        # words) keeps them: the model hears the same string as from misaki.
        return [Token(w, p, whitespace=i < last) for i, (w, p) in enumerate(zip(words, per_word))]
