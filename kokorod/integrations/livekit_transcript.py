"""kokorod's chunk and word events → the timed transcript pieces LiveKit wants.

Pure (no LiveKit import), so tests/unit/integrations/test_livekit_mapping.py checks it alone.

LiveKit's transcription synchronizer concatenates the ``TimedString``s a TTS
emits and shows that text as the agent's transcript, pacing it by each piece's
``start_time``. So the pieces must add up to the text as written (punctuation
and spaces included), and each must carry the time of the word it holds.
kokorod gives both halves separately: a ``chunk`` event with the text as the
user wrote it, then ``word`` events with the written word and its times (no
surrounding punctuation). This module lays the words over their chunk's text:
a word's piece runs from the end of the previous piece to the end of the word,
plus the punctuation and spaces after it; the chunk's tail with no word in it
goes with its last word.

Each piece is ready as soon as its word arrives (never held back for the next
word), because the framework attaches a piece to the next audio frame pushed:
a held-back piece would ride on later audio than it describes.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = ["TimedPiece", "TranscriptAligner"]


@dataclass(frozen=True)
class TimedPiece:
    text: str
    start_s: float | None  # on the utterance's timeline; None: text that no word times
    end_s: float | None


def _is_wordlike(ch: str) -> bool:
    return ch.isalnum() or unicodedata.category(ch).startswith("M")


def _unspaced(ch: str) -> bool:
    """Chinese and Japanese text has no spaces between chunks; everything else does."""
    name = unicodedata.name(ch, "")
    return name.startswith(("CJK", "HIRAGANA", "KATAKANA", "IDEOGRAPHIC", "FULLWIDTH", "HALFWIDTH"))


class TranscriptAligner:
    """Feed it an utterance's events in order; it returns the pieces to emit."""

    def __init__(self) -> None:
        self._text = ""     # the current chunk's text
        self._cursor = 0    # how much of it the pieces so far cover
        self._words = 0     # words seen in the current chunk
        self._spaced_out = True  # what was emitted so far ends in a space (or is nothing)

    def chunk(self, text: str, start_s: float) -> list[TimedPiece]:
        """A new chunk begins; returns what was left of the previous one."""
        rest = self._flush_rest(start_s)
        self._text, self._cursor, self._words = text, 0, 0
        return rest

    def word(self, text: str, start_s: float, end_s: float) -> list[TimedPiece]:
        self._words += 1
        end = self._span_end(text)
        if end < 0:
            # Not in the chunk as written (should not happen: words carry the
            # written form); still show it, spaced like a word.
            return [self._piece(text + " ", start_s, end_s)]
        piece = self._text[self._cursor:end]
        self._cursor = end
        if end == len(self._text):
            piece = self._spaced(piece)
        return [self._piece(piece, start_s, end_s)]

    def seen_word(self, text: str) -> None:
        """A word already shown (re-spoken after a resume): step over its text."""
        self._words += 1
        end = self._span_end(text)
        if end >= 0:
            self._cursor = end

    def drop_rest(self) -> None:
        """The utterance resumes elsewhere: what is left of this chunk will come
        again in the resumed part's chunks, so it is not shown from here."""
        self._cursor = len(self._text)

    def finish(self, end_s: float) -> list[TimedPiece]:
        """The utterance ended; returns the text no word covered, if any."""
        rest = self._flush_rest(end_s)
        self._text, self._cursor, self._words = "", 0, 0
        return rest

    def _span_end(self, word: str) -> int:
        """Where the piece of ``word`` ends in the chunk (-1: not found): after the
        punctuation attached to it ("Hello," "there.") and the spaces that follow;
        the chunk's last word takes the chunk's tail along."""
        found = self._find(word)
        if found < 0:
            return -1
        end = found + len(word)
        while end < len(self._text) and not self._text[end].isspace() and not _is_wordlike(self._text[end]):
            end += 1
        while end < len(self._text) and self._text[end].isspace():
            end += 1
        if not any(_is_wordlike(c) for c in self._text[end:]):
            end = len(self._text)
        return end

    def _find(self, word: str) -> int:
        # In spaced scripts a whole word first ("a" is not the one inside "cat");
        # Chinese and Japanese words have no boundaries: the next occurrence.
        if not any(_unspaced(c) for c in word):
            whole = re.compile(r"(?<!\w)" + re.escape(word) + r"(?!\w)", re.IGNORECASE).search(self._text, self._cursor)
            if whole is not None:
                return whole.start()
        at = self._text.find(word, self._cursor)
        return at if at >= 0 else self._text.lower().find(word.lower(), self._cursor)

    def _flush_rest(self, at_s: float) -> list[TimedPiece]:
        rest = self._text[self._cursor:]
        self._cursor = len(self._text)
        if not rest.strip():
            return []
        # A chunk none of whose words were timed (or the text after its last
        # one): shown when the next chunk starts, at that time.
        return [self._piece(self._spaced(rest), at_s if self._words == 0 else None, None)]

    def _piece(self, text: str, start_s: float | None, end_s: float | None) -> TimedPiece:
        if self._spaced_out:
            # A chunk may begin with the space that separated it from the previous
            # one, which its last piece already ends with: keep one.
            text = text.lstrip()
        self._spaced_out = text[-1:].isspace()
        return TimedPiece(text, start_s, end_s)

    @staticmethod
    def _spaced(piece: str) -> str:
        """Chunk texts do not carry the space before the next chunk: add it back."""
        stripped = piece.rstrip()
        if not stripped or piece != stripped or _unspaced(stripped[-1]):
            return piece
        return piece + " "
