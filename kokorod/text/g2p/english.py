"""English grapheme-to-phoneme with misaki, offline.

We subclass misaki's G2P only to replace its constructor, which would download
spaCy's model; everything else (lexicon, number handling, espeak fallback for
out-of-vocabulary words such as names) is misaki's own.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any

from kokorod.assets.nlp import require_pipeline


def load_nlp() -> Any:
    import spacy

    with warnings.catch_warnings():
        # The offline 3.6 pipeline runs fine under spaCy 3.8; its version warning is noise.
        warnings.simplefilter("ignore")
        return spacy.load(require_pipeline(), enable=["tok2vec", "tagger"])


class EnglishG2P:
    """misaki's English G2P (American or British) on a shared spaCy pipeline.

    misaki and spaCy are not documented as thread-safe, so calls are serialised
    (one lock per pipeline, shared by both accents).
    """

    def __init__(self, nlp: Any, lock: threading.Lock, *, british: bool) -> None:
        from misaki import en, espeak

        class _OfflineG2P(en.G2P):  # type: ignore[misc]
            def __init__(self, nlp: Any, british: bool) -> None:
                self.version = None
                self.british = british
                self.nlp = nlp
                self.lexicon = en.Lexicon(british)
                self.fallback = espeak.EspeakFallback(british=british)
                self.unk = ""  # an unknown symbol is dropped (and reported) rather than spoken as noise

        self._g2p = _OfflineG2P(nlp, british)
        self._lock = lock

    def __call__(self, text: str) -> list[Any]:
        """misaki ``MToken``s: ``text``, ``phonemes``, ``whitespace``, timing slots."""
        with self._lock:
            _, tokens = self._g2p(text)
        return list(tokens or [])
