"""The languages Kokoro-82M speaks, and how a voice or a ``lang`` field picks one.

Sans-I/O: this module only names languages and their needs. Which G2P, normaliser
and segmentation profile serve a language is decided by the modules that own
those concerns, keyed by ``Language.code``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Sequence

from kokorod.errors import InputError


@dataclass(frozen=True)
class Language:
    code: str                     # canonical wire code: 'en-us', 'es', 'zh', ...
    letter: str                   # the first letter of its voices' names (Kokoro's lang_code)
    name: str
    espeak: str | None = None     # espeak-ng voice, for languages phonemised by espeak
    spaced: bool = True           # words separated by spaces (not zh/ja)
    modules: tuple[str, ...] = ()  # Python modules its G2P needs
    fix: str = "pip install kokorod"  # what installs them

    @property
    def british(self) -> bool:
        return self.code == "en-gb"


_FIX_ZH = "pip install cn2an jieba ordered-set pypinyin pypinyin-dict (or reinstall kokorod)"
_FIX_JA = "pip install fugashi jaconv mojimoji unidic-lite (or reinstall kokorod)"
_ESPEAK = ("phonemizer", "espeakng_loader")

LANGUAGES: tuple[Language, ...] = (
    Language("en-us", "a", "American English", modules=("misaki", "spacy")),
    Language("en-gb", "b", "British English", modules=("misaki", "spacy")),
    Language("es", "e", "Spanish", espeak="es", modules=_ESPEAK),
    Language("fr", "f", "French", espeak="fr-fr", modules=_ESPEAK),
    Language("hi", "h", "Hindi", espeak="hi", modules=_ESPEAK),
    Language("it", "i", "Italian", espeak="it", modules=_ESPEAK),
    Language("pt-br", "p", "Brazilian Portuguese", espeak="pt-br", modules=_ESPEAK),
    Language("ja", "j", "Japanese", spaced=False, modules=("fugashi", "unidic_lite", "jaconv", "mojimoji"), fix=_FIX_JA),
    Language("zh", "z", "Mandarin Chinese", spaced=False, modules=("jieba", "pypinyin", "cn2an", "ordered_set"), fix=_FIX_ZH),
)
BY_CODE = {lang.code: lang for lang in LANGUAGES}
BY_LETTER = {lang.letter: lang for lang in LANGUAGES}
CODES: tuple[str, ...] = tuple(BY_CODE)
# What a client may name instead of a language, to have the text's own detected
# (kokorod.text.detect does it); here so the protocol can check a `lang` field
# with the table alone.
AUTO = "auto"                        # detect; speak with a voice of the detected language
AUTO_KEEP_VOICE = "auto-keep-voice"  # detect; keep the caller's voice, with the detected language's G2P
AUTO_MODES = (AUTO, AUTO_KEEP_VOICE)
_ALIASES = {
    "en": "en-us", "english": "en-us", "a": "en-us", "b": "en-gb", "e": "es", "es-es": "es", "f": "fr",
    "fr-fr": "fr", "h": "hi", "hi-in": "hi", "i": "it", "it-it": "it", "p": "pt-br", "pt": "pt-br",
    "j": "ja", "ja-jp": "ja", "jp": "ja", "z": "zh", "zh-cn": "zh", "cmn": "zh", "zh-hans": "zh",
}


def resolve(code: str) -> Language:
    """A language from its code or a common alias (case and '_' vs '-' ignored)."""
    key = code.strip().lower().replace("_", "-") if isinstance(code, str) else ""
    lang = BY_CODE.get(_ALIASES.get(key, key))
    if lang is None:
        raise InputError(f"unknown language {code!r}", "one of: " + ", ".join(CODES))
    return lang


def for_voice(voice: str) -> Language:
    """Kokoro's rule: a voice's language is its name's first letter; a blend
    ("af_heart:0.6,ef_dora:0.4") takes its first voice's."""
    first = voice.split(",", 1)[0].strip()[:1]
    return BY_LETTER.get(first, BY_CODE["en-us"])


def missing_modules(modules: Sequence[str]) -> list[str]:
    """Those of ``modules`` that cannot be imported here (cheap: nothing is imported)."""
    missing = []
    for name in modules:
        try:
            if importlib.util.find_spec(name) is None:
                missing.append(name)
        except (ImportError, ValueError):
            missing.append(name)
    return missing
