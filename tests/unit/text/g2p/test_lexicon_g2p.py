"""Lexicons inside the real G2Ps (misaki English, espeak, Chinese): tokens keep
their written text, a matched word gets the entry's phonemes."""

from __future__ import annotations

import pytest

from kokorod.speech.synthesizer import phonemize_words
from kokorod.text.g2p import G2PBank
from kokorod.text.languages import BY_CODE
from kokorod.text.lexicon import Lexicon, model_vocab, parse_lexicon

WINDOW = "wˈɪndO"


@pytest.fixture(scope="module")
def bank() -> G2PBank:
    return G2PBank()


def words(bank: G2PBank, text: str, lang: str = "en-us", lexicon: Lexicon | None = None) -> list[tuple[str, str, str]]:
    return [(w.text, w.phonemes, w.source)
            for w in phonemize_words(bank, text, lang=BY_CODE[lang], vocab=model_vocab(), lexicon=lexicon)]


def test_english_tokens_keep_their_text(bank: G2PBank) -> None:
    lex = parse_lexicon({"Zorblax": WINDOW})
    got = words(bank, "Zorblax's plan: ZORBLAX, zorblax and Zorblax.", lexicon=lex)
    assert got[0] == ("Zorblax's", WINDOW + "z", "session")
    assert ("ZORBLAX", WINDOW, "session") in got and ("zorblax", WINDOW, "session") in got
    assert [w[0] for w in got] == ["Zorblax's", "plan", "ZORBLAX", "zorblax", "and", "Zorblax"]


def test_hyphenated_and_compound_words(bank: G2PBank) -> None:
    lex = parse_lexicon({"Wi-Fi": "wˈIfI"})
    assert words(bank, "The Wi-Fi works.", lexicon=lex)[1] == ("Wi-Fi", "wˈIfI", "session")
    # A built-in word inside a hyphenated compound misaki otherwise knows.
    text, phonemes, source = words(bank, "A JSON-based API.")[1]
    assert text == "JSON-based" and phonemes.startswith("ʤˈAsən")


def test_builtin_and_misaki_sources(bank: G2PBank) -> None:
    got = {w[0]: w for w in words(bank, "Parse the JSON and the README with kubectl and SQL.")}
    assert got["JSON"][1:] == ("ʤˈAsən", "built-in")
    assert got["README"][2] == "built-in" and got["kubectl"][2] == "built-in"
    assert got["SQL"] == ("SQL", "sˈikwəl", "misaki")  # misaki already says "sequel": not in the lexicon
    assert words(bank, "Zorblax")[0][2] == "espeak"      # misaki's fallback for unknown words


def test_british_entries(bank: G2PBank) -> None:
    got = words(bank, "The YAML file.", lang="en-gb")
    assert got[1] == ("YAML", "jˈaməl", "built-in")


def test_precedence_session_over_file_over_builtin(bank: G2PBank) -> None:
    saved = bank.lexicons.file
    try:
        bank.lexicons.file = parse_lexicon({"JSON": "fˈIl", "YAML": "fˈIl"}, source="file")
        got = {w[0]: w for w in words(bank, "JSON YAML TOML", lexicon=parse_lexicon({"JSON": "sˈɛʃən"}))}
        assert got["JSON"][1:] == ("sˈɛʃən", "session")
        assert got["YAML"][1:] == ("fˈIl", "file")
        assert got["TOML"][2] == "built-in"
    finally:
        bank.lexicons.file = saved


def test_misaki_inline_phonemes_still_work_and_win(bank: G2PBank) -> None:
    """misaki's own ``[word](/phonemes/)``, at the G2P (the normaliser strips link
    targets before it gets here: see test_inline_phonemes_through_the_normaliser)."""
    lex = parse_lexicon({"Zorblax": "zˈɔɹblæks"})
    toks = bank.tokens("Say [Zorblax](/wˈɪndO/) now.", BY_CODE["en-us"], lex)
    assert [(t.text, t.phonemes) for t in toks][1] == ("Zorblax", WINDOW)


def test_inline_phonemes_through_the_normaliser(bank: G2PBank) -> None:
    got = words(bank, "Say [Zorblax](/wˈɪndO/) now.")
    assert got[1] == ("Zorblax", WINDOW, "inline")


def test_espeak_language_word_level(bank: G2PBank) -> None:
    lex = parse_lexicon({"es": {"Zorblax": "bentˈana"}, "Kokorod": "kokoɾˈod"})
    got = words(bank, "El Zorblax, y Kokorod.", lang="es", lexicon=lex)
    assert got[1] == ("Zorblax,", "bentˈana,", "session")  # the comma's phoneme is kept
    assert got[3] == ("Kokorod.", "kokoɾˈod.", "session")
    assert got[0][2] == "espeak"


def test_chinese_word_level(bank: G2PBank) -> None:
    if bank.unavailable(BY_CODE["zh"]) is not None:
        pytest.skip("Chinese G2P not installed")
    lex = parse_lexicon({"zh": {"你好": "ni xao"}})
    got = words(bank, "你好，世界。", lang="zh", lexicon=lex)
    assert got[0] == ("你好", "ni xao", "session")


def test_nothing_changes_without_lexicons() -> None:
    plain = G2PBank(builtin=False)
    assert plain.tokens("JSON", BY_CODE["en-us"])[0].phonemes == "ʤˌAˌɛsˌOˈɛn"  # misaki spells it out
