"""The multilingual judge's pure parts: normalisation, error rates, and the
assembly of the split Whisper base directory (on small fake parts, no model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import asr as asr_support
from support.asr import error_rate, ja_reading, normalize_lang, whisper_lang


@pytest.mark.parametrize("ours,whisper", [
    ("en-us", "en"), ("en-gb", "en"), ("es", "es"), ("fr", "fr"), ("hi", "hi"), ("it", "it"),
    ("pt-br", "pt"), ("PT_BR", "pt"), ("ja", "ja"), ("zh", "zh"),
])
def test_our_codes_map_to_whisper_codes(ours: str, whisper: str) -> None:
    assert whisper_lang(ours) == whisper


def test_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError):
        whisper_lang("xx")


@pytest.mark.parametrize("text,lang,expected", [
    ("¿Dónde está la estación? ¡Allí!", "es", "dónde está la estación allí"),
    ("«C'est l'été», dit-il.", "fr", "c est l été dit il"),
    ("ÇA VA", "fr", "ça va"),
    ("Perché no?", "it", "perché no"),
    ("Não, obrigado…", "pt-br", "não obrigado"),
    ("ﬁn", "fr", "fin"),  # NFKC folds the ligature
])
def test_spaced_languages_lose_case_and_punctuation_but_keep_accents(text: str, lang: str, expected: str) -> None:
    assert normalize_lang(text, lang) == expected


@pytest.mark.parametrize("text,lang,expected", [
    ("Tengo 25 años", "es", "tengo veinticinco años"),
    ("J'ai 25 ans", "fr", "j ai vingt cinq ans"),
    ("Ho 3 gatti", "it", "ho tre gatti"),
    ("Tenho 2 irmãos", "pt-br", "tenho dois irmãos"),
    ("I have 12 eggs", "en-us", "i have twelve eggs"),
])
def test_numerals_are_spelled_in_the_language(text: str, lang: str, expected: str) -> None:
    assert normalize_lang(text, lang) == expected


def test_hindi_keeps_vowel_signs_and_unifies_devanagari_digits() -> None:
    # The matras (combining marks) are part of the letters; the danda is punctuation.
    assert normalize_lang("मेरे पास ३ किताबें हैं।", "hi") == "मेरे पास 3 किताबें हैं"
    assert error_rate("मेरे पास 3 किताबें हैं।", "मेरे पास ३ किताबें हैं", "hi") == 0.0


def test_chinese_compares_simplified_characters_without_spaces_or_punctuation() -> None:
    assert normalize_lang("我們 今天，去圖書館。", "zh") == "我们今天去图书馆"
    assert error_rate("我们今天去图书馆。", "我們今天去圖書館", "zh") == 0.0


def test_chinese_numerals_match_arabic_digits() -> None:
    assert error_rate("我买了三本书。", "我買了3本書", "zh") == 0.0


def test_chinese_is_scored_by_characters() -> None:
    assert error_rate("我们去图书馆", "我们去图书", "zh") == pytest.approx(1 / 6)


def test_japanese_is_scored_on_readings_not_spelling() -> None:
    assert ja_reading("今日は") == ja_reading("きょうは")
    assert error_rate("きょうはてんきがいいです。", "今日は天気がいいです", "ja") == 0.0
    assert error_rate("駅が三つあります。", "駅が3つあります", "ja") == 0.0
    assert error_rate("コーヒーを飲みます", "珈琲をのみます", "ja") == 0.0


def test_japanese_reading_difference_counts_per_kana() -> None:
    ref = ja_reading("ねこ")
    assert ref == "ネコ"
    assert error_rate("ねこ", "ねく", "ja") == pytest.approx(0.5)


def test_word_error_rate_counts_words() -> None:
    assert error_rate("el gato come pescado", "el gato comió pescado", "es") == pytest.approx(0.25)
    assert error_rate("Bonjour à tous.", "bonjour a tous", "fr") == pytest.approx(1 / 3)  # the accent matters


def test_empty_sides() -> None:
    assert error_rate("hola amigo", "", "es") == 1.0
    assert error_rate("你好", "", "zh") == 1.0
    assert error_rate("¡!", "", "es") == 0.0
    assert error_rate("¡!", "hola", "es") == 1.0


def _fake_parts(root: Path) -> tuple[Path, Path]:
    part1, part2 = root / "p1", root / "p2"
    part1.mkdir()
    part2.mkdir()
    (part1 / "model.bin.part1").write_bytes(b"AAAA")
    (part2 / "model.bin.part2").write_bytes(b"BBB")
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (part1 / name).write_text(name)
    return part1, part2


def test_whisper_base_dir_is_assembled_once_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    part1, part2 = _fake_parts(tmp_path)
    dirs = dict(zip(asr_support.WHISPER_BASE_PACKAGES, (part1, part2)))
    monkeypatch.setattr(asr_support, "_package_data_dir", lambda package: dirs[package])
    cache = tmp_path / "cache"
    model_dir = asr_support.whisper_base_dir(cache)
    assert model_dir == (cache / "asr" / "whisper-base").resolve()
    assert (model_dir / "model.bin").read_bytes() == b"AAAABBB"
    assert sorted(p.name for p in model_dir.iterdir()) == ["config.json", "model.bin", "tokenizer.json", "vocabulary.txt"]
    assert [p.name for p in model_dir.parent.iterdir()] == ["whisper-base"]  # no temp dir left behind
    mtime = (model_dir / "model.bin").stat().st_mtime_ns
    assert asr_support.whisper_base_dir(cache) == model_dir
    assert (model_dir / "model.bin").stat().st_mtime_ns == mtime  # reused, not rebuilt


def test_a_truncated_whisper_base_dir_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    part1, part2 = _fake_parts(tmp_path)
    dirs = dict(zip(asr_support.WHISPER_BASE_PACKAGES, (part1, part2)))
    monkeypatch.setattr(asr_support, "_package_data_dir", lambda package: dirs[package])
    broken = tmp_path / "cache" / "asr" / "whisper-base"
    broken.mkdir(parents=True)
    (broken / "model.bin").write_bytes(b"AAAA")  # part 2 missing
    model_dir = asr_support.whisper_base_dir(tmp_path / "cache")
    assert (model_dir / "model.bin").read_bytes() == b"AAAABBB"


@pytest.mark.parametrize("reference,heard", [
    ("Please call me before nine.", "Please call me before 9."),
    ("Tickets cost twelve dollars.", "Tickets cost $12."),
    ("A high of twenty two degrees.", "A high of 22 degrees."),
    ("One thousand people came on the third day.", "1,000 people came on the 3rd day."),
    ("Prices rose five percent.", "Prices rose 5%."),
])
def test_english_numerals_and_symbols_are_read_as_words(reference: str, heard: str) -> None:
    assert asr_support.word_error_rate(reference, heard) == 0.0


def test_english_word_error_rate_still_counts_wrong_numbers() -> None:
    assert asr_support.word_error_rate("before nine", "before 5") == pytest.approx(0.5)
    assert asr_support.word_error_rate("twelve dollars", "$12 dollars") == pytest.approx(0.5)  # the extra word


@pytest.mark.parametrize("text,lang,expected", [
    ("Ça coûte 12 €.", "fr", "ça coûte douze euros"),
    ("Ouvert à 10h, fermé à 18 h 30.", "fr", "ouvert à dix heures fermé à dix huit heures trente"),
    ("Cuesta 5 € o $3, un 10 %.", "es", "cuesta cinco euros o tres dólares un diez por ciento"),
    ("Costa 4 €", "it", "costa quattro euro"),
    ("Custa R$ 20", "pt-br", "custa vinte reais"),
])
def test_symbols_next_to_numbers_are_read_in_the_language(text: str, lang: str, expected: str) -> None:
    assert normalize_lang(text, lang) == expected


def test_french_hours_match_the_spoken_words_but_not_other_words() -> None:
    # Whisper writes "dix heures" as "10h"; "douze euros" heard as "12h" stays an error.
    assert error_rate("Il ouvre à dix heures.", "Il ouvre à 10h.", "fr") == 0.0
    assert error_rate("Il coûte douze euros.", "Il coûte 12h.", "fr") == pytest.approx(1 / 4)
