"""Tokens for G2Ps that rewrite their input before phonemising it (Chinese, Japanese).

misaki's Chinese and Japanese G2Ps return one phoneme string for a text they
first rewrite (numbers as words, full-width forms as ASCII). We keep their
pieces in rewritten-text coordinates and map them back onto the input with a
character alignment, so every token's text is a verbatim substring of what the
user wrote while its phonemes are exactly misaki's.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from kokorod.errors import AssetError
from kokorod.text.languages import missing_modules
from kokorod.text.tokens import Token

# The English G2P (or any callable) for Latin-script runs; returns tokens with
# ``text`` (a substring of its input), ``phonemes`` and ``whitespace``.
LatinG2P = Callable[[str], Sequence[Any]]

# Letters, apostrophes and hyphens, words joined by spaces: "New York", "don't".
LATIN_RUN = re.compile(r"[A-Za-z][A-Za-z'’\-]*(?:\s+[A-Za-z][A-Za-z'’\-]*)*")
# Characters the Chinese rewrite (cn2an) never creates or removes: the alignment
# is cut at them so it stays fast on long text (difflib is quadratic).
_ANCHORS = re.compile("[。，、！？；：\n]")

def require_modules(modules: Sequence[str], language: str, fix: str) -> None:
    """Raise AssetError naming the missing modules (cheap: nothing is imported)."""
    missing = missing_modules(modules)
    if missing:
        raise AssetError(f"{language} G2P needs Python packages that are not installed: {', '.join(missing)}", fix)


@dataclass
class Piece:
    """A token in rewritten-text coordinates, before mapping back to the input."""

    start: int
    end: int
    phonemes: str
    whitespace: bool = False
    word: bool = True
    latin: bool = False  # from the Latin callable: wants a space next to other words


class Alignment:
    """Maps spans of a rewritten text back to spans of the original.

    Unchanged characters (and full-width ones made ASCII) map one to one. Each
    changed region (a number rewritten as words, "ｶﾞ" made "ガ") is a block: any span touching it
    maps to the whole original region, and ``blocks`` tells which spans share one
    so they can be merged into a single token.
    """

    def __init__(self, orig: str, new: str, anchors: re.Pattern[str] = _ANCHORS) -> None:
        self._start = [0] * len(new)
        self._end = [0] * len(new)
        self._block = [-1] * len(new)
        block = 0
        for i0, i1, j0, j1 in _segments(orig, new, anchors):
            a, b = orig[i0:i1], new[j0:j1]
            if a == b:
                ops = [("equal", 0, len(a), 0, len(b))]
            else:
                # Compare the original's characters in NFKC form, so that "Ａ"
                # matches the "A" it became and stays a token of its own.
                folded = [unicodedata.normalize("NFKC", c) for c in a]
                ops = difflib.SequenceMatcher(None, folded, list(b), autojunk=False).get_opcodes()
            for tag, a1, a2, b1, b2 in ops:
                for j in range(j0 + b1, j0 + b2):
                    if tag == "equal":
                        self._start[j] = i0 + a1 + (j - j0 - b1)
                        self._end[j] = self._start[j] + 1
                    else:
                        self._start[j], self._end[j], self._block[j] = i0 + a1, i0 + a2, block
                block += tag != "equal"

    def span(self, start: int, end: int) -> tuple[int, int, set[int]]:
        # Both maps are non-decreasing, so the ends of the span bound it.
        return self._start[start], self._end[end - 1], set(self._block[start:end]) - {-1}


def _segments(orig: str, new: str, anchors: re.Pattern[str]) -> list[tuple[int, int, int, int]]:
    """Corresponding (orig, new) segments between anchor characters.

    Anchors are characters the rewrite may create but never removes, so if both
    texts hold the same sequence of them, the k-th of one is the k-th of the
    other; if not (the rewrite created one), the texts are aligned whole."""
    if orig == new:
        return [(0, len(orig), 0, len(new))]
    oi = [m.start() for m in anchors.finditer(orig)]
    ni = [m.start() for m in anchors.finditer(new)]
    if [orig[i] for i in oi] != [new[j] for j in ni]:
        return [(0, len(orig), 0, len(new))]
    out, pi, pj = [], 0, 0
    for i, j in zip(oi, ni):
        out += [(pi, i, pj, j), (i, i + 1, j, j + 1)]
        pi, pj = i + 1, j + 1
    out.append((pi, len(orig), pj, len(new)))
    return out


def latin_pieces(latin: LatinG2P, text: str, start: int, end: int) -> list[Piece]:
    """Phonemise ``text[start:end]`` with the Latin callable, one piece per its token."""
    run = text[start:end]
    toks = [t for t in latin(run) if (t.text or t.phonemes)]
    pieces: list[Piece] = []
    cursor = 0
    for t in toks:
        pos = run.find(t.text, cursor) if t.text else -1
        if pos < 0:  # a token we cannot place: keep the run as one token
            joined = "".join((x.phonemes or "") + (" " if x.whitespace else "") for x in toks).strip()
            return [Piece(start, end, joined, word=True, latin=True)]
        cursor = pos + len(t.text)
        pieces.append(Piece(start + pos, start + cursor, t.phonemes or "", bool(t.whitespace),
                            word=any(c.isalnum() for c in t.text), latin=True))
    return pieces


def space_latin(pieces: list[Piece]) -> None:
    """Put a space between a Latin-callable word and a neighbouring word.

    misaki's own mixed-language path (zh 1.1) joins its English and Chinese
    segments with spaces; without one the model would run the two words together.
    Punctuation keeps its usual spacing.
    """
    for a, b in zip(pieces, pieces[1:]):
        if a.latin != b.latin and a.word and b.word:
            a.whitespace = True


@dataclass
class _Group:
    start: int
    end: int
    blocks: set[int] = field(default_factory=set)
    phonemes: str = ""
    whitespace: bool = False
    word: bool = False


def to_tokens(orig: str, new: str, pieces: list[Piece], anchors: re.Pattern[str] = _ANCHORS) -> list[Token]:
    """Tokens with text from ``orig`` for pieces located in its rewrite ``new``.

    Pieces that map onto the same original characters (the words of one
    rewritten number) become one token; their phonemes keep misaki's spaces.
    """
    if not pieces:
        return []
    # A space after a silent piece belongs to the piece before it, so that merging
    # silent pieces into neighbours cannot lose it.
    for k in range(len(pieces) - 1, -1, -1):
        if not pieces[k].phonemes and pieces[k].whitespace:
            pieces[k].whitespace = False
            if k:
                pieces[k - 1].whitespace = True
    align = Alignment(orig, new, anchors)
    groups: list[_Group] = []
    for p in pieces:
        start, end, blocks = align.span(p.start, p.end)
        g = groups[-1] if groups else None
        if g is not None and (blocks & g.blocks or start < g.end or g.start == g.end or start == end):
            if g.phonemes and p.phonemes:
                g.phonemes += (" " if g.whitespace else "") + p.phonemes
                g.whitespace = p.whitespace
            elif p.phonemes:
                g.phonemes, g.whitespace = p.phonemes, p.whitespace
            g.end = max(g.end, end)
            g.blocks |= blocks
            g.word = g.word or p.word
        else:
            groups.append(_Group(start, end, blocks, p.phonemes, p.whitespace, p.word))
    # Input characters no piece claims (removed by the rewrite) join the token
    # before them, so the text between tokens is only ever whitespace.
    lead = orig[:groups[0].start]
    if lead.strip():
        groups[0].start = len(lead) - len(lead.lstrip())
    for k, g in enumerate(groups):
        nxt = groups[k + 1].start if k + 1 < len(groups) else len(orig)
        gap = orig[g.end:nxt]
        if gap.strip():
            g.end += len(gap.rstrip())
    return [Token(orig[g.start:g.end].strip(), g.phonemes, g.whitespace, word_break=g.word) for g in groups]
