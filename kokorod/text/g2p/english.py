"""English grapheme-to-phoneme with misaki, offline.

We subclass misaki's G2P only to replace its constructor, which would download
spaCy's model; everything else (lexicon, number handling, espeak fallback for
out-of-vocabulary words such as names) is misaki's own.

Pronunciation lexicons (kokorod.text.lexicon) sit in front of misaki's own
lexicon: misaki asks its lexicon for every token and for every run of tokens
written without a space ("Wi-Fi" is spaCy's "Wi", "-", "Fi"; "Zorblax's" is
"Zorblax", "'s"), longest first, so a lexicon entry matches whole written
words, possessives included, and the token keeps its written text. misaki's
inline ``[word](/phonemes/)`` sets a token's phonemes before any lexicon is
asked, so it wins over every lexicon.
"""

from __future__ import annotations

import threading
from pathlib import Path
import warnings
from typing import Any, Callable

from kokorod.assets.nlp import require_pipeline
from kokorod.text.lexicon import LexiconChain

# misaki's rating for phonemes from its espeak fallback (misaki.espeak.EspeakFallback).
ESPEAK_RATING = 2
LEXICON_RATING = 5  # as misaki rates inline [word](/phonemes/)


# misaki reads only each token's text, whitespace and tag: the tagger (and the
# tok2vec it listens to) is all it needs. Excluded components are never built
# nor read from disk (``enable=`` would still load them, disabled).
_UNUSED_COMPONENTS = ["parser", "senter", "attribute_ruler", "lemmatizer", "ner"]


def load_nlp(*, without_torch: bool = False) -> Any:
    """spaCy's small English pipeline, tagger only.

    spaCy's ``Language()`` imports every installed ``spacy_factories`` plugin;
    here that is spacy-curated-transformers (misaki[en] pulls it in for its
    transformer pipeline), which imports torch and transformers (seconds, and
    ~200 MB resident). The small pipeline uses none of them, so plugin factories are
    skipped while it loads (catalogue's ``Registry.entry_points`` flag on
    spaCy's factory registry, restored afterwards).

    ``without_torch`` (the ONNX engine): spaCy imports thinc, whose
    ``thinc/compat.py`` imports torch when it is installed; torch is blocked
    while spaCy is imported (``kokorod.torch_free.torch_blocked``), so thinc settles
    on ``has_torch = False`` and torch is never loaded.
    """
    import contextlib

    from kokorod.torch_free import torch_blocked

    with torch_blocked() if without_torch else contextlib.nullcontext():
        import spacy

        factories = getattr(spacy.util.registry, "_entry_point_factories", None)
        saved = getattr(factories, "entry_points", None)
        if saved is not None:
            factories.entry_points = False
        try:
            with warnings.catch_warnings():
                # The offline 3.6 pipeline runs fine under spaCy 3.8; its version warning is noise.
                warnings.simplefilter("ignore")
                return spacy.load(require_pipeline(), exclude=_UNUSED_COMPONENTS)
        finally:
            if saved is not None:
                factories.entry_points = saved


class _LexiconOverlay:
    """misaki's ``Lexicon`` with our lexicon chain in front of it."""

    def __init__(self, base: Any, lang: str) -> None:
        self.base = base
        self.lang = lang
        self.chain: LexiconChain | None = None

    def __call__(self, tk: Any, ctx: Any) -> tuple[str | None, int | None]:
        chain = self.chain
        if chain and tk.text:
            match = chain.lookup(tk.text, self.lang)
            if match is not None:
                return match.phonemes, LEXICON_RATING
        return self.base(tk, ctx)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)


class EnglishG2P:
    """misaki's English G2P (American or British) on a shared spaCy pipeline.

    misaki and spaCy are not documented as thread-safe, so calls are serialised
    (one lock per pipeline, shared by both accents).
    """

    def __init__(self, nlp: Any, lock: threading.Lock, *, british: bool, cache_dir: Path | None = None) -> None:
        """``cache_dir``: where the packed lexicon is kept (``packed_lexicon``)."""
        from misaki import en, espeak

        from kokorod.text.g2p.espeak import quiet_word_count_mismatch
        from kokorod.text.g2p.packed_lexicon import misaki_lexicon

        quiet_word_count_mismatch()  # misaki's espeak fallback reads "7:29" as several words: benign

        class _OfflineG2P(en.G2P):  # type: ignore[misc]
            def __init__(self, nlp: Any, british: bool) -> None:
                self.version = None
                self.british = british
                self.nlp = nlp
                self.lexicon = _LexiconOverlay(misaki_lexicon(british, cache_dir), "en-gb" if british else "en-us")
                self.fallback = espeak.EspeakFallback(british=british)
                self.unk = ""  # an unknown symbol is dropped (and reported) rather than spoken as noise

        self._g2p = _OfflineG2P(nlp, british)
        self._lock = lock
        # The chain for calls that pass none (zh/ja call this G2P for Latin
        # runs): G2PBank sets it to the daemon-wide layers.
        self.default_lexicons: Callable[[], LexiconChain] | None = None

    def __call__(self, text: str, lexicons: LexiconChain | None = None) -> list[Any]:
        """misaki ``MToken``s: ``text``, ``phonemes``, ``whitespace``, timing slots.

        ``lexicons``: entries that override misaki's reading of a word
        (default: ``default_lexicons()``, the daemon-wide chain, if set)."""
        overlay = self._g2p.lexicon
        with self._lock:
            if lexicons is None and self.default_lexicons is not None:
                lexicons = self.default_lexicons()
            overlay.chain = lexicons
            try:
                _, tokens = self._g2p(text)
            finally:
                overlay.chain = None
        return list(tokens or [])
