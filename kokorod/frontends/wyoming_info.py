"""What the Wyoming server tells Home Assistant (``describe`` → ``info``), and
how a Wyoming ``SynthesizeVoice`` picks a Kokoro voice. Sans-I/O: no sockets.

Languages are reported the way wyoming-piper reports them (``en_US``, ``es_ES``:
Piper's ``language.code``), which is what Home Assistant's Wyoming integration
lists and matches against a pipeline's language (its matcher treats ``_`` and
``-`` alike). On input any spelling kokorod accepts works too (``en-us``,
``en``, ``pt``, ``zh-CN``...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from wyoming.info import Attribution, Info, TtsProgram, TtsVoice
from wyoming.tts import SynthesizeVoice

from kokorod.text.detect import DEFAULT_VOICE_FOR
from kokorod import __version__
from kokorod.errors import InputError
from kokorod.text import languages
from kokorod.text.languages import Language

if TYPE_CHECKING:
    from kokorod.daemon.session import Services

PROGRAM_NAME = "kokorod"
MODEL_ATTRIBUTION = Attribution(name="hexgrad (Kokoro-82M)", url="https://huggingface.co/hexgrad/Kokoro-82M")
PROGRAM_ATTRIBUTION = Attribution(name="kokorod", url="https://huggingface.co/hexgrad/Kokoro-82M")
MODEL_VERSION = "1.0"  # Kokoro-82M v1.0: the model and voice packs kokorod ships

# kokorod's language code -> the locale Piper (and so Home Assistant) uses.
WYOMING_LANGUAGE = {
    "en-us": "en_US", "en-gb": "en_GB", "es": "es_ES", "fr": "fr_FR", "hi": "hi_IN",
    "it": "it_IT", "pt-br": "pt_BR", "ja": "ja_JP", "zh": "zh_CN",
}
# The voice a language alone picks (Kokoro's best-graded voice of each), unless
# the daemon's --voice speaks that language: the same table lang "auto" uses.
DEFAULT_VOICE = DEFAULT_VOICE_FOR
_GENDER = {"f": "female", "m": "male"}


def wyoming_language(lang: Language) -> str:
    return WYOMING_LANGUAGE.get(lang.code, lang.code)


def voice_description(name: str, lang: Language) -> str:
    """``af_heart`` → ``Heart (American English, female)``: what HA's voice menu shows."""
    person = name.partition("_")[2].replace("_", " ").title() or name
    gender = _GENDER.get(name[1:2])
    return f"{person} ({lang.name}{', ' + gender if gender else ''})"


def build_info(services: Services) -> Info:
    """The ``info`` answer: one Wyoming voice per Kokoro voice, with its language;
    voices of a language whose G2P is missing here are ``installed: false``
    (Home Assistant hides them)."""
    available = {info.code: info.available for info in services.languages}
    voices = []
    for name in services.voices:
        lang = languages.for_voice(name)
        voices.append(TtsVoice(
            name=name,
            description=voice_description(name, lang),
            attribution=MODEL_ATTRIBUTION,
            installed=available.get(lang.code, True),
            version=MODEL_VERSION,
            languages=[wyoming_language(lang)],
        ))
    return Info(tts=[TtsProgram(
        name=PROGRAM_NAME,
        description="kokorod: real-time streaming speech with Kokoro-82M",
        attribution=PROGRAM_ATTRIBUTION,
        installed=True,
        version=__version__,
        voices=voices,
        supports_synthesize_streaming=True,
    )])


@dataclass(frozen=True)
class VoiceChoice:
    voice: str             # a voice name or a blend, as kokorod's `speak` takes it
    lang: str | None = None  # a language code when the request named one, else the voice's own


def resolve_voice(requested: SynthesizeVoice | None, services: Services) -> VoiceChoice:
    """A Wyoming voice request → the Kokoro voice (or blend) and language.

    - ``name``: a voice (``af_heart``) or a blend (``af_heart:0.6,af_bella:0.4``);
      it overrides ``language``, as in Wyoming. ``speaker`` is ignored (each
      Kokoro voice is one speaker).
    - ``language`` alone: that language's default voice (the daemon's ``--voice``
      if it speaks it, else ``DEFAULT_VOICE``, else its first voice).
    - nothing: the daemon's ``--voice``.

    Raises ``InputError`` for an unknown voice or language.
    """
    default = services.config.voice
    if requested is None or (not requested.name and not requested.language):
        return VoiceChoice(default)
    if requested.name:
        name = requested.name.strip()
        services.synth.voices.parse(name)  # raises InputError naming the unknown voice
        return VoiceChoice(name)
    lang = languages.resolve(str(requested.language))
    for candidate in (default, DEFAULT_VOICE.get(lang.code)):
        if candidate and languages.for_voice(candidate) == lang and candidate in services.voices:
            return VoiceChoice(candidate, lang.code)
    for name in services.voices:
        if languages.for_voice(name) == lang:
            return VoiceChoice(name, lang.code)
    raise InputError(f"no voice for language {requested.language!r} on this daemon", "run `kokorod voices`")
