"""Normalizer: written text -> speakable text for misaki, with spans back to the written text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kokorod.text.markdown import classify_line, fence_closes, strip_markdown
from kokorod.text.normalize import Normalized, Replacement, normalize


def said(text: str) -> str:
    return normalize(text).spoken


@pytest.mark.parametrize(
    "written, spoken",
    [
        # markdown
        ("# Heading here", "Heading here"),
        ("### Title ###", "Title"),
        ("- **Bold** item", "Bold item"),
        ("* _emph_ and __strong__ and ~~gone~~", "emph and strong and gone"),
        ("- [ ] task box", "task box"),
        ("1. first", "1. first"),
        ("2) second", "2. second"),
        ("> quoted *text*", "quoted text"),
        ("Read [the docs](https://x.com/a_(b)) now", "Read the docs now"),
        ("Read [**bold** link](u) now", "Read bold link now"),
        ("An ![alt text](img.png) image", "An alt text image"),
        ("See [ref][1] too", "See ref too"),
        ("Use `foo()` and ``a ` b`` here", "Use foo() and a b here"),
        ("Unclosed `tick here", "Unclosed tick here"),
        ("As shown [1] and [^note].", "As shown and."),
        ("Go to <https://x.com/a>", "Go to x dot com slash a"),
        ("Line<br>break <b>bold</b>", "Line break bold"),
        (r"Not \*emphasis\*", "Not emphasis"),
        ("snake_case_name and __init__", "snake_case_name and init"),
        ("| a | b |", "a, b"),
        ("|---|:--:|", ""),
        ("```python", ""),
        ("Before:\n```py\nx = 1  # not. spoken\n```\nAfter", "Before: After"),
        ("Open:\n~~~\ncode\n", "Open:"),
        ("---", ""),
        ("3*4 and 3 * 4", "3 times 4 and 3 times 4"),
        ("**bold text,", "bold text,"),
        # misaki's inline pronunciation reaches the G2P whole; a link to a path is read as its text
        ("[tomato](/təmˈeɪtoʊ/) soup", "[tomato](/təmˈeɪtoʊ/) soup"),
        ("[the docs](/docs/) and [x](/a/b/)", "the docs and x"),
        # URLs, e-mail, files
        ("See https://github.com/foo/bar now.", "See github dot com slash foo slash bar now."),
        ("See http://www.example.com/a-b/c_d.html?q=1#x.", "See example dot com slash a b slash c d dot html."),
        ("Visit example.co.uk today", "Visit example dot co dot uk today"),
        ("Email a.b@example.com now.", "Email a dot b at example dot com now."),
        ("Email first_last+tag@mail.example.org", "Email first underscore last plus tag at mail dot example dot org"),
        ("Open file.txt and node.js", "Open file dot txt and node dot js"),
        # numbers misaki misreads
        ("Call +1 555 123 4567 now", "Call plus 1, 5 5 5, 1 2 3, 4 5 6 7 now"),
        ("Call (555) 123-4567", "Call 5 5 5, 1 2 3, 4 5 6 7"),
        ("Call +44 20 7946 0958", "Call plus 4 4, 2 0, 7 9 4 6, 0 9 5 8"),
        ("On 2024-05-01 we met", "On May 1st, 2024 we met"),
        ("On 12/25/2024 and 25/12/2024", "On December 25th, 2024 and December 25th, 2024"),
        ("Version v2.0 and v3 and 2.0.1", "Version 2 point 0 and version 3 and 2 point 0 point 1"),
        ("IP 192.168.0.1", "IP 192 dot 168 dot 0 dot 1"),
        ("In 2023–2024 and pages 10-20 and 5-10%", "In 2023 to 2024 and pages 10 to 20 and 5 to 10%"),
        ("Add 3/4 cup and 1/2 and 2/3, open 24/7", "Add three quarters cup and one half and two thirds, open 24/7"),
        ("Raised $5M and $1.2B and €3 bn", "Raised $5 million and $1.2 billion and €3 billion"),
        ("65M parameters and 5k users", "65 million parameters and 5 thousand users"),
        ("It is 10x faster", "It is 10 times faster"),
        ("We drove 5 km in 1 h", "We drove 5 kilometers in 1 h"),
        ("1 km, 3 mm, 10 ms, 5GB, 1.5km", "1 kilometer, 3 millimeters, 10 milliseconds, 5 gigabytes, 1.5 kilometers"),
        ("It is 37.5°C or 98°F or 5° off", "It is 37.5 degrees Celsius or 98 degrees Fahrenheit or 5 degrees off"),
        ("Clock 1.5GHz", "Clock 1.5 GHz"),
        ("Cost € 5", "Cost €5"),
        ("We are #1", "We are number 1"),
        ("I write C# and F#", "I write C sharp and F sharp"),
        ("Built on .NET", "Built on dot net"),
        # abbreviations
        ("Use e.g. this, i.e. that", "Use for example this, that is that"),
        ("See Fig. 3 and Prof. Lee", "See Figure 3 and Professor Lee"),
        ("John Jr. and Acme Inc. came", "John Junior and Acme Inc came"),
        ("Made by Acme Inc.", "Made by Acme Inc."),
        ("Acme Inc. Then it grew", "Acme Inc. Then it grew"),
        ("At St. Mary's on Main St. today", "At Saint Mary's on Main Street today"),
        ("Coffee w/ milk, w/o sugar", "Coffee with milk, without sugar"),
        ("Chapter IV and World War II", "Chapter 4 and World War 2"),
        ("Henry VIII and Louis XIV", "Henry the 8th and Louis the 14th"),
        ("Use VI or vim", "Use VI or vim"),
        # symbols
        ("About ~5 units", "About about 5 units"),
        ("a -> b and x → y", "a to b and x to y"),
        ("if 5 < 6 and 7 >= 3", "if 5 less than 6 and 7 greater than or equal to 3"),
        ("It is x^2 or 2^10", "It is x squared or 2 to the power of 10"),
        ("Wait -- what?", "Wait — what?"),
        ("I love it 😀 so much 👍🏽!", "I love it so much!"),
        ("Nice :) really ;-)", "Nice really"),
        ("Say 你好 and こんにちは ok", "Say and ok"),
        ("«Bonjour» ¿qué? ¡sí!", "“Bonjour” qué? sí!"),
        ("Tom &amp; Jerry", "Tom & Jerry"),
        ("zero\u200bwidth and a\x00b and soft\u00adhyphen", "zero width and a b and softhyphen"),
        ("ＦＵＬＬ width", "FULL width"),
        ("a | b", "a, b"),
        # things misaki already reads well are left alone
        ("It costs $3.50 and €1,200.99 at 9:30 a.m.", "It costs $3.50 and €1,200.99 at 9:30 a.m."),
        *[(t, t) for t in ("Dr. Smith, Mr. Jones, etc. vs. the U.S. in the 1990s", "It's 3:45, 100+ items, ½ cup")],
        ("50% of 10,000 & 1st place, C++ on x86", "50% of 10,000 & 1st place, C++ on x86"),
        ("The AI calls an API on a GPU", "The AI calls an API on a GPU"),
        ("  lots   of\n\nspace  ", "lots of space"),
        ("", ""),
    ],
)
def test_spoken(written: str, spoken: str) -> None:
    assert said(written) == spoken


@pytest.mark.parametrize(
    "written, spans",
    [
        ("See https://github.com/foo/bar now.", [("github dot com slash foo slash bar", "https://github.com/foo/bar")]),
        ("Email a.b@example.com", [("a dot b at example dot com", "a.b@example.com")]),
        ("Use e.g. this", [("for example", "e.g.")]),
        ("It is 20°C and 5 km", [("20 degrees Celsius", "20°C"), ("5 kilometers", "5 km")]),
        ("On 2024-05-01 we met", [("May 1st, 2024", "2024-05-01")]),
        ("**Bold** [link](https://x.com) and `code`", []),  # syntax removal: the words are unchanged
        ("I love it 😀 so", []),  # a deletion has no spoken words to map
        ("a → b", [("to", "→")]),
    ],
)
def test_spans(written: str, spans: list[tuple[str, str]]) -> None:
    n = normalize(written)
    assert [(n.spoken[r.spoken_start:r.spoken_end], r.written) for r in n.spans] == spans


def test_span_offsets_after_collapsed_whitespace() -> None:
    n = normalize("  # Title\n\nSee   a.b@x.com   and   5 km  ")
    assert n.spoken == "Title See a dot b at x dot com and 5 kilometers"
    assert n.spans == (Replacement(10, 30, "a.b@x.com"), Replacement(35, 47, "5 km"))


def test_markdown_pieces_keep_every_written_character() -> None:
    text = "# T *a* [b](c) `d` ![e](f) [1] <br> | g |\n- h\n```x"
    pieces = strip_markdown(text)
    assert "".join(w if w is not None else s for s, w in pieces) == text


@pytest.mark.parametrize("line, final, expected", [
    ("```py", False, ("fence", 3)), ("``", False, None), ("``", True, ("text", 0)), ("~~~~ ", False, ("fence", 4)),
    ("- a", False, ("marker", 1)), ("12. a", False, ("marker", 3)), ("1", False, None), ("1.", False, None),
    ("1.5", False, ("text", 0)), ("-5", False, ("text", 0)), ("-", True, ("text", 0)), ("Word", False, ("text", 0)),
])
def test_classify_line(line: str, final: bool, expected: tuple[str, int] | None) -> None:
    assert classify_line(line, 0, final) == expected


@pytest.mark.parametrize("line, final, expected", [
    ("```\n", False, True), ("````\n", False, True), ("``\n", False, False), ("```py\n", False, False),
    ("```", False, None), ("```", True, True), ("~~~\n", False, False), ("x\n", False, False),
])
def test_fence_closes(line: str, final: bool, expected: bool | None) -> None:
    assert fence_closes(line, 0, ("`", 3), final) == expected


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from(list("aZ09 .,:/@#-_*`[]()<>|~^$€%&'\"\n😀你«»\x00\u200b")), max_size=80)
       | st.lists(st.sampled_from(["https://x.com/a", "a@b.co", "3.50", "e.g.", "St.", "Inc.", "5 km", "**", "`x`",
                                   "[a](b)", "#1", "C#", "2024-01-02", "3/4", "10-20", " ", "\n", "Then"]),
                  max_size=20).map("".join))
def test_output_is_always_clean(text: str) -> None:
    n = normalize(text)
    s = n.spoken
    assert s == s.strip() and "  " not in s and "\n" not in s
    assert not set(s) & set("[]«»¿¡`*|^\x00\u200b😀你")
    prev_end = 0
    for r in n.spans:
        assert prev_end <= r.spoken_start < r.spoken_end <= len(s)
        assert r.written and r.written in text
        prev_end = r.spoken_end


def test_normalized_defaults() -> None:
    assert Normalized("x").spans == ()


# ------------------------------------------------------- with the real G2P


TRICKY = [
    "See https://github.com/foo/bar and a.b@example.com, e.g. file.txt.",
    "Call +1 555 123 4567 on 2024-05-01 about v2.0.1, #1 and C#.",
    "It is 37.5°C, 1.5km away, 3 mm wide, 10 ms late and 10x faster — wow -- really?",
    "Add 3/4 cup, $5M raised, 2023–2024 range, Henry VIII, St. Mary's, Acme Inc. and John Jr. too.",
    "- **Bold** [tomato](/təmˈeɪtoʊ/) `code` ![alt](x.png) [1] <br> | a | b |",
    "Call 555-2187 or 1-800-555-0199, ZIP 94103-1234, card 4111 1111 1111 1111, 192.168.1.1:8080, Python 3.12.",
    "«Bonjour» ¿qué? ¡sí! 你好。こんにちは 😀👍🏽 :) zero\u200bwidth a\x00b ＦＵＬＬ ~5 a -> b 5 < 6 x^2",
]


@pytest.mark.slow
def test_real_g2p_gets_only_known_symbols(g2p: Any) -> None:
    import kokoro_onnx

    config = Path(kokoro_onnx.__file__).parent / "config.json"
    vocab = set(json.loads(config.read_text())["vocab"])
    for text in TRICKY:
        phonemes, _ = g2p(normalize(text).spoken)
        assert "❓" not in phonemes, text
        assert not set(phonemes) - vocab, (text, set(phonemes) - vocab)


@pytest.mark.slow
def test_real_g2p_reads_the_fixes(g2p: Any) -> None:
    def ph(text: str) -> str:
        return str(g2p(text)[0])

    # misaki's inline phonemes are used as written; a path link is read as its text.
    assert ph(said("[tomato](/təmˈeɪtoʊ/)")) == "təmˈeɪtoʊ" != ph("tomato")
    assert ph(said("[tomato](/docs/)")) == ph("tomato")
    assert "dˈɑt" in ph(said("example.com")) and "slˈæʃ" in ph(said("x.com/a"))
    assert ph(said("3 mm")) == ph("3 millimeters") != ph("3 mm")
    assert ph(said("e.g. this")) == ph("for example this") != ph("e.g. this")
    assert ph(said("Henry VIII")) == ph("Henry the eighth")


@pytest.mark.parametrize("text,dropped,spoken", [
    ("Hi 😀 there", ("😀",), "Hi there"),
    ("Family 👨‍👩‍👧 time", ("👨‍👩‍👧",), "Family time"),
    ("He said Привет мир and left.", ("Привет мир",), "He said and left."),
    ("Tokyo is 東京.", ("東京",), "Tokyo is."),
    ("The Greek word Ελλάδα.", ("Ελλάδα",), "The Greek word."),
    ("Let α be small.", (), "Let α be small."),  # a lone Greek letter is a symbol misaki reads
])
def test_english_reports_what_it_cannot_say(text: str, dropped: tuple[str, ...], spoken: str) -> None:
    n = normalize(text)
    assert n.dropped == dropped
    assert n.spoken == spoken


# ----------------------------------------------- angle brackets, HTML, private use
# Text in angle brackets was taken for an HTML tag and dropped without a word.

@pytest.mark.parametrize("written, spoken", [
    ("If a<b and c>d then stop.", "If a less than b and c greater than d then stop."),
    ("Press <Enter> to continue", "Press (Enter) to continue"),
    ("Use Vec<String> here", "Use Vec(String) here"),
    ("if x>5 then", "if x greater than 5 then"),
    ("<name> and <value>", "(name) and (value)"),
])
def test_angle_bracket_text_is_spoken(written: str, spoken: str) -> None:
    out = normalize(written)
    assert out.spoken == spoken and out.dropped == ()


@pytest.mark.parametrize("written, spoken, dropped", [
    ("Line<br>break <b>bold</b>", "Line break bold", ("<br>", "<b>", "</b>")),
    ('See <img src="x.png" alt="cat"> here', "See here", ('<img src="x.png" alt="cat">',)),
    ("a <div class=x hidden>in</div>", "a in", ("<div class=x hidden>", "</div>")),
    ("Keep <!-- a note to self --> going.", "Keep going.", ("<!-- a note to self -->",)),
    ("One <!-- spans\ntwo lines --> two.", "One two.", ("<!-- spans", "two lines -->")),
    ("Open <!-- never closed", "Open", ("<!-- never closed",)),
    ("```\nx <!-- in code\n```\nAfter the code.", "After the code.", ()),  # code: not a comment
    ("Icons \ue000\uf8ff and \U000f0001 here.", "Icons and here.", ("\ue000\uf8ff", "\U000f0001")),
    ('Wait <break time="500ms"/> go.', "Wait go.", ()),  # our control tag: the segmenter's, not dropped text
])
def test_html_and_private_use_are_dropped_and_reported(written: str, spoken: str, dropped: tuple[str, ...]) -> None:
    out = normalize(written)
    assert out.spoken == spoken and out.dropped == dropped


def test_real_g2p_says_the_word_in_angle_brackets(g2p: Any) -> None:
    phonemes, _ = g2p(normalize("Press <Enter> to continue").spoken)
    assert g2p("Enter")[0].strip(".") in phonemes
