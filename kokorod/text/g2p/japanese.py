"""Japanese grapheme-to-phoneme: misaki's ``Cutlet`` (what Kokoro v1.0 uses), split into word tokens.

``misaki.ja.JAG2P()`` defaults to ``misaki.cutlet.Cutlet``: it normalises the
text (NFKC, half-width Latin, full-width kana, digits read out in hiragana by
``misaki.num2kana.Convert``), tags it with MeCab/UniDic, groups tagger words
that its word list knows as one (待っ+て → 待って), romanises each group to IPA and
joins the groups with spaces, then tidies the spacing. We import
``misaki.cutlet`` directly because ``misaki.ja`` needs pyopenjtalk.

We let Cutlet do all of that, unchanged, and only watch: a subclass records the
normalised text, the tagger's words and the groups. The phoneme string is
Cutlet's own; it is then cut back into one piece per group (the groups'
phonemes, minus spaces, are that string's characters in order), and each group
is mapped onto the input through ``chinese.Alignment``, since normalisation
changes the text.

Cutlet's grouping is cubic in the length of the text, so we run it on the
stretches between punctuation, which no group can span (same result).

Tokens are Cutlet's groups: usually one per tagger word, so particles and
auxiliaries (は, を, です) are tokens of their own, and each is marked as a
word (``word_break``). The digits of one number ("2024", read as several
tagger words) are one token.
"""

from __future__ import annotations

import itertools
import re
import shlex
import threading
from typing import Any

from kokorod.errors import AssetError
from kokorod.text.g2p.align import LATIN_RUN, LatinG2P, Piece, latin_pieces, require_modules, space_latin, to_tokens
from kokorod.text.tokens import Token

_MODULES = ("misaki", "fugashi", "jaconv", "mojimoji", "unidic_lite")
# Characters Cutlet's normalisation never removes (it may create kanji, from
# "㍻", but then the alignment just runs on the whole text): the alignment is
# cut at them to stay fast on long text.
_ANCHORS = re.compile("[。、\n\u4E00-\u9FFF]")
# num2kana.Convert reads at most 9 digits; longer runs come back as an English
# error message whose digits then trip an assert in Cutlet. We space such runs
# out so each digit is read on its own, the way a phone number is.
_LONG_DIGITS = re.compile(r"\d{10,}")
_SPACE = re.compile(r"\s")

# A MeCab tagger is not safe to share between threads, and the watched Cutlet
# keeps each call's records on itself until we have read them.
_LOCK = threading.Lock()


def _make_cutlet(tagger: Any) -> Any:
    """Cutlet with our tagger, recording what it did on each call."""
    from misaki import cutlet

    letters = frozenset(itertools.chain.from_iterable(cutlet.JA_WORDS))  # ~0.1 s, once

    class _WatchedCutlet(cutlet.Cutlet):  # type: ignore[misc]
        def __init__(self) -> None:
            # Cutlet.__init__ would build a bare Tagger(), which looks for
            # /usr/local/etc/mecabrc; the rest of it is these two lines.
            self.tagger = tagger
            self.table = dict(cutlet.HEPBURN)
            self.exceptions: dict[str, str] = {}
            self.normalized = ""
            self.words: list[str] = []   # tagger word surfaces
            self.groups: list[str] = []  # grouped surfaces, one per output token
            self.raw: list[str] = []     # each group's romaji before Cutlet's final clean-up
            self.romaji: list[Any] = []  # Cutlet's tokens (romaji, space), one per group

        def _normalize_text(self, text: str) -> str:
            text = _LONG_DIGITS.sub(lambda m: " ".join(m.group()), text)
            self.normalized = super()._normalize_text(text)
            return self.normalized  # type: ignore[no-any-return]

        def _romaji_tokens(self, words: list[Any]) -> list[Any]:
            self.words = [w.surface for w in words]
            self.groups, self.raw = [], []
            # Cutlet groups words by trying every span to the end of the text
            # against its word list (cubic: 1 s for 460 characters, 80 s for
            # 2,800). A word with a character no listed word contains (a comma,
            # a full stop, a bracket, ASCII) is never inside a group, so we run
            # Cutlet on the stretches between such words: the same groups, fast.
            out: list[Any] = []
            for chunk in _chunks(words, letters):
                first = len(self.groups)
                toks = super()._romaji_tokens(chunk)
                if out and toks:
                    _space_before(self.groups[first], self.raw[first], out[-1])
                out += toks
            self.romaji = out
            return out

        def _romaji_word(self, word: Any) -> str:
            roma: str = super()._romaji_word(word)
            self.groups.append(word.surface)
            self.raw.append(roma)
            return roma

    return _WatchedCutlet()


def _chunks(words: list[Any], letters: frozenset[str]) -> list[list[Any]]:
    """Split before and after every word with a character outside ``letters``."""
    chunks: list[list[Any]] = [[]]
    for w in words:
        if any(c not in letters for c in w.surface):
            chunks += [[w], []]
        else:
            chunks[-1].append(w)
    return [c for c in chunks if c]


def _space_before(surface: str, roma: str, prev: Any) -> None:
    """Cutlet's rule for how a token changes the space after the token before it,
    which it skips for the first token of a chunk (quoted from ``_romaji_tokens``,
    substring tests included)."""
    if surface in "「『«" or roma in "([":
        prev.space = True
    elif surface in "」』»" or roma in "]).,?!:":
        prev.space = False


class JapaneseG2P:
    """``JapaneseG2P()(text) -> list[Token]``: misaki's cutlet phonemes per word.

    Construction is cheap; misaki and the unidic-lite dictionary load on the
    first call. With ``latin``, Latin-script runs ("iPhone", "AI") are
    phonemised by it instead of passing through as raw letters.
    """

    def __init__(self, latin: LatinG2P | None = None) -> None:
        from kokorod.text.languages import BY_CODE

        self._fix = BY_CODE["ja"].fix
        require_modules(_MODULES, "Japanese", self._fix)
        self._latin = latin
        self._cutlet: Any = None

    def load(self) -> None:
        """Import misaki's cutlet and open the dictionary (idempotent)."""
        with _LOCK:
            self._load()

    def _load(self) -> Any:
        if self._cutlet is None:
            try:
                import fugashi
                import unidic_lite
            except ImportError as exc:
                raise AssetError(f"Japanese G2P unavailable ({exc.name or exc})", self._fix) from exc
            dicdir = unidic_lite.DICDIR
            try:
                # MeCab splits its arguments like a shell, so quote the paths.
                tagger = fugashi.Tagger(f"-r {shlex.quote(dicdir + '/mecabrc')} -d {shlex.quote(dicdir)}")
                self._cutlet = _make_cutlet(tagger)
            except ImportError as exc:
                raise AssetError(f"Japanese G2P unavailable ({exc.name or exc})", self._fix) from exc
            except RuntimeError as exc:  # fugashi: the dictionary would not open
                raise AssetError(f"cannot open the unidic-lite dictionary at {dicdir} ({exc})", self._fix) from exc
        return self._cutlet

    def __call__(self, text: str) -> list[Token]:
        if not text.strip():
            return []
        with _LOCK:
            cut = self._load()
            phonemes, _ = cut(text)
            norm, words, groups, romaji = cut.normalized, cut.words, cut.groups, cut.romaji
            pieces = _pieces(phonemes, norm, words, groups, romaji)
            if pieces is None:  # Cutlet did something we cannot follow: one token, still exact
                return [Token(text.strip(), phonemes, word_break=True)] if phonemes else []
            if self._latin is not None:
                pieces = self._with_latin(norm, pieces, romaji)
                space_latin(pieces)
        return to_tokens(text, norm, pieces, _ANCHORS)

    def _with_latin(self, norm: str, pieces: list[Piece], romaji: list[Any]) -> list[Piece]:
        """Replace the groups of each Latin run, which Cutlet passes through as
        written, with the Latin callable's tokens."""
        out: list[Piece] = []
        k = 0
        for m in LATIN_RUN.finditer(norm):
            while k < len(pieces) and pieces[k].end <= m.start():
                out.append(pieces[k])
                k += 1
            end = k
            while end < len(pieces) and pieces[end].end <= m.end():
                end += 1
            run = pieces[k:end]
            # Only whole groups that Cutlet left as written (romaji == surface).
            if (run and run[0].start == m.start() and run[-1].end == m.end()
                    and all(norm[p.start:p.end] == romaji[i].surface for i, p in enumerate(run, k))):
                out += latin_pieces(self._latin, norm, m.start(), m.end())  # type: ignore[arg-type]
                k = end
        out += pieces[k:]
        return out


def _pieces(phonemes: str, norm: str, words: list[str], groups: list[str], romaji: list[Any]) -> list[Piece] | None:
    """One piece per Cutlet group, located in ``norm``, cut from ``phonemes``.

    Cutlet's final string is its groups' romaji joined with spaces, with some
    spaces then removed (around ʔ, runs, ends) and parentheses turned into « »;
    no other character changes. So group k owns the next len(romaji k without
    spaces) non-space characters, and a space after them is its whitespace.
    """
    if len(groups) != len(romaji):
        return None
    # Where each tagger word sits in the normalised text (MeCab skips spaces only).
    spans: list[tuple[int, int]] = []
    cursor = 0
    for w in words:
        pos = norm.find(w, cursor)
        if pos < 0:
            return None
        spans.append((pos, pos + len(w)))
        cursor = pos + len(w)
    pieces: list[Piece] = []
    wi, pi = 0, 0
    for surface, tok in zip(groups, romaji):
        first, joined = wi, ""
        while wi < len(words) and len(joined) < len(surface):
            joined += words[wi]
            wi += 1
        if joined != surface or wi == first:
            return None
        want = len(_SPACE.sub("", tok.surface))
        start = pi
        while want and pi < len(phonemes):
            want -= not phonemes[pi].isspace()
            pi += 1
        if want:
            return None
        ps = phonemes[start:pi].strip()
        ws = pi < len(phonemes) and phonemes[pi].isspace()
        while pi < len(phonemes) and phonemes[pi].isspace():
            pi += 1
        pieces.append(Piece(spans[first][0], spans[wi - 1][1], ps, ws, word=any(c.isalpha() for c in ps)))
    if pi != len(phonemes):
        return None
    return pieces
