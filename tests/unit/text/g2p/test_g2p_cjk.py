"""Chinese and Japanese G2P: misaki's phonemes (what Kokoro v1.0 is fed), as word tokens.

The references are misaki itself: ``ZHG2P()`` (legacy path) and ``Cutlet``
(JAG2P's default), the latter on the same unidic-lite tagger, since a bare
``Tagger()`` needs a system mecabrc.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kokorod.errors import AssetError
from kokorod.text.g2p.chinese import ChineseG2P
from kokorod.text.g2p.japanese import JapaneseG2P
from kokorod.text.tokens import Token

ROOT = Path(__file__).resolve().parents[4]
# cn2an warns when it leaves an over-long number alone (misaki, the reference, too).
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:cn2an")

ZH_SENTENCES = [
    "今天天气很好。",
    "我们明天去北京，好吗？",
    "他说：“你好！”（笑）",
    "我最喜欢《红楼梦》和「西游记」。",
    "【注意】请勿吸烟；谢谢！",
    "我有3个苹果。",
    "今天是2024年1月1日，星期一。",
    "价格是3.5元，涨了50%。",
    "温度-3℃，约3-5个小时，1/2的人同意。",
    "我的电话是13812345678。",
    "我用iPhone 15拍照，AI很强大。",
    "他……不知道、也不想知道",
    "  你好  世界  ",
    "第1名是don't stop的作者",
]

JA_SENTENCES = [
    "今日は良い天気ですね。",
    "2024年1月1日に東京へ行きました！",
    "ちょっと待って、「本当に？」",
    "コーヒーを飲みたいです。",
    "あっ、そうか。すっごい！",
    "新幹線で大阪まで行ったんだ。",
    "ラーメン（とんこつ）を３杯食べた。",
    "彼は『ノルウェイの森』を読んだ…",
    "iPhoneとAIが好きです。",
    "New Yorkに行った",
    "学校・会社、それから10〜20人。",
    "3.14は円周率です",
    "ｶﾞｷとｉＰｈｏｎｅ　です",
    "「えっ」と言った。",
]


def collapse(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


def joined(tokens: list[Token]) -> str:
    return "".join(t.phonemes + (" " if t.whitespace else "") for t in tokens).strip()


def assert_verbatim(text: str, tokens: list[Any]) -> None:
    """Each token's text is found by forward search, with only whitespace skipped."""
    cursor = 0
    for tok in tokens:
        pos = text.find(tok.text, cursor)
        assert pos >= 0, (text, tok)
        assert not text[cursor:pos].strip(), (text, tok, text[cursor:pos])
        cursor = pos + len(tok.text)
    assert not text[cursor:].strip(), (text, text[cursor:])


@pytest.fixture(scope="module")
def zh() -> ChineseG2P:
    return ChineseG2P()


@pytest.fixture(scope="module")
def ja() -> JapaneseG2P:
    return JapaneseG2P()


@pytest.fixture(scope="module")
def zh_ref() -> Any:
    from misaki.zh import ZHG2P

    g = ZHG2P()
    return lambda text: g(text)[0]


@pytest.fixture(scope="module")
def ja_ref() -> Any:
    import fugashi
    import unidic_lite
    from misaki import cutlet

    class RefCutlet(cutlet.Cutlet):  # type: ignore[misc]
        def __init__(self) -> None:
            d = unidic_lite.DICDIR
            self.tagger = fugashi.Tagger(f"-r {shlex.quote(d + '/mecabrc')} -d {shlex.quote(d)}")
            self.table = dict(cutlet.HEPBURN)
            self.exceptions = {}

    c = RefCutlet()
    return lambda text: c(text)[0]


def stub_latin(calls: list[str]) -> Any:
    """An English G2P stand-in: one token per word, phonemes upper-cased."""

    def latin(run: str) -> list[Token]:
        calls.append(run)
        return [Token(m.group(), m.group().upper(), whitespace=run[m.end():m.end() + 1] == " ")
                for m in re.finditer(r"\S+", run)]

    return latin


# --- Chinese ---------------------------------------------------------------


@pytest.mark.parametrize("text", ZH_SENTENCES)
def test_zh_matches_misaki(zh: ChineseG2P, zh_ref: Any, text: str) -> None:
    tokens = zh(text)
    assert_verbatim(text, tokens)
    assert collapse(joined(tokens)) == collapse(zh_ref(text))


def test_zh_tokens_are_jieba_words(zh: ChineseG2P) -> None:
    import jieba
    from misaki.zh import ZHG2P

    tokens = zh("我们明天去北京，好吗？")
    assert [t.text for t in tokens] == [*jieba.lcut("我们明天去北京"), "，", *jieba.lcut("好吗"), "？"]
    words = [t for t in tokens if t.word_break]
    # misaki drops U+032F (non-syllabic mark) from its output.
    assert [t.phonemes for t in words] == [ZHG2P.word2ipa(t.text).replace("\u032f", "") for t in words]
    # Words of one run are separated by spaces, as misaki joins them; a word
    # before punctuation is not; punctuation is not a word.
    assert [t.whitespace for t in tokens] == [True, True, True, False, True, True, False, True]
    comma = tokens[4]
    assert (comma.phonemes, comma.word_break) == (",", False)


def test_zh_punctuation_spacing(zh: ChineseG2P) -> None:
    tokens = zh("他说：“你好！”（笑）《书》")
    by_text = {t.text: t for t in tokens}
    assert by_text["："].phonemes == ":" and by_text["："].whitespace
    assert by_text["（"].phonemes == "(" and by_text["）"].phonemes == ")"
    assert by_text["《"].phonemes == "“" and by_text["》"].phonemes == "”"
    assert by_text["笑"].whitespace is False  # ")" follows without a space
    assert not any(t.word_break for t in tokens if t.text in "：“！”（）《》")


def test_zh_numbers_keep_their_digits(zh: ChineseG2P, zh_ref: Any) -> None:
    from misaki.zh import ZHG2P

    # misaki rewrites the digits before jieba sees them ("3个" → "三个", one
    # word); the token keeps the input's characters and misaki's phonemes.
    tokens = zh("我有3个苹果。")
    assert [t.text for t in tokens] == ["我", "有", "3个", "苹果", "。"]
    assert tokens[2].phonemes == ZHG2P.word2ipa("三个").replace("\u032f", "")
    # A number jieba cuts into several words is one token; its phonemes keep
    # misaki's space between those words.
    tokens = zh("今天是2024年1月1日")
    texts = [t.text for t in tokens]
    assert "2024年" in texts and "1月" in texts
    year = tokens[texts.index("2024年")]
    assert " " in year.phonemes
    assert collapse(joined(tokens)) == collapse(zh_ref("今天是2024年1月1日"))
    # Rewrites that reorder or drop characters still map back whole.
    for text, number in [("涨了50%。", "50%"), ("1/2的人", "1/2"), ("-3度", "-3度"), ("３个", "３个")]:
        tokens = zh(text)
        assert number in [t.text for t in tokens], (text, tokens)
        assert collapse(joined(tokens)) == collapse(zh_ref(text))


def test_zh_overlong_number_passes_through_like_misaki(zh: ChineseG2P, zh_ref: Any) -> None:
    text = "12345678901234567890个"  # cn2an gives up over 16 digits (a warning we silence)
    tokens = zh(text)
    assert tokens[0].text == tokens[0].phonemes == "12345678901234567890"
    assert collapse(joined(tokens)) == collapse(zh_ref(text))


def test_zh_latin_raw_without_callable(zh: ChineseG2P, zh_ref: Any) -> None:
    tokens = zh("用iPhone拍照")
    assert [(t.text, t.phonemes) for t in tokens][1] == ("iPhone", "iPhone")
    assert tokens[0].whitespace is False  # misaki glues it to the Chinese
    assert joined(tokens) == zh_ref("用iPhone拍照")


def test_zh_latin_callable(zh_ref: Any) -> None:
    calls: list[str] = []
    g = ChineseG2P(latin=stub_latin(calls))
    text = "我去New York用iPhone，AI很强。"
    tokens = g(text)
    assert_verbatim(text, tokens)
    assert calls == ["New York", "iPhone", "AI"]
    assert [(t.text, t.phonemes) for t in tokens if t.text.isascii()] == [
        ("New", "NEW"), ("York", "YORK"), ("iPhone", "IPHONE"), ("AI", "AI")]
    # Spaces around the English words, none before punctuation; the Chinese
    # around them is exactly misaki's.
    assert joined(tokens) == "wo↓ ʨʰy↘ NEW YORK jʊ↘ŋ IPHONE, AI xə↓nʨʰja↗ŋ."
    assert all(t.word_break for t in tokens if t.text.isascii())


def test_latin_callable_that_does_not_keep_text() -> None:
    # A callable whose tokens are not substrings of its input: the run is one token.
    g = ChineseG2P(latin=lambda run: [Token("x-" + run, "ɛks")])
    tokens = g("你好ABC")
    assert [(t.text, t.phonemes) for t in tokens] == [("你好", tokens[0].phonemes), ("ABC", "ɛks")]
    assert tokens[0].whitespace


def test_zh_blank(zh: ChineseG2P) -> None:
    assert zh("") == [] and zh("  \n ") == []


# --- Japanese --------------------------------------------------------------


@pytest.mark.parametrize("text", JA_SENTENCES)
def test_ja_matches_misaki(ja: JapaneseG2P, ja_ref: Any, text: str) -> None:
    tokens = ja(text)
    assert_verbatim(text, tokens)
    assert collapse(joined(tokens)) == collapse(ja_ref(text))


def test_ja_tokens_are_cutlet_words(ja: JapaneseG2P) -> None:
    tokens = ja("今日は良い天気ですね。")
    # Particles and auxiliaries are tokens of their own (as the tagger splits
    # them); cutlet's word list joins some (待っ+て).
    assert [t.text for t in tokens] == ["今日", "は", "良い", "天気", "です", "ね", "。"]
    assert [t.word_break for t in tokens] == [True] * 6 + [False]
    assert tokens[0].phonemes == "kʲoː" and tokens[0].whitespace
    assert tokens[-2].whitespace is False  # no space before "."
    assert [t.text for t in ja("ちょっと待って")] == ["ちょっと", "待って"]


def test_ja_sokuon_long_vowels_n(ja: JapaneseG2P) -> None:
    tokens = ja("あっ、コーヒーとラーメン")
    assert [(t.text, t.phonemes) for t in tokens] == [
        ("あっ", "aʔ"), ("、", ","), ("コーヒー", "koːçiː"), ("と", "to"), ("ラーメン", "ɾaːmeɴ")]


def test_ja_numbers_keep_their_digits(ja: JapaneseG2P, ja_ref: Any) -> None:
    tokens = ja("2024年に")
    # num2kana reads 2024 as several tagger words: one token, misaki's spaces inside.
    assert [(t.text, t.phonemes) for t in tokens] == [("2024", "ɲi seɴ ɲiʥɨːjoɴ"), ("年", "neɴ"), ("に", "ɲi")]
    tokens = ja("３杯")
    assert tokens[0].text == "３" and tokens[0].phonemes == "saɴ"


def test_ja_long_number_does_not_crash(ja: JapaneseG2P, ja_ref: Any) -> None:
    text = "1234567890円"
    # misaki's num2kana reads at most 9 digits; over that Cutlet trips an assert.
    with pytest.raises(AssertionError):
        ja_ref(text)
    tokens = ja(text)
    assert tokens[0].text == "1234567890"
    assert tokens[0].phonemes.split() == ["iʨi", "ɲi", "saɴ", "joɴ", "ɡo", "ɾokɯ", "nana", "haʨi", "kʲɨː", "ʣeɾo"]
    assert tokens[1].text == "円"


def test_ja_normalised_text_maps_back(ja: JapaneseG2P) -> None:
    text = "ｶﾞｷとｉＰｈｏｎｅ！"
    tokens = ja(text)
    assert [(t.text, t.phonemes) for t in tokens] == [
        ("ｶﾞｷ", "ɡakʲi"), ("と", "to"), ("ｉＰｈｏｎｅ", "iPhone"), ("！", "!")]


def test_ja_latin_callable(ja_ref: Any) -> None:
    calls: list[str] = []
    g = JapaneseG2P(latin=stub_latin(calls))
    text = "New YorkでiPhoneを買った。"
    tokens = g(text)
    assert_verbatim(text, tokens)
    assert calls == ["New York", "iPhone"]
    assert joined(tokens) == "NEW YORK de IPHONE o kaʔta."
    # Without the callable: misaki's raw letters.
    assert joined(JapaneseG2P()(text)) == ja_ref(text) == "New York de iPhone o kaʔta."


def test_ja_long_text_is_fast_and_exact(ja: JapaneseG2P, ja_ref: Any) -> None:
    import time

    sentence = "今日は良い天気ですね！コーヒーを飲みたい？（笑）本当に2024年1月1日に東京へ行きました。"
    tokens = ja(sentence * 3)
    assert collapse(joined(tokens)) == collapse(ja_ref(sentence * 3))
    # Cutlet alone is cubic in the text length (about 80 s here); we run it per
    # stretch between punctuation.
    start = time.perf_counter()
    tokens = ja(sentence.replace("。", "") * 60)
    assert time.perf_counter() - start < 3
    assert len(tokens) > 600


def test_ja_blank(ja: JapaneseG2P) -> None:
    assert ja("") == [] and ja("　 \n") == []


def test_ja_dictionary_path_with_spaces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import unidic_lite

    spaced = tmp_path / "dic dir"
    spaced.symlink_to(unidic_lite.DICDIR, target_is_directory=True)
    monkeypatch.setattr(unidic_lite, "DICDIR", str(spaced))
    assert [t.text for t in JapaneseG2P()("猫です")] == ["猫", "です"]


# --- both ------------------------------------------------------------------


ZH_ALPHABET = list("我有个苹果今天是年月日天气很好价格元的人一二十百") + list("，。！？、：；“”（）《》「」【】") + list(
    "0123456789") + ["%", "/", "-", ".", "℃", " ", "iPhone", "AI", "３", "…", "\n"]
JA_ALPHABET = list("今日はいい天気ですね待って本当にコーヒーを飲みたいあっそうかラーメンっンー") + list(
    "、。！？「」『』（）・〜") + list("0123456789") + ["iPhone", " ", "　", "ｶﾞ", "３", "…", "々", "ゝ"]


@settings(max_examples=150, deadline=None)
@given(zh_parts=st.lists(st.sampled_from(ZH_ALPHABET), min_size=1, max_size=30),
       ja_parts=st.lists(st.sampled_from(JA_ALPHABET), min_size=1, max_size=30))
def test_random_mixes_match_misaki(zh: ChineseG2P, ja: JapaneseG2P, zh_ref: Any, ja_ref: Any,
                                   zh_parts: list[str], ja_parts: list[str]) -> None:
    for g, ref, text in ((zh, zh_ref, "".join(zh_parts)), (ja, ja_ref, "".join(ja_parts))):
        tokens = g(text)
        assert_verbatim(text, tokens)
        try:
            want = ref(text)
        except AssertionError:  # Cutlet on a 10+ digit number
            continue
        assert collapse(joined(tokens)) == collapse(want), text


def test_missing_packages_raise_asset_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("jieba", "unidic_lite") else real(name, *a))
    with pytest.raises(AssetError) as zh_err:
        ChineseG2P()
    assert "jieba" in zh_err.value.message
    assert all(p in (zh_err.value.fix or "") for p in "cn2an jieba ordered-set pypinyin pypinyin-dict".split())
    with pytest.raises(AssetError) as ja_err:
        JapaneseG2P()
    assert "unidic_lite" in ja_err.value.message
    assert all(p in (ja_err.value.fix or "") for p in "fugashi jaconv mojimoji unidic-lite".split())


def test_cheap_construction_and_quiet_first_call() -> None:
    # In a fresh interpreter: constructing loads nothing; the first call loads
    # jieba, misaki and MeCab without a word on stderr, and never pyopenjtalk.
    code = (
        "import sys\n"
        "from kokorod.text.g2p.chinese import ChineseG2P\n"
        "from kokorod.text.g2p.japanese import JapaneseG2P\n"
        "z, j = ChineseG2P(), JapaneseG2P()\n"
        "assert not {'jieba', 'misaki.zh', 'cn2an', 'fugashi', 'misaki.cutlet'} & set(sys.modules)\n"
        "assert z('你好，世界')[0].text == '你好'\n"
        "assert j('猫です')[0].text == '猫'\n"
        "assert 'pyopenjtalk' not in sys.modules\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def test_threads_get_the_same_answers(zh: ChineseG2P, ja: JapaneseG2P) -> None:
    expected = [zh(t) for t in ZH_SENTENCES] + [ja(t) for t in JA_SENTENCES]
    results: list[list[list[Token]]] = []

    def work() -> None:
        results.append([zh(t) for t in ZH_SENTENCES] + [ja(t) for t in JA_SENTENCES])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 4
