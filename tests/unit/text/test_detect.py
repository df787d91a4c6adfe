"""lang "auto": the detector's gate and the voice it picks (kokorod.text.detect)."""

from __future__ import annotations

import pytest

from kokorod.text import languages
from kokorod.text.detect import (
    DECIDE_CHARS, DEFAULT_VOICE_FOR, LanguageDetector, PendingChoice, language_for, voice_for,
)

EN, FR = languages.BY_CODE["en-us"], languages.BY_CODE["fr"]


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    d = LanguageDetector()
    d.load()
    return d


@pytest.mark.parametrize("text, code", [
    ("Bienvenue dans Home Assistant, les lumières de la cuisine sont éteintes.", "fr"),
    ("¿Dónde está la estación de tren?", "es"),
    ("Vorrei prenotare un tavolo per quattro persone.", "it"),
    ("Hoje o tempo está ótimo para caminhar no parque.", "pt-br"),
    ("今日はいい天気ですね。", "ja"),
    ("今天天气很好。", "zh"),
    ("आज मौसम बहुत अच्छा है।", "hi"),
    ("The train to London leaves at half past nine.", "en-us"),
])
def test_detects_each_language(detector: LanguageDetector, text: str, code: str) -> None:
    found = detector.detect(text)
    assert found is not None and found.lang.code == code and found.confidence >= 0.5


@pytest.mark.parametrize("text", ["Pizza", "Merci", "Hello", "OK.", "7:29", "Ciao!", ""])
def test_short_text_is_undecided(detector: LanguageDetector, text: str) -> None:
    assert detector.detect(text) is None


def test_own_script_needs_only_a_few_characters(detector: LanguageDetector) -> None:
    found = detector.detect("你好。")
    assert found is not None and found.lang.code == "zh"


def test_an_english_sentence_with_one_french_name_stays_english(detector: LanguageDetector) -> None:
    found = detector.detect("An English sentence with one French name, Jean-Pierre Dubois, stays English.")
    assert language_for(found, EN) == EN


def test_unsure_keeps_the_voice_language() -> None:
    strict = LanguageDetector(min_confidence=1.01)  # never sure enough
    assert strict.detect("Bienvenue dans Home Assistant, les lumières sont éteintes.") is None
    assert language_for(None, EN) == EN


def test_candidates_are_restricted() -> None:
    only = LanguageDetector(("en-us", "es"))
    assert only.candidates == ("en", "es")
    found = only.detect("Bienvenue dans Home Assistant, les lumières de la cuisine sont éteintes.")
    assert found is None or found.lang.code in ("en-us", "es")  # French is not a candidate here


def test_voice_variant_wins_within_a_family(detector: LanguageDetector) -> None:
    gb = languages.BY_CODE["en-gb"]
    assert language_for(detector.detect("The train to London leaves at half past nine."), gb) == gb


def test_voice_choice() -> None:
    table = dict(DEFAULT_VOICE_FOR, fr="fm_custom")
    assert voice_for(FR, "ff_siwis", keep_voice=False, voices=table) == "ff_siwis"  # caller's, of that language
    assert voice_for(FR, "af_heart", keep_voice=False, voices=table) == "fm_custom"  # the map's
    assert voice_for(FR, "af_heart", keep_voice=True, voices=table) == "af_heart"   # asked to keep it
    assert voice_for(EN, "af_bella", keep_voice=False, voices=table) == "af_bella"


def test_pending_waits_for_a_sure_sentence_then_decides_once(detector: LanguageDetector) -> None:
    p = PendingChoice(detector, "af_heart", keep_voice=False, voices=DEFAULT_VOICE_FOR)
    assert p.feed("Bonjour ", False) is None          # no sentence end yet
    assert p.feed("! ", False) is None                # a sentence, too short to tell
    choice = p.feed("Le musée ouvre à dix heures. ", False)
    assert choice is not None and choice.lang == FR and choice.voice == "ff_siwis" and choice.switched
    assert p.text.startswith("Bonjour ! Le musée")    # every fragment is kept for the segmenter


def test_pending_decision_is_bounded(detector: LanguageDetector) -> None:
    p = PendingChoice(detector, "af_heart", keep_voice=False, voices=DEFAULT_VOICE_FOR)
    assert p.feed("x" * (DECIDE_CHARS - 1), False) is None
    choice = p.feed("x", False)  # no language in it: decided at the bound, the voice's kept
    assert choice is not None and choice.lang == EN and choice.detected is None and not choice.switched


def test_final_decides_even_short_text(detector: LanguageDetector) -> None:
    p = PendingChoice(detector, "af_heart", keep_voice=False, voices=DEFAULT_VOICE_FOR)
    choice = p.feed("Merci", True)
    assert choice is not None and choice.lang == EN and choice.voice == "af_heart"


@pytest.mark.parametrize("text", ["Turn on the Salle à manger light.", "Is the Porta da frente locked?",
                                  "Remind me to call Jean-Pierre Dubois at six."])
def test_english_commands_around_foreign_names_stay_english(detector: LanguageDetector, text: str) -> None:
    assert language_for(detector.detect(text), EN) == EN


def test_a_detector_that_cannot_load_keeps_every_text_in_its_voices_language(monkeypatch: pytest.MonkeyPatch) -> None:
    # py3langid unpacks its model into a temporary file: a full /tmp must not
    # stop the daemon, only detection.
    from kokorod.text.detect import LanguageDetector

    def full_disk(self: LanguageDetector) -> None:
        raise OSError(27, "File too large")

    monkeypatch.setattr(LanguageDetector, "_read_model", full_disk)
    detector = LanguageDetector()
    detector.load()
    assert detector.failed is not None and not detector.loaded
    assert detector.detect("Bonjour à tous, nous avons acheté douze croissants à la boulangerie.") is None


def test_the_mapped_model_detects_as_the_packaged_one(tmp_path) -> None:
    """The cached, memory-mapped model (written on first use) ranks exactly as
    py3langid's own load, and a damaged cache file is rebuilt, not fatal."""
    from kokorod.text.detect_model import CACHE_SUBDIR

    texts = ["Bonjour, je voudrais un café s'il vous plaît.", "¿Dónde está la estación de tren?",
             "The meeting starts at nine tomorrow morning.", "Il treno parte alle otto e mezza.",
             "Eu gostaria de reservar uma mesa para dois.", "今日はとても良い天気ですね。", "我们明天早上九点见面。"]
    plain = LanguageDetector()
    plain.load()
    for attempt in range(3):
        mapped = LanguageDetector(cache_dir=tmp_path)
        mapped.load()
        assert mapped.failed is None
        for text in texts:
            assert mapped._ident.rank(text) == plain._ident.rank(text)
            assert mapped.detect(text) == plain.detect(text)
        files = list((tmp_path / CACHE_SUBDIR).glob("*.model"))
        assert len(files) == 1
        if attempt == 1:
            files[0].write_bytes(files[0].read_bytes()[:1000])  # truncated: rebuilt on the next load
