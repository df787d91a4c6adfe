"""``lang: "auto"``: the language of an utterance's text, and the voice that speaks it.

Sans-I/O apart from loading the detector's model (a file inside the
``py3langid`` package, read once, lazily). Chosen over lingua by
bench/lang_detect.py: on our 400 sentences (8 languages, 160 of 3-6 words)
py3langid named every one right, lingua 98 % of the short ones; py3langid costs
~0.04 ms per utterance and adds ~78 MB resident, lingua (restricted to the same
8 languages) ~0.09 ms and ~150 MB. At well under a millisecond, detection runs
on the event loop; the model load (~1 s) runs off it, at start-up
(:meth:`LanguageDetector.load` from a thread).

The gate: text keeps the voice's language unless it has at least
``MIN_LETTERS`` letters, the detector is at least ``MIN_CONFIDENCE`` sure of
another language and gives the voice's own less than ``MAX_VOICE_SCORE``. The shortest correct answers in the bench were Portuguese
and Spanish at 0.51-0.60; single words ("Pizza" 0.72 Italian, "Hello" 0.30
Italian, "Merci" 0.19 Spanish) are exactly what must not switch, so words
that short never decide. A text in a script of its own (kana, Han, Devanagari)
needs fewer letters: two characters already say which script.

Detection names a language family; the voice's own variant wins within it
(English text with ``bf_emma`` stays British; Portuguese is Kokoro's pt-br).
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Mapping

from kokorod.text import languages
from kokorod.text.languages import AUTO, AUTO_KEEP_VOICE, AUTO_MODES, Language  # noqa: F401  (re-exported)

log = logging.getLogger("kokorod.text.detect")

MIN_CONFIDENCE = 0.5   # the detector's normalised probability of its top language
MIN_LETTERS = 8        # letters in a Latin-script text before it may switch language
# ... and the voice's own language must be unlikely: in the bench every foreign
# sentence scored at most 0.04 English, while English commands around a French
# room name ("Turn on the Salle à manger light.") scored 0.45 (French 0.53).
MAX_VOICE_SCORE = 0.2
MIN_LETTERS_OWN_SCRIPT = 2
# A streamed utterance decides on its first sentence, or on this many
# characters if no sentence ends sooner (then the rest follows in its language).
DECIDE_CHARS = 120

# The voice for a detected language when the caller's voice is of another
# (override with --voice-for LANG=VOICE). The ones tests/e2e/test_languages.py
# judges each language by: the best-heard voice of each that we measured.
DEFAULT_VOICE_FOR: dict[str, str] = {
    "en-us": "af_heart", "en-gb": "bf_emma", "es": "ef_dora", "fr": "ff_siwis", "hi": "hf_alpha",
    "it": "if_sara", "pt-br": "pf_dora", "ja": "jf_alpha", "zh": "zf_xiaobei",
}

# py3langid's codes for the languages Kokoro speaks, and back.
_DETECT_CODE = {"en-us": "en", "en-gb": "en", "es": "es", "fr": "fr", "hi": "hi", "it": "it", "pt-br": "pt",
                "ja": "ja", "zh": "zh"}
_FROM_DETECT = {"en": "en-us", "es": "es", "fr": "fr", "hi": "hi", "it": "it", "pt": "pt-br", "ja": "ja", "zh": "zh"}


@dataclass(frozen=True)
class Detection:
    lang: Language
    confidence: float
    scores: Mapping[str, float]  # every candidate's probability, by our code (en-us stands for English)

    def score_of(self, lang: Language) -> float:
        return self.scores.get(_FROM_DETECT[_DETECT_CODE[lang.code]], 0.0)


def _own_script(ch: str) -> bool:
    o = ord(ch)
    return (0x0900 <= o <= 0x097F or 0x3040 <= o <= 0x30FF or 0x3400 <= o <= 0x9FFF
            or 0xF900 <= o <= 0xFAFF or 0xFF66 <= o <= 0xFF9F)


class LanguageDetector:
    """py3langid restricted to ``candidates`` (Kokoro's languages), behind the gate above."""

    def __init__(self, candidates: tuple[str, ...] = languages.CODES, *, min_confidence: float = MIN_CONFIDENCE,
                 min_letters: int = MIN_LETTERS, cache_dir: Path | None = None) -> None:
        """``cache_dir``: the asset cache, where the model is kept mapped
        (``detect_model``); None reads py3langid's file into memory."""
        self.cache_dir = cache_dir
        self.candidates = tuple(sorted({_DETECT_CODE[languages.resolve(c).code] for c in candidates}))
        self.min_confidence, self.min_letters = min_confidence, min_letters
        self._ident: Any = None
        self.failed: str | None = None  # why the model could not be read (then nothing is detected)
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._ident is not None

    def load(self) -> None:
        """Read the model (~1 s, ~50 MB): call it from a thread, never on the event
        loop. A failure is not fatal: detection then keeps every text in its
        voice's language (``detect`` answers None) and says so once in the log."""
        with self._lock:
            if self._ident is None and self.failed is None:
                try:
                    self._ident = self._read_model()
                except Exception as exc:  # e.g. a full /tmp: py3langid unpacks its model there
                    self.failed = f"{type(exc).__name__}: {exc}"
                    log.warning("language detection unavailable (%s): every text keeps its voice's language",
                                self.failed)

    def _read_model(self) -> Any:
        from kokorod.text.detect_model import load_identifier

        return load_identifier(self.candidates, self.cache_dir)

    def detect(self, text: str) -> Detection | None:
        """The text's language, or None when it is too short or the detector unsure."""
        letters = [ch for ch in text if ch.isalpha()]
        own = sum(1 for ch in letters if _own_script(ch))
        if len(letters) < (MIN_LETTERS_OWN_SCRIPT if own * 2 >= len(letters) > 0 else self.min_letters):
            return None
        if self._ident is None:  # the daemon loads it at start-up, off the loop
            self.load()
            if self._ident is None:  # unavailable: the voice's language
                return None
        ranked = self._ident.rank(text)
        code, prob = ranked[0]
        if float(prob) < self.min_confidence or code not in _FROM_DETECT:
            return None
        scores = {_FROM_DETECT[c]: float(p) for c, p in ranked if c in _FROM_DETECT}
        return Detection(languages.BY_CODE[_FROM_DETECT[code]], float(prob), scores)


def language_for(detected: Detection | None, voice_lang: Language) -> Language:
    """What to speak: the detected language, except that the voice's own variant
    of it wins (British English stays British), no decision keeps the voice's,
    and so does text the detector still finds ``MAX_VOICE_SCORE`` likely in the
    voice's language (an English sentence around a French name)."""
    if detected is None or _DETECT_CODE[detected.lang.code] == _DETECT_CODE[voice_lang.code]:
        return voice_lang
    if detected.score_of(voice_lang) >= MAX_VOICE_SCORE:
        return voice_lang
    return detected.lang


def voice_for(lang: Language, caller_voice: str, *, keep_voice: bool, voices: Mapping[str, str]) -> str:
    """The voice that speaks ``lang``: the caller's if it is of that language (or
    the caller asked to keep it), else the configured voice of that language."""
    if keep_voice or languages.for_voice(caller_voice) == lang:
        return caller_voice
    return voices.get(lang.code) or DEFAULT_VOICE_FOR[lang.code]


_SENTENCE_END = re.compile(r"[.!?…](?:\s|$)|[\n。！？]")


@dataclass(frozen=True)
class Choice:
    """What an auto utterance speaks, decided once."""

    lang: Language
    voice: str
    detected: Detection | None  # None: too short or unsure, the voice's language kept
    voice_lang: Language        # the caller's voice's language

    @property
    def switched(self) -> bool:
        """The text is spoken in another language than the caller's voice's."""
        return self.lang != self.voice_lang


class PendingChoice:
    """A streamed utterance's text until its language is decided.

    It decides at the first sentence end where the detector is sure, or at
    ``DECIDE_CHARS`` characters, or at the end of the text, whichever comes
    first; until then the text waits here (bounded: at most ``DECIDE_CHARS``
    plus one fragment). A whole text (one ``speak`` with ``final``) decides at once.
    """

    def __init__(self, detector: LanguageDetector, voice: str, *, keep_voice: bool, voices: Mapping[str, str]) -> None:
        self.detector, self.voice, self.keep_voice, self.voices = detector, voice, keep_voice, voices
        self.voice_lang = languages.for_voice(voice)
        self.text = ""

    def feed(self, text: str, final: bool) -> Choice | None:
        self.text += text
        enough = final or len(self.text) >= DECIDE_CHARS
        if not enough and not _SENTENCE_END.search(self.text):
            return None
        found = self.detector.detect(self.text)
        if found is None and not enough:
            return None  # a short first sentence ("Hi!"): wait for more
        lang = language_for(found, self.voice_lang)
        voice = voice_for(lang, self.voice, keep_voice=self.keep_voice, voices=self.voices)
        return Choice(lang, voice, found, self.voice_lang)
