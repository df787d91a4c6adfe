"""Pronunciation lexicons: parsing, validation, matching, precedence (pure, no G2P)."""

from __future__ import annotations

import json

import pytest

from kokorod.protocol.codec import JsonCodec, MsgpackCodec, ProtocolError
from kokorod.protocol.messages import Config, Configured, Error, PhonemeWord, Phonemes, Phonemize
from kokorod.text.lexicon import (
    ALL, BUILTIN, FILE, SESSION, Lexicon, LexiconChain, LexiconError, builtin_lexicon, entry_problem,
    load_lexicon_file, model_vocab, parse_lexicon, parse_lexicon_text, possessive_suffix, strip_edges,
)
from kokorod.text.lexicon_tech import TECH

WINDOW = "wˈɪndO"


def test_the_vocabulary_is_the_models() -> None:
    from kokorod.engine.onnx_engine import load_vocab

    assert model_vocab() == frozenset(load_vocab())
    assert "ɡ" in model_vocab() and "g" not in model_vocab()


@pytest.mark.parametrize("word, phonemes, expect", [
    ("Zorblax", WINDOW, None),
    ("Zorblax", "  wˈɪndO ", None),                 # surrounding spaces trimmed
    ("", WINDOW, "the word is empty"),
    ("two words", WINDOW, "whitespace"),
    ("x" * 65, WINDOW, "at most 64"),
    ("Zorblax", "", "the phonemes are empty"),
    ("Zorblax", "   ", "the phonemes are empty"),
    ("Zorblax", "a" * 65, "at most 64"),
    ("Zorblax", 5, "must be a string"),
    ("Zorblax", "zˈɔɹbgæks", "unknown phoneme 'g' (U+0067)"),
    ("Zorblax", "zˈɔɹbXæks", "unknown phoneme 'X'"),
])
def test_entry_problems(word: object, phonemes: object, expect: str | None) -> None:
    problem = entry_problem(word, phonemes)
    if expect is None:
        assert problem is None
    else:
        assert problem is not None and expect in problem, problem


def test_a_script_g_hint() -> None:
    assert "did you mean ɡ" in (entry_problem("Zorblax", "ɡg") or "")


def test_parse_flat_and_per_language() -> None:
    lex = parse_lexicon({"Zorblax": WINDOW, "es": {"Zorblax": "bentana"}, "en-GB": {"Zorblax": "wˈɪndQ"}})
    assert len(lex) == 3
    assert lex.entries[ALL] == {"Zorblax": WINDOW}
    assert lex.entries["es"] == {"Zorblax": "bentana"}
    assert lex.entries["en-gb"] == {"Zorblax": "wˈɪndQ"}  # aliases resolve to the canonical code
    assert lex.get("Zorblax", "es") == "bentana"
    assert lex.get("Zorblax", "fr") == WINDOW
    assert lex.to_wire() == {"Zorblax": WINDOW, "es": {"Zorblax": "bentana"}, "en-gb": {"Zorblax": "wˈɪndQ"}}


def test_errors_name_the_entry() -> None:
    with pytest.raises(LexiconError) as info:
        parse_lexicon({"Fine": WINDOW, "es": {"Malo": "bXn"}})
    assert "entry 'Malo' in [es]" in info.value.message and "'X'" in info.value.message
    with pytest.raises(LexiconError) as info:
        parse_lexicon({"klingon": {"Qapla": "kapla"}})
    assert "section 'klingon'" in info.value.message
    with pytest.raises(LexiconError):
        parse_lexicon(["not", "a", "map"])


def test_too_many_entries() -> None:
    parse_lexicon({f"w{i}": "wˈɪn" for i in range(500)})
    with pytest.raises(LexiconError) as info:
        parse_lexicon({f"w{i}": "wˈɪn" for i in range(501)})
    assert "more than 500 entries" in info.value.message


def test_matching_is_case_aware() -> None:
    lex = parse_lexicon({"Zorblax": WINDOW, "US": "jˌuˈɛs", "us": "ˈʌs"})
    chain = LexiconChain([lex])
    for text in ("Zorblax", "ZORBLAX", "zorblax", "Zorblax,", "(Zorblax)", "“Zorblax.”"):
        m = chain.lookup(text, "en-us")
        assert m is not None and m.phonemes == WINDOW, text
    assert chain.lookup("US", "en-us").phonemes == "jˌuˈɛs"  # type: ignore[union-attr]
    assert chain.lookup("us", "en-us").phonemes == "ˈʌs"  # type: ignore[union-attr]
    assert chain.lookup("Us", "en-us").phonemes == "ˈʌs"  # type: ignore[union-attr]  # folded: lower-case entry first
    assert chain.lookup("Zorblaxes", "en-us") is None
    assert chain.lookup("", "en-us") is None


def test_possessives() -> None:
    chain = LexiconChain([parse_lexicon({"Zorblax": "zˈɔɹblæks", "Kim": "kˈɪm", "Pat": "pˈæt"})])
    assert chain.lookup("Zorblax's", "en-us").phonemes == "zˈɔɹblæksɪz"  # type: ignore[union-attr]
    assert chain.lookup("Zorblax’s", "en-us").phonemes == "zˈɔɹblæksɪz"  # type: ignore[union-attr]
    assert chain.lookup("Kim's", "en-us").phonemes == "kˈɪmz"  # type: ignore[union-attr]
    assert chain.lookup("Pat's", "en-us").phonemes == "pˈæts"  # type: ignore[union-attr]
    assert possessive_suffix("bʌʤ") == "ɪz"
    # An entry of its own wins over the rule.
    chain = LexiconChain([parse_lexicon({"Zorblax": "zˈɔɹblæks", "Zorblax's": "zˈɔɹbləz"})])
    assert chain.lookup("Zorblax's", "en-us").phonemes == "zˈɔɹbləz"  # type: ignore[union-attr]


def test_precedence_session_file_builtin() -> None:
    session = Lexicon({ALL: {"JSON": "sˈɛʃən"}}, SESSION)
    file = Lexicon({"en-us": {"JSON": "fˈIl", "YAML": "fˈIl"}}, FILE)
    chain = LexiconChain([session, file, builtin_lexicon()])
    assert (chain.lookup("JSON", "en-us").phonemes, chain.lookup("JSON", "en-us").source) == ("sˈɛʃən", SESSION)  # type: ignore[union-attr]
    assert chain.lookup("YAML", "en-us").source == FILE  # type: ignore[union-attr]
    assert chain.lookup("TOML", "en-us").source == BUILTIN  # type: ignore[union-attr]
    assert chain.lookup("TOML", "es") is None  # the built-in lexicon is English only
    assert LexiconChain([None, None]).lookup("JSON", "en-us") is None


def test_strip_edges() -> None:
    assert strip_edges("(Wi-Fi),") == ("(", "Wi-Fi", "),")
    assert strip_edges("...") == ("", "...", "")


def test_builtin_lexicon_is_valid_and_sized() -> None:
    lex = parse_lexicon(TECH, source=BUILTIN, max_entries=10_000)
    assert set(TECH) == {"en-us", "en-gb"} and TECH["en-us"].keys() == TECH["en-gb"].keys()
    assert 60 <= len(TECH["en-us"]) <= 150
    assert len(lex) == len(builtin_lexicon())
    for word in ("JSON", "README", "YAML", "TOML", "PyPI", "kubectl", "PostgreSQL", "async", "regex"):
        assert word in TECH["en-us"], word


def test_toml_file_with_line_numbers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "lex.toml"
    path.write_text('Zorblax = "zˈɔɹblæks"\n\n[en-us]\nGood = "ɡˈʊd"\n"Bad" = "bXd"\n', encoding="utf-8")
    with pytest.raises(LexiconError) as info:
        load_lexicon_file(path)
    assert info.value.message.startswith(f"{path}:5: entry 'Bad' in [en-us]: unknown phoneme 'X'")
    path.write_text('Zorblax = "zˈɔɹblæks"\n[es]\nZorblax = "θoɾβlaks"\n', encoding="utf-8")
    lex = load_lexicon_file(path)
    assert lex.source == FILE and lex.get("Zorblax", "es") == "θoɾβlaks" and lex.get("Zorblax", "en-us") == "zˈɔɹblæks"


def test_json_file_and_syntax_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "lex.json"
    path.write_text(json.dumps({"en-us": {"Zorblax": WINDOW, "Empty": ""}}, indent=1, ensure_ascii=False))
    with pytest.raises(LexiconError) as info:
        load_lexicon_file(path)
    assert f"{path}:4: entry 'Empty' in [en-us]: the phonemes are empty" == info.value.message
    with pytest.raises(LexiconError) as info:
        parse_lexicon_text('{"a": ', path="x.json")
    assert info.value.message.startswith("x.json:1: not valid JSON")
    with pytest.raises(LexiconError) as info:
        parse_lexicon_text('a = "b"\nc = \n', path="x.toml")
    assert info.value.message.startswith("x.toml:2: not valid TOML")
    with pytest.raises(LexiconError) as info:
        load_lexicon_file(tmp_path / "missing.toml")
    assert "cannot read" in info.value.message


def test_file_bound() -> None:
    text = "\n".join(f'w{i} = "wˈɪn"' for i in range(11))
    with pytest.raises(LexiconError) as info:
        parse_lexicon_text(text, path="big.toml", max_entries=10)
    assert "big.toml:11: more than 10 entries" in info.value.message


# --- the wire --------------------------------------------------------------------

@pytest.mark.parametrize("codec", [MsgpackCodec(), JsonCodec()])
def test_config_lexicon_round_trip(codec) -> None:  # type: ignore[no-untyped-def]
    msg = codec.decode(codec.encode_message(Config(lexicon={"Zorblax": WINDOW, "es": {"Zorblax": "bentana"}})))
    assert isinstance(msg, Config) and isinstance(msg.lexicon, Lexicon)
    assert msg.lexicon.get("Zorblax", "en-us") == WINDOW and msg.lexicon.source == SESSION
    assert codec.decode(codec.encode_message(Config(lexicon={}))).lexicon == Lexicon({}, SESSION)
    assert codec.decode(codec.encode_message(Config())).lexicon is None


@pytest.mark.parametrize("lexicon, words", [
    ({"Zorblax": "wˈɪndX"}, ("'Zorblax'", "'X'")),
    ({"Zorblax": ""}, ("'Zorblax'", "empty")),
    ({"Zorblax": 3}, ("'Zorblax'", "string")),
    ({"es": {"Zorblax": "a" * 65}}, ("'Zorblax' in [es]", "at most 64")),
    ({f"w{i}": "wˈɪn" for i in range(501)}, ("more than 500",)),
    ("Zorblax", ("must be a map",)),
])
def test_config_lexicon_errors(lexicon: object, words: tuple[str, ...]) -> None:
    codec = JsonCodec()
    with pytest.raises(ProtocolError) as info:
        codec.decode(json.dumps({"type": "config", "lexicon": lexicon}))
    assert info.value.code == "invalid_field" and info.value.utterance is None
    assert info.value.message.startswith("invalid field 'lexicon'")
    for w in words:
        assert w in info.value.message, info.value.message


def test_phonemize_message() -> None:
    codec = MsgpackCodec()
    msg = codec.decode(codec.encode_message(Phonemize("p1", "JSON files", lang="en")))
    assert msg == Phonemize("p1", "JSON files", lang="en-us")
    for bad in ({"type": "phonemize", "text": "x"}, {"type": "phonemize", "id": "p", "text": "x" * 4001},
                {"type": "phonemize", "id": "p", "text": "x", "lang": "xx"}, {"type": "phonemize", "id": "", "text": "x"}):
        with pytest.raises(ProtocolError) as info:
            JsonCodec().decode(json.dumps(bad))
        assert info.value.code == "invalid_field"


@pytest.mark.parametrize("codec", [MsgpackCodec(), JsonCodec()])
def test_phonemes_and_configured_events_round_trip(codec) -> None:  # type: ignore[no-untyped-def]
    for event in (Phonemes("p1", "en-us", (PhonemeWord("JSON", "ʤˈAsən", "built-in"),)),
                  Configured("af_heart", 1.0, "pcm_s16le", 24000, 100, "interrupt", None, lexicon=3),
                  Error("invalid_field", "x", id="p1")):
        assert codec.decode_event(codec.encode(event)) == event
    assert Phonemes("p1", "en-us", (PhonemeWord("a", "ɐ", "misaki"),)).to_dict() == {
        "type": "phonemes", "id": "p1", "lang": "en-us", "words": [{"text": "a", "phonemes": "ɐ", "source": "misaki"}]}
