"""English grapheme-to-phoneme with misaki, offline.

We subclass misaki's G2P only to replace its constructor, which would download
spaCy's model; everything else (lexicon, number handling, espeak fallback for
out-of-vocabulary words such as names) is misaki's own.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from typing import Any

from kokorod.assets.nlp import require_pipeline
from kokorod.engine.base import MAX_PHONEMES

# Punctuation tokens after which a long input may be split, best first.
_SPLIT_RANK = {".": 0, "!": 0, "?": 0, "…": 0, ";": 1, ":": 1, ",": 2, "—": 2, "–": 2}


@dataclass
class Phonemized:
    """Phonemes for one model call (≤ MAX_PHONEMES) and the misaki tokens behind them."""

    phonemes: str
    tokens: list[Any]  # misaki.en.MToken (untyped library)


def _load_nlp() -> Any:
    import spacy

    with warnings.catch_warnings():
        # The offline 3.6 pipeline runs fine under spaCy 3.8; its version warning is noise.
        warnings.simplefilter("ignore")
        return spacy.load(require_pipeline(), enable=["tok2vec", "tagger"])


class G2PBank:
    """American and British misaki G2Ps sharing one spaCy pipeline.

    misaki and spaCy are not documented as thread-safe, so calls are serialised.
    The daemon runs them on its engine thread anyway.
    """

    def __init__(self) -> None:
        from misaki import en, espeak

        class _OfflineG2P(en.G2P):  # type: ignore[misc]
            def __init__(self, nlp: Any, british: bool) -> None:
                self.version = None
                self.british = british
                self.nlp = nlp
                self.lexicon = en.Lexicon(british)
                self.fallback = espeak.EspeakFallback(british=british)
                self.unk = ""  # an unknown symbol is dropped rather than spoken as noise

        self._nlp = _load_nlp()
        self._cls = _OfflineG2P
        self._g2ps: dict[bool, Any] = {}
        self._lock = threading.Lock()

    def _g2p(self, british: bool) -> Any:
        if british not in self._g2ps:
            self._g2ps[british] = self._cls(self._nlp, british)
        return self._g2ps[british]

    def phonemize(self, text: str, *, british: bool = False) -> list[Phonemized]:
        """Phonemes for ``text`` split into model-sized pieces at natural boundaries.

        Nothing is dropped: an input longer than the model window becomes several
        pieces, cut after sentence punctuation if possible, then clause
        punctuation, then between words.
        """
        with self._lock:
            _, tokens = self._g2p(british)(text)
        return split_tokens(tokens, MAX_PHONEMES)


def _token_phonemes(tok: Any) -> str:
    return (tok.phonemes or "") + (" " if tok.whitespace else "")


def split_tokens(tokens: list[Any], limit: int) -> list[Phonemized]:
    pieces: list[Phonemized] = []
    start = 0
    while start < len(tokens):
        length = 0
        end = start
        best_cut: tuple[int, int] | None = None  # (rank, index after the cut)
        while end < len(tokens):
            add = len(_token_phonemes(tokens[end]))
            if length + add > limit and end > start:
                break
            length += add
            rank = _SPLIT_RANK.get(tokens[end].text)
            if rank is not None and (best_cut is None or rank <= best_cut[0]):
                best_cut = (rank, end + 1)
            end += 1
        if end < len(tokens):
            # Too long: cut at the best punctuation seen, else between words.
            cut = best_cut[1] if best_cut else end
        else:
            cut = end
        chunk = tokens[start:cut]
        text = "".join(_token_phonemes(t) for t in chunk).strip()
        if len(text) > limit:  # a single enormous token (a 600-letter "word"): hard cut
            text = text[:limit]
        if text:
            pieces.append(Phonemized(text, chunk))
        start = cut
    return pieces
