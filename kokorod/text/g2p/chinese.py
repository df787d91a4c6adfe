"""Mandarin grapheme-to-phoneme: misaki's legacy ``ZHG2P`` path, split into word tokens.

Kokoro v1.0 reads Chinese through ``misaki.zh.ZHG2P(version=None)``, which
returns one phoneme string: ``cn2an`` rewrites Arabic numerals as Chinese ones,
``map_punctuation`` turns full-width punctuation into ASCII, each run of CJK
ideographs is cut into words by jieba and each word becomes IPA (joined with
spaces), and everything else (punctuation, Latin letters) passes through raw.

We run the same steps on the same text, but keep the pieces: one token per
jieba word and per punctuation mark. The number rewrite changes the text
("3个" → "三个"), so tokens are built on the rewritten text and mapped back to
the input with a character alignment (``Alignment``); a word that came from
digits takes the input's digits as its text ("2024年" stays "2024年"). Because
the rewrite and the segmentation are misaki's own, on the whole text, the
phonemes equal misaki's (whitespace runs collapsed).

The alignment itself is in ``align.py`` (shared with ``japanese.py``).
"""

from __future__ import annotations

import logging
import re
import threading
import warnings
from typing import Any, Callable

from kokorod.errors import AssetError
from kokorod.text.g2p.align import LATIN_RUN, LatinG2P, Piece, latin_pieces, require_modules, space_latin, to_tokens
from kokorod.text.tokens import Token

_CJK_OR_NOT = re.compile("[\u4E00-\u9FFF]+|[^\u4E00-\u9FFF]+")  # misaki's legacy split
_RAW_WORD = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*")  # letters/digits misaki passes through
_COMBINING_BREVE = chr(815)  # misaki deletes it from its output
_LOCK = threading.Lock()  # jieba, pypinyin and cn2an keep module state; one caller at a time
_MODULES = ("misaki", "cn2an", "jieba", "ordered_set", "pypinyin")


class ChineseG2P:
    """``ChineseG2P()(text) -> list[Token]``: misaki legacy zh phonemes per jieba word.

    Construction is cheap; misaki, cn2an and jieba's dictionary load on the
    first call (about a second). With ``latin``, Latin-script runs ("iPhone",
    "AI") are phonemised by it instead of passing through as raw letters.
    """

    def __init__(self, latin: LatinG2P | None = None) -> None:
        from kokorod.text.languages import BY_CODE

        require_modules(_MODULES, "Chinese", BY_CODE["zh"].fix)
        self._fix = BY_CODE["zh"].fix
        self._latin = latin
        self._zh: Any = None  # misaki.zh.ZHG2P (the class; its helpers are static)
        self._transform: Callable[[str, str], str] | None = None
        self._punct: dict[str, str] = {}

    def load(self) -> None:
        """Import misaki's Chinese path and build jieba's dictionary (idempotent)."""
        with _LOCK:
            self._load()

    def _load(self) -> Any:
        if self._zh is None:
            try:
                import cn2an
                import jieba
                from misaki import zh
            except ImportError as exc:
                raise AssetError(f"Chinese G2P unavailable ({exc.name or exc})", self._fix) from exc
            jieba.setLogLevel(logging.WARNING)  # "Building prefix dict ..." on stderr otherwise
            jieba.initialize()
            # cn2an warns (then leaves the digits alone) on numbers over 16 digits.
            warnings.filterwarnings("ignore", category=UserWarning, module="cn2an")
            self._transform = cn2an.transform
            self._zh = zh.ZHG2P
        return self._zh

    def _mapped(self, c: str) -> str:
        """What misaki's ``map_punctuation`` makes of ``c`` ('，' → ', ', '《' → ' “').

        It strips its result, so the character is padded to keep the spaces."""
        if c not in self._punct:
            self._punct[c] = self._zh.map_punctuation(f"\0{c}\0")[1:-1]
        return self._punct[c]

    def __call__(self, text: str) -> list[Token]:
        if not text.strip():
            return []
        with _LOCK:
            zh = self._load()
            import jieba

            assert self._transform is not None
            conv = self._transform(text, "an2cn")
            pieces: list[Piece] = []
            pos = 0
            for run in _CJK_OR_NOT.findall(conv):
                if "\u4E00" <= run[0] <= "\u9FFF":
                    words = jieba.lcut(run, cut_all=False)
                    for k, w in enumerate(words):
                        ipa = zh.word2ipa(w).replace(_COMBINING_BREVE, "")
                        pieces.append(Piece(pos, pos + len(w), ipa, whitespace=k < len(words) - 1))
                        pos += len(w)
                else:
                    self._other(conv, pos, pos + len(run), pieces)
                    pos += len(run)
            space_latin(pieces)
        return to_tokens(text, conv, pieces)

    def _other(self, conv: str, pos: int, end: int, pieces: list[Piece]) -> None:
        """Pieces for a run without ideographs: spaces, punctuation, Latin, symbols."""
        while pos < end:
            c = conv[pos]
            if c.isspace():
                if pieces:
                    pieces[-1].whitespace = True
                pos += 1
                continue
            m = LATIN_RUN.match(conv, pos, end) if self._latin is not None else None
            if m:
                pieces += latin_pieces(self._latin, conv, pos, m.end())  # type: ignore[arg-type]
                pos = m.end()
                continue
            mapped = self._mapped(c)
            if mapped != c:  # punctuation misaki rewrites, with the spaces it adds
                if mapped[0].isspace() and pieces:
                    pieces[-1].whitespace = True
                pieces.append(Piece(pos, pos + 1, mapped.strip(), mapped[-1].isspace(), word=False))
                pos += 1
                continue
            # Passed through raw, as misaki does: a run of letters/digits, or one symbol.
            m = _RAW_WORD.match(conv, pos, end)
            stop = m.end() if m else pos + 1
            raw = conv[pos:stop].replace(_COMBINING_BREVE, "")
            pieces.append(Piece(pos, stop, raw, word=m is not None))
            pos = stop
