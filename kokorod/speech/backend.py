"""What the pipeline needs from a synthesizer, written down as Protocols.

``Synthesizer`` (one engine) and the daemon's ``WorkerSynthesizers`` (one
engine per worker thread) both satisfy ``SpeechBackend``; so does any test
double that makes tones. Every call that can reach the model blocks: it runs
on an engine thread, never on the event loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, Sequence

from kokorod.engine.base import CancelToken
from kokorod.speech.chunk import SpeechChunk

if TYPE_CHECKING:
    from kokorod.speech.synthesizer import WordPhonemes
    from kokorod.text.g2p import LanguageUnavailable
    from kokorod.text.languages import Language
    from kokorod.text.words import Replacement


class VoiceCatalog(Protocol):
    """The voices a backend can speak with (``kokorod.assets.voices.VoiceStore``)."""

    def parse(self, spec: str) -> list[tuple[str, float]]:
        """A voice or a blend (``af_heart:0.7,am_adam:0.3``) as (name, weight)
        pairs; raises ``InputError`` naming the unknown voice."""
        ...


class LanguageSupport(Protocol):
    """Which languages' G2P is installed (``kokorod.text.g2p.G2PBank``)."""

    def unavailable(self, lang: "Language") -> "LanguageUnavailable | None":
        """None when ``lang`` can be spoken here, else why not and how to fix it."""
        ...


class SpeechBackend(Protocol):
    """Written text → timed audio, for one language and voice at a time."""

    @property
    def voices(self) -> VoiceCatalog: ...

    @property
    def g2p(self) -> LanguageSupport: ...

    def synthesize(self, text: str, *, voice: str = "af_heart", speed: float = 1.0,
                   cancel: CancelToken | None = None, replacements: "Sequence[Replacement]" = (),
                   lang: "Language | None" = None, lexicon: Any = None) -> SpeechChunk:
        """Speak ``text`` (already normalised for ``lang``); words are timed
        relative to the chunk's start, written words with no sound the model
        knows are listed in ``SpeechChunk.unspeakable``. Blocking; raises
        ``SynthesisCancelled`` when ``cancel`` fires."""
        ...

    def phonemize(self, text: str, *, lang: "Language", lexicon: Any = None,
                  normalize: bool = True) -> "list[WordPhonemes]":
        """Each word with the phonemes the model would get and their source. Blocking."""
        ...
